"""IR node types: frozen dataclasses with exact discrete-time semantics.

Time is discrete, step index ``t`` = 0, 1, 2, ...; ``dt_s`` on the graph gives the step length in seconds.
State starts at zero. Spikes are 0/1. A graph is evaluated in one of two timings (``Graph.timing``):

* ``"zero_latency"`` (float IR, snnTorch semantics): at step t nodes update in topological order and a
  synapse with ``delay_steps = d`` reads its source's spikes of step ``t - d``.
* ``"hop_latency"`` (lowered Loihi IR, Lava semantics): every synapse delivers one step late, i.e. reads
  its source's spikes of step ``t - 1 - d``; all neurons update in parallel.

Float nodes carry real-valued parameters; ``Loihi*`` nodes carry the integer formats the hardware uses.
Arrays are numpy arrays and never mutated; dataclass equality is identity (``eq=False``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

import numpy as np

ResetKind = Literal["zero", "zero_next", "subtract", "none"]
Comparison = Literal["gt", "ge"]
SignMode = Literal["mixed", "excitatory", "inhibitory"]


@dataclass(frozen=True, eq=False)
class Input:
    """Spike source: ``s[t] = x[t]``, binary, given by the user; shape excludes batch and time."""

    name: str
    shape: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Dense:
    """Weighted synapse: ``i[t] = weight @ s_source[t - delay_steps] + bias`` (current units).

    ``weight`` has shape (out_features, in_features); ``bias`` is (out_features,) or None and is added
    every step whether or not the source spiked (a torch ``nn.Linear`` bias).
    """

    name: str
    source: str
    weight: np.ndarray
    bias: np.ndarray | None = None
    delay_steps: int = 0


@dataclass(frozen=True, eq=False)
class Conv2d:
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


@dataclass(frozen=True, eq=False)
class SumPool2d:
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


@dataclass(frozen=True, eq=False)
class Flatten:
    """Reshape of spikes, no state, no latency: ``s[t] = s_source[t].reshape(-1)``."""

    name: str
    source: str


@dataclass(frozen=True, eq=False)
class CubaLIF:
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
    ``current_decay = 1`` means no synaptic memory (snnTorch Leaky). Decays are per step (dt folded
    in). u is never reset.
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    current_decay: float | np.ndarray
    voltage_decay: float | np.ndarray
    threshold: float | np.ndarray
    bias: float | np.ndarray = 0.0
    reset: ResetKind = "subtract"
    comparison: Comparison = "gt"


@dataclass(frozen=True, eq=False)
class LI:
    """Leaky integrator readout (never spikes): ``u[t] = (1-current_decay) u[t-1] + I[t]``,
    ``v[t] = (1-voltage_decay) v[t-1] + u[t] + bias``. Outputs v (membrane), not spikes."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    current_decay: float | np.ndarray = 1.0
    voltage_decay: float | np.ndarray = 0.0
    bias: float | np.ndarray = 0.0


@dataclass(frozen=True, eq=False)
class LoihiDense:
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


@dataclass(frozen=True, eq=False)
class LoihiConv:
    """Lowered convolution with Lava ``Conv`` fixed_pt semantics (hop latency, no weight exponent).

    Same indexing as ``Conv2d`` (torch cross-correlation, (C, H, W)); the Lava backend converts to Lava's
    (x, y, c) layout and flipped kernel. Output a[t] is wrapped to signed 24 bits like Lava's model.
    """

    name: str
    source: str
    weight_mant: np.ndarray
    in_shape: tuple[int, int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1


@dataclass(frozen=True, eq=False)
class LoihiLIF:
    """Lowered CUBA LIF with Lava ``LIF`` fixed_pt (bit-accurate) semantics, all integers::

        u[t] = wrap24(rtz(u[t-1] * (4096 - (du + 1)), 12) + (a[t] << 6))
        v[t] = clip(rtz(v[t-1] * (4096 - dv), 12) + u[t] + (bias_mant << bias_exp), -(2^23-1), 2^23-1)
        s[t] = v[t] > (vth << 6);  v[t] := 0 where s[t]

    rtz(x, 12) rounds toward zero; wrap24 wraps to signed 24 bits once. ``a[t]`` is the sum of the
    inputs' activations. ``spiking = False`` marks a readout (monitored for v; never reaches vth).
    ``v_init`` is v before step 0 (per neuron or scalar; see ``warmup_initial_voltage``).
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    spiking: bool = True
    v_init: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))


SYNAPSE_TYPES = (Dense, Conv2d, SumPool2d, LoihiDense, LoihiConv)
NEURON_TYPES = (CubaLIF, LI, LoihiLIF)
Node = Union[Input, Dense, Conv2d, SumPool2d, Flatten, CubaLIF, LI, LoihiDense, LoihiConv, LoihiLIF]


def node_sources(node: Node) -> tuple[str, ...]:
    """Names of the nodes whose output this node reads."""
    if isinstance(node, Input):
        return ()
    if isinstance(node, NEURON_TYPES):
        return node.inputs
    return (node.source,)


def is_spiking(node: Node) -> bool:
    """True where the node's output is a spike train (inputs, spiking neurons, flatten of spikes)."""
    if isinstance(node, (Input, Flatten, CubaLIF)):
        return True
    return isinstance(node, LoihiLIF) and node.spiking
