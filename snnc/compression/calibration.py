"""What calibration data shows about a float graph: observed currents and per-synapse Hessians.

The float reference simulator (zero-latency, float64) runs the float IR on calibration spike trains
``x`` (samples, steps, *input_shape); from its traces this module takes, per neuron group, the peak |u|
each neuron reached, and per dense synapse the input spike trains X_n, from which
``snnc.compression.sbc.layer_hessian`` builds the Hessian of the group's surrogate membrane potential
(SBC) or of its input current (OBC, K = I). PTQ (``snnc.lowering.loihi_lowering``) and pruning
(``snnc.compiler.passes.prune``) both start here. Float sigma-delta groups get the largest magnitudes of
what their integer Vars and synapses will hold (``SigmaDeltaCalibration``), from which
``snnc.lowering.loihi_sigma_delta`` picks each layer's value scale instead of the worst case.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.arith.synapse_math import conv2d_sum, sum_pool_sum
from snnc.compression import sbc
from snnc.errors import SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, Dense
from snnc.neurons import model_of
from snnc.neurons.sigma_delta import per_neuron_bias
from snnc.simulators.float_reference import run_float
from snnc.simulators.traces import Traces, as_input_dict

HESSIAN_MAX_INPUTS = 4096   # a d x d float64 Hessian of 4096 inputs is 128 MiB


@dataclass(frozen=True)
class GroupCalibration:
    """One neuron group on calibration data: ``current_peak`` per neuron (max |u| in float units),
    per dense input synapse the Hessian H = 2 sum_n (K X_n)^T (K X_n) (undamped), and
    ``voltage_trough`` per neuron (min v in float units; None: not recorded)."""

    current_peak: np.ndarray
    hessians: dict[str, np.ndarray] = field(default_factory=dict)
    samples: int = 0
    voltage_trough: np.ndarray | None = None


@dataclass(frozen=True)
class SigmaDeltaCalibration:
    """One float sigma-delta group on calibration data: the largest magnitudes, in float units, over samples,
    steps and neurons, of what its int32 Vars hold (``state``: |sigma + bias|, act and |d| of a sigma-delta
    group, |x| and |d| of a delta encoder, |sigma| of a decoder), of the values it sends (``message``; 0 for a
    decoder) and, per input synapse, of one step's summed input |W @ messages| (``synapse_input``)."""

    state: float
    message: float
    synapse_input: dict[str, float] = field(default_factory=dict)
    samples: int = 0


def check_calibration(graph: Graph, x) -> dict[str, np.ndarray]:
    """The calibration spikes as the graph's input dict; a typed error if they do not fit the graph."""
    try:
        inputs = as_input_dict(graph, x)
    except SnncError as exc:
        raise SnncError(f"calibration data: {exc}") from None
    if next(iter(inputs.values())).shape[0] == 0:
        raise SnncError("calibration data: no samples")
    return inputs


def simulate(graph: Graph, x) -> Traces:
    """Float reference traces (spikes, u, v) of ``graph`` on calibration spikes ``x``."""
    return run_float(graph, check_calibration(graph, x), record_state=True)


def synapse_inputs(graph: Graph, traces: Traces, synapse: str) -> np.ndarray:
    """Input spike trains X_n of a dense synapse, (samples, steps, in_features), delay applied."""
    node = graph.node(synapse)
    spikes = traces.spikes[node.source]
    x = spikes.reshape(spikes.shape[0], spikes.shape[1], -1).astype(np.float64)
    delay = int(node.delay_steps)
    if delay:
        x = np.concatenate([np.zeros_like(x[:, :delay]), x[:, :-delay]], axis=1)
    return x


def synapse_hessian(graph: Graph, traces: Traces, synapse: str, neuron, kernel: str = "membrane") -> np.ndarray:
    """Undamped Hessian of one dense synapse: ``kernel`` "membrane" (SBC) or "current" (OBC, K = I)."""
    x = synapse_inputs(graph, traces, synapse)
    if x.shape[-1] > HESSIAN_MAX_INPUTS:
        raise UnsupportedError(synapse, "in_features", f"<= {HESSIAN_MAX_INPUTS} for a Hessian "
                               "(calibrated quantization, sbc/obc pruning)", x.shape[-1])
    k = None
    if kernel == "membrane":
        k = sbc.membrane_kernel(*model_of(neuron).membrane_decays(neuron), x.shape[1])
    return sbc.layer_hessian(x, k)


def calibrate(graph: Graph, x) -> dict[str, GroupCalibration | SigmaDeltaCalibration]:
    """Per float neuron group of the scaled-threshold (LIF) lowering: observed current peak and membrane
    Hessians of its dense inputs (of those with at most ``HESSIAN_MAX_INPUTS`` inputs; larger ones are
    quantized without one); per float sigma-delta group its observed ranges (``SigmaDeltaCalibration``).
    Other groups (Izhikevich: fixed units, worst-case scale) get no entry."""
    traces = simulate(graph, x)
    samples = next(iter(traces.spikes.values())).shape[0]
    out = {}
    for node in graph.nodes:
        if (node.ROLE, node.DOMAIN) != ("neuron", "float"):
            continue
        if model_of(node).loihi_lowering == "sigma_delta":
            out[node.name] = sigma_delta_ranges(graph, traces, node)
            continue
        if model_of(node).loihi_lowering != "lif":
            continue
        u = traces.states[node.name]["u"]
        peak = np.abs(u).reshape(-1, int(np.prod(node.shape))).max(axis=0)
        trough = traces.states[node.name]["v"].reshape(-1, int(np.prod(node.shape))).min(axis=0)
        dense = [name for name in node.inputs if isinstance(graph.node(name), Dense)]
        hessians = {name: synapse_hessian(graph, traces, name, node) for name in dense
                    if graph.node(name).weight.shape[1] <= HESSIAN_MAX_INPUTS}
        out[node.name] = GroupCalibration(peak, hessians, samples, trough)
    return out


def sigma_delta_ranges(graph: Graph, traces: Traces, node) -> SigmaDeltaCalibration:
    """The observed ranges of one float sigma-delta group (``SigmaDeltaCalibration``) from float traces."""
    states, sent = traces.states[node.name], traces.spikes[node.name]
    samples = sent.shape[0]
    if "residue" not in states:                            # a decoder: it sends its sigma, not changes
        return SigmaDeltaCalibration(_largest(states["sigma"]), 0.0, _synapse_inputs(graph, traces, node), samples)
    delta = sent + states["residue"]                       # d = sent + residue (delta_step)
    parts = [states["act"], delta]
    if "sigma" in states:                                  # a sigma-delta group (an encoder has no sigma)
        parts.append(states["sigma"] + per_neuron_bias(node))
    return SigmaDeltaCalibration(max(_largest(p) for p in parts), _largest(sent),
                                 _synapse_inputs(graph, traces, node), samples)


def _largest(values) -> float:
    return float(np.max(np.abs(values), initial=0.0))


def _synapse_inputs(graph: Graph, traces: Traces, node) -> dict[str, float]:
    """Per input synapse of a sigma-delta group: the largest |W @ messages| of one step (float units)."""
    out = {}
    for name in node.inputs:
        syn = graph.node(name)
        if syn.ROLE != "synapse":
            continue
        sent = traces.spikes[graph.producer(syn.source).name]
        flat = sent.reshape(sent.shape[0] * sent.shape[1], -1).astype(np.float64)
        if isinstance(syn, Dense):
            summed = flat @ np.asarray(syn.weight, np.float64).T
        elif isinstance(syn, Conv2d):
            summed = conv2d_sum(flat.reshape(-1, *syn.in_shape), syn.weight, syn.in_shape, syn.stride,
                                syn.padding, syn.groups)
        else:
            summed = syn.scale * sum_pool_sum(flat.reshape(-1, *syn.in_shape), syn.in_shape, syn.kernel, syn.stride)
        out[name] = _largest(summed)
    return out
