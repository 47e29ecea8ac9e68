"""Loihi lowering: passes preserve what their docstrings say; alignment is exact; rules report all."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import random_spikes
from snnc.arith import loihi as lq
from snnc.compiler.latency import hop_delays, hop_latencies
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import check_design_rules, fold_synapse_bias
from snnc.compiler.pipeline import compile_graph
from snnc.errors import DesignRuleError, QuantizationError
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input, LoihiDense, LoihiLIF
from snnc.simulators.float_reference import run_float
from snnc.simulators.loihi_emulator import run_loihi
from snnc.targets.catalog import LOIHI2

OPTIONS = PassOptions(target=LOIHI2)


def residual_graph(seed: int = 0, bias: float = 0.05) -> Graph:
    """x -> a -> b -> c with a skip x -> c, a recurrent edge on b, synapse biases and zero resets."""
    rng = np.random.default_rng(seed)
    def w(o, i):
        return rng.normal(0, 0.6, (o, i))
    lif = dict(current_decay=1.0, voltage_decay=0.15, threshold=1.0, reset="zero")
    return Graph((
        Input("x", (10,)),
        Dense("xa", "x", w(8, 10), bias=np.full(8, bias)),
        CubaLIF("a", ("xa",), (8,), **lif),
        Dense("ab", "a", w(6, 8)),
        Dense("bb", "b", w(6, 6) * 0.5, delay_steps=1),
        CubaLIF("b", ("ab", "bb"), (6,), **lif),
        Dense("bc", "b", w(4, 6), bias=np.linspace(-0.1, 0.1, 4)),
        Dense("xc", "x", w(4, 10), delay_steps=1),
        CubaLIF("c", ("bc", "xc"), (4,), **lif),
    ), outputs=("c",), name="residual")


def test_latencies_and_padding_delays_of_a_residual_graph():
    graph = residual_graph()
    latency = hop_latencies(graph)
    assert latency == {"x": 0, "a": 1, "b": 2, "c": 3}
    # skip x->c (zero-latency delay 1) is padded to hop delay 3 - 0 - 1 + 1 = 3; recurrence stays 0
    assert hop_delays(graph, latency) == {"xa": 0, "ab": 0, "bb": 0, "bc": 0, "xc": 3}


def test_fold_synapse_bias_preserves_float_spikes_and_voltages():
    graph = residual_graph()
    result = fold_synapse_bias.run(graph, OPTIONS)
    assert result.changed and result.graph.node("xa").bias is None
    x = random_spikes(0, (3, 25, 10), 0.4)
    before, after = run_float(graph, x), run_float(result.graph, x)
    for name in ("a", "b", "c"):
        assert np.array_equal(before.spikes[name], after.spikes[name])
        np.testing.assert_allclose(before.states[name]["v"], after.states[name]["v"], rtol=0, atol=1e-12)
    assert before.spikes["c"].sum() > 0


def zero_latency_integer_run(float_graph: Graph, lowered: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The lowered integer arithmetic evaluated in zero-latency timing with the float graph's delays,
    starting from v = 0: what the aligned hop-latency run must reproduce exactly."""
    steps = x.shape[1]
    spikes = {"x": x.astype(np.int64)}
    state = {n.name: [0, 0] for n in lowered.nodes if isinstance(n, LoihiLIF)}
    spikes.update({name: np.zeros((x.shape[0], steps, *lowered.node(name).shape), np.int64) for name in state})
    out = {name: np.zeros((x.shape[0], steps, *lowered.node(name).shape), np.uint8) for name in state}
    for t in range(steps):
        for node in float_graph.evaluation_order:
            if not isinstance(node, CubaLIF):
                continue
            low = lowered.node(node.name)
            total = 0
            for syn_name in node.inputs:
                syn, src = lowered.node(syn_name), float_graph.node(syn_name).source
                d = float_graph.node(syn_name).delay_steps
                s = spikes[src][:, t - d] if t >= d else np.zeros_like(spikes[src][:, 0])
                total = total + lq.dense_activation(s, syn.weight_mant, syn.weight_exp)
            u, v = state[node.name]
            bias = lq.effective_bias(low.bias_mant, low.bias_exp)
            u, v, fired = lq.lif_step(u, v, total, low.du, low.dv, bias, low.vth)
            state[node.name] = [u, v]
            out[node.name][:, t] = fired
            spikes[node.name][:, t] = fired
    return out


@pytest.mark.parametrize("seed", range(3))
def test_aligned_hop_latency_run_equals_zero_latency_integer_run(seed):
    """Latency, padding delays and the bias warm-up voltage make the Lava-timed network reproduce the
    zero-latency network exactly, step for step, once shifted by each node's latency."""
    graph = residual_graph(seed, bias=0.3)
    lowered = compile_graph(graph, "loihi2").graph
    x = random_spikes(seed, (2, 30, 10), 0.35)
    latency = lowered.latency
    padded = np.concatenate([x, np.zeros((2, max(latency.values()), 10), np.uint8)], axis=1)
    hop = run_loihi(lowered, padded)
    expected = zero_latency_integer_run(fold_synapse_bias.run(graph, OPTIONS).graph, lowered, x)
    for name, spikes in expected.items():
        assert np.array_equal(hop.spikes[name][:, latency[name]:latency[name] + 30], spikes), name
    assert all(s.sum() > 0 for s in expected.values())
    assert any(np.any(lowered.node(n).v_init) for n in ("a", "c")), "bias warm-up not exercised"


def test_emulator_agrees_with_float_reference_up_to_quantization():
    """8-bit weights (~1% RMS error here) flip a few near-threshold spikes; >= 95% of spike slots agree
    (measured ~98.5%), and a wrong scale or alignment would drop agreement to ~chance."""
    graph = residual_graph(4)
    lowered = compile_graph(graph, "loihi2").graph
    x = random_spikes(5, (4, 40, 10), 0.35)
    ref = run_float(graph, x)
    pad = max(lowered.latency.values())
    hop = run_loihi(lowered, np.concatenate([x, np.zeros((4, pad, 10), np.uint8)], axis=1))
    for name in ("a", "b", "c"):
        L = lowered.latency[name]
        agree = np.mean(ref.spikes[name] == hop.spikes[name][:, L:L + 40])
        assert agree >= 0.95, (name, agree)


def test_subtract_reset_and_per_neuron_decays_are_accepted_and_run_as_snnc_lif():
    graph = residual_graph()
    nodes = [dataclasses.replace(n, reset="subtract") if n.name == "a" else
             dataclasses.replace(n, voltage_decay=np.array([0.1, 0.2, 0.1, 0.1, 0.1, 0.1])) if n.name == "b"
             else n for n in graph.nodes]
    result = compile_graph(graph.replace_nodes(nodes), "loihi2")
    assert result.graph.node("b").dv.tolist() == [410, 819, 410, 410, 410, 410]
    assert result.reports["lower_loihi"]["snnc_processes"] == {
        "a": "SnncLIF (reset subtract, comparison gt)",
        "b": "SnncLIF (reset zero, comparison gt, per-neuron du/dv: 2 distinct pairs)"}


def test_lowered_design_rules_report_every_violation():
    lowered = compile_graph(residual_graph(), "loihi2").graph
    nodes = [dataclasses.replace(n, vth=200_000) if n.name == "b" else
             dataclasses.replace(n, delay_steps=70) if n.name == "xc" else
             dataclasses.replace(n, weight_mant=n.weight_mant + 1) if n.name == "ab" else n
             for n in lowered.nodes]
    with pytest.raises(DesignRuleError) as err:
        check_design_rules.run(lowered.replace_nodes(nodes), OPTIONS)
    text = str(err.value)
    assert text.startswith("3 design-rule violation(s)")
    assert "node 'b' field 'vth': limit [0, 131071], got 200000" in text
    assert "node 'xc' field 'delay_steps': limit [0, 63], got 70" in text
    assert "node 'ab' field 'weight_mant': low bits would be dropped: limit values kept by the hardware's " \
           "truncation, got" in text


def test_current_that_never_decays_is_a_quantization_error():
    graph = residual_graph()
    nodes = [dataclasses.replace(n, current_decay=0.0) if n.name == "c" else n for n in graph.nodes]
    with pytest.raises(QuantizationError, match="node 'c' field 'current_decay': a current that never decays "
                                                "is not representable: limit >= 0.000244140625"):
        compile_graph(graph.replace_nodes(nodes), "loihi2")


def test_lowering_never_lets_u_wrap():
    """Worst case (every input spiking every step) stays inside u's 24 bits by construction."""
    result = compile_graph(residual_graph(7), "loihi2")
    for layer in result.reports["lower_loihi"]["layers"].values():
        assert 0 < layer["worst_case_u_fraction"] <= 1.0
    lowered = result.graph
    everything = np.ones((1, 60, 10), np.uint8)
    traces = run_loihi(lowered, everything)
    for node in lowered.nodes:
        if isinstance(node, LoihiLIF):
            u = traces.states[node.name]["u"]
            assert np.all(np.abs(u) < (1 << 23)), node.name
    assert all(isinstance(lowered.node(n), LoihiDense) for n in ("xa", "ab", "bb", "bc", "xc"))


def readout_graph() -> Graph:
    """IF layer (voltage_decay 0) beside a leaky-integrator readout with synaptic memory, both fed by
    the input so the readout's error is its own quantization only."""
    rng = np.random.default_rng(11)
    from snnc.ir.nodes import LI
    return Graph((
        Input("x", (12,)),
        Dense("xh", "x", rng.normal(0, 0.5, (9, 12))),
        CubaLIF("h", ("xh",), (9,), current_decay=1.0, voltage_decay=0.0, threshold=1.2, reset="zero"),
        Dense("xo", "x", rng.normal(0, 0.4, (3, 12))),
        LI("out", ("xo",), (3,), current_decay=0.5, voltage_decay=0.2, bias=0.05),
    ), outputs=("out", "h"), name="readout")


def test_li_readout_never_spikes_and_tracks_the_float_membrane():
    """The readout's integer v, divided by its scale, follows the float v. Error budget: 8-bit weight
    rounding (relative RMS ~1%, at most half a mantissa step per weight) summed over <= 12 inputs and
    accumulated through the leaks (x 1/0.5 x 1/0.2), bounded well inside 5% of the peak |v|."""
    graph = readout_graph()
    result = compile_graph(graph, "loihi2")
    lowered = result.graph
    readout = lowered.node("out")
    assert isinstance(readout, LoihiLIF) and not readout.spiking and lowered.node("h").dv == 0
    x = random_spikes(12, (2, 40, 12), 0.4)
    ref = run_float(graph, x)
    L = lowered.latency["out"]
    hop = run_loihi(lowered, np.concatenate([x, np.zeros((2, L, 12), np.uint8)], axis=1))
    assert hop.spikes["out"].sum() == 0
    scale = result.reports["lower_loihi"]["layers"]["out"]["activation_units_per_unit"]
    assert isinstance(scale, float), "one scale for all readout neurons, so their membranes compare"
    v_restored = hop.states["out"]["v"][:, L:L + 40] / (scale * 64)
    v_float = ref.states["out"]["v"]
    assert np.max(np.abs(v_restored - v_float)) <= 0.05 * np.max(np.abs(v_float))
    assert np.max(np.abs(v_float)) > 0.5
    lag = lowered.latency["h"]   # the IF layer: integer v without leak, spikes agree up to rounding
    assert np.mean(ref.spikes["h"] == hop.spikes["h"][:, lag:lag + 40]) >= 0.95 and ref.spikes["h"].sum() > 0


def test_warm_up_that_would_spike_is_a_quantization_error():
    """A strongly negative bias needs a start voltage far above threshold to reach v = 0 after the
    3-step pipeline fill of 'c'; Lava would spike on the way, so lowering refuses and names the node."""
    graph = residual_graph()
    nodes = [dataclasses.replace(n, bias=np.full(4, -3.0)) if n.name == "bc" else n for n in graph.nodes]
    with pytest.raises(QuantizationError, match=r"node 'c' field 'v_init': bias too large for this pipeline "
                                                r"depth and decay: limit a warm-up that stays below threshold"):
        compile_graph(graph.replace_nodes(nodes), "loihi2")


def test_long_forward_delay_is_partly_absorbed_by_the_hop():
    """Zero-latency delay 3 on the first synapse: latency stays 0 (never negative) and the hop delay
    is 2, so Lava's 1 + 2 steps equal the float delay; aligned traces keep every step."""
    rng = np.random.default_rng(21)
    graph = Graph((Input("x", (6,)), Dense("d", "x", rng.normal(0.5, 0.3, (4, 6)), delay_steps=3),
                   CubaLIF("n", ("d",), (4,), 1.0, 0.2, 1.0, reset="zero")), outputs=("n",), name="delayed")
    assert hop_latencies(graph) == {"x": 0, "n": 0} and hop_delays(graph, {"x": 0, "n": 0}) == {"d": 2}
    lowered = compile_graph(graph, "loihi2").graph
    x = random_spikes(22, (2, 20, 6), 0.5)
    from snnc.simulators.aligned import run_on_ir_grid
    aligned = run_on_ir_grid(lowered, x)
    expected = zero_latency_integer_run(graph, lowered, x)
    assert aligned.spikes["n"].shape == (2, 20, 4)
    assert np.array_equal(aligned.spikes["n"], expected["n"]) and expected["n"].sum() > 0


def test_delayed_feed_forward_edge_into_a_recurrent_neuron_gets_its_latency():
    """o reads h through a delay-2 synapse and itself through delay 1, so the zero-latency evaluation
    order may update o before h; latencies still follow h -> o (L(o) = max(0, L(h) + 1 - 2) = 0) and the
    aligned run equals the zero-latency integer run. This used to fail with "only recurrent inputs"."""
    rng = np.random.default_rng(4)
    graph = Graph((Input("x", (6,)), Dense("d1", "x", rng.normal(0.6, 0.3, (5, 6))),
                   CubaLIF("h", ("d1",), (5,), 1.0, 0.2, 1.0, reset="zero"),
                   Dense("d2", "h", rng.normal(0.5, 0.4, (4, 5)), delay_steps=2),
                   Dense("rec", "o", rng.normal(0.0, 0.3, (4, 4)), delay_steps=1),
                   CubaLIF("o", ("d2", "rec"), (4,), 1.0, 0.2, 1.0, reset="zero")), outputs=("o",), name="late")
    assert [n.name for n in graph.evaluation_order].index("o") < [n.name for n in graph.evaluation_order].index("h")
    assert hop_latencies(graph) == {"x": 0, "h": 1, "o": 0}
    lowered = compile_graph(graph, "loihi2").graph
    x = random_spikes(5, (2, 25, 6), 0.5)
    from snnc.simulators.aligned import run_on_ir_grid
    aligned = run_on_ir_grid(lowered, x)
    expected = zero_latency_integer_run(graph, lowered, x)
    for name in ("h", "o"):
        assert np.array_equal(aligned.spikes[name], expected[name]) and expected[name].sum() > 0, name
