"""SpiNNaker fixed-point arithmetic as sPyNNaker 7.4.1's IF_curr_exp binary computes it.

Sources read (C, Apache-2.0 mainline that sPyNNaker 7.x builds; Python from the installed 1!7.4.1 package):
``neuron_model_lif_impl.h`` (closed-form LIF), ``synapse_types_exponential_impl.h`` + ``exp_synapse_utils.h``
(exponential current), ``neuron/decay.h``, ``common/maths-util.h`` (``kdivk``/``kdivui``),
``neuron_impl_standard.h`` (update order), ``neuron.c``/``synapse_row.h``/``synapses.c`` (ring buffers),
spinn_common 7.4.1 ``stdfix-exp.c``/``utils.h`` (``expk``/``expulr``), and the Python
``PopulationVertex.get_ring_buffer_shifts``/``get_weight_scales`` and ``SynapseDynamicsStatic``.

Number formats (all values are Python/numpy integers holding the raw bits):

* ``accum`` s16.15: value = bits / 2^15, signed 32-bit. Host values are encoded round-half-even,
  thresholds as the exact word of their comparison (``encode_threshold_s1615``).
* ``unsigned long fract`` u0.32: value = bits / 2^32 (decays and input scales).
* ring-buffer entries: unsigned 16-bit, saturating at 0xFFFF.

Operations: accum * accum = floor(a * b / 2^15) wrapped to 32 bits (GCC's ARM ``mulsa3``: 64-bit product,
bits 46..15, no rounding, no saturation); accum + accum wraps to 32 bits; ``decay_s1615(x, d)`` =
floor(x * d / 2^32). Per tick (``neuron_impl_standard.h`` order) for every neuron::

    isyn_r  += decay_s1615((ring_r[t] << shift_r), init_r)        r in {exc, inh}; ring slot t then cleared
    if refract_timer <= 0:
        in     = isyn_e - isyn_i + I_offset
        alpha  = in * R + V_rest
        V      = alpha - exp_TC * (alpha - V)
    else: refract_timer -= 1
    if V >= V_thresh: V = V_reset; refract_timer = T_refract; spike
    isyn_r   = decay_s1615(isyn_r, decay_r)

with the constants computed on the chip from the host words: R = kdivk(tau_m, c_m),
exp_TC = expk(-kdivk(dt, tau_m)), T_refract = ceil(kdivk(tau_refrac, dt)), decay_r = expulr(-kdivk(dt, tau_r)),
init_r = decay_s1615_to_u032(kdivk(tau_r, dt), 1.0ulr - decay_r) where ``1.0ulr`` is the largest u0.32
value 0xFFFFFFFF (a fract constant 1.0 saturates).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnc.arith.rounding import (as_int, round_ceiling, round_floor, round_half_even, saturate, shift_by_exponent,
                                    wrap_twos_complement, wrap_unsigned)

FRACTIONAL_BITS = 15
ONE = 1 << FRACTIONAL_BITS            # 1.0 as s16.15 bits
U32 = (1 << 32) - 1                    # largest u0.32 value ("1.0ulr")
ACCUM_MIN, ACCUM_MAX = -(1 << 31), (1 << 31) - 1
RING_BUFFER_MAX = 0xFFFF               # ring-buffer slots saturate here (synapses.c)
WEIGHT_WORD_BITS = 16                  # weights in the synaptic word
WEIGHT_WORD_MAX = (1 << WEIGHT_WORD_BITS) - 1
MAX_RING_BUFFER_SHIFT = 15             # word << shift must stay a positive s16.15 value (< 2^31)

# spinn_common 7.4.1 stdfix-exp.c: e^z * 2^32 for integer z in [-13, 12], expm1 at 1/16 steps (u0.32) and
# the three coefficients of the quadratic that finishes the fractional part. Numeric data of the chip's
# exponential, reproduced so that the host computes exactly the constants the chip computes.
_EXP_HI = (
    9708, 26389, 71733, 194991, 530041, 1440801, 3916503, 10646160, 28939262, 78665070, 213833830,
    581260615, 1580030169, 4294967296, 11674931555, 31735754293, 86266724208, 234497268814,
    637429664642, 1732713474316, 4710003551159, 12803117065094, 34802480465680, 94602950235157,
    257157480542844, 699026506411923)
_EXPM1_MID = (
    0, 260218914, 504671961, 734314346, 950043403, 1152702096, 1343082321, 1521927990,
    1689937949, 1847768698, 1996036966, 2135322113, 2266168400, 2389087112, 2504558555, 2613033936)
_EXP_SERIES = (5294, 4293434720, 2081624032)
_EXP_ARG_MAX = 363408                  # above: saturate
_EXP_ARG_MIN = -340695                 # below: 0
_INT32_MAX = (1 << 31) - 1


def encode_s1615(value) -> np.ndarray:
    """Host encoding of a real value as s16.15 bits: round half to even of value * 2^15."""
    return round_half_even(np.asarray(value, dtype=np.float64) * ONE)


def encode_threshold_s1615(threshold, comparison: str) -> np.ndarray:
    """The s16.15 ``V_thresh`` at which the chip's ``V >= V_thresh`` fires on exactly the words whose real value
    passes the float test ``v >= threshold`` ('ge') or ``v > threshold`` ('gt').

    A word V stands for V / 2^15, so with x = threshold * 2^15 (exact: a power-of-two scaling) the float test
    holds for the integers V >= x or V > x; the smallest such integer is ceil(x) ('ge') or floor(x) + 1 ('gt').
    Rounding x to nearest (plus one for 'gt') fires one word early where rint(x) < x ('ge') and one word late
    where rint(x) > x ('gt')."""
    x = np.asarray(threshold, dtype=np.float64) * ONE
    if comparison == "gt":
        return round_floor(x) + 1
    if comparison == "ge":
        return round_ceiling(x)
    raise ValueError(f"comparison is 'gt' or 'ge', got {comparison!r}")


def decode_s1615(bits) -> np.ndarray:
    """s16.15 raw words -> float values (divided by 2^15)."""
    return np.asarray(bits, dtype=np.float64) / ONE


def wrap32(x) -> np.ndarray:
    """accum additions and products wrap modulo 2^32 (GCC fixed point without saturation)."""
    return wrap_twos_complement(x, 32)


def accum_multiply(a, b) -> np.ndarray:
    """accum * accum: floor(a * b / 2^15), wrapped to 32 bits; exact for 32-bit operands."""
    return wrap32(shift_by_exponent(as_int(a) * as_int(b), -FRACTIONAL_BITS))


def multiply_u032(x, fraction) -> np.ndarray:
    """``decay_s1615``: floor(x * fraction / 2^32) for signed 32-bit x and a u0.32 fraction.

    The 64-bit product can exceed int64, so it is split: with f = fh * 2^16 + fl,
    floor((x*fh*2^16 + x*fl) / 2^32) = floor((x*fh + floor(x*fl / 2^16)) / 2^16) (nested floors)."""
    x = as_int(x)
    f = as_int(fraction)
    high = x * (f >> 16)
    low = shift_by_exponent(x * (f & 0xFFFF), -16)
    return shift_by_exponent(high + low, -16)


def kdivk(a: int, b: int) -> int:
    """maths-util.h ``kdivk``: unsigned 64-bit division (a << 15) / b, truncated to 32 bits."""
    if a < 0 or b <= 0:
        raise ValueError(f"kdivk is used on positive values only (got {a}, {b})")
    return ((a << FRACTIONAL_BITS) // b) & U32


def kdivui(a: int, n: int) -> int:
    """maths-util.h ``kdivui``: accum divided by an unsigned integer (truncating)."""
    return a // n


def _coefficient_multiply(c: int, x: int) -> int:
    return ((c * x) >> 32) & U32


def _round64(x: int) -> int:
    """utils.h ``round64``: the high word, plus one when the low word is >= INT32_MAX."""
    return (x >> 32) + (1 if (x & U32) >= _INT32_MAX else 0)


def _scale64(x: int, fraction: int) -> int:
    """utils.h ``scale64``: x * fraction / 2^32 for a 64-bit x, rounding the low half's product."""
    return _round64((x & U32) * fraction) + (x >> 32) * fraction


def _exp_series(y: int) -> int:
    tmp = (_EXP_SERIES[1] - _coefficient_multiply(_EXP_SERIES[2], y)) & U32
    return (_coefficient_multiply(tmp, y) + _EXP_SERIES[0]) & U32


def _exp_u32_32(n: int) -> int:
    """stdfix-exp.c ``__expi64``: e^(n / 2^15) as an unsigned 32.32 fixed-point integer."""
    whole = n >> FRACTIONAL_BITS
    fraction = n - (whole << FRACTIONAL_BITS)
    if fraction == 0:
        return _EXP_HI[13 + whole]
    whole += 1
    fraction = ONE - fraction
    value = _EXP_HI[13 + whole]
    value -= _scale64(value, _EXPM1_MID[fraction >> 11])
    value -= _scale64(value, _exp_series((fraction & 0x7FF) << 17))
    return value & ((1 << 64) - 1)


def expk(bits: int) -> int:
    """stdfix-exp.c ``expk``: e^x for an s16.15 argument, as s16.15 bits (truncating)."""
    if bits > _EXP_ARG_MAX:
        return _INT32_MAX
    if bits < _EXP_ARG_MIN:
        return 0
    return (_exp_u32_32(bits) >> 17) & U32


def expulr(bits: int) -> int:
    """stdfix-exp.c ``expulr``: e^x as u0.32 bits: the low 32 bits of the 32.32 value (so e^0 gives 0)."""
    if bits > _EXP_ARG_MAX:
        return _INT32_MAX
    if bits < _EXP_ARG_MIN:
        return 0
    return _exp_u32_32(bits) & U32


def decay_s1615_to_u032(x: int, fraction: int) -> int:
    """decay.h ``decay_s1615_to_u032``: (x * fraction) >> 15 as u0.32 (x >= 0)."""
    return ((x * fraction) >> FRACTIONAL_BITS) & U32


def ceil_accum(bits: int) -> int:
    """neuron_model_lif_impl.h ``lif_ceil_accum``."""
    return (bits >> FRACTIONAL_BITS) + (1 if bits & 0x7FFF else 0)


@dataclass(frozen=True)
class LifConstants:
    """What ``neuron_model_initialise`` and ``decay_and_init`` compute on the chip (raw bits; ints, or
    int64 arrays with one value per neuron)."""

    r_membrane: int        # s16.15, MOhm
    exp_tc: int            # s16.15, e^(-dt/tau_m)
    t_refract: int         # ticks
    decay_exc: int         # u0.32
    init_exc: int          # u0.32
    decay_inh: int
    init_inh: int


def synapse_constants(tau_bits: int, dt_bits: int = ONE) -> tuple[int, int]:
    """(decay, init) of one exponential receptor: decay = expulr(-dt/tau),
    init = (tau/dt) * (1.0ulr - decay) (``exp_synapse_utils.h``)."""
    decay = expulr(-kdivk(dt_bits, tau_bits))
    init = decay_s1615_to_u032(kdivk(tau_bits, dt_bits), (U32 - decay) & U32)
    return decay, init


def lif_constants(tau_m, cm, tau_refrac, tau_syn_e, tau_syn_i, dt_bits: int = ONE) -> LifConstants:
    """On-chip constants of IF_curr_exp neurons from their s16.15 parameter words (one sub-step): ints
    where every word is one value per population, else int64 arrays with one constant per neuron (the
    chip computes them per neuron, ``neuron_model_initialise``)."""
    words = (tau_m, cm, tau_refrac, tau_syn_e, tau_syn_i)
    if all(np.ndim(w) == 0 for w in words):
        return _lif_constants(*(int(w) for w in words), dt_bits)
    columns = np.broadcast_arrays(*(np.asarray(w, np.int64).reshape(-1) for w in words))
    rows, index = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    distinct = [_lif_constants(*(int(w) for w in row), dt_bits) for row in rows]
    return LifConstants(**{name: np.array([getattr(c, name) for c in distinct], np.int64)[index.reshape(-1)]
                           for name in LifConstants.__dataclass_fields__})


def _lif_constants(tau_m: int, cm: int, tau_refrac: int, tau_syn_e: int, tau_syn_i: int,
                   dt_bits: int = ONE) -> LifConstants:
    decay_e, init_e = synapse_constants(tau_syn_e, dt_bits)
    decay_i, init_i = synapse_constants(tau_syn_i, dt_bits)
    refract = ceil_accum(kdivk(tau_refrac, dt_bits)) if tau_refrac else 0
    return LifConstants(r_membrane=kdivk(tau_m, cm), exp_tc=expk(-kdivk(dt_bits, tau_m)), t_refract=refract,
                        decay_exc=decay_e, init_exc=init_e, decay_inh=decay_i, init_inh=init_i)


def ring_buffer_shift(max_summed_weight: float) -> int:
    """``PopulationVertex.get_ring_buffer_shifts`` for one receptor: ceil(log2(w)) (>= 0), plus one if
    2^shift <= w (the 16-bit range is 0 .. just under 2^shift)."""
    w = float(max_summed_weight)
    shift = 0 if w <= 0 else int(round_ceiling(max(0.0, math.log2(w))))
    return shift + 1 if 2 ** shift <= w else shift


def weight_scale(shift: int) -> float:
    """``get_weight_scales``: stored weight = |w| * 2^(15 - shift) (IF_curr_exp global scale 1)."""
    return float(2.0 ** (16 - (shift + 1)))


def weight_words(weights_na, shift: int) -> np.ndarray:
    """``SynapseDynamicsStatic``: rint(|w| * scale) & 0xFFFF, the 16-bit word in each synaptic row."""
    scaled = round_half_even(np.abs(np.asarray(weights_na, dtype=np.float64)) * weight_scale(shift))
    return wrap_unsigned(scaled, WEIGHT_WORD_BITS)


def word_to_weight(words, shift: int) -> np.ndarray:
    """The nA value a word stands for: exactly representable in float64, so sPyNNaker's rint restores it."""
    return np.asarray(words, dtype=np.float64) / weight_scale(shift)


def ring_buffer_sum(words_times_spikes) -> np.ndarray:
    """One ring slot after sequential saturating adds of non-negative words: min(sum, 0xFFFF)."""
    return saturate(words_times_spikes, 0, RING_BUFFER_MAX)


def ring_to_input(ring, shift: int) -> np.ndarray:
    """``synapse_row_convert_weight_to_input``: (int32) ring << shift, read as s16.15 bits."""
    return wrap32(as_int(ring) << shift)


def packed_input_sum(rings: list) -> np.ndarray:
    """``c_main_neurons.c: sum``: the synapse cores' 16-bit slots added as packed little-endian 32-bit
    words (neurons 2i, 2i + 1 share a word): each half wraps at 2^16 and the low half carries into the
    high one. One ring (a combined core) passes through unchanged."""
    if len(rings) == 1:
        return np.asarray(rings[0])
    rings = [as_int(r) for r in rings]
    size = rings[0].shape[-1]
    padded = [np.pad(r, [(0, 0)] * (r.ndim - 1) + [(0, size % 2)]) for r in rings]
    words = wrap_unsigned(sum(p[..., 0::2] + (p[..., 1::2] << 16) for p in padded), 32)
    out = np.empty(padded[0].shape, np.int64)
    out[..., 0::2], out[..., 1::2] = words & 0xFFFF, words >> 16
    return out[..., :size]


def bias_only_update(v, i_offset, const: LifConstants, v_rest: int) -> np.ndarray:
    """One tick of a non-refractory IF_curr_exp neuron with no synaptic current (isyn_e = isyn_i = 0):
    ``alpha = i_offset * R + v_rest; V' = alpha - exp_tc * (alpha - V)``, in the chip's accum arithmetic."""
    alpha = wrap32(accum_multiply(i_offset, const.r_membrane) + v_rest)
    return wrap32(alpha - accum_multiply(const.exp_tc, wrap32(alpha - as_int(v))))


def bias_only_start(i_offset, const: LifConstants, v_rest: int, v_thresh, target, ticks: int) -> list[np.ndarray]:
    """States v_0 .. v_ticks (per neuron) with ``bias_only_update(v_k) == v_(k+1)`` and v_ticks == target:
    the voltage to start from so that ``ticks`` input-free ticks end exactly at ``target``.

    Each step back is a binary search: the update is non-decreasing in V and moves by 0 or 1 per unit
    of V (exp_tc < 1), so every value between its images of the search range has a preimage; the one
    nearest the target is taken. Raises ValueError when a target lies outside that range, or when a state
    before the last reaches ``v_thresh`` (the bias would fire the neuron before its first input)."""
    states = [np.asarray(target, dtype=np.int64)]
    for _ in range(ticks):
        states.insert(0, _preimage(states[0], i_offset, const, v_rest))
    if any(np.any(v >= v_thresh) for v in states[:-1]):
        raise ValueError(f"the bias alone reaches v_thresh within the {ticks} input-free ticks before the first input")
    return states


def _preimage(target: np.ndarray, i_offset, const: LifConstants, v_rest: int) -> np.ndarray:
    """The V with ``bias_only_update(V) == target`` nearest to ``target`` (the preimages form an interval;
    a resting neuron keeps its voltage), searched within 2^30 of alpha, where alpha - V cannot wrap and the
    update is monotone."""
    alpha = np.broadcast_to(wrap32(accum_multiply(i_offset, const.r_membrane) + v_rest), np.shape(target))
    low, high = alpha - (1 << 30), alpha + (1 << 30)
    if np.any(bias_only_update(low, i_offset, const, v_rest) > target) or \
            np.any(bias_only_update(high, i_offset, const, v_rest) < target):
        raise ValueError("no voltage within 2^30 of the resting drive reaches the target in one input-free tick")
    first = _first_reaching(target, low, high, i_offset, const, v_rest)
    last = _first_reaching(target + 1, low, high + 1, i_offset, const, v_rest) - 1
    if np.any(first > last):
        raise ValueError("an input-free tick skips the target voltage")
    return np.clip(target, first, last)


def _first_reaching(target, low, high, i_offset, const: LifConstants, v_rest: int) -> np.ndarray:
    """Smallest V in [low, high] whose update reaches ``target`` (``high`` when none does)."""
    while np.any(low < high):
        middle = (low + high) >> 1
        reached = bias_only_update(middle, i_offset, const, v_rest) >= target
        high, low = np.where(reached, middle, high), np.where(reached, low, middle + 1)
    return low


def add_exp_input(isyn: dict, rings: dict, ring_buffer_shift, inits) -> None:
    """One tick's input into exponential synapses, in place: per receptor ("excitatory", "inhibitory"),
    the ring slots of its synapse cores (each saturated, then packed-summed) -> s16.15 input at the
    receptor's ring-buffer shift -> isyn += floor(input * init / 2^32) (``add_input_exp``)."""
    for receptor, shift, init in zip(("excitatory", "inhibitory"), ring_buffer_shift, inits):
        per_core = rings.get(receptor)
        if per_core is None:
            continue
        value = ring_to_input(packed_input_sum([ring_buffer_sum(r) for r in per_core]), shift)
        isyn[receptor] = wrap32(isyn[receptor] + multiply_u032(value, init))
