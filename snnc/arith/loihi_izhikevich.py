"""snnc's fixed-point Izhikevich for Loihi-style integer neurons (Lava 0.10 has no Izhikevich process; RF_IZ
is a resonate-and-fire neuron). The one definition the emulator, snnc's Lava process ``SnncIzhikevich`` and
the lowering's range checks share.

Formats (Loihi's conventions where it has one, see shared SEMANTICS.md):

* states i (synaptic current, mV/ms), v (mV), u (mV/ms): signed 24-bit registers holding value * 2^S,
  saturating at +-(2^23 - 1) like Loihi's v; S (``frac_bits``, 4..16) is chosen per group at compile
  time as the finest scale at which the worst-case states fit (``snnc.lowering.loihi_izhikevich``);
* coefficients k2 (0.04), k1 (5), h (the Euler step in ms), a h, b: signed words of value * 2^24
  (``COEFF_FRAC_BITS``), at most 32 bits; k0 (140), the bias, c, d and the threshold: value * 2^S;
* the current's decay: a 12-bit word di (current_decay * 4096; 4096 = no memory), applied as Loihi's
  LIF applies du: rtz(i * (4096 - di), 12); the synaptic activation enters MSB-aligned, ``a << 6``.

Per step, from (i, v, u) of the previous step and the summed activation a (``>>``: floor shift)::

    i     = sat24(rtz(i * (4096 - di), 12) + (a << 6))
    slope = k1 + ((k2 * v) >> S)                                   5 + 0.04 v          (2^-24 units)
    dv    = ((slope * v) >> 24) + k0 - u + i + bias                0.04 v^2 + 5 v + 140 - u + i + bias
    v'    = sat24(v + ((hk * dv) >> 24))                           one forward-Euler step of h ms
    u'    = sat24(u + ((ahk * (((bk * v) >> 24) - u)) >> 24))      u + h a (b v - u)
    s     = v' > vth   (v' >= vth for comparison "ge")
    v     = c where s else v';   u = sat24(u' + d) where s else u'

(the float ``Izhikevich`` node's Euler step, term for term). Every product is formed in 64 bits;
``product_bound`` gives the largest intermediate for given words, which the lowering checks below 2^63.
A v' above the threshold that saturates is harmless: it is replaced by c in the same step.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.rounding import round_half_away, saturate, shift_by_exponent, shift_round_toward_zero

STATE_BITS = 24
STATE_LIMIT = (1 << (STATE_BITS - 1)) - 1      # states saturate at +-(2^23 - 1)
COEFF_FRAC_BITS = 24                           # coefficient words: value * 2^24
COEFF_WORD_BITS = 32                           # signed coefficient words
COEFF_LIMIT = (1 << (COEFF_WORD_BITS - 1)) - 1
DECAY_BITS = 12
DECAY_UNITY = 1 << DECAY_BITS                  # di = 4096: the current keeps no memory
ACTIVATION_SHIFT = 6                           # a << 6, as Loihi's LIF current
FRAC_BITS_RANGE = (4, 16)                      # the state scales a lowering may choose
PRODUCT_LIMIT = (1 << 63) - 1                  # 64-bit intermediates

WORD_FIELDS = ("di", "k2", "k1", "k0", "hk", "ahk", "bk", "bias", "c", "d", "vth")


def _floor_shift(x, bits: int):
    """x >> bits (floor): the shift of every product."""
    return shift_by_exponent(x, -bits)


def _sat(x):
    return saturate(x, -STATE_LIMIT, STATE_LIMIT)


def current_step(i, activation, di: int):
    """i = sat24(rtz(i * (4096 - di), 12) + (a << 6))."""
    decayed = shift_round_toward_zero(np.asarray(i, np.int64) * (DECAY_UNITY - int(di)), DECAY_BITS)
    return _sat(decayed + (np.asarray(activation, np.int64) << ACTIVATION_SHIFT))


def izhikevich_update(i, v, u, activation, words: dict, frac_bits: int, ge: bool):
    """One step of the fixed-point Izhikevich group (equations in the module docstring): (i, v, u, v_pre,
    spikes) from the previous (i, v, u) and the summed activation, all int64 arrays (batch, neurons) or
    broadcastable. ``words``: the ``WORD_FIELDS`` (scalars or per-neuron arrays); v_pre is v' before the
    reset."""
    w = {k: np.asarray(words[k], np.int64) for k in WORD_FIELDS}
    v = np.asarray(v, np.int64)
    u = np.asarray(u, np.int64)
    i = current_step(i, activation, int(w["di"]))
    slope = w["k1"] + _floor_shift(w["k2"] * v, frac_bits)
    dv = _floor_shift(slope * v, COEFF_FRAC_BITS) + w["k0"] - u + i + w["bias"]
    v_pre = _sat(v + _floor_shift(w["hk"] * dv, COEFF_FRAC_BITS))
    du = _floor_shift(w["bk"] * v, COEFF_FRAC_BITS) - u
    u_new = _sat(u + _floor_shift(w["ahk"] * du, COEFF_FRAC_BITS))
    spikes = v_pre >= w["vth"] if ge else v_pre > w["vth"]
    v_out = np.where(spikes, w["c"], v_pre)
    u_out = np.where(spikes, _sat(u_new + w["d"]), u_new)
    return i, v_out, u_out, v_pre, spikes


def product_bound(words: dict, frac_bits: int, activation_max: int = 0) -> int:
    """The largest |intermediate| ``izhikevich_update`` can form with these words, for any states inside
    24 bits and |activation| <= ``activation_max`` (Python integers, exact)."""
    def big(name):
        return int(np.max(np.abs(np.asarray(words[name], np.int64))))
    s = STATE_LIMIT
    k = COEFF_FRAC_BITS
    current = max(s * DECAY_UNITY, s + (int(activation_max) << ACTIVATION_SHIFT))
    slope = big("k1") + ((big("k2") * s) >> frac_bits) + 1
    dv = ((slope * s) >> k) + 1 + big("k0") + 3 * s + big("bias")
    du = ((big("bk") * s) >> k) + 1 + s
    return max(current, big("k2") * s, slope * s, big("hk") * dv, big("bk") * s, big("ahk") * du)


def encode(value, bits: int) -> np.ndarray:
    """value * 2^bits rounded to the nearest integer (ties away from zero), int64."""
    return np.asarray(round_half_away(np.asarray(value, np.float64) * 2.0 ** bits), np.int64)


def decode(word, bits: int) -> np.ndarray:
    """The real value of ``word`` at 2^-bits."""
    return np.asarray(word, np.float64) / 2.0 ** bits
