"""Float neuron groups -> Loihi integer formats, with a per-layer error and range report.

For a neuron group with thresholds thr_i, one integer threshold ``vth`` is shared (Lava's vth is a scalar)
and each neuron gets a scale S_i = vth / thr_i from float units to activation units, so the weights of row
i become ``w_ij * S_i ~= mant_ij * 2^exp`` and the voltage bias ``b_i * S_i * 64``. ``vth`` is the largest
value such that, with every input spiking every step,
  * u never wraps: 64 * (sum_j |mant_ij| 2^exp + 1) / current_decay < 2^23 (u's geometric bound), and
  * mantissas fit 8 bits at an exponent <= the target's maximum (convolutions: exponent 0),
so overflow is impossible by construction; what remains (rounding of weights, decays, bias) is reported.

Post-training calibration (``LoweringChoices.calibration``, from ``snnc.compression.calibration``) replaces
the worst case by what calibration data showed, for spiking groups:
  * the u bound uses the observed peak |u| times ``CALIBRATION_HEADROOM`` (the worst-case vth is kept if
    it is larger); where every-input-spiking could now wrap u, the report says so explicitly;
  * vth is searched over two octaves below that cap (the weight grid repeats per octave, since an
    exponent step doubles it; the cap lets the largest weights clip by up to 2x, which matters for
    convolutions, whose exponent is fixed at 0) and each dense synapse's exponent over {fit, fit - 1}
    (fit - 1 clips the largest weights); the choice minimizes the weights' relative error in the group's
    surrogate membrane potential on calibration data, sum_rows dw H dw^T / sum_rows w H w^T (SBC
    Hessian H; plain weight error for convolutions).
Weights, bias and threshold scale together (S_i = vth / thr_i), so spikes are preserved up to rounding;
one power-of-two weight exponent per synapse process. ``weight_bits`` < 8 uses Lava's ``num_weight_bits``
(coarser words); ``rounding="sbc"`` rounds with OBQ/GPTQ compensation on the same Hessian.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith.rounding import round_half_away
from snnc.compression import sbc
from snnc.compression.calibration import GroupCalibration
from snnc.errors import QuantizationError
from snnc.ir.nodes import Conv2d, Dense, LoihiConv, LoihiDense, SumPool2d
from snnc.lowering.precision import zeroed_warning, zeroed_weights
from snnc.neurons import float_models_lowering_to, model_of
from snnc.neurons.cuba_lif import per_neuron_floats
from snnc.lowering.warmup import check_periodic_fill, warmup_voltage
from snnc.targets.spec import LoihiTargetSpec

U_LIMIT = (1 << (lq.STATE_BITS - 1)) - 1
MARGIN = 0.98  # keep 2% below the bounds so rounding of the decayed terms cannot cross them
CALIBRATION_HEADROOM = 2.0  # calibrated u bound: twice the largest |u| seen on calibration data
VTH_SEARCH_STEPS = 16       # calibrated vth candidates per octave
ROUNDINGS = ("nearest", "sbc")


@dataclass(frozen=True)
class LoweringChoices:
    """How integer formats are picked. Defaults: the worst-case rule, 8-bit weights, nearest rounding.

    ``calibration``: this group's ``GroupCalibration`` (PTQ); ``rounding`` "sbc" needs its Hessians.
    ``scale_set_by``: what sets the layer's scale, and how to change it, for the warning on a synapse whose
    largest weight rounds to 0 (``precision.zeroed_warning``; empty: this lowering's threshold and bias)."""

    weight_bits: int = lq.WEIGHT_BITS
    rounding: str = "nearest"
    calibration: GroupCalibration | None = None
    scale_set_by: str = ""


@dataclass
class LayerReport:
    """What quantizing one neuron group changed, in float units."""

    node: str
    vth: int
    du: int | list[int]          # one per group, or one per neuron (per-neuron decays)
    dv: int | list[int]
    activation_units_per_unit: float | list[float] = 1.0   # S: v_int = v_float * S * 64
    weight_exp: dict[str, int] = field(default_factory=dict)
    weight_rel_rms_error: dict[str, float] = field(default_factory=dict)
    current_decay_error: float = 0.0
    voltage_decay_error: float = 0.0
    bias_max_abs_error: float = 0.0
    worst_case_u_fraction: float = 0.0
    warnings: list[str] = field(default_factory=list)
    weight_bits: int = lq.WEIGHT_BITS
    rounding: str = "nearest"
    calibrated: bool = False
    calibration_u_fraction: float = 0.0
    weight_rel_membrane_error: dict[str, float] = field(default_factory=dict)
    weight_clipped: dict[str, int] = field(default_factory=dict)
    weight_zeroed: dict[str, dict] = field(default_factory=dict)   # precision.ZeroedWeights.as_dict()
    worst_case_v_fraction: float = 0.0    # steady-state v, every inhibitory input spiking, of -(2^23-1)

    def as_dict(self) -> dict:
        """The report's fields as a JSON-able dict (report.json's lowering entry)."""
        return dict(self.__dict__)


def lower_group(neuron, synapses: dict, delays: dict[str, int], spec: LoihiTargetSpec, latency: int = 0,
                choices: LoweringChoices = LoweringChoices()):
    """Quantize one neuron group and its input synapses; returns (nodes, LayerReport).

    ``latency`` is the group's pipeline latency: its initial v cancels the bias it would integrate
    before its first input arrives (``snnc.lowering.warmup``)."""
    size = int(np.prod(neuron.shape))
    model = model_of(neuron)
    du, dv = model.loihi_decays(neuron)
    cd_eff = (du + 1) / lq.DECAY_UNITY
    drive = sum(_row_abs_sum(s, size) for s in synapses.values())
    thr = model.loihi_thresholds(neuron, size, drive, cd_eff)
    vth = _choose_vth(neuron, synapses, thr, drive, cd_eff, spec, size, choices.weight_bits)
    calibration = choices.calibration if model.traits.output == "spikes" else None
    exps: dict[str, int] = {}
    if calibration is not None:
        vth, exps = _calibrated_formats(neuron, synapses, thr, spec, size, choices, vth)
    scale = vth / thr
    report = LayerReport(neuron.name, vth, _json_words(du), _json_words(dv), weight_bits=choices.weight_bits,
                         rounding=choices.rounding, calibrated=calibration is not None)
    report.activation_units_per_unit = _compact_scale(scale)
    hessians = calibration.hessians if calibration is not None else {}
    nodes = [_lower_synapse(s, scale, delays[name], spec, report, choices, exps.get(name), hessians.get(name))
             for name, s in synapses.items()]
    bias_mant, bias_exp = _lower_bias(neuron, scale, report)
    report.current_decay_error = _worst_error(cd_eff, neuron.current_decay, neuron.shape)
    report.voltage_decay_error = _worst_error(np.asarray(dv) / lq.DECAY_UNITY, neuron.voltage_decay, neuron.shape)
    report.worst_case_u_fraction = float(np.max(64 * drive * scale / cd_eff) / U_LIMIT) if drive.any() else 0.0
    if calibration is not None:
        _report_calibrated_range(calibration, scale, report)
    v_init = _warmup_voltage(neuron.name, lq.effective_bias(bias_mant, bias_exp), dv, vth, latency,
                             str(model.comparison_of(neuron) or "gt"))
    lif = _with_periodic_reset(model.loihi_node(neuron, tuple(synapses), du, dv, vth, bias_mant, bias_exp, v_init),
                               neuron, latency)
    negative = sum(_row_negative_sum(s, size) for s in synapses.values())
    _report_voltage_floor(negative * scale / cd_eff, dv, scale, calibration, report)
    return nodes + [lif], report


def _with_periodic_reset(lif, neuron, latency: int):
    """``lif`` with the float group's periodic reset moved onto its lowered steps: float step t is lowered
    step t + ``latency``, so the phase grows by the latency (netx gives layer k the offset + k likewise)."""
    interval = int(getattr(neuron, "reset_interval", 0))
    if not interval:
        return lif
    lif = replace(lif, reset_interval=interval, reset_phase=(int(neuron.reset_phase) + latency) % interval)
    check_periodic_fill(lif, latency, 0, "lowering to a pipeline latency of {} steps".format(latency))
    return lif


def _json_words(words) -> int | list[int]:
    return int(words) if np.ndim(words) == 0 else [int(w) for w in np.asarray(words).reshape(-1)]


def _worst_error(quantized, wanted, shape) -> float:
    """The signed error of largest magnitude between per-neuron (or scalar) quantized and wanted decays."""
    error = np.asarray(quantized, np.float64).reshape(-1) - per_neuron_floats(wanted, shape)
    return float(error[np.argmax(np.abs(error))])


def _compact_scale(scale: np.ndarray) -> float | list[float]:
    return float(scale[0]) if np.ptp(scale) == 0 else [float(s) for s in scale]


def _choose_vth(neuron, synapses, thr, drive, cd_eff, spec: LoihiTargetSpec, size: int, bits: int) -> int:
    cap = model_of(neuron).loihi_vth_cap_fraction
    limits = [lq.VTH_MAX * cap if cap is not None else lq.VTH_MAX * MARGIN]
    bias = np.abs(np.broadcast_to(np.asarray(neuron.bias, dtype=np.float64).reshape(-1), (size,)))
    bias_max = ((1 << (spec.bias_mant_bits - 1)) - 1) << spec.bias_exp_range[1]
    limits.append(_smallest_ratio(thr * MARGIN * U_LIMIT * cd_eff / 64, drive))
    limits.append(_smallest_ratio(thr * bias_max / 64, bias))
    for syn in synapses.values():
        lo, hi = lq.weight_limits(_sign_mode(syn), bits)
        exp_max = spec.weight_exp_range[1] if isinstance(syn, Dense) else 0
        limits.append(_smallest_ratio(thr * (hi or -lo) * 2.0 ** exp_max, _row_abs_max(syn, size)))
    limits.append(model_of(neuron).loihi_vth_limit(neuron, thr, drive, cd_eff))
    vth = int(math.floor(min(limits)))
    if vth < 1:
        raise QuantizationError(neuron.name, "threshold", "an integer vth >= 1 after scaling",
                                f"vth {min(limits):.3g}", "weights too large relative to the threshold")
    return vth


def _smallest_ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """min over neurons with a positive denominator of numerator / denominator (inf if there is none)."""
    positive = np.asarray(denominator) > 0
    if not positive.any():
        return math.inf
    return float(np.min(np.broadcast_to(numerator, positive.shape)[positive] / np.asarray(denominator)[positive]))


def _lower_synapse(syn, scale: np.ndarray, delay: int, spec: LoihiTargetSpec, report: LayerReport,
                   choices: LoweringChoices, exp: int | None, hessian: np.ndarray | None):
    if getattr(syn, "bias", None) is not None:
        raise QuantizationError(syn.name, "bias", "none (folded into the neuron by fold_synapse_bias)",
                                "a bias into a neuron with current memory", "not representable on Loihi")
    if isinstance(syn, Dense):
        return _lower_dense(syn, scale, delay, spec, report, choices, exp, hessian)
    weight = _conv_weight(syn)
    per_out = _channel_scale(syn, scale, weight.shape[0])
    mant = lq.weight_mantissa(weight * per_out[:, None, None, None], "mixed", 0, choices.weight_bits)
    _record_error(report, syn.name, weight, mant / per_out[:, None, None, None], 0, choices.weight_bits,
                  choices.scale_set_by)
    if delay:
        raise QuantizationError(syn.name, "delay_steps", "0 for convolutions on Loihi (no DelayConv)",
                                delay)
    groups = getattr(syn, "groups", weight.shape[0]) if isinstance(syn, Conv2d) else weight.shape[0]
    padding = syn.padding if isinstance(syn, Conv2d) else (0, 0)
    return LoihiConv(syn.name, syn.source, mant, in_shape=tuple(syn.in_shape), stride=tuple(syn.stride),
                     padding=tuple(padding), groups=groups)


def _channel_scale(syn, scale: np.ndarray, channels: int) -> np.ndarray:
    """One scale per output channel of a convolution (its kernel is shared across the channel's
    positions, so thresholds may differ per channel but not within one)."""
    per_channel = scale.reshape(channels, -1)
    if np.any(np.ptp(per_channel, axis=1) != 0):
        raise QuantizationError(syn.name, "threshold", "one threshold per output channel (a convolution shares "
                                "its kernel over the channel's positions)", "thresholds that differ within "
                                "a channel", "train per-channel thresholds, or use a dense layer")
    return per_channel[:, 0]


def _lower_dense(syn: Dense, scale, delay, spec: LoihiTargetSpec, report: LayerReport, choices: LoweringChoices,
                 exp: int | None, hessian: np.ndarray | None) -> LoihiDense:
    scaled = syn.weight * scale[:, None]
    mode = _sign_mode(syn)
    bits = choices.weight_bits
    exp = _fitting_exponent(scaled, mode, bits, spec) if exp is None else exp
    if choices.rounding == "sbc" and hessian is None and choices.calibration is not None:
        report.warnings.append(f"{syn.name}: nearest rounding (no calibration Hessian for this synapse)")
    if choices.rounding == "sbc" and hessian is not None:
        grid = lambda v: lq.weight_mantissa(v, mode, 0, bits)  # noqa: E731
        mant = sbc.quantize_rows(scaled / 2.0 ** exp, hessian, grid, fixed_zero=syn.weight == 0,
                                 half_step=lq.weight_step(mode, bits) / 2)
    else:
        mant = lq.weight_mantissa(scaled, mode, exp, bits)
    restored = mant * 2.0 ** exp / scale[:, None]
    _record_error(report, syn.name, syn.weight, restored, exp, bits, choices.scale_set_by)
    report.weight_clipped[syn.name] = _clipped_count(scaled / 2.0 ** exp, mode, bits)
    if hessian is not None:
        report.weight_rel_membrane_error[syn.name] = _relative_membrane_error(syn.weight, restored, hessian)
    return LoihiDense(syn.name, syn.source, mant, weight_exp=exp, num_weight_bits=bits, sign_mode=mode,
                      delay_steps=delay)


def _clipped_count(value: np.ndarray, mode: str, bits: int) -> int:
    """Weights beyond the word range by more than half a step (saturated, not just rounded)."""
    lo, hi = lq.weight_limits(mode, bits)
    half = lq.weight_step(mode, bits) / 2
    return int(np.count_nonzero((value > hi + half) | (value < lo - half)))


def _fitting_exponent(scaled: np.ndarray, mode: str, bits: int, spec: LoihiTargetSpec) -> int:
    """Smallest exponent (in the target's range) at which the largest |weight| fits the word range."""
    limit = max(abs(v) for v in lq.weight_limits(mode, bits))
    biggest = float(np.max(np.abs(scaled))) if scaled.size else 0.0
    exp = math.ceil(math.log2(biggest / limit)) if biggest > 0 else 0
    return min(max(exp, spec.weight_exp_range[0]), spec.weight_exp_range[1])


def _relative_membrane_error(weight, restored, hessian) -> float:
    signal = sbc.layer_loss(np.zeros_like(weight), weight, hessian)
    return sbc.layer_loss(weight, restored, hessian) / signal if signal > 0 else 0.0


def _calibrated_formats(neuron, synapses, thr, spec: LoihiTargetSpec, size: int, choices: LoweringChoices,
                        vth_worst: int) -> tuple[int, dict[str, int]]:
    """PTQ: vth (two octaves below the calibrated cap) and exponents with the least membrane error."""
    cap = max(_calibrated_vth_cap(neuron, synapses, thr, choices, spec, size), vth_worst)
    candidates = sorted({max(1, int(cap * 2.0 ** (-k / VTH_SEARCH_STEPS))) for k in range(2 * VTH_SEARCH_STEPS)},
                        reverse=True)
    best = None
    for vth in candidates:
        exps, error = {}, 0.0
        for name, syn in synapses.items():
            exps[name], part = _best_exponent(syn, vth / thr, spec, choices.weight_bits,
                                              choices.calibration.hessians.get(name))
            error += part
        if best is None or error < best[0]:
            best = (error, vth, exps)
    return best[1], best[2]


def _calibrated_vth_cap(neuron, synapses, thr, choices: LoweringChoices, spec: LoihiTargetSpec, size: int) -> int:
    """Largest vth allowed by vth's width, the calibrated u bound, the bias format, and weights that
    clip by at most 2x at the largest exponent (convolutions: exponent 0)."""
    peak = np.broadcast_to(np.asarray(choices.calibration.current_peak, np.float64).reshape(-1), (size,))
    bias = np.abs(np.broadcast_to(np.asarray(neuron.bias, dtype=np.float64).reshape(-1), (size,)))
    bias_max = ((1 << (spec.bias_mant_bits - 1)) - 1) << spec.bias_exp_range[1]
    limits = [float(lq.VTH_MAX), _smallest_ratio(thr * MARGIN * U_LIMIT / (64 * CALIBRATION_HEADROOM), peak),
              _smallest_ratio(thr * bias_max / 64, bias)]
    for syn in synapses.values():
        lo, hi = lq.weight_limits(_sign_mode(syn), choices.weight_bits)
        exp_max = spec.weight_exp_range[1] if isinstance(syn, Dense) else 0
        limits.append(_smallest_ratio(2 * thr * (hi or -lo) * 2.0 ** exp_max, _row_abs_max(syn, size)))
    return max(1, int(math.floor(min(limits))))


def _best_exponent(syn, scale, spec: LoihiTargetSpec, bits: int, hessian) -> tuple[int, float]:
    """Exponent in {fit, fit - 1} with the least relative (membrane-weighted) weight error."""
    if not isinstance(syn, Dense):
        weight = _conv_weight(syn)
        per_out = scale.reshape(weight.shape[0], -1)[:, 0][:, None, None, None]
        restored = lq.weight_mantissa(weight * per_out, "mixed", 0, bits) / per_out
        norm = float(np.sum(weight ** 2))
        return 0, float(np.sum((restored - weight) ** 2)) / norm if norm else 0.0
    scaled = syn.weight * scale[:, None]
    mode = _sign_mode(syn)
    fit = _fitting_exponent(scaled, mode, bits, spec)
    h = hessian if hessian is not None else np.eye(syn.weight.shape[1])
    options = []
    for exp in sorted({fit, max(fit - 1, spec.weight_exp_range[0])}, reverse=True):
        restored = lq.weight_mantissa(scaled, mode, exp, bits) * 2.0 ** exp / scale[:, None]
        options.append((_relative_membrane_error(syn.weight, restored, h), -exp))
    error, neg_exp = min(options)
    return -neg_exp, error


def _report_calibrated_range(calibration: GroupCalibration, scale, report: LayerReport) -> None:
    peak = np.asarray(calibration.current_peak, np.float64).reshape(-1)
    report.calibration_u_fraction = float(np.max(64 * peak * scale) / U_LIMIT) if peak.size else 0.0
    if report.worst_case_u_fraction > 1.0:
        report.warnings.append(
            f"u can wrap: every input spiking every step would reach {report.worst_case_u_fraction:.2f}x "
            f"the 24-bit u range (calibration peak: {report.calibration_u_fraction:.0%} of it)")


def _record_error(report: LayerReport, name: str, weight, restored, exp: int, bits: int,
                  scale_set_by: str = "") -> None:
    """Relative RMS error and the nonzero weights that round to 0 (warned about above a threshold;
    ``scale_set_by``: ``LoweringChoices.scale_set_by``)."""
    norm = float(np.linalg.norm(weight))
    report.weight_exp[name] = exp
    report.weight_rel_rms_error[name] = float(np.linalg.norm(restored - weight) / norm) if norm else 0.0
    zeroed = zeroed_weights(weight, restored)
    report.weight_zeroed[name] = zeroed.as_dict()
    warning = zeroed_warning(name, zeroed, f"Loihi {bits}-bit weights",
                             "calibration data (--calib)" + (" or more weight bits" if bits < lq.WEIGHT_BITS else ""),
                             scale_set_by)
    if warning:
        report.warnings.append(warning)


def _lower_bias(neuron, scale: np.ndarray, report: LayerReport):
    bias = np.broadcast_to(np.asarray(neuron.bias, dtype=np.float64).reshape(-1), scale.shape)
    target = round_half_away(bias * scale * 64)
    mant, exp = lq.split_bias(target)
    restored = lq.effective_bias(mant, exp) / (scale * 64)
    report.bias_max_abs_error = float(np.max(np.abs(restored - bias))) if bias.size else 0.0
    if not np.any(mant) and not np.any(exp):
        return np.zeros(1, np.int64), np.zeros(1, np.int64)
    return mant, exp


def _warmup_voltage(name: str, bias: np.ndarray, dv: int, vth: int, latency: int, comparison: str) -> np.ndarray:
    if not np.any(bias):
        return np.zeros(1, np.int64)
    return warmup_voltage(name, bias, dv, vth, 0, latency, "bias too large for this pipeline depth and decay",
                          comparison)


def _report_voltage_floor(negative_u: np.ndarray, dv: int, scale: np.ndarray,
                          calibration: GroupCalibration | None, report: LayerReport) -> None:
    """v has no lower reset and saturates at -(2^23-1). Recorded: the worst case (steady state with every
    inhibitory input spiking every step) as a fraction of that floor; with a leak and 8-bit weights scaled
    to fill u's range it exceeds 1 in almost every network with inhibition, so it is not a warning.
    Warned: what this model reaches - a leak-free v (dv 0) integrates sustained inhibition without bound,
    and calibration data on which the float v came within ``CALIBRATION_HEADROOM`` of the floor."""
    if not np.any(negative_u):
        return
    if np.any(np.asarray(dv) == 0):
        report.warnings.append("voltage_decay 0 with negative input: v may saturate at -(2^23-1)")
        return
    report.worst_case_v_fraction = float(np.max(64 * negative_u * lq.DECAY_UNITY / np.asarray(dv)) / lq.V_LIMIT)
    if calibration is None or calibration.voltage_trough is None:
        return
    reached = float(np.max(-64 * calibration.voltage_trough * scale, initial=0.0)) / lq.V_LIMIT
    if reached * CALIBRATION_HEADROOM >= 1:
        report.warnings.append(
            f"v can saturate at -(2^23-1): on calibration data the float v fell to {reached:.0%} of that floor "
            "(below it the integer v stops and recovers sooner than the float model)")


def _sign_mode(syn) -> str:
    weight = syn.weight if isinstance(syn, Dense) else _conv_weight(syn)
    if isinstance(syn, Dense) and weight.size and np.min(weight) >= 0:
        return "excitatory"
    if isinstance(syn, Dense) and weight.size and np.max(weight) <= 0:
        return "inhibitory"
    return "mixed"


def _conv_weight(syn) -> np.ndarray:
    if isinstance(syn, Conv2d):
        return syn.weight
    channels = syn.in_shape[0]
    return np.full((channels, 1, *syn.kernel), syn.scale)


def _row_abs_sum(syn, size: int) -> np.ndarray:
    """Per target neuron: the largest possible |input| in one step (every source spiking)."""
    if isinstance(syn, Dense):
        return np.abs(syn.weight).sum(axis=1) + (np.abs(syn.bias) if syn.bias is not None else 0)
    per_channel = np.abs(_conv_weight(syn)).reshape(_conv_weight(syn).shape[0], -1).sum(axis=1)
    return np.repeat(per_channel, size // per_channel.size)


def _row_negative_sum(syn, size: int) -> np.ndarray:
    if isinstance(syn, Dense):
        return -np.minimum(syn.weight, 0).sum(axis=1)
    weight = _conv_weight(syn)
    per_channel = -np.minimum(weight, 0).reshape(weight.shape[0], -1).sum(axis=1)
    return np.repeat(per_channel, size // per_channel.size)


def _row_abs_max(syn, size: int) -> np.ndarray:
    if isinstance(syn, Dense):
        return np.abs(syn.weight).max(axis=1) if syn.weight.size else np.zeros(size)
    per_channel = np.abs(_conv_weight(syn)).reshape(_conv_weight(syn).shape[0], -1).max(axis=1)
    return np.repeat(per_channel, size // per_channel.size)




def supported_neurons() -> tuple[type, ...]:
    """The float neuron node types with a Loihi lowering (their models say so)."""
    return tuple(m.node_type for m in float_models_lowering_to("loihi"))
SUPPORTED_SYNAPSES = (Dense, Conv2d, SumPool2d)
