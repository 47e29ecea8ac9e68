"""Liveness: spiking neuron groups that no input can make fire, and outputs that stay silent on an input.

A network that compiles and then never spikes is a wrong translation more often than a real model (a NIR
file read at the wrong time step, a wrong reset kind, a threshold in other units); its emulator still
equals Lava exactly, so the bit-exact comparison alone would call it fine. ``compile`` therefore warns and
``verify`` fails on:

* **groups that can never fire** (float IR, static bound): with every source spiking at every step (a
  dead source never spikes), a neuron's current is at most ``I = sum of positive weights + bias`` per step
  (synapse biases included), so, from rest,
  ``u[t] <= max(0, I) / current_decay`` and ``v[t] < max(0, u_max + bias) / voltage_decay`` (unbounded
  when a decay is 0 and the drive is positive). A group none of whose neurons can reach its threshold is
  reported with that bound. Sources that are not 0/1 spikes (graded inputs) and synapse kinds other than
  Dense/Conv2d/SumPool2d make the bound unknown: such a neuron counts as live.
* **silent outputs**: a float output group with no spike (spiking models: LIF, Izhikevich, resonator...) or
  only zero values (graded models: a sigma-delta decoder) over every sample and step of the input run
  (``--calib`` at compile time, the ``verify`` input).
"""
from __future__ import annotations

import numpy as np

from snnc.arith.synapse_math import conv2d_sum, dense_sum, sum_pool_sum
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, Dense, Input, SumPool2d
from snnc.neurons.registry import model_of

MAX_ROUNDS = 16
UNBOUNDED = np.inf


def spiking_groups(graph: Graph) -> list:
    """The float spiking neuron groups whose dynamics the bound understands (u/v decays, bias, threshold)."""
    out = []
    for node in graph.nodes:
        try:
            model = model_of(node)
        except Exception:  # noqa: BLE001 - not a neuron node
            continue
        if model.traits.output == "spikes" and model.traits.arithmetic == "float" and \
                all(hasattr(node, f) for f in ("current_decay", "voltage_decay", "bias", "threshold")):
            out.append(node)
    return out


def never_firing(graph: Graph) -> dict[str, str]:
    """Group name -> why no input can make it fire (the bound on its membrane vs its threshold)."""
    groups = spiking_groups(graph)
    shapes = graph.shapes
    dead: dict[str, str] = {}
    for _ in range(MAX_ROUNDS):
        found = {}
        for node in groups:
            reason = _dead_reason(graph, node, set(dead), shapes)
            if reason:
                found[node.name] = reason
        if found.keys() == dead.keys():
            return found
        dead = found
    return dead


def silent_outputs(graph: Graph, spikes: dict[str, np.ndarray]) -> list[str]:
    """Float output groups that emit spikes or graded values without a single spike or nonzero value in
    ``spikes`` (traces of a run, by node name: graded trains are recorded there too)."""
    return [name for name in graph.outputs if name in spikes and _output_kind(graph.node(name)) and
            not np.any(spikes[name])]


def _output_kind(node) -> str:
    """"spike" or "nonzero value" for a float neuron group emitting spikes or graded values; else ""."""
    try:
        traits = model_of(node).traits
    except Exception:  # noqa: BLE001 - not a neuron node
        return ""
    kinds = {"spikes": "spike", "graded": "nonzero value"}
    return kinds.get(traits.output, "") if traits.arithmetic == "float" else ""


def compile_liveness(graph: Graph, calibration: np.ndarray | None) -> dict:
    """The compile report's liveness entry: groups that can never fire, and (with calibration spikes
    (samples, steps, *shape)) the spiking outputs the float model leaves silent on them."""
    report = {"never_fire": never_firing(graph)}
    if calibration is not None and graph.timing == "zero_latency":
        from snnc.simulators.float_reference import run_float
        report["silent_on"] = f"the {len(calibration)} calibration samples"
        report["silent"] = silent_outputs(graph, run_float(graph, np.asarray(calibration)).spikes)
        report["silent_kinds"] = {name: _output_kind(graph.node(name)) for name in report["silent"]}
    return report


def liveness_lines(report: dict) -> list[str]:
    """Warning lines for a liveness report (nothing when every group can fire and no output was silent)."""
    lines = [f"warning: liveness: group '{name}' can never fire: {reason}"
             for name, reason in report.get("never_fire", {}).items()]
    kinds = report.get("silent_kinds", {})
    lines += [f"warning: liveness: output '{name}' emitted no {kinds.get(name, 'spike')} on {report.get('silent_on')}"
              for name in report.get("silent", [])]
    return lines


def verify_liveness(graph: Graph, spikes: dict[str, np.ndarray], run: str) -> tuple[bool, list[str]]:
    """``verify``'s liveness check on the float source graph and its traces on the verify input: fails
    when a group can never fire or a spiking output stayed silent."""
    silent = silent_outputs(graph, spikes)
    lines = liveness_lines({"never_fire": never_firing(graph), "silent": silent, "silent_on": run,
                            "silent_kinds": {name: _output_kind(graph.node(name)) for name in silent}})
    if lines:
        return False, [line.replace("warning: ", "FAIL: ", 1) for line in lines]
    graded = [n for n in graph.outputs if _output_kind(graph.node(n)) == "nonzero value"]
    outputs = "every spiking output spiked" + (", every graded output sent a nonzero value" if graded else "")
    return True, [f"liveness: every spiking group can fire and {outputs}"]


def _dead_reason(graph: Graph, node, dead: set[str], shapes: dict) -> str:
    size = int(np.prod(node.shape))
    drive = np.zeros(size)
    for name in node.inputs:
        current = _max_current(graph, graph.node(name), dead, size, shapes)
        if current is None:
            return ""
        drive = drive + current
    bound = _voltage_bound(node, drive, size)
    threshold = np.broadcast_to(np.asarray(node.threshold, np.float64).reshape(-1), (size,))
    margin = 1e-9 * np.maximum(np.abs(threshold), 1e-12)
    if not np.all(bound < threshold - margin):
        return ""
    worst = int(np.argmax(bound - threshold))
    return (f"with every input spiking at every step its membrane stays below {bound[worst]:.6g}, under the "
            f"threshold {threshold[worst]:.6g} (all {size} neurons; bound = max(0, drive / current_decay + "
            f"bias) / voltage_decay)")


def _max_current(graph: Graph, synapse, dead: set[str], size: int, shapes: dict) -> np.ndarray | None:
    """Largest current per target neuron in one step, or None when the bound does not apply."""
    if not isinstance(synapse, (Dense, Conv2d, SumPool2d)):
        return None
    source = graph.producer(synapse.source)
    if type(source) is not Input and source.name not in dead and not _spikes_zero_one(source):
        return None
    fill = np.zeros if source.name in dead else np.ones
    x = fill((1, int(np.prod(shapes[synapse.source]))))
    if isinstance(synapse, Dense):
        current = dense_sum(x, np.clip(synapse.weight, 0, None))
        current = current if synapse.bias is None else current + synapse.bias
    elif isinstance(synapse, Conv2d):
        current = conv2d_sum(x, np.clip(synapse.weight, 0, None), synapse.in_shape, synapse.stride,
                             synapse.padding, synapse.groups)
        if synapse.bias is not None:
            current = current + np.asarray(synapse.bias).reshape(1, -1, 1, 1)
    else:
        current = max(synapse.scale, 0.0) * sum_pool_sum(x, synapse.in_shape, synapse.kernel, synapse.stride)
    current = np.asarray(current, np.float64).reshape(-1)
    return current if current.size == size else None


def _spikes_zero_one(node) -> bool:
    """A spiking group of the float IR (its output is 0/1 spikes)."""
    try:
        model = model_of(node)
    except Exception:  # noqa: BLE001 - not a neuron node
        return False
    return model.traits.output == "spikes" and model.traits.arithmetic == "float"


def _voltage_bound(node, drive: np.ndarray, size: int) -> np.ndarray:
    """sup over time of v from rest, per neuron, with at most ``drive`` current per step."""
    flat = lambda value: np.broadcast_to(np.asarray(value, np.float64).reshape(-1), (size,))  # noqa: E731
    current_decay, voltage_decay, bias = flat(node.current_decay), flat(node.voltage_decay), flat(node.bias)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_max = np.where(drive <= 0, 0.0, np.where(current_decay > 0, drive / current_decay, UNBOUNDED))
        push = u_max + bias
        return np.where(push <= 0, 0.0, np.where(voltage_decay > 0, push / voltage_decay, UNBOUNDED))
