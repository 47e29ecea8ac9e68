"""NIR 1.0 export: a float (zero-latency) IR graph as a ``nir.NIRGraph`` or a NIR file.

The inverse of ``snnc.frontends.nir_import`` (its module docstring states the discretisation). NIR stores
no time step, reset kind or update order, so ``save_nir`` writes them as graph metadata (``snnc.dt_s``,
``snnc.reset``, ``snnc.comparison``, ``snnc.update_order``; reset and comparison also per neuron node) and
``load_nir`` reads the file back without options. Per neuron group (steps of ``dt``)::

    voltage_decay == 0, no bias, current_decay == 1   -> IF (spiking) / I (readout),   r = 1/dt
    current_decay == 1                                -> LIF / LI,   tau = dt/voltage_decay, r = tau/dt,
                                                         v_leak = bias/voltage_decay
    otherwise                                         -> CubaLIF / CubaLI, tau_syn = dt/current_decay,
                                                         w_in = tau_syn/dt

``Dense`` -> ``Linear``/``Affine``, ``Conv2d`` -> ``Conv2d``, ``SumPool2d`` -> ``SumPool2d`` (scale 1) or
``AvgPool2d`` (scale 1/(kh*kw)), ``Flatten`` -> ``Flatten``; a synapse delay becomes a ``Delay`` node
after the synapse.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.formats import require_node_types
from snnc.frontends.nir_import import META_PREFIX, recurrent_edges
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Conv2d, CubaLIF, Dense, Flatten, Input, SumPool2d


def save_nir(graph: Graph, path: str | Path) -> None:
    """Write a float IR graph as NIR 1.0 with ``snnc.dt_s``, ``snnc.reset``, ``snnc.comparison`` and
    ``snnc.update_order`` metadata (graph level; reset and comparison also per neuron node)."""
    import nir
    nir_graph = ir_to_nir_graph(graph)
    nir.write(path, nir_graph)


def ir_to_nir_graph(graph: Graph):
    """The ``nir.NIRGraph`` of a float (zero-latency) IR graph; raises ``UnsupportedError`` for what NIR
    cannot hold exactly (lowered graphs, a bias with no voltage leak, IF with bias)."""
    import nir
    if graph.timing != "zero_latency":
        raise UnsupportedError(graph.name, "timing", "zero_latency (NIR holds float models; export the source "
                               "graph, not the lowered one)", graph.timing)
    require_node_types(graph, (Input, Flatten, Dense, Conv2d, SumPool2d, CubaLIF, LI), "NIR")
    shapes = graph.shapes
    nodes, edges = {}, []
    delays = _exported_delays(graph)
    for node in graph.nodes:
        nodes.update(_export_node(node, graph, shapes, nodes, edges, delays))
    for index, out in enumerate(graph.outputs):
        key = "output" if len(graph.outputs) == 1 else f"output_{index}"
        nodes[key] = nir.Output(output_type={"output": np.asarray(shapes[out])})
        edges.append((out, key))
    resets = {n.reset for n in graph.nodes if isinstance(n, CubaLIF)}
    comparisons = {n.comparison for n in graph.nodes if isinstance(n, CubaLIF)}
    metadata = {META_PREFIX + "dt_s": float(graph.dt_s), META_PREFIX + "update_order": "current_then_voltage",
                META_PREFIX + "discretisation": "forward_euler", META_PREFIX + "name": graph.name}
    if len(resets) == 1:
        metadata[META_PREFIX + "reset"] = resets.pop()
    if len(comparisons) == 1:
        metadata[META_PREFIX + "comparison"] = comparisons.pop()
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)


def _exported_delays(graph: Graph) -> dict[str, int]:
    """Steps of the NIR Delay node written after each synapse. NIR reads the previous step's spikes on an
    edge closing a cycle (the importer's ``recurrent_edges``), so a synapse feeding a neuron on such an edge
    is written with one step less than its IR delay."""
    def spiking_source(synapse: str) -> str:
        return graph.producer(graph.node(synapse).source).name

    neurons = [n for n in graph.nodes if isinstance(n, (CubaLIF, LI))]
    paths = {n.name: [(spiking_source(src), []) for src in n.inputs] for n in neurons}
    back = recurrent_edges([n.name for n in graph.nodes if isinstance(n, Input)], paths)
    delays = {n.name: n.delay_steps for n in graph.nodes if hasattr(n, "delay_steps")}
    kinds: dict[str, set[bool]] = {}
    for neuron in neurons:
        for src in neuron.inputs:
            kinds.setdefault(src, set()).add((spiking_source(src), neuron.name) in back)
    for src, recurrent in kinds.items():
        if recurrent == {True} and delays.get(src, 0) >= 1:
            delays[src] -= 1
        elif True in recurrent:
            raise UnsupportedError(src, "delay_steps", ">= 1 and feeding only neurons it closes a cycle to "
                                   "(NIR recurrent edges read the previous step)", delays.get(src, 0))
    return delays


def _export_node(node, graph: Graph, shapes, nodes: dict, edges: list, delays: dict) -> dict:
    import nir
    dt = graph.dt_s
    if isinstance(node, Input):
        return {node.name: nir.Input(input_type={"input": np.asarray(node.shape)})}
    if isinstance(node, Flatten):
        edges.append((_exported_output(node.source, nodes), node.name))
        return {node.name: nir.Flatten(input_type={"input": np.asarray(shapes[node.source])}, start_dim=0,
                                       end_dim=-1)}
    if isinstance(node, (CubaLIF, LI)):
        edges.extend((_exported_output(src, nodes), node.name) for src in node.inputs)
        return {node.name: _export_neuron(node, dt)}
    return _export_synapse(node, shapes, nodes, edges, dt, delays[node.name])


def _exported_output(name: str, nodes: dict) -> str:
    """The NIR node carrying IR node ``name``'s output: its Delay node when it was exported with one."""
    delayed = f"{name}_delay"
    return delayed if type(nodes.get(delayed)).__name__ == "Delay" else name


def _export_synapse(node, shapes, nodes: dict, edges: list, dt: float, delay_steps: int) -> dict:
    import nir
    if isinstance(node, Dense):
        syn = nir.Linear(weight=node.weight) if node.bias is None else nir.Affine(weight=node.weight, bias=node.bias)
    elif isinstance(node, Conv2d):
        bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0])
        syn = nir.Conv2d(input_shape=tuple(node.in_shape[1:]), weight=node.weight, stride=tuple(node.stride),
                         padding=tuple(node.padding), dilation=(1, 1), groups=node.groups, bias=bias)
    else:
        area = node.kernel[0] * node.kernel[1]
        cls = nir.AvgPool2d if np.isclose(node.scale * area, 1.0, rtol=0, atol=1e-15) and node.scale != 1.0 \
            else nir.SumPool2d
        if cls is nir.SumPool2d and node.scale != 1.0:
            raise UnsupportedError(node.name, "scale", "1 (SumPool2d) or 1/(kh*kw) (AvgPool2d)", node.scale)
        syn = cls(kernel_size=np.asarray(node.kernel), stride=np.asarray(node.stride), padding=np.zeros(2, int))
    out = {node.name: syn}
    if delay_steps:
        delay_name = f"{node.name}_delay"
        out[delay_name] = nir.Delay(delay=np.full(shapes[node.name], delay_steps * dt))
        edges += [(_exported_output(node.source, nodes), node.name), (node.name, delay_name)]
        return out
    edges.append((_exported_output(node.source, nodes), node.name))
    return out


def _export_neuron(node, dt: float):
    import nir
    if getattr(node, "reset_interval", 0):
        raise UnsupportedError(node.name, "reset_interval", "0 (NIR has no periodic reset)", node.reset_interval)
    shape = tuple(node.shape)
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), shape).copy()  # noqa: E731
    cd, vd, bias = full(node.current_decay), full(node.voltage_decay), full(node.bias)
    spiking = isinstance(node, CubaLIF)
    meta = {META_PREFIX + "reset": node.reset, META_PREFIX + "comparison": node.comparison} if spiking else {}
    if np.any(vd == 0) and not np.all(vd == 0):
        raise UnsupportedError(node.name, "voltage_decay", "all 0 (NIR IF/I) or all > 0 (NIR LIF/LI/CubaLIF) "
                               "in one layer", f"0 for {int(np.sum(vd == 0))} of {vd.size} neurons")
    if np.all(vd == 0):
        if np.any(bias != 0) or np.any(cd != 1):
            raise UnsupportedError(node.name, "voltage_decay", "> 0 where a bias or current decay is used (NIR "
                                   "IF/I have neither)", "0")
        if spiking:
            return nir.IF(r=np.full(shape, 1.0 / dt), v_threshold=full(node.threshold), v_reset=np.zeros(shape),
                          metadata=meta)
        return nir.I(r=np.full(shape, 1.0 / dt))
    tau_mem = dt / vd
    v_leak = bias / vd
    if np.all(cd == 1):
        if spiking:
            return nir.LIF(tau=tau_mem, r=tau_mem / dt, v_leak=v_leak, v_threshold=full(node.threshold),
                           v_reset=np.zeros(shape), metadata=meta)
        return nir.LI(tau=tau_mem, r=tau_mem / dt, v_leak=v_leak)
    if np.any(cd == 0):
        raise UnsupportedError(node.name, "current_decay", "> 0 (NIR tau_syn = dt / current_decay)", "0")
    tau_syn = dt / cd
    common = dict(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=v_leak, w_in=tau_syn / dt)
    if spiking:
        return nir.CubaLIF(v_threshold=full(node.threshold), v_reset=np.zeros(shape), metadata=meta, **common)
    return nir.CubaLI(**common)
