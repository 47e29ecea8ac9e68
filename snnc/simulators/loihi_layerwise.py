"""Layer-at-a-time engine for acyclic lowered graphs: same results as the step engine, much faster.

Without recurrence, a synapse's activation at every step depends only on its source's spikes of earlier
steps, so each node can be simulated over all steps before the next: one BLAS product per synapse and
delay slot for the whole (batch x steps) block, then the compiled LIF scan
(``snnc.quantize.loihi_kernels.lif_scan``) per neuron group.
"""
from __future__ import annotations

import numpy as np

from snnc.ir.graph import Graph, topological_order
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiLIF, node_sources
from snnc.quantize import loihi as lq
from snnc.quantize import loihi_kernels
from snnc.simulators import graded
from snnc.simulators.synapse_math import conv2d_sum
from snnc.simulators.traces import Traces


def layerwise_order(graph: Graph):
    """All nodes with every source first, or None if the graph has a cycle (recurrence)."""
    try:
        return topological_order(graph.nodes, node_sources)
    except ValueError:
        return None


def run_layerwise(graph: Graph, inputs: dict[str, np.ndarray], record_state: bool) -> Traces:
    order = layerwise_order(graph)
    batch, steps = next(iter(inputs.values())).shape[:2]
    spikes: dict[str, np.ndarray] = {}
    activation: dict[str, np.ndarray] = {}
    states: dict[str, dict[str, np.ndarray]] = {}
    for node in order:
        if graded.layerwise_node(graph, node, spikes, activation):
            continue
        if isinstance(node, Input):
            spikes[node.name] = inputs[node.name]
        elif isinstance(node, Flatten):
            spikes[node.name] = spikes[node.source].reshape(batch, steps, -1)
        elif isinstance(node, LoihiDense):
            activation[node.name] = _dense_series(node, spikes[node.source])
        elif isinstance(node, LoihiConv):
            activation[node.name] = _conv_series(node, spikes[node.source])
        else:
            spikes[node.name], state = _neuron_series(node, activation, batch, steps, record_state)
            if record_state:
                states[node.name] = state
    return Traces(spikes, states)


def _dense_series(node: LoihiDense, source: np.ndarray) -> np.ndarray:
    batch, steps = source.shape[:2]
    flat = source.reshape(batch, steps, -1)
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    out = np.zeros((batch, steps, words.shape[0]), np.int64)
    for index, (delay, weight) in enumerate(_delay_slots(words, node.delay_steps)):
        lag = 1 + delay
        if lag >= steps:
            continue
        part = lq.dense_activation(flat[:, :steps - lag].reshape(-1, flat.shape[2]), weight, node.weight_exp)
        part = part.reshape(batch, steps - lag, -1)
        out[:, lag:] = part if index == 0 else lq.wrap32(out[:, lag:] + part)
    return out


def _delay_slots(words: np.ndarray, delay_steps):
    """(delay, weights with that delay) pairs; one slot without a copy for a uniform delay."""
    if np.ndim(delay_steps) == 0:
        return [(int(delay_steps), words)]
    delays = np.asarray(delay_steps)
    return [(int(d), np.where(delays == d, words, 0)) for d in np.unique(delays)]


def _conv_series(node: LoihiConv, source: np.ndarray) -> np.ndarray:
    batch, steps = source.shape[:2]
    out = np.zeros((batch, steps, int(np.prod(_conv_out_shape(node, source)))), np.int64)
    if steps > 1:
        block = source[:, :steps - 1].reshape(batch * (steps - 1), *node.in_shape)
        total = conv2d_sum(block, node.weight_mant, node.in_shape, node.stride, node.padding, node.groups)
        out[:, 1:] = lq.conv_output_wrap(total.astype(np.int64)).reshape(batch, steps - 1, -1)
    return out


def _conv_out_shape(node: LoihiConv, source: np.ndarray) -> tuple[int, ...]:
    probe = conv2d_sum(np.zeros((1, *node.in_shape)), node.weight_mant, node.in_shape, node.stride,
                       node.padding, node.groups)
    return probe.shape[1:]


def _neuron_series(node: LoihiLIF, activation, batch: int, steps: int, record_state: bool):
    size = int(np.prod(node.shape))
    total = activation[node.inputs[0]].reshape(batch, steps, size)
    for src in node.inputs[1:]:
        total = lq.wrap32(total + activation[src].reshape(batch, steps, size))
    bias = np.ascontiguousarray(np.broadcast_to(
        lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,)), dtype=np.int64)
    v_init = np.ascontiguousarray(np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (size,)))
    fired = np.zeros((batch, steps, size), np.uint8)
    shape = (batch, steps, size) if record_state else (1, 1, 1)
    u, v = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    loihi_kernels.lif_scan(total, int(node.du), int(node.dv), bias, int(node.vth), v_init, fired, u, v,
                           record_state)
    out_shape = (batch, steps, *node.shape)
    state = {"u": u.reshape(out_shape), "v": v.reshape(out_shape)} if record_state else {}
    return fired.reshape(out_shape), state
