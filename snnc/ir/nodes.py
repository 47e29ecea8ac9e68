"""IR node types: frozen dataclasses with exact discrete-time semantics.

Time is discrete, step index ``t`` = 0, 1, 2, ...; ``dt_s`` on the graph gives the step length in seconds.
State starts at zero. Spikes are 0/1. A graph is evaluated in one of two timings (``Graph.timing``):

* ``"zero_latency"`` (float IR, snnTorch semantics): at step t nodes update in topological order and a
  synapse with ``delay_steps = d`` reads its source's spikes of step ``t - d``.
* ``"hop_latency"`` (lowered Loihi IR, Lava semantics): every synapse delivers one step late, i.e. reads
  its source's spikes of step ``t - 1 - d``; all neurons update in parallel.

Float nodes carry real-valued parameters; ``Loihi*`` nodes carry the integer formats the hardware uses.
Arrays are numpy arrays and never mutated; dataclass equality is identity (``eq=False``).

Generic node behaviour lives with the classes (``IRNode``): ``ROLE`` (input, synapse, view, neuron),
``DOMAIN`` (float, lowered, any), ``upstream()``, ``output_shape()``, ``emits_spikes()``,
``emits_graded()`` and the node's own field and shape checks. Every subclass registers itself by class
name in ``NODE_TYPES`` (the serializer's table). What a neuron model computes (float step, lowering,
emulator kernels, Lava process, PyNN cell) is its model unit in ``snnc.neurons``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Union

import numpy as np

from snnc.errors import Violation

SignMode = Literal["mixed", "excitatory", "inhibitory"]


class _Word(str, Enum):
    """A string enum that prints, formats and reprs exactly like its value (so IR text, messages,
    emitted scripts and serialized files are unchanged whether a field holds the member or the string)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return str.__repr__(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class ResetKind(_Word):
    """How a spiking neuron's membrane is reset (semantics in ``CubaLIF``)."""

    ZERO = "zero"
    ZERO_NEXT = "zero_next"
    SUBTRACT = "subtract"
    NONE = "none"


class Comparison(_Word):
    """The threshold test: ``v > threshold`` (GT) or ``v >= threshold`` (GE)."""

    GT = "gt"
    GE = "ge"


NODE_TYPES: dict[str, type] = {}


class IRNode:
    """Behaviour shared by every node type; subclasses are frozen dataclasses.

    ``ROLE``: "input" (spike/graded source), "synapse" (currents from one source), "view" (a reshaped
    or sliced source, no state) or "neuron" (reads currents of ``inputs``). ``DOMAIN``: "float" (only in
    zero-latency float IR), "lowered" (only in hop-latency target IR) or "any"."""

    ROLE = "synapse"
    DOMAIN = "float"
    # What a neuron's ``inputs`` may name: synapses (currents) by default; a delta encoder reads an input
    # node's graded values directly (Lava connects the source's port to its ``a_in``, no synapse).
    INPUT_ROLES: tuple[str, ...] = ("synapse",)
    # Fields left out of serialized files and printed IR while they hold their default (fields added
    # after files were written, so that those files and their hashes stay unchanged).
    OMITTED_AT_DEFAULT: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            NODE_TYPES[cls.__name__] = cls

    def upstream(self) -> tuple[str, ...]:
        """Names of the nodes whose output this node reads."""
        return (self.source,)

    def bias_sources(self) -> tuple[str, ...]:
        """Input nodes that drive a neuron group's bias directly (no synapse); most nodes have none."""
        return ()

    def written_fields(self) -> tuple[str, ...]:
        """The dataclass fields a file or the printed IR holds: all but those of ``OMITTED_AT_DEFAULT``
        that hold their default."""
        fields = self.__dataclass_fields__
        return tuple(k for k in fields
                     if k not in self.OMITTED_AT_DEFAULT or getattr(self, k) != fields[k].default)

    def output_shape(self, shapes: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
        """Shape of this node's output given its sources' shapes (``shapes``)."""
        return tuple(self.shape)

    def emits_spikes(self) -> bool:
        """True where the output is a binary spike train."""
        return False

    def emits_graded(self) -> bool:
        """True where the output is a graded (multi-bit integer) train."""
        return False

    def field_violations(self) -> list[Violation]:
        """Rules on this node's own parameters (the verifier adds finiteness and delays)."""
        return []

    def shape_violations(self, shapes: dict[str, tuple[int, ...]]) -> list[Violation]:
        """Rules relating this node's parameters to its sources' shapes."""
        return []


class _Neuron(IRNode):
    ROLE = "neuron"

    def upstream(self) -> tuple[str, ...]:
        return self.inputs


def _decay_violations(node) -> list[Violation]:
    out = []
    for name in ("current_decay", "voltage_decay"):
        value = np.asarray(getattr(node, name), dtype=float)
        if np.any(value < 0) or np.any(value > 1):
            out.append(Violation(node.name, name, "in [0, 1]", _range(value)))
    return out


def _periodic_reset_violations(node) -> list[Violation]:
    if node.reset_interval < 0 or not 0 <= node.reset_phase < max(node.reset_interval, 1):
        return [Violation(node.name, "reset_interval/reset_phase", "interval >= 0 and 0 <= phase < interval "
                          "(interval 0: no periodic reset)", f"{node.reset_interval}/{node.reset_phase}")]
    return []


def _range(arr: np.ndarray) -> str:
    return f"{arr.min()!r}" if arr.size == 1 else f"values in [{arr.min()!r}, {arr.max()!r}]"


def conv_output_hw(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int]) -> tuple[int, int]:
    """Output (height, width) of a convolution or pooling window."""
    return tuple((in_hw[i] + 2 * padding[i] - kernel[i]) // stride[i] + 1 for i in range(2))


def _dense_shape_violations(node, weight: np.ndarray, shapes) -> list[Violation]:
    if weight.ndim != 2:
        return [Violation(node.name, "weight", "2-D (out, in)", f"{weight.ndim}-D")]
    size = int(np.prod(shapes[node.source]))
    if weight.shape[1] != size:
        return [Violation(node.name, "weight.shape[1]", f"{size} (size of '{node.source}')",
                          str(weight.shape[1]))]
    bias = getattr(node, "bias", None)
    if bias is not None and np.shape(bias) != (weight.shape[0],):
        return [Violation(node.name, "bias.shape", str((weight.shape[0],)), str(np.shape(bias)))]
    return []


def _conv_shape_violations(node, weight: np.ndarray, shapes) -> list[Violation]:
    src_shape = tuple(shapes[node.source])
    if tuple(node.in_shape) != src_shape:
        return [Violation(node.name, "in_shape", str(src_shape), str(tuple(node.in_shape)))]
    expected_in = node.in_shape[0] // max(node.groups, 1)
    if weight.ndim != 4 or weight.shape[1] != expected_in:
        return [Violation(node.name, "weight.shape", f"(out, {expected_in}, kh, kw)", str(weight.shape))]
    return []


def _conv_output_shape(node, weight: np.ndarray) -> tuple[int, ...]:
    hw = conv_output_hw(node.in_shape[1:], weight.shape[2:], node.stride, node.padding)
    return (int(weight.shape[0]), *hw)


@dataclass(frozen=True, eq=False)
class Input(IRNode):
    """Spike source: ``s[t] = x[t]``, binary, given by the user; shape excludes batch and time."""

    name: str
    shape: tuple[int, ...]

    ROLE = "input"
    DOMAIN = "any"

    def upstream(self) -> tuple[str, ...]:
        """An input reads no other node."""
        return ()

    def emits_spikes(self) -> bool:
        """An input carries 0/1 spikes."""
        return True


@dataclass(frozen=True, eq=False)
class Dense(IRNode):
    """Weighted synapse: ``i[t] = weight @ s_source[t - delay_steps] + bias`` (current units).

    ``weight`` has shape (out_features, in_features); ``bias`` is (out_features,) or None and is added
    every step whether or not the source spiked (a torch ``nn.Linear`` bias).
    """

    name: str
    source: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    delay_steps: int = 0

    def output_shape(self, shapes):
        """(out_features,): one current per row of ``weight``."""
        return (int(self.weight.shape[0]),)

    def shape_violations(self, shapes):
        """``weight`` must be (out, in) with in = the source's size; the bias (out,)."""
        return _dense_shape_violations(self, self.weight, shapes)


@dataclass(frozen=True, eq=False)
class Conv2d(IRNode):
    """2-D cross-correlation synapse (torch convention), layout (C, H, W):

    ``i[t][o, y, x] = sum_{c,ky,kx} weight[o, c, ky, kx] * s_pad[t - delay_steps][c, y*sy + ky, x*sx + kx]
    + bias[o]``, with zero padding ``padding`` = (ph, pw) and stride (sy, sx); ``groups`` splits channels.
    """

    name: str
    source: str
    weight: np.ndarray
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    bias: np.ndarray | None = None
    delay_steps: int = 0

    def output_shape(self, shapes):
        """(out_channels, H_out, W_out) of the convolution over ``in_shape``."""
        return _conv_output_shape(self, self.weight)

    def shape_violations(self, shapes):
        """``in_shape`` must be the source's shape and ``weight`` fit it (channels, groups)."""
        return _conv_shape_violations(self, self.weight, shapes)


@dataclass(frozen=True, eq=False)
class SumPool2d(IRNode):
    """Non-overlapping or strided sum of spikes per channel (weight 1 per tap):
    ``i[t][c, y, x] = scale * sum_{ky,kx < kernel} s[t - delay_steps][c, y*stride + ky, x*stride + kx]``.
    ``scale`` = 1 for sum pooling, 1/(kh*kw) for average pooling."""

    name: str
    source: str
    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    scale: float = 1.0
    delay_steps: int = 0

    def output_shape(self, shapes):
        """(channels, H_out, W_out) of the pooling window over ``in_shape`` (no padding)."""
        return (self.in_shape[0], *conv_output_hw(self.in_shape[1:], self.kernel, self.stride, (0, 0)))

    def shape_violations(self, shapes):
        """``in_shape`` must be the source's shape."""
        src_shape = tuple(shapes[self.source])
        if tuple(self.in_shape) != src_shape:
            return [Violation(self.name, "in_shape", str(src_shape), str(tuple(self.in_shape)))]
        return []


@dataclass(frozen=True, eq=False)
class Flatten(IRNode):
    """Reshape of spikes, no state, no latency: ``s[t] = s_source[t].reshape(-1)``."""

    name: str
    source: str

    ROLE = "view"
    DOMAIN = "any"

    def output_shape(self, shapes):
        """(size,): the source's elements in C order."""
        return (int(np.prod(shapes[self.source])),)

    def emits_spikes(self) -> bool:
        """Flatten is a view of a spike train: its output is spikes."""
        return True


@dataclass(frozen=True, eq=False)
class CubaLIF(_Neuron):
    """Current-based leaky integrate-and-fire group (snnTorch Leaky/Synaptic, Lava LIF).

    With I[t] the sum of the currents of ``inputs`` (dimensionless, same units as ``threshold``)::

        u[t] = (1 - current_decay) * u[t-1] + I[t]
        v[t] = (1 - voltage_decay) * v[t-1] + u[t] + bias - R[t]
        s[t] = v[t] > threshold          (">=" when comparison == "ge")

    Reset (R = 0 unless stated):
    ``zero``: v[t] := 0 where s[t] (Lava LIF; snnTorch Leaky "zero");
    ``zero_next``: v[t] := 0 where s[t-1], replacing the update, so that step's input is discarded
    (snnTorch Synaptic/RLeaky "zero"); v[t] keeps its above-threshold value at the spike step;
    ``subtract`` (snnTorch default): v keeps its value and R[t] = threshold * s[t-1], i.e. the threshold
    is subtracted, undecayed, at the next update; ``none``: no reset.
    ``current_decay = 1`` means no synaptic memory (snnTorch Leaky); an integrate-and-fire (IF) neuron
    is ``current_decay = 1, voltage_decay = 0``. Decays are per step (dt folded
    in). u is never reset by a spike.

    Periodic reset (Lava ``LIFReset``, netx ``reset_interval``): with ``reset_interval`` = I > 0 the group
    starts afresh at every step t with ``t % I == reset_phase``: u[t-1], v[t-1] and a pending
    ``zero_next``/``subtract`` reset are taken as 0 before the update, as at t = 0. Lowering to Loihi keeps
    the reset on the same steps of the float grid: a group at pipeline latency L resets at lowered steps
    ``(reset_phase + L) % I`` (``LoihiLIF``).
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    current_decay: float | np.ndarray
    voltage_decay: float | np.ndarray
    threshold: float | np.ndarray
    bias: float | np.ndarray = 0.0
    reset: ResetKind = ResetKind.SUBTRACT
    comparison: Comparison = Comparison.GT
    reset_interval: int = 0
    reset_phase: int = 0

    OMITTED_AT_DEFAULT = ("reset_interval", "reset_phase")

    def emits_spikes(self) -> bool:
        """A CUBA LIF group outputs 0/1 spikes."""
        return True

    def resets_afresh(self, t: int) -> bool:
        """Whether the periodic reset clears the group's state at the start of step ``t``."""
        return bool(self.reset_interval) and t % self.reset_interval == self.reset_phase

    def field_violations(self) -> list[Violation]:
        """Decays in [0, 1], threshold > 0, a known reset kind and comparison, and a periodic reset
        with 0 <= phase < interval."""
        out = _decay_violations(self) + _periodic_reset_violations(self)
        threshold = np.asarray(self.threshold, dtype=float)
        if np.any(threshold <= 0):
            out.append(Violation(self.name, "threshold", "> 0", _range(threshold)))
        if self.reset not in tuple(ResetKind):
            out.append(Violation(self.name, "reset", "|".join(ResetKind), repr(self.reset)))
        if self.comparison not in tuple(Comparison):
            out.append(Violation(self.name, "comparison", "|".join(Comparison), repr(self.comparison)))
        return out


@dataclass(frozen=True, eq=False)
class LI(_Neuron):
    """Leaky integrator readout (never spikes): ``u[t] = (1-current_decay) u[t-1] + I[t]``,
    ``v[t] = (1-voltage_decay) v[t-1] + u[t] + bias``. Outputs v (membrane), not spikes."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    current_decay: float | np.ndarray = 1.0
    voltage_decay: float | np.ndarray = 0.0
    bias: float | np.ndarray = 0.0

    def field_violations(self) -> list[Violation]:
        """Decays in [0, 1]."""
        return _decay_violations(self)


@dataclass(frozen=True, eq=False)
class LoihiDense(IRNode):
    """Lowered dense synapse with Lava ``Dense``/``DelayDense`` fixed-point semantics (hop latency):

    ``a[t] = shift(sum_j weight_mant[i, j] * s_source[t - 1 - delay_steps[i, j]], weight_exp)`` where
    shift is ``<< e`` for e > 0 and floor ``>> -e`` otherwise; weights are 8-bit words after Lava's
    clip/truncate for ``sign_mode`` and ``num_weight_bits`` (snnc emits them already truncated).
    ``delay_steps`` is an int (uniform) or an int array shaped like ``weight_mant`` (0..63).
    """

    name: str
    source: str
    weight_mant: np.ndarray
    weight_exp: int
    num_weight_bits: int = 8
    sign_mode: SignMode = "mixed"
    delay_steps: Union[int, np.ndarray] = 0

    DOMAIN = "lowered"

    def output_shape(self, shapes):
        """(out,): one activation per row of ``weight_mant``."""
        return (int(self.weight_mant.shape[0]),)

    def shape_violations(self, shapes):
        """``weight_mant`` must be (out, in) with in = the source's size."""
        return _dense_shape_violations(self, self.weight_mant, shapes)


@dataclass(frozen=True, eq=False)
class LoihiConv(IRNode):
    """Lowered convolution with Lava ``Conv`` fixed_pt semantics (hop latency, no weight exponent).

    Same indexing as ``Conv2d`` (torch cross-correlation, (C, H, W)); the Lava backend converts to Lava's
    (x, y, c) layout and flipped kernel. Output a[t] is wrapped to signed 24 bits like Lava's model.
    ``dilation`` (dh, dw) spaces the kernel taps as torch and Lava do: the convolution equals one with
    the zero-inserted kernel ``dilated_kernel()`` of size ((kh - 1) dh + 1, (kw - 1) dw + 1).
    """

    name: str
    source: str
    weight_mant: np.ndarray
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    dilation: tuple[int, int] = (1, 1)

    DOMAIN = "lowered"
    OMITTED_AT_DEFAULT = ("dilation",)

    def dilated_kernel(self) -> np.ndarray:
        """``weight_mant`` with ``dilation - 1`` zeros between taps (the weight itself without dilation)."""
        dh, dw = (int(d) for d in self.dilation)
        weight = np.asarray(self.weight_mant)
        if (dh, dw) == (1, 1):
            return weight
        kh, kw = weight.shape[2:]
        out = np.zeros((*weight.shape[:2], (kh - 1) * dh + 1, (kw - 1) * dw + 1), weight.dtype)
        out[:, :, ::dh, ::dw] = weight
        return out

    def output_shape(self, shapes):
        """(out_channels, H_out, W_out) of the convolution over ``in_shape``."""
        return _conv_output_shape(self, self.dilated_kernel())

    def shape_violations(self, shapes):
        """``in_shape`` must be the source's shape and ``weight_mant`` fit it."""
        return _conv_shape_violations(self, self.weight_mant, shapes)

    def field_violations(self) -> list[Violation]:
        """Dilation (dh, dw) of at least 1."""
        if len(self.dilation) != 2 or min(self.dilation) < 1:
            return [Violation(self.name, "dilation", "(dh, dw) >= 1", str(tuple(self.dilation)))]
        return []


@dataclass(frozen=True, eq=False)
class LoihiLIF(_Neuron):
    """Lowered CUBA LIF with Lava ``LIF`` fixed_pt (bit-accurate) semantics, all integers::

        u[t] = wrap24(rtz(u[t-1] * (4096 - (du + 1)), 12) + (a[t] << 6))
        v[t] = clip(rtz(v[t-1] * (4096 - dv), 12) + u[t] + (bias_mant << bias_exp) - R[t], -(2^23-1), 2^23-1)
        s[t] = v[t] > (vth << 6)          (">=" when comparison == "ge")

    rtz(x, 12) rounds toward zero; wrap24 wraps to signed 24 bits once. ``a[t]`` is the sum of the
    inputs' activations. Reset (R = 0 unless stated), as ``CubaLIF`` defines each kind:
    ``zero`` (Lava's LIF): v[t] := 0 where s[t]; ``zero_next``: v[t] := 0 where s[t-1], replacing the
    v update (u still updates); ``subtract``: R[t] = (vth << 6) * s[t-1], undecayed; ``none``.
    Only ``zero`` with ``gt`` is Lava's stock LIF; the others run as snnc's own Lava process
    (``snnc.backends.lava_loihi2.processes.lif``). ``du`` and ``dv`` are ints (one per group) or int
    arrays (one per neuron, flat or shaped like the group): Lava's LIF declares one du and one dv per
    process, so per-neuron decays run as snnc's process too. ``spiking = False`` marks a readout (monitored for v;
    never reaches vth). ``v_init`` is v before step 0 (per neuron or scalar; see
    ``snnc.lowering.warmup``); s[-1] = 0.

    ``bias_input`` (lava-dl netx input layers) names a ``BiasInput`` whose value at step t is added to
    ``bias_mant`` at the same step (no synapse, no latency): bias[t] = (bias_mant + x[t]) << bias_exp;
    netx sets the input neuron's ``bias_mant`` to the pixel values. With ``reset_interval`` = I > 0
    (Lava ``LIFReset``, netx ``reset_interval``) u and v are set to 0 at the start of every step t with
    ``t % I == reset_phase``, before the update (Lava's ``time_step % I == reset_offset % I`` with
    time_step = t + 1, i.e. Lava reset_offset = reset_phase + 1).
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    du: Union[int, np.ndarray]
    dv: Union[int, np.ndarray]
    vth: int
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    spiking: bool = True
    v_init: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    reset: ResetKind = ResetKind.ZERO
    comparison: Comparison = Comparison.GT
    bias_input: str = ""
    reset_interval: int = 0
    reset_phase: int = 0

    DOMAIN = "lowered"
    OMITTED_AT_DEFAULT = ("reset", "comparison", "bias_input", "reset_interval", "reset_phase")

    def upstream(self) -> tuple[str, ...]:
        """The synapses feeding this group, then its bias input (if any)."""
        return tuple(self.inputs) + self.bias_sources()

    def bias_sources(self) -> tuple[str, ...]:
        """The ``BiasInput`` driving this group's bias, if any."""
        return (self.bias_input,) if self.bias_input else ()

    def emits_spikes(self) -> bool:
        """Spikes when ``spiking``; a readout (``spiking`` False) outputs its membrane v."""
        return bool(self.spiking)

    def field_violations(self) -> list[Violation]:
        """A known reset kind and comparison."""
        out = []
        if self.reset_interval < 0 or not 0 <= self.reset_phase < max(self.reset_interval, 1):
            out.append(Violation(self.name, "reset_interval/reset_phase", "interval >= 0 and 0 <= phase < "
                                 "interval (interval 0: no periodic reset)",
                                 f"{self.reset_interval}/{self.reset_phase}"))
        if self.reset_interval and (self.reset != ResetKind.ZERO or self.comparison != Comparison.GT
                                    or np.ndim(self.du) or np.ndim(self.dv)):
            out.append(Violation(self.name, "reset_interval", "only with reset 'zero', comparison 'gt' and one "
                                 "du/dv per group (Lava LIFReset)", f"reset {self.reset!s}, comparison "
                                 f"{self.comparison!s}, du/dv per neuron {bool(np.ndim(self.du) or np.ndim(self.dv))}"))
        if self.reset not in tuple(ResetKind):
            out.append(Violation(self.name, "reset", "|".join(ResetKind), repr(self.reset)))
        if self.comparison not in tuple(Comparison):
            out.append(Violation(self.name, "comparison", "|".join(Comparison), repr(self.comparison)))
        return out


@dataclass(frozen=True, eq=False)
class SpinnakerProjection(IRNode):
    """Lowered sPyNNaker ``Projection`` (FromListConnector, StaticSynapse) into one receptor (hop latency).

    ``weight_word`` (out, in) holds the unsigned 16-bit words sPyNNaker stores in the synaptic rows
    (0 = no synapse); the weight in nA is ``word / 2^(15 - shift)`` with the target population's ring-buffer
    shift of ``receptor`` ("excitatory" adds to isyn_exc, "inhibitory" to isyn_inh; the sign lives only in
    the receptor). With hop delay ``delay_steps = d`` (int or array like ``weight_word``) the PyNN delay is
    ``(1 + d) * dt``: a spike of tick t is added to ring slot ``t + 1 + d``, i.e. the synapse reads its
    source's spikes of step ``t - 1 - d``, exactly as other hop-latency synapses.
    """

    name: str
    source: str
    weight_word: np.ndarray
    receptor: Literal["excitatory", "inhibitory"] = "excitatory"
    delay_steps: Union[int, np.ndarray] = 0

    DOMAIN = "lowered"

    def output_shape(self, shapes):
        """(out,): one summed word per row of ``weight_word``."""
        return (int(self.weight_word.shape[0]),)

    def shape_violations(self, shapes):
        """Words are unsigned 16-bit integers (out, in); the receptor names one of the two current inputs."""
        words = np.asarray(self.weight_word)
        size = int(np.prod(shapes[self.source]))
        if words.ndim != 2 or words.shape[1] != size:
            return [Violation(self.name, "weight_word.shape", f"(out, {size})", str(words.shape))]
        if words.dtype.kind not in "iu" or (words.size and (words.min() < 0 or words.max() > 0xFFFF)):
            return [Violation(self.name, "weight_word", "unsigned 16-bit integers", _range(words))]
        if self.receptor not in ("excitatory", "inhibitory"):
            return [Violation(self.name, "receptor", "excitatory|inhibitory", repr(self.receptor))]
        return []


@dataclass(frozen=True, eq=False)
class SpinnakerPopulation(_Neuron):
    """Lowered sPyNNaker ``IF_curr_exp`` population; every parameter is an s16.15 word (bits / 2^15 in the
    PyNN unit: mV, nF, ms, nA). Per tick, in integers (``snnc.arith.spinnaker`` spells each operation)::

        isyn_r += floor(((ring_r << shift_r) * init_r) / 2^32)       r = exc, inh (ring_r: saturating u16)
        if timer <= 0: alpha = (isyn_e - isyn_i + i_offset) * R + v_rest   (accum *, floor)
                       v = alpha - exp_tc * (alpha - v)
        else: timer -= 1
        s = v >= v_thresh;  v := v_reset, timer := T_refract where s
        isyn_r = floor(isyn_r * decay_r / 2^32)

    with R, exp_tc, T_refract, decay_r, init_r computed from the words as the chip computes them
    (``lif_constants``). ``ring_buffer_shift`` = (exc, inh) is what sPyNNaker derives from
    ``max_summed_weight`` (passed to it as ``max_expected_summed_weight``, nA). ``v_thresh``,
    ``i_offset``, ``tau_m``, ``cm`` and the synaptic taus may be per-neuron arrays (PyNN takes arrays; the
    chip computes R, exp_tc, decay_r and init_r per neuron); v starts at ``v_init`` (per neuron or scalar: the voltage from
    which the input-free ticks before the population's first input end at ``v_rest``). ``n_synapse_cores`` = 0 runs each neuron
    slice on one combined core; k > 0 is sPyNNaker's neuron/synapse split, k synapse cores per slice whose
    ring buffers the neuron core adds each tick (``snnc.targets.spinnaker_synapse_cores``; exact while no
    neuron's summed words exceed 0xFFFF, which the target's ``fits`` checks).
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    tau_m: Union[int, np.ndarray]
    cm: Union[int, np.ndarray]
    tau_syn_e: Union[int, np.ndarray]
    tau_syn_i: Union[int, np.ndarray]
    v_thresh: Union[int, np.ndarray]
    i_offset: Union[int, np.ndarray] = 0
    v_rest: int = 0
    v_reset: int = 0
    v_init: Union[int, np.ndarray] = 0
    tau_refrac: int = 0
    ring_buffer_shift: tuple[int, int] = (0, 0)
    max_summed_weight: tuple[float, float] = (0.0, 0.0)
    n_synapse_cores: int = 0

    DOMAIN = "lowered"

    def emits_spikes(self) -> bool:
        """An IF_curr_exp population outputs 0/1 spikes."""
        return True


SYNAPSE_TYPES = (Dense, Conv2d, SumPool2d, LoihiDense, LoihiConv, SpinnakerProjection)
NEURON_TYPES = (CubaLIF, LI, LoihiLIF, SpinnakerPopulation)
Node = Union[Input, Dense, Conv2d, SumPool2d, Flatten, CubaLIF, LI, LoihiDense, LoihiConv, LoihiLIF,
             SpinnakerProjection, SpinnakerPopulation]


# --- graded (multi-bit) messages: fan-in partitioning and static inputs --------------------------------

@dataclass(frozen=True, eq=False)
class GradedInput(Input):
    """Graded source: ``s[t] = x[t]``, signed integers with ``|x| < 2^(bits - 1)`` given by the user
    (e.g. static pixel values held every step). A ``LoihiDense`` reading it computes
    ``a[t] = shift(weight @ x[t - 1 - d], weight_exp)`` with integer payloads (Lava ``Dense`` with
    ``num_message_bits = bits`` fed by a ``RingBuffer``); a ``LoihiGradedSum`` may read it too. It
    belongs to both domains: in a float graph a ``DeltaEncoder`` reads it (the float sigma-delta family),
    and lowering keeps it as it is, read by the ``LoihiDelta``."""

    bits: int = 24

    DOMAIN = "any"

    def emits_spikes(self) -> bool:
        """A graded input carries multi-bit values, not 0/1 spikes."""
        return False

    def emits_graded(self) -> bool:
        """A graded input carries multi-bit values."""
        return True


@dataclass(frozen=True, eq=False)
class BiasInput(Input):
    """Bias source (lava-dl netx input layer with a neuron): ``x[t]``, signed integers per neuron with
    ``|x| < 2^24``, given by the user, added to the ``bias_mant`` of the ``LoihiLIF`` naming it in
    ``bias_input`` at the same step (netx sets ``in_layer.neuron.bias_mant`` to the pixels). Spikes never
    pass through it. ``transform_weight`` / ``transform_bias``: the input layer's optional affine
    transform as the file holds it (netx hands it to the user as ``in_layer.transform`` and applies
    neither; so does snnc: ``x`` is the bias itself)."""

    transform_weight: int | None = None
    transform_bias: int | None = None

    DOMAIN = "lowered"
    OMITTED_AT_DEFAULT = ("transform_weight", "transform_bias")
    LIMIT = 1 << 24     # bias_mant << 6 must fit Lava's int32

    def emits_spikes(self) -> bool:
        """A bias input carries values written into neuron registers, not spikes."""
        return False


@dataclass(frozen=True, eq=False)
class Slice(IRNode):
    """Contiguous part of a flattened spike or graded train, no state, no latency:
    ``s[t] = s_source[t].reshape(-1)[start:stop]``. Fan-in partitioning hands each partial-sum unit
    its share of a source's axons with it; the Lava backend zero-pads the reading Dense instead."""

    name: str
    source: str
    start: int
    stop: int

    ROLE = "view"
    DOMAIN = "lowered"

    def output_shape(self, shapes):
        """(stop - start,)."""
        return (int(self.stop) - int(self.start),)

    def shape_violations(self, shapes):
        """A slice lies inside its source."""
        size = int(np.prod(shapes[self.source]))
        if not 0 <= self.start < self.stop <= size:
            return [Violation(self.name, "start:stop", f"0 <= start < stop <= {size}",
                              f"{self.start}:{self.stop}")]
        return []


@dataclass(frozen=True, eq=False)
class LoihiGradedRelay(_Neuron):
    """Partial-sum unit of a partitioned neuron group (Lava ``GradedVec`` fixed_pt with vth = 0).

    Stateless: in the step its activations arrive it emits their sum as a graded spike,
    ``g[t] = wrap32(sum_i a_i[t])`` (int32, Lava's ``v += a_in; s_out = v * (|v| > 0)``). On hardware a
    payload has ``graded_spike_bits`` (``LoihiTargetSpec.fits`` checks the worst case)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]

    DOMAIN = "lowered"

    def emits_graded(self) -> bool:
        """A relay sends its summed activation as a graded (multi-bit) spike."""
        return True


@dataclass(frozen=True, eq=False)
class LoihiGradedSum(IRNode):
    """One-to-one graded synapse that adds partial sums and shifts ONCE (hop latency)::

        a[t] = shift(wrap32(sum_c g_c[t - 1 - delay_steps]), weight_exp)

    shift as in ``LoihiDense`` (``<< e``, floor ``>> -e``). Because the exponent scales the total, the
    partitioned neuron sees exactly the activation of the unpartitioned synapse. Every source (a relay
    or a ``GradedInput``) has the consumer's size. Lava: one ``Dense`` with identity weights (excitatory,
    ``num_message_bits`` = 24, ``weight_exp``) whose ``s_in`` receives every source: Lava adds the
    messages arriving at one InPort."""

    name: str
    sources: tuple[str, ...]
    weight_exp: int = 0
    delay_steps: int = 0

    DOMAIN = "lowered"

    def upstream(self) -> tuple[str, ...]:
        """The partial-sum relays it adds."""
        return self.sources

    def output_shape(self, shapes):
        """(size,): the common size of its sources."""
        return (int(np.prod(shapes[self.sources[0]])),)

    def shape_violations(self, shapes):
        """The sources of a graded sum all have one size."""
        sizes = sorted({int(np.prod(shapes[s])) for s in self.sources})
        if len(sizes) != 1:
            return [Violation(self.name, "sources", "one size", f"sizes {sizes}")]
        return []


# --- sigma-delta (lava-dl SDNN): Lava ``Delta`` / ``SigmaDelta`` / ``Sigma`` fixed_pt ----------------------

@dataclass(frozen=True, eq=False)
class LoihiDelta(_Neuron):
    """Delta encoder of a graded input (Lava ``Delta`` fixed_pt, netx's SDNN input layer), numpy int32::

        x'[t]   = x[t] << (spike_exp + state_exp)                       (x: the input node's value at t)
        d[t]    = x'[t] - act[t-1] + residue[t-1]
        s'[t]   = d[t] if |d[t]| >= (vth << (spike_exp + state_exp)) else 0
        residue[t] = d[t] - s'[t];  act[t] = x'[t];  s[t] = s'[t] >> state_exp   (floor)

    Every sum and shift wraps to int32 as Lava's numpy int32 does. ``inputs`` names one ``GradedInput``
    (read in the same step: no synapse, no latency); the output is graded."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    vth: int
    spike_exp: int = 6
    state_exp: int = 6

    DOMAIN = "lowered"
    INPUT_ROLES = ("input",)

    def emits_graded(self) -> bool:
        """Its output is a graded (multi-bit) value per neuron, not a 0/1 spike."""
        return True


@dataclass(frozen=True, eq=False)
class LoihiSigmaDelta(_Neuron):
    """Sigma-delta neuron with ReLU (Lava ``SigmaDelta`` fixed_pt, act_mode RELU, no cumulative error)::

        sigma[t] = sigma[t-1] + a[t]
        act[t]   = max(sigma[t] + (bias << (spike_exp + state_exp)), 0)
        d[t]     = act[t] - act[t-1] + residue[t-1]
        s'[t]    = d[t] if |d[t]| >= (vth << (spike_exp + state_exp)) else 0
        residue[t] = d[t] - s'[t];  s[t] = s'[t] >> state_exp   (floor)

    all numpy int32 (sums wrap); ``a[t]`` is the sum of the inputs' activations; graded output."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    vth: int
    bias: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    spike_exp: int = 6
    state_exp: int = 6

    DOMAIN = "lowered"

    def emits_graded(self) -> bool:
        """Its output is a graded (multi-bit) value per neuron, not a 0/1 spike."""
        return True


@dataclass(frozen=True, eq=False)
class LoihiSigma(_Neuron):
    """Sigma decoder (Lava ``Sigma`` fixed_pt, netx's SDNN output layer): ``sigma[t] = sigma[t-1] + a[t]``
    (int32), ``s[t] = sigma[t]`` (graded)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]

    DOMAIN = "lowered"

    def emits_graded(self) -> bool:
        """Its output is a graded (multi-bit) value per neuron, not a 0/1 spike."""
        return True


SIGMA_DELTA_TYPES = (LoihiDelta, LoihiSigmaDelta, LoihiSigma)
SYNAPSE_TYPES = SYNAPSE_TYPES + (LoihiGradedSum,)
NEURON_TYPES = NEURON_TYPES + (LoihiGradedRelay,) + SIGMA_DELTA_TYPES
GRADED_TYPES = (GradedInput, LoihiGradedRelay) + SIGMA_DELTA_TYPES
Node = Union[Node, Slice, LoihiGradedRelay, LoihiGradedSum, LoihiDelta, LoihiSigmaDelta, LoihiSigma]


def node_sources(node: Node) -> tuple[str, ...]:
    """Names of the nodes whose output this node reads."""
    return node.upstream()


def is_spiking(node: Node) -> bool:
    """True where the node's output is a spike train (inputs, spiking neurons, flatten of spikes)."""
    return node.emits_spikes()


# --- further neuron families, each in its own module (imported here so the serializer knows them) --------
from snnc.ir.izhikevich_nodes import Izhikevich, LoihiIzhikevich, SpinnakerIzhikevich  # noqa: E402
from snnc.ir.adaptive_lif_nodes import AdaptiveLIF, LoihiAdaptiveLIF  # noqa: E402
from snnc.ir.resonator_nodes import LoihiRF, LoihiRFIzhikevich, Resonator, ResonatorIzhikevich  # noqa: E402
from snnc.ir.sigma_delta_nodes import DeltaEncoder, SigmaDecoder, SigmaDelta  # noqa: E402

NEURON_TYPES = NEURON_TYPES + (Izhikevich, SpinnakerIzhikevich, LoihiIzhikevich, AdaptiveLIF, LoihiAdaptiveLIF,
                               Resonator, ResonatorIzhikevich, LoihiRF, LoihiRFIzhikevich, DeltaEncoder, SigmaDelta,
                               SigmaDecoder)
