"""Pick the frontend for a model file by its extension."""
from __future__ import annotations

from pathlib import Path

from snnc.errors import ModelFileError
from snnc.ir.graph import Graph

FORMATS = {".pt": "snnc torch bundle", ".pth": "snnc torch bundle", ".snnc": "snnc IR graph",
           ".onnx": "ONNX (single-step, Scan/Loop, snn domain)", ".nir": "NIR 1.0 (HDF5; needs --dt, --reset)",
           ".net": "lava-dl netx (HDF5)"}
NIR_ONLY_OPTIONS = ("reset", "comparison")


def load_model(path: str | Path, **options) -> Graph:
    """Read a model file. ``options`` (``dt_s``, ``reset``, ``comparison``) are what the file format does
    not store: NIR needs ``dt_s`` and ``reset``; ONNX takes ``dt_s``; other formats take none."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(str(path), "no such file")
    suffix = path.suffix.lower()
    options = {k: v for k, v in options.items() if v is not None}
    if suffix == ".nir":
        from snnc.frontends.nir_import import load_nir
        return load_nir(path, **options)
    _refuse_options(path, suffix, options)
    if suffix == ".onnx":
        from snnc.frontends.onnx_frontend import load_onnx
        return load_onnx(path, **options)
    if suffix == ".net":
        from snnc.frontends.lava_dl_net import load_net
        return load_net(path)
    if suffix in (".pt", ".pth"):
        from snnc.frontends.torch_bundle import load_bundle
        return load_bundle(path)
    if suffix == ".snnc":
        from snnc.ir.serialize import load_graph
        return load_graph(path)
    known = ", ".join(f"{k} ({v})" for k, v in FORMATS.items())
    raise ModelFileError(str(path), f"unsupported model format '{suffix}'; supported: {known}")


def _refuse_options(path: Path, suffix: str, options: dict) -> None:
    allowed = ("dt_s",) if suffix == ".onnx" else ()
    extra = sorted(k for k in options if k not in allowed)
    if extra:
        raise ModelFileError(str(path), f"option(s) {', '.join(extra)} apply to NIR files only; "
                                        f"'{suffix}' files store them")
