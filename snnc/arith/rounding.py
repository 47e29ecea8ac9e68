"""The one module that owns rounding, shifting, wrapping and saturation.

Every integer operation of every target is spelled here once; lowering, the emulator and QAT call these
functions so they cannot disagree. Each function accepts numpy arrays / Python or numpy scalars, or torch
tensors, and returns the same kind: int64 numpy arrays, or int64 torch tensors on the input's device
(QAT runs the emulator's arithmetic on torch tensors; ``tests/test_quantize_properties.py`` proves both
give the same bits). All are exact for |x| < 2^62.
"""
from __future__ import annotations

import numpy as np


class _NumpyOps:
    """The numpy spelling of the few array operations the functions below need."""

    where = staticmethod(np.where)
    sign = staticmethod(np.sign)
    abs = staticmethod(np.abs)
    floor = staticmethod(np.floor)
    ceil = staticmethod(np.ceil)
    rint = staticmethod(np.rint)
    clip = staticmethod(np.clip)

    @staticmethod
    def as_int(x):
        return np.asarray(x, dtype=np.int64)

    @staticmethod
    def as_float(x):
        return np.asarray(x, dtype=np.float64)

    @staticmethod
    def clamp_min(x, low):
        return np.maximum(x, low)


class _TorchOps:
    """The torch spelling; tensors built from non-tensor arguments go to the first tensor's device."""

    def __init__(self, torch, device):
        self.torch, self.device = torch, device
        self.sign, self.abs, self.floor = torch.sign, torch.abs, torch.floor
        self.ceil = torch.ceil
        self.rint = torch.round  # ties to even, like numpy rint

    def _tensor(self, x, dtype):
        if isinstance(x, self.torch.Tensor):
            return x.to(dtype)
        return self.torch.as_tensor(np.asarray(x), dtype=dtype, device=self.device)

    def as_int(self, x):
        return self._tensor(x, self.torch.int64)

    def as_float(self, x):
        return self._tensor(x, self.torch.float64)

    def where(self, condition, a, b):
        condition = self._tensor(condition, self.torch.bool)
        return self.torch.where(condition, a, b)

    def clip(self, x, low, high):
        return self.torch.clamp(x, low, high)

    def clamp_min(self, x, low):
        return self.torch.clamp(x, min=low)


_NUMPY = _NumpyOps()


def array_ops(*values):
    """numpy's operations, or torch's when any value is a torch tensor (torch is imported only then)."""
    for value in values:
        if type(value).__module__.partition(".")[0] == "torch":
            import torch
            return _TorchOps(torch, value.device)
    return _NUMPY


def as_int(x):
    """``x`` as int64 (numpy array or torch tensor, whichever it is)."""
    return array_ops(x).as_int(x)


def select(condition, a, b):
    """``a`` where ``condition`` else ``b`` (numpy ``where``), for numpy arrays or torch tensors."""
    xp = array_ops(condition, a, b)
    return xp.where(condition, xp.as_int(a), xp.as_int(b))


def shift_round_toward_zero(x, bits: int):
    """``sign(x) * (|x| >> bits)``: right shift that rounds toward zero (Loihi decay)."""
    xp = array_ops(x)
    x = xp.as_int(x)
    return xp.sign(x) * (xp.abs(x) >> bits)


def shift_by_exponent(x, exponent):
    """``x << e`` for e > 0, ``x >> -e`` (floor) otherwise; ``exponent`` may be an array."""
    xp = array_ops(x, exponent)
    x = xp.as_int(x)
    e = xp.as_int(exponent)
    return xp.where(e > 0, x << xp.clamp_min(e, 0), x >> xp.clamp_min(-e, 0))


def wrap_like_lava(x, bits: int):
    """Lava's one-pass wrap of a signed ``bits``-wide register (LIF current u):

    ``x - 2^bits if x > 2^(bits-1)``; ``x + 2^bits if x <= -2^(bits-1)``. Note the asymmetric bounds: +2^23
    itself is kept. A value more than one period out of range stays out of range, exactly as in Lava.
    """
    xp = array_ops(x)
    x = xp.as_int(x)
    half = 1 << (bits - 1)
    wrapped = xp.where(x > half, x - 2 * half, x)
    return xp.where(wrapped <= -half, x + 2 * half, wrapped)


def wrap_twos_complement(x, bits: int):
    """Two's-complement wrap into [-2^(bits-1), 2^(bits-1))."""
    xp = array_ops(x)
    x = xp.as_int(x)
    half = 1 << (bits - 1)
    return ((x + half) & ((1 << bits) - 1)) - half


def saturate(x, lo: int, hi: int):
    """``x`` as integers clipped to [lo, hi] (numpy array or torch tensor)."""
    xp = array_ops(x)
    return xp.clip(xp.as_int(x), lo, hi)


def signed_limits(bits: int, symmetric: bool = False) -> tuple[int, int]:
    """Range of a signed ``bits``-wide integer; ``symmetric`` drops the most negative value."""
    hi = (1 << (bits - 1)) - 1
    return (-hi if symmetric else -hi - 1), hi


def round_half_away(x):
    """Round to nearest, ties away from zero (host-side quantization of floats)."""
    xp = array_ops(x)
    x = xp.as_float(x)
    return xp.as_int(xp.sign(x) * xp.floor(xp.abs(x) + 0.5))


def round_half_even(x):
    """Round to nearest, ties to even (numpy ``rint``)."""
    xp = array_ops(x)
    return xp.as_int(xp.rint(xp.as_float(x)))


def round_floor(x):
    """Round toward minus infinity (``floor``) to int64."""
    xp = array_ops(x)
    return xp.as_int(xp.floor(xp.as_float(x)))


def round_ceiling(x):
    """Round toward plus infinity (``ceil``) to int64."""
    xp = array_ops(x)
    return xp.as_int(xp.ceil(xp.as_float(x)))


def wrap_unsigned(x, bits: int):
    """Keep the ``bits`` low bits, ``x mod 2^bits``: the unsigned register a wider integer is stored in."""
    x = as_int(x)
    return x & ((1 << bits) - 1)


def truncate_low_bits(x, bits: int):
    """Clear the ``bits`` least significant bits with an arithmetic shift: ``(x >> b) << b`` (floor)."""
    x = as_int(x)
    return (x >> bits) << bits
