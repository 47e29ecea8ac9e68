"""The `snnc` command line on the bundled digits model: what a user types, what they read."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from snnc.compiler.cli import main


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from conftest import DIGITS_MODEL
    out = tmp_path_factory.mktemp("demo")
    assert main(["compile", str(DIGITS_MODEL), "--target", "loihi2", "-o", str(out)]) == 0
    return out


def test_compile_writes_artifacts_and_a_report(compiled, capsys):
    names = sorted(p.name for p in compiled.iterdir())
    assert names == ["ir.txt", "lowered.snnc", "report.json", "run_on_lava.py", "snnc-manifest.json", "source.snnc"]
    report = json.loads((compiled / "report.json").read_text())
    from conftest import DIGITS_MODEL
    assert report["model"] == str(DIGITS_MODEL)
    assert report["model_sha256"] == hashlib.sha256(DIGITS_MODEL.read_bytes()).hexdigest()
    layers = report["passes"]["lower_loihi"]["layers"]
    assert set(layers) == {"lif_1", "lif_3"}
    assert all(0 < e < 0.05 for layer in layers.values() for e in layer["weight_rel_rms_error"].values())
    assert report["passes"]["lower_loihi"]["latency_steps"] == {"input": 0, "lif_1": 1, "lif_3": 2}


def test_passes_lists_the_loihi2_pipeline_in_order(capsys):
    assert main(["passes", "--target", "loihi2"]) == 0
    assert capsys.readouterr().out.splitlines()[:8] == [
        "1. prune", "2. fold_synapse_bias", "3. check_target_semantics", "4. lower_loihi",
        "5. compress_timesteps", "6. partition_fanin", "7. check_design_rules", "8. place_cores"]


def test_inspect_prints_lowered_ir(compiled, capsys):
    assert main(["inspect", str(compiled)]) == 0
    out = capsys.readouterr().out
    assert out.startswith('snnc.ir v1 graph "digits_snn" timing=hop_latency')
    assert "%lif_3: LoihiLIF<10> inputs=(%syn_2) shape=(10,) du=4095 dv=410" in out


def test_run_reports_accuracy_on_digits(compiled, capsys):
    assert main(["run", str(compiled), "--digits", "--samples", "60"]) == 0
    out = capsys.readouterr().out
    assert "emulate: 60 samples x 20 steps" in out
    accuracy = float(out.split("accuracy: ")[1].split()[0])
    assert accuracy >= 0.9


@pytest.mark.lava
def test_verify_shows_lava_identity(compiled, capsys):
    assert main(["verify", str(compiled), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "emulator vs Lava fixed_pt: identical spikes, u and v at every step for every node" in out


def test_verify_without_lava_keeps_the_demo_within_the_float_bounds(compiled, capsys):
    """`make demo`'s verify on the same 4 samples: the float check applies without Lava too."""
    assert main(["verify", str(compiled), "--digits", "--samples", "4", "--no-lava"]) == 0
    out = capsys.readouterr().out
    assert "output 'lif_3' spike-count error vs float: 3.6% (56 float, 56 emulated spikes): within the bound" in out


def test_run_with_input_file_and_bad_shapes(compiled, tmp_path, capsys):
    good = tmp_path / "x.npz"
    np.savez(good, x=np.zeros((2, 5, 64), np.uint8), y=np.array([0, 1]))
    assert main(["run", str(compiled), "--input", str(good)]) == 0
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((2, 5, 63), np.uint8))
    assert main(["run", str(compiled), "--input", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: input 'input' field 'shape': expected (batch, steps, 64), got (2, 5, 63)")


def test_missing_and_unknown_model_files_are_clear_errors(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.pt"), "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: file '{tmp_path / 'nope.pt'}': no such file"
    odd = tmp_path / "model.xyz"
    odd.write_text("hello")
    assert main(["compile", str(odd), "-o", str(tmp_path / "out")]) == 2
    assert "unsupported model format '.xyz'" in capsys.readouterr().err


def test_subtract_reset_model_compiles_for_loihi2_as_an_snnc_process_and_is_refused_by_spinnaker(tmp_path, capsys):
    import snntorch as snn
    from torch import nn
    from snnc.frontends.torch_bundle import save_bundle
    model = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=0.5, init_hidden=True))
    save_bundle(model, (4,), tmp_path / "sub.pt")
    assert main(["compile", str(tmp_path / "sub.pt"), "-o", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "    lif_1: SnncLIF (reset subtract, comparison gt)" in out
    assert main(["compile", str(tmp_path / "sub.pt"), "--target", "spinnaker", "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "node 'lif_1' field 'reset': spinnaker neurons set v to v_reset when they spike" in err


def test_bad_numbers_and_backend_mismatch_are_clear_errors(compiled, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(compiled), "--samples", "0"])
    assert exit_info.value.code == 2
    assert "argument --samples: expected an integer >= 1, got 0" in capsys.readouterr().err
    assert main(["run", str(compiled), "--backend", "nest", "--samples", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: node 'digits_snn' field 'backend': limit emulate|lava for this compiled graph, got nest")
    labels = tmp_path / "labels.npz"
    np.savez(labels, x=np.zeros((3, 5, 64), np.uint8), y=np.array([0, 1]))
    assert main(["run", str(compiled), "--input", str(labels)]) == 2
    assert "'y' has 2 labels for 3 samples in 'x'" in capsys.readouterr().err


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    from conftest import DIGITS_MODEL
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    assert main(["compile", str(DIGITS_MODEL), "-o", str(blocker)]) == 2
    assert capsys.readouterr().err.strip() == f"error: output folder '{blocker}' exists and is not a folder"


def test_unknown_target_in_report_and_stepless_input_are_clear_errors(compiled, tmp_path, capsys):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    report = json.loads((copy / "report.json").read_text())
    from test_cli_bad_inputs import _rewrite_artifact
    _rewrite_artifact(copy, "report.json", json.dumps({**report, "target": "spinnaker2"}))
    capsys.readouterr()
    for command in (["report", str(copy), "--no-activity"], ["run", str(copy)]):
        assert main(command) == 2
        assert capsys.readouterr().err.endswith("unknown target 'spinnaker2': recompile with snnc compile\n")
    stepless = tmp_path / "stepless.npz"
    np.savez(stepless, x=np.zeros((3, 0, 64), np.uint8))
    assert main(["run", str(compiled), "--input", str(stepless)]) == 2
    assert capsys.readouterr().err.endswith(
        "'x' must be (samples, steps, *shape) with samples, steps >= 1, got shape (3, 0, 64)\n")
