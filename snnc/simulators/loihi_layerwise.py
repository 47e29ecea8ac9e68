"""Layer-at-a-time engine for acyclic lowered graphs: same results as the step engine, much faster.

Without recurrence, a synapse's activation at every step depends only on its source's spikes of earlier
steps, so each node can be simulated over all steps before the next: one BLAS product per synapse and
delay slot for the whole (batch x steps) block, then the compiled LIF scan
(``snnc.arith.loihi_kernels.lif_scan``) per neuron group.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.arith.synapse_math import conv2d_sum
from snnc.ir.graph import Graph, topological_order
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiLIF, node_sources
from snnc.simulators import graded
from snnc.simulators.delay_slots import delay_slots
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
    products: dict[str, _Products] = {}   # dense synapses read by one single-input neuron group
    states: dict[str, dict[str, np.ndarray]] = {}
    for node in order:
        if graded.layerwise_node(graph, node, spikes, activation):
            continue
        if isinstance(node, Input):
            spikes[node.name] = inputs[node.name]
        elif isinstance(node, Flatten):
            spikes[node.name] = spikes[node.source].reshape(batch, steps, -1)
        elif isinstance(node, LoihiDense) and _feeds_one_lif_alone(graph, node):
            products[node.name] = _dense_products(node, spikes[node.source])
        elif isinstance(node, LoihiDense):
            activation[node.name] = _dense_series(node, spikes[node.source])
        elif isinstance(node, LoihiConv):
            activation[node.name] = _conv_series(node, spikes[node.source])
        else:
            spikes[node.name], state = _neuron(graph, node, spikes, activation, products, record_state)
            if record_state:
                states[node.name] = state
    return Traces(spikes, states)


@dataclass(frozen=True)
class _Products:
    """A dense synapse's activation kept as exact float sums: a[t] = int(products[:, t - lag]) shifted
    by ``weight_exp`` (Lava's int32 wraps proven no-ops), 0 for t < lag."""

    products: np.ndarray
    weight_exp: int
    lag: int


def _feeds_one_lif_alone(graph: Graph, node: LoihiDense) -> bool:
    consumers = graph.consumers(node.name)
    return len(consumers) == 1 and isinstance(consumers[0], LoihiLIF) and consumers[0].inputs == (node.name,)


def _dense_products(node: LoihiDense, source: np.ndarray) -> _Products | None:
    """The fused path's input, or None where it does not apply (several delays, possible int32 wrap)."""
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    if np.ndim(node.delay_steps) != 0 or not lq.activation_fits_int32(words, node.weight_exp):
        return None
    batch, steps = source.shape[:2]
    lag = 1 + int(node.delay_steps)
    kept = max(steps - lag, 0)
    if kept == 0:       # nothing arrives within the run: the step-by-step path handles it
        return None
    flat = source[:, :kept].reshape(batch * kept, -1)
    return _Products(lq.dense_products(flat, words).reshape(batch, kept, -1), node.weight_exp, lag)


def _neuron(graph: Graph, node: LoihiLIF, spikes, activation, products, record_state: bool):
    """A neuron group's spikes and states: fused with its one dense synapse where possible."""
    batch, steps = next(iter(spikes.values())).shape[:2]
    fused = products.get(node.inputs[0])
    if fused is not None:
        return _neuron_series_fused(node, fused, batch, steps, record_state)
    for name in node.inputs:
        if name in products:
            activation[name] = _dense_series(graph.node(name), spikes[graph.node(name).source])
    return _neuron_series(node, activation, batch, steps, record_state)


def _neuron_series_fused(node: LoihiLIF, products: _Products, batch: int, steps: int, record_state: bool):
    size = int(np.prod(node.shape))
    bias, v_init, fired, u, v = _scan_buffers(node, batch, steps, size, record_state)
    loihi_kernels.lif_scan_products(products.products, products.weight_exp, products.lag, int(node.du),
                                    int(node.dv), bias, int(node.vth), v_init, fired, u, v, record_state)
    return _shaped(node, fired, u, v, batch, steps, record_state)


def _dense_series(node: LoihiDense, source: np.ndarray) -> np.ndarray:
    batch, steps = source.shape[:2]
    flat = source.reshape(batch, steps, -1)
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    out = np.zeros((batch, steps, words.shape[0]), np.int64)
    for index, (delay, weight) in enumerate(delay_slots(words, node.delay_steps)):
        lag = 1 + delay
        if lag >= steps:
            continue
        part = lq.dense_activation(flat[:, :steps - lag].reshape(-1, flat.shape[2]), weight, node.weight_exp)
        part = part.reshape(batch, steps - lag, -1)
        out[:, lag:] = part if index == 0 else lq.wrap32(out[:, lag:] + part)
    return out


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
    bias, v_init, fired, u, v = _scan_buffers(node, batch, steps, size, record_state)
    loihi_kernels.lif_scan(total, int(node.du), int(node.dv), bias, int(node.vth), v_init, fired, u, v,
                           record_state)
    return _shaped(node, fired, u, v, batch, steps, record_state)


def _scan_buffers(node: LoihiLIF, batch: int, steps: int, size: int, record_state: bool):
    """Per-neuron bias and initial v, and the output arrays of a LIF scan (u/v only when recorded)."""
    bias = np.ascontiguousarray(np.broadcast_to(
        lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,)), dtype=np.int64)
    v_init = np.ascontiguousarray(np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (size,)))
    fired = np.zeros((batch, steps, size), np.uint8)
    shape = (batch, steps, size) if record_state else (1, 1, 1)
    return bias, v_init, fired, np.zeros(shape, np.int64), np.zeros(shape, np.int64)


def _shaped(node: LoihiLIF, fired, u, v, batch: int, steps: int, record_state: bool):
    out_shape = (batch, steps, *node.shape)
    state = {"u": u.reshape(out_shape), "v": v.reshape(out_shape)} if record_state else {}
    return fired.reshape(out_shape), state
