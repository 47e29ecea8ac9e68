"""The layerwise engine (compiled LIF scan) equals the numpy step engine bit for bit.

The step engine is the direct transcription of Lava's per-step models and is itself checked against
real Lava in test_lava_parity.py; here every acyclic parity network and random variations of it must
give identical spikes, u and v in both engines.
"""
from __future__ import annotations

import numpy as np
import pytest

from lowered_networks import NETWORKS, recurrent_network
from snnc.errors import SnncError
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.loihi_layerwise import layerwise_order
from snnc.simulators.traces import first_divergence

ACYCLIC = [make for make in NETWORKS if layerwise_order(make(0)[0]) is not None]


def test_most_parity_networks_are_acyclic():
    assert len(ACYCLIC) == len(NETWORKS) - 1


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("make", ACYCLIC, ids=lambda f: f.__name__)
def test_layerwise_equals_step_engine(make, seed):
    graph, x = make(seed)
    step = run_loihi(graph, x, engine="step")
    fast = run_loihi(graph, x, engine="layerwise")
    assert first_divergence(step, fast) is None
    assert sum(int(s.sum()) for n, s in step.spikes.items() if n not in {i.name for i in graph.inputs}) > 0


@pytest.mark.parametrize("make", ACYCLIC, ids=lambda f: f.__name__)
def test_layerwise_spikes_without_state_recording(make):
    graph, x = make(7)
    step = run_loihi(graph, x, engine="step", record_state=False)
    fast = run_loihi(graph, x, engine="layerwise", record_state=False)
    assert fast.states == {} and first_divergence(step, fast) is None


def test_auto_engine_falls_back_to_steps_for_recurrence():
    graph, x = recurrent_network(1)
    assert layerwise_order(graph) is None
    assert first_divergence(run_loihi(graph, x, engine="step"), run_loihi(graph, x)) is None


def test_emulator_refuses_float_graph():
    from test_ir import small_graph
    with pytest.raises(SnncError, match="runs lowered \\(hop_latency\\) graphs; 'small' is zero_latency"):
        run_loihi(small_graph(), np.zeros((1, 3, 3), np.uint8))


def test_input_must_be_binary():
    graph, x = ACYCLIC[0](0)
    with pytest.raises(SnncError, match="spikes must be 0 or 1, got values in \\[0, 2\\]"):
        run_loihi(graph, x * 2)
