"""Emulator support for graded (multi-bit) messages: ``GradedInput``, ``Slice``, ``LoihiGradedRelay``,
``LoihiGradedSum`` and a ``LoihiDense`` fed by a graded source, for both engines of
``snnc.simulators.loihi_emulator`` (the step engine and the layer-at-a-time engine).

Semantics are those of the node docstrings in ``snnc.ir.nodes`` (Lava ``GradedVec``/``Dense`` fixed_pt
with ``num_message_bits > 0``). Graded trains are int64 arrays (batch, steps, size) stored beside the
spike trains; a ``Slice`` is a view of its source's train.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.ir.graph import Graph
from snnc.ir.nodes import GRADED_TYPES, Flatten, LoihiDense, LoihiGradedRelay, LoihiGradedSum, Node, Slice
from snnc.simulators.delay_slots import SlottedDenseSynapse

def is_graded_source(graph: Graph, name: str) -> bool:
    """Whether the train ``name`` comes (through views) from a graded producer (graded input or relay)."""
    return isinstance(graph.producer(name), GRADED_TYPES)


def graded_dense_activation(payload: np.ndarray, words: np.ndarray, weight_exp: int) -> np.ndarray:
    """``shift(wrap32(W @ x), e)`` for integer payloads x (batch, in): exact int64 product (no float
    rounding however large the payloads), then Lava's int32 wrap and the exponent, as for spikes."""
    total = np.asarray(payload, np.int64) @ np.asarray(words, np.int64).T
    return lq.wrap32(lq.shift_by_exponent(lq.wrap32(total), weight_exp))


def graded_sum_activation(payloads: list[np.ndarray], weight_exp: int) -> np.ndarray:
    """``shift(wrap32(sum_c g_c), e)``: the partial sums are added before the one shift."""
    total = 0
    for payload in payloads:
        total = lq.wrap32(total + np.asarray(payload, np.int64))
    return lq.wrap32(lq.shift_by_exponent(total, weight_exp))


def slice_train(train: np.ndarray, node: Slice) -> np.ndarray:
    """(batch, steps, *shape) -> (batch, steps, stop - start) view of the flattened train."""
    return train.reshape(train.shape[0], train.shape[1], -1)[:, :, node.start:node.stop]


# ------------------------------------------------------------------------------------- step engine

def step_trains(graph: Graph, batch: int, steps: int) -> dict[str, np.ndarray]:
    """int64 trains for graded inputs and relays, and trains for slices (dtype of their producer)."""
    shapes = graph.shapes
    out = {}
    for node in graph.nodes:
        if isinstance(node, GRADED_TYPES):
            out[node.name] = np.zeros((batch, steps, *shapes[node.name]), np.int64)
    for node in graph.nodes:
        if isinstance(node, Slice) or (isinstance(node, Flatten) and is_graded_source(graph, node.name)):
            dtype = np.int64 if is_graded_source(graph, node.name) else np.uint8
            out[node.name] = np.zeros((batch, steps, *shapes[node.name]), dtype)
    return out


def step_graded_dense(graph: Graph) -> dict[str, SlottedDenseSynapse]:
    """The step engine's synapse for every LoihiDense that reads a graded train."""
    return {n.name: SlottedDenseSynapse(n, graded_dense_activation) for n in graph.nodes
            if isinstance(n, LoihiDense) and is_graded_source(graph, n.source)}


def step_sum_activations(graph: Graph, trains: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
    """Activation of every ``LoihiGradedSum`` at step t (reads payloads of step t - 1 - delay)."""
    out = {}
    for node in graph.nodes:
        if isinstance(node, LoihiGradedSum):
            step = t - 1 - int(node.delay_steps)
            if step < 0:
                out[node.name] = 0
                continue
            payloads = [trains[s][:, step].reshape(trains[s].shape[0], -1) for s in node.sources]
            out[node.name] = graded_sum_activation(payloads, node.weight_exp)
    return out


def step_relays(graph: Graph, activations: dict, trains: dict[str, np.ndarray], t: int) -> None:
    """Relays emit the sum of this step's activations (before the neurons update)."""
    for node in graph.nodes:
        if isinstance(node, LoihiGradedRelay):
            total = 0
            for src in node.inputs:
                total = lq.wrap32(total + activations[src])
            batch = trains[node.name].shape[0]
            trains[node.name][:, t] = np.broadcast_to(total, (batch, int(np.prod(node.shape))))


def step_slices(graph: Graph, trains: dict[str, np.ndarray], t: int) -> None:
    """Fill step ``t`` of every Slice's train from its source's, in structural order."""
    for node in graph.structural_order:
        if isinstance(node, Slice):
            source = trains[node.source][:, t]
            trains[node.name][:, t] = source.reshape(source.shape[0], -1)[:, node.start:node.stop]


# -------------------------------------------------------------------------------- layerwise engine

def layerwise_node(graph: Graph, node: Node, trains: dict, activation: dict) -> bool:
    """Simulate ``node`` over all steps if it is one of the graded kinds; False otherwise."""
    if isinstance(node, Slice):
        trains[node.name] = slice_train(trains[node.source], node)
    elif isinstance(node, LoihiGradedRelay):
        total = 0
        for src in node.inputs:
            total = lq.wrap32(total + activation[src])
        trains[node.name] = np.asarray(total, np.int64)
    elif isinstance(node, LoihiGradedSum):
        activation[node.name] = _sum_series(node, [trains[s] for s in node.sources])
    elif isinstance(node, LoihiDense) and is_graded_source(graph, node.source):
        activation[node.name] = _graded_dense_series(node, trains[node.source])
    else:
        return False
    return True


def _sum_series(node: LoihiGradedSum, sources: list[np.ndarray]) -> np.ndarray:
    batch, steps = sources[0].shape[:2]
    flat = [s.reshape(batch, steps, -1) for s in sources]
    out = np.zeros(flat[0].shape, np.int64)
    lag = 1 + int(node.delay_steps)
    if lag < steps:
        out[:, lag:] = graded_sum_activation([f[:, :steps - lag] for f in flat], node.weight_exp)
    return out


def _graded_dense_series(node: LoihiDense, source: np.ndarray) -> np.ndarray:
    batch, steps = source.shape[:2]
    flat = source.reshape(batch, steps, -1)
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    delays = np.broadcast_to(np.asarray(node.delay_steps), words.shape)
    out = np.zeros((batch, steps, words.shape[0]), np.int64)
    for delay in np.unique(delays):
        lag = 1 + int(delay)
        if lag < steps:
            weight = np.where(delays == delay, words, 0)
            part = graded_dense_activation(flat[:, :steps - lag].reshape(-1, flat.shape[2]), weight,
                                           node.weight_exp)
            out[:, lag:] = lq.wrap32(out[:, lag:] + part.reshape(batch, steps - lag, -1))
    return out
