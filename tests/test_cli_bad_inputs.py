"""Bad inputs to the `snnc` command line are one typed line with exit 2; a bug in snnc is one line with exit 3
and its traceback in a file. Never a traceback on the terminal."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from snnc.compiler import commands
from snnc.compiler.cli import main


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from conftest import DIGITS_MODEL
    out = tmp_path_factory.mktemp("bad_inputs") / "out"
    assert main(["compile", str(DIGITS_MODEL), "--target", "emulator", "-o", str(out)]) == 0
    return out


def refusal(capsys, argv) -> str:
    """stderr of an invocation that must exit 2, as one line."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err.strip()


def test_input_that_is_a_npy_0d_x_or_2d_y_is_refused(compiled, tmp_path, capsys):
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((2, 5, 64), np.uint8))
    assert refusal(capsys, ["run", str(compiled), "--input", str(npy)]) == (
        f"error: file '{npy}': expected an .npz (a zip of arrays) with array 'x' (and optional 'y'); save with "
        "np.savez(path, x=..., y=...)")
    scalar = tmp_path / "scalar.npz"
    np.savez(scalar, x=np.array(1))
    assert refusal(capsys, ["run", str(compiled), "--input", str(scalar)]) == (
        f"error: file '{scalar}': 'x' must be (samples, steps, *shape), got 0-D shape ()")
    matrix_labels = tmp_path / "y2.npz"
    np.savez(matrix_labels, x=np.zeros((2, 5, 64), np.uint8), y=np.zeros((2, 3), np.int64))
    assert refusal(capsys, ["run", str(compiled), "--input", str(matrix_labels)]) == (
        f"error: file '{matrix_labels}': 'y' must be one integer label per sample (1-D), got int64 shape (2, 3)")
    no_x = tmp_path / "no_x.npz"
    np.savez(no_x, spikes=np.zeros((2, 5, 64), np.uint8))
    assert refusal(capsys, ["verify", str(compiled), "--input", str(no_x)]) == (
        f"error: file '{no_x}': expected an .npz with array 'x' (and optional 'y'); it holds ['spikes']")


def test_swapped_steps_and_samples_axes_are_named(compiled, tmp_path, capsys):
    swapped = tmp_path / "swapped.npz"
    np.savez(swapped, x=np.zeros((20, 3, 64), np.uint8), y=np.array([0, 1, 2]))
    assert refusal(capsys, ["run", str(compiled), "--input", str(swapped)]) == (
        f"error: file '{swapped}': 'y' has 3 labels for 20 samples in 'x'; 'x' has 3 steps: are its axes "
        "(steps, samples)? snnc reads 'x' as (samples, steps, *shape)")


def test_inputs_above_the_cap_are_refused_before_allocation(compiled, tmp_path, capsys):
    assert refusal(capsys, ["run", str(compiled), "--steps", "100000"]) == (
        "error: input --digits --steps 100000: 360 x 100000 x 64 = 2304000000 values exceed the cap of "
        "134217728 (samples x steps x inputs); use fewer --samples or --steps")
    bomb = tmp_path / "bomb.npz"           # a 32 GiB array declared in a tiny file: the header is enough
    with open(bomb, "wb") as handle:
        np.savez_compressed(handle, x=np.broadcast_to(np.uint8(0), (2, 1, 1)))
    _declare_shape(bomb, (2 ** 20, 2 ** 9, 64))
    assert refusal(capsys, ["run", str(compiled), "--input", str(bomb)]) == (
        f"error: input {bomb}: 1048576 x 512 x 64 = 34359738368 values exceed the cap of 134217728 "
        "(samples x steps x inputs); use fewer --samples or --steps")


def _declare_shape(path, shape) -> None:
    """Rewrite the header of member x.npy so it declares ``shape`` (the data stays tiny)."""
    import zipfile
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("x.npy")
    header = raw[:raw.index(b"\n") + 1].decode("latin1")
    header = re.sub(r"'shape': \([^)]*\)", f"'shape': {shape}", header)
    header = header[:-1].ljust(len(raw[:raw.index(b'\n')]), " ") + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.encode("latin1") + raw[raw.index(b"\n") + 1:])


def test_report_json_that_is_a_list_or_lacks_passes_is_refused(compiled, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    for content, problem in (([1, 2], "expected a JSON object, got list"),
                             ({"target": "emulator"}, "field 'passes': expected an object, got missing"),
                             ({"target": 3, "passes": {}}, "field 'target': expected a string, got int")):
        _rewrite_artifact(copy, "report.json", json.dumps(content))
        for command in (["report", str(copy), "--no-activity"], ["run", str(copy), "--samples", "2"],
                        ["verify", str(copy), "--no-lava", "--samples", "2"]):
            assert refusal(capsys, command) == (f"error: file '{copy / 'report.json'}': {problem}: recompile with "
                                                "snnc compile")


def _rewrite_artifact(compiled, name: str, text: str) -> None:
    """Change one artifact the way a user editing it would, keeping the manifest's hash in step (when there
    is one) so the check under test is the one reached."""
    (compiled / name).write_text(text)
    manifest = compiled / commands.MANIFEST_FILE
    if manifest.exists():
        import hashlib
        data = json.loads(manifest.read_text())
        data["files"][name] = hashlib.sha256(text.encode()).hexdigest()
        manifest.write_text(json.dumps(data))


def test_empty_torch_file_is_refused(tmp_path, capsys):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert refusal(capsys, ["compile", str(empty), "-o", str(tmp_path / "out")]) == (
        f"error: file '{empty}': not loadable with weights_only=True: EOFError: (no message). snnc never unpickles "
        "code; save models with snnc.frontends.torch_bundle.save_bundle")


def test_an_unexpected_exception_is_one_line_with_exit_3_and_a_traceback_file(monkeypatch, capsys):
    def broken(target):
        return {}["no such pass list"]
    monkeypatch.setattr(commands, "pass_list", broken)
    assert main(["passes", "--target", "loihi2"]) == 3
    err = capsys.readouterr().err
    match = re.fullmatch(r"internal error in passes: KeyError; details in (\S+); please report\n", err)
    assert match, err
    details = open(match.group(1)).read()
    assert details.startswith("snnc 'passes' '--target' 'loihi2'\n")
    assert "Traceback (most recent call last)" in details and "no such pass list" in details
