"""Throughput of the bit-accurate emulator against real Lava 0.10 fixed_pt on the same lowered network.

One run each, same network (64 -> 128 -> 10 dense LIF, random integer weights) and same input spikes:

* Lava (CPU, fixed_pt), one sample, Monitor on the output spikes only; steps/s of the run phase alone
  (compile and runtime start-up excluded) and of the whole call (build + compile + run + read-out).
* Emulator at batch 1 (the like-for-like comparison) and the ratio to Lava.
* Emulator at a large batch: sample-steps/s and synaptic events/s (delivered spike x fan-out).

The output spikes of the Lava run must equal the emulator's, or the script fails.

    PYTHONPATH=. python benchmarks/emulator_vs_lava.py --steps 1000 --batch 256
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from snnc.backends.lava_loihi2.run import run_sample
from snnc.ir.graph import Graph
from snnc.ir.nodes import Input, LoihiDense, LoihiLIF
from snnc.simulators.loihi_emulator import run_loihi

LAYERS = (64, 128, 10)


def benchmark_network(seed: int) -> Graph:
    """64 -> 128 -> 10, mixed-sign 8-bit weights, weight_exp -1, per-neuron bias."""
    rng = np.random.default_rng(seed)
    nodes: list = [Input("x", (LAYERS[0],))]
    source = "x"
    for i, (fan_in, fan_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:]), start=1):
        weights = rng.integers(-128, 128, (fan_out, fan_in)) * 2
        nodes.append(LoihiDense(f"d{i}", source, weights, weight_exp=-1))
        nodes.append(LoihiLIF(f"n{i}", (f"d{i}",), (fan_out,), du=410, dv=205, vth=3000,
                              bias_mant=rng.integers(0, 20, fan_out), bias_exp=np.full(fan_out, 2)))
        source = f"n{i}"
    return Graph(tuple(nodes), (source,), timing="hop_latency", name="bench_64_128_10")


def input_spikes(seed: int, batch: int, steps: int, rate: float) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return (rng.random((batch, steps, LAYERS[0])) < rate).astype(np.uint8)


def timed_emulator(graph: Graph, x: np.ndarray, engine: str = "auto", repeats: int = 5):
    """Median of ``repeats`` runs after one warm-up run (which compiles the numba kernel once)."""
    traces = run_loihi(graph, x, record_state=False, engine=engine)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_loihi(graph, x, record_state=False, engine=engine)
        seconds.append(time.perf_counter() - start)
    return traces, float(np.median(seconds))


def synaptic_events(graph: Graph, traces) -> int:
    """Spikes delivered into dense synapses times their fan-out, summed over synapses."""
    total = 0
    for node in graph.nodes:
        if isinstance(node, LoihiDense):
            total += int(traces.spikes[node.source].sum()) * int(node.weight_mant.shape[0])
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256, help="batch of the batched emulator run")
    parser.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    graph = benchmark_network(args.seed)
    out = graph.outputs[0]
    x = input_spikes(args.seed, 1, args.steps, args.rate)
    lava, timing = run_sample(graph, {"x": x[0]}, record_state=False, nodes=[out])
    emulated, emu_s = timed_emulator(graph, x)
    stepped, step_s = timed_emulator(graph, x, engine="step", repeats=1)
    assert np.array_equal(stepped.spikes[out], emulated.spikes[out]), "emulator engines differ"
    assert np.array_equal(lava.spikes[out], emulated.spikes[out]), "Lava and emulator output spikes differ"
    assert emulated.spikes[out].sum() > 0, "benchmark network is silent: parity would be vacuous"

    xb = input_spikes(args.seed + 7, args.batch, args.steps, args.rate)
    batched, batch_s = timed_emulator(graph, xb)

    lava_total_s = timing.build_s + timing.compile_s + timing.run_s + timing.read_s
    rows = [
        ("Lava fixed_pt, run only (batch 1)", args.steps / timing.run_s, ""),
        ("Lava fixed_pt, build+compile+run+read", args.steps / lava_total_s,
         f"compile {timing.compile_s:.2f} s, run {timing.run_s:.2f} s"),
        ("emulator, step engine (batch 1)", args.steps / step_s, f"{timing.run_s / step_s:.1f}x Lava run"),
        ("emulator, layerwise engine (batch 1)", args.steps / emu_s,
         f"{timing.run_s / emu_s:.1f}x Lava run, {lava_total_s / emu_s:.1f}x Lava total"),
        (f"emulator (batch {args.batch})", args.batch * args.steps / batch_s,
         f"{synaptic_events(graph, batched) / batch_s:.3g} synaptic events/s, "
         f"{args.batch * args.steps / batch_s * timing.run_s / args.steps:.0f}x Lava run"),
    ]
    print(f"network {'-'.join(map(str, LAYERS))} dense LIF, {args.steps} steps, input rate {args.rate}; "
          f"output spikes {int(emulated.spikes[out].sum())}, Lava == emulator: yes")
    print(f"{'configuration':<40} {'steps/s':>12}  notes")
    for name, rate, note in rows:
        print(f"{name:<40} {rate:>12,.0f}  {note}")


if __name__ == "__main__":
    main()
