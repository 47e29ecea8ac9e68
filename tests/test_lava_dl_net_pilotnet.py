"""Issue 13 item 2 through a ``.net`` file: a PilotNet-sized CUBA conv net (3x66x200 -> conv 24@5x5/2,
36@5x5/2, 48@5x5/2, 64@3x3, 64@3x3 -> dense 100, 50, 10, 1), written the way netx reads it, compiles for
``--target loihi2`` from the CLI: conv fan-in is the kernel window, the groups are tiled onto cores of
one chip, and the emulator output of the compiled graph equals that of the loaded file; with cores
narrower than a window, fan-in partitioning (input-channel partial sums) keeps the output too."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from snnc.compiler.cli import main
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import partition_fanin
from snnc.frontends.lava_dl_net import load_net
from snnc.frontends.loader import load_model
from snnc.ir.nodes import LoihiGradedRelay
from snnc.ir.printer import format_graph
from snnc.ir.verify import verify
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import LOIHI2
from snnc.targets.spec import synapse_fan_in
from test_lava_dl_net import write_net

INPUT = (3, 66, 200)
CONVS = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))   # channels, kernel, stride
DENSE = (100, 50, 10, 1)
GROUPS = ("lif_1", "lif_2", "lif_3", "lif_4", "lif_5", "lif_7", "lif_8", "lif_9", "lif_10")


def cuba(fan_in: int) -> dict:
    """No current memory (iDecay 4096: du = 4095), a leaky voltage, vth = 3 x fan-in."""
    return {"type": "CUBA", "iDecay": 4096, "vDecay": 400, "vThMant": 3 * fan_in, "refDelay": 1,
            "gradedSpike": False}


def pilotnet_layers(seed: int = 0) -> list[dict]:
    """The layers as slayer's export_hdf5 writes them: integer weights, mostly excitatory so every
    layer spikes."""
    rng = np.random.default_rng(seed)
    layers, shape = [{"type": "input", "shape": np.array(INPUT)}], INPUT
    for channels, kernel, stride in CONVS:
        out = (channels, (shape[1] - kernel) // stride + 1, (shape[2] - kernel) // stride + 1)
        layers.append({"type": "conv", "shape": np.array(out), "stride": np.array([stride, stride]),
                       "weight": rng.integers(-60, 121, (channels, shape[0], kernel, kernel)),
                       "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": 1,
                       "neuron": cuba(shape[0] * kernel * kernel)})
        shape = out
    layers.append({"type": "flatten", "shape": np.array(shape)})
    size = int(np.prod(shape))
    for width in DENSE:
        layers.append({"type": "dense", "shape": np.array([width]), "weight": rng.integers(-60, 121, (width, size)),
                       "neuron": cuba(size)})
        size = width
    return layers


@pytest.fixture(scope="module")
def pilotnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pilotnet_net") / "pilotnet.net"
    write_net(path, pilotnet_layers())
    return path


def pilotnet_spikes(steps: int) -> np.ndarray:
    return (np.random.default_rng(0).random((1, steps, *INPUT)) < 0.3).astype(np.uint8)


def test_a_pilotnet_sized_net_file_compiles_for_loihi2_and_keeps_its_output(pilotnet_file, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(pilotnet_file), "--target", "loihi2", "-o", str(out)]) == 0
    before, after = load_net(pilotnet_file), load_model(out / "lowered.snnc")
    fan_in = {g: synapse_fan_in(after, after.node(after.node(g).inputs[0])) for g in GROUPS[:5]}
    assert fan_in == {"lif_1": 75, "lif_2": 600, "lif_3": 900, "lif_4": 432, "lif_5": 576}   # c_in x kh x kw
    place = json.loads((out / "report.json").read_text())["passes"]["place_cores"]
    assert (place["cores_used"], place["lower_bound"], place["chips_needed"]) == (33, 27, 1)
    # lif_1's first tile: x columns 0..5 of 31 rows x 24 channels read input columns 0..14, rows 0..64,
    # 3 channels (the union of the windows), not the 39,600-pixel input
    assert place["cores"][0]["tiles"] == [["lif_1", 0, 4096]] and place["cores"][0]["axons"] == 3 * 65 * 15
    assert all(c["neurons"] <= 4096 and c["synapses"] <= 40_000 and c["axons"] <= 16_384 for c in place["cores"])
    assert format_graph(after).splitlines()[1:] == format_graph(before).splitlines()[1:]
    x = pilotnet_spikes(12)
    expected, actual = run_loihi(before, x), run_loihi(after, x)
    assert set(GROUPS) <= set(actual.spikes) and first_divergence(expected, actual, names=list(GROUPS)) is None
    assert all(expected.spikes[g].sum() > 0 for g in GROUPS), "every layer spikes: not a silent net"


NARROW = dataclasses.replace(LOIHI2, name="loihi2-500-axons", input_axons_per_core=500)


def test_fan_in_partitioning_of_the_net_file_keeps_the_emulator_output(pilotnet_file):
    """500 axons per core: the conv windows 600 (lif_2), 900 (lif_3), 576 (lif_5) are split into two
    input-channel partial sums each, the 1152-input dense layer into three column blocks."""
    plain = load_net(pilotnet_file)
    split = verify(partition_fanin.run(plain, PassOptions(target=NARROW)).graph)
    relays = [n.name.split("__")[0] for n in split.nodes if isinstance(n, LoihiGradedRelay)]
    assert sorted(relays) == sorted(["conv_2"] * 2 + ["conv_3"] * 2 + ["conv_5"] * 2 + ["dense_7"] * 3)
    assert [v for v in NARROW.fits(split) if v.field == "fan-in"] == []
    x = pilotnet_spikes(11)
    expected, actual = run_on_ir_grid(plain, x, record_state=True), run_on_ir_grid(split, x, record_state=True)
    assert set(GROUPS) <= set(actual.spikes) and first_divergence(expected, actual, names=list(GROUPS)) is None
    assert expected.spikes["lif_10"].sum() > 0


@pytest.mark.lava
def test_netx_loads_the_file_with_the_same_layer_shapes(pilotnet_file):
    from snnc.backends.lava_loihi2.compat import import_lava
    import_lava(dl=True)
    from lava.lib.dl import netx
    net = netx.hdf5.Network(net_config=str(pilotnet_file))
    graph = load_net(pilotnet_file)
    assert [tuple(layer.shape)[::-1] for layer in net.layers] == [graph.node(g).shape for g in GROUPS]
