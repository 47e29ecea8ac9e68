"""Lava ``DelayDense`` delay slots, shared by the emulator's engines (binary and graded inputs).

Weights are split into one matrix per distinct delay; each slot's sum is shifted by the exponent on its
own (Lava floors every slot separately) and the slots add in int32.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from snnc.arith import loihi as lq
from snnc.ir.nodes import LoihiDense

Product = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def delay_slots(words: np.ndarray, delay_steps) -> list[tuple[int, np.ndarray]]:
    """(delay, weights with that delay) pairs; one slot without a copy for a uniform delay."""
    if np.ndim(delay_steps) == 0:
        return [(int(delay_steps), words)]
    delays = np.broadcast_to(np.asarray(delay_steps), words.shape)
    return [(int(d), np.where(delays == d, words, 0)) for d in np.unique(delays)]


class SlottedDenseSynapse:
    """Step-engine dense synapse: ``activation(history, t)`` sums the slots whose source step t - 1 - d
    exists; ``product`` turns (inputs, weights, exponent) into one slot's shifted sum."""

    def __init__(self, node: LoihiDense, product: Product):
        words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
        self.slots = delay_slots(words, node.delay_steps)
        self.source, self.exp, self.product = node.source, node.weight_exp, product

    def activation(self, history: np.ndarray, t: int):
        """The synapse's activation at step ``t`` from the source's ``history`` (batch, steps, ...): the wrapped sum
        over delay slots of their shifted products."""
        total = 0
        for delay, weight in self.slots:
            step = t - 1 - delay
            if step >= 0:
                inputs = history[:, step].reshape(history.shape[0], -1)
                total = lq.wrap32(total + self.product(inputs, weight, self.exp))
        return total
