"""Pick the frontend for a model file by its extension."""
from __future__ import annotations

from pathlib import Path

from snnc.errors import ModelFileError
from snnc.ir.graph import Graph

FORMATS = {".pt": "snnc torch bundle", ".pth": "snnc torch bundle", ".snnc": "snnc IR graph"}


def load_model(path: str | Path) -> Graph:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(str(path), "no such file")
    suffix = path.suffix.lower()
    if suffix in (".pt", ".pth"):
        from snnc.frontends.torch_bundle import load_bundle
        return load_bundle(path)
    if suffix == ".snnc":
        from snnc.ir.serialize import load_graph
        return load_graph(path)
    known = ", ".join(f"{k} ({v})" for k, v in FORMATS.items())
    raise ModelFileError(str(path), f"unsupported model format '{suffix}'; supported: {known}")
