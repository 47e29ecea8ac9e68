"""The Loihi part of the compile summary: how ``lower_loihi`` quantized each layer."""
from __future__ import annotations


def lowering_lines(report: dict) -> list[str]:
    """Weight format (when not the default), then per layer: vth, du, dv, weight exponents and errors."""
    lowering = report["passes"].get("lower_loihi", {})
    lines = quantization_lines(lowering)
    lines += [f"{'layer':<16}{'vth':>8}{'du':>6}{'dv':>6}  {'weight exp / rel. RMS error':<34}warnings"]
    for name, layer in lowering.get("layers", {}).items():
        weights = ", ".join(f"{k}: 2^{layer['weight_exp'][k]} {v:.2%}"
                            for k, v in layer["weight_rel_rms_error"].items())
        lines.append(f"{name:<16}{layer['vth']:>8}{layer['du']:>6}{layer['dv']:>6}  {weights:<34}"
                     f"{'; '.join(layer['warnings']) or '-'}")
    return lines


def quantization_lines(lowering: dict) -> list[str]:
    """How weights were quantized when not the default (bits, rounding, calibration)."""
    layers = list(lowering.get("layers", {}).values())
    if not layers or not any(l.get("calibrated") or l.get("weight_bits", 8) != 8 for l in layers):
        return []
    first = layers[0]
    how = "calibrated (PTQ)" if any(l.get("calibrated") for l in layers) else "worst-case scaling"
    return [f"weights: {first['weight_bits']}-bit, {first['rounding']} rounding, {how}"]
