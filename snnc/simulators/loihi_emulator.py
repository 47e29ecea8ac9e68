"""Bit-accurate, batched emulator of lowered (hop-latency) Loihi graphs: Lava 0.10 fixed_pt, integer
for integer.

Step t (0-based) corresponds to Lava time_step t + 1 (Monitor row t). Every synapse reads its source's
spikes of step ``t - 1 - delay``; all neurons then update in parallel with ``snnc.arith.loihi``
arithmetic; flatten nodes forward spikes of the same step. Input spikes at step t are the user's
``x[:, t]`` (what Lava's RingBuffer sends at time_step t + 1).
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.arith.synapse_math import conv2d_int_sum
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput, Flatten, Input, LoihiConv, LoihiDense
from snnc.neurons import model_of
from snnc.simulators import graded
from snnc.simulators.delay_slots import SlottedDenseSynapse
from snnc.simulators.loihi_layerwise import layerwise_order, run_layerwise
from snnc.simulators.traces import Traces, as_input_dict


class _ConvSynapse:
    def __init__(self, node: LoihiConv):
        self.node, self.source = node, node.source
        self.weight = np.asarray(node.dilated_kernel(), dtype=np.int64)

    def activation(self, history: np.ndarray, t: int):
        if t < 1:
            return 0
        n = self.node
        total = conv2d_int_sum(history[:, t - 1], self.weight, n.in_shape, n.stride, n.padding, n.groups)
        return lq.conv_output_wrap(total).reshape(history.shape[0], -1)


def run_loihi(graph: Graph, x, record_state: bool = True, engine: str = "auto") -> Traces:
    """Simulate a lowered graph on input spikes ``x`` (batch, steps, *shape); returns all spike trains
    and, with ``record_state``, u and v of every spiking neuron group (as Lava's Monitor reads them).

    ``engine``: "step" (numpy, one step at a time, any graph), "layerwise" (acyclic graphs, compiled
    LIF scan) or "auto" (layerwise where possible). Both give identical results (tested)."""
    if graph.timing != "hop_latency":
        raise SnncError(f"the Loihi emulator runs lowered (hop_latency) graphs; '{graph.name}' is "
                        f"{graph.timing}: compile it first")
    inputs = as_input_dict(graph, x)
    layerwise = engine == "layerwise" or (engine == "auto" and loihi_kernels.AVAILABLE
                                          and layerwise_order(graph) is not None)
    if layerwise:
        return run_layerwise(graph, inputs, record_state)
    return _run_steps(graph, inputs, record_state)


def _run_steps(graph: Graph, inputs: dict[str, np.ndarray], record_state: bool) -> Traces:
    batch, steps = next(iter(inputs.values())).shape[:2]
    shapes = graph.shapes
    neurons = [n for n in graph.nodes if n.ROLE == "neuron" and model_of(n).state_variables]
    state_names = {n.name for n in neurons}
    spikes = {n.name: np.zeros((batch, steps, *shapes[n.name]), np.int64 if isinstance(n, BiasInput) else np.uint8)
              for n in graph.nodes if isinstance(n, (Input, Flatten)) or n.name in state_names}
    bias_inputs = [n.name for n in graph.inputs if isinstance(n, BiasInput)]
    spikes.update(graded.step_trains(graph, batch, steps))
    synapses = {n.name: (SlottedDenseSynapse(n, lq.dense_activation) if isinstance(n, LoihiDense)
                          else _ConvSynapse(n))
                for n in graph.nodes if isinstance(n, (LoihiDense, LoihiConv))}
    synapses.update(graded.step_graded_dense(graph))
    flattens = [n for n in graph.structural_order if isinstance(n, Flatten)]
    state = {n.name: model_of(n).emulator_state(n, batch) for n in neurons}
    record = {n.name: {var: np.zeros((batch, steps, *n.shape), np.int64) for var in model_of(n).state_variables}
              for n in neurons} if record_state else {}
    for t in range(steps):
        for name, arr in inputs.items():
            spikes[name][:, t] = arr[:, t]
        activations = {name: syn.activation(spikes[syn.source], t) for name, syn in synapses.items()}
        activations.update({name: arr[:, t] for name, arr in inputs.items()})   # read by delta encoders
        activations.update(graded.step_sum_activations(graph, spikes, t))
        activations.update({name: spikes[name][:, t] for name in bias_inputs})
        graded.step_relays(graph, activations, spikes, t)
        for node in neurons:
            fired = state[node.name].step(activations)
            spikes[node.name][:, t] = fired.reshape(batch, *node.shape)
            for var, trace in record.get(node.name, {}).items():
                trace[:, t] = getattr(state[node.name], var).reshape(batch, *node.shape)
        for node in flattens:
            spikes[node.name][:, t] = spikes[node.source][:, t].reshape(batch, -1)
        graded.step_slices(graph, spikes, t)
    return Traces(spikes, record)
