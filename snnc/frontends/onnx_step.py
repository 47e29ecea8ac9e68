"""What one time step of an ONNX file is: the step graph, its state inputs bound to state outputs, its spike
inputs and results, for the three shapes ``snnc.frontends.onnx_frontend`` reads (a single step with explicit
state, read here; a ``Scan`` over time or a ``Loop`` that reads the sequence with ``Gather(x, iter)``, read by
``snnc.frontends.onnx_loops``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import ModelFieldError

STATE_SUFFIXES = ("_out", "_new", "_next")
STATE_PREFIXES = ("new_", "next_", "out_")


class OnnxError(ModelFieldError):
    """An ONNX file snnc cannot read or recognise; names the ONNX node and field."""


@dataclass
class Step:
    """One time step: the body graph, which inputs are state (bound to which outputs), which inputs are
    spike data, which outputs are results, and outer-scope values (Loop: the sequence, the counter)."""

    graph: object
    state: dict[str, str]                 # state input -> state output
    data: list[str]                       # spike input names
    results: list[str]                    # output names to keep as IR outputs
    data_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    outer: dict[str, object] = field(default_factory=dict)
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    state_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def value_shape(value_info) -> tuple[int | None, ...]:
    """The dims of an ONNX value_info (None where a dim has no fixed value)."""
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def initializer_arrays(path: str, graph) -> dict[str, np.ndarray]:
    """The graph's initializers as arrays, floats widened to float64."""
    out = {}
    for tensor in graph.initializer:
        array = tensor_array(path, tensor, tensor.name, "initializer")
        out[tensor.name] = array.astype(np.float64) if array.dtype.kind == "f" else array
    return out


def tensor_array(path: str, tensor, node: str, field: str) -> np.ndarray:
    """A TensorProto as an array: its element type must be one ONNX defines; whatever else
    ``onnx.numpy_helper`` cannot read (data of the wrong length, ...) is reported with its message."""
    from onnx import TensorProto, numpy_helper
    if tensor.data_type not in TensorProto.DataType.values() or tensor.data_type == TensorProto.UNDEFINED:
        raise OnnxError(path, node, f"{field}.data_type", f"an ONNX element type (TensorProto.DataType), got "
                        f"{tensor.data_type}")
    try:
        return numpy_helper.to_array(tensor)
    except (ValueError, TypeError, KeyError, IndexError) as exc:   # onnx.numpy_helper's reactions to bad data
        raise OnnxError(path, node, field, f"tensor data onnx.numpy_helper cannot read ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from None


def single_step(path: str, graph, meta: dict) -> Step:
    """The ``Step`` of a model that is one time step (no loop): state inputs bound to outputs (metadata, then names),
    the other inputs spike data."""
    inits = initializer_arrays(path, graph)
    inputs = [i for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    state = _bindings(path, [i.name for i in inputs], outputs, meta)
    data = [i.name for i in inputs if i.name not in state]
    shapes = {i.name: batchless_shape(path, i.name, value_shape(i)) for i in inputs}
    results = [o for o in outputs if o not in state.values()]
    return Step(graph, state, data, results, shapes, initializers=inits, state_shapes=dict(shapes))


def batchless_shape(path: str, name: str, shape) -> tuple[int, ...]:
    """The sizes after the batch dim of a [batch, *sizes] shape; ``OnnxError`` when a size is unknown."""
    if len(shape) < 2 or any(d is None or d <= 0 for d in shape[1:]):
        raise OnnxError(path, name, "shape", f"[batch, *sizes] with known sizes, got {list(shape)}")
    return tuple(int(d) for d in shape[1:])


def _bindings(path: str, inputs: list[str], outputs: list[str], meta: dict) -> dict[str, str]:
    """State input -> output: explicit metadata, then names; the rest is resolved structurally later
    (marked with an empty output name)."""
    text = meta.get("snnc.state_bindings")
    if text is not None:
        pairs = [p.split("=", 1) for p in text.split(",") if p]
        bound = {}
        for pair in pairs:
            if len(pair) != 2 or pair[0] not in inputs or pair[1] not in outputs:
                raise OnnxError(path, "model", "metadata_props['snnc.state_bindings']",
                                f"'input=output' pairs of graph inputs and outputs, got {'='.join(pair)!r}")
            bound[pair[0]] = pair[1]
        return bound
    bound = {}
    for name in inputs:
        candidates = {name + s for s in STATE_SUFFIXES} | {p + name for p in STATE_PREFIXES}
        match = [o for o in outputs if o in candidates]
        if len(match) == 1:
            bound[name] = match[0]
    unbound_outputs = [o for o in outputs if o not in bound.values()]
    for name in inputs:
        if name not in bound and unbound_outputs:
            bound[name] = ""   # decided structurally
    return bound


class Sequence:
    """A Loop's outer-scope input sequence [time, batch, ...]; ``Gather(seq, iter)`` reads one step."""

    def __init__(self, name: str):
        self.name = name


class Iter:
    """A Loop's iteration counter."""
