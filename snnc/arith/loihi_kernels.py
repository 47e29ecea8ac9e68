"""Compiled (numba) twin of ``snnc.arith.loihi.lif_step`` for whole spike trains.

Same integer arithmetic, element by element: int32 wraps of Lava's intermediates, round-toward-zero
decays, the one-pass 24-bit wrap of u, saturation of v, ``v > vth << 6`` (or ``>=``) and the reset kinds
(``RESET_CODES``). The property test ``tests/test_quantize_loihi.py`` proves it equals ``lif_step`` bit
for bit; the numpy version stays the definition. Without numba, ``AVAILABLE`` is False and the emulator steps in numpy.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import parallel
from snnc.arith.parallel import chunk_bounds, run_parallel

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
# The scan's integer code of each reset kind (``snnc.arith.loihi.lif_step``'s ``reset``).
RESET_CODES = {"zero": 0, "zero_next": 1, "subtract": 2, "none": 3}
_ZERO, _ZERO_NEXT, _SUBTRACT = 0, 1, 2
# Below this many (source step x input x output) slots a kernel runs on one thread: starting threads costs more.
_PARALLEL_WORK = 1 << 24


@njit(cache=True, inline="always")
def _wrap32(x):
    return ((x + _HALF32) & _MASK32) - _HALF32


@njit(cache=True, inline="always")
def _rtz12(x):
    """x / 2^12 rounded toward zero, without a branch (x >> 63 is -1 for negative x)."""
    return (x + ((x >> 63) & 4095)) >> 12


def lif_scan(activation, du, dv, bias, vth, v_init, spikes, u_out, v_out, record, reset=0, ge=False):
    """Run LIF neurons over all steps. activation: (B, T, N) int64 summed input per step; ``du``, ``dv``
    (N,) int64 decays per neuron; writes
    spikes (B, T, N) uint8 and, if ``record``, u/v after each step (after reset). ``reset`` is a
    ``RESET_CODES`` value, ``ge`` the ">=" threshold test."""
    lif_scan_products(activation, 0, 0, du, dv, bias, vth, v_init, spikes, u_out, v_out, record, reset, ge)


@njit(cache=True)
def lif_scan_products(products, weight_exp, lag, du, dv, bias, vth, v_init, spikes, u_out, v_out, record,
                      reset=0, ge=False):
    """LIF scan fed by exact sums: ``products`` (B, T - lag, N) are a dense synapse's float (or int) sums
    of the source spikes of step t - lag; the activation is their int value shifted by ``weight_exp``
    (for float sums the caller has proven with ``activation_fits_int32`` that Lava's int32 wraps are
    no-ops; int activations with exponent 0 and lag 0 are used as they are).

    Each step updates all neurons in two branch-free loops over flat arrays (current, then voltage and
    spike), which the compiler turns into SIMD code."""
    batch, steps, size = spikes.shape
    threshold = vth << 6
    du_factor, dv_factor = 4096 - (du + 1), 4096 - dv
    zero, zero_next, subtract = int(reset == _ZERO), int(reset == _ZERO_NEXT), int(reset == _SUBTRACT)
    strict = int(not ge)
    u = np.zeros(size, np.int64)
    v = np.zeros(size, np.int64)
    activation = np.zeros(size, np.int64)
    fired = np.zeros(size, np.int64)
    for b in range(batch):
        u[:] = 0
        v[:] = v_init
        fired[:] = 0
        for t in range(steps):
            if t >= lag:
                _shifted_row(products[b, t - lag], weight_exp, activation)
            else:
                activation[:] = 0
            _current_row(activation, u, du_factor)
            _voltage_row(u, v, fired, dv_factor, bias, threshold, zero, zero_next, subtract, strict)
            out = spikes[b, t]
            for n in range(size):
                out[n] = fired[n]
            if record:
                u_out[b, t] = u
                v_out[b, t] = v


@njit(cache=True)
def _shifted_row(row, weight_exp, activation):
    """activation = int(row) shifted by ``weight_exp`` (left for positive exponents)."""
    if weight_exp >= 0:
        for n in range(activation.size):
            activation[n] = np.int64(row[n]) << weight_exp
    else:
        for n in range(activation.size):
            activation[n] = np.int64(row[n]) >> -weight_exp


@njit(cache=True)
def _current_row(activation, u, du_factor):
    """u <- wrap24(wrap32(rtz(u * (4096 - (du + 1))) + wrap32(wrap32(a) << 6))), Lava's one-pass wrap."""
    for n in range(u.size):
        total = _wrap32(_rtz12(u[n] * du_factor[n]) + _wrap32(_wrap32(activation[n]) << 6))
        total = total - 2 * _HALF24 if total > _HALF24 else total
        u[n] = total + 2 * _HALF24 if total <= -_HALF24 else total


@njit(cache=True)
def _voltage_row(u, v, fired, dv_factor, bias, threshold, zero, zero_next, subtract, strict):
    """v <- saturate(wrap32(rtz(v * (4096 - dv)) + u + bias)), the threshold test and the reset;
    ``fired`` holds the previous step's spikes (0/1) on entry and this step's on exit. The reset
    kinds and the comparison are 0/1 factors so the loop has no branch."""
    for n in range(v.size):
        before = fired[n]
        total = _wrap32(_rtz12(v[n] * dv_factor[n]) + u[n] + bias[n] - threshold * (subtract * before))
        total = _V_LIMIT if total > _V_LIMIT else total
        total = -_V_LIMIT if total < -_V_LIMIT else total
        total = total * (1 - zero_next * before)
        spike = np.int64(total > threshold - 1 + strict)
        v[n] = total * (1 - spike * zero)
        fired[n] = spike


def delayed_dense_events(spikes, words, delays, weight_exp, out):
    """Activation of a dense synapse with a delay per synapse, spike by spike: for every source step t,
    the weights of its spiking inputs are summed per delay slot d, each slot sum is shifted by
    ``weight_exp`` once (as Lava shifts each slot's sum) and added to ``out`` at step t + 1 + d.

    ``spikes`` (B, T, N_in) of 0/1; ``words``, ``delays`` (N_out, N_in) int64; ``out`` (B, T, N_out)
    int64 zeros. Only for weights where ``loihi.activation_fits_int32`` holds: then no shift or slot sum
    leaves int32 and Lava's wraps are no-ops, so the result equals the slot-by-slot numpy path.
    Work is proportional to delivered spikes x fan-out, not to steps x inputs x outputs x slots; it is
    split over the CPU cores by batch rows or, for a small batch, by output neurons (disjoint parts of
    ``out``, so the result does not depend on the split)."""
    batch, _, n_in = spikes.shape
    n_out = words.shape[0]
    slots = int(delays.max()) + 1 if delays.size else 1
    by_source_w = np.ascontiguousarray(words.T).astype(np.int32)     # |slot sum| < 2^31: int32 exact
    slot_index = np.ascontiguousarray(delays.T * n_out + np.arange(n_out))   # (N_in, N_out) into sums
    workers = parallel.worker_count() if spikes.size * n_out >= _PARALLEL_WORK else 1
    jobs = [(spikes[rows], by_source_w, slot_index, slots, weight_exp, out[rows], lo, hi)
            for rows, lo, hi in _work_split(batch, n_out, workers)]
    run_parallel(_delayed_events_part, jobs)
    return out


def _work_split(batch: int, width: int, workers: int) -> list[tuple[slice, int, int]]:
    """(batch rows, first and end output) of each job: one batch slice per worker, or for a batch
    smaller than the worker count, every row split into output ranges."""
    if batch >= workers or width < 2 * workers:
        return [(slice(a, b), 0, width) for a, b in chunk_bounds(batch, workers)]
    parts = -(-workers // batch)
    return [(slice(b, b + 1), lo, hi) for b in range(batch) for lo, hi in chunk_bounds(width, parts)]


@njit(cache=True, nogil=True)
def _delayed_events_part(spikes, by_source_w, slot_index, slots, weight_exp, out, lo, hi):
    """``delayed_dense_events`` for output neurons lo..hi-1 of the rows of ``spikes`` / ``out``."""
    batch, steps, n_in = spikes.shape
    n_out = by_source_w.shape[1]
    sums = np.zeros(slots * n_out, np.int32)
    for b in range(batch):
        for t in range(steps):
            fired = False
            for j in range(n_in):
                if spikes[b, t, j]:
                    fired = True
                    weights, index = by_source_w[j, lo:hi], slot_index[j, lo:hi]
                    for i in range(hi - lo):
                        sums[index[i]] += weights[i]
            if fired:
                _deliver_slots(sums, out[b], t + 1, weight_exp, n_out, lo, hi)


@njit(cache=True, nogil=True)
def _deliver_slots(sums, out, first, weight_exp, n_out, lo, hi):
    """Shift each slot sum of outputs lo..hi-1 once, add slot d at step first + d, clear the slots."""
    for d in range(sums.size // n_out):
        if first + d < out.shape[0]:
            for i in range(lo, hi):
                value = np.int64(sums[d * n_out + i])
                out[first + d, i] += value << weight_exp if weight_exp >= 0 else value >> -weight_exp
    sums[:] = 0
