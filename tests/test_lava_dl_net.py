"""lava-dl ``.net`` import/export: the imported network in snnc's emulator equals lava-dl netx running in
Lava fixed_pt bit for bit (spikes, u and v of every layer at every step); round trips; typed errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snnc.compiler.cli import main
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import (
    LAVA_TIME_STEP_OFFSET, dense_weight_format, layer_latency, load_net, save_net,
)
from snnc.arith import loihi as lq
from snnc.frontends.loader import load_model
from snnc.ir.nodes import LoihiConv, LoihiDense, LoihiLIF
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi


def write_net(path, layers: list[dict]) -> None:
    """Write ``layers`` the way slayer's ``export_hdf5`` does (type as a 1-element S10 dataset)."""
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, layer in enumerate(layers):
            sub = group.create_group(str(index))
            layer = dict(layer)
            sub.create_dataset("type", (1,), "S10", [layer.pop("type").encode()])
            for key, value in layer.items():
                if key == "neuron":
                    for nkey, nvalue in value.items():
                        sub.create_dataset(f"neuron/{nkey}", data=nvalue)
                else:
                    sub.create_dataset(key, data=value)


def cuba(rng, vth=(20, 200)) -> dict:
    return {"type": "CUBA", "iDecay": int(rng.integers(1, 4096)), "vDecay": int(rng.integers(0, 4096)),
            "vThMant": int(rng.integers(*vth)), "refDelay": 1, "gradedSpike": False}


def conv_dense_layers(seed: int) -> list[dict]:
    """input (2,6,5) -> conv 3x2 pad (0,1) -> flatten -> dense 10 with axonal delays and bias -> dense 4.
    Asymmetric shapes so a swapped H/W or channel order shows up."""
    rng = np.random.default_rng(seed)
    return [
        {"type": "input", "shape": np.array([2, 6, 5])},
        {"type": "conv", "shape": np.array([3, 4, 6]), "weight": rng.integers(-100, 120, (3, 2, 3, 2)).astype(float),
         "stride": np.array([1, 1]), "padding": np.array([0, 1]), "dilation": np.array([1, 1]), "groups": 1,
         "bias": rng.integers(-5, 20, 3), "neuron": cuba(rng)},
        {"type": "flatten", "shape": np.array([3, 4, 6])},
        {"type": "dense", "shape": np.array([10]), "weight": rng.integers(-60, 60, (10, 72)) * 2,
         "delay": rng.integers(0, 4, 10), "bias": rng.integers(-10, 30, 10), "neuron": cuba(rng)},
        {"type": "dense", "shape": np.array([4]), "weight": rng.integers(0, 90, (4, 10)), "neuron": cuba(rng)},
    ]


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "convnet.net"
    write_net(path, conv_dense_layers(0))
    return path


def test_import_golden_ir(net_file):
    graph = load_net(net_file)
    assert format_graph(graph) == GOLDEN_IR


GOLDEN_IR = """\
snnc.ir v1 graph "convnet" timing=hop_latency dt_s=0.001
  %input: Input<2x6x5> shape=(2, 6, 5)
  %conv_1: LoihiConv<3x4x6> source=%input weight_mant=i[3,2,3,2]{-100..113 #224db1fe} in_shape=(2, 6, 5) stride=(1, 1) padding=(0, 1) groups=1
  %lif_1: LoihiLIF<3x4x6> inputs=(%conv_1) shape=(3, 4, 6) du=1730 dv=1651 vth=25 bias_mant=i[72]{-3..7 #d3466d31} bias_exp=i[72]{6..6 #807dc5fe} spiking=True v_init=i[0]
  %flatten_3: Flatten<72> source=%lif_1
  %dense_3: LoihiDense<10> source=%flatten_3 weight_mant=i[10,72]{-240..236 #89eaa3b1} weight_exp=-1 num_weight_bits=7 sign_mode='mixed' delay_steps=i[10,72]{0..3 #ddb419b4}
  %lif_3: LoihiLIF<10> inputs=(%dense_3) shape=(10,) du=2908 dv=3103 vth=173 bias_mant=i[10]{-9..23 #77e9dc16} bias_exp=i[10]{6..6 #f9580ab8} spiking=True v_init=i[0]
  %dense_4: LoihiDense<4> source=%lif_3 weight_mant=i[4,10]{0..178 #184f5908} weight_exp=-1 num_weight_bits=7 sign_mode='excitatory' delay_steps=0
  %lif_4: LoihiLIF<4> inputs=(%dense_4) shape=(4,) du=4015 dv=2198 vth=123 bias_mant=i[0] bias_exp=i[6] spiking=True v_init=i[0]
  outputs %lif_4
"""


@pytest.mark.parametrize("weights, expected_exp", [
    (np.array([[3, -5], [7, 1]]), -5),       # mixed, odd: shifted by 5 bits, exponent -5
    (np.array([[2, 4], [8, 6]]), -4),        # excitatory: 255 / 8 -> 4 bits of headroom
    (np.array([[-255, -2]]), 0),             # inhibitory at the range limit
])
def test_dense_weight_format_is_exact(weights, expected_exp):
    """netx's rescaling is a precision trick: shift(W_words @ s, exp) equals W @ s exactly."""
    words, exp, bits, mode = dense_weight_format(weights, "test")
    assert exp == expected_exp
    assert np.array_equal(lq.lava_weight_words(words, mode, bits), words)   # Lava keeps every bit
    spikes = np.array([[1, 1], [1, 0], [0, 1]])
    assert np.array_equal(lq.dense_activation(spikes[:, :weights.shape[1]], words, exp),
                          spikes[:, :weights.shape[1]] @ weights.T)


def test_weights_lava_would_clip_are_refused():
    """Found while testing: an all-negative -256 reaches Lava's Dense as -254 (clipped to 8-bit magnitude,
    then truncated), silently; snnc refuses it."""
    with pytest.raises(UnsupportedError) as info:
        dense_weight_format(np.array([[-256, -2]]), "net.net: layer 1")
    assert str(info.value) == ("node 'net.net: layer 1' field 'weight': limit 8-bit integers in [-255, 255], "
                               "got values in [-256, -2]")


def test_alignment_is_stated_and_real(net_file):
    """Layer k's neurons first feel an input spike of step t at step t + k; the graph records k."""
    graph = load_net(net_file)
    assert layer_latency(graph) == {"input": 0, "lif_1": 1, "flatten_3": 1, "lif_3": 2, "lif_4": 3}
    assert LAVA_TIME_STEP_OFFSET == 1
    x = np.zeros((1, 8, 2, 6, 5), np.uint8)
    x[0, 0] = 1
    traces = run_loihi(graph, x)
    first_u = int(np.argmax(np.abs(traces.states["lif_1"]["u"][0]).reshape(8, -1).max(axis=1) > 0))
    assert first_u == layer_latency(graph)["lif_1"]


@pytest.mark.lava
def test_emulator_matches_netx_bit_for_bit(net_file):
    """The imported graph in the emulator == lava-dl netx in Lava fixed_pt: spikes, u, v of all layers."""
    try:
        from snnc.backends.lava_loihi2.compat import import_lava
        import_lava(dl=True)
    except SnncError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    graph = load_net(net_file)
    steps = 30
    x = (np.random.default_rng(1).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    lava = run_netx(net_file, x[0])
    neurons = [n.name for n in graph.nodes if isinstance(n, LoihiLIF)]
    assert len(lava) == len(neurons)
    for name, recorded in zip(neurons, lava):
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got, mine[0].reshape(steps, -1)), (name, var)
    # not vacuous: every layer spikes and the delays and biases are in use
    assert all(emulated.spikes[n].sum() > 0 for n in neurons)
    assert np.max(graph.node("dense_3").delay_steps) > 0


def run_netx(path, sample: np.ndarray) -> list[dict]:
    """lava-dl netx ``Network`` driven by a RingBuffer; per layer (steps, neurons) s_out, u, v."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer
    from lava.proc.monitor.process import Monitor

    from snnc.backends.lava_loihi2.build import from_lava_layout, to_lava_layout
    steps = sample.shape[0]
    net = netx.hdf5.Network(net_config=str(path))
    source = RingBuffer(data=np.moveaxis(to_lava_layout(sample, leading=1), 0, -1).astype(np.int32))
    source.s_out.connect(net.inp)
    monitors = []
    for layer in net.layers:
        per_layer = {}
        for var in ("s_out", "u", "v"):
            monitor = Monitor()
            monitor.probe(getattr(layer.neuron, var), steps)
            per_layer[var] = monitor
        monitors.append(per_layer)
    net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    try:
        out = []
        for per_layer in monitors:
            values = {}
            for var, monitor in per_layer.items():
                data = next(iter(monitor.get_data().values()))[var]
                values[var] = from_lava_layout(np.asarray(data), leading=1).reshape(steps, -1).astype(np.int64)
            out.append(values)
        return out
    finally:
        net.stop()


def test_round_trip_preserves_behaviour(net_file, tmp_path):
    graph = load_net(net_file)
    again = tmp_path / "again.net"
    save_net(graph, again)
    reread = load_net(again)
    x = (np.random.default_rng(2).random((2, 20, 2, 6, 5)) < 0.4).astype(np.uint8)
    a, b = run_loihi(graph, x), run_loihi(reread, x)
    for name in a.spikes:
        assert np.array_equal(a.spikes[name], b.spikes[name]), name
    for name in a.states:
        assert np.array_equal(a.states[name]["v"], b.states[name]["v"]), name


def test_pool_layer_becomes_depthwise_conv(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "pool.net"
    write_net(path, [{"type": "input", "shape": np.array([2, 4, 6])},
                     {"type": "pool", "shape": np.array([2, 2, 3]), "weight": np.full((1, 1, 2, 2, 1), 5.0),
                      "kernelSize": np.array([2, 2]), "stride": np.array([2, 2]), "padding": np.array([0, 0]),
                      "dilation": np.array([1, 1]), "neuron": cuba(rng)}])
    pool = load_net(path).node("pool_1")
    assert isinstance(pool, LoihiConv) and pool.groups == 2 and pool.weight_mant.shape == (2, 1, 2, 2)
    assert np.all(pool.weight_mant == 5)


def test_export_refuses_what_netx_cannot_hold(tmp_path):
    """snnc's own lowering uses a free weight exponent; netx derives it from 8-bit weights."""
    import snntorch as snn
    import torch

    from snnc.compiler.pipeline import compile_graph
    from snnc.frontends.torch_frontend import from_torch
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 8, bias=False),
                                snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero"))
    lowered = compile_graph(from_torch(model, (10,)), "emulator").graph
    with pytest.raises(UnsupportedError) as info:
        save_net(lowered, tmp_path / "x.net")
    assert str(info.value) == ("node 'syn_0' field 'weight_mant * 2^weight_exp': limit 8-bit integers netx can "
                               "store, got values in [-19200, 19968]")


def test_cli_compiles_a_net_file(net_file, tmp_path, capsys):
    assert main(["compile", str(net_file), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "lowered.snnc").exists()
    assert main(["export", str(tmp_path / "out"), "--format", "net", "-o", str(tmp_path / "back.net")]) == 0
    assert format_graph(load_model(tmp_path / "back.net")).splitlines()[1:] == GOLDEN_IR.splitlines()[1:]


# ------------------------------------------------------------------------------------- typed errors

def error_of(path) -> str:
    with pytest.raises(SnncError) as info:
        load_model(path)
    return str(info.value)


def test_truncated_file(net_file):
    data = net_file.read_bytes()
    net_file.write_bytes(data[: len(data) // 3])
    message = error_of(net_file)
    assert message.startswith(f"file '{net_file}': not a readable lava-dl .net (HDF5) file (")


@pytest.mark.parametrize("layer, change, expected", [
    (3, {"type": "recurrent"}, "layer 3 field 'type': expected one of input, dense, conv, pool, flatten, "
                                 "got 'recurrent'"),
    (4, {"weight": np.full((4, 11), 3)}, "layer 4 field 'weight': expected 10 input columns (size of the "
                                         "previous layer), got 11"),
    (4, {"weight": np.array([[np.nan] * 10] * 4)}, "layer 4 field 'weight': expected finite values, got NaN or inf"),
    (3, {"bias": np.arange(7)}, "layer 3 field 'bias': expected 10 (per neuron) or 10 (per channel) values, got 7"),
    (1, {"shape": np.array([3, 5, 6])}, "layer 1 field 'shape': expected (3, 4, 6) (computed from the input and "
                                        "kernel), got (3, 5, 6)"),
    (3, {"delay": np.full(10, 70)}, "layer 3 field 'delay': expected integers in [0, 62] (netx clamps larger "
                                    "ones), got values in [70, 70]"),
])
def test_malformed_fields_name_file_layer_and_field(tmp_path, layer, change, expected):
    path = changed_net(tmp_path, layer, change)
    assert error_of(path) == f"file '{path}': {expected}"


def changed_net(tmp_path, layer: int, change: dict):
    """The conv/dense test net with ``change`` applied to one layer's fields, written as bad.net."""
    layers = conv_dense_layers(0)
    layers[layer] = {**layers[layer], **change}
    path = tmp_path / "bad.net"
    write_net(path, layers)
    return path


@pytest.mark.parametrize("layer, change, expected", [
    (0, {"neuron": {"type": "CUBA", "iDecay": 1, "vDecay": 1, "vThMant": 1}},
     "node '{path}: layer 0' field 'neuron': limit an input layer without neuron (netx drives an input neuron "
     "through its bias only, never from input spikes), got CUBA"),
    (4, {"neuron": {"type": "RF_PHASE", "vThMant": 5}},
     "node '{path}: layer 4' field 'neuron/type': limit CUBA, LOIHI or SDNN (RF: not supported), got RF_PHASE"),
    (4, {"weight": np.full((4, 10), 300)},
     "node '{path}: layer 4' field 'weight': limit 8-bit integers in [-255, 255], got values in [300, 300]"),
])
def test_unsupported_features_are_refused(tmp_path, layer, change, expected):
    path = changed_net(tmp_path, layer, change)
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == expected.format(path=path)


def test_not_a_net_file(tmp_path):
    path = tmp_path / "empty.net"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("x", data=1)
    with pytest.raises(ModelFileError) as info:
        load_net(path)
    assert str(info.value) == f"file '{path}': file field 'layer': no 'layer' group (not a lava-dl .net file)"


def test_dense_with_delay_maps_to_per_row_delays(net_file):
    dense = load_net(net_file).node("dense_3")
    assert isinstance(dense, LoihiDense)
    assert np.all(dense.delay_steps == dense.delay_steps[:, :1])
