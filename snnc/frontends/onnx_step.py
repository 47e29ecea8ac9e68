"""What one time step of an ONNX file is: the step graph, its state inputs bound to state outputs, its spike
inputs and results, for the three shapes ``snnc.frontends.onnx_frontend`` reads (a single step with explicit
state, a ``Scan`` over time, a ``Loop`` that reads the sequence with ``Gather(x, iter)``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import ModelFieldError, UnsupportedError

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
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _initializers(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t).astype(np.float64) if numpy_helper.to_array(t).dtype.kind == "f"
            else numpy_helper.to_array(t) for t in graph.initializer}


def single_step(path: str, graph, meta: dict) -> Step:
    inits = _initializers(graph)
    inputs = [i for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    state = _bindings(path, [i.name for i in inputs], outputs, meta)
    data = [i.name for i in inputs if i.name not in state]
    shapes = {i.name: batchless_shape(path, i.name, value_shape(i)) for i in inputs}
    results = [o for o in outputs if o not in state.values()]
    return Step(graph, state, data, results, shapes, initializers=inits, state_shapes=dict(shapes))


def batchless_shape(path: str, name: str, shape) -> tuple[int, ...]:
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


def loop_step(path: str, graph, loops) -> Step:
    if len(loops) != 1:
        raise OnnxError(path, loops[1].name or loops[1].op_type, "op_type", "one Scan or Loop per model")
    node = loops[0]
    inits = _initializers(graph)
    const = {**inits, **_constant_nodes(graph)}
    body = next(a.g for a in node.attribute if a.name == "body")
    if node.op_type == "Scan":
        return _scan_step(path, graph, node, body, const)
    return _loop_body_step(path, graph, node, body, const)


def _constant_nodes(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper
    out = {}
    for n in graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            out[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return out


def _zero_initial(path: str, node, names: list[str], const: dict) -> None:
    for name in names:
        value = const.get(name)
        if value is None or np.any(np.asarray(value) != 0):
            raise UnsupportedError(f"{path}: {node.name or node.op_type}", f"initial state '{name}'",
                                   "a constant zero tensor (snnc neurons start at rest)",
                                   "non-constant" if value is None else "non-zero values")


def _scan_step(path: str, graph, node, body, const) -> Step:
    attrs = {a.name: a for a in node.attribute}
    n_scan = attrs["num_scan_inputs"].i
    for key, limit in (("scan_input_axes", "0 (time-major sequences)"), ("scan_output_axes", "0 (time-major "
                       "sequences)"), ("scan_input_directions", "0 (forward in time)"),
                       ("scan_output_directions", "0 (forward in time)")):
        if key in attrs and any(v != 0 for v in attrs[key].ints):
            raise UnsupportedError(f"{path}: {node.name or 'Scan'}", key, limit, list(attrs[key].ints))
    n_state = len(node.input) - n_scan
    _zero_initial(path, node, list(node.input[:n_state]), const)
    body_in = [i.name for i in body.input]
    body_out = [o.name for o in body.output]
    state = dict(zip(body_in[:n_state], body_out[:n_state]))
    data = body_in[n_state:]
    graph_inputs = {i.name: i for i in graph.input}
    shapes = {}
    for inner, outer in zip(data, node.input[n_state:]):
        if outer not in graph_inputs:
            raise OnnxError(path, node.name or "Scan", "inputs", f"scan input '{outer}' must be a graph input")
        shapes[inner] = batchless_shape(path, outer, value_shape(graph_inputs[outer])[1:])
    results = body_out[n_state:]
    state_shapes = {inner: tuple(np.shape(const[outer])[1:]) for inner, outer in zip(body_in, node.input[:n_state])}
    return Step(body, state, data, results, shapes, initializers={**const, **_initializers(body)},
                 state_shapes=state_shapes)


def _loop_body_step(path: str, graph, node, body, const) -> Step:
    n_carried = len(node.input) - 2
    _zero_initial(path, node, list(node.input[2:]), const)
    body_in = [i.name for i in body.input]
    body_out = [o.name for o in body.output]
    _always_continues(path, node, body, body_in, body_out, const)
    state = dict(zip(body_in[2:2 + n_carried], body_out[1:1 + n_carried]))
    results = body_out[1 + n_carried:]
    sequences = {i.name: i for i in graph.input if i.name not in const}
    outer = {name: Sequence(name) for name in sequences}
    outer[body_in[0]] = Iter()
    outer[body_in[1]] = np.asarray(True)
    shapes = {name: batchless_shape(path, name, value_shape(v)[1:]) for name, v in sequences.items()}
    state_shapes = {inner: tuple(np.shape(const[outer])[1:]) for inner, outer in zip(body_in[2:], node.input[2:])}
    return Step(body, state, list(sequences), results, shapes, outer=outer,
                 initializers={**const, **_initializers(body)}, state_shapes=state_shapes)


def _always_continues(path: str, node, body, body_in: list[str], body_out: list[str], const: dict) -> None:
    """A Loop runs for its whole trip count only when the outer condition is absent or constant true and the
    body's condition output is its condition input passed on unchanged (or a constant true)."""
    where = f"{path}: {node.name or 'Loop'}"
    outer = node.input[1] if len(node.input) > 1 else ""
    if outer and not _constant_true(const.get(outer)):
        raise UnsupportedError(where, "inputs[1] (cond)", "absent or a constant true condition",
                               "non-constant" if outer not in const else "false values")
    if len(body_in) < 2 or not body_out:
        raise OnnxError(path, node.name or "Loop", "body", "inputs (iteration, cond, states...) and outputs "
                        "(cond, states...)")
    cond_in, cond_out = body_in[1], body_out[0]
    body_const = {**_initializers(body), **_constant_nodes(body)}
    producers = {o: n for n in body.node for o in n.output}
    seen = set()
    while cond_out in producers and cond_out not in seen and producers[cond_out].op_type == "Identity" and \
            producers[cond_out].domain in ("", "ai.onnx") and producers[cond_out].input:
        seen.add(cond_out)
        cond_out = producers[cond_out].input[0]
    if cond_out != cond_in and not _constant_true(body_const.get(cond_out)):
        raise UnsupportedError(where, "body.output[0] (cond_out)", "Identity(cond_in) or a constant true (no early "
                               "exit: snnc runs every time step)", f"'{body_out[0]}' computed by the body")


def _constant_true(value) -> bool:
    return value is not None and np.size(value) == 1 and bool(np.asarray(value).reshape(-1)[0])


class Sequence:
    """A Loop's outer-scope input sequence [time, batch, ...]; ``Gather(seq, iter)`` reads one step."""

    def __init__(self, name: str):
        self.name = name


class Iter:
    """A Loop's iteration counter."""
