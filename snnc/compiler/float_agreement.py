"""How far a compiled network may drift from its float model before `snnc verify` fails.

Quantization (Loihi's 8-bit weights, SpiNNaker's 16-bit words, integer decays and thresholds) moves
membrane potentials by a fraction of a step; that flips spikes of neurons near their threshold, which
changes spike counts by a few percent, never a whole layer. `snnc verify` therefore fails when, for an
output layer of the float model:

* the spike-count error, sum |n_emulator - n_float| / sum n_float over samples and neurons (n: spikes
  per sample and neuron), exceeds ``MAX_OUTPUT_COUNT_ERROR`` = 25%. The bundled digits network has
  5.9% (Loihi) and 0.5% (SpiNNaker) on the 360 held-out samples, 3.6% and 1.8% on the 4 samples of
  `make demo`, so 25% leaves four times that margin for few samples and sparse outputs; an output layer
  silenced or flooded by lost precision is at 90-100% (one outlier weight: 91% on Loihi);
* with labels, the emulator's accuracy is more than ``MAX_ACCURACY_DROP`` = 2 percentage points below
  the float model's and by more than one sample (with fewer than 50 samples one flipped sample alone
  exceeds 2 pp, which is within the flips quantization makes).

A graded output (a float sigma-delta network's ``SigmaDecoder``) is compared by value instead: the
emulator's integers divided by the lowering's reported ``output_scale`` (``in_float_units``), and the
relative error sum |x_emulator - x_float| / sum |x_float| over samples, steps and neurons must stay within
the same 25% (a representable network has 0: the lowering is exact there).

Hidden layers are reported, not checked: what the network computes is read from its outputs.
"""
from __future__ import annotations

import copy

import numpy as np

from snnc.ir.graph import Graph
from snnc.simulators.aligned import predicted_classes
from snnc.simulators.traces import Traces, first_divergence

MAX_OUTPUT_COUNT_ERROR = 0.25
MAX_ACCURACY_DROP = 0.02


def float_agreement(source: Graph, reference: Traces, emulated: Traces, y) -> tuple[bool, list[str]]:
    """Per spiking layer, spike-slot agreement of the emulator with the float reference; the outputs'
    spike-count error and (with labels ``y``) the accuracy drop checked against the bounds above."""
    inputs = {i.name for i in source.inputs}
    lines = [slot_line(node.name, reference, emulated, node.emits_graded()) for node in source.nodes
             if node.name in emulated.spikes and node.name in reference.spikes and node.name not in inputs]
    lines.append(f"float agreement bound: output spike-count error <= {MAX_OUTPUT_COUNT_ERROR:.0%}"
                 + (f", accuracy drop <= {MAX_ACCURACY_DROP * 100:g} pp (or one sample)" if y is not None else ""))
    ok = True
    for output in (o for o in source.outputs if o in emulated.spikes and o in reference.spikes):
        check = value_check if source.node(output).emits_graded() else count_check
        within, text = check(output, reference.spikes[output], emulated.spikes[output])
        ok &= within
        lines.append(text)
    output = source.outputs[0]
    if y is not None and output in emulated.spikes and output in reference.spikes:
        within, text = accuracy_check(predicted_classes(reference, output), predicted_classes(emulated, output), y)
        ok &= within
        lines.append(text)
    divergence = first_divergence(reference, emulated, with_states=False)
    if divergence is not None:
        lines.append(f"first float/emulator difference (quantization): {divergence}")
    return ok, lines


def slot_line(name: str, reference: Traces, emulated: Traces, graded: bool = False) -> str:
    """Share of (sample, step, neuron) slots where both spike or both stay silent, and the spike totals; for
    a graded layer (in float units), the share of equal values and the sums of |value|."""
    same = float(np.mean(reference.spikes[name] == emulated.spikes[name]))
    if graded:
        return (f"emulator vs float reference, '{name}': {same:.4%} of graded values equal (sum |x| "
                f"{float(np.abs(reference.spikes[name]).sum()):.6g} vs {float(np.abs(emulated.spikes[name]).sum()):.6g})")
    return (f"emulator vs float reference, '{name}': {same:.4%} of spike slots agree "
            f"({int(reference.spikes[name].sum())} vs {int(emulated.spikes[name].sum())} spikes)")


def output_count_error(reference: np.ndarray, emulated: np.ndarray) -> float:
    """sum |n_emulated - n_float| / sum n_float of per-sample, per-neuron spike counts (spikes shaped
    (samples, steps, *shape)); 0 when both are silent, inf when only the float model is."""
    counts_float = reference.reshape(reference.shape[0], reference.shape[1], -1).sum(axis=1, dtype=np.int64)
    counts_emulated = emulated.reshape(emulated.shape[0], emulated.shape[1], -1).sum(axis=1, dtype=np.int64)
    difference = int(np.abs(counts_emulated - counts_float).sum())
    total = int(counts_float.sum())
    if total == 0:
        return 0.0 if difference == 0 else float("inf")
    return difference / total


def count_check(name: str, reference: np.ndarray, emulated: np.ndarray) -> tuple[bool, str]:
    """Whether an output layer's spike-count error is within ``MAX_OUTPUT_COUNT_ERROR``, and the line."""
    error = output_count_error(reference, emulated)
    within = error <= MAX_OUTPUT_COUNT_ERROR
    shown = "the float model is silent" if error == float("inf") else f"{error:.1%}"
    return within, (f"output '{name}' spike-count error vs float: {shown} ({int(reference.sum())} float, "
                    f"{int(emulated.sum())} emulated spikes): "
                    + ("within the bound" if within else f"FAIL (bound {MAX_OUTPUT_COUNT_ERROR:.0%})"))


def value_check(name: str, reference: np.ndarray, emulated: np.ndarray) -> tuple[bool, str]:
    """Whether a graded output's relative value error, sum |emulated - float| / sum |float| (emulated in
    float units), is within ``MAX_OUTPUT_COUNT_ERROR``, and the line."""
    difference = float(np.abs(np.asarray(emulated, np.float64) - reference).sum())
    total = float(np.abs(reference).sum())
    error = (0.0 if difference == 0 else float("inf")) if total == 0 else difference / total
    within = error <= MAX_OUTPUT_COUNT_ERROR
    shown = "the float model is all zero" if error == float("inf") else f"{error:.4%}"
    return within, (f"output '{name}' value error vs float (graded, in float units): {shown}: "
                    + ("within the bound" if within else f"FAIL (bound {MAX_OUTPUT_COUNT_ERROR:.0%})"))


def in_float_units(emulated: Traces, lowering: dict) -> Traces:
    """``emulated`` with the graded trains and states of every group whose Loihi lowering reported an
    ``output_scale`` / ``state_scale`` (float sigma-delta groups: integers = float values x scale) divided
    by them; other traces unchanged. ``lowering``: the compile report's ``lower_loihi`` entry."""
    layers = lowering.get("layers", {}) if isinstance(lowering, dict) else {}
    scaled = {name: layer for name, layer in layers.items() if isinstance(layer, dict) and "output_scale" in layer}
    if not scaled:
        return emulated
    out = copy.copy(emulated)
    out.spikes = {name: train / float(scaled[name]["output_scale"]) if name in scaled else train
                  for name, train in emulated.spikes.items()}
    out.states = {name: {var: value / float(scaled[name]["state_scale"]) for var, value in states.items()}
                  if name in scaled else states for name, states in emulated.states.items()}
    return out


def accuracy_check(float_classes: np.ndarray, emulated_classes: np.ndarray, y) -> tuple[bool, str]:
    """Whether the emulator's accuracy is at most ``MAX_ACCURACY_DROP`` (or one sample) below the float
    model's, and the lines reporting both accuracies."""
    y = np.asarray(y)
    float_accuracy = float(np.mean(float_classes == y))
    emulated_accuracy = float(np.mean(emulated_classes == y))
    allowed = max(MAX_ACCURACY_DROP, 1.0 / len(y))
    within = float_accuracy - emulated_accuracy <= allowed + 1e-12
    return within, (f"float reference accuracy: {float_accuracy:.4f}\nemulator accuracy: {emulated_accuracy:.4f}"
                    + ("" if within else f"\naccuracy drop {(float_accuracy - emulated_accuracy) * 100:.2f} pp: "
                       f"FAIL (bound {allowed * 100:.2f} pp)"))
