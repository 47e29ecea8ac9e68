"""The SpiNNaker parts of ``snnc compile`` / ``run`` / ``verify`` (called from ``snnc.compiler.commands``)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from snnc.ir.graph import Graph
from snnc.neurons import is_neuron_in
from snnc.simulators.aligned import predicted_classes
from snnc.simulators.spinnaker_emulator import run_spinnaker
from snnc.simulators.traces import first_divergence


def write_artifacts(graph: Graph, out: Path) -> list[Path]:
    """The standalone PyNN script and its connection lists next to the compiled IR."""
    from snnc.backends.spinnaker.script import emit_script
    return emit_script(graph, out)


def report_lines(report: dict) -> list[str]:
    """Per population: voltage scale, time constants, ring-buffer shifts and per projection the relative
    RMS weight error and share of nonzero weights that round to word 0; then the warnings."""
    lowering = report["passes"].get("lower_spinnaker", {})
    layers = lowering.get("layers", {})
    lines = time_lines(lowering.get("time_mapping")) + [f"{'layer':<12}{'mV/unit':>9}{'tau_m':>9}{'tau_syn':>9}{'shift e/i':>10}  "
             "weight rel. RMS error / zeroed"]
    warnings = []
    for name, layer in layers.items():
        zeroed = layer.get("weight_zeroed", {})
        errors = ", ".join(f"{k}: {v:.3%}{_zeroed(zeroed.get(k))}"
                           for k, v in layer["weight_rel_rms_error"].items())
        shifts = "/".join(str(s) for s in layer["ring_buffer_shift"])
        lines.append(f"{name:<12}{layer['voltage_scale_mv']:>9.3f}{_ms(layer['tau_m_ms']):>9}"
                     f"{_ms(layer['tau_syn_ms']):>9}{shifts:>10}  {errors}")
        warnings += [f"warning: {name}: {text}" for text in layer["warnings"]]
    return lines + warnings


def time_lines(mapping: dict | None) -> list[str]:
    """How model time maps onto the chip's ticks (one step per tick; nothing if not recorded)."""
    if not mapping:
        return []
    dt, tick = mapping["model_dt_s"], mapping["tick_s"]
    pace = "" if math.isclose(dt, tick) else \
        f"; the chip runs {mapping['time_scale']:.3g}x {'slower' if tick > dt else 'faster'} than the model's dt"
    return [f"time: one model step (dt {dt:g} s) = one sPyNNaker tick ({tick * 1e3:g} ms), per-step decays kept "
            f"exactly{pace}"]


def nest_runner():
    """A runner (graph, x, record_state) -> Traces that runs the emitted PyNN network on NEST (states are not
    recorded)."""
    from snnc.backends.spinnaker.nest_run import run_nest
    return lambda graph, x, record_state=False: run_nest(graph, x)


def verify_against_nest(lowered: Graph, x: np.ndarray, y) -> tuple[bool, list[str]]:
    """Emulator vs NEST 3.10, tick by tick after NEST's documented lag (1 tick per layer; one-step recurrent
    projections replay the emulator's spikes, ``nest_replays``), every disagreement explained by a membrane
    potential within the derived bound of the threshold; the last line names the first spike difference."""
    pad = max(lowered.latency.values(), default=0)
    x = np.concatenate([x, np.zeros((x.shape[0], pad, *x.shape[2:]), x.dtype)], axis=1)
    emulated = run_spinnaker(lowered, x, record_state=True)
    lines = []
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    nest = run_nest(lowered, x, replayed=emulated)
    results = compare_with_nest(lowered, emulated, nest)
    lines += [r.line() for r in results] + [first_nest_divergence_line(lowered, emulated, nest)]
    output = lowered.outputs[0]
    if y is not None:
        for label, traces in (("emulator", emulated), ("NEST", nest)):
            lines.append(f"{label} accuracy: {np.mean(predicted_classes(traces, output) == y):.4f}")
    return all(r.ok for r in results), lines


def first_nest_divergence_line(lowered: Graph, emulated, nest) -> str:
    """The earliest tick (on the emulator's grid, NEST's lag removed) where a population's spikes differ, with
    its population, sample and neuron, or that none differs."""
    names = [n.name for n in lowered.nodes if is_neuron_in(n, "spinnaker")]
    divergence = first_divergence(emulated, nest, names, with_states=False)
    if divergence is None:
        return "emulator vs NEST: identical spikes at every tick of every population"
    return (f"emulator vs NEST: first spike difference at population '{divergence.node}', tick {divergence.step}, "
            f"sample {divergence.batch}, neuron {divergence.neuron}: emulator {divergence.expected:g}, "
            f"NEST {divergence.actual:g}")


def _zeroed(entry: dict | None) -> str:
    """`` / 1.6% zeroed``: a synapse's share of nonzero weights that round to 0 (empty if not reported)."""
    return "" if entry is None else f" / {entry['fraction']:.1%} zeroed"


def _ms(value) -> str:
    """A time constant in ms, or ``per-n`` for per-neuron values (the report holds each)."""
    return f"{value:.4f}" if not isinstance(value, list) else "per-n"
