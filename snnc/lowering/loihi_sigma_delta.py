"""Float sigma-delta groups -> Lava's ``Delta`` / ``SigmaDelta`` / ``Sigma`` (``LoihiDelta``,
``LoihiSigmaDelta``, ``LoihiSigma``), with a per-layer report.

netx's exponents are kept: spike_exp = state_exp = 6, so Lava scales vth, bias and the Delta's input by
2^12 and a sent message is ``s' >> 6``. Each group l gets a value scale K_l = 2^k_l with

    sigma_int = sigma * 2^12 K_l   (likewise act and residue)     vth = round(threshold K_l)
    bias_int  = round(bias K_l)                                     message = s' >> 6 = floor(s 2^6 K_l)

Check against the lowered equations (``snnc.ir.nodes.LoihiSigmaDelta``): act_int = max(sigma_int +
(bias_int << 12), 0) = 2^12 K_l max(sigma + bias, 0); d and residue are differences of such values, and
|d_int| >= vth << 12 is |d| >= threshold; so the integer group is the float group times 2^12 K_l, up to the
rounding of vth and bias. The sent value s' = s 2^12 K_l leaves as s' >> 6 (floor: what the reader
decodes loses up to one unit, 1 / (2^6 K_l) of the sender's value, per message; the sender's residue keeps
the exact d). A synapse from group l-1 into group l must turn messages of scale m_{l-1} (2^6 K_{l-1}) into
sigma increments of scale 2^12 K_l, so its integer weights are

    W = w 2^12 K_l / m_{l-1} = w 2^6 K_l / K_{l-1}  ~=  mantissa 2^weight_exp    (8-bit words)

A ``SigmaDecoder``'s output is its sigma (scale 2^12 K_l, not a change), so it is a readout: a group
reading it is refused. The ``DeltaEncoder`` of an integer input has K_0 = 1 (Lava's Delta scales the input
itself): every d is then a whole number of input units, so ``|d| >= threshold`` is ``|d| >= ceil(threshold)``
and vth = ceil(threshold) is exact for any real threshold (reported); its messages d 2^6 are exact too.

Scale choice (without calibration): k_l is the largest in ``SCALE_EXP_RANGE`` whose worst case fits. A
reader decodes the sum of a group's messages, act - residue (the Delta's: x - residue), so |decoded| <=
act_max + threshold (|residue| < threshold); then sigma_max = sum |w| (act_max_{l-1} + threshold_{l-1}) per neuron,
act_max = max(sigma_max + bias, 0), |d| <= act_max + threshold. Kept: every int32 state value (sigma +
bias, act, d) within ``STATE_MARGIN`` of 2^31; the largest message within the target's graded spike bits;
vth and |bias| below 2^19 (their << 12 fits int32); the largest weight within 8-bit words at the target's
largest exponent; W @ messages within int32 before the exponent (a ``Conv``: 24 bits, Lava's wrap).

Calibration (``--calib``, ``LowerLoihiOptions.calibration``: graded input samples (samples, steps,
*shape)): the worst case assumes every input at its largest at once, which on a wide layer is far above
real activity (hundreds of times for a 300-input decoder), so K_l is coarse and the next synapse's words
can all round to 0. With calibration data, ``snnc.compression.calibration.calibrate`` runs the float
reference on it and records per group the largest |sigma + bias|, act and |d| (a decoder: |sigma|), the
largest |message| and per input synapse the largest one-step |W @ messages| (``SigmaDeltaCalibration``);
k_l is then the largest whose checks above hold for each of these times ``CALIBRATION_HEADROOM`` (2, the
LIF PTQ's headroom; a message bound at least the threshold; never more than the worst case). The worst
case stays in the report; where it now exceeds a range at the chosen scale (int32 state, the graded spike
bits, int32 / 24 bits of W @ messages before the exponent), unseen inputs that large would wrap it: the
report lists it in ``wrap_risk`` (worst case / range) with the observed peak as a fraction of the range,
and warns, naming what can wrap. The delta encoder's K = 1 is set by its input's bits either way.
A synapse whose words all round to 0 is warned with its cause: the layer's worst-case sigma range (fix:
``--calib`` with representative inputs), or, calibrated, the calibrated range.

Pipeline fill: a group of latency L computes act = relu(bias) for L steps before its first input; below vth
that sends nothing and the residue carries it, so the messages equal the float group's; at or above vth the
report warns (it is sent early). Refused (``QuantizationError``): no k fits, a threshold that rounds to 0 at the chosen scale, an input
whose bits let the Delta's d overflow; (``UnsupportedError``) a synapse bias (it would add to sigma every
step: not a neuron bias), a group reading anything but a delta encoder or sigma-delta group.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith.rounding import round_half_away
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.nodes import (
    Dense, DeltaEncoder, GradedInput, LoihiDelta, LoihiSigma, LoihiSigmaDelta, SigmaDecoder, SigmaDelta,
)
from snnc.lowering.loihi_lowering import (
    CALIBRATION_HEADROOM, LayerReport, LoweringChoices, _conv_weight, _lower_synapse, _row_abs_sum, _sign_mode,
)
from snnc.neurons.sigma_delta import per_neuron_bias

SPIKE_EXP = STATE_EXP = 6                      # netx's exponents (Lava scales vth, bias, the input by 2^12)
STATE_SHIFT = SPIKE_EXP + STATE_EXP
INT32_MAX = (1 << 31) - 1
CONV_ACTIVATION_MAX = (1 << 23) - 1            # Lava Conv wraps its output to 24 bits
VALUE_LIMIT = (1 << (31 - STATE_SHIFT)) - 1    # |vth|, |bias| whose << 12 fits int32
STATE_MARGIN = 0.5                             # worst-case |state| at most half of int32
SCALE_EXP_RANGE = (-24, 24)


@dataclass
class SigmaDeltaLayerReport(LayerReport):
    """``LayerReport`` plus the sigma-delta scale: k (K = 2^k), ``output_scale`` (the emulator's graded
    output is the float output times it: 2^6 K for an encoder or sigma-delta group, 2^12 K for a decoder),
    ``form`` (the Lava process: delta, sigma_delta, sigma), ``state_scale`` (sigma, act, residue: 2^12 K), ``message_floor_lsb`` (float units a reader may lose per
    message: 1 / (2^6 K), 0 where messages are exact), ``threshold_error`` (vth / K - threshold),
    ``activation_floor_lsb`` (per synapse with a negative exponent whose sums can be floored: what one
    step may lose, in sigma units), ``worst_case`` (float bounds) and ``worst_case_state_fraction`` (of
    int32). Calibrated: ``calibrated_range`` (the observed maxima: state, message and per input synapse
    ``W @ messages``, float units), ``calibration_state_fraction`` (observed |state| of int32) and
    ``wrap_risk`` (what the worst case would overflow: "state", "message", "<synapse> W @ messages", each
    as a multiple of its range; warned)."""

    form: str = ""                # "delta", "sigma_delta" or "sigma": the Lava process it lowered to
    scale_exp: int = 0
    output_scale: float = 1.0
    state_scale: float = 1.0
    message_floor_lsb: float = 0.0
    threshold_error: float = 0.0
    activation_floor_lsb: dict[str, float] = field(default_factory=dict)
    worst_case: dict[str, float] = field(default_factory=dict)
    worst_case_state_fraction: float = 0.0
    notes: list[str] = field(default_factory=list)
    calibrated_range: dict[str, float] = field(default_factory=dict)   # observed maxima, float units
    calibration_state_fraction: float = 0.0                              # observed |state| of int32
    wrap_risk: dict[str, float] = field(default_factory=dict)           # worst case / its range, where > 1


@dataclass(frozen=True)
class GroupScale:
    """The scale chosen for one group: k (K = 2^k), the scale of its messages (message int = value *
    ``message_scale``), the bound of its largest message and of what a reader decodes (None: a readout)."""

    scale_exp: int
    message_scale: float
    message_bound: float
    decoded_bound: float | None


def lower_sigma_delta(neuron, synapses: dict, delays: dict[str, int], spec, latency: int = 0,
                      choices: LoweringChoices = LoweringChoices(), calibrated: bool = False, graph=None,
                      calibrations: dict | None = None):
    """Lower one float sigma-delta group (and its input synapses) with the scales ``plan_scales`` picks for
    ``graph`` (from ``calibrations``, ``snnc.compression.calibration.calibrate``'s result, where given;
    else the worst case); returns (nodes, SigmaDeltaLayerReport). Weights are rounded to nearest ('sbc'
    rounding is not used: the report says so)."""
    if not spec.graded_spike_bits:
        raise UnsupportedError(neuron.name, "type", f"a neuron model with binary spikes on target '{spec.name}' "
                               "(it has no graded messages)", type(neuron).__name__)
    calibrations = calibrations or {}
    plans = plan_scales(graph, spec, choices.weight_bits, calibrations)
    plan = plans[neuron.name]
    if isinstance(neuron, DeltaEncoder):
        nodes, report = _lower_delta(graph, neuron, plan, calibrations.get(neuron.name))
    else:
        nodes, report = _lower_group(graph, neuron, synapses, delays, spec, plans, choices.weight_bits,
                                     calibrations.get(neuron.name))
        _report_pipeline_fill(nodes[-1], latency, report)
    if calibrated and neuron.name not in calibrations:
        report.warnings.append("sigma-delta groups are scaled by their worst case and rounded to nearest: "
                               "calibration data and 'sbc' rounding were not used for this group")
    elif choices.rounding != "nearest":
        report.warnings.append("sigma-delta groups are rounded to nearest: 'sbc' rounding was not used for "
                               "this group")
    return nodes, report


def plan_scales(graph, spec, weight_bits: int, calibrations: dict | None = None) -> dict[str, GroupScale]:
    """The scale of every float sigma-delta group of ``graph``, sources first; a group with an entry in
    ``calibrations`` (a ``SigmaDeltaCalibration``) is scaled by its observed ranges."""
    calibrations = calibrations or {}
    plans: dict[str, GroupScale] = {}
    for node in graph.evaluation_order:
        if isinstance(node, DeltaEncoder):
            plans[node.name] = _delta_scale(graph, node, spec)
        elif isinstance(node, (SigmaDelta, SigmaDecoder)):
            plans[node.name] = _group_scale(graph, node, plans, spec, weight_bits, calibrations.get(node.name))
    return plans


# ------------------------------------------------------------------------------------- delta encoder

def _delta_input(graph, node: DeltaEncoder) -> GradedInput:
    sources = [graph.node(name) for name in node.inputs]
    if len(sources) != 1 or not isinstance(sources[0], GradedInput):
        raise UnsupportedError(node.name, "inputs", "one GradedInput (Lava's Delta reads one graded input)",
                               ", ".join(f"{s.name} ({type(s).__name__})" for s in sources))
    return sources[0]


def _delta_scale(graph, node: DeltaEncoder, spec) -> GroupScale:
    """K = 1: the input's worst |d| (two full-scale inputs of opposite sign plus the residue) must fit
    int32 after Lava's << 12 and the graded spike bits after >> 6."""
    source = _delta_input(graph, node)
    vth = math.ceil(float(node.threshold))
    if vth > VALUE_LIMIT:
        raise QuantizationError(node.name, "threshold", f"<= {VALUE_LIMIT} (vth << {STATE_SHIFT} fits int32)",
                                node.threshold)
    x_max = (1 << (source.bits - 1)) - 1
    d_max = 2 * x_max + vth
    message_max = (1 << (spec.graded_spike_bits - 1)) - 1 if spec.graded_spike_bits else 0
    for limit, scale, what in ((INT32_MAX, 1 << STATE_SHIFT, "int32 after Lava's << 12"),
                               (message_max, 1 << SPIKE_EXP, f"{spec.graded_spike_bits}-bit graded spikes")):
        if d_max * scale > limit:
            bits = _largest_input_bits(vth, limit // scale)
            raise QuantizationError(source.name, "bits", f"<= {bits} (the delta encoder '{node.name}' sends up "
                                    f"to 2 |x|max + vth = {d_max}; x {scale} must fit {what})", source.bits,
                                    "declare the input with fewer bits")
    return GroupScale(0, float(1 << SPIKE_EXP), float(d_max), float(x_max + vth))


def _largest_input_bits(vth: int, d_limit: int) -> int:
    """The most signed bits b whose worst d, 2 (2^(b-1) - 1) + vth, stays within ``d_limit``."""
    bits = 1
    while 2 * ((1 << bits) - 1) + vth <= d_limit:     # b = bits + 1 still fits
        bits += 1
    return bits


def _lower_delta(graph, node: DeltaEncoder, plan: GroupScale, calibration=None):
    vth = math.ceil(float(node.threshold))
    report = SigmaDeltaLayerReport(node.name, vth, "-", "-", form="delta", scale_exp=0, output_scale=float(1 << SPIKE_EXP),
                                   state_scale=float(1 << STATE_SHIFT), threshold_error=vth - float(node.threshold),
                                   worst_case={"input": plan.decoded_bound - vth, "d": plan.message_bound})
    report.worst_case_state_fraction = plan.message_bound * (1 << STATE_SHIFT) / INT32_MAX
    if calibration is not None:        # K = 1 is set by the input's bits: its worst case always fits
        report.calibrated = True
        report.calibrated_range = {"state": calibration.state, "message": calibration.message}
        report.calibration_state_fraction = calibration.state * report.state_scale / INT32_MAX
    if vth != float(node.threshold):
        report.notes.append(f"threshold {node.threshold!r} -> vth {vth}: exact, every d is a whole number of "
                            "input units")
    lowered = LoihiDelta(node.name, tuple(node.inputs), tuple(node.shape), vth=vth, spike_exp=SPIKE_EXP,
                         state_exp=STATE_EXP)
    return [lowered], report


# ------------------------------------------------------------------------- sigma-delta and decoder

def _source_scales(graph, node, plans: dict[str, GroupScale]) -> dict[str, GroupScale]:
    """The scale of the group behind each input synapse; refuses a synapse bias and any source that is not
    a delta encoder or sigma-delta group already planned."""
    out = {}
    for name in node.inputs:
        syn = graph.node(name)
        if getattr(syn, "bias", None) is not None and np.any(syn.bias):
            raise UnsupportedError(name, "bias", "none into a sigma-delta group (a synapse bias adds to sigma "
                                   "every step; give the group a bias instead)", "a bias")
        source = graph.producer(syn.source)
        plan = plans.get(source.name)
        if plan is None or plan.decoded_bound is None:
            raise UnsupportedError(node.name, "inputs", "synapses from delta encoders or sigma-delta groups "
                                   "(feed-forward; a sigma decoder is a readout)",
                                   f"'{name}' reads {type(source).__name__} '{source.name}'")
        out[name] = plan
    return out


def _group_bounds(graph, node, sources: dict[str, GroupScale]) -> dict[str, float | np.ndarray]:
    """The worst case (every input at its largest at once), float units: sigma per neuron, bias, act, the
    largest message and |state|."""
    size = int(np.prod(node.shape))
    sigma = sum((_row_abs_sum(graph.node(name), size) * plan.decoded_bound for name, plan in sources.items()),
                np.zeros(size))
    if isinstance(node, SigmaDecoder):
        return {"sigma": sigma, "state": float(np.max(sigma, initial=0.0))}
    bias = np.broadcast_to(per_neuron_bias(node).reshape(-1), (size,))
    thr = float(node.threshold)
    act = float(max(np.max(sigma + bias, initial=0.0), 0.0))
    state = max(float(np.max(sigma + np.abs(bias), initial=0.0)), act + thr)
    return {"sigma": sigma, "bias": bias, "act": act, "message": act + thr, "state": state}


def _calibrated_bounds(graph, node, sources: dict[str, GroupScale], worst: dict, calibration) -> dict:
    """The bounds a calibrated scale must hold: each observed maximum times ``CALIBRATION_HEADROOM``, never
    above its worst case (|state|, the largest message, at least the threshold, and per input synapse
    one step's |W @ messages|)."""
    bounds = dict(worst)
    bounds["state"] = min(worst["state"], CALIBRATION_HEADROOM * calibration.state)
    if "message" in worst:
        bounds["message"] = min(worst["message"],
                                CALIBRATION_HEADROOM * max(calibration.message, float(node.threshold)))
    worst_inputs = _worst_synapse_inputs(graph, node, sources)
    bounds["synapse_input"] = {name: min(value, CALIBRATION_HEADROOM * calibration.synapse_input[name])
                               for name, value in worst_inputs.items()}
    return bounds


def _worst_synapse_inputs(graph, node, sources: dict[str, GroupScale]) -> dict[str, float]:
    """Per input synapse: the worst |W @ messages| of one step (every message at its largest), float units."""
    size = int(np.prod(node.shape))
    return {name: float(np.max(_row_abs_sum(graph.node(name), size), initial=0.0)) * plan.message_bound
            for name, plan in sources.items()}


def _planned_bounds(graph, node, sources: dict[str, GroupScale], calibration) -> tuple[dict, dict]:
    """(the worst case, the bounds the scale is chosen for: the worst case, or the calibrated ranges)."""
    worst = _group_bounds(graph, node, sources)
    used = worst if calibration is None else _calibrated_bounds(graph, node, sources, worst, calibration)
    return worst, used


def _group_scale(graph, node, plans: dict[str, GroupScale], spec, weight_bits: int, calibration=None) -> GroupScale:
    """The largest k in ``SCALE_EXP_RANGE`` at which every bound fits (``QuantizationError`` naming the
    bound that fails at the smallest k where none fits, or a threshold that rounds to 0). Its message and
    decoded bounds stay the worst case (they bound the readers' worst case)."""
    sources = _source_scales(graph, node, plans)
    worst, bounds = _planned_bounds(graph, node, sources, calibration)
    failure = None
    for k in range(SCALE_EXP_RANGE[1], SCALE_EXP_RANGE[0] - 1, -1):
        failure = _scale_failure(graph, node, sources, bounds, spec, weight_bits, 2.0 ** k)
        if failure is None:
            break
    else:
        raise QuantizationError(node.name, failure[0], failure[1], failure[2],
                                f"no value scale 2^k, k in {SCALE_EXP_RANGE}, fits")
    scale = 2.0 ** k
    if isinstance(node, SigmaDecoder):
        return GroupScale(k, scale * (1 << STATE_SHIFT), worst["state"], None)
    if round_half_away(float(node.threshold) * scale) < 1:
        fits = "worst case" if calibration is None else "calibrated range"
        raise QuantizationError(node.name, "threshold", f">= {0.5 / scale:.3g} (half a unit at the finest scale "
                                f"2^{k} whose {fits} fits)", node.threshold, "vth would round to 0")
    return GroupScale(k, scale * (1 << SPIKE_EXP), worst["message"], worst["act"] + float(node.threshold))


def _scale_failure(graph, node, sources, bounds, spec, weight_bits: int, scale: float):
    """(field, limit, actual) of the first bound value scale ``scale`` breaks, or None."""
    state = bounds["state"] * scale * (1 << STATE_SHIFT)
    if state > STATE_MARGIN * INT32_MAX:
        return "state range", f"worst-case |state| <= {STATE_MARGIN:g} x int32", f"{state:.4g}"
    if not isinstance(node, SigmaDecoder):
        message_max = (1 << (spec.graded_spike_bits - 1)) - 1 if spec.graded_spike_bits else 0
        message = bounds["message"] * scale * (1 << SPIKE_EXP)
        if message > message_max:
            return "message", f"|message| <= {message_max} ({spec.graded_spike_bits}-bit graded spikes)", \
                f"{message:.4g}"
        for name, value in (("threshold", abs(float(node.threshold))), ("bias", float(np.max(np.abs(bounds["bias"]))))):
            if round_half_away(value * scale) > VALUE_LIMIT:
                return name, f"|{name}| x scale <= {VALUE_LIMIT} (<< {STATE_SHIFT} fits int32)", f"{value * scale:.4g}"
    inputs = bounds.get("synapse_input", {})
    for name, plan in sources.items():
        failure = _synapse_failure(graph.node(name), node, plan, spec, weight_bits, scale, inputs.get(name))
        if failure is not None:
            return failure
    return None


def _synapse_failure(syn, node, source: GroupScale, spec, weight_bits: int, scale: float, input_bound=None):
    """(field, limit, actual) where the synapse's words cannot be formed at value scale ``scale``, else None."""
    exp = synapse_exponent(syn, node, source, spec, weight_bits, scale, input_bound)
    return exp if isinstance(exp, tuple) else None


def synapse_exponent(syn, node, source: GroupScale, spec, weight_bits: int, scale: float, input_bound=None):
    """The weight exponent of a synapse into a group of value scale ``scale``: the smallest at which every
    word w 2^12 K / m_source fits the word range and W @ messages fits ``STATE_MARGIN`` of int32 before the
    exponent (a ``Conv``: 24 bits; it has no exponent, so 0 must do); W @ messages is at most
    ``input_bound`` (float units: a calibrated range), else every message at its largest. A larger
    exponent coarsens the words instead of the scale. (field, limit, actual) where none fits."""
    size = int(np.prod(node.shape))
    w_scale = scale * (1 << STATE_SHIFT) / source.message_scale
    mode = _sign_mode(syn)
    lo, hi = lq.weight_limits(mode, weight_bits)
    dense = isinstance(syn, Dense)
    exp_lo, exp_hi = spec.weight_exp_range if dense else (0, 0)
    weight = syn.weight if dense else _conv_weight(syn)
    w_pos = max(float(np.max(weight, initial=0.0)), 0.0) * w_scale
    w_neg = max(-float(np.min(weight, initial=0.0)), 0.0) * w_scale
    needed = [exp_lo]
    for value, bound in ((w_pos, hi), (w_neg, -lo)):
        if value > 0:
            needed.append(math.ceil(math.log2(value / bound)) if bound > 0 else exp_hi + 1)
    limit = STATE_MARGIN * (INT32_MAX if dense else CONV_ACTIVATION_MAX)
    if input_bound is None:
        activation = float(np.max(_row_abs_sum(syn, size), initial=0.0)) * w_scale * source.message_bound \
            * source.message_scale
    else:
        activation = input_bound * w_scale * source.message_scale
    if activation > 0:
        needed.append(math.ceil(math.log2(activation / limit)))
    exp = max(needed)
    if exp > exp_hi:
        return ("weight", f"words w x {w_scale:g} within {weight_bits} bits and |W @ messages| <= {limit:.4g} at "
                f"weight_exp <= {exp_hi}", f"needs weight_exp {exp}")
    return exp


def _lower_group(graph, node, synapses: dict, delays: dict[str, int], spec, plans: dict[str, GroupScale],
                 weight_bits: int, calibration=None):
    plan = plans[node.name]
    scale = 2.0 ** plan.scale_exp
    sources = _source_scales(graph, node, plans)
    worst, bounds = _planned_bounds(graph, node, sources, calibration)
    decoder = isinstance(node, SigmaDecoder)
    vth = 0 if decoder else int(round_half_away(float(node.threshold) * scale))
    report = SigmaDeltaLayerReport(node.name, vth, "-", "-", weight_bits=weight_bits, scale_exp=plan.scale_exp,
                                   form="sigma" if decoder else "sigma_delta", calibrated=calibration is not None,
                                   output_scale=plan.message_scale, state_scale=scale * (1 << STATE_SHIFT))
    report.activation_units_per_unit = scale * (1 << SPIKE_EXP)     # sigma_int = sigma x this x 2^6
    report.worst_case = {"sigma": float(np.max(worst["sigma"], initial=0.0))}
    report.worst_case_state_fraction = worst["state"] * report.state_scale / INT32_MAX
    size = int(np.prod(node.shape))
    choices = LoweringChoices(weight_bits, scale_set_by=_scale_set_by(node, report, calibration))
    nodes = []
    for name, syn in synapses.items():
        w_scale = np.full(size, scale * (1 << STATE_SHIFT) / sources[name].message_scale)
        exp = synapse_exponent(syn, node, sources[name], spec, weight_bits, scale,
                               bounds.get("synapse_input", {}).get(name))
        lowered = _lower_synapse(syn, w_scale, delays[name], spec, report, choices, exp, None)
        _report_activation_floor(lowered, report)
        nodes.append(lowered)
    if not decoder:
        report.worst_case.update(act=worst["act"], message=worst["message"])
    if calibration is not None:
        _report_wrap_risk(graph, node, sources, worst, calibration, spec, report)
    if decoder:
        return nodes + [LoihiSigma(node.name, tuple(synapses), tuple(node.shape))], report
    bias = round_half_away(per_neuron_bias(node).reshape(-1) * scale).astype(np.int64)
    report.threshold_error = vth / scale - float(node.threshold)
    report.bias_max_abs_error = float(np.max(np.abs(bias / scale - per_neuron_bias(node).reshape(-1))))
    report.message_floor_lsb = 1.0 / (scale * (1 << SPIKE_EXP))
    group = LoihiSigmaDelta(node.name, tuple(synapses), tuple(node.shape), vth=vth, bias=bias,
                            spike_exp=SPIKE_EXP, state_exp=STATE_EXP)
    return nodes + [group], report


def _scale_set_by(node, report: SigmaDeltaLayerReport, calibration) -> str:
    """What sets a sigma-delta layer's scale, and the fix, for the warning on a synapse whose words all
    round to 0 (``LoweringChoices.scale_set_by``)."""
    if calibration is None:
        return (f"the worst-case range of '{node.name}''s sigma ({report.worst_case['sigma']:.4g}: every input at "
                "its largest at once, usually far above real activity), not by these weights; compile with "
                "--calib and representative inputs to scale the layer by its observed ranges")
    return (f"the calibrated range of '{node.name}' ({CALIBRATION_HEADROOM:g}x what the calibration data "
            "reached), not by these weights; scale these weights up, or check that the calibration inputs are "
            "representative")


def _report_wrap_risk(graph, node, sources: dict[str, GroupScale], worst: dict, calibration, spec,
                      report: SigmaDeltaLayerReport) -> None:
    """Calibrated: the observed ranges, and each quantity whose worst case (every input at its largest at
    once) would exceed its integer range at the chosen scale, as a multiple of that range (warned: unseen
    data as large can wrap it)."""
    scale = 2.0 ** report.scale_exp
    report.calibrated_range = {"state": calibration.state, "message": calibration.message,
                               **{f"{name} W @ messages": v for name, v in calibration.synapse_input.items()}}
    report.calibration_state_fraction = calibration.state * report.state_scale / INT32_MAX
    held = "sigma" if isinstance(node, SigmaDecoder) else "sigma, act and residue"
    risks = [("state", worst["state"] * report.state_scale / INT32_MAX, report.calibration_state_fraction,
              f"{held} can wrap", "int32")]
    if "message" in worst:
        message_max = (1 << (spec.graded_spike_bits - 1)) - 1
        risks.append(("message", worst["message"] * scale * (1 << SPIKE_EXP) / message_max,
                      calibration.message * scale * (1 << SPIKE_EXP) / message_max,
                      "messages can overflow", f"the {spec.graded_spike_bits}-bit graded spikes"))
    size = int(np.prod(node.shape))
    for name, source in sources.items():
        syn = graph.node(name)
        per_unit = scale * (1 << STATE_SHIFT) / 2.0 ** report.weight_exp[name]     # W @ m int per float unit
        limit = INT32_MAX if isinstance(syn, Dense) else CONV_ACTIVATION_MAX
        word = "int32 before the weight exponent" if isinstance(syn, Dense) else "Lava Conv's 24 bits"
        risks.append((f"{name} W @ messages",
                      float(np.max(_row_abs_sum(syn, size), initial=0.0)) * source.message_bound * per_unit / limit,
                      calibration.synapse_input[name] * per_unit / limit, f"{name}: W @ messages can wrap", word))
    for key, fraction, observed, what, range_name in risks:
        if fraction > 1.0:
            report.wrap_risk[key] = fraction
            report.warnings.append(f"{what}: every input at its largest at once would reach {fraction:.3g}x "
                                   f"{range_name} (calibration peak: {observed:.2%} of it)")


def _report_pipeline_fill(group, latency: int, report: SigmaDeltaLayerReport) -> None:
    """Before its first input arrives (``latency`` steps) a lowered group already computes act = relu(bias).
    Where that stays below vth nothing is sent and the residue carries it, so every later message equals
    the float group's; where it reaches vth the group sends it early (warned: the reader's decoded values
    then differ by less than the threshold until the residues agree again)."""
    if not isinstance(group, LoihiSigmaDelta) or latency == 0:
        return
    early = int(np.count_nonzero(np.maximum(np.asarray(group.bias), 0) >= group.vth))
    if early:
        report.warnings.append(f"{early} neuron(s) with relu(bias) >= threshold send their bias during the "
                               f"{latency}-step pipeline fill, before their first input (the float group sends "
                               "it with its first input): decoded values differ by less than the threshold")


def _report_activation_floor(lowered, report: SigmaDeltaLayerReport) -> None:
    """A negative exponent floors each step's summed activation (``>> -e``): exact where every word is a
    multiple of 2^-e, else up to one sigma unit (1 / state_scale) per step is lost."""
    exp = int(getattr(lowered, "weight_exp", 0))
    if exp < 0 and np.any(np.asarray(lowered.weight_mant, np.int64) % (1 << -exp)):
        report.activation_floor_lsb[lowered.name] = 1.0 / report.state_scale
