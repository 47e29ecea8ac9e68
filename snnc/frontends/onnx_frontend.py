"""ONNX import: single-step graphs with explicit state, Scan/Loop time loops, and snnc's ``snn`` domain.

Three shapes of file land in the same float IR (zero-latency timing):

1. **Single step** (``torch.onnx.export``, legacy or dynamo, of an snnTorch/SpikingJelly step with the
   membrane state as explicit inputs and outputs). The graph is evaluated *symbolically*: every tensor
   is an affine expression over graph inputs, spike indicators (``Cast(Greater/GreaterOrEqual/Less(..))``)
   and gated terms (spike x expression, from ``(1 - s) * v``, ``v - s * v`` or ``Where``); constants are
   folded with ONNX's reference evaluator. Recognition therefore does not depend on node names, on how
   constants were folded, or on the order of commutative operands. Each state output is then matched
   against the neuron equations of ``snnc.ir.nodes.CubaLIF``/``LI``:
   ``v' = beta*v + I + b`` (pre-reset), with ``I`` a sum of synapse terms or another state's update
   ``c' = alpha*c + W s + b0`` (current memory), and one of the resets: subtract (``- thr*s_prev``),
   zero (``beta*(1 - s_prev)*v``, or the state stored after ``(1 - s)*v'``), zero_next
   (``(1 - s_prev)*v'``), none. ``s_prev`` is the spike recomputed from the state input.
   State inputs are bound to state outputs by ``metadata_props['snnc.state_bindings']`` ("in=out,...")
   when present, else by output names (``<in>_out``, ``<in>_new``, ``new_<in>``, ``next_<in>``), else
   structurally (the output whose update is the only one to decay that input); an ambiguity is an error,
   never a guess. Graph inputs not bound to an output are spike inputs; the first dimension is batch.
2. **Time loops**: a ``Scan`` whose body is such a step (state variables = Scan state, bound by position,
   initial values must be zero) or a ``Loop`` whose body reads the sequence with ``Gather(x, iter)``.
3. **snn domain** (``snnc export --format onnx``, see ``snnc.frontends.onnx_export``): ``snn.LIF``,
   ``snn.IF``, ``snn.LI`` nodes are read with their documented semantics.

Everything else raises ``UnsupportedError``/``ModelFileError`` naming the file, the ONNX node and the
field. ``dt_s`` is taken from the option, else ``metadata_props['snnc.dt_s']``, else 1e-3 (ONNX step
graphs hold per-step parameters; dt only labels the IR).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.errors import ModelFieldError, ModelFileError, SnncError, UnsupportedError
from snnc.frontends.ir_values import compact_parameter, ir_name
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Conv2d, CubaLIF, Dense, Flatten, Input, SumPool2d
from snnc.ir.verify import verify
from snnc.simulators.synapse_math import conv2d_sum, sum_pool_sum

DEFAULT_DT_S = 1e-3
STATE_SUFFIXES = ("_out", "_new", "_next")
STATE_PREFIXES = ("new_", "next_", "out_")
RESET_NAMES = {0: "none", 1: "zero", 2: "zero_next", 3: "subtract"}
MAX_COMPOSED_INPUTS = 1 << 14
EXACT_FLOAT_TYPES = (1, 11)      # TensorProto.FLOAT, DOUBLE: a Cast that keeps a float32 membrane exact


class OnnxError(ModelFieldError):
    """An ONNX file snnc cannot read or recognise; names the ONNX node and field."""


# --------------------------------------------------------------------------------------- entry points

def load_onnx(path: str | Path, dt_s: float | None = None) -> Graph:
    """Read an ONNX file into a verified float IR graph."""
    path = Path(path)
    model = _read_model(path)
    return onnx_model_to_ir(model, dt_s=dt_s, name=path.stem or "network", path=str(path))


def onnx_model_to_ir(model, dt_s: float | None = None, name: str = "network", path: str = "<onnx>") -> Graph:
    meta = _metadata(path, model)
    dt = _dt(path, dt_s, meta)
    graph = model.graph
    loops = [n for n in graph.node if n.op_type in ("Scan", "Loop")]
    try:
        if loops:
            step = _loop_step(path, graph, loops)
        else:
            step = _single_step(path, graph, meta)
        return _Recognizer(path, step, dt, name).build()
    except SnncError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
        raise OnnxError(path, "graph", "structure", f"malformed ({type(exc).__name__}: {str(exc)[:200]})") from None


def _read_model(path: Path):
    import onnx
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf/IO errors of the third-party reader
        raise ModelFileError(str(path), f"not a readable ONNX file ({type(exc).__name__}: {str(exc)[:160]})") \
            from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and friends
        raise ModelFileError(str(path), f"onnx.checker rejects the model: {str(exc).splitlines()[0][:200]}") \
            from None
    return model


def _dt(path: str, dt_s, meta: dict) -> float:
    value = dt_s if dt_s is not None else meta.get("snnc.dt_s", DEFAULT_DT_S)
    try:
        dt = float(value)
    except (TypeError, ValueError):
        raise OnnxError(path, "model", "metadata_props['snnc.dt_s']", f"expected seconds, got {value!r}") from None
    if not (np.isfinite(dt) and dt > 0):
        raise OnnxError(path, "model", "dt", f"expected > 0 seconds, got {dt!r}")
    return dt


# ------------------------------------------------------------------------------- step description

@dataclass
class _Step:
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


def _value_shape(value_info) -> tuple[int | None, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)


def _initializers(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t).astype(np.float64) if numpy_helper.to_array(t).dtype.kind == "f"
            else numpy_helper.to_array(t) for t in graph.initializer}


def _metadata(path: str, model) -> dict[str, str]:
    """``metadata_props`` as text; protobuf hands back bytes for a value that is not valid UTF-8."""
    meta = {}
    for prop in model.metadata_props:
        if not isinstance(prop.key, str) or not isinstance(prop.value, str):
            raise OnnxError(path, "model", "metadata_props", f"UTF-8 text, got {prop.key!r}={prop.value!r}"[:200])
        meta[prop.key] = prop.value
    return meta


def _single_step(path: str, graph, meta: dict) -> _Step:
    inits = _initializers(graph)
    inputs = [i for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    state = _bindings(path, [i.name for i in inputs], outputs, meta)
    data = [i.name for i in inputs if i.name not in state]
    shapes = {i.name: _batchless(path, i.name, _value_shape(i)) for i in inputs}
    results = [o for o in outputs if o not in state.values()]
    return _Step(graph, state, data, results, shapes, initializers=inits, state_shapes=dict(shapes))


def _batchless(path: str, name: str, shape) -> tuple[int, ...]:
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


def _loop_step(path: str, graph, loops) -> _Step:
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


def _scan_step(path: str, graph, node, body, const) -> _Step:
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
        shapes[inner] = _batchless(path, outer, _value_shape(graph_inputs[outer])[1:])
    results = body_out[n_state:]
    state_shapes = {inner: tuple(np.shape(const[outer])[1:]) for inner, outer in zip(body_in, node.input[:n_state])}
    return _Step(body, state, data, results, shapes, initializers={**const, **_initializers(body)},
                 state_shapes=state_shapes)


def _loop_body_step(path: str, graph, node, body, const) -> _Step:
    n_carried = len(node.input) - 2
    _zero_initial(path, node, list(node.input[2:]), const)
    body_in = [i.name for i in body.input]
    body_out = [o.name for o in body.output]
    _always_continues(path, node, body, body_in, body_out, const)
    state = dict(zip(body_in[2:2 + n_carried], body_out[1:1 + n_carried]))
    results = body_out[1 + n_carried:]
    sequences = {i.name: i for i in graph.input if i.name not in const}
    outer = {name: _Sequence(name) for name in sequences}
    outer[body_in[0]] = _Iter()
    outer[body_in[1]] = np.asarray(True)
    shapes = {name: _batchless(path, name, _value_shape(v)[1:]) for name, v in sequences.items()}
    state_shapes = {inner: tuple(np.shape(const[outer])[1:]) for inner, outer in zip(body_in[2:], node.input[2:])}
    return _Step(body, state, list(sequences), results, shapes, outer=outer,
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


class _Sequence:
    """A Loop's outer-scope input sequence [time, batch, ...]; ``Gather(seq, iter)`` reads one step."""

    def __init__(self, name: str):
        self.name = name


class _Iter:
    """A Loop's iteration counter."""


# ------------------------------------------------------------------------------ symbolic values

@dataclass
class Lin:
    """An affine expression ``sum_k coef_k * key_k + const``, elementwise over ``shape`` (batch = 1).

    Keys: ``("in", name)`` a graph input; ``("spk", i)`` spike indicator i; ``("gate", i, j)`` spike i
    times registered expression j; ``("syn", i)`` registered synapse term i (a linear map of a source).
    """

    shape: tuple[int, ...]
    terms: dict
    const: np.ndarray

    def scaled(self, factor) -> "Lin":
        factor = np.asarray(factor, dtype=np.float64)
        shape = np.broadcast_shapes(self.shape, factor.shape)
        return Lin(shape, {k: np.broadcast_to(c * factor, shape) for k, c in self.terms.items()},
                   np.broadcast_to(self.const * factor, shape))


@dataclass
class Cmp:
    """A boolean spike indicator (before Cast); ``negated`` for its logical NOT."""

    spike: int
    negated: bool = False


@dataclass
class _Spike:
    expr: Lin           # spike when expr > 0 (gt) or >= 0 (ge)
    comparison: str


@dataclass
class _Syn:
    source: tuple       # ("in", name) or ("spk", i)
    chain: tuple        # ops from the source's shape to this term's shape
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] = ()


class _Ops:
    """The symbolic interpreter: folds constants, builds Lin/Cmp values and the registries."""

    def __init__(self, path: str, step: _Step):
        self.path, self.step = path, step
        self.spikes: list[_Spike] = []
        self.gates: list[Lin] = []
        self.syns: list[_Syn] = []
        self.snn_nodes: list = []      # (node, values) for snn-domain neurons

    def error(self, node, field: str, problem: str) -> OnnxError:
        return OnnxError(self.path, node.name or node.op_type, field, problem)

    def unsupported(self, node, field: str, limit: str, actual) -> UnsupportedError:
        return UnsupportedError(f"{self.path}: {node.name or node.op_type}", field, limit, actual)

    # ----- helpers
    def lin(self, value, shape=None) -> Lin:
        if isinstance(value, Lin):
            return value
        if isinstance(value, Cmp):
            return self.spike_lin(value)
        arr = np.asarray(value, dtype=np.float64)
        return Lin(arr.shape if shape is None else shape, {}, arr)

    def spike_lin(self, cmp: Cmp) -> Lin:
        shape = self.spikes[cmp.spike].expr.shape
        one = np.ones(shape)
        if cmp.negated:
            return Lin(shape, {("spk", cmp.spike): -one}, one)
        return Lin(shape, {("spk", cmp.spike): one}, np.zeros(shape))

    def add(self, a, b, sign: float = 1.0) -> Lin:
        a, b = self.lin(a), self.lin(b)
        shape = np.broadcast_shapes(a.shape, b.shape)
        terms = {k: np.broadcast_to(c, shape) for k, c in a.terms.items()}
        for k, c in b.terms.items():
            terms[k] = terms.get(k, 0) + sign * np.broadcast_to(c, shape)
        terms = {k: np.asarray(c, dtype=np.float64) for k, c in terms.items() if np.any(c != 0)}
        return Lin(shape, terms, np.broadcast_to(a.const, shape) + sign * np.broadcast_to(b.const, shape))

    def register_gate(self, expr: Lin) -> int:
        for index, known in enumerate(self.gates):
            if _same(known, expr):
                return index
        self.gates.append(expr)
        return len(self.gates) - 1

    def spike_affine(self, value: Lin):
        """(spike index, c0, c1) if value == c0 + c1 * spike, else None."""
        keys = list(value.terms)
        if len(keys) == 1 and keys[0][0] == "spk":
            return keys[0][1], value.const, value.terms[keys[0]]
        return None

    def mul(self, node, a, b):
        if not isinstance(a, (Lin, Cmp)) and not isinstance(b, (Lin, Cmp)):
            return np.asarray(a) * np.asarray(b)
        if not isinstance(a, (Lin, Cmp)):
            return self.lin(b).scaled(a)
        if not isinstance(b, (Lin, Cmp)):
            return self.lin(a).scaled(b)
        a, b = self.lin(a), self.lin(b)
        gated = self.spike_affine(a)
        other = b
        if gated is None:
            gated, other = self.spike_affine(b), a
        if gated is None:
            raise self.unsupported(node, "inputs", "a product with a constant or a spike indicator",
                                   "product of two state-dependent tensors")
        spike, c0, c1 = gated
        shape = np.broadcast_shapes(a.shape, b.shape)
        if not other.terms:
            spiked = Lin(shape, {("spk", spike): np.broadcast_to(c1 * other.const, shape).astype(np.float64)},
                         np.zeros(shape))
            return self.add(other.scaled(c0), spiked)
        index = self.register_gate(other)
        result = other.scaled(c0)
        gate = Lin(shape, {("gate", spike, index): np.broadcast_to(np.asarray(c1, dtype=np.float64), shape)},
                   np.zeros(shape))
        return self.add(result, gate)

    def compare(self, node, a, b, comparison: str) -> Cmp:
        expr = self.add(a, b, sign=-1.0)
        if not expr.terms:
            raise self.unsupported(node, "inputs", "a comparison of a state-dependent tensor", "constants only")
        self.spikes.append(_Spike(expr, comparison))
        return Cmp(len(self.spikes) - 1)

    def linear(self, node, value, out_shape, op: tuple, apply):
        """A linear op (no bias) applied to a Lin: distributes over terms, folds the constant."""
        value = self.lin(value)
        terms = {}
        for key, coef in value.terms.items():
            pre = () if np.all(coef == 1.0) else (("scale", np.asarray(coef)),)
            if key[0] == "syn":
                syn = self.syns[key[1]]
                view = (("reshape", tuple(value.shape)),) if tuple(syn.out_shape) != tuple(value.shape) else ()
                new = _Syn(syn.source, syn.chain + view + pre + (op,), syn.in_shape, tuple(out_shape))
            elif key[0] in ("in", "spk"):
                new = _Syn(key, pre + (op,), value.shape, tuple(out_shape))
            else:
                raise self.unsupported(node, "inputs", "spikes or inputs into a synapse", "a gated (reset) term")
            self.syns.append(new)
            terms[("syn", len(self.syns) - 1)] = np.ones(out_shape)
        const = apply(np.broadcast_to(value.const, value.shape))
        return Lin(tuple(out_shape), terms, np.broadcast_to(const, out_shape).astype(np.float64))


def _same(a: Lin, b: Lin) -> bool:
    """Equal expressions, comparing elements in order (shapes may differ by unit dimensions)."""
    if int(np.prod(a.shape)) != int(np.prod(b.shape)) or set(a.terms) != set(b.terms):
        return False
    if not _close(np.broadcast_to(a.const, a.shape), np.broadcast_to(b.const, b.shape)):
        return False
    return all(_close(np.broadcast_to(a.terms[k], a.shape), np.broadcast_to(b.terms[k], b.shape)) for k in a.terms)


def _close(a, b, rtol: float = 1e-12) -> bool:
    return np.allclose(np.reshape(a, -1), np.reshape(b, -1), rtol=rtol, atol=0)


def apply_op(op: tuple, x: np.ndarray) -> np.ndarray:
    """Numerically apply one chain op to a batch ``x`` (B, *shape)."""
    kind = op[0]
    if kind == "scale":
        return x * op[1]
    if kind == "matmul":
        return x.reshape(x.shape[0], -1) @ op[1]
    if kind == "reshape":
        return x.reshape(x.shape[0], *op[1][1:])
    if kind == "conv":
        _, weight, stride, padding, groups = op
        return conv2d_sum(x, weight, x.shape[1:], stride, padding, groups)
    if kind == "pool":
        _, kernel, stride = op
        return sum_pool_sum(x, x.shape[1:], kernel, stride) / (kernel[0] * kernel[1])
    if kind == "index":
        _, order, shape = op
        return x.reshape(x.shape[0], -1)[:, order].reshape(x.shape[0], *shape[1:])
    raise ValueError(f"unknown chain op {kind}")


# ----------------------------------------------------------------------------- the interpreter

class _Interpreter(_Ops):
    """Evaluates the step graph node by node into symbolic values."""

    def run(self) -> dict:
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
        if shape is None:
            shape = self.state_shape(name)
        full = (1, *shape)
        return Lin(full, {("in", name): np.ones(full)}, np.zeros(full))

    def state_shape(self, name: str):
        if name in self.step.state_shapes:
            return self.step.state_shapes[name]
        for info in self.step.graph.input:
            if info.name == name:
                return _batchless(self.path, name, _value_shape(info))
        raise OnnxError(self.path, name, "shape", "a declared graph input")

    def evaluate(self, node, values) -> list:
        symbolic = any(isinstance(v, (Lin, Cmp, _Sequence, _Iter)) for v in values)
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
        out = handler(node, values)
        return out if isinstance(out, list) else [out]

    def fold(self, node, values) -> list:
        from onnx.reference import ReferenceEvaluator
        try:
            evaluator = ReferenceEvaluator(node)
            feeds = {n: np.asarray(v) for n, v in zip(node.input, values) if n}
            return [np.asarray(o) for o in evaluator.run(None, feeds)]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RuntimeError, NotImplementedError,
                ZeroDivisionError, OverflowError) as exc:   # onnx.reference's reactions to a malformed constant node
            raise self.error(node, "inputs", f"constant folding failed ({type(exc).__name__}: "
                             f"{str(exc)[:120]})") from None

    def attr(self, node, name: str, default=None):
        from onnx import helper
        for a in node.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    # ----- elementwise
    def op_Identity(self, node, v):
        return v[0]

    def op_Add(self, node, v):
        return self.add(v[0], v[1])

    def op_Sum(self, node, v):
        total = v[0]
        for value in v[1:]:
            total = self.add(total, value)
        return self.lin(total)

    def op_Sub(self, node, v):
        return self.add(v[0], v[1], sign=-1.0)

    def op_Neg(self, node, v):
        return self.lin(v[0]).scaled(-1.0)

    def op_Mul(self, node, v):
        return self.mul(node, v[0], v[1])

    def op_Div(self, node, v):
        if _symbolic(v[1]):
            raise self.unsupported(node, "inputs[1]", "a constant divisor", "state-dependent")
        return self.lin(v[0]).scaled(1.0 / np.asarray(v[1], dtype=np.float64))

    def op_Cast(self, node, v):
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
        if not isinstance(v[0], Cmp):
            raise self.unsupported(node, "inputs", "a spike indicator", type(v[0]).__name__)
        return Cmp(v[0].spike, not v[0].negated)

    def op_Greater(self, node, v):
        return self.compare(node, v[0], v[1], "gt")

    def op_GreaterOrEqual(self, node, v):
        return self.compare(node, v[0], v[1], "ge")

    def op_Less(self, node, v):
        return self.compare(node, v[1], v[0], "gt")

    def op_LessOrEqual(self, node, v):
        return self.compare(node, v[1], v[0], "ge")

    def op_Where(self, node, v):
        cond, x, y = v
        if not isinstance(cond, Cmp):
            raise self.unsupported(node, "inputs[0]", "a spike indicator", type(cond).__name__)
        if cond.negated:
            cond, x, y = Cmp(cond.spike), y, x
        return self.add(y, self.mul(node, Cmp(cond.spike), self.add(x, y, sign=-1.0)))

    # ----- linear
    def op_Gemm(self, node, v):
        a, b = v[0], v[1]
        if _symbolic(b) or np.ndim(b) != 2 or self.attr(node, "transA", 0):
            raise self.unsupported(node, "inputs", "spikes @ constant 2-D weight (transA = 0)", "other")
        weight = np.asarray(b, dtype=np.float64)
        weight = (weight.T if self.attr(node, "transB", 0) else weight) * self.attr(node, "alpha", 1.0)
        out = self.matmul(node, a, weight)
        if len(v) > 2 and v[2] is not None:
            if _symbolic(v[2]):
                raise self.unsupported(node, "inputs[2]", "a constant bias C", "state-dependent")
            out = self.add(out, np.asarray(v[2], dtype=np.float64) * self.attr(node, "beta", 1.0))
        return out

    def op_MatMul(self, node, v):
        if _symbolic(v[1]) or np.ndim(v[1]) != 2:
            raise self.unsupported(node, "inputs[1]", "a constant 2-D weight", "other")
        return self.matmul(node, v[0], np.asarray(v[1], dtype=np.float64))

    def matmul(self, node, a, weight: np.ndarray) -> Lin:
        a = self.lin(a)
        if len(a.shape) != 2 or a.shape[1] != weight.shape[0]:
            raise self.error(node, "inputs", f"[batch, {weight.shape[0]}] input, got shape {list(a.shape)}")
        op = ("matmul", weight)
        return self.linear(node, a, (a.shape[0], weight.shape[1]), op, lambda x: x @ weight)

    def op_Conv(self, node, v):
        x, weight = self.lin(v[0]), v[1]
        if _symbolic(weight) or np.ndim(weight) != 4 or len(x.shape) != 4:
            raise self.unsupported(node, "inputs", "2-D convolution of spikes with a constant kernel", "other")
        weight = np.asarray(weight, dtype=np.float64)
        if any(d != 1 for d in self.attr(node, "dilations", [1, 1])):
            raise self.unsupported(node, "dilations", "[1, 1]", self.attr(node, "dilations"))
        auto_pad = self.attr(node, "auto_pad", b"NOTSET")
        if auto_pad not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise self.unsupported(node, "auto_pad", "NOTSET or VALID", auto_pad)
        pads = list(self.attr(node, "pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3] or min(pads) < 0:
            raise self.unsupported(node, "pads", "4 non-negative values, symmetric [h, w, h, w]", pads)
        stride = tuple(self.attr(node, "strides", [1, 1]))
        if len(stride) != 2 or min(stride) < 1:
            raise self.unsupported(node, "strides", "2 positive values", list(stride))
        groups = int(self.attr(node, "group", 1))
        op = ("conv", weight, stride, (pads[0], pads[1]), groups)
        probe = apply_op(op, np.zeros(x.shape))
        out = self.linear(node, x, probe.shape, op, lambda arr: apply_op(op, arr))
        if len(v) > 2 and v[2] is not None:
            if _symbolic(v[2]) or np.size(v[2]) != probe.shape[1]:
                raise self.unsupported(node, "inputs[2]", f"a constant bias of {probe.shape[1]} values", "other")
            out = self.add(out, np.asarray(v[2], dtype=np.float64).reshape(1, -1, 1, 1))
        return out

    def op_AveragePool(self, node, v):
        x = self.lin(v[0])
        kernel = tuple(self.attr(node, "kernel_shape"))
        stride = tuple(self.attr(node, "strides", kernel))
        if any(self.attr(node, "pads", [0, 0, 0, 0])) or self.attr(node, "ceil_mode", 0) or len(kernel) != 2:
            raise self.unsupported(node, "pads/ceil_mode", "no padding, floor mode, 2-D",
                                   f"{self.attr(node, 'pads')}/{self.attr(node, 'ceil_mode')}")
        op = ("pool", kernel, stride)
        probe = apply_op(op, np.zeros(x.shape))
        return self.linear(node, x, probe.shape, op, lambda arr: apply_op(op, arr))

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
        shape = tuple(int(d) for d in shape)
        return Lin(shape, {k: np.broadcast_to(c, value.shape).reshape(shape) for k, c in value.terms.items()},
                   np.broadcast_to(value.const, value.shape).reshape(shape))

    # data-movement ops: the same element permutation/selection on every term of a linear value
    op_Reshape = op_Flatten = op_Squeeze = op_Unsqueeze = op_Slice = op_Transpose = movement

    def op_Shape(self, node, v):
        return np.asarray(self.lin(v[0]).shape, dtype=np.int64)

    def op_Gather(self, node, v):
        data, index = v[0], v[1]
        if isinstance(data, _Sequence) and isinstance(index, _Iter) and int(self.attr(node, "axis", 0)) == 0:
            return self.input_lin(data.name, self.step.data_shapes[data.name])
        if isinstance(data, Lin) and not isinstance(index, (Lin, Cmp, _Iter, _Sequence)):
            return self.movement(node, v)
        raise self.unsupported(node, "inputs", "Gather(sequence, iteration) in a Loop body or constant indices",
                               "other")

    # ----- snn domain
    def snn_node(self, node, values) -> list:
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
            self.spikes.append(_Spike(Lin(shape, {("snn", index): np.ones(shape)}, np.zeros(shape)), "snn"))
            outs.append(self.spike_lin(Cmp(len(self.spikes) - 1)))
        for k in range(n_states):
            outs.append(Lin(shape, {("snnstate", index, k): np.ones(shape)}, np.zeros(shape)))
        return outs


# ------------------------------------------------------------------------------- recognition

@dataclass
class _Neuron:
    name: str
    v_in: str
    c_in: str | None = None
    spike: int | None = None          # spike indicator index of s[t]
    node: object = None               # the IR neuron once built


class _Recognizer:
    """Turns the symbolic outputs of one step into IR neurons and synapses."""

    def __init__(self, path: str, step: _Step, dt: float, name: str):
        self.path, self.step, self.dt, self.name = path, step, dt, name
        self.ops = _Interpreter(path, step)
        self.ir: list = []
        self.neurons: dict[str, _Neuron] = {}      # by voltage state input
        self.spike_owner: dict[int, str] = {}      # spike index -> IR neuron name
        self.history: dict[str, tuple[str, int]] = {}  # spike-history input -> (IR spiking node, delay)
        self.ir_shapes: dict[str, tuple[int, ...]] = {}

    def error(self, node: str, field: str, problem: str) -> OnnxError:
        return OnnxError(self.path, node, field, problem)

    def build(self) -> Graph:
        env = self.ops.run()
        self.env = env
        out = {name: env[name] for name in list(self.step.state.values()) + self.step.results if name in env}
        for name in [n for n in self.step.state.values() if n] + self.step.results:
            if name not in env:
                raise self.error(name, "output", "computed by the graph")
        self.resolve_bindings(env)
        if not self.step.data:
            raise self.error("graph", "input", "at least one spike input besides the state inputs")
        for name in self.step.data:
            self.ir.append(Input(ir_name(name), self.step.data_shapes[name]))
            self.ir_shapes[ir_name(name)] = tuple(self.step.data_shapes[name])
        if self.ops.snn_nodes:
            self.snn_neurons(env)
        else:
            self.pattern_neurons(env)
        outputs = tuple(self.output_node(name, out[name]) for name in self.step.results)
        if not outputs:
            raise self.error("graph", "output", "at least one spike or membrane output")
        graph = Graph(tuple(self.ir), outputs, dt_s=self.dt, name=self.name)
        try:
            return verify(graph)
        except SnncError as exc:
            raise ModelFileError(self.path, f"the recognised network is invalid: {exc}") from None

    # ----- bindings
    def resolve_bindings(self, env) -> None:
        state = self.step.state
        open_inputs = [i for i, o in state.items() if not o]
        if not open_inputs:
            return
        free = [o for o in self.graph_outputs() if o not in state.values()]
        while open_inputs:
            progress = False
            for name in list(open_inputs):
                owners = [o for o in free if self.decays(env[o], name, open_inputs)]
                if len(owners) == 1:
                    state[name] = owners[0]
                    free.remove(owners[0])
                    open_inputs.remove(name)
                    progress = True
            if not progress:
                break
        for name in open_inputs:
            del state[name]     # an input no output decays is spike data (history needs names/metadata)
        self.step.data = [i.name for i in self.step.graph.input
                          if i.name not in state and i.name not in self.step.initializers]
        self.step.results = [o for o in self.step.results if o not in state.values()]

    def graph_outputs(self) -> list[str]:
        return [o.name for o in self.step.graph.output]

    def decays(self, value, name: str, candidates: list[str]) -> bool:
        """True when ``value`` holds input ``name`` elementwise (directly or inside a gate) and no other
        still-unbound input."""
        if not isinstance(value, Lin):
            return False
        direct = set()
        for key in value.terms:
            if key[0] == "in":
                direct.add(key[1])
            elif key[0] == "gate":
                direct |= {k[1] for k in self.ops.gates[key[2]].terms if k[0] == "in"}
        return name in direct and not (direct & set(candidates) - {name})

    def copies_spike(self, value) -> bool:
        return isinstance(value, Lin) and len(value.terms) == 1 and next(iter(value.terms))[0] == "spk" \
            and np.all(next(iter(value.terms.values())) == 1) and not np.any(value.const)

    # ----- snn domain
    def snn_neurons(self, env) -> None:
        inverse = {o: i for i, o in self.step.state.items()}
        for index, (node, current, states, params) in enumerate(self.ops.snn_nodes):
            name = self.snn_name(node)
            for k, state in enumerate(states):
                out_name = node.output[(0 if node.op_type == "LI" else 1) + k]
                key = next(iter(state.terms)) if len(state.terms) == 1 else ("", "")
                if key[0] != "in" or inverse.get(out_name) != key[1]:
                    raise self.error(node.name or node.op_type, f"inputs[{k + 1}]", "a state input bound to "
                                     f"the node's output '{out_name}'")
            spike = None if node.op_type == "LI" else next(i for i, s in enumerate(self.ops.spikes)
                                                            if ("snn", index) in s.expr.terms)
            if spike is not None:
                self.spike_owner[spike] = name
            self.neurons[name] = _Neuron(name, "", spike=spike, node=(node, current, params))
            self.ir_shapes[name] = tuple(self.ops.state_shape(next(iter(states[-1].terms))[1]))
        for name in [n.name for n in self.step.graph.input if n.name in self.step.state]:
            self.bind_history(env, name)
        for neuron in self.neurons.values():
            node, current, params = neuron.node
            inputs = self.synapses(neuron.name, current, bias_to_synapse=True)
            self.ir.append(self.snn_ir(node, neuron.name, inputs, current.shape[1:], params))

    def snn_name(self, node) -> str:
        """IR name of an snn-domain neuron: its spike output, or for ``LI`` (no spikes) the graph output that
        is an Identity of its membrane, else the membrane output less the exporter's ``.v_out`` suffix."""
        if node.op_type != "LI":
            return ir_name(node.output[0])
        membrane = node.output[-1]
        outputs = set(self.graph_outputs())
        for other in self.step.graph.node:
            if other.op_type == "Identity" and list(other.input) == [membrane] and other.output[0] in outputs:
                return ir_name(other.output[0])
        return ir_name(membrane[:-len(".v_out")] if membrane.endswith(".v_out") else membrane)

    def snn_ir(self, node, name: str, inputs, shape, params) -> object:
        from onnx import helper
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        full = [np.broadcast_to(np.asarray(p, dtype=np.float64), (1, *shape))[0] for p in params]
        compact = [compact_parameter(p) for p in full]
        if node.op_type == "LI":
            return LI(name, inputs, tuple(shape), current_decay=compact[0], voltage_decay=compact[1], bias=compact[2])
        reset = RESET_NAMES.get(int(attrs.get("reset", 3)))
        comparison = "ge" if int(attrs.get("ge", 0)) else "gt"
        if reset is None:
            raise self.error(node.name or node.op_type, "reset", "0 (none), 1 (zero), 2 (zero_next), 3 (subtract)")
        if node.op_type == "IF":
            return CubaLIF(name, inputs, tuple(shape), current_decay=1.0, voltage_decay=0.0, threshold=compact[0],
                           reset=reset, comparison=comparison)
        return CubaLIF(name, inputs, tuple(shape), current_decay=compact[0], voltage_decay=compact[1],
                       threshold=compact[2], bias=compact[3], reset=reset, comparison=comparison)

    # ----- pattern recognition
    def pattern_neurons(self, env) -> None:
        state = self.step.state
        voltage = {}
        for v_in, v_out in state.items():
            value = env[v_out]
            if not isinstance(value, Lin):
                raise self.error(v_out, "output", "a state update linear in the inputs (got "
                                 f"{_kind(value)})")
            if self.copies_spike(value):
                continue
            voltage[v_in] = value
        currents = self.current_states(env, voltage)
        for v_in in voltage:
            if v_in in currents.values():
                continue
            self.neurons[v_in] = _Neuron(ir_name(v_in), v_in, c_in=next((c for v, c in currents.items()
                                                                          if v == v_in), None))
            self.ir_shapes[ir_name(v_in)] = tuple(self.ops.state_shape(v_in))
        for v_in, neuron in self.neurons.items():
            neuron.spike = self.find_spike(neuron, env[state[v_in]])
            if neuron.spike is not None:
                self.spike_owner[neuron.spike] = neuron.name
        for name in list(state):
            self.bind_history(env, name)
        for v_in, neuron in self.neurons.items():
            self.ir.append(self.pattern_ir(neuron, env))

    def current_states(self, env, voltage: dict) -> dict[str, str]:
        """voltage input -> current input, where the voltage update contains the current update."""
        out = {}
        for v_in, v_val in voltage.items():
            for c_in, c_val in voltage.items():
                if c_in == v_in or c_in in out.values() or not c_val.terms:
                    continue
                if ("in", c_in) in c_val.terms and ("in", v_in) not in c_val.terms and \
                        self.contains(v_val, c_val) and not any(k[0] == "spk" for k in c_val.terms):
                    out[v_in] = c_in
        return out

    def contains(self, whole: Lin, part: Lin) -> bool:
        """True when every term of ``part`` is in ``whole`` with the same coefficient (also inside a gate
        of ``whole``, as in ``(1 - s) * (beta*v + c')``)."""
        candidates = [whole] + [self.ops.gates[k[2]] for k in whole.terms if k[0] == "gate"]
        return any(all(k in c.terms and np.allclose(c.terms[k], part.terms[k], rtol=1e-12, atol=0)
                       for k in part.terms) for c in candidates)

    def find_spike(self, neuron: _Neuron, value: Lin) -> int | None:
        """The spike indicator of s[t]: its expression is proportional to (pre-reset v) - threshold."""
        for index, spike in enumerate(self.ops.spikes):
            if self.is_prev_spike(index, neuron.v_in):
                continue
            for candidate in self.voltage_candidates(value, index):
                if _proportional(spike.expr, candidate) is not None:
                    return index
        return None

    def voltage_candidates(self, value: Lin, spike: int) -> list[Lin]:
        """Lins that may be the pre-reset voltage: the stored value itself, or the inner expression of a
        gate by ``spike`` (state stored after reset), or the value plus a subtracted spike term."""
        out = [value]
        for key in value.terms:
            if key[0] == "gate" and key[1] == spike:
                out.append(self.ops.gates[key[2]])
        if ("spk", spike) in value.terms:
            out.append(Lin(value.shape, {k: c for k, c in value.terms.items() if k != ("spk", spike)}, value.const))
        return out

    def is_prev_spike(self, index: int, v_in: str) -> bool:
        expr = self.ops.spikes[index].expr
        return set(expr.terms) == {("in", v_in)}

    def bind_history(self, env, name: str) -> None:
        """A state input whose output copies a spike (or another history input) is spike history."""
        out = self.step.state.get(name)
        if not out or not self.copies_spike(env[out]) and not self.copies_input(env[out]):
            return
        chain, value = 1, env[out]
        while self.copies_input(value):
            prev = next(iter(value.terms))[1]
            value = env[self.step.state[prev]]
            chain += 1
        spike = next(iter(value.terms))[1]
        if spike not in self.spike_owner:
            raise self.error(out, "output", "spike history of a recognised neuron")
        self.history[name] = (self.spike_owner[spike], chain)

    def copies_input(self, value) -> bool:
        return isinstance(value, Lin) and len(value.terms) == 1 and next(iter(value.terms))[0] == "in" \
            and next(iter(value.terms))[1] in self.step.state and np.all(next(iter(value.terms.values())) == 1) \
            and not np.any(value.const)

    def pattern_ir(self, neuron: _Neuron, env):
        state = self.step.state
        value = env[state[neuron.v_in]]
        spike = neuron.spike
        pre, reset, threshold, comparison = self.split_reset(neuron, value, spike)
        beta = pre.terms.get(("in", neuron.v_in))
        rest = Lin(pre.shape, {k: c for k, c in pre.terms.items() if k != ("in", neuron.v_in)}, pre.const)
        voltage_decay = 1.0 - (np.zeros(pre.shape) if beta is None else np.broadcast_to(beta, pre.shape))
        if neuron.c_in is not None:
            current = env[state[neuron.c_in]]
            alpha = current.terms.get(("in", neuron.c_in))
            drive = Lin(current.shape, {k: c for k, c in current.terms.items() if k != ("in", neuron.c_in)},
                        current.const)
            rest = self.add_lin(self.ops.reshaped(rest, current.shape) if rest.shape != current.shape else rest,
                                current, -1.0)
            bias, current_decay = rest.const, 1.0 - np.broadcast_to(alpha, current.shape)
            if rest.terms:
                raise self.error(state[neuron.v_in], "expression", "beta*v + (current update) + bias; other "
                                 f"terms found: {sorted(str(k) for k in rest.terms)[:3]}")
            inputs = self.synapses(neuron.name, drive, bias_to_synapse=True)
        else:
            current_decay, bias = np.ones(pre.shape), rest.const
            inputs = self.synapses(neuron.name, Lin(rest.shape, rest.terms, np.zeros(rest.shape)),
                                   bias_to_synapse=False)
        shape = self.ir_shapes[neuron.name]
        per_neuron = lambda arr: compact_parameter(np.broadcast_to(arr, pre.shape).reshape(shape))  # noqa: E731
        common = dict(current_decay=per_neuron(current_decay), voltage_decay=per_neuron(voltage_decay),
                      bias=per_neuron(bias))
        if spike is None:
            return LI(neuron.name, inputs, shape, **common)
        return CubaLIF(neuron.name, inputs, shape, threshold=per_neuron(threshold), reset=reset,
                       comparison=comparison, **common)

    def add_lin(self, a: Lin, b: Lin, sign: float) -> Lin:
        return self.ops.add(a, b, sign)

    def split_reset(self, neuron: _Neuron, value: Lin, spike: int | None):
        """(pre-reset update without reset terms, reset kind, threshold, comparison)."""
        v_in = neuron.v_in
        if spike is None:
            self.no_spike_terms(neuron, value)
            return value, "none", None, "gt"
        expr = self.ops.spikes[spike]
        pre_candidates = self.voltage_candidates(value, spike)
        after = len(pre_candidates) > 1 and any(k[0] in ("gate", "spk") and k[1] == spike for k in value.terms)
        pre = next(c for c in pre_candidates if _proportional(expr.expr, c) is not None)
        scale = _proportional(expr.expr, pre)
        threshold = (np.broadcast_to(pre.const, pre.shape).reshape(-1) -
                     np.broadcast_to(expr.expr.const, expr.expr.shape).reshape(-1) / scale.reshape(-1)).reshape(pre.shape)
        if after:
            return self.after_reset(neuron, value, pre, spike, threshold, expr.comparison)
        prev = self.prev_spike(v_in, threshold)
        return self.before_reset(neuron, pre, prev, threshold, expr.comparison)

    def after_reset(self, neuron, value, pre, spike, threshold, comparison):
        """State stored after the reset of the same step (SpikingJelly): v = (1 - s) * v' or v' - thr*s."""
        rest = self.add_lin(value, pre, -1.0)
        gate_keys = [k for k in rest.terms if k[0] == "gate" and k[1] == spike]
        if gate_keys and set(rest.terms) == set(gate_keys) and np.allclose(rest.terms[gate_keys[0]], -1.0):
            return pre, "zero", threshold, comparison
        if set(rest.terms) == {("spk", spike)} and _close(np.broadcast_to(-rest.terms[("spk", spike)], rest.shape),
                                                           threshold, 1e-9):
            beta = pre.terms.get(("in", neuron.v_in))
            if beta is not None and np.allclose(beta, 1.0):
                return pre, "subtract", threshold, comparison
            raise UnsupportedError(f"{self.path}: {self.step.state[neuron.v_in]}", "reset",
                                   "subtract-after-spike only without leak (voltage decay 0)",
                                   "a leaky neuron whose decay also scales the subtracted threshold")
        raise self.error(self.step.state[neuron.v_in], "expression", "a zero or subtract reset by the spike")

    def prev_spike(self, v_in: str, threshold) -> int | None:
        for index, spike in enumerate(self.ops.spikes):
            if self.is_prev_spike(index, v_in):
                scale = np.broadcast_to(spike.expr.terms[("in", v_in)], spike.expr.shape)
                const = np.broadcast_to(spike.expr.const, spike.expr.shape)
                if np.all(scale > 0) and _close(-const / scale, threshold, 1e-9):
                    return index
        return None

    def before_reset(self, neuron, pre: Lin, prev: int | None, threshold, comparison):
        """State stored before the reset (snnTorch): the reset of s[t-1] is inside the update."""
        v_in = neuron.v_in
        prev_terms = {k: c for k, c in pre.terms.items() if prev is not None and k[0] in ("spk", "gate")
                      and k[1] == prev}
        others = {k: c for k, c in pre.terms.items() if k not in prev_terms}
        plain = Lin(pre.shape, others, pre.const)
        if any(k[0] in ("spk", "gate") for k in others):
            raise self.error(self.step.state[v_in], "expression", "reset terms driven by this neuron's own "
                             "previous spike")
        if not prev_terms:
            return plain, "none", threshold, comparison
        if set(prev_terms) == {("spk", prev)} and _close(np.broadcast_to(-prev_terms[("spk", prev)], pre.shape),
                                                         threshold, 1e-9):
            return plain, "subtract", threshold, comparison
        (key, coef), = prev_terms.items() if len(prev_terms) == 1 else ((None, None),)
        if key is not None and key[0] == "gate":
            inner = self.ops.gates[key[2]]
            beta = plain.terms.get(("in", v_in))
            if _same(inner, plain) and np.allclose(coef, -1.0):
                return plain, "zero_next", threshold, comparison
            if set(inner.terms) == {("in", v_in)} and not np.any(inner.const) and beta is not None and \
                    np.allclose(coef * inner.terms[("in", v_in)], -beta):
                return plain, "zero", threshold, comparison
        raise self.error(self.step.state[v_in], "expression", "a subtract, zero or zero_next reset by the "
                         "previous spike")

    def no_spike_terms(self, neuron, value: Lin) -> None:
        if any(k[0] in ("spk", "gate") for k in value.terms):
            raise self.error(self.step.state[neuron.v_in], "expression", "a recognised neuron (no threshold "
                             "of this state was found)")

    # ----- synapses
    def synapses(self, target: str, drive: Lin, bias_to_synapse: bool) -> tuple[str, ...]:
        names = []
        for index, (key, coef) in enumerate(sorted(drive.terms.items(), key=lambda kv: str(kv[0]))):
            if key[0] != "syn":
                if key[0] == "in" and key[1] in self.step.data:
                    raise self.error(target, "inputs", f"input '{key[1]}' through a synapse (Gemm/MatMul/Conv)")
                raise self.error(target, "inputs", f"synaptic currents, got term {key}")
            syn = self.ops.syns[key[1]]
            chain = syn.chain + ((("scale", np.asarray(coef)),) if not np.all(coef == 1.0) else ())
            names.append(self.synapse_node(target, syn, chain, index))
        if bias_to_synapse and np.any(drive.const):
            if not names:
                raise self.error(target, "inputs", "at least one synapse")
            self.add_bias(names[0], drive.const)
        if not names:
            raise self.error(target, "inputs", "at least one synaptic input")
        return tuple(names)

    def source(self, target: str, key: tuple) -> tuple[str, int]:
        """(IR node, delay) that a synapse reads."""
        if key[0] == "in":
            if key[1] in self.step.data:
                return ir_name(key[1]), 0
            if key[1] in self.history:
                return self.history[key[1]]
            raise self.error(target, "inputs", f"a synapse from state input '{key[1]}' that is not spike history")
        if key[1] not in self.spike_owner:
            raise self.error(target, "inputs", "spikes of a recognised neuron (a threshold of a bound state)")
        return self.spike_owner[key[1]], 0

    def synapse_node(self, target: str, syn: _Syn, chain: tuple, index: int) -> str:
        source, delay = self.source(target, syn.source)
        in_shape = tuple(syn.in_shape[1:])
        source_shape = self.ir_shapes[source]
        if in_shape != source_shape:
            if int(np.prod(in_shape)) != int(np.prod(source_shape)):
                raise self.error(target, "inputs", f"a synapse reading all {int(np.prod(source_shape))} values "
                                 f"of '{source}', got shape {in_shape}")
            if _squeezed(in_shape) != _squeezed(source_shape):
                return self.composed(self.unique(f"{target}_syn{index}" if index else f"{target}_syn"), source,
                                     source_shape, (("reshape", (1, *in_shape)),) + chain, delay)
            in_shape = source_shape
        name = self.unique(f"{target}_syn{index}" if index else f"{target}_syn")
        core = [op for op in chain if op[0] != "scale"]
        pre = [op[1] for op in itertools.takewhile(lambda o: o[0] == "scale", chain)]
        post = [op[1] for op in chain[len(pre) + len(core):]] if core else []
        clean = core and all(op[0] != "scale" for op in chain[len(pre):len(pre) + len(core)])
        if clean and [op[0] for op in core] in (["matmul"], ["reshape", "matmul"]) and \
                all(np.size(p) == 1 or p.shape[-1:] == (core[-1][1].shape[0],) for p in pre):
            return self.dense(name, source, in_shape, core, pre, post, delay)
        if clean and [op[0] for op in core] in (["conv"], ["pool"]) and all(np.size(p) == 1 or
                                                                            np.all(p == p.reshape(-1)[0]) for p in pre):
            node = self.spatial(name, source, in_shape, core[0], pre, post, delay)
            if node is not None:
                return node
        return self.composed(name, source, in_shape, chain, delay)

    def dense(self, name, source, in_shape, core, pre, post, delay) -> str:
        weight = core[-1][1].T.copy()
        for p in pre:
            weight = weight * np.broadcast_to(np.asarray(p).reshape(-1), (weight.shape[1],))[None, :] \
                if np.size(p) > 1 else weight * float(np.asarray(p).reshape(-1)[0])
        for p in post:
            weight = weight * np.broadcast_to(np.asarray(p).reshape(-1), (weight.shape[0],))[:, None]
        return self.append_dense(name, source, in_shape, weight, delay)

    def spatial(self, name, source, in_shape, op, pre, post, delay):
        factor = float(np.prod([np.asarray(p).reshape(-1)[0] for p in pre])) if pre else 1.0
        per_channel = np.ones(1)
        for p in post:
            arr = np.asarray(p)[0]
            flat = arr.reshape(arr.shape[0], -1) if arr.ndim == 3 else None
            if flat is None or np.any(flat != flat[:, :1]):
                return None
            per_channel = per_channel * flat[:, 0]
        if op[0] == "conv":
            _, weight, stride, padding, groups = op
            weight = weight * factor * np.broadcast_to(per_channel, (weight.shape[0],))[:, None, None, None]
            self.ir.append(Conv2d(name, source, weight, in_shape=in_shape, stride=stride, padding=padding,
                                  groups=groups, delay_steps=delay))
            return name
        if np.any(per_channel != per_channel[0]):
            return None
        _, kernel, stride = op
        self.ir.append(SumPool2d(name, source, in_shape=in_shape, kernel=kernel, stride=stride,
                                 scale=factor * float(per_channel[0]) / (kernel[0] * kernel[1]), delay_steps=delay))
        return name

    def append_dense(self, name, source, in_shape, weight, delay) -> str:
        """A Dense reading ``source`` (flattened first when it is multi-dimensional)."""
        if len(in_shape) > 1:
            flat = self.unique(f"{source}_flat")
            self.ir.append(Flatten(flat, source))
            source = flat
        self.ir.append(Dense(name, source, weight, None, delay_steps=delay))
        return name

    def composed(self, name, source, in_shape, chain, delay) -> str:
        size = int(np.prod(in_shape))
        if size > MAX_COMPOSED_INPUTS:
            raise UnsupportedError(f"{self.path}: {name}", "synapse", "a single Gemm/MatMul/Conv/AveragePool "
                                   f"per synapse for inputs above {MAX_COMPOSED_INPUTS}", size)
        x = np.eye(size).reshape(size, *in_shape)
        for op in chain:
            if op[0] == "reshape":
                x = x.reshape(size, *op[1][1:])
                continue
            x = apply_op(op, x)
        weight = x.reshape(size, -1).T.copy()
        return self.append_dense(name, source, in_shape, weight, delay)

    def add_bias(self, name: str, const: np.ndarray) -> None:
        index = next(i for i, n in enumerate(self.ir) if n.name == name)
        node = self.ir[index]
        bias = np.broadcast_to(const, const.shape)[0]
        if isinstance(node, Dense):
            self.ir[index] = Dense(node.name, node.source, node.weight, bias.reshape(-1).copy(), node.delay_steps)
            return
        if isinstance(node, Conv2d):
            flat = bias.reshape(bias.shape[0], -1)
            if np.all(flat == flat[:, :1]):
                self.ir[index] = Conv2d(node.name, node.source, node.weight, node.in_shape, node.stride,
                                        node.padding, node.groups, flat[:, 0].copy(), node.delay_steps)
                return
        raise UnsupportedError(f"{self.path}: {name}", "bias", "a per-output bias on a dense or per-channel bias "
                               "on a conv synapse into a neuron with current memory", "other")

    def unique(self, name: str) -> str:
        taken = {n.name for n in self.ir} | {n.name for n in self.neurons.values()}
        candidate, k = ir_name(name), 1
        while candidate in taken:
            candidate, k = f"{ir_name(name)}_{k}", k + 1
        return candidate

    def output_node(self, name: str, value) -> str:
        if self.copies_spike(value):
            spike = next(iter(value.terms))[1]
            if spike in self.spike_owner:
                return self.spike_owner[spike]
        if isinstance(value, Lin) and len(value.terms) == 1:
            (key, coef), = value.terms.items()
            if key[0] == "snnstate":
                return self.snn_name(self.ops.snn_nodes[key[1]][0])
            if key[0] == "in" and key[1] in self.neurons and self.neurons[key[1]].spike is None:
                return self.neurons[key[1]].name
        for v_in, neuron in self.neurons.items():
            if neuron.spike is None and self.step.state.get(v_in) and value is not None and \
                    isinstance(value, Lin) and _same(value, self.state_value(v_in)):
                return neuron.name
        raise self.error(name, "output", "the spikes of a recognised neuron (Cast of a threshold comparison, "
                         "optionally times 1) or a readout membrane")

    def state_value(self, v_in: str):
        return self.env.get(self.step.state[v_in])


def _proportional(expr: Lin, pre: Lin):
    """k > 0 (array) with expr.terms == k * pre.terms, or None."""
    if set(expr.terms) != set(pre.terms) or not expr.terms:
        return None
    if int(np.prod(expr.shape)) != int(np.prod(pre.shape)):
        return None
    flat = lambda lin, key: np.broadcast_to(lin.terms[key], lin.shape).reshape(-1)  # noqa: E731
    key = next(iter(expr.terms))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = flat(expr, key) / flat(pre, key)
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        return None
    for other in expr.terms:
        if not np.allclose(flat(expr, other), k * flat(pre, other), rtol=1e-9, atol=0):
            return None
    return k.reshape(pre.shape)


def _symbolic(value) -> bool:
    return isinstance(value, (Lin, Cmp, _Sequence, _Iter))


def _kind(value) -> str:
    if isinstance(value, Cmp):
        return "a threshold comparison; Cast it to float"
    return "a constant" if isinstance(value, np.ndarray) else type(value).__name__.lstrip("_")


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)

