"""Per-target pass lists (explicit, ordered) and the driver that runs them, verifying after each."""
from __future__ import annotations

from dataclasses import dataclass, field

from snnc.compiler.pass_api import PassOptions, PassResult
from snnc.compiler.passes import check_design_rules, check_target_semantics, fold_synapse_bias, lower_loihi
from snnc.compiler.passes import lower_spinnaker, prune
from snnc.compiler.passes import compress_timesteps, partition_fanin, place_cores
from snnc.ir.graph import Graph
from snnc.ir.verify import verify
from snnc.targets.catalog import TARGETS, get_target

LOIHI_PASSES = (
    ("prune", prune.run),
    ("fold_synapse_bias", fold_synapse_bias.run),
    ("check_target_semantics", check_target_semantics.run),
    ("lower_loihi", lower_loihi.run),
    ("compress_timesteps", compress_timesteps.run),
    ("partition_fanin", partition_fanin.run),
    ("check_design_rules", check_design_rules.run),
    ("place_cores", place_cores.run),
)

SPINNAKER_PASSES = (
    ("prune", prune.run),
    ("fold_synapse_bias", fold_synapse_bias.run),
    ("check_target_semantics", check_target_semantics.run),
    ("lower_spinnaker", lower_spinnaker.run),
    ("partition_fanin", partition_fanin.run),
    ("check_design_rules", check_design_rules.run),
    ("place_cores", place_cores.run),
)

PIPELINES = {
    "loihi2": LOIHI_PASSES,
    "emulator": LOIHI_PASSES,
    "spinnaker": SPINNAKER_PASSES,
}
assert set(PIPELINES) == set(TARGETS), "every target in the catalog needs an explicit pass list"


@dataclass
class CompileResult:
    graph: Graph
    target: str
    reports: dict[str, dict] = field(default_factory=dict)
    steps: list[tuple[str, Graph]] = field(default_factory=list)


def pass_names(target: str) -> list[str]:
    get_target(target)
    return [name for name, _ in PIPELINES[target]]


def compile_graph(graph: Graph, target: str, on_pass=None, **choices) -> CompileResult:
    """Run the target's passes in order; verify the IR after each; keep each intermediate graph.

    ``choices`` are the optional ``PassOptions`` fields (calibration, weight_bits, weight_rounding,
    prune_sparsity, prune_method, progress); omitted ones keep the uncompressed defaults."""
    options = PassOptions(target=get_target(target), **choices)
    result = CompileResult(verify(graph), target, steps=[("input", graph)])
    for name, run in PIPELINES[target]:
        step: PassResult = run(result.graph, options)
        result.graph = verify(step.graph)
        result.reports[name] = {"changed": step.changed, **step.report}
        result.steps.append((name, result.graph))
        if on_pass:
            on_pass(name, step)
    return result
