"""The Loihi part of the compile summary: how ``lower_loihi`` quantized each layer."""
from __future__ import annotations


def lowering_lines(report: dict) -> list[str]:
    """Weight format (when not the default), then per layer: vth, du, dv and per synapse the weight
    exponent, relative RMS error and share of nonzero weights that round to 0; then the warnings."""
    lowering = report["passes"].get("lower_loihi", {})
    lines = quantization_lines(lowering)
    lines += [f"{'layer':<16}{'vth':>8}{'du':>6}{'dv':>6}  weight exp / rel. RMS error / zeroed"]
    warnings = []
    for name, layer in lowering.get("layers", {}).items():
        zeroed = layer.get("weight_zeroed", {})
        weights = ", ".join(f"{k}: 2^{layer['weight_exp'][k]} {v:.2%}{_zeroed(zeroed.get(k))}"
                            for k, v in layer["weight_rel_rms_error"].items())
        lines.append(f"{name:<16}{layer['vth']:>8} {_words(layer['du']):>5} {_words(layer['dv']):>5}  {weights}")
        warnings += [f"warning: {name}: {text}" for text in layer["warnings"]]
    return lines + fixed_point_lines(lowering) + sigma_delta_lines(lowering) + process_lines(lowering) + warnings


def fixed_point_lines(lowering: dict) -> list[str]:
    """Per Izhikevich group (its report has ``frac_bits``): the state scale chosen and the worst case it
    holds (``snnc.lowering.loihi_izhikevich``); the table's vth is its threshold word, du its current decay."""
    lines = []
    for name, layer in lowering.get("layers", {}).items():
        if "frac_bits" in layer:
            worst = layer["worst_case"]
            lines.append(f"{name}: Izhikevich fixed point, i/v/u at 2^-{layer['frac_bits']} in 24 bits; worst case "
                         f"v >= {worst['v_lo']:.1f} mV, u in [{worst['u_lo']:.1f}, {worst['u_hi']:.1f}], "
                         f"i in [{worst['i_lo']:.1f}, {worst['i_hi']:.1f}] mV/ms: no saturation below the threshold")
    return lines


def sigma_delta_lines(lowering: dict) -> list[str]:
    """Per float sigma-delta group (its report has ``output_scale``): the value scale chosen
    (``snnc.lowering.loihi_sigma_delta``; calibrated: the observed state range), what its integer outputs
    are in float units, and its roundings. What can wrap is among the warnings."""
    lines = []
    for name, layer in lowering.get("layers", {}).items():
        if "output_scale" not in layer:
            continue
        calibrated = (f" (calibrated: observed |state| {layer['calibration_state_fraction']:.2%} of int32)"
                      if layer.get("calibrated") else "")
        head = (f"{name}: sigma-delta value scale 2^{layer['scale_exp']}{calibrated}: outputs = float x "
                f"{layer['output_scale']:g}")
        if layer.get("form") == "sigma":
            lines.append(head + " (a readout: its sigma)")
            continue
        floor = layer["message_floor_lsb"]
        lines.append(f"{head}; threshold error {layer['threshold_error']:.3g}, bias error "
                     f"{layer['bias_max_abs_error']:.3g}; messages " + (f"floored to {floor:.3g}" if floor else "exact"))
    return lines


def process_lines(lowering: dict) -> list[str]:
    """Which neuron groups run as stock Lava processes (ready for Loihi 2 hardware through lava-loihi) and
    which as snnc's own Lava processes (Lava's CPU simulation runs them; a chip needs a microcode neuron)."""
    own = lowering.get("snnc_processes", {})
    if not own:
        count = len(lowering.get("layers", {}))
        return [f"Lava processes: all {count} neuron groups stock (ready for Loihi 2 hardware through "
                "lava-loihi)"] if count else []
    stock = [name for name in lowering.get("layers", {}) if name not in own]
    lines = [f"Lava processes: {len(stock)} stock (ready for Loihi 2 hardware through lava-loihi)"
             + (f": {', '.join(stock)}" if stock else ""),
             f"  {len(own)} snnc process(es), bit-exact in Lava's fixed_pt simulation; on Loihi 2 hardware "
             "each needs a microcode neuron:"]
    return lines + [f"    {name}: {what}" for name, what in own.items()]


def quantization_lines(lowering: dict) -> list[str]:
    """How weights were quantized when not the default (bits, rounding, calibration)."""
    layers = list(lowering.get("layers", {}).values())
    if not layers or not any(l.get("calibrated") or l.get("weight_bits", 8) != 8 for l in layers):
        return []
    first = layers[0]
    how = "calibrated (PTQ)" if any(l.get("calibrated") for l in layers) else "worst-case scaling"
    return [f"weights: {first['weight_bits']}-bit, {first['rounding']} rounding, {how}"]


def _zeroed(entry: dict | None) -> str:
    """`` / 1.6% zeroed``: a synapse's share of nonzero weights that round to 0 (empty if not reported)."""
    return "" if entry is None else f" / {entry['fraction']:.1%} zeroed"


def _words(value) -> str:
    """A decay word, or the range of per-neuron words (``410..819``)."""
    if isinstance(value, list):
        return f"{min(value)}..{max(value)}" if min(value) != max(value) else str(value[0])
    return str(value)
