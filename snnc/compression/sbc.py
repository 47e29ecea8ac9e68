"""One-shot pruning and quantization with second-order (OBS/OBC) compensation: Spiking Brain Compression.

Spiking Brain Compression (SBC; Shi, Li & Ward-Cherrier, arXiv 2506.03996) measures a layer's damage by
the error it causes in the *surrogate membrane potential*, not in the input current (OBC, Frantar et al.
2022). For a neuron group with input spike trains X_n (steps T x inputs d) of calibration sample n, the
membrane responds to its input current through the kernel K[t, s] = h[t - s] (s <= t), the impulse
response of the group's u/v filters (``membrane_kernel``; h[k] = beta^k for a snnTorch Leaky). Changing
one weight row by dw changes the membrane by K X_n dw, so the layer loss and its Hessian are

    E(dw) = sum_n ||K X_n dw||^2 = dw^T (H / 2) dw,      H = 2 sum_n (K X_n)^T (K X_n)  (+ damping).

OBC is the special case K = I. Rows share H (they see the same inputs), so each row is pruned
independently and greedily: remove q = argmin w_q^2 / [H^-1]_qq, compensate w -= (w_q / [H^-1]_qq)
H^-1[:, q] and drop q from H^-1 (``prune_order``). The loss increase of each removal is
w_q^2 / (2 [H^-1]_qq), which gives every row a cost curve; ``allocate_removals`` spreads a global
sparsity over all rows of all layers by those curves. Quantization uses the same machinery
(``quantize_rows``: OBQ greedy, exact; GPTQ column order for large layers). ``sparsegpt_prune`` is the
scalable variant (one Cholesky factor, column blocks; Frantar & Alistarh 2023). Everything here is numpy
float64 on weights of one layer at a time; units are whatever the caller's weights are in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

DAMPING = 0.01            # fraction of mean(diag H) added to the diagonal (GPTQ/SparseGPT's default)
EXACT_MAX_WORK = 4e8      # rows * inputs^3 above which the column-ordered (SparseGPT/GPTQ) variant is used
ROW_CHUNK = 64            # rows processed together by the exact greedy solvers (memory: chunk * d^2)
BLOCK = 128               # column block of the SparseGPT/GPTQ variants


def membrane_kernel(current_decay: float, voltage_decay: float, steps: int) -> np.ndarray:
    """K (steps x steps), K[t, s] = h[t - s] for s <= t: the membrane v's response at t to a unit input
    current at s through ``u[t] = (1-current_decay) u[t-1] + I[t]``, ``v[t] = (1-voltage_decay) v[t-1] +
    u[t]`` (reset ignored, as in SBC's surrogate membrane potential)."""
    a, b = 1.0 - float(current_decay), 1.0 - float(voltage_decay)
    h = np.zeros(steps)
    u = v = 0.0
    for k in range(steps):
        u = a * u + (1.0 if k == 0 else 0.0)
        v = b * v + u
        h[k] = v
    lag = np.arange(steps)[:, None] - np.arange(steps)[None, :]
    return np.where(lag >= 0, h[np.clip(lag, 0, None)], 0.0)


def filtered_inputs(inputs: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """K X_n for inputs (samples, steps, d), as (samples * steps, d); ``kernel`` None means K = I."""
    x = np.asarray(inputs, dtype=np.float64)
    y = x if kernel is None else np.einsum("ts,nsd->ntd", kernel, x, optimize=True)
    return y.reshape(-1, y.shape[-1])


def layer_hessian(inputs: np.ndarray, kernel: np.ndarray | None) -> np.ndarray:
    """H = 2 sum_n (K X_n)^T (K X_n) for inputs (samples, steps, d); ``kernel`` None means K = I (OBC)."""
    flat = filtered_inputs(inputs, kernel)
    return 2.0 * flat.T @ flat


def damping(hessian: np.ndarray, fraction: float = DAMPING) -> float:
    """fraction * mean(diag H), or 1 if H is all zero (no calibration input ever spiked)."""
    mean = float(np.mean(np.diag(hessian))) if hessian.size else 0.0
    return fraction * mean if mean > 0 else 1.0


def damped(hessian: np.ndarray, fraction: float = DAMPING) -> np.ndarray:
    """H + damping(H) * I: positive definite, so H^-1 exists even for inputs that never spiked."""
    return hessian + damping(hessian, fraction) * np.eye(hessian.shape[0])


def refit(weight: np.ndarray, filtered_new: np.ndarray, filtered_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights that best reproduce the reference membrane from changed inputs, and their damped Hessian.

    With Y' = K X' (inputs after upstream compression) and Y = K X (original), the layer loss is
    sum ||Y' w' - Y w||^2 = (w' - w*)^T (H'/2) (w' - w*) + const, with H' = 2 Y'^T Y' and
    w* = argmin: so OBS from w* with H' is optimal for the whole objective. Damping pulls w* toward w
    (ridge toward the original weights): w* = (H' + lambda I)^-1 (2 Y'^T Y w + lambda w), which is w
    itself when Y' = Y. Returns (w*, H' + lambda I)."""
    hessian = 2.0 * filtered_new.T @ filtered_new
    lam = damping(hessian)
    regularized = hessian + lam * np.eye(hessian.shape[0])
    target = 2.0 * (filtered_new.T @ (filtered_ref @ np.asarray(weight, np.float64).T)) + lam * weight.T
    return np.linalg.solve(regularized, target).T, regularized


def layer_loss(reference: np.ndarray, changed: np.ndarray, hessian: np.ndarray) -> float:
    """E = sum over rows of dw^T (H/2) dw: the squared membrane (or current) error on calibration data."""
    delta = np.asarray(changed, np.float64) - np.asarray(reference, np.float64)
    return float(0.5 * np.sum((delta @ hessian) * delta))


def use_exact(rows: int, inputs: int) -> bool:
    """Exact greedy OBS (OBC/OBQ) costs rows * inputs^3; above ``EXACT_MAX_WORK`` use the column variant."""
    return rows * float(inputs) ** 3 <= EXACT_MAX_WORK


# ------------------------------------------------------------------------------------------ pruning

@dataclass(frozen=True)
class RowCurves:
    """Per row: the order in which weights are removed and the cumulative loss after k removals.

    ``order[r, k]`` is the k-th weight removed from row r; ``cost[r, k]`` the loss E after removing
    ``order[r, :k+1]`` (with compensation); non-decreasing along k by construction."""

    order: np.ndarray
    cost: np.ndarray


def prune_order(weight: np.ndarray, hessian_inv: np.ndarray, prunable: np.ndarray | None = None) -> RowCurves:
    """Exact greedy OBS on every row (OBC): removal order and cumulative loss over all ``prunable``
    columns (default all; a column left out, e.g. a bias, is never removed but still compensates)."""
    weight = np.asarray(weight, np.float64)
    prunable = np.ones(weight.shape[1], bool) if prunable is None else np.asarray(prunable, bool)
    orders, costs = [], []
    for start in range(0, weight.shape[0], ROW_CHUNK):
        order, cost, _ = _greedy_rows(weight[start:start + ROW_CHUNK], hessian_inv, _prune_choice, prunable)
        orders.append(order)
        costs.append(cost)
    return RowCurves(np.concatenate(orders), np.maximum.accumulate(np.concatenate(costs), axis=1))


def _prune_choice(w, diag, pending):
    score = np.where(pending, w * w / np.where(pending, diag, 1.0), np.inf)
    q = np.argmin(score, axis=1)
    return q, np.zeros(len(q))


def _greedy_rows(w, hessian_inv, choose, columns: np.ndarray | None = None):
    """Shared OBS loop: per step each row picks (q, target) with ``choose``; w moves to w_q = target
    with optimal compensation; q leaves the inverse Hessian. Returns (order, cumulative loss, final
    values: each weight's target when it was chosen). Only ``columns`` (bool, default all) are chosen."""
    w = w.copy()
    rows, d = w.shape
    index = np.arange(rows)
    hinv = np.repeat(np.asarray(hessian_inv, np.float64)[None], rows, axis=0)
    pending = np.repeat((np.ones(d, bool) if columns is None else columns)[None], rows, axis=0)
    steps = int(pending[0].sum())
    order, cost = np.zeros((rows, steps), np.int64), np.zeros((rows, steps))
    final, total = np.zeros((rows, d)), np.zeros(rows)
    for k in range(steps):
        diag = np.einsum("rii->ri", hinv)
        q, target = choose(w, diag, pending)
        dq = diag[index, q]
        error = w[index, q] - target
        column = hinv[index, :, q]
        total += 0.5 * error * error / dq
        w -= (error / dq)[:, None] * column
        w[index, q] = target
        hinv -= column[:, :, None] * column[:, None, :] / dq[:, None, None]
        pending[index, q] = False
        order[:, k], cost[:, k], final[index, q] = q, total, target
    return order, cost, final


def reconstruct(weight: np.ndarray, hessian_inv: np.ndarray, removed: np.ndarray,
                targets: np.ndarray | None = None) -> np.ndarray:
    """Weights with the ``removed`` entries (bool, like weight) set to ``targets`` (default 0) and the
    rest optimally compensated: w' = w - H^-1[:, P] (H^-1[P, P])^-1 (w_P - t_P) per row (equal to fixing
    P one by one with OBS)."""
    out = np.array(weight, dtype=np.float64)
    goal = np.zeros_like(out) if targets is None else np.asarray(targets, np.float64)
    for r in np.flatnonzero(removed.any(axis=1)):
        p = np.flatnonzero(removed[r])
        out[r] -= hessian_inv[:, p] @ np.linalg.solve(hessian_inv[np.ix_(p, p)], out[r, p] - goal[r, p])
        out[r, p] = goal[r, p]
    return out


def saliency_curves(weight: np.ndarray, hessian_inv: np.ndarray, prunable: np.ndarray | None = None
                    ) -> RowCurves:
    """Cheap curves for large layers: single-shot OBS saliencies w^2 / (2 [H^-1]_qq), sorted, summed."""
    score = 0.5 * np.asarray(weight, np.float64) ** 2 / np.diag(hessian_inv)[None, :]
    return _sorted_curves(score, prunable)


def _sorted_curves(score: np.ndarray, prunable: np.ndarray | None) -> RowCurves:
    columns = np.arange(score.shape[1]) if prunable is None else np.flatnonzero(prunable)
    order = columns[np.argsort(score[:, columns], axis=1, kind="stable")]
    return RowCurves(order, np.cumsum(np.take_along_axis(score, order, axis=1), axis=1))


def magnitude_curves(weight: np.ndarray, scale: np.ndarray) -> RowCurves:
    """Magnitude pruning as curves: remove the smallest |w| / scale first (``scale``: per row)."""
    score = np.abs(np.asarray(weight, np.float64)) / np.asarray(scale, np.float64).reshape(-1, 1)
    return _sorted_curves(score, None)


def allocate_removals(curves: dict[str, RowCurves], norms: dict[str, np.ndarray], remove: int
                      ) -> dict[str, np.ndarray]:
    """Spread ``remove`` removals over all rows of all layers, cheapest normalized loss increase first.

    ``norms[layer]`` (per row) divides that layer's costs so layers are comparable. Increments are made
    non-decreasing along each row (running maximum), so taking the globally smallest increments removes
    a prefix of every row's order. Returns removals per row per layer."""
    names = list(curves)
    increments = []
    for name in names:
        cost = curves[name].cost / np.asarray(norms[name], np.float64).reshape(-1, 1)
        step = np.diff(cost, axis=1, prepend=0.0)
        increments.append(np.maximum.accumulate(step, axis=1))
    flat = np.concatenate([inc.ravel() for inc in increments])
    chosen = np.zeros(flat.size, bool)
    chosen[np.argsort(flat, kind="stable")[:remove]] = True
    out, offset = {}, 0
    for name, inc in zip(names, increments):
        out[name] = chosen[offset:offset + inc.size].reshape(inc.shape).sum(axis=1)
        offset += inc.size
    return out


def removal_mask(curves: RowCurves, counts: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Bool mask (rows x ``columns``, default the curves' length) of the first ``counts[r]`` weights in
    each row's removal order."""
    rows, steps = curves.order.shape
    mask = np.zeros((rows, steps if columns is None else columns), bool)
    ranks = np.arange(steps)[None, :] < np.asarray(counts).reshape(-1, 1)
    np.put_along_axis(mask, curves.order, ranks, axis=1)
    return mask


def sparsegpt_prune(weight: np.ndarray, hessian: np.ndarray, counts: np.ndarray,
                    prunable: np.ndarray | None = None, block: int = BLOCK) -> np.ndarray:
    """Scalable variant (SparseGPT): columns in order, one Cholesky factor U of H^-1 (H^-1 = U^T U);
    in each column block every row drops its share of ``counts`` with the smallest w^2 / U_cc^2 and
    the error is pushed onto later columns only. Columns outside ``prunable`` are never dropped."""
    w = np.array(weight, dtype=np.float64)
    rows, d = w.shape
    upper = _inverse_cholesky_upper(hessian)
    counts = np.asarray(counts).reshape(-1)
    allowed = np.ones(d, bool) if prunable is None else np.asarray(prunable, bool)
    share = np.cumsum(allowed) / max(int(allowed.sum()), 1)
    done = np.zeros(rows, np.int64)
    for i1 in range(0, d, block):
        i2 = min(i1 + block, d)
        due = np.floor(counts * share[i2 - 1] + 1e-9).astype(np.int64) - done
        score = np.where(allowed[i1:i2][None, :], w[:, i1:i2] ** 2 / np.diag(upper)[i1:i2][None, :] ** 2, np.inf)
        ranks = np.argsort(np.argsort(score, axis=1, kind="stable"), axis=1)
        mask = ranks < due[:, None]
        done += due
        targets = lambda col, values, m=mask, i1=i1: np.where(m[:, col - i1], 0.0, values)  # noqa: E731
        w = _column_sweep(w, upper, i1, i2, targets)
    return w


def _inverse_cholesky_upper(hessian: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(hessian)
    return np.linalg.cholesky(inverse).T


def _column_sweep(w, upper, i1, i2, target_of) -> np.ndarray:
    """Set columns i1..i2-1 to ``target_of(col, values)`` one by one; compensate later columns."""
    errors = np.zeros((w.shape[0], i2 - i1))
    for c in range(i1, i2):
        target = target_of(c, w[:, c])
        errors[:, c - i1] = (w[:, c] - target) / upper[c, c]
        w[:, c:i2] -= errors[:, c - i1:c - i1 + 1] * upper[c, c:i2][None, :]
        w[:, c] = target
    w[:, i2:] -= errors @ upper[i1:i2, i2:]
    return w


# ------------------------------------------------------------------------------------- quantization

def quantize_rows(values: np.ndarray, hessian: np.ndarray, quantize: Callable[[np.ndarray], np.ndarray],
                  fixed_zero: np.ndarray | None = None, half_step: float = 0.5) -> np.ndarray:
    """Round ``values`` (rows x d, in grid units) to ``quantize``'s grid minimizing the layer loss with
    second-order compensation: exact greedy OBQ for small layers, GPTQ column order for large ones.
    Entries in ``fixed_zero`` (pruned weights) stay exactly 0. A weight whose rounding error exceeds
    ``half_step`` (half the grid spacing, i.e. it lies beyond the grid and saturates) is quantized first,
    while free weights remain to absorb its error (OBQ's outlier rule). Returns the quantized values."""
    values = np.asarray(values, np.float64)
    fixed = np.zeros(values.shape, bool) if fixed_zero is None else np.asarray(fixed_zero, bool)
    h = damped(hessian)
    if use_exact(*values.shape):
        inverse = np.linalg.inv(h)
        out = [_obq_rows(values[s:s + ROW_CHUNK], fixed[s:s + ROW_CHUNK], inverse, quantize, half_step)
               for s in range(0, values.shape[0], ROW_CHUNK)]
        result = np.concatenate(out)
    else:
        upper = _inverse_cholesky_upper(h)
        w = values.copy()
        for i1 in range(0, w.shape[1], BLOCK):
            target = lambda c, col: np.where(fixed[:, c], 0.0, quantize(col))  # noqa: E731
            w = _column_sweep(w, upper, i1, min(i1 + BLOCK, w.shape[1]), target)
        result = w
    return np.asarray(quantize(np.where(fixed, 0.0, result)))


def _obq_rows(w, fixed, hessian_inv, quantize, half_step):
    """Greedy OBQ: fixed zeros first (no error), then saturating outliers (largest excess first), then
    the weight whose rounding costs least."""
    def choose(current, diag, pending):
        rounded = np.asarray(quantize(current), np.float64)
        error = np.abs(current - rounded)
        score = np.where(pending, error ** 2 / np.where(pending, diag, 1.0), np.inf)
        score = np.where(pending & (error > half_step * (1 + 1e-9)), -error, score)
        q = np.argmin(np.where(pending & fixed, -np.inf, score), axis=1)
        index = np.arange(len(q))
        return q, np.where(fixed[index, q], 0.0, rounded[index, q])

    return _greedy_rows(w, hessian_inv, choose)[2]
