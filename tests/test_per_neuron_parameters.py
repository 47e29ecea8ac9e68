"""Per-neuron decays, thresholds and biases (issue 11 item 3) and '>=' ties from SpikingJelly (item 2).

The peer libraries' own models (snnTorch ``Leaky``/``Synaptic`` with learnable per-neuron tensors,
SpikingJelly ``ParametricLIFNode`` with one ``w`` per channel) become float IR that equals their forward
spike for spike; compiled for the Loihi targets each neuron keeps its own du and dv (``LoihiLIF`` holds
int arrays; Lava runs them as snnc's ``SnncLIF``, stock ``LIF`` declaring one du/dv per process), and the
emulator equals real Lava. Every test also shows that the per-neuron values matter (a run with one
shared value differs), so agreement is not vacuous.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import snntorch as snn
import torch
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from conftest import random_spikes
from lowered_networks import poisson
from snntorch_runner import run_snntorch
from snnc.compiler.pipeline import compile_graph
from snnc.errors import QuantizationError, UnsupportedError
from snnc.frontends.torch_frontend import from_torch
from snnc.frontends.torch_trace import trace_module
from snnc.ir.nodes import CubaLIF, LoihiLIF
from snnc.ir.serialize import graph_bytes, load_graph
from snnc.simulators.float_reference import run_float
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import first_divergence
from test_torch_trace import peer_spikes


def learnable_leaky(reset: str = "subtract") -> nn.Module:
    """snnTorch's learnable per-neuron beta and threshold (learn_beta/learn_threshold with tensors)."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(10, 8, bias=False),
                          snn.Leaky(beta=torch.linspace(0.55, 0.97, 8), threshold=torch.linspace(0.4, 1.1, 8),
                                    learn_beta=True, learn_threshold=True, reset_mechanism=reset, init_hidden=True))
    with torch.no_grad():
        model[0].weight.uniform_(-0.2, 0.6)
    return model


def learnable_synaptic() -> nn.Module:
    torch.manual_seed(12)
    model = nn.Sequential(nn.Linear(10, 6, bias=False),
                          snn.Synaptic(alpha=torch.linspace(0.3, 0.9, 6), beta=torch.linspace(0.9, 0.5, 6),
                                       threshold=0.8, learn_alpha=True, learn_beta=True, reset_mechanism="zero",
                                       init_hidden=True))
    with torch.no_grad():
        model[0].weight.uniform_(-0.1, 0.5)
    return model


def per_channel_conv() -> nn.Module:
    """Conv -> Leaky with one beta and one threshold per output channel (C, 1, 1)."""
    torch.manual_seed(13)
    beta = torch.tensor([0.5, 0.8, 0.95]).reshape(3, 1, 1)
    threshold = torch.tensor([0.6, 0.9, 0.45]).reshape(3, 1, 1)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), snn.Leaky(beta=beta, threshold=threshold, init_hidden=True))


def assert_same_as_snntorch(model, graph, x) -> None:
    expected = run_snntorch(model, x)
    traces = run_float(graph, x)
    for path, spikes in expected.items():
        assert np.array_equal(traces.spikes["lif_" + path.replace(".", "_")], spikes), path
    assert all(s.sum() > 0 for s in expected.values())


def lava_equals_emulator(graph, x):
    from snnc.backends.lava_loihi2.run import run_lava
    expected = run_loihi(graph, x)
    divergence = first_divergence(expected, run_lava(graph, x))
    assert divergence is None, str(divergence)
    return expected


def with_shared_decays(graph):
    """Every LoihiLIF with its first neuron's du and dv for all neurons (the run per-neuron values change)."""
    def first(value):
        return int(np.asarray(value).reshape(-1)[0])
    return graph.replace_nodes([dataclasses.replace(n, du=first(n.du), dv=first(n.dv)) if isinstance(n, LoihiLIF)
                                else n for n in graph.nodes])


def lif_node(graph) -> LoihiLIF:
    (node,) = [n for n in graph.nodes if isinstance(n, LoihiLIF)]
    return node


# ------------------------------------------------------------------------------ float IR == peer forward

@pytest.mark.parametrize("make", [learnable_leaky, learnable_synaptic, per_channel_conv], ids=lambda f: f.__name__)
def test_per_neuron_snntorch_models_match_snntorch(make):
    model = make()
    shape = (2, 5, 5) if make is per_channel_conv else (10,)
    graph = from_torch(model, shape)
    assert_same_as_snntorch(model, graph, random_spikes(3, (2, 30, *shape), 0.4))


def test_plif_has_one_w_per_layer_and_a_per_channel_w_maps_to_per_neuron_decays():
    """SpikingJelly's ParametricLIFNode learns one scalar w; a per-channel w (C, 1, 1) (decay_input=False)
    broadcasts in its forward and becomes one voltage decay per neuron."""
    assert sj_neuron.ParametricLIFNode().w.numel() == 1
    torch.manual_seed(14)
    plif = sj_neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.5, decay_input=False)
    plif.w = nn.Parameter(torch.tensor([-1.0, 0.3, 2.0]).reshape(3, 1, 1))
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), plif)
    x = random_spikes(4, (2, 25, 2, 5, 5), 0.4)
    graph = trace_module(model, torch.zeros(1, 2, 5, 5))
    (lif,) = [n for n in graph.nodes if isinstance(n, CubaLIF)]
    assert np.unique(lif.voltage_decay).size == 3 and lif.comparison == "ge"
    expected = peer_spikes(model, x, "step")
    assert np.array_equal(run_float(graph, x).spikes[lif.name], expected["1"]) and expected["1"].sum() > 0


def per_channel_plif_net(decay_input: bool) -> nn.Module:
    """Conv -> PLIF (one w per channel) -> AvgPool -> Flatten -> Linear -> PLIF (one w per neuron)."""
    torch.manual_seed(17)
    first = sj_neuron.ParametricLIFNode(v_threshold=0.5, decay_input=decay_input)
    first.w = nn.Parameter(torch.tensor([-1.0, 0.3, 2.0]).reshape(3, 1, 1))
    second = sj_neuron.ParametricLIFNode(v_threshold=0.4, decay_input=decay_input, v_reset=None)
    second.w = nn.Parameter(torch.linspace(-1.5, 1.5, 4))
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), first, nn.AvgPool2d(2), nn.Flatten(), nn.Linear(12, 4),
                          second)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[4].weight.mul_(3.0)
    return model


def pooled_plif_net() -> nn.Module:
    """Conv -> IF -> AvgPool -> PLIF with one w per channel: the pooling is the PLIF's synapse."""
    torch.manual_seed(19)
    plif = sj_neuron.ParametricLIFNode(v_threshold=0.3)
    plif.w = nn.Parameter(torch.tensor([-1.0, 0.5, 2.0]).reshape(3, 1, 1))
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), sj_neuron.IFNode(v_threshold=0.5), nn.AvgPool2d(2), plif)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
    return model


@pytest.mark.parametrize("make", [lambda: per_channel_plif_net(True), lambda: per_channel_plif_net(False),
                                  pooled_plif_net], ids=["decay_input", "no_decay_input", "pooled"])
def test_per_channel_plif_with_scaled_input_and_soft_reset_matches_spikingjelly(make):
    """decay_input=True scales each neuron's input by its own leak: conv output channels, Dense rows, and
    a pooling, which becomes a depthwise convolution with one scale per channel."""
    model = make()
    x = random_spikes(18, (2, 30, 2, 4, 4), 0.5)
    graph = trace_module(model, torch.zeros(1, 2, 4, 4))
    expected = peer_spikes(model, x, "step")
    traces = run_float(graph, x)
    for path, spikes in expected.items():
        assert np.array_equal(traces.spikes["lif_" + path], spikes), path
        assert spikes.sum() > 0, path


# ------------------------------------------------------------------------------ lowering

def test_each_neuron_keeps_its_own_quantized_decays():
    graph = from_torch(learnable_synaptic(), (10,))
    for target in ("emulator", "loihi2"):
        result = compile_graph(graph, target)
        node = lif_node(result.graph)
        alpha, beta = np.linspace(0.3, 0.9, 6), np.linspace(0.9, 0.5, 6)
        assert node.du.tolist() == [int(np.floor((1 - a) * 4096 + 0.5)) - 1 for a in alpha]
        assert node.dv.tolist() == [int(np.floor((1 - b) * 4096 + 0.5)) for b in beta]
        layer = result.reports["lower_loihi"]["layers"][node.name]
        assert layer["du"] == node.du.tolist() and abs(layer["voltage_decay_error"]) <= 0.5 / 4096
        assert result.reports["lower_loihi"]["snnc_processes"] == {
            node.name: "SnncLIF (reset zero_next, comparison gt, per-neuron du/dv: 6 distinct pairs)"}


def test_uniform_decays_stay_scalar_and_stock():
    model = learnable_leaky("zero")
    with torch.no_grad():
        model[1].beta.fill_(0.9)
    node = lif_node(compile_graph(from_torch(model, (10,)), "loihi2").graph)
    assert (node.du, node.dv) == (4095, 410)
    assert "snnc_processes" not in compile_graph(from_torch(model, (10,)), "loihi2").reports["lower_loihi"]


def test_per_neuron_decays_round_trip_through_snnc_files():
    lowered = compile_graph(from_torch(learnable_synaptic(), (10,)), "emulator").graph
    loaded = load_graph("per_neuron.snnc", graph_bytes(lowered))
    assert lif_node(loaded).du.tolist() == lif_node(lowered).du.tolist()
    x = poisson(np.random.default_rng(5), 1, 20, (10,), 0.4)
    assert first_divergence(run_loihi(lowered, x), run_loihi(loaded, x)) is None


def test_conv_thresholds_that_differ_within_a_channel_are_refused():
    model = per_channel_conv()
    graph = from_torch(model, (2, 5, 5))
    (lif,) = [n for n in graph.nodes if isinstance(n, CubaLIF)]
    threshold = np.broadcast_to(np.asarray(lif.threshold), lif.shape).copy()
    threshold[0, 0, 0] = 0.7
    graph = graph.replace_nodes([dataclasses.replace(n, threshold=threshold) if n is lif else n for n in graph.nodes])
    with pytest.raises(QuantizationError) as info:
        compile_graph(graph, "emulator")
    assert "one threshold per output channel" in str(info.value) and "differ within a channel" in str(info.value)


@pytest.mark.parametrize("make", [learnable_leaky, learnable_synaptic, per_channel_conv], ids=lambda f: f.__name__)
def test_emulator_engines_agree_and_per_neuron_values_matter(make):
    shape = (2, 5, 5) if make is per_channel_conv else (10,)
    lowered = compile_graph(from_torch(make(), shape), "emulator").graph
    x = poisson(np.random.default_rng(6), 2, 30, shape, 0.4)
    step = run_loihi(lowered, x, engine="step")
    assert first_divergence(step, run_loihi(lowered, x, engine="layerwise")) is None
    assert first_divergence(step, run_loihi(with_shared_decays(lowered), x)) is not None


def test_qat_forward_with_per_neuron_decays_equals_the_compiled_emulator():
    from snnc.simulators.aligned import run_on_ir_grid
    from snnc.training.qat import QatNetwork, predict
    network = QatNetwork.from_model(learnable_leaky("zero"), (10,))
    x = poisson(np.random.default_rng(26), 2, 20, (10,), 0.4)
    spikes, _ = predict(network, x)
    emulated = run_on_ir_grid(compile_graph(network.to_graph(), "loihi2").graph, x)
    assert np.array_equal(emulated.spikes["lif_1"], spikes) and spikes.sum() > 0


# ------------------------------------------------------------------------------ real Lava

@pytest.mark.lava
@pytest.mark.parametrize("make", [learnable_leaky, learnable_synaptic, per_channel_conv], ids=lambda f: f.__name__)
def test_lava_equals_emulator_with_per_neuron_decays(make):
    pytest.importorskip("lava.magma.core.run_configs")
    shape = (2, 5, 5) if make is per_channel_conv else (10,)
    lowered = compile_graph(from_torch(make(), shape), "loihi2").graph
    assert np.ndim(lif_node(lowered).dv) == 1
    traces = lava_equals_emulator(lowered, poisson(np.random.default_rng(7), 1, 25, shape, 0.4))
    assert traces.spikes[lif_node(lowered).name].sum() > 0


# ------------------------------------------------------------------------------ '>=' ties (item 2)

def test_spikingjelly_if_ties_fire_exactly_as_spikingjelly():
    """Weights 0.25 and 0.5 and threshold 1.0: v lands exactly on the threshold often (binary fractions are
    exact in float32 and float64); SpikingJelly fires there and so does the float IR ('ge'), while a '>' run
    would not."""
    torch.manual_seed(15)
    model = nn.Sequential(nn.Linear(6, 4, bias=False), sj_neuron.IFNode(v_threshold=1.0))
    with torch.no_grad():
        model[0].weight.copy_(0.25 * torch.randint(0, 3, (4, 6)).float())
    x = random_spikes(8, (2, 40, 6), 0.5)
    graph = trace_module(model, torch.zeros(1, 6))
    (lif,) = [n for n in graph.nodes if isinstance(n, CubaLIF)]
    ours = run_float(graph, x)
    assert np.array_equal(ours.spikes[lif.name], peer_spikes(model, x, "step")["1"])
    # '>' and '>=' differ only where v equals the threshold exactly: the runs differ, so ties happened
    gt = graph.replace_nodes([dataclasses.replace(n, comparison="gt") if n is lif else n for n in graph.nodes])
    assert np.any(run_float(gt, x).spikes[lif.name] != ours.spikes[lif.name])


@pytest.mark.lava
def test_spikingjelly_if_compiles_with_ge_for_loihi_and_lava_equals_emulator():
    """The '>=' of a SpikingJelly model reaches loihi2 as SnncLIF's integer test (v >= vth << 6); integer
    ties against Lava are in test_loihi_resets (the lowering's vth of 64225 here turns the float ties of
    0.25-weights into near-misses: 8-bit weights are rounded, so float ties survive only where w * vth is
    an exact weight word)."""
    pytest.importorskip("lava.magma.core.run_configs")
    torch.manual_seed(16)
    model = nn.Sequential(nn.Linear(6, 4, bias=False), sj_neuron.IFNode(v_threshold=1.0))
    with torch.no_grad():
        model[0].weight.copy_(0.25 * torch.randint(0, 3, (4, 6)).float())
    result = compile_graph(trace_module(model, torch.zeros(1, 6)), "loihi2")
    node = lif_node(result.graph)
    assert (node.comparison, node.du, node.dv) == ("ge", 4095, 0)
    assert result.reports["lower_loihi"]["snnc_processes"] == {node.name: "SnncLIF (reset zero, comparison ge)"}
    x = poisson(np.random.default_rng(9), 1, 40, (6,), 0.5)
    assert lava_equals_emulator(result.graph, x).spikes[node.name].sum() > 0


# ------------------------------------------------------------------------------ SpiNNaker

def spinnaker_graph(comparison: str = "ge", per_neuron_decays: bool = False):
    """Per-neuron thresholds and biases (v_thresh and i_offset arrays), '>=' or '>'; optionally per-neuron
    voltage and current decays (tau_m and tau_syn arrays), the last neuron without current memory."""
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import Dense, Input
    rng = np.random.default_rng(21)
    decays = (np.linspace(0.3, 1.0, 8), np.linspace(0.1, 0.3, 8)) if per_neuron_decays else (1.0, 0.15)
    nodes = (Input("in", (10,)), Dense("ia", "in", rng.normal(0.25, 0.5, (8, 10))),
             CubaLIF("a", ("ia",), (8,), *decays, np.linspace(0.6, 1.4, 8), bias=np.linspace(-0.02, 0.05, 8),
                     reset="zero", comparison=comparison))
    return Graph(nodes, outputs=("a",))


def test_spinnaker_maps_per_neuron_parameters_as_arrays():
    population = compile_graph(spinnaker_graph(), "spinnaker").graph.node("a")
    assert np.unique(population.v_thresh).size == 8 and np.unique(population.i_offset).size == 8
    assert np.ndim(population.tau_m) == 0
    result = compile_graph(spinnaker_graph(per_neuron_decays=True), "spinnaker")
    population = result.graph.node("a")
    assert np.unique(population.tau_m).size == 8 and np.unique(population.tau_syn_e).size == 8
    assert population.tau_syn_e[-1] == 3072          # no current memory: the chip's decay is exactly 0
    layer = result.reports["lower_spinnaker"]["layers"]["a"]
    assert len(layer["tau_m_ms"]) == 8 and abs(layer["voltage_decay_error"]) < 1e-3


def test_spinnaker_per_neuron_taus_change_the_run():
    lowered = compile_graph(spinnaker_graph(per_neuron_decays=True), "spinnaker").graph
    x = random_spikes(23, (2, 40, 10), rate=0.35)
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    shared = lowered.replace_nodes([dataclasses.replace(n, tau_m=int(n.tau_m[0]), cm=int(n.cm[0]))
                                    if n.name == "a" else n for n in lowered.nodes])
    assert first_divergence(run_spinnaker(lowered, x), run_spinnaker(shared, x)) is not None


@pytest.mark.parametrize("comparison,per_neuron_decays", [("ge", False), ("gt", False), ("ge", True)])
def test_spinnaker_emulator_equals_nest_with_per_neuron_parameters(comparison, per_neuron_decays):
    pytest.importorskip("pyNN.nest")
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    lowered = compile_graph(spinnaker_graph(comparison, per_neuron_decays), "spinnaker").graph
    x = random_spikes(22, (2, 40, 10), rate=0.35)
    emulated = run_spinnaker(lowered, x)
    agreement = compare_with_nest(lowered, emulated, run_nest(lowered, x))
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    assert all(p.identical_fraction > 0.99 for p in agreement), "\n".join(p.line() for p in agreement)
    assert emulated.spikes["a"].sum() > 20


def test_spinnaker_emulator_follows_the_float_model_with_per_neuron_decays():
    """Quantized taus and weights flip a few near-threshold spikes; the rest agree slot for slot."""
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    graph = spinnaker_graph(per_neuron_decays=True)
    lowered = compile_graph(graph, "spinnaker").graph
    x = random_spikes(24, (2, 40, 10), rate=0.35)
    lag = dict(lowered.latency_steps)["a"]
    padded = np.concatenate([x, np.zeros((2, lag, 10), np.uint8)], axis=1)
    ours = run_spinnaker(lowered, padded).spikes["a"][:, lag:]
    assert np.mean(ours == run_float(graph, x).spikes["a"]) > 0.97


# ------------------------------------------------------------------------------ files and summaries

@pytest.mark.parametrize("suffix", [".nir", ".onnx"])
def test_per_neuron_parameters_survive_nir_and_onnx_export(tmp_path, suffix):
    from snnc.frontends.loader import load_model
    from snnc.frontends.nir_export import save_nir
    from snnc.frontends.onnx_export import save_onnx
    graph = from_torch(learnable_synaptic(), (10,))
    path = tmp_path / f"model{suffix}"
    (save_nir if suffix == ".nir" else save_onnx)(graph, path)
    x = random_spikes(25, (2, 25, 10), 0.4)
    loaded = load_model(path)
    (lif,) = [n for n in loaded.nodes if isinstance(n, CubaLIF)]
    assert np.unique(lif.current_decay).size == 6 and np.unique(lif.voltage_decay).size == 6
    # NIR stores time constants (tau = dt / decay): decays come back within rounding, spikes unchanged
    np.testing.assert_allclose(lif.voltage_decay, graph.node(lif.name).voltage_decay, rtol=1e-12)
    expected = run_float(graph, x).spikes[lif.name]
    assert np.array_equal(run_float(loaded, x).spikes[lif.name], expected) and expected.sum() > 0


def test_compile_summaries_print_per_neuron_decays():
    from snnc.backends.lava_loihi2.report import lowering_lines
    from snnc.backends.spinnaker.commands import report_lines
    loihi = compile_graph(from_torch(learnable_leaky("zero"), (10,)), "loihi2")
    lines = lowering_lines({"passes": loihi.reports})
    assert lines[1].split()[2:4] == ["4095", "123..1843"]
    assert lines[-1] == "    lif_1: SnncLIF (reset zero, comparison gt, per-neuron du/dv: 8 distinct pairs)"
    spinnaker = compile_graph(spinnaker_graph(per_neuron_decays=True), "spinnaker")
    (row,) = [line for line in report_lines({"passes": spinnaker.reports}) if line.startswith("a ")]
    assert row.split()[2:4] == ["per-n", "per-n"]


# ------------------------------------------------------------------------------ longer sweeps

def with_random_per_neuron_decays(graph, seed: int):
    """Every LoihiLIF with one random du and dv per neuron (each group mixing strong and weak decays)."""
    rng = np.random.default_rng(seed)
    return graph.replace_nodes([dataclasses.replace(n, du=rng.integers(0, 4096, int(np.prod(n.shape))),
                                                    dv=rng.integers(0, 4096, int(np.prod(n.shape))))
                                if isinstance(n, LoihiLIF) else n for n in graph.nodes])


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("seed", range(30, 34))
@pytest.mark.parametrize("reset", ["zero", "zero_next", "subtract", "none"])
@pytest.mark.parametrize("comparison", ["gt", "ge"])
def test_lava_equals_emulator_with_random_per_neuron_decays_sweep(reset, comparison, seed):
    pytest.importorskip("lava.magma.core.run_configs")
    from lowered_networks import conv_network, mixed_sign_network
    for make in (mixed_sign_network, conv_network):
        graph, x = make(seed=seed)
        graph = with_random_per_neuron_decays(graph, seed)
        graph = graph.replace_nodes([dataclasses.replace(n, reset=reset, comparison=comparison)
                                     if isinstance(n, LoihiLIF) else n for n in graph.nodes])
        step = lava_equals_emulator(graph, x[:1])
        assert first_divergence(step, run_loihi(graph, x[:1], engine="layerwise")) is None


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(40, 44))
def test_spinnaker_emulator_equals_nest_with_random_per_neuron_parameters_sweep(seed):
    pytest.importorskip("pyNN.nest")
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import Dense, Input
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    rng = np.random.default_rng(seed)
    nodes = (Input("in", (12,)), Dense("ia", "in", rng.normal(0.2, 0.5, (16, 12))),
             CubaLIF("a", ("ia",), (16,), rng.uniform(0.2, 1.0, 16), rng.uniform(0.05, 0.5, 16),
                     rng.uniform(0.5, 1.5, 16), bias=rng.uniform(-0.02, 0.05, 16), reset="zero",
                     comparison=("gt", "ge")[seed % 2]),
             Dense("ab", "a", rng.normal(0.15, 0.5, (6, 16))),
             CubaLIF("b", ("ab",), (6,), rng.uniform(0.2, 1.0, 6), rng.uniform(0.05, 0.5, 6),
                     rng.uniform(0.5, 1.2, 6), reset="zero"))
    lowered = compile_graph(Graph(nodes, outputs=("b",)), "spinnaker").graph
    x = random_spikes(seed, (3, 60, 12), rate=0.35)
    emulated = run_spinnaker(lowered, x)
    agreement = compare_with_nest(lowered, emulated, run_nest(lowered, x))
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    assert emulated.spikes["b"].sum() > 0


def test_netx_export_refuses_per_neuron_decays_by_name(tmp_path):
    from snnc.frontends.lava_dl_net import save_net
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import Input, LoihiDense
    rng = np.random.default_rng(27)
    lowered = Graph((Input("x", (10,)), LoihiDense("d", "x", 2 * rng.integers(-60, 60, (8, 10)), weight_exp=0),
                     LoihiLIF("lif_1", ("d",), (8,), du=4095, dv=np.arange(100, 900, 100), vth=300)), ("lif_1",),
                    timing="hop_latency")
    with pytest.raises(UnsupportedError) as info:
        save_net(lowered, tmp_path / "x.net")
    assert str(info.value) == (
        "node 'lif_1' field 'dv': run the compiled folder with snnc (its Lava backend takes per-neuron decays), or "
        "train one decay per layer: limit one "
        "value per layer (netx's CUBA neuron has scalar iDecay and vDecay), got 8 distinct values")


@pytest.mark.slow
def test_virtual_board_writes_per_neuron_taus_thresholds_and_offsets(tmp_path):
    """sPyNNaker maps the per-neuron population and writes every neuron's own words (tau_m, tau_syn,
    v_thresh, i_offset, ...) exactly as lowered."""
    pytest.importorskip("spynnaker")
    from snnc.arith import spinnaker as sq
    from snnc.backends.spinnaker.mapping import predicted_neuron_words, read_neuron_words
    from snnc.backends.spinnaker.network import start_voltage
    from snnc.backends.spinnaker.spynnaker_run import run_spynnaker
    lowered = compile_graph(spinnaker_graph(per_neuron_decays=True), "spinnaker").graph
    _, run_dir = run_spynnaker(lowered, random_spikes(1, (1, 5, 10)), tmp_path)
    node = lowered.node("a")
    v_start = sq.encode_s1615(start_voltage(node, for_nest=False))
    (((lo, hi), words),) = read_neuron_words(run_dir, node.name)
    predicted = predicted_neuron_words(node, v_start, lo, hi, sq.ONE)
    for field, values in predicted.items():
        np.testing.assert_array_equal(words[field], values, err_msg=field)
    assert np.unique(words["tau_m"]).size == 8 and np.unique(words["tau_syn_e"]).size == 8
