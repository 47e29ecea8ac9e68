"""Hand-built ONNX steps and the Scan/Loop wrappers that run a step over time, shared by the ONNX frontend tests
and the frontend fuzz test (no torch needed)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def step_parts(step):
    graph = step.graph
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    outputs = {o.name: o for o in graph.output}
    return graph, shapes, outputs


def value(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def finish(step, graph):
    model = helper.make_model(graph, opset_imports=list(step.opset_import), functions=list(step.functions))
    model.ir_version = step.ir_version
    onnx.checker.check_model(model, full_check=True)
    return model


def wrap_scan(step, bindings: dict, data: str, result: str, steps: int, batch: int):
    """A Scan over time whose body is the single-step graph (state = Scan state, zero initial values)."""
    graph, shapes, outputs = step_parts(step)
    states = list(bindings)
    body = helper.make_graph(list(graph.node), "step",
                             [value(s, [batch, *shapes[s][1:]]) for s in states] + [value(data, [batch, *shapes[data][1:]])],
                             [outputs[bindings[s]] for s in states] + [outputs[result]], list(graph.initializer))
    init = [numpy_helper.from_array(np.zeros([batch, *shapes[s][1:]], np.float32), f"{s}_init") for s in states]
    scan = helper.make_node("Scan", [f"{s}_init" for s in states] + ["x_seq"],
                            [f"{s}_final" for s in states] + ["spk_seq"], body=body, num_scan_inputs=1)
    out_shape = [steps, batch, *[d.dim_value for d in outputs[result].type.tensor_type.shape.dim][1:]]
    return finish(step, helper.make_graph([scan], "scan", [value("x_seq", [steps, batch, *shapes[data][1:]])],
                                          [value("spk_seq", out_shape)], init))


def wrap_loop(step, bindings: dict, data: str, result: str, steps: int, batch: int):
    """A Loop over time; the body reads step t of the outer sequence with Gather(x_seq, iteration)."""
    graph, shapes, outputs = step_parts(step)
    states = list(bindings)
    nodes = [helper.make_node("Gather", ["x_seq", "iter"], [data], axis=0),
             helper.make_node("Identity", ["cond_in"], ["cond_out"])] + list(graph.node)
    body = helper.make_graph(nodes, "step", [value("iter", [], TensorProto.INT64), value("cond_in", [], TensorProto.BOOL)]
                             + [value(s, [batch, *shapes[s][1:]]) for s in states],
                             [value("cond_out", [], TensorProto.BOOL)] + [outputs[bindings[s]] for s in states]
                             + [outputs[result]], list(graph.initializer))
    init = [numpy_helper.from_array(np.zeros([batch, *shapes[s][1:]], np.float32), f"{s}_init") for s in states]
    init += [numpy_helper.from_array(np.asarray(steps, np.int64), "trip"),
             numpy_helper.from_array(np.asarray(True), "cond")]
    loop = helper.make_node("Loop", ["trip", "cond"] + [f"{s}_init" for s in states],
                            [f"{s}_final" for s in states] + ["spk_seq"], body=body)
    out_shape = [steps, batch, *[d.dim_value for d in outputs[result].type.tensor_type.shape.dim][1:]]
    return finish(step, helper.make_graph([loop], "loop", [value("x_seq", [steps, batch, *shapes[data][1:]])],
                                          [value("spk_seq", out_shape)], init))


def leaky_step(tail=None, conv_pads=None, n_in: int = 4):
    """A hand-built Leaky step (Gemm synapse, subtract reset): x, mem -> spk, mem_out. ``tail`` replaces the
    final Identity(mem_raw) -> mem_out with other nodes; ``conv_pads`` makes the synapse a 1x1 Conv; ``n_in`` is
    the size of x (4 neurons; 4 inputs for the conv)."""
    synapse = [helper.make_node("Gemm", ["x", "w"], ["i"], transB=1)] if conv_pads is None else \
        [helper.make_node("Reshape", ["x", "shape4"], ["x4"]),
         helper.make_node("Conv", ["x4", "k"], ["c4"], name="conv", pads=conv_pads),
         helper.make_node("Reshape", ["c4", "shape2"], ["i"])]
    nodes = synapse + [
        helper.make_node("Mul", ["beta", "mem"], ["decayed"]),
        helper.make_node("Add", ["decayed", "i"], ["pre"]),
        helper.make_node("Greater", ["mem", "thr"], ["fired"]),
        helper.make_node("Cast", ["fired"], ["reset"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["reset", "thr"], ["amount"]),
        helper.make_node("Sub", ["pre", "amount"], ["mem_raw"]),
        helper.make_node("Greater", ["mem_raw", "thr"], ["fired2"]),
        helper.make_node("Cast", ["fired2"], ["spk"], to=TensorProto.FLOAT)]
    nodes += tail if tail is not None else [helper.make_node("Identity", ["mem_raw"], ["mem_out"])]
    arrays = {"w": np.ones((4, n_in)), "beta": np.array(0.9), "thr": np.array(0.5), "k": np.ones((4, 4, 1, 1))}
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in arrays.items()]
    inits += [numpy_helper.from_array(np.array(s, np.int64), n) for n, s in (("shape4", [-1, 4, 1, 1]),
                                                                           ("shape2", [-1, 4]))]
    graph = helper.make_graph(nodes, "step", [value("x", ["batch", n_in]), value("mem", ["batch", 4])],
                              [value("spk", ["batch", 4]), value("mem_out", ["batch", 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def leaky_time_loop(kind: str):
    """The hand-built Leaky step (x: 3 values, mem: 4) run by a Loop or a Scan over 5 steps."""
    wrap = wrap_loop if kind == "Loop" else wrap_scan
    return wrap(leaky_step(n_in=3), {"mem": "mem_out"}, "x", "spk", 5, 1)
