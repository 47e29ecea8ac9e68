"""The Izhikevich family: float ``Izhikevich`` (forward Euler; Norse IzhikevichCell, NEST izhikevich,
PyNN Izhikevich), lowered ``SpinnakerIzhikevich`` (sPyNNaker IZK_curr_exp, s16.15 RK2 midpoint) and lowered
``LoihiIzhikevich`` (snnc's Loihi-style fixed point, ``snnc.arith.loihi_izhikevich``).

Equations: on the node classes (``snnc.ir.izhikevich_nodes``) and ``snnc.arith.spinnaker_izhikevich``.
Targets: SpiNNaker (IZK_curr_exp; the float Euler step and the chip's midpoint step differ, so the float
model and the chip agree within the integrator's difference, not spike for spike; the s16.15 emulator is
bit-exact with the chip's C update). Loihi: Lava 0.10 has no Izhikevich process (RF_IZ is a
resonate-and-fire neuron), so loihi2 runs snnc's own fixed_pt Lava process ``SnncIzhikevich`` (the same
forward-Euler step as the float model in 24-bit integers; on a Loihi 2 chip it would need a microcode
neuron), and the emulator computes the same integers.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi_izhikevich as lz
from snnc.arith.loihi import wrap32 as lq_wrap32
from snnc.arith import spinnaker as sq
from snnc.arith.spinnaker_izhikevich import izhikevich_tick
from snnc.errors import Violation
from snnc.ir.nodes import Comparison, Izhikevich, LoihiIzhikevich, SpinnakerIzhikevich
from snnc.neurons.cuba_lif import range_violation
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

# The chip's equation: these constants are compiled into IZK_curr_exp (neuron_model_izh_impl.h).
CHIP_CONSTANTS = {"v2_coeff": 0.04, "v_coeff": 5.0, "constant": 140.0, "threshold": 30.0}
SNNC_IZHIKEVICH_MODULE = "snnc.backends.lava_loihi2.processes.izhikevich"
WORD_FIELDS = ("a", "b", "c", "d", "i_offset", "v_init", "u_init", "tau_syn_e", "tau_syn_i")


def per_neuron(node, value) -> np.ndarray:
    """``value`` (scalar or per-neuron) broadcast to the group's shape."""
    arr = np.asarray(value, dtype=np.float64)
    return arr if arr.size == 1 else arr.reshape(node.shape)


class IzhikevichModel(NeuronModel):
    """Float Izhikevich group, forward Euler (reference semantics on ``Izhikevich``)."""

    node_type = Izhikevich
    traits = Traits(output="spikes", current_memory=True, arithmetic="float", comparisons=tuple(Comparison),
                    lowers_to=("spinnaker", "loihi"))
    state_variables = ("i", "v", "u")
    decay_fields = ("current_decay",)
    spinnaker_cell = "IZK_curr_exp"
    loihi_lowering = "izhikevich"

    def comparison_of(self, node) -> Comparison:
        """The node's own threshold test (``>=`` for PyNN/NEST izhikevich)."""
        return node.comparison

    def float_step(self, node, t, current, out, state):
        """One forward-Euler float step of the Izhikevich group (equations in the node docstring) for time ``t``."""
        p = {k: per_neuron(node, getattr(node, k)) for k in ("a", "b", "c", "d", "bias")}
        i_prev = state["i"][:, t - 1] if t else 0.0
        v_prev = state["v"][:, t - 1] if t else per_neuron(node, node.v_init)
        u_prev = state["u"][:, t - 1] if t else per_neuron(node, node.u_init)
        i = (1.0 - node.current_decay) * i_prev + current
        h = node.step_ms
        v = v_prev + h * (node.v2_coeff * v_prev ** 2 + node.v_coeff * v_prev + node.constant - u_prev + i
                          + p["bias"])
        u = u_prev + h * p["a"] * (p["b"] * v_prev - u_prev)
        spikes = (v >= node.threshold) if node.comparison == Comparison.GE else (v > node.threshold)
        state["i"][:, t] = i
        state["v"][:, t] = np.where(spikes, p["c"], v)
        state["u"][:, t] = np.where(spikes, u + p["d"], u)
        return spikes.astype(np.float64)

    def spinnaker_violations(self, node, tick_ms: float) -> list[Violation]:
        """What IZK_curr_exp cannot compute: its constants are compiled in and it steps one tick."""
        out = [Violation(node.name, field, f"{value:g} (compiled into IZK_curr_exp)", repr(getattr(node, field)))
               for field, value in CHIP_CONSTANTS.items() if getattr(node, field) != value]
        if node.step_ms != tick_ms:
            out.append(Violation(node.name, "step_ms", f"{tick_ms:g} (one tick of the chip's update)",
                                 repr(node.step_ms), "with Norse, choose dt * tau_inv = 1 ms "
                                 "(e.g. dt=0.004 with tau_inv=250)"))
        if np.any(np.asarray(node.current_decay) <= 0):
            out.append(Violation(node.name, "current_decay", "> 0", repr(node.current_decay),
                                 "a current that never decays needs tau_syn = infinity"))
        return out


class SpinnakerIzhikevichModel(NeuronModel):
    """sPyNNaker ``IZK_curr_exp`` in s16.15 (equations on ``SpinnakerIzhikevich``)."""

    node_type = SpinnakerIzhikevich
    traits = Traits(output="spikes", current_memory=True, arithmetic="spinnaker", comparisons=(Comparison.GE,))
    state_variables = ("isyn_exc", "isyn_inh", "v", "v_pre", "u")
    pynn_cell = "IZK_curr_exp"

    def limit_violations(self, node, spec) -> list[Violation]:
        """Every lowered parameter an s16.15 word."""
        out = []
        for field in WORD_FIELDS:
            value = np.asarray(getattr(node, field))
            if value.min() < sq.ACCUM_MIN or value.max() > sq.ACCUM_MAX:
                out.append(Violation(node.name, field, "an s16.15 word", f"values in [{value.min()}, {value.max()}]"))
        for field in ("tau_syn_e", "tau_syn_i"):
            if int(getattr(node, field)) <= 0:
                out.append(Violation(node.name, field, "> 0", str(getattr(node, field))))
        return out

    def pynn_parameters(self, node) -> dict:
        """IZK_curr_exp's PyNN parameters (floats or per-neuron arrays, decoded from the words) and its
        initial values {v, u}."""
        decoded = {k: sq.decode_s1615(getattr(node, k)) for k in ("a", "b", "c", "d", "i_offset")}
        parameters = dict(decoded, tau_syn_E=sq.decode_s1615(node.tau_syn_e).item(),
                          tau_syn_I=sq.decode_s1615(node.tau_syn_i).item())
        return parameters, {"v": sq.decode_s1615(node.v_init), "u": sq.decode_s1615(node.u_init)}

    def emulator_state(self, node, batch: int) -> "SpinnakerIzhikevichState":
        """The s16.15 emulator's state of one population."""
        return SpinnakerIzhikevichState(node, batch)


class SpinnakerIzhikevichState:
    """v, u, h and the two exponential currents of one IZK_curr_exp population, per batch row."""

    def __init__(self, node: SpinnakerIzhikevich, batch: int):
        size = int(np.prod(node.shape))
        self.node = node
        self.decay_exc, self.init_exc = sq.synapse_constants(node.tau_syn_e)
        self.decay_inh, self.init_inh = sq.synapse_constants(node.tau_syn_i)

        def words(value):
            return np.broadcast_to(np.asarray(value, np.int64).reshape(-1), (size,))
        self.a, self.b, self.c, self.d, self.offset = (words(getattr(node, k)) for k in ("a", "b", "c", "d", "i_offset"))
        self.v = np.broadcast_to(words(node.v_init), (batch, size)).copy()
        self.u = np.broadcast_to(words(node.u_init), (batch, size)).copy()
        self.h = np.full((batch, size), sq.ONE, np.int64)
        self.isyn = {"excitatory": np.zeros((batch, size), np.int64), "inhibitory": np.zeros((batch, size), np.int64)}
        self.v_pre = self.v
        self.isyn_recorded = dict(self.isyn)

    def add_ring(self, rings: dict) -> None:
        """As IF_curr_exp: ring slot -> s16.15 input -> isyn += floor(input * init / 2^32)."""
        sq.add_exp_input(self.isyn, rings, self.node.ring_buffer_shift, (self.init_exc, self.init_inh))

    def update(self) -> np.ndarray:
        """The Izhikevich update, threshold and reset, then the synaptic decay (``neuron_impl_standard.h``)."""
        current = sq.wrap32(sq.wrap32(self.isyn["excitatory"] - self.isyn["inhibitory"]) + self.offset)
        self.v, self.u, self.h, self.v_pre, fired = izhikevich_tick(self.h, self.v, self.u, self.a, self.b, self.c,
                                                                    self.d, current)
        self.isyn_recorded = dict(self.isyn)
        self.isyn["excitatory"] = sq.multiply_u032(self.isyn["excitatory"], self.decay_exc)
        self.isyn["inhibitory"] = sq.multiply_u032(self.isyn["inhibitory"], self.decay_inh)
        return fired

    def recorded(self) -> dict:
        """The state variables the emulator records after this tick (raw s16.15 bits)."""
        return {"v": self.v, "v_pre": self.v_pre, "u": self.u, "isyn_exc": self.isyn_recorded["excitatory"],
                "isyn_inh": self.isyn_recorded["inhibitory"]}


class LoihiIzhikevichModel(NeuronModel):
    """snnc's fixed-point Izhikevich on Loihi arithmetic (equations on ``LoihiIzhikevich``), run in Lava by
    snnc's ``SnncIzhikevich`` process (not stock Lava)."""

    node_type = LoihiIzhikevich
    traits = Traits(output="spikes", current_memory=True, arithmetic="loihi", comparisons=tuple(Comparison))
    state_variables = ("i", "v", "u")

    def comparison_of(self, node) -> Comparison:
        """The node's threshold test on the integer v'."""
        return Comparison(node.comparison)

    def limit_violations(self, node, spec) -> list[Violation]:
        """Every word inside its format: states and state-scaled words 24-bit, coefficients 32-bit, the
        decay 0..4096, the scale in ``FRAC_BITS_RANGE`` and 64-bit intermediates."""
        state, coeff = lz.STATE_LIMIT, lz.COEFF_LIMIT
        checks = [("frac_bits", node.frac_bits, *lz.FRAC_BITS_RANGE), ("di", node.di, 0, lz.DECAY_UNITY),
                  ("hold_steps", node.hold_steps, 0, 1 << 30)]
        checks += [(f, getattr(node, f), -coeff, coeff) for f in ("k2", "k1", "hk", "ahk", "bk")]
        checks += [(f, getattr(node, f), -state, state) for f in ("k0", "bias", "c", "d", "vth", "v_init", "u_init")]
        out = [v for name, value, lo, hi in checks for v in range_violation(node.name, name, value, lo, hi)]
        if not out:
            bound = lz.product_bound(loihi_words(node), int(node.frac_bits))
            if bound > lz.PRODUCT_LIMIT:
                out.append(Violation(node.name, "k2/k1/hk/ahk/bk", "64-bit intermediate products", f"2^{bound.bit_length()}"))
        return out

    def lava_process(self, node) -> LavaProcess:
        """snnc's ``SnncIzhikevich`` (fixed_pt): not stock Lava, a Loihi 2 chip would need a microcode
        neuron for it; per-neuron words in IR layout (the backend converts them)."""
        parameters = {k: np.asarray(v) if np.ndim(v) else int(v) for k, v in loihi_words(node).items()}
        parameters.update(v=np.asarray(node.v_init), u=np.asarray(node.u_init), frac_bits=int(node.frac_bits),
                          hold_steps=int(node.hold_steps), comparison=str(node.comparison))
        return LavaProcess(SNNC_IZHIKEVICH_MODULE, "SnncIzhikevich", parameters, stock=False,
                           summary=f"SnncIzhikevich (fixed-point Izhikevich, forward Euler; v, u at 2^-{node.frac_bits} "
                                   f"mV in 24 bits, comparison {node.comparison})")

    def emulator_state(self, node, batch: int) -> "LoihiIzhikevichState":
        """The numpy step engine's state of one group."""
        return LoihiIzhikevichState(node, batch)

    def scan(self, node, total: np.ndarray, record_state: bool):
        """(spikes, {i, v, u}) over all steps from the summed activation ``total`` (batch, steps, size)."""
        batch, steps = total.shape[:2]
        state = LoihiIzhikevichState(node, batch)
        shape = (batch, steps, *node.shape)
        fired = np.zeros(shape, np.uint8)
        record = {var: np.zeros(shape, np.int64) for var in self.state_variables} if record_state else {}
        for t in range(steps):
            fired[:, t] = state.update(total[:, t]).reshape(batch, *node.shape)
            for var, trace in record.items():
                trace[:, t] = getattr(state, var).reshape(batch, *node.shape)
        return fired, record


def loihi_words(node: LoihiIzhikevich) -> dict:
    """The ``WORD_FIELDS`` of ``snnc.arith.loihi_izhikevich`` held by the node."""
    return {k: getattr(node, k) for k in lz.WORD_FIELDS}


class LoihiIzhikevichState:
    """i, v, u of one ``LoihiIzhikevich`` group per batch row, and the step count (for ``hold_steps``)."""

    def __init__(self, node: LoihiIzhikevich, batch: int):
        size = int(np.prod(node.shape))
        self.node = node
        self.words = {k: _flat(v, size) for k, v in loihi_words(node).items()}
        self.i = np.zeros((batch, size), np.int64)
        self.v = np.broadcast_to(_flat(node.v_init, size), (batch, size)).copy()
        self.u = np.broadcast_to(_flat(node.u_init, size), (batch, size)).copy()
        self.t = 0

    def step(self, activations: dict) -> np.ndarray:
        """One update from the activations of this step (by synapse name); returns the spikes."""
        total = 0
        for src in self.node.inputs:
            total = lq_wrap32(total + np.asarray(activations[src], np.int64))
        return self.update(np.broadcast_to(total, self.v.shape))

    def update(self, total) -> np.ndarray:
        """One step from the summed activation ``total``; held (no change, no spike) for ``hold_steps``."""
        self.t += 1
        if self.t <= self.node.hold_steps:
            return np.zeros(self.v.shape, bool)
        ge = self.node.comparison == Comparison.GE
        self.i, self.v, self.u, _, fired = lz.izhikevich_update(self.i, self.v, self.u, total, self.words,
                                                                int(self.node.frac_bits), ge)
        return fired


def _flat(value, size: int):
    """A scalar word, or a per-neuron array flattened to (size,)."""
    arr = np.asarray(value, np.int64)
    return int(arr.reshape(-1)[0]) if arr.size == 1 else arr.reshape(size)


IZHIKEVICH = register(IzhikevichModel())
SPINNAKER_IZK_CURR_EXP = register(SpinnakerIzhikevichModel())
LOIHI_IZHIKEVICH = register(LoihiIzhikevichModel())
