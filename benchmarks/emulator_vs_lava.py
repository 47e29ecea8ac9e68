"""Throughput of the bit-accurate emulator against real Lava 0.10 fixed_pt on the same lowered network.

Networks (``--net``; one run each, same input spikes for both):

* ``dense``: 64 -> 128 -> 10 dense LIF, random integer weights (the original benchmark);
* ``pilotnet``: PilotNet's shapes, 3x66x200 -> conv 24@5x5/2, 36@5x5/2, 48@5x5/2, 64@3x3, 64@3x3 ->
  dense 100, 50, 10, 1 (107,033 LIF neurons);
* ``delays``: 256 -> 512 -> 256 -> 10 dense LIF with a delay of 0..15 steps per synapse (778 LIF
  neurons, 1,034 with the inputs).

For each: Lava (CPU, fixed_pt), one sample, Monitor on the output spikes only; steps/s of the run phase
alone (compile and runtime start-up excluded) and of the whole call (build + compile + run + read-out);
the emulator at batch 1 (the like-for-like comparison) and the ratio to Lava; the emulator at a larger
batch: sample-steps/s and synaptic events/s (delivered spike x fan-out). The output spikes of the Lava run
must equal the emulator's, or the script fails.

    PYTHONPATH=. python benchmarks/emulator_vs_lava.py --net dense --steps 1000 --batch 256
    PYTHONPATH=. python benchmarks/emulator_vs_lava.py --net pilotnet --steps 25 --batch 16
    PYTHONPATH=. python benchmarks/emulator_vs_lava.py --net delays --steps 1000 --batch 64
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from snnc.backends.lava_loihi2.run import run_sample
from snnc.ir.graph import Graph
from snnc.arith import parallel
from snnc.arith.synapse_math import conv2d_sum
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiLIF
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


PILOTNET_INPUT = (3, 66, 200)
PILOTNET_CONVS = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))   # channels, kernel, stride
PILOTNET_DENSE = (100, 50, 10, 1)
DELAY_LAYERS = (256, 512, 256, 10)


def pilotnet_network(seed: int) -> Graph:
    """PilotNet's layer shapes; mixed-sign even weights in [-170, 254] (mostly excitatory, so every
    layer spikes), current decay 4095 (no current memory), vth = 21 x fan-in."""
    rng = np.random.default_rng(seed)
    nodes: list = [Input("x", PILOTNET_INPUT)]
    source, shape = "x", PILOTNET_INPUT
    for i, (channels, kernel, stride) in enumerate(PILOTNET_CONVS, start=1):
        weight = _even_weights(rng, (channels, shape[0], kernel, kernel))
        conv = LoihiConv(f"c{i}", source, weight, in_shape=shape, stride=(stride, stride))
        shape = conv.output_shape(None)
        nodes += [conv, _lif(f"n{i}", f"c{i}", shape, shape_fan_in(weight))]
        source = f"n{i}"
    nodes.append(Flatten("flat", source))
    source, size = "flat", int(np.prod(shape))
    for i, width in enumerate(PILOTNET_DENSE, start=len(PILOTNET_CONVS) + 1):
        nodes += [LoihiDense(f"d{i}", source, _even_weights(rng, (width, size)), weight_exp=0),
                  _lif(f"n{i}", f"d{i}", (width,), size)]
        source, size = f"n{i}", width
    return Graph(tuple(nodes), (source,), timing="hop_latency", name="pilotnet_shaped")


def delay_network(seed: int) -> Graph:
    """256 -> 512 -> 256 -> 10, mixed-sign weights (more inhibitory after the first layer, so rates
    stay at 10-30 %), a delay of 0..15 steps on every synapse."""
    rng = np.random.default_rng(seed)
    nodes: list = [Input("x", (DELAY_LAYERS[0],))]
    source = "x"
    for i, (fan_in, fan_out) in enumerate(zip(DELAY_LAYERS[:-1], DELAY_LAYERS[1:]), start=1):
        weights = rng.integers(-100 if i == 1 else -120, 128, (fan_out, fan_in)) * 2
        nodes.append(LoihiDense(f"d{i}", source, weights, weight_exp=-2,
                                delay_steps=rng.integers(0, 16, (fan_out, fan_in))))
        nodes.append(LoihiLIF(f"n{i}", (f"d{i}",), (fan_out,), du=410, dv=205, vth=8000,
                              bias_mant=rng.integers(0, 20, fan_out), bias_exp=np.full(fan_out, 2)))
        source = f"n{i}"
    return Graph(tuple(nodes), (source,), timing="hop_latency", name="dense_256_512_256_10_delays")


def shape_fan_in(weight: np.ndarray) -> int:
    return int(np.prod(weight.shape[1:]))


def _even_weights(rng, shape) -> np.ndarray:
    return (rng.uniform(-0.67, 1.0, shape) * 127).round().astype(np.int64) * 2


def _lif(name: str, synapse: str, shape, fan_in: int) -> LoihiLIF:
    return LoihiLIF(name, (synapse,), tuple(shape), du=4095, dv=410, vth=21 * fan_in, bias_mant=0, bias_exp=0)


NETWORKS = {"dense": benchmark_network, "pilotnet": pilotnet_network, "delays": delay_network}


def input_spikes(graph: Graph, seed: int, batch: int, steps: int, rate: float) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return (rng.random((batch, steps, *graph.node("x").shape)) < rate).astype(np.uint8)


def timed_emulator(graph: Graph, x: np.ndarray, engine: str = "auto", repeats: int = 5):
    """Median wall seconds (and the CPU seconds of that run, all threads) of ``repeats`` runs after one
    warm-up run (which compiles the numba kernels once)."""
    traces = run_loihi(graph, x, record_state=False, engine=engine)
    seconds = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        run_loihi(graph, x, record_state=False, engine=engine)
        seconds.append((time.perf_counter() - start, time.process_time() - cpu))
    wall, cpu = sorted(seconds)[len(seconds) // 2]
    return traces, wall, cpu


def synaptic_events(graph: Graph, traces) -> int:
    """Spikes delivered into dense synapses times their fan-out, summed over synapses."""
    total = 0
    for node in graph.nodes:
        if isinstance(node, LoihiDense):
            total += int(traces.spikes[node.source].sum()) * int(node.weight_mant.shape[0])
        elif isinstance(node, LoihiConv):    # each output neuron receives its window's spikes
            spikes = traces.spikes[node.source]
            taps = (np.asarray(node.weight_mant) != 0).astype(np.float64)
            flat = spikes.reshape(-1, *node.in_shape)
            total += int(conv2d_sum(flat, taps, node.in_shape, node.stride, node.padding, node.groups).sum())
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=sorted(NETWORKS), default="dense")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256, help="batch of the batched emulator run")
    parser.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0]
    graph = NETWORKS[args.net](args.seed)
    out = graph.outputs[0]
    x = input_spikes(graph, args.seed, 1, args.steps, args.rate)
    lava, timing = run_sample(graph, {"x": x[0]}, record_state=False, nodes=[out])
    emulated, emu_s, _ = timed_emulator(graph, x)
    stepped, step_s, _ = timed_emulator(graph, x, engine="step", repeats=1)
    assert np.array_equal(stepped.spikes[out], emulated.spikes[out]), "emulator engines differ"
    assert np.array_equal(lava.spikes[out], emulated.spikes[out]), "Lava and emulator output spikes differ"
    assert emulated.spikes[out].sum() > 0, "benchmark network is silent: parity would be vacuous"

    xb = input_spikes(graph, args.seed + 7, args.batch, args.steps, args.rate)
    batched, batch_s, batch_cpu_s = timed_emulator(graph, xb, repeats=3)
    events = synaptic_events(graph, batched)

    lava_total_s = timing.build_s + timing.compile_s + timing.run_s + timing.read_s
    rows = [
        ("Lava fixed_pt, run only (batch 1)", args.steps / timing.run_s, ""),
        ("Lava fixed_pt, build+compile+run+read", args.steps / lava_total_s,
         f"compile {timing.compile_s:.2f} s, run {timing.run_s:.2f} s"),
        ("emulator, step engine (batch 1)", args.steps / step_s, f"{timing.run_s / step_s:.1f}x Lava run"),
        ("emulator, layerwise engine (batch 1)", args.steps / emu_s,
         f"{timing.run_s / emu_s:.1f}x Lava run, {lava_total_s / emu_s:.1f}x Lava total"),
        (f"emulator (batch {args.batch})", args.batch * args.steps / batch_s,
         f"{events / batch_s:.3g} synaptic events/s ({events / batch_cpu_s:.3g} per CPU second), "
         f"{args.batch * args.steps / batch_s * timing.run_s / args.steps:.0f}x Lava run"),
    ]
    neurons = sum(int(np.prod(n.shape)) for n in graph.nodes if isinstance(n, LoihiLIF))
    print(f"network {graph.name} ({neurons} LIF neurons), {args.steps} steps, input rate {args.rate}; "
          f"output spikes {int(emulated.spikes[out].sum())}, Lava == emulator: yes")
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; emulator threads "
          f"{parallel.worker_count()} (SNNC_THREADS)")
    print(f"{'configuration':<40} {'steps/s':>12}  notes")
    for name, rate, note in rows:
        print(f"{name:<40} {rate:>12,.1f}  {note}")


if __name__ == "__main__":
    main()
