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

ALIF = {"threshold": 1.0, "threshold_step": 0.5, "current_decay": 0.25, "voltage_decay": 0.03,
        "threshold_decay": 0.1, "refractory_decay": 0.1}
CONV_INPUT = (2, 6, 6)


class Chain(torch.nn.Module):
    """A ModuleList of blocks looped over in forward, as lava-dl's tutorials write a network."""

    def __init__(self, blocks, example_shape):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.eval()
        self(torch.zeros(1, *example_shape, 4))     # slayer blocks learn their shapes in the first forward

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def export_hdf5(self, path, input_shape):
        """The tutorials' export after an input layer."""
        with h5py.File(path, "w") as handle:
            layers = handle.create_group("layer")
            layers.create_dataset("0/type", (1,), "S10", [b"input"])
            layers.create_dataset("0/shape", data=np.asarray(input_shape))
            for i, block in enumerate(self.blocks, start=1):
                block.export_hdf5(layers.create_group(str(i)))


def dense_net(slayer) -> Chain:
    torch.manual_seed(0)
    return Chain([slayer.block.alif.Dense(ALIF, 12, 10, weight_scale=2),
                  slayer.block.alif.Dense(ALIF, 10, 4, weight_scale=2)], (12,))


def conv_net(slayer) -> Chain:
    torch.manual_seed(1)
    return Chain([slayer.block.alif.Conv(ALIF, 2, 3, 3, padding=1, weight_scale=3), slayer.block.alif.Flatten(),
                  slayer.block.alif.Dense(ALIF, 3 * 6 * 6, 5, weight_scale=3)], CONV_INPUT)


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
