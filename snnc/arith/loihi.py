"""Loihi 2 fixed-point arithmetic as Lava 0.10's bit-accurate models define it (see shared SEMANTICS.md).

These functions are the semantics of ``LoihiDense``, ``LoihiConv`` and the lowered Loihi LIF; the emulator,
the lowering and QAT all call them. Register widths below are properties of the arithmetic; capacity limits (cores,
neurons per core) live in ``snnc.targets``.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.rounding import (
    array_ops, as_int, round_half_away, saturate, select, shift_by_exponent, shift_round_toward_zero,
    truncate_low_bits, wrap_like_lava, wrap_twos_complement,
)
from snnc.arith.synapse_math import conv2d_float32_sum, conv2d_sum_bound, matmul_rows

STATE_BITS = 24          # u and v registers
DECAY_BITS = 12          # du, dv are 12-bit fractions of 4096
DECAY_UNITY = 1 << DECAY_BITS
ACTIVATION_SHIFT = 6     # synaptic input is MSB-aligned: a << 6
THRESHOLD_SHIFT = 6      # vth << 6
VTH_BITS = 17            # unsigned threshold mantissa
BIAS_MANT_BITS = 13      # signed bias mantissa
BIAS_EXP_MAX = 7         # bias exponent 0..7 (3 bits)
WEIGHT_BITS = 8
V_LIMIT = (1 << (STATE_BITS - 1)) - 1   # v saturates at +-(2^23 - 1)
VTH_MAX = (1 << VTH_BITS) - 1
SIGN_MODES = ("mixed", "excitatory", "inhibitory")


def weight_limits(sign_mode: str, num_weight_bits: int = WEIGHT_BITS) -> tuple[int, int]:
    """Range of stored weight words after Lava's clip + truncate (8 bits: mixed [-256, 254])."""
    step = weight_step(sign_mode, num_weight_bits)
    return {"mixed": (-256, 256 - step), "excitatory": (0, 256 - step),
            "inhibitory": (-(256 - step), 0)}[sign_mode]


def weight_step(sign_mode: str, num_weight_bits: int = WEIGHT_BITS) -> int:
    """Spacing of the weight words Lava keeps: it clears ``8 - num_weight_bits (+1 if mixed)`` low bits."""
    return 1 << (WEIGHT_BITS - num_weight_bits + int(sign_mode == "mixed"))


def weight_mantissa(scaled, sign_mode: str, weight_exp: int, num_weight_bits: int = WEIGHT_BITS):
    """Nearest weight word (ties away from zero) to ``scaled / 2^weight_exp``, saturated to the words
    Lava keeps for ``sign_mode`` and ``num_weight_bits``. numpy arrays or torch tensors (float64)."""
    step = weight_step(sign_mode, num_weight_bits)
    lo, hi = weight_limits(sign_mode, num_weight_bits)
    value = array_ops(scaled).as_float(scaled) / 2.0 ** weight_exp
    return saturate(step * round_half_away(value / step), lo, hi)


def shift_activation(total, weight_exp: int):
    """Lava Dense's exponent on a summed activation in int32: wrap, shift (<< e or floor >> -e), wrap."""
    return wrap_twos_complement(shift_by_exponent(wrap32(total), weight_exp), 32)


def lava_weight_words(weights, sign_mode: str, num_weight_bits: int = 8) -> np.ndarray:
    """What Lava's Dense does to the weights it is given: clip to 8 bits for the sign mode, then clear
    ``8 - num_weight_bits (+1 if mixed)`` low bits with an arithmetic shift."""
    w = as_int(weights)
    flip = -1 if sign_mode == "inhibitory" else 1
    w = w * flip
    mixed = int(sign_mode == "mixed")
    w = saturate(w, -(1 << WEIGHT_BITS) * mixed, (1 << WEIGHT_BITS) - 1)
    w = truncate_low_bits(w, WEIGHT_BITS - num_weight_bits + mixed)
    return w * flip


def dense_activation(spikes, weight_mant, weight_exp: int) -> np.ndarray:
    """``shift(W @ s, weight_exp)`` in Lava's int32: the exponent scales the summed activation (one
    slot), not each weight; a left shift wraps like int32. ``spikes`` is (..., in) of 0/1."""
    weight = np.asarray(weight_mant)
    total = dense_products(spikes, weight).astype(np.int64)
    if activation_fits_int32(weight, weight_exp):
        return total << weight_exp if weight_exp > 0 else total >> -weight_exp
    return shift_activation(total, weight_exp)


def dense_products(spikes, weight: np.ndarray) -> np.ndarray:
    """``s @ W.T`` in float BLAS, exact: every partial sum is an integer bounded by the largest row sum
    of |W|, so float32 is used when that bound is below 2^24 and float64 (exact below 2^53) otherwise."""
    dtype = np.float32 if _row_abs_bound(weight) < (1 << 24) else np.float64
    flat = np.asarray(spikes).reshape(-1, np.shape(spikes)[-1])
    return matmul_rows(flat, weight, dtype).reshape(*np.shape(spikes)[:-1], weight.shape[0])


def activation_fits_int32(weight: np.ndarray, weight_exp: int) -> bool:
    """True when no sum of 0/1 inputs, shifted by ``weight_exp``, can leave int32: Lava's wraps are no-ops."""
    return (_row_abs_bound(weight) << max(weight_exp, 0)) < (1 << 31)


def _row_abs_bound(weight: np.ndarray) -> int:
    return int(np.abs(weight).sum(axis=1).max()) if weight.size else 0


def wrap32(x) -> np.ndarray:
    """Lava computes in numpy int32: sums and left shifts wrap modulo 2^32."""
    return wrap_twos_complement(x, 32)


def effective_bias(bias_mant, bias_exp) -> np.ndarray:
    """The bias Loihi adds to v each step: bias_mant shifted by bias_exp (left for positive exponents), wrapped to 32
    bits, in v units."""
    return wrap32(shift_by_exponent(bias_mant, bias_exp))


def lif_current(u, activation, du: int) -> np.ndarray:
    """u <- wrap24(rtz(u * (4096 - (du + 1)), 12) + (a << 6)), with Lava's int32 intermediates."""
    decayed = shift_round_toward_zero(as_int(u) * (DECAY_UNITY - (du + 1)), DECAY_BITS)
    total = wrap32(decayed + wrap32(wrap32(activation) << ACTIVATION_SHIFT))
    return wrap_like_lava(total, STATE_BITS)


def lif_voltage(v, u, dv: int, bias) -> np.ndarray:
    """v <- clip(rtz(v * (4096 - dv), 12) + u + bias, -(2^23 - 1), 2^23 - 1), int32 intermediates."""
    decayed = shift_round_toward_zero(as_int(v) * (DECAY_UNITY - dv), DECAY_BITS)
    return saturate(wrap32(decayed + u + bias), -V_LIMIT, V_LIMIT)


def lif_fire(v, vth: int, comparison: str = "gt", reset: str = "zero"):
    """Spikes where v > (vth << 6) (``comparison`` "ge": v >= (vth << 6), exact on the integer v), and v
    reset to 0 there when ``reset`` is "zero" (other kinds act at the next update: ``lif_reset_voltage``);
    returns (v_after_reset, spikes)."""
    threshold = array_ops(v).as_int(vth) << THRESHOLD_SHIFT
    spikes = v >= threshold if comparison == "ge" else v > threshold
    return (select(spikes, 0, v) if reset == "zero" else v), spikes


def lif_reset_voltage(v, u, dv: int, bias, vth: int, reset: str, fired_before):
    """The v update of the reset kinds that act one step after a spike (``fired_before`` = s[t-1]):
    "subtract" subtracts (vth << 6), undecayed, inside the update (before v saturates); "zero_next" sets
    v to 0 instead of updating it; "zero" and "none" update as ``lif_voltage``."""
    if reset == "subtract":
        return lif_voltage(v, u, dv, bias - (as_int(fired_before) * (int(vth) << THRESHOLD_SHIFT)))
    updated = lif_voltage(v, u, dv, bias)
    return select(fired_before, 0, updated) if reset == "zero_next" else updated


def lif_step(u, v, activation, du: int, dv: int, bias, vth: int, reset: str = "zero", comparison: str = "gt",
             fired_before=None):
    """One Lava LIF fixed_pt step; returns (u, v_after_reset, spikes). numpy arrays or torch tensors.
    ``reset`` and ``comparison`` other than Lava's ("zero", "gt") are snnc's Lava process
    (``snnc.ir.nodes.LoihiLIF``); "subtract" and "zero_next" read the previous step's ``fired_before``."""
    u = lif_current(u, activation, du)
    if reset in ("zero", "none"):
        v = lif_voltage(v, u, dv, bias)
    else:
        v = lif_reset_voltage(v, u, dv, bias, vth, reset, fired_before)
    v, spikes = lif_fire(v, vth, comparison, reset)
    return u, v, spikes


def decay_preimage(y, dv: int) -> np.ndarray:
    """Smallest-magnitude integer v with rtz(v * (4096 - dv), 12) == y (exists since 4096 - dv <= 4096)."""
    y = as_int(y)
    c = DECAY_UNITY - dv
    magnitude = -((-np.abs(y) * DECAY_UNITY) // c)   # ceil(|y| * 4096 / c)
    return np.sign(y) * magnitude


def warmup_trajectory(bias, dv: int, steps: int, target=0) -> list[np.ndarray]:
    """Voltages of ``steps`` input-free updates (u = 0) that end exactly at ``target``, computed
    backwards: ``[target, ..., v_init]``.

    A neuron at pipeline latency L receives its first input at hop step L; its bias would otherwise
    integrate for L steps first. Starting from ``v_init`` makes steps 0..L-1 land on v = 0 at step L-1.
    Stops early (the last entry then exceeds the 24-bit range) when the preimage leaves v's range.
    """
    trajectory = [np.broadcast_to(as_int(target), np.shape(as_int(bias))).copy()]
    for _ in range(steps):
        v = decay_preimage(trajectory[-1] - as_int(bias), dv)
        trajectory.append(v)
        if np.any(np.abs(v) > V_LIMIT):
            break
    return trajectory


def conv_output_wrap(activation) -> np.ndarray:
    """Lava's Conv fixed_pt output from the exact sum ``activation``: its scipy convolution sums in
    float64 (exact here), casts to the int32 weight dtype, then wraps to signed 24 bits. A sum outside
    int32 (only graded inputs reach one) casts to -2^31 (numpy's float->int32 cast on x86, which
    Lava's run also hits, with a RuntimeWarning), and so wraps to 0."""
    total = np.asarray(activation, np.int64)
    total = np.where((total < -(1 << 31)) | (total >= 1 << 31), -(1 << 31), total)
    return wrap_twos_complement(total, STATE_BITS)


def conv_products(spikes, weight, in_shape, stride, padding, groups: int) -> np.ndarray | None:
    """A conv synapse's output activation as exact float32 sums (B, O, Ho, Wo) where no sum can reach
    2^23, so that Lava's 24-bit output wrap is a no-op (and float32 is exact); None otherwise."""
    if conv2d_sum_bound(spikes, weight) >= 1 << (STATE_BITS - 1):
        return None
    return conv2d_float32_sum(spikes, weight, in_shape, stride, padding, groups)


def decay_to_du(current_decay):
    """Current decay fraction -> Lava ``du`` (hardware adds 1): du = round(decay * 4096) - 1; an int for
    a scalar, an int64 array for per-neuron decays."""
    return _int_or_array(round_half_away(np.asarray(current_decay, np.float64) * DECAY_UNITY) - 1)


def decay_to_dv(voltage_decay):
    """Voltage decay fraction -> Lava ``dv`` = round(decay * 4096); an int for a scalar, else an array."""
    return _int_or_array(round_half_away(np.asarray(voltage_decay, np.float64) * DECAY_UNITY))


def _int_or_array(words: np.ndarray):
    """An int for a 0-d array of words, else the int64 array."""
    words = np.asarray(words, np.int64)
    return int(words) if words.ndim == 0 else words


def split_bias(bias_v_units) -> tuple[np.ndarray, np.ndarray]:
    """Integer voltage bias -> (mantissa, exponent) with 13-bit signed mantissa and exponent 0..7,
    choosing per neuron the smallest exponent that fits (exact when the value needs no more bits)."""
    target = as_int(bias_v_units)
    mant_max = (1 << (BIAS_MANT_BITS - 1)) - 1
    exp = np.zeros_like(target)
    for e in range(BIAS_EXP_MAX + 1):
        needs = np.abs(target) > (mant_max << e)
        exp = np.where(needs, e + 1, exp)
    exp = np.minimum(exp, BIAS_EXP_MAX)
    mant = round_half_away(target / (1 << exp).astype(np.float64))
    return saturate(mant, -mant_max - 1, mant_max), exp
