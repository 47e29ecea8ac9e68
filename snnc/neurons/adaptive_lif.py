"""The adaptive-threshold LIF family (ALIF): float ``AdaptiveLIF`` (lava-dl ``slayer.neuron.alif``) and
lowered ``LoihiAdaptiveLIF`` (Lava 0.10's stock ``ATRLIF`` process, fixed_pt, bit-accurate).

Equations: on the node classes (``snnc.ir.adaptive_lif_nodes``). lava-dl's ALIF computes in the same
integers as ATRLIF (states scaled by 2^12, inputs by 2^6, its current decay ``4096 - iDecay`` being
ATRLIF's ``du + 1``), so the lowered group equals lava-dl's forward and Lava's ATRLIF state for state.
Norse's LSNN form (v reset to 0, no refractory state, '>') lowers to the same group with those fields; it
runs as snnc's ``SnncATRLIF`` Lava process (ATRLIF's integer update, then the node's test and reset).
SpiNNaker: no sPyNNaker 7.4.1 cell has an adaptive threshold (threshold types: static, fixed-probability,
Maass stochastic; the ca2_adaptive extra models adapt through a current), so the target refuses it by name.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith.rounding import shift_round_toward_zero
from snnc.errors import QuantizationError, Violation
from snnc.ir.nodes import AdaptiveLIF, Comparison, LoihiAdaptiveLIF, ResetKind
from snnc.neurons.cuba_lif import CUBA_LIF, range_violation
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

DECAY_FIELDS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")
SPINNAKER_REFUSAL = ("no sPyNNaker 7.4.1 cell has a threshold that rises per spike and decays back (its threshold "
                     "types are static, fixed-probability and Maass stochastic; IF_curr_exp_ca2_adaptive adapts "
                     "through a calcium current, which is not the same dynamics): compile lava-dl's ALIF with --target "
                     "loihi2 (Lava ATRLIF) or --target emulator; Norse's LSNN likewise (snnc's SnncATRLIF)")
ATRLIF_FORM = {"reset": ResetKind.NONE, "refractory_scale": 2, "comparison": Comparison.GE}
SNNC_ATRLIF_MODULE = "snnc.backends.lava_loihi2.processes.atrlif"


class AdaptiveLIFModel(NeuronModel):
    """Float adaptive LIF (reference semantics on ``AdaptiveLIF``)."""

    node_type = AdaptiveLIF
    traits = Traits(output="spikes", current_memory=True, arithmetic="float", resets=(ResetKind.NONE, ResetKind.ZERO),
                    comparisons=(Comparison.GE, Comparison.GT), lowers_to=("loihi",))
    state_variables = ("u", "v", "theta", "r")
    decay_fields = DECAY_FIELDS
    loihi_vth_cap_fraction = 1.0 / 16     # headroom: theta grows by threshold_step per spike, r by 2 theta
    spinnaker_refusal = SPINNAKER_REFUSAL

    def membrane_decays(self, node) -> tuple[float, float]:
        """(current_decay, voltage_decay) of its u/v membrane (SBC/OBC weigh errors through it)."""
        return float(node.current_decay), float(node.voltage_decay)

    def comparison_of(self, node) -> Comparison:
        """The node's test: ``v - r >= theta`` (lava-dl ALIF, the default) or ``>`` (Norse LSNN)."""
        return node.comparison

    def float_step(self, node, t, current, out, state):
        """One float step of the adaptive LIF (equations in the node docstring) for time ``t``."""
        def previous(var, start):
            return state[var][:, t - 1] if t else start
        u = (1.0 - node.current_decay) * previous("u", 0.0) + current
        v = (1.0 - node.voltage_decay) * previous("v", 0.0) + u + np.asarray(node.bias)
        theta = (1.0 - node.threshold_decay) * (previous("theta", node.threshold) - node.threshold) + node.threshold
        r = (1.0 - node.refractory_decay) * previous("r", 0.0)
        spikes = (v - r > theta) if node.comparison == Comparison.GT else (v - r >= theta)
        if node.reset == ResetKind.ZERO:
            v = np.where(spikes, 0.0, v)
        state["u"][:, t], state["v"][:, t] = u, v
        state["r"][:, t] = np.where(spikes, r + node.refractory_scale * theta, r)
        state["theta"][:, t] = np.where(spikes, theta + node.threshold_step, theta)
        return spikes.astype(np.float64)

    def loihi_semantic_violations(self, node) -> list[Violation]:
        """A refractory scale the integer update cannot hold (Loihi adds ``refractory_scale * theta`` in
        integers: a whole number from 0 to 2^8 - 1)."""
        scale = float(node.refractory_scale)
        if scale == int(scale) and 0 <= scale < 256:
            return []
        return [Violation(node.name, "refractory_scale", "a whole number in [0, 255]", repr(node.refractory_scale),
                          "the lowered update adds refractory_scale * theta in integers")]

    def loihi_decays(self, node) -> tuple[int, int]:
        """(du, dv) as for the CUBA LIF (``QuantizationError`` where none represents them)."""
        return CUBA_LIF.loihi_decays(node)

    def loihi_thresholds(self, node, size: int, drive: np.ndarray, cd_eff: float) -> np.ndarray:
        """The base threshold of every neuron (theta starts there)."""
        return np.full(size, float(node.threshold))

    def loihi_vth_limit(self, node, thr, drive, cd_eff: float) -> float:
        """Largest vth keeping v (never reset: at most (drive / cd + |bias|) / vd) inside Loihi's 24-bit
        voltage and theta, r (theta rises by the step per spike, at most step / dth above the base; r at most
        2 theta_max / dr) inside ATRLIF's int32 registers, with half of each range spare."""
        floor = 1.0 / lq.DECAY_UNITY
        bias = float(np.max(np.abs(np.asarray(node.bias, dtype=np.float64)), initial=0.0))
        v_max = (float(np.max(drive, initial=0.0)) / cd_eff + bias) / max(node.voltage_decay, floor)
        theta_max = node.threshold + node.threshold_step / max(node.threshold_decay, floor)
        r_max = 2.0 * theta_max / max(node.refractory_decay, floor)
        base = float(np.min(thr))
        limits = [0.5 * base * (2 ** 31) / (64 * (theta_max + r_max))]
        if v_max > 0:
            limits.append(0.5 * base * lq.V_LIMIT / (64 * v_max))
        return min(limits)

    def loihi_node(self, node, inputs: tuple[str, ...], du: int, dv: int, vth: int, bias_mant, bias_exp,
                   v_init) -> LoihiAdaptiveLIF:
        """The ATRLIF group: decays of theta and r as 12-bit dv-style words, the threshold step in vth's
        scale (``QuantizationError`` where a nonzero step would round to 0)."""
        step = int(round(node.threshold_step * vth / node.threshold))
        if node.threshold_step > 0 and step == 0:
            raise QuantizationError(node.name, "threshold_step", f">= {node.threshold / (2 * vth):.3g} "
                                    f"(half a threshold unit at vth {vth})", node.threshold_step,
                                    "the step rounds to 0")
        if np.any(np.asarray(v_init)):
            raise QuantizationError(node.name, "bias", "0 for an adaptive LIF behind a pipeline (ATRLIF "
                                    "starts from v = 0)", "a bias", "its warm-up start voltage")
        return LoihiAdaptiveLIF(node.name, inputs, tuple(node.shape), du=du, dv=dv,
                                dth=_dv_word(node, "threshold_decay"), dr=_dv_word(node, "refractory_decay"),
                                vth=vth, vth_step=step, bias_mant=bias_mant, bias_exp=bias_exp,
                                reset=ResetKind(node.reset), refractory_scale=int(node.refractory_scale),
                                comparison=Comparison(node.comparison))


def _dv_word(node, field: str) -> int:
    decay = float(getattr(node, field))
    word = lq.decay_to_dv(decay)
    if word > lq.DECAY_UNITY - 1:
        raise QuantizationError(node.name, field, f"<= {(lq.DECAY_UNITY - 1) / lq.DECAY_UNITY}", decay, "12-bit decay")
    return word


class LoihiAdaptiveLIFModel(NeuronModel):
    """Lava ``ATRLIF`` fixed_pt, bit-accurate, for ATRLIF's form; snnc's ``SnncATRLIF`` for Norse's LSNN
    form (equations on ``LoihiAdaptiveLIF``)."""

    node_type = LoihiAdaptiveLIF
    traits = Traits(output="spikes", current_memory=True, arithmetic="loihi", resets=(ResetKind.NONE, ResetKind.ZERO),
                    comparisons=(Comparison.GE, Comparison.GT))
    state_variables = ("u", "v")
    lava_state_ports = {"u": "i", "v": "v"}

    def comparison_of(self, node) -> Comparison:
        """Fires on ``v - r >= theta`` in integers (ATRLIF's test) or ``>`` (Norse's LSNN form)."""
        return Comparison(node.comparison)

    def limit_violations(self, node, spec) -> list[Violation]:
        """Every lowered word (decays, threshold, threshold step, bias) inside Loihi's integer formats."""
        decay_max = (1 << spec.decay_bits) - 1
        mant_lo, mant_hi = -(1 << (spec.bias_mant_bits - 1)), (1 << (spec.bias_mant_bits - 1)) - 1
        checks = [("du", node.du, 0, decay_max), ("dv", node.dv, 0, decay_max), ("dth", node.dth, 0, decay_max),
                  ("dr", node.dr, 0, decay_max), ("vth", node.vth, 0, (1 << spec.vth_bits) - 1),
                  ("vth_step", node.vth_step, 0, (1 << spec.vth_bits) - 1),
                  ("bias_mant", node.bias_mant, mant_lo, mant_hi), ("bias_exp", node.bias_exp, *spec.bias_exp_range),
                  ("refractory_scale", node.refractory_scale, 0, 255)]
        return [v for name, value, lo, hi in checks for v in range_violation(node.name, name, value, lo, hi)]

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock ATRLIF (fixed_pt) in ATRLIF's form, else snnc's ``SnncATRLIF`` (not stock: on a Loihi 2
        chip it needs a microcode neuron); decays as fractions of 4096 (ATRLIF's +1 offset on the current's)."""
        unity = float(lq.DECAY_UNITY)
        parameters = dict(
            delta_i=node.du / unity, delta_v=node.dv / unity, delta_theta=node.dth / unity, delta_r=node.dr / unity,
            theta_0=int(node.vth), theta_step=int(node.vth_step), bias_mant=np.asarray(node.bias_mant),
            bias_exp=np.asarray(node.bias_exp))
        form = {"reset": str(node.reset), "refractory_scale": int(node.refractory_scale),
                "comparison": str(node.comparison)}
        if all(form[key] == ATRLIF_FORM[key] for key in form):
            return LavaProcess("lava.proc.atrlif.process", "ATRLIF", parameters)
        summary = ", ".join(f"{key} {value}" for key, value in form.items())
        return LavaProcess(SNNC_ATRLIF_MODULE, "SnncATRLIF", dict(parameters, **form), stock=False,
                           summary=f"SnncATRLIF ({summary})")

    def emulator_state(self, node, batch: int) -> "AdaptiveLIFState":
        """The numpy step engine's state of one group."""
        return AdaptiveLIFState(node, batch)

    def scan(self, node, total: np.ndarray, record_state: bool):
        """(spikes, {u, v}) over all steps from the summed activation ``total`` (batch, steps, size)."""
        batch, steps = total.shape[:2]
        state = AdaptiveLIFState(node, batch)
        fired = np.zeros(total.shape, np.uint8)
        u, v = np.zeros(total.shape, np.int64), np.zeros(total.shape, np.int64)
        for t in range(steps):
            fired[:, t] = state.update(total[:, t])
            u[:, t], v[:, t] = state.u, state.v
        shape = (batch, steps, *node.shape)
        return fired.reshape(shape), ({"u": u.reshape(shape), "v": v.reshape(shape)} if record_state else {})


class AdaptiveLIFState:
    """u, v, theta, r of one ATRLIF group per batch row (Lava's Var values)."""

    def __init__(self, node: LoihiAdaptiveLIF, batch: int):
        size = int(np.prod(node.shape))
        self.node = node
        self.theta_0 = int(node.vth) << 6
        self.u, self.v, self.r = (np.zeros((batch, size), np.int64) for _ in range(3))
        self.theta = np.full((batch, size), self.theta_0, np.int64)
        self.bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))

    def step(self, activations: dict) -> np.ndarray:
        """One update from the activations of this step (by synapse name); returns the spikes."""
        total = 0
        for src in self.node.inputs:
            total = lq.wrap32(total + activations[src])
        return self.update(total)

    def update(self, total) -> np.ndarray:
        """One ATRLIF ``run_spk`` from the summed activation ``total`` (with the node's test, refractory
        scale and reset: ATRLIF's ">=", 2 and none, or Norse's LSNN form)."""
        node = self.node
        self.u = lq.lif_current(self.u, total, node.du)
        self.v = lq.lif_voltage(self.v, self.u, node.dv, self.bias)
        self.theta = _decayed(self.theta - self.theta_0, lq.DECAY_UNITY - node.dth) + self.theta_0
        self.r = _decayed(self.r, lq.DECAY_UNITY - node.dr)
        excess = self.v - self.r
        fired = excess > self.theta if node.comparison == Comparison.GT else excess >= self.theta
        self.r = np.where(fired, self.r + int(node.refractory_scale) * self.theta, self.r)
        self.theta = np.where(fired, self.theta + (int(node.vth_step) << 6), self.theta)
        if node.reset == ResetKind.ZERO:
            self.v = np.where(fired, 0, self.v)
        return fired


def _decayed(x: np.ndarray, factor: int) -> np.ndarray:
    """rtz(x * factor, 12) (Lava's sign(x) * (|x * factor| >> 12))."""
    return shift_round_toward_zero(np.asarray(x, np.int64) * int(factor), lq.DECAY_BITS)


ADAPTIVE_LIF = register(AdaptiveLIFModel())
LOIHI_ADAPTIVE_LIF = register(LoihiAdaptiveLIFModel())
