"""Early exit at run time (SNNCutoff-style): stop a sample once its output is decided.

After each step the host reads the output group's cumulative spike counts; when the lead of the top
class over the runner-up reaches ``margin`` spikes, the sample stops and that class is the answer
(otherwise it runs ``steps`` steps and takes the top class, lowest index on ties, as ``snnc run``
does). A one-class output has no runner-up: its lead is its own count (a runner-up of 0 spikes), and
its answer is always class 0. ``margin`` is calibrated by ``compress_timesteps`` against an error
budget. Steps are counted on the float IR's grid; the hardware runs ``latency`` more steps to produce
the same outputs.
"""
from __future__ import annotations

import numpy as np

from snnc.ir.graph import Graph
from snnc.simulators.aligned import batched, run_on_ir_grid


def cumulative_output_counts(graph: Graph, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(batch, steps, classes) running spike counts of the graph's first output, on the IR grid."""
    output = graph.outputs[0]
    traces = batched(lambda part: run_on_ir_grid(graph, part), x, batch_size)
    spikes = traces.spikes[output]
    return np.cumsum(spikes.reshape(spikes.shape[0], spikes.shape[1], -1).astype(np.int64), axis=1)


def decide_on_output(spikes: np.ndarray, margin: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, steps used) from an output's (batch, steps, *shape) spike train on the IR grid."""
    counts = np.cumsum(spikes.reshape(spikes.shape[0], spikes.shape[1], -1).astype(np.int64), axis=1)
    return decide(counts, spikes.shape[1], margin)


def decide(counts: np.ndarray, steps: int, margin: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, steps used) from cumulative counts, running at most ``steps`` steps and exiting
    early at a top-1 minus top-2 lead of ``margin`` (None: never early)."""
    counts = counts[:, :steps]
    used = np.full(len(counts), steps)
    if margin is not None:
        decided = output_lead(counts) >= margin
        used = np.where(decided.any(axis=1), decided.argmax(axis=1) + 1, steps)
    final = counts[np.arange(len(counts)), used - 1]
    return final.argmax(axis=1), used


def output_lead(counts: np.ndarray) -> np.ndarray:
    """(batch, steps) top-1 minus top-2 cumulative count; with one class the runner-up counts 0."""
    if counts.shape[2] < 2:
        return counts.sum(axis=2)
    ordered = np.sort(counts, axis=2)
    return ordered[:, :, -1] - ordered[:, :, -2]


def run_with_early_exit(graph: Graph, x: np.ndarray, steps: int, margin: int | None):
    """Predictions and steps used per sample (the emulator runs all steps; the policy picks the exit)."""
    return decide(cumulative_output_counts(graph, x[:, :steps]), steps, margin)
