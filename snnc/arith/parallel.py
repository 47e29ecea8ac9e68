"""Coarse-grained threads for the emulator's integer kernels: one large job per CPU core.

Each job runs a GIL-free kernel (compiled numba, or a torch operator with torch's own thread pool
set to one thread) over a disjoint part of the output, so results never depend on the split. Few
large jobs instead of the fine-grained OpenMP regions of torch/BLAS keep the speed-up when other
processes load the machine (OpenMP workers spin at every barrier and lose their time slices).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor


def worker_count() -> int:
    """Threads of the emulator's kernels: ``SNNC_THREADS`` if set (1 = all on the calling thread, the
    fastest choice on a machine loaded by other processes), else the CPU cores this process may use."""
    requested = os.environ.get("SNNC_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return int(requested)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def run_parallel(kernel, jobs: list[tuple]) -> list:
    """``kernel(*job)`` for every job, on the process's worker threads (the last job on the calling
    thread); the results in job order. The kernel must release the GIL and write only its own part of
    any shared output."""
    if len(jobs) == 1:
        return [kernel(*jobs[0])]
    pool = _pool(len(jobs) - 1)
    futures = [pool.submit(kernel, *job) for job in jobs[:-1]]
    last = kernel(*jobs[-1])
    return [future.result() for future in futures] + [last]


_POOL: list = [None, 0]     # the worker pool and its size, created on first use (threads cost to start)


def _pool(size: int) -> ThreadPoolExecutor:
    if _POOL[0] is None or _POOL[1] < size:
        if _POOL[0] is not None:
            _POOL[0].shutdown(wait=False)
        _POOL[:] = [ThreadPoolExecutor(size, thread_name_prefix="snnc-kernel"), size]
    return _POOL[0]


def _forget_pool_after_fork() -> None:
    """A forked child has none of its parent's threads: it starts its own pool."""
    _POOL[:] = [None, 0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def chunk_bounds(size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) ranges covering 0..size-1 (fewer when size is smaller)."""
    parts = max(1, min(parts, size))
    edges = [size * k // parts for k in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def run_torch_parallel(operator, jobs: list[tuple]) -> list:
    """``run_parallel`` for torch operators: torch's own thread pool is set to one thread while they
    run, on every job's thread (OpenMP keeps the setting per thread), and restored afterwards."""
    import torch

    previous = torch.get_num_threads()

    def single_threaded(*job):
        torch.set_num_threads(1)
        return operator(*job)

    try:
        return run_parallel(single_threaded, jobs)
    finally:
        torch.set_num_threads(previous)
