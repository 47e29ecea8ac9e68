"""Pass: split neuron groups whose per-neuron fan-in exceeds one core into partial-sum units.

A neuron of fan-in F needs F input axons and F synapse words on its core. When F exceeds
``min(input_axons_per_core, synapses_per_core)`` (i.e. F > axons or F * weight_bits > synapse memory)
the widest dense input synapse ``s`` (source X, weights W, exponent e) is split into
``k = ceil(F_s / min(axons, synapses))`` chunks of its used columns; until the group fits::

    X -> Slice_c -> LoihiDense part_c (W[:, chunk c], exponent 0) -> LoihiGradedRelay psum_c
    psum_0 .. psum_k-1 -> LoihiGradedSum s (one-to-one, exponent e) -> the group

Each relay sends its exact integer partial sum as a graded spike; the graded sum adds them and shifts
once, so the group receives ``shift(sum_c W_c s_c, e) = shift(W s, e)`` bit for bit. The relay costs one
step: the group's latency grows by one, and every other path is re-aligned by the smallest latency
increase that keeps all hop delays >= 0 (a longest-path problem over the graph; a relay inside a
recurrent loop with no delay to absorb it is refused). Neurons whose latency grows start from a
membrane voltage that reaches their old initial voltage after the extra input-free steps.

A convolution ``s`` (kernel (C_out, C_in / groups, kh, kw), no exponent, output wrapped to 24 bits) whose
kernel window (``snnc.targets.conv_window``: used input channels x used kernel rows x columns) exceeds the
limit is split by input-channel partial sums: its used input channels (within each channel group) are cut
into ``k = ceil(channels / floor(limit / taps))`` blocks, ``taps`` the used kernel rows x columns, and::

    X -> LoihiConv part_c (the kernel with every channel outside block c zeroed) -> LoihiGradedRelay psum_c
    psum_0 .. psum_k-1 -> LoihiGradedSum s (one-to-one, exponent 0) -> the group

A part keeps the whole input shape (no Slice: a zero weight is no synapse, so its window and its Lava
``Conv`` read only block c; the layout of the input stays Lava's (x, y, c)). Exactness: the original
activation is ``wrap24(sum_c P_c)`` with P_c block c's integer sum; the partitioned one is
``wrap32(sum_c wrap24(P_c))``. When the worst case ``max(sum of positive weights, -sum of negative
weights)`` of every output channel is at most 2^23 - 1 no sum wraps anywhere and both equal ``sum_c P_c``
bit for bit; a convolution whose worst case exceeds that (its own 24-bit wrap could act) or whose single
input channel's window exceeds the limit is refused (``UnsupportedError``) rather than changed. A part
has no delay, so its relay takes the step after the source's (latency + 1) and the graded sum's
``delay_steps`` absorbs any further re-alignment.

Preserves: every original node's spikes, u and v bit for bit, with each node's output delayed by the
updated ``latency_steps`` (``run_on_ir_grid`` therefore returns identical traces); node names (the
partitioned synapse keeps its name as the graded sum). Adds: Slice/part/relay nodes per chunk.

Generic over targets: the limits come from the spec; ``spec.partial_sum_transport`` picks the scheme:
"graded_relay" rewrites the graph as above; "synapse_cores" (SpiNNaker's neuron/synapse core split) only
sets each population's ``n_synapse_cores`` to what ``spec.synapse_core_plan`` says its synaptic events per
tick need (``snnc.targets.spinnaker_synapse_cores``: exact, no added latency, so every spike and state is
preserved bit for bit; the emulator runs the split's packed sum); None changes nothing
(``check_design_rules`` then reports the fan-in).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from snnc.compiler.pass_api import LOWERED, Pass, PassOptions, PassResult
from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph, producer_behind_views
from snnc.ir.nodes import Flatten, Input, LoihiConv, LoihiDense, LoihiGradedRelay, LoihiGradedSum, Slice, node_sources
from snnc.neurons import is_neuron_in, model_of
from snnc.lowering.warmup import check_periodic_fill, voltage_before
from snnc.targets.conv_window import ConvWindow
from snnc.targets.footprint import CoreBudget
from snnc.targets.spec import synapse_fan_in


@dataclasses.dataclass(frozen=True)
class SynapseSplit:
    """Synapse ``synapse`` of ``group`` split at ``bounds`` (k + 1 column indices, chunk c =
    [bounds[c], bounds[c+1])) from ``fan_in`` used columns; for a convolution (``channels`` set) chunk c
    is the block ``channels[c]`` of input-channel indices within a channel group and ``bounds`` is empty."""

    group: str
    synapse: str
    fan_in: int
    bounds: tuple[int, ...]
    channels: tuple[tuple[int, ...], ...] = ()

    @property
    def k(self) -> int:
        """Number of chunks (one partial sum each)."""
        return len(self.channels) if self.channels else len(self.bounds) - 1


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Split the fan-in a neuron cannot take on one core (graded relays) or give populations synapse
    cores; every original node's spikes and states are preserved bit for bit after the updated latency.
    A float graph, a target without a fan-in limit or a graph that fits is returned unchanged."""
    transport = options.target.partial_sum_transport
    if graph.timing != "hop_latency":
        return PassResult(graph, False)
    if transport == "synapse_cores":
        return assign_synapse_cores(graph, options.target)
    limit = CoreBudget.of(options.target).per_neuron_fan_in
    if limit is None:
        return PassResult(graph, False)
    splits = plan_splits(graph, limit)
    if not splits:
        return PassResult(graph, False)
    summary = {s.synapse: {"group": s.group, "fan_in": s.fan_in, "k": s.k} for s in splits}
    if transport != "graded_relay":
        return PassResult(graph, False, {"unsplit": summary, "note": "target has no partial-sum transport"})
    new_graph, added = apply_splits(graph, splits, options.target.max_delay_steps)
    report = {"splits": summary, "per_neuron_limit": limit, "added_latency": added,
              "latency_steps": dict(new_graph.latency_steps)}
    return PassResult(new_graph, True, report)


def assign_synapse_cores(graph: Graph, spec) -> PassResult:
    """Give every population the synapse cores its planned load needs (infeasible plans stay as they
    are for ``check_design_rules`` to report)."""
    nodes, report = [], {}
    for node in graph.nodes:
        plan = spec.synapse_core_plan(graph, node) if is_neuron_in(node, "spinnaker") else None
        if plan is not None and plan.n_synapse_cores:
            report[node.name] = {"n_synapse_cores": plan.n_synapse_cores, "events_per_tick": plan.events_per_tick,
                                 "per_core_events": plan.per_core_events, "budget_per_core": plan.budget}
            node = dataclasses.replace(node, n_synapse_cores=plan.n_synapse_cores)
        nodes.append(node)
    if not report:
        return PassResult(graph, False)
    return PassResult(graph.replace_nodes(nodes), True, {"synapse_cores": report})


# ----------------------------------------------------------------------------------------- planning

def plan_splits(graph: Graph, limit: int) -> list[SynapseSplit]:
    """Which dense synapses to split, widest first, until every group's per-neuron fan-in fits."""
    splits = []
    readers = _readers(graph.nodes)
    for group in graph.nodes:
        if not _loihi_group(group):
            continue
        cost = {s: synapse_fan_in(graph, graph.node(s)) for s in group.inputs}
        if sum(cost.values()) <= limit:
            continue
        recurrent = _recurrent_inputs(graph, group, readers)
        candidates = sorted((s for s in group.inputs if isinstance(graph.node(s), (LoihiDense, LoihiConv))),
                            key=lambda s: (s in recurrent, -cost[s]))
        for name in candidates:
            if sum(cost.values()) <= limit:
                break
            if cost[name] <= 1:      # a later (recurrent) candidate may still be wide
                continue
            syn = graph.node(name)
            split = _split_conv(group.name, syn, limit) if isinstance(syn, LoihiConv) else \
                _split(group.name, syn, limit)
            splits.append(split)
            cost[name] = split.k
    return splits


def _readers(nodes) -> dict[str, list[str]]:
    """Node name -> names of the nodes reading it."""
    out: dict[str, list[str]] = {}
    for node in nodes:
        for src in node_sources(node):
            out.setdefault(src, []).append(node.name)
    return out


def _recurrent_inputs(graph: Graph, group, readers: dict[str, list[str]]) -> set[str]:
    """Input synapses of ``group`` whose source depends on the group's own output (a loop)."""
    reached, frontier = {group.name}, [group.name]
    while frontier:
        for reader in readers.get(frontier.pop(), []):
            if reader not in reached:
                reached.add(reader)
                frontier.append(reader)
    return {s for s in group.inputs
            if any(graph.producer(src).name in reached for src in node_sources(graph.node(s)))}


def _split(group: str, syn: LoihiDense, limit: int) -> SynapseSplit:
    """Chunks of at most ``limit`` used columns each, k = ceil(used / limit), as even as possible."""
    used = np.flatnonzero(np.any(np.asarray(syn.weight_mant) != 0, axis=0))
    k = math.ceil(used.size / limit)
    parts = np.array_split(used, k)
    bounds = [0] + [int(p[0]) for p in parts[1:]] + [int(syn.weight_mant.shape[1])]
    return SynapseSplit(group, syn.name, int(used.size), tuple(bounds))


def _split_conv(group: str, conv: LoihiConv, limit: int) -> SynapseSplit:
    """Blocks of at most ``floor(limit / taps)`` used input channels (indices within a channel group),
    as even as possible; refused when one channel's window alone exceeds ``limit`` or when the
    convolution's own 24-bit wrap could act (the partial sums would not reproduce it)."""
    window = ConvWindow.of(conv)
    weight = np.asarray(conv.weight_mant, np.int64)
    used = np.flatnonzero(np.any(weight != 0, axis=(0, 2, 3)))
    _, height, width = window.in_shape
    taps = int((np.minimum(window.rows.sum(axis=1), height) * np.minimum(window.cols.sum(axis=1), width)).max())
    if taps > limit:
        raise UnsupportedError(conv.name, "fan-in", f"{limit} input axons per neuron per core (input-channel "
                               "partial sums cannot split one channel's kernel window)",
                               f"{taps} taps of one input channel")
    worst = _conv_worst_activation(weight)
    if worst > CONV_ACTIVATION_MAX:
        raise UnsupportedError(conv.name, "weight_mant", f"worst-case activation <= {CONV_ACTIVATION_MAX} "
                               "(Lava Conv wraps at 24 bits; input-channel partial sums would not wrap "
                               "alike)", worst)
    per_block = limit // taps
    blocks = np.array_split(used, math.ceil(used.size / per_block))
    return SynapseSplit(group, conv.name, window.window_fan_in(), (),
                        tuple(tuple(int(c) for c in block) for block in blocks))


CONV_ACTIVATION_MAX = (1 << 23) - 1   # Lava Conv fixed_pt: a_out wrapped to signed 24 bits


def _conv_worst_activation(weight: np.ndarray) -> int:
    """Largest |activation| any output neuron can reach from binary spikes: per output channel the larger
    of its positive and its negative weight sums."""
    flat = weight.reshape(weight.shape[0], -1)
    return int(max(np.clip(flat, 0, None).sum(axis=1).max(), (-np.clip(flat, None, 0)).sum(axis=1).max()))


# ------------------------------------------------------------------------------------------ rewrite

def apply_splits(graph: Graph, splits: list[SynapseSplit], max_delay: int) -> tuple[Graph, dict[str, int]]:
    """The partitioned graph (delays, initial voltages and latencies re-aligned) and the added
    latency of every node whose latency grew."""
    nodes = {n.name: n for n in graph.nodes}
    base: dict[str, object] = {}           # synapse -> hop delay it needs before re-alignment
    order: list[str] = [n.name for n in graph.nodes]
    for split in splits:
        for node in _split_nodes(nodes[split.synapse], split):
            if node.name in nodes and node.name != split.synapse:
                raise UnsupportedError(node.name, "name", "unused (needed by fan-in partitioning)", node.name)
            if node.name not in nodes:
                order.insert(order.index(split.synapse), node.name)
            nodes[node.name] = node
            if isinstance(node, LoihiDense):
                base[node.name] = np.asarray(node.delay_steps) - 1   # the relay adds one step
            elif isinstance(node, LoihiConv) and node.name != split.synapse:
                base[node.name] = np.asarray(-1)                      # its relay's latency absorbs it
    readers = _readers(graph.nodes)
    in_loops = [s.synapse for s in splits
                if s.synapse in _recurrent_inputs(graph, graph.node(s.group), readers)]
    shift = _relays_follow_their_group(nodes, _latency_shift(nodes, base, in_loops or [splits[0].synapse]))
    consumer = {syn: n.name for n in nodes.values() if n.ROLE == "neuron" for syn in n.inputs}
    realigned = {name: _realign(node, nodes, consumer, shift, base, max_delay)
                 for name, node in nodes.items()}
    latency = _new_latency(graph, nodes, shift)
    out = graph.replace_nodes([realigned[n] for n in order], latency_steps=tuple(sorted(latency.items())))
    return out, {n: s for n, s in shift.items() if s and (isinstance(nodes[n], Input) or _loihi_group(nodes[n]))}


def _relays_follow_their_group(nodes: dict, shift: dict[str, int]) -> dict[str, int]:
    """Give every relay of dense parts its group's shift, so the graded sum needs no delay and all of a
    synapse's relays agree (the part denses absorb the difference). Relays of convolution parts keep their
    own (source + 1: a convolution has no delay); their graded sum's delay absorbs the rest."""
    out = dict(shift)
    for node in nodes.values():
        if node.ROLE == "neuron":
            for syn in (nodes[s] for s in node.inputs if isinstance(nodes[s], LoihiGradedSum)):
                for src in syn.sources:
                    if isinstance(nodes[src], LoihiGradedRelay) and not _reads_conv(nodes, nodes[src]):
                        out[src] = shift[node.name]
    return out


def _reads_conv(nodes: dict, relay: LoihiGradedRelay) -> bool:
    """Whether a relay adds convolution partial sums."""
    return any(isinstance(nodes[s], LoihiConv) for s in relay.inputs)


def _new_latency(graph: Graph, nodes: dict, shift: dict[str, int]) -> dict[str, int]:
    """Old latency + the producer's shift for every timed node (new views inherit their producer's)."""
    old = graph.latency
    latency = {}
    for name, node in nodes.items():
        if not _is_timed(node):
            continue
        producer = producer_behind_views(nodes, name).name
        value = old.get(name, old.get(producer, 0)) + shift[producer]
        if name in old or value:
            latency[name] = value
    return latency


def _split_nodes(syn, split: SynapseSplit) -> list:
    """Slices, partial denses and relays of one split synapse (partial convolutions and relays of a
    split convolution), then the graded sum replacing it."""
    if isinstance(syn, LoihiConv):
        return _conv_split_nodes(syn, split)
    out, relays = [], []
    delays = np.asarray(syn.delay_steps)
    for c in range(split.k):
        lo, hi = split.bounds[c], split.bounds[c + 1]
        names = (f"{syn.name}__slice{c}", f"{syn.name}__part{c}", f"{syn.name}__psum{c}")
        part_delay = delays[:, lo:hi] if delays.ndim == 2 else delays
        out.append(Slice(names[0], syn.source, lo, hi))
        out.append(LoihiDense(names[1], names[0], np.asarray(syn.weight_mant)[:, lo:hi], weight_exp=0,
                              num_weight_bits=syn.num_weight_bits, sign_mode=syn.sign_mode,
                              delay_steps=part_delay))
        out.append(LoihiGradedRelay(names[2], (names[1],), (int(syn.weight_mant.shape[0]),)))
        relays.append(names[2])
    out.append(LoihiGradedSum(syn.name, tuple(relays), weight_exp=int(syn.weight_exp), delay_steps=0))
    return out


def _conv_split_nodes(conv: LoihiConv, split: SynapseSplit) -> list:
    """One partial convolution (the kernel outside its channel block zeroed) and one relay per block,
    then the graded sum (exponent 0, as Lava's Conv has none) replacing the convolution."""
    out, relays = [], []
    weight = np.asarray(conv.weight_mant)
    size = int(np.prod(conv.output_shape(None)))
    for c, block in enumerate(split.channels):
        part = np.zeros_like(weight)
        part[:, list(block)] = weight[:, list(block)]
        names = (f"{conv.name}__part{c}", f"{conv.name}__psum{c}")
        out.append(dataclasses.replace(conv, name=names[0], weight_mant=part))
        out.append(LoihiGradedRelay(names[1], (names[0],), (size,)))
        relays.append(names[1])
    out.append(LoihiGradedSum(conv.name, tuple(relays), weight_exp=0, delay_steps=0))
    return out


def _edges(nodes: dict, base: dict):
    """(producer, consumer, synapse, smallest base delay) for every synapse -> neuron/relay edge."""
    for node in nodes.values():
        if node.ROLE != "neuron":
            continue
        for syn_name in node.inputs:
            syn = nodes[syn_name]
            sources = syn.sources if isinstance(syn, LoihiGradedSum) else (syn.source,)
            delay = base.get(syn_name, np.asarray(getattr(syn, "delay_steps", 0)))
            for src in sources:
                yield producer_behind_views(nodes, src).name, node.name, syn_name, int(np.min(delay))


def _latency_shift(nodes: dict, base: dict, split: list[str]) -> dict[str, int]:
    """Smallest non-negative latency increase per node with base delay + shift(dst) - shift(src) >= 0
    on every edge (Bellman-Ford longest path); a positive cycle is a recurrent loop that cannot absorb
    the relay's step."""
    shift = {name: 0 for name in nodes}
    edges = list(_edges(nodes, base))
    for _ in range(len(nodes) + 1):
        changed = False
        for src, dst, _syn, delay in edges:
            need = shift[src] - delay
            if need > shift[dst]:
                shift[dst], changed = need, True
        if not changed:
            return shift
    raise UnsupportedError(split[0] if len(split) == 1 else ", ".join(split), "delay_steps",
                           "a recurrent loop with a spare delay step (the partial-sum relay adds one step)",
                           "a loop without one")


def _realign(node, nodes: dict, consumer: dict[str, str], shift: dict[str, int], base: dict, max_delay: int):
    """New hop delays (base + shift(dst) - shift(src)); new initial voltage for shifted neurons."""
    if _loihi_group(node) and shift[node.name]:
        return _shifted_group(node, shift[node.name])
    if not isinstance(node, (LoihiDense, LoihiConv, LoihiGradedSum)):
        return node
    if node.name not in consumer:
        return node
    sources = node.sources if isinstance(node, LoihiGradedSum) else (node.source,)
    delta = {shift[consumer[node.name]] - shift[producer_behind_views(nodes, s).name] for s in sources}
    if len(delta) != 1:
        raise UnsupportedError(node.name, "sources", "sources with one latency", sorted(delta))
    delay = base.get(node.name, np.asarray(getattr(node, "delay_steps", 0))) + delta.pop()
    return _with_delay(node, delay, max_delay)


def _shifted_group(node, steps: int):
    """A group whose latency grew by ``steps``: a start voltage that reaches its old one after the extra
    input-free steps, and its periodic reset (if any) on the same steps of the old grid."""
    why = "fan-in partitioning added latency"
    v_init = voltage_before(node, node.v_init, steps, why)
    interval = int(getattr(node, "reset_interval", 0))
    if not interval:
        return dataclasses.replace(node, v_init=v_init)
    shifted = dataclasses.replace(node, v_init=v_init, reset_phase=(int(node.reset_phase) + steps) % interval)
    check_periodic_fill(shifted, steps, node.v_init, why)
    return shifted


def _with_delay(node, delay, max_delay: int):
    delay = np.asarray(delay, np.int64)
    if isinstance(node, LoihiConv):
        if np.any(delay != 0):
            raise UnsupportedError(node.name, "delay_steps", "0 (Loihi convolutions have no delay) after "
                                   "fan-in partitioning re-aligned the paths", int(delay.max()))
        return node
    if delay.size and (delay.min() < 0 or delay.max() > max_delay):
        raise UnsupportedError(node.name, "delay_steps", f"0..{max_delay} after fan-in partitioning "
                               "re-aligned the paths", f"range [{delay.min()}, {delay.max()}]")
    value = int(delay) if delay.ndim == 0 else delay
    if isinstance(node, LoihiGradedSum):
        return dataclasses.replace(node, delay_steps=int(np.max(delay)))
    return dataclasses.replace(node, delay_steps=value)


def _is_timed(node) -> bool:
    """Nodes whose trains the aligned runner shifts by their latency."""
    return isinstance(node, (Input, Flatten, Slice)) or _loihi_group(node)


def _loihi_group(node) -> bool:
    """A stateful neuron group of Loihi arithmetic (what fan-in partitioning splits; not a relay)."""
    if node.ROLE != "neuron":
        return False
    traits = model_of(node).traits
    return traits.arithmetic == "loihi" and traits.output != "graded"


PASS = Pass("partition_fanin", run, requires=LOWERED)
