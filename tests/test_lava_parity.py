"""Emulator == real Lava 0.10 fixed_pt: spike for spike and u, v state for state at every step.

Each network is a lowered graph built directly from LoihiDense/LoihiConv/LoihiLIF nodes with a seeded
numpy RNG; each test also asserts that the behaviour it targets (spikes, wrap, saturation, delays,
recurrence) really happened, so agreement cannot be vacuous (e.g. two silent networks).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.backends.lava_loihi2.compat import import_lava
from snnc.errors import BackendUnavailableError, SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiLIF
from snnc.quantize.loihi import V_LIMIT, VTH_MAX
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import Traces, first_divergence

try:
    import_lava()
except BackendUnavailableError as exc:  # pragma: no cover - depends on the machine
    pytest.skip(str(exc), allow_module_level=True)

from snnc.backends.lava_loihi2.build import build_lava  # noqa: E402  (after the availability check)
from snnc.backends.lava_loihi2.run import hardware_run_config, run_lava  # noqa: E402

pytestmark = pytest.mark.lava


# ------------------------------------------------------------------------------------------- helpers

def assert_lava_matches_emulator(graph: Graph, x) -> Traces:
    """Run both; fail with the first diverging node/step/neuron; return the emulator's traces."""
    expected = run_loihi(graph, x)
    actual = run_lava(graph, x)
    assert set(actual.spikes) == set(expected.spikes)
    assert set(actual.states) == set(expected.states)
    for name, arr in expected.spikes.items():
        assert actual.spikes[name].shape == arr.shape and actual.spikes[name].dtype == arr.dtype, name
    for name, state in expected.states.items():
        for key, arr in state.items():
            got = actual.states[name][key]
            assert got.shape == arr.shape and got.dtype == arr.dtype, (name, key)
    divergence = first_divergence(expected, actual)
    assert divergence is None, str(divergence)
    return expected


def poisson(rng: np.random.Generator, batch: int, steps: int, shape, rate: float) -> np.ndarray:
    return (rng.random((batch, steps, *shape)) < rate).astype(np.uint8)


def lif(name, inputs, shape, rng, vth, du=None, dv=None, bias_range=(0, 1), bias_exp_range=(0, 1)):
    """LoihiLIF with random (seeded) du, dv and per-neuron bias unless given."""
    size = int(np.prod(shape))
    return LoihiLIF(name, tuple(inputs), tuple(shape),
                    du=int(rng.integers(0, 4096)) if du is None else du,
                    dv=int(rng.integers(0, 4096)) if dv is None else dv, vth=vth,
                    bias_mant=rng.integers(*bias_range, size), bias_exp=rng.integers(*bias_exp_range, size))


def hop_graph(nodes, outputs) -> Graph:
    return Graph(tuple(nodes), tuple(outputs), timing="hop_latency")


def with_node(graph: Graph, name: str, **changes) -> Graph:
    """The graph with one node's fields replaced (to show a feature changes the result)."""
    nodes = [dataclasses.replace(n, **changes) if n.name == name else n for n in graph.nodes]
    return graph.replace_nodes(nodes)


# ---------------------------------------------------------------------------------------- networks

def mixed_sign_network(seed: int) -> tuple[Graph, np.ndarray]:
    """16 -> 12 -> 6, mixed-sign odd weights (Lava truncates them), negative weight exponents, random
    du/dv and per-neuron bias with bias_exp > 0."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (16,)),
        LoihiDense("d1", "x", rng.integers(-255, 255, (12, 16)), weight_exp=-2),
        lif("n1", ["d1"], (12,), rng, vth=int(rng.integers(20, 80)), bias_range=(-60, 90),
            bias_exp_range=(1, 4)),
        LoihiDense("d2", "n1", rng.integers(-256, 255, (6, 12)), weight_exp=-1),
        lif("n2", ["d2"], (6,), rng, vth=int(rng.integers(20, 80)), bias_range=(-40, 60),
            bias_exp_range=(1, 3)),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 3, 30, (16,), 0.3)


def excitatory_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Excitatory-only weights, positive weight exponent, 7-bit weights (Lava drops one low bit)."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (10,)),
        LoihiDense("d1", "x", rng.integers(0, 256, (8, 10)), weight_exp=2, num_weight_bits=7,
                   sign_mode="excitatory"),
        lif("n1", ["d1"], (8,), rng, vth=int(rng.integers(3000, 8000)), bias_range=(-200, 0),
            bias_exp_range=(1, 3)),
        LoihiDense("d2", "n1", rng.integers(0, 256, (4, 8)), weight_exp=3, sign_mode="excitatory"),
        lif("n2", ["d2"], (4,), rng, vth=int(rng.integers(3000, 8000))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 30, (10,), 0.4)


def current_wrap_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Dense excitatory drive with a large exponent and no current decay: u exceeds 2^23 and wraps."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (64,)),
        LoihiDense("d1", "x", rng.integers(150, 256, (5, 64)), weight_exp=3, sign_mode="excitatory"),
        lif("n1", ["d1"], (5,), rng, vth=VTH_MAX, du=0, dv=int(rng.integers(1000, 4096))),
    ]
    return hop_graph(nodes, ["n1"]), poisson(rng, 2, 30, (64,), 0.6)


def voltage_saturation_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Strong mixed drive with no voltage decay: v clips at -(2^23 - 1) (and at +(2^23 - 1), which is
    above the largest threshold, so those neurons fire)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(100, 255, (6, 32)) * np.where(np.arange(6) % 2 == 0, -1, 1)[:, None]
    nodes = [
        Input("x", (32,)),
        LoihiDense("d1", "x", weights, weight_exp=2),
        lif("n1", ["d1"], (6,), rng, vth=VTH_MAX, du=int(rng.integers(2000, 4096)), dv=0,
            bias_range=(-4000, 4000), bias_exp_range=(5, 8)),
    ]
    return hop_graph(nodes, ["n1"]), poisson(rng, 2, 30, (32,), 0.5)


def delay_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Per-synapse delays 0..7 (DelayDense) with weight_exp -1, where Lava floors every delay slot
    separately; then a uniform delay of 4 on the second layer."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (12,)),
        LoihiDense("d1", "x", rng.integers(-255, 255, (8, 12)), weight_exp=-1,
                   delay_steps=rng.integers(0, 8, (8, 12))),
        lif("n1", ["d1"], (8,), rng, vth=int(rng.integers(30, 90)), bias_range=(-20, 30),
            bias_exp_range=(1, 3)),
        LoihiDense("d2", "n1", rng.integers(-255, 255, (5, 8)), weight_exp=-1, delay_steps=4),
        lif("n2", ["d2"], (5,), rng, vth=int(rng.integers(10, 50))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 40, (12,), 0.35)


def recurrent_network(seed: int) -> tuple[Graph, np.ndarray]:
    """n1 reads the input and itself (LIF -> Dense -> same LIF); n2 adds a residual path from the
    input to n1's output layer (two synapses into one neuron group)."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (10,)),
        LoihiDense("d_in", "x", rng.integers(-120, 255, (8, 10)), weight_exp=-1),
        LoihiDense("d_rec", "n1", rng.integers(-255, 255, (8, 8)), weight_exp=0),
        lif("n1", ["d_in", "d_rec"], (8,), rng, vth=int(rng.integers(30, 80))),
        LoihiDense("d_fwd", "n1", rng.integers(-255, 255, (4, 8)), weight_exp=-1),
        LoihiDense("d_skip", "x", rng.integers(-255, 255, (4, 10)), weight_exp=-2),
        lif("n2", ["d_fwd", "d_skip"], (4,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 30, (10,), 0.3)


def conv_network(seed: int) -> tuple[Graph, np.ndarray]:
    """(2, 7, 9) input -> conv 3x3, stride 2, padding 1 -> LIF (4, 4, 5) -> flatten -> dense -> LIF 6.
    H != W so a swapped axis anywhere in the layout conversion changes the result."""
    rng = np.random.default_rng(seed)
    conv_shape = (4, 4, 5)
    nodes = [
        Input("x", (2, 7, 9)),
        LoihiConv("c1", "x", rng.integers(-40, 60, (4, 2, 3, 3)), in_shape=(2, 7, 9), stride=(2, 2),
                  padding=(1, 1)),
        lif("n1", ["c1"], conv_shape, rng, vth=int(rng.integers(40, 90)), bias_range=(-10, 20),
            bias_exp_range=(1, 3)),
        Flatten("f1", "n1"),
        LoihiDense("d2", "f1", rng.integers(-255, 255, (6, 80)), weight_exp=-1),
        lif("n2", ["d2"], (6,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 25, (2, 7, 9), 0.3)


def layout_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Layout corner cases: asymmetric stride/padding with groups=2; a dense from a flattened 3-D input
    into 3-D neurons (rows permuted) summed with a conv; a conv into 1-D neurons (transposed port)."""
    rng = np.random.default_rng(seed)
    mid = (4, 3, 5)
    nodes = [
        Input("x", (2, 6, 5)),
        LoihiConv("c1", "x", rng.integers(-30, 80, (4, 1, 2, 3)), in_shape=(2, 6, 5), stride=(2, 1),
                  padding=(0, 1), groups=2),
        Flatten("fx", "x"),
        LoihiDense("d_side", "fx", rng.integers(-255, 255, (60, 60)), weight_exp=-2),
        lif("n1", ["c1", "d_side"], mid, rng, vth=int(rng.integers(40, 90))),
        LoihiConv("c2", "n1", rng.integers(-70, 70, (3, 4, 3, 2)), in_shape=mid, stride=(1, 2)),
        lif("n2", ["c2"], (3 * 1 * 2,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 25, (2, 6, 5), 0.35)


# ------------------------------------------------------------------------------------------- tests

def test_mixed_sign_negative_exponent_and_bias():
    graph, x = mixed_sign_network(seed=1)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0
    assert np.any(graph.node("d1").weight_mant % 2 == 1), "odd mixed weights exercise Lava's truncation"


def test_excitatory_positive_exponent():
    graph, x = excitatory_network(seed=2)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0


def test_current_wraps_at_24_bits():
    graph, x = current_wrap_network(seed=3)
    traces = assert_lava_matches_emulator(graph, x)
    u = traces.states["n1"]["u"]
    assert np.any(u < 0), "excitatory-only input can make u negative only by wrapping"


def test_voltage_saturates():
    graph, x = voltage_saturation_network(seed=4)
    traces = assert_lava_matches_emulator(graph, x)
    assert np.any(traces.states["n1"]["v"] == -V_LIMIT)
    assert traces.spikes["n1"].sum() > 0


def test_per_synapse_delays_floor_each_slot():
    graph, x = delay_network(seed=5)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0
    undelayed = run_loihi(with_node(graph, "d1", delay_steps=0), x)
    assert not np.array_equal(undelayed.states["n1"]["u"], traces.states["n1"]["u"])


def test_recurrence_and_two_input_synapses():
    graph, x = recurrent_network(seed=6)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0
    no_recurrence = run_loihi(with_node(graph, "d_rec", weight_mant=np.zeros((8, 8), np.int64)), x)
    assert not np.array_equal(no_recurrence.states["n1"]["u"], traces.states["n1"]["u"])


def test_conv_stride_padding_flatten_dense():
    graph, x = conv_network(seed=7)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0
    assert traces.spikes["f1"].shape == (2, 25, 80)


def test_layout_corner_cases():
    graph, x = layout_network(seed=8)
    traces = assert_lava_matches_emulator(graph, x)
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0


def test_record_subset_of_nodes():
    graph, x = mixed_sign_network(seed=9)
    actual = run_lava(graph, x[:1], record_state=False, nodes=["n2"])
    expected = run_loihi(graph, x[:1])
    assert set(actual.spikes) == {"n2"} and actual.states == {}
    np.testing.assert_array_equal(actual.spikes["n2"], expected.spikes["n2"])


def test_delay_above_63_is_rejected_before_lava():
    graph, x = delay_network(seed=10)
    bad = with_node(graph, "d2", delay_steps=64)
    with pytest.raises(UnsupportedError, match=r"node 'd2' field 'delay_steps'.*0\.\.63.*64"):
        build_lava(bad, {"x": x[0]})


def test_unrecordable_node_is_rejected():
    graph, x = mixed_sign_network(seed=12)
    with pytest.raises(SnncError, match="cannot record node 'd1'"):
        run_lava(graph, x, nodes=["d1"])


def test_zero_latency_graph_is_rejected():
    graph, x = mixed_sign_network(seed=11)
    with pytest.raises(SnncError, match="hop_latency"):
        run_lava(dataclasses.replace(graph, timing="zero_latency"), x)


def test_hardware_config_skips_cleanly():
    try:
        config = hardware_run_config()
    except BackendUnavailableError as exc:
        assert "lava-loihi" in str(exc)
        pytest.skip(str(exc))
    assert type(config).__name__ == "Loihi2HwCfg"


NETWORKS = [mixed_sign_network, excitatory_network, current_wrap_network, voltage_saturation_network,
            delay_network, recurrent_network, conv_network, layout_network]


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("seed", range(100, 112))
@pytest.mark.parametrize("make", NETWORKS, ids=lambda f: f.__name__)
def test_randomized_sweep(make, seed):
    graph, x = make(seed)
    assert_lava_matches_emulator(graph, x)
