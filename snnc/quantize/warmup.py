"""Initial membrane voltages of Loihi LIF neurons that reach a chosen voltage after input-free steps.

Before its first input a neuron at pipeline latency L integrates only its bias for L steps. Passes that
add latency (fan-in partitioning) or choose a starting voltage (timestep compression) need the voltage
v0 from which ``steps`` input-free updates (u = 0) end exactly at a target: iterate
``v <- decay_preimage(v - bias, dv)`` (``snnc.quantize.loihi``). The neuron must not spike on the way
and every value must lie in v's 24-bit range, else ``QuantizationError`` names the neuron.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import QuantizationError
from snnc.ir.nodes import LoihiLIF
from snnc.quantize import loihi as lq


def voltage_before(node: LoihiLIF, target, steps: int, why: str) -> np.ndarray:
    """v0 (per neuron, or shape (1,) when uniform) such that ``steps`` bias-only updates reach
    ``target``; the check covers every state after each of those updates (``why`` goes in the error)."""
    size = int(np.prod(node.shape))
    bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))
    v = np.broadcast_to(np.asarray(target, np.int64).reshape(-1), (size,)).copy()
    trajectory = [v]
    for _ in range(steps):
        v = lq.decay_preimage(v - bias, node.dv)
        trajectory.append(v)
    high = max((int(np.max(t)) for t in trajectory[:-1]), default=-lq.V_LIMIT)
    extreme = max(int(np.max(np.abs(t))) for t in trajectory)
    if high > (node.vth << lq.THRESHOLD_SHIFT) or extreme > lq.V_LIMIT:
        raise QuantizationError(node.name, "v_init", "a warm-up that stays below threshold and in range",
                                f"v up to {high} (|v| up to {extreme}) over {steps} steps", why)
    return v[:1].copy() if np.ptp(v) == 0 else v
