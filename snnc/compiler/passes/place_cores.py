"""Pass: place neuron groups onto cores (``snnc.compiler.placement``) and report the resources used.

Preserves: the graph (unchanged; placement is a mapping decision recorded in the report). Reports:
cores used against the lower bound (total neurons, synapse words and one-to-one axons over one core's
capacity), synapse cores beside them (SpiNNaker's split), per-core utilisation, chips needed and the messages per step if every neuron spiked once
(``snnc report`` recounts them with measured spike rates). Raises ``DesignRuleError`` when the placed
cores exceed the target's ``cores_per_chip * chips``. Targets without per-core limits: no report.
"""
from __future__ import annotations

from snnc.compiler.pass_api import LOWERED, Pass, PassOptions, PassResult
from snnc.compiler.placement import Placement, place_best
from snnc.errors import DesignRuleError, Violation
from snnc.ir.graph import Graph
from snnc.targets.footprint import CoreBudget, group_footprints


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Place the neuron groups onto cores and report the placement; the graph is returned unchanged.
    Raises ``DesignRuleError`` when the placed cores exceed the target's chips."""
    budget = CoreBudget.of(options.target)
    if not budget.limited:
        return PassResult(graph, False)
    placement, comparison = place_best(group_footprints(graph, budget.synapses), budget)
    budget = placement.budget
    if budget.cores_per_chip is not None and placement.cores_used_total > budget.cores_per_chip * budget.chips:
        raise DesignRuleError(f"graph '{graph.name}' for target '{options.target.name}'", [Violation(
            graph.name, "cores", f"{budget.cores_per_chip * budget.chips} ({budget.chips} chip(s) of "
            f"{budget.cores_per_chip})", f"{placement.cores_used_total} placed")])
    return PassResult(graph, False, {**placement.report(), **comparison})


def place_graph(graph: Graph, spec) -> Placement | None:
    """The placement this pass chooses for ``graph`` on ``spec``'s cores (None: no per-core limits)."""
    budget = CoreBudget.of(spec)
    if not budget.limited:
        return None
    return place_best(group_footprints(graph, budget.synapses), budget)[0]


PASS = Pass("place_cores", run, requires=LOWERED)
