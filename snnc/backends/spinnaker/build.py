"""Build a ``PyNNNetwork`` with any PyNN simulator module (``pyNN.spiNNaker`` or ``pyNN.nest``).

The same function is used in-process and, pasted as text, by the standalone script (``script.py``), so the
script and the in-process build cannot differ.
"""
from __future__ import annotations

import numpy as np

from snnc.backends.spinnaker.network import TIME_OFFSET_STEPS, PyNNNetwork


def spike_times(x: np.ndarray, dt_ms: float) -> list[list[float]]:
    """(steps, n) 0/1 spikes -> per-neuron spike times in ms (tick t at (t + TIME_OFFSET_STEPS) * dt)."""
    x = np.asarray(x).reshape(x.shape[0], -1)
    return [[(float(t) + TIME_OFFSET_STEPS) * dt_ms for t in np.flatnonzero(x[:, i])] for i in range(x.shape[1])]


def batch_spike_times(x: np.ndarray, dt_ms: float) -> list[list[float]]:
    """(batch, steps, *shape) -> spike times of the batch copies side by side (index b * n + i)."""
    return [times for sample in np.asarray(x) for times in spike_times(sample, dt_ms)]


def build_pynn(sim, net: PyNNNetwork, sources: dict[str, list[list[float]]], spinnaker: bool) -> dict:
    """Create every population, spike source and projection; record spikes and v of every population."""
    made = {}
    for label, size in net.inputs.items():
        sliced = {"additional_parameters": {"neurons_per_core": net.source_neurons_per_core}} \
            if spinnaker and label in net.sliced_inputs else {}
        made[label] = sim.Population(size, sim.SpikeSourceArray(spike_times=sources[label]), label=label, **sliced)
    for spec in net.populations:
        extra = {"additional_parameters": {"max_expected_summed_weight": list(spec.max_expected_summed_weight),
                                           "n_synapse_cores": spec.n_synapse_cores}} if spinnaker else {}
        cell = getattr(sim, spec.cell)(**spec.parameters)
        made[spec.label] = sim.Population(spec.size, cell, label=spec.label, **extra)
        made[spec.label].initialize(v=spec.v_start, **(spec.initial or {}))
        made[spec.label].record(["spikes", "v"])
    for spec in net.projections:
        connections = [(int(i), int(j), float(w), float(d)) for i, j, w, d in spec.connections]
        sim.Projection(made[spec.pre], made[spec.post], sim.FromListConnector(connections),
                       synapse_type=sim.StaticSynapse(), receptor_type=spec.receptor, label=spec.label)
    return made
