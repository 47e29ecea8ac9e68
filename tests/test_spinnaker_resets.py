"""Reset kinds on SpiNNaker (issue 11 item 1, issue 14 item 4): what sPyNNaker 7.4.1's IF_curr_exp runs
exactly, checked three ways - the s16.15 emulator against the float IR, the emitted PyNN network on NEST
against the emulator, and the words a virtual board writes against the lowered node.

neuron_model_lif_impl.h resets V to V_reset at a spike and sets refract_timer = T_refract =
ceil(tau_refrac / dt); while the timer is > 0 the update holds V and counts down, while the synapses still
add and decay their input (neuron_impl_standard.h). So ``zero`` is tau_refrac = 0 and ``zero_next`` (V := 0
at the step after the spike, that step's input kept in u only) is one refractory tick; NEST's iaf_psc_exp
with t_ref = 1 ms holds V for the same one step. No sPyNNaker model keeps v at a spike: ``subtract`` and
``none`` are refused with advice.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from conftest import random_spikes
from snnc.arith import spinnaker as sq
from snnc.compiler.pipeline import compile_graph
from snnc.errors import DesignRuleError
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input, ResetKind, SpinnakerPopulation
from snnc.neurons import model_of
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker
from snnc.targets.catalog import SPINNAKER


def two_layer(reset: str, seed: int = 3) -> Graph:
    """10 -> 12 (biased, no current memory) -> 5 (current memory), asymmetric weights."""
    rng = np.random.default_rng(seed)
    nodes = (Input("in", (10,)), Dense("a", "in", rng.normal(0.3, 0.5, (12, 10)), rng.normal(0.05, 0.05, 12)),
             CubaLIF("l1", ("a",), (12,), 1.0, 0.1, 1.0, reset=reset),
             Dense("b", "l1", rng.normal(0.2, 0.5, (5, 12))),
             CubaLIF("l2", ("b",), (5,), 0.3, 0.15, 0.9, reset=reset))
    return Graph(nodes, outputs=("l2",))


def emulated_on_ir_grid(lowered: Graph, x):
    return run_on_ir_grid(lowered, x, lambda g, part, record_state: run_spinnaker(g, part, record_state))


def assert_emulator_equals_float(graph: Graph, x, names: tuple[str, ...], min_spikes: int) -> None:
    """The SpiNNaker emulator of ``graph`` compiled for spinnaker equals the float IR spike for spike on
    ``names``, and the last of them fires more than ``min_spikes`` times (so equality is not vacuous)."""
    lowered = compile_graph(graph, "spinnaker").graph
    reference, emulated = run_float(graph, x), emulated_on_ir_grid(lowered, x)
    for name in names:
        np.testing.assert_array_equal(emulated.spikes[name], reference.spikes[name], err_msg=name)
    assert reference.spikes[names[-1]].sum() > min_spikes


def populations(lowered: Graph) -> list[SpinnakerPopulation]:
    return [n for n in lowered.nodes if isinstance(n, SpinnakerPopulation)]


def test_spinnaker_accepts_exactly_the_resets_if_curr_exp_runs():
    assert SPINNAKER.reset_kinds == ("zero", "zero_next")
    model = model_of(compile_graph(two_layer("zero"), "spinnaker").graph.node("l1"))
    assert model.traits.resets == (ResetKind.ZERO, ResetKind.ZERO_NEXT)


@pytest.mark.parametrize("reset,ticks", [("zero", 0), ("zero_next", 1)])
def test_reset_lowers_to_refractory_ticks(reset, ticks):
    lowered = compile_graph(two_layer(reset), "spinnaker").graph
    for node in populations(lowered):
        assert (node.tau_refrac, node.v_reset, node.v_rest) == (ticks * sq.ONE, 0, 0)
        const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
        assert const.t_refract == ticks
        assert model_of(node).reset_of(node) == reset


@pytest.mark.parametrize("reset", ["zero", "zero_next"])
def test_emulator_equals_float_ir_spike_for_spike(reset):
    graph = two_layer(reset)
    assert_emulator_equals_float(graph, random_spikes(1, (3, 40, 10), rate=0.4), ("l1", "l2"), min_spikes=30)


def test_the_refractory_tick_is_what_makes_zero_next_exact():
    """Without it (tau_refrac = 0, i.e. a 'zero' reset) the same words leave the float zero_next model."""
    graph = two_layer("zero_next")
    lowered = compile_graph(graph, "spinnaker").graph
    no_refractory = lowered.replace_nodes([dataclasses.replace(n, tau_refrac=0)
                                           if isinstance(n, SpinnakerPopulation) else n for n in lowered.nodes])
    x = random_spikes(1, (3, 40, 10), rate=0.4)
    reference = run_float(graph, x)
    assert not np.array_equal(emulated_on_ir_grid(no_refractory, x).spikes["l1"], reference.spikes["l1"])
    np.testing.assert_array_equal(emulated_on_ir_grid(lowered, x).spikes["l1"], reference.spikes["l1"])


@pytest.mark.parametrize("reset,kind", [("subtract", "snnTorch's default"), ("none", "no reset")])
def test_resets_that_keep_v_are_refused_with_what_would_work(reset, kind):
    with pytest.raises(DesignRuleError) as info:
        compile_graph(two_layer(reset), "spinnaker")
    text = str(info.value)
    assert "node 'l1' field 'reset': " in text and "node 'l2' field 'reset': " in text
    assert f"limit zero|zero_next, got {reset}" in text
    assert "retrain with snnTorch reset_mechanism='zero'" in text
    assert "SpikingJelly v_reset=0.0" in text
    assert f"or compile for loihi2 or emulator, which run '{reset}' exactly" in text


# --- peer-library neurons through the torch frontend ------------------------------------------------------

def snntorch_model(kind: str) -> nn.Module:
    """snnTorch with reset_mechanism='zero': Leaky -> 'zero', Synaptic and RLeaky -> 'zero_next'. Linear
    layers without bias in front of Synaptic (a constant input into a decaying current has no IF_curr_exp
    counterpart); RLeaky's all-to-all recurrence runs one step late, as snnTorch computes it."""
    torch.manual_seed(4)
    common = dict(beta=0.85, threshold=0.6, reset_mechanism="zero", init_hidden=True)
    if kind == "Leaky":
        hidden = snn.Leaky(**common)
    elif kind == "Synaptic":
        hidden = snn.Synaptic(alpha=0.7, **common)
    else:
        hidden = snn.RLeaky(linear_features=14, **common)
        nn.init.uniform_(hidden.recurrent.bias, -0.02, 0.05)
    first = nn.Linear(10, 14, bias=kind != "Synaptic")
    if first.bias is not None:          # small biases: the start-up ticks stay below the threshold
        nn.init.uniform_(first.bias, -0.02, 0.05)
    return nn.Sequential(first, hidden, nn.Linear(14, 4, bias=False),
                         snn.Synaptic(alpha=0.5, beta=0.9, threshold=0.5, reset_mechanism="zero", init_hidden=True))


SNNTORCH_KINDS = {"Leaky": "zero", "Synaptic": "zero_next", "RLeaky": "zero_next"}


@pytest.mark.parametrize("kind", list(SNNTORCH_KINDS))
def test_snntorch_neurons_run_on_the_spinnaker_emulator_exactly(kind):
    graph = from_torch(snntorch_model(kind), (10,))
    assert graph.node("lif_1").reset == SNNTORCH_KINDS[kind] and graph.node("lif_3").reset == "zero_next"
    assert_emulator_equals_float(graph, random_spikes(6, (3, 40, 10), rate=0.4), ("lif_1", "lif_3"),
                                 min_spikes=10)


# --- advice on every target (issue 11, item 6) -------------------------------------------------------------

def test_a_refused_comparison_names_the_peer_option_and_the_targets_that_run_it():
    """A target without '>=' (a spec variant: every registered target runs both tests today)."""
    from snnc.targets.catalog import LOIHI2
    spec = dataclasses.replace(LOIHI2, name="gt_only", comparisons=("gt",))
    graph = two_layer("zero").replace_nodes([dataclasses.replace(n, comparison="ge") if isinstance(n, CubaLIF)
                                             else n for n in two_layer("zero").nodes])
    with pytest.raises(DesignRuleError) as info:
        compile_graph(graph, "loihi2", spec=spec)
    assert ("node 'l2' field 'comparison': retrain with snnTorch or Norse neurons (spike where v > threshold), "
            "or compile for loihi2 or emulator or spinnaker, which run 'ge' exactly: limit gt, got ge"
            ) in str(info.value)


def test_a_reset_no_other_target_runs_gets_the_retrain_advice_only():
    from snnc.errors import Violation
    from snnc.targets.advice import retrain_advice, target_advice
    from snnc.targets.catalog import TARGETS
    assert retrain_advice("reset", ("subtract", "none")) == (
        "retrain with snnTorch reset_mechanism='subtract' or SpikingJelly v_reset=None or snnTorch "
        "reset_mechanism='none'")
    refused = Violation("n", "reset", "zero", "kind_nobody_runs", "rule")
    assert target_advice(refused, "spinnaker", [t.spec for t in TARGETS.values()]) == refused
    advised = target_advice(Violation("n", "reset", "zero", "none", "rule"), "spinnaker",
                            [t.spec for t in TARGETS.values()])
    assert advised.rule == "rule, or compile for loihi2 or emulator, which run 'none' exactly"
