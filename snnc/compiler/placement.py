"""Place neuron groups onto cores and count the spike messages between cores.

Groups (``snnc.targets.footprint``) are visited in the graph's structural order; each is cut into tiles
of consecutive neurons. A tile goes to the candidate core that takes the most of the group's remaining
neurons — candidates are the most recently opened core and the cores already holding the group's
producers (keeping a source and its readers together makes their spikes intra-core and lets readers of
one source share its input axons) — or to a new core. A tile is as large as the core's remaining
neurons, synapse words and input axons allow, so cores fill up before new ones open. A tile of a group
fed by convolutions needs the axons of the union of its neurons' kernel windows and each kernel once
(``snnc.targets.conv_window``); such a group's tiles follow (x, y, c) order within output-channel
blocks (``GroupFootprint.block``), so ``tiles`` and the report's [start, stop) index that order.

Traffic: a spike of producer neuron j is one message to every *other* core holding a tile that reads j
(all tiles of a group reading j through a dense synapse; the tiles of a convolution whose kernel windows
hold j; the one tile holding neuron i of a one-to-one graded sum). Inputs come from the host: their
messages are counted separately.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import DesignRuleError, Violation
from snnc.targets.footprint import CoreBudget, Edge, GroupFootprint, lower_bound_cores

CANDIDATES = 8          # producer cores considered per tile (besides the newest core)
DETAILED_CORES = 256    # the report lists tiles per core up to this many cores


@dataclass
class Core:
    """One neuron core of a placement: its tiles (group, start, stop), neurons and synapses used, the input axons it
    shares per source range and those its own tiles need."""

    index: int
    tiles: list[tuple[str, int, int]] = field(default_factory=list)
    neurons: int = 0
    synapses: int = 0
    shared_axons: dict[tuple[str, int, int], int] = field(default_factory=dict)
    own_axons: int = 0

    @property
    def axons(self) -> int:
        """Input axons the core uses: shared source ranges plus its tiles' own."""
        return int(sum(self.shared_axons.values())) + self.own_axons


@dataclass
class Placement:
    """Tiles per core, plus what is needed to count messages."""

    cores: list[Core]
    budget: CoreBudget
    footprints: dict[str, GroupFootprint]
    tiles: dict[str, list[tuple[int, int, int]]]   # group -> (core, start, stop)

    @property
    def lower_bound(self) -> int:
        """The fewest cores any placement of these groups could use (``lower_bound_cores``)."""
        return lower_bound_cores(list(self.footprints.values()), self.budget)

    @property
    def synapse_cores(self) -> int:
        """Synapse cores beside the placed neuron cores (SpiNNaker's neuron/synapse split)."""
        return sum(len(self.tiles[g]) * fp.synapse_cores_per_tile for g, fp in self.footprints.items())

    @property
    def cores_used_total(self) -> int:
        """Neuron cores plus synapse cores."""
        return len(self.cores) + self.synapse_cores

    @property
    def chips_needed(self) -> int | None:
        """Chips for every core, a neuron core and its synapse cores on one chip (sPyNNaker's
        same-chip groups): first-fit decreasing of those groups into ``cores_per_chip``."""
        if not self.budget.cores_per_chip:
            return None
        group = {g: fp.synapse_cores_per_tile for g, fp in self.footprints.items()}
        units = sorted((1 + sum(group[t[0]] for t in core.tiles) for core in self.cores), reverse=True)
        free: list[int] = []
        for size in units:
            chip = next((i for i, room in enumerate(free) if room >= size), None)
            if chip is None:
                free.append(self.budget.cores_per_chip - size)
            else:
                free[chip] -= size
        return len(free)

    def core_of(self, group: str) -> np.ndarray:
        """Core index of every neuron of ``group``."""
        footprint = self.footprints[group]
        out = np.empty(footprint.neurons, np.int64)
        for core, start, stop in self.tiles[group]:
            out[footprint.tile_neurons(start, stop)] = core
        return out

    def messages_per_step(self, rates: dict[str, np.ndarray] | None = None) -> dict[str, float]:
        """Expected messages per step for per-neuron spike rates (spikes per step) of every producer;
        without rates, every producer neuron spikes once (the routing table size)."""
        totals = {"inter_core": 0.0, "intra_core": 0.0, "from_host": 0.0}
        for producer, edges in _edges_by_producer(self.footprints).items():
            for key, value in self._producer_messages(producer, edges, rates).items():
                totals[key] += value
        return totals

    def _producer_messages(self, producer: str, edges: list[Edge], rates) -> dict[str, float]:
        size = max(e.stop for e in edges)
        own = self.core_of(producer) if producer in self.footprints else None
        size = own.size if own is not None else size
        rate = np.ones(size) if rates is None or producer not in rates else np.asarray(rates[producer], float)
        rate = rate.reshape(-1)[:size]
        reach = self._window_reach(edges, size)
        plain = [e for e in edges if e.window is None]
        changes = [] if own is None else (np.flatnonzero(np.diff(own)) + 1).tolist()
        bounds = sorted({0, size, *(b for e in plain for b in (e.start, e.stop)),
                         *self._tile_bounds(producer, plain), *changes})
        cumulative = np.concatenate([[0.0], np.cumsum(rate)])
        out = {"inter_core": 0.0, "intra_core": 0.0, "from_host": 0.0}
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi <= lo:
                continue
            targets = self._targets(plain, lo)
            weight = cumulative[hi] - cumulative[lo]
            core = None if own is None else int(own[lo])
            _count(out, weight, len(targets), core is not None and core in targets, core is None)
            for k in targets & reach.keys():     # a convolution reaching a core already targeted
                _count(out, -float(rate[lo:hi][reach[k][lo:hi]].sum()), 1, k == core, core is None)
        for k, mask in reach.items():
            if own is None:
                out["from_host"] += float(rate[mask].sum())
            else:
                out["intra_core"] += float(rate[mask & (own == k)].sum())
                out["inter_core"] += float(rate[mask & (own != k)].sum())
        return out

    def _window_reach(self, edges: list[Edge], size: int) -> dict[int, np.ndarray]:
        """Core -> mask of the producer neurons whose spikes its convolution tiles read (their windows)."""
        reach: dict[int, np.ndarray] = {}
        for edge in edges:
            if edge.window is None:
                continue
            footprint = self.footprints[edge.group]
            for core, start, stop in self.tiles[edge.group]:
                mask = reach.setdefault(core, np.zeros(size, bool))
                mask[edge.start:edge.stop] |= edge.window.input_box(footprint.span(start, stop))
        return reach

    def _tile_bounds(self, producer: str, edges: list[Edge]) -> list[int]:
        bounds = [b for _, s, e in self.tiles.get(producer, []) for b in (s, e)]
        for edge in edges:
            if edge.one_to_one:
                bounds += [edge.start + b for _, s, e in self.tiles[edge.group] for b in (s, e)]
        return bounds

    def _targets(self, edges: list[Edge], j: int) -> set[int]:
        """Cores that producer neuron j (constant over the interval starting at j) must reach."""
        out: set[int] = set()
        for edge in edges:
            if not edge.start <= j < edge.stop:
                continue
            if edge.one_to_one:
                starts, cores = self._tile_index(edge.group)
                out.add(int(cores[np.searchsorted(starts, j - edge.start, side="right") - 1]))
            else:
                out.update(self._group_cores(edge.group))
        return out

    def _group_cores(self, group: str) -> set[int]:
        cache = self.__dict__.setdefault("_cores_cache", {})
        if group not in cache:
            cache[group] = {c for c, _, _ in self.tiles[group]}
        return cache[group]

    def _tile_index(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        """Tile starts (sorted) and their cores, for one-to-one lookups."""
        cache = self.__dict__.setdefault("_tile_cache", {})
        if group not in cache:
            ordered = sorted(self.tiles[group], key=lambda t: t[1])
            cache[group] = (np.array([t[1] for t in ordered]), np.array([t[0] for t in ordered]))
        return cache[group]

    def report(self) -> dict:
        """JSON-able summary: cores vs lower bound, utilisation, messages if every neuron spikes once."""
        b = self.budget
        util = {"neurons": [c.neurons / b.neurons for c in self.cores]}
        if b.synapses:
            util["synapses"] = [c.synapses / b.synapses for c in self.cores]
        if b.axons:
            util["axons"] = [c.axons / b.axons for c in self.cores]
        lower = self.lower_bound
        out = {"cores_used": len(self.cores), "lower_bound": lower,
               "ratio_to_lower_bound": round(len(self.cores) / lower, 4) if lower else None,
               "synapse_cores": self.synapse_cores, "cores_used_total": self.cores_used_total,
               "chips_needed": self.chips_needed,
               "utilisation_mean": {k: round(float(np.mean(v)), 4) for k, v in util.items()},
               "utilisation_min": {k: round(float(np.min(v)), 4) for k, v in util.items()},
               "messages_per_step_if_every_neuron_spikes": self.messages_per_step()}
        if len(self.cores) <= DETAILED_CORES:
            out["cores"] = [{"core": c.index, "tiles": [list(t) for t in c.tiles], "neurons": c.neurons,
                             "synapses": c.synapses, "axons": c.axons} for c in self.cores]
        return out


STRATEGIES = ("fill", "whole", "compact", "naive")
CHOICES = ("fill", "whole", "compact")


def place_best(footprints: list[GroupFootprint], budget: CoreBudget) -> tuple[Placement, dict]:
    """Place with "fill", "whole" and "compact"; keep the one with the fewest inter-core messages (every
    neuron spiking once) among those within 10% of the lower bound on cores (else the one with fewest cores).
    Returns it and a comparison of all strategies, including the "naive" baseline."""
    placements = {s: place(footprints, budget, s) for s in STRATEGIES}
    traffic = {s: p.messages_per_step()["inter_core"] for s, p in placements.items()}
    lower = lower_bound_cores(footprints, budget)
    fewest = min(len(placements[s].cores) for s in CHOICES)
    allowed = max(fewest, int(np.floor(1.1 * lower)))
    chosen = min((s for s in CHOICES if len(placements[s].cores) <= allowed),
                 key=lambda s: (traffic[s], len(placements[s].cores)))
    comparison = {s: {"cores": len(p.cores), "inter_core_messages_if_every_neuron_spikes": traffic[s]}
                  for s, p in placements.items()}
    return placements[chosen], {"strategy": chosen, "strategies": comparison}


def place(footprints: list[GroupFootprint], budget: CoreBudget, strategy: str = "fill") -> Placement:
    """Tiles of every group onto cores (see module docstring). Strategies: "fill" puts a tile on any
    candidate core with room; "whole" uses a non-newest candidate core only for the whole rest of a
    group, so each group spans as few cores as possible (fewer multicast targets per spike); "compact"
    uses any existing core only for the whole rest of a group (groups never share a split); "naive"
    (baseline) starts every group on a fresh core and never shares a core between groups."""
    affinity = strategy != "naive" and budget.groups_share_cores
    cores: list[Core] = []
    tiles: dict[str, list[tuple[int, int, int]]] = {}
    for fp in footprints:
        tiles[fp.name] = []
        cumulative = fp.cumulative_synapses()
        start = 0
        fresh = not affinity
        while start < fp.neurons:
            core, count = _best_core(cores, fp, start, cumulative, budget, tiles, affinity, fresh)
            if strategy == "whole" and core is not None and core is not cores[-1] and \
                    start + count < fp.neurons:
                core, count = cores[-1], _fit(cores[-1], fp, start, cumulative, budget)
            if strategy == "compact" and start + count < fp.neurons and not fresh_core_of(core, fp):
                count = 0
            if count == 0:
                core = Core(len(cores))
                cores.append(core)
                count = _fit(core, fp, start, cumulative, budget)
                if count == 0:
                    raise DesignRuleError(f"group '{fp.name}'", [_unplaceable(fp, budget)])
            _put(core, fp, start, start + count, cumulative)
            tiles[fp.name].append((core.index, start, start + count))
            start += count
            fresh = False
    return Placement(cores, budget, {f.name: f for f in footprints}, tiles)


def fresh_core_of(core: Core | None, fp: GroupFootprint) -> bool:
    """True when ``core`` holds only tiles of ``fp`` (it was opened for this group)."""
    return core is not None and all(t[0] == fp.name for t in core.tiles)


def _best_core(cores, fp, start, cumulative, budget, tiles, affinity: bool, fresh: bool):
    if not cores or fresh:
        return None, 0
    candidates = [cores[-1]]
    if affinity:
        near = {c for e in fp.edges for c, _, _ in tiles.get(e.producer, [])[-CANDIDATES:]}
        candidates += [cores[i] for i in sorted(near)]
    best, best_count = None, 0
    for core in candidates:
        count = _fit(core, fp, start, cumulative, budget)
        if count > best_count:
            best, best_count = core, count
    return best, best_count


def _fit(core: Core, fp: GroupFootprint, start: int, cumulative: np.ndarray, budget: CoreBudget) -> int:
    """Most neurons of ``fp`` from ``start`` on that still fit ``core``."""
    count = fp.neurons - start
    if budget.neurons is not None:
        count = min(count, budget.neurons - core.neurons)
    if budget.synapses is not None:
        room = budget.synapses - core.synapses
        last = int(np.searchsorted(cumulative, cumulative[start] + room, side="right")) - 1
        count = min(count, last - start)
    if budget.axons is not None:
        added = sum(max(0, n - core.shared_axons.get(k, 0)) for k, n in fp.shared_axons.items())
        room = budget.axons - core.axons - added
        count = min(count, room // fp.axons_per_neuron if fp.axons_per_neuron else count) if room >= 0 else 0
    if fp.windows and count > 0 and not _tile_fits(core, fp, start, start + count, cumulative, budget):
        count = _largest_fitting_tile(core, fp, start, count, cumulative, budget)
    return max(count, 0)


def _largest_fitting_tile(core: Core, fp: GroupFootprint, start: int, most: int, cumulative: np.ndarray,
                          budget: CoreBudget) -> int:
    """Binary search for the largest tile of at most ``most`` neurons whose kernel windows still fit
    (a window union only grows with the tile)."""
    lo, hi = 0, most - 1         # tile of ``most`` neurons does not fit; lo fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _tile_fits(core, fp, start, start + mid, cumulative, budget):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _tile_fits(core: Core, fp: GroupFootprint, start: int, stop: int, cumulative: np.ndarray,
               budget: CoreBudget) -> bool:
    """Whether tile [start, stop) of ``fp`` fits ``core`` with its convolutions' windows and kernels."""
    if budget.synapses is not None:
        words = int(cumulative[stop] - cumulative[start]) + fp.window_words(start, stop)
        if core.synapses + words > budget.synapses:
            return False
    if budget.axons is not None:
        added = sum(max(0, n - core.shared_axons.get(k, 0)) for k, n in fp.shared_axons.items())
        axons = added + fp.axons_per_neuron * (stop - start) + sum(fp.window_axons(start, stop))
        if core.axons + axons > budget.axons:
            return False
    return True


def _put(core: Core, fp: GroupFootprint, start: int, stop: int, cumulative: np.ndarray) -> None:
    core.tiles.append((fp.name, start, stop))
    core.neurons += stop - start
    core.synapses += int(cumulative[stop] - cumulative[start]) + fp.window_words(start, stop)
    core.own_axons += fp.axons_per_neuron * (stop - start)
    for key, n in fp.shared_axons.items():
        core.shared_axons[key] = max(core.shared_axons.get(key, 0), n)
    for (key, _), n in zip(fp.windows, fp.window_axons(start, stop)):   # one entry per tile: a sum,
        core.shared_axons[(*key, fp.name, start)] = n                  # an upper bound of the union


def _unplaceable(fp: GroupFootprint, budget: CoreBudget) -> Violation:
    return Violation(fp.name, "fan-in", f"{budget.axons} input axons and {budget.synapses} synapses per core",
                     f"{fp.fan_in} axons, {fp.max_row_synapses} synapses for one neuron",
                     "one neuron does not fit a core")


def _count(out: dict[str, float], weight: float, targets: int, here: bool, from_host: bool) -> None:
    """Add ``weight`` spikes x ``targets`` messages, one of them intra-core when ``here``."""
    if from_host:
        out["from_host"] += weight * targets
    else:
        out["intra_core"] += weight * here
        out["inter_core"] += weight * (targets - here)


def _edges_by_producer(footprints: dict[str, GroupFootprint]) -> dict[str, list[Edge]]:
    out: dict[str, list[Edge]] = {}
    for fp in footprints.values():
        for edge in fp.edges:
            out.setdefault(edge.producer, []).append(edge)
    return out
