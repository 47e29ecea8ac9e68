"""The ONNX step interpreter: evaluates a step graph node by node into symbolic values, folding constant
nodes with ONNX's reference evaluator and following state-dependent values through the ops snnc supports."""
from __future__ import annotations

import numpy as np

from snnc.errors import SnncError
from snnc.frontends.onnx_limits import OnnxLimits, folded_elements
from snnc.frontends.onnx_step import Iter, OnnxError, Sequence, batchless_shape, value_shape
from snnc.frontends.onnx_symbolic import Cmp, Lin, Spike, SymbolicOps, apply_op
from snnc.ir.nodes import Comparison

EXACT_FLOAT_TYPES = (1, 11)      # TensorProto.FLOAT, DOUBLE: a Cast that keeps a float32 membrane exact
# ops whose operands broadcast together (ONNX multidirectional broadcasting)
BROADCASTING = {"Add", "Sub", "Mul", "Div", "Sum", "Where", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"}

FOLD_LIMITS = OnnxLimits()


class Interpreter(SymbolicOps):
    """Evaluates the step graph node by node into symbolic values."""

    def run(self) -> dict:
        """Evaluate every node of the step in order; the value of every name (constants as arrays, state-dependent
        values as ``Lin``/``Cmp``). A node reading a name not yet computed, or a malformed value, is a typed error
        naming the node."""
        step = self.step
        env: dict = dict(step.initializers)
        env.update(step.outer)
        for name in step.data:
            if name not in step.outer:
                env[name] = self.input_lin(name, step.data_shapes[name])
        for name in step.state:
            env[name] = self.input_lin(name, None)
        for node in step.graph.node:
            for name in node.input:
                if name and name not in env:
                    raise self.error(node, "input", f"'{name}' is not computed before this node")
            values = [env[i] if i else None for i in node.input]
            try:
                outs = self.evaluate(node, values)
            except SnncError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
                raise self.error(node, "inputs/attributes", f"malformed value ({type(exc).__name__}: "
                                 f"{str(exc)[:160]})") from None
            for name, value in zip(node.output, outs):
                env[name] = value
        return env

    def input_lin(self, name: str, shape) -> Lin:
        """The symbolic value of graph input ``name``: itself, shape (1, *shape) (a state input's shape is looked
        up)."""
        if shape is None:
            shape = self.state_shape(name)
        full = (1, *shape)
        return Lin(full, {("in", name): np.ones(full)}, np.zeros(full))

    def state_shape(self, name: str):
        """The sizes (without batch) of input ``name``: bound by the loop, or declared on the graph input."""
        if name in self.step.state_shapes:
            return self.step.state_shapes[name]
        for info in self.step.graph.input:
            if info.name == name:
                return batchless_shape(self.path, name, value_shape(info))
        raise OnnxError(self.path, name, "shape", "a declared graph input")

    def evaluate(self, node, values) -> list:
        """The outputs of one node: snn-domain nodes as neurons, constant inputs folded, otherwise the handler
        ``op_<type>`` after checking arity, loop values and broadcasting."""
        symbolic = any(isinstance(v, (Lin, Cmp, Sequence, Iter)) for v in values)
        if node.domain == "snn":
            return self.snn_node(node, values)
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(node, "domain", "the default ONNX domain or 'snn'", node.domain)
        if not symbolic:
            return self.fold(node, values)
        handler = getattr(self, f"op_{node.op_type}", None)
        if handler is None:
            raise self.unsupported(node, "op_type", "an op snnc can follow on spikes and state (Add, Sub, Mul, "
                                   "Div, Neg, Gemm, MatMul, Conv, AveragePool, Flatten, Reshape, Greater, "
                                   "GreaterOrEqual, Less, LessOrEqual, Cast, Where, Not, Identity, ...)",
                                   node.op_type)
        self.check_arity(node)
        self.check_loop_values(node, values)
        if node.op_type in BROADCASTING:
            self.check_broadcast(node, values)
        out = handler(node, values)
        return out if isinstance(out, list) else [out]

    def check_arity(self, node) -> None:
        """The input count the ONNX schema of the op allows (optional inputs named '' count)."""
        from onnx import defs
        schema = defs.get_schema(node.op_type, domain="")
        if not schema.min_input <= len(node.input) <= schema.max_input:
            limit = str(schema.min_input) if schema.min_input == schema.max_input else \
                f"{schema.min_input} to {min(schema.max_input, 2 ** 31 - 1)}"
            raise self.error(node, "inputs", f"{limit} inputs (ONNX {node.op_type}), got {len(node.input)}")

    def check_loop_values(self, node, values) -> None:
        """A Loop's sequence and iteration counter have no value of their own: only Gather(sequence, iteration)
        reads them (Identity passes them on)."""
        if node.op_type in ("Gather", "Identity"):
            return
        for name, value in zip(node.input, values):
            if isinstance(value, (Sequence, Iter)):
                what = "iteration counter" if isinstance(value, Iter) else "input sequence"
                raise self.unsupported(node, "inputs", "the Loop's sequence and iteration counter only in "
                                       "Gather(sequence, iteration)", f"the {what} '{name}' into {node.op_type}")

    def check_broadcast(self, node, values) -> None:
        """Refuse operands whose shapes do not broadcast together (ONNX multidirectional broadcasting)."""
        shapes = [self.shape_of(v) for v in values if v is not None]
        if not broadcastable(shapes):
            raise self.error(node, "inputs", "shapes that broadcast together (ONNX multidirectional broadcasting), "
                             f"got {' and '.join(str(list(s)) for s in shapes)}")

    def shape_of(self, value) -> tuple[int, ...]:
        """The shape of a symbolic or constant value (a loop's sequence and counter: ())."""
        if isinstance(value, Lin):
            return tuple(value.shape)
        if isinstance(value, Cmp):
            return tuple(self.spikes[value.spike].expr.shape)
        return () if isinstance(value, (Sequence, Iter)) else tuple(np.shape(value))

    def fold(self, node, values) -> list:
        """The outputs of a node with constant inputs, computed by ONNX's reference evaluator (at most
        ``FOLD_LIMITS.max_elements`` elements per result)."""
        from onnx.reference import ReferenceEvaluator
        try:
            produced = folded_elements(node, values)
            if produced is not None and produced > FOLD_LIMITS.max_elements:
                raise self.error(node, "inputs", f"a folded constant of at most {FOLD_LIMITS.max_elements} "
                                 f"elements (OnnxLimits), got {produced}")
            evaluator = ReferenceEvaluator(node)
            feeds = {n: _widened(v) for n, v in zip(node.input, values) if n}
            return [_widened(o) for o in evaluator.run(None, feeds)]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, NotImplementedError,
                ZeroDivisionError, OverflowError) as exc:   # onnx.reference's reactions to a malformed constant node
            raise self.error(node, "inputs", f"constant folding failed ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None

    def attr(self, node, name: str, default=None):
        """The value of attribute ``name`` of ``node``, or ``default``."""
        from onnx import helper
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    # ----- elementwise
    def op_Identity(self, node, v):
        """Identity: the input itself."""
        return v[0]

    def op_Add(self, node, v):
        """Add: the sum of two values."""
        return self.add(v[0], v[1])

    def op_Sum(self, node, v):
        """Sum: the sum of all inputs."""
        total = v[0]
        for value in v[1:]:
            total = self.add(total, value)
        return self.lin(total)

    def op_Sub(self, node, v):
        """Sub: the difference of two values."""
        return self.add(v[0], v[1], sign=-1.0)

    def op_Neg(self, node, v):
        """Neg: the value times -1."""
        return self.lin(v[0]).scaled(-1.0)

    def op_Mul(self, node, v):
        """Mul: the product (constants, or a spike indicator times an expression)."""
        return self.mul(node, v[0], v[1])

    def op_Div(self, node, v):
        """Div: the value scaled by 1 / a constant divisor."""
        if _symbolic(v[1]):
            raise self.unsupported(node, "inputs[1]", "a constant divisor", "state-dependent")
        return self.lin(v[0]).scaled(1.0 / np.asarray(v[1], dtype=np.float64))

    def op_Cast(self, node, v):
        """Cast: a spike indicator becomes 0/1; a state-dependent value stays as it is when cast to FLOAT or DOUBLE
        (other types would round it)."""
        if isinstance(v[0], Cmp):
            return self.spike_lin(v[0])
        to = self.attr(node, "to")
        if to not in EXACT_FLOAT_TYPES:
            from onnx import TensorProto
            raise self.unsupported(node, "to", "FLOAT or DOUBLE for a state-dependent value (another type would "
                                   "round or truncate it)", TensorProto.DataType.Name(to) if to in
                                   TensorProto.DataType.values() else to)
        return v[0]

    def op_Not(self, node, v):
        """Not: the negation of a spike indicator."""
        if not isinstance(v[0], Cmp):
            raise self.unsupported(node, "inputs", "a spike indicator", type(v[0]).__name__)
        return Cmp(v[0].spike, not v[0].negated)

    def op_Greater(self, node, v):
        """Greater: the spike indicator a > b."""
        return self.compare(node, v[0], v[1], Comparison.GT)

    def op_GreaterOrEqual(self, node, v):
        """GreaterOrEqual: the spike indicator a >= b."""
        return self.compare(node, v[0], v[1], Comparison.GE)

    def op_Less(self, node, v):
        """Less: the spike indicator b > a."""
        return self.compare(node, v[1], v[0], Comparison.GT)

    def op_LessOrEqual(self, node, v):
        """LessOrEqual: the spike indicator b >= a."""
        return self.compare(node, v[1], v[0], Comparison.GE)

    def op_Where(self, node, v):
        """Where(s, x, y) on a spike indicator s: y + s * (x - y)."""
        cond, x, y = v
        if not isinstance(cond, Cmp):
            raise self.unsupported(node, "inputs[0]", "a spike indicator", type(cond).__name__)
        if cond.negated:
            cond, x, y = Cmp(cond.spike), y, x
        return self.add(y, self.mul(node, Cmp(cond.spike), self.add(x, y, sign=-1.0)))

    # ----- linear
    def op_Gemm(self, node, v):
        """Gemm: spikes @ a constant 2-D weight (transB, alpha) plus an optional constant bias (beta)."""
        a, b = v[0], v[1]
        if _symbolic(b) or np.ndim(b) != 2 or self.attr(node, "transA", 0):
            raise self.unsupported(node, "inputs", "spikes @ constant 2-D weight (transA = 0)", "other")
        weight = np.asarray(b, dtype=np.float64)
        weight = (weight.T if self.attr(node, "transB", 0) else weight) * self.attr(node, "alpha", 1.0)
        out = self.matmul(node, a, weight)
        if len(v) > 2 and v[2] is not None:
            if _symbolic(v[2]):
                raise self.unsupported(node, "inputs[2]", "a constant bias C", "state-dependent")
            if not broadcasts_to(np.shape(v[2]), out.shape):
                raise self.error(node, "inputs[2]", f"a bias C that broadcasts to the output shape {list(out.shape)}, "
                                 f"got shape {list(np.shape(v[2]))}")
            out = self.add(out, np.asarray(v[2], dtype=np.float64) * self.attr(node, "beta", 1.0))
        return out

    def op_MatMul(self, node, v):
        """MatMul: spikes @ a constant 2-D weight."""
        if _symbolic(v[1]) or np.ndim(v[1]) != 2:
            raise self.unsupported(node, "inputs[1]", "a constant 2-D weight", "other")
        return self.matmul(node, v[0], np.asarray(v[1], dtype=np.float64))

    def matmul(self, node, a, weight: np.ndarray) -> Lin:
        """``a @ weight`` for a [batch, in] value, as a linear synapse term."""
        a = self.lin(a)
        if len(a.shape) != 2 or a.shape[1] != weight.shape[0]:
            raise self.error(node, "inputs", f"[batch, {weight.shape[0]}] input, got shape {list(a.shape)}")
        op = ("matmul", weight)
        return self.linear(node, a, (a.shape[0], weight.shape[1]), op, lambda x: x @ weight)

    def op_Conv(self, node, v):
        """Conv: 2-D convolution of spikes with a constant kernel (no dilation, symmetric padding, strides, groups)
        plus an optional constant per-channel bias."""
        x, weight = self.lin(v[0]), v[1]
        if _symbolic(weight) or np.ndim(weight) != 4 or len(x.shape) != 4:
            raise self.unsupported(node, "inputs", "2-D convolution of spikes with a constant kernel", "other")
        weight = np.asarray(weight, dtype=np.float64)
        if any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            raise self.unsupported(node, "dilations", "[1, 1]", self.attr(node, "dilations"))
        stride = tuple(self.attr(node, "strides", [1, 1]))
        if len(stride) != 2 or min(stride) < 1:
            raise self.unsupported(node, "strides", "2 positive values", list(stride))
        pads = self.conv_pads(node, x.shape, weight.shape, stride)
        groups = int(self.attr(node, "group", 1))
        problem = conv_geometry_problem(x.shape, weight.shape, stride, pads, groups)
        if problem:
            raise self.error(node, "inputs/attributes", problem)
        op = ("conv", weight, stride, (pads[0], pads[1]), groups)
        probe = apply_op(op, np.zeros(x.shape))
        out = self.linear(node, x, probe.shape, op, lambda arr: apply_op(op, arr))
        if len(v) > 2 and v[2] is not None:
            if _symbolic(v[2]) or np.size(v[2]) != probe.shape[1]:
                raise self.unsupported(node, "inputs[2]", f"a constant bias of {probe.shape[1]} values", "other")
            out = self.add(out, np.asarray(v[2], dtype=np.float64).reshape(1, -1, 1, 1))
        return out

    def conv_pads(self, node, x_shape, w_shape, stride) -> list[int]:
        """[h, w, h, w] padding of a Conv: ``pads``, or for ``auto_pad`` SAME_UPPER/SAME_LOWER (torch
        ``padding="same"``) the padding that keeps ceil(size / stride), which must split evenly."""
        auto_pad = self.attr(node, "auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and len(x_shape) == 4 and len(w_shape) == 4:
            total = [max((-(-size // s) - 1) * s + k - size, 0)
                     for size, k, s in zip(x_shape[2:], w_shape[2:], stride)]
            if any(t % 2 for t in total):
                raise self.unsupported(node, "auto_pad", f"{auto_pad} padding that splits evenly (an odd kernel at "
                                       "stride 1)", f"total padding {total}")
            return [total[0] // 2, total[1] // 2, total[0] // 2, total[1] // 2]
        if auto_pad not in ("NOTSET", "VALID"):
            raise self.unsupported(node, "auto_pad", "NOTSET, VALID, SAME_UPPER or SAME_LOWER", auto_pad)
        pads = list(self.attr(node, "pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3] or min(pads) < 0:
            raise self.unsupported(node, "pads", "4 non-negative values, symmetric [h, w, h, w]", pads)
        return pads

    def op_AveragePool(self, node, v):
        """AveragePool: 2-D average pooling without padding (floor mode), as a linear term."""
        x = self.lin(v[0])
        kernel = tuple(self.attr(node, "kernel_shape", ()))
        stride = tuple(self.attr(node, "strides", kernel))
        if len(kernel) != 2:
            raise self.unsupported(node, "kernel_shape", "2 sizes (2-D pooling)", list(kernel))
        if any(self.attr(node, "pads", [0, 0, 0, 0])) or self.attr(node, "ceil_mode", 0):
            raise self.unsupported(node, "pads/ceil_mode", "no padding, floor mode",
                                   f"{self.attr(node, 'pads')}/{self.attr(node, 'ceil_mode')}")
        problem = pool_geometry_problem(x.shape, kernel, stride)
        if problem:
            raise self.error(node, "inputs/attributes", problem)
        op = ("pool", kernel, stride)
        probe = apply_op(op, np.zeros(x.shape))
        return self.linear(node, x, probe.shape, op, lambda arr: apply_op(op, arr))

    def op_MaxPool(self, node, v):
        """MaxPool of one neuron layer's 0/1 spikes: their OR, a registered spike indicator that
        ``onnx_neurons.Recognizer`` realises as a sum pool into an integrate-and-fire unit firing on any
        spike in the window (as the torch tracer does). The max of anything else is refused."""
        x = self.lin(v[0])
        (key, coef), = x.terms.items() if len(x.terms) == 1 else ((("", None), None),)
        if key[0] != "spk" or not np.all(coef == 1.0) or np.any(x.const) or len(node.output) > 1:
            raise self.unsupported(node, "MaxPool input", "spikes of one neuron layer (a max of 0/1 spikes is an "
                                   "OR; the max of real-valued currents is computed exactly by no spiking unit: "
                                   "move MaxPool2d after the neuron layer, or use AvgPool2d)",
                                   "a synaptic current or a sum")
        kernel = tuple(self.attr(node, "kernel_shape", ()))
        stride = tuple(self.attr(node, "strides", kernel))
        if len(kernel) != 2 or len(x.shape) != 4:
            raise self.unsupported(node, "kernel_shape", "2 sizes on [1, C, H, W] spikes (2-D pooling)",
                                   f"{list(kernel)} on {list(x.shape)}")
        if any(self.attr(node, "pads", [0, 0, 0, 0])) or self.attr(node, "ceil_mode", 0) or \
                any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            raise self.unsupported(node, "pads/ceil_mode/dilations", "no padding, floor mode, dilation 1",
                                   f"{self.attr(node, 'pads')}/{self.attr(node, 'ceil_mode')}/"
                                   f"{self.attr(node, 'dilations')}")
        problem = pool_geometry_problem(x.shape, kernel, stride)
        if problem:
            raise self.error(node, "inputs/attributes", problem)
        out_shape = apply_op(("pool", kernel, stride), np.zeros(x.shape)).shape
        self.spikes.append(Spike(Lin(out_shape, {("or", key[1], kernel, stride): np.ones(out_shape)},
                                     np.full(out_shape, -0.5)), Comparison.GT))
        self.or_units[len(self.spikes) - 1] = (key[1], kernel, stride, tuple(x.shape[1:]))
        return Lin(tuple(out_shape), {("spk", len(self.spikes) - 1): np.ones(out_shape)}, np.zeros(out_shape))

    def op_BatchNormalization(self, node, v):
        """Inference batch norm (running statistics) on channel axis 1: a per-channel scale and shift, folded
        into the synapse before it, ``(x - mean) / sqrt(var + eps) * gamma + beta`` in float64."""
        if self.attr(node, "training_mode", 0) or len(node.output) > 1:
            raise self.unsupported(node, "training_mode", "0 (inference statistics, one output)",
                                   self.attr(node, "training_mode", 0))
        x = self.lin(v[0])
        params = v[1:5]
        if any(_symbolic(p) for p in params) or any(np.size(p) != x.shape[1] for p in params) or len(x.shape) < 2:
            raise self.unsupported(node, "inputs", f"constant scale, B, mean and var of {x.shape[1]} channels "
                                   "each", [list(np.shape(p)) for p in params])
        gamma, beta, mean, var = (np.asarray(p, dtype=np.float64).reshape(-1) for p in params)
        epsilon = float(self.attr(node, "epsilon", 1e-5))
        if np.any(var + epsilon <= 0):
            raise self.error(node, "inputs[4] (var)", f"var + epsilon > 0 in every channel, got "
                             f"{float(np.min(var + epsilon))}")
        factor = gamma / np.sqrt(var + epsilon)
        per_channel = (1, -1) + (1,) * (len(x.shape) - 2)
        return self.add(x.scaled(factor.reshape(per_channel)), (beta - mean * factor).reshape(per_channel))

    def movement(self, node, values) -> Lin:
        """Data-movement ops (Reshape, Flatten, Squeeze, Unsqueeze, Slice, Gather, Transpose) on a Lin:
        run the op on an index tensor; an unchanged element order is a reshape of the expression, any
        other order a linear selection."""
        value = self.lin(values[0])
        size = int(np.prod(value.shape))
        index = np.arange(size, dtype=np.float64).reshape(value.shape)
        moved = np.asarray(self.fold(node, [index] + list(values[1:]))[0])
        if moved.ndim == 0 or moved.shape[0] != 1:
            raise self.unsupported(node, "output shape", "the batch dimension first, kept", list(moved.shape))
        order = moved.astype(np.int64).reshape(-1)
        if order.size == size and np.array_equal(order, np.arange(size)):
            return self.reshaped(value, moved.shape)
        op = ("index", order, tuple(moved.shape))
        return self.linear(node, value, moved.shape, op, lambda arr: apply_op(op, arr))

    def reshaped(self, value: Lin, shape) -> Lin:
        """``value`` with its terms and constant reshaped to ``shape`` (same element order)."""
        shape = tuple(int(d) for d in shape)
        return Lin(shape, {k: np.broadcast_to(c, value.shape).reshape(shape) for k, c in value.terms.items()},
                   np.broadcast_to(value.const, value.shape).reshape(shape))

    # data-movement ops: the same element permutation/selection on every term of a linear value
    op_Reshape = op_Flatten = op_Squeeze = op_Unsqueeze = op_Slice = op_Transpose = movement

    def op_Shape(self, node, v):
        """Shape: the value's shape as an int64 array."""
        return np.asarray(self.lin(v[0]).shape, dtype=np.int64)

    def op_Gather(self, node, v):
        """Gather: a Loop body's read of the sequence at the iteration (the step's input), or constant indices into a
        value (a data movement)."""
        data, index = v[0], v[1]
        if isinstance(data, Sequence) and isinstance(index, Iter) and int(self.attr(node, "axis", 0)) == 0:
            return self.input_lin(data.name, self.step.data_shapes[data.name])
        if isinstance(data, Lin) and not isinstance(index, (Lin, Cmp, Iter, Sequence)):
            return self.movement(node, v)
        raise self.unsupported(node, "inputs", "Gather(sequence, iteration) in a Loop body or constant indices",
                               "other")

    # ----- snn domain
    def snn_node(self, node, values) -> list:
        """An snn-domain node (snn.LIF with 7 inputs, snn.IF with 3, snn.LI with 6): registered as a neuron; its
        outputs are its spike indicator (not LI) and its state values."""
        kinds = {"LIF": 7, "IF": 3, "LI": 6}
        if node.op_type not in kinds or len(values) != kinds[node.op_type]:
            raise self.unsupported(node, "op_type", "snn.LIF (7 inputs), snn.IF (3) or snn.LI (6)",
                                   f"snn.{node.op_type} with {len(values)} inputs")
        current = self.lin(values[0])
        params = [v for v in values[1:] if not isinstance(v, (Lin, Cmp))]
        states = [v for v in values[1:] if isinstance(v, Lin)]
        n_states = 1 if node.op_type == "IF" else 2
        if len(states) != n_states or len(params) != len(values) - 1 - n_states:
            raise self.unsupported(node, "inputs", "state inputs then constant parameters", "other")
        index = len(self.snn_nodes)
        self.snn_nodes.append((node, current, states, params))
        shape = current.shape
        outs = []
        if node.op_type != "LI":
            self.spikes.append(Spike(Lin(shape, {("snn", index): np.ones(shape)}, np.zeros(shape)), "snn"))
            outs.append(self.spike_lin(Cmp(len(self.spikes) - 1)))
        for k in range(n_states):
            outs.append(Lin(shape, {("snnstate", index, k): np.ones(shape)}, np.zeros(shape)))
        return outs


def broadcasts_to(shape, target) -> bool:
    """ONNX unidirectional broadcasting: ``shape`` stretches to ``target`` without changing it."""
    return len(shape) <= len(target) and all(d in (1, t) for d, t in zip(reversed(shape), reversed(target)))


def conv_geometry_problem(x_shape, w_shape, stride, pads, groups: int) -> str:
    """What makes a 2-D convolution of an (N, C, H, W) input with an (O, C/groups, kh, kw) kernel impossible."""
    if groups < 1 or x_shape[1] != w_shape[1] * groups or w_shape[0] % groups:
        return (f"input channels = kernel channels x group and output channels divisible by group, got input "
                f"{list(x_shape)}, kernel {list(w_shape)}, group {groups}")
    padded = (x_shape[2] + 2 * pads[0], x_shape[3] + 2 * pads[1])
    if min(w_shape) < 1 or w_shape[2] > padded[0] or w_shape[3] > padded[1]:
        return f"a kernel of sizes >= 1 that fits the padded input {list(padded)}, got kernel {list(w_shape)}"
    return ""


def pool_geometry_problem(x_shape, kernel, stride) -> str:
    """What makes a 2-D pooling window impossible on an (N, C, H, W) input."""
    if len(x_shape) != 4:
        return f"an (N, C, H, W) input, got shape {list(x_shape)}"
    if len(stride) != 2 or min(stride) < 1 or min(kernel) < 1 or kernel[0] > x_shape[2] or kernel[1] > x_shape[3]:
        return (f"kernel_shape of sizes >= 1 within the input's {list(x_shape[2:])} and 2 strides >= 1, got kernel "
                f"{list(kernel)}, strides {list(stride)}")
    return ""


def broadcastable(shapes) -> bool:
    """True when numpy (= ONNX multidirectional) broadcasting accepts these shapes: per trailing axis, one size
    or 1."""
    rank = max((len(s) for s in shapes), default=0)
    for axis in range(1, rank + 1):
        sizes = {s[-axis] for s in shapes if len(s) >= axis} - {1}
        if len(sizes) > 1:
            return False
    return True


def _widened(value) -> np.ndarray:
    """A folded value with float elements as float64, as initializers are read: a ``Constant`` node's float32
    tensor then meets a widened initializer in one op without an ONNX type mismatch (the legacy exporter's
    ``Mul(Clip(beta), Constant)``)."""
    array = np.asarray(value)
    return array.astype(np.float64) if array.dtype.kind == "f" and array.dtype != np.float64 else array


def _symbolic(value) -> bool:
    return isinstance(value, (Lin, Cmp, Sequence, Iter))
