"""The sigma-delta family (lava-dl SDNN): float ``DeltaEncoder`` (input encoder), ``SigmaDelta`` (ReLU
neuron) and ``SigmaDecoder`` (output decoder), and their lowered Loihi forms ``LoihiDelta``,
``LoihiSigmaDelta`` and ``LoihiSigma``, run by Lava 0.10's stock ``lava.proc.sdn`` processes ``Delta``,
``SigmaDelta`` and ``Sigma`` (fixed_pt).

Messages are graded: a sigma-delta layer sends the change of its activation (when it reaches the
threshold) and the next layer's sigma dendrite integrates the changes back. The float equations are on
the node classes in ``snnc.ir.sigma_delta_nodes``, the integer ones in ``snnc.ir.nodes``; the integer
arithmetic is ``snnc.arith.sigma_delta``. State variables are Lava's own (scaled) ``sigma``, ``act`` and
``residue`` Vars, so the emulator's states compare one for one with a Lava Monitor; the float models
record the same names unscaled. The float models lower to Loihi with ``snnc.lowering.loihi_sigma_delta``
(a power-of-two value scale per layer); lowered nodes also come from lava-dl ``.net`` files. SpiNNaker has
no graded messages and never runs them.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import sigma_delta as sd
from snnc.errors import Violation
from snnc.ir.nodes import DeltaEncoder, LoihiDelta, LoihiSigma, LoihiSigmaDelta, SigmaDecoder, SigmaDelta
from snnc.neurons.cuba_lif import range_violation
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

SDN_MODULE = "lava.proc.sdn.process"
INT32_BITS = 31   # magnitude bits of Lava's int32 Vars
SPINNAKER_REFUSAL = ("sPyNNaker's cells send binary spikes only: a sigma-delta group sends graded (multi-bit) "
                     "messages, the change of its activation, which no sPyNNaker 7.4.1 cell or projection can "
                     "carry; compile it with --target loihi2 (Lava Delta / SigmaDelta / Sigma) or --target emulator")


def delta_step(act: np.ndarray, act_prev, residue_prev, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(s, residue) of the float delta encoding: d = act - act_prev + residue_prev; s = d where
    |d| >= threshold, else 0; residue = d - s."""
    delta = act - act_prev + residue_prev
    sent = np.where(np.abs(delta) >= threshold, delta, 0.0)
    return sent, delta - sent


def per_neuron_bias(node) -> np.ndarray:
    """A float sigma-delta group's bias shaped like the group (a scalar array where it is one value)."""
    bias = np.asarray(node.bias, np.float64)
    return bias.reshape(tuple(node.shape)) if bias.size > 1 else bias.reshape(())


class _FloatSigmaDeltaFamily(NeuronModel):
    """Shared behaviour of the float forms: graded output, no reset, a Loihi lowering of their own."""

    loihi_lowering = "sigma_delta"
    spinnaker_refusal = SPINNAKER_REFUSAL

    @staticmethod
    def previous(state: dict, var: str, t: int):
        """The variable's value at step t - 1 (0 before the first step)."""
        return state[var][:, t - 1] if t else 0.0


class DeltaEncoderModel(_FloatSigmaDeltaFamily):
    """Float delta encoder of a graded input (equations on ``DeltaEncoder``)."""

    node_type = DeltaEncoder
    traits = Traits(output="graded", current_memory=False, arithmetic="float", lowers_to=("loihi",))
    state_variables = ("act", "residue")

    def float_step(self, node, t, current, out, state):
        """One float step: delta-encode the input values ``current`` of step ``t``; returns the sent
        changes."""
        x = np.asarray(current, np.float64)
        sent, residue = delta_step(x, self.previous(state, "act", t), self.previous(state, "residue", t),
                                   float(node.threshold))
        state["act"][:, t], state["residue"][:, t] = x, residue
        return sent


class FloatSigmaDeltaModel(_FloatSigmaDeltaFamily):
    """Float ReLU sigma-delta neuron (equations on ``SigmaDelta``)."""

    node_type = SigmaDelta
    traits = Traits(output="graded", current_memory=False, arithmetic="float", lowers_to=("loihi",))
    state_variables = ("sigma", "act", "residue")

    def float_step(self, node, t, current, out, state):
        """One float step: sigma += the summed messages ``current``, ReLU(sigma + bias), delta-encode it;
        returns the sent changes."""
        sigma = self.previous(state, "sigma", t) + current
        act = np.maximum(sigma + per_neuron_bias(node), 0.0)
        sent, residue = delta_step(act, self.previous(state, "act", t), self.previous(state, "residue", t),
                                   float(node.threshold))
        state["sigma"][:, t], state["act"][:, t], state["residue"][:, t] = sigma, act, residue
        return sent


class SigmaDecoderModel(_FloatSigmaDeltaFamily):
    """Float sigma decoder (equations on ``SigmaDecoder``)."""

    node_type = SigmaDecoder
    traits = Traits(output="graded", current_memory=False, arithmetic="float", lowers_to=("loihi",))
    state_variables = ("sigma",)

    def float_step(self, node, t, current, out, state):
        """One float step: sigma += the summed messages ``current``; returns sigma."""
        sigma = self.previous(state, "sigma", t) + current
        state["sigma"][:, t] = sigma
        return sigma


class _SigmaDeltaFamily(NeuronModel):
    """Shared behaviour: graded output, Loihi arithmetic, a numpy state engine also used for scans."""

    fan_in_remedy = ("partition_fanin splits groups of 0/1 spikes only (a sigma-delta group's graded partial "
                     "sums are not split): give the layer fewer inputs per neuron (a convolution, or a narrower "
                     "layer) or compile with --target emulator")

    def emulator_state(self, node, batch: int) -> "SigmaDeltaState":
        """The step engine's state of one group (the Lava Vars of ``state_variables``, per batch row)."""
        return SigmaDeltaState(self, node, batch)

    def scan(self, node, total: np.ndarray, record_state: bool):
        """(graded outputs, states) over all steps from the summed input ``total`` (batch, steps, size)."""
        batch, steps = total.shape[:2]
        state = self.emulator_state(node, batch)
        out = np.zeros((batch, steps, state.size), np.int64)
        record = {var: np.zeros((batch, steps, state.size), np.int64) for var in self.state_variables}
        for t in range(steps):
            out[:, t] = state.advance(total[:, t])
            for var in self.state_variables if record_state else ():
                record[var][:, t] = getattr(state, var)
        shape = (batch, steps, *node.shape)
        states = {var: arr.reshape(shape) for var, arr in record.items()} if record_state else {}
        return out.reshape(shape), states

    def limit_violations(self, node, spec) -> list[Violation]:
        """The scaled threshold and bias (``<< spike_exp + state_exp``) must fit Lava's int32 Vars."""
        shift = int(getattr(node, "spike_exp", 0)) + int(getattr(node, "state_exp", 0))
        hi = (1 << (INT32_BITS - shift)) - 1
        out = range_violation(node.name, "vth", node.vth, 0, hi) if hasattr(node, "vth") else []
        if hasattr(node, "bias"):
            out += range_violation(node.name, "bias", node.bias, -hi - 1, hi)
        return out


class DeltaModel(_SigmaDeltaFamily):
    """Lava ``Delta`` fixed_pt: delta encoding of a graded input (netx's SDNN input layer)."""

    node_type = LoihiDelta
    traits = Traits(output="graded", current_memory=False, arithmetic="loihi")
    state_variables = ("act", "residue")

    def step(self, node, state: "SigmaDeltaState", x: np.ndarray) -> np.ndarray:
        """One step: scale the input ``x`` and delta-encode it against the last sent value; outputs the
        graded message."""
        act = sd.delta_input(x, node.spike_exp, node.state_exp)
        out, state.residue = sd.delta_encode(act, state.act, state.residue, state.vth, node.state_exp)
        state.act = act
        return out

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock ``Delta`` (netx passes vth = vThMant, spike_exp 6, state_exp 6)."""
        return LavaProcess(SDN_MODULE, "Delta", dict(vth=int(node.vth), spike_exp=int(node.spike_exp),
                                                     state_exp=int(node.state_exp)))


class SigmaDeltaModel(_SigmaDeltaFamily):
    """Lava ``SigmaDelta`` fixed_pt with ReLU activation (netx's SDNN hidden layers)."""

    node_type = LoihiSigmaDelta
    traits = Traits(output="graded", current_memory=False, arithmetic="loihi")
    state_variables = ("sigma", "act", "residue")

    def step(self, node, state: "SigmaDeltaState", a: np.ndarray) -> np.ndarray:
        """One step: sigma += a, ReLU(sigma + bias), then delta-encode it against the last sent value;
        outputs the graded message."""
        state.sigma = sd.sigma_accumulate(state.sigma, a)
        act = sd.relu_activation(state.sigma, state.bias)
        out, state.residue = sd.delta_encode(act, state.act, state.residue, state.vth, node.state_exp)
        state.act = act
        return out

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock ``SigmaDelta`` (act_mode RELU, the default; the process scales vth and bias)."""
        return LavaProcess(SDN_MODULE, "SigmaDelta", dict(vth=int(node.vth), bias=np.asarray(node.bias),
                                                          spike_exp=int(node.spike_exp),
                                                          state_exp=int(node.state_exp)))


class SigmaModel(_SigmaDeltaFamily):
    """Lava ``Sigma`` fixed_pt: integrates graded input and sends the sum (netx's SDNN output layer)."""

    node_type = LoihiSigma
    traits = Traits(output="graded", current_memory=False, arithmetic="loihi")
    state_variables = ("sigma",)

    def step(self, node, state: "SigmaDeltaState", a: np.ndarray) -> np.ndarray:
        """One step: accumulate the graded input ``a`` into sigma; outputs sigma."""
        state.sigma = sd.sigma_accumulate(state.sigma, a)
        return state.sigma

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock ``Sigma``."""
        return LavaProcess(SDN_MODULE, "Sigma", {})


class SigmaDeltaState:
    """Lava's Vars of one sigma-delta group (int64 holding int32 values), one row per batch sample."""

    def __init__(self, model: _SigmaDeltaFamily, node, batch: int):
        self.model, self.node = model, node
        self.size = int(np.prod(node.shape))
        zeros = np.zeros((batch, self.size), np.int64)
        self.sigma, self.act, self.residue = zeros, zeros.copy(), zeros.copy()
        spike_exp, state_exp = int(getattr(node, "spike_exp", 0)), int(getattr(node, "state_exp", 0))
        self.vth = sd.scaled_threshold(getattr(node, "vth", 0), spike_exp, state_exp)
        bias = np.asarray(getattr(node, "bias", 0), np.int64).reshape(-1)
        self.bias = np.broadcast_to(sd.scaled_bias(bias, spike_exp, state_exp), (self.size,))

    def advance(self, total: np.ndarray) -> np.ndarray:
        """One step from the summed input of this step (batch, size); returns the graded output."""
        return self.model.step(self.node, self, np.asarray(total, np.int64).reshape(-1, self.size))

    def step(self, activations: dict) -> np.ndarray:
        """One step of the step engine from the activations (or, for a delta encoder, the input values)
        of this step, by source name."""
        batch, total = self.act.shape[0], 0
        for src in self.node.inputs:
            value = np.asarray(activations[src], np.int64)
            value = value.reshape(batch, self.size) if value.ndim else np.full((batch, self.size), value)
            total = sd.sigma_accumulate(total, value)
        return self.advance(total)


DELTA_ENCODER = register(DeltaEncoderModel())
FLOAT_SIGMA_DELTA = register(FloatSigmaDeltaModel())
SIGMA_DECODER = register(SigmaDecoderModel())
DELTA = register(DeltaModel())
SIGMA_DELTA = register(SigmaDeltaModel())
SIGMA = register(SigmaModel())
