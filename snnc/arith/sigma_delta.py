"""Integer arithmetic of Lava 0.10's sigma-delta processes (``lava.proc.sdn.models``, fixed_pt): the
``Delta`` encoder, the ``SigmaDelta`` neuron (ReLU, no cumulative error) and the ``Sigma`` decoder.

Lava holds every variable and port value as numpy int32, so each sum and left shift wraps modulo 2^32;
these functions compute in int64 and wrap at exactly those points. Right shifts floor (numpy
``right_shift`` of a signed integer). Equations: ``snnc.ir.nodes.LoihiDelta`` / ``LoihiSigmaDelta`` /
``LoihiSigma``.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.loihi import wrap32

INT32_MIN = -(1 << 31)


def scaled_threshold(vth: int, spike_exp: int, state_exp: int) -> int:
    """``vth << (spike_exp + state_exp)`` as Lava's process stores it (an int32 Var)."""
    return int(wrap32(np.int64(vth) << (spike_exp + state_exp)))


def scaled_bias(bias, spike_exp: int, state_exp: int) -> np.ndarray:
    """``bias << (spike_exp + state_exp)`` (int32), Lava ``SigmaDelta``'s bias Var."""
    return wrap32(np.asarray(bias, np.int64) << (spike_exp + state_exp))


def delta_encode(act: np.ndarray, act_prev: np.ndarray, residue: np.ndarray, vth_scaled: int,
                 state_exp: int) -> tuple[np.ndarray, np.ndarray]:
    """(s[t], residue[t]) of Lava's ``delta_dynamics`` without cumulative error, then the output shift:
    d = act - act_prev + residue; s' = d where |d| >= vth_scaled; residue = d - s'; s = s' >> state_exp."""
    delta = wrap32(wrap32(act - act_prev) + residue)
    magnitude = np.where(delta == INT32_MIN, INT32_MIN, np.abs(delta))   # numpy int32 abs(-2^31) == -2^31
    sent = np.where(magnitude >= vth_scaled, delta, 0)
    return sent >> state_exp, wrap32(delta - sent)


def delta_input(x: np.ndarray, spike_exp: int, state_exp: int) -> np.ndarray:
    """Lava ``Delta``'s scaled input ``x << (spike_exp + state_exp)`` (int32)."""
    return wrap32(np.asarray(x, np.int64) << (spike_exp + state_exp))


def sigma_accumulate(sigma: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``sigma + a`` (int32): Lava's sigma dendrite."""
    return wrap32(sigma + np.asarray(a, np.int64))


def relu_activation(sigma: np.ndarray, bias_scaled: np.ndarray) -> np.ndarray:
    """``max(sigma + bias, 0)`` (int32 sum): Lava ``SigmaDelta``'s RELU act_mode."""
    return np.maximum(wrap32(sigma + bias_scaled), 0)
