"""The one registry of model file formats: suffix -> how to read it, how to write it, which options it takes.

``snnc.frontends.loader.load_model`` picks the loader by suffix, ``snnc export --format NAME`` the exporter
(NAME is the suffix without its dot), and the CLI's choices and help text are derived from ``FORMATS``.
Loaders and exporters import their frontend when called, so listing the formats imports no torch, onnx
or nir.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.ir.graph import Graph


@dataclass(frozen=True)
class ModelFormat:
    """One file format. ``load(path, **options)`` returns a verified graph; ``options`` are the load
    options the file does not store (``dt_s``, ``reset``, ``comparison``) and the loader takes;
    ``export(graph, path, **load_options)`` writes one (None: snnc does not write the format) given the load
    options the graph was read or compiled with, and returns the load options reading the file back needs
    (``{}``: none; only .net uses them: a .net file does not store netx's); ``exports_lowered``: the
    exporter takes the lowered (Loihi integer) graph instead of the float source graph; ``parses_hdf5``:
    ``load`` parses HDF5 in a child process and takes ``isolation`` (``snnc.frontends.isolation``)."""

    label: str
    description: str
    load: Callable[..., Graph]
    options: tuple[str, ...] = ()
    export: Callable[..., dict] | None = None
    exports_lowered: bool = False
    parses_hdf5: bool = False


def require_node_types(graph: Graph, exportable: tuple[type, ...], format_label: str) -> None:
    """Refuse (``UnsupportedError`` on the first such node) a graph holding a node type the
    ``format_label`` exporter cannot write, naming the types it can."""
    names = ", ".join(t.__name__ for t in exportable)
    for node in graph.nodes:
        if not isinstance(node, exportable):
            raise UnsupportedError(node.name, "type", f"one of {names} ({format_label} export; keep the .snnc "
                                   "file for other neuron families)", type(node).__name__)


def _load_bundle(path: Path) -> Graph:
    from snnc.frontends.torch_bundle import load_bundle
    return load_bundle(path)


def _load_snnc(path: Path) -> Graph:
    from snnc.ir.serialize import load_graph
    return load_graph(path)


def _load_onnx(path: Path, **options) -> Graph:
    from snnc.frontends.onnx_frontend import load_onnx
    return load_onnx(path, **options)


def _save_onnx(graph: Graph, path: Path, **_load_options) -> dict:
    from snnc.frontends.onnx_export import save_onnx
    save_onnx(graph, path)
    return {}


def _load_nir(path: Path, **options) -> Graph:
    from snnc.frontends.nir_import import load_nir
    return load_nir(path, **options)


def _save_nir(graph: Graph, path: Path, **_load_options) -> dict:
    from snnc.frontends.nir_export import save_nir
    save_nir(graph, path)
    return {}


def _load_net(path: Path, **options) -> Graph:
    from snnc.frontends.lava_dl_net import load_net
    return load_net(path, **options)


def _save_net(graph: Graph, path: Path, **load_options) -> dict:
    """Write with the netx options that give ``graph`` back (``reload_options``); returns them (the
    non-default ones)."""
    from snnc.frontends.lava_dl_net import changed_options, net_options, reload_options, save_net
    options = reload_options(graph, net_options(load_options))
    save_net(graph, path, options)
    return changed_options(options)


TORCH_BUNDLE = ModelFormat("snnc torch bundle", "snnc torch bundle", _load_bundle)
FORMATS: dict[str, ModelFormat] = {
    ".pt": TORCH_BUNDLE,
    ".pth": TORCH_BUNDLE,
    ".snnc": ModelFormat("snnc IR graph", "snnc IR graph", _load_snnc),
    ".onnx": ModelFormat("ONNX", "ONNX (single-step, Scan/Loop, snn domain)", _load_onnx, ("dt_s",), _save_onnx),
    ".nir": ModelFormat("NIR", "NIR 1.0 (HDF5; needs --dt, --reset)", _load_nir, ("dt_s", "reset", "comparison", "producer"),
                        _save_nir, parses_hdf5=True),
    ".net": ModelFormat("lava-dl .net", "lava-dl netx (HDF5)", _load_net,
                        ("num_layers", "skip_layers", "input_message_bits", "reset_interval", "reset_offset", "spike_exp",
                         "input_shape", "sparse_fc_layer"), export=_save_net, exports_lowered=True,
                        parses_hdf5=True),
}


def format_of(path: Path) -> ModelFormat:
    """The format of a model file by its suffix (case-insensitive); ``ModelFileError`` listing every
    supported suffix otherwise."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(f"{k} ({v.description})" for k, v in FORMATS.items())
        raise ModelFileError(str(path), f"unsupported model format '{suffix}'; supported: {known}")
    return FORMATS[suffix]


def export_names() -> tuple[str, ...]:
    """The ``--format`` names of the formats snnc writes (their suffixes without the dot)."""
    return tuple(suffix[1:] for suffix, fmt in FORMATS.items() if fmt.export is not None)


def export_format(name: str) -> ModelFormat:
    """The writable format called ``name`` (``export_names()``); ``SnncError`` naming the choices."""
    fmt = FORMATS.get(f".{name}")
    if fmt is None or fmt.export is None:
        raise SnncError(f"unknown export format '{name}': choose {or_list(export_names())}")
    return fmt


def exported_labels() -> str:
    """The writable formats for help text, e.g. ``ONNX, NIR or lava-dl .net``."""
    return or_list(tuple(FORMATS[f".{name}"].label for name in export_names()))


def readable_suffixes() -> str:
    """The readable suffixes for help text, aliases together, e.g. ``.pt/.pth snnc torch bundle, ...``."""
    groups: dict[int, list[str]] = {}
    for suffix, fmt in FORMATS.items():
        groups.setdefault(id(fmt), []).append(suffix)
    return ", ".join(f"{'/'.join(suffixes)} {FORMATS[suffixes[0]].label}" for suffixes in groups.values())


def or_list(items: tuple[str, ...]) -> str:
    """``a, b or c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
