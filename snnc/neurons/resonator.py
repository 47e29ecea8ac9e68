"""The resonate-and-fire family (lava-dl ``RF_PHASE`` / ``RF_IZHIKEVICH``): float ``Resonator`` and
``ResonatorIzhikevich`` (slayer's ``rf`` / ``rf_iz`` neurons in exact float arithmetic), lowered Loihi ``LoihiRF``
and ``LoihiRFIzhikevich``, run by Lava 0.10's stock ``lava.proc.rf`` ``RF`` and ``lava.proc.rf_iz`` ``RF_IZ``
processes (fixed_pt), the way lava-dl netx 0.6 builds them (``ComplexDense`` blocks).

Each group reads two synapses, kept apart: ``inputs[0]`` drives the real part (Lava ``a_real_in``),
``inputs[1]`` the imaginary part (``a_imag_in``). State variables are Lava's own ``real`` and ``imag``
Vars (scaled by 2^6 like Lava's), so the emulator's states compare one for one with a Lava Monitor.
Equations: ``snnc.ir.resonator_nodes``; arithmetic: ``snnc.arith.resonator``. The lowered nodes come from
lava-dl ``.net`` files, slayer modules in the torch frontend, or the float nodes through
``snnc.lowering.loihi_resonator``; sPyNNaker has no resonator cell, so the SpiNNaker target refuses both
forms by name.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import resonator as rf
from snnc.ir.nodes import LoihiRF, LoihiRFIzhikevich, Resonator, ResonatorIzhikevich
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

SPINNAKER_REFUSAL = ("sPyNNaker 7.4.1 has no resonate-and-fire cell (its neurons integrate one real current; "
                     "none keeps the complex real/imag state of lava-dl's RF and RF_IZ): compile it with "
                     "--target loihi2 (Lava RF / RF_IZ) or --target emulator")


class _FloatResonatorFamily(NeuronModel):
    """Float resonators: binary spikes, two separate currents (real, imag), a Loihi lowering only."""

    traits = Traits(output="spikes", current_memory=False, arithmetic="float", lowers_to=("loihi",))
    state_variables = ("real", "imag")
    input_ports = ("a_real_in", "a_imag_in")
    loihi_lowering = "resonator"
    spinnaker_refusal = SPINNAKER_REFUSAL

    def float_step(self, node, t, current, out, state):
        """One float step (equations on ``snnc.ir.resonator_nodes._FloatResonator``) for time ``t``;
        ``current`` = (real current, imag current), read apart."""
        a_real, a_imag = current
        real = state["real"][:, t - 1] if t else 0.0
        imag = state["imag"][:, t - 1] if t else 0.0
        gain, phi = 1.0 - float(node.decay), 2.0 * np.pi / float(node.period_steps)
        new_real = gain * (np.cos(phi) * real - np.sin(phi) * imag) + a_real
        new_imag = gain * (np.sin(phi) * real + np.cos(phi) * imag) + a_imag
        spikes, state["real"][:, t], state["imag"][:, t] = self.fire(node, new_real, new_imag, imag)
        return spikes.astype(np.float64)


class ResonatorModel(_FloatResonatorFamily):
    """Float phase-threshold resonator (slayer ``rf``); lowers to ``LoihiRF``."""

    node_type = Resonator
    loihi_node_type = LoihiRF
    loihi_resets_to_threshold = False    # never reset: only the input bounds the state

    def fire(self, node, real, imag, old_imag):
        """(spikes, real, imag): fires as the phase crosses zero upwards with re >= threshold; no reset."""
        return (real >= node.threshold) & (imag >= 0) & (np.asarray(old_imag) < 0), real, imag


class ResonatorIzhikevichModel(_FloatResonatorFamily):
    """Float resonate-and-fire Izhikevich neuron (slayer ``rf_iz``); lowers to ``LoihiRFIzhikevich``."""

    node_type = ResonatorIzhikevich
    loihi_node_type = LoihiRFIzhikevich
    loihi_resets_to_threshold = True     # im restarts one unit below vth << 6: |state| up to the threshold

    def fire(self, node, real, imag, old_imag):
        """(spikes, real, imag): fires on im >= threshold, then re = 0 and im = threshold."""
        spikes = imag >= node.threshold
        return spikes, np.where(spikes, 0.0, real), np.where(spikes, float(node.threshold), imag)


class _ResonatorFamily(NeuronModel):
    """Shared behaviour: binary spikes, Loihi arithmetic, two separate inputs, a numpy state engine."""

    traits = Traits(output="spikes", current_memory=False, arithmetic="loihi")
    state_variables = ("real", "imag")
    input_ports = ("a_real_in", "a_imag_in")
    spinnaker_refusal = SPINNAKER_REFUSAL
    lava_module = ""
    lava_class = ""

    def emulator_state(self, node, batch: int) -> "ResonatorState":
        """The step engine's state of one group (Lava's ``real`` and ``imag`` Vars, per batch row)."""
        return ResonatorState(self, node, batch)

    def scan(self, node, parts, record_state: bool):
        """(spikes, states) over all steps from the two inputs' activations ``parts`` = (real, imag), each
        (batch, steps, size)."""
        a_real, a_imag = (np.asarray(p, np.int64) for p in parts)
        batch, steps = a_real.shape[:2]
        state = self.emulator_state(node, batch)
        out = np.zeros((batch, steps, state.size), np.uint8)
        record = {var: np.zeros((batch, steps, state.size), np.int64) for var in self.state_variables}
        for t in range(steps):
            out[:, t] = state.advance(a_real[:, t], a_imag[:, t])
            for var in self.state_variables if record_state else ():
                record[var][:, t] = getattr(state, var)
        shape = (batch, steps, *node.shape)
        states = {var: arr.reshape(shape) for var, arr in record.items()} if record_state else {}
        return out.reshape(shape), states

    def deployment_note(self, node) -> str:
        """The decay words Lava computes with where netx's float round trip changed the file's (slayer's
        forward uses the file's words)."""
        lava = rf.lava_decay_words(node.sin_decay, node.cos_decay, int(node.decay_bits))
        if lava == (int(node.sin_decay), int(node.cos_decay)):
            return ""
        return (f"netx deploys sin/cos decay words {lava[0]}/{lava[1]} for the exported {node.sin_decay}/"
                f"{node.cos_decay}: its float period/decay round trip truncates")

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock process with the period and alpha netx computes from the ``.net`` words."""
        period, alpha = rf.netx_period_and_decay(node.sin_decay, node.cos_decay)
        return LavaProcess(self.lava_module, self.lava_class,
                           dict(period=period, alpha=alpha, state_exp=int(node.state_exp),
                                decay_bits=int(node.decay_bits), vth=int(node.vth)))


class RFModel(_ResonatorFamily):
    """Lava ``RF`` fixed_pt: fires when the phase crosses zero upwards with the real part at threshold."""

    node_type = LoihiRF
    lava_module, lava_class = "lava.proc.rf.process", "RF"

    def fire(self, state: "ResonatorState", real: np.ndarray, imag: np.ndarray) -> np.ndarray:
        """Spikes of this step from the new (real, imag); stores them as the state (no reset)."""
        spikes = rf.phase_spikes(real, imag, state.imag, state.vth)
        state.real, state.imag = real, imag
        return spikes


class RFIzhikevichModel(_ResonatorFamily):
    """Lava ``RF_IZ`` fixed_pt: fires when the imaginary part reaches threshold, then resets."""

    node_type = LoihiRFIzhikevich
    lava_module, lava_class = "lava.proc.rf_iz.process", "RF_IZ"

    def fire(self, state: "ResonatorState", real: np.ndarray, imag: np.ndarray) -> np.ndarray:
        """Spikes of this step from the new (real, imag); stores the state after RF_IZ's reset."""
        spikes, state.real, state.imag = rf.izhikevich_reset(real, imag, state.vth)
        return spikes


class ResonatorState:
    """Lava's ``real`` / ``imag`` Vars of one resonator group (int64 holding int32), one row per sample."""

    def __init__(self, model: _ResonatorFamily, node, batch: int):
        self.model, self.node = model, node
        self.size = int(np.prod(node.shape))
        self.real = np.zeros((batch, self.size), np.int64)
        self.imag = np.zeros((batch, self.size), np.int64)
        self.sin, self.cos = rf.lava_decay_words(node.sin_decay, node.cos_decay, int(node.decay_bits))
        self.vth = rf.scaled_threshold(node.vth, int(node.state_exp))

    def advance(self, a_real: np.ndarray, a_imag: np.ndarray) -> np.ndarray:
        """One step from the real and imaginary activations (batch, size); returns 0/1 spikes (uint8)."""
        real, imag = rf.resonator_step(self.real, self.imag, a_real, a_imag, self.sin, self.cos,
                                       int(self.node.state_exp), int(self.node.decay_bits))
        return self.model.fire(self, real, imag).astype(np.uint8)

    def step(self, activations: dict) -> np.ndarray:
        """One step of the step engine from the activations of this step, by source name."""
        batch = self.real.shape[0]
        parts = []
        for src in self.node.inputs:
            value = np.asarray(activations[src], np.int64)
            parts.append(value.reshape(batch, self.size) if value.ndim else np.full((batch, self.size), value))
        return self.advance(*parts)


RESONATOR = register(ResonatorModel())
RESONATOR_IZHIKEVICH = register(ResonatorIzhikevichModel())
RF = register(RFModel())
RF_IZHIKEVICH = register(RFIzhikevichModel())
