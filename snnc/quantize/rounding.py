"""The one module that owns rounding, shifting, wrapping and saturation.

Every integer operation of every target is spelled here once; lowering, the emulator and (later) QAT call
these functions so they cannot disagree. All functions take and return numpy integer arrays (int64) and
are exact for |x| < 2^62.
"""
from __future__ import annotations

import numpy as np


def as_int(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def shift_round_toward_zero(x, bits: int) -> np.ndarray:
    """``sign(x) * (|x| >> bits)``: right shift that rounds toward zero (Loihi decay)."""
    x = as_int(x)
    return np.sign(x) * (np.abs(x) >> bits)


def shift_by_exponent(x, exponent) -> np.ndarray:
    """``x << e`` for e > 0, ``x >> -e`` (floor) otherwise; ``exponent`` may be an array."""
    x = as_int(x)
    e = as_int(exponent)
    return np.where(e > 0, np.left_shift(x, np.maximum(e, 0)), np.right_shift(x, np.maximum(-e, 0)))


def wrap_like_lava(x, bits: int) -> np.ndarray:
    """Lava's one-pass wrap of a signed ``bits``-wide register (LIF current u):

    ``x - 2^bits if x > 2^(bits-1)``; ``x + 2^bits if x <= -2^(bits-1)``. Note the asymmetric bounds: +2^23
    itself is kept. A value more than one period out of range stays out of range, exactly as in Lava.
    """
    x = as_int(x)
    half = np.int64(1) << (bits - 1)
    wrapped = np.where(x > half, x - 2 * half, x)
    return np.where(wrapped <= -half, x + 2 * half, wrapped)


def wrap_twos_complement(x, bits: int) -> np.ndarray:
    """Two's-complement wrap into [-2^(bits-1), 2^(bits-1))."""
    x = as_int(x)
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def saturate(x, lo: int, hi: int) -> np.ndarray:
    return np.clip(as_int(x), lo, hi)


def signed_limits(bits: int, symmetric: bool = False) -> tuple[int, int]:
    """Range of a signed ``bits``-wide integer; ``symmetric`` drops the most negative value."""
    hi = (1 << (bits - 1)) - 1
    return (-hi if symmetric else -hi - 1), hi


def round_half_away(x) -> np.ndarray:
    """Round to nearest, ties away from zero (host-side quantization of floats)."""
    x = np.asarray(x, dtype=np.float64)
    return as_int(np.sign(x) * np.floor(np.abs(x) + 0.5))


def round_half_even(x) -> np.ndarray:
    """Round to nearest, ties to even (numpy ``rint``)."""
    return as_int(np.rint(np.asarray(x, dtype=np.float64)))


def truncate_low_bits(x, bits: int) -> np.ndarray:
    """Clear the ``bits`` least significant bits with an arithmetic shift: ``(x >> b) << b`` (floor)."""
    x = as_int(x)
    return (x >> bits) << bits
