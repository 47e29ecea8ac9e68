"""The graph container: nodes in a fixed order, outputs, dt, timing; shapes and evaluation order."""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from snnc.ir.nodes import Input, Node, node_sources

Timing = Literal["zero_latency", "hop_latency"]
SCHEMA_VERSION = 1
# Physically meaningful step lengths, in seconds. 1 ns is a thousand times finer than any neuromorphic time
# step (Loihi 2 runs microsecond-scale steps, sPyNNaker 0.1 ms at least) and below any neuron or synapse time
# constant; 1000 s per step is beyond any membrane time constant (ms) and any recurrent memory a model
# could mean. Outside the range, decays computed from dt (dt / tau) and delays (delay / dt) overflow to 0,
# 1 or inf, so such a value is a unit mistake or a hostile file, never a model.
DT_RANGE_S = (1e-9, 1e3)


@dataclass(frozen=True, eq=False)
class Graph:
    """A network: ``nodes`` (names unique, any order), ``outputs`` (names to record), step length
    ``dt_s`` in seconds and ``timing`` (see ``snnc.ir.nodes``).

    ``latency_steps`` (lowered graphs): (node, L) pairs meaning the node's step ``t + L`` here equals
    step ``t`` of the zero-latency graph it was lowered from.

    ``source_names``: (IR name, name in the model file) pairs for names the frontend had to change to
    fit ``snnc.ir.names`` (the graph's own name under the key ``""``); empty when none changed.
    """

    nodes: tuple[Node, ...]
    outputs: tuple[str, ...]
    dt_s: float = 1e-3
    timing: Timing = "zero_latency"
    name: str = "network"
    latency_steps: tuple[tuple[str, int], ...] = ()
    source_names: tuple[tuple[str, str], ...] = ()

    @property
    def latency(self) -> dict[str, int]:
        """Steps each node's output lags the float model's (node name -> steps; empty for zero-latency graphs)."""
        return dict(self.latency_steps)

    @cached_property
    def by_name(self) -> dict[str, Node]:
        """Every node by its name."""
        return {n.name: n for n in self.nodes}

    def node(self, name: str) -> Node:
        """The node called ``name`` (``KeyError`` when there is none)."""
        return self.by_name[name]

    @property
    def inputs(self) -> tuple[Input, ...]:
        """The graph's input nodes (spike or graded), in node order."""
        return tuple(n for n in self.nodes if isinstance(n, Input))

    def replace_nodes(self, nodes: tuple[Node, ...] | list[Node], **changes) -> "Graph":
        """A new graph with ``nodes`` (and other fields) replaced; the input graph is untouched."""
        return dataclasses.replace(self, nodes=tuple(nodes), **changes)

    def producer(self, name: str) -> Node:
        """The node that owns the train ``name``: the node itself, or for a Flatten/Slice view the first
        node behind its chain of views that is not a view (``producer_behind_views``)."""
        return producer_behind_views(self.by_name, name)

    def consumers(self, name: str) -> list[Node]:
        """The nodes that read the train ``name`` (synapses, views, graded sums), in node order."""
        return [n for n in self.nodes if name in node_sources(n)]

    @cached_property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of every node (without batch and time); ``IRVerificationError`` naming the node
        whose shape cannot be computed (a graph that was not verified)."""
        from snnc.errors import IRVerificationError, Violation
        shapes: dict[str, tuple[int, ...]] = {}
        try:
            order = self.structural_order
        except ValueError as exc:
            raise IRVerificationError(f"graph '{self.name}'", [Violation(self.name, "edges", "acyclic through "
                                                                         "non-neuron nodes", str(exc))]) from None
        for node in order:
            try:
                shapes[node.name] = output_shape(node, shapes)
            except (KeyError, IndexError, ValueError, TypeError, AttributeError, ZeroDivisionError) as exc:
                raise IRVerificationError(f"graph '{self.name}'", [Violation(
                    getattr(node, "name", "?"), "shape", "computable output shape",
                    f"{type(exc).__name__}: {exc}")]) from None
        return shapes

    @cached_property
    def structural_order(self) -> tuple[Node, ...]:
        """Nodes ordered so every non-neuron node follows its source (neurons may close cycles)."""
        return topological_order(self.nodes, lambda n: () if n.ROLE == "neuron" else node_sources(n))

    @cached_property
    def evaluation_order(self) -> tuple[Node, ...]:
        """Zero-latency update order: a node follows every source it reads in the same step.

        Edges out of a synapse with ``delay_steps >= 1`` read the past and impose no order. Raises
        ``ValueError`` on a same-step cycle (the verifier reports it as an error first).
        """
        def same_step_sources(node: Node) -> tuple[str, ...]:
            if _delay_at_least_one(node):
                return ()
            return node_sources(node)
        return topological_order(self.nodes, same_step_sources)



def producer_behind_views(nodes: Mapping[str, Node], name: str) -> Node:
    """``nodes[name]``, or for a Flatten/Slice view the first node behind its views that is not a view;
    in a graph still being verified, a view whose source is missing is its own producer, and a cycle of
    views (a file's Flatten reading itself) ends at the view that closes it."""
    node, seen = nodes[name], {name}
    while node.ROLE == "view" and node.source in nodes and node.source not in seen:
        seen.add(node.source)
        node = nodes[node.source]
    return node


def _delay_at_least_one(node: Node) -> bool:
    delay = getattr(node, "delay_steps", 0)
    return bool(np.min(delay) >= 1) if np.size(delay) else False


def topological_order(nodes, sources_of) -> tuple[Node, ...]:
    """Nodes ordered so each follows the sources ``sources_of(node)`` names (stable: ties keep the
    given order); ``ValueError`` naming the nodes left when the remaining ones form a cycle."""
    names = {n.name for n in nodes}
    pending = {n.name: {s for s in sources_of(n) if s in names} for n in nodes}
    done: list[Node] = []
    placed: set[str] = set()
    remaining = list(nodes)
    while remaining:
        ready = [n for n in remaining if pending[n.name] <= placed]
        if not ready:
            raise ValueError("cycle: " + ", ".join(n.name for n in remaining))
        for n in ready:
            done.append(n)
            placed.add(n.name)
        remaining = [n for n in remaining if n.name not in placed]
    return tuple(done)


def output_shape(node: Node, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Shape of one node's output given its sources' shapes."""
    return node.output_shape(shapes)


def dt_in_range(dt_s) -> bool:
    """True where ``dt_s`` (seconds per step) is a real number within ``DT_RANGE_S``."""
    if not isinstance(dt_s, numbers.Real) or isinstance(dt_s, bool):
        return False
    return DT_RANGE_S[0] <= float(dt_s) <= DT_RANGE_S[1]


def dt_range_text() -> str:
    """``DT_RANGE_S`` as users read it in errors: ``[1e-09, 1000.0]`` (seconds)."""
    return f"[{DT_RANGE_S[0]!r}, {DT_RANGE_S[1]!r}]"
