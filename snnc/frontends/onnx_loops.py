"""The time loops of an ONNX file: a ``Scan`` whose body is one step (state variables = Scan state, bound by
position) and a ``Loop`` whose body reads the sequence with ``Gather(x, iter)``.

Before a body is evaluated its structure is checked against the node that runs it, so a malformed loop is refused
with the node, the field, the limit and the value found instead of failing inside the interpreter:

- the node has one graph attribute ``body``; every non-empty node input is a graph input, an initializer or a node
  output of the outer graph;
- counts (ONNX operator spec): ``Loop`` has inputs (M, cond, N states) and outputs (N states, K scan outputs), its
  body inputs (iter, cond, N states) and outputs (cond, N states, K); ``Scan`` has ``num_scan_inputs`` = S in
  1..inputs, inputs (N states, S sequences), outputs (N states, K), its body the same inputs and outputs;
- body input and output names are non-empty, body input names distinct;
- a constant trip count is one integer >= 1, a constant condition one boolean, the body's iteration and condition
  inputs (where declared) scalar int64 and bool tensors;
- every initial state is a zero tensor of shape [batch, *sizes] matching the body input it feeds (where the body
  declares a shape), and every Scan sequence [time, batch, *sizes] matches its body input the same way.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.onnx_step import (Iter, OnnxError, Sequence, Step, batchless_shape, initializer_arrays,
                                      tensor_array, value_shape)

TIME_MAJOR = "0 (time-major sequences)"
FORWARD = "0 (forward in time)"
NON_TENSOR = {"sequence_type": "a sequence", "optional_type": "an optional", "map_type": "a map",
              "sparse_tensor_type": "a sparse tensor", "opaque_type": "an opaque value"}


def loop_step(path: str, graph, loops) -> Step:
    """The one time step of a model with a single ``Scan`` or ``Loop``: its body as a ``Step`` (state bound by
    position, the sequence and counter as outer values), after the loop's structure was checked."""
    if len(loops) != 1:
        raise OnnxError(path, loops[1].name or loops[1].op_type, "op_type", "one Scan or Loop per model")
    node = loops[0]
    body = _body(path, node)
    _outer_inputs_defined(path, graph, node)
    _body_names(path, node, body)
    const = {**initializer_arrays(path, graph), **constant_nodes(path, graph)}
    if node.op_type == "Scan":
        return _scan_step(path, graph, node, body, const)
    return _loop_body_step(path, graph, node, body, const)


def _name(node) -> str:
    return node.name or node.op_type


def _body(path: str, node):
    from onnx import AttributeProto
    found = [a for a in node.attribute if a.name == "body"]
    if len(found) != 1 or found[0].type != AttributeProto.GRAPH:
        got = f"{len(found)} attributes" if len(found) != 1 else AttributeProto.AttributeType.Name(found[0].type)
        raise OnnxError(path, _name(node), "body", f"one GRAPH attribute (the time step), got {got}")
    return found[0].g


def _outer_inputs_defined(path: str, graph, node) -> None:
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | \
        {o for n in graph.node for o in n.output}
    for index, name in enumerate(node.input):
        if name and name not in known:
            raise OnnxError(path, _name(node), f"inputs[{index}]", f"a graph input, initializer or node output, "
                            f"got '{name}', which nothing in the graph defines")


def _body_names(path: str, node, body) -> None:
    for field, values in (("body.input", body.input), ("body.output", body.output)):
        for index, info in enumerate(values):
            if not info.name:
                raise OnnxError(path, _name(node), f"{field}[{index}]", "a named value, got ''")
    seen = set()
    for index, info in enumerate(body.input):
        if info.name in seen:
            raise OnnxError(path, _name(node), f"body.input[{index}]", f"a name no other body input has, got "
                            f"'{info.name}' twice")
        seen.add(info.name)


def constant_nodes(path: str, graph) -> dict[str, np.ndarray]:
    """The values of the graph's ``Constant`` nodes (every form but ``sparse_value``)."""
    from onnx import helper
    dtypes = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64, "value_ints": np.int64}
    out = {}
    for n in graph.node:
        if n.op_type != "Constant" or len(n.attribute) != 1 or not n.output:
            continue
        attr = n.attribute[0]
        if attr.name == "value":
            out[n.output[0]] = tensor_array(path, attr.t, n.name or n.output[0], "value")
        elif attr.name in dtypes:
            out[n.output[0]] = np.asarray(helper.get_attribute_value(attr), dtype=dtypes[attr.name])
        elif attr.name in ("value_string", "value_strings"):
            out[n.output[0]] = np.asarray(helper.get_attribute_value(attr), dtype=object)
    return out


def _describe(value: np.ndarray) -> str:
    """Kind, shape and (one element) value; the kind, not the dtype, as floats are read widened to float64."""
    kind = {"f": "a float", "i": "an integer", "u": "an integer", "b": "a boolean"}.get(value.dtype.kind, "a string")
    text = f"{kind} tensor of shape {list(value.shape)}"
    return text + f" = {value.reshape(-1).tolist()[0]!r}" if value.size == 1 else text


# ------------------------------------------------------------------------------------------------ Scan

def _scan_step(path: str, graph, node, body, const) -> Step:
    from onnx import AttributeProto
    attrs = {a.name: a for a in node.attribute}
    if not node.input:
        raise OnnxError(path, _name(node), "inputs", "the states, then at least one sequence, got 0 inputs")
    n_scan = _num_scan_inputs(path, node, attrs)
    for key, limit in (("scan_input_axes", TIME_MAJOR), ("scan_output_axes", TIME_MAJOR),
                       ("scan_input_directions", FORWARD), ("scan_output_directions", FORWARD)):
        if key in attrs and attrs[key].type != AttributeProto.INTS:
            raise OnnxError(path, _name(node), key, "an INTS attribute, got "
                            f"{AttributeProto.AttributeType.Name(attrs[key].type)}")
        if key in attrs and any(v != 0 for v in attrs[key].ints):
            raise UnsupportedError(f"{path}: {node.name or 'Scan'}", key, limit, list(attrs[key].ints))
    n_state = len(node.input) - n_scan
    _counts(path, node, "body.input", len(node.input), len(body.input),
            f"{n_state} state(s) then {n_scan} sequence(s), as the node has")
    _counts(path, node, "body.output", len(node.output), len(body.output), "one per node output")
    _enough_outputs(path, node, n_state)
    _zero_initial(path, node, list(node.input[:n_state]), const)
    body_in = [i.name for i in body.input]
    body_out = [o.name for o in body.output]
    state = dict(zip(body_in[:n_state], body_out[:n_state]))
    data = body_in[n_state:]
    graph_inputs = {i.name: i for i in graph.input}
    shapes = {}
    for offset, (inner, outer) in enumerate(zip(data, node.input[n_state:])):
        if outer not in graph_inputs:
            raise OnnxError(path, node.name or "Scan", "inputs", f"scan input '{outer}' must be a graph input")
        shapes[inner] = batchless_shape(path, outer, value_shape(graph_inputs[outer])[1:])
        _matches_body(path, node, n_state + offset, f"sequence '{outer}'", value_shape(graph_inputs[outer])[1:],
                      body.input[n_state + offset])
    results = body_out[n_state:]
    state_shapes = _state_shapes(path, node, body, 0, n_state, const)
    return Step(body, state, data, results, shapes, initializers={**const, **initializer_arrays(path, body)},
                state_shapes=state_shapes)


def _num_scan_inputs(path: str, node, attrs) -> int:
    from onnx import AttributeProto
    attr = attrs.get("num_scan_inputs")
    limit = f"an INT attribute from 1 to {len(node.input)} (the node's inputs)"
    if attr is None or attr.type != AttributeProto.INT:
        got = "none" if attr is None else AttributeProto.AttributeType.Name(attr.type)
        raise OnnxError(path, _name(node), "num_scan_inputs", f"{limit}, got {got}")
    if not 1 <= attr.i <= len(node.input):
        raise OnnxError(path, _name(node), "num_scan_inputs", f"{limit}, got {attr.i}")
    return attr.i


# ------------------------------------------------------------------------------------------------ Loop

def _loop_body_step(path: str, graph, node, body, const) -> Step:
    if len(node.input) < 2:
        raise OnnxError(path, _name(node), "inputs", f"trip count and condition (either may be ''), then the "
                        f"loop-carried states, got {len(node.input)} input(s)")
    n_carried = len(node.input) - 2
    _counts(path, node, "body.input", len(node.input), len(body.input),
            f"iteration, condition, then {n_carried} loop-carried state(s), as the node has")
    _counts(path, node, "body.output", 1 + len(node.output), len(body.output),
            "condition, then one per node output")
    _enough_outputs(path, node, n_carried)
    _trip_count(path, node, const)
    _loop_counter_inputs(path, node, body)
    _always_continues(path, node, body, const)
    _zero_initial(path, node, list(node.input[2:]), const)
    body_in = [i.name for i in body.input]
    body_out = [o.name for o in body.output]
    state = dict(zip(body_in[2:2 + n_carried], body_out[1:1 + n_carried]))
    results = body_out[1 + n_carried:]
    sequences = {i.name: i for i in graph.input if i.name not in const}
    outer = {name: Sequence(name) for name in sequences}
    outer[body_in[0]] = Iter()
    outer[body_in[1]] = np.asarray(True)
    shapes = {name: batchless_shape(path, name, value_shape(v)[1:]) for name, v in sequences.items()}
    state_shapes = _state_shapes(path, node, body, 2, n_carried, const)
    return Step(body, state, list(sequences), results, shapes, outer=outer,
                initializers={**const, **initializer_arrays(path, body)}, state_shapes=state_shapes)


def _trip_count(path: str, node, const: dict) -> None:
    """A constant trip count is one integer >= 1 (one not known before run time is left to the input's length)."""
    if node.input[0] not in const:
        return
    value = np.asarray(const[node.input[0]])
    if value.dtype.kind not in "iu" or value.size != 1 or int(value.reshape(-1)[0]) < 1:
        raise OnnxError(path, _name(node), "inputs[0] (trip count)", f"one integer >= 1, got {_describe(value)}")


def _loop_counter_inputs(path: str, node, body) -> None:
    """The body's iteration and condition inputs, where typed, are scalar int64 and bool tensors."""
    from onnx import TensorProto
    for index, (what, elem) in enumerate((("iteration", TensorProto.INT64), ("condition", TensorProto.BOOL))):
        info = body.input[index]
        field = f"body.input[{index}] ({what})"
        limit = f"a scalar {TensorProto.DataType.Name(elem)} tensor"
        kind = info.type.WhichOneof("value")
        if kind is None:
            continue
        if kind != "tensor_type":
            raise OnnxError(path, _name(node), field, f"{limit}, got {NON_TENSOR.get(kind, kind)}")
        tensor = info.type.tensor_type
        shape = value_shape(info) if tensor.HasField("shape") else ()
        if tensor.elem_type != elem or any(d is not None and d != 1 for d in shape):
            raise OnnxError(path, _name(node), field, f"{limit}, got {_type_name(tensor.elem_type)} of shape "
                            f"{list(shape)}")


def _type_name(elem: int) -> str:
    from onnx import TensorProto
    return TensorProto.DataType.Name(elem) if elem in TensorProto.DataType.values() else f"element type {elem}"


def _always_continues(path: str, node, body, const: dict) -> None:
    """A Loop runs for its whole trip count only when the outer condition is absent or constant true and the
    body's condition output is its condition input passed on unchanged (or a constant true)."""
    where = f"{path}: {node.name or 'Loop'}"
    outer = node.input[1]
    if outer and outer in const:
        _one_boolean(path, node, "inputs[1] (cond)", const[outer])
    if outer and not _constant_true(const.get(outer)):
        raise UnsupportedError(where, "inputs[1] (cond)", "absent or a constant true condition",
                               "non-constant" if outer not in const else "false values")
    cond_in, cond_out = body.input[1].name, body.output[0].name
    body_const = {**initializer_arrays(path, body), **constant_nodes(path, body)}
    producers = {o: n for n in body.node for o in n.output}
    seen = set()
    while cond_out in producers and cond_out not in seen and producers[cond_out].op_type == "Identity" and \
            producers[cond_out].domain in ("", "ai.onnx") and producers[cond_out].input:
        seen.add(cond_out)
        cond_out = producers[cond_out].input[0]
    if cond_out in body_const:
        _one_boolean(path, node, "body.output[0] (cond_out)", body_const[cond_out])
    if cond_out != cond_in and not _constant_true(body_const.get(cond_out)):
        raise UnsupportedError(where, "body.output[0] (cond_out)", "Identity(cond_in) or a constant true (no early "
                               "exit: snnc runs every time step)", f"'{body.output[0].name}' computed by the body")


def _one_boolean(path: str, node, field: str, value) -> None:
    value = np.asarray(value)
    if value.dtype != np.bool_ or value.size != 1:
        raise OnnxError(path, _name(node), field, f"one boolean, got {_describe(value)}")


def _constant_true(value) -> bool:
    return value is not None and np.size(value) == 1 and bool(np.asarray(value).reshape(-1)[0])


# ------------------------------------------------------------------------------------------ both loops

def _counts(path: str, node, field: str, expected: int, got: int, what: str) -> None:
    if expected != got:
        raise OnnxError(path, _name(node), field, f"{expected} ({what}), got {got}")


def _enough_outputs(path: str, node, n_states: int) -> None:
    if len(node.output) < n_states:
        raise OnnxError(path, _name(node), "outputs", f"at least {n_states} (one final value per state), got "
                        f"{len(node.output)}")


def _zero_initial(path: str, node, names: list[str], const: dict) -> None:
    for name in names:
        value = const.get(name)
        if value is None or np.any(np.asarray(value) != 0):
            raise UnsupportedError(f"{path}: {node.name or node.op_type}", f"initial state '{name}'",
                                   "a constant zero tensor (snnc neurons start at rest)",
                                   "non-constant" if value is None else "non-zero values")


def _state_shapes(path: str, node, body, first: int, count: int, const: dict) -> dict[str, tuple[int, ...]]:
    """Body state input -> shape without batch, from the initial value, which must match the body's declaration."""
    out = {}
    for index in range(first, first + count):
        outer, info = node.input[index], body.input[index]
        shape = tuple(np.shape(const[outer]))
        if len(shape) < 2 or min(shape[1:]) < 1:
            raise OnnxError(path, _name(node), f"inputs[{index}] (initial state '{outer}')",
                            f"shape [batch, *sizes] with sizes >= 1, got {list(shape)}")
        _matches_body(path, node, index, f"initial state '{outer}'", shape, info)
        out[info.name] = shape[1:]
    return out


def _matches_body(path: str, node, index: int, what: str, shape: tuple, info) -> None:
    """``shape`` (batch first, None when unknown) agrees with the body input's declared type where it has one."""
    kind = info.type.WhichOneof("value")
    field = f"inputs[{index}] ({what})"
    if kind not in (None, "tensor_type"):
        raise OnnxError(path, _name(node), field, f"a tensor, as body input '{info.name}' would have to be, "
                        f"which is declared {NON_TENSOR.get(kind, kind)}")
    if kind is None or not info.type.tensor_type.HasField("shape"):
        return
    declared = value_shape(info)
    if len(declared) != len(shape) or any(d is not None and d != s for d, s in zip(declared[1:], shape[1:])):
        raise OnnxError(path, _name(node), field, f"the shape body input '{info.name}' declares, "
                        f"{_dims(declared)} (batch not compared), got {_dims(shape)}")


def _dims(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"
