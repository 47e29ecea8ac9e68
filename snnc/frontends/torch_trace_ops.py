"""Affine maps between spiking layers, as the torch tracer sees them: op objects and linear forms.

Between two spiking layers a model computes an affine function of spike trains. The tracer keeps it as a
``Form``: a sum of ``Term`` s (a spike source and the chain of affine ops applied to it) plus a constant.
Every op acts on float64 tensors shaped ``(batch, *feature)`` (no time axis). Because each op is affine,
``op(sum_i L_i(s_i) + c) = sum_i (A L_i)(s_i) + op(c)``: a term keeps the chain (its linear part is
``chain(x) - chain(0)``) and the constant is pushed through the op once. This is how a sum of spike tensors
(SEW-ResNet ADD), a concatenation and a residual path become several synapses into one neuron, exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True, eq=False)
class LinearOp:
    """``nn.Linear`` on the last (only) feature axis."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return F.linear(t, self.weight, self.bias)


@dataclass(frozen=True, eq=False)
class ConvOp:
    """``nn.Conv2d`` with zero padding: ``padding`` is (top, bottom, left, right)."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    groups: int

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.padding
        padded = F.pad(t, (left, right, top, bottom))
        return F.conv2d(padded, self.weight, self.bias, stride=self.stride, groups=self.groups)

    @property
    def symmetric_padding(self) -> tuple[int, int] | None:
        """(pad_h, pad_w) when top = bottom and left = right (what Conv2d expresses), else None."""
        top, bottom, left, right = self.padding
        return (top, left) if top == bottom and left == right else None


@dataclass(frozen=True, eq=False)
class ChannelAffineOp:
    """Inference BatchNorm: ``y = x * scale[c] + shift[c]`` along feature axis 0 (the channel)."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        view = (1, -1) + (1,) * (t.dim() - 2)
        return t * self.scale.reshape(view) + self.shift.reshape(view)


@dataclass(frozen=True, eq=False)
class AvgPoolOp:
    """``nn.AvgPool2d`` without padding (divisor = kernel area)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, self.kernel, self.stride)


@dataclass(frozen=True, eq=False)
class ReshapeOp:
    """A view of the feature axes (flatten, view, reshape)."""

    shape: tuple[int, ...]

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], *self.shape)


@dataclass(frozen=True, eq=False)
class ScaleOp:
    """Multiplication by a constant (a scalar, or a tensor broadcast over the features)."""

    factor: float | torch.Tensor

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.factor


@dataclass(frozen=True, eq=False)
class EmbedOp:
    """One part of a ``torch.cat``: zeros before and after the part along feature axis ``axis``."""

    axis: int
    before: int
    after: int

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        parts = []
        for size in (self.before, None, self.after):
            if size is None:
                parts.append(t)
            elif size:
                shape = list(t.shape)
                shape[self.axis + 1] = size
                parts.append(t.new_zeros(shape))
        return torch.cat(parts, dim=self.axis + 1)


@dataclass(frozen=True)
class Term:
    """``ops[-1](...ops[0](spikes of source))``: one spike source seen through a chain of affine ops."""

    source: str
    ops: tuple = ()

    def apply(self, t: torch.Tensor) -> torch.Tensor:
        """The term's ops applied in order to ``t``."""
        for op in self.ops:
            t = op(t)
        return t


@dataclass(frozen=True)
class Form:
    """An affine function of spike trains: ``sum(term(s_term)) + const``.

    ``lead`` counts the tensor's non-feature leading axes in the traced model (1: batch; 2: time and
    batch, SpikingJelly multi-step); ``const`` is float64, shaped ``(1, *feature)``.
    """

    terms: tuple[Term, ...]
    const: torch.Tensor
    lead: int

    @property
    def feature(self) -> tuple[int, ...]:
        """The feature shape (without batch) of the form's values."""
        return tuple(self.const.shape[1:])

    def then(self, op) -> "Form":
        """This form followed by the affine op ``op``."""
        return Form(tuple(Term(t.source, t.ops + (op,)) for t in self.terms), op(self.const), self.lead)

    def plus(self, other: "Form") -> "Form":
        """The sum of two forms (their terms and constants)."""
        return Form(self.terms + other.terms, self.const + other.const, self.lead)

    def spike_source(self) -> str | None:
        """The spiking node when this form is exactly one spike train (possibly reshaped), else None."""
        if len(self.terms) != 1 or torch.any(self.const != 0):
            return None
        term = self.terms[0]
        return term.source if all(isinstance(op, ReshapeOp) for op in term.ops) else None


def spikes(source: str, feature: tuple[int, ...], lead: int) -> Form:
    """The form of a spike train: one term, no op, zero constant."""
    return Form((Term(source),), torch.zeros((1, *feature), dtype=torch.float64), lead)


def linear_part(term: Term, source_shape: tuple[int, ...]) -> torch.Tensor:
    """The term's chain as a matrix (out, in), probed exactly on the unit basis in float64."""
    size = 1
    for d in source_shape:
        size *= int(d)
    with torch.no_grad():
        basis = torch.eye(size, dtype=torch.float64).reshape(size, *source_shape)
        zero = torch.zeros((1, *source_shape), dtype=torch.float64)
        return (term.apply(basis) - term.apply(zero)).reshape(size, -1).T.contiguous()


def split_scale(ops: tuple) -> tuple[float, tuple]:
    """Scalar factors commute with linear maps: their product, and the other ops in order."""
    factor, rest = 1.0, []
    for op in ops:
        if isinstance(op, ScaleOp) and not torch.is_tensor(op.factor):
            factor *= float(op.factor)
        else:
            rest.append(op)
    return factor, tuple(rest)
