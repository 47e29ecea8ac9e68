"""Train the bundled example: a 64-128-10 snnTorch LIF network on scikit-learn digits.

    .venv/bin/python examples/digits/train_digits.py   # writes examples/digits/digits_snn.pt

Leaky neurons with reset_mechanism="zero" (what Loihi neurons do) and no Linear bias; classification by
output spike count over STEPS steps of a deterministic rate code. Seeded: reruns give the same file on
the same torch build.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import snntorch as snn
import snntorch.functional as SF
import snntorch.utils
import torch
from snntorch import surrogate
from torch import nn

from snnc.datasets.digits import digits_split, rate_encode
from snnc.frontends.torch_bundle import save_bundle

STEPS = 20
HIDDEN = 128
EPOCHS = 40
OUT = Path(__file__).with_name("digits_snn.pt")


def build_model(reset: str = "zero") -> nn.Sequential:
    """64-128-10 Leaky network; ``reset``: snnTorch reset_mechanism of both layers."""
    grad = surrogate.fast_sigmoid(slope=10)
    return nn.Sequential(
        nn.Linear(64, HIDDEN, bias=False),
        snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=reset, spike_grad=grad, init_hidden=True),
        nn.Linear(HIDDEN, 10, bias=False),
        snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=reset, spike_grad=grad, init_hidden=True),
    )


def spike_counts(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x: (batch, steps, 64) -> output spikes (steps, batch, 10)."""
    snntorch.utils.reset(model)
    return torch.stack([model(x[:, t]) for t in range(x.shape[1])])


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        counts = spike_counts(model, torch.as_tensor(x, dtype=torch.float32)).sum(0)
    return float((counts.argmax(1).numpy() == y).mean())


def train(reset: str = "zero", epochs: int = EPOCHS, verbose: bool = True) -> nn.Sequential:
    """Seeded training on the digits training split (``reset``: snnTorch reset_mechanism)."""
    torch.manual_seed(0)
    x_train, x_test, y_train, y_test = digits_split()
    xs, xt = rate_encode(x_train, STEPS), rate_encode(x_test, STEPS)
    model = build_model(reset)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = SF.ce_count_loss()
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        for batch in np.array_split(rng.permutation(len(xs)), len(xs) // 64):
            out = spike_counts(model, torch.as_tensor(xs[batch], dtype=torch.float32))
            loss = loss_fn(out, torch.as_tensor(y_train[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if verbose and epoch % 10 == 9:
            print(f"epoch {epoch + 1}: train {accuracy(model, xs, y_train):.3f} test {accuracy(model, xt, y_test):.3f}")
    return model


if __name__ == "__main__":
    trained = train()
    save_bundle(trained, (64,), OUT, name="digits_snn")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
