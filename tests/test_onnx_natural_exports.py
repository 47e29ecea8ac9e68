"""Natural ONNX exports of snnTorch and SpikingJelly networks (issue 12 item 3): built with the peer libraries'
own modules and exporters at test time, imported, and run in snnc's float reference against the library's own
forward in torch, spike slot for spike slot."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import snntorch as snn
import torch

from snnc.frontends.onnx_frontend import load_onnx
from snnc.simulators.float_reference import run_float

warnings.filterwarnings("ignore")


def export(module, args, path, dynamo: bool, names_in=None, names_out=None) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module.eval(), args, str(path), dynamo=dynamo, input_names=names_in,
                          output_names=names_out, opset_version=18 if dynamo else 17)


def spikes(rng, shape, rate=0.5) -> np.ndarray:
    return (rng.random(shape) < rate).astype(np.uint8)


# ---------------------------------------------------------------------------------------- BatchNormalization

class BatchNormStep(torch.nn.Module):
    """One snnTorch step with BatchNorm2d after a conv (the legacy exporter folds it into the Conv) and
    BatchNorm1d after a Linear (left as a BatchNormalization node), non-trivial running statistics."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn2 = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.BatchNorm2d(2)
        self.fc, self.bn1 = torch.nn.Linear(32, 5), torch.nn.BatchNorm1d(5)
        self.lif1 = snn.Leaky(beta=0.8, threshold=0.5)
        self.lif2 = snn.Leaky(beta=0.9, threshold=0.5)
        with torch.no_grad():
            for bn in (self.bn2, self.bn1):
                bn.running_mean.uniform_(-0.2, 0.2)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.1, 0.1)
            self.fc.weight.mul_(3.0)

    def forward(self, x, mem1, mem2):
        spk1, mem1 = self.lif1(self.bn2(self.conv(x)), mem1)
        spk2, mem2 = self.lif2(self.bn1(self.fc(spk1.flatten(1))), mem2)
        return spk2, mem1, mem2


def torch_steps(step, x: np.ndarray, state_shapes) -> np.ndarray:
    """The module's own forward over time, explicit states from zero; x: (batch, steps, ...)."""
    state = [torch.zeros(x.shape[0], *s) for s in state_shapes]
    out = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            spk, *state = step.eval()(torch.as_tensor(x[:, t], dtype=torch.float32), *state)
            out.append(spk.numpy())
    return np.stack(out, axis=1)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_batchnorm_is_folded_into_the_synapse_before_it(tmp_path, dynamo):
    import onnx
    path = tmp_path / "bn.onnx"
    step = BatchNormStep()
    export(step, (torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 5)), path, dynamo,
           ["x", "mem1", "mem2"], ["spk2", "mem1_out", "mem2_out"])
    if not dynamo:
        assert "BatchNormalization" in [n.op_type for n in onnx.load(str(path)).graph.node]
    x = spikes(np.random.default_rng(0), (1, 30, 1, 4, 4))
    theirs = torch_steps(step, x, [(2, 4, 4), (5,)])
    graph = load_onnx(path)
    ours = run_float(graph, x).spikes[graph.outputs[0]]
    assert theirs.sum() > 10
    np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs)
