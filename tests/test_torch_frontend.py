"""snnTorch/PyTorch import: the float IR reproduces snnTorch spike for spike (both in float64)."""
from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from conftest import random_spikes
from snntorch_runner import run_snntorch
from snnc.errors import ModelFileError, UnsupportedError
from snnc.frontends.torch_bundle import load_bundle, load_bundle_module, save_bundle
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.printer import format_graph
from snnc.simulators.float_reference import run_float


def neuron(kind: str, reset: str, features: int):
    common = dict(beta=0.8, threshold=0.7, reset_mechanism=reset, init_hidden=True)
    if kind == "Synaptic":
        return snn.Synaptic(alpha=0.6, **common)
    if kind == "RLeaky":
        return snn.RLeaky(linear_features=features, **common)
    return snn.Leaky(**common)


def assert_same_spikes(model, graph, x):
    expected = run_snntorch(model, x)
    traces = run_float(graph, x)
    for path, spikes in expected.items():
        name = "lif_" + path.replace(".", "_")
        assert np.array_equal(traces.spikes[name], spikes), name
    assert sum(int(s.sum()) for s in expected.values()) > 0


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic", "RLeaky"])
def test_neuron_kinds_and_resets_match_snntorch(kind, reset):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(12, 20), neuron(kind, reset, 20), nn.Linear(20, 5),
                          snn.Leaky(beta=0.9, init_hidden=True, reset_mechanism=reset))
    assert_same_spikes(model, from_torch(model, (12,)), random_spikes(1, (3, 30, 12), 0.4))


def test_conv_pool_flatten_and_per_neuron_parameters_match_snntorch():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=1, padding=1), snn.Leaky(beta=0.85, threshold=0.5, init_hidden=True),
        nn.AvgPool2d(2), snn.Leaky(beta=torch.linspace(0.5, 0.95, 3), threshold=0.3, init_hidden=True),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 6), snn.Leaky(beta=0.9, threshold=torch.linspace(0.2, 0.8, 6),
                                                         init_hidden=True))
    graph = from_torch(model, (2, 6, 6))
    assert [type(n).__name__ for n in graph.nodes] == [
        "Input", "Conv2d", "CubaLIF", "SumPool2d", "CubaLIF", "Flatten", "Dense", "CubaLIF"]
    assert_same_spikes(model, graph, random_spikes(2, (2, 15, 2, 6, 6), 0.5))


def test_consecutive_linear_layers_compose_exactly():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 6),
                          snn.Leaky(beta=0.9, threshold=0.4, init_hidden=True))
    graph = from_torch(model, (8,))
    assert [type(n).__name__ for n in graph.nodes] == ["Input", "Dense", "CubaLIF"]
    assert_same_spikes(model, graph, random_spikes(3, (2, 20, 8), 0.5))


def test_golden_ir_text_of_imported_model():
    model = nn.Sequential(nn.Linear(3, 2, bias=False), snn.Synaptic(alpha=0.5, beta=0.75, init_hidden=True,
                                                                     reset_mechanism="zero"))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -0.25, 0.125], [1.0, 0.0, -0.75]]))
    assert format_graph(from_torch(model, (3,), name="tiny")) == (
        'snnc.ir v1 graph "tiny" timing=zero_latency dt_s=0.001\n'
        "  %input: Input<3> shape=(3,)\n"
        "  %syn_0: Dense<2> source=%input weight=f[2,3]{-0.75..1.0 #9f31f1de} "
        "bias=none delay_steps=0\n"
        "  %lif_1: CubaLIF<2> inputs=(%syn_0) shape=(2,) current_decay=0.5 voltage_decay=0.25 threshold=1.0 "
        "bias=0.0 reset='zero_next' comparison='gt'\n"
        "  outputs %lif_1\n")


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU()),
     "node '1' field 'type': limit one of nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Identity, "
     "nn.Dropout, snntorch.Leaky, snntorch.Synaptic, snntorch.RLeaky, snntorch.RSynaptic, got ReLU"),
    (nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True), nn.Linear(3, 2)),
     "node '2' field 'position': limit a spiking layer after every synapse, got output ends in a linear "
     "layer; end the model with a neuron layer"),
    (nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True, graded_spikes_factor=2.0)),
     "node '1' field 'graded_spikes_factor': limit 1.0, got 2.0"),
    (nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True, reset_delay=False)),
     "node '1' field 'reset_delay': a subtraction at the spike step itself is no snnc reset kind: retrain with "
     "reset_delay=True (snnTorch's default) or reset_mechanism='zero': limit True for reset_mechanism='subtract', "
     "got _base_sub, reset_delay=False"),
    (nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True), snn.Leaky(beta=0.5, init_hidden=True)),
     "node '2' field 'position': limit a synapse (Linear/Conv2d/AvgPool2d) before each neuron, got Leaky "
     "follows 'lif_1' directly"),
])
def test_unsupported_modules_are_named(model, message):
    with pytest.raises(UnsupportedError) as err:
        from_torch(model, (4,))
    assert str(err.value) == message


def test_bundle_round_trip_preserves_graph_text(tmp_path):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(5, 4), snn.RLeaky(beta=0.7, all_to_all=False, V=torch.rand(4),
                                                     init_hidden=True, reset_mechanism="zero"),
                          nn.Linear(4, 3), snn.Synaptic(alpha=0.4, beta=torch.rand(3), init_hidden=True))
    save_bundle(model, (5,), tmp_path / "m.pt", name="roundtrip")
    assert format_graph(load_bundle(tmp_path / "m.pt")) == format_graph(from_torch(model, (5,), name="roundtrip"))
    rebuilt, shape, _, _ = load_bundle_module(tmp_path / "m.pt")
    x = random_spikes(4, (2, 12, 5), 0.5)
    assert all(np.array_equal(a, b) for a, b in zip(run_snntorch(model, x).values(), run_snntorch(rebuilt, x).values()))


def test_pickled_module_is_refused_without_executing_it(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save(nn.Sequential(nn.Linear(2, 2)), path)
    with pytest.raises(ModelFileError, match=r"not loadable with weights_only=True: .*snnc never unpickles code"):
        load_bundle(path)


def test_state_dict_without_bundle_header_is_refused(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(ModelFileError, match="not an snnc torch bundle"):
        load_bundle(path)
