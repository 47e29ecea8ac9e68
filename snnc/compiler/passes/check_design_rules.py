"""Pass: check a lowered graph against the target's formats and capacity (``TargetSpec.fits``).

Changes nothing; raises ``DesignRuleError`` with every violation; reports estimated cores per group.
"""
from __future__ import annotations

from snnc.compiler.pass_api import LOWERED, Pass, PassOptions, PassResult
from snnc.errors import DesignRuleError
from snnc.ir.graph import Graph


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Return ``graph`` unchanged with the cores per group, or raise ``DesignRuleError`` listing every
    violation of ``options.target.fits`` at once."""
    violations = options.target.fits(graph)
    if violations:
        raise DesignRuleError(f"graph '{graph.name}' for target '{options.target.name}'", violations)
    cores = options.target.cores_needed(graph)
    return PassResult(graph, False, {"cores": cores, "cores_total": sum(cores.values())} if cores else {})


PASS = Pass("check_design_rules", run, requires=LOWERED)
