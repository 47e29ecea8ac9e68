"""lava-dl slayer ALIF blocks (``slayer.block.alif.Dense/Conv/Flatten``) in the torch frontend and in
``.net`` files: ``LoihiAdaptiveLIF`` groups (Lava ``ATRLIF``), equal to slayer's own forward spike for
spike, to Lava's ATRLIF in u and v, and exported back exactly. netx 0.6 cannot load ALIF layers, so
slayer's forward is the reference."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import snnc
from snnc.compiler.slayer_agreement import layer_agreement
from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_net import load_net, save_net
from snnc.frontends.torch_trace import trace_module
from snnc.ir.nodes import LoihiAdaptiveLIF
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi
from slayer_chain import Chain

ALIF = {"threshold": 1.0, "threshold_step": 0.5, "current_decay": 0.25, "voltage_decay": 0.03,
        "threshold_decay": 0.1, "refractory_decay": 0.1}
CONV_INPUT = (2, 6, 6)
POOL_KERNEL = [[0.5, 1.0], [1.5, 0.25]]


def dense_net(slayer) -> Chain:
    torch.manual_seed(0)
    return Chain([slayer.block.alif.Dense(ALIF, 12, 10, weight_scale=2),
                  slayer.block.alif.Dense(ALIF, 10, 4, weight_scale=2)], (12,))


def conv_net(slayer) -> Chain:
    torch.manual_seed(1)
    return Chain([slayer.block.alif.Conv(ALIF, 2, 3, 3, padding=1, weight_scale=3), slayer.block.alif.Flatten(),
                  slayer.block.alif.Dense(ALIF, 3 * 6 * 6, 5, weight_scale=3)], CONV_INPUT)


def pool_net(slayer, input_block=()) -> Chain:
    """[alif.Input()] -> Conv -> Pool (2x2, a kernel without symmetry) -> Flatten -> Dense."""
    torch.manual_seed(1)
    b = slayer.block.alif
    net = Chain([*input_block, b.Conv(ALIF, 2, 3, 3, padding=1, weight_scale=3), b.Pool(ALIF, 2), b.Flatten(),
                 b.Dense(ALIF, 3 * 3 * 3, 5, weight_scale=3)], CONV_INPUT)
    with torch.no_grad():     # a trained pooling kernel
        net.blocks[-3].synapse.weight.copy_(torch.tensor(POOL_KERNEL).reshape(1, 1, 2, 2, 1))
    return net


def spikes(shape, seed: int, rate: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


def test_alif_blocks_trace_to_adaptive_lif_groups_with_slayers_integers(slayer, tmp_path):
    net = dense_net(slayer)
    graph = trace_module(net, torch.zeros(1, 12, 20))
    assert [type(n).__name__ for n in graph.nodes] == ["Input", "LoihiDense", "LoihiAdaptiveLIF", "LoihiDense",
                                                       "LoihiAdaptiveLIF"]
    node = graph.node("alif_1")
    assert isinstance(node, LoihiAdaptiveLIF)
    assert (node.du, node.dv, node.dth, node.dr, node.vth, node.vth_step) == (1023, 123, 410, 410, 64, 32)
    net.export_hdf5(tmp_path / "alif.net", (12,))
    assert format_graph(load_net(tmp_path / "alif.net")).splitlines()[1:] == format_graph(graph).splitlines()[1:]


def test_slayer_alif_forward_equals_emulator_layer_by_layer(slayer, tmp_path):
    net = dense_net(slayer)
    result = snnc.compile(net, example_input=torch.zeros(1, 12, 30), target="loihi2", out=tmp_path / "out")
    check = snnc.verify(result, spikes((3, 30, 12), 2), with_reference=False, model=net)
    assert check.ok, check.text
    assert check.text.splitlines()[-2:] == ["  blocks.0 (alif_1): equal (120 spikes)",
                                            "  blocks.1 (alif_2): equal (22 spikes)"]


def test_alif_conv_net_equals_slayer_forward(slayer):
    net = conv_net(slayer)
    graph = trace_module(net, torch.zeros(1, *CONV_INPUT, 20))
    assert graph.node("alif_1").shape == (3, 6, 6)
    ok, lines = layer_agreement(net, graph, spikes((2, 20, *CONV_INPUT), 3))
    assert ok, lines
    assert all("equal (" in line and not line.endswith("(0 spikes)") for line in lines[1:])


def test_alif_net_file_round_trip_is_exact(slayer, tmp_path):
    net = conv_net(slayer)
    net.export_hdf5(tmp_path / "alif.net", CONV_INPUT)
    graph = load_net(tmp_path / "alif.net")
    save_net(graph, tmp_path / "again.net")
    assert format_graph(load_net(tmp_path / "again.net")).splitlines()[1:] == format_graph(graph).splitlines()[1:]


@pytest.mark.lava
def test_alif_emulator_equals_lava_atrlif(slayer):
    from snnc.backends.lava_loihi2.run import run_lava
    graph = trace_module(dense_net(slayer), torch.zeros(1, 12, 20))
    x = spikes((1, 25, 12), 4)
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    assert emulated.spikes["alif_2"].sum() > 0
    for name in ("alif_1", "alif_2"):
        assert np.array_equal(emulated.spikes[name], lava.spikes[name]), name
        for var in ("u", "v"):
            assert np.array_equal(emulated.states[name][var], lava.states[name][var]), (name, var)


def test_what_lavas_atrlif_cannot_run_is_refused_by_field(slayer, tmp_path):
    dense_net(slayer).export_hdf5(tmp_path / "alif.net", (12,))
    with pytest.raises(UnsupportedError) as info:
        load_net(tmp_path / "alif.net", reset_interval=8)
    assert str(info.value).endswith("layer 1' field 'reset_interval': limit none on ALIF layers (Lava's ATRLIF has "
                                    "no periodic reset), got 8")
    with h5py.File(tmp_path / "alif.net", "a") as handle:
        del handle["layer/2/neuron/gradedSpike"]
        handle.create_dataset("layer/2/neuron/gradedSpike", data=True)
    with pytest.raises(UnsupportedError) as info:
        load_net(tmp_path / "alif.net")
    assert str(info.value).endswith("layer 2' field 'neuron/gradedSpike': limit False (binary spikes: Lava's "
                                    "ATRLIF), got True")


def test_alif_pool_block_is_a_depthwise_conv_into_adaptive_lif_neurons(slayer, tmp_path):
    net = pool_net(slayer)
    graph = trace_module(net, torch.zeros(1, *CONV_INPUT, 20))
    net.export_hdf5(tmp_path / "pool.net", CONV_INPUT)
    assert format_graph(load_net(tmp_path / "pool.net")).splitlines()[1:] == format_graph(graph).splitlines()[1:]
    pool = graph.node("pool_2")
    assert (pool.source, pool.groups, pool.stride) == ("alif_1", 3, (2, 2))
    assert np.array_equal(pool.weight_mant, np.repeat(np.array(POOL_KERNEL).reshape(1, 1, 2, 2) * 64, 3, axis=0))
    assert isinstance(graph.node("alif_2"), LoihiAdaptiveLIF) and graph.node("alif_2").shape == (3, 3, 3)


def test_slayer_alif_pool_forward_equals_emulator_layer_by_layer(slayer):
    net = pool_net(slayer)
    ok, lines = layer_agreement(net, trace_module(net, torch.zeros(1, *CONV_INPUT, 20)),
                                spikes((2, 20, *CONV_INPUT), 3))
    assert ok, lines
    assert [line.split(": ")[0] for line in lines[1:]] == ["  blocks.0 (alif_1)", "  blocks.1 (alif_2)",
                                                           "  blocks.3 (alif_4)"]
    assert all(": equal (" in line and not line.endswith("(0 spikes)") for line in lines[1:])


def test_an_alif_input_block_without_neuron_is_the_plain_input_layer(slayer):
    """alif.Input() with delay_shift=False passes its input on (with the default delay_shift=True slayer's
    own forward fails on its missing neuron): the graph is the one without it."""
    net = pool_net(slayer, input_block=[slayer.block.alif.Input(delay_shift=False)])
    graph = trace_module(net, torch.zeros(1, *CONV_INPUT, 20))
    assert format_graph(graph).splitlines()[1:] == format_graph(
        trace_module(pool_net(slayer), torch.zeros(1, *CONV_INPUT, 20))).splitlines()[1:]
    ok, lines = layer_agreement(net, graph, spikes((2, 20, *CONV_INPUT), 3))
    assert ok and lines[1].startswith("  blocks.1 (alif_1): equal ("), lines


@pytest.mark.lava
def test_alif_pool_emulator_equals_lava_atrlif(slayer):
    """netx 0.6 loads neither pool nor ALIF layers: snnc's Lava backend (depthwise Conv into ATRLIF) is
    the deployment; it equals the emulator in spikes, u and v of every layer at every step."""
    from snnc.backends.lava_loihi2.run import run_lava
    graph = trace_module(pool_net(slayer), torch.zeros(1, *CONV_INPUT, 20))
    x = spikes((1, 16, *CONV_INPUT), 4)
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    for name in ("alif_1", "alif_2", "alif_4"):
        assert emulated.spikes[name].sum() > 0, name
        assert np.array_equal(emulated.spikes[name], lava.spikes[name]), name
        for var in ("u", "v"):
            assert np.array_equal(emulated.states[name][var], lava.states[name][var]), (name, var)


NOT_ALIF_KIND = "limit a alif block of kind Input, Dense, Conv, Pool, Flatten, got slayer.block.alif."


@pytest.mark.parametrize("case, expected", [
    ("input with neuron", "node 'blocks.0' field 'neuron_params': slayer's alif.Input feeds the input into an ALIF "
                          "neuron's current; its export is an input layer with an ALIF neuron, which netx 0.6 cannot "
                          "build (get_neuron_params knows no ALIF) and which netx's input layers would drive through "
                          "the bias instead; start the chain with the first alif.Dense/Conv block (it reads the "
                          "spikes), or use alif.Input() without neuron_params and with delay_shift=False (a plain "
                          "input layer): limit None (an input layer without neuron), got an ALIF neuron"),
    ("average", "node 'blocks.1' field 'type': netx 0.6 raises NotImplementedError('average is not implemented.'); "
                "slayer's Average block cannot export it either (its export_hdf5 reads a 'neuron' it does not have); "
                "average the last block's output outside the network: " + NOT_ALIF_KIND + "Average"),
    ("time decimation", "node 'blocks.1' field 'type': it averages bins of time steps (fewer output steps than input "
                        "steps), which a Loihi layer cannot; its export_hdf5 writes an 'average' layer netx 0.6 cannot "
                        "load: " + NOT_ALIF_KIND + "TimeDecimation"),
    ("recurrent", "node 'blocks.0' field 'type': its export is a 'dense_rec' layer with an ALIF neuron: netx 0.6 "
                  "builds no ALIF neuron (get_neuron_params knows CUBA, SDNN and RF only) and snnc has no recurrent "
                  "ALIF layer: " + NOT_ALIF_KIND + "Recurrent"),
    ("unpool", "node 'blocks.0' field 'type': netx 0.6 raises NotImplementedError('unpool is not implemented.'): "
               + NOT_ALIF_KIND + "Unpool"),
    ("pool padding", "node 'blocks.0' field 'input shape': slayer's Pool appends H % kh zero rows and W % kw zero "
                     "columns at the bottom and right of its input, so it pools to more outputs than netx's conv "
                     "layer (same padding on both sides); pad or crop the block's input to a multiple of the kernel: "
                     "limit a height and width the pooling kernel (2, 2) divides (or a stride and padding for which "
                     "slayer's padding adds no output), got (5, 6): slayer pools to (3, 3), netx's conv layer to "
                     "(2, 3)"),
])
def test_alif_blocks_netx_cannot_load_are_refused_with_the_reason(slayer, case, expected):
    b = slayer.block.alif
    torch.manual_seed(0)
    blocks, shape = {      # made on demand: slayer's Recurrent block writes persistent_state into its params
        "input with neuron": lambda: ([b.Input(ALIF), b.Dense(ALIF, 12, 4)], (12,)),
        "average": lambda: ([b.Dense(ALIF, 12, 4), b.Average(2)], (12,)),
        "time decimation": lambda: ([b.Dense(ALIF, 12, 4), b.TimeDecimation(2)], (12,)),
        "recurrent": lambda: ([b.Recurrent(dict(ALIF), 12, 4)], (12,)),
        "unpool": lambda: ([b.Unpool(ALIF, 2)], (2, 4, 4)),
        "pool padding": lambda: ([b.Pool(ALIF, 2)], (2, 5, 6)),
    }[case]()
    with pytest.raises(UnsupportedError) as info:
        trace_module(Chain(blocks, shape), torch.zeros(1, *shape, 8))
    assert str(info.value) == expected


def test_a_recurrent_alif_layer_in_a_net_file_is_refused_by_field(slayer, tmp_path):
    """alif.Recurrent's export (a 'dense_rec' layer with an ALIF neuron) read from a .net file."""
    Chain([slayer.block.alif.Recurrent(dict(ALIF), 12, 6)], (12,)).export_hdf5(tmp_path / "rec.net", (12,))
    with pytest.raises(UnsupportedError) as info:
        load_net(tmp_path / "rec.net")
    assert str(info.value).endswith("rec.net: layer 1' field 'neuron/type': a recurrent layer of SDNN or ALIF "
                                    "neurons has no exact netx 0.6 deployment (slayer's alif.Recurrent): limit CUBA "
                                    "or LOIHI on a 'dense_rec' layer (snnc's recurrent layers are LIF groups), got "
                                    "ALIF")
