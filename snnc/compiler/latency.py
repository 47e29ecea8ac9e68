"""Pipeline alignment from zero-latency (snnTorch) timing to hop-latency (Lava) timing.

On Lava every synapse delivers one step late. Give every spiking node a latency L (input: 0) so that its
hop-latency step ``t + L`` equals its zero-latency step ``t``. A synapse src -> dst with zero-latency delay
``d`` then needs the hop-latency delay ``L(dst) - L(src) - 1 + d`` (>= 0), which pads shorter paths
(residual branches) and keeps recurrent edges (d = 1, src = dst) at hop delay 0. L is never negative.
"""
from __future__ import annotations

from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import NEURON_TYPES, Flatten, Input


def hop_latencies(graph: Graph) -> dict[str, int]:
    """Latency L of every spiking or readout node (synapses excluded)."""
    latency: dict[str, int] = {}
    for node in graph.evaluation_order:
        if isinstance(node, Input):
            latency[node.name] = 0
        elif isinstance(node, Flatten):
            latency[node.name] = latency[node.source]
        elif isinstance(node, NEURON_TYPES):
            latency[node.name] = _neuron_latency(graph, node, latency)
    return latency


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
        if not isinstance(node, NEURON_TYPES):
            continue
        for syn_name in node.inputs:
            syn = graph.node(syn_name)
            delay = latency[node.name] - latency[syn.source] - 1 + int(syn.delay_steps)
            if delay < 0:
                raise UnsupportedError(syn_name, "delay_steps", f">= {int(syn.delay_steps) - delay} to align "
                                       "with hop latency", int(syn.delay_steps))
            delays[syn_name] = delay
    return delays
