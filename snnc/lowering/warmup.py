"""Initial membrane voltages of Loihi LIF neurons that reach a chosen voltage after input-free steps.

Before its first input a neuron at pipeline latency L integrates only its bias for L steps. Passes that
add latency (fan-in partitioning) or choose a starting voltage (timestep compression) need the voltage
v0 from which ``steps`` input-free updates (u = 0) end exactly at a target
(``snnc.arith.loihi.warmup_trajectory``). The neuron must not spike on the way (v > vth << 6, or
v >= vth << 6 for the ">=" test) and every value must lie in v's 24-bit range, else ``QuantizationError``
names the neuron. Without a spike no reset acts, so the trajectory holds for every reset kind.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.nodes import Comparison


def voltage_before(node, target, steps: int, why: str) -> np.ndarray:
    """v0 of a lowered Loihi neuron group ``node`` (per neuron, or shape (1,) when uniform) such that ``steps`` bias-only updates reach
    ``target``; the check covers every state after each of those updates (``why`` goes in the error)."""
    size = int(np.prod(node.shape))
    bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))
    target = np.broadcast_to(np.asarray(target, np.int64).reshape(-1), (size,))
    v = warmup_voltage(node.name, bias, node.dv, node.vth, target, steps, why, str(node.comparison))
    return v[:1].copy() if np.ptp(v) == 0 else v


def warmup_voltage(name: str, bias: np.ndarray, dv: int, vth: int, target, steps: int, why: str,
                   comparison: str = Comparison.GT) -> np.ndarray:
    """The start of ``lq.warmup_trajectory``, or ``QuantizationError`` when a state on the way would
    spike (v > vth << 6; v >= vth << 6 where ``comparison`` is "ge") or leave v's 24-bit range."""
    trajectory = lq.warmup_trajectory(bias, dv, steps, target)
    high = max((int(np.max(t)) for t in trajectory[:-1]), default=-lq.V_LIMIT)
    extreme = max(int(np.max(np.abs(t))) for t in trajectory)
    threshold = vth << lq.THRESHOLD_SHIFT
    spikes = high >= threshold if comparison == Comparison.GE else high > threshold
    if len(trajectory) <= steps or spikes or extreme > lq.V_LIMIT:
        raise QuantizationError(name, "v_init", "a warm-up that stays below threshold and in range",
                                f"v up to {high} (|v| up to {extreme}) over {steps} steps", why)
    return trajectory[-1]


def check_periodic_fill(node, steps: int, target, why: str) -> None:
    """A lowered group with a periodic reset (``LoihiLIF.reset_interval``) whose reset falls inside its
    ``steps`` input-free pipeline-fill steps: run the fill from ``node.v_init`` with those resets and
    require no spike and, unless step ``steps`` resets the group itself, v == ``target`` at its end
    (else ``UnsupportedError`` naming ``reset_phase``). Nothing to check without such a reset."""
    interval, phase = int(getattr(node, "reset_interval", 0)), int(getattr(node, "reset_phase", 0))
    if not interval or not any(r % interval == phase for r in range(steps)):
        return
    size = int(np.prod(node.shape))
    bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))
    u = np.zeros(size, np.int64)
    v = np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (size,)).copy()
    for step in range(steps):
        if step % interval == phase:
            u, v = np.zeros_like(u), np.zeros_like(v)
        u, v, fired = lq.lif_step(u, v, 0, int(node.du), int(node.dv), bias, int(node.vth), str(node.reset),
                                  str(node.comparison), np.zeros(size, bool))
        if np.any(fired):
            raise UnsupportedError(node.name, "reset_phase", "no spike during the pipeline fill (a periodic "
                                   f"reset at step {phase} mod {interval} restarts the bias warm-up)",
                                   f"a spike at step {step}", why)
    end = np.broadcast_to(np.asarray(target, np.int64).reshape(-1), (size,))
    if steps % interval != phase and np.any(v != end):
        raise UnsupportedError(node.name, "reset_phase", f"no periodic reset within the first {steps} steps "
                               "of a group with a bias or an initial voltage (the reset restarts its warm-up)",
                               f"a reset at step {phase} mod {interval}", why)
