"""Bit-exact, batched emulator of lowered SpiNNaker graphs: sPyNNaker 7.4.1 IF_curr_exp, integer for
integer (the equations are in ``SpinnakerPopulation``'s docstring; every operation is a
``snnc.arith.spinnaker`` function).

Step t is machine tick t (``x[:, t]`` are the SpikeSourceArray spikes of tick t). A projection with hop
delay d adds the words of the sources that spiked at tick t - 1 - d into its receptor's ring slot for tick
t (sequential 16-bit saturating adds = min(sum, 0xFFFF)); then every population updates in parallel.
Recorded states (int64 raw bits, per step): ``v`` after the reset (what the next tick starts from),
``v_pre`` before the threshold test, ``isyn_exc`` / ``isyn_inh`` after the input was added, before decay.

A population with ``n_synapse_cores`` = k > 0 runs sPyNNaker's neuron/synapse split: each source slice's
words go to one of k synapse cores (``synapse_core_of_slices``: sPyNNaker's grouping, round robin), every
core saturates its own ring slot, and the neuron core adds the k slots as packed 32-bit words
(``sq.packed_input_sum``) - equal to the combined ring whenever no neuron's words sum above 0xFFFF
(which the target's ``fits`` guarantees); the model shows a source counted twice or not at all.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, Input, SpinnakerPopulation, SpinnakerProjection
from snnc.neurons import is_neuron_in, model_of
from snnc.simulators.traces import Traces, as_input_dict
from snnc.targets.catalog import SPINNAKER
from snnc.targets.spinnaker_synapse_cores import slice_bounds, slices_per_group

STATE_KEYS = ("v", "v_pre", "isyn_exc", "isyn_inh")   # what a population's state records per step


def is_spinnaker_graph(graph: Graph) -> bool:
    """Whether ``graph`` holds a neuron computed in SpiNNaker arithmetic."""
    return any(is_neuron_in(n, "spinnaker") for n in graph.nodes)


class _Projection:
    """Words grouped by delay: one (in, out) float64 matrix per distinct hop delay (exact sums)."""

    def __init__(self, node: SpinnakerProjection):
        words = np.asarray(node.weight_word, dtype=np.int64)
        delays = np.broadcast_to(np.asarray(node.delay_steps), words.shape)
        self.slots = [(int(d), np.where(delays == d, words, 0).T.astype(np.float64)) for d in np.unique(delays)]
        self.source, self.receptor = node.source, node.receptor

    def words_at(self, history: np.ndarray, t: int, columns=slice(None)):
        """Summed words of the spikes landing in tick t's slot from source neurons ``columns``."""
        total = 0
        for delay, matrix in self.slots:
            step = t - 1 - delay
            if step >= 0:
                spikes = history[:, step].reshape(history.shape[0], -1)[:, columns]
                total = total + (spikes @ matrix[columns]).astype(np.int64)
        return total


def run_spinnaker(graph: Graph, x, record_state: bool = True,
                  neurons_per_core: int = SPINNAKER.neurons_per_core) -> Traces:
    """Simulate a lowered SpiNNaker graph on input spikes ``x`` (batch, steps, *shape); source slices of
    ``neurons_per_core`` neurons feed a split population's synapse cores."""
    if graph.timing != "hop_latency" or not is_spinnaker_graph(graph):
        raise UnsupportedError(graph.name, "target", "a graph compiled with --target spinnaker",
                               f"a {graph.timing} graph without SpiNNaker populations")
    inputs = as_input_dict(graph, x)
    batch, steps = next(iter(inputs.values())).shape[:2]
    shapes = graph.shapes
    populations = [n for n in graph.nodes if is_neuron_in(n, "spinnaker")]
    spikes = {n.name: np.zeros((batch, steps, *shapes[n.name]), np.uint8)
              for n in graph.nodes if isinstance(n, (Input, Flatten)) or n in populations}
    projections = {n.name: _Projection(n) for n in graph.nodes if isinstance(n, SpinnakerProjection)}
    cores = {n.name: synapse_core_columns(graph, n, neurons_per_core) for n in populations}
    flattens = [n for n in graph.structural_order if isinstance(n, Flatten)]
    state = {n.name: model_of(n).emulator_state(n, batch) for n in populations}
    record = {n.name: {k: np.zeros((batch, steps, *n.shape), np.int64) for k in state[n.name].recorded()}
              for n in populations} if record_state else {}
    for t in range(steps):
        for name, arr in inputs.items():
            spikes[name][:, t] = arr[:, t]
        for node in populations:
            state[node.name].add_ring(_rings(node, projections, spikes, t, cores[node.name]))
        for node in populations:
            fired = state[node.name].update()
            spikes[node.name][:, t] = fired.reshape(batch, *node.shape)
            if record_state:
                for key, value in state[node.name].recorded().items():
                    record[node.name][key][:, t] = value.reshape(batch, *node.shape)
        for node in flattens:
            spikes[node.name][:, t] = spikes[node.source][:, t].reshape(batch, -1)
    return Traces(spikes, record)


def _rings(node: SpinnakerPopulation, projections: dict, spikes: dict, t: int, cores: list[dict]) -> dict:
    """Receptor -> one unsaturated word sum per synapse core (one entry for a combined core)."""
    rings: dict = {}
    empty = np.zeros((next(iter(spikes.values())).shape[0], int(np.prod(node.shape))), np.int64)
    for core, columns in enumerate(cores):
        for name in node.inputs:
            projection = projections[name]
            words = projection.words_at(spikes[projection.source], t, columns.get(name, slice(None)))
            per_core = rings.setdefault(projection.receptor, [empty] * len(cores))
            per_core[core] = per_core[core] + words
    return rings


def synapse_core_columns(graph: Graph, node: SpinnakerPopulation, neurons_per_core: int) -> list[dict]:
    """Per synapse core: projection -> the source neurons (indices) whose words that core adds; one
    all-columns core when combined. sPyNNaker groups each source's slices into runs of
    2^ceil(log2(n_slices / k)) and deals them round robin from a start that advances by one per source."""
    k = node.n_synapse_cores
    if k == 0:
        return [{}]
    cores: list[dict] = [{} for _ in range(k)]
    start: dict[str, int] = {}
    for name in node.inputs:
        projection = graph.node(name)
        source = graph.producer(projection.source).name
        start.setdefault(source, len(start) % k)
        n_source = np.asarray(projection.weight_word).shape[1]
        for core, columns in synapse_core_of_slices(n_source, neurons_per_core, k, start[source]).items():
            cores[core][name] = columns
    return cores


def synapse_core_of_slices(n_source: int, neurons_per_core: int, k: int, start: int) -> dict[int, np.ndarray]:
    """Synapse core -> source neuron indices it receives (empty cores get an empty index array)."""
    bounds = slice_bounds(n_source, neurons_per_core)
    per_group = slices_per_group(len(bounds), k)
    out = {core: [] for core in range(k)}
    for group, first in enumerate(range(0, len(bounds), per_group)):
        lo, hi = bounds[first][0], bounds[min(first + per_group, len(bounds)) - 1][1]
        out[(start + group) % k].append(np.arange(lo, hi))
    return {core: np.concatenate(parts) if parts else np.zeros(0, np.int64) for core, parts in out.items()}
