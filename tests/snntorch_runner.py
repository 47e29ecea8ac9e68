"""Run an snnTorch ``nn.Sequential`` step by step and record every neuron layer's spikes (test helper)."""
from __future__ import annotations

import numpy as np
import torch
import snntorch.utils


def run_snntorch(model: torch.nn.Module, x: np.ndarray, dtype=torch.float64) -> dict[str, np.ndarray]:
    """x: (batch, steps, *shape) spikes. Returns module path -> (batch, steps, *shape) uint8 spikes."""
    model = model.to(dtype).eval()
    recorded: dict[str, list] = {}
    hooks = []
    for path, module in model.named_modules():
        if not list(module.children()):
            # snnTorch's surrogate forward returns float32 spikes; keep the whole run in ``dtype``.
            hooks.append(module.register_forward_pre_hook(
                lambda _m, args: tuple(a.to(dtype) if torch.is_tensor(a) else a for a in args)))
        if type(module).__module__.startswith("snntorch") and hasattr(module, "state_function"):
            def hook(_m, _inp, out, path=path):
                spk = out[0] if isinstance(out, tuple) else out
                recorded.setdefault(path, []).append(spk.detach().cpu().numpy().astype(np.uint8))
            hooks.append(module.register_forward_hook(hook))
    snntorch.utils.reset(model)
    try:
        with torch.no_grad():
            for t in range(x.shape[1]):
                model(torch.as_tensor(x[:, t], dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
    return {path: np.stack(steps, axis=1) for path, steps in recorded.items()}
