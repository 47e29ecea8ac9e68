"""NIR without silent wrong dynamics (issue 12 item 4): the reset kind and time step a NIR file cannot state
are given on the command line and recorded in the compile summary; a neuron group that no input can make
fire is a compile warning and a verify failure, and so is a spiking output that stays silent on the verify
input. Fixtures are built with snnTorch's and SpikingJelly's own ``export_to_nir``."""
from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import snntorch as snn
import torch

from snnc.compiler.cli import main
from snnc.compiler.liveness import never_firing
from snnc.frontends.loader import load_model

warnings.filterwarnings("ignore")


def snntorch_nir(path, threshold: float = 0.7, reset: str = "subtract", bias: bool = True):
    """Linear -> Leaky -> Linear -> Leaky exported by snnTorch (per-neuron tensors give the layer sizes);
    without biases nothing fires on an all-zero input."""
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 6, bias=bias), snn.Leaky(beta=torch.full((6,), 0.8), threshold=torch.full((6,), threshold),
                                         init_hidden=True, reset_mechanism=reset),
        torch.nn.Linear(6, 4, bias=bias), snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.ones(4),
                                                    init_hidden=True, output=True, reset_mechanism=reset))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)
    nir.write(path, export_to_nir(net, torch.zeros(1, 8), ignore_dims=[0]))
    return path


def spike_file(path, x: np.ndarray):
    np.savez(path, x=x)
    return path


def test_reset_and_dt_given_on_the_command_line_are_in_the_summary(tmp_path, capsys):
    path = snntorch_nir(tmp_path / "net.nir")
    assert main(["compile", str(path), "--target", "emulator", "--dt", "1e-4", "--reset", "subtract",
                 "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "model options given (--dt, --reset, --comparison, --producer; not stored in the model file): " \
           "dt_s=0.0001, " \
           "reset=subtract" in out
    assert "liveness" not in out


def test_group_that_can_never_fire_warns_at_compile_and_fails_verify(tmp_path, capsys):
    """A threshold of 50 under snnTorch's own weights: the bound on the membrane (11.5) never reaches it."""
    path = snntorch_nir(tmp_path / "dead.nir", threshold=50.0)
    graph = load_model(path, dt_s=1e-4, reset="subtract")
    assert list(never_firing(graph)) == ["n1"]
    out_dir = tmp_path / "out"
    assert main(["compile", str(path), "--target", "emulator", "--dt", "1e-4", "--reset", "subtract",
                 "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "warning: liveness: group 'n1' can never fire: with every input spiking at every step its membrane " \
           "stays below 11.5154, under the threshold 50 (all 6 neurons" in out
    inputs = spike_file(tmp_path / "x.npz", (np.random.default_rng(0).random((3, 20, 8)) < 0.5).astype(np.uint8))
    assert main(["verify", str(out_dir), "--input", str(inputs), "--no-lava"]) == 1
    assert "FAIL: liveness: group 'n1' can never fire" in capsys.readouterr().out


def test_output_silent_on_the_verify_input_fails_verify(tmp_path, capsys):
    path = snntorch_nir(tmp_path / "net.nir", bias=False)
    out_dir = tmp_path / "out"
    assert main(["compile", str(path), "--target", "emulator", "--dt", "1e-4", "--reset", "subtract",
                 "-o", str(out_dir)]) == 0
    quiet = spike_file(tmp_path / "quiet.npz", np.zeros((2, 10, 8), np.uint8))
    capsys.readouterr()
    assert main(["verify", str(out_dir), "--input", str(quiet), "--no-lava"]) == 1
    assert "FAIL: liveness: output 'n3' emitted no spike on the 2 verify samples" in capsys.readouterr().out
    busy = spike_file(tmp_path / "busy.npz", (np.random.default_rng(1).random((2, 20, 8)) < 0.5).astype(np.uint8))
    assert main(["verify", str(out_dir), "--input", str(busy), "--no-lava"]) == 0
    assert "liveness: every spiking group can fire and every spiking output spiked" in capsys.readouterr().out


def test_calibration_input_that_leaves_an_output_silent_warns_at_compile(tmp_path, capsys):
    path = snntorch_nir(tmp_path / "net.nir", bias=False)
    calib = spike_file(tmp_path / "calib.npz", np.zeros((4, 10, 8), np.uint8))
    assert main(["compile", str(path), "--target", "emulator", "--dt", "1e-4", "--reset", "subtract",
                 "--calib", str(calib), "-o", str(tmp_path / "out")]) == 0
    assert "warning: liveness: output 'n3' emitted no spike on the 4 calibration samples" in \
        capsys.readouterr().out


def test_spikingjelly_nir_export_compiles_live_and_verifies(tmp_path, capsys):
    """SpikingJelly's export_to_nir (dt 1e-4, hard reset to 0, >= threshold) through the CLI."""
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir
    torch.manual_seed(2)
    net = torch.nn.Sequential(layer.Linear(8, 6), neuron.LIFNode(tau=2.0), layer.Linear(6, 4), neuron.IFNode())
    with torch.no_grad():
        net[0].weight.mul_(6.0)
        net[2].weight.mul_(8.0)
    path = tmp_path / "sj.nir"
    nir.write(path, export_to_nir(net, torch.zeros(1, 8)))
    out_dir = tmp_path / "out"
    assert main(["compile", str(path), "--target", "emulator", "--dt", "1e-4", "--reset", "zero", "--comparison",
                 "ge", "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "comparison=ge, dt_s=0.0001, reset=zero" in out and "liveness" not in out
    x = (np.random.default_rng(3).random((3, 20, 8)) < 0.5).astype(np.uint8)
    graph = load_model(path, dt_s=1e-4, reset="zero", comparison="ge")
    from snnc.simulators.float_reference import run_float
    ours = run_float(graph, x).spikes[graph.outputs[0]]
    with torch.no_grad():
        theirs = []
        for sample in x:
            functional.reset_net(net)
            theirs.append(np.stack([net(torch.as_tensor(step[None], dtype=torch.float32))[0].numpy()
                                    for step in sample]))
    theirs = np.stack(theirs)
    assert theirs.sum() > 10
    np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs)
    assert main(["verify", str(out_dir), "--input", str(spike_file(tmp_path / "x.npz", x)), "--no-lava"]) == 0


@pytest.mark.parametrize("reset, kind", [("subtract", "subtract"), ("zero", "zero_next")])
def test_snntorch_synaptic_nir_matches_snntorch_with_the_documented_reset_kind(reset, kind):
    """The refusal's hint: snnTorch Synaptic's 'zero' clears the next update (snnc zero_next)."""
    from snntorch.export_nir import export_to_nir
    from snnc.frontends.nir_import import nir_graph_to_ir
    from snnc.simulators.float_reference import run_float
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 6), snn.Synaptic(alpha=torch.full((6,), 0.7), beta=torch.full((6,), 0.8),
                                            threshold=torch.full((6,), 0.5), init_hidden=True, reset_mechanism=reset),
        torch.nn.Linear(6, 4), snn.Synaptic(alpha=torch.full((4,), 0.7), beta=torch.full((4,), 0.9),
                                            threshold=torch.ones(4), init_hidden=True, output=True,
                                            reset_mechanism=reset))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(3.0)
    graph = nir_graph_to_ir(export_to_nir(net, torch.zeros(1, 8), ignore_dims=[0]), dt_s=1e-4, reset=kind)
    x = (np.random.default_rng(0).random((3, 30, 8)) < 0.5).astype(np.uint8)
    ours = run_float(graph, x).spikes[graph.outputs[0]]
    theirs = []
    with torch.no_grad():
        for sample in x:
            for module in (net[1], net[3]):
                module.reset_mem()
            theirs.append(np.stack([net(torch.as_tensor(step[None], dtype=torch.float32))[0].numpy()[0]
                                    for step in sample]))
    theirs = np.stack(theirs)
    assert theirs.sum() > 10
    np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs)
