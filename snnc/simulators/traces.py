"""Recorded simulation output and its comparison (first diverging node, step, neuron)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput, GradedInput


@dataclass
class Traces:
    """Spike trains of every spiking node and, where recorded, neuron states.

    ``spikes[name]`` is (batch, steps, *shape) uint8; ``states[name]`` maps "u"/"v" to (batch, steps,
    *shape) arrays (int64 in the emulator, float64 in the float reference). Values are recorded after the
    step's reset, i.e. what Lava's Monitor reads.
    """

    spikes: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def shifted(self, steps: dict[str, int]) -> "Traces":
        """Drop the first ``steps[name]`` steps of each named trace (pipeline latency alignment)."""
        def cut(name, arr):
            k = steps.get(name, 0)
            return arr[:, k:]
        return Traces({n: cut(n, a) for n, a in self.spikes.items()},
                      {n: {k: cut(n, a) for k, a in s.items()} for n, s in self.states.items()})


@dataclass(frozen=True)
class Divergence:
    """The first place two runs differ: node, quantity (spikes, u, v...), sample, step, neuron index, and the
    expected and actual values."""

    node: str
    quantity: str
    batch: int
    step: int
    neuron: tuple[int, ...]
    expected: float
    actual: float

    def __str__(self) -> str:
        return (f"first divergence at node '{self.node}' {self.quantity}: sample {self.batch}, step "
                f"{self.step}, neuron {self.neuron}: expected {self.expected!r}, got {self.actual!r}")


def first_divergence(expected: Traces, actual: Traces, names: list[str] | None = None,
                     with_states: bool = True) -> Divergence | None:
    """Earliest (by step, then by the order of ``names``) element where the traces differ."""
    best: Divergence | None = None
    for quantity, exp_map, act_map in _pairs(expected, actual, with_states):
        for name in names or list(exp_map):
            if name not in exp_map or name not in act_map:
                continue
            a, b = exp_map[name], act_map[name]
            steps = min(a.shape[1], b.shape[1])
            diff = np.argwhere(a[:, :steps] != b[:, :steps])
            if diff.size == 0:
                continue
            first = diff[np.lexsort((diff[:, 0], diff[:, 1]))[0]]
            if best is None or first[1] < best.step:
                idx = tuple(int(i) for i in first)
                best = Divergence(name, quantity, idx[0], idx[1], idx[2:], a[idx].item(), b[idx].item())
    return best


def state_names(traces: Traces) -> list[str]:
    """The recorded state variables of ``traces`` in first-seen order (u, v for LIF groups; sigma, act,
    residue for sigma-delta groups)."""
    return list(dict.fromkeys(key for states in traces.states.values() for key in states))


def _pairs(expected: Traces, actual: Traces, with_states: bool):
    yield "spikes", expected.spikes, actual.spikes
    if with_states:
        for key in state_names(expected):
            exp = {n: s[key] for n, s in expected.states.items() if key in s}
            act = {n: s[key] for n, s in actual.states.items() if key in s}
            yield key, exp, act


def as_input_dict(graph: Graph, x) -> dict[str, np.ndarray]:
    """Accept one array for a single-input graph or a name->array dict; check shapes."""
    inputs = graph.inputs
    given = x if isinstance(x, dict) else {inputs[0].name: x} if len(inputs) == 1 else None
    if given is None:
        raise SnncError(f"graph has {len(inputs)} inputs; pass a dict name -> (batch, steps, ...) array")
    out = {}
    for node in inputs:
        if node.name not in given:
            raise SnncError(f"input '{node.name}' missing; inputs given: {sorted(given)}")
        arr = np.asarray(given[node.name])
        expected = tuple(node.shape)
        if arr.ndim < 2 or int(np.prod(arr.shape[2:])) != int(np.prod(expected)):
            raise SnncError(f"input '{node.name}' field 'shape': expected (batch, steps, "
                            f"{', '.join(map(str, expected))}), got {arr.shape}")
        if isinstance(node, GradedInput):
            out[node.name] = _graded_payload(node, arr).reshape(arr.shape[0], arr.shape[1], *expected)
            continue
        if isinstance(node, BiasInput):
            out[node.name] = _bias_values(node, arr).reshape(arr.shape[0], arr.shape[1], *expected)
            continue
        if not np.all((arr == 0) | (arr == 1)):
            raise SnncError(f"input '{node.name}': spikes must be 0 or 1, got values in "
                            f"[{arr.min()}, {arr.max()}]")
        out[node.name] = arr.reshape(arr.shape[0], arr.shape[1], *expected).astype(np.uint8)
    steps = {a.shape[:2] for a in out.values()}
    if len(steps) != 1:
        raise SnncError(f"inputs disagree on (batch, steps): {sorted(steps)}")
    return out


def _graded_payload(node: GradedInput, arr: np.ndarray) -> np.ndarray:
    """Integer payloads of a graded input, checked against its ``bits`` (signed)."""
    limit = 1 << (node.bits - 1)
    if arr.dtype.kind not in "iub" and not np.all(np.asarray(arr) == np.round(arr)):
        raise SnncError(f"input '{node.name}' field 'payload': limit integers, got non-integer values")
    values = np.asarray(arr).astype(np.int64)
    if values.size and (values.min() <= -limit or values.max() >= limit):
        raise SnncError(f"input '{node.name}' field 'payload': limit |x| < 2^{node.bits - 1}, got values "
                        f"in [{values.min()}, {values.max()}]")
    return values


def _bias_values(node: BiasInput, arr: np.ndarray) -> np.ndarray:
    """Integer bias values of a bias input (lava-dl netx input layer), ``|x| < 2^24``."""
    if arr.dtype.kind not in "iubf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr))):
        raise SnncError(f"input '{node.name}' field 'bias': limit finite integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        raise SnncError(f"input '{node.name}' field 'bias': limit integers (the input neurons' bias_mant), "
                        "got non-integer values")
    values = np.asarray(arr).astype(np.int64)
    if values.size and np.max(np.abs(values)) >= BiasInput.LIMIT:
        raise SnncError(f"input '{node.name}' field 'bias': limit |x| < 2^24 (bias_mant << 6 fits Lava's "
                        f"int32), got values in [{values.min()}, {values.max()}]")
    return values
