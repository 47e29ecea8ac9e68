"""The neuron-model unit (snnc.neurons): one registry answers for every neuron node type, targets fail
closed on node types they do not know, reset/comparison literals are enums, and the float and lowered
LIF classes are named in few production files."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from conftest import ROOT
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import check_design_rules
from snnc.errors import DesignRuleError, Violation
from snnc.ir.graph import Graph
from snnc.ir.nodes import (
    NODE_TYPES, LI, Comparison, CubaLIF, Input, IRNode, LoihiAdaptiveLIF, LoihiDelta, LoihiDense, LoihiGradedRelay,
    LoihiIzhikevich, LoihiLIF, LoihiRF, LoihiRFIzhikevich, LoihiSigma, LoihiSigmaDelta, ResetKind, SpinnakerIzhikevich,
    SpinnakerPopulation,
)
from snnc.ir.printer import format_graph
from snnc.ir.verify import verify
from snnc.neurons import float_models_lowering_to, is_neuron_in, lowered_neuron_types, model_of, models
from snnc.targets.catalog import get_target

MAX_PRODUCTION_FILES = 7


def production_files_naming(word: str) -> list[str]:
    """Files under snnc/ outside ``snnc/frontends`` whose text contains ``word`` (what ``grep -rl word snnc``
    lists). A frontend builds the nodes of the format it reads, so naming the class it creates is its job (one
    per peer library: snnTorch, SpikingJelly, Norse, ONNX, NIR, .net); the code after the IR asks the unit."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "snnc").rglob("*.py")
                  if "frontends" not in p.parts and word in p.read_text())


@pytest.mark.parametrize("name", ["CubaLIF", "LoihiLIF"])
def test_the_float_and_lowered_lif_are_named_in_at_most_seven_files_after_the_frontends(name):
    files = production_files_naming(name)
    assert len(files) <= MAX_PRODUCTION_FILES, files


def test_every_neuron_node_type_has_exactly_one_model_and_models_state_their_traits():
    neuron_types = [cls for cls in NODE_TYPES.values() if cls.ROLE == "neuron" and cls.__module__.startswith("snnc.")]
    assert {m.node_type for m in models()} == set(neuron_types)
    assert [(m.name, m.traits.output, m.traits.arithmetic) for m in models()] == [
        ("CubaLIF", "spikes", "float"), ("LI", "membrane", "float"), ("LoihiLIF", "spikes", "loihi"),
        ("SpinnakerPopulation", "spikes", "spinnaker"), ("AdaptiveLIF", "spikes", "float"),
        ("LoihiAdaptiveLIF", "spikes", "loihi"), ("LoihiGradedRelay", "graded", "loihi"),
        ("Izhikevich", "spikes", "float"), ("SpinnakerIzhikevich", "spikes", "spinnaker"),
        ("LoihiIzhikevich", "spikes", "loihi"), ("Resonator", "spikes", "float"),
        ("ResonatorIzhikevich", "spikes", "float"), ("LoihiRF", "spikes", "loihi"), ("LoihiRFIzhikevich", "spikes", "loihi"),
        ("DeltaEncoder", "graded", "float"), ("SigmaDelta", "graded", "float"), ("SigmaDecoder", "graded", "float"),
        ("LoihiDelta", "graded", "loihi"), ("LoihiSigmaDelta", "graded", "loihi"), ("LoihiSigma", "graded", "loihi")]
    assert [(m.name, m.loihi_lowering) for m in float_models_lowering_to("loihi")] == [
        ("CubaLIF", "lif"), ("LI", "lif"), ("AdaptiveLIF", "lif"), ("Izhikevich", "izhikevich"),
        ("Resonator", "resonator"), ("ResonatorIzhikevich", "resonator"), ("DeltaEncoder", "sigma_delta"), ("SigmaDelta", "sigma_delta"), ("SigmaDecoder", "sigma_delta")]
    assert lowered_neuron_types("loihi") == (LoihiLIF, LoihiAdaptiveLIF, LoihiGradedRelay, LoihiIzhikevich, LoihiRF,
                                             LoihiRFIzhikevich, LoihiDelta, LoihiSigmaDelta, LoihiSigma)
    assert lowered_neuron_types("spinnaker") == (SpinnakerPopulation, SpinnakerIzhikevich)
    assert model_of(LoihiLIF("n", ("d",), (2,), du=1, dv=2, vth=3)).lava_process(
        LoihiLIF("n", ("d",), (2,), du=1, dv=2, vth=3)).name == "LIF"
    assert model_of(SpinnakerPopulation("p", ("s",), (2,), 1, 1, 1, 1, 1)).pynn_cell == "IF_curr_exp"


def test_the_float_step_of_the_model_is_the_reference_semantics():
    """subtract reset: v keeps its value at the spike and loses the threshold at the next update."""
    node = CubaLIF("n", ("d",), (1,), current_decay=1.0, voltage_decay=0.0, threshold=1.0,
                   reset=ResetKind.SUBTRACT, comparison=Comparison.GE)
    model = model_of(node)
    state = {var: np.zeros((1, 3, 1)) for var in model.state_variables}
    out = np.zeros((1, 3, 1))
    for t, current in enumerate((0.6, 0.4, 0.5)):
        out[:, t] = model.float_step(node, t, np.array([[current]]), out, state)
    assert out.reshape(-1).tolist() == [0.0, 1.0, 0.0]          # 1.0 >= 1.0 fires ("ge")
    assert state["v"].reshape(-1).tolist() == pytest.approx([0.6, 1.0, 0.5])


def test_reset_and_comparison_enums_equal_their_strings_and_print_as_strings():
    assert [k.value for k in ResetKind] == ["zero", "zero_next", "subtract", "none"]
    assert [c.value for c in Comparison] == ["gt", "ge"]
    assert ResetKind.ZERO_NEXT == "zero_next" and "ge" == Comparison.GE
    assert (repr(ResetKind.SUBTRACT), str(ResetKind.SUBTRACT), f"{Comparison.GT}") == ("'subtract'", "subtract", "gt")
    assert json.dumps({"reset": ResetKind.NONE}) == '{"reset": "none"}'
    with_enum = CubaLIF("n", ("d",), (2,), 1.0, 0.5, 1.0, reset=ResetKind.ZERO, comparison=Comparison.GE)
    with_text = CubaLIF("n", ("d",), (2,), 1.0, 0.5, 1.0, reset="zero", comparison="ge")
    graphs = [Graph((Input("x", (2,)), _dense("d", "x", 2, 2), n), ("n",)) for n in (with_enum, with_text)]
    assert format_graph(graphs[0]) == format_graph(graphs[1])


def test_the_verifier_names_the_allowed_reset_kinds_from_the_enum():
    node = CubaLIF("n", ("d",), (2,), 1.0, 0.5, 1.0, reset="hard")
    with pytest.raises(Exception, match=r"node 'n' field 'reset': limit zero\|zero_next\|subtract\|none, "
                                        r"got 'hard'"):
        verify(Graph((Input("x", (2,)), _dense("d", "x", 2, 2), node), ("n",)))


@dataclass(frozen=True, eq=False)
class DummyLoweredNeuron(IRNode):
    """A lowered neuron node type no target knows and no model describes (for the fail-closed rule)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]

    ROLE = "neuron"
    DOMAIN = "lowered"

    def upstream(self):
        return self.inputs

    def emits_spikes(self):
        return True


@pytest.fixture
def dummy_graph():
    try:
        graph = Graph((Input("x", (3,)), LoihiDense("d", "x", np.ones((2, 3), np.int64), 0),
                       DummyLoweredNeuron("n", ("d",), (2,))), ("n",), timing="hop_latency")
        yield verify(graph)
    finally:
        NODE_TYPES.pop("DummyLoweredNeuron", None)


@pytest.mark.parametrize("target", ["loihi2", "emulator", "spinnaker"])
def test_a_lowered_node_type_the_target_does_not_know_is_a_design_rule_violation(target, dummy_graph):
    spec = get_target(target)
    unknown = [v for v in spec.fits(dummy_graph) if v.actual == "DummyLoweredNeuron"]
    assert len(unknown) == 1 and (unknown[0].node, unknown[0].field) == ("n", "type")
    assert unknown[0].limit.startswith(f"node types {target} knows (")
    with pytest.raises(DesignRuleError, match="field 'type'.*got DummyLoweredNeuron"):
        check_design_rules.run(dummy_graph, PassOptions(target=spec))


def test_the_core_count_includes_neuron_types_it_has_never_seen(dummy_graph):
    assert get_target("loihi2").cores_needed(dummy_graph) == {"n": 1}


def test_known_lowered_types_pass_the_same_rule():
    graph = Graph((Input("x", (3,)), LoihiDense("d", "x", np.full((2, 3), 2, np.int64), 0),
                   LoihiLIF("n", ("d",), (2,), du=0, dv=0, vth=10)), ("n",), timing="hop_latency")
    assert get_target("loihi2").fits(graph) == []


def test_the_arithmetic_a_neuron_computes_in_comes_from_its_registered_model(dummy_graph):
    population = SpinnakerPopulation("p", ("d",), (3,), tau_m=100, cm=1, tau_syn_e=5, tau_syn_i=5, v_thresh=10)
    lif = LoihiLIF("n", ("d",), (2,), du=0, dv=0, vth=10)
    assert [is_neuron_in(population, a) for a in ("float", "loihi", "spinnaker")] == [False, False, True]
    assert [is_neuron_in(lif, a) for a in ("float", "loihi", "spinnaker")] == [False, True, False]
    assert not is_neuron_in(dummy_graph.node("n"), "loihi") and not is_neuron_in(dummy_graph.node("d"), "loihi")


def test_the_spinnaker_emulator_state_is_the_population_model_s_kernel():
    """The s16.15 kernel lives in the unit; the emulator records exactly the states the kernel reports."""
    from snnc.simulators.spinnaker_emulator import STATE_KEYS
    one = 1 << 15      # s16.15 words: tau_m 20 ms, cm 1 nF, threshold 10 mV, v0 = 0, 20 and 5 mV
    population = SpinnakerPopulation("p", ("d",), (3,), tau_m=20 * one, cm=one, tau_syn_e=5 * one,
                                     tau_syn_i=5 * one, v_thresh=10 * one, v_reset=-3 * one,
                                     v_init=np.array([0, 20 * one, 5 * one]))
    state = model_of(population).emulator_state(population, batch=2)
    fired = state.update()
    recorded = state.recorded()
    assert set(recorded) == set(STATE_KEYS)
    assert fired.tolist() == [[False, True, False]] * 2 == (recorded["v_pre"] >= 10 * one).tolist()
    assert recorded["v"].tolist() == np.where(fired, -3 * one, recorded["v_pre"]).tolist()


def test_a_readout_on_spinnaker_is_refused_by_its_model_traits():
    graph = Graph((Input("x", (2,)), _dense("d", "x", 2, 2), LI("r", ("d",), (2,), 0.5, 0.5)), ("r",))
    assert get_target("spinnaker").semantic_violations(graph) == [Violation(
        "r", "type", "CubaLIF or Izhikevich (spiking)", "LI",
        "IF_curr_exp has no non-spiking readout; end the model with a spiking layer")]


def _dense(name, source, n_out, n_in):
    from snnc.ir.nodes import Dense
    return Dense(name, source, np.full((n_out, n_in), 0.5))
