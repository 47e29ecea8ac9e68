"""The module tracer: models as users write them (snnTorch tutorials 5/6, init_hidden, residuals, BatchNorm,
SpikingJelly single/multi-step, SEW-ResNet) give a float IR equal to the library's OWN forward, spike for
spike, in every neuron layer.

Tolerance policy for float ties: the peer model runs in float64 like snnc's float reference, and spike trains
are compared EXACTLY. The two compute the same real numbers in a different operation order (folded
BatchNorm, a probed composite synapse, SpikingJelly's ``v + (x - v) / tau``), which moves a membrane by
~1e-15; so each test also asserts that no membrane of snnc's run lies within 1e-9 of its threshold, where
such a rounding difference could flip a spike. A test input that came that close would fail, not pass.
"""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import snntorch.utils
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from conftest import random_spikes
from snnc.errors import ModelFileError, UnsupportedError
from snnc.frontends.torch_bundle import load_bundle, load_bundle_module, save_bundle
from snnc.frontends.torch_trace import trace_module
from snnc.frontends.torch_trace_neurons import is_neuron
from snnc.ir.nodes import CubaLIF
from snnc.ir.printer import format_graph
from snnc.simulators.float_reference import run_float

MARGIN = 1e-9


def peer_spikes(model: nn.Module, x: np.ndarray, call: str) -> dict[str, np.ndarray]:
    """The library's own forward in float64 on x (batch, steps, *shape): every neuron module's spikes,
    (batch, steps, *shape). ``call``: "step" (one call per step), "loop" (forward loops over x[t]),
    "sequence" (SpikingJelly multi-step: one call on [T, N, ...]), "static" (forward loops on x[:, 0])."""
    model = model.double().eval()
    paths = {id(m): p for p, m in model.named_modules()}
    recorded: dict[str, list] = {}
    hooks = []
    for module in model.modules():
        if is_neuron(module) or not list(module.children()):
            hooks.append(module.register_forward_pre_hook(
                lambda _m, args: tuple(a.double() if torch.is_tensor(a) else a for a in args)))
        if is_neuron(module):
            hooks.append(module.register_forward_hook(lambda m, _i, out: recorded.setdefault(paths[id(m)], []).append(
                (out[0] if isinstance(out, tuple) else out).detach().numpy().copy())))
    snntorch.utils.reset(model)
    functional.reset_net(model)
    sequence = torch.as_tensor(x, dtype=torch.float64).transpose(0, 1)
    try:
        with torch.no_grad():
            if call == "step":
                for t in range(x.shape[1]):
                    model(sequence[t])
            elif call == "static":
                model(sequence[0])
            else:
                model(sequence)
    finally:
        for h in hooks:
            h.remove()
    stack = (lambda s: np.concatenate(s)) if call == "sequence" else np.stack
    return {p: stack(s).swapaxes(0, 1).astype(np.uint8) for p, s in recorded.items()}


def assert_matches_peer(model, graph, x, call: str):
    expected = peer_spikes(model, x, call)
    traces = run_float(graph, x)
    for path, spikes in expected.items():
        name = "lif_" + path.replace(".", "_")
        assert np.array_equal(traces.spikes[name], spikes), name
    for node in graph.nodes:
        if isinstance(node, CubaLIF):
            gap = np.abs(traces.states[node.name]["v"] - np.asarray(node.threshold))
            assert gap.min() > MARGIN, f"{node.name}: a membrane within {MARGIN} of threshold"
    assert all(s.sum() > 0 for s in expected.values()), {p: int(s.sum()) for p, s in expected.items()}


def node_types(graph):
    return [type(n).__name__ for n in graph.nodes]


def randomize_batch_norm(model, seed: int):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


class TimeLoopNet(nn.Module):
    """snnTorch tutorial 5: explicit membranes, a loop over time in forward."""

    def __init__(self, static_input: bool):
        super().__init__()
        self.static_input = static_input
        self.fc1, self.lif1 = nn.Linear(12, 20), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(20, 5), snn.Leaky(beta=0.8, threshold=0.6)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(8 if self.static_input else x.shape[0]):
            cur1 = self.fc1(x if self.static_input else x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec), torch.stack(mem2_rec)


@pytest.mark.parametrize("static_input", [False, True])
def test_tutorial5_time_loop_module(static_input):
    torch.manual_seed(1)
    model = TimeLoopNet(static_input)
    if static_input:
        x = np.repeat(random_spikes(1, (3, 1, 12), 0.5), 8, axis=1)
        example = torch.as_tensor(x[:, 0], dtype=torch.float32)
    else:
        x = random_spikes(1, (3, 20, 12), 0.4)
        example = torch.as_tensor(x, dtype=torch.float32).transpose(0, 1)
    graph = trace_module(model, example)
    assert node_types(graph) == ["Input", "Dense", "CubaLIF", "Dense", "CubaLIF"]
    assert graph.outputs == ("lif_lif2",)
    if static_input:      # the model itself runs 8 steps on the same image
        expected = peer_spikes(model, x, "static")
        traces = run_float(graph, x)
        assert np.array_equal(traces.spikes["lif_lif2"], expected["lif2"])
        assert expected["lif2"].sum() > 0
    else:
        assert_matches_peer(model, graph, x, "loop")


def test_tutorial6_csnn_with_maxpool_of_spikes_is_an_or_unit_with_no_extra_delay():
    torch.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True))
    graph = trace_module(model, torch.zeros(2, 1, 14, 14))
    assert node_types(graph) == ["Input", "Conv2d", "CubaLIF", "SumPool2d", "CubaLIF", "Conv2d", "CubaLIF",
                                 "SumPool2d", "CubaLIF", "Flatten", "Dense", "CubaLIF"]
    unit = graph.node("maxpool_2")
    assert (unit.current_decay, unit.voltage_decay, unit.threshold, unit.reset) == (1.0, 0.5, 0.5, "zero")
    assert_matches_peer(model, graph, random_spikes(2, (2, 12, 1, 14, 14), 0.5), "step")


def test_conv_then_avgpool_keeps_the_chw_shape():
    """Was: RuntimeError 'Expected 3D ... got [1, 1728]' (Conv+AvgPool merged into a flat dense)."""
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.AvgPool2d(2), snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True),
        nn.Conv2d(4, 6, 3), nn.AvgPool2d(2), snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 5), snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    graph = trace_module(model, torch.zeros(1, 1, 14, 14))
    assert graph.node("lif_2").shape == (4, 6, 6) and graph.node("lif_5").shape == (6, 2, 2)
    assert_matches_peer(model, graph, random_spikes(3, (2, 12, 1, 14, 14), 0.5), "step")


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_init_hidden_sequential_with_synaptic_and_rleaky(reset):
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Linear(10, 16), snn.Synaptic(alpha=0.7, beta=0.85, threshold=0.6, init_hidden=True, reset_mechanism=reset),
        nn.Dropout(0.3), nn.Linear(16, 12),
        snn.RLeaky(beta=0.8, linear_features=12, init_hidden=True, reset_mechanism=reset),
        nn.Linear(12, 4), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, reset_mechanism=reset))
    graph = trace_module(model, torch.zeros(3, 10))
    assert node_types(graph) == ["Input", "Dense", "CubaLIF", "Dense", "Dense", "CubaLIF", "Dense", "CubaLIF"]
    assert_matches_peer(model, graph, random_spikes(4, (3, 25, 10), 0.4), "step")


class ResidualNet(nn.Module):
    """Conv (padding='same') + BatchNorm2d + Dropout, and a residual block whose shortcut current is
    summed with the main path into one neuron group."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(2, 4, 3, padding="same"), nn.BatchNorm2d(4)
        self.lif1, self.drop = snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True), nn.Dropout(0.5)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.shortcut = nn.Sequential(nn.Conv2d(2, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.lif2 = snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True)
        self.fc, self.lif3 = nn.Linear(4 * 6 * 6, 3), snn.Leaky(beta=0.9, threshold=0.4, init_hidden=True)

    def forward(self, x):
        spk1 = self.drop(self.lif1(self.bn1(self.conv1(x))))
        spk2 = self.lif2(self.bn2(self.conv2(spk1)) + self.shortcut(x))
        return self.lif3(self.fc(spk2.flatten(1)))


def test_residual_block_batchnorm_dropout_and_same_padding():
    torch.manual_seed(5)
    model = ResidualNet()
    randomize_batch_norm(model, 5)
    graph = trace_module(model, torch.zeros(2, 2, 6, 6))
    assert node_types(graph) == ["Input", "Conv2d", "CubaLIF", "Conv2d", "Conv2d", "CubaLIF", "Flatten", "Dense",
                                 "CubaLIF"]
    assert graph.node("lif_lif2").inputs == ("syn_lif2_0", "syn_lif2_1")
    assert graph.node("syn_lif1").padding == (1, 1)
    assert_matches_peer(model, graph, random_spikes(5, (2, 15, 2, 6, 6), 0.5), "step")


def spikingjelly_conv_net(node, step_mode: str):
    net = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1), layer.BatchNorm2d(4), node(), layer.MaxPool2d(2),
        layer.Conv2d(4, 6, 3, padding=1), layer.BatchNorm2d(6), node(), layer.MaxPool2d(2),
        layer.Flatten(), layer.Linear(6 * 2 * 2, 5), node())
    functional.set_step_mode(net, step_mode)
    return net


NODES = {"LIF hard": lambda: neuron.LIFNode(tau=2.0, v_threshold=0.5),
         "LIF soft": lambda: neuron.LIFNode(tau=3.0, v_threshold=0.5, v_reset=None),
         "LIF no decay_input": lambda: neuron.LIFNode(tau=2.5, decay_input=False, v_threshold=0.7),
         "IF soft": lambda: neuron.IFNode(v_threshold=0.8, v_reset=None),
         "PLIF": lambda: neuron.ParametricLIFNode(init_tau=2.5, v_threshold=0.4)}


@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("kind", list(NODES))
def test_spikingjelly_conv_bn_maxpool_single_and_multi_step(kind, step_mode):
    torch.manual_seed(6)
    model = spikingjelly_conv_net(NODES[kind], step_mode)
    randomize_batch_norm(model, 6)
    with torch.no_grad():
        model[9].weight.mul_(4.0)          # enough drive for the last layer to spike
    example = torch.zeros(2, 1, 2, 8, 8) if step_mode == "m" else torch.zeros(1, 2, 8, 8)
    graph = trace_module(model, example)
    assert all(n.comparison == "ge" for n in graph.nodes if isinstance(n, CubaLIF) and n.name.startswith("lif_"))
    x = random_spikes(6, (2, 12, 2, 8, 8), 0.5)
    assert_matches_peer(model, graph, x, "sequence" if step_mode == "m" else "step")


class SEWBlock(nn.Module):
    """SEW-ResNet basic block with ADD: out = sn2(bn2(conv2(sn1(bn1(conv1(x)))))) + x, x spikes."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                             nn.BatchNorm2d(channels))
        self.sn1 = neuron.IFNode(v_threshold=0.6, step_mode="m")
        self.conv2 = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                             nn.BatchNorm2d(channels))
        self.sn2 = neuron.IFNode(v_threshold=0.6, step_mode="m")

    def forward(self, x):
        return self.sn2(self.conv2(self.sn1(self.conv1(x)))) + x


def test_sew_resnet_spike_add_becomes_a_sum_of_synapses():
    torch.manual_seed(7)
    model = nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)),
        neuron.IFNode(v_threshold=0.6, step_mode="m"), SEWBlock(4),
        layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4)),
        neuron.IFNode(v_threshold=0.6, step_mode="m"))
    randomize_batch_norm(model, 7)
    graph = trace_module(model, torch.zeros(3, 2, 2, 7, 7))
    last = graph.node("lif_4")
    assert len(last.inputs) == 2 and {graph.node(s).source for s in last.inputs} == {"lif_1", "lif_2_sn2"}
    assert_matches_peer(model, graph, random_spikes(7, (2, 10, 2, 7, 7), 0.5), "sequence")


# --- refusals -----------------------------------------------------------------------------------------

class CurrentMaxPool(nn.Module):
    """snnTorch tutorial 6 as published: max-pooling of conv CURRENTS before the neuron."""

    def __init__(self):
        super().__init__()
        self.conv1, self.lif1 = nn.Conv2d(1, 4, 3), snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        return self.lif1(nn.functional.max_pool2d(self.conv1(x), 2))


class SpikeProduct(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2, self.lif2 = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        a = self.lif1(self.fc1(x))
        return self.lif2(self.fc2(a * x))


class MembraneAsValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True, output=True)
        self.fc2, self.lif2 = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        _spk, mem = self.lif1(self.fc1(x))
        return self.lif2(self.fc2(mem))


REFUSED = {
    "relu": (lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True)),
             (2, 4), "node '1' field 'type': limit a module with an exact spiking equivalent (an SNN passes "
             "information between layers as spikes; replace the activation by a spiking neuron (snnTorch Leaky, "
             "SpikingJelly LIFNode) and retrain), got ReLU"),
    "maxpool of currents": (CurrentMaxPool, (2, 1, 6, 6),
                            "node 'CurrentMaxPool' field 'MaxPool2d input': limit spikes of one neuron layer (a max "
                            "of 0/1 spikes is an OR; the max of real-valued currents is computed exactly by no "
                            "spiking unit: move MaxPool2d after the neuron layer, or use AvgPool2d), got a synaptic "
                            "current or a sum"),
    "spike product": (SpikeProduct, (2, 4), "node 'SpikeProduct' field 'mul': limit a spike tensor times a constant "
                      "(a product of two spike or current tensors, as in spiking self-attention, has no exact "
                      "synaptic equivalent), got a product of two traced tensors"),
    "membrane": (MembraneAsValue, (2, 4), "node 'lif1' field 'output': limit spikes (output 0 of a neuron module; "
                 "layers exchange only spikes), got its membrane/synaptic state used as an input"),
    "no neuron": (lambda: nn.Sequential(nn.Linear(4, 3)), (2, 4),
                  "node 'Sequential' field 'layers': limit at least one spiking neuron module (snntorch.Leaky, "
                  "snntorch.Synaptic, snntorch.RLeaky, snntorch.RSynaptic, spikingjelly.IFNode, spikingjelly.LIFNode, "
                  "spikingjelly.ParametricLIFNode, norse.LIFCell, norse.LIF, norse.LIFBoxCell, norse.IAFCell, norse.IAF, "
                  "norse.LSNNCell, norse.LSNN, norse.IzhikevichCell, norse.Izhikevich, norse.LICell, norse.LI, "
                  "norse.LIBoxCell), got none called"),
    "spikingjelly reset": (lambda: nn.Sequential(nn.Linear(4, 3), neuron.LIFNode(v_reset=-0.5)), (2, 4),
                           "node '1' field 'v_reset': limit 0.0 (hard reset to zero) or None (soft reset), got -0.5"),
    "snntorch alpha": (lambda: nn.Sequential(nn.Linear(4, 3), snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True)),
                       (2, 4), "node '1' field 'type': limit one of snntorch.Leaky, snntorch.Synaptic, "
                       "snntorch.RLeaky, snntorch.RSynaptic, spikingjelly.IFNode, spikingjelly.LIFNode, "
                       "spikingjelly.ParametricLIFNode, norse.LIFCell, norse.LIF, norse.LIFBoxCell, norse.IAFCell, norse.IAF, "
                       "norse.LSNNCell, norse.LSNN, norse.IzhikevichCell, norse.Izhikevich, norse.LICell, norse.LI, "
                       "norse.LIBoxCell, got snntorch.Alpha"),
}


def test_an_example_input_the_forward_rejects_is_a_typed_error():
    model = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(UnsupportedError, match=r"node 'Sequential' field 'example_input': limit a tensor the "
                       r"model's forward accepts .*, got \(2, 5\): RuntimeError: mat1 and mat2"):
        trace_module(model, torch.zeros(2, 5))


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_models_name_module_reason_and_hint(case):
    build, shape, message = REFUSED[case]
    with pytest.raises(UnsupportedError) as caught:
        trace_module(build(), torch.zeros(shape))
    assert str(caught.value) == message


# --- bundles: any traced model is saved as its graph (never code) ----------------------------------------

def test_bundle_of_a_custom_module_holds_the_traced_graph(tmp_path):
    torch.manual_seed(8)
    model = ResidualNet()
    randomize_batch_norm(model, 8)
    save_bundle(model, (2, 6, 6), tmp_path / "residual.pt", name="residual", dt_s=2e-3)
    raw = torch.load(tmp_path / "residual.pt", weights_only=True)
    assert sorted(raw) == ["graph", "snnc_torch_bundle"] and raw["snnc_torch_bundle"] == 2
    graph = load_bundle(tmp_path / "residual.pt")
    assert (graph.name, graph.dt_s) == ("residual", 2e-3)
    assert format_graph(graph) == format_graph(trace_module(model, torch.zeros(1, 2, 6, 6), dt_s=2e-3,
                                                            name="residual"))
    assert_matches_peer(model, graph, random_spikes(8, (2, 10, 2, 6, 6), 0.5), "step")
    with pytest.raises(ModelFileError, match="a version-2 bundle holds a traced graph, not modules"):
        load_bundle_module(tmp_path / "residual.pt")


def test_bundle_of_a_time_loop_module_needs_its_example_input(tmp_path):
    torch.manual_seed(9)
    model = TimeLoopNet(static_input=False)
    x = random_spikes(9, (3, 20, 12), 0.4)
    save_bundle(model, (12,), tmp_path / "loop.pt", example_input=torch.zeros(20, 3, 12))
    assert_matches_peer(model, load_bundle(tmp_path / "loop.pt"), x, "loop")


def test_whitelisted_sequentials_keep_bundle_version_1_and_conv_avgpool_now_loads(tmp_path):
    torch.manual_seed(10)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(2), snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True),
                          nn.Conv2d(4, 3, 3), snn.Leaky(beta=0.9, threshold=0.3, init_hidden=True))
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    save_bundle(model, (1, 10, 10), tmp_path / "seq.pt")
    assert torch.load(tmp_path / "seq.pt", weights_only=True)["snnc_torch_bundle"] == 1
    graph = load_bundle(tmp_path / "seq.pt")
    assert graph.node("lif_2").shape == (4, 4, 4)
    assert_matches_peer(model, graph, random_spikes(10, (2, 10, 1, 10, 10), 0.5), "step")


def test_same_padding_sequential_is_saved_as_a_graph(tmp_path):
    """Was: TypeError (the version-1 spec stored padding 'same' as ['s', 'a', 'm', 'e'])."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding="same"), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True))
    save_bundle(model, (2, 5, 5), tmp_path / "same.pt")
    assert torch.load(tmp_path / "same.pt", weights_only=True)["snnc_torch_bundle"] == 2
    assert_matches_peer(model, load_bundle(tmp_path / "same.pt"), random_spikes(11, (2, 8, 2, 5, 5), 0.6), "step")
