"""The float sigma-delta family (DeltaEncoder, SigmaDelta, SigmaDecoder): its float step, its Loihi lowering
(snnc.lowering.loihi_sigma_delta) exact where the float values are representable, the reported errors where
they are not, real Lava equal to the emulator, SpiNNaker's refusal, and a .snnc file compiled from the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from snnc.compiler.cli import main
from snnc.compiler.pipeline import compile_graph
from snnc.errors import DesignRuleError, QuantizationError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import (
    Conv2d, CubaLIF, Dense, DeltaEncoder, Flatten, GradedInput, LoihiDelta, LoihiSigma, LoihiSigmaDelta, SigmaDecoder, SigmaDelta,
)
from snnc.ir.printer import format_graph
from snnc.ir.serialize import load_graph, save_graph
from snnc.neurons import model_of
from snnc.simulators.float_reference import run_float
from snnc.simulators.loihi_emulator import run_loihi

W1 = np.array([[0.5, -0.25, 1.0, 0.0], [0.75, 0.5, -0.5, 0.25], [-1.0, 0.5, 0.25, 0.5]])
W2 = np.array([[1.0, -0.5, 0.25], [0.5, 0.5, -1.0]])
GROUPS = ("enc", "sd", "out")


def sdnn(w1=W1, w2=W2, threshold=0.5, bias=0.25, delta_threshold=2.0, bits=8) -> Graph:
    """graded input -> delta encoder -> dense -> ReLU sigma-delta -> dense -> sigma decoder."""
    return Graph((GradedInput("x", (4,), bits=bits), DeltaEncoder("enc", ("x",), (4,), threshold=delta_threshold),
                  Dense("d1", "enc", np.asarray(w1, float)),
                  SigmaDelta("sd", ("d1",), (3,), threshold=threshold, bias=bias),
                  Dense("d2", "sd", np.asarray(w2, float)), SigmaDecoder("out", ("d2",), (2,))), outputs=("out",))


def conv_sdnn() -> Graph:
    """4-bit graded image -> delta -> 3x3 conv -> ReLU sigma-delta (2, 4, 4) -> flatten -> dense -> decoder;
    weights multiples of 1/4 in [-1, 1]."""
    rng = np.random.default_rng(5)
    kernel, weight = rng.integers(-4, 5, (2, 1, 3, 3)) / 4.0, rng.integers(-4, 5, (3, 32)) / 4.0
    return Graph((GradedInput("x", (1, 6, 6), bits=4), DeltaEncoder("enc", ("x",), (1, 6, 6), threshold=3.0),
                  Conv2d("c1", "enc", kernel, in_shape=(1, 6, 6)),
                  SigmaDelta("sd", ("c1",), (2, 4, 4), threshold=1.0, bias=0.5), Flatten("f", "sd"),
                  Dense("d2", "f", weight), SigmaDecoder("out", ("d2",), (3,))), outputs=("out",))


def graded_input(seed: int, batch: int = 3, steps: int = 30, limit: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).integers(-limit, limit, (batch, steps, 4))


def step_through(node, currents) -> tuple[list[float], dict[str, list[float]]]:
    model = model_of(node)
    steps = len(currents)
    state = {var: np.zeros((1, steps, 1)) for var in model.state_variables}
    out = np.zeros((1, steps, 1))
    for t, current in enumerate(currents):
        out[:, t] = model.float_step(node, t, np.array([[current]]), out, state)
    return out.reshape(-1).tolist(), {var: arr.reshape(-1).tolist() for var, arr in state.items()}


def test_the_float_steps_follow_the_equations_hand_computed():
    # delta, threshold 2: d = 3, 1, 1 + 0, -2, 0 -> sends 3 and -2, holds the 1 in the residue
    out, state = step_through(DeltaEncoder("e", ("x",), (1,), threshold=2.0), [3, 4, 4, 1, 1])
    assert out == [3.0, 0.0, 0.0, -2.0, 0.0]
    assert state == {"act": [3.0, 4.0, 4.0, 1.0, 1.0], "residue": [0.0, 1.0, 1.0, 0.0, 0.0]}
    # sigma-delta, threshold 1, bias -0.5: act = relu(sigma - 0.5) = .5, .75, 1.25, 0, 0; d = .5, .75, 1.25, -1.25, 0
    out, state = step_through(SigmaDelta("s", ("d",), (1,), threshold=1.0, bias=-0.5), [1.0, 0.25, 0.5, -2.0, 0.0])
    assert out == [0.0, 0.0, 1.25, -1.25, 0.0]
    assert state == {"sigma": [1.0, 1.25, 1.75, -0.25, -0.25], "act": [0.5, 0.75, 1.25, 0.0, 0.0],
                     "residue": [0.5, 0.75, 0.0, 0.0, 0.0]}
    out, state = step_through(SigmaDecoder("o", ("d",), (1,)), [1.0, 0.5, -2.0])
    assert out == state["sigma"] == [1.0, 1.5, -0.5]


def test_the_float_graph_verifies_its_fields():
    from snnc.errors import IRVerificationError
    from snnc.ir.verify import verify
    with pytest.raises(IRVerificationError, match=r"node 'sd' field 'threshold': limit one number > 0, got 0.0"):
        verify(sdnn(threshold=0.0))


def test_a_representable_sdnn_lowers_exactly_to_lavas_sigma_delta_nodes():
    """Exact: every float value is a dyadic rational (inputs integers, weights and bias multiples of 2^-2,
    thresholds 2 and 2^-1), so the delta's messages are integers, sigma/act/residue of 'sd' multiples of
    2^-2 and 'out''s sigma multiples of 2^-4, all exact in float64. The lowering picks K_sd = 2^8 (the
    largest whose worst message, (act_max + threshold) 2^6 K = 291 x 2^14, fits 24-bit graded spikes; 2^9
    does not) and K_out = 2^8 (2^9 would put 'out''s worst sigma, 582 x 2^12 K, above half of int32). Then
    the words are exact (d1: w 2^6 K_sd / 1 = w 2^14 = mantissa 2^7 with w 2^7 an even integer; d2:
    w 2^6 K_out / K_sd = 64 w; vth 0.5 K = 128, bias 64), the sent s 2^6 K_sd = s 2^14 is an integer, so
    Lava's >> 6 drops only zeros, nothing wraps (the worst case fits) and the bias 0.25 < threshold 0.5
    sends nothing during the pipeline fill. Each integer is therefore the float value times its scale."""
    graph = sdnn()
    result = compile_graph(graph, "loihi2")
    lowered = result.graph
    assert [type(lowered.node(n)) for n in GROUPS] == [LoihiDelta, LoihiSigmaDelta, LoihiSigma]
    assert (lowered.node("sd").vth, lowered.node("sd").bias.tolist()) == (128, [64])
    layers = result.reports["lower_loihi"]["layers"]
    assert [layers[n]["scale_exp"] for n in GROUPS] == [0, 8, 8]
    assert [layers[n]["output_scale"] for n in GROUPS] == [64.0, 64.0 * 2 ** 8, 4096.0 * 2 ** 8]
    assert layers["sd"]["weight_rel_rms_error"] == {"d1": 0.0} and layers["out"]["weight_rel_rms_error"] == {"d2": 0.0}
    assert (layers["sd"]["threshold_error"], layers["sd"]["bias_max_abs_error"]) == (0.0, 0.0)
    assert layers["sd"]["activation_floor_lsb"] == {} and layers["out"]["activation_floor_lsb"] == {}
    latency = dict(lowered.latency_steps)
    assert latency == {"x": 0, "enc": 0, "sd": 1, "out": 2}          # the delta reads its input in the same step
    x = graded_input(1)
    for name in GROUPS:
        np.testing.assert_array_equal(run_loihi(lowered, x, engine="step").spikes[name],
                                      run_loihi(lowered, x, engine="layerwise").spikes[name])
    assert_equal_in_float_units(graph, x)


def assert_equal_in_float_units(graph: Graph, x: np.ndarray) -> None:
    """The emulator's graded outputs and states over each layer's reported scales equal the float IR's."""
    result = compile_graph(graph, "loihi2")
    layers, latency = result.reports["lower_loihi"]["layers"], dict(result.graph.latency_steps)
    ours, floats = run_loihi(result.graph, x), run_float(graph, x)
    steps = x.shape[1]
    for name in GROUPS:
        lag, layer = latency[name], layers[name]
        assert np.count_nonzero(floats.spikes[name]) > 50, name
        np.testing.assert_array_equal(ours.spikes[name][:, lag:] / layer["output_scale"],
                                      floats.spikes[name][:, :steps - lag], err_msg=name)
        for var, values in floats.states[name].items():
            np.testing.assert_array_equal(ours.states[name][var][:, lag:] / layer["state_scale"],
                                          values[:, :steps - lag], err_msg=f"{name} {var}")


def test_a_representable_conv_sdnn_lowers_exactly():
    """Exact as the dense net: a Conv has no weight exponent, so its words 64 K_sd w must fit 8 bits as they
    are; with a tap w = 1, K_sd = 4 would need 256 > 254, so K_sd = 2 (its worst 24-bit activation, sum |w|
    (6) x 128 x 17 x 64 for a 4-bit input's worst d 2 x 7 + 3, fits). Then the words 128 w are even
    integers, vth 2, bias 1, and the sent s 2^7 is an integer (sd's values are multiples of 1/4)."""
    result = compile_graph(conv_sdnn(), "loihi2")
    assert result.reports["lower_loihi"]["layers"]["sd"]["scale_exp"] == 1
    assert (result.graph.node("sd").vth, result.graph.node("sd").bias.tolist()) == (2, [1])
    x = np.random.default_rng(6).integers(-7, 8, (2, 20, 1, 6, 6))
    assert_equal_in_float_units(conv_sdnn(), x)


def test_a_fractional_delta_threshold_lowers_to_its_ceiling_exactly():
    """Every d of the delta is a whole number of input units, so |d| >= 1.5 is |d| >= 2."""
    result = compile_graph(sdnn(delta_threshold=1.5), "loihi2")
    assert result.graph.node("enc").vth == 2
    layer = result.reports["lower_loihi"]["layers"]["enc"]
    assert layer["threshold_error"] == 0.5 and "exact" in layer["notes"][0]
    x = graded_input(2)
    np.testing.assert_array_equal(run_loihi(result.graph, x).spikes["enc"] / 64.0,
                                  run_float(sdnn(delta_threshold=1.5), x).spikes["enc"])


def test_a_bias_below_the_threshold_fills_the_pipeline_exactly_and_one_above_is_warned():
    """A lowered group computes relu(bias) during its pipeline fill (latency 1 here): below the threshold
    the residue carries it (exact per neuron, per-neuron biases included); at 1.0 >= 0.5 the third neuron
    sends it one step early, which the report warns about."""
    x = graded_input(7)
    assert_equal_in_float_units(sdnn(bias=np.array([0.25, -0.5, 0.375])), x)
    assert compile_graph(sdnn(bias=np.array([0.25, -0.5, 0.375])), "loihi2").reports["lower_loihi"]["layers"][
        "sd"]["warnings"] == []
    warned = compile_graph(sdnn(bias=np.array([0.25, -0.5, 1.0])), "loihi2").reports["lower_loihi"]["layers"]["sd"]
    assert warned["warnings"] == ["1 neuron(s) with relu(bias) >= threshold send their bias during the 1-step "
                                  "pipeline fill, before their first input (the float group sends it with its "
                                  "first input): decoded values differ by less than the threshold"]


def test_a_net_that_is_not_representable_reports_its_rounding():
    w1 = W1 * 0.3
    result = compile_graph(sdnn(w1=w1, threshold=0.3, bias=0.1), "loihi2")
    layer = result.reports["lower_loihi"]["layers"]["sd"]
    scale = 2.0 ** layer["scale_exp"]
    assert layer["threshold_error"] == pytest.approx(round(0.3 * scale) / scale - 0.3)
    assert layer["bias_max_abs_error"] == pytest.approx(abs(round(0.1 * scale) / scale - 0.1))
    assert layer["threshold_error"] != 0 and layer["bias_max_abs_error"] != 0
    node = result.graph.node("d1")
    restored = node.weight_mant * 2.0 ** node.weight_exp / (2 ** 6 * scale)
    assert layer["weight_rel_rms_error"]["d1"] == pytest.approx(np.linalg.norm(restored - w1) / np.linalg.norm(w1))
    assert layer["weight_rel_rms_error"]["d1"] > 0
    assert layer["message_floor_lsb"] == 1 / (2 ** 6 * scale)


def test_the_lowering_refuses_what_it_cannot_represent():
    with pytest.raises(QuantizationError, match=r"node 'x' field 'bits': declare the input with fewer bits: limit <= 16 \(the delta encoder 'enc' sends "
                                                r"up to 2 \|x\|max \+ vth = 262144; x 64 must fit 24-bit graded spikes\)"
                                                r".*got 18"):
        compile_graph(sdnn(bits=18), "loihi2")
    with pytest.raises(QuantizationError, match=r"node 'sd' field 'threshold': .*vth would round to 0"):
        compile_graph(sdnn(threshold=1e-9), "loihi2")
    with pytest.raises(QuantizationError, match=r"node 'sd' field 'state range'.*no value scale 2\^k"):
        compile_graph(sdnn(w1=W1 * 1e15), "loihi2")


def test_graded_values_reach_only_sigma_delta_groups_and_no_synapse_bias():
    nodes = list(sdnn().nodes)
    with_bias = Graph(tuple(Dense("d1", "enc", W1, bias=np.ones(3)) if n.name == "d1" else n for n in nodes),
                      outputs=("out",))
    with pytest.raises(UnsupportedError, match=r"node 'd1' field 'bias': limit none into a sigma-delta group"):
        compile_graph(with_bias, "loihi2")
    lif = CubaLIF("sd", ("d1",), (3,), current_decay=1.0, voltage_decay=0.5, threshold=1.0)
    spiking = Graph(tuple(n for n in nodes[:3]) + (lif,), outputs=("sd",))
    for target in ("loihi2", "spinnaker"):
        with pytest.raises(DesignRuleError, match=r"node 'd1' field 'source': limit 0/1 spikes into a spiking or "
                                                  r"readout group .*got graded values of 'enc'"):
            compile_graph(spiking, target)
    from_input = Graph((nodes[0], Dense("d1", "x", np.ones((3, 4))), lif), outputs=("sd",))
    with pytest.raises(DesignRuleError, match=r"node 'd1' field 'source'.*got graded values of 'x'"):
        compile_graph(from_input, "spinnaker")
    readout_read = Graph(tuple(nodes) + (Dense("d3", "out", np.ones((1, 2))), SigmaDecoder("o2", ("d3",), (1,))),
                         outputs=("o2",))
    with pytest.raises(UnsupportedError, match=r"node 'o2' field 'inputs'.*a sigma decoder is a readout"):
        compile_graph(readout_read, "loihi2")


def test_spinnaker_refuses_the_family_naming_graded_messages():
    with pytest.raises(DesignRuleError, match=r"node 'enc' field 'type': sPyNNaker's cells send binary spikes only: "
                                              r"a sigma-delta group sends graded \(multi-bit\) messages.*compile it "
                                              r"with --target loihi2"):
        compile_graph(sdnn(), "spinnaker")


def test_a_saved_float_sdnn_compiles_from_the_cli(tmp_path, capsys):
    graph = sdnn()
    save_graph(graph, tmp_path / "sdnn.snnc")
    x = graded_input(3)
    np.testing.assert_array_equal(run_float(load_graph(tmp_path / "sdnn.snnc"), x).spikes["out"],
                                  run_float(graph, x).spikes["out"])
    assert main(["compile", str(tmp_path / "sdnn.snnc"), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    summary = capsys.readouterr().out
    assert "sd: sigma-delta value scale 2^8: outputs = float x 16384; threshold error 0, bias error 0; messages " \
           "floored to 6.1e-05" in summary
    assert "enc: sigma-delta value scale 2^0: outputs = float x 64; threshold error 0, bias error 0; messages " \
           "exact" in summary
    assert "out: sigma-delta value scale 2^8: outputs = float x 1.04858e+06 (a readout: its sigma)" in summary
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passes"]["lower_loihi"]["layers"]["sd"]["scale_exp"] == 8
    lowered = load_graph(tmp_path / "out" / "lowered.snnc")
    expected = compile_graph(graph, "loihi2").graph
    np.testing.assert_array_equal(run_loihi(lowered, x).spikes["out"], run_loihi(expected, x).spikes["out"])
    np.savez(tmp_path / "x.npz", x=x)
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz"), "--no-lava"]) == 0
    printed = capsys.readouterr().out
    assert "emulator vs float reference, 'sd': 100.0000% of graded values equal (sum |x| " in printed
    assert "output 'out' value error vs float (graded, in float units): 0.0000%: within the bound" in printed


@pytest.mark.lava
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_the_lowered_sdnn_runs_in_lava_equal_to_the_emulator(conv):
    lowered = compile_graph(conv_sdnn() if conv else sdnn(), "loihi2").graph
    rng = np.random.default_rng(4)
    x = rng.integers(-7, 8, (1, 20, 1, 6, 6)) if conv else graded_input(4, batch=1, steps=20)
    emulated = assert_lava_equals_emulator(lowered, x)
    assert np.count_nonzero(emulated.spikes["sd"]) > 10


def assert_lava_equals_emulator(lowered: Graph, x: np.ndarray):
    """Every group's messages and Lava Vars (sigma, act, residue) on stock Lava equal the emulator's; returns
    the emulator's traces."""
    from snnc.backends.lava_loihi2.run import run_lava
    emulated, lava = run_loihi(lowered, x), run_lava(lowered, x)
    for name in GROUPS:
        np.testing.assert_array_equal(lava.spikes[name], emulated.spikes[name], err_msg=name)
        for var, values in emulated.states[name].items():
            np.testing.assert_array_equal(lava.states[name][var], values, err_msg=f"{name} {var}")
    return emulated


def test_an_sdnn_whose_output_stays_zero_is_reported_by_liveness(tmp_path, capsys):
    """A threshold no change of the activation reaches: the hidden group never sends, the decoder stays 0;
    compile (with --calib) warns and verify fails, naming the graded output (before: 'every spiking
    output spiked')."""
    save_graph(sdnn(threshold=1e4), tmp_path / "silent.snnc")
    np.savez(tmp_path / "x.npz", x=graded_input(3))
    assert main(["compile", str(tmp_path / "silent.snnc"), "--target", "emulator", "--calib",
                 str(tmp_path / "x.npz"), "-o", str(tmp_path / "out")]) == 0
    assert "warning: liveness: output 'out' emitted no nonzero value on the 3 calibration samples" in \
        capsys.readouterr().out
    assert main(["verify", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz")]) == 1
    assert "FAIL: liveness: output 'out' emitted no nonzero value on the 3 verify samples" in capsys.readouterr().out
    save_graph(sdnn(), tmp_path / "live.snnc")
    assert main(["compile", str(tmp_path / "live.snnc"), "--target", "emulator", "-o", str(tmp_path / "live")]) == 0
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "live"), "--input", str(tmp_path / "x.npz")]) == 0
    assert "liveness: every spiking group can fire and every spiking output spiked, every graded output sent a " \
           "nonzero value" in capsys.readouterr().out


def test_a_sigma_delta_fan_in_beyond_a_core_is_refused_with_what_to_change():
    """partition_fanin relays 0/1-spike groups only; a sigma-delta group over the 16384-axon limit gets a
    design-rule error saying so and what to change (before: 'needs fan-in partitioning', which the
    pipeline had just declined to do)."""
    rng = np.random.default_rng(0)
    wide = 20000
    graph = Graph((GradedInput("x", (wide,), bits=8), DeltaEncoder("enc", ("x",), (wide,), threshold=2.0),
                   Dense("d1", "enc", rng.integers(-1, 2, (4, wide)) / 4.0),
                   SigmaDelta("sd", ("d1",), (4,), threshold=8.0, bias=0.25),
                   Dense("d2", "sd", np.full((2, 4), 0.5)), SigmaDecoder("out", ("d2",), (2,))), outputs=("out",))
    used = int(np.count_nonzero(np.any(graph.node("d1").weight != 0, axis=0)))
    with pytest.raises(DesignRuleError) as info:
        compile_graph(graph, "loihi2")
    assert f"node 'sd' field 'fan-in': partition_fanin splits groups of 0/1 spikes only (a sigma-delta group's " \
           "graded partial sums are not split): give the layer fewer inputs per neuron (a convolution, or a " \
           f"narrower layer) or compile with --target emulator: limit 16384 input axons per core, got {used}" \
           in str(info.value)


def wide_sdnn() -> Graph:
    """A realistic width: 600 8-bit inputs -> delta (threshold 2) -> dense (w in {-1/4, 0, 1/4}) -> 300 ReLU
    sigma-delta (threshold 1/2, bias 1/4) -> dense (w multiples of 1/4 in [-1, 1]) -> 2 decoders. Its
    worst case (every input at its largest at once) is ~280x what 'out''s sigma reaches on real inputs."""
    rng = np.random.default_rng(0)
    n_in, n_hid = 600, 300
    return Graph((GradedInput("x", (n_in,), bits=8), DeltaEncoder("enc", ("x",), (n_in,), threshold=2.0),
                  Dense("d1", "enc", rng.integers(-1, 2, (n_hid, n_in)) / 4),
                  SigmaDelta("sd", ("d1",), (n_hid,), threshold=0.5, bias=0.25),
                  Dense("d2", "sd", rng.integers(-4, 5, (2, n_hid)) / 4), SigmaDecoder("out", ("d2",), (2,))),
                 outputs=("out",))


WIDE_X = np.random.default_rng(0).integers(-100, 100, (2, 10, 600))
INT32_MAX = 2 ** 31 - 1


def decoded_output(result, x: np.ndarray) -> np.ndarray:
    """The emulator's 'out' in float units, aligned with the float reference's steps (latency removed)."""
    lag = dict(result.graph.latency_steps)["out"]
    scale = result.reports["lower_loihi"]["layers"]["out"]["output_scale"]
    return run_loihi(result.graph, x).spikes["out"][:, lag:] / scale


def test_without_calibration_the_wide_sdnn_loses_its_output_weights_and_the_warning_names_the_cause():
    """The worst case sets K_out = 2^-4, so d2's words w 2^6 K_out / K_sd (w / 2, summed over 300 inputs of
    up to 2^9 x 14062 each: exponent >= 1 for int32) all round to 0 and the decoder stays 0."""
    result = compile_graph(wide_sdnn(), "loihi2")
    layer = result.reports["lower_loihi"]["layers"]["out"]
    assert layer["scale_exp"] == -4 and layer["weight_zeroed"]["d2"]["zeroed"] == 533
    assert layer["warnings"] == [
        "d2: 533 of 533 nonzero weights (100.0%) round to 0 in Loihi 8-bit weights (warning above 10%); the "
        "largest |w| 1 at [0, 0] is 1.33x the median nonzero |w| 0.75: even it rounds to 0, so the scale is set "
        "by the worst-case range of 'out''s sigma (2.471e+06: every input at its largest at once, usually far "
        "above real activity), not by these weights; compile with --calib and representative inputs to scale "
        "the layer by its observed ranges"]
    assert not np.any(decoded_output(result, WIDE_X)) and np.any(run_float(wide_sdnn(), WIDE_X).spikes["out"])


def test_calibration_scales_the_wide_sdnn_by_its_observed_ranges_and_the_output_agrees():
    """With --calib, K_out = 2^3: the largest k with 2 x (observed |sigma| 8742.9) x 2^12 K within half of
    int32 (2^4 would need 1.15e9 > 1.07e9). K_sd stays 2^3 (2 x its observed 7306 is above the worst case
    14062, so the worst case is kept) and the encoder's K = 1 is set by its input bits. Tolerance: the
    threshold, bias and both synapses' words are exact (asserted), so 'sd''s integer values are its float
    values times 2^12 K_sd; only what a reader decodes of each message is floored, by less than
    message_floor_lsb = 1 / (2^6 K_sd) (the sender's residue keeps the exact d, so the floors do not
    compound in 'sd'). The decoder sums W2 @ messages, so after n_j messages of neuron j its sigma is off by
    less than message_floor_lsb x sum_j |W2_ij| n_j. (Here every value is a multiple of 1/4 and the floor
    drops nothing; the bound holds regardless.)"""
    result = compile_graph(wide_sdnn(), "loihi2", calibration=WIDE_X)
    layers = result.reports["lower_loihi"]["layers"]
    assert [layers[n]["scale_exp"] for n in GROUPS] == [0, 3, 3]
    assert layers["out"]["weight_zeroed"]["d2"]["zeroed"] == 0
    assert layers["sd"]["weight_rel_rms_error"] == {"d1": 0.0} and layers["out"]["weight_rel_rms_error"] == {"d2": 0.0}
    assert (layers["sd"]["threshold_error"], layers["sd"]["bias_max_abs_error"]) == (0.0, 0.0)
    floats = run_float(wide_sdnn(), WIDE_X)
    ours = decoded_output(result, WIDE_X)
    steps = ours.shape[1]
    sent = np.cumsum(floats.spikes["sd"] != 0, axis=1)[:, :steps]                       # n_j(t)
    tolerance = layers["sd"]["message_floor_lsb"] * sent @ np.abs(wide_sdnn().node("d2").weight).T
    error = np.abs(ours - floats.spikes["out"][:, :steps])
    assert np.count_nonzero(ours) == ours.size and np.all(error <= tolerance)


def test_the_calibrated_report_gives_the_observed_ranges_and_the_remaining_wrap_risk(tmp_path, capsys):
    """The observed maxima are the float reference's; the worst case stays reported, now 37.7x int32 for
    'out''s sigma and d2's W @ messages at K_out = 2^3 (warned: unseen inputs that large would wrap);
    the summary prints the calibrated scale and the warnings."""
    result = compile_graph(wide_sdnn(), "loihi2", calibration=WIDE_X)
    layers = result.reports["lower_loihi"]["layers"]
    floats = run_float(wide_sdnn(), WIDE_X)
    out, sd = layers["out"], layers["sd"]
    assert all(layers[n]["calibrated"] for n in GROUPS)
    d2_input = np.abs(floats.spikes["sd"] @ wide_sdnn().node("d2").weight.T).max()
    assert out["calibrated_range"] == {"state": np.abs(floats.states["out"]["sigma"]).max(), "message": 0.0,
                                       "d2 W @ messages": d2_input}
    assert sd["calibrated_range"]["message"] == np.abs(floats.spikes["sd"]).max() == 7306.0
    assert out["calibration_state_fraction"] == pytest.approx(8742.9375 * 4096 * 8 / INT32_MAX)
    worst = out["worst_case"]["sigma"] * 4096 * 8 / INT32_MAX
    assert out["wrap_risk"] == pytest.approx({"state": worst, "d2 W @ messages": worst}) and worst > 37
    assert sd["wrap_risk"] == {} and sd["warnings"] == []
    assert out["warnings"] == [
        "sigma can wrap: every input at its largest at once would reach 37.7x int32 (calibration peak: 13.34% "
        "of it)", "d2: W @ messages can wrap: every input at its largest at once would reach 37.7x int32 before "
        "the weight exponent (calibration peak: 20.24% of it)"]
    save_graph(wide_sdnn(), tmp_path / "wide.snnc")
    np.savez(tmp_path / "calib.npz", x=WIDE_X)
    assert main(["compile", str(tmp_path / "wide.snnc"), "--target", "loihi2", "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(tmp_path / "out")]) == 0
    summary = capsys.readouterr().out
    assert "out: sigma-delta value scale 2^3 (calibrated: observed |state| 13.34% of int32): outputs = float x " \
           "32768 (a readout: its sigma)" in summary
    assert "warning: out: sigma can wrap: every input at its largest at once would reach 37.7x int32" in summary
    sbc = compile_graph(wide_sdnn(), "loihi2", calibration=WIDE_X, weight_rounding="sbc")
    assert sbc.reports["lower_loihi"]["layers"]["sd"]["warnings"] == [
        "sigma-delta groups are rounded to nearest: 'sbc' rounding was not used for this group"]


def test_a_calibration_set_quieter_than_real_inputs_is_warned_and_real_inputs_wrap():
    """Calibrated on inputs in [-3, 3] (real ones reach +-100), K_sd = 2^10 and K_out = 2^9: the report warns
    that sd's state and messages and out's sigma can overflow, and on the real inputs they do (sd's
    largest real message, 7306 x 2^16, is beyond 24 bits; the decoded output is far off)."""
    quiet = np.random.default_rng(1).integers(-3, 4, (2, 10, 600))
    result = compile_graph(wide_sdnn(), "loihi2", calibration=quiet)
    layers = result.reports["lower_loihi"]["layers"]
    assert [layers[n]["scale_exp"] for n in GROUPS] == [0, 10, 9]
    assert sorted(layers["sd"]["wrap_risk"]) == ["message", "state"]
    assert sorted(layers["out"]["wrap_risk"]) == ["d2 W @ messages", "state"]
    assert layers["sd"]["warnings"][1].startswith("messages can overflow: every input at its largest at once "
                                                  "would reach 110x the 24-bit graded spikes")
    floats = run_float(wide_sdnn(), WIDE_X)
    assert np.abs(floats.spikes["sd"]).max() * layers["sd"]["output_scale"] > 2 ** 23
    ours = decoded_output(result, WIDE_X)
    assert np.abs(ours - floats.spikes["out"][:, :ours.shape[1]]).max() > 1000


LOWERED_SDNN_GOLDEN = """\
snnc.ir v1 graph "network" timing=hop_latency dt_s=0.001
  %x: GradedInput<4> shape=(4,) bits=8
  %enc: LoihiDelta<4> inputs=(%x) shape=(4,) vth=2 spike_exp=6 state_exp=6
  %d1: LoihiDense<3> source=%enc weight_mant=i[3,4]{-128..128 #37c3af54} weight_exp=7 num_weight_bits=8 sign_mode='mixed' delay_steps=0
  %sd: LoihiSigmaDelta<3> inputs=(%d1) shape=(3,) vth=128 bias=i[64] spike_exp=6 state_exp=6
  %d2: LoihiDense<2> source=%sd weight_mant=i[2,3]{-64..64 #85c2e4a4} weight_exp=0 num_weight_bits=8 sign_mode='mixed' delay_steps=0
  %out: LoihiSigma<2> inputs=(%d2) shape=(2,)
  outputs %out
"""


def test_the_lowered_float_sdnn_prints_as_golden_text():
    """K_sd = 2^8: vth = 0.5 x 256, bias 0.25 x 256; d1's words w 2^6 K_sd / K_enc = w 2^14 = mantissa
    (w x 128) 2^7 (8-bit mixed words reach 128 in steps of 2); d2's w 2^6 K_out / K_sd = w 64 at exponent 0."""
    assert format_graph(compile_graph(sdnn(), "loihi2").graph) == LOWERED_SDNN_GOLDEN


@pytest.mark.lava
def test_the_calibrated_wide_sdnn_runs_in_lava_equal_to_the_emulator():
    """The calibrated scales (K 2^0 / 2^3 / 2^3, d2 words kept) on stock Lava: every group's messages and
    sigma/act/residue equal the emulator's (one sample, 6 steps)."""
    lowered = compile_graph(wide_sdnn(), "loihi2", calibration=WIDE_X).graph
    emulated = assert_lava_equals_emulator(lowered, WIDE_X[:1, :6])
    assert np.count_nonzero(emulated.spikes["out"]) > 0


def test_exporting_the_lowered_float_sdnn_to_net_is_refused_with_what_runs_it(tmp_path, capsys):
    """d1's words are mantissa x 2^7 (golden text above); a .net file stores plain 8-bit integers."""
    save_graph(sdnn(), tmp_path / "sdnn.snnc")
    assert main(["compile", str(tmp_path / "sdnn.snnc"), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "out"), "--format", "net", "-o", str(tmp_path / "x.net")]) == 2
    assert "error: node 'd1' field 'weight_mant * 2^weight_exp': a .net layer holds its weights without an " \
           "exponent; the compiled folder runs them as they are (lowered.snnc, run_on_lava.py, snnc run/verify): " \
           "limit 8-bit integers netx can store, got values in [-16384, 16384]" in capsys.readouterr().err
    assert not (tmp_path / "x.net").exists()
