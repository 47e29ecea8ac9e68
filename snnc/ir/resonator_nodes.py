"""IR nodes of the resonate-and-fire family (lava-dl ``RF_PHASE`` / ``RF_IZHIKEVICH`` neurons): the float
``Resonator`` and ``ResonatorIzhikevich`` (slayer's ``rf`` / ``rf_iz``), the lowered Loihi ``LoihiRF`` (Lava
``RF`` fixed_pt) and ``LoihiRFIzhikevich`` (Lava ``RF_IZ`` fixed_pt). Imported by
``snnc.ir.nodes``, which lists them in ``NEURON_TYPES``; what they compute is the model unit
``snnc.neurons.resonator``, the integer arithmetic ``snnc.arith.resonator``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.errors import Violation
from snnc.ir.nodes import _Neuron

DECAY_WORD_RANGE = {"sin_decay": (1, 4095), "cos_decay": (0, 4095)}   # what slayer's clamp() leaves


@dataclass(frozen=True, eq=False)
class _ResonatorGroup(_Neuron):
    """What every resonator node shares: 0/1 spikes out, two inputs (real, imag) read apart."""

    def emits_spikes(self) -> bool:
        """A resonator group outputs 0/1 spikes."""
        return True

    def input_pair_violations(self) -> list[Violation]:
        """Exactly two inputs: the real and the imaginary synapse."""
        if len(self.inputs) == 2:
            return []
        return [Violation(self.name, "inputs", "two synapses (real, imag)", str(len(self.inputs)))]


@dataclass(frozen=True, eq=False)
class _Resonator(_ResonatorGroup):
    """Fields and rules shared by both resonator nodes.

    ``inputs`` = (real synapse, imag synapse): a complex dense layer's two synapses, in that order (they
    are not summed: Lava connects them to ``a_real_in`` and ``a_imag_in``). ``sin_decay`` / ``cos_decay``:
    the ``.net`` words ``sinDecay`` / ``cosDecay`` in units of 2^-decay_bits; Lava computes with
    ``snnc.arith.resonator.lava_decay_words`` of them (netx's float round trip, possibly one lower).
    ``vth``: ``vThMant``, in units of 2^-state_exp of the state (Lava compares against vth << state_exp)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    sin_decay: int
    cos_decay: int
    vth: int
    state_exp: int = 6
    decay_bits: int = 12

    DOMAIN = "lowered"

    def field_violations(self) -> list[Violation]:
        """Two inputs (real, imag), decay words in slayer's range, vth >= 0, the exponents netx uses."""
        out = self.input_pair_violations()
        for field, (lo, hi) in DECAY_WORD_RANGE.items():
            value = getattr(self, field)
            if not lo <= int(value) <= hi:
                out.append(Violation(self.name, field, f"an integer in [{lo}, {hi}]", str(value)))
        if not 0 <= int(self.vth) < (1 << (23 - int(self.state_exp))):
            out.append(Violation(self.name, "vth", f"in [0, 2^{23 - int(self.state_exp)}) (vth << state_exp "
                                 "within Lava's 24-bit state)", str(self.vth)))
        if (int(self.state_exp), int(self.decay_bits)) != (6, 12):
            out.append(Violation(self.name, "state_exp/decay_bits", "6/12 (what netx passes to Lava)",
                                 f"{self.state_exp}/{self.decay_bits}"))
        return out


@dataclass(frozen=True, eq=False)
class LoihiRF(_Resonator):
    """Resonate-and-fire neuron, phase threshold (lava-dl ``RF_PHASE``, Lava ``RF`` fixed_pt), integers::

        (s, c) = lava_decay_words(sin_decay, cos_decay)
        re[t] = clip(rtz(c re[t-1] >> 12) - rtz(s im[t-1] >> 12) + wrap32(a_re[t] << 6), +-(2^23 - 1))
        im[t] = clip(rtz(s re[t-1] >> 12) + rtz(c im[t-1] >> 12) + wrap32(a_im[t] << 6), +-(2^23 - 1))
        spike[t] = re[t] >= vth << 6 and im[t] >= 0 and im[t-1] < 0

    re and im start at 0 and are never reset; a_re / a_im are the activations of ``inputs[0]`` /
    ``inputs[1]``; ``rtz(x >> n) = sign(x) (|x| >> n)``."""


@dataclass(frozen=True, eq=False)
class LoihiRFIzhikevich(_Resonator):
    """Resonate-and-fire Izhikevich neuron (lava-dl ``RF_IZHIKEVICH``, Lava ``RF_IZ`` fixed_pt): re[t] and
    im[t] as for ``LoihiRF``, then::

        spike[t] = im[t] >= vth << 6;  where spike[t]: re[t] = 0, im[t] = (vth << 6) - 1"""


@dataclass(frozen=True, eq=False)
class _FloatResonator(_ResonatorGroup):
    """Fields and rules shared by both float resonator nodes (lava-dl ``slayer.neuron.rf`` / ``rf_iz``
    parameters: ``threshold``, ``period``, ``decay``).

    ``inputs`` = (real synapse, imag synapse), read apart (not summed). With g = 1 - ``decay``,
    phi = 2 pi / ``period_steps``, a_re / a_im the currents of ``inputs[0]`` / ``inputs[1]`` and
    re[-1] = im[-1] = 0::

        re[t] = g (cos(phi) re[t-1] - sin(phi) im[t-1]) + a_re[t]
        im[t] = g (sin(phi) re[t-1] + cos(phi) im[t-1]) + a_im[t]

    ``period_steps`` >= 4 (slayer's rule: one step turns the state by at most a quarter turn, so both
    decay words are >= 0); ``decay`` in [0, 1) per step; ``threshold`` > 0 (state units)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    threshold: float
    period_steps: float
    decay: float

    def field_violations(self) -> list[Violation]:
        """Two inputs (real, imag), period_steps >= 4, decay in [0, 1), threshold > 0 (all scalars)."""
        out = self.input_pair_violations()
        rules = (("period_steps", lambda v: v >= 4, ">= 4 (slayer's rule: at most a quarter turn per step)"),
                 ("decay", lambda v: 0 <= v < 1, "in [0, 1)"), ("threshold", lambda v: v > 0, "> 0"))
        for field, holds, limit in rules:
            value = getattr(self, field)
            if not (np.ndim(value) == 0 and np.isfinite(value) and holds(float(value))):
                out.append(Violation(self.name, field, f"one finite value {limit}", repr(value)))
        return out


@dataclass(frozen=True, eq=False)
class Resonator(_FloatResonator):
    """Float resonate-and-fire neuron, phase threshold (lava-dl ``slayer.neuron.rf``, ``RF_PHASE``): re[t]
    and im[t] as on ``_FloatResonator``, never reset; it fires as the phase crosses zero upwards with the
    real part at threshold::

        spike[t] = re[t] >= threshold and im[t] >= 0 and im[t-1] < 0

    Lowers to ``LoihiRF`` (``snnc.lowering.loihi_resonator``)."""


@dataclass(frozen=True, eq=False)
class ResonatorIzhikevich(_FloatResonator):
    """Float resonate-and-fire Izhikevich neuron (lava-dl ``slayer.neuron.rf_iz``, ``RF_IZHIKEVICH``): re[t]
    and im[t] as on ``_FloatResonator``, then a threshold on the imaginary part and a reset::

        spike[t] = im[t] >= threshold;  where spike[t]: re[t] = 0, im[t] = threshold

    (slayer and Lava reset im to one state unit below the threshold: the float limit of that is the
    threshold.) Lowers to ``LoihiRFIzhikevich`` (``snnc.lowering.loihi_resonator``)."""


RESONATOR_TYPES = (LoihiRF, LoihiRFIzhikevich)
FLOAT_RESONATOR_TYPES = (Resonator, ResonatorIzhikevich)
