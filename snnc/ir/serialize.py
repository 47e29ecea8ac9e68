"""Versioned serialization of a graph to one ``.npz`` file that never executes code on load.

Layout: ``__graph__`` holds UTF-8 JSON ``{"schema_version", "name", "timing", "dt_s", "outputs",
"nodes": [{"type", "fields": {...}}]}``; every array field is stored as its own npz entry
``<node index>/<field>`` and referenced in JSON as ``{"array": key}``. Loading uses
``allow_pickle=False``; unknown versions, node types or fields, and fields of the wrong type, shape or range
(``snnc.ir.schema``) raise ``ModelFileError`` naming node and field.
"""
from __future__ import annotations

import io
import json
import tokenize
import typing
import zipfile
import zlib
from pathlib import Path

import numpy as np

from snnc.errors import ModelFileError, SnncError
from snnc.ir import nodes as ir_nodes
from snnc.ir.graph import SCHEMA_VERSION, Graph
from snnc.ir.schema import MAX_ELEMENTS, FieldCheck, checked_fields
from snnc.ir.verify import verify

# Every IR node class, by class name (each registers itself: ``snnc.ir.nodes.IRNode``).
NODE_TYPES = ir_nodes.NODE_TYPES
MAX_FILE_ELEMENTS = 4 * MAX_ELEMENTS    # all arrays of one file together


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
        for key in node.written_fields():
            fields[key] = _encode(getattr(node, key), f"{index}/{key}", arrays)
        nodes.append({"type": type(node).__name__, "fields": fields})
    header = {"schema_version": SCHEMA_VERSION, "name": graph.name, "timing": graph.timing,
              "dt_s": graph.dt_s, "outputs": list(graph.outputs), "nodes": nodes,
              "latency_steps": [list(p) for p in graph.latency_steps]}
    if graph.source_names:
        header["source_names"] = [list(p) for p in graph.source_names]
    arrays["__graph__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def load_graph(path: str | Path, data: bytes | None = None) -> Graph:
    """Read a ``.snnc`` file (``data``: its bytes, already read; ``path`` then only names it in errors).
    Every header entry and node field is checked (``snnc.ir.schema``) before a node is built; the graph
    is then verified. Any problem is a ``ModelFileError`` (or ``IRVerificationError``)."""
    source = str(path)
    try:
        if not zipfile.is_zipfile(io.BytesIO(data) if data is not None else path):
            raise ModelFileError(source, "not a snnc graph file (not an .npz archive)")
        with np.load(path if data is None else io.BytesIO(data), allow_pickle=False) as archive:
            _check_sizes(source, archive)
            entries = {key: archive[key] for key in archive.files}
        header = json.loads(entries.pop("__graph__").tobytes().decode())
    except SnncError:
        raise
    # zipfile: NotImplementedError for an unknown version or compression, RuntimeError for an encrypted member;
    # numpy's .npy header parser: tokenize.TokenError, SyntaxError for a damaged header
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, EOFError, zlib.error,
            NotImplementedError, RuntimeError, tokenize.TokenError, SyntaxError) as exc:
        raise ModelFileError(source, f"not a snnc graph file ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(source, f"graph header: expected an object, got {type(header).__name__}")
    version = header.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ModelFileError(source, f"schema_version {version!r} unsupported (this snnc reads "
                                     f"{SCHEMA_VERSION})")
    return verify(_graph_from_header(header, entries, source))


def _check_sizes(source: str, archive) -> None:
    """Refuse an archive whose members declare more than ``MAX_FILE_ELEMENTS`` values before reading any."""
    total = 0
    for key in archive.files:
        with archive.zip.open(f"{key}.npy") as member:
            version = np.lib.format.read_magic(member)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape = read(member)[0]
        total += int(np.prod(shape, dtype=object))
    if total > MAX_FILE_ELEMENTS:
        raise ModelFileError(source, f"arrays declare {total} values, more than the cap of {MAX_FILE_ELEMENTS}")


def _graph_from_header(header: dict, entries: dict, source: str) -> Graph:
    """The graph a checked header describes (every entry is checked before use)."""
    check = FieldCheck(source, "graph")
    fields = {}
    for key in ("name", "timing", "dt_s", "outputs", "latency_steps", "nodes"):
        if key not in header and key != "latency_steps":
            raise check.fail(key, "missing")
    extra = sorted(set(header) - {"schema_version", "name", "timing", "dt_s", "outputs", "latency_steps", "nodes",
                                  "source_names"})
    if extra:
        raise check.fail(extra[0], "no such header entry")
    hints = typing.get_type_hints(Graph)
    for key in ("name", "timing", "dt_s"):
        fields[key] = check.value(hints[key], header[key], key)
    fields["outputs"] = check.value(hints["outputs"], _as_tuple(header["outputs"]), "outputs")
    latency = header.get("latency_steps", [])
    latency = tuple(_as_tuple(p) for p in latency) if isinstance(latency, list) else latency
    fields["latency_steps"] = check.value(hints["latency_steps"], latency, "latency_steps")
    renamed = header.get("source_names", [])
    renamed = tuple(_as_tuple(p) for p in renamed) if isinstance(renamed, list) else renamed
    fields["source_names"] = check.value(hints["source_names"], renamed, "source_names")
    if not isinstance(header["nodes"], list):
        raise check.fail("nodes", f"expected a list, got {type(header['nodes']).__name__}")
    nodes = tuple(_decode_node(index, spec, entries, source) for index, spec in enumerate(header["nodes"]))
    return Graph(nodes=nodes, **fields)


def _as_tuple(value):
    return tuple(value) if isinstance(value, list) else value


def _encode(value, key: str, arrays: dict[str, np.ndarray]):
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"array": key}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _decode(value, entries, check: FieldCheck, field: str):
    """A JSON field value with array references and tuples resolved (missing arrays are refused)."""
    if isinstance(value, dict) and set(value) == {"array"}:
        if not isinstance(value["array"], str) or value["array"] not in entries:
            raise check.fail(field, f"array {value['array']!r} is not in the file")
        return entries[value["array"]]
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(_decode(v, entries, check, f"{field}[{i}]") for i, v in enumerate(value["tuple"]))
    if isinstance(value, (dict, list)):
        raise check.fail(field, f"expected a value, an array or a tuple, got {type(value).__name__}")
    return value


def _decode_node(index: int, spec, entries, path: str):
    check = FieldCheck(path, f"#{index}")
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str) or not isinstance(spec.get("fields"), dict):
        raise check.fail("type", "expected an object with a string 'type' and an object 'fields'")
    cls = NODE_TYPES.get(spec["type"])
    if cls is None:
        raise check.fail("type", f"unknown node type {spec['type']!r}")
    fields = {k: _decode(v, entries, check, k) for k, v in spec["fields"].items()}
    return cls(**checked_fields(cls, fields, path, index))
