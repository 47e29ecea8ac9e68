"""lava-dl slayer sigma-delta and Affine blocks in the torch frontend: a chain of
``slayer.block.sigma_delta`` blocks (PilotNet SDNN's Input, Conv, Flatten, Dense, Output) or CUBA blocks
ending in ``cuba.Affine`` compiles to exactly what netx builds from the blocks' own ``export_hdf5``;
``snnc.verify(..., model=net)`` compares slayer's forward with the emulator layer by layer (graded
messages, sigma, Affine voltage); typed refusals for what netx would deploy differently."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import snnc
from snnc.compiler.slayer_agreement import layer_agreement
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import load_net
from snnc.frontends.torch_trace import trace_module
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi
from slayer_chain import Chain

SDNN = {"threshold": 0.1, "activation": torch.nn.functional.relu}
CUBA = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03}
IN_SHAPE = (2, 7, 7)
POOL_SHAPE = (2, 7, 7)    # 7 % 3: slayer pads one zero row and column, into no new output (netx: its padding)
POOL_KERNEL = [[0.25, 0.5, 0.0], [1.0, 0.75, 0.5], [0.0, 0.25, 1.5]]


def pilotnet_like(slayer, seed: int = 0) -> Chain:
    torch.manual_seed(seed)
    b = slayer.block.sigma_delta
    return Chain([b.Input(SDNN), b.Conv(SDNN, 2, 4, 3, stride=2, weight_scale=2),
                  b.Conv(SDNN, 4, 3, 3, padding=1, weight_scale=2), b.Flatten(),
                  b.Dense(SDNN, 27, 6, weight_scale=2), b.Output(SDNN, 6, 3, weight_scale=2)], IN_SHAPE)


def affine_net(slayer, dynamics: bool = True) -> Chain:
    torch.manual_seed(0)
    return Chain([slayer.block.cuba.Dense(CUBA, 12, 10, weight_scale=2),
                  slayer.block.cuba.Affine(CUBA, 10, 4, weight_scale=2, dynamics=dynamics)], (12,))


def pooled_net(slayer) -> Chain:
    """Input -> Pool (3x3 kernel, stride 2, padding 1; a kernel without symmetry, so a flipped or transposed
    one shows) -> Conv -> Flatten -> Dense -> Output."""
    torch.manual_seed(2)
    b = slayer.block.sigma_delta
    net = Chain([b.Input(SDNN), b.Pool(SDNN, 3, stride=2, padding=1), b.Conv(SDNN, 2, 3, 3, padding=1,
                                                                              weight_scale=2),
                 b.Flatten(), b.Dense(SDNN, 48, 4, weight_scale=2), b.Output(SDNN, 4, 3, weight_scale=2)], POOL_SHAPE)
    with torch.no_grad():     # a trained pooling kernel
        net.blocks[1].synapse.weight.copy_(torch.tensor(POOL_KERNEL).reshape(1, 1, 3, 3, 1))
    return net


def images(seed: int, batch: int = 2, steps: int = 16, shape=IN_SHAPE) -> np.ndarray:
    """Graded integer inputs on slayer's Input grid (even values in [-256, 254]: its 8-bit quantization)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-60, 61, (batch, steps, *shape)) * 2).cumsum(axis=1).clip(-256, 254)


def example(shape=IN_SHAPE, steps: int = 16) -> torch.Tensor:
    return torch.zeros(1, *shape, steps)


def test_sigma_delta_chain_compiles_to_the_graph_netx_builds(slayer, tmp_path):
    net = pilotnet_like(slayer)
    net.export_hdf5(tmp_path / "net.net")
    traced = trace_module(net, example())
    assert format_graph(traced).splitlines()[1:] == format_graph(load_net(tmp_path / "net.net")).splitlines()[1:]
    assert [n.name for n in traced.nodes if n.ROLE == "neuron"] == ["delta_0", "sigma_delta_1", "sigma_delta_2",
                                                                    "sigma_delta_4", "sigma_5"]


def test_slayer_sigma_delta_forward_equals_emulator_layer_by_layer(slayer, tmp_path):
    net = pilotnet_like(slayer)
    result = snnc.compile(net, example_input=example(), target="loihi2", out=tmp_path / "out")
    check = snnc.verify(result, images(1), with_reference=False, model=net)
    assert check.ok, check.text
    lines = check.text.splitlines()
    at = lines.index("slayer forward vs emulator, layer by layer (spikes, graded values and states at every step; "
                     "graded values and states in Loihi's integer units):")
    assert lines[at + 1:] == [
        "  blocks.0 (delta_0, decoded (summed messages), emulator 0 steps later as Loihi's layers): equal (3113 of "
        "3136 non-zero)",
        "  blocks.1 (sigma_delta_1, decoded (summed messages), emulator 1 step later as Loihi's layers): equal (563 "
        "of 1080 non-zero)",
        "  blocks.2 (sigma_delta_2, decoded (summed messages), emulator 2 steps later as Loihi's layers): equal (414 "
        "of 756 non-zero)",
        "  blocks.4 (sigma_delta_4, decoded (summed messages), emulator 3 steps later as Loihi's layers): equal (125 "
        "of 156 non-zero)",
        "  blocks.5 (sigma_5, sigma, emulator 4 steps later as Loihi's layers): equal (72 of 72 non-zero)"]


def test_inputs_off_slayers_grid_are_reported_at_the_input_block(slayer):
    """Odd integers are between slayer's 8-bit input steps: its Input block rounds them, netx does not;
    the report names blocks.0 first."""
    net = pilotnet_like(slayer)
    ok, lines = layer_agreement(net, trace_module(net, example()), images(1) + 1)
    assert not ok
    assert lines[1] == ("  blocks.0 (delta_0, decoded (summed messages), emulator 0 steps later as Loihi's layers): "
                        "3119 of 3136 differ (0.5% agree), first at slayer step 0; largest difference 320")


def test_a_mean_only_batch_norm_bias_shows_netx_layers_starting_before_their_input(slayer):
    """PilotNet SDNN's conv blocks use MeanOnlyBatchNorm, exported as a per-channel bias. A Loihi layer
    is ``latency`` steps behind slayer's, and in those steps it already sends relu(bias); the delta
    residue it keeps from them makes a few decoded values differ from slayer's forward. The report shows
    it at the first block with a bias (here: 2 values of 1080, each by the channel's bias, 10 * 64)."""
    torch.manual_seed(0)
    b = slayer.block.sigma_delta
    normed = {**SDNN, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    net = Chain([b.Input(SDNN), b.Conv(normed, 2, 4, 3, stride=2, weight_scale=2), b.Flatten(),
                 b.Dense(normed, 36, 5, weight_scale=2), b.Output(SDNN, 5, 3)], IN_SHAPE)
    net.train()
    with torch.no_grad():              # training sets the running means the export turns into biases
        for _ in range(5):
            net(torch.as_tensor(np.moveaxis(images(0, 4), 1, -1) / 64, dtype=torch.float32))
    graph = trace_module(net, example())
    assert np.asarray(graph.node("sigma_delta_1").bias).reshape(4, -1)[:, 0].tolist() == [-8, 10, -8, -16]
    ok, lines = layer_agreement(net, graph, images(1))
    assert not ok
    assert lines[1].endswith("equal (3113 of 3136 non-zero)")
    assert lines[2] == ("  blocks.1 (sigma_delta_1, decoded (summed messages), emulator 1 step later as Loihi's "
                        "layers): 2 of 1080 differ (99.8% agree), first at slayer step 0; largest difference 640")


def test_affine_block_is_a_never_spiking_cuba_layer_whose_voltage_matches_slayer(slayer, tmp_path):
    """netx loads cuba.Affine's export (vThMant 2^18 - 1: v, a 24-bit register, never reaches it) as a
    LIF that never spikes; slayer's Affine output is that voltage, in the step of its input. Loihi 2's
    17-bit threshold cannot hold it: the loihi2 target refuses it (Lava's simulation does not check)."""
    net = affine_net(slayer)
    x = (np.random.default_rng(2).random((3, 20, 12)) < 0.4).astype(np.uint8)
    result = snnc.compile(net, example_input=torch.zeros(1, 12, 20), target="emulator", out=tmp_path / "out")
    assert result.source.node("lif_2").vth == (1 << 18) - 1
    with pytest.raises(SnncError, match="node 'lif_2' field 'vth': limit < 2\\^17 \\(slayer's Affine export sets "
                                        "vThMant 2\\^18 - 1 so that v never reaches it: it runs in Lava's "
                                        "simulation and snnc's emulator target only\\), got 262143"):
        snnc.compile(net, example_input=torch.zeros(1, 12, 20), target="loihi2", out=tmp_path / "l2")
    check = snnc.verify(result, x, with_reference=False, model=net)
    assert check.ok, check.text
    lines = check.text.splitlines()
    assert lines[-2].startswith("  blocks.0 (lif_1): equal (")
    assert lines[-1].startswith("  blocks.1 (lif_2, v, emulator 1 step later as Loihi's layers): equal (")
    traces = run_loihi(result.source, x)
    assert traces.spikes["lif_2"].sum() == 0 and np.abs(traces.states["lif_2"]["v"]).max() > 1000


def test_affine_from_a_net_file_loads_as_netx_builds_it(slayer, tmp_path):
    net = affine_net(slayer)
    net.export_hdf5(tmp_path / "affine.net", input_shape=(12,))
    from_file, traced = load_net(tmp_path / "affine.net"), trace_module(net, torch.zeros(1, 12, 20))
    assert format_graph(from_file).splitlines()[1:] == format_graph(traced).splitlines()[1:]


NOT_SDNN_KIND = "limit a sigma_delta block of kind Input, Dense, Conv, Pool, Flatten, Output, got slayer.block.sigma_delta."


@pytest.mark.parametrize("case, expected", [
    ("no dynamics", "node 'blocks.1' field 'dynamics': slayer's Affine(dynamics=False) outputs each step's weighted "
                    "input; its export has no neuron and netx then builds a non-leaky integrator that sums them "
                    "over time: limit True (a CUBA neuron whose voltage is the output), got False"),
    ("affine not last", "node 'blocks.1' field 'position': limit the last block (its output is a neuron state, "
                        "not messages netx could send on), got followed by blocks.2"),
    ("no input block", "node 'blocks.0' field 'type': limit a sigma_delta.Input block first (netx's Delta encoder "
                       "of the graded input), got slayer.block.sigma_delta.Dense"),
    ("input not first", "node 'blocks.1' field 'position': limit the first block (netx's input layer), got block 2"),
    ("other family", "node 'blocks.0' field 'type': limit a slayer CUBA, sigma-delta, ALIF or resonate-and-fire "
                     "block (slayer.block.cuba.*, slayer.block.sigma_delta.*, slayer.block.alif.*, "
                     "slayer.block.rf.Dense, slayer.block.rf_iz.Dense); for other neuron blocks save the net with "
                     "export_hdf5 and compile the .net file, got slayer.block.adrf.Dense"),
    ("average", "node 'blocks.2' field 'type': netx 0.6 raises NotImplementedError('average is not implemented.'); "
                "slayer's Average block cannot export it either (its export_hdf5 reads a 'neuron' it does not have); "
                "average the last block's output outside the network: " + NOT_SDNN_KIND + "Average"),
    ("conv transpose", "node 'blocks.1' field 'type': netx 0.6 raises NotImplementedError('convT is not "
                       "implemented.'): " + NOT_SDNN_KIND + "ConvT"),
    ("unpool", "node 'blocks.1' field 'type': netx 0.6 raises NotImplementedError('unpool is not implemented.'): "
               + NOT_SDNN_KIND + "Unpool"),
    ("pool padding", "node 'blocks.1' field 'input shape': slayer's Pool appends H % kh zero rows and W % kw zero "
                     "columns at the bottom and right of its input, so it pools to more outputs than netx's conv "
                     "layer (same padding on both sides); pad or crop the block's input to a multiple of the kernel: "
                     "limit a height and width the pooling kernel (3, 3) divides (or a stride and padding for which "
                     "slayer's padding adds no output), got (8, 8): slayer pools to (5, 5), netx's conv layer to "
                     "(4, 4)"),
])
def test_what_netx_would_deploy_differently_is_refused_by_block(slayer, case, expected):
    b, cuba = slayer.block.sigma_delta, slayer.block.cuba
    torch.manual_seed(0)
    blocks, shape = {
        "no dynamics": ([cuba.Dense(CUBA, 12, 10), cuba.Affine(CUBA, 10, 4, dynamics=False)], (12,)),
        "affine not last": ([cuba.Dense(CUBA, 12, 10), cuba.Affine(CUBA, 10, 4), cuba.Dense(CUBA, 4, 3)], (12,)),
        "no input block": ([b.Dense(SDNN, 12, 4)], (12,)),
        "input not first": ([b.Input(SDNN), b.Input(SDNN)], (12,)),
        "average": ([b.Input(SDNN), b.Dense(SDNN, 12, 4), b.Average(2)], (12,)),
        "conv transpose": ([b.Input(SDNN), b.ConvT(SDNN, 2, 2, 3)], (2, 4, 4)),
        "unpool": ([b.Input(SDNN), b.Unpool(SDNN, 2)], (2, 4, 4)),
        "pool padding": ([b.Input(SDNN), b.Pool(SDNN, 3, stride=2, padding=1)], (2, 8, 8)),
        "other family": ([slayer.block.adrf.Dense({"threshold": 1.0, "threshold_step": 0.1, "period": 10, "decay": 0.1,
                                                   "threshold_decay": 0.1, "refractory_decay": 0.1}, 12, 4)], (12,)),
    }[case]
    net = Chain(blocks, shape)
    with pytest.raises(UnsupportedError) as info:
        trace_module(net, example(shape))
    assert str(info.value) == expected


@pytest.mark.lava
@pytest.mark.slow
def test_compiled_sigma_delta_module_equals_lava_and_slayer(slayer, tmp_path):
    net = pilotnet_like(slayer, seed=3)
    result = snnc.compile(net, example_input=example(), target="loihi2", out=tmp_path / "out")
    check = snnc.verify(result, images(4, batch=1, steps=20), model=net)
    assert check.ok, check.text
    assert "emulator vs Lava fixed_pt: identical spikes, act, residue and sigma at every step" in check.text


@pytest.mark.lava
def test_affine_net_equals_netx_on_lava(slayer, tmp_path):
    """The traced Dense -> Affine net in the emulator == netx running its export_hdf5 on Lava fixed_pt:
    spikes, u and v of both layers at every step (the Affine layer: no spike, v the output)."""
    from snnc.backends.lava_loihi2.netx import run_netx
    net = affine_net(slayer)
    net.export_hdf5(tmp_path / "affine.net", input_shape=(12,))
    x = (np.random.default_rng(4).random((1, 20, 12)) < 0.4).astype(np.uint8)
    graph = trace_module(net, torch.zeros(1, 12, 20))
    emulated, lava = run_loihi(graph, x), run_netx(tmp_path / "affine.net", x[0])
    assert len(lava) == 2 and emulated.spikes["lif_1"].sum() > 0 and emulated.spikes["lif_2"].sum() == 0
    for name, recorded in zip(("lif_1", "lif_2"), lava):
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(20, -1), mine[0].reshape(20, -1)), (name, var)


def test_sigma_delta_pool_block_is_a_depthwise_conv_into_sigma_delta_neurons(slayer, tmp_path):
    """slayer's Pool is a sum pool with one trained kernel for every channel: a depthwise LoihiConv whose
    kernel is slayer's 8-bit export of it (64 per unit), then ReLU sigma-delta neurons."""
    net = pooled_net(slayer)
    net.export_hdf5(tmp_path / "pool.net")
    traced = trace_module(net, example(POOL_SHAPE))
    assert format_graph(traced).splitlines()[1:] == format_graph(load_net(tmp_path / "pool.net")).splitlines()[1:]
    pool = traced.node("pool_1")
    assert (pool.source, pool.groups, pool.stride, pool.padding) == ("delta_0", 2, (2, 2), (1, 1))
    assert np.array_equal(pool.weight_mant, np.repeat(np.array(POOL_KERNEL).reshape(1, 1, 3, 3) * 64, 2, axis=0))
    assert traced.node("sigma_delta_1").shape == (2, 4, 4)
    assert traced.node("sigma_delta_1").inputs == ("pool_1",)


def test_slayer_sigma_delta_pool_forward_equals_emulator_layer_by_layer(slayer):
    net = pooled_net(slayer)
    ok, lines = layer_agreement(net, trace_module(net, example(POOL_SHAPE)), images(3, shape=POOL_SHAPE))
    assert ok, lines
    assert [line.split(", emulator")[0] for line in lines[1:]] == [
        "  blocks.0 (delta_0, decoded (summed messages)", "  blocks.1 (sigma_delta_1, decoded (summed messages)",
        "  blocks.2 (sigma_delta_2, decoded (summed messages)", "  blocks.4 (sigma_delta_4, decoded (summed messages)",
        "  blocks.5 (sigma_5, sigma"]
    assert all("): equal (" in line and " equal (0 of" not in line for line in lines[1:])


@pytest.mark.lava
@pytest.mark.slow
def test_sigma_delta_pool_net_equals_netx_on_lava_fixed_pt(slayer, tmp_path):
    """netx 0.6 raises on the Pool block's 'pool' layer; the same synapse as the depthwise 'conv' layer netx
    loads runs there exactly as the traced graph in the emulator and in snnc's Lava backend: graded
    messages and sigma/act/residue of every layer at every step."""
    from test_lava_dl_net import netx_refuses_pool, pool_as_depthwise_conv
    from test_lava_dl_sdnn import assert_equal_to_netx
    from snnc.backends.lava_loihi2.netx import run_netx
    from test_lava_dl_sdnn_conv import graded_images
    from snnc.backends.lava_loihi2.run import run_lava
    net = pooled_net(slayer)
    graph = trace_module(net, example(POOL_SHAPE))
    net.export_hdf5(tmp_path / "pool.net")
    assert netx_refuses_pool(tmp_path / "pool.net") == "pool is not implemented."
    pool_as_depthwise_conv(tmp_path / "pool.net", 1, channels=POOL_SHAPE[0])
    x = graded_images(np.random.default_rng(5), 1, 12, POOL_SHAPE)
    expected = run_netx(tmp_path / "pool.net", x[0])
    emulated = run_loihi(graph, x)
    assert all(np.count_nonzero(emulated.spikes[n]) for n in ("sigma_delta_1", "sigma_delta_2", "sigma_5"))
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
