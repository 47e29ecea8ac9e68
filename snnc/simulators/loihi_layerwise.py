"""Layer-at-a-time engine for acyclic lowered graphs: same results as the step engine, much faster.

Without recurrence, a synapse's activation at every step depends only on its source's spikes of earlier
steps, so each node can be simulated over all steps before the next: one BLAS product per synapse and
delay slot for the whole (batch x steps) block (per-synapse delays: ``loihi_kernels.delayed_dense_events``,
time in SIMD lanes; convolutions: exact float32 conv2d), then each neuron group's
compiled scan (its model's ``scan``, e.g. ``snnc.arith.loihi_kernels.lif_scan``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.arith.synapse_math import conv2d_int_sum
from snnc.ir.graph import Graph, topological_order
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, node_sources
from snnc.neurons import model_of
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
    """Run an acyclic lowered Loihi graph layer by layer over all steps at once (fused scans where the neuron model
    has them); the same traces as the step engine."""
    order = layerwise_order(graph)
    batch, steps = next(iter(inputs.values())).shape[:2]
    spikes: dict[str, np.ndarray] = {}
    activation: dict[str, np.ndarray] = {}
    products: dict[str, _Products] = {}   # synapses read by one single-input neuron group
    states: dict[str, dict[str, np.ndarray]] = {}
    for node in order:
        if graded.layerwise_node(graph, node, spikes, activation):
            continue
        if isinstance(node, Input):
            spikes[node.name] = activation[node.name] = inputs[node.name]   # (a delta encoder reads it)
        elif isinstance(node, Flatten):
            spikes[node.name] = spikes[node.source].reshape(batch, steps, -1)
        elif isinstance(node, (LoihiDense, LoihiConv)) and _feeds_one_lif_alone(graph, node):
            products[node.name] = _synapse_products(node, spikes[node.source])
        elif isinstance(node, (LoihiDense, LoihiConv)):
            activation[node.name] = _synapse_series(node, spikes[node.source])
        else:
            spikes[node.name], state = _neuron(graph, node, spikes, activation, products, record_state)
            if record_state:
                states[node.name] = state
    return Traces(spikes, states)


@dataclass(frozen=True)
class _Products:
    """A synapse's activation kept as exact float sums: a[t] = int(products[:, t - lag]) shifted
    by ``weight_exp`` (Lava's int32 and conv 24-bit wraps proven no-ops), 0 for t < lag."""

    products: np.ndarray
    weight_exp: int
    lag: int


def _feeds_one_lif_alone(graph: Graph, node: LoihiDense) -> bool:
    consumers = graph.consumers(node.name)
    if len(consumers) != 1 or consumers[0].ROLE != "neuron" or consumers[0].inputs != (node.name,):
        return False
    return bool(getattr(model_of(consumers[0]), "fused_dense_scan", False))


def _synapse_products(node, source: np.ndarray) -> _Products | None:
    """The fused path's input of a dense or conv synapse, or None where it does not apply."""
    if isinstance(node, LoihiConv):
        return _conv_products(node, source)
    return _dense_products(node, source)


def _synapse_series(node, source: np.ndarray) -> np.ndarray:
    """A dense or conv synapse's int64 activation (batch, steps, outputs) at every step."""
    if isinstance(node, LoihiConv):
        return _conv_series(node, source)
    return _dense_series(node, source)


def _conv_products(node: LoihiConv, source: np.ndarray) -> _Products | None:
    """Exact float32 sums of the source spikes of steps 0..T-2 (they arrive one step later), or None
    where a sum could reach Lava's 24-bit output wrap."""
    batch, steps = source.shape[:2]
    if steps < 2:
        return None
    block = source[:, :steps - 1].reshape(batch * (steps - 1), *node.in_shape)
    sums = lq.conv_products(block, node.dilated_kernel(), node.in_shape, node.stride, node.padding, node.groups)
    return None if sums is None else _Products(sums.reshape(batch, steps - 1, -1), 0, 1)


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


def _neuron(graph: Graph, node, spikes, activation, products, record_state: bool):
    """A neuron group's spikes and states: fused with its one dense synapse where possible."""
    batch, steps = next(iter(spikes.values())).shape[:2]
    fused = products.get(node.inputs[0]) if node.inputs else None
    if fused is not None:
        return model_of(node).scan_products(node, fused.products, fused.weight_exp, fused.lag, batch, steps,
                                            record_state)
    for name in node.inputs:
        if name in products:
            activation[name] = _synapse_series(graph.node(name), spikes[graph.node(name).source])
    return _neuron_series(node, activation, spikes, batch, steps, record_state)


def _dense_series(node: LoihiDense, source: np.ndarray) -> np.ndarray:
    batch, steps = source.shape[:2]
    flat = source.reshape(batch, steps, -1)
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    out = np.zeros((batch, steps, words.shape[0]), np.int64)
    if np.ndim(node.delay_steps) == 2 and loihi_kernels.AVAILABLE and \
            lq.activation_fits_int32(words, node.weight_exp):    # per-synapse delays: time-lane kernel
        delays = np.broadcast_to(np.asarray(node.delay_steps, np.int64), words.shape)
        return loihi_kernels.delayed_dense_events(np.ascontiguousarray(flat), words.astype(np.int64),
                                                  np.ascontiguousarray(delays), int(node.weight_exp), out)
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
    out = np.zeros((batch, steps, int(np.prod(node.output_shape(None)))), np.int64)
    if steps > 1:
        block = source[:, :steps - 1].reshape(batch * (steps - 1), *node.in_shape)
        total = conv2d_int_sum(block, node.dilated_kernel(), node.in_shape, node.stride, node.padding, node.groups)
        out[:, 1:] = lq.conv_output_wrap(total).reshape(batch, steps - 1, -1)
    return out


def _neuron_series(node, activation, spikes, batch: int, steps: int, record_state: bool):
    size = int(np.prod(node.shape))
    if model_of(node).input_ports:    # inputs read apart (a resonator's real and imaginary synapses)
        parts = [activation[src].reshape(batch, steps, size) for src in node.inputs]
        return model_of(node).scan(node, parts, record_state)
    total = np.zeros((batch, steps, size), np.int64)
    for index, src in enumerate(node.inputs):
        part = activation[src].reshape(batch, steps, size)
        total = part if index == 0 else lq.wrap32(total + part)
    biases = node.bias_sources()
    if biases:
        return model_of(node).scan(node, total, record_state, bias_series=spikes[biases[0]])
    return model_of(node).scan(node, total, record_state)
