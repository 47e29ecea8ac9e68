"""``snnc export --format onnx``: a float IR graph as a single-step ONNX model with explicit state.

The model computes ONE time step. Inputs: the network inputs (``[batch, *shape]`` spikes) and the state of
every neuron (``<node>.u``, ``<node>.v``) and, for delayed synapses, the spike history
(``<node>.s_prev<k>``); outputs: the network outputs (spikes, or membrane of an ``LI`` readout) and the
next state (``<state>_out``). State starts at zero; feeding each ``*_out`` back into its input runs the
network. The binding is written to ``metadata_props['snnc.state_bindings']`` ("in=out,..."), together
with ``snnc.dt_s`` and ``snnc.format = single_step``.

Neurons are nodes of snnc's published custom domain ``snn`` (version 1), defined as ONNX functions in
the model, so onnxruntime (or any ONNX runtime that inlines local functions) runs the file as is:

* ``snn.LIF(I, u_prev, v_prev, current_decay, voltage_decay, threshold, bias) -> (s, u, v)`` with int
  attributes ``reset`` (0 none, 1 zero, 2 zero_next, 3 subtract) and ``ge`` (0: ``v > threshold``,
  1: ``v >= threshold``). Equations of ``snnc.ir.nodes.CubaLIF``; the previous spike that the
  ``subtract`` and ``zero_next`` resets need is recomputed as ``compare(v_prev, threshold)``.
* ``snn.IF(I, v_prev, threshold) -> (s, v)``: LIF without leak, current memory or bias (same attributes).
* ``snn.LI(I, u_prev, v_prev, current_decay, voltage_decay, bias) -> (u, v)``: the ``LI`` readout.

Synapses are plain ONNX: ``Gemm`` (dense), ``Conv`` (conv, and a depthwise Conv with a constant kernel for
sum/average pooling), ``Flatten``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.formats import require_node_types
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Comparison, Conv2d, CubaLIF, Dense, Flatten, Input, ResetKind, SumPool2d

SNN_DOMAIN = "snn"
SNN_VERSION = 1
ONNX_OPSET = 18
RESET_CODES = {ResetKind.NONE: 0, ResetKind.ZERO: 1, ResetKind.ZERO_NEXT: 2, ResetKind.SUBTRACT: 3}


def save_onnx(graph: Graph, path: str | Path) -> None:
    """Write a float IR graph as a single-step ONNX model (``graph_to_onnx``) to ``path``."""
    import onnx
    onnx.save(graph_to_onnx(graph), str(path))


def graph_to_onnx(graph: Graph):
    """The single-step ``onnx.ModelProto`` of a float (zero-latency) IR graph."""
    from onnx import helper
    if graph.timing != "zero_latency":
        raise UnsupportedError(graph.name, "timing", "zero_latency (export the float source graph)", graph.timing)
    require_node_types(graph, (Input, Flatten, Dense, Conv2d, SumPool2d, CubaLIF, LI), "ONNX")
    writer = _Writer(graph)
    for node in graph.evaluation_order:
        writer.add(node)
    writer.finish_history()
    outputs = [writer.output_value(name) for name in graph.outputs]
    model_graph = helper.make_graph(writer.nodes, graph.name, writer.inputs, outputs + writer.state_outputs,
                                    initializer=writer.initializers)
    model = helper.make_model(model_graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET),
                                                          helper.make_opsetid(SNN_DOMAIN, SNN_VERSION)],
                              functions=snn_functions(), producer_name="snnc")
    model.ir_version = 10
    bindings = ",".join(f"{i}={o}" for i, o in writer.bindings)
    helper.set_model_props(model, {"snnc.format": "single_step", "snnc.dt_s": repr(float(graph.dt_s)),
                                   "snnc.state_bindings": bindings})
    return model


class _Writer:
    """Accumulates ONNX nodes, graph inputs, initializers and state bindings for one IR graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.nodes, self.inputs, self.initializers = [], [], []
        self.state_outputs, self.bindings = [], []
        self.values: dict[str, str] = {}     # IR node -> ONNX value holding its output this step
        self.history: dict[str, int] = {}    # IR spiking node -> spike history depth needed
        for node in graph.nodes:
            if getattr(node, "delay_steps", 0):
                self.history[node.source] = max(self.history.get(node.source, 0), int(node.delay_steps))

    def tensor(self, name: str, value) -> str:
        from onnx import numpy_helper
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def value_input(self, name: str, shape) -> str:
        from onnx import TensorProto, helper
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shape]))
        return name

    def state(self, name: str, shape) -> tuple[str, str]:
        from onnx import TensorProto, helper
        out = f"{name}_out"
        self.value_input(name, shape)
        self.state_outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", *shape]))
        self.bindings.append((name, out))
        return name, out

    def op(self, op_type: str, inputs, outputs, domain: str = "", **attrs) -> None:
        from onnx import helper
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), domain=domain or None, **attrs))

    def add(self, node) -> None:
        if isinstance(node, Input):
            self.values[node.name] = self.value_input(node.name, node.shape)
        elif isinstance(node, Flatten):
            self.op("Flatten", [self.values[node.source]], [node.name], axis=1)
            self.values[node.name] = node.name
        elif isinstance(node, (CubaLIF, LI)):
            self.neuron(node)
        else:
            self.synapse(node)

    def source_value(self, node) -> str:
        delay = int(getattr(node, "delay_steps", 0))
        return f"{node.source}.s_prev{delay}" if delay else self.values[node.source]

    def synapse(self, node) -> None:
        x = self.source_value(node)
        if isinstance(node, Dense):
            flat = x
            if len(self.graph.shapes[node.source]) > 1:
                flat = f"{node.name}.flat"
                self.op("Flatten", [x], [flat], axis=1)
            inputs = [flat, self.tensor(f"{node.name}.weight", node.weight)]
            if node.bias is not None:
                inputs.append(self.tensor(f"{node.name}.bias", node.bias))
            self.op("Gemm", inputs, [node.name], transB=1)
        elif isinstance(node, Conv2d):
            inputs = [x, self.tensor(f"{node.name}.weight", node.weight)]
            if node.bias is not None:
                inputs.append(self.tensor(f"{node.name}.bias", node.bias))
            ph, pw = node.padding
            self.op("Conv", inputs, [node.name], strides=list(node.stride), pads=[ph, pw, ph, pw],
                    group=node.groups)
        elif isinstance(node, SumPool2d):
            channels = node.in_shape[0]
            kernel = np.full((channels, 1, *node.kernel), node.scale)
            self.op("Conv", [x, self.tensor(f"{node.name}.weight", kernel)], [node.name],
                    strides=list(node.stride), group=channels)
        else:
            raise UnsupportedError(node.name, "type", "a float IR node", type(node).__name__)
        self.values[node.name] = node.name

    def neuron_input(self, node) -> str:
        shape = list(node.shape)
        parts = []
        for src in node.inputs:
            reshaped = f"{node.name}.in.{src}"
            self.op("Reshape", [src, self.tensor_int(f"{node.name}.shape", [-1, *shape])], [reshaped])
            parts.append(reshaped)
        if len(parts) == 1:
            return parts[0]
        total = f"{node.name}.current"
        self.op("Sum", parts, [total])
        return total

    def tensor_int(self, name: str, value) -> str:
        from onnx import numpy_helper
        if not any(t.name == name for t in self.initializers):
            self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    def param(self, node, field: str) -> str:
        value = np.asarray(getattr(node, field), dtype=np.float64)
        if value.ndim:
            value = value.reshape(node.shape)
        return self.tensor(f"{node.name}.{field}", value)

    def neuron(self, node) -> None:
        if getattr(node, "reset_interval", 0):
            raise UnsupportedError(node.name, "reset_interval", "0 (snnc's ONNX neuron ops have no periodic "
                                   "reset)", node.reset_interval)
        current = self.neuron_input(node)
        if isinstance(node, LI):
            u_in, u_out = self.state(f"{node.name}.u", node.shape)
            v_in, v_out = self.state(f"{node.name}.v", node.shape)
            self.op("LI", [current, u_in, v_in, self.param(node, "current_decay"),
                           self.param(node, "voltage_decay"), self.param(node, "bias")], [u_out, v_out],
                    domain=SNN_DOMAIN)
            self.values[node.name] = v_out
            return
        attrs = dict(reset=RESET_CODES[node.reset], ge=int(node.comparison == Comparison.GE))
        if _is_if(node):
            v_in, v_out = self.state(f"{node.name}.v", node.shape)
            self.op("IF", [current, v_in, self.param(node, "threshold")], [node.name, v_out],
                    domain=SNN_DOMAIN, **attrs)
        else:
            u_in, u_out = self.state(f"{node.name}.u", node.shape)
            v_in, v_out = self.state(f"{node.name}.v", node.shape)
            self.op("LIF", [current, u_in, v_in, self.param(node, "current_decay"),
                            self.param(node, "voltage_decay"), self.param(node, "threshold"),
                            self.param(node, "bias")], [node.name, u_out, v_out], domain=SNN_DOMAIN, **attrs)
        self.values[node.name] = node.name

    def finish_history(self) -> None:
        """Spike history state: s_prev1 <- this step's spikes, s_prev(k+1) <- s_prev(k)."""
        for name, depth in self.history.items():
            shape = self.graph.shapes[name]
            for k in range(1, depth + 1):
                _, out = self.state(f"{name}.s_prev{k}", shape)
                previous = self.values[name] if k == 1 else f"{name}.s_prev{k - 1}"
                self.op("Identity", [previous], [out])

    def output_value(self, name: str):
        from onnx import TensorProto, helper
        value = self.values[name]
        if value != name:
            self.op("Identity", [value], [name])
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *self.graph.shapes[name]])


def _is_if(node: CubaLIF) -> bool:
    return bool(np.all(np.asarray(node.current_decay) == 1.0) and np.all(np.asarray(node.voltage_decay) == 0.0)
                and np.all(np.asarray(node.bias) == 0.0))


# ---------------------------------------------------------------------------- the snn domain functions

def snn_functions() -> list:
    """FunctionProtos of ``snn.LIF``, ``snn.IF`` and ``snn.LI`` (opset 18 bodies)."""
    return [_lif_function(), _if_function(), _li_function()]


def _int_attr_constant(out: str, attr: str):
    from onnx import AttributeProto, helper
    node = helper.make_node("Constant", [], [out])
    node.attribute.append(helper.make_attribute_ref("value_int", AttributeProto.INT, ref_attr_name=attr))
    return node


def _compare_nodes(prefix: str, v: str, thr: str, ge_flag: str, out: str) -> list:
    """out = float(v > thr) + ge_flag * float(v == thr)."""
    from onnx import TensorProto, helper
    return [
        helper.make_node("Greater", [v, thr], [f"{prefix}_gt"]),
        helper.make_node("Cast", [f"{prefix}_gt"], [f"{prefix}_gtf"], to=TensorProto.FLOAT),
        helper.make_node("Equal", [v, thr], [f"{prefix}_eq"]),
        helper.make_node("Cast", [f"{prefix}_eq"], [f"{prefix}_eqf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [ge_flag, f"{prefix}_eqf"], [f"{prefix}_eqg"]),
        helper.make_node("Add", [f"{prefix}_gtf", f"{prefix}_eqg"], [out]),
    ]


def _flag_nodes() -> list:
    """Float flags from the int attributes: f_zero, f_zero_next, f_subtract, f_ge."""
    from onnx import TensorProto, helper
    nodes = [_int_attr_constant("reset_code", "reset"), _int_attr_constant("ge_code", "ge"),
             helper.make_node("Cast", ["ge_code"], ["f_ge"], to=TensorProto.FLOAT)]
    for name, code in (("f_zero", 1), ("f_zero_next", 2), ("f_subtract", 3)):
        nodes += [helper.make_node("Constant", [], [f"{name}_code"], value_int=code),
                  helper.make_node("Equal", ["reset_code", f"{name}_code"], [f"{name}_b"]),
                  helper.make_node("Cast", [f"{name}_b"], [name], to=TensorProto.FLOAT)]
    return nodes


def _voltage_nodes(v_pre: str) -> list:
    """From the pre-reset update ``v_pre`` to (s, v) following the reset flags."""
    from onnx import helper
    return [
        helper.make_node("Mul", ["threshold", "s_prev"], ["sub_amount0"]),
        helper.make_node("Mul", ["sub_amount0", "f_subtract"], ["sub_amount"]),
        helper.make_node("Sub", [v_pre, "sub_amount"], ["v_sub"]),
        helper.make_node("Mul", ["s_prev", "f_zero_next"], ["zn"]),
        helper.make_node("Sub", ["one", "zn"], ["keep_next"]),
        helper.make_node("Mul", ["v_sub", "keep_next"], ["v_fire"]),
        *_compare_nodes("s", "v_fire", "threshold", "f_ge", "s"),
        helper.make_node("Mul", ["s", "f_zero"], ["zr"]),
        helper.make_node("Sub", ["one", "zr"], ["keep"]),
        helper.make_node("Mul", ["v_fire", "keep"], ["v"]),
    ]


def _leaky_integration_nodes(v_out: str) -> list:
    """u = (1 - current_decay) u_prev + I; ``v_out`` = (1 - voltage_decay) v_prev + u + bias."""
    from onnx import helper
    return [
        helper.make_node("Sub", ["one", "current_decay"], ["keep_u"]),
        helper.make_node("Mul", ["keep_u", "u_prev"], ["u_decayed"]),
        helper.make_node("Add", ["u_decayed", "I"], ["u"]),
        helper.make_node("Sub", ["one", "voltage_decay"], ["keep_v"]),
        helper.make_node("Mul", ["keep_v", "v_prev"], ["v_decayed"]),
        helper.make_node("Add", ["v_decayed", "u"], ["v_u"]),
        helper.make_node("Add", ["v_u", "bias"], [v_out]),
    ]


def _one():
    from onnx import helper
    return helper.make_node("Constant", [], ["one"], value_float=1.0)


def _lif_function():
    from onnx import helper
    nodes = [_one(), *_flag_nodes(),
             *_compare_nodes("sp", "v_prev", "threshold", "f_ge", "s_prev"),
             *_leaky_integration_nodes("v_pre"),
             *_voltage_nodes("v_pre")]
    return helper.make_function(SNN_DOMAIN, "LIF", ["I", "u_prev", "v_prev", "current_decay", "voltage_decay",
                                                    "threshold", "bias"], ["s", "u", "v"], nodes,
                                [helper.make_opsetid("", ONNX_OPSET)], attributes=["reset", "ge"],
                                doc_string="snnc CubaLIF step (see snnc.ir.nodes.CubaLIF)")


def _if_function():
    from onnx import helper
    nodes = [_one(), *_flag_nodes(),
             *_compare_nodes("sp", "v_prev", "threshold", "f_ge", "s_prev"),
             helper.make_node("Add", ["v_prev", "I"], ["v_pre"]),
             *_voltage_nodes("v_pre")]
    return helper.make_function(SNN_DOMAIN, "IF", ["I", "v_prev", "threshold"], ["s", "v"], nodes,
                                [helper.make_opsetid("", ONNX_OPSET)], attributes=["reset", "ge"],
                                doc_string="snnc integrate-and-fire step: CubaLIF with current_decay 1, "
                                           "voltage_decay 0, bias 0")


def _li_function():
    from onnx import helper
    nodes = [_one(), *_leaky_integration_nodes("v")]
    return helper.make_function(SNN_DOMAIN, "LI", ["I", "u_prev", "v_prev", "current_decay", "voltage_decay",
                                                   "bias"], ["u", "v"], nodes, [helper.make_opsetid("", ONNX_OPSET)],
                                doc_string="snnc leaky-integrator readout step (see snnc.ir.nodes.LI)")
