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
# The per-synapse-delay kernel's time tile (source steps per SIMD lane pass) and the sparse cut-off: an
# input with fewer than _TILE / _SPARSE_BELOW spikes in a tile is added spike by spike.
_TILE = 256
_SPARSE_BELOW = 16


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
    """Activation of a dense synapse with a delay per synapse: for every source step t, the weights of its
    spiking inputs are summed per delay slot d, each slot sum is shifted by ``weight_exp`` once (as Lava
    shifts each slot's sum) and added to ``out`` at step t + 1 + d.

    ``spikes`` (B, T, N_in) of 0/1; ``words``, ``delays`` (N_out, N_in) int64; ``out`` (B, T, N_out)
    int64 zeros. Only for weights where ``loihi.activation_fits_int32`` holds: then no shift, slot sum or
    total leaves int32 and Lava's wraps are no-ops, so the result equals the slot-by-slot numpy path.

    Time runs in lanes: source steps are cut into tiles of ``_TILE`` steps; for each output neuron, each
    synapse adds its weight to its delay slot's row of per-step sums, as a SIMD pass over the tile's
    steps (weight AND the input's 0/-1 spike mask) for an input that spikes often in the tile, or
    step by step over its spike times for one that spikes rarely (fewer than ``_TILE / _SPARSE_BELOW``).
    Work is split over the CPU cores by batch rows or, for a small batch, by output neurons (disjoint
    parts of ``out``, so the result does not depend on the split)."""
    batch, _, n_in = spikes.shape
    n_out = words.shape[0]
    slots = int(delays.max()) + 1 if delays.size else 1
    lanes = np.ascontiguousarray(words).astype(slot_sum_dtype(words, delays, slots))
    delays = np.ascontiguousarray(delays).astype(np.int64)
    workers = parallel.worker_count() if spikes.size * n_out >= _PARALLEL_WORK else 1
    jobs = [(spikes[rows], lanes, delays, slots, weight_exp, out[rows], lo, hi)
            for rows, lo, hi in _work_split(batch, n_out, workers)]
    run_parallel(_delayed_lanes_part, jobs)
    return out


def slot_sum_dtype(words: np.ndarray, delays: np.ndarray, slots: int):
    """int16 when no output's delay slot can sum to 2^15 or more in magnitude (twice the SIMD lanes of
    int32), else int32 (enough wherever ``activation_fits_int32`` holds)."""
    if not words.size:
        return np.int16
    index = np.arange(words.shape[0])[:, None] * slots + delays
    bound = np.bincount(index.ravel(), weights=np.abs(words).ravel().astype(np.float64)).max()
    return np.int16 if bound < (1 << 15) else np.int32


def _work_split(batch: int, width: int, workers: int) -> list[tuple[slice, int, int]]:
    """(batch rows, first and end output) of each job: one batch slice per worker, or for a batch
    smaller than the worker count, every row split into output ranges."""
    if batch >= workers or width < 2 * workers:
        return [(slice(a, b), 0, width) for a, b in chunk_bounds(batch, workers)]
    parts = -(-workers // batch)
    return [(slice(b, b + 1), lo, hi) for b in range(batch) for lo, hi in chunk_bounds(width, parts)]


@njit(cache=True, nogil=True)
def _delayed_lanes_part(spikes, lanes, delays, slots, weight_exp, out, lo, hi):
    """``delayed_dense_events`` for output neurons lo..hi-1 of the rows of ``spikes`` / ``out``. ``pending``
    holds each output's sums for steps first .. first + _TILE + slots - 1 of the current tile; the part
    past the tile carries into the next one. ``lanes`` are the weights in the slot sums' integer type."""
    batch, steps, n_in = spikes.shape
    width = hi - lo
    masks = np.zeros((n_in, _TILE), lanes.dtype)
    times = np.zeros((n_in, _TILE), np.int64)
    counts = np.zeros(n_in, np.int64)
    sums = np.zeros((slots, _TILE), lanes.dtype)
    pending = np.zeros((width, _TILE + slots), np.int32)
    for b in range(batch):
        pending[:, :] = 0
        for t0 in range(0, steps - 1, _TILE):
            length = min(_TILE, steps - 1 - t0)
            _tile_inputs(spikes[b], t0, length, masks, times, counts)
            for i in range(width):
                _slot_sums(lanes[lo + i], delays[lo + i], masks, times, counts, sums)
                _add_shifted_slots(sums, pending[i], weight_exp)
            _add_transposed(pending, out[b], t0 + 1, length, lo)
            _carry_past_tile(pending)


@njit(cache=True, nogil=True, inline="always")
def _tile_inputs(spikes, t0, length, masks, times, counts):
    """Each input's 0/-1 mask over source steps t0..t0+length-1 (zero past ``length``), its spike times
    in the tile and their count."""
    n_in = masks.shape[0]
    counts[:] = 0
    masks[:, :] = 0
    for k in range(length):
        row = spikes[t0 + k]
        for j in range(n_in):
            if row[j]:
                masks[j, k] = -1
                times[j, counts[j]] = k
                counts[j] += 1


@njit(cache=True, nogil=True, inline="always")
def _slot_sums(weights, delays, masks, times, counts, sums):
    """sums[d, k] = the weights of one output's inputs with delay d that spiked at tile step k."""
    sums[:, :] = 0
    tile = sums.shape[1]
    sparse_limit = tile // _SPARSE_BELOW
    for j in range(weights.size):
        weight, count = weights[j], counts[j]
        if weight == 0 or count == 0:
            continue
        row = sums[delays[j]]
        if count < sparse_limit:
            spike_times = times[j]
            for q in range(count):
                row[spike_times[q]] += weight
        else:
            mask = masks[j]
            for k in range(tile):
                row[k] += weight & mask[k]


@njit(cache=True, nogil=True, inline="always")
def _add_shifted_slots(sums, pending, weight_exp):
    """Shift each slot's sums once and add slot d's sum of tile step k to pending[d + k]."""
    slots, tile = sums.shape
    for d in range(slots):
        row = sums[d]
        if weight_exp >= 0:
            for k in range(tile):
                pending[d + k] += row[k] << weight_exp
        else:
            for k in range(tile):
                pending[d + k] += row[k] >> -weight_exp


@njit(cache=True, nogil=True, inline="always")
def _add_transposed(pending, out, first, length, lo):
    """out[first + m, lo + i] += pending[i, m] for m < length, in blocks of 16 outputs (cache-friendly)."""
    width = pending.shape[0]
    for i0 in range(0, width, 16):
        i1 = min(i0 + 16, width)
        for m in range(length):
            row = out[first + m]
            for i in range(i0, i1):
                row[lo + i] += pending[i, m]


@njit(cache=True, nogil=True, inline="always")
def _carry_past_tile(pending):
    """Move each output's sums past the tile to the front and clear the rest."""
    width, size = pending.shape
    kept = size - _TILE
    for i in range(width):
        for m in range(kept):
            pending[i, m] = pending[i, m + _TILE]
        for m in range(kept, size):
            pending[i, m] = 0
