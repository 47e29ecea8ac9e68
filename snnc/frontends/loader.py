"""Read a model file with the frontend its suffix names (``snnc.frontends.formats``).

netx's periodic-reset options (``reset_interval``, ``reset_offset``) also apply to float models: every CUBA
LIF group of the loaded graph gets ``CubaLIF.reset_interval`` = I and ``reset_phase = (offset - 1) mod I``,
the float step on which netx (``.net`` loaded with the same options) resets a chain's neuron layers: layer
k, at latency k + 1, resets at Lava time step offset + 1 + k, i.e. float step offset - 1 (mod I). Compiled
for Loihi, such a chain therefore gets exactly netx's per-layer LIFReset offsets.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from snnc.errors import ModelFileError, UnsupportedError
from snnc.frontends.formats import FORMATS, ModelFormat, format_of
from snnc.frontends.isolation import IsolationLimits
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF
from snnc.ir.verify import verify

PERIODIC_RESET_OPTIONS = ("reset_interval", "reset_offset")


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
    periodic = {} if "reset_interval" in fmt.options else \
        {k: options.pop(k) for k in PERIODIC_RESET_OPTIONS if k in options}
    _refuse_options(path, fmt, options)
    graph = fmt.load(path, isolation=isolation, **options) if fmt.parses_hdf5 else fmt.load(path, **options)
    return with_periodic_reset(graph, **periodic) if periodic else graph


def with_periodic_reset(graph: Graph, reset_interval: int | None = None, reset_offset: int = 0) -> Graph:
    """``graph`` (a float model) with netx's periodic reset on every CUBA LIF group (module docstring);
    ``UnsupportedError`` for a lowered graph, another neuron model (it would keep running across the reset)
    or values netx would not accept; without ``reset_interval`` the offset alone is refused too."""
    if reset_interval is None:
        raise UnsupportedError(graph.name, "reset_offset", "only with reset_interval", reset_offset)
    if reset_interval < 1 or reset_offset < 0:
        raise UnsupportedError(graph.name, "reset_interval/reset_offset", "interval >= 1 and offset >= 0",
                               f"{reset_interval}/{reset_offset}")
    if graph.timing != "zero_latency":
        raise UnsupportedError(graph.name, "timing", "zero_latency (a float model: a compiled graph keeps the "
                               "resets it was compiled with)", graph.timing)
    nodes = []
    for node in graph.nodes:
        if node.ROLE == "neuron" and not isinstance(node, CubaLIF):
            raise UnsupportedError(node.name, "type", "CubaLIF (a periodic reset restarts every neuron group, as "
                                   "netx resets every layer)", type(node).__name__)
        if isinstance(node, CubaLIF):
            node = dataclasses.replace(node, reset_interval=reset_interval,
                                       reset_phase=(reset_offset - 1) % reset_interval)
        nodes.append(node)
    return verify(graph.replace_nodes(nodes))


def _refuse_options(path: Path, fmt: ModelFormat, options: dict) -> None:
    extra = sorted(k for k in options if k not in fmt.options)
    if not extra:
        return
    takers = list(dict.fromkeys(other.label for other in FORMATS.values() if set(extra) & set(other.options)))
    if not takers:
        raise ModelFileError(str(path), f"unknown load option(s) {', '.join(extra)}")
    raise ModelFileError(str(path), f"option(s) {', '.join(extra)} apply to {' and '.join(takers)} files only; "
                                    f"'{path.suffix.lower()}' files store them")
