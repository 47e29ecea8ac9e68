"""IR nodes of the Izhikevich family: the float ``Izhikevich`` group, the lowered sPyNNaker
``SpinnakerIzhikevich`` population (IZK_curr_exp) and the lowered Loihi-style ``LoihiIzhikevich`` group
(snnc's fixed point). Imported by ``snnc.ir.nodes``, which lists them in
``NEURON_TYPES``; what they compute is the model unit ``snnc.neurons.izhikevich``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from snnc.errors import Violation
from snnc.ir.nodes import Comparison, _Neuron, _range


@dataclass(frozen=True, eq=False)
class Izhikevich(_Neuron):
    """Izhikevich (2003) group, forward Euler with step ``h = step_ms`` (Norse ``IzhikevichCell`` with
    h = tau_inv * dt; NEST ``izhikevich`` with ``consistent_integration``; PyNN ``Izhikevich``). v in mV,
    u and currents in mV/ms; with I[t] the sum of the currents of ``inputs``::

        i[t] = (1 - current_decay) * i[t-1] + I[t]                 (current_decay = 1: no synaptic memory)
        v'   = v[t-1] + h * (v2_coeff * v[t-1]^2 + v_coeff * v[t-1] + constant - u[t-1] + i[t] + bias)
        u'   = u[t-1] + h * a * (b * v[t-1] - u[t-1])
        s[t] = v' > threshold            (">=" when comparison == "ge": NEST, sPyNNaker)
        v[t] = c where s[t] else v';     u[t] = u' + d where s[t] else u'

    v[-1] = ``v_init``, u[-1] = ``u_init``, i[-1] = 0. ``a``, ``b``, ``c``, ``d``, ``bias`` may be per-neuron
    arrays. Norse's ``sq``, ``mn`` and ``bias`` (the 140) are ``v2_coeff``, ``v_coeff`` and ``constant``;
    snnc's ``bias`` is a constant input current (PyNN ``i_offset``, NEST ``I_e``).
    """

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    a: float | np.ndarray
    b: float | np.ndarray
    c: float | np.ndarray
    d: float | np.ndarray
    bias: float | np.ndarray = 0.0
    v_init: float | np.ndarray = -70.0
    u_init: float | np.ndarray = -14.0
    threshold: float = 30.0
    step_ms: float = 1.0
    current_decay: float = 1.0
    v2_coeff: float = 0.04
    v_coeff: float = 5.0
    constant: float = 140.0
    comparison: Comparison = Comparison.GT

    def emits_spikes(self) -> bool:
        """An Izhikevich group outputs 0/1 spikes."""
        return True

    def field_violations(self) -> list[Violation]:
        """A positive Euler step, current decay in [0, 1] and a known comparison."""
        out = []
        if not self.step_ms > 0:
            out.append(Violation(self.name, "step_ms", "> 0", repr(self.step_ms)))
        decay = np.asarray(self.current_decay, dtype=float)
        if np.any(decay < 0) or np.any(decay > 1):
            out.append(Violation(self.name, "current_decay", "in [0, 1]", _range(decay)))
        if self.comparison not in tuple(Comparison):
            out.append(Violation(self.name, "comparison", "|".join(Comparison), repr(self.comparison)))
        return out


@dataclass(frozen=True, eq=False)
class SpinnakerIzhikevich(_Neuron):
    """Lowered sPyNNaker ``IZK_curr_exp`` population (hop latency); every parameter is an s16.15 word
    (a, b per ms; c mV; d, u mV/ms; v mV; i_offset nA; taus ms). Per tick, in the chip's integers
    (``neuron_model_izh_impl.h``; operations in ``snnc.arith.spinnaker_izhikevich``)::

        isyn_r += floor(((ring_r << shift_r) * init_r) / 2^32)          r = exc, inh (as IF_curr_exp)
        I       = isyn_e - isyn_i + i_offset
        (v, u)  = rk2_midpoint(h, v, u, a, b, I)                       (MAGIC = 1311 / 2^15 for 0.04)
        h       = 1 ms
        s = v >= 30 mV;  v := c, u := u + d, h := 1.85 ms (60620 bits) where s
        isyn_r  = floor(isyn_r * decay_r / 2^32)

    ``ring_buffer_shift``, ``max_summed_weight`` and ``n_synapse_cores`` as on ``SpinnakerPopulation``;
    ``v_init`` / ``u_init`` are v and u at tick 0."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    a: Union[int, np.ndarray]
    b: Union[int, np.ndarray]
    c: Union[int, np.ndarray]
    d: Union[int, np.ndarray]
    tau_syn_e: int
    tau_syn_i: int
    i_offset: Union[int, np.ndarray] = 0
    v_init: Union[int, np.ndarray] = 0
    u_init: Union[int, np.ndarray] = 0
    ring_buffer_shift: tuple[int, int] = (0, 0)
    max_summed_weight: tuple[float, float] = (0.0, 0.0)
    n_synapse_cores: int = 0

    DOMAIN = "lowered"

    def emits_spikes(self) -> bool:
        """An IZK_curr_exp population outputs 0/1 spikes."""
        return True


@dataclass(frozen=True, eq=False)
class LoihiIzhikevich(_Neuron):
    """Lowered Izhikevich group in snnc's Loihi-style fixed point (hop latency), run by snnc's own Lava
    process ``SnncIzhikevich`` (fixed_pt) and the emulator. States i, v, u are 24-bit words of value *
    2^``frac_bits``; k2, k1, hk, ahk, bk are words of value * 2^24; k0, bias, c, d, vth, v_init, u_init
    words of value * 2^``frac_bits``; di the current's 12-bit decay (4096: no memory). The step is
    ``snnc.arith.loihi_izhikevich.izhikevich_update``::

        i = sat24(rtz(i * (4096 - di), 12) + (a << 6))
        v' = sat24(v + hk * (((k1 + ((k2 v) >> S)) v >> 24) + k0 - u + i + bias) >> 24)
        u' = sat24(u + ahk * (((bk v) >> 24) - u) >> 24)
        s = v' > vth (>= for "ge");  v = c, u = sat24(u' + d) where s

    For the first ``hold_steps`` steps (the pipeline fill before the group's first input can arrive) the
    group keeps (0, v_init, u_init) and does not fire, so its step ``hold_steps`` is the float model's
    step 0. ``a``, ``b``-words (ahk, bk), bias, c, d, v_init, u_init may be per-neuron arrays."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    frac_bits: int
    di: int
    k2: int
    k1: int
    k0: int
    hk: int
    ahk: Union[int, np.ndarray]
    bk: Union[int, np.ndarray]
    c: Union[int, np.ndarray]
    d: Union[int, np.ndarray]
    vth: int
    bias: Union[int, np.ndarray] = 0
    v_init: Union[int, np.ndarray] = 0
    u_init: Union[int, np.ndarray] = 0
    hold_steps: int = 0
    comparison: Comparison = Comparison.GT

    DOMAIN = "lowered"

    def emits_spikes(self) -> bool:
        """A lowered Izhikevich group outputs 0/1 spikes."""
        return True
