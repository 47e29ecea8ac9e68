"""slayer's ``cuba.Input`` block (an input layer with a CUBA neuron, as in lava-dl's PilotNet-LIF tutorial):
traced as netx's bias-driven input layer. slayer adds q8(x) to the neuron's current, netx sets the values as
the neuron's bias_mant (added to v); with current_decay=1.0 the current is each step's input and the two
agree exactly for bias values that are even integers in [-256, 254] (slayer's x = bias / 64; a spike is 64).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.compiler.slayer_agreement import layer_agreement
from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_net import load_net
from snnc.frontends.torch_trace import trace_module
from snnc.ir.nodes import BiasInput, LoihiLIF
from snnc.simulators.loihi_emulator import run_loihi
from slayer_chain import Chain

STEPS = 20
NEURON = {"threshold": 1.25, "current_decay": 1.0, "voltage_decay": 0.03}
LATE = "slayer 1 step later: the Input block's delay_shift, netx's input neuron spikes in the step its bias is set"


def dense_chain(slayer, neuron=NEURON, delay_shift=True, **transform) -> Chain:
    torch.manual_seed(0)
    net = Chain([slayer.block.cuba.Input(neuron, delay_shift=delay_shift, **transform),
                 slayer.block.cuba.Dense(neuron, 12, 9, weight_scale=2),
                 slayer.block.cuba.Dense(neuron, 9, 4, weight_scale=3)]).eval()
    net(torch.zeros(1, 12, STEPS))
    return net


def spike_bias(shape, seed: int) -> np.ndarray:
    """Binary spikes through the Input block: bias 64 (slayer's 1.0) where a spike is."""
    return (np.random.default_rng(seed).random(shape) < 0.4).astype(np.int64) * 64


def graded_bias(shape, seed: int) -> np.ndarray:
    """Per-step graded values: even integers in [-256, 254], slayer's 8-bit input grid times 64."""
    return np.random.default_rng(seed).integers(-128, 128, shape) * 2


def pixel_bias(shape, seed: int) -> np.ndarray:
    """One image held at every step (how netx's tutorials set the input neuron's bias_mant)."""
    image = np.random.default_rng(seed).integers(0, 128, (shape[0], 1, *shape[2:])) * 2
    return np.broadcast_to(image, shape).copy()


@pytest.fixture(scope="module")
def dense_net(slayer):
    return dense_chain(slayer)


def test_cuba_input_is_netx_bias_driven_input_layer(dense_net, tmp_path):
    graph = trace_module(dense_net, torch.zeros(1, 12, STEPS))
    assert [(n.name, type(n).__name__) for n in graph.nodes] == [
        ("input", "BiasInput"), ("lif_0", "LoihiLIF"), ("dense_1", "LoihiDense"), ("lif_1", "LoihiLIF"),
        ("dense_2", "LoihiDense"), ("lif_2", "LoihiLIF")]
    assert graph.node("lif_0").bias_input == "input" and graph.latency["lif_0"] == 0
    dense_net.export_hdf5(tmp_path / "net.net")
    exported = load_net(tmp_path / "net.net", isolation=None)
    for mine, theirs in zip(graph.nodes, exported.nodes):
        assert type(mine) is type(theirs)
        if isinstance(mine, LoihiLIF):
            for field in ("du", "dv", "vth", "bias_mant", "bias_exp", "bias_input"):
                assert np.array_equal(getattr(mine, field), getattr(theirs, field)), (mine.name, field)
    assert graph.node("lif_0").du == 4095      # netx: du = iDecay - 1


@pytest.mark.parametrize("make", [spike_bias, graded_bias, pixel_bias])
def test_slayer_forward_equals_emulator_one_step_later(dense_net, make):
    """slayer's Input block delays its neuron's spikes one step (delay_shift) where netx's bias-driven
    input neuron has no hop: every layer of slayer is the emulator's one step later, spike for spike."""
    graph = trace_module(dense_net, torch.zeros(1, 12, STEPS))
    x = make((3, STEPS, 12), 4)
    ok, lines = layer_agreement(dense_net, graph, x)
    assert ok, lines
    assert lines[1:] == [f"  blocks.{i} (lif_{i}, {LATE}): equal ({n} spikes)"
                         for i, n in enumerate(run_loihi(graph, x).spikes[f"lif_{i}"][:, :-1].sum()
                                               for i in range(3))]
    emulated = run_loihi(graph, x)
    assert all(emulated.spikes[f"lif_{i}"].sum() > 0 for i in (0, 1))      # not vacuous


def test_input_block_without_delay_shift_agrees_in_the_same_step(slayer):
    net = dense_chain(slayer, delay_shift=False)
    graph = trace_module(net, torch.zeros(1, 12, STEPS))
    ok, lines = layer_agreement(net, graph, graded_bias((2, STEPS, 12), 6))
    assert ok, lines
    assert [line.split(":")[0] for line in lines[1:]] == [f"  blocks.{i} (lif_{i})" for i in range(3)]


def test_input_block_without_neuron_is_the_plain_input_layer(slayer):
    """No neuron (slayer's own forward needs delay_shift=False then: its step_delay reads the neuron)."""
    torch.manual_seed(0)
    net = Chain([slayer.block.cuba.Input(delay_shift=False),
                 slayer.block.cuba.Dense(NEURON, 12, 9, weight_scale=3)]).eval()
    graph = trace_module(net, torch.zeros(1, 12, STEPS))
    assert [(n.name, type(n).__name__) for n in graph.nodes] == [
        ("input", "Input"), ("dense_1", "LoihiDense"), ("lif_1", "LoihiLIF")]
    x = (np.random.default_rng(2).random((2, STEPS, 12)) < 0.4).astype(np.uint8)
    ok, lines = layer_agreement(net, graph, x)
    assert ok, lines
    assert lines[1].startswith("  blocks.1 (lif_1): equal (") and not lines[1].endswith("(0 spikes)")


def test_input_slayer_quantizes_differently_is_reported(dense_net):
    """slayer quantizes its input like an 8-bit weight (steps of 2/64): odd bias values are rounded by
    slayer only, and the report says so at the Input block."""
    graph = trace_module(dense_net, torch.zeros(1, 12, STEPS))
    ok, lines = layer_agreement(dense_net, graph, np.full((1, STEPS, 12), 81))
    assert not ok
    assert lines[1].startswith(f"  blocks.0 (lif_0, {LATE}): ") and "spike values differ" in lines[1]


def test_conv_chain_and_affine_state_agree(slayer):
    """A (C, H, W) Input block -> Conv -> Flatten -> Affine: spikes one step later, the Affine voltage."""
    torch.manual_seed(3)
    net = Chain([slayer.block.cuba.Input(NEURON), slayer.block.cuba.Conv(NEURON, 2, 3, 3, padding=1, weight_scale=2),
                 slayer.block.cuba.Flatten(), slayer.block.cuba.Affine(NEURON, 3 * 5 * 4, 3, weight_scale=2)]).eval()
    graph = trace_module(net, torch.zeros(1, 2, 5, 4, STEPS))
    assert isinstance(graph.node("input"), BiasInput) and graph.node("input").shape == (2, 5, 4)
    ok, lines = layer_agreement(net, graph, graded_bias((2, STEPS, 2, 5, 4), 8))
    assert ok, lines
    assert lines[2].startswith(f"  blocks.1 (lif_1, {LATE}): equal (") and not lines[2].endswith("(0 spikes)")
    # Affine has no delay_shift: its v answers in the step of its input, which the Input's shift makes the
    # step the emulator's Affine integrates it (one hop after the conv layer)
    assert lines[3].startswith("  blocks.3 (lif_3, v, emulator 0 steps later as Loihi's layers): equal (")


def test_current_that_keeps_earlier_input_is_refused(slayer):
    net = Chain([slayer.block.cuba.Input(dict(NEURON, current_decay=0.25)), slayer.block.cuba.Dense(NEURON, 4, 3)])
    with pytest.raises(UnsupportedError) as info:
        trace_module(net, torch.zeros(1, 4, 5))
    assert str(info.value) == (
        "node 'blocks.0' field 'neuron current_decay': slayer's cuba.Input adds each step's input to its neuron's "
        "current, which carries a decayed part of earlier steps' input into v; netx's input layer sets the values "
        "as the neuron's bias, added to v alone (its current stays 0), so only current_decay=1.0 (the current is "
        "the step's input) deploys as trained; build cuba.Input with current_decay=1.0 and retrain, or start the "
        "chain with the first cuba.Dense/Conv block (it reads the spikes): limit 1.0 (iDecay 4096), got iDecay 1024")


@pytest.mark.parametrize("transform, got", [({"weight": 2.0}, "128 and None"), ({"bias": 0.5}, "None and 32"),
                                            ({"weight": 1.0, "bias": 0.25}, "64 and 16")])
def test_input_transform_is_refused(slayer, transform, got):
    net = Chain([slayer.block.cuba.Input(NEURON, **transform), slayer.block.cuba.Dense(NEURON, 4, 3)])
    with pytest.raises(UnsupportedError) as info:
        trace_module(net, torch.zeros(1, 4, 5))
    assert str(info.value) == (
        "node 'blocks.0' field 'weight/bias': slayer's cuba.Input computes q8(x) * q8(weight) + q8(bias); its "
        "export writes weight and bias as the input layer's transform, which netx does not apply (the values set "
        "as bias_mant are the input as given) and whose result is no integer bias in general; build cuba.Input "
        "without weight and bias (or fold them into the input, as even integers in [-256, 254] per step): limit "
        f"None (or weight 1, bias 0: 64 and 0 as exported), got {got} as exported")


def test_identity_transform_is_the_plain_input(slayer):
    """PilotNet-LIF's Input(weight=1, bias=0) before training: the identity, accepted and kept."""
    net = dense_chain(slayer, weight=1.0, bias=0.0)
    graph = trace_module(net, torch.zeros(1, 12, STEPS))
    node = graph.node("input")
    assert (node.transform_weight, node.transform_bias) == (64, 0)
    ok, lines = layer_agreement(net, graph, spike_bias((2, STEPS, 12), 9))
    assert ok, lines


@pytest.mark.lava
def test_netx_on_lava_equals_emulator_and_lava_backend(dense_net, tmp_path):
    """netx running the net's own export_hdf5 on Lava fixed_pt, its input neuron's bias_mant set to an
    image (as netx users feed it) == the traced graph in the emulator == snnc's Lava backend: spikes, u, v
    of every layer at every step."""
    from test_lava_dl_net import assert_matches_netx, assert_same_traces, run_netx
    from snnc.backends.lava_loihi2.run import run_lava
    graph = trace_module(dense_net, torch.zeros(1, 12, STEPS))
    dense_net.export_hdf5(tmp_path / "net.net")
    x = pixel_bias((1, STEPS, 12), 2)
    emulated = run_loihi(graph, x)
    assert all(emulated.spikes[f"lif_{i}"].sum() > 0 for i in range(3))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(tmp_path / "net.net", None, bias=x[0, 0], steps=STEPS), STEPS)
    ok, lines = layer_agreement(dense_net, graph, x)
    assert ok, lines


def run_netx_bias_per_step(path, bias: np.ndarray) -> list[dict]:
    """netx on Lava fixed_pt with its input neuron's bias_mant set before every step (``bias``: (steps,
    neurons), a 1-D input layer), one ``run`` per step; per layer (steps, neurons) s_out, u and v."""
    from snnc.backends.lava_loihi2.compat import import_lava
    import_lava(dl=True)
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.monitor.process import Monitor
    steps = bias.shape[0]
    net = netx.hdf5.Network(net_config=str(path))
    monitors = []
    for layer in net.layers:
        monitors.append({var: Monitor() for var in ("s_out", "u", "v")})
        for var, monitor in monitors[-1].items():
            monitor.probe(getattr(layer.neuron, var), steps)
    try:
        for step in range(steps):
            if step:      # compiled: Var.set between runs, as a netx user's loop does
                net.in_layer.neuron.bias_mant.set(bias[step].astype(np.int32))
            else:
                net.in_layer.neuron.bias_mant.init = bias[step].astype(np.int32)
            net.run(condition=RunSteps(num_steps=1), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        return [{var: np.asarray(next(iter(m.get_data().values()))[var]).reshape(steps, -1).astype(np.int64)
                 for var, m in per_layer.items()} for per_layer in monitors]
    finally:
        net.stop()


@pytest.mark.lava
def test_spikes_set_as_bias_each_step_on_netx_equal_emulator(dense_net, tmp_path):
    """Binary spikes through the Input block, as netx takes them: bias_mant 64 * spike set before each step
    (snnc's Lava backend sets the bias once and refuses this; netx on Lava == the emulator == slayer)."""
    from test_lava_dl_net import assert_matches_netx
    graph = trace_module(dense_net, torch.zeros(1, 12, STEPS))
    dense_net.export_hdf5(tmp_path / "net.net")
    x = spike_bias((1, STEPS, 12), 11)
    emulated = run_loihi(graph, x)
    assert all(emulated.spikes[f"lif_{i}"].sum() > 0 for i in range(2))
    assert_matches_netx(graph, emulated, run_netx_bias_per_step(tmp_path / "net.net", x[0]), STEPS)
    ok, lines = layer_agreement(dense_net, graph, x)
    assert ok, lines
