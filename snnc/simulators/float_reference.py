"""Float64 reference simulator of the un-quantized IR in zero-latency (snnTorch) timing.

Synapses implement the equations in the docstrings of ``snnc.ir.nodes``; each neuron group steps with its
model's ``float_step`` (``snnc.neurons``).
"""
from __future__ import annotations

import numpy as np

from snnc.arith.synapse_math import conv2d_sum, dense_sum, sum_pool_sum
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, Dense, Flatten, Input, SumPool2d
from snnc.neurons import model_of
from snnc.simulators.traces import Traces, as_input_dict


def run_float(graph: Graph, x, record_state: bool = True) -> Traces:
    """Simulate ``graph`` (timing ``zero_latency``) on input spikes ``x`` (batch, steps, *shape); graded
    inputs take integer values. ``spikes`` of the result also holds the graded (float64) trains of graded
    inputs and graded neuron groups (sigma-delta), as the emulator's holds its integer ones."""
    if graph.timing != "zero_latency":
        raise SnncError(f"the float reference runs zero_latency graphs; '{graph.name}' is {graph.timing}")
    inputs = as_input_dict(graph, x)
    batch, steps = next(iter(inputs.values())).shape[:2]
    shapes = graph.shapes
    outputs: dict[str, np.ndarray] = {n.name: np.zeros((batch, steps, *shapes[n.name]))
                                      for n in graph.nodes}
    neurons = [n for n in graph.nodes if n.ROLE == "neuron"]
    states = {n.name: {var: np.zeros((batch, steps, *n.shape)) for var in model_of(n).state_variables}
              for n in neurons}
    order = graph.evaluation_order
    for t in range(steps):
        for node in order:
            outputs[node.name][:, t] = _evaluate(node, t, inputs, outputs, states, shapes)
    spikes = {n.name: outputs[n.name].astype(np.uint8) for n in graph.nodes if n.emits_spikes()}
    # graded trains (graded inputs, sigma-delta groups) sit beside the spike trains, as in the emulator
    spikes.update({n.name: outputs[n.name] for n in graph.nodes if n.emits_graded()})
    membranes = {n.name: outputs[n.name] for n in neurons if model_of(n).traits.output == "membrane"}
    traces = Traces(spikes, states if record_state else {})
    traces.membranes = membranes
    return traces


def _evaluate(node, t, inputs, outputs, states, shapes) -> np.ndarray:
    if isinstance(node, Input):
        return inputs[node.name][:, t]
    if isinstance(node, Flatten):
        return outputs[node.source][:, t].reshape(outputs[node.source].shape[0], -1)
    if node.ROLE == "neuron":
        model = model_of(node)
        parts = [outputs[src][:, t].reshape(-1, *node.shape) for src in node.inputs]
        current = tuple(parts) if model.input_ports else sum(parts)   # input_ports: inputs read apart
        return model.float_step(node, t, current, outputs[node.name], states[node.name])
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
