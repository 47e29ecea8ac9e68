"""The folder `snnc compile` writes: only into new, empty or snnc's own folders, never through a symlink, with
a manifest of sha256 hashes that run/verify/report/inspect check."""
from __future__ import annotations

import json
import os
import shutil

import pytest

from snnc.compiler.cli import main
from conftest import DIGITS_MODEL


def compile_to(out, *options) -> int:
    return main(["compile", str(DIGITS_MODEL), "-o", str(out), *options])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("folder") / "out"
    assert compile_to(out, "--target", "emulator") == 0
    return out


def test_empty_output_name_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert compile_to("") == 2
    assert one_line_error(capsys) == ("error: output folder '.': name a folder for the compiled files (snnc never "
                                      "writes into the current folder)")
    assert os.listdir(tmp_path) == []


def test_a_folder_snnc_did_not_write_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert compile_to(tmp_path) == 2
    assert one_line_error(capsys) == (f"error: output folder '{tmp_path}' is not empty and was not written by snnc "
                                      "compile (no snnc-manifest.json): choose a new or empty folder")
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_recompiling_clears_the_earlier_compiles_files(tmp_path, capsys):
    out = tmp_path / "out"
    assert compile_to(out, "--target", "spinnaker") == 0
    assert "run_spinnaker.py" in os.listdir(out)
    assert compile_to(out, "--target", "emulator") == 0
    assert sorted(os.listdir(out)) == ["ir.txt", "lowered.snnc", "report.json", "snnc-manifest.json", "source.snnc"]
    (out / "extra.txt").write_text("mine")
    assert compile_to(out) == 2
    assert one_line_error(capsys) == (f"error: output folder '{out}' holds files snnc did not write: extra.txt; "
                                      "choose a new or empty folder")


def test_symlinks_are_never_followed(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    assert compile_to(out, "--target", "emulator") == 0
    (out / "lowered.snnc").unlink()                      # a link where snnc's own file was: removed, not followed
    (out / "lowered.snnc").symlink_to(victim)
    assert compile_to(out, "--target", "emulator") == 0
    assert victim.read_text() == "precious" and not (out / "lowered.snnc").is_symlink()
    (out / "run_on_lava.py").symlink_to(victim)          # a link at a name snnc did not write: refused
    assert compile_to(out) == 2
    assert "holds files snnc did not write: run_on_lava.py" in one_line_error(capsys)
    assert victim.read_text() == "precious"
    linked = tmp_path / "linked"
    linked.symlink_to(out)
    assert compile_to(linked) == 2
    assert one_line_error(capsys) == (f"error: output folder '{linked}' is a symbolic link: snnc writes only into "
                                      "real folders")


def test_manifest_records_every_file_and_the_model(compiled):
    import hashlib
    manifest = json.loads((compiled / "snnc-manifest.json").read_text())
    assert manifest["model"] == {"path": str(DIGITS_MODEL),
                                 "sha256": hashlib.sha256(DIGITS_MODEL.read_bytes()).hexdigest()}
    assert sorted(manifest["files"]) == ["ir.txt", "lowered.snnc", "report.json", "source.snnc"]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((compiled / name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("name", ["lowered.snnc", "source.snnc", "report.json"])
def test_a_modified_artifact_is_refused_with_recompile(compiled, tmp_path, capsys, name):
    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    with open(copy / name, "ab") as handle:
        handle.write(b" ")
    commands = {"lowered.snnc": (["run", str(copy), "--samples", "2"], ["inspect", str(copy)],
                                 ["report", str(copy), "--samples", "2"], ["verify", str(copy), "--no-lava"]),
                "source.snnc": (["inspect", str(copy), "--source"], ["verify", str(copy), "--no-lava"],
                                ["run", str(copy), "--backend", "float", "--samples", "2"]),
                "report.json": (["report", str(copy), "--no-activity"], ["run", str(copy)])}[name]
    for command in commands:
        capsys.readouterr()
        assert main(command) == 2
        assert one_line_error(capsys) == (
            f"error: file '{copy / name}': sha256 differs from the one snnc compile recorded in snnc-manifest.json: "
            "the file was modified after compiling; recompile with snnc compile")


def test_a_folder_without_manifest_is_refused(compiled, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    (copy / "snnc-manifest.json").unlink()
    assert main(["inspect", str(copy)]) == 2
    assert one_line_error(capsys) == (
        f"error: file '{copy / 'snnc-manifest.json'}': missing or not an snnc manifest: the folder was not written "
        "by this snnc compile; recompile with snnc compile")


def test_the_emitted_lava_script_checks_the_artifact_too(tmp_path):
    """run_on_lava.py loads lowered.snnc through the same hash check as `snnc run`."""
    import subprocess
    import sys
    copy = tmp_path / "copy"
    assert compile_to(copy, "--target", "loihi2") == 0
    with open(copy / "lowered.snnc", "ab") as handle:
        handle.write(b" ")
    done = subprocess.run([sys.executable, str(copy / "run_on_lava.py"), "--samples", "1"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: file '{copy / 'lowered.snnc'}': sha256 differs from the one snnc compile recorded in "
        "snnc-manifest.json: the file was modified after compiling; recompile with snnc compile")
