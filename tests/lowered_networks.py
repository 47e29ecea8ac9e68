"""Seeded lowered (hop-latency) test networks built directly from LoihiDense/LoihiConv/LoihiLIF nodes.

Shared by the Lava parity tests and the emulator-engine equivalence tests. Each builder returns
(graph, input spikes) and exercises one feature: mixed-sign truncation, exponents, u wrap, v saturation,
per-synapse delays, recurrence, convolution layouts.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from snnc.arith.loihi import VTH_MAX
from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiLIF


def poisson(rng: np.random.Generator, batch: int, steps: int, shape, rate: float) -> np.ndarray:
    return (rng.random((batch, steps, *shape)) < rate).astype(np.uint8)


def lif(name, inputs, shape, rng, vth, du=None, dv=None, bias_range=(0, 1), bias_exp_range=(0, 1)):
    """LoihiLIF with random (seeded) du, dv and per-neuron bias unless given."""
    size = int(np.prod(shape))
    return LoihiLIF(name, tuple(inputs), tuple(shape),
                    du=int(rng.integers(0, 4096)) if du is None else du,
                    dv=int(rng.integers(0, 4096)) if dv is None else dv, vth=vth,
                    bias_mant=rng.integers(*bias_range, size), bias_exp=rng.integers(*bias_exp_range, size))


def hop_graph(nodes, outputs) -> Graph:
    return Graph(tuple(nodes), tuple(outputs), timing="hop_latency")


def with_node(graph: Graph, name: str, **changes) -> Graph:
    """The graph with one node's fields replaced (to show a feature changes the result)."""
    nodes = [dataclasses.replace(n, **changes) if n.name == name else n for n in graph.nodes]
    return graph.replace_nodes(nodes)


# ---------------------------------------------------------------------------------------- networks

def mixed_sign_network(seed: int) -> tuple[Graph, np.ndarray]:
    """16 -> 12 -> 6, mixed-sign odd weights (Lava truncates them), negative weight exponents, random
    du/dv and per-neuron bias with bias_exp > 0."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (16,)),
        LoihiDense("d1", "x", rng.integers(-255, 255, (12, 16)), weight_exp=-2),
        lif("n1", ["d1"], (12,), rng, vth=int(rng.integers(20, 80)), bias_range=(-60, 90),
            bias_exp_range=(1, 4)),
        LoihiDense("d2", "n1", rng.integers(-256, 255, (6, 12)), weight_exp=-1),
        lif("n2", ["d2"], (6,), rng, vth=int(rng.integers(20, 80)), bias_range=(-40, 60),
            bias_exp_range=(1, 3)),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 3, 30, (16,), 0.3)


def excitatory_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Excitatory-only weights, positive weight exponent, 7-bit weights (Lava drops one low bit)."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (10,)),
        LoihiDense("d1", "x", rng.integers(0, 256, (8, 10)), weight_exp=2, num_weight_bits=7,
                   sign_mode="excitatory"),
        lif("n1", ["d1"], (8,), rng, vth=int(rng.integers(3000, 8000)), bias_range=(-200, 0),
            bias_exp_range=(1, 3)),
        LoihiDense("d2", "n1", rng.integers(0, 256, (4, 8)), weight_exp=3, sign_mode="excitatory"),
        lif("n2", ["d2"], (4,), rng, vth=int(rng.integers(3000, 8000))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 30, (10,), 0.4)


def current_wrap_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Dense excitatory drive with a large exponent and no current decay: u exceeds 2^23 and wraps."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (64,)),
        LoihiDense("d1", "x", rng.integers(150, 256, (5, 64)), weight_exp=3, sign_mode="excitatory"),
        lif("n1", ["d1"], (5,), rng, vth=VTH_MAX, du=0, dv=int(rng.integers(1000, 4096))),
    ]
    return hop_graph(nodes, ["n1"]), poisson(rng, 2, 30, (64,), 0.6)


def voltage_saturation_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Strong mixed drive with no voltage decay: v clips at -(2^23 - 1) (and at +(2^23 - 1), which is
    above the largest threshold, so those neurons fire)."""
    rng = np.random.default_rng(seed)
    weights = rng.integers(100, 255, (6, 32)) * np.where(np.arange(6) % 2 == 0, -1, 1)[:, None]
    nodes = [
        Input("x", (32,)),
        LoihiDense("d1", "x", weights, weight_exp=2),
        lif("n1", ["d1"], (6,), rng, vth=VTH_MAX, du=int(rng.integers(2000, 4096)), dv=0,
            bias_range=(-4000, 4000), bias_exp_range=(5, 8)),
    ]
    return hop_graph(nodes, ["n1"]), poisson(rng, 2, 30, (32,), 0.5)


def delay_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Per-synapse delays 0..7 (DelayDense) with weight_exp -1, where Lava floors every delay slot
    separately; then a uniform delay of 4 on the second layer."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (12,)),
        LoihiDense("d1", "x", rng.integers(-255, 255, (8, 12)), weight_exp=-1,
                   delay_steps=rng.integers(0, 8, (8, 12))),
        lif("n1", ["d1"], (8,), rng, vth=int(rng.integers(30, 90)), bias_range=(-20, 30),
            bias_exp_range=(1, 3)),
        LoihiDense("d2", "n1", rng.integers(-255, 255, (5, 8)), weight_exp=-1, delay_steps=4),
        lif("n2", ["d2"], (5,), rng, vth=int(rng.integers(10, 50))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 40, (12,), 0.35)


def recurrent_network(seed: int) -> tuple[Graph, np.ndarray]:
    """n1 reads the input and itself (LIF -> Dense -> same LIF); n2 adds a residual path from the
    input to n1's output layer (two synapses into one neuron group)."""
    rng = np.random.default_rng(seed)
    nodes = [
        Input("x", (10,)),
        LoihiDense("d_in", "x", rng.integers(-120, 255, (8, 10)), weight_exp=-1),
        LoihiDense("d_rec", "n1", rng.integers(-255, 255, (8, 8)), weight_exp=0),
        lif("n1", ["d_in", "d_rec"], (8,), rng, vth=int(rng.integers(30, 80))),
        LoihiDense("d_fwd", "n1", rng.integers(-255, 255, (4, 8)), weight_exp=-1),
        LoihiDense("d_skip", "x", rng.integers(-255, 255, (4, 10)), weight_exp=-2),
        lif("n2", ["d_fwd", "d_skip"], (4,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 30, (10,), 0.3)


def conv_network(seed: int) -> tuple[Graph, np.ndarray]:
    """(2, 7, 9) input -> conv 3x3, stride 2, padding 1 -> LIF (4, 4, 5) -> flatten -> dense -> LIF 6.
    H != W so a swapped axis anywhere in the layout conversion changes the result."""
    rng = np.random.default_rng(seed)
    conv_shape = (4, 4, 5)
    nodes = [
        Input("x", (2, 7, 9)),
        LoihiConv("c1", "x", rng.integers(-40, 60, (4, 2, 3, 3)), in_shape=(2, 7, 9), stride=(2, 2),
                  padding=(1, 1)),
        lif("n1", ["c1"], conv_shape, rng, vth=int(rng.integers(40, 90)), bias_range=(-10, 20),
            bias_exp_range=(1, 3)),
        Flatten("f1", "n1"),
        LoihiDense("d2", "f1", rng.integers(-255, 255, (6, 80)), weight_exp=-1),
        lif("n2", ["d2"], (6,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 25, (2, 7, 9), 0.3)


def layout_network(seed: int) -> tuple[Graph, np.ndarray]:
    """Layout corner cases: asymmetric stride/padding with groups=2; a dense from a flattened 3-D input
    into 3-D neurons (rows permuted) summed with a conv; a conv into 1-D neurons (transposed port)."""
    rng = np.random.default_rng(seed)
    mid = (4, 3, 5)
    nodes = [
        Input("x", (2, 6, 5)),
        LoihiConv("c1", "x", rng.integers(-30, 80, (4, 1, 2, 3)), in_shape=(2, 6, 5), stride=(2, 1),
                  padding=(0, 1), groups=2),
        Flatten("fx", "x"),
        LoihiDense("d_side", "fx", rng.integers(-255, 255, (60, 60)), weight_exp=-2),
        lif("n1", ["c1", "d_side"], mid, rng, vth=int(rng.integers(40, 90))),
        LoihiConv("c2", "n1", rng.integers(-70, 70, (3, 4, 3, 2)), in_shape=mid, stride=(1, 2)),
        lif("n2", ["c2"], (3 * 1 * 2,), rng, vth=int(rng.integers(20, 60))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 25, (2, 6, 5), 0.35)


def sparse_network(seed: int) -> tuple[Graph, np.ndarray]:
    """30 -> 20 -> 6 with ~15% non-zero mixed-sign weights: the backend emits Lava ``Sparse``."""
    rng = np.random.default_rng(seed)
    def sparse(o, i):
        return rng.integers(-255, 255, (o, i)) * (rng.random((o, i)) < 0.15)
    nodes = [
        Input("x", (30,)),
        LoihiDense("d1", "x", sparse(20, 30), weight_exp=-1),
        lif("n1", ["d1"], (20,), rng, vth=int(rng.integers(20, 60)), bias_range=(-10, 20)),
        LoihiDense("d2", "n1", sparse(6, 20), weight_exp=0),
        lif("n2", ["d2"], (6,), rng, vth=int(rng.integers(10, 40))),
    ]
    return hop_graph(nodes, ["n2"]), poisson(rng, 2, 30, (30,), 0.4)


NETWORKS = [mixed_sign_network, excitatory_network, current_wrap_network, voltage_saturation_network,
            delay_network, recurrent_network, conv_network, layout_network, sparse_network]
