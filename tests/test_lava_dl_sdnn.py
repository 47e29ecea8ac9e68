"""lava-dl sigma-delta (SDNN) ``.net`` files: made with slayer's own ``sigma_delta`` blocks and their
``export_hdf5``, loaded by snnc and run in its emulator (both engines) and its Lava backend (stock
``lava.proc.sdn`` processes), equal to lava-dl netx running the same file on Lava fixed_pt: graded
outputs s and the sigma/act/residue state of every layer at every step; typed refusals."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snnc.backends.lava_loihi2.compat import import_lava
from snnc.backends.lava_loihi2.netx import neuron_names, run_netx
from snnc.backends.lava_loihi2.run import run_lava
from snnc.compiler.cli import main
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import load_net, save_net
from snnc.ir.graph import Graph
from snnc.ir.printer import format_graph
from snnc.ir.nodes import GradedInput, LoihiDelta, LoihiSigma, LoihiSigmaDelta
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.loihi_emulator import run_loihi
from slayer_chain import Chain

def slayer_sdnn_net(path, sizes: tuple[int, ...], seed: int, threshold: float = 0.1) -> None:
    """slayer ``sigma_delta.Input -> Dense ... -> Output`` (ReLU), exported with each block's own
    ``export_hdf5`` the way lava-dl's tutorials write a ``.net`` file."""
    import_lava(dl=True)
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    params = {"threshold": threshold, "activation": torch.nn.functional.relu}
    block = slayer.block.sigma_delta
    blocks = [block.Input(params)]
    blocks += [block.Dense(params, n_in, n_out, weight_scale=2) for n_in, n_out in zip(sizes[:-2], sizes[1:-1])]
    blocks.append(block.Output(params, sizes[-2], sizes[-1], weight_scale=2))
    x = torch.rand(1, sizes[0], 4)
    for b in blocks:     # one forward pass sets the blocks' shapes, as training would
        x = b(x)
    Chain(blocks).export_hdf5(path)


def add_bias(path, layer: int, bias: np.ndarray) -> None:
    """A per-neuron ``bias`` dataset, written the way netx reads it (slayer's SDNN Dense exports none)."""
    with h5py.File(path, "a") as handle:
        handle[f"layer/{layer}"].create_dataset("bias", data=bias)


def graded_input(rng, batch: int, steps: int, size: int) -> np.ndarray:
    """Integer values that drift and hold still, so deltas fall below and above the threshold."""
    walk = np.cumsum(rng.integers(-60, 61, (batch, steps, size)) * (rng.random((batch, steps, size)) < 0.6), axis=1)
    return np.clip(walk + rng.integers(0, 200, (batch, 1, size)), -400, 400).astype(np.int64)


def assert_equal_to_netx(graph, netx_layers: list[dict], traces, sample_index: int = 0) -> None:
    names = neuron_names(graph)
    assert len(names) == len(netx_layers)
    for name, expected in zip(names, netx_layers):
        assert np.array_equal(traces.spikes[name][sample_index], expected["s_out"]), name
        for var in expected.keys() - {"s_out"}:
            assert np.array_equal(traces.states[name][var][sample_index], expected[var]), (name, var)


@pytest.fixture(scope="module")
def sdnn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sdnn") / "sdnn.net"
    slayer_sdnn_net(path, (6, 8, 5, 3), seed=0)
    add_bias(path, 2, np.array([40, -30, 0, 90, -5]))
    return path


def test_slayer_sigma_delta_blocks_load_as_delta_sigma_delta_and_sigma(sdnn_file):
    graph = load_net(sdnn_file)
    kinds = [type(n) for n in graph.nodes if n.ROLE in ("input", "neuron")]
    assert kinds == [GradedInput, LoihiDelta, LoihiSigmaDelta, LoihiSigmaDelta, LoihiSigma]
    assert graph.node("delta_0").vth == 6 and graph.node("delta_0").inputs == ("input",)   # 0.1 * 64
    assert graph.node("sigma_delta_2").bias.tolist() == [40, -30, 0, 90, -5]
    latency = graph.latency
    assert [latency[n] for n in ("input", "delta_0", "sigma_delta_1", "sigma_delta_2", "sigma_3")] == [0, 0, 1, 2, 3]


def test_emulator_and_lava_backend_equal_netx_on_lava_fixed_pt(sdnn_file):
    graph = load_net(sdnn_file)
    x = graded_input(np.random.default_rng(1), 1, 12, 6)
    expected = run_netx(sdnn_file, x[0])
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    out = emulated.spikes["sigma_3"][0]
    assert np.count_nonzero(out) > 0 and np.count_nonzero(emulated.states["delta_0"]["residue"]) > 0


@pytest.mark.lava
def test_axonal_delays_on_a_sigma_delta_dense_layer_equal_netx(tmp_path):
    """netx builds a DelayDense carrying graded messages for an SDNN dense layer with ``delay``: emulator
    (both engines) and snnc's Lava backend equal netx in every state at every step."""
    path = tmp_path / "delayed.net"
    slayer_sdnn_net(path, (6, 8, 5, 3), seed=0)
    with h5py.File(path, "a") as handle:
        handle["layer/2"].create_dataset("delay", data=np.array([0, 1, 2, 3, 1]))
    graph = load_net(path)
    assert graph.node("dense_2").delay_steps[:, 0].tolist() == [0, 1, 2, 3, 1]
    x = graded_input(np.random.default_rng(1), 1, 14, 6)
    expected = run_netx(path, x[0])
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="step"))
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    assert np.count_nonzero(expected[2]["s_out"]) > 0


@pytest.mark.slow
def test_larger_sdnn_equals_netx_over_many_steps_and_samples(tmp_path):
    path = tmp_path / "larger.net"
    slayer_sdnn_net(path, (20, 32, 24, 16, 10), seed=3, threshold=0.2)
    rng = np.random.default_rng(4)
    add_bias(path, 1, rng.integers(-200, 200, 32))
    add_bias(path, 3, rng.integers(-200, 200, 16))
    graph = load_net(path)
    x = graded_input(rng, 3, 60, 20)
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    for sample in range(3):
        expected = run_netx(path, x[sample])
        assert_equal_to_netx(graph, expected, emulated, sample)
        assert_equal_to_netx(graph, expected, lava, sample)


def test_cli_compiles_and_runs_a_sigma_delta_net_and_spinnaker_refuses_it(sdnn_file, tmp_path, capsys):
    x = graded_input(np.random.default_rng(5), 2, 6, 6)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["compile", str(sdnn_file), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    assert main(["run", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz")]) == 0
    expected = run_on_ir_grid(load_net(sdnn_file), x).spikes["sigma_3"].sum(axis=(0, 1))   # latency-aligned
    assert f"output 'sigma_3' spike counts {expected.tolist()}" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz")]) == 0
    assert ("emulator vs Lava fixed_pt: identical spikes, act, residue and sigma at every step for every node"
            in capsys.readouterr().out)
    assert main(["compile", str(sdnn_file), "--target", "spinnaker", "-o", str(tmp_path / "sp")]) != 0
    assert ("node 'delta_0' field 'type': sPyNNaker's cells send binary spikes only: graded (multi-bit) messages "
            "such as sigma-delta values are not expressible; run it on loihi2 or the emulator: limit CubaLIF or "
            "Izhikevich (spiking), got LoihiDelta") in capsys.readouterr().err


def _edit(path, layer: int, key: str, value) -> None:
    with h5py.File(path, "a") as handle:
        group = handle[f"layer/{layer}"]
        if key in group:
            del group[key]
        group.create_dataset(key, data=value)


@pytest.mark.parametrize("layer, key, value, field, expected", [
    (1, "neuron/activation", b"sigmoid", "neuron/activation",
     "limit relu (netx always builds ReLU sigma-delta neurons), got sigmoid"),
    (1, "neuron/vThMant", 1 << 19, "neuron/vThMant",
     "expected an integer in [0, 524287] (vth << 12 must fit Lava's int32), got 524288"),
    (3, "bias", np.zeros(3), "bias", "limit none on a sigma output layer"),
    (2, "bias", np.full(5, 1 << 19), "bias", "expected |bias| < 2^19 (bias << 12 must fit Lava's int32), got 524288"),
])
def test_what_netx_or_lava_cannot_run_exactly_is_refused_by_field(sdnn_file, tmp_path, layer, key, value, field,
                                                                  expected):
    path = tmp_path / "edited.net"
    path.write_bytes(sdnn_file.read_bytes())
    _edit(path, layer, key, value)
    with pytest.raises(SnncError) as info:
        load_net(path)
    message = str(info.value)
    assert f"layer {layer}" in message and f"field '{field}'" in message and expected in message


def test_a_periodic_reset_is_refused_on_sigma_delta_layers(sdnn_file):
    """netx 0.6 drops reset_interval on SDNN layers with a warning; snnc refuses it at the first such layer."""
    with pytest.raises(UnsupportedError) as info:
        load_net(sdnn_file, reset_interval=5)
    assert str(info.value) == (f"node '{sdnn_file}: layer 0' field 'reset_interval': limit none with sigma-delta "
                               "(SDNN) layers (netx 0.6 ignores it there with a warning: Lava's Delta, SigmaDelta "
                               "and Sigma have no reset); load the file without it, got 5")


def test_a_hand_written_sigma_delta_conv_layer_loads_and_its_delay_is_refused(tmp_path):
    path = tmp_path / "conv.net"
    sdnn = {"type": "SDNN", "activation": "relu", "vThMant": 6}
    with h5py.File(path, "w") as handle:
        handle.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        handle.create_dataset("layer/0/shape", data=np.array([1, 4, 4]))
        for key, value in sdnn.items():
            handle.create_dataset(f"layer/0/neuron/{key}", data=value)
        handle.create_dataset("layer/1/type", (1,), "S10", [b"conv"])
        for key, value in {"shape": np.array([2, 3, 3]), "weight": np.ones((2, 1, 2, 2)), "stride": np.array([1, 1]),
                           "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": 1}.items():
            handle.create_dataset(f"layer/1/{key}", data=value)
        for key, value in sdnn.items():
            handle.create_dataset(f"layer/1/neuron/{key}", data=value)
    graph = load_net(path)
    assert graph.node("conv_1").source == "delta_0" and graph.node("sigma_delta_1").shape == (2, 3, 3)
    with h5py.File(path, "a") as handle:
        handle.create_dataset("layer/1/delay", data=np.zeros(2))
    with pytest.raises(UnsupportedError, match="layer 1' field 'delay': limit none on conv/pool layers "
                                               "\\(netx ignores them\\), got present"):
        load_net(path)


def test_export_round_trip_is_exact(sdnn_file, tmp_path):
    graph = load_net(sdnn_file)
    save_net(graph, tmp_path / "again.net")
    again = load_net(tmp_path / "again.net")
    assert format_graph(again).splitlines()[1:] == format_graph(graph).splitlines()[1:]
    with h5py.File(tmp_path / "again.net") as handle:
        assert "sigma_output" in handle["layer/3/neuron"] and handle["layer/2/bias"][()].tolist() == [40, -30, 0, 90, -5]
    x = graded_input(np.random.default_rng(6), 2, 10, 6)
    a, b = run_loihi(graph, x), run_loihi(again, x)
    assert all(np.array_equal(a.spikes[n], b.spikes[n]) for n in a.spikes)


@pytest.mark.slow
def test_netx_runs_the_exported_file_as_snnc_does(sdnn_file, tmp_path):
    graph = load_net(sdnn_file)
    save_net(graph, tmp_path / "again.net")
    x = graded_input(np.random.default_rng(7), 1, 16, 6)
    assert_equal_to_netx(graph, run_netx(tmp_path / "again.net", x[0]), run_loihi(graph, x))


def test_an_exported_delta_with_other_exponents_is_refused(sdnn_file, tmp_path):
    graph = load_net(sdnn_file)
    delta = graph.node("delta_0")
    changed = LoihiDelta(delta.name, delta.inputs, delta.shape, vth=delta.vth, spike_exp=3)
    graph = Graph(tuple(changed if n is delta else n for n in graph.nodes), graph.outputs, timing=graph.timing)
    with pytest.raises(UnsupportedError, match="node 'delta_0' field 'spike_exp': limit 6 \\(what netx loads "
                                               "with spike_exp=6: a .net file does not store it; pass that "
                                               "load option\\), got 3"):
        save_net(graph, tmp_path / "bad.net")


@pytest.mark.slow
def test_extreme_inputs_wrap_int32_as_lava_does(sdnn_file):
    """Inputs at the limit: Delta sends up to 2^25, the Dense products exceed int32 and wrap."""
    graph = load_net(sdnn_file)
    limit = (1 << 19) - 1
    x = np.where(np.random.default_rng(8).random((1, 30, 6)) < 0.5, limit, -limit)
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    for name in emulated.spikes:
        assert np.array_equal(emulated.spikes[name], lava.spikes[name]), name
    for name, states in emulated.states.items():
        for var, trace in states.items():
            assert np.array_equal(trace, lava.states[name][var]), (name, var)
