"""Float64 reference simulator of the un-quantized IR in zero-latency (snnTorch) timing.

Implements exactly the equations in the ``CubaLIF``/``LI``/synapse docstrings of ``snnc.ir.nodes``.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.synapse_math import conv2d_sum, dense_sum, sum_pool_sum
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Conv2d, CubaLIF, Dense, Flatten, Input, SumPool2d
from snnc.simulators.traces import Traces, as_input_dict


def run_float(graph: Graph, x, record_state: bool = True) -> Traces:
    """Simulate ``graph`` (timing ``zero_latency``) on input spikes ``x`` (batch, steps, *shape)."""
    if graph.timing != "zero_latency":
        raise SnncError(f"the float reference runs zero_latency graphs; '{graph.name}' is {graph.timing}")
    inputs = as_input_dict(graph, x)
    batch, steps = next(iter(inputs.values())).shape[:2]
    shapes = graph.shapes
    outputs: dict[str, np.ndarray] = {n.name: np.zeros((batch, steps, *shapes[n.name]))
                                      for n in graph.nodes}
    states = {n.name: {"u": np.zeros((batch, steps, *n.shape)), "v": np.zeros((batch, steps, *n.shape))}
              for n in graph.nodes if isinstance(n, (CubaLIF, LI))}
    order = graph.evaluation_order
    for t in range(steps):
        for node in order:
            outputs[node.name][:, t] = _evaluate(node, t, inputs, outputs, states, shapes)
    spikes = {n.name: outputs[n.name].astype(np.uint8) for n in graph.nodes
              if isinstance(n, (Input, Flatten, CubaLIF))}
    membranes = {n.name: outputs[n.name] for n in graph.nodes if isinstance(n, LI)}
    traces = Traces(spikes, states if record_state else {})
    traces.membranes = membranes
    return traces


def _evaluate(node, t, inputs, outputs, states, shapes) -> np.ndarray:
    if isinstance(node, Input):
        return inputs[node.name][:, t]
    if isinstance(node, Flatten):
        return outputs[node.source][:, t].reshape(outputs[node.source].shape[0], -1)
    if isinstance(node, (CubaLIF, LI)):
        current = sum(outputs[src][:, t].reshape(-1, *node.shape) for src in node.inputs)
        return _neuron_step(node, t, current, outputs[node.name], states[node.name])
    d = node.delay_steps
    source = outputs[node.source][:, t - d] if t >= d else np.zeros_like(outputs[node.source][:, 0])
    if isinstance(node, Dense):
        bias = 0.0 if node.bias is None else node.bias
        return dense_sum(source, node.weight) + bias
    if isinstance(node, Conv2d):
        out = conv2d_sum(source, node.weight, node.in_shape, node.stride, node.padding, node.groups)
        return out if node.bias is None else out + node.bias[None, :, None, None]
    if isinstance(node, SumPool2d):
        return node.scale * sum_pool_sum(source, node.in_shape, node.kernel, node.stride)
    raise SnncError(f"node '{node.name}': type {type(node).__name__} is not a float IR node")


def _neuron_step(node, t, current, out, state) -> np.ndarray:
    u_prev = state["u"][:, t - 1] if t else 0.0
    v_prev = state["v"][:, t - 1] if t else 0.0
    u = (1.0 - np.asarray(node.current_decay)) * u_prev + current
    v = (1.0 - np.asarray(node.voltage_decay)) * v_prev + u + np.asarray(node.bias)
    state["u"][:, t] = u
    if isinstance(node, LI):
        state["v"][:, t] = v
        return v
    fired_before = out[:, t - 1] if t else np.zeros_like(v)
    if node.reset == "subtract":
        v = v - np.asarray(node.threshold) * fired_before
    elif node.reset == "zero_next":
        v = np.where(fired_before > 0, 0.0, v)
    threshold = np.asarray(node.threshold)
    spikes = (v >= threshold) if node.comparison == "ge" else (v > threshold)
    if node.reset == "zero":
        v = np.where(spikes, 0.0, v)
    state["v"][:, t] = v
    return spikes.astype(np.float64)
