"""IR verifier: structural and type rules, all violations reported at once.

Runs after every pass. Hardware ranges (bits, cores) are not checked here: they are target data, checked
by ``snnc.targets`` design rules.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import IRVerificationError, Violation
from snnc.ir.graph import Graph, dt_in_range, dt_range_text
from snnc.ir.names import NAME_RULE, is_safe_name, shown_name
from snnc.ir.nodes import BiasInput, LoihiConv, LoihiDense, LoihiGradedSum, Node, is_spiking, node_sources

# The node domain a graph of each timing may not contain (see ``IRNode.DOMAIN``).
WRONG_DOMAIN = {"zero_latency": "lowered", "hop_latency": "float"}


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
        is_neuron = node.ROLE == "neuron"
        biases = node.bias_sources() if is_neuron else ()
        if is_neuron and not node.inputs and not biases:
            out.append(Violation(node.name, "inputs", "at least one synapse", "none"))
        for src in node_sources(node):
            source = graph.by_name.get(src)
            if source is None:
                out.append(Violation(node.name, "source", "an existing node", f"'{src}' (missing)"))
            elif src in biases:
                if not isinstance(source, BiasInput) or tuple(source.shape) != tuple(node.shape):
                    out.append(Violation(node.name, "bias_input", f"a BiasInput of shape {tuple(node.shape)}",
                                         f"'{src}' is {type(source).__name__}"))
            elif is_neuron and source.ROLE not in node.INPUT_ROLES:
                out.append(Violation(node.name, "inputs", _input_roles_text(node),
                                     f"'{src}' is {type(source).__name__}"))
            elif not is_neuron:
                out += _source_kind_violations(graph, node, source)
    if not out:
        try:
            graph.structural_order
        except ValueError as exc:      # synapses and views reading each other without a neuron between
            out.append(Violation(graph.name, "sources", "no cycle without a neuron in it", str(exc)))
    return out


def _input_roles_text(node) -> str:
    """What a neuron's ``inputs`` may name, as the verifier's message states it."""
    roles = node.INPUT_ROLES
    return "synapse nodes (currents)" if roles == ("synapse",) else f"{' or '.join(roles)} nodes"


def _source_kind_violations(graph: Graph, node: Node, source: Node) -> list[Violation]:
    """Synapses and views read spikes; graded payloads only reach a ``LoihiGradedSum`` (which reads
    nothing else), a ``LoihiDense``, a ``LoihiConv`` (sigma-delta conv layers), a float synapse (the float
    sigma-delta family; lowering refuses one that feeds a spiking group) or a view, looking
    through Flatten/Slice views to the producer."""
    base = graph.producer(source.name)
    if isinstance(node, LoihiGradedSum):
        if source.emits_graded():
            return []
        return [Violation(node.name, "sources", "graded nodes (LoihiGradedRelay, GradedInput)",
                          f"'{source.name}' is {type(source).__name__}")]
    graded_reader = isinstance(node, (LoihiDense, LoihiConv)) or node.ROLE == "view" or \
        (node.DOMAIN == "float" and node.ROLE == "synapse")     # float synapses of sigma-delta groups
    if is_spiking(base) or (base.emits_graded() and graded_reader):
        return []
    return [Violation(node.name, "source", "a spiking node", f"'{source.name}' is {type(source).__name__}")]


def _check_shapes(graph: Graph) -> list[Violation]:
    out: list[Violation] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for node in graph.structural_order:
        out += node.shape_violations(shapes)
        try:
            shapes[node.name] = node.output_shape(shapes)
        except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as exc:
            out.append(Violation(node.name, "shape", "computable output shape", str(exc)))
            shapes[node.name] = (0,)
        if any(d < 1 for d in shapes[node.name]):
            out.append(Violation(node.name, "shape", "every output dimension >= 1", str(shapes[node.name])))
    for node in graph.nodes:
        if node.ROLE == "neuron":
            size = int(np.prod(node.shape))
            for src in node.inputs:
                got = int(np.prod(shapes.get(src, (-1,))))
                if got != size:
                    out.append(Violation(node.name, f"inputs['{src}']", f"{size} currents", str(got)))
    return out


def _check_params(graph: Graph) -> list[Violation]:
    out = []
    for node in graph.nodes:
        for field_name, value in _numeric_fields(node):
            arr = np.asarray(value)
            if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
                out.append(Violation(node.name, field_name, "finite values", "NaN or inf"))
        out += node.field_violations()
        delay = getattr(node, "delay_steps", 0)
        if np.any(np.asarray(delay) < 0) or np.asarray(delay).dtype.kind not in "iu":
            out.append(Violation(node.name, "delay_steps", "integers >= 0", _range(np.asarray(delay))))
        elif node.DOMAIN == "float" and np.ndim(delay) != 0:
            out.append(Violation(node.name, "delay_steps", "one integer per float-IR synapse (per-synapse "
                                 "delays exist only in lowered graphs)", f"an array of shape {np.shape(delay)}"))
    return out


def _check_timing(graph: Graph) -> list[Violation]:
    out = []
    wrong = WRONG_DOMAIN.get(graph.timing)
    for node in graph.nodes:
        if node.DOMAIN == wrong:
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
