"""Pipeline alignment from zero-latency (snnTorch) timing to hop-latency (Lava) timing.

On Lava every synapse delivers one step late. Give every spiking node a latency L (input: 0) so that its
hop-latency step ``t + L`` equals its zero-latency step ``t``. A synapse src -> dst with zero-latency delay
``d`` then needs the hop-latency delay ``L(dst) - L(src) - 1 + d`` (>= 0), which pads shorter paths
(residual branches) and keeps recurrent edges (d = 1, src = dst) at hop delay 0. L is never negative.
A neuron that reads an input node directly (a sigma-delta ``DeltaEncoder``, lowered to Lava's ``Delta``
whose ``a_in`` the input drives) has the input's latency, 0, as in a lava-dl ``.net`` import.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph, topological_order
from snnc.ir.nodes import Comparison, CubaLIF, Flatten, Input, ResetKind, SumPool2d, node_sources


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
        if syn.ROLE != "synapse":      # an input read directly (a delta encoder): same step, as netx's Delta
            candidates.append(latency[syn_name])
        elif syn.source in latency:
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
            if syn.ROLE != "synapse":
                continue
            delay = latency[node.name] - latency[syn.source] - 1 + int(syn.delay_steps)
            if delay < 0:
                raise UnsupportedError(syn_name, "delay_steps", f">= {int(syn.delay_steps) - delay} to align "
                                       "with hop latency", int(syn.delay_steps))
            delays[syn_name] = delay
    return delays


def relay_delayed_convolutions(graph: Graph, kinds: tuple[type, ...]) -> tuple[Graph, dict[str, int]]:
    """``graph`` with every synapse of a type in ``kinds`` (Loihi has no delayed convolution) whose hop
    delay would be d > 0 reading its binary-spike source through a chain of d relay groups instead, and
    the relays added per synapse. A relay is a memoryless unit fed by a 1x1 sum pool of weight 1 with
    threshold 0.5 and reset to zero: it spikes in the same zero-latency step as its 0/1 source (its input is
    0 or 1, so v is 0 before every step), and on a hop-latency target it adds exactly one hop. The float
    graph's spikes are preserved exactly; the synapse keeps its own (zero-latency) delay. A source that
    sends graded values keeps the delayed synapse (lowering then names it)."""
    delays = hop_delays(graph, hop_latencies(graph))
    nodes, added = list(graph.nodes), {}
    for syn_name, delay in delays.items():
        syn = graph.node(syn_name)
        source = graph.node(syn.source)
        if delay == 0 or not isinstance(syn, kinds) or not _sends_binary_spikes(source):
            continue
        cursor = syn.source
        for hop in range(delay):
            relay, identity = _relay(f"relay_{syn_name}_{hop}", cursor, graph.shapes[syn.source])
            nodes[nodes.index(syn):nodes.index(syn)] = [identity, relay]
            cursor = relay.name
        nodes[nodes.index(syn)] = dataclasses.replace(syn, source=cursor)
        added[syn_name] = delay
    if not added:
        return graph, added
    return graph.replace_nodes(nodes), added


def _sends_binary_spikes(node) -> bool:
    """The graph input (0/1 spikes) or a float neuron group that emits 0/1 spikes."""
    return isinstance(node, Input) or (isinstance(node, CubaLIF) and node.DOMAIN == "float")


def _relay(name: str, source: str, shape) -> tuple[CubaLIF, SumPool2d]:
    """A relay group ``name`` over ``shape`` (C, H, W) and its 1x1 identity pool from ``source``."""
    identity = SumPool2d(f"sum_{name}", source, in_shape=tuple(shape), kernel=(1, 1), stride=(1, 1), scale=1.0)
    relay = CubaLIF(name, (identity.name,), tuple(shape), current_decay=1.0, voltage_decay=0.5, threshold=0.5,
                    reset=ResetKind.ZERO, comparison=Comparison.GT)
    return relay, identity

