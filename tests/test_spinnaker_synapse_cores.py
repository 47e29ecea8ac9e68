"""SpiNNaker fan-in partitioning: sPyNNaker's neuron/synapse core split.

The pass gives a population the synapse cores its planned synaptic load needs; the emulator then runs the
split arithmetic (per-core saturating ring buffers, packed 32-bit sum on the neuron core) and must equal
the combined core spike for spike and state for state; real sPyNNaker (virtual board) places exactly the
predicted cores; what the split cannot do exactly is refused by name.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from snnc.arith.spinnaker import packed_input_sum
from snnc.compiler.pipeline import compile_graph
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input, SpinnakerPopulation
from snnc.simulators.spinnaker_emulator import run_spinnaker, synapse_core_of_slices
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import SPINNAKER
from snnc.targets.spinnaker_synapse_cores import per_core_bound, slice_bounds

from conftest import random_spikes


def _wide_network(n_in=2048, n_out=300, seed=1, scale=0.05, skip=True):
    """n_in inputs densely into n_out neurons (+ a 20-input skip source): at 0.03 spikes per tick the
    first 256-neuron slice receives ~15.7k events per tick, over one core's 13k."""
    rng = np.random.default_rng(seed)
    nodes = [Input("in", (n_in,)), Dense("s", "in", rng.normal(-0.002, scale, (n_out, n_in)))]
    inputs = ["s"]
    if skip:
        nodes += [Input("aux", (20,)), Dense("s_aux", "aux", rng.normal(0.0, 0.3, (n_out, 20)), delay_steps=2)]
        inputs.append("s_aux")
    nodes.append(CubaLIF("p", tuple(inputs), (n_out,), 0.9, 0.2, 1.0, reset="zero"))
    return Graph(tuple(nodes), outputs=("p",))


def _combined(graph: Graph) -> Graph:
    return graph.replace_nodes([dataclasses.replace(n, n_synapse_cores=0) if isinstance(n, SpinnakerPopulation)
                                else n for n in graph.nodes])


def test_split_population_equals_the_combined_core_spike_for_spike_and_state_for_state():
    result = compile_graph(_wide_network(), "spinnaker")
    report = result.reports["partition_fanin"]
    assert report["changed"] and report["synapse_cores"]["p"]["n_synapse_cores"] == 2
    assert report["synapse_cores"]["p"]["per_core_events"] <= 13000 < report["synapse_cores"]["p"]["events_per_tick"]
    assert result.reports["check_design_rules"]["cores"] == {"in": 8, "aux": 1, "p": 2 * (1 + 2)}
    placed = result.reports["place_cores"]
    assert (placed["cores_used"], placed["synapse_cores"], placed["cores_used_total"]) == (2, 4, 6)
    split = result.graph
    x = {"in": random_spikes(3, (2, 40, 2048), rate=0.05), "aux": random_spikes(4, (2, 40, 20), rate=0.3)}
    expected, actual = run_spinnaker(_combined(split), x), run_spinnaker(split, x)
    assert 0 < actual.spikes["p"].sum() < actual.spikes["p"].size // 2      # neither silent nor saturated
    assert first_divergence(expected, actual) is None


def test_split_fed_by_a_sliced_population_with_delay_and_recurrence_is_exact():
    """A 2,100-neuron population (9 source slices) into 300 neurons through a delay-2 projection, plus a
    recurrent projection: k = 3 synapse cores, every slice of h and o itself dealt to them; the split run
    equals the combined one."""
    rng = np.random.default_rng(3)
    nodes = (Input("in", (64,)), Dense("s1", "in", rng.normal(0.05, 0.3, (2100, 64))),
             CubaLIF("h", ("s1",), (2100,), 0.9, 0.2, 1.0, reset="zero"),
             Dense("s2", "h", rng.normal(-0.002, 0.05, (300, 2100)), delay_steps=2),
             Dense("rec", "o", rng.normal(0.0, 0.05, (300, 300)), delay_steps=1),
             CubaLIF("o", ("s2", "rec"), (300,), 0.9, 0.2, 1.0, reset="zero"))
    result = compile_graph(Graph(nodes, outputs=("o",)), "spinnaker")
    assert result.reports["partition_fanin"]["synapse_cores"]["o"]["n_synapse_cores"] == 3
    assert result.reports["check_design_rules"]["cores"] == {"in": 1, "h": 9, "o": 2 * (1 + 3)}
    x = random_spikes(1, (2, 40, 64), rate=0.3)
    expected, actual = run_spinnaker(_combined(result.graph), x), run_spinnaker(result.graph, x)
    assert actual.spikes["o"].sum() > 0 and actual.spikes["h"].sum() > 0
    assert first_divergence(expected, actual) is None


def test_packed_sum_carries_into_the_neighbouring_neuron():
    """Two synapse cores: neuron 0's halves add to 0x10001, which wraps to 1 and carries 1 into neuron 1
    (1 + 1 = 2); neuron 2 is the low half of the next word (0x8000 + 0x8000 wraps to 0, carry into 3)."""
    core_a = np.array([[0xFFFF, 1, 0x8000, 0]])
    core_b = np.array([[2, 0, 0x8000, 7]])
    assert packed_input_sum([core_a, core_b]).tolist() == [[1, 2, 0, 8]]
    assert packed_input_sum([core_a]).tolist() == core_a.tolist()     # a combined core passes through


def test_odd_population_sizes_pad_the_last_word():
    assert packed_input_sum([np.array([[3, 4, 0xFFFF]]), np.array([[1, 1, 1]])]).tolist() == [[4, 5, 0]]


def test_split_that_could_carry_is_refused_by_name():
    """Words summing above 0xFFFF would saturate on a combined core but wrap on the neuron core."""
    graph = compile_graph(_wide_network(), "spinnaker").graph
    heavy = [dataclasses.replace(n, weight_word=np.where(np.asarray(n.weight_word) > 0, 0xFFFF, 0))
             if n.name == "s_exc" else n for n in graph.nodes]
    violations = SPINNAKER.fits(graph.replace_nodes(heavy))
    messages = [str(v) for v in violations]
    assert any(m.startswith("node 'p' field 'summed weight words[excitatory]': the neuron core's packed 32-bit "
                            "sum would carry into the neighbouring neuron instead of saturating: limit <= 0xffff "
                            "with synapse cores, got ") for m in messages), messages


def test_too_few_synapse_cores_is_a_design_rule_violation():
    """0.03 x 256 neurons x 2,068 sources = 15,882 events, less the weights that round to a zero word."""
    split = compile_graph(_wide_network(), "spinnaker").graph
    assert [str(v) for v in SPINNAKER.fits(_combined(split))] == [
        "node 'p' field 'n_synapse_cores': needs fan-in partitioning: limit >= 2 for 15686 synaptic events per "
        "tick (a core processes 13000), got 0"]


def test_one_overloaded_source_slice_is_refused():
    """One 256-neuron source slice densely into 256 neurons is up to 65,536 events (65,214 non-zero words)
    when everything spikes: no number of synapse cores helps, since a source slice goes to one core."""
    worst_case = dataclasses.replace(SPINNAKER, planning_spikes_per_tick=1.0)
    graph = compile_graph(_wide_network(n_in=512, n_out=256, skip=False), "spinnaker").graph
    assert [str(v) for v in worst_case.fits(graph)] == [
        "node 'p' field 'synaptic events per tick': one source slice alone overloads a synapse core: reduce the "
        "fan-in: limit <= 13000 per core with up to 15 synapse cores, got 65214 on one core"]


@pytest.mark.parametrize("n_slices", [1, 2, 3, 5, 8, 13])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_load_bound_covers_every_rotation_of_the_assignment(n_slices, k):
    """Whatever start index sPyNNaker rotates to, the events one synapse core receives (as the emulator
    assigns them) never exceed the planning bound; with one core or one source slice it is exact."""
    rng = np.random.default_rng(n_slices * 10 + k)
    n_source = 256 * n_slices - int(rng.integers(0, 200))
    events_per_neuron = rng.integers(0, 50, n_source).astype(float)
    counts = np.array([events_per_neuron[lo:hi].sum() for lo, hi in slice_bounds(n_source, 256)])
    bound = per_core_bound({"src": counts}, k)
    loads = []
    for start in range(k):
        cores = synapse_core_of_slices(n_source, 256, k, start)
        assert sorted(np.concatenate(list(cores.values())).tolist()) == list(range(n_source))
        loads.append(max(events_per_neuron[c].sum() for c in cores.values()))
    assert max(loads) <= bound
    if k == 1 or n_slices == 1:
        assert math.isclose(max(loads), bound)


def test_batch_copies_of_a_split_population_are_refused_on_spynnaker():
    """Side-by-side batch copies would re-slice the sources the synapse cores were planned for; NEST (no
    cores) may still run them."""
    from snnc.backends.spinnaker.network import describe
    from snnc.errors import UnsupportedError
    split = compile_graph(_wide_network(skip=False), "spinnaker").graph
    with pytest.raises(UnsupportedError) as err:
        describe(split, batch=2)
    assert str(err.value) == ("node 'p' field 'batch': limit 1 on sPyNNaker (batch copies side by side would "
                              "re-slice the sources its synapse cores were planned for), got 2")
    assert describe(split, for_nest=True, batch=2).populations[0].size == 600
    assert describe(split).sliced_inputs == ("in",)
    assert describe(_combined(split)).sliced_inputs == ()


def test_virtual_board_places_the_predicted_neuron_and_synapse_cores(tmp_path):
    pytest.importorskip("spynnaker")
    from snnc.backends.spinnaker.mapping import read_placements
    from snnc.backends.spinnaker.spynnaker_run import run_spynnaker
    result = compile_graph(_wide_network(skip=False), "spinnaker")
    _, run_dir = run_spynnaker(result.graph, random_spikes(1, (1, 5, 2048), rate=0.05), tmp_path)
    placements = read_placements(run_dir)
    predicted = result.reports["check_design_rules"]["cores"]
    assert predicted == {"in": 8, "p": 6}
    assert {label: len(cores) for label, cores in placements.items()} == predicted
    # every slice of p: one neuron core + 2 synapse cores, all on one chip (same_chip_groups)
    for lo, hi in ((0, 255), (256, 299)):
        chips = {core[:2] for (slice_, core) in placements["p"] if slice_ == (lo, hi)}
        assert len([1 for (slice_, _) in placements["p"] if slice_ == (lo, hi)]) == 3 and len(chips) == 1
