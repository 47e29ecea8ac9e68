"""Float ``Izhikevich`` groups -> snnc's Loihi-style fixed point (``LoihiIzhikevich``), with a per-layer report.

The Izhikevich equation has fixed units (mV, mV/ms) and a v^2 term, so unlike the LIF there is no free
threshold scale: every state is value * 2^S in a 24-bit register (``snnc.arith.loihi_izhikevich``) and S
is the finest scale at which the worst-case states fit. The worst case, per neuron, with every excitatory
(inhibitory) input spiking at every step:

* current: i in [-N / cd, P / cd] (P, N: summed positive / negative weights; cd the current's decay);
* recovery: u' = (1 - h a) u + h a b v (+ d at a spike) is a convex combination for 0 < h a <= 1, so
  u in [min(u0, b v) + min(d, 0) / (h a), max(u0, b v) + max(d, 0) / (h a)] over the stored v range;
* voltage: g(v) = v + h (k2 v^2 + k1 v + k0) is at least its vertex value g*, so every v' >= g* + h (i_lo
  + bias - u_hi); a stored v is that, c, v_init, or below the threshold. v' above the threshold may
  saturate: harmless, it is replaced by c in the same step.

These bounds depend on each other through v_lo and u_hi; they are iterated to a fixed point (refused where
they do not settle). S is the largest in ``FRAC_BITS_RANGE`` keeping all of them (and c, d, the bias,
140 and the threshold) within ``MARGIN`` of 2^23, and keeping the largest weight within 8-bit words at
the target's largest weight exponent (weights are w * 2^(S - 6) = mantissa * 2^exp, since the activation
enters as a << 6). Refused at compile time (``QuantizationError``): no S fits, h a outside (0, 1], a
coefficient that rounds to 0, a current that never decays but has input, 64-bit intermediates that could
overflow. Reported: S and its LSB, each coefficient's rounding error, the worst-case bounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import loihi_izhikevich as lz
from snnc.errors import QuantizationError
from snnc.ir.nodes import Comparison, Dense, LoihiIzhikevich
from snnc.lowering.loihi_lowering import (
    LayerReport, LoweringChoices, _lower_synapse, _row_abs_max, _row_abs_sum, _row_negative_sum, _sign_mode,
)

MARGIN = 0.98
BOUND_ROUNDS = 64
DIVERGED = 1e9       # mV: bounds beyond this did not settle


@dataclass
class IzhikevichLayerReport(LayerReport):
    """``LayerReport`` plus the fixed-point format: S, the LSB in mV, coefficient errors, worst-case bounds."""

    frac_bits: int = 0
    lsb_mv: float = 0.0
    coefficient_errors: dict[str, float] = field(default_factory=dict)
    worst_case: dict[str, float] = field(default_factory=dict)


def lower_izhikevich(neuron, synapses: dict, delays: dict[str, int], spec, latency: int = 0,
                     choices: LoweringChoices = LoweringChoices(), calibrated: bool = False):
    """Quantize one float Izhikevich group and its input synapses; returns (nodes, IzhikevichLayerReport).
    ``choices.weight_bits`` applies; weights are rounded to nearest (no calibration Hessian: the scale is
    the worst case, so calibration data and "sbc" rounding are not used, and the report says so)."""
    size = int(np.prod(neuron.shape))
    p = {k: _per_neuron(getattr(neuron, k), size) for k in ("a", "b", "c", "d", "bias", "v_init", "u_init")}
    h = float(neuron.step_ms)
    ha = h * p["a"]
    if np.any(ha <= 0) or np.any(ha > 1):
        raise QuantizationError(neuron.name, "a", f"0 < a * step_ms <= 1 (step_ms {h:g})", _range(ha / h),
                                "the fixed-point bound on u needs a decaying recovery variable")
    di = int(lz.encode(float(np.mean(neuron.current_decay)), lz.DECAY_BITS))
    bounds = _worst_case(neuron, synapses, p, di, size)
    bits = choices.weight_bits
    frac_bits = _choose_frac_bits(neuron, synapses, bounds, spec, bits)
    words = _words(neuron, p, di, frac_bits)
    report = IzhikevichLayerReport(neuron.name, int(words["vth"]), di, "-", frac_bits=frac_bits,
                                   lsb_mv=2.0 ** -frac_bits, worst_case=bounds, weight_bits=bits)
    if calibrated or choices.rounding != "nearest":
        report.warnings.append("Izhikevich groups are scaled by their worst case and rounded to nearest: "
                               "calibration data and 'sbc' rounding were not used for this group")
    report.activation_units_per_unit = 2.0 ** (frac_bits - lq.ACTIVATION_SHIFT)
    report.coefficient_errors = _coefficient_errors(neuron, p, words, frac_bits)
    report.current_decay_error = di / lz.DECAY_UNITY - float(np.mean(neuron.current_decay))
    report.bias_max_abs_error = report.coefficient_errors["bias"]
    scale = np.full(size, 2.0 ** (frac_bits - lq.ACTIVATION_SHIFT))
    nodes = [_lower_synapse(s, scale, delays[name], spec, report, LoweringChoices(bits), None, None)
             for name, s in synapses.items()]
    _check_products(neuron.name, words, frac_bits, nodes)
    group = LoihiIzhikevich(neuron.name, tuple(synapses), tuple(neuron.shape), frac_bits=frac_bits,
                            v_init=_compact(lz.encode(p["v_init"], frac_bits)),
                            u_init=_compact(lz.encode(p["u_init"], frac_bits)), hold_steps=int(latency),
                            comparison=Comparison(neuron.comparison), **words)
    return nodes + [group], report


def _per_neuron(value, size: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, np.float64).reshape(-1), (size,)).astype(np.float64)


def _range(values: np.ndarray) -> str:
    return f"[{float(np.min(values)):g}, {float(np.max(values)):g}]"


def _worst_case(neuron, synapses: dict, p: dict, di: int, size: int) -> dict[str, float]:
    """Worst-case bounds (float units) of i, u and the stored v, iterated to a fixed point."""
    negative = sum((_row_negative_sum(s, size) for s in synapses.values()), np.zeros(size))
    positive = sum((_row_abs_sum(s, size) for s in synapses.values()), np.zeros(size)) - negative
    if di == 0 and np.any(positive + negative > 0):
        raise QuantizationError(neuron.name, "current_decay", "> 0 for a group with input (a current that never "
                                "decays has no bound)", float(np.mean(neuron.current_decay)))
    cd = max(di, 1) / lz.DECAY_UNITY
    i_hi, i_lo = positive / cd, -negative / cd
    h, k2, k1, k0 = float(neuron.step_ms), neuron.v2_coeff, neuron.v_coeff, neuron.constant
    if not k2 > 0:
        raise QuantizationError(neuron.name, "v2_coeff", "> 0 (the bound on v needs an upward parabola)", k2)
    vertex = -(1 + h * k1) / (2 * h * k2)
    g_min = vertex + h * (k2 * vertex ** 2 + k1 * vertex + k0)
    v_top = np.maximum(np.maximum(p["c"], p["v_init"]), neuron.threshold)
    v_lo = np.minimum(p["c"], p["v_init"])
    ha = h * p["a"]
    settled = False
    for _ in range(BOUND_ROUNDS):
        bv = np.stack([p["b"] * v_lo, p["b"] * v_top, p["u_init"]])
        u_hi = bv.max(axis=0) + np.maximum(p["d"], 0) / ha
        u_lo = bv.min(axis=0) + np.minimum(p["d"], 0) / ha
        new_lo = np.minimum(v_lo, g_min + h * (i_lo + p["bias"] - u_hi))
        settled = bool(np.all(new_lo == v_lo))
        if settled or np.min(new_lo) < -DIVERGED:
            break
        v_lo = new_lo
    if not settled:
        raise QuantizationError(neuron.name, "a/b/d", "parameters whose worst-case v and u settle (b v feeds u, "
                                "u lowers v)", f"v_lo {float(np.min(new_lo)):.3g} mV after {BOUND_ROUNDS} rounds")
    return {"i_lo": float(np.min(i_lo)), "i_hi": float(np.max(i_hi)), "u_lo": float(np.min(u_lo)),
            "u_hi": float(np.max(u_hi)), "v_lo": float(np.min(v_lo)), "v_hi": float(np.max(v_top))}


def _choose_frac_bits(neuron, synapses: dict, bounds: dict, spec, weight_bits: int) -> int:
    """The largest S in ``FRAC_BITS_RANGE`` at which every bound fits 24 bits (with ``MARGIN``) and the
    largest weight fits an 8-bit word at the largest weight exponent."""
    parts = {k: abs(v) for k, v in bounds.items()}
    parts.update({f: float(np.max(np.abs(getattr(neuron, f)))) for f in ("c", "d", "bias", "threshold", "constant")})
    biggest = max(parts.values())
    limits = [math.floor(math.log2(MARGIN * lz.STATE_LIMIT / biggest)) if biggest > 0 else lz.FRAC_BITS_RANGE[1]]
    for syn in synapses.values():
        size = int(np.prod(neuron.shape))
        w_max = float(np.max(_row_abs_max(syn, size), initial=0.0))
        lo, hi = lq.weight_limits(_sign_mode(syn), weight_bits)
        exp_max = spec.weight_exp_range[1] if isinstance(syn, Dense) else 0
        if w_max > 0:
            limits.append(lq.ACTIVATION_SHIFT + math.floor(math.log2((hi or -lo) * 2.0 ** exp_max / w_max)))
    frac_bits = min(min(limits), lz.FRAC_BITS_RANGE[1])
    if frac_bits < lz.FRAC_BITS_RANGE[0]:
        which = max(parts, key=parts.get)
        raise QuantizationError(neuron.name, "state range", f"|state| <= {MARGIN * lz.STATE_LIMIT / 2 ** lz.FRAC_BITS_RANGE[0]:.0f} "
                                f"(24 bits at 2^-{lz.FRAC_BITS_RANGE[0]} mV) and weights within {weight_bits}-bit words",
                                f"worst case {which} {bounds.get(which, parts[which]):.4g}",
                                "smaller weights, bias or d, or a larger a * step_ms")
    return frac_bits


def _words(neuron, p: dict, di: int, s: int) -> dict:
    """The ``LoihiIzhikevich`` words; a nonzero coefficient that rounds to 0 is refused."""
    k = lz.COEFF_FRAC_BITS
    h = float(neuron.step_ms)
    words = {"di": di, "k2": int(lz.encode(neuron.v2_coeff, k)), "k1": int(lz.encode(neuron.v_coeff, k)),
             "hk": int(lz.encode(h, k)), "k0": int(lz.encode(neuron.constant, s)),
             "vth": int(lz.encode(neuron.threshold, s)), "ahk": _compact(lz.encode(h * p["a"], k)),
             "bk": _compact(lz.encode(p["b"], k))}
    words.update({f: _compact(lz.encode(p[f], s)) for f in ("bias", "c", "d")})
    for field_name, real, word in (("v2_coeff", neuron.v2_coeff, words["k2"]), ("step_ms", h, words["hk"]),
                                   ("a", h * p["a"], words["ahk"]), ("b", p["b"], words["bk"])):
        if np.any((np.asarray(real) != 0) & (np.asarray(word) == 0)):
            raise QuantizationError(neuron.name, field_name, f"|value| >= 2^-{k + 1} (a 2^-{k} word)", _range(np.asarray(real)),
                                    "it would round to 0")
    return words


def _coefficient_errors(neuron, p: dict, words: dict, s: int) -> dict[str, float]:
    """Largest |word - value| per coefficient, in the coefficient's own units."""
    k, h = lz.COEFF_FRAC_BITS, float(neuron.step_ms)
    pairs = {"v2_coeff": (words["k2"], neuron.v2_coeff, k), "v_coeff": (words["k1"], neuron.v_coeff, k),
             "step_ms": (words["hk"], h, k), "a*step_ms": (words["ahk"], h * p["a"], k), "b": (words["bk"], p["b"], k),
             "constant": (words["k0"], neuron.constant, s), "threshold": (words["vth"], neuron.threshold, s),
             "bias": (words["bias"], p["bias"], s), "c": (words["c"], p["c"], s), "d": (words["d"], p["d"], s)}
    return {name: float(np.max(np.abs(lz.decode(w, bits) - np.asarray(real))))
            for name, (w, real, bits) in pairs.items()}


def _check_products(name: str, words: dict, frac_bits: int, synapse_nodes: list) -> None:
    """Refuse words whose 64-bit intermediate products could overflow."""
    activation = 0
    for node in synapse_nodes:
        mant = np.abs(np.asarray(getattr(node, "weight_mant", 0), np.int64))
        total = int(mant.reshape(mant.shape[0], -1).sum(axis=1).max(initial=0)) if mant.ndim else 0
        activation += total << max(int(getattr(node, "weight_exp", 0)), 0)
    bound = lz.product_bound(words, frac_bits, activation)
    if bound > lz.PRODUCT_LIMIT:
        raise QuantizationError(name, "intermediate product", "< 2^63 (64-bit)", f"2^{bound.bit_length()}",
                                "the coefficients are too large for the fixed-point step")


def _compact(words: np.ndarray):
    """One int where every neuron has the same word, else the (size,) array."""
    flat = np.asarray(words, np.int64).reshape(-1)
    return int(flat[0]) if np.all(flat == flat[0]) else flat.copy()
