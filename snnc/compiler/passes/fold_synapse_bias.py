"""Pass: move a synapse bias (torch ``nn.Linear``/``nn.Conv2d`` bias) into its neuron's voltage bias.

Preserves zero-latency spikes and states exactly: with ``current_decay == 1`` the current is
``u[t] = I[t]`` and u enters v once per step, so ``I + b`` into u equals ``b`` added to v. A bias into a
neuron with current memory (current_decay < 1) or with inputs read apart (a resonator's real and imaginary
synapses, ``input_ports``) is left in place, lowering then reports it; an all-zero
one (snnTorch RSynaptic's recurrent Linear trained without a bias term) is dropped, exactly.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from snnc.compiler.pass_api import ANY, Pass, PassOptions, PassResult
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, Dense
from snnc.neurons import model_of


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Move every single-consumer synapse bias into its memoryless neuron group's bias; the float
    graph's spikes and voltages are preserved exactly, other nodes and names unchanged."""
    replaced: dict[str, object] = {}
    for neuron in graph.nodes:
        if (neuron.ROLE, neuron.DOMAIN) != ("neuron", "float"):
            continue
        if model_of(neuron).input_ports or np.any(np.asarray(getattr(neuron, "current_decay", 0.0)) != 1.0):
            replaced.update(_without_zero_biases(graph, neuron))
            continue
        extra = 0.0
        for name in neuron.inputs:
            syn = graph.node(name)
            if isinstance(syn, (Dense, Conv2d)) and syn.bias is not None and len(graph.consumers(name)) == 1:
                extra = extra + _bias_per_neuron(syn, graph.shapes[name])
                replaced[name] = dataclasses.replace(syn, bias=None)
        if not np.isscalar(extra) or extra != 0.0:
            total = np.asarray(neuron.bias, dtype=np.float64) + np.reshape(extra, neuron.shape)
            replaced[neuron.name] = dataclasses.replace(neuron, bias=total)
    if not replaced:
        return PassResult(graph, False)
    nodes = [replaced.get(n.name, n) for n in graph.nodes]
    return PassResult(graph.replace_nodes(nodes), True, {"folded": sorted(k for k in replaced)})


def _without_zero_biases(graph: Graph, neuron) -> dict[str, object]:
    """The input synapses of ``neuron`` whose bias is all zero, without it (adding 0 changes nothing)."""
    synapses = [graph.node(name) for name in neuron.inputs]
    return {syn.name: dataclasses.replace(syn, bias=None) for syn in synapses
            if isinstance(syn, (Dense, Conv2d)) and syn.bias is not None and not np.any(syn.bias)}


def _bias_per_neuron(syn, shape) -> np.ndarray:
    if isinstance(syn, Dense):
        return np.asarray(syn.bias, dtype=np.float64)
    return np.broadcast_to(syn.bias[:, None, None], shape).reshape(-1)


# Any state: only float neuron groups are rewritten (a lowered import passes through unchanged).
PASS = Pass("fold_synapse_bias", run, requires=ANY)
