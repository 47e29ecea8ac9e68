"""Pipeline alignment from zero-latency (snnTorch) timing to hop-latency (Lava) timing.

On Lava every synapse delivers one step late. Give every spiking node a latency L (input: 0) so that its
hop-latency step ``t + L`` equals its zero-latency step ``t``. A synapse src -> dst with zero-latency delay
``d`` then needs the hop-latency delay ``L(dst) - L(src) - 1 + d`` (>= 0), which pads shorter paths
(residual branches) and keeps recurrent edges (d = 1, src = dst) at hop delay 0. L is never negative.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph, topological_order
from snnc.ir.nodes import Flatten, Input, node_sources


def hop_latencies(graph: Graph) -> dict[str, int]:
    """Latency L of every spiking or readout node (synapses excluded)."""
    latency: dict[str, int] = {}
    for node in latency_order(graph):
        if isinstance(node, Input):
            latency[node.name] = 0
        elif isinstance(node, Flatten):
            latency[node.name] = latency[node.source]
        elif node.ROLE == "neuron":
            latency[node.name] = _neuron_latency(graph, node, latency)
    return latency


def latency_order(graph: Graph) -> tuple:
    """Nodes ordered so each follows its sources, except along an edge that closes a cycle (which must
    carry a delay): unlike the zero-latency evaluation order, a delayed feed-forward edge still orders
    its nodes, so a neuron's latency is computed after its sources' latencies."""
    readers: dict[str, list[str]] = {}
    for node in graph.nodes:
        for source in node_sources(node):
            readers.setdefault(source, []).append(node.name)

    def reaches(start: str, target: str) -> bool:
        seen, frontier = {start}, [start]
        while frontier:
            for reader in readers.get(frontier.pop(), []):
                if reader == target:
                    return True
                if reader not in seen:
                    seen.add(reader)
                    frontier.append(reader)
        return False

    def ordering_sources(node) -> tuple[str, ...]:
        if np.min(getattr(node, "delay_steps", 0)) < 1:
            return node_sources(node)
        return tuple(s for s in node_sources(node) if not reaches(node.name, s))
    return topological_order(graph.nodes, ordering_sources)


def _neuron_latency(graph: Graph, node, latency: dict[str, int]) -> int:
    candidates = []
    for syn_name in node.inputs:
        syn = graph.node(syn_name)
        if syn.source in latency:
            candidates.append(latency[syn.source] + 1 - int(syn.delay_steps))
    if not candidates:
        raise UnsupportedError(node.name, "inputs", "at least one feed-forward input",
                               "only recurrent inputs")
    # A zero-latency delay >= 2 is partly absorbed by the hop (L may not be negative: a node cannot run
    # ahead of its input); the rest becomes hop delay.
    return max(0, *candidates)


def hop_delays(graph: Graph, latency: dict[str, int]) -> dict[str, int]:
    """Hop-latency delay of every synapse, or ``UnsupportedError`` where alignment is impossible."""
    delays = {}
    for node in graph.nodes:
        if node.ROLE != "neuron":
            continue
        for syn_name in node.inputs:
            syn = graph.node(syn_name)
            delay = latency[node.name] - latency[syn.source] - 1 + int(syn.delay_steps)
            if delay < 0:
                raise UnsupportedError(syn_name, "delay_steps", f">= {int(syn.delay_steps) - delay} to align "
                                       "with hop latency", int(syn.delay_steps))
            delays[syn_name] = delay
    return delays
