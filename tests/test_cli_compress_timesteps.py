"""`snnc compile --compress-timesteps` on the bundled digits model: the chosen run-time policy in the
summary and in report.json, and the compiled artifact running that policy in the emulator.

30 calibration samples (the first of the training split; 15 choose, 15 check) keep the compile to a
few seconds. So few samples check little (a policy that is never wrong on 15 passes any budget); the
benchmark measures policies chosen on the whole training split."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from snnc.compiler.cli import main
from snnc.datasets.digits import PIXEL_MAX, digits_split, rate_encode
from snnc.ir.nodes import GradedInput
from snnc.ir.serialize import load_graph
from snnc.simulators.early_exit import run_with_early_exit

SAMPLES = 30


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    x_train, _, y_train, _ = digits_split()
    path = tmp_path_factory.mktemp("calib") / "calib.npz"
    values, labels = x_train[:SAMPLES], y_train[:SAMPLES]
    np.savez(path, x=rate_encode(values, 20), y=labels, values=values, levels=np.int64(PIXEL_MAX))
    return path, values, labels


@pytest.fixture(scope="module")
def compressed(calibration, tmp_path_factory):
    """(compiled directory, the compile's printed summary lines)."""
    from conftest import DIGITS_MODEL
    out = tmp_path_factory.mktemp("compressed")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(["compile", str(DIGITS_MODEL), "-o", str(out), "--calib", str(calibration[0]),
                     "--compress-timesteps", "--error-budget", "0.02"]) == 0
    return out, printed.getvalue().splitlines()


def test_summary_and_report_show_the_chosen_policy(compressed):
    out, summary = compressed
    assert summary[-2:] == [
        "timestep compression (error budget 2.00%): static input yes, v_init 0.5 x threshold, threshold x 1, "
        "5 of 20 steps, early exit at a lead of 1 spikes",
        "  calibration: 1.73 mean steps (3.73 with pipeline latency), accuracy 100.00% vs 100.00% at 20 steps; "
        "check half: 0 worse, 0 better of 15"]
    report = json.loads((out / "report.json").read_text())["passes"]["compress_timesteps"]
    chosen = report["chosen"]
    assert {k: chosen[k] for k in ("static_input", "v_init_fraction", "threshold_scale", "steps", "exit_margin")} \
        == {"static_input": True, "v_init_fraction": 0.5, "threshold_scale": 1.0, "steps": 5, "exit_margin": 1}
    assert chosen["mean_steps"] == pytest.approx(52 / 30) and chosen["samples"] == SAMPLES
    assert chosen["mean_hardware_steps"] == chosen["mean_steps"] + report["reference"]["latency"] == \
        pytest.approx(52 / 30 + 2)
    assert report["epsilon"] == 0.02 and report["changed"] is True
    assert (report["selection"]["samples"], report["validation"]["samples"]) == (15, 15)
    assert report["validation"]["drop_upper_bound"] <= 0.02 and report["rejected_by_validation"] == 3


def test_compiled_graph_runs_its_policy_in_the_emulator(compressed, calibration, tmp_path, capsys):
    """The lowered artifact with the reported policy reproduces the reported calibration accuracy and
    mean steps; `snnc run` runs it on held-out static inputs (a GradedInput takes the pixel values)."""
    compiled, (_, values, labels) = compressed[0], calibration
    chosen = json.loads((compiled / "report.json").read_text())["passes"]["compress_timesteps"]["chosen"]
    graph = load_graph(compiled / "lowered.snnc")
    assert chosen["static_input"] and isinstance(graph.node("input"), GradedInput)
    x = np.repeat(values[:, None], chosen["steps"], axis=1)
    predictions, used = run_with_early_exit(graph, x, chosen["steps"], chosen["exit_margin"])
    assert np.mean(predictions == labels) == chosen["accuracy"] and used.mean() == chosen["mean_steps"]

    _, x_test, _, y_test = digits_split()
    held_out = tmp_path / "held_out.npz"
    np.savez(held_out, x=np.repeat(x_test[:40, None], chosen["steps"], axis=1), y=y_test[:40])
    capsys.readouterr()
    assert main(["run", str(compiled), "--input", str(held_out)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"emulator: 40 samples x {chosen['steps']} steps")
    full_length = run_with_early_exit(graph, np.repeat(x_test[:40, None], chosen["steps"], axis=1),
                                      chosen["steps"], None)[0]
    assert f"accuracy: {np.mean(full_length == y_test[:40]):.4f}" in out


def test_compression_flags_need_labelled_calibration_data(calibration, tmp_path, capsys):
    from conftest import DIGITS_MODEL
    model, out = str(DIGITS_MODEL), str(tmp_path / "out")
    unlabelled = tmp_path / "unlabelled.npz"
    np.savez(unlabelled, x=np.zeros((4, 20, 64), np.uint8))
    half_static = tmp_path / "half_static.npz"
    np.savez(half_static, x=np.zeros((4, 20, 64), np.uint8), y=np.zeros(4, np.int64), values=np.zeros((4, 64)))
    cases = [
        (["--compress-timesteps"], "error: --compress-timesteps needs --calib: an .npz with x (samples, steps, "
         "*shape) 0/1 spikes and y labels"),
        (["--calib", str(unlabelled), "--compress-timesteps"],
         f"error: file '{unlabelled}': --compress-timesteps needs labels 'y' (one per sample of 'x')"),
        (["--calib", str(half_static), "--compress-timesteps"],
         f"error: file '{half_static}': 'values' needs 'levels' too (static inputs and their rate code's full "
         "scale)"),
        (["--calib", str(calibration[0]), "--error-budget", "0.01"],
         "error: --error-budget applies only with --compress-timesteps"),
        (["--calib", str(calibration[0]), "--compress-timesteps", "--target", "spinnaker"],
         "error: --compress-timesteps: target 'spinnaker' has no compress_timesteps pass "
         "(`snnc passes --target spinnaker`)"),
    ]
    for flags, message in cases:
        assert main(["compile", model, "-o", out, *flags]) == 2
        assert capsys.readouterr().err.strip().splitlines()[-1] == message
    with pytest.raises(SystemExit) as exit_:
        main(["compile", model, "-o", out, "--compress-timesteps", "--error-budget", "1.5"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "snnc compile: error: argument --error-budget: expected a fraction in [0, 1), got 1.5")
