"""Loihi LIF reset kinds (zero, zero_next, subtract, none) and the '>=' test on the loihi2 and emulator targets.

The lowered ``LoihiLIF`` carries the float node's reset and comparison; both emulator engines compute them
bit for bit alike, and real Lava runs them through snnc's ``SnncLIF`` process (stock ``LIF`` for zero/'>'),
spike-, u- and v-exact. Each test also shows that the variant changes the result, so agreement is not
vacuous. snnTorch models with their own resets compile for both targets and their emulator run equals Lava.
"""
from __future__ import annotations

import dataclasses
import pathlib
import tempfile

import numpy as np
import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.compiler.pipeline import compile_graph
from snnc.errors import QuantizationError
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import Comparison, CubaLIF, Dense, Input, LoihiDense, LoihiLIF, ResetKind
from snnc.ir.printer import format_graph
from snnc.ir.serialize import graph_bytes, load_graph
from snnc.lowering.warmup import warmup_voltage
from snnc.neurons import model_of
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import TARGETS
from lowered_networks import mixed_sign_network, poisson

RESETS = [k.value for k in ResetKind]
COMPARISONS = [c.value for c in Comparison]
VARIANTS = [(r, c) for r in RESETS for c in COMPARISONS]


def tie_network(seed: int) -> tuple[Graph, np.ndarray]:
    """8 -> 6 excitatory weights in {0, 2, 4, 6}, vth 4, du 4095 and dv 4095 (u and v forget almost
    everything each step): v lands exactly on vth << 6 whenever the active weights sum to 4, so '>=' and
    '>' differ often; a small bias keeps v moving between inputs."""
    rng = np.random.default_rng(seed)
    nodes = [Input("x", (8,)),
             LoihiDense("d", "x", 2 * rng.integers(0, 4, (6, 8)), weight_exp=0, sign_mode="excitatory"),
             LoihiLIF("n", ("d",), (6,), du=4095, dv=4095, vth=4, bias_mant=rng.integers(0, 3, 6))]
    return Graph(tuple(nodes), ("n",), timing="hop_latency"), poisson(rng, 2, 40, (8,), 0.3)


def variant(graph: Graph, reset: str, comparison: str) -> Graph:
    """Every LoihiLIF of ``graph`` with the given reset kind and comparison."""
    nodes = [dataclasses.replace(n, reset=ResetKind(reset), comparison=Comparison(comparison))
             if isinstance(n, LoihiLIF) else n for n in graph.nodes]
    return graph.replace_nodes(nodes)


def total_spikes(traces) -> int:
    return sum(int(s.sum()) for s in traces.spikes.values())


# ------------------------------------------------------------------------------ IR, files, targets

def test_default_fields_stay_out_of_files_and_text_and_others_round_trip():
    graph, _ = tie_network(0)
    assert "reset" not in format_graph(graph) and "comparison" not in format_graph(graph)
    changed = variant(graph, "subtract", "ge")
    assert "reset='subtract' comparison='ge'" in format_graph(changed)
    assert graph_bytes(variant(graph, "zero", "gt")) == graph_bytes(graph)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "g.snnc"
        path.write_bytes(graph_bytes(changed))
        loaded = load_graph(path).node("n")
    assert (loaded.reset, loaded.comparison) == ("subtract", "ge")


@pytest.mark.parametrize("target", ["loihi2", "emulator"])
@pytest.mark.parametrize("reset,comparison", VARIANTS)
def test_loihi_targets_accept_every_reset_and_comparison(target, reset, comparison):
    graph = Graph((Input("x", (3,)), Dense("d", "x", np.full((2, 3), 0.4)),
                   CubaLIF("n", ("d",), (2,), 1.0, 0.1, 1.0, reset=ResetKind(reset),
                           comparison=Comparison(comparison))), ("n",))
    assert TARGETS[target].spec.semantic_violations(graph) == []
    lowered = compile_graph(graph, target).graph.node("n")
    assert (lowered.reset, lowered.comparison) == (reset, comparison)


def test_lava_process_is_stock_only_for_zero_reset_and_gt():
    node = LoihiLIF("n", ("d",), (2,), du=1, dv=2, vth=3)
    assert model_of(node).lava_process(node).stock
    for reset, comparison in VARIANTS[1:]:
        process = model_of(node).lava_process(variant_node(node, reset, comparison))
        assert not process.stock and process.name == "SnncLIF"
        assert (process.parameters["reset"], process.parameters["comparison"]) == (reset, comparison)


def variant_node(node, reset, comparison):
    return dataclasses.replace(node, reset=ResetKind(reset), comparison=Comparison(comparison))


def test_warmup_refuses_a_state_on_the_threshold_only_for_ge():
    # bias 64 (vth 1 << 6 = 64) with no leak: one input-free update from 0 lands exactly on the threshold.
    bias = np.array([64])
    assert warmup_voltage("n", bias, 0, 1, 64, 1, "test", "gt").tolist() == [0]
    with pytest.raises(QuantizationError, match="node 'n' field 'v_init'"):
        warmup_voltage("n", bias, 0, 1, 64, 1, "test", "ge")


# ------------------------------------------------------------------------------ emulator engines

@settings(max_examples=60, deadline=None)
@given(reset=st.sampled_from(RESETS), ge=st.booleans(), vth=st.integers(0, 300), seed=st.integers(0, 2 ** 31))
def test_compiled_scan_equals_numpy_lif_step_for_every_variant(reset, ge, vth, seed):
    """Per-neuron du and dv (one value each per neuron) in both engines."""
    rng = np.random.default_rng(seed)
    batch, steps, size = 2, 25, 5
    du, dv = rng.integers(0, 4096, size), rng.integers(0, 4096, size)
    activation = rng.integers(-3 * vth - 40, 3 * vth + 40, (batch, steps, size)).astype(np.int64)
    bias = rng.integers(-2000, 2000, size).astype(np.int64)
    v_init = rng.integers(-5000, 5000, size).astype(np.int64)
    spikes = np.zeros((batch, steps, size), np.uint8)
    u_out, v_out = np.zeros((batch, steps, size), np.int64), np.zeros((batch, steps, size), np.int64)
    loihi_kernels.lif_scan(activation, du, dv, bias, vth, v_init, spikes, u_out, v_out, True,
                           loihi_kernels.RESET_CODES[reset], ge)
    u, v = np.zeros((batch, size), np.int64), np.broadcast_to(v_init, (batch, size)).copy()
    fired = np.zeros((batch, size), bool)
    for t in range(steps):
        u, v, fired = lq.lif_step(u, v, activation[:, t], du, dv, bias, vth, reset, "ge" if ge else "gt", fired)
        assert np.array_equal(spikes[:, t], fired) and np.array_equal(u_out[:, t], u) and \
            np.array_equal(v_out[:, t], v), t


@pytest.mark.parametrize("reset,comparison", VARIANTS)
@pytest.mark.parametrize("make", [mixed_sign_network, tie_network], ids=lambda f: f.__name__)
def test_step_and_layerwise_engines_agree(make, reset, comparison):
    graph, x = make(seed=3)
    graph = variant(graph, reset, comparison)
    step, layerwise = run_loihi(graph, x, engine="step"), run_loihi(graph, x, engine="layerwise")
    assert first_divergence(step, layerwise) is None
    assert total_spikes(step) > 0


def test_float_semantics_of_each_reset_in_integers():
    """One neuron, constant drive 100 (a << 6 = 6400), vth 100 (6400), no leak in u's input: the integer
    traces spell out each reset's definition."""
    node = LoihiLIF("n", ("d",), (1,), du=4095, dv=4095, vth=100)
    graph = Graph((Input("x", (1,)), LoihiDense("d", "x", np.array([[200]]), weight_exp=0, sign_mode="excitatory"),
                   node), ("n",), timing="hop_latency")
    x = np.ones((1, 6, 1), np.uint8)
    v = {k: run_loihi(variant(graph, k, "ge"), x).states["n"]["v"][0, :, 0].tolist() for k in RESETS}
    s = {k: run_loihi(variant(graph, k, "ge"), x).spikes["n"][0, :, 0].tolist() for k in RESETS}
    # input arrives from hop step 1: v = 12800 + rtz(v * 1 / 4096)
    assert v["zero"] == [0, 0, 0, 0, 0, 0] and s["zero"] == [0, 1, 1, 1, 1, 1]
    assert v["none"] == [0, 12800, 12803, 12803, 12803, 12803] and s["none"] == [0, 1, 1, 1, 1, 1]
    assert v["subtract"] == [0, 12800, 6403, 6401, 6401, 6401] and s["subtract"] == [0, 1, 1, 1, 1, 1]
    assert v["zero_next"] == [0, 12800, 0, 12800, 0, 12800] and s["zero_next"] == [0, 1, 0, 1, 0, 1]


# ------------------------------------------------------------------------------ real Lava

lava = pytest.importorskip("lava.magma.core.run_configs")


def assert_lava_equals_emulator(graph: Graph, x):
    from snnc.backends.lava_loihi2.run import run_lava
    expected = run_loihi(graph, x)
    divergence = first_divergence(expected, run_lava(graph, x))
    assert divergence is None, str(divergence)
    return expected


@pytest.mark.lava
@pytest.mark.parametrize("reset,comparison", VARIANTS[1:])
def test_lava_equals_emulator_on_ties(reset, comparison):
    graph, x = tie_network(seed=5)
    x = x[:1]
    traces = assert_lava_equals_emulator(variant(graph, reset, comparison), x)
    baseline = run_loihi(graph, x)
    assert total_spikes(traces) > 0
    assert first_divergence(traces, baseline) is not None, "the variant did not change the run"


@pytest.mark.lava
@pytest.mark.parametrize("reset", ["subtract", "zero_next"])
def test_lava_equals_emulator_with_bias_exponents_and_saturation(reset):
    graph, x = mixed_sign_network(seed=1)
    traces = assert_lava_equals_emulator(variant(graph, reset, "ge"), x[:1])
    assert traces.spikes["n1"].sum() > 0 and traces.spikes["n2"].sum() > 0


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("seed", range(20, 26))
@pytest.mark.parametrize("reset,comparison", VARIANTS)
def test_lava_equals_emulator_sweep(reset, comparison, seed):
    for make in (mixed_sign_network, tie_network):
        graph, x = make(seed=seed)
        assert_lava_equals_emulator(variant(graph, reset, comparison), x[:1])


# ------------------------------------------------------------------------------ snnTorch models

def snntorch_model(kind: str, reset: str) -> nn.Module:
    torch.manual_seed(7)
    common = dict(beta=0.9, reset_mechanism=reset, init_hidden=True)
    cell = snn.Synaptic(alpha=0.7, **common) if kind == "Synaptic" else snn.Leaky(**common)
    model = nn.Sequential(nn.Linear(10, 8, bias=False), cell)
    with torch.no_grad():
        model[0].weight.uniform_(-0.2, 0.6)
    return model


@pytest.mark.lava
@pytest.mark.parametrize("kind,reset,expected", [
    ("Leaky", "subtract", "subtract"), ("Leaky", "zero", "zero"), ("Leaky", "none", "none"),
    ("Synaptic", "zero", "zero_next"), ("Synaptic", "subtract", "subtract")])
def test_snntorch_neurons_compile_for_loihi_and_lava_equals_emulator(kind, reset, expected):
    graph = from_torch(snntorch_model(kind, reset), (10,))
    x = poisson(np.random.default_rng(2), 1, 30, (10,), 0.4)
    for target in ("emulator", "loihi2"):
        result = compile_graph(graph, target)
        lowered = result.graph
        (node,) = [n for n in lowered.nodes if isinstance(n, LoihiLIF)]
        assert node.reset == expected
        own = result.reports["lower_loihi"].get("snnc_processes", {})
        assert own == ({} if expected == "zero" else {node.name: f"SnncLIF (reset {expected}, comparison gt)"})
        traces = assert_lava_equals_emulator(lowered, x)
        assert traces.spikes[node.name].sum() > 0


def test_compile_summary_names_stock_and_snnc_processes():
    from snnc.backends.lava_loihi2.report import process_lines
    own = {"lif_1": "SnncLIF (reset subtract, comparison gt)"}
    assert process_lines({"layers": {"lif_1": {}, "lif_3": {}}, "snnc_processes": own}) == [
        "Lava processes: 1 stock (ready for Loihi 2 hardware through lava-loihi): lif_3",
        "  1 snnc process(es), bit-exact in Lava's fixed_pt simulation; on Loihi 2 hardware each needs a "
        "microcode neuron:",
        "    lif_1: SnncLIF (reset subtract, comparison gt)"]
    assert process_lines({"layers": {"lif_1": {}}}) == [
        "Lava processes: all 1 neuron groups stock (ready for Loihi 2 hardware through lava-loihi)"]
