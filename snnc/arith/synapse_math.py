"""Batched synaptic sums shared by the float reference and the integer emulator.

All sums run in float64. For integer operands (spikes 0/1, weights |w| <= 2^8) every partial sum is an
integer far below 2^53, so the float64 result is exact and the emulator may cast it back to int64
(``conv2d_int_sum`` does, in float32 where its bound on the sums allows).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snnc.arith import parallel

# Below this many multiply-adds a convolution runs on one thread: starting threads costs more.
_PARALLEL_WORK = 1 << 27


def dense_sum(spikes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(B, in) spikes times (out, in) weight -> (B, out)."""
    return spikes.reshape(spikes.shape[0], -1).astype(np.float64) @ np.asarray(weight, np.float64).T


def matmul_rows(x: np.ndarray, weight: np.ndarray, dtype) -> np.ndarray:
    """(N, in) x (out, in) weight -> (N, out) in ``dtype`` with torch (rows split over the CPU cores for
    large products, each part on one thread); exact for integers whose partial sums the dtype holds."""
    import torch

    left = torch.from_numpy(np.ascontiguousarray(x, dtype))
    right = torch.from_numpy(np.ascontiguousarray(np.asarray(weight).T, dtype))
    work = left.shape[0] * left.shape[1] * right.shape[1]
    parts = parallel.worker_count() if work >= _PARALLEL_WORK else 1
    pieces = parallel.run_torch_parallel(lambda start, stop: (left[start:stop] @ right).numpy(),
                                         parallel.chunk_bounds(left.shape[0], parts))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def conv2d_sum(spikes: np.ndarray, weight: np.ndarray, in_shape, stride, padding, groups: int) -> np.ndarray:
    """Torch-convention cross-correlation of (B, C, H, W) spikes with (O, C/groups, kh, kw) weight."""
    return _conv_gemm(spikes, np.asarray(weight, np.float64), in_shape, stride, padding, groups, np.float64)


def conv2d_int_sum(spikes: np.ndarray, weight: np.ndarray, in_shape, stride, padding, groups: int) -> np.ndarray:
    """``conv2d_sum`` of integer spikes and weights, exactly, as int64: in float32 (``conv2d_float32_sum``)
    where ``conv2d_sum_bound`` is below 2^24 (float32 then holds every partial sum exactly, whatever the
    order of the additions), else in float64 (exact below 2^53)."""
    x = np.asarray(spikes)
    if conv2d_sum_bound(x, weight) < 2 ** 24:
        return conv2d_float32_sum(x, weight, in_shape, stride, padding, groups).astype(np.int64)
    return _conv_gemm(x, np.asarray(weight, np.float64), in_shape, stride, padding, groups,
                      np.float64).astype(np.int64)


def conv2d_sum_bound(spikes: np.ndarray, weight: np.ndarray) -> float:
    """The largest |partial sum| a convolution of ``spikes`` with integer ``weight`` can reach: the
    largest per-output-channel sum of |w| times the largest |spike|."""
    weight = np.asarray(weight)
    return float(np.abs(weight).reshape(weight.shape[0], -1).sum(axis=1).max(initial=0)) * \
        float(np.abs(spikes).max(initial=0))


def conv2d_float32_sum(spikes: np.ndarray, weight: np.ndarray, in_shape, stride, padding, groups: int) -> np.ndarray:
    """torch's float32 ``conv2d`` (direct convolution, no window matrix) of (B, C, H, W) values, as a
    (B, O, Ho, Wo) float32 array; exact for integers when ``conv2d_sum_bound`` is below 2^24. Large
    batches are split over the CPU cores (``snnc.arith.parallel``)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(spikes.reshape(spikes.shape[0], *in_shape), np.float32))
    w = torch.from_numpy(np.ascontiguousarray(weight, np.float32))

    def convolve(start: int, stop: int):
        with torch.no_grad():
            return torch.nn.functional.conv2d(x[start:stop], w, stride=tuple(stride), padding=tuple(padding),
                                              groups=groups).numpy()

    work = x.numel() * w.shape[0] * int(np.prod(w.shape[2:]))
    parts = parallel.worker_count() if work >= _PARALLEL_WORK else 1
    pieces = parallel.run_torch_parallel(convolve, parallel.chunk_bounds(x.shape[0], parts))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def _conv_gemm(spikes, weight, in_shape, stride, padding, groups: int, dtype) -> np.ndarray:
    """One GEMM per group over the (B x Ho x Wo, C/groups x kh x kw) window matrix."""
    x = spikes.reshape(spikes.shape[0], *in_shape).astype(dtype, copy=False)
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    batch, _, out_h, out_w = windows.shape[:4]
    out_per_group, in_per_group = weight.shape[0] // groups, weight.shape[1]
    out = np.empty((batch, out_h, out_w, weight.shape[0]), dtype)
    for g in range(groups):
        win = windows[:, g * in_per_group:(g + 1) * in_per_group].transpose(0, 2, 3, 1, 4, 5)
        columns = win.reshape(batch * out_h * out_w, -1)
        kernel = weight[g * out_per_group:(g + 1) * out_per_group].reshape(out_per_group, -1)
        out[..., g * out_per_group:(g + 1) * out_per_group] = (columns @ kernel.T).reshape(
            batch, out_h, out_w, out_per_group)
    return out.transpose(0, 3, 1, 2)


def sum_pool_sum(spikes: np.ndarray, in_shape, kernel, stride) -> np.ndarray:
    """Per-channel window sums of (B, C, H, W) spikes."""
    x = spikes.reshape(spikes.shape[0], *in_shape).astype(np.float64)
    windows = sliding_window_view(x, tuple(kernel), axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return windows.sum(axis=(-2, -1))
