"""The sigma-delta family (lava-dl SDNN): lowered Loihi ``LoihiDelta`` (input encoder), ``LoihiSigmaDelta``
(ReLU neuron) and ``LoihiSigma`` (output decoder), run by Lava 0.10's stock ``lava.proc.sdn`` processes
``Delta``, ``SigmaDelta`` and ``Sigma`` (fixed_pt).

Messages are graded: a sigma-delta layer sends the change of its activation (when it reaches the
threshold) and the next layer's sigma dendrite integrates the changes back. The integer equations are on
the node classes in ``snnc.ir.nodes``; the arithmetic is ``snnc.arith.sigma_delta``. State variables are
Lava's own (scaled) ``sigma``, ``act`` and ``residue`` Vars, so the emulator's states compare one for one
with a Lava Monitor. These nodes come from lava-dl ``.net`` files only (there is no float sigma-delta node
and no lowering to them); SpiNNaker has no graded messages and never runs them.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import sigma_delta as sd
from snnc.errors import Violation
from snnc.ir.nodes import LoihiDelta, LoihiSigma, LoihiSigmaDelta
from snnc.neurons.cuba_lif import range_violation
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

SDN_MODULE = "lava.proc.sdn.process"
INT32_BITS = 31   # magnitude bits of Lava's int32 Vars


class _SigmaDeltaFamily(NeuronModel):
    """Shared behaviour: graded output, Loihi arithmetic, a numpy state engine also used for scans."""

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


DELTA = register(DeltaModel())
SIGMA_DELTA = register(SigmaDeltaModel())
SIGMA = register(SigmaModel())
