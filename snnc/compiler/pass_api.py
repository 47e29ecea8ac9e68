"""What every pass declares, takes and returns (torch.fx ``PassBase``: requires -> call -> ensures; xDSL
``ModulePass``: a pass's options are its own dataclass fields).

A pass is one ``Pass``: its ``name``; ``run(graph, options) -> PassResult``, which never mutates its input;
``options``, the dataclass ``run`` takes (``PassOptions``, the target's limits, or a subclass that adds the
pass's own fields, e.g. ``PruneOptions``); and the graph state it ``requires`` before and ``ensures``
after, each a ``Condition`` on a ``GraphState`` (timing, node domain). Calling a ``Pass`` checks both
around ``run``; a violation is a ``PassContractError`` naming the graph, the field, the pass and the state
found. ``snnc.compiler.pipeline.compile_graph`` runs a target's passes this way.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from snnc.errors import NodeError
from snnc.ir.graph import Graph
from snnc.ir.nodes import SpinnakerProjection
from snnc.neurons import is_neuron_in
from snnc.targets.target import TargetSpec

TIMINGS = ("zero_latency", "hop_latency")
# "float": the frontends' float IR; "lowered-<arithmetic>": integer nodes of one target arithmetic
# (``TargetSpec.arithmetic``).
DOMAINS = ("float", "lowered-loihi", "lowered-spinnaker")


@dataclass(frozen=True)
class PassOptions:
    """What every pass gets: the limits of the target it compiles for. A pass with choices of its own
    takes a subclass that adds them as fields (every default reproduces the uncompressed compile)."""

    target: TargetSpec


@dataclass(frozen=True)
class PassResult:
    """The new graph, whether anything changed, and a JSON-able report for `snnc report`/`compile`."""

    graph: Graph
    changed: bool
    report: dict = field(default_factory=dict)


class PassContractError(NodeError):
    """A graph is not in the state a pass requires (or a pass left it in a state it does not ensure)."""


@dataclass(frozen=True)
class GraphState:
    """The timing of a graph (``TIMINGS``) and the domain of its nodes (``DOMAINS``)."""

    timing: str
    domain: str

    @classmethod
    def of(cls, graph: Graph) -> "GraphState":
        """The state of ``graph`` (the verifier keeps float nodes zero-latency and lowered ones hop-latency)."""
        if graph.timing == "zero_latency":
            return cls(graph.timing, "float")
        spinnaker = any(is_neuron_in(n, "spinnaker") or isinstance(n, SpinnakerProjection) for n in graph.nodes)
        return cls(graph.timing, "lowered-spinnaker" if spinnaker else "lowered-loihi")


@dataclass(frozen=True)
class Condition:
    """Accepted timings and node domains. None: any state (in ``requires``), the state the pass was given
    (in ``ensures``)."""

    timing: tuple[str, ...] | None = None
    domain: tuple[str, ...] | None = None

    def allowed(self, before: GraphState | None = None) -> dict[str, tuple[str, ...] | None]:
        """Accepted values per ``GraphState`` field; None fields stay None, or become ``before``'s value."""
        out = {"timing": self.timing, "domain": self.domain}
        if before is not None:
            out = {name: values or (getattr(before, name),) for name, values in out.items()}
        return out


ANY = Condition()
FLOAT = Condition(timing=("zero_latency",), domain=("float",))
LOWERED = Condition(timing=("hop_latency",), domain=("lowered-loihi", "lowered-spinnaker"))
FIELD_NAMES = {"timing": "timing", "domain": "node domain"}


@dataclass(frozen=True)
class Pass:
    """A named compiler step and its contract (module docstring). Passes are verbs (``partition_fanin``)."""

    name: str
    run: Callable[[Graph, PassOptions], PassResult]
    options: type[PassOptions] = PassOptions
    requires: Condition = ANY
    ensures: Condition = ANY

    def __call__(self, graph: Graph, options: PassOptions) -> PassResult:
        """``run`` with the contract checked: refuses a graph it does not require, then checks its result."""
        before = self.check_requires(graph)
        result = self.run(graph, options)
        self.check_ensures(before, result.graph)
        return result

    def check_requires(self, graph: Graph) -> GraphState:
        """The state of ``graph``; a ``PassContractError`` when this pass does not accept it."""
        state = GraphState.of(graph)
        self._check(graph.name, state, self.requires.allowed(), "required")
        return state

    def check_ensures(self, before: GraphState, graph: Graph) -> None:
        """A ``PassContractError`` when the pass's output is not in the state it ensures."""
        self._check(graph.name, GraphState.of(graph), self.ensures.allowed(before), "ensured")

    def _check(self, graph_name: str, state: GraphState, allowed: dict, verb: str) -> None:
        for attr, values in allowed.items():
            actual = getattr(state, attr)
            if values is not None and actual not in values:
                raise PassContractError(graph_name, FIELD_NAMES[attr],
                                        f"{'|'.join(values)} ({verb} by pass '{self.name}')", actual)

    def options_from(self, spec: TargetSpec, choices: dict) -> PassOptions:
        """This pass's options: the target's limits plus the ``choices`` that name one of its fields."""
        own = {f.name: choices[f.name] for f in fields(self.options) if f.name in choices and f.name != "target"}
        return self.options(target=spec, **own)


def option_names(passes) -> set[str]:
    """Every choice some pass of ``passes`` takes (the fields of their options, ``target`` aside)."""
    return {f.name for p in passes for f in fields(p.options)} - {"target"}
