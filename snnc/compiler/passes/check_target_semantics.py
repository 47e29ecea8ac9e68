"""Pass: refuse float-IR features the target cannot execute exactly (all violations at once).

Preserves everything (changes nothing); raises ``DesignRuleError`` listing each node, field, supported
values and the value found, e.g. a subtract reset on a target whose neurons only reset to zero; a refused
reset kind or comparison also names the peer-library option to retrain with (the spec's rule) and the
registered targets that run it exactly (``snnc.targets.advice``).
"""
from __future__ import annotations

from snnc.compiler.pass_api import ANY, Pass, PassOptions, PassResult
from snnc.errors import DesignRuleError
from snnc.ir.graph import Graph
from snnc.targets.advice import target_advice
from snnc.targets.catalog import TARGETS


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Return ``graph`` unchanged, or raise ``DesignRuleError`` listing every float-IR feature the target
    cannot execute exactly."""
    violations = [target_advice(v, options.target.name, (t.spec for t in TARGETS.values()))
                  for v in options.target.semantic_violations(graph)]
    if violations:
        raise DesignRuleError(f"graph '{graph.name}' for target '{options.target.name}'", violations)
    return PassResult(graph, False)


# Any state: an already lowered import (lava-dl .net) has no float neurons to check.
PASS = Pass("check_target_semantics", run, requires=ANY)
