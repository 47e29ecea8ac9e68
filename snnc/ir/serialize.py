"""Versioned serialization of a graph to one ``.npz`` file that never executes code on load.

Layout: ``__graph__`` holds UTF-8 JSON ``{"schema_version", "name", "timing", "dt_s", "outputs",
"nodes": [{"type", "fields": {...}}]}``; every array field is stored as its own npz entry
``<node index>/<field>`` and referenced in JSON as ``{"array": key}``. Loading uses
``allow_pickle=False``; unknown versions, node types or fields raise ``ModelFileError``.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from snnc.errors import ModelFileError, SnncError
from snnc.ir import nodes as ir_nodes
from snnc.ir.graph import SCHEMA_VERSION, Graph
from snnc.ir.verify import verify

NODE_TYPES = {cls.__name__: cls for cls in (
    ir_nodes.Input, ir_nodes.Dense, ir_nodes.Conv2d, ir_nodes.SumPool2d, ir_nodes.Flatten,
    ir_nodes.CubaLIF, ir_nodes.LI, ir_nodes.LoihiDense, ir_nodes.LoihiConv, ir_nodes.LoihiLIF,
    ir_nodes.SpinnakerProjection, ir_nodes.SpinnakerPopulation)}
NODE_TYPES.update({cls.__name__: cls for cls in (
    ir_nodes.GradedInput, ir_nodes.Slice, ir_nodes.LoihiGradedRelay, ir_nodes.LoihiGradedSum)})


def save_graph(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` to ``path`` (see the module docstring for the layout)."""
    with open(path, "wb") as handle:
        handle.write(graph_bytes(graph))


def graph_bytes(graph: Graph) -> bytes:
    """The ``.snnc`` file of ``graph``, as bytes."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for index, node in enumerate(graph.nodes):
        fields = {}
        for key in node.__dataclass_fields__:
            fields[key] = _encode(getattr(node, key), f"{index}/{key}", arrays)
        nodes.append({"type": type(node).__name__, "fields": fields})
    header = {"schema_version": SCHEMA_VERSION, "name": graph.name, "timing": graph.timing,
              "dt_s": graph.dt_s, "outputs": list(graph.outputs), "nodes": nodes,
              "latency_steps": [list(p) for p in graph.latency_steps]}
    arrays["__graph__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def load_graph(path: str | Path, data: bytes | None = None) -> Graph:
    """Read a ``.snnc`` file (``data``: its bytes, already read; ``path`` then only names it in errors)."""
    try:
        with np.load(path if data is None else io.BytesIO(data), allow_pickle=False) as archive:
            entries = {key: archive[key] for key in archive.files}
        header = json.loads(entries.pop("__graph__").tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ModelFileError(str(path), f"not a snnc graph file ({type(exc).__name__}: {exc})") from None
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(str(path), f"schema_version {version!r} unsupported (this snnc reads "
                                        f"{SCHEMA_VERSION})")
    try:
        nodes = tuple(_decode_node(spec, entries, str(path)) for spec in header["nodes"])
        graph = Graph(nodes=nodes, outputs=tuple(header["outputs"]), dt_s=float(header["dt_s"]),
                      timing=header["timing"], name=header["name"],
                      latency_steps=tuple((str(n), int(k)) for n, k in header.get("latency_steps", [])))
    except SnncError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(str(path), f"malformed graph header ({type(exc).__name__}: {exc})") from None
    return verify(graph)


def _encode(value, key: str, arrays: dict[str, np.ndarray]):
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _decode(value, entries):
    if isinstance(value, dict) and "array" in value:
        return entries[value["array"]]
    if isinstance(value, dict) and "tuple" in value:
        return tuple(_decode(v, entries) for v in value["tuple"])
    return value


def _decode_node(spec: dict, entries, path: str):
    cls = NODE_TYPES.get(spec["type"])
    if cls is None:
        raise ModelFileError(path, f"unknown node type {spec['type']!r}")
    fields = {k: _decode(v, entries) for k, v in spec["fields"].items()}
    unknown = set(fields) - set(cls.__dataclass_fields__)
    if unknown:
        raise ModelFileError(path, f"node type {spec['type']} has no field(s) {sorted(unknown)}")
    return cls(**fields)
