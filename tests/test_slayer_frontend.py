"""lava-dl slayer networks in the torch frontend: a chain of slayer CUBA blocks compiles to exactly what netx
builds from the net's ``export_hdf5``; the emulator equals netx on Lava fixed_pt; ``snnc.verify`` compares
slayer's own forward with the emulator layer by layer."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

import snnc
from snnc.compiler.slayer_agreement import layer_agreement
from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_net import load_net
from snnc.frontends.torch_bundle import load_bundle, save_bundle
from snnc.frontends.torch_trace import trace_module
from snnc.ir.nodes import LoihiDense, LoihiLIF
from snnc.ir.serialize import graph_bytes
from snnc.simulators.loihi_emulator import run_loihi

STEPS = 24
NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03}


class DenseNet(torch.nn.Module):
    """As lava-dl's tutorials write a network: a ModuleList of blocks, forward loops over them."""

    def __init__(self, slayer, sizes=(12, 10, 8, 4), delay_shift=True):
        super().__init__()
        torch.manual_seed(0)
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Dense(NEURON, n_in, n_out, weight_scale=2, weight_norm=True,
                                    delay=i < len(sizes) - 2, delay_shift=delay_shift)
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))])

    def forward(self, spike):
        for block in self.blocks:
            spike = block(spike)
        return spike

    def export_hdf5(self, filename):
        """The tutorials' export: one layer group per block, no input layer."""
        with h5py.File(filename, "w") as handle:
            layers = handle.create_group("layer")
            for i, block in enumerate(self.blocks):
                block.export_hdf5(layers.create_group(f"{i}"))


def spikes(shape, seed: int, rate: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


@pytest.fixture(scope="module")
def dense_net(slayer):
    net = DenseNet(slayer).eval()
    net(torch.zeros(1, 12, STEPS))         # slayer blocks learn their shapes (and delays') in the first forward
    with torch.no_grad():                  # trained delays: the first block's neurons 0..3 steps late
        net.blocks[0].delay.delay.data = (torch.arange(10) % 4).float()
    return net


def example(steps: int = STEPS, channels: int = 12) -> torch.Tensor:
    return torch.as_tensor(spikes((1, channels, steps), 0), dtype=torch.float32)


def test_dense_net_compiles_to_the_graph_netx_builds(dense_net, tmp_path):
    """Same integers as netx's loading of the net's own export_hdf5: weights, delays, du, dv, vth."""
    result = snnc.compile(dense_net, example_input=example(), target="emulator", out=tmp_path / "out")
    dense_net.export_hdf5(tmp_path / "net.net")
    exported = load_net(tmp_path / "net.net", isolation=None)
    mine = [n for n in result.source.nodes if isinstance(n, (LoihiDense, LoihiLIF))]
    theirs = [n for n in exported.nodes if isinstance(n, (LoihiDense, LoihiLIF))]
    assert [type(n) for n in mine] == [type(n) for n in theirs] == [LoihiDense, LoihiLIF] * 3
    for a, b in zip(mine, theirs):
        fields = ("weight_mant", "weight_exp", "num_weight_bits", "delay_steps") if isinstance(a, LoihiDense) \
            else ("du", "dv", "vth", "bias_mant", "bias_exp")
        for field in fields:
            assert np.array_equal(getattr(a, field), getattr(b, field)), (a.name, field)
    assert np.max(mine[0].delay_steps) == 3
    assert [n.name for n in result.source.nodes] == ["input", "dense_1", "lif_1", "dense_2", "lif_2",
                                                     "dense_3", "lif_3"]


def test_bundle_holds_the_traced_graph(dense_net, tmp_path):
    save_bundle(dense_net, (12,), tmp_path / "net.pt", example_input=example())
    graph = load_bundle(tmp_path / "net.pt")
    assert graph.timing == "hop_latency"
    assert graph_bytes(graph) == graph_bytes(trace_module(dense_net, example()))


def test_slayer_forward_equals_emulator_layer_by_layer(dense_net, tmp_path):
    result = snnc.compile(dense_net, example_input=example(), target="emulator", out=tmp_path / "out")
    x = spikes((3, STEPS, 12), 5)
    check = snnc.verify(result, x, with_reference=False, model=dense_net)
    assert check.ok, check.text
    lines = check.text.splitlines()
    at = lines.index("slayer forward vs emulator, layer by layer (spikes at every step):")
    assert [line.split(" (")[0] for line in lines[at + 1:]] == ["  blocks.0", "  blocks.1", "  blocks.2"]
    assert all(line.endswith(" spikes)") and "equal (" in line for line in lines[at + 1:])
    traces = run_loihi(result.source, x, record_state=False)
    assert all(traces.spikes[f"lif_{i}"].sum() > 0 for i in (1, 2, 3))     # not vacuous


def test_report_names_the_first_layer_that_differs(slayer, tmp_path):
    """A net trained with delay_shift=False reacts in the step of its input; netx's layers one step later:
    deployed, every layer is late, and the report says so from the first block on."""
    net = DenseNet(slayer, delay_shift=False).eval()
    graph = trace_module(net, example())
    ok, lines = layer_agreement(net, graph, spikes((2, STEPS, 12), 7))
    assert not ok
    assert lines[1] == ("  blocks.0 (lif_1): 86 of 480 spike values differ (82.1% agree), first at step 1; slayer 89 "
                        "spikes, emulator 85 (block trained with delay_shift=False: slayer's layer answers in the "
                        "step of its input, a Loihi layer one step later; train with delay_shift=True to deploy)")
    assert [line.split(":")[0] for line in lines[2:]] == ["  blocks.1 (lif_2)", "  blocks.2 (lif_3)"]


def test_ops_between_blocks_are_refused(slayer):
    class Scaled(DenseNet):
        def forward(self, spike):
            return self.blocks[1](self.blocks[0](spike) * 2)

    with pytest.raises(UnsupportedError) as info:
        trace_module(Scaled(slayer), example())
    assert str(info.value) == ("node 'blocks.1' field 'input': limit the previous block's output, unchanged (a "
                               "chain of slayer blocks), got the result of Scaled: mul")


def test_spike_rate_logging_of_the_tutorials_is_ignored(slayer):
    """lava-dl's NMNIST tutorial logs each block's mean spike rate in forward; no block reads it."""
    class Logged(DenseNet):
        def forward(self, spike):
            count = []
            for block in self.blocks:
                spike = block(spike)
                count.append(torch.mean(spike).item())
            return spike, torch.FloatTensor(count).reshape((1, -1))

    net = Logged(slayer).eval()
    assert graph_bytes(trace_module(net, example())) == graph_bytes(trace_module(DenseNet(slayer).eval(),
                                                                                 example()))


def test_blocks_that_are_not_a_chain_are_refused(slayer):
    class Skip(DenseNet):
        def forward(self, spike):
            self.blocks[0](spike)
            return self.blocks[1](self.blocks[0](spike))

    with pytest.raises(UnsupportedError) as info:
        trace_module(Skip(slayer), example())
    assert str(info.value) == ("node 'blocks.0' field 'input': limit the previous block's output, unchanged (a "
                               "chain of slayer blocks), got another tensor")


def test_a_layer_snnc_cannot_import_names_the_block(slayer):
    class SigmaDelta(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([slayer.block.sigma_delta.Dense(
                {"threshold": 0.1, "activation": torch.nn.functional.relu}, 6, 4)])

        forward = DenseNet.forward

    with pytest.raises(UnsupportedError) as info:
        trace_module(SigmaDelta(), torch.zeros(1, 6, 5))
    assert str(info.value) == ("node 'blocks.0' field 'type': limit a sigma_delta.Input block first (netx's Delta "
                               "encoder of the graded input), got slayer.block.sigma_delta.Dense")


@pytest.mark.lava
def test_compiled_slayer_net_equals_netx_on_lava(dense_net, tmp_path):
    """(a) The compiled model in the emulator == netx running the net's export_hdf5 on Lava fixed_pt:
    spikes, u and v of every layer at every step."""
    from snnc.backends.lava_loihi2.netx import run_netx
    result = snnc.compile(dense_net, example_input=example(), target="loihi2", out=tmp_path / "out")
    dense_net.export_hdf5(tmp_path / "net.net")
    x = spikes((1, STEPS, 12), 3)
    emulated = run_loihi(result.graph, x)
    lava = run_netx(tmp_path / "net.net", x[0])
    names = [n.name for n in result.graph.nodes if isinstance(n, LoihiLIF)]
    assert len(lava) == len(names) == 3
    for name, recorded in zip(names, lava):
        assert emulated.spikes[name].sum() > 0
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(STEPS, -1), mine[0].reshape(STEPS, -1)), (name, var)


class ConvNet(torch.nn.Module):
    """Conv (non-square kernel and input, so a swapped H/W shows) -> [Pool] -> Flatten -> Dense."""

    def __init__(self, slayer, pool: bool):
        super().__init__()
        torch.manual_seed(1)
        neuron = {"threshold": 1.0, "current_decay": 0.25, "voltage_decay": 0.03}
        flat = 4 * 3 * 3 if pool else 4 * 6 * 6
        self.blocks = torch.nn.ModuleList(
            [slayer.block.cuba.Conv(neuron, 2, 4, kernel_size=(3, 2), padding=(1, 0), weight_scale=3)]
            + ([slayer.block.cuba.Pool(neuron, 2, weight_scale=1)] if pool else [])
            + [slayer.block.cuba.Flatten(), slayer.block.cuba.Dense(neuron, flat, 5, weight_scale=3)])

    forward = DenseNet.forward

    def export_hdf5(self, filename, input_shape):
        """With an input layer first: netx needs one before a conv layer."""
        with h5py.File(filename, "w") as handle:
            layers = handle.create_group("layer")
            first = layers.create_group("0")
            first.create_dataset("type", (1,), "S10", [b"input"])
            first.create_dataset("shape", data=np.asarray(input_shape))
            for i, block in enumerate(self.blocks):
                block.export_hdf5(layers.create_group(f"{i + 1}"))


CONV_INPUT = (2, 6, 7)


def conv_example() -> torch.Tensor:
    return torch.as_tensor(spikes((1, *CONV_INPUT, STEPS), 0), dtype=torch.float32)


def test_conv_pool_net_equals_slayer_forward_layer_by_layer(slayer):
    net = ConvNet(slayer, pool=True).eval()
    graph = trace_module(net, conv_example())
    assert [(n.name, type(n).__name__) for n in graph.nodes] == [
        ("input", "Input"), ("conv_1", "LoihiConv"), ("lif_1", "LoihiLIF"), ("pool_2", "LoihiConv"),
        ("lif_2", "LoihiLIF"), ("flatten_4", "Flatten"), ("dense_4", "LoihiDense"), ("lif_4", "LoihiLIF")]
    assert graph.node("lif_2").shape == (4, 3, 3)
    ok, lines = layer_agreement(net, graph, spikes((2, STEPS, *CONV_INPUT), 2))
    assert ok, lines
    assert [line.split(" (")[0] for line in lines[1:]] == ["  blocks.0", "  blocks.1", "  blocks.3"]
    assert all("equal (" in line and not line.endswith("(0 spikes)") for line in lines[1:])


@pytest.mark.lava
def test_compiled_slayer_conv_net_equals_netx_on_lava(slayer, tmp_path):
    """Conv -> Flatten -> Dense (netx 0.6 loads no pool layer): emulator == netx on Lava fixed_pt."""
    from snnc.backends.lava_loihi2.netx import run_netx
    net = ConvNet(slayer, pool=False).eval()
    result = snnc.compile(net, example_input=conv_example(), target="loihi2", out=tmp_path / "out")
    net.export_hdf5(tmp_path / "net.net", CONV_INPUT)
    x = spikes((1, STEPS, *CONV_INPUT), 3)
    emulated = run_loihi(result.graph, x)
    lava = run_netx(tmp_path / "net.net", x[0])
    names = [n.name for n in result.graph.nodes if isinstance(n, LoihiLIF)]
    assert len(lava) == len(names) == 2
    for name, recorded in zip(names, lava):
        assert emulated.spikes[name].sum() > 0
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(STEPS, -1), mine[0].reshape(STEPS, -1)), (name, var)


@pytest.mark.lava
@pytest.mark.slow
def test_cuba_pool_net_equals_netx_running_the_pool_as_a_depthwise_conv(slayer, tmp_path):
    """netx 0.6 raises on the Pool block's 'pool' layer; written as the depthwise 'conv' layer netx loads
    (the same synapse), netx on Lava fixed_pt equals the traced graph in the emulator: spikes, u, v."""
    from snnc.backends.lava_loihi2.netx import run_netx
    from test_lava_dl_net import netx_refuses_pool, pool_as_depthwise_conv
    net = ConvNet(slayer, pool=True).eval()
    with torch.no_grad():     # a trained kernel without symmetry: a flipped or transposed one shows
        net.blocks[1].synapse.weight.copy_(torch.tensor([[0.5, 1.0], [1.5, 0.25]]).reshape(1, 1, 2, 2, 1))
    graph = trace_module(net, conv_example())
    net.export_hdf5(tmp_path / "pool.net", CONV_INPUT)
    assert netx_refuses_pool(tmp_path / "pool.net") == "pool is not implemented."
    pool_as_depthwise_conv(tmp_path / "pool.net", 2, channels=4)
    x = spikes((1, STEPS, *CONV_INPUT), 3)
    emulated, lava = run_loihi(graph, x), run_netx(tmp_path / "pool.net", x[0])
    names = [n.name for n in graph.nodes if isinstance(n, LoihiLIF)]
    assert names == ["lif_1", "lif_2", "lif_4"] and len(lava) == 3
    for name, recorded in zip(names, lava):
        assert emulated.spikes[name].sum() > 0
        for var, got in recorded.items():
            mine = emulated.spikes[name] if var == "s_out" else emulated.states[name][var]
            assert np.array_equal(got.reshape(STEPS, -1), mine[0].reshape(STEPS, -1)), (name, var)


def test_example_input_without_time_axis_is_refused(dense_net):
    with pytest.raises(UnsupportedError) as info:
        trace_module(dense_net, torch.zeros(1, 12))
    assert str(info.value).startswith(
        "node 'DenseNet' field 'example_input': limit a tensor the model's forward accepts ([N, ...] per step, "
        "[T, N, ...] for a time loop or multi-step, [N, C, T] for a lava-dl slayer network), got (1, 12): ")


def test_graph_takes_the_given_name(dense_net):
    graph = trace_module(dense_net, example(), name="my net/v2")
    assert graph.name == "my_net_v2"
    assert graph.source_names
