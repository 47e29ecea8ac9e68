"""How many synapse cores a SpiNNaker population needs: sPyNNaker 7.4.1's neuron/synapse core split as data.

A combined IF_curr_exp core processes every synaptic event of its neuron slice within the tick. When that is
more than one core can process, sPyNNaker splits the population (``SplitterPopulationVertexNeuronsSynapses``):
each neuron slice gets one neuron core and ``k`` synapse cores on the same chip. Each synapse core keeps its
own saturating 16-bit ring buffer and, at the end of tick t, DMAs the slot for tick t + 1 to SDRAM; at the
start of tick t + 1 the neuron core adds the k buffers as packed 32-bit words (``c_main_neurons.c: sum``)
before converting them to input (``neuron_transfer``). So the split adds no latency, and it is exact (equal
to one combined ring buffer) as long as no neuron's summed words can exceed 0xFFFF: above that a synapse core
saturates where a combined core would, or the packed add carries into the neighbouring neuron. The spec's
``fits`` checks that bound whenever ``n_synapse_cores > 0`` (SpiNNaker lowering keeps the sum below about
2^15 + fan-in / 2 words, so it holds up to a fan-in of ~65,000). The emulator still runs the split - each
source slice's words on one modelled synapse core, the packed sum - so a source counted twice or not at
all would show; which core sPyNNaker really picks depends on its call order and cannot change the result
within the bound.

Load model. Synaptic events per tick of one neuron slice = the synapses from every source neuron that spikes
in the tick (``planning_spikes_per_tick`` per source neuron; 1.0 = every neuron every tick, the worst case,
the only one under which no tick can overrun and drop spikes). sPyNNaker hands a source's cores (slices) to
synapse cores in consecutive groups of ``2^ceil(log2(n_slices / k))``, round robin from a rotating start
(``get_source_specific_in_coming_vertices``); since the start is not known in advance, the bound used here
charges every synapse core with the ``ceil(n_groups / k)`` heaviest groups of every source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnc.ir.graph import Graph
from snnc.ir.nodes import SpinnakerPopulation, SpinnakerProjection
from snnc.neurons import is_neuron_in

PACKED_INPUT_MAX = 0xFFFF       # one neuron's input halfword in the neuron core's packed sum


@dataclass(frozen=True)
class SynapseCorePlan:
    """Synapse cores per neuron slice (0: combined core) and the worst per-core load behind the choice.

    ``n_synapse_cores`` is None when no count up to ``max_synapse_cores`` keeps every synapse core within
    ``budget`` (one source slice alone overloads a core)."""

    population: str
    n_synapse_cores: int | None
    events_per_tick: float         # heaviest neuron slice, all synapses
    per_core_events: float         # heaviest synapse core under the chosen k (= events_per_tick if k = 0)
    budget: float
    max_synapse_cores: int


def slice_bounds(size: int, atoms_per_core: int) -> list[tuple[int, int]]:
    """[lo, hi) of every core's slice of a population (sPyNNaker's fixed slices)."""
    return [(lo, min(lo + atoms_per_core, size)) for lo in range(0, size, atoms_per_core)]


def events_by_source_slice(graph: Graph, population: SpinnakerPopulation, lo: int, hi: int,
                           atoms_per_core: int) -> dict[str, np.ndarray]:
    """Source -> synapses into neurons [lo, hi) per source slice (events per tick if each source neuron
    spikes once)."""
    out: dict[str, np.ndarray] = {}
    for name in population.inputs:
        node = graph.node(name)
        if not isinstance(node, SpinnakerProjection):
            continue
        used = np.count_nonzero(np.asarray(node.weight_word)[lo:hi], axis=0)
        source = graph.producer(node.source).name
        bounds = slice_bounds(used.size, atoms_per_core)
        counts = np.array([used[a:b].sum() for a, b in bounds], dtype=np.float64)
        out[source] = out.get(source, 0) + counts
    return out


def slices_per_group(n_slices: int, k: int) -> int:
    """sPyNNaker hands a source's slices to synapse cores in runs of 2^ceil(log2(n_slices / k))."""
    return max(1, 2 ** math.ceil(math.log2(n_slices / k)))


def per_core_bound(events: dict[str, np.ndarray], k: int) -> float:
    """Most events one of k synapse cores can receive, whatever sPyNNaker's rotating start index."""
    total = 0.0
    for counts in events.values():
        groups = np.add.reduceat(counts, np.arange(0, counts.size, slices_per_group(counts.size, k)))
        heaviest = np.sort(groups)[::-1][:math.ceil(groups.size / k)]
        total += float(heaviest.sum())
    return total


def plan_synapse_cores(graph: Graph, population: SpinnakerPopulation, spec) -> SynapseCorePlan:
    """The fewest synapse cores that keep every core of every slice within the spec's event budget."""
    budget = spec.synaptic_events_per_core_per_s * graph.dt_s
    activity = spec.planning_spikes_per_tick
    max_k = (spec.cores_per_chip or 2) - 1        # the neuron core and its synapse cores share a chip
    size = int(np.prod(population.shape))
    slices = [events_by_source_slice(graph, population, lo, hi, spec.neurons_per_core)
              for lo, hi in slice_bounds(size, spec.neurons_per_core)]
    heaviest = max(sum(float(c.sum()) for c in s.values()) for s in slices) * activity
    if heaviest <= budget:
        return SynapseCorePlan(population.name, 0, heaviest, heaviest, budget, max_k)
    worst = heaviest
    for k in range(1, max_k + 1):
        worst = max(per_core_bound(s, k) for s in slices) * activity
        if worst <= budget:
            return SynapseCorePlan(population.name, k, heaviest, worst, budget, max_k)
    return SynapseCorePlan(population.name, None, heaviest, worst, budget, max_k)


def max_summed_words(graph: Graph, population: SpinnakerPopulation) -> dict[str, int]:
    """Receptor -> largest sum of one neuron's 16-bit words over all its projections (every source
    spiking in one tick, every delay landing in one slot)."""
    out = {"excitatory": 0, "inhibitory": 0}
    sums = {}
    for name in population.inputs:
        node = graph.node(name)
        if isinstance(node, SpinnakerProjection):
            row_sums = np.asarray(node.weight_word, dtype=np.int64).sum(axis=1)
            sums[node.receptor] = sums.get(node.receptor, 0) + row_sums
    for receptor, row_sums in sums.items():
        out[receptor] = int(np.max(row_sums)) if np.size(row_sums) else 0
    return out


def feeds_synapse_cores(graph: Graph, source: str) -> bool:
    """Whether a projection from ``source`` reaches a population split into neuron and synapse cores."""
    return any(p.n_synapse_cores and any(graph.producer(graph.node(s).source).name == source for s in p.inputs)
               for p in graph.nodes if is_neuron_in(p, "spinnaker"))


