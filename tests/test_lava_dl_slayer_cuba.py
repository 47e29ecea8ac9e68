"""lava-dl CUBA ``.net`` files made with slayer's own blocks and their ``export_hdf5`` (not hand-written):
``cuba.Conv`` with dilation, ``cuba.Flatten``, ``cuba.Dense`` with trained axonal delays, ``cuba.Recurrent``
(``dense_rec``). Loaded by ``load_net``, run by netx on Lava fixed_pt, snnc's emulator (both engines) and
snnc's Lava backend: s, u and v of every layer equal at every step; the export writes back every dataset
netx reads."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from snnc.backends.lava_loihi2.netx import run_netx
from snnc.backends.lava_loihi2.run import run_lava
from snnc.frontends.lava_dl_net import load_net, save_net
from snnc.ir.nodes import LoihiConv, LoihiDense
from snnc.simulators.loihi_emulator import run_loihi
from test_lava_dl_net import assert_matches_netx, assert_same_traces, net_datasets

NEURON = {"threshold": 0.8, "current_decay": 0.25, "voltage_decay": 0.05}
INPUT = (2, 9, 7)       # (C, H, W), non-square so a swapped H/W shows
STEPS = 16


def slayer_blocks(slayer) -> list:
    """Conv 3x2 dilation (2, 1) -> Flatten -> Dense 12 with delays -> Recurrent 6 -> Dense 3."""
    torch.manual_seed(2)
    cuba = slayer.block.cuba
    blocks = [cuba.Conv(NEURON, 2, 3, kernel_size=(3, 2), dilation=(2, 1), padding=(1, 0), weight_scale=4),
              cuba.Flatten(),
              cuba.Dense(NEURON, 3 * 7 * 6, 12, weight_scale=3, delay=True),
              cuba.Recurrent(NEURON, 12, 6, weight_scale=3),
              cuba.Dense(NEURON, 6, 3, weight_scale=3)]
    x = torch.zeros(1, *INPUT, 4)
    with torch.no_grad():       # one forward sets the blocks' shapes (Recurrent's fails under autograd here)
        for block in blocks:
            x = block(x)
        blocks[2].delay.delay.data = (torch.arange(12) % 4).float()     # trained delays: 0..3 steps
    return blocks


@pytest.fixture(scope="module")
def slayer_file(slayer, tmp_path_factory):
    """The blocks exported the way lava-dl's tutorials write a .net file, after an input layer."""
    path = tmp_path_factory.mktemp("slayer_cuba") / "cuba.net"
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        first = layers.create_group("0")
        first.create_dataset("type", (1,), "S10", [b"input"])
        first.create_dataset("shape", data=np.asarray(INPUT))
        for index, block in enumerate(slayer_blocks(slayer)):
            block.export_hdf5(layers.create_group(str(index + 1)))
    return path


def test_slayer_blocks_load_as_netx_builds_them(slayer_file):
    graph = load_net(slayer_file)
    conv = graph.node("conv_1")
    assert isinstance(conv, LoihiConv) and conv.dilation == (2, 1) and graph.node("lif_1").shape == (3, 7, 6)
    assert np.unique(graph.node("dense_3").delay_steps).tolist() == [0, 1, 2, 3]
    assert graph.node("lif_4").inputs == ("dense_4", "dense_4_rec")
    assert isinstance(graph.node("dense_4_rec"), LoihiDense) and graph.node("dense_4_rec").source == "lif_4"


@pytest.mark.lava
def test_slayer_made_cuba_net_equals_netx_emulator_and_lava_backend(slayer_file):
    graph = load_net(slayer_file)
    x = (np.random.default_rng(1).random((1, STEPS, *INPUT)) < 0.5).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(slayer_file, x[0]), STEPS)
    assert all(emulated.spikes[name].sum() > 0 for name in ("lif_1", "lif_3", "lif_4"))


def test_slayer_made_cuba_net_round_trips_every_dataset(slayer_file, tmp_path):
    save_net(load_net(slayer_file), tmp_path / "again.net")
    written, again = net_datasets(slayer_file), net_datasets(tmp_path / "again.net")
    # every dataset snnc writes equals slayer's, but for a flatten layer's shape, which netx never reads
    # (slayer writes its output (N, 1, 1), snnc its input (C, H, W)); slayer also writes informational fields
    # netx never reads (kernelSize, inFeatures, ...), which snnc does not write
    del written["layer/2/shape"], again["layer/2/shape"]
    assert {key: written.get(key) for key in again} == again
