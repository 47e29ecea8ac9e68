"""Precision loss is reported where it happens and fails `snnc verify`.

One outlier weight sets a layer's scale, so every other weight of that synapse rounds to 0 while the
relative RMS weight error stays below 1%: the compile report counts the zeroed weights and warns with the
layer, the count and the outlier; `snnc verify` (also with --no-lava) exits 1 because the output layer's
spike counts leave the float model's by more than the stated bound. The digits model gets no warning.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import random_spikes
from snnc.compiler.cli import main
from snnc.compiler.float_agreement import accuracy_check, output_count_error
from snnc.compiler.pipeline import compile_graph
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.lowering.precision import zeroed_warning, zeroed_weights

# Per target: the outlier, the weights' base and the threshold. SpiNNaker refuses 1e4 at threshold 1
# (the threshold would get fewer than 1024 s16.15 steps), so its outlier model has threshold 50.
OUTLIER_MODELS = {
    "loihi2": dict(outlier=1e4, hidden=0.5, output=0.5, threshold=1.0),
    "spinnaker": dict(outlier=2e5, hidden=1.6, output=40.0, threshold=50.0),
}


def save_outlier_model(path, outlier: float, hidden: float, output: float, threshold: float) -> None:
    """16 -> 12 -> 4 snnTorch network, weights in [base, 1.5 base), one weight (hidden [0, 0]) = outlier."""
    import snntorch as snn
    import torch
    from torch import nn
    from snnc.frontends.torch_bundle import save_bundle
    leaky = dict(beta=0.9, threshold=threshold, init_hidden=True, reset_mechanism="zero")
    model = nn.Sequential(nn.Linear(16, 12), snn.Leaky(**leaky), nn.Linear(12, 4), snn.Leaky(**leaky))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model[0].weight.copy_(hidden * (1 + 0.5 * torch.rand(12, 16, generator=generator)))
        model[0].weight[0, 0] = outlier
        model[2].weight.copy_(output * (1 + 0.5 * torch.rand(4, 12, generator=generator)))
        model[0].bias.zero_()
        model[2].bias.zero_()
    save_bundle(model, (16,), path, name="outlier")


@pytest.fixture(scope="module", params=sorted(OUTLIER_MODELS))
def outlier(request, tmp_path_factory):
    """(target, compiled directory, compile summary, input .npz) of the outlier model."""
    target = request.param
    folder = tmp_path_factory.mktemp(f"outlier_{target}")
    save_outlier_model(folder / "outlier.pt", **OUTLIER_MODELS[target])
    inputs = folder / "x.npz"
    np.savez(inputs, x=random_spikes(0, (8, 20, 16)))
    from snnc.compiler.commands import compile_model
    summary = compile_model(folder / "outlier.pt", target, folder / "out")
    return target, folder / "out", summary, inputs


def test_outlier_weight_is_reported_with_count_and_outlier(outlier):
    target, out, summary, _ = outlier
    report = json.loads((out / "report.json").read_text())
    layer = report["passes"]["lower_loihi" if target == "loihi2" else "lower_spinnaker"]["layers"]["lif_1"]
    zeroed = layer["weight_zeroed"]["syn_0"]
    assert (zeroed["nonzero"], zeroed["zeroed"], zeroed["largest_index"]) == (192, 191, [0, 0])
    assert layer["weight_rel_rms_error"]["syn_0"] < 0.01        # what hid the loss before
    word, median, ratio = {"loihi2": ("Loihi 8-bit weights", "0.6311", "1.58e+04"),
                           "spinnaker": ("SpiNNaker 16-bit weight words", "2.019", "9.9e+04")}[target]
    outlier_value = {"loihi2": "1e+04", "spinnaker": "2e+05"}[target]
    expected = (f"syn_0: 191 of 192 nonzero weights (99.5%) round to 0 in {word} (warning above 10%); the largest "
                f"|w| {outlier_value} at [0, 0] is {ratio}x the median nonzero |w| {median} and sets the scale: "
                "clip it (and outliers like it), or retrain with weight clipping so the layer's weights fit the "
                "word range")
    assert layer["warnings"] == [expected]
    assert f"warning: lif_1: {expected}" in summary.splitlines()
    assert "syn_0" not in json.dumps(report["passes"][next(k for k in report["passes"] if k.startswith("lower_"))]
                                     ["layers"]["lif_3"]["warnings"])


def test_verify_without_reference_fails_when_the_output_leaves_the_float_model(outlier, capsys):
    target, out, _, inputs = outlier
    assert main(["verify", str(out), "--input", str(inputs), "--no-lava"]) == 1
    text = capsys.readouterr().out
    float_spikes, emulated, error = {"loihi2": (632, 61, "90.3%"), "spinnaker": (251, 138, "45.0%")}[target]
    assert "float agreement bound: output spike-count error <= 25%" in text
    assert (f"output 'lif_3' spike-count error vs float: {error} ({float_spikes} float, {emulated} emulated "
            "spikes): FAIL (bound 25%)") in text


@pytest.mark.slow
def test_verify_with_reference_applies_the_same_bound(outlier, capsys):
    """Lava / NEST agree with the emulator here; the float bound still fails the run."""
    _, out, _, inputs = outlier
    assert main(["verify", str(out), "--input", str(inputs), "--samples", "2"]) == 1
    assert "FAIL (bound 25%)" in capsys.readouterr().out


def test_digits_compile_has_no_boilerplate_warning(digits_model_path):
    """The digits model has inhibitory weights and leaky membranes: v's worst case (every inhibitory
    input every step) is recorded, but is no warning; 1.6-2.2% of its weights round to 0 (no warning)."""
    from snnc.frontends.loader import load_model
    graph = load_model(digits_model_path)
    for target, lowering in (("loihi2", "lower_loihi"), ("spinnaker", "lower_spinnaker")):
        layers = compile_graph(graph, target).reports[lowering]["layers"]
        assert {name: layer["warnings"] for name, layer in layers.items()} == {"lif_1": [], "lif_3": []}
        assert all(z["fraction"] < 0.03 for layer in layers.values() for z in layer["weight_zeroed"].values())
        if target == "loihi2":
            assert all(layer["worst_case_v_fraction"] > 1 for layer in layers.values())


def test_zeroed_weights_counts_only_nonzero_float_weights():
    weight = np.array([[0.0, 1e-4, 2.0], [-3.0, 0.0, 0.5]])
    restored = np.array([[0.0, 0.0, 2.0], [-3.0, 0.0, 0.0]])
    counts = zeroed_weights(weight, restored)
    assert (counts.nonzero, counts.zeroed, counts.largest_abs, counts.largest_index) == (4, 2, 3.0, (1, 0))
    assert counts.fraction == 0.5 and counts.median_abs == 1.25
    assert zeroed_weights(np.zeros((2, 2)), np.zeros((2, 2))).fraction == 0.0
    assert zeroed_warning("s", zeroed_weights(weight, restored), "W", "more bits") == (
        "s: 2 of 4 nonzero weights (50.0%) round to 0 in W (warning above 10%); the largest |w| 3 at [1, 0] is "
        "2.4x the median nonzero |w| 1.25: the words are too coarse for this spread; use more bits, clip the "
        "largest weights, or retrain with weight clipping")
    assert zeroed_warning("s", zeroed_weights(weight, np.zeros_like(weight)), "W").endswith(
        ": even it rounds to 0, so the scale is set by the threshold, bias, summed input or another synapse, not "
        "by these weights; lower the threshold or bias, or scale these weights up")
    assert zeroed_warning("s", zeroed_weights(np.ones(10), np.r_[0.0, np.ones(9)]), "W") is None    # 10%


def test_count_error_and_accuracy_bounds():
    float_spikes = np.zeros((2, 5, 3), np.uint8)
    float_spikes[0, :, 1] = 1
    assert output_count_error(float_spikes, float_spikes) == 0.0
    assert output_count_error(float_spikes, np.zeros_like(float_spikes)) == 1.0
    assert output_count_error(np.zeros_like(float_spikes), float_spikes) == float("inf")
    y = np.arange(4) % 2
    assert accuracy_check(y, np.array([1, 1, 0, 1]), y)[0]            # one flipped sample of four: allowed
    within, text = accuracy_check(y, np.array([1, 0, 0, 1]), y)
    assert not within and text.endswith("accuracy drop 50.00 pp: FAIL (bound 25.00 pp)")


def test_voltage_saturation_is_warned_only_when_calibration_reaches_it():
    """An inhibitory layer whose float v, on calibration data, falls to the integer v's floor gets the
    warning; the same layer without calibration data only records its worst case."""
    weight = np.concatenate([np.full((4, 8), 0.5), -np.full((4, 8), 0.5)], axis=1)
    graph = Graph((Input("x", (16,)), Dense("d", "x", weight),
                   CubaLIF("n", ("d",), (4,), current_decay=1.0, voltage_decay=0.1, threshold=1.0, reset="zero")),
                  outputs=("n",))
    inhibitory_only = np.zeros((4, 30, 16), np.uint8)
    inhibitory_only[:, :, 8:] = 1
    worst = compile_graph(graph, "emulator").reports["lower_loihi"]["layers"]["n"]
    assert worst["warnings"] == [] and worst["worst_case_v_fraction"] > 1
    calibrated = compile_graph(graph, "emulator", calibration=inhibitory_only).reports["lower_loihi"]["layers"]["n"]
    assert len(calibrated["warnings"]) == 1 and calibrated["warnings"][0].startswith(
        "v can saturate at -(2^23-1): on calibration data the float v fell to ")
    quiet = compile_graph(graph, "emulator", calibration=random_spikes(5, (4, 30, 16), 0.05))
    assert quiet.reports["lower_loihi"]["layers"]["n"]["warnings"] == []
