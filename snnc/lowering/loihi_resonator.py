"""Float ``Resonator`` / ``ResonatorIzhikevich`` groups -> Lava's RF / RF_IZ fixed point (``LoihiRF`` /
``LoihiRFIzhikevich``, ``snnc.arith.resonator``), with a per-layer report.

Scale. Lava adds the activation as ``a << 6`` and compares the state with ``vth << 6``, so with weights
W = w * 2^k (an 8-bit mantissa times 2^weight_exp, ``_lower_synapse``) the lowered states are
re_int = re * 2^(6 + k), im_int = im * 2^(6 + k), and vth = round(threshold * 2^k): ``re >= threshold``
becomes ``re_int >= vth << 6`` up to the rounding of vth (RF_IZ's reset ``im = (vth << 6) - 1`` is the
float reset ``im = threshold`` less one state unit).

Decay words. The node carries the ``.net`` words ``sin_decay`` / ``cos_decay``; Lava computes with
``snnc.arith.resonator.lava_decay_words`` of them (netx's float round trip, possibly one lower). The
words chosen are the pair, within ``WORD_SEARCH`` of the exact values, whose Lava words are nearest
(1 - decay) sin(2 pi / period_steps) * 4096 and (1 - decay) cos(...) * 4096; the error is reported.

k is the finest scale at which (1) the worst-case state stays inside Lava's 24-bit clip, (2) vth fits
``vth << 6`` in 24 bits (2^17 - 1), (3) the largest weight fits an 8-bit word at the largest weight
exponent. The worst case: |z'| <= g |z| + |a| with g = sqrt(s^2 + c^2) / 4096 from Lava's words, so
|z| <= |a| / (1 - g), |a| <= hypot(sum |w_re|, sum |w_im|) per neuron (every input spiking); RF_IZ's
reset state has |z| < vth << 6. k is first taken from that float bound with ``MARGIN``, then checked on
the integers actually lowered (the activations of the rounded weight words, plus the at most 2 sqrt(2)
units rtz adds per step) and lowered further while it does not fit, so Lava's clip never engages.
Refused (``QuantizationError`` naming node, field, limit, value): a decay that rounds to no decay with input (no bound), a threshold that rounds to 0, no k fitting. Only
Dense synapses without bias (netx builds RF only in ComplexDense blocks, which have neither).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import resonator as rf
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.nodes import Dense
from snnc.ir.resonator_nodes import DECAY_WORD_RANGE
from snnc.neurons import model_of
from snnc.lowering.loihi_lowering import LayerReport, LoweringChoices, _lower_synapse, _row_abs_sum, _sign_mode

STATE_EXP = 6
VTH_LIMIT = (1 << (23 - STATE_EXP)) - 1     # vth << 6 inside the 24-bit state (LoihiRF's field rule)
MARGIN = 0.98
WORD_SEARCH = 2          # file words tried on each side of the exact value
RTZ_SLACK = 2 * math.sqrt(2)   # |z| the two rtz shifts of one step can add, in state units


@dataclass
class ResonatorLayerReport(LayerReport):
    """``LayerReport`` plus the resonator's format: k (states re * 2^(6 + k)), the decay words in the file
    and as Lava computes with them, their error against the float decay, the threshold's rounding and the
    worst-case state as a fraction of the 24-bit clip."""

    scale_exp: int = 0
    decay_words: tuple[int, int] = (0, 0)
    lava_decay_words: tuple[int, int] = (0, 0)
    decay_word_error: dict[str, float] = field(default_factory=dict)
    threshold_error: float = 0.0
    worst_case_state_fraction: float = 0.0


def lower_resonator(neuron, synapses: dict, delays: dict[str, int], spec, latency: int = 0,
                    choices: LoweringChoices = LoweringChoices(), calibrated: bool = False):
    """Quantize one float resonator group and its two Dense synapses (real, imag); returns (nodes,
    ResonatorLayerReport). The scale is the worst case: calibration data and "sbc" rounding are not used
    (the report says so when they were given)."""
    _check_synapses(neuron, synapses)
    words, lava_words, errors = decay_words(neuron)
    gain = math.hypot(*lava_words) / rf.P_SCALE
    size = int(np.prod(neuron.shape))
    parts = [_row_abs_sum(s, size) for s in synapses.values()]
    drive = float(np.max(np.hypot(*parts), initial=0.0))
    if drive > 0:
        _check_decays(neuron, lava_words, gain)
    model = model_of(neuron)
    finest = _finest_scale(neuron, synapses, drive, gain, model.loihi_resets_to_threshold, spec, choices.weight_bits)
    k, vth, nodes, report, bound = _fit_scale(neuron, synapses, delays, spec, choices, finest,
                                              (words, lava_words, errors, drive, gain))
    report.worst_case_state_fraction = bound / rf.VOLTAGE_LIMIT
    if calibrated or choices.rounding != "nearest":
        report.warnings.append("resonator groups are scaled by their worst case and rounded to nearest: "
                               "calibration data and 'sbc' rounding were not used for this group")
    group = model.loihi_node_type(neuron.name, tuple(synapses), tuple(neuron.shape), sin_decay=words[0],
                                  cos_decay=words[1], vth=vth)
    return nodes + [group], report


def _fit_scale(neuron, synapses: dict, delays: dict[str, int], spec, choices: LoweringChoices, finest: int, found):
    """From k = ``finest`` down: the first k whose lowered words keep the integer worst case inside the clip;
    (k, vth, synapse nodes, report, bound). Refused where vth rounds to 0 first."""
    words, lava_words, errors, drive, gain = found
    resets_to_threshold = model_of(neuron).loihi_resets_to_threshold
    size = int(np.prod(neuron.shape))
    k = finest
    while True:
        vth = int(round(float(neuron.threshold) * 2.0 ** k))
        if vth == 0:
            _refuse_scale(neuron, finest, k, drive / (1 - gain) if drive > 0 else 0.0)
        report = _report(neuron, k, vth, words, lava_words, errors, choices.weight_bits)
        scale = np.full(size, 2.0 ** k)
        nodes = [_lower_synapse(s, scale, delays[name], spec, report, LoweringChoices(choices.weight_bits), None, None)
                 for name, s in synapses.items()]
        bound = _integer_bound(nodes, gain, vth, resets_to_threshold)
        if bound <= rf.VOLTAGE_LIMIT:
            return k, vth, nodes, report, bound
        k -= 1


def decay_words(neuron) -> tuple[tuple[int, int], tuple[int, int], dict[str, float]]:
    """(file words, the words Lava computes with, Lava's words less the exact float values in units of 1):
    the file pair near the exact words whose Lava words are nearest them (slayer's range: sin >= 1, cos >= 0;
    a word that small is kept and its error reported)."""
    gain, phi = 1.0 - float(neuron.decay), 2.0 * math.pi / float(neuron.period_steps)
    exact = (gain * math.sin(phi) * rf.P_SCALE, gain * math.cos(phi) * rf.P_SCALE)
    best = None
    for s in _candidates(exact[0], "sin_decay"):      # exact is in [0, 4096]: never an empty search
        for c in _candidates(exact[1], "cos_decay"):
            lava = rf.lava_decay_words(s, c)
            key = (max(abs(lava[0] - exact[0]), abs(lava[1] - exact[1])), abs(s - exact[0]) + abs(c - exact[1]))
            if best is None or key < best[0]:
                best = (key, (s, c), lava)
    _, words, lava = best
    errors = {"sin": (lava[0] - exact[0]) / rf.P_SCALE, "cos": (lava[1] - exact[1]) / rf.P_SCALE}
    return words, lava, errors


def _candidates(exact: float, field_name: str) -> list[int]:
    lo, hi = DECAY_WORD_RANGE[field_name]
    centre = int(round(exact))
    return [w for w in range(centre - WORD_SEARCH, centre + WORD_SEARCH + 1) if lo <= w <= hi]


def _check_synapses(neuron, synapses: dict) -> None:
    """Two Dense synapses without bias (netx's ComplexDense: Lava's RF has no bias, no convolution)."""
    for name, syn in synapses.items():
        if not isinstance(syn, Dense):
            raise UnsupportedError(name, "type", "Dense into a resonator (netx builds RF neurons only in "
                                   "ComplexDense blocks)", type(syn).__name__)
        if syn.bias is not None:
            raise QuantizationError(name, "bias", "none into a resonator (Lava's RF and RF_IZ have no bias; "
                                    "its inputs are read apart, so it cannot be folded)", "a bias")


def _finest_scale(neuron, synapses: dict, drive: float, gain: float, resets_to_threshold: bool, spec,
                  bits: int) -> int:
    """The largest k keeping the float worst-case state (``MARGIN`` of the clip), vth and the weights in
    their words."""
    threshold = float(neuron.threshold)
    state = max(drive / (1 - gain) if drive > 0 else 0.0, threshold if resets_to_threshold else 0.0)
    limits = [math.floor(math.log2(VTH_LIMIT / threshold))]
    if state > 0:
        limits.append(math.floor(math.log2(MARGIN * rf.VOLTAGE_LIMIT / state)) - STATE_EXP)
    for syn in synapses.values():
        w_max = float(np.max(np.abs(syn.weight), initial=0.0))
        lo, hi = lq.weight_limits(_sign_mode(syn), bits)
        if w_max > 0:
            limits.append(math.floor(math.log2((hi or -lo) * 2.0 ** spec.weight_exp_range[1] / w_max)))
    return min(limits)


def _check_decays(neuron, lava_words: tuple[int, int], gain: float) -> None:
    """A group with input needs a decaying state: no bound otherwise (and a float decay of 0 would become
    the small decay of its rounded words, a silent change)."""
    if float(neuron.decay) == 0:
        raise QuantizationError(neuron.name, "decay", "> 0 for a group with input (a state that never decays "
                                "has no bound)", 0.0)
    if gain >= 1:
        raise QuantizationError(neuron.name, "decay", "one whose decay words shrink the state (Lava runs sin/cos "
                                f"{lava_words[0]}/{lava_words[1]}: |c + i s| / 4096 = {gain:.6f} >= 1, no bound)",
                                float(neuron.decay))


def _refuse_scale(neuron, finest: int, k: int, state: float) -> None:
    """The threshold rounds to 0 at the finest scale the weights and state allow (or, after lowering
    k for the rounded words, at the scale that fits)."""
    threshold = float(neuron.threshold)
    if k == finest:
        raise QuantizationError(neuron.name, "threshold", f">= {2.0 ** -(finest + 1):.3g} (half a vth unit at k = {finest}, "
                                "the finest scale the weights and the worst-case state allow)", threshold,
                                "it would round to 0")
    raise QuantizationError(neuron.name, "state range", f"a scale k with the worst-case |state| * 2^(6+k) <= "
                            f"{rf.VOLTAGE_LIMIT} and round(threshold * 2^k) >= 1",
                            f"threshold {threshold:.4g}, worst-case |state| {state:.4g}",
                            "smaller weights or a larger decay")


def _integer_bound(nodes: list, gain: float, vth: int, resets_to_threshold: bool) -> float:
    """Worst-case |z| in state units on the lowered words: every input spiking, Lava Dense's exponent on
    the summed activation (a floor shift: at most one more unit), plus rtz's slack, over 1 - g."""
    activations = []
    for node in nodes:
        mant = np.abs(np.asarray(node.weight_mant, np.int64)).sum(axis=1)
        activations.append(np.ceil(mant * 2.0 ** int(node.weight_exp)))
    drive = float(np.max(np.hypot(*activations), initial=0.0)) * (1 << STATE_EXP)
    bound = (drive + RTZ_SLACK) / (1 - gain) if drive > 0 else 0.0
    return max(bound, float(vth << STATE_EXP) if resets_to_threshold else 0.0)


def _report(neuron, k: int, vth: int, words, lava_words, errors, bits: int) -> ResonatorLayerReport:
    report = ResonatorLayerReport(neuron.name, vth, "-", "-", weight_bits=bits, scale_exp=k, decay_words=words,
                                  lava_decay_words=lava_words, decay_word_error=errors,
                                  threshold_error=vth / 2.0 ** k - float(neuron.threshold))
    report.activation_units_per_unit = 2.0 ** k
    return report
