"""Loihi hardware limits as data: ``LoihiTargetSpec`` (one ``snnc.targets.target.TargetSpec``), with
``fits()`` returning every violation.

Passes read numbers from a spec; no pass branches on a target's name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.arith import loihi as lq
from snnc.errors import Violation
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput, Flatten, GradedInput, Input, LoihiConv, LoihiDense, LoihiGradedSum, Slice
from snnc.neurons import lowered_neuron_types, model_of
from snnc.neurons.cuba_lif import range_violation
from snnc.targets.advice import retrain_advice
from snnc.targets.conv_window import ConvWindow
from snnc.targets.graded_rules import graded_reader_violations, graded_violations


@dataclass(frozen=True)
class LoihiTargetSpec:
    """Integer formats, supported semantics and capacity of one Loihi-arithmetic target (None = unlimited)."""

    arithmetic: ClassVar[str] = "loihi"
    groups_share_cores: ClassVar[bool] = True
    name: str
    description: str
    reset_kinds: tuple[str, ...]
    comparisons: tuple[str, ...]
    weight_bits: int
    weight_exp_range: tuple[int, int]
    max_delay_steps: int
    decay_bits: int
    vth_bits: int
    bias_mant_bits: int
    bias_exp_range: tuple[int, int]
    neurons_per_core: int | None = None
    synapses_per_core: int | None = None
    input_axons_per_core: int | None = None
    cores_per_chip: int | None = None
    chips: int = 1
    # Graded (multi-bit) spike payload width; None: the target sends binary spikes only.
    graded_spike_bits: int | None = None
    # How a neuron group whose fan-in exceeds a core is split (snnc.compiler.passes.partition_fanin):
    # "graded_relay" (partial sums as graded spikes), "synapse_cores" (separate synapse-processing
    # cores, no IR change) or None (not supported: a design-rule violation).
    partial_sum_transport: str | None = None
    # Pruning's bias correction keeps a bias >= -floor x threshold (None: unbounded); see
    # snnc.compression.pruning.
    pruning_bias_floor: float | None = None
    # Accepts netx's non-leaky integrator (the neuron of a .net dense layer without one): Lava's Python
    # LIF computes du = -1, dv = 4096, vth = 2^17, which Loihi's 12-bit decays and 17-bit threshold cannot
    # hold (snnc.neurons.cuba_lif.NETX_INTEGRATOR_VALUES); also the never-spiking neuron of slayer's
    # cuba.Affine export (vth 2^18 - 1, snnc.neurons.cuba_lif.SLAYER_AFFINE_VTH).
    lava_sim_integrator: bool = False

    def semantic_violations(self, graph: Graph) -> list[Violation]:
        """Float-IR features this target cannot execute exactly."""
        out = []
        for node in graph.nodes:
            if node.ROLE != "neuron":
                continue
            model = model_of(node)
            if model.traits.arithmetic == "float" and self.arithmetic not in model.traits.lowers_to:
                out.append(Violation(node.name, "type", f"a neuron model with a {self.arithmetic} lowering",
                                     model.name, model.loihi_refusal))
                continue
            reset, comparison = model.reset_of(node), model.comparison_of(node)
            if reset is not None and reset not in self.reset_kinds:
                out.append(Violation(node.name, "reset", "|".join(self.reset_kinds), str(reset),
                                     f"{self.name} neurons cannot reset by '{reset}': "
                                     + retrain_advice("reset", self.reset_kinds)))
            if comparison is not None and comparison not in self.comparisons:
                out.append(Violation(node.name, "comparison", "|".join(self.comparisons), str(comparison),
                                     retrain_advice("comparison", self.comparisons)))
            out += model.loihi_semantic_violations(node)
            if not model.per_neuron_decays:
                out += _uniform_decay_violations(node, model.decay_fields)
            out += _periodic_reset_violations(node, reset, comparison)
        return out + graded_reader_violations(graph)

    def known_node_types(self) -> tuple[type, ...]:
        """The node types a lowered graph for this target may contain: generic inputs and views, Loihi
        synapses and every registered neuron model of Loihi arithmetic."""
        return (Input, Flatten, GradedInput, BiasInput, Slice, LoihiDense, LoihiConv, LoihiGradedSum) + \
            lowered_neuron_types("loihi")

    def fits(self, graph: Graph) -> list[Violation]:
        """Every violation of this target's integer formats and capacity by a lowered graph; a node type
        this target does not know is a violation too (fail closed)."""
        out: list[Violation] = unknown_node_violations(self, graph)
        for node in graph.nodes:
            if node.ROLE == "neuron" and type(node) in self.known_node_types():
                out += model_of(node).limit_violations(node, self)
            elif isinstance(node, LoihiDense):
                out += self._dense_violations(node)
            elif isinstance(node, LoihiConv):
                out += self._conv_violations(node)
        out += self._capacity_violations(graph)
        out += graded_violations(self, graph)
        return out

    def cores_needed(self, graph: Graph) -> dict[str, int]:
        """Cores per neuron group: enough for its neurons and its incoming synapses."""
        if self.neurons_per_core is None:
            return {}
        cores = {}
        for node in graph.nodes:
            if node.ROLE == "neuron":
                neurons = int(np.prod(node.shape))
                synapses = sum(_synapse_count(graph.node(s), neurons) for s in node.inputs)
                by_neurons = math.ceil(neurons / self.neurons_per_core)
                by_synapses = math.ceil(synapses / self.synapses_per_core) if self.synapses_per_core else 1
                cores[node.name] = max(by_neurons, by_synapses, 1)
        return cores

    def synapse_core_plan(self, graph: Graph, population) -> None:
        """Loihi has no separate synapse-processing cores (fan-in is split by graded relays instead)."""
        return None

    def _dense_violations(self, node: LoihiDense) -> list[Violation]:
        lo, hi = lq.weight_limits(node.sign_mode)
        out = range_violation(node.name, "weight_mant", node.weight_mant, lo, hi)
        words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
        changed = int(np.count_nonzero(words != node.weight_mant))
        if not out and changed:
            out.append(Violation(node.name, "weight_mant", "values kept by the hardware's truncation",
                                 f"{changed} weights would change", "low bits would be dropped"))
        out += range_violation(node.name, "weight_exp", node.weight_exp, *self.weight_exp_range)
        out += range_violation(node.name, "delay_steps", node.delay_steps, 0, self.max_delay_steps)
        return out

    def _conv_violations(self, node: LoihiConv) -> list[Violation]:
        lo, hi = lq.weight_limits("mixed")
        return range_violation(node.name, "weight_mant", node.weight_mant, lo, hi)

    def _capacity_violations(self, graph: Graph) -> list[Violation]:
        out = []
        if self.input_axons_per_core is not None:
            for node in graph.nodes:
                if node.ROLE == "neuron":
                    fan_in = sum(synapse_fan_in(graph, graph.node(s)) for s in node.inputs)
                    if fan_in > self.input_axons_per_core:
                        out.append(Violation(node.name, "fan-in", f"{self.input_axons_per_core} input axons "
                                             "per core", str(fan_in), model_of(node).fan_in_remedy))
        cores = self.cores_needed(graph)
        if self.cores_per_chip is not None and sum(cores.values()) > self.cores_per_chip * self.chips:
            out.append(Violation(graph.name, "cores", str(self.cores_per_chip * self.chips),
                                 str(sum(cores.values()))))
        return out


def unknown_node_violations(spec, graph: Graph) -> list[Violation]:
    """One violation per node whose type ``spec.known_node_types()`` does not list (fail closed: a new
    lowered node type is refused until its target learns it)."""
    known = spec.known_node_types()
    return [Violation(node.name, "type", f"node types {spec.name} knows ("
                      + ", ".join(t.__name__ for t in known) + ")", type(node).__name__)
            for node in graph.nodes if type(node) not in known]


def _uniform_decay_violations(node, decay_fields: tuple[str, ...]) -> list[Violation]:
    """Decays that differ within a group whose Loihi form holds one decay per group."""
    out = []
    for field in decay_fields:
        arr = np.asarray(getattr(node, field))
        if arr.size > 1 and np.ptp(arr) != 0:
            out.append(Violation(node.name, field, "one value per neuron group (scalar decay words)",
                                 f"{np.unique(arr).size} distinct values"))
    return out


def _synapse_count(node, neurons: int = 1) -> int:
    if isinstance(node, LoihiGradedSum):   # one synapse per source per neuron (identity weights)
        return len(node.sources) * neurons
    if isinstance(node, LoihiDense):
        return int(np.count_nonzero(node.weight_mant))
    if isinstance(node, LoihiConv):
        return int(np.prod(node.weight_mant.shape))
    return 0


def _periodic_reset_violations(node, reset, comparison) -> list[Violation]:
    """A float group's periodic reset lowers to Lava's ``LIFReset``: zero reset and '>' only."""
    if not getattr(node, "reset_interval", 0) or (reset, comparison) == ("zero", "gt"):
        return []
    return [Violation(node.name, "reset_interval", "a periodic reset only with reset 'zero' and comparison 'gt' "
                      "(Lava LIFReset)", f"reset {reset}, comparison {comparison}")]


def synapse_fan_in(graph: Graph, node) -> int:
    """Input axons one neuron needs on its core for synapse ``node``: one per partial sum of a graded
    sum, one per used source column of a dense synapse (every neuron of the group may read all of them),
    the kernel window of a convolution (``snnc.targets.conv_window``: channels / groups x kh x kw less
    unused taps, not the whole input layer), the whole source otherwise."""
    if node.ROLE == "input":   # a delta encoder reads its input one to one, without synapse
        return 1
    if isinstance(node, LoihiGradedSum):
        return len(node.sources)
    if isinstance(node, LoihiDense):
        return int(np.count_nonzero(np.any(np.asarray(node.weight_mant) != 0, axis=0)))
    if isinstance(node, LoihiConv):
        return ConvWindow.of(node).window_fan_in()
    return int(np.prod(graph.shapes[node.source]))
