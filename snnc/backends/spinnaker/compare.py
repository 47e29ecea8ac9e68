"""Emulator (= sPyNNaker's integer arithmetic) against NEST 3.10 on the same PyNN network.

NEST lags by ``nest_shift_steps`` ticks (1 per layer of neurons: NEST applies an arriving spike's current
from the next step, sPyNNaker in the tick it arrives; skip paths get NEST delays that make every path
agree, ``nest_extra_delays``; a one-step recurrent projection reads the emulator's spikes of its source,
``nest_replays``); ``run_nest`` already moves NEST's traces back onto the emulator's grid. What remains is
fixed point against float64, bounded per population by ``voltage_error_bound`` (mV):

    delta = 2 * ( [2^-15 (1 + 2 (1-e)/(1-d)) + |e - e_N| A + (1-e) |d - d_N| I / (1-d)] / (1 - e) + rho V )

e, d: the chip's decays (s16.15 exp_TC truncated by expk, u0.32 decay); e_N, d_N: NEST's exp(-dt/tau).
Per tick the chip floors once in exp_TC * (alpha - V) and twice in the current (add, decay): 2^-15 each,
the current's error accumulating by 1/(1-d) and reaching V through (1-e); the decay constants differ by
|e - e_N| on |alpha - V_prev| <= A and by |d - d_N| on |isyn| <= I; V forgets all of it at rate e, hence
1/(1-e). rho is the relative gap between the two PSP amplitudes (1-e)/(e-d) that remains after the weight
factor (it uses NEST's e, d). A, I and V are the largest magnitudes the emulator saw (A read back as |V_pre - V_prev| / (1 - e)). The factor 2 covers
the products of these first-order terms. Where V comes within delta of the threshold the two simulators
may disagree on a spike; every disagreement must be such a near-threshold step, and after it the two
runs of that neuron (and everything downstream in that sample) are no longer comparable.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnc.arith import spinnaker as sq
from snnc.backends.spinnaker.network import nest_replays, nest_shift_steps
from snnc.ir.graph import Graph
from snnc.errors import UnsupportedError
from snnc.ir.nodes import SpinnakerPopulation
from snnc.neurons import is_neuron_in
from snnc.simulators.traces import Traces


@dataclass
class PopulationAgreement:
    """Emulator vs NEST for one population: NEST's lag in ticks, the identical fraction of spike slots, spike counts,
    the largest |v| difference against its derived bound (mV), near-threshold disagreements and the ones no bound
    explains."""

    name: str
    shift_steps: int
    identical_fraction: float
    spikes_emulator: int
    spikes_nest: int
    max_v_difference_mv: float
    bound_mv: float
    near_threshold_mismatches: int = 0
    unexplained: list[str] = field(default_factory=list)
    replayed: tuple[str, ...] = ()     # projections into it that NEST read from the emulator's spikes

    @property
    def ok(self) -> bool:
        """Every disagreement explained and the voltage difference within its bound."""
        return not self.unexplained and self.max_v_difference_mv <= self.bound_mv

    def line(self) -> str:
        """One line of ``snnc verify`` for the population (and up to five unexplained disagreements)."""
        status = "ok" if self.ok else "MISMATCH"
        text = (f"emulator vs NEST '{self.name}' (NEST {self.shift_steps} tick(s) later, 1 per layer): "
                f"{self.identical_fraction:.4%} identical spike slots ({self.spikes_emulator} vs "
                f"{self.spikes_nest} spikes), max |v| difference {self.max_v_difference_mv:.3g} mV "
                f"<= bound {self.bound_mv:.3g} mV, {self.near_threshold_mismatches} near-threshold "
                f"disagreement(s){self._replay_note()} [{status}]")
        return text + "".join(f"\n    {u}" for u in self.unexplained[:5])


    def _replay_note(self) -> str:
        if not self.replayed:
            return ""
        names = ", ".join(f"'{name}'" for name in self.replayed)
        return f", recurrent input {names} replayed from the emulator's spikes"


def voltage_error_bound(node: SpinnakerPopulation, states: dict) -> float:
    """delta (mV) of the module docstring for one population, from the emulator's recorded states (with
    per-neuron taus: the largest of the neurons' bounds, each taken with the population's largest current,
    voltage and drive)."""
    c = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
    e, d = np.asarray(c.exp_tc / sq.ONE, np.float64), np.asarray(c.decay_exc / 2.0 ** 32, np.float64)
    e_nest = _exp(-1.0 / sq.decode_s1615(np.asarray(node.tau_m, np.int64)))
    d_nest = _exp(-1.0 / sq.decode_s1615(np.asarray(node.tau_syn_e, np.int64)))
    current = max(float(np.max(np.abs(states["isyn_exc"]), initial=0)),
                  float(np.max(np.abs(states["isyn_inh"]), initial=0))) / sq.ONE
    voltage = float(np.max(np.abs(states["v_pre"]), initial=0)) / sq.ONE
    drive = _largest_drive(states, 1 - e)
    lsb = 2.0 ** -15
    per_tick = (lsb * (1 + 2 * (1 - e) / (1 - d)) + abs(e - e_nest) * drive
                + (1 - e) * abs(d - d_nest) * current / (1 - d))
    amplitude, amplitude_nest = (1 - e) / (e - d), (1 - e_nest) / (e_nest - d_nest)
    rho = abs(amplitude - amplitude_nest) / amplitude_nest
    return float(np.max(2.0 * (per_tick / (1 - e) + rho * voltage)))


def _exp(x) -> np.ndarray:
    """e^x element by element with Python's math.exp."""
    return np.vectorize(math.exp, otypes=[np.float64])(np.asarray(x, np.float64))


def _largest_drive(states: dict, leak) -> float:
    """max |alpha - V_prev| (mV): each tick moves V by (1 - e)(alpha - V_prev), so it is read back from the
    recorded V before the threshold test and V after the previous tick's reset (``leak`` = 1 - e, one per
    population or per neuron)."""
    v_pre = np.asarray(states["v_pre"], dtype=np.float64)
    v_prev = np.concatenate([np.zeros_like(v_pre[:, :1]), np.asarray(states["v"][:, :-1], np.float64)], axis=1)
    if np.ndim(leak) == 0:
        return float(np.max(np.abs(v_pre - v_prev), initial=0.0)) / sq.ONE / leak + 2.0 ** -15 / leak
    per_neuron = np.max(np.abs(v_pre - v_prev).reshape(-1, leak.size), axis=0, initial=0.0)
    return float(np.max(per_neuron / sq.ONE / leak + 2.0 ** -15 / leak))


def compare_with_nest(graph: Graph, emulated: Traces, nest: Traces) -> list[PopulationAgreement]:
    """Per population in evaluation order; ``emulated`` must carry the emulator's states. IF_curr_exp only:
    other cells are refused by name (their bound is not derived here)."""
    for node in (n for n in graph.nodes if is_neuron_in(n, "spinnaker") and not isinstance(n, SpinnakerPopulation)):
        raise UnsupportedError(node.name, "type", "IF_curr_exp populations for the tick-for-tick NEST comparison",
                               type(node).__name__, "IZK_curr_exp's RK2 midpoint step and NEST's Euler step differ "
                               "by more than rounding; each chip step is checked against NEST's from the same state "
                               "in tests/test_spinnaker_izhikevich.py")
    shifts = nest_shift_steps(graph)
    early = nest_replays(graph, shifts)
    batch = next(iter(emulated.spikes.values())).shape[0]
    upstream_ok = {name: np.ones(batch, bool) for name in emulated.spikes}
    results = []
    for node in sorted((n for n in graph.nodes if is_neuron_in(n, "spinnaker")), key=lambda n: shifts[n.name]):
        sources_ok = np.ones(batch, bool)
        for name in node.inputs:      # a recurrent source not compared yet counts as agreeing
            sources_ok &= upstream_ok.get(_population_of(graph, graph.node(name).source), True)
        result, sample_ok = _compare_population(node, emulated, nest, sources_ok, shifts[node.name])
        result.replayed = tuple(name for name in node.inputs if name in early)
        upstream_ok[node.name] = sample_ok
        results.append(result)
    return results


def _population_of(graph: Graph, name: str) -> str:
    return graph.producer(name).name


def _compare_population(node, emulated: Traces, nest: Traces, sources_ok, shift):
    a = emulated.spikes[node.name].reshape(*emulated.spikes[node.name].shape[:2], -1)
    b = nest.spikes[node.name].reshape(a.shape)
    states = {k: v.reshape(a.shape) for k, v in emulated.states[node.name].items()}
    bound = voltage_error_bound(node, states)
    threshold = np.broadcast_to(np.asarray(node.v_thresh).reshape(-1), (a.shape[2],)) / sq.ONE
    differs = a != b
    neuron_ok = ~differs.any(axis=1) & sources_ok[:, None]
    v_emu = sq.decode_s1615(states["v"])
    v_nest = nest.states[node.name]["v"].reshape(a.shape)
    gap = np.abs(v_emu - v_nest)[np.broadcast_to(neuron_ok[:, None, :], a.shape)]
    result = PopulationAgreement(node.name, shift, float(np.mean(~differs)), int(a.sum()), int(b.sum()),
                                 float(gap.max(initial=0.0)), bound)
    for sample, neuron in zip(*np.nonzero(differs.any(axis=1) & sources_ok[:, None])):
        step = int(np.argmax(differs[sample, :, neuron]))
        margin = abs(sq.decode_s1615(states["v_pre"][sample, step, neuron]).item() - threshold[neuron])
        if margin <= bound:
            result.near_threshold_mismatches += 1
        else:
            result.unexplained.append(f"sample {sample} neuron {neuron} step {step}: emulator "
                                      f"{int(a[sample, step, neuron])} NEST {int(b[sample, step, neuron])}, v "
                                      f"{margin:.4g} mV from threshold (bound {bound:.3g} mV)")
    return result, sources_ok & ~differs.any(axis=(1, 2))
