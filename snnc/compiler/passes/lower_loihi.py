"""Pass: lower a float zero-latency graph to Loihi integer nodes in hop-latency timing.

Preserves: the graph structure and node names; spikes up to the quantization reported per layer, with
node n's output delayed by ``latency_steps[n]`` (see ``snnc.compiler.latency``). Does not preserve: float
parameters (replaced by integer formats). Overflow of u is impossible by construction
(``snnc.quantize.loihi_lowering``); weight, decay and bias rounding errors are in the report.
"""
from __future__ import annotations

from snnc.compiler.latency import hop_delays, hop_latencies
from snnc.compiler.pass_api import PassOptions, PassResult
from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import NEURON_TYPES, Flatten, Input
from snnc.quantize.loihi_lowering import SUPPORTED_NEURONS, SUPPORTED_SYNAPSES, lower_group


def run(graph: Graph, options: PassOptions) -> PassResult:
    latency = hop_latencies(graph)
    delays = hop_delays(graph, latency)
    lowered: dict[str, object] = {}
    reports = {}
    for node in graph.nodes:
        if isinstance(node, NEURON_TYPES):
            synapses = {name: _supported_synapse(graph, name) for name in node.inputs}
            _check_neuron(node)
            new_nodes, report = lower_group(node, synapses, delays, options.target, latency[node.name])
            lowered.update({n.name: n for n in new_nodes})
            reports[node.name] = report.as_dict()
    nodes = [n if isinstance(n, (Input, Flatten)) else lowered[n.name] for n in graph.nodes]
    out = graph.replace_nodes(nodes, timing="hop_latency", latency_steps=tuple(sorted(latency.items())))
    return PassResult(out, True, {"layers": reports, "latency_steps": latency})


def _supported_synapse(graph: Graph, name: str):
    syn = graph.node(name)
    if not isinstance(syn, SUPPORTED_SYNAPSES):
        raise UnsupportedError(name, "type", "Dense, Conv2d or SumPool2d", type(syn).__name__)
    if len(graph.consumers(name)) != 1:
        raise UnsupportedError(name, "consumers", "exactly one neuron group", len(graph.consumers(name)))
    return syn


def _check_neuron(node) -> None:
    if not isinstance(node, SUPPORTED_NEURONS):
        raise UnsupportedError(node.name, "type", "CubaLIF or LI", type(node).__name__)
