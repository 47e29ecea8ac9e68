"""What every pass takes and returns."""
from __future__ import annotations

from dataclasses import dataclass, field

from snnc.ir.graph import Graph
from snnc.targets.spec import TargetSpec


@dataclass(frozen=True)
class PassOptions:
    target: TargetSpec


@dataclass(frozen=True)
class PassResult:
    """The new graph, whether anything changed, and a JSON-able report for `snnc report`/`compile`."""

    graph: Graph
    changed: bool
    report: dict = field(default_factory=dict)
