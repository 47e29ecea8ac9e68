"""The emitted PyNN network on NEST 3.10 (``pyNN.nest``, spike_precision="on_grid"): the software reference.

Returned traces use the emulator's tick grid: NEST's spike at PyNN time ``(t + TIME_OFFSET_STEPS + k) * dt``
and its v sampled at that time are put at tick t, where k = ``nest_shift_steps`` of the population (one
tick per layer: NEST applies a spike's current from the step after its arrival, sPyNNaker in the tick it
arrives). States hold ``v`` in mV (float64). A one-step recurrent projection, which no NEST delay follows,
reads the emulator's own spikes of its source (``nest_replays``; snnc.backends.spinnaker.network explains why
the first divergence is still the closed loop's).
"""
from __future__ import annotations

import os

import numpy as np

from snnc.backends.spinnaker.build import batch_spike_times, build_pynn
from snnc.backends.spinnaker.network import (TIME_OFFSET_STEPS, describe, nest_replays, nest_shift_steps,
                                             refuse_closed_loop, replay_label)
from snnc.errors import BackendUnavailableError
from snnc.ir.graph import Graph
from snnc.simulators.traces import Traces, as_input_dict


def import_pynn_nest():
    """``pyNN.nest`` (NEST banner silenced), or ``BackendUnavailableError`` saying what to install."""
    os.environ.setdefault("PYNEST_QUIET", "1")   # no NEST banner on stdout
    try:
        import pyNN.nest as sim
    except ImportError as exc:
        raise BackendUnavailableError("nest", f"pyNN.nest cannot be imported ({exc}); pip install "
                                      "nest-simulator==3.10.0 PyNN==0.13.0") from None
    return sim


def run_nest(graph: Graph, x, replayed: Traces | None = None) -> Traces:
    """Simulate the whole batch at once (batch copies side by side) and cut it back into samples.
    ``replayed``: the emulator's traces on the same ``x``, whose spikes the projections of ``nest_replays``
    read (without them such a graph is refused by name)."""
    sim = import_pynn_nest()
    inputs = as_input_dict(graph, x)
    batch, steps = next(iter(inputs.values())).shape[:2]
    shifts = nest_shift_steps(graph)
    early = nest_replays(graph, shifts)
    if replayed is None:
        refuse_closed_loop(graph, early)
    net = describe(graph, for_nest=True, batch=batch, replay=True)
    times = {k: batch_spike_times(v, net.dt_ms) for k, v in inputs.items()}
    times.update({replay_label(name): batch_spike_times(_replay_ticks(graph, replayed, name, shifts, k), net.dt_ms)
                  for name, k in early.items()})
    sim.setup(timestep=net.dt_ms, min_delay=net.dt_ms, spike_precision="on_grid", verbosity="error")
    try:
        made = build_pynn(sim, net, times, False)
        sim.run((steps + TIME_OFFSET_STEPS + max(shifts.values()) + 1) * net.dt_ms)
        blocks = {spec.label: made[spec.label].get_data().segments[0] for spec in net.populations}
    finally:
        sim.end()
    traces = Traces({k: v.copy() for k, v in inputs.items()}, {})
    for spec in net.populations:
        node = graph.node(spec.label)
        traces.spikes[spec.label], v = _on_tick_grid(blocks[spec.label], batch, steps, shifts[spec.label],
                                                     net.dt_ms, tuple(node.shape))
        traces.states[spec.label] = {"v": v}
    return traces


def _replay_ticks(graph: Graph, replayed: Traces, projection: str, shifts: dict[str, int], early: int):
    """(batch, ticks, n) spikes of ``projection``'s source in the emulator, on the input grid of NEST: the
    spike of tick n at input tick n + shift[source] - ``early`` (>= 0, ``nest_replays``)."""
    source = graph.producer(graph.node(projection).source).name
    spikes = replayed.spikes[source].reshape(*replayed.spikes[source].shape[:2], -1)
    lead = np.zeros((spikes.shape[0], shifts[source] - early, spikes.shape[2]), spikes.dtype)
    return np.concatenate([lead, spikes], axis=1)


def _on_tick_grid(segment, batch: int, steps: int, shift: int, dt_ms: float, shape) -> tuple:
    size = int(np.prod(shape))
    spikes = np.zeros((batch * size, steps), np.uint8)
    for index, train in enumerate(segment.spiketrains):
        ticks = np.rint(np.asarray(train.magnitude) / dt_ms).astype(np.int64) - TIME_OFFSET_STEPS - shift
        ticks = ticks[(ticks >= 0) & (ticks < steps)]
        spikes[int(train.annotations.get("source_index", index)), ticks] = 1
    signal = segment.filter(name="v")[0]
    first = TIME_OFFSET_STEPS + shift
    v = np.asarray(signal.magnitude)[first:first + steps].T
    return (spikes.reshape(batch, size, steps).transpose(0, 2, 1).reshape(batch, steps, *shape),
            v.reshape(batch, size, steps).transpose(0, 2, 1).reshape(batch, steps, *shape))
