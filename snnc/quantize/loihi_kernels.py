"""Compiled (numba) twin of ``snnc.quantize.loihi.lif_step`` for whole spike trains.

Same integer arithmetic, element by element: int32 wraps of Lava's intermediates, round-toward-zero
decays, the one-pass 24-bit wrap of u, saturation of v, strict ``v > vth << 6`` and zero reset. The
property test ``tests/test_quantize_loihi.py`` proves it equals ``lif_step`` bit for bit; the numpy
version stays the definition. Without numba, ``AVAILABLE`` is False and the emulator steps in numpy.
"""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is in requirements.txt; kept for minimal installs
    AVAILABLE = False

    def njit(*_args, **_kwargs):
        return lambda fn: fn

_HALF32 = 1 << 31
_MASK32 = (1 << 32) - 1
_HALF24 = 1 << 23
_V_LIMIT = (1 << 23) - 1


@njit(cache=True)
def _wrap32(x):
    return ((x + _HALF32) & _MASK32) - _HALF32


@njit(cache=True)
def _rtz12(x):
    return -((-x) >> 12) if x < 0 else x >> 12


@njit(cache=True)
def _wrap24_like_lava(x):
    if x > _HALF24:
        return x - 2 * _HALF24
    if x <= -_HALF24:
        return x + 2 * _HALF24
    return x


@njit(cache=True)
def lif_scan(activation, du, dv, bias, vth, v_init, spikes, u_out, v_out, record):
    """Run LIF neurons over all steps. activation: (B, T, N) int64 summed input per step; writes
    spikes (B, T, N) uint8 and, if ``record``, u/v after each step (after reset)."""
    batch, steps, size = activation.shape
    threshold = vth << 6
    u = np.zeros(size, np.int64)
    v = np.zeros(size, np.int64)
    for b in range(batch):
        u[:] = 0
        v[:] = v_init
        for t in range(steps):
            for n in range(size):
                decayed_u = _rtz12(u[n] * (4096 - (du + 1)))
                un = _wrap24_like_lava(_wrap32(decayed_u + _wrap32(_wrap32(activation[b, t, n]) << 6)))
                decayed_v = _rtz12(v[n] * (4096 - dv))
                vn = min(max(_wrap32(decayed_v + un + bias[n]), -_V_LIMIT), _V_LIMIT)
                if vn > threshold:
                    spikes[b, t, n] = 1
                    vn = 0
                u[n] = un
                v[n] = vn
                if record:
                    u_out[b, t, n] = un
                    v_out[b, t, n] = vn
