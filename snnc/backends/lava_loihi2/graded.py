"""Lava 0.10 processes for graded (multi-bit) messages: partial-sum relays, graded sums, sliced sources.

* ``LoihiGradedRelay`` -> ``GradedVec(vth=0)`` (fixed_pt: ``v += a_in; s_out = v * (|v| > 0); v = 0``),
  i.e. it sends its summed input as a graded spike in the same step.
* ``LoihiGradedSum``   -> one ``Dense`` (``DelayDense`` for a delay) with identity weights, excitatory
  (so Lava keeps weight 1), ``num_message_bits = 24`` and the node's ``weight_exp``; every source's
  ``s_out`` connects to its one ``s_in``: Lava adds what arrives at an InPort (``PyInPortVectorDense.recv``
  reduces the connected ports with ``+``), so the exponent shifts the total, as the IR states.
* A ``LoihiDense`` reading a ``Slice`` reads the slice's producer instead, with its weight columns
  scattered into the producer's width (zeros elsewhere) — the same sum, since a zero weight adds nothing.
* A ``LoihiDense`` reading a graded producer gets ``num_message_bits`` (the payload width).
"""
from __future__ import annotations

import numpy as np

from snnc.ir.graph import Graph
from snnc.ir.nodes import (
    GRADED_TYPES, Flatten, GradedInput, LoihiDense, LoihiGradedRelay, LoihiGradedSum, Slice,
)
from snnc.targets.catalog import LOIHI2
from snnc.targets.footprint import source_range


def reads_slice(graph: Graph, name: str) -> bool:
    """Whether the train ``name`` is a Slice, possibly behind Flatten views."""
    node = graph.node(name)
    while isinstance(node, Flatten):
        node = graph.node(node.source)
    return isinstance(node, Slice)


def scatter_columns(graph: Graph, node: LoihiDense, matrix: np.ndarray) -> np.ndarray:
    """A (out, slice width) matrix placed at the slice's columns of its producer's flat index."""
    producer, start, stop = source_range(graph, node.source)
    width = int(np.prod(graph.shapes[producer]))
    full = np.zeros((matrix.shape[0], width), dtype=matrix.dtype)
    full[:, start:stop] = matrix
    return full


def message_bits(graph: Graph, name: str) -> int:
    """``num_message_bits`` for a Dense reading train ``name``: 0 for spikes, the payload width else."""
    producer = graph.producer(name)
    if isinstance(producer, GradedInput):
        return int(producer.bits)
    return LOIHI2.graded_spike_bits if isinstance(producer, GRADED_TYPES) else 0


def relay_process(node: LoihiGradedRelay):
    """The Lava ``GradedVec`` (threshold 0) of a partial-sum relay, named as the node so monitors find it."""
    from lava.proc.graded.process import GradedVec
    process = GradedVec(shape=(int(np.prod(node.shape)),), vth=0)
    process.name = node.name   # GradedVec takes no name argument; monitors key their data by it
    return process


def graded_sum_process(node: LoihiGradedSum, identity: np.ndarray):
    """``identity`` is the (size, size) 0/1 matrix already in the consumer's Lava row order."""
    from lava.proc.dense.process import DelayDense, Dense
    from lava.utils.weightutils import SignMode
    kwargs = dict(weights=identity.astype(np.int64), weight_exp=int(node.weight_exp), num_weight_bits=8,
                  sign_mode=SignMode.EXCITATORY, num_message_bits=LOIHI2.graded_spike_bits, name=node.name)
    if node.delay_steps:
        return DelayDense(delays=np.where(identity != 0, int(node.delay_steps), 0), **kwargs)
    return Dense(**kwargs)
