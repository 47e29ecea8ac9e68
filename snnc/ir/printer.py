"""Deterministic text form of a graph, for `snnc inspect` and golden tests.

Scalars print with ``repr``; arrays print as ``dtype[shape]{min..max #crc}`` (crc32 of the bytes in C order
after conversion to little-endian int64 or float64) so a changed weight changes the text.
"""
from __future__ import annotations

import json
import zlib

import numpy as np

from snnc.ir.graph import SCHEMA_VERSION, Graph


def format_graph(graph: Graph) -> str:
    """The graph as IR text: a header line (name, timing, dt), one line per node with its type, output shape and
    written fields, then the outputs."""
    lines = [f'snnc.ir v{SCHEMA_VERSION} graph {json.dumps(graph.name)} timing={graph.timing} dt_s={graph.dt_s!r}']
    shapes = graph.shapes
    for node in graph.nodes:
        fields = " ".join(f"{k}=%{getattr(node, k)}" if k == "source" else f"{k}={format_value(getattr(node, k))}"
                          for k in node.written_fields() if k != "name")
        shape = "x".join(str(d) for d in shapes[node.name])
        lines.append(f"  %{node.name}: {type(node).__name__}<{shape}> {fields}")
    lines.append("  outputs " + ", ".join(f"%{o}" for o in graph.outputs))
    return "\n".join(lines) + "\n"


def format_value(value) -> str:
    """One field value as IR text: ``none``, ``(%a, %b)`` for node names, arrays by ``format_array``, numbers by
    ``repr``."""
    if value is None:
        return "none"
    if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
        return "(" + ", ".join(f"%{v}" for v in value) + ")"
    if isinstance(value, np.ndarray):
        return format_array(value)
    if isinstance(value, (np.floating, np.integer)):
        return repr(value.item())
    return repr(value)


def format_array(arr: np.ndarray) -> str:
    """An array as IR text: its one value, or dtype kind, shape, range and a CRC32 of its int64/float64 values."""
    if arr.size == 1:
        return f"{arr.dtype.kind}[{arr.reshape(-1)[0].item()!r}]"
    canon = arr.astype("<i8") if arr.dtype.kind in "iub" else arr.astype("<f8")
    crc = zlib.crc32(np.ascontiguousarray(canon).tobytes()) & 0xFFFFFFFF
    dims = ",".join(str(d) for d in arr.shape)
    lo, hi = canon.min().item(), canon.max().item()
    return f"{arr.dtype.kind}[{dims}]{{{lo!r}..{hi!r} #{crc:08x}}}"
