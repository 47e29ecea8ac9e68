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
    np.savez(held_out, x=rate_encode(x_test[:40], chosen["steps"]), y=y_test[:40], values=x_test[:40],
             levels=np.int64(PIXEL_MAX))
    capsys.readouterr()
    assert main(["run", str(compiled), "--input", str(held_out)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"emulate: 40 samples x {chosen['steps']} steps")
    assert f"accuracy: {np.mean(_policy_predictions(graph, x_test[:40], chosen)[0] == y_test[:40]):.4f}" in out


def _policy_predictions(graph, pixels, chosen):
    x = np.repeat(pixels[:, None], chosen["steps"], axis=1)
    return run_with_early_exit(graph, x, chosen["steps"], chosen["exit_margin"])


def test_snnc_run_digits_feeds_the_static_input_and_applies_the_policy(compressed, capsys):
    """--digits gives a static-input artifact the held-out pixels at every step (not 0/1 spikes) and
    runs the compiled policy: at most `steps` steps, early exit at the margin, mean steps reported."""
    compiled = compressed[0]
    chosen = json.loads((compiled / "report.json").read_text())["passes"]["compress_timesteps"]["chosen"]
    graph = load_graph(compiled / "lowered.snnc")
    _, x_test, _, y_test = digits_split()
    predictions, used = _policy_predictions(graph, x_test[:60], chosen)
    capsys.readouterr()
    assert main(["run", str(compiled), "--digits", "--samples", "60"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        f"compressed policy: at most {chosen['steps']} steps, early exit at a lead of {chosen['exit_margin']} "
        f"spikes; mean steps {used.mean():.2f}",
        f"accuracy: {np.mean(predictions == y_test[:60]):.4f} ({int(np.sum(predictions == y_test[:60]))}/60)"]
    assert np.mean(predictions == y_test[:60]) > 0.9          # 0/1 spikes as pixel values would not be


def test_static_input_given_only_spikes_is_refused(compressed, tmp_path, capsys):
    """0/1 spikes fed as pixel values would silently give a wrong accuracy."""
    _, x_test, _, y_test = digits_split()
    spikes_only = tmp_path / "spikes_only.npz"
    np.savez(spikes_only, x=rate_encode(x_test[:4], 20), y=y_test[:4])
    capsys.readouterr()
    assert main(["run", str(compressed[0]), "--input", str(spikes_only)]) == 2
    assert capsys.readouterr().err == (
        "error: node 'input' field 'input': limit static values: 'values' (samples, *shape) and 'levels' = 16 "
        "in the --input .npz, or --digits (the input was made static by --compress-timesteps), got spike "
        "trains 'x' only\n")


def test_static_input_at_another_full_scale_is_refused(compressed, tmp_path, capsys):
    _, x_test, _, y_test = digits_split()
    other = tmp_path / "other.npz"
    np.savez(other, x=rate_encode(x_test[:4], 20), y=y_test[:4], values=x_test[:4] * 2, levels=np.int64(32))
    capsys.readouterr()
    assert main(["run", str(compressed[0]), "--input", str(other)]) == 2
    assert capsys.readouterr().err == ("error: node 'input' field 'levels': limit 16 (the full scale the static "
                                       "input was compiled for), got 32\n")


def test_verify_does_not_compare_a_static_input_with_the_float_spikes(compressed, capsys):
    capsys.readouterr()
    assert main(["verify", str(compressed[0]), "--digits", "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "emulator vs Lava fixed_pt: identical spikes, u and v at every step for every node" in out
    assert "float reference: not compared (the input was made static by --compress-timesteps" in out


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


def test_emitted_lava_script_runs_the_same_policy_on_the_static_input(compressed, capsys):
    """run_on_lava.py (real Lava fixed_pt) prints what `snnc run` prints for the emulator on the same
    samples: the policy's mean steps and the accuracy."""
    import subprocess
    import sys
    compiled = compressed[0]
    capsys.readouterr()
    assert main(["run", str(compiled), "--digits", "--samples", "3"]) == 0
    expected = capsys.readouterr().out.splitlines()[1:]
    done = subprocess.run([sys.executable, str(compiled / "run_on_lava.py"), "--digits", "--samples", "3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == expected


def test_report_measures_activity_under_the_policy(compressed, capsys):
    """SynOps and updates stop when a sample exits early: the report's accuracy and mean steps are the
    policy's (as `snnc run` prints them), not the full-length run's."""
    compiled = compressed[0]
    capsys.readouterr()
    assert main(["run", str(compiled), "--digits", "--samples", "30"]) == 0
    run_lines = capsys.readouterr().out.splitlines()
    assert main(["report", str(compiled), "--digits", "--samples", "30", "--json"]) == 0
    act = json.loads(capsys.readouterr().out)["activity"]
    assert f"mean steps {act['policy_mean_steps']:.2f}" in run_lines[1]
    assert f"accuracy: {act['accuracy']:.4f}" in run_lines[2]
    latency = json.loads((compiled / "report.json").read_text())["passes"]["compress_timesteps"]["reference"]["latency"]
    assert act["mean_steps_run"] == pytest.approx(act["policy_mean_steps"] + latency)
    neurons = sum(layer["neurons"] for name, layer in act["layers"].items() if name != "input")
    assert act["totals"]["neuron_updates_per_sample"] == pytest.approx(neurons * act["mean_steps_run"])
