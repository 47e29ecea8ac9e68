"""`snnc compile examples/digits/digits_snn.pt --target T` writes byte-identical artifacts for every target.

The stored sha256 of every file the compiler writes pins the behaviour while the code is reorganised
(issue 10, "must stay true"). A deliberate change that moves a hash updates EXPECTED here and says so in
its commit message. The model path is given relative to the repository root, as the README's command does,
so report.json is byte for byte what the CLI writes there. The .snnc and .npz files are zip archives with
numpy's fixed entry date (1980-01-01), so they are deterministic; compiling twice checks that.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import DIGITS_MODEL, ROOT
from snnc.backends.registry import BACKENDS
from snnc.compiler.commands import compile_model
from snnc.targets.catalog import TARGETS

MODEL = DIGITS_MODEL.relative_to(ROOT)

EXPECTED = {
    "loihi2": {
        "ir.txt": "73c0bd37afaa920284bc45115de2317e11ed1fb60694cebebe471e0459a0b25d",
        "lowered.snnc": "838a3114e77261112f24f0c5125951daf70828c863f1708353e3e844c3e9062b",
        "report.json": "d65599c796db99c54c7e7e741f94868acecdfa506c89c2ef3fb803613d6d5d60",
        "run_on_lava.py": "f826b8536a30a93b79b04e32a1356673e99814b4d1a0366f9c3b806e95f2db2c",
        "snnc-manifest.json": "06ee68d16d2d491615904d7a948fc1cacce120f1bfbaa0f86f58d47059f7e792",
        "source.snnc": "2529bd398864793d1c5d9f93926e4e2be03fb67516bf424b7644a2be56cdc0ee",
    },
    "emulator": {
        "ir.txt": "73c0bd37afaa920284bc45115de2317e11ed1fb60694cebebe471e0459a0b25d",
        "lowered.snnc": "838a3114e77261112f24f0c5125951daf70828c863f1708353e3e844c3e9062b",
        "report.json": "df4ad2067135493de7114dc1e7d7ec50165215e79dd23ed5d002f2223f05dc4e",
        "snnc-manifest.json": "2aa2af56fef91b105e98f479b959cdca54e8ad58fd9a0cdb7dcd9bb8f9ad2ace",
        "source.snnc": "2529bd398864793d1c5d9f93926e4e2be03fb67516bf424b7644a2be56cdc0ee",
    },
    "spinnaker": {
        "ir.txt": "f7a57557afeed4867c343e830da091ede900c72c70cdc3ea97885ec5e3b0853c",
        "lowered.snnc": "f06998eddefd83808d099c56a8bd4ec9018c22e1f2044424b0814468a8ad7e97",
        "report.json": "b19ad1fda5d6b9fc2845d2a72c78a8456201b0feba35c29cd4e1843b20ba55af",
        "run_spinnaker.py": "6f5f4ff35ff32c84a1b5e6b4b426a7cbbcd2afeac43f1930e4d43c4cb5bb9c93",
        "snnc-manifest.json": "ead93d6c04ab49158a23274018cc05e81a910cc868e56173aef9b4bf1f1aa82c",
        "source.snnc": "2529bd398864793d1c5d9f93926e4e2be03fb67516bf424b7644a2be56cdc0ee",
        "spinnaker_network.npz": "a7c26bf00a4130f9979121548e1569cfdfad06636af0804e3cab56d36e00a1d5",
    },
}


def artifact_hashes(out: Path) -> dict[str, str]:
    """sha256 of every file under ``out``, keyed by its path relative to ``out``."""
    return {str(f.relative_to(out)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*")) if f.is_file()}


def compile_digits(target: str, out: Path) -> dict[str, str]:
    """What `snnc compile examples/digits/digits_snn.pt --target TARGET -o OUT` writes, hashed."""
    compile_model(MODEL, target, out)
    return artifact_hashes(out)


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_every_registered_target_has_stored_hashes():
    assert set(EXPECTED) == set(TARGETS) == set(BACKENDS)


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_compiled_artifacts_are_byte_identical(target, tmp_path, at_root):
    first = compile_digits(target, tmp_path / "first")
    second = compile_digits(target, tmp_path / "second")
    assert first == second, "compiling the same model twice wrote different bytes"
    changed = {name: digest for name, digest in first.items() if EXPECTED[target].get(name) != digest}
    assert set(first) == set(EXPECTED[target]), f"files written: {sorted(first)}"
    assert not changed, f"{target}: artifacts changed: {changed}"
