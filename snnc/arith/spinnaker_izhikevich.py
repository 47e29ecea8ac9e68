"""sPyNNaker 7.4.1 ``IZK_curr_exp``: the Izhikevich update in s16.15, operation for operation.

Source read: ``neural_modelling/src/neuron/models/neuron_model_izh_impl.h`` (sPyNNaker mainline, the
struct layout of the installed 1!7.4.1 ``NeuronModelIzh``: a, b, c, d, v, u, i_offset, time_step,
next_h) and ``common/maths-util.h`` (``REAL`` = accum, ``REAL_HALF(x)`` = ``x * 0.5k``). Per tick::

    input    = isyn_exc - isyn_inh + I_offset            (no external bias, no current source)
    pre      = 140 + input - u
    alpha    = pre + (5 + M v) v                         M = MAGIC_MULTIPLIER = 0.040008544921875 (1311 bits)
    eta      = v + half(h alpha)
    beta     = half((h (b v - u)) a)
    v       += h ((pre - beta) + (5 + M eta) eta)
    u       += (a h) ((-u - beta) + b eta)
    h        = reset_h                                   (the machine time step, 1 ms)
    spike where v >= 30 (ThresholdTypeStatic): v = c; u += d; h = reset_h * 1.85 (SIMPLE_TQ_OFFSET)

(a second-order Runge-Kutta midpoint step). Every ``*`` is accum x accum = floor(x y / 2^15) wrapped to
32 bits (``snnc.arith.spinnaker.accum_multiply``), every ``+``/``-`` wraps. The literal 1.85k is the
truncated 60620 (checked: the installed IZK_curr_exp binaries hold 60620 and 1311, not 60621).
"""
from __future__ import annotations

import numpy as np

from snnc.arith.spinnaker import ONE, accum_multiply, wrap32

MAGIC_MULTIPLIER = 1311                 # REAL_CONST(0.040008544921875)
SIMPLE_TQ_OFFSET = 60620                # REAL_CONST(1.85), truncated by GCC
HALF = ONE >> 1                         # 0.5k
CONSTANT_140 = 140 * ONE
FIVE = 5 * ONE
THRESHOLD = 30 * ONE                    # IzkCurrExpBase: ThresholdTypeStatic(30.0)


def _half(x):
    """``REAL_HALF``: x * 0.5k = floor(x / 2)."""
    return accum_multiply(x, HALF)


def _quadratic(v):
    """(5 + M v) v."""
    return accum_multiply(wrap32(FIVE + accum_multiply(MAGIC_MULTIPLIER, v)), v)


def rk2_midpoint(h, v, u, a, b, current):
    """``rk2_kernel_midpoint``: (v, u) after one step of ``h`` (all s16.15 bits, arrays broadcast)."""
    pre = wrap32(wrap32(CONSTANT_140 + current) - u)
    alpha = wrap32(pre + _quadratic(v))
    eta = wrap32(v + _half(accum_multiply(h, alpha)))
    beta = _half(accum_multiply(accum_multiply(h, wrap32(accum_multiply(b, v) - u)), a))
    v_new = wrap32(v + accum_multiply(h, wrap32(wrap32(pre - beta) + _quadratic(eta))))
    u_new = wrap32(u + accum_multiply(accum_multiply(a, h), wrap32(wrap32(-u - beta) + accum_multiply(b, eta))))
    return v_new, u_new


def izhikevich_tick(h, v, u, a, b, c, d, current, reset_h: int = ONE):
    """One neuron update of IZK_curr_exp after its input was summed: (v, u, h, v_pre, spikes), where v_pre
    is v before the threshold test and h the step the next tick uses."""
    v_pre, u_new = rk2_midpoint(h, v, u, a, b, current)
    spikes = v_pre >= THRESHOLD
    bumped = accum_multiply(reset_h, SIMPLE_TQ_OFFSET)
    v_out = np.where(spikes, c, v_pre)
    u_out = np.where(spikes, wrap32(u_new + d), u_new)
    h_out = np.where(spikes, bumped, reset_h)
    return v_out, u_out, h_out, v_pre, spikes
