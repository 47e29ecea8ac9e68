"""IR verifier: structural and type rules, all violations reported at once.

Runs after every pass. Hardware ranges (bits, cores) are not checked here: they are target data, checked
by ``snnc.targets`` design rules.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import IRVerificationError, Violation
from snnc.ir.graph import Graph, dt_in_range, dt_range_text, output_shape
from snnc.ir.names import NAME_RULE, is_safe_name, shown_name
from snnc.ir.nodes import (
    NEURON_TYPES, SYNAPSE_TYPES, Conv2d, CubaLIF, Dense, LI, LoihiConv, LoihiDense,
    LoihiLIF, Node, SpinnakerPopulation, SpinnakerProjection, SumPool2d, is_spiking, node_sources,
)
from snnc.ir.nodes import GRADED_TYPES, Flatten, GradedInput, LoihiGradedRelay, LoihiGradedSum, Slice

FLOAT_ONLY = (Dense, Conv2d, SumPool2d, CubaLIF, LI)
LOWERED_ONLY = (LoihiDense, LoihiConv, LoihiLIF, SpinnakerProjection, SpinnakerPopulation)
LOWERED_ONLY = LOWERED_ONLY + (GradedInput, Slice, LoihiGradedRelay, LoihiGradedSum)


def verify(graph: Graph) -> Graph:
    """Return ``graph`` unchanged if well formed; otherwise raise ``IRVerificationError``."""
    found: list[Violation] = _check_name_characters(graph)
    if not found:
        found += _check_names(graph)
    if not found:
        found += _check_edges(graph)
    if not found:
        found += _check_shapes(graph)
        found += _check_params(graph)
        found += _check_timing(graph)
    if found:
        raise IRVerificationError(f"graph '{shown_name(graph.name)}'", found)
    return graph


def _check_name_characters(graph: Graph) -> list[Violation]:
    """Names reach emitted scripts and terminals: only ``snnc.ir.names`` characters (checked first, so no
    later message prints an unchecked name)."""
    named = [("graph", graph.name)] + [("node", n.name) for n in graph.nodes] + \
        [("source", s) for n in graph.nodes for s in node_sources(n)] + \
        [("outputs", o) for o in graph.outputs] + [("latency_steps", n) for n, _ in graph.latency_steps]
    return [Violation(shown_name(name), "name" if kind in ("graph", "node") else kind, NAME_RULE, ascii(name))
            for kind, name in named if not is_safe_name(name)]


def _check_names(graph: Graph) -> list[Violation]:
    out, seen = [], set()
    for node in graph.nodes:
        if not node.name or node.name in seen:
            out.append(Violation(node.name or "?", "name", "unique, non-empty", repr(node.name)))
        seen.add(node.name)
    for name in graph.outputs:
        if name not in seen:
            out.append(Violation(name, "outputs", "an existing node", "no such node"))
    if not graph.inputs:
        out.append(Violation(graph.name, "nodes", "at least one Input", "none"))
    if not dt_in_range(graph.dt_s):
        out.append(Violation(graph.name, "dt_s", f"seconds in {dt_range_text()}", repr(graph.dt_s)))
    return out


def _check_edges(graph: Graph) -> list[Violation]:
    out = []
    for node in graph.nodes:
        if isinstance(node, NEURON_TYPES) and not node.inputs:
            out.append(Violation(node.name, "inputs", "at least one synapse", "none"))
        for src in node_sources(node):
            source = graph.by_name.get(src)
            if source is None:
                out.append(Violation(node.name, "source", "an existing node", f"'{src}' (missing)"))
            elif isinstance(node, NEURON_TYPES) and not isinstance(source, SYNAPSE_TYPES):
                out.append(Violation(node.name, "inputs", "synapse nodes (currents)",
                                     f"'{src}' is {type(source).__name__}"))
            elif not isinstance(node, NEURON_TYPES):
                out += _source_kind_violations(graph, node, source)
    return out


def _source_kind_violations(graph: Graph, node: Node, source: Node) -> list[Violation]:
    """Synapses and views read spikes; graded payloads only reach a ``LoihiGradedSum`` (which reads
    nothing else), a ``LoihiDense`` or a view, looking through Flatten/Slice views to the producer."""
    base = graph.producer(source.name)
    if isinstance(node, LoihiGradedSum):
        if isinstance(source, GRADED_TYPES):
            return []
        return [Violation(node.name, "sources", "graded nodes (LoihiGradedRelay, GradedInput)",
                          f"'{source.name}' is {type(source).__name__}")]
    graded_reader = isinstance(node, (LoihiDense, Flatten, Slice))
    if is_spiking(base) or (isinstance(base, GRADED_TYPES) and graded_reader):
        return []
    return [Violation(node.name, "source", "a spiking node", f"'{source.name}' is {type(source).__name__}")]


def _check_shapes(graph: Graph) -> list[Violation]:
    out: list[Violation] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for node in graph.structural_order:
        out += _node_shape_violations(node, graph, shapes)
        try:
            shapes[node.name] = output_shape(node, shapes)
        except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
            out.append(Violation(node.name, "shape", "computable output shape", str(exc)))
            shapes[node.name] = (0,)
        if any(d < 1 for d in shapes[node.name]):
            out.append(Violation(node.name, "shape", "every output dimension >= 1", str(shapes[node.name])))
    for node in graph.nodes:
        if isinstance(node, NEURON_TYPES):
            size = int(np.prod(node.shape))
            for src in node.inputs:
                got = int(np.prod(shapes.get(src, (-1,))))
                if got != size:
                    out.append(Violation(node.name, f"inputs['{src}']", f"{size} currents", str(got)))
    return out


def _node_shape_violations(node: Node, graph: Graph, shapes) -> list[Violation]:
    if isinstance(node, (Slice, LoihiGradedSum)):
        return _graded_shape_violations(node, shapes)
    if isinstance(node, SpinnakerProjection):
        return _spinnaker_projection_violations(node, shapes)
    if isinstance(node, (Dense, LoihiDense)):
        weight = node.weight if isinstance(node, Dense) else node.weight_mant
        if weight.ndim != 2:
            return [Violation(node.name, "weight", "2-D (out, in)", f"{weight.ndim}-D")]
        size = int(np.prod(shapes[node.source]))
        if weight.shape[1] != size:
            return [Violation(node.name, "weight.shape[1]", f"{size} (size of '{node.source}')",
                              str(weight.shape[1]))]
        bias = getattr(node, "bias", None)
        if bias is not None and np.shape(bias) != (weight.shape[0],):
            return [Violation(node.name, "bias.shape", str((weight.shape[0],)), str(np.shape(bias)))]
    if isinstance(node, (Conv2d, LoihiConv, SumPool2d)):
        src_shape = tuple(shapes[node.source])
        if tuple(node.in_shape) != src_shape:
            return [Violation(node.name, "in_shape", str(src_shape), str(tuple(node.in_shape)))]
    if isinstance(node, (Conv2d, LoihiConv)):
        weight = node.weight if isinstance(node, Conv2d) else node.weight_mant
        expected_in = node.in_shape[0] // max(node.groups, 1)
        if weight.ndim != 4 or weight.shape[1] != expected_in:
            return [Violation(node.name, "weight.shape", f"(out, {expected_in}, kh, kw)", str(weight.shape))]
    return []


def _check_params(graph: Graph) -> list[Violation]:
    out = []
    for node in graph.nodes:
        for field_name, value in _numeric_fields(node):
            arr = np.asarray(value)
            if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
                out.append(Violation(node.name, field_name, "finite values", "NaN or inf"))
        if isinstance(node, (CubaLIF, LI)):
            for name in ("current_decay", "voltage_decay"):
                value = np.asarray(getattr(node, name), dtype=float)
                if np.any(value < 0) or np.any(value > 1):
                    out.append(Violation(node.name, name, "in [0, 1]", _range(value)))
        if isinstance(node, CubaLIF):
            threshold = np.asarray(node.threshold, dtype=float)
            if np.any(threshold <= 0):
                out.append(Violation(node.name, "threshold", "> 0", _range(threshold)))
            if node.reset not in ("zero", "zero_next", "subtract", "none"):
                out.append(Violation(node.name, "reset", "zero|zero_next|subtract|none", repr(node.reset)))
            if node.comparison not in ("gt", "ge"):
                out.append(Violation(node.name, "comparison", "gt|ge", repr(node.comparison)))
        delay = getattr(node, "delay_steps", 0)
        if np.any(np.asarray(delay) < 0) or np.asarray(delay).dtype.kind not in "iu":
            out.append(Violation(node.name, "delay_steps", "integers >= 0", _range(np.asarray(delay))))
        elif isinstance(node, FLOAT_ONLY) and np.ndim(delay) != 0:
            out.append(Violation(node.name, "delay_steps", "one integer per float-IR synapse (per-synapse "
                                 "delays exist only in lowered graphs)", f"an array of shape {np.shape(delay)}"))
    return out


def _check_timing(graph: Graph) -> list[Violation]:
    out = []
    wrong = FLOAT_ONLY if graph.timing == "hop_latency" else LOWERED_ONLY
    for node in graph.nodes:
        if isinstance(node, wrong):
            out.append(Violation(node.name, "type", f"node types of a {graph.timing} graph",
                                 type(node).__name__))
    if graph.timing == "zero_latency":
        try:
            graph.evaluation_order
        except ValueError as exc:
            out.append(Violation(graph.name, "edges", "every cycle passes a synapse with delay_steps >= 1",
                                 str(exc)))
    return out


def _numeric_fields(node: Node):
    for name in getattr(node, "__dataclass_fields__", {}):
        value = getattr(node, name)
        if isinstance(value, (int, float, np.ndarray)) and not isinstance(value, bool):
            yield name, value


def _range(arr: np.ndarray) -> str:
    return f"{arr.min()!r}" if arr.size == 1 else f"values in [{arr.min()!r}, {arr.max()!r}]"


def _spinnaker_projection_violations(node: SpinnakerProjection, shapes) -> list[Violation]:
    """Words are unsigned 16-bit integers (out, in); the receptor names one of the two current inputs."""
    words = np.asarray(node.weight_word)
    size = int(np.prod(shapes[node.source]))
    if words.ndim != 2 or words.shape[1] != size:
        return [Violation(node.name, "weight_word.shape", f"(out, {size})", str(words.shape))]
    if words.dtype.kind not in "iu" or (words.size and (words.min() < 0 or words.max() > 0xFFFF)):
        return [Violation(node.name, "weight_word", "unsigned 16-bit integers", _range(words))]
    if node.receptor not in ("excitatory", "inhibitory"):
        return [Violation(node.name, "receptor", "excitatory|inhibitory", repr(node.receptor))]
    return []


def _graded_shape_violations(node, shapes) -> list[Violation]:
    """A slice lies inside its source; the sources of a graded sum all have one size."""
    if isinstance(node, Slice):
        size = int(np.prod(shapes[node.source]))
        if not 0 <= node.start < node.stop <= size:
            return [Violation(node.name, "start:stop", f"0 <= start < stop <= {size}",
                              f"{node.start}:{node.stop}")]
        return []
    sizes = sorted({int(np.prod(shapes[s])) for s in node.sources})
    if len(sizes) != 1:
        return [Violation(node.name, "sources", "one size", f"sizes {sizes}")]
    return []
