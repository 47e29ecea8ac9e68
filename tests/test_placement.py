"""Core placement: every neuron placed once, every core within its budget, cores near the lower bound,
fewer messages than a naive placement, and message counts equal to a per-neuron brute-force count."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import place_cores
from snnc.compiler.pipeline import PIPELINES, compile_graph
from snnc.compiler.placement import place, place_best
from snnc.errors import DesignRuleError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.ir.verify import verify
from snnc.targets.catalog import LOIHI2
from snnc.targets.footprint import CoreBudget, group_footprints

SMALL_CORES = dataclasses.replace(LOIHI2, neurons_per_core=64, synapses_per_core=6000,
                                  input_axons_per_core=400, cores_per_chip=None)


def mlp(sizes, seed: int = 0, density: float = 1.0) -> Graph:
    """Float dense LIF chain; ``density`` < 1 zeroes weights at random (sparse synapse counts)."""
    rng = np.random.default_rng(seed)
    nodes: list = [Input("x", (sizes[0],))]
    source = "x"
    for i, (fan_in, size) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = rng.standard_normal((size, fan_in)) / np.sqrt(fan_in)
        weight *= rng.random(weight.shape) < density
        nodes += [Dense(f"d{i}", source, weight),
                  CubaLIF(f"n{i}", (f"d{i}",), (size,), 1.0, 0.2, 1.0, reset="zero")]
        source = f"n{i}"
    return Graph(tuple(nodes), (source,), name="mlp")


def lowered(graph: Graph, spec) -> Graph:
    for step in PIPELINES["loihi2"]:
        if step.name != "place_cores":
            graph = verify(step(graph, step.options(target=spec)).graph)
    return graph


def check_valid(placement, footprints) -> None:
    budget = placement.budget
    for fp in footprints:
        covered = np.zeros(fp.neurons, int)
        for _core, start, stop in placement.tiles[fp.name]:
            covered[start:stop] += 1
        assert np.all(covered == 1), fp.name
    for core in placement.cores:
        assert core.neurons <= budget.neurons and core.synapses <= budget.synapses
        assert core.axons <= budget.axons
        assert core.tiles, "no empty cores"


def brute_force_messages(placement, rates) -> dict[str, float]:
    """Per producer neuron: the set of cores that must receive its spike, counted one by one."""
    out = {"inter_core": 0.0, "intra_core": 0.0, "from_host": 0.0}
    edges = [e for fp in placement.footprints.values() for e in fp.edges]
    producers = {e.producer for e in edges}
    for producer in producers:
        size = max(e.stop for e in edges if e.producer == producer)
        own = placement.core_of(producer) if producer in placement.footprints else None
        for j in range(size):
            targets = set()
            for e in edges:
                if e.producer == producer and e.start <= j < e.stop:
                    cores = placement.core_of(e.group)
                    targets |= {int(cores[j - e.start])} if e.one_to_one else set(cores.tolist())
            rate = rates[producer][j]
            if own is None:
                out["from_host"] += rate * len(targets)
            else:
                out["intra_core"] += rate * (own[j] in targets)
                out["inter_core"] += rate * (len(targets) - (own[j] in targets))
    return out


def test_digits_model_fits_one_core():
    result = compile_graph(load_model("examples/digits/digits_snn.pt"), "loihi2")
    report = result.reports["place_cores"]
    assert report["cores_used"] == report["lower_bound"] == 1
    assert report["cores"] == [{"core": 0, "tiles": [["lif_1", 0, 128], ["lif_3", 0, 10]], "neurons": 138,
                                "synapses": 9310, "axons": 192}]
    assert report["messages_per_step_if_every_neuron_spikes"] == {
        "inter_core": 0.0, "intra_core": 128.0, "from_host": 64.0}


@pytest.mark.parametrize("sizes,density", [((300, 200, 150, 10), 1.0), ((120, 500, 40, 260, 30), 0.5),
                                           ((64, 900, 900, 10), 0.1)])
def test_placement_is_valid_and_near_the_lower_bound(sizes, density):
    graph = lowered(mlp(sizes, density=density), SMALL_CORES)
    footprints = group_footprints(graph)
    placement, comparison = place_best(footprints, CoreBudget.of(SMALL_CORES))
    check_valid(placement, footprints)
    assert len(placement.cores) <= 1.1 * placement.lower_bound, (len(placement.cores), placement.lower_bound)
    naive = comparison["strategies"]["naive"]
    assert len(placement.cores) <= naive["cores"]
    assert placement.messages_per_step()["inter_core"] <= naive["inter_core_messages_if_every_neuron_spikes"]


def test_affinity_beats_the_naive_placement():
    graph = lowered(mlp((120, 500, 40, 260, 30), density=0.5), SMALL_CORES)
    footprints = group_footprints(graph)
    budget = CoreBudget.of(SMALL_CORES)
    (ours, comparison), naive = place_best(footprints, budget), place(footprints, budget, "naive")
    check_valid(naive, footprints)
    assert comparison["strategy"] == "compact"
    assert (len(ours.cores), len(naive.cores)) == (16, 17)
    assert ours.messages_per_step()["inter_core"] < naive.messages_per_step()["inter_core"]
    assert comparison["strategies"]["fill"]["cores"] == 15, "the densest packing costs more traffic"


def test_message_counts_equal_a_brute_force_count_with_partial_sums():
    """Fan-in partitioning makes one-to-one graded edges; random per-neuron rates."""
    spec = dataclasses.replace(SMALL_CORES, input_axons_per_core=128)
    graph = lowered(mlp((300, 90, 20)), spec)
    assert any("__psum" in n.name for n in graph.nodes)
    footprints = group_footprints(graph)
    placement = place(footprints, CoreBudget.of(spec))
    check_valid(placement, footprints)
    rng = np.random.default_rng(3)
    sizes = {"x": 300, **{fp.name: fp.neurons for fp in footprints}}
    rates = {name: rng.random(size) for name, size in sizes.items()}
    counted, expected = placement.messages_per_step(rates), brute_force_messages(placement, rates)
    assert counted.keys() == expected.keys()
    for key in expected:
        assert counted[key] == pytest.approx(expected[key], rel=1e-12), key
    assert expected["inter_core"] > 0 and expected["intra_core"] > 0


def test_too_many_cores_for_the_chips_is_a_design_rule_error():
    spec = dataclasses.replace(SMALL_CORES, cores_per_chip=4, chips=2)
    graph = lowered(mlp((300, 200, 150, 10)), dataclasses.replace(spec, cores_per_chip=None))
    with pytest.raises(DesignRuleError) as err:
        place_cores.run(graph, PassOptions(target=spec))
    cores = len(place(group_footprints(graph), CoreBudget.of(spec)).cores)
    assert str(err.value) == ("1 design-rule violation(s) in graph 'mlp' for target 'loihi2':\n"
                              f"  - node 'mlp' field 'cores': limit 8 (2 chip(s) of 4), got {cores} placed")


def test_a_neuron_that_fits_no_core_is_named():
    spec = dataclasses.replace(SMALL_CORES, synapses_per_core=100, input_axons_per_core=1000)
    graph = lowered(mlp((300, 20)), dataclasses.replace(spec, synapses_per_core=None))
    footprints = group_footprints(graph)
    with pytest.raises(DesignRuleError) as err:
        place(footprints, CoreBudget.of(spec))
    widest = footprints[0].max_row_synapses
    assert widest > 100
    assert str(err.value) == ("1 design-rule violation(s) in group 'n0':\n  - node 'n0' field 'fan-in': one "
                              "neuron does not fit a core: limit 1000 input axons and 100 synapses per core, "
                              f"got 300 axons, {widest} synapses for one neuron")


def test_targets_without_core_limits_are_not_placed():
    result = compile_graph(load_model("examples/digits/digits_snn.pt"), "emulator")
    assert result.reports["place_cores"] == {"changed": False}


def test_spinnaker_populations_are_placed_by_its_spec():
    """Generic over targets: the SpiNNaker spec (256 neurons per core, no axon/synapse budget in it,
    groups_share_cores False as in sPyNNaker) places each population on cores of its own."""
    result = compile_graph(mlp((64, 600, 10)), "spinnaker")
    report = result.reports["place_cores"]
    assert (report["cores_used"], report["lower_bound"]) == (4, 4)
    assert [c["tiles"] for c in report["cores"]] == [[["n0", 0, 256]], [["n0", 256, 512]],
                                                     [["n0", 512, 600]], [["n1", 0, 10]]]


def test_a_neuron_core_and_its_synapse_cores_share_a_chip():
    """5 slices of a population split with 10 synapse cores each: 55 cores would fit 4 chips of 16, but
    every 11-core group must sit on one chip (sPyNNaker's same-chip groups), so 5 chips."""
    from snnc.targets.catalog import SPINNAKER
    from snnc.targets.footprint import GroupFootprint
    footprint = GroupFootprint("p", 5 * 256, np.ones(5 * 256, np.int64), synapse_cores_per_tile=10)
    placement = place([footprint], CoreBudget.of(SPINNAKER))
    report = placement.report()
    assert (report["cores_used"], report["synapse_cores"], report["cores_used_total"]) == (5, 50, 55)
    assert report["chips_needed"] == 5
    small = GroupFootprint("q", 5 * 256, np.ones(5 * 256, np.int64), synapse_cores_per_tile=2)
    assert place([small], CoreBudget.of(SPINNAKER)).report()["chips_needed"] == 1     # 5 x 3 = 15 <= 16
