"""lava-dl ``.net`` import/export: the imported network in snnc's emulator equals lava-dl netx running in
Lava fixed_pt bit for bit (spikes, u and v of every layer at every step); round trips; typed errors."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from snnc.compiler.cli import main
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import (
    LAVA_TIME_STEP_OFFSET, NetOptions, dense_weight_format, layer_latency, load_net, save_net,
)
from snnc.arith import loihi as lq
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput, GradedInput, Input, LoihiConv, LoihiDense, LoihiLIF
from snnc.ir.printer import format_graph
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.loihi_emulator import run_loihi
from snnc.backends.lava_loihi2.netx import run_netx
from snnc.backends.lava_loihi2.run import run_lava


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
    """The imported graph in the emulator (both engines) == snnc's Lava backend == lava-dl netx in Lava
    fixed_pt: spikes, u, v of all layers."""
    try:
        from snnc.backends.lava_loihi2.compat import import_lava
        import_lava(dl=True)
    except SnncError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    graph = load_net(net_file)
    steps = 30
    x = (np.random.default_rng(1).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    lava = run_netx(net_file, x[0])
    neurons = [n.name for n in graph.nodes if isinstance(n, LoihiLIF)]
    assert len(lava) == len(neurons)
    for name, recorded in zip(neurons, lava):
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(steps, -1), mine[0].reshape(steps, -1)), (name, var)
    # not vacuous: every layer spikes and the delays and biases are in use
    assert all(emulated.spikes[n].sum() > 0 for n in neurons)
    assert np.max(graph.node("dense_3").delay_steps) > 0


def pool_as_depthwise_conv(path, layer: int, channels: int) -> None:
    """netx 0.6 raises NotImplementedError on a ``pool`` layer: rewrite ``layer`` (slayer's Pool export:
    one (1, 1, kh, kw) kernel for every channel) as the depthwise ``conv`` layer netx loads, the same
    synapse (``groups`` = channels, the kernel repeated per channel); everything else stays."""
    with h5py.File(path, "a") as handle:
        group = handle[f"layer/{layer}"]
        assert group["type"][0] == b"pool"
        kernel = np.asarray(group["weight"])
        del group["type"], group["weight"]
        group.create_dataset("type", (1,), "S10", [b"conv"])
        group.create_dataset("weight", data=np.repeat(kernel.reshape(1, 1, *kernel.shape[-2:]), channels, axis=0))
        group.create_dataset("groups", data=channels)


def netx_refuses_pool(path) -> str:
    """What netx 0.6 raises on a file with a ``pool`` layer (before any Lava runtime starts), given a copy
    (netx leaves the file it raised on open)."""
    import shutil

    from snnc.backends.lava_loihi2.compat import import_lava
    import_lava(dl=True)
    from lava.lib.dl import netx
    copy = shutil.copy(path, f"{path}.netx")
    with pytest.raises(NotImplementedError) as info:
        netx.hdf5.Network(net_config=str(copy))
    return str(info.value)


def test_round_trip_preserves_behaviour(net_file, tmp_path):
    graph = load_net(net_file)
    again = tmp_path / "again.net"
    save_net(graph, again)
    assert net_datasets(again) == net_datasets(net_file)      # every dataset netx reads, values equal
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


@pytest.mark.lava
def test_pool_layer_runs_on_the_emulator_as_on_snncs_lava_backend(tmp_path):
    """netx 0.6 cannot load 'pool' (NotImplementedError): snnc's extension has no netx leg, so its emulator
    (both engines) is held to snnc's Lava backend (Lava's Conv with groups = channels), s, u and v."""
    path = tmp_path / "pool.net"
    rng = np.random.default_rng(3)
    write_net(path, [{"type": "input", "shape": np.array([2, 4, 6])},
                     {"type": "pool", "shape": np.array([2, 2, 3]), "weight": np.full((1, 1, 2, 2, 1), 9.0),
                      "stride": np.array([2, 2]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                      "neuron": cuba(rng, (10, 30))},
                     {"type": "flatten", "shape": np.array([2, 2, 3])},
                     {"type": "dense", "shape": np.array([4]), "weight": rng.integers(-40, 90, (4, 12)),
                      "neuron": cuba(rng, (10, 40))}])
    graph = load_net(path)
    x = (np.random.default_rng(1).random((1, 14, 2, 4, 6)) < 0.5).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert emulated.spikes["lif_1"].sum() > 0 and emulated.spikes["lif_3"].sum() > 0


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
    assert str(info.value) == ("node 'syn_0' field 'weight_mant * 2^weight_exp': a .net layer holds its weights "
                               "without an exponent; the compiled folder runs them as they are (lowered.snnc, "
                               "run_on_lava.py, snnc run/verify): limit 8-bit integers netx can store, got values in "
                               "[-19200, 19968]")


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
    (3, {"type": "recurrent"}, "layer 3 field 'type': expected one of input, dense, dense_rec, conv, pool, flatten, "
                                 "got 'recurrent'"),
    (4, {"weight": np.full((4, 11), 3)}, "layer 4 field 'weight': expected 10 input columns (size of the "
                                         "previous layer), got 11"),
    (4, {"weight": np.array([[np.nan] * 10] * 4)}, "layer 4 field 'weight': expected finite values, got NaN or inf"),
    (3, {"bias": np.arange(7)}, "layer 3 field 'bias': expected 10 (per neuron) values, got 7"),
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
    (3, {"type": "average"},
     "node '{path}: layer 3' field 'type': netx 0.6 raises NotImplementedError('average is not implemented.'); "
     "slayer's Average block cannot export it either (its export_hdf5 reads a 'neuron' it does not have): "
     "limit a layer type netx loads (input, dense, dense_rec, conv, pool, flatten), got 'average'"),
    (4, {"type": "dense_comp"},
     "node '{path}: layer 4' field 'type': netx 0.6 cannot load it: Network._create calls "
     "self.create_complex_dense, which 0.6 does not define (AttributeError); what netx does load is a 'dense' "
     "layer with weight/real and weight/imag and an RF neuron (slayer's rf/rf_iz Dense blocks export that), "
     "which snnc loads: limit a layer type netx loads (input, dense, dense_rec, conv, pool, flatten), got "
     "'dense_comp'"),
    *[(3, {"type": kind}, f"node '{{path}}: layer 3' field 'type': netx 0.6 raises NotImplementedError('{kind} is "
           "not implemented.'): limit a layer type netx loads (input, dense, dense_rec, conv, pool, flatten), got "
           f"'{kind}'") for kind in ("concat", "convT", "unpool")],
    (4, {"neuron": {"type": "RF_PHASE", "vThMant": 5}},
     "node '{path}: layer 4' field 'weight': limit weight/real and weight/imag (netx builds RF neurons only in "
     "ComplexDense blocks), got a real weight matrix"),
    (4, {"neuron": {"type": "SRM", "vThMant": 5}},
     "node '{path}: layer 4' field 'neuron/type': limit CUBA, LOIHI, SDNN, ALIF, RF_PHASE or RF_IZHIKEVICH, got SRM"),
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


# ------------------------------------------------ input layers with neuron, layers without neuron

def bias_input_layers(seed: int) -> list[dict]:
    """input (2,4,3) with a CUBA neuron (driven through its bias, as netx feeds images) and a transform
    -> conv 2x2 -> flatten -> dense 5 without neuron (netx's non-leaky integrator)."""
    rng = np.random.default_rng(seed)
    return [
        {"type": "input", "shape": np.array([2, 4, 3]), "weight": np.array([64.0]), "bias": np.array([3.0]),
         "neuron": {"type": "CUBA", "iDecay": 1024, "vDecay": 512, "vThMant": 80, "refDelay": 1,
                    "gradedSpike": False}},
        {"type": "conv", "shape": np.array([3, 3, 2]), "weight": rng.integers(-100, 120, (3, 2, 2, 2)).astype(float),
         "stride": np.array([1, 1]), "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": 1,
         "neuron": cuba(rng, (10, 40))},
        {"type": "flatten", "shape": np.array([3, 3, 2])},
        {"type": "dense", "shape": np.array([5]), "weight": rng.integers(-60, 60, (5, 18)) * 2},
    ]


@pytest.fixture
def bias_net(tmp_path):
    path = tmp_path / "biasnet.net"
    write_net(path, bias_input_layers(5))
    return path


def static_bias(seed: int, steps: int) -> np.ndarray:
    """One image of bias values held for ``steps`` steps, batch 1."""
    image = np.random.default_rng(seed).integers(0, 300, (1, 1, 2, 4, 3))
    return np.broadcast_to(image, (1, steps, 2, 4, 3)).copy()


def test_input_neuron_and_integrator_import(bias_net):
    """netx's Input block: a LIF fed through bias_mant (bias_exp 6, no bias of its own, no hop); a dense
    layer without neuron: Lava LIF du = -1, dv = 4096, vth = 1 << 17 (netx's ``1 << 18 - 1``)."""
    graph = load_net(bias_net)
    inp, lif0, lif3 = graph.node("input"), graph.node("lif_0"), graph.node("lif_3")
    assert isinstance(inp, BiasInput) and (inp.transform_weight, inp.transform_bias) == (64, 3)
    assert lif0.inputs == () and lif0.bias_input == "input" and (lif0.du, lif0.dv, lif0.vth) == (1023, 512, 80)
    assert (lif3.du, lif3.dv, lif3.vth) == (-1, 4096, 1 << 17)
    assert layer_latency(graph) == {"input": 0, "lif_0": 0, "lif_1": 1, "flatten_3": 1, "lif_3": 2}


def test_integrator_integrates_and_never_spikes(bias_net):
    graph = load_net(bias_net)
    traces = run_loihi(graph, static_bias(1, 12))
    u, v = traces.states["lif_3"]["u"][0], traces.states["lif_3"]["v"][0]
    assert np.array_equal(u, v)                      # dv = 4096: v = u + bias (0), no memory
    activation = np.diff(u, axis=0, prepend=0)       # du = -1: u only ever adds its input (<< 6)
    assert np.all(activation % 64 == 0) and np.any(activation)
    assert traces.spikes["lif_3"].sum() == 0


@pytest.mark.lava
def test_bias_input_net_matches_netx_and_lava_bit_for_bit(bias_net):
    """netx (bias_mant set on its input neuron), snnc's emulator (both engines) and snnc's Lava backend:
    s, u, v of every layer equal at every step."""
    graph = load_net(bias_net)
    steps = 12
    x = static_bias(1, steps)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(bias_net, None, bias=x[0, 0], steps=steps), steps)
    assert all(emulated.spikes[n].sum() > 0 for n in ("lif_0", "lif_1"))
    assert np.any(emulated.states["lif_3"]["u"])


def assert_same_traces(a, b) -> None:
    for name in a.spikes:
        assert np.array_equal(a.spikes[name], b.spikes[name]), name
    for name in a.states:
        for var in a.states[name]:
            assert np.array_equal(a.states[name][var], b.states[name][var]), (name, var)


def assert_matches_netx(graph, emulated, netx_layers: list[dict], steps: int) -> None:
    neurons = [n.name for n in graph.nodes if isinstance(n, LoihiLIF)]
    assert len(netx_layers) == len(neurons)
    for name, recorded in zip(neurons, netx_layers):
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(steps, -1), mine[0].reshape(steps, -1)), (name, var)


def test_bias_input_round_trip_is_exact(bias_net, tmp_path):
    """Every dataset of the file comes back: the input transform, the input neuron, and no neuron group
    on the dense layer (netx's integrator is written as a layer without neuron)."""
    again = tmp_path / "again.net"
    save_net(load_net(bias_net), again)
    assert net_datasets(again) == net_datasets(bias_net)
    assert format_graph(load_net(again)).splitlines()[1:] == format_graph(load_net(bias_net)).splitlines()[1:]


@pytest.mark.lava
def test_a_biased_layer_without_neuron_matches_netx_and_round_trips_without_neuron(tmp_path):
    """netx hands a dense layer's bias to the integrator it builds for a layer without neuron: snnc's
    emulator equals netx, and export writes the layer back without neuron (before: with an explicit one)."""
    layers = bias_input_layers(5)
    layers[3]["bias"] = np.array([-300, -2, 0, 5, 400])
    path = tmp_path / "biased.net"
    write_net(path, layers)
    graph = load_net(path)
    steps = 8
    x = static_bias(1, steps)
    emulated = run_loihi(graph, x)
    assert_matches_netx(graph, emulated, run_netx(path, None, bias=x[0, 0], steps=steps), steps)
    save_net(graph, tmp_path / "again.net")
    assert net_datasets(tmp_path / "again.net") == net_datasets(path)


def net_datasets(path) -> dict[str, list]:
    """Every dataset of a .net file that netx reads, by name, as nested lists (the informational
    inChannels/outChannels the exporter adds left out)."""
    values = {}
    with h5py.File(path) as handle:
        def keep(name, item):
            if isinstance(item, h5py.Dataset) and not name.endswith(("inChannels", "outChannels")):
                value = item[()]
                values[name] = value.tolist() if hasattr(value, "tolist") else value
        handle.visititems(keep)
    return values


@pytest.mark.parametrize("values, expected", [
    (np.full((1, 3, 2, 4, 3), 0.5), "input 'input' field 'bias': limit integers (the input neurons' bias_mant), "
                                    "got non-integer values"),
    (np.full((1, 3, 2, 4, 3), 1 << 24), "input 'input' field 'bias': limit |x| < 2^24 (bias_mant << 6 fits "
                                        "Lava's int32), got values in [16777216, 16777216]"),
])
def test_bias_values_are_checked(bias_net, values, expected):
    with pytest.raises(SnncError) as info:
        run_loihi(load_net(bias_net), values)
    assert str(info.value) == expected


def test_lava_backend_refuses_a_bias_that_changes(bias_net):
    x = static_bias(1, 4)
    x[0, 2, 1, 0, 0] += 1
    with pytest.raises(UnsupportedError) as info:
        run_lava(load_net(bias_net), x)
    assert str(info.value) == ("node 'lif_0' field 'bias_input 'input'': limit the same values at every step "
                               "(the Lava backend sets bias_mant once, before the run), got a change at step 2")


def test_conv_without_neuron_is_refused(tmp_path):
    layers = bias_input_layers(5)
    del layers[1]["neuron"]
    path = tmp_path / "bad.net"
    write_net(path, layers)
    assert error_of(path) == (f"file '{path}': layer 1 field 'neuron': expected a neuron group (netx requires "
                              "one on conv layers), got missing")


@pytest.mark.lava
def test_cli_verifies_a_bias_input_net(bias_net, tmp_path, capsys):
    """``snnc run``/``verify --input`` take the bias values as ``x`` (samples, steps, *shape), as netx takes
    pixels; the integrator compiles for the emulator target only (Loihi's registers cannot hold it)."""
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=static_bias(2, 6))
    out = tmp_path / "out"
    assert main(["compile", str(bias_net), "--target", "loihi2", "-o", str(tmp_path / "hw")]) == 2
    assert ("node 'lif_3' field 'du/dv/vth': limit decays in [0, 4095], vth < 2^17 (netx's integrator for a "
            "layer without neuron runs in Lava's simulation and snnc's emulator target only), got "
            "-1/4096/131072") in capsys.readouterr().err
    assert main(["compile", str(bias_net), "--target", "emulator", "-o", str(out)]) == 0
    assert main(["run", str(out), "--input", str(inputs)]) == 0
    assert main(["verify", str(out), "--input", str(inputs)]) == 0
    assert "emulator vs Lava fixed_pt: identical spikes, u and v at every step for every node" in \
        capsys.readouterr().out


# ------------------------------------------------ netx load options: reset_interval/offset, num_layers

@pytest.mark.lava
@pytest.mark.parametrize("options", [dict(reset_interval=5, reset_offset=2), dict(num_layers=4, reset_interval=3)])
def test_netx_options_match_netx_bit_for_bit(net_file, options):
    """netx's reset_interval/reset_offset (Lava LIFReset per layer, offset + 1 + k) and num_layers: netx,
    snnc's emulator (both engines) and snnc's Lava backend give equal s, u, v at every step."""
    graph = load_net(net_file, **options)
    steps = 14
    x = (np.random.default_rng(1).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(net_file, x[0], **options), steps)
    plain = run_loihi(load_net(net_file, num_layers=options.get("num_layers")), x)
    assert not np.array_equal(plain.states["lif_1"]["v"], emulated.states["lif_1"]["v"])   # the reset acts


@pytest.mark.lava
def test_an_input_neuron_takes_the_first_reset_offset_as_in_netx(bias_net, tmp_path):
    """netx counts an input layer with neuron among its reset offsets (its LIFReset gets offset + 1): the
    bias-driven net with netx's reset options equals netx, both engines and snnc's Lava backend, and
    exports back with the same options."""
    options = NetOptions(reset_interval=4, reset_offset=1)
    graph = load_net(bias_net, options=options)
    assert [(n.name, n.reset_phase) for n in graph.nodes if isinstance(n, LoihiLIF)] == \
        [("lif_0", 1), ("lif_1", 2), ("lif_3", 3)]
    steps = 12
    x = static_bias(1, steps)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(bias_net, None, bias=x[0, 0], steps=steps, reset_interval=4,
                                                  reset_offset=1), steps)
    assert not np.array_equal(emulated.states["lif_0"]["v"], run_loihi(load_net(bias_net), x).states["lif_0"]["v"])
    save_net(graph, tmp_path / "again.net", options)
    assert net_datasets(tmp_path / "again.net") == net_datasets(bias_net)


@pytest.mark.lava
@pytest.mark.parametrize("options, graded", [(dict(skip_layers=2, reset_interval=3), False),
                                             (dict(input_message_bits=6), True)])
def test_skip_layers_and_input_message_bits_match_netx(net_file, options, graded):
    """netx's skip_layers (the input conv layer dropped: the input is what the next layer reads, flat before
    a dense layer; reset offsets count from the first kept layer) and input_message_bits (graded integer
    input into the first synapse): netx, snnc's emulator and snnc's Lava backend equal in s, u, v."""
    graph = load_net(net_file, **options)
    inp = graph.inputs[0]
    assert isinstance(inp, GradedInput) == graded
    assert inp.shape == ((2, 6, 5) if graded else (72,)) and graph.latency["lif_4"] == (3 if graded else 2)
    steps = 12
    rng = np.random.default_rng(1)
    x = rng.integers(-31, 32, (1, steps, *inp.shape)) if graded else \
        (rng.random((1, steps, *inp.shape)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(net_file, x[0], **options), steps)
    assert all(emulated.spikes[n].sum() > 0 for n in ("lif_3", "lif_4"))


def test_skipped_layers_decide_the_input_and_the_reset_offsets(net_file, bias_net):
    """netx overwrites input_message_bits with each dropped layer's output width (0 after a CUBA layer)."""
    graph = load_net(net_file, skip_layers=2, input_message_bits=6, reset_interval=4, reset_offset=1)
    assert [(n.name, type(n).__name__) for n in graph.nodes] == [
        ("input", "Input"), ("dense_3", "LoihiDense"), ("lif_3", "LoihiLIF"), ("dense_4", "LoihiDense"),
        ("lif_4", "LoihiLIF")]
    assert [graph.node(n).reset_phase for n in ("lif_3", "lif_4")] == [1, 2]
    skipped_input_neuron = load_net(bias_net, skip_layers=1)     # its bias-driven input neuron dropped
    assert type(skipped_input_neuron.inputs[0]) is Input and skipped_input_neuron.inputs[0].shape == (2, 4, 3)


@pytest.mark.parametrize("options, expected", [
    (dict(skip_layers=5), "node 'netx options' field 'skip_layers': limit fewer than the 5 layers loaded (netx "
                          "then builds no layer at all), got 5"),
    (dict(input_message_bits=25), "node 'netx options' field 'input_message_bits': limit 0 (spikes) to 24 (a "
                                  "Loihi 2 graded spike), got 25"),
])
def test_bad_skip_or_input_width_options(net_file, options, expected):
    with pytest.raises(UnsupportedError) as info:
        load_net(net_file, **options)
    assert str(info.value) == expected


def assert_round_trip_needs_option(graph: Graph, path, option: dict, refusal: str) -> None:
    """A graph loaded with a netx load option the .net file does not store: export without the option is
    refused with ``refusal``; with it, the file loads back (with the option) to the same IR text."""
    with pytest.raises(UnsupportedError) as info:
        save_net(graph, path)
    assert str(info.value) == refusal
    save_net(graph, path, NetOptions(**option))
    again = load_net(path, **option)
    assert format_graph(again).splitlines()[1:] == format_graph(graph).splitlines()[1:]


def test_a_graded_input_exports_only_with_its_width(net_file, tmp_path):
    """A .net file does not store input_message_bits: export takes the options that give the input back."""
    graph = load_net(net_file, input_message_bits=6)
    assert_round_trip_needs_option(graph, tmp_path / "x.net", {"input_message_bits": 6}, (
        "node 'input' field 'input_message_bits': limit 6 (what loading the file needs for this graded input: a "
        ".net file does not store it), got 0"))
    with pytest.raises(UnsupportedError, match="field 'skip_layers': limit 0 \\(the file holds the kept layers "
                                               "only\\), got 1"):
        save_net(graph, tmp_path / "y.net", NetOptions(input_message_bits=6, skip_layers=1))


def test_cli_takes_skip_layers_and_input_message_bits(net_file, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(net_file), "--target", "loihi2", "--skip-layers", "2", "-o", str(out)]) == 0
    assert load_model(out / "lowered.snnc").inputs[0].shape == (72,)
    assert main(["compile", str(net_file), "--target", "emulator", "--input-message-bits", "6",
                 "-o", str(tmp_path / "graded")]) == 0
    assert isinstance(load_model(tmp_path / "graded" / "lowered.snnc").inputs[0], GradedInput)


def test_cli_runs_a_graded_input_on_its_per_step_integers(net_file, tmp_path, capsys):
    """A .net graded input (--input-message-bits; likewise one after --skip-layers dropped a sigma-delta
    layer) is not a --compress-timesteps static input: run and verify take the integers of 'x' per step."""
    out = tmp_path / "graded"
    assert main(["compile", str(net_file), "--target", "emulator", "--input-message-bits", "6", "-o", str(out)]) == 0
    x = np.random.default_rng(1).integers(-31, 32, (2, 12, 2, 6, 5))
    np.savez(tmp_path / "x.npz", x=x, y=np.array([0, 1]))
    graph = load_net(net_file, input_message_bits=6)
    counts = run_on_ir_grid(graph, x).spikes["lif_4"].sum(axis=(0, 1))
    assert counts.sum() > 0
    capsys.readouterr()
    assert main(["run", str(out), "--input", str(tmp_path / "x.npz")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"emulate: 2 samples x 12 steps; output 'lif_4' spike counts {counts.tolist()}"
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz")]) == 0


def test_reset_phases_follow_netx(net_file):
    graph = load_net(net_file, reset_interval=5, reset_offset=2)
    assert [(n.name, n.reset_interval, n.reset_phase) for n in graph.nodes if isinstance(n, LoihiLIF)] == \
        [("lif_1", 5, 2), ("lif_3", 5, 3), ("lif_4", 5, 4)]
    x = np.zeros((1, 12, 2, 6, 5), np.uint8)
    x[0, 0] = 1     # arrives at lif_1 in step 1 only
    u = run_loihi(graph, x).states["lif_1"]["u"][0].reshape(12, -1)
    kept = run_loihi(load_net(net_file), x).states["lif_1"]["u"][0].reshape(12, -1)
    # step 2 (Lava time step 3 == reset_offset + 1) starts from u = 0 and nothing arrives: u stays 0
    assert np.any(u[1]) and np.array_equal(u[1], kept[1])
    assert np.any(kept[2]) and not np.any(u[2:])


def test_num_layers_loads_a_prefix(net_file):
    graph = load_net(net_file, num_layers=2)
    assert [n.name for n in graph.nodes] == ["input", "conv_1", "lif_1"] and graph.outputs == ("lif_1",)


@pytest.mark.parametrize("options, expected", [
    (dict(num_layers=0), "node 'netx options' field 'num_layers': limit >= 1 (None: all layers), got 0"),
    (dict(reset_interval=0), "node 'netx options' field 'reset_interval': limit >= 1 (None: no reset), got 0"),
])
def test_bad_netx_options(net_file, options, expected):
    with pytest.raises(UnsupportedError) as info:
        load_net(net_file, **options)
    assert str(info.value) == expected


def test_reset_round_trip_needs_the_options(net_file, tmp_path):
    """A .net file does not store the reset: export takes the options that reproduce it on loading."""
    options = NetOptions(reset_interval=4, reset_offset=1)
    graph = load_net(net_file, options=options)
    with pytest.raises(UnsupportedError) as info:
        save_net(graph, tmp_path / "x.net")
    assert str(info.value) == ("node 'lif_1' field 'reset_interval/reset_phase': limit 0/0 (what netx loads with "
                               "reset_interval=None, reset_offset=0: a .net file does not store resets), got 4/1")
    save_net(graph, tmp_path / "x.net", options)
    again = load_net(tmp_path / "x.net", options=options)
    assert format_graph(again).splitlines()[1:] == format_graph(graph).splitlines()[1:]


def test_cli_takes_netx_options(net_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(net_file), "--target", "loihi2", "--num-layers", "4", "--reset-interval", "3",
                 "-o", str(out)]) == 0
    lowered = load_model(out / "lowered.snnc")
    assert [(n.name, n.reset_interval, n.reset_phase) for n in lowered.nodes if isinstance(n, LoihiLIF)] == \
        [("lif_1", 3, 0), ("lif_3", 3, 1)]


# ------------------------------------------------------------------------------------ conv dilation

def dilated_layers(seed: int) -> list[dict]:
    """input (2,7,6) -> conv 3x2 kernel, dilation (2, 3), padding (0, 1): output (3, 3, 5)."""
    rng = np.random.default_rng(seed)
    return [
        {"type": "input", "shape": np.array([2, 7, 6])},
        {"type": "conv", "shape": np.array([3, 3, 5]), "weight": rng.integers(-100, 120, (3, 2, 3, 2)).astype(float),
         "stride": np.array([1, 1]), "padding": np.array([0, 1]), "dilation": np.array([2, 3]), "groups": 1,
         "neuron": cuba(rng, (10, 40))},
    ]


@pytest.mark.lava
def test_dilated_conv_matches_netx_and_round_trips(tmp_path):
    path = tmp_path / "dilated.net"
    write_net(path, dilated_layers(7))
    graph = load_net(path)
    assert graph.node("conv_1").dilation == (2, 3)
    steps = 10
    x = (np.random.default_rng(1).random((1, steps, 2, 7, 6)) < 0.5).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(path, x[0]), steps)
    assert emulated.spikes["lif_1"].sum() > 0
    save_net(graph, tmp_path / "again.net")
    assert net_datasets(tmp_path / "again.net") == net_datasets(path)


def test_dilated_kernel_inserts_zeros():
    conv = LoihiConv("c", "x", np.arange(1, 5).reshape(1, 1, 2, 2), in_shape=(1, 5, 5), dilation=(2, 3))
    assert conv.dilated_kernel()[0, 0].tolist() == [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]]


# ------------------------------------------------------------------------------ dense_rec (recurrent)

def recurrent_layers(seed: int, ff_low: int = -40) -> list[dict]:
    """input 12 -> dense_rec 6 (mixed feed-forward and recurrent weights, bias) -> dense 3 without neuron.
    The weights reach -240 unshifted: netx's format then has num_weight_bits 9."""
    rng = np.random.default_rng(seed)
    return [
        {"type": "input", "shape": np.array([12])},
        {"type": "dense_rec", "shape": np.array([6]), "weight": rng.integers(ff_low, 90, (6, 12)),
         "weight_rec": rng.integers(-120, 40, (6, 6)) * 2, "bias": rng.integers(-3, 10, 6),
         "neuron": cuba(rng, (20, 60))},
        {"type": "dense", "shape": np.array([3]), "weight": rng.integers(-50, 100, (3, 6))},
    ]


@pytest.mark.lava
def test_dense_rec_matches_netx_and_round_trips(tmp_path):
    """netx's RecurrentDense: the layer's own spikes return through a second Dense one step later."""
    path = tmp_path / "rec.net"
    write_net(path, recurrent_layers(11))
    graph = load_net(path)
    assert graph.node("lif_1").inputs == ("dense_1", "dense_1_rec")
    assert graph.node("dense_1_rec").source == "lif_1" and graph.node("dense_1").num_weight_bits == 9
    steps = 16
    x = (np.random.default_rng(1).random((1, steps, 12)) < 0.5).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(path, x[0]), steps)
    assert emulated.spikes["lif_1"].sum() > 0
    save_net(graph, tmp_path / "again.net")
    assert net_datasets(tmp_path / "again.net") == net_datasets(path)


def test_dense_rec_weights_lava_would_truncate_are_refused(tmp_path):
    """netx sizes num_weight_bits for [weight | weight_rec] together; Lava's Dense infers each matrix's
    sign mode on its own, so all-positive feed-forward weights beside mixed recurrent ones lose bits."""
    path = tmp_path / "rec.net"
    write_net(path, recurrent_layers(11, ff_low=0))
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == (f"node '{path}: layer 1' field 'weight': limit weights Lava keeps unchanged in "
                               "sign mode excitatory with netx's joint num_weight_bits 9 (weight and weight_rec "
                               "are rescaled together), got 72 weights would change")


def test_graded_cuba_spike_is_refused_saying_why(tmp_path):
    layers = conv_dense_layers(0)
    layers[4]["neuron"] = {**layers[4]["neuron"], "gradedSpike": True}
    path = tmp_path / "graded.net"
    write_net(path, layers)
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == (f"node '{path}: layer 4' field 'neuron/gradedSpike': slayer's graded CUBA spike "
                               "carries v, but netx 0.6 ignores gradedSpike and runs Lava's binary LIF (train with binary "
                               "spikes, or set gradedSpike False to deploy netx's binary LIF): limit "
                               "False (binary spikes), got True")


def test_message_bits_are_refused_because_netx_cannot_run_them(tmp_path):
    """netx 0.6 hands Lava its NetDict as num_message_bits (messageBits is not one of its array keys):
    its run fails with "ValueError: setting an array element with a sequence" (seen by hand; not run here:
    the failed run leaves Lava's runtime processes alive, which hangs the test process at exit). snnc
    refuses the field naming that."""
    layers = conv_dense_layers(0)
    layers[3]["neuron"] = {**layers[3]["neuron"], "messageBits": 8}
    path = tmp_path / "bits.net"
    write_net(path, layers)
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == (f"node '{path}: layer 3' field 'neuron/messageBits': netx 0.6 cannot load "
                               "messageBits on a CUBA neuron (its NetDict passes the dataset on as a group): "
                               "limit absent (binary spikes), got 8")


# ------------------------------------------------------------------------------ conv bias per neuron

def per_neuron_bias_net(tmp_path, bias: np.ndarray):
    """The conv/dense test net with layer 1 (conv, output (3, 4, 6)) given ``bias`` as written."""
    return changed_net(tmp_path, 1, {"bias": bias})


@pytest.mark.lava
def test_per_neuron_conv_bias_in_netx_order_matches_netx_and_lava_and_round_trips(tmp_path):
    """netx loads a per-neuron conv bias only as an array in Lava's (W, H, C) order (the layer shape
    reversed); snnc reads it in that order: emulator, Lava backend and netx equal; export writes it back."""
    bias_whc = np.random.default_rng(4).integers(-20, 30, (6, 4, 3))
    path = per_neuron_bias_net(tmp_path, bias_whc)
    graph = load_net(path)
    assert np.array_equal(graph.node("lif_1").bias_mant, bias_whc.transpose(2, 1, 0).reshape(-1))
    steps = 12
    x = (np.random.default_rng(1).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(path, x[0]), steps)
    save_net(graph, tmp_path / "again.net")
    assert net_datasets(tmp_path / "again.net") == net_datasets(path)


@pytest.mark.parametrize("shape", [(72,), (3, 4, 6)])
def test_a_conv_bias_netx_cannot_load_is_refused_saying_what_it_takes(tmp_path, shape):
    """A flat per-neuron bias (netx: RuntimeError) or one in snnc's (C, H, W) order (netx: a broadcast
    ValueError) has no netx meaning: refused rather than read in an order snnc would have to guess."""
    path = per_neuron_bias_net(tmp_path, np.zeros(shape, np.int64))
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == (
        f"node '{path}: layer 1' field 'bias': netx 0.6 loads a conv bias of C values or a per-neuron array in "
        "Lava's (W, H, C) order only (a flat per-neuron bias raises its RuntimeError 'Bias of shape ... could not "
        "be broadcast'); write a per-neuron bias b[c, y, x] as b.transpose(2, 1, 0): limit 3 values (one per "
        "channel) or an array of shape (6, 4, 3) (one per neuron in netx's (W, H, C) order, the layer's shape "
        f"reversed), got shape {shape}")


def test_export_writes_a_per_neuron_conv_bias_in_netx_order(net_file, tmp_path):
    """A lowered conv group whose bias varies within a channel is written as the (W, H, C) array netx reads."""
    graph = load_net(net_file)
    lif = graph.node("lif_1")
    bias = np.arange(72, dtype=np.int64)
    changed = dataclasses.replace(lif, bias_mant=bias)
    graph = Graph(tuple(changed if n is lif else n for n in graph.nodes), graph.outputs, timing=graph.timing,
                  latency_steps=tuple(sorted(graph.latency.items())))
    save_net(graph, tmp_path / "x.net")
    with h5py.File(tmp_path / "x.net") as handle:
        assert np.array_equal(handle["layer/1/bias"][()], bias.reshape(3, 4, 6).transpose(2, 1, 0))
    assert np.array_equal(load_net(tmp_path / "x.net").node("lif_1").bias_mant, bias)
