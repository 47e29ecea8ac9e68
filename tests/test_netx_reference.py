"""``snnc verify --reference netx``: lava-dl netx's own network built from the compiled ``.net`` file, run on
Lava fixed_pt, against snnc's emulator layer by layer; the first divergence is named; what netx cannot
build or feed is refused before anything runs."""
from __future__ import annotations

import numpy as np
import pytest

import snnc
from snnc.backends.lava_loihi2.netx import check_netx_input, compare_with_netx, neuron_names
from snnc.compiler.cli import main
from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_net import NetOptions, check_netx_builds, load_net
from snnc.ir.nodes import GradedInput
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.traces import first_divergence
from test_lava_dl_net import bias_input_layers, conv_dense_layers, cuba, static_bias, write_net
from test_lava_dl_rf import slayer_rf_net, spikes_in
from test_lava_dl_sdnn import graded_input, slayer_sdnn_net

STEPS = 10


def spikes(seed: int, batch: int = 2, shape=(2, 6, 5)) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, STEPS, *shape)) < 0.4).astype(np.uint8)


@pytest.fixture
def compiled(tmp_path):
    """The conv/dense test net compiled for loihi2 with netx's num_layers and reset options, and an input."""
    path = tmp_path / "convnet.net"
    write_net(path, conv_dense_layers(0))
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "loihi2", "--num-layers", "4", "--reset-interval", "3",
                 "-o", str(out)]) == 0
    np.savez(tmp_path / "x.npz", x=spikes(1, batch=1))
    return path, out, tmp_path / "x.npz"


@pytest.mark.lava
def test_cli_verify_with_netx_reference_is_equal(compiled, capsys):
    """Equal only if the options reach netx: without num_layers it builds 3 layers, without the reset
    other u and v."""
    path, out, inputs = compiled
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(inputs), "--no-lava", "--reference", "netx"]) == 0
    graph = load_net(path, num_layers=4, reset_interval=3)
    count = int(np.count_nonzero(run_on_ir_grid(graph, spikes(1, batch=1)).spikes["lif_3"]))
    assert count > 0
    assert capsys.readouterr().out.splitlines() == [
        "lava comparison skipped",
        f"emulator vs lava-dl netx on Lava fixed_pt ({path}): equal: identical spikes, u and v of the 2 netx "
        f"layers at every step (1 sample x {STEPS} steps; output 'lif_3' {count} spikes)",
        "float reference: none (the source model is already in the target's integer formats)"]


def expected_mismatch(path, graph, netx_graph, x, emulated) -> str:
    """The line for netx running ``netx_graph``'s file on ``x``: the emulator equals netx bit for bit
    (tests/test_lava_dl_*.py), so its divergence from ``emulated`` is found on the emulator's own traces."""
    names = neuron_names(graph)
    d = first_divergence(run_on_ir_grid(netx_graph, x, record_state=True), emulated, names)
    return (f"emulator vs lava-dl netx on Lava fixed_pt ({path}): MISMATCH: first divergence at netx layer "
            f"{names.index(d.node)} (node '{d.node}') {d.quantity}: sample {d.batch}, step {d.step}, neuron "
            f"{d.neuron}: netx {d.expected!r}, emulator {d.actual!r}")


@pytest.mark.lava
def test_a_netx_run_of_another_file_names_the_first_divergence(tmp_path):
    """netx runs a file whose last layer has one weight changed: the emulator of the original differs
    first in that layer."""
    layers = conv_dense_layers(0)
    graph = load_net(_written(tmp_path / "a.net", layers))
    layers[4] = {**layers[4], "weight": layers[4]["weight"].copy()}
    layers[4]["weight"][1, :] = 0
    other = _written(tmp_path / "b.net", layers)
    x = spikes(1, batch=1)
    emulated = run_on_ir_grid(graph, x, record_state=True)
    ok, lines = compare_with_netx(graph, other, None, x, emulated)
    assert not ok and lines == [expected_mismatch(other, graph, load_net(other), x, emulated)]
    assert "netx layer 2 (node 'lif_4')" in lines[0]


@pytest.mark.lava
@pytest.mark.slow
def test_a_netx_run_on_a_perturbed_input_names_the_first_divergence(tmp_path):
    """Sample 1 of netx's input loses its spikes from step 6 on: the first layer diverges there first."""
    path = _written(tmp_path / "a.net", conv_dense_layers(0))
    graph = load_net(path)
    x = spikes(2)
    perturbed = x.copy()
    perturbed[1, 6:] = 0
    emulated = run_on_ir_grid(graph, x, record_state=True)
    ok, lines = compare_with_netx(graph, path, None, perturbed, emulated)
    assert not ok and lines == [expected_mismatch(path, graph, graph, perturbed, emulated)]
    assert "(node 'lif_1')" in lines[0] and "sample 1, step 6" in lines[0]


def _written(path, layers):
    write_net(path, layers)
    return path


def alif_layers() -> list[dict]:
    layers = conv_dense_layers(0)[:1] + [conv_dense_layers(0)[1]]
    layers[1] = {**layers[1], "neuron": {"type": "ALIF", "iDecay": 1024, "vDecay": 512, "thDecay": 100,
                                         "refDecay": 200, "vThMant": 80, "vThStep": 20, "refDelay": 1}}
    return layers


def pool_layers() -> list[dict]:
    return [{"type": "input", "shape": np.array([2, 4, 6])},
            {"type": "pool", "shape": np.array([2, 2, 3]), "weight": np.full((1, 1, 2, 2, 1), 5.0),
             "kernelSize": np.array([2, 2]), "stride": np.array([2, 2]), "padding": np.array([0, 0]),
             "dilation": np.array([1, 1]), "neuron": cuba(np.random.default_rng(3))}]


@pytest.mark.parametrize("layers, expected", [
    (alif_layers(), "node '{path}: layer 1' field 'neuron/type': netx 0.6 cannot build ALIF neurons "
                    "(Network.get_neuron_params knows CUBA/LOIHI, SDNN and RF neurons only and returns None for "
                    "ALIF; slayer's forward is their reference): limit a neuron netx builds (CUBA, LOIHI, SDNN, "
                    "RF_PHASE or RF_IZHIKEVICH), got ALIF"),
    (pool_layers(), "node '{path}: layer 1' field 'type': netx 0.6 raises NotImplementedError('pool is not "
                    "implemented.') (snnc loads a pool layer as a depthwise conv): limit a layer netx builds, got "
                    "'pool'"),
])
def test_what_snnc_loads_but_netx_cannot_build_is_refused(tmp_path, layers, expected):
    path = _written(tmp_path / "x.net", layers)
    load_net(path)
    with pytest.raises(UnsupportedError) as info:
        check_netx_builds(path)
    assert str(info.value) == expected.format(path=path)
    check_netx_builds(path, NetOptions(num_layers=1))     # netx would not read the layer


def test_an_input_made_static_by_compression_is_refused(tmp_path):
    """--compress-timesteps may make the input static (a GradedInput): netx feeds the file's own input layer."""
    graph = load_net(_written(tmp_path / "a.net", conv_dense_layers(0)))
    static = graph.replace_nodes(tuple(GradedInput("input", (2, 6, 5), bits=8) if n.name == "input" else n
                                       for n in graph.nodes))
    check_netx_input(graph, graph)
    with pytest.raises(UnsupportedError) as info:
        check_netx_input(graph, static)
    assert str(info.value) == ("node 'input' field 'type': limit Input (netx feeds the .net file's own input "
                               "layer; recompile without --compress-timesteps), got GradedInput")


def test_cli_refuses_netx_for_a_pool_net_before_running_anything(tmp_path, capsys):
    path = _written(tmp_path / "pool.net", pool_layers())
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "emulator", "-o", str(out)]) == 0
    np.savez(tmp_path / "x.npz", x=spikes(1, 1, (2, 4, 6)))
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--reference", "netx"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"error: node '{path}: layer 1' field 'type': netx 0.6 raises NotImplementedError('pool is not "
        "implemented.') (snnc loads a pool layer as a depthwise conv): limit a layer netx builds, got 'pool'\n")


def test_cli_refuses_netx_for_a_changed_or_missing_file(compiled, capsys):
    path, out, inputs = compiled
    with pytest.raises(UnsupportedError, match="node 'verify' field 'reference': limit None or 'netx', got nest"):
        snnc.verify(out, spikes(1, 1), reference="nest")
    write_net(path, conv_dense_layers(1))
    assert main(["verify", str(out), "--input", str(inputs), "--reference", "netx"]) == 2
    assert capsys.readouterr().err == (f"error: file '{path}': sha256 differs from the one snnc compile recorded: "
                                       "netx would run another network than the one compiled; recompile\n")
    path.unlink()
    assert main(["verify", str(out), "--input", str(inputs), "--reference", "netx"]) == 2
    assert capsys.readouterr().err == (f"error: file '{path}': --reference netx rebuilds netx's network from the "
                                       ".net file this folder was compiled from; it is missing (run verify "
                                       f"where '{path}' resolves)\n")


def test_cli_refuses_netx_for_a_model_that_is_not_a_net_file(tmp_path, capsys):
    """A folder compiled from snnc's own IR file of the same network: netx loads .net files only."""
    path = _written(tmp_path / "convnet.net", conv_dense_layers(0))
    assert main(["compile", str(path), "--target", "emulator", "-o", str(tmp_path / "a")]) == 0
    out = tmp_path / "b"
    source = tmp_path / "a" / "source.snnc"
    assert main(["compile", str(source), "--target", "emulator", "-o", str(out)]) == 0
    np.savez(tmp_path / "x.npz", x=spikes(1, 1))
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--reference", "netx"]) == 2
    assert capsys.readouterr().err == (f"error: node '{out}' field 'model': limit a lava-dl .net file (netx loads "
                                       f".net files only), got {source}\n")


@pytest.mark.lava
@pytest.mark.slow
def test_bias_input_net_verifies_equal_with_netx(tmp_path, capsys):
    """Pixel values of a bias-driven input layer reach netx as bias_mant; the integrator layer included."""
    path = _written(tmp_path / "bias.net", bias_input_layers(5))
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "emulator", "-o", str(out)]) == 0
    np.savez(tmp_path / "x.npz", x=np.concatenate([static_bias(1, 8), static_bias(2, 8)]))
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--reference", "netx"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"emulator vs lava-dl netx on Lava fixed_pt ({path}): equal: identical spikes, u "
                               "and v of the 3 netx layers at every step (2 samples x 8 steps;")
    moving = static_bias(1, 8)
    moving[0, 3] += 1
    with pytest.raises(UnsupportedError, match="node 'input' field 'bias': limit the same values at every step "
                                               "\\(netx's input neurons take them as bias_mant, set once before "
                                               "the run\\), got a change at step 3"):
        snnc.verify(out, moving, with_reference=False, reference="netx")


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("family", ["sdnn", "rf_iz"])
def test_sigma_delta_and_resonator_nets_verify_equal_with_netx(tmp_path, capsys, family):
    """Graded values reach netx's input Delta; resonator states are compared as real and imag."""
    path = tmp_path / f"{family}.net"
    if family == "sdnn":
        slayer_sdnn_net(path, (6, 8, 5, 3), seed=0)
        x, compared = graded_input(np.random.default_rng(1), 2, 12, 6), "spikes, act, residue and sigma"
    else:
        slayer_rf_net(path, "rf_iz", (6, 8, 4), seed=0)
        x, compared = spikes_in(1, 2, 20, 6), "spikes, imag and real"
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "loihi2", "-o", str(out)]) == 0
    np.savez(tmp_path / "x.npz", x=x)
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--no-lava", "--reference", "netx"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith(f"emulator vs lava-dl netx on Lava fixed_pt ({path}): equal: identical {compared} of "
                           f"the {4 if family == 'sdnn' else 2} netx layers at every step (2 samples x {x.shape[1]} "
                           "steps;"), line


@pytest.mark.lava
@pytest.mark.slow
def test_skip_layers_reaches_netx(tmp_path, capsys):
    """skip_layers=1 on PilotNet SDNN's block kinds: the input is graded messages into the first Conv, and
    netx is built with the same skip_layers (else it would feed its Delta and build one layer more). Through
    the CLI: run and verify take the graded per-step integers of 'x' (no static 'values'/'levels': the
    compile made nothing static), and the emulator equals Lava and netx."""
    from test_lava_dl_sdnn_conv import graded_images, slayer_sdnn_conv_net
    path = tmp_path / "sdconv.net"
    slayer_sdnn_conv_net(path)
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "loihi2", "--skip-layers", "1", "-o", str(out)]) == 0
    x = graded_images(np.random.default_rng(5), 1, 10) * 64
    np.savez(tmp_path / "x.npz", x=x)
    graph = load_net(path, skip_layers=1)
    assert isinstance(graph.inputs[0], GradedInput)
    counts = run_on_ir_grid(graph, x).spikes["sigma_5"].sum(axis=(0, 1))
    assert np.count_nonzero(counts) == 3
    capsys.readouterr()
    assert main(["run", str(out), "--input", str(tmp_path / "x.npz")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"emulate: 1 samples x 10 steps; output 'sigma_5' spike counts {counts.tolist()}"]
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--reference", "netx"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("emulator vs Lava fixed_pt: identical spikes, sigma, act and residue at every step for "
                        "every node")
    assert lines[1].startswith(
        f"emulator vs lava-dl netx on Lava fixed_pt ({path}): equal: identical spikes, act, residue and sigma of "
        "the 4 netx layers at every step (1 sample x 10 steps;"), lines
