"""Per-target pass lists (explicit, ordered) and the driver that runs them, verifying after each.

A target's pipeline is ``SHARED_PREFIX`` followed by the pass names its registry entry lists
(``snnc.targets.catalog.TARGETS``), each resolved in ``PASSES``, the registry of every pass by its
declared name; ``PIPELINES`` is computed from the target registry, never written out per target.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from snnc.compiler.pass_api import Pass, PassResult, option_names
from snnc.compiler.passes import check_design_rules, check_target_semantics, fold_synapse_bias, lower_loihi
from snnc.compiler.passes import lower_spinnaker, prune
from snnc.compiler.passes import compress_timesteps, partition_fanin, place_cores
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.verify import verify
from snnc.targets.catalog import TARGETS, registered_target
from snnc.targets.target import TargetSpec

PASSES: dict[str, Pass] = {p.name: p for p in (
    prune.PASS, fold_synapse_bias.PASS, check_target_semantics.PASS, lower_loihi.PASS, lower_spinnaker.PASS,
    compress_timesteps.PASS, partition_fanin.PASS, check_design_rules.PASS, place_cores.PASS,
)}

# Every target starts on the float IR the same way; its own passes (lowering onwards) follow.
SHARED_PREFIX = ("prune", "fold_synapse_bias", "check_target_semantics")


def pipeline(target: str) -> tuple[Pass, ...]:
    """The ordered passes of the registered target ``target``."""
    return tuple(PASSES[name] for name in SHARED_PREFIX + registered_target(target).passes)


PIPELINES: dict[str, tuple[Pass, ...]] = {name: pipeline(name) for name in TARGETS}
CHOICES = frozenset(option_names(PASSES.values()))


@dataclass
class CompileResult:
    """A compile's outcome: the final ``graph``, the ``target``, each pass's report by pass name and the graph after
    each pass (``steps``, in order)."""

    graph: Graph
    target: str
    reports: dict[str, dict] = field(default_factory=dict)
    steps: list[tuple[str, Graph]] = field(default_factory=list)


def pass_names(target: str) -> list[str]:
    """The names of ``target``'s passes, in order (`snnc passes --target`)."""
    return [p.name for p in pipeline(target)]


def compile_graph(graph: Graph, target: str, on_pass=None, spec: TargetSpec | None = None,
                  **choices) -> CompileResult:
    """Run the target's passes in order, each checked against what it requires and ensures; verify the IR
    after each; keep each intermediate graph.

    ``choices`` are fields of the passes' options (calibration, weight_bits, weight_rounding,
    prune_sparsity, prune_method, progress, timestep_compression); omitted ones keep the uncompressed
    defaults. ``spec`` replaces the target's limits (e.g. a smaller core for a test). A pass's
    ``SnncError`` is re-raised with the same type and fields, its message prefixed by the pass's name and
    the passes that ran before it (``SnncError.in_pass``)."""
    unknown = sorted(set(choices) - CHOICES)
    if unknown:
        raise TypeError(f"compile_graph() got unknown choices {unknown}: choose from {sorted(CHOICES)}")
    spec = spec or registered_target(target).spec
    result = CompileResult(verify(graph), target, steps=[("input", graph)])
    for step_pass in pipeline(target):
        step = _run_pass(step_pass, result, step_pass.options_from(spec, choices))
        result.graph = step.graph
        result.reports[step_pass.name] = {"changed": step.changed, **step.report}
        result.steps.append((step_pass.name, result.graph))
        if on_pass:
            on_pass(step_pass.name, step)
    return result


def _run_pass(step_pass: Pass, result: CompileResult, options) -> PassResult:
    """One pass with its contract checked and its output verified; an error names the pass and the passes
    before it."""
    try:
        step = step_pass(result.graph, options)
        return PassResult(verify(step.graph), step.changed, step.report)
    except SnncError as error:
        raise error.in_pass(step_pass.name, tuple(result.reports)) from error
