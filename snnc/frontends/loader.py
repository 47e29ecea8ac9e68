"""Read a model file with the frontend its suffix names (``snnc.frontends.formats``)."""
from __future__ import annotations

from pathlib import Path

from snnc.errors import ModelFileError
from snnc.frontends.formats import FORMATS, ModelFormat, format_of
from snnc.frontends.isolation import IsolationLimits
from snnc.ir.graph import Graph


def load_model(path: str | Path, *, isolation: IsolationLimits | None = IsolationLimits(), **options) -> Graph:
    """Read a model file. ``options`` (``dt_s``, ``reset``, ``comparison``) are what the file format does
    not store: NIR needs ``dt_s`` and ``reset``; ONNX takes ``dt_s``; other formats take none.
    ``isolation``: the limits of the child process that parses HDF5 (``.net``, ``.nir``); None parses in
    this process (for a caller that already isolates, such as the fuzz campaign's workers)."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(str(path), "no such file")
    fmt = format_of(path)
    options = {k: v for k, v in options.items() if v is not None}
    _refuse_options(path, fmt, options)
    if fmt.parses_hdf5:
        return fmt.load(path, isolation=isolation, **options)
    return fmt.load(path, **options)


def _refuse_options(path: Path, fmt: ModelFormat, options: dict) -> None:
    extra = sorted(k for k in options if k not in fmt.options)
    if not extra:
        return
    takers = list(dict.fromkeys(other.label for other in FORMATS.values() if set(extra) & set(other.options)))
    if not takers:
        raise ModelFileError(str(path), f"unknown load option(s) {', '.join(extra)}")
    raise ModelFileError(str(path), f"option(s) {', '.join(extra)} apply to {' and '.join(takers)} files only; "
                                    f"'{path.suffix.lower()}' files store them")
