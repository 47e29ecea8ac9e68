"""Float ``Izhikevich`` groups -> sPyNNaker IZK_curr_exp words, with a per-layer report.

The Izhikevich equation has fixed constants (0.04, 5, 140, threshold 30 mV), so unlike IF_curr_exp there
is no voltage scale: v, u, a, b, c, d and the bias keep their units and become s16.15 words (round half to
even). The float model's current ``i = (1 - current_decay) i + I`` is the chip's exponential synapse
``isyn = decay * isyn + init * input``: tau_syn is chosen so that the chip's decay is nearest
``1 - current_decay`` (``current_decay = 1``: tau_syn = 0.09375 ms, decay exactly 0) and a weight w
becomes ``w / init`` nA, a 16-bit word relative to the ring-buffer shift (``sq.weight_words``).

What differs from the float model, reported and never hidden: the chip integrates with an RK2 midpoint
step (and a 1.85 ms step after a spike) where the float model takes a forward Euler step, it multiplies
v by 0.040008544921875 instead of 0.04, and it fires on ``v >= 30`` (a float '>' differs only where v is
exactly 30 mV). Float and chip therefore agree within the integrator's difference, not spike for spike;
the emulator is bit-exact with the chip. The population starts at (v_init, u_init) at tick 0; the
pipeline-fill ticks before its first input run input-free from there (no change at a rest point, e.g.
the defaults v = -70, u = -14 with b = 0.2).
"""
from __future__ import annotations

import numpy as np

from snnc.arith import spinnaker as sq
from snnc.arith.spinnaker_izhikevich import izhikevich_tick
from snnc.errors import QuantizationError
from snnc.ir.nodes import Comparison, SpinnakerIzhikevich
from snnc.lowering.spinnaker_lowering import (
    RANGE_LIMIT, SUMMED_WEIGHT_LIMIT, PopulationReport, _dense_weight, _max_summed, _projections, choose_tau_word,
)

INTEGRATOR_NOTE = ("IZK_curr_exp integrates with an RK2 midpoint step (1.85 ms after a spike) and 0.040008544921875 "
                   "for 0.04, the float model with forward Euler: float and chip agree within the integrator's "
                   "difference, not spike for spike")


def lower_izhikevich(neuron, synapses: dict, delays: dict[str, int], source_shapes: dict):
    """Quantize one float Izhikevich group and its input synapses; returns (nodes, PopulationReport)."""
    size = int(np.prod(neuron.shape))
    tau_s = choose_tau_word(neuron.name, "current_decay", 1.0 - float(np.mean(neuron.current_decay)), sq.expulr,
                            2.0 ** 32)
    decay, init = sq.synapse_constants(tau_s)
    gain = init / 2.0 ** 32
    dense = {name: _dense_weight(syn, source_shapes[syn.source], size) for name, syn in synapses.items()}
    weights_na = {name: w / gain for name, w in dense.items()}
    summed = _max_summed(weights_na)
    _check_ranges(neuron.name, summed, gain, decay)
    shifts = tuple(sq.ring_buffer_shift(m) for m in summed)
    report = PopulationReport(neuron.name, 1.0, 0.0, tau_s / sq.ONE, shifts, summed)
    report.current_decay_error = float(decay / 2.0 ** 32 - (1.0 - float(np.mean(neuron.current_decay))))
    report.warnings.append(INTEGRATOR_NOTE)
    if neuron.comparison == Comparison.GT:
        report.warnings.append("IZK_curr_exp fires on v >= 30 mV; the model's '>' differs only where v is exactly 30 mV")
    nodes = []
    for name, w in weights_na.items():
        nodes += _projections(name, synapses[name].source, w, shifts, delays[name], report, dense[name], 1.0, gain)
    words = {k: _scalar_if_uniform(sq.encode_s1615(getattr(neuron, k)), size)
             for k in ("a", "b", "c", "d", "v_init", "u_init")}
    offset = _scalar_if_uniform(sq.encode_s1615(neuron.bias), size)
    report.bias_max_abs_error = float(np.max(np.abs(sq.decode_s1615(offset) - np.asarray(neuron.bias))))
    population = SpinnakerIzhikevich(neuron.name, tuple(n.name for n in nodes), tuple(neuron.shape),
                                     tau_syn_e=tau_s, tau_syn_i=tau_s, i_offset=offset, ring_buffer_shift=shifts,
                                     max_summed_weight=summed, **words)
    if not _at_rest(population):
        report.warnings.append(f"'{neuron.name}' (v_init, u_init) is not a rest point of its input-free tick: "
                               "the pipeline-fill ticks before its first input move it")
    return nodes + [population], report


def _check_ranges(name: str, summed: tuple[float, float], gain: float, decay: int) -> None:
    """Summed weights must give a ring-buffer shift below 15 and the steady current must stay in s16.15."""
    for receptor, total in zip(("excitatory", "inhibitory"), summed):
        if total > SUMMED_WEIGHT_LIMIT:
            raise QuantizationError(name, f"summed weight[{receptor}]", f"<= {SUMMED_WEIGHT_LIMIT:g} nA",
                                    f"{total:g}", "IZK_curr_exp's 16-bit ring buffer cannot hold it")
        current = total * gain / (1.0 - decay / 2.0 ** 32)
        if current > RANGE_LIMIT:
            raise QuantizationError(name, f"synaptic current[{receptor}]", f"<= {RANGE_LIMIT:g} mV/ms",
                                    f"{current:g}", "the s16.15 current would overflow")


def _at_rest(population: SpinnakerIzhikevich) -> bool:
    """True where one input-free tick leaves (v, u) unchanged for every neuron."""
    size = int(np.prod(population.shape))

    def words(value):
        return np.broadcast_to(np.asarray(value, np.int64).reshape(-1), (size,))
    v, u = words(population.v_init), words(population.u_init)
    v1, u1, _, _, spikes = izhikevich_tick(sq.ONE, v, u, words(population.a), words(population.b),
                                           words(population.c), words(population.d), words(population.i_offset))
    return bool(np.all(v1 == v) and np.all(u1 == u) and not np.any(spikes))


def _scalar_if_uniform(words: np.ndarray, size: int):
    words = np.broadcast_to(np.asarray(words, dtype=np.int64).reshape(-1), (size,))
    return int(words[0]) if np.all(words == words[0]) else words.copy()
