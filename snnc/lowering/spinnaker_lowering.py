"""Float neuron groups -> sPyNNaker IF_curr_exp words, with a per-layer error report.

Mapping (R = tau_m / c_m, e = exp_TC, d = synaptic decay, init = input scale, all as the chip computes
them from the emitted words). With v_rest = 0 the chip's update is ``V = e V + (1 - e) R (isyn + I_offset)``
and ``isyn = d isyn + init * input``, so the float CUBA LIF (``v = (1-vd) v + u + b``,
``u = (1-cd) u + I``) is the same linear system with

    e = 1 - voltage_decay,  d = 1 - current_decay,  V = S v  (mV),
    input (nA) = S * I / ((1 - e) R init),  I_offset (nA) = S * b / ((1 - e) R),  V_thresh = S * threshold

for one voltage scale S (mV per float unit) per population. c_m = tau_m makes R exactly 1.0. Reset to 0
maps to v_reset = v_rest = 0, no refractory period (tau_refrac = 0); reset at the next step (zero_next) to
one refractory tick (tau_refrac = 1 ms: V held at 0 for the tick after the spike, that tick's input kept in
isyn as the float model keeps it in u). The chip's ``V >= V_thresh`` on s16.15 words gets V_thresh = ceil(S threshold 2^15) for 'ge' and floor(S threshold 2^15) + 1 for 'gt': the
smallest word from which on every voltage word passes the float test. A synapse without current memory
(current_decay = 1) uses tau_syn = 0.09375 ms: dt / tau_syn = 10.67 is past expulr's range, so the chip's
decay is exactly 0.

S is the largest value (capped at ``S_CAP`` mV) that keeps every s16.15 quantity and the ring buffers
in range with every input spiking every tick: the largest summed weight per receptor (which sets the
ring-buffer shift) stays below 2^14 nA and |isyn|, |alpha| and the thresholds below 2^14. Weights are
then 16-bit words relative to 2^shift (``sq.weight_words``); what rounding changes is reported.

Not mappable (``check_target_semantics`` refuses them first): subtract / no reset, a leak-free
membrane (voltage_decay = 0: the chip multiplies the input by 1 - e = 0), a never-decaying current,
non-spiking readouts. Per-neuron decays give per-neuron taus (IF_curr_exp's parameters are per neuron;
the chip computes exp_TC, decay and init per neuron), each neuron's input weights scaled by its own gain.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from snnc.arith import spinnaker as sq
from snnc.arith.rounding import round_ceiling, round_floor
from snnc.arith.synapse_math import conv2d_sum, sum_pool_sum
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.nodes import Conv2d, Dense, SpinnakerPopulation, SpinnakerProjection, SumPool2d
from snnc.lowering.precision import zeroed_warning, zeroed_weights
from snnc.neurons import model_of
from snnc.neurons.cuba_lif import per_neuron_floats

S_CAP = 64.0                      # mV per float unit at most (threshold 1.0 -> 64 mV)
RANGE_LIMIT = float(1 << 14)      # keep |values| below 2^14 of the s16.15 range 2^16
SUMMED_WEIGHT_LIMIT = RANGE_LIMIT * (1 - 2.0 ** -10)   # just below 2^14: ring-buffer shift 14, not 15
DELTA_TAU_WORD = 3072             # 0.09375 ms: expulr(-kdivk(dt, tau)) == 0 exactly
MIN_THRESHOLD_WORD = 1 << 10      # thresholds below 2^-5 mV would leave too few voltage levels


@dataclass
class PopulationReport:
    """What mapping one neuron group onto IF_curr_exp changed, in float units."""

    node: str
    voltage_scale_mv: float
    tau_m_ms: float | list[float]       # one per population, or one per neuron (per-neuron decays)
    tau_syn_ms: float | list[float]
    ring_buffer_shift: tuple[int, int]
    max_summed_weight_na: tuple[float, float]
    voltage_decay_error: float = 0.0
    current_decay_error: float = 0.0
    weight_rel_rms_error: dict[str, float] = field(default_factory=dict)
    weight_zeroed: dict[str, dict] = field(default_factory=dict)   # precision.ZeroedWeights.as_dict()
    bias_max_abs_error: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report's fields as a JSON-able dict (report.json's lowering entry)."""
        return dict(self.__dict__)


def lower_population(neuron, synapses: dict, delays: dict[str, int], source_shapes: dict):
    """Quantize one spiking float neuron group (a model lowering to "spinnaker") and its input synapses;
    returns (nodes, PopulationReport). Per-neuron decays get per-neuron taus (IF_curr_exp takes arrays)."""
    size = int(np.prod(neuron.shape))
    tau_m = _tau_words(neuron, "voltage_decay", sq.expk, sq.ONE)
    tau_s = _tau_words(neuron, "current_decay", sq.expulr, 2.0 ** 32)
    const = sq.lif_constants(tau_m, tau_m, 0, tau_s, tau_s)
    gain = (1.0 - const.exp_tc / sq.ONE) * (const.r_membrane / sq.ONE) * (const.init_exc / 2.0 ** 32)
    gain_rows = np.broadcast_to(np.asarray(gain, np.float64).reshape(-1), (size,))[:, None]
    dense = {name: _dense_weight(syn, source_shapes[syn.source], size) for name, syn in synapses.items()}
    thresholds = _per_neuron(neuron.threshold, size)
    bias_na_per_mv = _per_neuron(neuron.bias, size) / ((1.0 - const.exp_tc / sq.ONE) * const.r_membrane / sq.ONE)
    scale = _voltage_scale(neuron.name, dense, gain_rows, const, thresholds, bias_na_per_mv)
    weights_na = {name: scale * w / gain_rows for name, w in dense.items()}
    summed = _max_summed(weights_na)
    shifts = tuple(sq.ring_buffer_shift(m) for m in summed)
    report = PopulationReport(neuron.name, scale, _json_ms(tau_m), _json_ms(tau_s), shifts, summed)
    nodes = []
    for name, w in weights_na.items():
        nodes += _projections(name, synapses[name].source, w, shifts, delays[name], report, dense[name], scale,
                              gain_rows)
    i_offset = sq.encode_s1615(scale * bias_na_per_mv)
    leak_gain = (1.0 - const.exp_tc / sq.ONE) * const.r_membrane / sq.ONE
    restored_bias = sq.decode_s1615(i_offset) * leak_gain / scale
    report.bias_max_abs_error = float(np.max(np.abs(restored_bias - _per_neuron(neuron.bias, size)), initial=0.0))
    report.voltage_decay_error = _worst_decay_error(const.exp_tc / sq.ONE, neuron, "voltage_decay")
    report.current_decay_error = _worst_decay_error(const.decay_exc / 2.0 ** 32, neuron, "current_decay")
    population = model_of(neuron).spinnaker_node(
        neuron, tuple(n.name for n in nodes), thresholds, scale, tau_m=tau_m, cm=tau_m, tau_syn_e=tau_s,
        tau_syn_i=tau_s, i_offset=_scalar_if_uniform(i_offset), ring_buffer_shift=shifts, max_summed_weight=summed)
    return nodes + [population], report


def _tau_words(neuron, field_name: str, exp_fn, unit: float):
    """The tau word of each neuron (``choose_tau_word`` per distinct decay): an int for one decay per group,
    else an int64 array per neuron."""
    decay = np.asarray(getattr(neuron, field_name), dtype=np.float64)
    if decay.size == 1 or np.ptp(decay) == 0:
        return choose_tau_word(neuron.name, field_name, 1.0 - float(np.mean(decay)), exp_fn, unit)
    per_neuron = per_neuron_floats(decay, neuron.shape)
    words = {value: choose_tau_word(neuron.name, field_name, 1.0 - value, exp_fn, unit)
             for value in np.unique(per_neuron).tolist()}
    return np.array([words[value] for value in per_neuron.tolist()], np.int64)


def _json_ms(words) -> float | list[float]:
    """A tau word (or one per neuron) in ms, as the report stores it."""
    return words / sq.ONE if np.ndim(words) == 0 else [w / sq.ONE for w in np.asarray(words).tolist()]


def _worst_decay_error(on_chip, neuron, field_name: str) -> float:
    """The signed error of largest magnitude between the chip's per-step factor and 1 - the float decay."""
    decay = np.asarray(getattr(neuron, field_name), dtype=np.float64)
    if np.ndim(on_chip) == 0 and (decay.size == 1 or np.ptp(decay) == 0):
        return float(on_chip - (1.0 - float(np.mean(decay))))
    error = np.asarray(on_chip, np.float64).reshape(-1) - (1.0 - per_neuron_floats(decay, neuron.shape))
    return float(error[np.argmax(np.abs(error))])


def choose_tau_word(node: str, field_name: str, target: float, exp_fn, unit: float) -> int:
    """The s16.15 tau (ms, dt = 1 ms) whose on-chip decay exp_fn(-kdivk(dt, tau)) is nearest ``target``.

    For each candidate x = kdivk(dt, tau) near -ln(target) the largest tau with that quotient is taken
    (so dt / tau is as close to x as the division allows, which is what NEST computes in float)."""
    if target <= 0.0:
        return DELTA_TAU_WORD
    exact = -math.log(target) * sq.ONE
    if exact < 0.5:
        raise QuantizationError(node, field_name, f">= {1 - math.exp(-0.5 / sq.ONE):.3g} (tau <= 2^15 dt)",
                                1.0 - target, "the chip's decay constant cannot be that close to 1")
    # Near 1 many taus share a quotient: take the largest (tau = 2^30 // x); for strong decays quotients
    # are sparse, so also scan the taus around 2^30 / exact. Every candidate's own quotient is used.
    low, high = int(round_floor(exact)), int(round_ceiling(exact))
    near_quotients = {(1 << 30) // x for x in range(max(1, low - 1), high + 2)}
    centre = (1 << 30) / exact
    centre_low, centre_high = int(round_floor(centre)), int(round_ceiling(centre))
    candidates = near_quotients | set(range(max(1, centre_low - 2), centre_high + 3))
    scored = [(abs(exp_fn(-sq.kdivk(sq.ONE, tau)) / unit - target), -tau) for tau in candidates if tau > 0]
    return -min(scored)[1]


def _voltage_scale(name: str, dense: dict, gain_rows, const: sq.LifConstants, thresholds, bias_na_per_mv):
    """Largest S (mV per float unit, <= S_CAP) keeping summed weights, currents and voltages in range
    (``gain_rows``: each neuron's input gain as a column; the constants may be per neuron)."""
    per_unit = {k: w / gain_rows for k, w in dense.items()}
    summed = _max_summed(per_unit)
    d = const.decay_exc / 2.0 ** 32
    init = const.init_exc / 2.0 ** 32
    current = float(np.max(np.maximum(*_summed_per_neuron(per_unit)) * init / (1.0 - d), initial=0.0))
    alpha = (current + float(np.max(np.abs(bias_na_per_mv), initial=0.0))) * float(np.max(const.r_membrane)) / sq.ONE
    limits = [S_CAP, RANGE_LIMIT / max(float(np.max(thresholds)), 1e-300)]
    if max(summed) > 0:
        limits.append(SUMMED_WEIGHT_LIMIT / max(summed))
    for value in (current, alpha):
        if value > 0:
            limits.append(RANGE_LIMIT / value)
    scale = min(limits)
    if scale * float(np.min(thresholds)) * sq.ONE < MIN_THRESHOLD_WORD:
        raise QuantizationError(name, "threshold", f">= {MIN_THRESHOLD_WORD} s16.15 steps after scaling",
                                f"{scale * float(np.min(thresholds)) * sq.ONE:.3g}",
                                "weights or bias too large relative to the threshold")
    return scale


def _projections(name, source, weights_na, shifts, delay, report, dense, scale, gain):
    nodes, restored = [], np.zeros_like(dense)
    for receptor, sign, shift in (("excitatory", 1.0, shifts[0]), ("inhibitory", -1.0, shifts[1])):
        part = np.where(sign * weights_na > 0, np.abs(weights_na), 0.0)
        words = sq.weight_words(part, shift)
        restored += sign * sq.word_to_weight(words, shift) * gain / scale
        if np.any(words) or (receptor == "excitatory" and not np.any(weights_na < 0)):
            suffix = "exc" if receptor == "excitatory" else "inh"
            nodes.append(SpinnakerProjection(f"{name}_{suffix}", source, words, receptor, delay))
    norm = float(np.linalg.norm(dense))
    report.weight_rel_rms_error[name] = float(np.linalg.norm(restored - dense) / norm) if norm else 0.0
    zeroed = zeroed_weights(dense, restored)
    report.weight_zeroed[name] = zeroed.as_dict()
    warning = zeroed_warning(name, zeroed, "SpiNNaker 16-bit weight words")
    if warning:
        report.warnings.append(warning)
    return nodes


def _max_summed(weights: dict) -> tuple[float, float]:
    """Per receptor, the largest total weight one neuron can receive in one tick."""
    excitatory, inhibitory = _summed_per_neuron(weights)
    return float(np.max(excitatory, initial=0.0)), float(np.max(inhibitory, initial=0.0))


def _summed_per_neuron(weights: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron, the total excitatory and inhibitory weight it can receive in one tick."""
    excitatory = sum(np.where(w > 0, w, 0.0).sum(axis=1) for w in weights.values())
    inhibitory = sum(np.where(w < 0, -w, 0.0).sum(axis=1) for w in weights.values())
    return np.asarray(excitatory, np.float64), np.asarray(inhibitory, np.float64)


def _dense_weight(syn, source_shape, size: int) -> np.ndarray:
    """Every synapse as an explicit (out, in) matrix (a FromListConnector needs the list anyway)."""
    if getattr(syn, "bias", None) is not None:
        raise QuantizationError(syn.name, "bias", "none (folded into the neuron by fold_synapse_bias)",
                                "a bias into a neuron with current memory", "IF_curr_exp has no synaptic bias")
    if isinstance(syn, Dense):
        return np.asarray(syn.weight, dtype=np.float64)
    n_in = int(np.prod(source_shape))
    basis = np.eye(n_in).reshape(n_in, *source_shape)
    if isinstance(syn, Conv2d):
        response = conv2d_sum(basis, syn.weight, syn.in_shape, syn.stride, syn.padding, syn.groups)
    elif isinstance(syn, SumPool2d):
        response = syn.scale * sum_pool_sum(basis, syn.in_shape, syn.kernel, syn.stride)
    else:
        raise UnsupportedError(syn.name, "type", "Dense, Conv2d or SumPool2d", type(syn).__name__)
    return response.reshape(n_in, size).T.copy()


def _per_neuron(value, size: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64).reshape(-1), (size,)).copy()


def _scalar_if_uniform(words: np.ndarray):
    words = np.asarray(words, dtype=np.int64)
    return int(words[0]) if words.size and np.all(words == words[0]) else words


def with_warmup(population: SpinnakerPopulation, latency: int, startup_ticks: int) -> SpinnakerPopulation:
    """``population`` starting (at tick 0) from the voltage whose ``latency`` input-free ticks of pipeline
    fill (its first input arrives at tick ``latency``) end exactly at ``v_rest``, where the float model
    starts. The ``startup_ticks`` the PyNN network runs before tick 0 must be reachable too: the bias alone
    may fire the neuron in none of the ``latency + startup_ticks`` ticks (else ``QuantizationError``)."""
    size = int(np.prod(population.shape))
    offset = np.broadcast_to(np.asarray(population.i_offset, np.int64).reshape(-1), (size,))
    if not np.any(offset):
        return population
    const = sq.lif_constants(population.tau_m, population.cm, population.tau_refrac, population.tau_syn_e,
                             population.tau_syn_i)
    target = np.full(size, population.v_rest, np.int64)
    try:
        states = sq.bias_only_start(offset, const, population.v_rest, population.v_thresh, target,
                                    latency + startup_ticks)
    except ValueError as exc:
        raise QuantizationError(population.name, "v_init", "input-free start-up ticks below v_thresh (a "
                                "negative bias this large, relative to the threshold, fires the neuron before "
                                "its first input: reduce it, or raise the threshold)", str(exc)) from None
    return dataclasses.replace(population, v_init=_scalar_if_uniform(states[startup_ticks]))
