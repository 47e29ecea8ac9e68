"""Batched synaptic sums shared by the float reference and the integer emulator.

All sums run in float64. For integer operands (spikes 0/1, weights |w| <= 2^8) every partial sum is an
integer far below 2^53, so the float64 result is exact and the emulator may cast it back to int64.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def dense_sum(spikes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(B, in) spikes times (out, in) weight -> (B, out)."""
    return spikes.reshape(spikes.shape[0], -1).astype(np.float64) @ np.asarray(weight, np.float64).T


def conv2d_sum(spikes: np.ndarray, weight: np.ndarray, in_shape, stride, padding, groups: int) -> np.ndarray:
    """Torch-convention cross-correlation of (B, C, H, W) spikes with (O, C/groups, kh, kw) weight."""
    x = spikes.reshape(spikes.shape[0], *in_shape).astype(np.float64)
    ph, pw = padding
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    out_per_group = weight.shape[0] // groups
    in_per_group = weight.shape[1]
    parts = []
    for g in range(groups):
        win = windows[:, g * in_per_group:(g + 1) * in_per_group]
        w = np.asarray(weight[g * out_per_group:(g + 1) * out_per_group], np.float64)
        parts.append(np.einsum("bchwyx,ocyx->bohw", win, w, optimize=True))
    return np.concatenate(parts, axis=1)


def sum_pool_sum(spikes: np.ndarray, in_shape, kernel, stride) -> np.ndarray:
    """Per-channel window sums of (B, C, H, W) spikes."""
    x = spikes.reshape(spikes.shape[0], *in_shape).astype(np.float64)
    windows = sliding_window_view(x, tuple(kernel), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return windows.sum(axis=(-2, -1))
