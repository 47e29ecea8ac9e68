"""A convolution whose kernel window alone exceeds a core's input axons is split by input-channel partial sums
(snnc.compiler.passes.partition_fanin): on loihi2's own limits (16,384 axons) a Conv2d with 2048 input
channels x 3 x 3 = 18,432 taps compiles, fits, and its emulator run equals the unpartitioned one spike for
spike, u and v included; what the split cannot make exact is refused by name.

(Before: ``node 'lif_1' field 'fan-in': needs fan-in partitioning: limit 16384 input axons per core, got
18432`` from check_design_rules, since only dense synapses were split.)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

import lowered_networks as ln
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import partition_fanin
from snnc.compiler.pipeline import compile_graph
from snnc.errors import UnsupportedError
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.nodes import Input, LoihiConv, LoihiGradedRelay, LoihiGradedSum
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import LOIHI2
from snnc.targets.spec import synapse_fan_in

WIDE_INPUT = (2048, 4, 4)
UNLIMITED_AXONS = dataclasses.replace(LOIHI2, input_axons_per_core=1 << 30, synapses_per_core=1 << 30)


def wide_conv_graph():
    """2048 channels -> conv 4@3x3 (window 18,432 > 16,384) -> LIF (4, 2, 2) -> dense 3 -> LIF."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2048, 4, 3, bias=False), snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True),
                          nn.Flatten(), nn.Linear(16, 3, bias=False),
                          snn.Leaky(beta=0.9, threshold=1.0, init_hidden=True))
    with torch.no_grad():
        model[0].weight.copy_((torch.rand_like(model[0].weight) * 2 - 0.9) * 20 / 18432)
        model[3].weight.copy_(torch.rand_like(model[3].weight) * 0.8)
    return from_torch(model, WIDE_INPUT, name="wide_conv")


def test_a_kernel_window_wider_than_a_loihi2_core_is_split_by_input_channels():
    graph = wide_conv_graph()
    plain = compile_graph(graph, "loihi2", spec=UNLIMITED_AXONS).graph
    split = compile_graph(graph, "loihi2").graph
    conv = next(n.name for n in plain.nodes if isinstance(n, LoihiConv))
    assert synapse_fan_in(plain, plain.node(conv)) == 18432
    total = split.node(conv)
    assert isinstance(total, LoihiGradedSum) and total.weight_exp == 0
    parts = [split.node(split.node(r).inputs[0]) for r in total.sources]
    # ceil(2048 channels / floor(16384 / 9 taps) = 1820) = 2 blocks of 1024 channels
    assert [synapse_fan_in(split, p) for p in parts] == [9216, 9216]
    assert all(isinstance(p, LoihiConv) and p.in_shape == WIDE_INPUT for p in parts)
    assert sum(np.asarray(p.weight_mant) for p in parts).tolist() == np.asarray(plain.node(conv).weight_mant).tolist()
    assert LOIHI2.fits(split) == []
    x = (np.random.default_rng(0).random((2, 12, *WIDE_INPUT)) < 0.3).astype(np.uint8)
    expected = run_on_ir_grid(plain, x, record_state=True)
    actual = run_on_ir_grid(split, x, record_state=True)
    assert first_divergence(expected, actual, names=list(expected.spikes)) is None
    group = split.consumers(conv)[0].name
    assert expected.spikes[group].sum() > 0 and split.latency[group] == plain.latency[group] + 1


def one_conv(weight: np.ndarray, in_shape: tuple[int, int, int]):
    rng = np.random.default_rng(0)
    out_shape = (weight.shape[0], in_shape[1] - weight.shape[2] + 1, in_shape[2] - weight.shape[3] + 1)
    nodes = [Input("x", in_shape), LoihiConv("c", "x", weight, in_shape=in_shape),
             ln.lif("n", ["c"], out_shape, rng, vth=50)]
    return ln.hop_graph(nodes, ["n"])


def test_one_channel_window_wider_than_a_core_is_refused():
    graph = one_conv(np.ones((2, 3, 5, 5), np.int64), (3, 6, 6))
    with pytest.raises(UnsupportedError) as err:
        partition_fanin.run(graph, PassOptions(dataclasses.replace(LOIHI2, input_axons_per_core=20)))
    assert str(err.value) == ("node 'c' field 'fan-in': limit 20 input axons per neuron per core (input-channel "
                              "partial sums cannot split one channel's kernel window), got 25 taps of one input "
                              "channel")


def test_a_convolution_whose_own_24_bit_wrap_could_act_is_refused():
    """4000 channels x 3 x 3 taps of weight 255 can reach 9,180,000 > 2^23 - 1: Lava's Conv would wrap the
    total, the partial sums would not, so the split would not be exact."""
    graph = one_conv(np.full((1, 4000, 3, 3), 255, np.int64), (4000, 3, 3))
    with pytest.raises(UnsupportedError) as err:
        partition_fanin.run(graph, PassOptions(LOIHI2))
    assert str(err.value) == ("node 'c' field 'weight_mant': limit worst-case activation <= 8388607 (Lava Conv "
                              "wraps at 24 bits; input-channel partial sums would not wrap alike), got 9180000")


def test_grouped_convolution_splits_within_each_channel_group():
    """groups=2, 4 channels per group, 2x2 taps, 8 axons: blocks of 2 channel indices of each group."""
    rng = np.random.default_rng(1)
    weight = rng.integers(-60, 90, (4, 4, 2, 2))
    nodes = [Input("x", (8, 5, 5)), LoihiConv("c", "x", weight, in_shape=(8, 5, 5), groups=2),
             ln.lif("n", ["c"], (4, 4, 4), rng, vth=60)]
    graph = ln.hop_graph(nodes, ["n"])
    split = partition_fanin.run(graph, PassOptions(dataclasses.replace(LOIHI2, input_axons_per_core=8))).graph
    relays = [n for n in split.nodes if isinstance(n, LoihiGradedRelay)]
    assert [synapse_fan_in(split, split.node(r.inputs[0])) for r in relays] == [8, 8]
    x = (np.random.default_rng(2).random((2, 20, 8, 5, 5)) < 0.4).astype(np.uint8)
    expected = run_on_ir_grid(graph, x, record_state=True)
    assert expected.spikes["n"].sum() > 0
    assert first_divergence(expected, run_on_ir_grid(split, x, record_state=True), names=["x", "n"]) is None
