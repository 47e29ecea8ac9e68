"""`snnc.compile / load / run / verify`: the Python twin of the CLI (issue 12, item 2)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import snnc
from conftest import DIGITS_MODEL, random_spikes
from snnc.compiler.cli import main
from snnc.datasets import digits
from snnc.errors import UnsupportedError
from snnc.frontends.torch_bundle import load_bundle_module


@pytest.fixture(scope="module")
def module():
    model, shape, _, _ = load_bundle_module(DIGITS_MODEL)
    return model, shape


def test_compile_a_module_runs_and_verifies(module, tmp_path):
    model, shape = module
    result = snnc.compile(model, example_input=shape, target="loihi2", out=tmp_path / "net")
    assert result.out == tmp_path / "net" and result.target == "loihi2"
    assert result.summary.startswith("compiled ") and "lif_1" in result.summary
    assert result.report["target"] == "loihi2" and result.graph.timing == "hop_latency"
    assert sorted(p.name for p in result.out.iterdir()) == ["ir.txt", "lowered.snnc", "report.json",
                                                           "run_on_lava.py", "snnc-manifest.json", "source.snnc"]
    x, y = digits.test_spikes(20, 40)
    run = snnc.run(result, x)
    assert run.output == "lif_3" and run.traces.spikes["lif_3"].shape == (40, 20, 10)
    assert np.mean(run.predictions == y) > 0.9
    check = snnc.verify(result.out, x[:4], y[:4], with_reference=False)
    assert check.ok and "emulator vs float reference" in check.text


def test_what_the_api_compiles_is_what_the_cli_compiles(module, tmp_path, monkeypatch):
    from conftest import ROOT
    monkeypatch.chdir(ROOT)
    snnc.compile(DIGITS_MODEL.relative_to(ROOT), target="spinnaker", out=tmp_path / "api")
    assert main(["compile", str(DIGITS_MODEL.relative_to(ROOT)), "--target", "spinnaker", "-o",
                 str(tmp_path / "cli")]) == 0
    for name in ("lowered.snnc", "source.snnc", "report.json", "run_spinnaker.py"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_a_graph_and_an_example_tensor_are_accepted(module, tmp_path):
    import torch
    model, shape = module
    graph = snnc.load(DIGITS_MODEL)
    by_graph = snnc.compile(graph, target="emulator", out=tmp_path / "g")
    by_tensor = snnc.compile(model, example_input=torch.zeros(1, *shape), target="emulator")
    x = random_spikes(2, (3, 12, *shape))
    np.testing.assert_array_equal(snnc.run(by_graph, x).traces.spikes["lif_3"],
                                  snnc.run(by_tensor, x).traces.spikes[by_tensor.graph.outputs[0]])
    assert by_tensor.out.is_dir()


def test_a_custom_module_with_a_time_loop_compiles(tmp_path):
    """snnTorch tutorial-5 style: forward loops over time (traced by snnc.frontends.torch_trace)."""
    import snntorch as snn
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.fc1, self.lif1 = torch.nn.Linear(6, 8), snn.Leaky(beta=0.9, reset_mechanism="zero")
            self.fc2, self.lif2 = torch.nn.Linear(8, 3), snn.Leaky(beta=0.8, reset_mechanism="zero")

        def forward(self, x):
            mem1, mem2, out = self.lif1.init_leaky(), self.lif2.init_leaky(), []
            for step in range(x.shape[0]):
                spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
                out.append(spk2)
            return torch.stack(out)

    result = snnc.compile(Net(), example_input=torch.zeros(5, 1, 6), target="loihi2", out=tmp_path / "t5")
    assert result.source.inputs[0].shape == (6,) and len(result.source.nodes) == 5


def test_refusals_are_typed(module):
    model, _ = module
    with pytest.raises(UnsupportedError, match=r"node 'Sequential' field 'example_input': limit the input shape"):
        snnc.compile(model)
    with pytest.raises(UnsupportedError, match=r"field 'model': limit a model file path, a torch.nn.Module or an "
                                               r"snnc Graph, got int"):
        snnc.compile(3)


def test_importing_snnc_loads_nothing_until_the_api_is_used():
    code = ("import sys, snnc; before = 'snnc.api' in sys.modules or 'torch' in sys.modules; "
            "snnc.compile; print(before, 'snnc.api' in sys.modules, 'compile' in dir(snnc))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True", "True"]
