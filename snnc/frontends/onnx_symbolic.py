"""Symbolic values of the ONNX step interpreter: affine expressions (``Lin``) over graph inputs, spike
indicators and gated terms; spike comparisons (``Cmp``); the registries of spikes, gates and synapse terms
(``SymbolicOps``); and the numeric chain ops (``apply_op``) a synapse term is built from."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.arith.synapse_math import conv2d_sum, sum_pool_sum
from snnc.errors import UnsupportedError
from snnc.frontends.onnx_step import OnnxError, Step


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
        """This expression times ``factor`` (elementwise, broadcast)."""
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
class Spike:
    """A registered spike indicator: it fires where ``expr`` > 0 (``comparison`` "gt") or >= 0 ("ge"); "snn":
    the spike output of an snn-domain neuron node."""

    expr: Lin           # spike when expr > 0 (gt) or >= 0 (ge)
    comparison: str


@dataclass
class Syn:
    """A registered synapse term: its source (a graph input or spike indicator), the chain of linear ops applied to
    it, and the shapes before and after."""

    source: tuple       # ("in", name) or ("spk", i)
    chain: tuple        # ops from the source's shape to this term's shape
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...] = ()


class SymbolicOps:
    """The symbolic interpreter: folds constants, builds Lin/Cmp values and the registries."""

    def __init__(self, path: str, step: Step):
        self.path, self.step = path, step
        self.spikes: list[Spike] = []
        self.gates: list[Lin] = []
        self.syns: list[Syn] = []
        self.snn_nodes: list = []      # (node, values) for snn-domain neurons
        self.or_units: dict[int, tuple] = {}   # spike index -> (source spike, kernel, stride, in_shape): MaxPool

    def error(self, node, field: str, problem: str) -> OnnxError:
        """The typed ONNX error for ``field`` of ONNX node ``node``."""
        return OnnxError(self.path, node.name or node.op_type, field, problem)

    def unsupported(self, node, field: str, limit: str, actual) -> UnsupportedError:
        """``UnsupportedError`` naming the file, ONNX node and field, the limit and the value found."""
        return UnsupportedError(f"{self.path}: {node.name or node.op_type}", field, limit, actual)

    # ----- helpers
    def lin(self, value, shape=None) -> Lin:
        """``value`` as an affine expression: itself, a spike indicator as 0/1 (or its negation), a constant array."""
        if isinstance(value, Lin):
            return value
        if isinstance(value, Cmp):
            return self.spike_lin(value)
        arr = np.asarray(value, dtype=np.float64)
        return Lin(arr.shape if shape is None else shape, {}, arr)

    def spike_lin(self, cmp: Cmp) -> Lin:
        """The spike indicator ``cmp`` as an affine expression (``s`` or ``1 - s``)."""
        shape = self.spikes[cmp.spike].expr.shape
        one = np.ones(shape)
        if cmp.negated:
            return Lin(shape, {("spk", cmp.spike): -one}, one)
        return Lin(shape, {("spk", cmp.spike): one}, np.zeros(shape))

    def add(self, a, b, sign: float = 1.0) -> Lin:
        """``a + sign * b`` as one affine expression (zero coefficients dropped)."""
        a, b = self.lin(a), self.lin(b)
        shape = np.broadcast_shapes(a.shape, b.shape)
        terms = {k: np.broadcast_to(c, shape) for k, c in a.terms.items()}
        for k, c in b.terms.items():
            terms[k] = terms.get(k, 0) + sign * np.broadcast_to(c, shape)
        terms = {k: np.asarray(c, dtype=np.float64) for k, c in terms.items() if np.any(c != 0)}
        return Lin(shape, terms, np.broadcast_to(a.const, shape) + sign * np.broadcast_to(b.const, shape))

    def register_gate(self, expr: Lin) -> int:
        """The index of ``expr`` among the gated expressions (registered once)."""
        for index, known in enumerate(self.gates):
            if same_lin(known, expr):
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
        """A product: constants fold, a constant scales an expression, a spike indicator (c0 + c1 * s) times an
        expression becomes a gate term; two state-dependent factors are refused."""
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
        """Register the spike indicator ``a - b > 0`` (or >= 0) and return it; a comparison of constants is refused."""
        expr = self.add(a, b, sign=-1.0)
        if not expr.terms:
            raise self.unsupported(node, "inputs", "a comparison of a state-dependent tensor", "constants only")
        for index, known in enumerate(self.spikes):   # the same threshold test computed twice is one spike
            if known.comparison == comparison and known.expr.shape == expr.shape and same_lin(known.expr, expr):
                return Cmp(index)
        self.spikes.append(Spike(expr, comparison))
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
                new = Syn(syn.source, syn.chain + view + pre + (op,), syn.in_shape, tuple(out_shape))
            elif key[0] in ("in", "spk"):
                new = Syn(key, pre + (op,), value.shape, tuple(out_shape))
            else:
                raise self.unsupported(node, "inputs", "spikes or inputs into a synapse", "a gated (reset) term")
            self.syns.append(new)
            terms[("syn", len(self.syns) - 1)] = np.ones(out_shape)
        const = apply(np.broadcast_to(value.const, value.shape))
        return Lin(tuple(out_shape), terms, np.broadcast_to(const, out_shape).astype(np.float64))


def same_lin(a: Lin, b: Lin) -> bool:
    """Equal expressions, comparing elements in order (shapes may differ by unit dimensions)."""
    if int(np.prod(a.shape)) != int(np.prod(b.shape)) or set(a.terms) != set(b.terms):
        return False
    if not close(np.broadcast_to(a.const, a.shape), np.broadcast_to(b.const, b.shape)):
        return False
    return all(close(np.broadcast_to(a.terms[k], a.shape), np.broadcast_to(b.terms[k], b.shape)) for k in a.terms)


def close(a, b, rtol: float = 1e-12) -> bool:
    """Whether ``a`` and ``b`` are equal within relative tolerance ``rtol`` (elementwise, flattened)."""
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
