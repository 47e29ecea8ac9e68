"""What each neuron group of a graph asks of a core, generic over node types and targets.

A *group* is a neuron node (``ROLE`` "neuron": LIF groups, partial-sum relays, SpiNNaker populations...).
For a tile of a group placed on one core the core must hold, per Loihi/SpiNNaker mapping practice:

* the tile's neurons (``neurons_per_core``);
* the tile's synapses: the non-zero weights of its rows (``synapses_per_core``, i.e. synapse memory in
  words of ``weight_bits``);
* input axons: one per source neuron that reaches the tile. Axons of a dense synapse are *shared*:
  every tile reading the same source range on one core uses the same axons (``shared_axons``, keyed by
  source range). A one-to-one graded sum needs its own axons, ``axons_per_neuron`` per neuron
  (``input_axons_per_core`` bounds the sum). A Loihi convolution (``windows``) needs the axons of the
  union of its tile's kernel windows and its output channels' kernels once as synapse words
  (``snnc.targets.conv_window``); a group fed only by convolutions is tiled in (x, y, c) order within
  output-channel blocks (``block``, ``conv_window.tile_order``), so a tile is a channel block times a
  stripe of positions.

Numbers come from the spec (``CoreBudget.of``); nothing here branches on a target's name.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, LoihiConv, LoihiGradedSum, Node, Slice, SumPool2d
from snnc.targets.conv_window import ConvWindow, TileSpan, channel_block, tile_order
from snnc.targets.target import TargetSpec

MATRIX_FIELDS = ("weight_mant", "weight", "weight_word")


@dataclass(frozen=True)
class CoreBudget:
    """Capacity of one core and of the machine (None = unlimited), read from any target spec."""

    neurons: int | None
    synapses: int | None
    axons: int | None
    cores_per_chip: int | None
    chips: int
    groups_share_cores: bool = True   # False: a core holds tiles of one neuron group only (sPyNNaker)

    @classmethod
    def of(cls, spec: TargetSpec) -> "CoreBudget":
        """The budget a target's limits give one core and the machine."""
        return cls(spec.neurons_per_core, spec.synapses_per_core, spec.input_axons_per_core,
                   spec.cores_per_chip, spec.chips, spec.groups_share_cores)

    @property
    def limited(self) -> bool:
        """Whether cores have a neuron limit (False: an unbounded target such as the emulator)."""
        return self.neurons is not None

    @property
    def per_neuron_fan_in(self) -> int | None:
        """Most synapses/axons one neuron may have on one core."""
        limits = [v for v in (self.synapses, self.axons) if v is not None]
        return min(limits) if limits else None


@dataclass(frozen=True)
class Edge:
    """Spikes (or graded payloads) of ``producer`` neurons [start, stop) reach group ``group``:
    every neuron of the group (``one_to_one`` False), neuron i of the group from producer neuron
    start + i (``one_to_one`` True), or, through a convolution (``window``), the tiles whose kernel
    windows hold the producer neuron."""

    producer: str
    group: str
    start: int
    stop: int
    one_to_one: bool = False
    window: ConvWindow | None = field(default=None, compare=False)   # a convolution: only its tiles'
    #                                                                  windows are reached


@dataclass
class GroupFootprint:
    """Per-core demand of one neuron group (see module docstring)."""

    name: str
    neurons: int
    row_synapses: np.ndarray
    shared_axons: dict[tuple[str, int, int], int] = field(default_factory=dict)
    axons_per_neuron: int = 0
    edges: list[Edge] = field(default_factory=list)
    synapse_cores_per_tile: int = 0     # SpiNNaker's split: synapse cores beside each tile's neuron core
    windows: list[tuple[tuple[str, int, int], ConvWindow]] = field(default_factory=list)
    block: int | None = None            # tiles index tile_order(shape, block) (None: flat order)
    shape: tuple[int, ...] = ()
    _spans: dict = field(default_factory=dict, repr=False)

    @property
    def synapses(self) -> int:
        """Synapse words of the whole group (each convolution kernel counted once)."""
        return int(self.row_synapses.sum()) + sum(int(w.words.sum()) for _, w in self.windows)

    @property
    def fan_in(self) -> int:
        """Input axons one neuron of this group needs on its core."""
        windows = sum(w.window_fan_in() for _, w in self.windows)
        return int(sum(self.shared_axons.values())) + self.axons_per_neuron + windows

    def tile_neurons(self, start: int, stop: int) -> np.ndarray:
        """Flat indices of the neurons of tile [start, stop)."""
        if self.block is None:
            return np.arange(start, stop)
        return tile_order(self.shape, self.block)[start:stop]

    def window_axons(self, start: int, stop: int) -> list[int]:
        """Input axons tile [start, stop) needs for each convolution of ``windows``."""
        return self._window_cost(start, stop)[0]

    def window_words(self, start: int, stop: int) -> int:
        """Synapse words tile [start, stop) needs for its convolutions (shared kernels)."""
        return self._window_cost(start, stop)[1]

    def span(self, start: int, stop: int) -> TileSpan:
        """Output channels, rows and columns of tile [start, stop) (a group with convolution inputs)."""
        if self.block is not None:
            return TileSpan.of_range(self.shape, self.block, start, stop)
        return TileSpan.of_neurons(self.shape, np.arange(start, stop))

    def _window_cost(self, start: int, stop: int) -> tuple[list[int], int]:
        if not self.windows:
            return [], 0
        if (start, stop) not in self._spans:
            span = self.span(start, stop)
            self._spans[(start, stop)] = ([w.span_axons(span) for _, w in self.windows],
                                          sum(w.span_words(span) for _, w in self.windows))
        return self._spans[(start, stop)]

    @property
    def max_row_synapses(self) -> int:
        """Most synapses of any one neuron (0 for an empty group)."""
        return int(self.row_synapses.max()) if self.row_synapses.size else 0

    def cumulative_synapses(self) -> np.ndarray:
        """Synapses of neurons [0, i) for i = 0..size (prefix sums, int64), to count a tile's synapses."""
        return np.concatenate([[0], np.cumsum(self.row_synapses, dtype=np.int64)])


def source_range(graph: Graph, name: str) -> tuple[str, int, int]:
    """(producer, start, stop): the flat neuron range of the producer that a train named ``name`` is,
    looking through Flatten and Slice views."""
    node = graph.node(name)
    if isinstance(node, Flatten):
        return source_range(graph, node.source)
    if isinstance(node, Slice):
        producer, start, _ = source_range(graph, node.source)
        return producer, start + int(node.start), start + int(node.stop)
    return node.name, 0, int(np.prod(graph.shapes[name]))


def group_footprints(graph: Graph, synapse_words: int | None = None) -> list[GroupFootprint]:
    """Footprints of every neuron group, in the graph's structural order; ``synapse_words`` (a core's
    synapse memory) sizes the output-channel blocks of convolution-fed groups."""
    return [group_footprint(graph, node, synapse_words) for node in graph.structural_order
            if node.ROLE == "neuron"]


def group_footprint(graph: Graph, node: Node, synapse_words: int | None = None) -> GroupFootprint:
    """Neurons, per-neuron synapses, input axons and synapse cores of one neuron group, from its input synapses."""
    size = int(np.prod(node.shape))
    footprint = GroupFootprint(node.name, size, np.zeros(size, np.int64),
                               synapse_cores_per_tile=int(getattr(node, "n_synapse_cores", 0)))
    for syn_name in node.inputs:
        _add_synapse(graph, graph.node(syn_name), footprint)
    if footprint.windows:   # a 1-D group fed by a convolution (a partial-sum relay) tiles its output's shape
        footprint.shape = tuple(node.shape) if len(node.shape) == 3 else footprint.windows[0][1].out_shape
    if footprint.windows and len(footprint.windows) == len(node.inputs):
        footprint.block = channel_block(sum(w.words for _, w in footprint.windows), synapse_words)
    return footprint


def _add_synapse(graph: Graph, syn: Node, footprint: GroupFootprint) -> None:
    size = footprint.neurons
    if syn.ROLE == "input":   # a delta encoder reads its input one to one (no synapse memory)
        footprint.axons_per_neuron += 1
        footprint.edges.append(Edge(syn.name, footprint.name, 0, size, one_to_one=True))
        return
    if isinstance(syn, LoihiGradedSum):
        footprint.row_synapses += len(syn.sources)
        footprint.axons_per_neuron += len(syn.sources)
        for src in syn.sources:
            producer, start, stop = source_range(graph, src)
            footprint.edges.append(Edge(producer, footprint.name, start, stop, one_to_one=True))
        return
    producer, start, stop = source_range(graph, syn.source)
    if isinstance(syn, LoihiConv):
        window = ConvWindow.of(syn)
        footprint.windows.append(((producer, start, stop), window))
        footprint.edges.append(Edge(producer, footprint.name, start, stop, window=window))
        return
    footprint.edges.append(Edge(producer, footprint.name, start, stop))
    matrix = _matrix(syn)
    if matrix is not None and matrix.ndim == 2:
        nonzero = matrix != 0
        footprint.row_synapses += np.count_nonzero(nonzero, axis=1).reshape(size)
        columns = int(np.count_nonzero(nonzero.any(axis=0)))
    else:
        footprint.row_synapses += _taps_per_neuron(syn, size)
        columns = stop - start
    key = (producer, start, stop)
    footprint.shared_axons[key] = max(footprint.shared_axons.get(key, 0), columns)


def _matrix(syn: Node):
    for name in MATRIX_FIELDS:
        value = getattr(syn, name, None)
        if value is not None:
            return np.asarray(value)
    return None


def _taps_per_neuron(syn: Node, size: int) -> np.ndarray:
    """Synapses per output neuron of a convolution or pooling (kernel taps; padding edges ignored)."""
    if isinstance(syn, SumPool2d):
        return np.full(size, int(np.prod(syn.kernel)), np.int64)
    weight = np.asarray(getattr(syn, "weight_mant", getattr(syn, "weight", np.zeros((1, 1)))))
    per_channel = np.count_nonzero(weight.reshape(weight.shape[0], -1), axis=1)
    return np.repeat(per_channel, max(size // max(per_channel.size, 1), 1))[:size].astype(np.int64)


def lower_bound_cores(footprints: list[GroupFootprint], budget: CoreBudget) -> int:
    """No placement can use fewer cores: total neurons, synapses and one-to-one axons over capacity."""
    if not budget.limited:
        return 0
    bounds = [sum(f.neurons for f in footprints) / budget.neurons]
    if budget.synapses:
        bounds.append(sum(f.synapses for f in footprints) / budget.synapses)
    if budget.axons:
        bounds.append(sum(f.axons_per_neuron * f.neurons for f in footprints) / budget.axons)
    if not budget.groups_share_cores:   # every group needs whole cores of its own
        bounds.append(sum(int(np.ceil(f.neurons / budget.neurons)) for f in footprints))
    return max(1, int(np.ceil(max(bounds) - 1e-9)))
