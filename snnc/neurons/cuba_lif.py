"""The current-based LIF family: float ``CubaLIF`` and ``LI`` readout, lowered Loihi ``LoihiLIF`` and
sPyNNaker ``SpinnakerPopulation`` (IF_curr_exp).

Float semantics (reference; I[t] is the sum of the input currents)::

    u[t] = (1 - current_decay) * u[t-1] + I[t]
    v[t] = (1 - voltage_decay) * v[t-1] + u[t] + bias - R[t]
    s[t] = v[t] > threshold          (">=" when comparison == "ge")

resets ``zero`` (v := 0 where s[t]), ``zero_next`` (v := 0 where s[t-1]), ``subtract``
(R[t] = threshold * s[t-1]) and ``none``; ``LI`` is the same u/v update without threshold or reset and
outputs v. The lowered forms and their integer equations are documented on their node classes in
``snnc.ir.nodes``; the arithmetic itself is ``snnc.arith.loihi`` / ``snnc.arith.spinnaker``.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.arith import spinnaker as sq
from snnc.errors import QuantizationError, Violation
from snnc.ir.nodes import LI, Comparison, CubaLIF, LoihiLIF, ResetKind, SpinnakerPopulation
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register

DECAY_FIELDS = ("current_decay", "voltage_decay")
# The reset kinds sPyNNaker's IF_curr_exp runs exactly, as refractory ticks after the reset to v_reset = 0
# (neuron_model_lif_impl.h: has_spiked sets V = V_reset, refract_timer = T_refract; state_update holds V
# while refract_timer > 0, counting it down; T_refract = ceil(tau_refrac / dt)). 'subtract' and 'none'
# keep v's value at a spike, which no sPyNNaker 7.4.1 neuron model does.
SPINNAKER_REFRACTORY_TICKS = {ResetKind.ZERO: 0, ResetKind.ZERO_NEXT: 1}
# snnc's own Lava process for the LIF variants Lava 0.10 lacks (named, never imported, here: the Lava
# backend imports it).
SNNC_LIF_MODULE = "snnc.backends.lava_loihi2.processes.lif"


class _FloatLIF(NeuronModel):
    """Shared float u/v update of CubaLIF and LI."""

    state_variables = ("u", "v")
    decay_fields = DECAY_FIELDS
    per_neuron_decays = True     # LoihiLIF holds du/dv per neuron (SnncLIF runs them)

    def membrane_decays(self, node) -> tuple[float, float]:
        """The group's mean (current_decay, voltage_decay): SBC/OBC weigh errors through this membrane."""
        return float(np.mean(node.current_decay)), float(np.mean(node.voltage_decay))

    def membrane(self, node, t: int, current, state):
        """u[t] and v[t] before threshold and reset (u is stored in ``state``); a step where the group
        starts afresh (t = 0 or a periodic reset) starts from u = v = 0."""
        fresh = t == 0 or _resets_afresh(node, t)
        u_prev = 0.0 if fresh else state["u"][:, t - 1]
        v_prev = 0.0 if fresh else state["v"][:, t - 1]
        u = (1.0 - np.asarray(node.current_decay)) * u_prev + current
        state["u"][:, t] = u
        return (1.0 - np.asarray(node.voltage_decay)) * v_prev + u + np.asarray(node.bias)

    def loihi_decays(self, node):
        """(du, dv): the 12-bit Loihi decays of the group, each an int where every neuron quantizes to one
        value, else an int64 array per neuron; ``QuantizationError`` where a decay has no representation."""
        du = lq.decay_to_du(_per_neuron_or_scalar(node.current_decay, node.shape))
        if np.min(du) < 0:
            raise QuantizationError(node.name, "current_decay", f">= {1 / lq.DECAY_UNITY} (Loihi du + 1)",
                                    float(np.min(node.current_decay)), "a current that never decays is not "
                                    "representable")
        dv = lq.decay_to_dv(_per_neuron_or_scalar(node.voltage_decay, node.shape))
        if np.max(dv) > lq.DECAY_UNITY - 1:
            raise QuantizationError(node.name, "voltage_decay", f"<= {(lq.DECAY_UNITY - 1) / lq.DECAY_UNITY}",
                                    float(np.max(node.voltage_decay)), "12-bit dv")
        return _scalar_if_uniform(du), _scalar_if_uniform(dv)

    def loihi_node(self, node, inputs: tuple[str, ...], du: int, dv: int, vth: int, bias_mant, bias_exp,
                   v_init) -> LoihiLIF:
        """The lowered Loihi neuron group of ``node`` with the chosen integer formats."""
        return LoihiLIF(node.name, inputs, tuple(node.shape), du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                        bias_exp=bias_exp, spiking=self.traits.output == "spikes", v_init=v_init,
                        reset=ResetKind(self.reset_of(node) or ResetKind.ZERO),
                        comparison=Comparison(self.comparison_of(node) or Comparison.GT))


def _resets_afresh(node, t: int) -> bool:
    """Whether a float group's periodic reset (``CubaLIF.reset_interval``) clears its state at step t."""
    return bool(getattr(node, "reset_interval", 0)) and node.resets_afresh(t)


class CubaLIFModel(_FloatLIF):
    """Spiking CUBA LIF (snnTorch Leaky/Synaptic, Lava LIF, NIR CubaLIF)."""

    node_type = CubaLIF
    traits = Traits(output="spikes", current_memory=True, arithmetic="float", resets=tuple(ResetKind),
                    comparisons=tuple(Comparison), lowers_to=("loihi", "spinnaker"))
    loihi_vth_cap_fraction = 1.0     # vth may use Loihi's whole threshold range
    qat_trainable = True
    spinnaker_cell = "IF_curr_exp"

    def reset_of(self, node) -> ResetKind:
        """The node's ``reset`` field."""
        return node.reset

    def comparison_of(self, node) -> Comparison:
        """The node's ``comparison`` field."""
        return node.comparison

    def float_step(self, node, t, current, out, state):
        """Spikes (0.0/1.0) of step ``t``: the u/v update, the reset of the node's kind (subtract and zero_next act
        on this update, zero after the test), the threshold test; v stored in ``state``."""
        v = self.membrane(node, t, current, state)
        fired_before = out[:, t - 1] if t and not _resets_afresh(node, t) else np.zeros_like(v)
        if node.reset == ResetKind.SUBTRACT:
            v = v - np.asarray(node.threshold) * fired_before
        elif node.reset == ResetKind.ZERO_NEXT:
            v = np.where(fired_before > 0, 0.0, v)
        threshold = np.asarray(node.threshold)
        spikes = (v >= threshold) if node.comparison == Comparison.GE else (v > threshold)
        if node.reset == ResetKind.ZERO:
            v = np.where(spikes, 0.0, v)
        state["v"][:, t] = v
        return spikes.astype(np.float64)

    def loihi_thresholds(self, node, size: int, drive: np.ndarray, cd_eff: float) -> np.ndarray:
        """Per-neuron float thresholds the integer vth represents."""
        return per_neuron_floats(node.threshold, node.shape).copy()

    def spinnaker_node(self, node, inputs: tuple[str, ...], thresholds: np.ndarray, scale: float,
                       **words) -> SpinnakerPopulation:
        """The IF_curr_exp population of ``node``: v_thresh words fire on exactly the voltage words whose
        scaled value passes the float comparison; ``words`` are the other s16.15 parameters. The reset
        is v_reset = 0 with ``SPINNAKER_REFRACTORY_TICKS[reset]`` refractory ticks (tau_refrac = ticks x
        the 1 ms tick): 0 for ``zero``, 1 for ``zero_next`` (V held at 0 for the tick after the spike,
        its input kept in isyn only, as the float model keeps it in u)."""
        v_thresh = sq.encode_threshold_s1615(scale * thresholds, node.comparison)
        ticks = SPINNAKER_REFRACTORY_TICKS[ResetKind(node.reset)]
        return SpinnakerPopulation(node.name, inputs, tuple(node.shape), v_thresh=_scalar_if_uniform(v_thresh),
                                   tau_refrac=ticks * sq.ONE, **words)


class LIModel(_FloatLIF):
    """Leaky-integrator readout: never spikes, outputs its membrane v."""

    node_type = LI
    traits = Traits(output="membrane", current_memory=True, arithmetic="float", lowers_to=("loihi",))
    loihi_vth_cap_fraction = None    # the lowering keeps a margin below Loihi's threshold range
    qat_trainable = True

    def float_step(self, node, t, current, out, state):
        """The membrane v of step ``t`` (no threshold, no reset), also stored in ``state``."""
        v = self.membrane(node, t, current, state)
        state["v"][:, t] = v
        return v

    def loihi_thresholds(self, node, size: int, drive: np.ndarray, cd_eff: float) -> np.ndarray:
        """No threshold: the steady-state |v| bound, so v stays below vth << 6 (no reset), the same for
        every neuron so that integer membranes compare across neurons (argmax readouts)."""
        vd = np.maximum(per_neuron_floats(node.voltage_decay, node.shape), 1.0 / lq.DECAY_UNITY)
        bound = (drive / cd_eff + np.abs(per_neuron_floats(node.bias, node.shape))) / vd
        return np.full(size, max(float(np.max(bound)), 1e-12))


class LoihiLIFModel(NeuronModel):
    """Lava ``LIF`` fixed_pt, bit-accurate, for zero reset and ">"; snnc's ``SnncLIF`` Lava process for
    the other reset kinds and ">=" (equations on ``snnc.ir.nodes.LoihiLIF``)."""

    node_type = LoihiLIF
    traits = Traits(output="spikes", current_memory=True, arithmetic="loihi", resets=tuple(ResetKind),
                    comparisons=tuple(Comparison))
    state_variables = ("u", "v")
    fused_dense_scan = loihi_kernels.AVAILABLE
    recalibrates_threshold = True

    def limit_violations(self, node, spec) -> list[Violation]:
        """du, dv, vth, bias_mant and bias_exp outside the bit widths of ``spec`` (one violation per field)."""
        if is_netx_integrator(node):
            if getattr(spec, "lava_sim_integrator", False):
                return []
            return [Violation(node.name, "du/dv/vth", f"decays in [0, {(1 << spec.decay_bits) - 1}], vth < "
                              f"2^{spec.vth_bits} (netx's integrator for a layer without neuron runs in Lava's "
                              "simulation and snnc's emulator target only)", f"{node.du}/{node.dv}/{node.vth}")]
        found = self._range_violations(node, spec)
        if is_slayer_affine(node):
            found = [v for v in found if v.field != "vth"]
            if not getattr(spec, "lava_sim_integrator", False):
                found.append(Violation(node.name, "vth", f"< 2^{spec.vth_bits} (slayer's Affine export sets "
                                       "vThMant 2^18 - 1 so that v never reaches it: it runs in Lava's simulation "
                                       "and snnc's emulator target only)", str(int(node.vth))))
        return found

    @staticmethod
    def _range_violations(node, spec) -> list[Violation]:
        decay_max = (1 << spec.decay_bits) - 1
        mant_lo, mant_hi = -(1 << (spec.bias_mant_bits - 1)), (1 << (spec.bias_mant_bits - 1)) - 1
        checks = [("du", node.du, 0, decay_max), ("dv", node.dv, 0, decay_max),
                  ("vth", node.vth, 0, (1 << spec.vth_bits) - 1),
                  ("bias_mant", node.bias_mant, mant_lo, mant_hi),
                  ("bias_exp", node.bias_exp, *spec.bias_exp_range)]
        return [v for name, value, lo, hi in checks for v in range_violation(node.name, name, value, lo, hi)]

    def reset_of(self, node) -> ResetKind:
        """The node's reset kind as a ``ResetKind``."""
        return ResetKind(node.reset)

    def comparison_of(self, node) -> Comparison:
        """The node's threshold test as a ``Comparison``."""
        return Comparison(node.comparison)

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock LIF for zero reset, ">" and one du/dv per group (``LIFReset`` with a periodic
        reset), else snnc's ``SnncLIF`` (not stock: on a Loihi 2 chip it needs a microcode neuron; it takes
        per-neuron du/dv arrays); per-neuron arrays are given in IR layout (the backend converts them)."""
        parameters = dict(du=_int_or_words(node.du), dv=_int_or_words(node.dv), vth=int(node.vth),
                          bias_mant=np.asarray(node.bias_mant), bias_exp=np.asarray(node.bias_exp),
                          v=np.asarray(node.v_init))
        if is_stock_lif(node) and node.reset_interval:
            return LavaProcess("lava.proc.lif.process", "LIFReset", dict(
                parameters, reset_interval=int(node.reset_interval), reset_offset=int(node.reset_phase) + 1))
        if is_stock_lif(node):
            return LavaProcess("lava.proc.lif.process", "LIF", parameters)
        summary = f"SnncLIF (reset {node.reset}, comparison {node.comparison}"
        if np.ndim(node.du) or np.ndim(node.dv):
            summary += f", per-neuron du/dv: {distinct_decay_pairs(node)} distinct pairs"
        return LavaProcess(SNNC_LIF_MODULE, "SnncLIF", dict(parameters, reset=str(node.reset),
                                                             comparison=str(node.comparison)), stock=False,
                           summary=summary + ")")

    def emulator_state(self, node, batch: int) -> "LoihiLIFState":
        """The numpy step engine's state of one group (u, v per batch row)."""
        return LoihiLIFState(node, batch)

    def scan(self, node, total: np.ndarray, record_state: bool, bias_series: np.ndarray | None = None):
        """(spikes, {u, v}) over all steps from the summed activation ``total`` (batch, steps, size),
        with the compiled scan; ``bias_series`` (batch, steps, *shape): the values of the node's
        ``bias_input``. A bias input or a periodic reset runs step by step (``LoihiLIFState``)."""
        batch, steps = total.shape[:2]
        if not plain_lif(node):
            return _stepped_scan(node, total, record_state, bias_series)
        bias, v_init, fired, u, v = _scan_buffers(node, batch, steps, record_state)
        du, dv = _scan_decays(node)
        loihi_kernels.lif_scan(total, du, dv, bias, int(node.vth), v_init, fired, u, v,
                               record_state, *_scan_kinds(node))
        return _shaped(node, fired, u, v, batch, steps, record_state)

    def scan_products(self, node, products: np.ndarray, weight_exp: int, lag: int, batch: int, steps: int,
                      record_state: bool):
        """``scan`` fused with its one dense synapse, given the synapse's exact float products."""
        if not plain_lif(node):
            total = np.zeros((batch, steps, products.shape[-1]), np.int64)
            kept = min(products.shape[1], max(steps - lag, 0))
            total[:, lag:lag + kept] = lq.wrap32(lq.shift_by_exponent(
                lq.wrap32(products[:, :kept].astype(np.int64)), weight_exp))
            return self.scan(node, total, record_state)
        bias, v_init, fired, u, v = _scan_buffers(node, batch, steps, record_state)
        du, dv = _scan_decays(node)
        loihi_kernels.lif_scan_products(products, weight_exp, lag, du, dv, bias,
                                        int(node.vth), v_init, fired, u, v, record_state, *_scan_kinds(node))
        return _shaped(node, fired, u, v, batch, steps, record_state)


class LoihiLIFState:
    """u and v of one LoihiLIF group in the numpy step engine (Lava's Monitor values)."""

    def __init__(self, node: LoihiLIF, batch: int):
        size = int(np.prod(node.shape))
        self.node = node
        self.u = np.zeros((batch, size), np.int64)
        self.v = np.zeros((batch, size), np.int64) + np.asarray(node.v_init, np.int64).reshape(-1)
        self.bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))
        self.fired = np.zeros((batch, size), bool)
        self.t = 0
        self.du = node.du if np.ndim(node.du) == 0 else per_neuron_words(node.du, size)
        self.dv = node.dv if np.ndim(node.dv) == 0 else per_neuron_words(node.dv, size)

    def step(self, activations: dict) -> np.ndarray:
        """One update from the activations of this step (by synapse name; a ``bias_input`` by its input
        name); returns the spikes."""
        node, total = self.node, 0
        for src in node.inputs:
            total = lq.wrap32(total + activations[src])
        if node.reset_interval and self.t % node.reset_interval == node.reset_phase:
            self.u, self.v = np.zeros_like(self.u), np.zeros_like(self.v)
        bias = self.bias
        if node.bias_input:
            drive = np.asarray(activations[node.bias_input], np.int64).reshape(self.u.shape[0], -1)
            bias = lq.effective_bias(np.asarray(node.bias_mant, np.int64).reshape(-1) + drive,
                                     np.asarray(node.bias_exp, np.int64).reshape(-1))
        self.u, self.v, self.fired = lq.lif_step(self.u, self.v, total, self.du, self.dv, bias, node.vth,
                                                 str(node.reset), str(node.comparison), self.fired)
        self.t += 1
        return self.fired


# (du, dv, vth) of netx's non-leaky integrator in Lava's LIF: u never decays, v = u + bias, never fires.
NETX_INTEGRATOR_VALUES = (-1, lq.DECAY_UNITY, 1 << 17)
SLAYER_AFFINE_VTH = (1 << 18) - 1   # the vThMant slayer's cuba.Affine export writes (never reached by v)


def is_netx_integrator(node: LoihiLIF) -> bool:
    """True for the neuron netx gives a .net dense layer without one."""
    if np.ndim(node.du) or np.ndim(node.dv):
        return False
    return (int(node.du), int(node.dv), int(node.vth)) == NETX_INTEGRATOR_VALUES


def is_slayer_affine(node: LoihiLIF) -> bool:
    """True for the neuron of slayer's ``cuba.Affine`` export (vThMant 2^18 - 1: ``vth << 6`` is above v's
    24-bit range, so it never spikes and its voltage is the output); like netx's integrator it runs in
    Lava's simulation and snnc's emulator target, not in Loihi 2's 17-bit threshold register."""
    return int(np.max(node.vth)) == SLAYER_AFFINE_VTH


def plain_lif(node: LoihiLIF) -> bool:
    """True where the compiled scan computes the node: no bias input, no periodic reset."""
    return not node.bias_input and not node.reset_interval


def _stepped_scan(node: LoihiLIF, total: np.ndarray, record_state: bool, bias_series):
    """``scan`` one step at a time with ``LoihiLIFState`` (bias inputs, periodic resets)."""
    batch, steps = total.shape[:2]
    state, fired = LoihiLIFState(node, batch), np.zeros((batch, steps, *node.shape), np.uint8)
    u = np.zeros((batch, steps, *node.shape), np.int64) if record_state else None
    v = np.zeros_like(u) if record_state else None
    for t in range(steps):
        step_input = {src: 0 for src in node.inputs}      # the summed activation goes in as the first
        if node.inputs:
            step_input[node.inputs[0]] = total[:, t]
        if node.bias_input:
            step_input[node.bias_input] = bias_series[:, t]
        fired[:, t] = state.step(step_input).reshape(batch, *node.shape)
        if record_state:
            u[:, t] = state.u.reshape(batch, *node.shape)
            v[:, t] = state.v.reshape(batch, *node.shape)
    return fired, ({"u": u, "v": v} if record_state else {})


class SpinnakerPopulationModel(NeuronModel):
    """sPyNNaker ``IF_curr_exp`` in s16.15 (equations on ``snnc.ir.nodes.SpinnakerPopulation``)."""

    node_type = SpinnakerPopulation
    traits = Traits(output="spikes", current_memory=True, arithmetic="spinnaker",
                    resets=tuple(SPINNAKER_REFRACTORY_TICKS), comparisons=(Comparison.GT, Comparison.GE))
    state_variables = ("isyn_exc", "isyn_inh", "v")
    pynn_cell = "IF_curr_exp"

    def reset_of(self, node) -> ResetKind | None:
        """``zero`` / ``zero_next`` from the refractory ticks the chip derives from tau_refrac (None: a
        refractory period no snnc reset kind describes)."""
        ticks = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i).t_refract
        kinds = {t: kind for kind, t in SPINNAKER_REFRACTORY_TICKS.items()}
        return kinds.get(ticks) if node.v_reset == node.v_rest else None

    def emulator_state(self, node, batch: int) -> "SpinnakerPopulationState":
        """The SpiNNaker emulator's state of one population (v, currents, refractory timer per batch row)."""
        return SpinnakerPopulationState(node, batch)


class SpinnakerPopulationState:
    """One IF_curr_exp population in the SpiNNaker emulator: v, the two synaptic currents and the
    refractory timer per batch row, in s16.15 raw bits (every operation a ``snnc.arith.spinnaker``
    function)."""

    def __init__(self, node: SpinnakerPopulation, batch: int):
        size = int(np.prod(node.shape))
        self.node = node
        self.const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
        self.v = np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (batch, size)).copy()
        self.isyn = {"excitatory": np.zeros((batch, size), np.int64), "inhibitory": np.zeros((batch, size), np.int64)}
        self.timer = np.zeros((batch, size), np.int64)
        self.threshold = np.broadcast_to(np.asarray(node.v_thresh, np.int64).reshape(-1), (size,))
        self.offset = np.broadcast_to(np.asarray(node.i_offset, np.int64).reshape(-1), (size,))
        self.v_pre = self.v
        self.isyn_recorded = dict(self.isyn)

    def add_ring(self, rings: dict) -> None:
        """Ring slot (saturated per core, packed-summed over synapse cores) -> s16.15 input ->
        isyn += floor(input * init / 2^32) (``add_input_exp``)."""
        sq.add_exp_input(self.isyn, rings, self.node.ring_buffer_shift, (self.const.init_exc, self.const.init_inh))

    def update(self) -> np.ndarray:
        """Closed-form LIF, threshold, reset, then the synaptic decay (``neuron_impl_standard.h``)."""
        node, c = self.node, self.const
        active = self.timer <= 0
        current = sq.wrap32(sq.wrap32(self.isyn["excitatory"] - self.isyn["inhibitory"]) + self.offset)
        alpha = sq.wrap32(sq.accum_multiply(current, c.r_membrane) + node.v_rest)
        updated = sq.wrap32(alpha - sq.accum_multiply(c.exp_tc, sq.wrap32(alpha - self.v)))
        self.v = np.where(active, updated, self.v)
        self.timer = np.where(active, self.timer, self.timer - 1)
        self.v_pre = self.v
        fired = self.v >= self.threshold
        self.v = np.where(fired, node.v_reset, self.v)
        self.timer = np.where(fired, c.t_refract, self.timer)
        self.isyn_recorded = dict(self.isyn)
        self.isyn["excitatory"] = sq.multiply_u032(self.isyn["excitatory"], c.decay_exc)
        self.isyn["inhibitory"] = sq.multiply_u032(self.isyn["inhibitory"], c.decay_inh)
        return fired

    def recorded(self) -> dict[str, np.ndarray]:
        """The states the emulator records this step, (batch, size) each: ``v`` after the reset, ``v_pre``
        before the threshold test, ``isyn_exc`` / ``isyn_inh`` after the input was added, before decay."""
        return {"v": self.v, "v_pre": self.v_pre, "isyn_exc": self.isyn_recorded["excitatory"],
                "isyn_inh": self.isyn_recorded["inhibitory"]}


def range_violation(node: str, field: str, value, lo: int, hi: int) -> list[Violation]:
    """A violation where some of ``value`` lies outside [lo, hi]."""
    arr = np.asarray(value)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        actual = f"{arr.min()}" if arr.size == 1 else f"values in [{arr.min()}, {arr.max()}]"
        return [Violation(node, field, f"[{lo}, {hi}]", actual)]
    return []


def is_stock_lif(node: LoihiLIF) -> bool:
    """True where Lava's own LIF computes the node (zero reset, ">" test, one du and one dv per group:
    Lava's LIF declares them as one value per process)."""
    return node.reset == ResetKind.ZERO and node.comparison == Comparison.GT and \
        np.ndim(node.du) == 0 and np.ndim(node.dv) == 0


def _int_or_words(value):
    return int(value) if np.ndim(value) == 0 else np.asarray(value, np.int64)


def _scan_decays(node: LoihiLIF) -> tuple[np.ndarray, np.ndarray]:
    """du and dv per neuron, as the compiled scan reads them."""
    size = int(np.prod(node.shape))
    return per_neuron_words(node.du, size), per_neuron_words(node.dv, size)


def _scan_kinds(node: LoihiLIF) -> tuple[int, bool]:
    """The compiled scan's reset code and ">=" flag of ``node``."""
    return loihi_kernels.RESET_CODES[str(node.reset)], node.comparison == Comparison.GE


def _scan_buffers(node: LoihiLIF, batch: int, steps: int, record_state: bool):
    """Per-neuron bias and initial v, and the output arrays of a LIF scan (u/v only when recorded)."""
    size = int(np.prod(node.shape))
    bias = np.ascontiguousarray(np.broadcast_to(
        lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,)), dtype=np.int64)
    v_init = np.ascontiguousarray(np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (size,)))
    fired = np.zeros((batch, steps, size), np.uint8)
    shape = (batch, steps, size) if record_state else (1, 1, 1)
    return bias, v_init, fired, np.zeros(shape, np.int64), np.zeros(shape, np.int64)


def _shaped(node: LoihiLIF, fired, u, v, batch: int, steps: int, record_state: bool):
    out_shape = (batch, steps, *node.shape)
    state = {"u": u.reshape(out_shape), "v": v.reshape(out_shape)} if record_state else {}
    return fired.reshape(out_shape), state


def _scalar_if_uniform(words: np.ndarray):
    words = np.asarray(words, dtype=np.int64)
    if words.ndim == 0:
        return int(words)
    flat = words.reshape(-1)
    return int(flat[0]) if flat.size and np.all(flat == flat[0]) else words


def per_neuron_floats(value, shape: tuple[int, ...]) -> np.ndarray:
    """A float parameter (scalar, flat per neuron, or broadcastable to the group's ``shape``, e.g. per
    channel (C, 1, 1)) as a flat float64 array, one value per neuron."""
    arr = np.asarray(value, dtype=np.float64)
    size = int(np.prod(shape))
    if arr.size in (1, size):
        return np.broadcast_to(arr.reshape(-1), (size,))
    return np.broadcast_to(arr, tuple(shape)).reshape(-1)


def _per_neuron_or_scalar(value, shape: tuple[int, ...]):
    """A float parameter as a scalar (one value) or a flat array with one value per neuron."""
    arr = np.asarray(value, dtype=np.float64)
    return float(arr.reshape(-1)[0]) if arr.size == 1 else per_neuron_floats(arr, shape)


def per_neuron_words(value, size: int) -> np.ndarray:
    """An int parameter of a lowered group (scalar, (1,), flat or shaped) as a flat int64 array of ``size``."""
    return np.ascontiguousarray(np.broadcast_to(np.asarray(value, np.int64).reshape(-1), (size,)))


def distinct_decay_pairs(node: LoihiLIF) -> int:
    """How many distinct (du, dv) pairs a group's neurons have (1: Lava's LIF takes them as scalars)."""
    size = int(np.prod(node.shape))
    pairs = np.stack([per_neuron_words(node.du, size), per_neuron_words(node.dv, size)])
    return int(np.unique(pairs, axis=1).shape[1])


CUBA_LIF = register(CubaLIFModel())
LI_READOUT = register(LIModel())
LOIHI_LIF = register(LoihiLIFModel())
SPINNAKER_IF_CURR_EXP = register(SpinnakerPopulationModel())
