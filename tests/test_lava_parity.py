"""Emulator == real Lava 0.10 fixed_pt: spike for spike and u, v state for state at every step.

Each network is a lowered graph built directly from LoihiDense/LoihiConv/LoihiLIF nodes with a seeded
numpy RNG; each test also asserts that the behaviour it targets (spikes, wrap, saturation, delays,
recurrence) really happened, so agreement cannot be vacuous (e.g. two silent networks).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.arith.loihi import V_LIMIT
from snnc.backends.lava_loihi2.compat import import_lava
from snnc.errors import BackendUnavailableError, SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import Traces, first_divergence
from lowered_networks import (
    NETWORKS, conv_network, current_wrap_network, delay_network, excitatory_network, layout_network,
    mixed_sign_network, recurrent_network, sparse_network, voltage_saturation_network, with_node,
)

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


def test_sparse_connections_become_lava_sparse_processes():
    graph, x = sparse_network(seed=4)
    kinds = {name: type(proc).__name__ for name, proc in build_lava(graph, {"x": x[0]}).processes.items()}
    assert kinds["d1"] == "Sparse" and kinds["d2"] == "Sparse"
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



@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("seed", range(100, 112))
@pytest.mark.parametrize("make", NETWORKS, ids=lambda f: f.__name__)
def test_randomized_sweep(make, seed):
    graph, x = make(seed)
    assert_lava_matches_emulator(graph, x)
