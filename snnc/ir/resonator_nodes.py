"""IR nodes of the resonate-and-fire family (lava-dl ``RF_PHASE`` / ``RF_IZHIKEVICH`` neurons): the lowered
Loihi ``LoihiRF`` (Lava ``RF`` fixed_pt) and ``LoihiRFIzhikevich`` (Lava ``RF_IZ`` fixed_pt). Imported by
``snnc.ir.nodes``, which lists them in ``NEURON_TYPES``; what they compute is the model unit
``snnc.neurons.resonator``, the integer arithmetic ``snnc.arith.resonator``.
"""
from __future__ import annotations

from dataclasses import dataclass

from snnc.errors import Violation
from snnc.ir.nodes import _Neuron

DECAY_WORD_RANGE = {"sin_decay": (1, 4095), "cos_decay": (0, 4095)}   # what slayer's clamp() leaves


@dataclass(frozen=True, eq=False)
class _Resonator(_Neuron):
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

    def emits_spikes(self) -> bool:
        """A resonator group outputs 0/1 spikes."""
        return True

    def field_violations(self) -> list[Violation]:
        """Two inputs (real, imag), decay words in slayer's range, vth >= 0, the exponents netx uses."""
        out = []
        if len(self.inputs) != 2:
            out.append(Violation(self.name, "inputs", "two synapses (real, imag)", str(len(self.inputs))))
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


RESONATOR_TYPES = (LoihiRF, LoihiRFIzhikevich)
