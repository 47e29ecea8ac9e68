"""Check an untrusted ONNX model before any tensor is converted, allocated or evaluated.

* External data (``TensorProto.data_location = EXTERNAL``, what torch's dynamo exporter writes beside the
  model as ``<model>.onnx.data``) is read only from a regular file (not a link) in the model's own folder,
  named without any path (no ``/``, ``\``, leading ``.``), and only within that file's size; anything
  else is refused before a byte is read (``onnx.load`` would follow any path the model names). In-memory
  models may not use external data at all.
* Every declared size is bounded before numpy sees it: a tensor's dims (initializers, ``Constant``
  attributes, sparse tensors) and a value's dims (graph inputs, outputs, ``value_info``), in every graph
  including ``Scan``/``Loop`` bodies, at most ``OnnxLimits.max_elements`` elements each and
  ``max_tensor_bytes`` of tensor data in all.
* Constant folding of the ops whose output size is a *value* (``ConstantOfShape``, ``Expand``, ``Tile``,
  ``Range``) is bounded the same way before the op runs (``folded_elements``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.frontends.onnx_step import OnnxError


@dataclass(frozen=True)
class OnnxLimits:
    """``max_elements``: per declared tensor or value (2^24: a 16-channel 1024 x 1024 map, far above any
    spiking layer snnc maps); ``max_tensor_bytes``: all tensor data of the model."""

    max_elements: int = 1 << 24
    max_tensor_bytes: int = 2 << 30


def check_onnx(path: str, model, limits: OnnxLimits = OnnxLimits(), folder: Path | None = None) -> None:
    """Raise ``OnnxError`` naming the tensor or value that declares too much, or whose external data is not
    a plain file in ``folder`` (the model file's folder; None: no external data allowed)."""
    total = 0
    for graph in _graphs(model.graph):
        for where, tensor in _tensors(graph):
            total += _check_tensor(path, where, tensor, limits)
            if _is_external(tensor):
                _check_external(path, where, tensor, folder)
            if total > limits.max_tensor_bytes:
                raise OnnxError(path, where, "dims", f"at most {limits.max_tensor_bytes} bytes of tensor data in "
                                f"all, got {total}")
        for value in (*graph.input, *graph.output, *graph.value_info):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim if d.HasField("dim_value")]
            _check_count(path, value.name, "shape", dims, limits)


def folded_elements(node, values) -> int | None:
    """Elements a constant ``ConstantOfShape``/``Expand``/``Tile``/``Range`` would produce (None: another
    op, whose output is no larger than its inputs)."""
    op = node.op_type
    if op == "ConstantOfShape":
        return _product(np.asarray(values[0]).reshape(-1))
    if op == "Expand":
        shape = np.broadcast_shapes(np.shape(values[0]), tuple(int(d) for d in np.asarray(values[1]).reshape(-1)))
        return _product(shape)
    if op == "Tile":
        return int(np.size(values[0])) * _product(np.asarray(values[1]).reshape(-1))
    if op == "Range":
        start, limit, delta = (float(np.asarray(v).reshape(-1)[0]) for v in values[:3])
        return max(0, math.ceil((limit - start) / delta)) if delta else None
    return None


def _graphs(graph):
    """``graph`` and every subgraph held in a node attribute (Scan/Loop bodies, If branches)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            for sub in (*([attribute.g] if attribute.HasField("g") else []), *attribute.graphs):
                yield from _graphs(sub)


def _tensors(graph):
    for tensor in graph.initializer:
        yield tensor.name, tensor
    for sparse in graph.sparse_initializer:
        yield sparse.values.name, sparse.values
    for node in graph.node:
        for attribute in node.attribute:
            for tensor in (*([attribute.t] if attribute.HasField("t") else []), *attribute.tensors):
                yield node.name or node.op_type, tensor


def _is_external(tensor) -> bool:
    from onnx import TensorProto
    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _check_external(path: str, where: str, tensor, folder: Path | None) -> None:
    """External data: a plain file beside the model, and the bytes asked for inside it."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    rule = "a regular file in the model's folder, named without a path"
    if folder is None:
        raise OnnxError(path, where, "data_location", "data inside the model (an in-memory model has no folder "
                        "for external data)")
    if not isinstance(location, str):     # protobuf hands back bytes for a location that is not UTF-8
        raise OnnxError(path, where, "external_data.location", f"{rule}, got the non-UTF-8 bytes {location!r:.80}")
    if not location or location.startswith(".") or any(c in location for c in "/\\\0"):
        raise OnnxError(path, where, "external_data.location", f"{rule}, got {location!r}")
    target = folder / location
    if target.is_symlink() or not target.is_file():
        raise OnnxError(path, where, "external_data.location", f"{rule}, got {location!r} (missing, a link or "
                        "not a regular file)")
    try:
        offset, length = int(entries.get("offset", 0)), int(entries.get("length", 0))
    except ValueError:
        raise OnnxError(path, where, "external_data.offset/length", f"integers, got {entries}") from None
    size = target.stat().st_size
    if offset < 0 or length < 0 or offset + length > size:
        raise OnnxError(path, where, "external_data.offset/length", f"a range inside the {size}-byte "
                        f"'{location}', got offset {offset} length {length}")


def _check_tensor(path: str, where: str, tensor, limits: OnnxLimits) -> int:
    from onnx import helper
    elements = _check_count(path, where, "dims", tensor.dims, limits)
    try:
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        itemsize = 8          # unknown element type: tensor_array refuses it later, by name
    return elements * itemsize


def _check_count(path: str, where: str, field: str, dims, limits: OnnxLimits) -> int:
    if any(int(d) < 0 for d in dims):
        raise OnnxError(path, where, field, f"non-negative sizes, got {list(dims)}")
    elements = _product(dims)
    if elements > limits.max_elements:
        raise OnnxError(path, where, field, f"at most {limits.max_elements} elements (OnnxLimits), got "
                        f"{elements} from {list(dims)}")
    return elements


def _product(dims) -> int:
    return math.prod(int(d) for d in dims)
