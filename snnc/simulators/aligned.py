"""Run a lowered graph on a backend and put its traces back on the float IR's step grid.

A lowered node n lags its float counterpart by ``latency[n]`` steps, so the input is padded with that
many silent steps, and each trace is shifted left by its node's latency and cut to the input length.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from snnc.ir.graph import Graph
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import Traces, as_input_dict

Runner = Callable[..., Traces]


def run_on_ir_grid(graph: Graph, x, runner: Runner = run_loihi, record_state: bool = False) -> Traces:
    """Run a lowered graph with ``runner`` on ``x`` padded by the pipeline latency, then shift every trace back by
    its node's latency: traces on the float model's step grid, as many steps as ``x``."""
    inputs = as_input_dict(graph, x)
    steps = next(iter(inputs.values())).shape[1]
    pad = max(graph.latency.values(), default=0)
    padded = {k: np.concatenate([v, np.zeros((v.shape[0], pad, *v.shape[2:]), v.dtype)], axis=1)
              for k, v in inputs.items()}
    traces = runner(graph, padded, record_state=record_state).shifted(graph.latency)
    return Traces({n: a[:, :steps] for n, a in traces.spikes.items()},
                  {n: {k: a[:, :steps] for k, a in s.items()} for n, s in traces.states.items()})


def batched(run: Callable[[np.ndarray], Traces], x: np.ndarray, batch_size: int, progress=None) -> Traces:
    """Run ``run`` over slices of the batch axis and concatenate the traces."""
    parts = []
    starts = range(0, len(x), batch_size)
    for start in (progress(starts) if progress else starts):
        parts.append(run(x[start:start + batch_size]))
    spikes = {n: np.concatenate([p.spikes[n] for p in parts]) for n in parts[0].spikes}
    states = {n: {k: np.concatenate([p.states[n][k] for p in parts]) for k in parts[0].states[n]}
              for n in parts[0].states}
    return Traces(spikes, states)


def predicted_classes(traces: Traces, output: str) -> np.ndarray:
    """Class = index of the output neuron with the most spikes (ties: lowest index)."""
    counts = traces.spikes[output].reshape(traces.spikes[output].shape[0], traces.spikes[output].shape[1], -1)
    return counts.sum(axis=1).argmax(axis=1)
