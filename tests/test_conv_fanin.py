"""Convolution fan-in counted from the kernel window, and conv layers tiled onto Loihi cores.

A PilotNet-shaped network (5 conv + 4 dense, 107,033 neurons, built with torch modules through the torch
frontend) compiles for loihi2: every neuron's fan-in is its kernel window (not the whole input layer),
the placement's tiles fit every core budget, tiling changes no arithmetic (the emulator agrees with and
without fan-in partitioning) and the emitted Lava network runs on real Lava spike for spike.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels, parallel
from snnc.arith.synapse_math import conv2d_float32_sum, conv2d_int_sum
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import partition_fanin
from snnc.compiler.passes.place_cores import place_graph
from snnc.compiler.pipeline import compile_graph
from snnc.errors import DesignRuleError
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import Input, LoihiConv, LoihiDense, LoihiGradedRelay, LoihiLIF
from snnc.ir.printer import format_graph
from snnc.ir.verify import verify
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import LOIHI2
from snnc.targets.conv_window import ConvWindow, TileSpan, channel_block, tile_order
from snnc.targets.spec import synapse_fan_in

PILOTNET_INPUT = (3, 66, 200)
GROUPS = ["lif_1", "lif_3", "lif_5", "lif_7", "lif_9", "lif_12", "lif_14", "lif_16", "lif_18"]


def pilotnet(seed: int = 0) -> nn.Sequential:
    """PilotNet's layer shapes (3x66x200 -> conv 24@5x5/2, 36@5x5/2, 48@5x5/2, 64@3x3, 64@3x3 -> dense
    100, 50, 10, 1) with CUBA LIF neurons and mostly excitatory weights so every layer spikes."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 24, 5, stride=2), _lif(), nn.Conv2d(24, 36, 5, stride=2), _lif(),
        nn.Conv2d(36, 48, 5, stride=2), _lif(), nn.Conv2d(48, 64, 3), _lif(), nn.Conv2d(64, 64, 3), _lif(),
        nn.Flatten(), nn.Linear(64 * 18, 100), _lif(), nn.Linear(100, 50), _lif(), nn.Linear(50, 10), _lif(),
        nn.Linear(10, 1), _lif())
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_((torch.rand_like(layer.weight) * 2 - 0.8) * 10 / fan_in)
                nn.init.zeros_(layer.bias)
    return model


def _lif():
    return snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True)


@functools.lru_cache(maxsize=None)
def pilotnet_graph():
    return from_torch(pilotnet(), PILOTNET_INPUT, name="pilotnet")


def pilotnet_input(steps: int) -> np.ndarray:
    return np.random.default_rng(0).random((1, steps, *PILOTNET_INPUT)) < 0.3


def test_conv_fan_in_is_the_kernel_window_not_the_input_layer():
    graph = compile_graph(pilotnet_graph(), "loihi2").graph
    fan_in = {g: synapse_fan_in(graph, graph.node(graph.node(g).inputs[0])) for g in GROUPS[:5]}
    # in_channels x kh x kw: 3*5*5, 24*5*5, 36*5*5, 48*3*3, 64*3*3 (before: the whole input layer,
    # 3*66*200 = 39,600 for lif_1, 24*31*98 = 72,912 for lif_3, 36*14*47 = 23,688 for lif_5).
    assert fan_in == {"lif_1": 75, "lif_3": 600, "lif_5": 900, "lif_7": 432, "lif_9": 576}


NARROW = dataclasses.replace(LOIHI2, name="loihi2-narrow", input_axons_per_core=500, chips=4)


def test_windows_wider_than_a_core_are_split_by_input_channel_partial_sums():
    """500 axons: the conv windows 600 (lif_3), 900 (lif_5) and 576 (lif_9) are split by input channels
    (2 partial sums each), the dense 1152-input layer by columns (3); the emulator output is unchanged.
    (Before conv splitting: ``needs fan-in partitioning: limit 500 input axons per core, got 600``.)"""
    plain = compile_graph(pilotnet_graph(), "emulator").graph
    split = verify(partition_fanin.run(plain, PassOptions(target=NARROW)).graph)
    relays = [n.name for n in split.nodes if isinstance(n, LoihiGradedRelay)]
    convs = {n.inputs[0] for n in plain.nodes if n.name in ("lif_3", "lif_5", "lif_9")}
    assert sorted(r.split("__")[0] for r in relays) == sorted([*convs, *convs, *["syn_11"] * 3])
    assert all(synapse_fan_in(split, split.node(split.node(r).inputs[0])) <= 500 for r in relays)
    assert [v for v in NARROW.fits(split) if v.field == "fan-in"] == []
    x = pilotnet_input(6)
    expected, actual = run_on_ir_grid(plain, x, record_state=True), run_on_ir_grid(split, x, record_state=True)
    assert first_divergence(expected, actual, names=list(expected.spikes)) is None


@pytest.mark.slow
def test_narrow_cores_leave_a_core_count_not_a_fan_in_violation():
    """The relays' tiles need many cores (a relay tile's windows overlap little within 500 axons): 4 chips
    are too few, and that, not the fan-in, is what the design rules report (~20 s: placement)."""
    with pytest.raises(DesignRuleError) as err:
        compile_graph(pilotnet_graph(), "loihi2", spec=NARROW)
    assert [str(v) for v in err.value.violations] == [
        "node 'pilotnet' field 'cores': limit 480 (4 chip(s) of 120), got 1292 placed"]


def test_pilotnet_places_on_one_loihi2_chip():
    result = compile_graph(pilotnet_graph(), "loihi2")
    report = result.reports["place_cores"]
    # Lower bound: 107,033 neurons / 4096 per core -> 27 cores (synapse words, 251,8xx / 40,000, and
    # axons bound less). Placed: 33 cores, one chip of 120.
    assert (report["cores_used"], report["lower_bound"], report["chips_needed"]) == (33, 27, 1)
    cores = report["cores"]
    words = int(np.count_nonzero(_conv_before(result.graph, "lif_1").weight_mant))
    # lif_1 (24x31x98) tiles in (x, y, c) order: 4096 neurons = x columns 0..5 of 31 rows x 24
    # channels, reading input columns 0..14 (2x+0..4), rows 0..64, 3 channels: 3*65*15 = 2925 axons;
    # the next tile spans x 5..11 -> columns 10..26: 3*65*17 = 3315. Its kernels are stored once: 24 x
    # 75 weights less those quantized to zero.
    assert cores[0] == {"core": 0, "tiles": [["lif_1", 0, 4096]], "neurons": 4096, "synapses": words,
                        "axons": 2925}
    assert cores[1]["axons"] == 3315
    # A full lif_3 tile (36x14x47): 4096 / 36 channels = 113.8 positions = 8.1 columns of 14, so 9 x
    # columns, reading 2*9+3 = 21 input columns x all 31 rows x 24 channels = 15,624 axons.
    assert cores[18] == {"core": 18, "tiles": [["lif_3", 816, 4912]], "neurons": 4096,
                         "synapses": int(np.count_nonzero(_conv_before(result.graph, "lif_3").weight_mant)),
                         "axons": 15624}
    for core in cores:
        assert core["neurons"] <= 4096 and core["synapses"] <= 40_000 and core["axons"] <= 16_384, core


def test_every_neuron_is_placed_once():
    placement = place_graph(compile_graph(pilotnet_graph(), "loihi2").graph, LOIHI2)
    for group, footprint in placement.footprints.items():
        counts = np.zeros(footprint.neurons, np.int64)
        for _, start, stop in placement.tiles[group]:
            np.add.at(counts, footprint.tile_neurons(start, stop), 1)
        assert np.all(counts == 1), group


def test_tiling_and_fan_in_partitioning_keep_the_emulator_output():
    graph = pilotnet_graph()
    plain = compile_graph(graph, "emulator").graph
    assert format_graph(compile_graph(graph, "loihi2").graph) == format_graph(plain), \
        "tiling convolutions onto cores is a placement decision: the lowered graph is unchanged"
    narrow = dataclasses.replace(LOIHI2, name="loihi2-1000-axons", input_axons_per_core=1000)
    split = verify(partition_fanin.run(plain, PassOptions(target=narrow)).graph)
    assert sum(isinstance(n, LoihiGradedRelay) for n in split.nodes) == 2   # 1152 columns -> 2 x 576
    x = pilotnet_input(8)
    expected, actual = run_on_ir_grid(plain, x, record_state=True), run_on_ir_grid(split, x, record_state=True)
    assert first_divergence(expected, actual, names=list(expected.spikes)) is None
    assert all(expected.spikes[g].sum() > 0 for g in GROUPS[:-1]), "deep layers spike: not a silent net"


@pytest.mark.parametrize("seed", range(12))
def test_tile_axons_bound_the_union_of_windows(seed):
    rng = np.random.default_rng(seed)
    conv = _random_conv(rng)
    window = ConvWindow.of(conv)
    single = [len(_brute_inputs(conv, np.array([n]))) for n in range(window.neurons)]
    assert max(single) <= window.window_fan_in()
    order = tile_order(window.out_shape, int(rng.integers(1, window.out_shape[0] + 1)))
    for start, stop in itertools.combinations(sorted(rng.choice(window.neurons + 1, 6, replace=False)), 2):
        assert len(_brute_inputs(conv, order[start:stop])) <= window.tile_axons(order[start:stop])
    dense = dataclasses.replace(conv, weight_mant=np.where(conv.weight_mant == 0, 1, conv.weight_mant))
    c, h, w = window.out_shape   # whole x-columns of every channel, dense kernel: counted exactly
    columns = tile_order(window.out_shape, c)[: c * h * int(rng.integers(1, w + 1))]
    assert len(_brute_inputs(dense, columns)) == ConvWindow.of(dense).tile_axons(columns)


def test_channel_blocks_keep_a_tile_s_kernels_within_synapse_memory():
    assert channel_block(np.full(48, 900), 40_000) == 24      # 43,200 words: two blocks of 24
    assert channel_block(np.full(24, 75), 40_000) == 24       # fits: every channel in one block
    assert channel_block(np.full(5, 100), None) == 5
    assert list(tile_order((2, 2, 3), 1)) == [0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]


@pytest.mark.slow
@pytest.mark.lava
def test_pilotnet_runs_on_real_lava_spike_for_spike():
    from snnc.backends.lava_loihi2.run import run_lava
    graph = compile_graph(pilotnet_graph(), "loihi2").graph
    x = pilotnet_input(12)
    expected = run_loihi(graph, x)
    assert first_divergence(expected, run_lava(graph, x)) is None
    assert expected.spikes["lif_18"].sum() > 0


def _conv_before(graph, group: str) -> LoihiConv:
    return graph.node(graph.node(group).inputs[0])


def _random_conv(rng) -> LoihiConv:
    groups = int(rng.choice([1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 4))
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    in_shape = (c_in, int(rng.integers(kernel[0], 8)), int(rng.integers(kernel[1], 9)))
    weight = rng.integers(-3, 4, (c_out, c_in // groups, *kernel)) * (rng.random((c_out, c_in // groups, *kernel)) < 0.7)
    return LoihiConv("c", "x", weight, in_shape=in_shape, stride=tuple(int(s) for s in rng.integers(1, 3, 2)),
                     padding=tuple(int(p) for p in rng.integers(0, 2, 2)), groups=groups)


def _brute_inputs(conv: LoihiConv, neurons: np.ndarray) -> set[int]:
    """Flat input indices that the output neurons read through a non-zero weight, by enumeration."""
    c_in, height, width = conv.in_shape
    c_out, per_group, kh, kw = conv.weight_mant.shape
    _, out_h, out_w = conv.output_shape(None)
    out = set()
    for n in neurons:
        co, y, x = n // (out_h * out_w), (n // out_w) % out_h, n % out_w
        first = (co // (c_out // conv.groups)) * per_group
        for ci, ky, kx in zip(*np.nonzero(conv.weight_mant[co])):
            iy, ix = y * conv.stride[0] - conv.padding[0] + ky, x * conv.stride[1] - conv.padding[1] + kx
            if 0 <= iy < height and 0 <= ix < width:
                out.add(((first + ci) * height + iy) * width + ix)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_span_of_a_tile_order_range_equals_the_span_of_its_neurons(seed):
    rng = np.random.default_rng(100 + seed)
    shape = tuple(int(v) for v in rng.integers(1, 7, 3))
    block = int(rng.integers(1, shape[0] + 1))
    order, size = tile_order(shape, block), int(np.prod(shape))
    for start, stop in itertools.combinations(sorted(rng.choice(size + 1, min(size + 1, 8), replace=False)), 2):
        by_range, by_neurons = TileSpan.of_range(shape, block, start, stop), TileSpan.of_neurons(shape, order[start:stop])
        for field in ("channels", "rows", "cols"):
            assert np.array_equal(getattr(by_range, field), getattr(by_neurons, field)), (start, stop, field)


@pytest.mark.parametrize("seed, spike_max", [(0, 1), (1, 1), (2, 2 ** 16), (3, 2 ** 23)])
def test_integer_convolution_is_exact_in_float32_and_float64(seed, spike_max):
    """conv2d_int_sum picks float32 below its 2^24 bound (binary spikes) and float64 above (graded)."""
    rng = np.random.default_rng(seed)
    conv = _random_conv(rng)
    weight = rng.integers(-256, 255, conv.weight_mant.shape)
    x = rng.integers(0, spike_max + 1, (3, *conv.in_shape))
    got = conv2d_int_sum(x, weight, conv.in_shape, conv.stride, conv.padding, conv.groups)
    padded = np.pad(x, ((0, 0), (0, 0), *[(p, p) for p in conv.padding]))
    _, out_h, out_w = conv.output_shape(None)
    per_group, groups = weight.shape[1], conv.groups
    expected = np.zeros((3, weight.shape[0], out_h, out_w), np.int64)
    for co, y, xx in itertools.product(range(weight.shape[0]), range(out_h), range(out_w)):
        first = (co // (weight.shape[0] // groups)) * per_group
        patch = padded[:, first:first + per_group, y * conv.stride[0]:y * conv.stride[0] + weight.shape[2],
                       xx * conv.stride[1]:xx * conv.stride[1] + weight.shape[3]]
        expected[:, co, y, xx] = (patch * weight[co]).sum(axis=(1, 2, 3))
    assert got.dtype == np.int64 and np.array_equal(got, expected)


@pytest.mark.parametrize("channels, kernel, stride, groups", [(64, 3, 1, 1), (36, 5, 2, 1), (48, 3, 1, 4)])
def test_float32_convolution_is_exact_on_wide_layers(channels, kernel, stride, groups):
    """torch's float32 conv2d (the emulator's conv path) equals the int64 sum on PilotNet-wide layers (sums in
    the thousands): it must not use an inexact algorithm (Winograd, FFT)."""
    rng = np.random.default_rng(channels)
    x = (rng.random((4, 48, 13, 17)) < 0.4).astype(np.uint8)
    weight = rng.integers(-256, 255, (channels, 48 // groups, kernel, kernel))
    got = conv2d_float32_sum(x, weight, x.shape[1:], (stride, stride), (1, 1), groups)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1))),
                                                       (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    per_group = channels // groups
    expected = np.concatenate([np.einsum("bchwij,ocij->bohw", windows[:, g * (48 // groups):(g + 1) * (48 // groups)],
                                         weight[g * per_group:(g + 1) * per_group]) for g in range(groups)], axis=1)
    assert got.dtype == np.float32 and np.abs(expected).max() > 2 ** 11
    assert np.array_equal(got.astype(np.int64), expected)


def test_conv_products_refuse_sums_that_could_reach_the_24_bit_wrap():
    """Lava wraps a conv's output to 24 bits: float products are used only while no sum can reach 2^23."""
    weight = np.full((1, 1, 2, 2), 254)
    small, large = np.ones((1, 1, 3, 3), np.int64), np.full((1, 1, 3, 3), 2 ** 14, np.int64)
    assert np.array_equal(lq.conv_products(small, weight, (1, 3, 3), (1, 1), (0, 0), 1), np.full((1, 1, 2, 2), 1016.0))
    assert lq.conv_products(large, weight, (1, 3, 3), (1, 1), (0, 0), 1) is None


def _conv_graph(conv: LoihiConv) -> Graph:
    lif = LoihiLIF("n", (conv.name,), conv.output_shape(None), du=4095, dv=410, vth=100, bias_mant=0,
                   bias_exp=0)
    return verify(Graph((Input(conv.source, conv.in_shape), conv, lif), ("n",), timing="hop_latency",
                        name="conv"))


def test_a_convolution_spike_reaches_only_the_cores_whose_windows_hold_it():
    # 1x1 kernel, 4 cores of 4 neurons = one x column of (1, 4, 4) each: every input pixel goes to the
    # one core holding its column, 16 messages (a dense reader would need 16 x 4 = 64).
    graph = _conv_graph(LoihiConv("c", "x", np.ones((1, 1, 1, 1), np.int64), in_shape=(1, 4, 4)))
    placement = place_graph(graph, dataclasses.replace(LOIHI2, neurons_per_core=4))
    assert len(placement.cores) == 4
    assert placement.messages_per_step() == {"inter_core": 0.0, "intra_core": 0.0, "from_host": 16.0}


@pytest.mark.parametrize("seed", range(4))
def test_convolution_messages_cover_every_reader_core(seed):
    """Messages counted from tile windows are at least the exact count (cores holding a reader of the
    spike, by enumeration) and at most a dense reader's (every core of the group)."""
    rng = np.random.default_rng(seed)
    conv = _random_conv(rng)
    graph = _conv_graph(conv)
    spec = dataclasses.replace(LOIHI2, neurons_per_core=int(rng.integers(2, 6)))
    placement = place_graph(graph, spec)
    core_of = placement.core_of("n")
    readers = [set() for _ in range(int(np.prod(conv.in_shape)))]
    for neuron in range(core_of.size):
        for j in _brute_inputs(conv, np.array([neuron])):
            readers[j].add(int(core_of[neuron]))
    counted = placement.messages_per_step()["from_host"]
    assert sum(map(len, readers)) <= counted <= len(readers) * len(placement.cores)


@pytest.mark.parametrize("batch, workers", [(1, 2), (3, 2), (2, 3)])
def test_per_synapse_delay_kernel_split_over_threads_equals_the_slot_sums(monkeypatch, batch, workers):
    """The event kernel splits large work over threads (by batch rows, or by output neurons for a
    small batch): every split gives the per-slot shifted sums of the numpy definition."""
    rng = np.random.default_rng(batch)
    steps, n_in, n_out, weight_exp = 300, 256, 256, -2
    words = rng.integers(-120, 128, (n_out, n_in)) * 2
    delays = rng.integers(0, 16, (n_out, n_in))
    spikes = (rng.random((batch, steps, n_in)) < 0.2).astype(np.uint8)
    assert spikes.size * n_out >= loihi_kernels._PARALLEL_WORK
    expected = np.zeros((batch, steps, n_out), np.int64)
    for d in range(16):
        slot = lq.dense_activation(spikes[:, :steps - 1 - d], np.where(delays == d, words, 0), weight_exp)
        expected[:, 1 + d:] += slot
    monkeypatch.setattr(parallel, "worker_count", lambda: workers)
    got = loihi_kernels.delayed_dense_events(spikes, words, delays, weight_exp, np.zeros_like(expected))
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("rate", [0.005, 0.05, 0.3, 0.9])
@pytest.mark.parametrize("weight_exp, scale, max_delay, lane_type", [(-3, 1, 40, np.int16), (1, 1, 40, np.int16),
                                                                     (-2, 64, 3, np.int32)])
def test_per_synapse_delay_kernel_dense_and_sparse_tiles_equal_the_slot_sums(rate, weight_exp, scale, max_delay,
                                                                             lane_type):
    """The kernel adds an input by SIMD lanes over a time tile or spike by spike (rare spikes in that
    tile), and carries delayed sums past the tile's end (delays up to 40, three tiles and a partial
    one), in int16 lanes where no slot sum reaches 2^15 (40 inputs of |w| <= 240 over 41 slots) and int32
    where one can (weights x 64 over 4 slots): at every spike rate the per-slot shifted sums of the numpy
    definition."""
    rng = np.random.default_rng(int(rate * 1000) + weight_exp)
    steps, n_in, n_out = 3 * loihi_kernels._TILE + 37, 40, 24
    words = rng.integers(-120, 128, (n_out, n_in)) * 2 * scale
    words[rng.random(words.shape) < 0.1] = 0
    delays = rng.integers(0, max_delay + 1, (n_out, n_in))
    assert loihi_kernels.slot_sum_dtype(words, delays, max_delay + 1) == lane_type
    spikes = (rng.random((2, steps, n_in)) < rate).astype(np.uint8)
    expected = np.zeros((2, steps, n_out), np.int64)
    for d in range(max_delay + 1):
        slot = lq.dense_activation(spikes[:, :steps - 1 - d], np.where(delays == d, words, 0), weight_exp)
        expected[:, 1 + d:] += slot
    got = loihi_kernels.delayed_dense_events(spikes, words, delays, weight_exp, np.zeros_like(expected))
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("weight_exp", [-3, 0, 2])
def test_per_synapse_delays_spike_by_spike_equal_the_step_engine(weight_exp):
    """The layerwise engine's event kernel for per-synapse delays (loihi_kernels.delayed_dense_events:
    one shift per delay slot, arrivals past the run dropped) equals the step engine's slot-by-slot path."""
    rng = np.random.default_rng(weight_exp + 10)
    nodes = [Input("x", (20,)),
             LoihiDense("d1", "x", rng.integers(-120, 128, (16, 20)) * 2, weight_exp=weight_exp,
                        delay_steps=rng.integers(0, 30, (16, 20))),
             LoihiLIF("n1", ("d1",), (16,), du=410, dv=205, vth=300 << max(weight_exp, 0),
                      bias_mant=0, bias_exp=0)]
    graph = verify(Graph(tuple(nodes), ("n1",), timing="hop_latency", name="delays"))
    x = (rng.random((3, 25, 20)) < 0.4).astype(np.uint8)
    step, fast = run_loihi(graph, x, engine="step"), run_loihi(graph, x, engine="layerwise")
    assert first_divergence(step, fast) is None
    assert 0 < int(step.spikes["n1"].sum()) < step.spikes["n1"].size
