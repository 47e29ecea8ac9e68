"""Timestep compression: static input as a constant current is the rate code's exact mean, recalibrated
initial voltages land where intended (and a lowered threshold re-checks the warm-up), early exit decides
as specified (one-class outputs too), the pass keeps its error budget on both halves of its calibration
data (choosing on one, checking on the other), and the compressed graph still runs identically in Lava."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.compiler.passes import compress_timesteps
from snnc.compiler.passes.compress_timesteps import (
    ORIGINAL, CompressionConfig, CompressTimestepsOptions, Policy, Variant, choose_policy, static_input_graph,
    variant_graph,
)
from snnc.arith import loihi as lq
from snnc.compiler.pipeline import compile_graph
from snnc.datasets.digits import PIXEL_MAX, digits_split, rate_encode
from snnc.errors import QuantizationError, SnncError, UnsupportedError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput, Input, LoihiDense, LoihiLIF
from snnc.lowering.warmup import voltage_before
from snnc.simulators.early_exit import cumulative_output_counts, decide, run_with_early_exit
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import LOIHI2


@pytest.fixture(scope="module")
def digits_graph():
    return compile_graph(load_model("examples/digits/digits_snn.pt"), "loihi2").graph


@pytest.fixture(scope="module")
def digits_data():
    return digits_split()


def test_compression_is_off_by_default(digits_graph):
    result = compress_timesteps.run(digits_graph, CompressTimestepsOptions(target=LOIHI2))
    assert not result.changed and result.graph is digits_graph


def test_static_input_current_is_the_rate_codes_exact_mean(digits_graph, digits_data):
    """Over 16 steps the rate code fires pixel p exactly p times, so with weight_exp e >= 4 the
    16 rate-coded activations sum to 16 x the static activation shift(W p, e - 4); with du = 4095
    u = a << 6 each step, so the u traces show it."""
    assert digits_graph.node("syn_0").weight_exp >= 4 and digits_graph.node("lif_1").du == 4095
    pixels = digits_data[1][:8]
    static = static_input_graph(digits_graph, PIXEL_MAX, LOIHI2)
    assert isinstance(static.node("input"), GradedInput) and static.node("input").bits == 6
    assert static.node("syn_0").weight_exp == digits_graph.node("syn_0").weight_exp - 4
    u_rate = run_loihi(digits_graph, rate_encode(pixels, 17)).states["lif_1"]["u"]
    u_static = run_loihi(static, np.repeat(pixels[:, None], 17, axis=1)).states["lif_1"]["u"]
    assert np.all(u_static[:, 2:] == u_static[:, 1:2]), "a constant current from step 1 on"
    np.testing.assert_array_equal(u_rate[:, 1:17].sum(axis=1), 16 * u_static[:, 1])


def test_static_input_needs_a_power_of_two_and_an_exponent_in_range(digits_graph):
    with pytest.raises(UnsupportedError) as err:
        static_input_graph(digits_graph, 10, LOIHI2)
    assert str(err.value) == ("node 'digits_snn' field 'levels': limit a power of two (the exponent shifts "
                              "exactly), got 10")
    low = dataclasses.replace(LOIHI2, weight_exp_range=(3, 7))
    with pytest.raises(QuantizationError) as err:
        static_input_graph(digits_graph, PIXEL_MAX, low)
    assert str(err.value) == ("node 'syn_0' field 'weight_exp': the static input current needs a smaller "
                              "exponent: limit >= 3, got 1")


def test_recalibrated_voltage_is_reached_after_the_warm_up(digits_graph):
    """With no input, each spiking group sits at exactly floor(alpha * vth') << 6 when its first input
    could arrive (hop step L - 1), vth' = round(beta * vth)."""
    variant = variant_graph(digits_graph, Variant(False, 0.5, 0.9), None, LOIHI2)
    traces = run_loihi(variant, np.zeros((1, 4, 64), np.uint8))
    for name in ("lif_1", "lif_3"):
        node, old = variant.node(name), digits_graph.node(name)
        assert node.vth == round(0.9 * old.vth)
        latency = variant.latency[name]
        v = traces.states[name]["v"][0, latency - 1]
        assert np.all(v == (node.vth << lq.THRESHOLD_SHIFT) // 2)


def test_early_exit_decides_at_the_margin():
    counts = np.cumsum(np.array([[[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]],
                                 [[0, 1, 0], [0, 1, 0], [0, 0, 0], [0, 0, 1]]]), axis=1)
    predictions, used = decide(counts, 4, 2)   # leads reach 2 at steps 4 and 2
    assert predictions.tolist() == [0, 1] and used.tolist() == [4, 2]
    predictions, used = decide(counts, 4, 1)
    assert predictions.tolist() == [0, 1] and used.tolist() == [2, 1]
    predictions, used = decide(counts, 2, None)
    assert predictions.tolist() == [0, 1] and used.tolist() == [2, 2]


def test_pass_keeps_its_budget_on_the_calibration_data(digits_graph, digits_data):
    x_train, _, y_train, _ = digits_data
    config = CompressionConfig(values=x_train[:300], labels=y_train[:300], encode=rate_encode, steps=20,
                               levels=PIXEL_MAX, v_init_fractions=(0.0, 0.5), threshold_scales=(1.0, 0.9))
    result = compress_timesteps.run(digits_graph, CompressTimestepsOptions(target=LOIHI2, timestep_compression=config))
    chosen = result.report["chosen"]
    assert result.changed and chosen["mean_steps"] < 10, "the goal: at least 2x fewer steps"
    assert chosen["drop_upper_bound"] <= config.epsilon
    assert result.report["selection"]["drop_upper_bound"] <= config.epsilon
    assert result.report["validation"]["drop_upper_bound"] <= config.epsilon
    assert (result.report["selection"]["samples"], result.report["validation"]["samples"]) == (150, 150)
    static = chosen["static_input"]
    x = np.repeat(x_train[:300, None], 20, axis=1) if static else rate_encode(x_train[:300], 20)
    predictions, used = run_with_early_exit(result.graph, x, chosen["steps"], chosen["exit_margin"])
    assert np.mean(predictions == y_train[:300]) == chosen["accuracy"]
    assert used.mean() == chosen["mean_steps"]
    reference = decide(cumulative_output_counts(digits_graph, rate_encode(x_train[:300], 20)), 20, None)[0]
    ok, ref_ok = predictions == y_train[:300], reference == y_train[:300]
    assert (chosen["worse"], chosen["better"]) == (int(np.sum(ref_ok & ~ok)), int(np.sum(~ref_ok & ok)))


def test_threshold_scaling_rechecks_the_warm_up_even_at_alpha_zero(digits_graph):
    """lif_3 (latency 2; vth 8000 so the bias mantissa can reach it) gets a negative bias whose warm-up
    from v_init falls to 0 through ~0.95 of the threshold: fine under vth, a spike under
    vth' = round(0.9 vth). The variant (alpha 0, beta 0.9) must re-solve and re-check v_init, not keep
    the one solved for the old threshold."""
    old = dataclasses.replace(digits_graph.node("lif_3"), vth=8000)
    threshold = old.vth << lq.THRESHOLD_SHIFT
    mant, exp = lq.split_bias(np.array([-int(0.95 * threshold * (4096 - old.dv) / 4096)]))
    biased = dataclasses.replace(old, bias_mant=mant, bias_exp=exp)
    biased = dataclasses.replace(biased, v_init=voltage_before(biased, 0, 2, "test"))
    graph = digits_graph.replace_nodes([biased if n.name == "lif_3" else n for n in digits_graph.nodes])
    v = run_loihi(graph, np.zeros((1, 2, 64), np.uint8)).states["lif_3"]["v"][0]
    assert np.all(v[1] == 0) and np.all(v[0] <= threshold)
    assert np.all(v[0] > (round(0.9 * old.vth) << lq.THRESHOLD_SHIFT)), "the warm-up crosses vth'"
    assert variant_graph(graph, Variant(False, 0.0, 1.0), None, LOIHI2) is graph
    with pytest.raises(QuantizationError) as err:
        variant_graph(graph, Variant(False, 0.0, 0.9), None, LOIHI2)
    assert str(err.value) == (
        f"node 'lif_3' field 'v_init': timestep compression's initial voltage: limit a warm-up that stays "
        f"below threshold and in range, got v up to {int(v[0][0])} (|v| up to {int(np.abs(biased.v_init).max())}) "
        f"over 2 steps")


def test_early_exit_on_a_one_class_output():
    """One class: no runner-up, so the lead is the class's own count; the answer is always class 0."""
    counts = np.cumsum(np.array([[[0], [1], [1], [0]], [[1], [1], [0], [0]]]), axis=1)
    predictions, used = decide(counts, 4, 2)
    assert predictions.tolist() == [0, 0] and used.tolist() == [3, 2]
    predictions, used = decide(counts, 4, 3)
    assert predictions.tolist() == [0, 0] and used.tolist() == [4, 4]


def test_pass_on_a_one_class_graph_chooses_one_step():
    """Every policy answers class 0, so none is worse than the original: the fewest steps (1) win."""
    nodes = (Input("x", (4,)), LoihiDense("d", "x", np.array([[100, 50, 0, 20]]), weight_exp=0),
             LoihiLIF("n", ("d",), (1,), du=4095, dv=410, vth=40))
    graph = Graph(nodes, ("n",), timing="hop_latency")
    spikes = np.random.default_rng(3).integers(0, 2, (6, 5, 4)).astype(np.uint8)
    counts = cumulative_output_counts(graph, spikes)
    assert counts.shape == (6, 5, 1) and counts[:, -1].sum() > 0
    config = CompressionConfig(labels=np.zeros(6, np.int64), spikes=spikes, steps=5, margins=(1, 2))
    result = compress_timesteps.run(graph, CompressTimestepsOptions(target=LOIHI2, timestep_compression=config))
    chosen = result.report["chosen"]
    assert (chosen["steps"], chosen["exit_margin"], chosen["mean_steps"], chosen["accuracy"]) == (1, None, 1.0, 1.0)
    assert not result.changed and result.graph is graph


def test_policy_is_checked_on_samples_the_search_never_saw():
    """Two classes, 4 steps, label 0 everywhere. Even samples (the choosing half) lead with class 0 from
    step 1; odd samples (the checking half) start with a class-1 spike, tie at step 2 (argmax: class 0)
    and lead with class 0 after. On the choosing half every 1-mean-step policy is perfect, but on the
    checking half they answer class 1: steps 1 (margins None, 1, 2) and margin 1 at steps 2..4 are
    rejected (6), and the next in the ranking, 2 steps without early exit, is right on both halves."""
    even = np.array([[1, 0], [1, 0], [1, 0], [1, 0]])
    odd = np.array([[0, 1], [1, 0], [1, 0], [1, 0]])
    counts = np.cumsum(np.stack([even, odd] * 4), axis=1)
    labels = np.zeros(8, np.int64)
    config = CompressionConfig(labels=labels, steps=4, margins=(1, 2))
    reference_ok = decide(counts, 4, None)[0] == labels
    assert reference_ok.all()
    policy, selection, validation, rejected = choose_policy({ORIGINAL: (None, 1.0, counts)}, config, reference_ok)
    assert policy == Policy(ORIGINAL, 2, None) and rejected == 6
    assert selection == {"samples": 4, "accuracy": 1.0, "mean_steps": 2.0, "worse": 0, "better": 0,
                         "drop_upper_bound": 0.0}
    assert validation == selection
    assert decide(counts[1::2], 1, None)[0].tolist() == [1, 1, 1, 1], "what the check caught"


def test_unusable_calibration_data_is_a_clear_error(digits_graph):
    options = lambda **config: CompressTimestepsOptions(  # noqa: E731
        target=LOIHI2, timestep_compression=CompressionConfig(**config))
    spikes = np.zeros((3, 20, 64), np.uint8)
    cases = [
        (dict(labels=np.zeros(1), spikes=spikes[:1]),
         "field 'labels': limit at least 2 samples (half choose a policy, half check it), got 1"),
        (dict(labels=np.zeros(3)), "field 'spikes': limit spikes, or values and encode, got neither"),
        (dict(labels=np.zeros((3, 1)), spikes=spikes),
         "field 'labels': limit one whole class index in [0, 10) per sample, got float64 (3, 1) in [0.0, 0.0]"),
        (dict(labels=np.array(["a", "b", "c"]), spikes=spikes),
         "field 'labels': limit one whole class index in [0, 10) per sample, got <U1 (3,)"),
        (dict(labels=np.array([0, 3, 10]), spikes=spikes),
         "field 'labels': limit one whole class index in [0, 10) per sample, got int64 (3,) in [0, 10]"),
        (dict(labels=np.zeros(3), spikes=spikes, levels=16),
         "field 'values': limit static values for the static-input variant (levels given), got none"),
        (dict(labels=np.zeros(2), spikes=spikes), "field 'spikes': limit one sample per label (2), got 3"),
        (dict(labels=np.zeros(3), spikes=spikes[:, :10]), "field 'spikes': limit at least steps = 20 steps, got 10"),
        (dict(labels=np.zeros(3), spikes=spikes, epsilon=1.5), "field 'epsilon': limit an accuracy fraction "
         "in [0, 1), got 1.5"),
    ]
    for config, message in cases:
        with pytest.raises(SnncError) as err:
            compress_timesteps.run(digits_graph, options(**config))
        assert str(err.value) == "timestep compression calibration " + message
    with pytest.raises(SnncError) as err:
        compress_timesteps.run(digits_graph, options(labels=np.zeros(3), spikes=spikes[..., :63]))
    assert str(err.value) == ("calibration data: input 'input' field 'shape': expected (batch, steps, 64), "
                              "got (3, 20, 63)")


@pytest.mark.lava
def test_compressed_graph_runs_identically_in_lava(digits_graph, digits_data):
    """Static graded input (RingBuffer payloads into a Dense with num_message_bits) and recalibrated
    v_init/vth: the emulator equals Lava fixed_pt spike for spike and state for state."""
    from snnc.backends.lava_loihi2.compat import import_lava
    from snnc.errors import BackendUnavailableError
    try:
        import_lava()
    except BackendUnavailableError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    from snnc.backends.lava_loihi2.run import run_lava
    graph = variant_graph(digits_graph, Variant(True, 0.5, 0.9), PIXEL_MAX, LOIHI2)
    x = np.repeat(digits_data[1][:1, None], 8, axis=1)
    expected, actual = run_loihi(graph, x), run_lava(graph, x)
    assert first_divergence(expected, actual) is None
    assert expected.spikes["lif_1"].sum() > 0 and expected.spikes["input"].max() > 1
    assert all(isinstance(n, LoihiLIF) for n in graph.nodes if n.name.startswith("lif"))
