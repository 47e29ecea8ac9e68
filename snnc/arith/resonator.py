"""Integer arithmetic of Lava 0.10's resonate-and-fire processes (``lava.proc.rf.models.PyRFModelFixed``,
``lava.proc.rf_iz.models.PyRF_IZModelFixed``, fixed_pt) and of the way lava-dl netx 0.6 parametrises them.

A ``.net`` file stores the decay words ``sinDecay`` / ``cosDecay`` (``(1 - alpha) sin/cos(2 pi / period)``
scaled by 2^12). netx does not hand them to Lava: it turns them into a float period and decay
(``slayer.neuron.rf.neuron_params``) and Lava's ``RF`` process turns those back into words with
``np.int32`` (truncation toward zero), so the words Lava computes with may be one below the file's.
``lava_decay_words`` repeats that float round trip operation for operation (numpy float64).

Lava's fixed_pt step (all states int64 inside a step, stored as int32, clipped to 24 bits)::

    a_re = wrap32(a_real << state_exp);  a_im = wrap32(a_imag << state_exp)
    re' = rtz(cos * re >> decay_bits) - rtz(sin * im >> decay_bits) + a_re
    im' = rtz(sin * re >> decay_bits) + rtz(cos * im >> decay_bits) + a_im
    re', im' clipped to [-(2^23 - 1), 2^23 - 1]

with ``rtz(x >> n) = sign(x) * (|x| >> n)`` (Lava's ``scale_volt``). ``RF`` (RF_PHASE) fires on
``re' >= vth and im' >= 0 and im < 0`` (the phase crossing zero upwards); ``RF_IZ`` fires on ``im' >= vth``
and then sets ``re' = 0``, ``im' = vth - 1``. ``vth = vThMant << state_exp``.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.loihi import wrap32

P_SCALE = 1 << 12          # slayer's parameter scale: decay words are fractions of 2^12
VOLTAGE_LIMIT = (1 << 23) - 1   # Lava's RF clips real and imag to 24-bit two's complement less one


def netx_period_and_decay(sin_word: int, cos_word: int) -> tuple[float, float]:
    """(period, alpha) netx passes to Lava's ``RF`` for the file's words: slayer's ``neuron_params``
    (``decay = 1 - sqrt(s^2 + c^2)``, ``frequency = atan2(s, c) / 2 / pi``, ``period = 1 / frequency``)."""
    sin_decay = np.int64(sin_word) / P_SCALE
    cos_decay = np.int64(cos_word) / P_SCALE
    decay = 1 - np.sqrt(sin_decay ** 2 + cos_decay ** 2)
    frequency = np.arctan2(sin_decay, cos_decay) / 2 / np.pi
    return 1 / frequency, decay


def lava_decay_words(sin_word: int, cos_word: int, decay_bits: int = 12) -> tuple[int, int]:
    """The (sin, cos) decay words Lava's ``RF`` process computes from netx's period and alpha:
    ``np.int32((1 - alpha) * sin(2 pi / period) * 2^decay_bits)``, truncated toward zero."""
    period, alpha = netx_period_and_decay(sin_word, cos_word)
    sin_decay = (1 - alpha) * np.sin(np.pi * 2 * 1 / period)
    cos_decay = (1 - alpha) * np.cos(np.pi * 2 * 1 / period)
    return int(np.int32(sin_decay * (1 << decay_bits))), int(np.int32(cos_decay * (1 << decay_bits)))


def scaled_threshold(vth: int, state_exp: int) -> int:
    """``int(vth * 2^state_exp)`` as Lava's ``RF`` stores it (for state_exp > 0; vth otherwise)."""
    return int(vth) << int(state_exp) if state_exp > 0 else int(vth)


def _scale_volt(x: np.ndarray, decay_bits: int) -> np.ndarray:
    """``sign(x) * (|x| >> decay_bits)``: the product shifted down, rounded toward zero."""
    return np.sign(x) * (np.abs(x) >> decay_bits)


def resonator_step(real: np.ndarray, imag: np.ndarray, a_real: np.ndarray, a_imag: np.ndarray, sin: int,
                   cos: int, state_exp: int, decay_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(real', imag') of one Lava fixed_pt resonator step (module docstring), int64 arrays."""
    re, im = np.asarray(real, np.int64), np.asarray(imag, np.int64)
    a_re = wrap32(np.asarray(a_real, np.int64) << state_exp)
    a_im = wrap32(np.asarray(a_imag, np.int64) << state_exp)
    new_re = _scale_volt(cos * re, decay_bits) - _scale_volt(sin * im, decay_bits) + a_re
    new_im = _scale_volt(sin * re, decay_bits) + _scale_volt(cos * im, decay_bits) + a_im
    return (np.clip(new_re, -VOLTAGE_LIMIT, VOLTAGE_LIMIT), np.clip(new_im, -VOLTAGE_LIMIT, VOLTAGE_LIMIT))


def phase_spikes(new_real: np.ndarray, new_imag: np.ndarray, old_imag: np.ndarray, vth: int) -> np.ndarray:
    """RF (RF_PHASE) spikes: ``re' >= vth and im' >= 0 and im < 0``."""
    return (new_real >= vth) & (new_imag >= 0) & (np.asarray(old_imag) < 0)


def izhikevich_reset(new_real: np.ndarray, new_imag: np.ndarray, vth: int):
    """RF_IZ: (spikes ``im' >= vth``, real after reset (0 where it fired), imag after reset (vth - 1))."""
    spikes = new_imag >= vth
    return spikes, np.where(spikes, 0, new_real), np.where(spikes, vth - 1, new_imag)
