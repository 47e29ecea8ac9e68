"""Compile time of the Loihi 2 pipeline on synthetic networks from 20k neurons / 2M synapses up to
1M neurons / 100M synapses: time per pass, total, and growth per synapse (linear means a flat last column).

The network is a chain of P (wide, narrow) pairs: input (50) -> [Dense 20000x50 -> CubaLIF 20000]
-> [Dense 50x20000 -> CubaLIF 50] -> ... Each pair has 20,050 neurons and 2,000,000 synapses. Every
narrow group has fan-in 20,000 > 16,384 input axons, so fan-in partitioning splits it (k = 2) and
placement packs ~2,500 cores at the largest size. The target is Loihi 2's per-core budget with enough
chips for the largest network (the 120-core single chip holds ~4.8M synapses at snnc's budget).

    PYTHONPATH=. python benchmarks/compile_scaling.py             # P = 1, 5, 25, 50 (up to 1M/100M)
    PYTHONPATH=. python benchmarks/compile_scaling.py --pairs 1 5  # quicker
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import resource
import time

import numpy as np

from snnc.compiler.pipeline import PIPELINES
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.ir.verify import verify
from snnc.targets.catalog import LOIHI2

WIDE, NARROW, INPUT = 20_000, 50, 50
SPEC = dataclasses.replace(LOIHI2, chips=64)


def synthetic_network(pairs: int, seed: int = 0) -> Graph:
    """Chain of ``pairs`` (wide, narrow) dense LIF layers, float32 weights, zero-reset LIF neurons."""
    rng = np.random.default_rng(seed)
    nodes: list = [Input("x", (INPUT,))]
    source, width = "x", INPUT
    for p in range(pairs):
        for kind, size in (("wide", WIDE), ("narrow", NARROW)):
            weight = rng.standard_normal((size, width), dtype=np.float32) * np.float32(1.0 / np.sqrt(width))
            nodes.append(Dense(f"{kind}{p}_syn", source, weight))
            nodes.append(CubaLIF(f"{kind}{p}", (f"{kind}{p}_syn",), (size,), current_decay=1.0,
                                 voltage_decay=0.1, threshold=1.0, reset="zero"))
            source, width = f"{kind}{p}", size
    return Graph(tuple(nodes), (source,), name=f"synthetic_{pairs}")


def timed_compile(graph: Graph) -> tuple[dict[str, float], dict]:
    """Run the loihi2 pass list with ``SPEC`` (verifying after each pass, as ``compile_graph`` does)."""
    times, reports = {}, {}
    start = time.perf_counter()
    graph = verify(graph)
    times["verify input"] = time.perf_counter() - start
    for step in PIPELINES["loihi2"]:
        start = time.perf_counter()
        result = step(graph, step.options(target=SPEC))
        graph = verify(result.graph)
        times[step.name] = time.perf_counter() - start
        reports[step.name] = result.report
    return times, reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 5, 25, 50])
    args = parser.parse_args()
    rows = []
    for pairs in args.pairs:
        graph = synthetic_network(pairs)
        neurons = INPUT + pairs * (WIDE + NARROW)
        synapses = pairs * 2 * WIDE * NARROW
        times, reports = timed_compile(graph)
        total = sum(times.values())
        place = reports["place_cores"]
        rows.append((neurons, synapses, total, times, place))
        print(f"P={pairs:>3}: {neurons:>9,} neurons {synapses:>12,} synapses  compile {total:7.2f} s  "
              f"cores {place['cores_used']} (lower bound {place['lower_bound']})  "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB", flush=True)
        del graph, reports
        gc.collect()
    print_table(rows)


def print_table(rows) -> None:
    passes = list(rows[0][3])
    print("\n| neurons | synapses | " + " | ".join(passes) + " | total s | us per 1k synapses | cores / LB |")
    print("|" + "---|" * (len(passes) + 5))
    for neurons, synapses, total, times, place in rows:
        cells = " | ".join(f"{times[p]:.2f}" for p in passes)
        print(f"| {neurons:,} | {synapses:,} | {cells} | {total:.2f} | {1e9 * total / synapses:.1f} | "
              f"{place['cores_used']} / {place['lower_bound']} |")


if __name__ == "__main__":
    main()
