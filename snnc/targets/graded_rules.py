"""Design rules for graded (multi-bit) messages, from a spec's ``graded_spike_bits``.

A payload must fit the target's graded spike width, and every int32 sum Lava forms from graded payloads
must stay inside int32 (then the order of Lava's wraps and shifts cannot matter). Bounds are worst
cases: every binary source spiking, every graded payload at its largest magnitude.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import Violation
from snnc.ir.graph import Graph
from snnc.ir.nodes import (
    GRADED_TYPES, GradedInput, LoihiConv, LoihiDense, LoihiGradedRelay, LoihiGradedSum,
)
from snnc.arith import loihi as lq
from snnc.neurons import model_of

INT32_MAX = (1 << 31) - 1


def graded_violations(spec, graph: Graph) -> list[Violation]:
    """Every graded node that the target cannot carry or whose worst case overflows."""
    graded = [n for n in graph.nodes if isinstance(n, GRADED_TYPES + (LoihiGradedSum,))]
    if not graded:
        return []
    bits = spec.graded_spike_bits
    if bits is None:
        return [Violation(n.name, "type", f"binary spikes only on target '{spec.name}'", type(n).__name__)
                for n in graded]
    bounds = payload_bounds(graph)
    limit = (1 << (bits - 1)) - 1
    out = []
    for node in graph.nodes:
        if isinstance(node, GradedInput) and node.bits > bits:
            out.append(Violation(node.name, "bits", f"<= {bits} (graded spike payload)", node.bits))
        elif isinstance(node, LoihiGradedRelay) and bounds[node.name] > limit:
            out.append(Violation(node.name, "payload", f"|g| <= {limit} ({bits}-bit graded spikes)",
                                 f"worst case {bounds[node.name]}", "split the fan-in further"))
        elif isinstance(node, LoihiGradedSum):
            out += _graded_sum_violations(spec, node, bounds)
        elif isinstance(node, LoihiDense) and graph.producer(node.source).name in bounds:
            worst = _dense_bound(node, bounds[graph.producer(node.source).name], shift=False)
            if worst > INT32_MAX:
                out.append(Violation(node.name, "weight_mant", f"|W @ x| <= {INT32_MAX} (int32)",
                                     f"worst case {worst}"))
    return out


def payload_bounds(graph: Graph) -> dict[str, int]:
    """Largest |payload| of every graded producer (graded inputs and relays)."""
    bounds: dict[str, int] = {}
    for node in graph.structural_order:
        if isinstance(node, GradedInput):
            bounds[node.name] = (1 << (node.bits - 1)) - 1
    for node in graph.nodes:
        if isinstance(node, LoihiGradedRelay):
            bounds[node.name] = sum(_activation_bound(graph, graph.node(s), bounds) for s in node.inputs)
    return bounds


def _activation_bound(graph: Graph, syn, bounds: dict[str, int]) -> int:
    if isinstance(syn, LoihiDense):
        return _dense_bound(syn, bounds.get(graph.producer(syn.source).name, 1), shift=True)
    if isinstance(syn, LoihiConv):
        weight = np.abs(np.asarray(syn.weight_mant, np.int64))
        return int(weight.reshape(weight.shape[0], -1).sum(axis=1).max())
    return INT32_MAX   # a graded sum into a relay is not a partitioning product: no bound claimed


def _dense_bound(node: LoihiDense, payload_max: int, shift: bool) -> int:
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    row = int(np.abs(words).sum(axis=1).max()) if words.size else 0
    total = row * int(payload_max)
    if not shift:
        return total
    e = int(node.weight_exp)
    return total << e if e > 0 else -((-total) >> -e)   # ceil for a right shift


def _graded_sum_violations(spec, node: LoihiGradedSum, bounds: dict[str, int]) -> list[Violation]:
    out = []
    lo, hi = spec.weight_exp_range
    if not lo <= node.weight_exp <= hi:
        out.append(Violation(node.name, "weight_exp", f"[{lo}, {hi}]", node.weight_exp))
    if not 0 <= node.delay_steps <= spec.max_delay_steps:
        out.append(Violation(node.name, "delay_steps", f"[0, {spec.max_delay_steps}]", node.delay_steps))
    total = sum(bounds.get(s, 0) for s in node.sources)
    if total > INT32_MAX:
        out.append(Violation(node.name, "sources", f"summed payload <= {INT32_MAX} (int32)",
                             f"worst case {total}"))
    return out


def graded_reader_violations(graph: Graph) -> list[Violation]:
    """Float groups: graded values (a graded input, a sigma-delta group's messages) reach only groups that are
    graded themselves (the sigma-delta family); a spiking group's lowering scales its weights for 0/1
    spikes, and sPyNNaker carries no graded values at all."""
    out = []
    for node in graph.nodes:
        if node.ROLE != "neuron" or model_of(node).traits.arithmetic != "float" \
                or model_of(node).traits.output == "graded":
            continue
        for name in node.inputs:
            syn = graph.node(name)
            source = graph.producer(syn.source) if syn.ROLE == "synapse" else syn
            if source.emits_graded():
                out.append(Violation(name, "source", "0/1 spikes into a spiking or readout group (graded values "
                                     "are read by sigma-delta groups)", f"graded values of '{source.name}'"))
    return out
