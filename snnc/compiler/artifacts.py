"""The folder ``snnc compile`` writes: which files are snnc's, how they are written, how they are checked.

``snnc-manifest.json`` lists every file snnc wrote with its sha256 (and the model file's path and sha256).
Writing: the output folder must be new, empty, or hold only the files of an earlier manifest (those are
removed first, so nothing of an earlier compile for another target survives); the folder itself and every
file are opened without following symlinks, and a file is created only where nothing exists. Reading
(``run``, ``verify``, ``report``, ``inspect``, ``export``): a file's sha256 must equal the manifest's, else
``ModifiedArtifactError`` says to recompile.

The files of a compile (``write_compiled``) and their readers (``load_compiled_graph``, ``load_report``,
``compiled_backends``, ``compiled_policy``) live here too: every command that reads a compiled folder goes
through them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from snnc.backends.registry import BACKENDS, TargetBackends
from snnc.compiler.pipeline import CompileResult
from snnc.errors import ModelFileError, ModifiedArtifactError, SnncError
from snnc.ir.graph import Graph
from snnc.ir.printer import format_graph
from snnc.ir.serialize import graph_bytes, load_graph

MANIFEST_FILE = "snnc-manifest.json"
MANIFEST_KIND = "snnc compiled directory"
MANIFEST_VERSION = 1
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def sha256_of(data: bytes) -> str:
    """sha256 of ``data`` as 64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_folder(out: Path) -> list[str]:
    """Refuse an output folder snnc may not write into; the names of snnc's earlier files found there."""
    if str(out) in ("", "."):
        raise SnncError(f"output folder {str(out)!r}: name a folder for the compiled files (snnc never writes "
                        "into the current folder)")
    if out.is_symlink():
        raise SnncError(f"output folder '{out}' is a symbolic link: snnc writes only into real folders")
    if not out.exists():
        return []
    if not out.is_dir():
        raise SnncError(f"output folder '{out}' exists and is not a folder")
    found = sorted(p.name for p in out.iterdir())
    if not found:
        return []
    previous = _manifest_files(out) if MANIFEST_FILE in found else None
    if previous is None:
        raise SnncError(f"output folder '{out}' is not empty and was not written by snnc compile (no "
                        f"{MANIFEST_FILE}): choose a new or empty folder")
    foreign = [name for name in found if name not in previous and name != MANIFEST_FILE]
    if foreign:
        raise SnncError(f"output folder '{out}' holds files snnc did not write: {', '.join(foreign)}; "
                        "choose a new or empty folder")
    return [name for name in found if name != MANIFEST_FILE]


def _manifest_files(out: Path) -> dict[str, str] | None:
    """The files an earlier manifest lists (None when it is not an snnc manifest)."""
    try:
        data = json.loads((out / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    files = data.get("files") if isinstance(data, dict) and data.get("kind") == MANIFEST_KIND else None
    if not isinstance(files, dict) or not all(isinstance(k, str) for k in files):
        return None
    return files


class ArtifactWriter:
    """Writes a compiled folder: ``open`` clears snnc's earlier files, ``add`` creates one file (never
    through a symlink, never over an existing file), ``close`` writes the manifest."""

    def __init__(self, out: Path, model: Path, model_sha256: str) -> None:
        self.out, self.model, self.model_sha256 = out, model, model_sha256
        self.files: dict[str, str] = {}
        self.fd: int | None = None

    def open(self) -> None:
        """Check the folder, create it, open it without following links and remove snnc's files of an earlier compile
        (and its manifest)."""
        previous = check_output_folder(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = os.open(self.out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as exc:
            raise SnncError(f"output folder '{self.out}': cannot open without following links "
                            f"({exc.strerror})") from None
        for name in previous + [MANIFEST_FILE] * (MANIFEST_FILE in os.listdir(self.fd)):
            os.unlink(name, dir_fd=self.fd)

    def add(self, name: str, data: bytes) -> None:
        """Create ``name`` in the folder with ``data``."""
        if "/" in name or name in ("", ".", "..", MANIFEST_FILE):
            raise SnncError(f"artifact name {name!r} is not a plain file name")
        try:
            handle = os.open(name, _CREATE, 0o644, dir_fd=self.fd)
        except FileExistsError:
            raise SnncError(f"'{self.out / name}' appeared while compiling (a file or symbolic link); snnc "
                            "never writes through or over it") from None
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        self.files[name] = sha256_of(data)

    def add_generated(self, write: Callable[[Path], object]) -> None:
        """Add the files ``write(folder)`` creates (a backend's scripts), generated in a private folder."""
        staging = Path(tempfile.mkdtemp(prefix="snnc-artifacts-"))
        try:
            write(staging)
            for path in sorted(staging.iterdir()):
                if path.is_symlink() or not path.is_file():
                    raise SnncError(f"backend wrote '{path.name}', which is not a plain file")
                self.add(path.name, path.read_bytes())
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def close(self) -> None:
        """Write ``snnc-manifest.json`` (model path and sha256, every added file's sha256) and close the folder."""
        manifest = {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION,
                    "model": {"path": str(self.model), "sha256": self.model_sha256}, "files": self.files}
        data = json.dumps(manifest, indent=2).encode()
        handle = os.open(MANIFEST_FILE, _CREATE, 0o644, dir_fd=self.fd)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.close(self.fd)
        self.fd = None


def read_artifact(compiled: Path, name: str) -> bytes:
    """The bytes of one file of a compiled folder, refused unless its sha256 is the manifest's."""
    path = compiled / name
    recorded = _recorded_sha256(compiled, name)
    try:
        if path.is_symlink():
            raise ModifiedArtifactError(str(path), "is a symbolic link, not the file snnc compile wrote; "
                                        "recompile with snnc compile")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(str(path), f"cannot read: {exc.strerror}") from None
    if sha256_of(data) != recorded:
        raise ModifiedArtifactError(str(path), f"sha256 differs from the one snnc compile recorded in "
                                    f"{MANIFEST_FILE}: the file was modified after compiling; recompile with "
                                    "snnc compile")
    return data


def _recorded_sha256(compiled: Path, name: str) -> str:
    """The sha256 the manifest of ``compiled`` records for ``name`` (typed errors when there is none)."""
    if not compiled.is_dir():
        raise ModelFileError(str(compiled), "not a folder written by snnc compile")
    files = _manifest_files(compiled) if (compiled / MANIFEST_FILE).is_file() else None
    if files is None:
        raise ModifiedArtifactError(str(compiled / MANIFEST_FILE), "missing or not an snnc manifest: the folder "
                                    "was not written by this snnc compile; recompile with snnc compile")
    if not isinstance(files.get(name), str):
        raise ModifiedArtifactError(str(compiled / name), f"not listed in {MANIFEST_FILE}; recompile with "
                                    "snnc compile")
    return files[name]


# ------------------------------------------------------------------------------ the files of a compile

SOURCE_FILE, LOWERED_FILE, REPORT_FILE, IR_TEXT_FILE = "source.snnc", "lowered.snnc", "report.json", "ir.txt"
PRUNED_FILE = "pruned.snnc"   # the float graph after the prune pass, when it pruned


def write_compiled(out: Path, model: Path, model_sha256: str, source: Graph, result: CompileResult,
                   report: dict) -> None:
    """Write a compile's folder: the float source graph, the pruned graph when the prune pass changed it,
    the lowered graph, its IR text, ``report.json`` and the target backend's generated files."""
    writer = ArtifactWriter(out, model, model_sha256)
    writer.open()
    writer.add(SOURCE_FILE, graph_bytes(source))
    if result.reports.get("prune", {}).get("changed"):
        writer.add(PRUNED_FILE, graph_bytes(dict(result.steps)["prune"]))
    writer.add(LOWERED_FILE, graph_bytes(result.graph))
    writer.add(IR_TEXT_FILE, format_graph(result.graph).encode())
    writer.add(REPORT_FILE, json.dumps(report, indent=2, default=json_default).encode())
    backends = BACKENDS[report["target"]]
    if backends.write_artifacts is not None:
        writer.add_generated(lambda folder: backends.write_artifacts(result.graph, folder))
    writer.close()


def json_default(value):
    """``json.dumps`` fallback for numpy arrays and scalars (as lists and Python numbers)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(type(value).__name__)


def load_compiled_graph(compiled: Path, name: str) -> Graph:
    """One graph of a compiled folder, after checking it is the file ``snnc compile`` wrote."""
    return load_graph(compiled / name, read_artifact(compiled, name))


def load_report(compiled: Path) -> dict:
    """``report.json`` of a compiled directory: an object with a string ``target`` and a ``passes`` object."""
    path = compiled / REPORT_FILE
    try:
        report = json.loads(read_artifact(compiled, REPORT_FILE).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(str(path), f"cannot read compile report: {exc}") from None
    if not isinstance(report, dict):
        raise ModelFileError(str(path), f"expected a JSON object, got {type(report).__name__}: recompile with "
                             "snnc compile")
    for key, kind in (("target", str), ("passes", dict)):
        if not isinstance(report.get(key), kind):
            found = "missing" if key not in report else type(report[key]).__name__
            raise ModelFileError(str(path), f"field '{key}': expected {'a string' if kind is str else 'an object'}, "
                                 f"got {found}: recompile with snnc compile")
    return report


def compiled_backends(compiled: Path) -> TargetBackends:
    """The backends of the target a directory was compiled for (``report.json``)."""
    target = load_report(compiled).get("target")
    if target not in BACKENDS:
        raise ModelFileError(str(compiled / REPORT_FILE), f"unknown target {target!r}: recompile with snnc compile")
    return BACKENDS[target]


def compiled_policy(compiled: Path) -> dict | None:
    """The run-time policy ``compress_timesteps`` chose for this artifact (None: run every step)."""
    return load_report(compiled)["passes"].get("compress_timesteps", {}).get("chosen")


def check_compiled_target(compiled: Path, target: str) -> None:
    """``snnc verify --target X``: the directory must have been compiled for X."""
    found = load_report(compiled).get("target")
    if found != target:
        raise SnncError(f"'{compiled}' was compiled for target '{found}', not '{target}': recompile with "
                        f"--target {target}")
