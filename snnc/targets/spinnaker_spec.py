"""SpiNNaker limits as data: ``SpinnakerTargetSpec`` implements ``snnc.targets.target.TargetSpec`` (the
same limits and ``semantic_violations`` / ``fits`` / ``cores_needed`` as the Loihi spec), so the generic
passes work on it unchanged.

The delay rule is sPyNNaker 7.4.1's (``PopulationVertex.max_delay_steps_incoming``, ``DelaySupportAdder``):
a core's ring buffer has ``2^ring_buffer_bits`` entries shared by neuron index bits, synapse-type bits
and delay bits, so a population whose largest incoming delay is D ticks supports on its own cores
``min(2^bits(D), 2^(ring_buffer_bits - bits(min(n, neurons_per_core)) - synapse_type_bits))`` ticks; longer
delays need a delay-extension vertex that adds ``delay_extension_slots`` more stages of that length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.arith import spinnaker as sq
from snnc.errors import Violation
from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, Input, SpinnakerPopulation, SpinnakerProjection
from snnc.neurons import float_models_lowering_to, is_neuron_in, lowered_neuron_types, model_of
from snnc.targets.advice import retrain_advice
from snnc.targets.graded_rules import graded_reader_violations
from snnc.targets.spec import unknown_node_violations
from snnc.targets.spinnaker_synapse_cores import (
    PACKED_INPUT_MAX, feeds_synapse_cores, max_summed_words, plan_synapse_cores,
)


def n_bits(n_values: int) -> int:
    """sPyNNaker ``get_n_bits``: bits for ``n_values`` values (1 for a single value)."""
    if n_values <= 1:
        return n_values
    return int(math.ceil(math.log2(n_values)))


@dataclass(frozen=True)
class DelaySupport:
    """How sPyNNaker realises a population's incoming delays (ticks)."""

    on_core: int
    extension_stages: int
    limit: int

    @property
    def needs_extension(self) -> bool:
        """Whether the delays need delay-extension stages beyond the on-core ring buffer."""
        return self.extension_stages > 0


@dataclass(frozen=True)
class SpinnakerTargetSpec:
    """Formats, supported semantics, delay rule and capacity of sPyNNaker's IF_curr_exp on SpiNNaker 1."""

    arithmetic: ClassVar[str] = "spinnaker"
    # Not limits of this target: synapse memory and axons are covered by the synapse-core plan, and
    # spikes are binary.
    synapses_per_core: ClassVar[None] = None
    input_axons_per_core: ClassVar[None] = None
    graded_spike_bits: ClassVar[None] = None
    name: str
    description: str
    reset_kinds: tuple[str, ...]
    comparisons: tuple[str, ...]
    weight_bits: int
    neurons_per_core: int
    ring_buffer_bits: int
    synapse_type_bits: int
    delay_extension_slots: int
    cores_per_chip: int | None = None
    chips: int = 1
    # sPyNNaker's splitters give every application vertex (population slice) cores of its own.
    groups_share_cores: bool = False
    # Synaptic events one core processes per second of machine time (None: unlimited) and the spikes per
    # source neuron per tick the plan assumes (1.0 = worst case); see snnc.targets.spinnaker_synapse_cores.
    synaptic_events_per_core_per_s: float | None = None
    planning_spikes_per_tick: float = 1.0
    # Fan-in beyond one core: "synapse_cores" (sPyNNaker's neuron/synapse split) or None (a violation).
    partial_sum_transport: str | None = None
    # No warm-up voltage to protect: pruning's bias correction is unbounded (see TargetSpec).
    pruning_bias_floor: float | None = None
    # Input-free ticks the PyNN network runs before its first input can arrive (NEST's spike generators
    # cannot emit at time 0, so inputs start at startup_ticks * dt on both simulators); a biased population
    # starts where these ticks and its pipeline fill land on v_rest (snnc.lowering.spinnaker_lowering).
    startup_ticks: int = 2
    # One machine time step (sPyNNaker's default 1 ms, one neuron sub-step). A discrete-time model's step is
    # its unit of time: each model step runs as one tick, whatever dt_s the model names.
    tick_s: float = 1e-3

    def semantic_violations(self, graph: Graph) -> list[Violation]:
        """Float-IR features IF_curr_exp cannot execute (see ``snnc.lowering.spinnaker_lowering``)."""
        out = []
        lowerable = float_models_lowering_to("spinnaker")
        for node in graph.nodes:
            if node.ROLE != "neuron":
                continue
            model = model_of(node)
            if model not in lowerable:
                out.append(Violation(node.name, "type", " or ".join(m.name for m in lowerable) + " (spiking)",
                                     model.name, _no_population_rule(model)))
                continue
            reset, comparison = model.reset_of(node), model.comparison_of(node)
            if model.spinnaker_cell == "IZK_curr_exp":
                out += model.spinnaker_violations(node, self.tick_s * 1e3)
                continue
            if reset not in self.reset_kinds:
                out.append(Violation(node.name, "reset", "|".join(self.reset_kinds), str(reset),
                                     f"{self.name} neurons set v to v_reset when they spike (IF_curr_exp; "
                                     "'zero_next' holds it there one refractory tick): "
                                     + retrain_advice("reset", self.reset_kinds)))
            if comparison not in self.comparisons:
                out.append(Violation(node.name, "comparison", "|".join(self.comparisons), str(comparison),
                                     retrain_advice("comparison", self.comparisons)))
            out += _decay_violations(node)
            if getattr(node, "reset_interval", 0):
                out.append(Violation(node.name, "reset_interval", "0 (IF_curr_exp has no periodic reset)",
                                     str(node.reset_interval), "run it on loihi2 or the emulator (Lava LIFReset)"))
        return out + graded_reader_violations(graph)

    def known_node_types(self) -> tuple[type, ...]:
        """The node types a lowered graph for this target may contain: spike sources, flattens,
        projections and every registered neuron model of SpiNNaker arithmetic."""
        return (Input, Flatten, SpinnakerProjection) + lowered_neuron_types("spinnaker")

    def delay_support(self, n_neurons: int, max_delay_ticks: int) -> DelaySupport:
        """How sPyNNaker realises delays up to ``max_delay_ticks`` for a population of ``n_neurons``: the on-core
        delay slots (the ring buffer bits left after the neuron index and synapse type), and delay-extension
        stages beyond them."""
        atom_bits = n_bits(min(n_neurons, self.neurons_per_core))
        available = 2 ** (self.ring_buffer_bits - atom_bits - self.synapse_type_bits)
        on_core = min(2 ** n_bits(max(max_delay_ticks, 1)), available)
        if max_delay_ticks <= on_core:
            return DelaySupport(on_core, 0, on_core)
        stages = math.ceil(max_delay_ticks / on_core) - 1
        return DelaySupport(on_core, stages, on_core * (self.delay_extension_slots + 1))

    def fits(self, graph: Graph) -> list[Violation]:
        """Every violation of sPyNNaker's formats and capacity; unknown node types too (fail closed)."""
        out: list[Violation] = unknown_node_violations(self, graph)
        for node in graph.nodes:
            if is_neuron_in(node, "spinnaker"):
                out += self._population_violations(graph, node)
                out += model_of(node).limit_violations(node, self)
                out += self._synapse_core_violations(graph, node)
        cores = sum(self.cores_needed(graph).values())
        if self.cores_per_chip is not None and cores > self.cores_per_chip * self.chips:
            out.append(Violation(graph.name, "cores", str(self.cores_per_chip * self.chips), str(cores)))
        return out

    def cores_needed(self, graph: Graph) -> dict[str, int]:
        """Application cores: ceil(n / neurons_per_core) slices per population, each on one core or, split,
        on one neuron core + ``n_synapse_cores`` synapse cores; a spike source array on one core, or sliced
        like a population when it feeds a split population (``network.PyNNNetwork.sliced_inputs``); one
        core per delay extension."""
        cores: dict[str, int] = {}
        for node in graph.nodes:
            if is_neuron_in(node, "spinnaker"):
                slices = math.ceil(int(np.prod(node.shape)) / self.neurons_per_core)
                cores[node.name] = slices * (1 + node.n_synapse_cores)
                if self.delay_support(int(np.prod(node.shape)), max_delay_ticks(graph, node)).needs_extension:
                    cores[f"{node.name}.delay_extension"] = 1
            elif isinstance(node, Input):
                sliced = feeds_synapse_cores(graph, node.name)
                cores[node.name] = math.ceil(int(np.prod(node.shape)) / self.neurons_per_core) if sliced else 1
        return cores

    def _population_violations(self, graph: Graph, node: SpinnakerPopulation) -> list[Violation]:
        out = []
        size = int(np.prod(node.shape))
        longest = max_delay_ticks(graph, node)
        support = self.delay_support(size, longest)
        if longest > support.limit:
            out.append(Violation(node.name, "delay", f"<= {support.limit} ticks ({support.on_core} on core x "
                                 f"{self.delay_extension_slots + 1} with a delay extension)", f"{longest} ticks"))
        for receptor, shift in zip(("excitatory", "inhibitory"), node.ring_buffer_shift):
            if not 0 <= shift <= sq.MAX_RING_BUFFER_SHIFT:
                out.append(Violation(node.name, f"ring_buffer_shift[{receptor}]",
                                     f"[0, {sq.MAX_RING_BUFFER_SHIFT}]", str(shift)))
        lif_words = ("tau_m", "cm", "tau_syn_e", "tau_syn_i", "v_thresh", "i_offset", "v_rest", "v_reset")
        for field in lif_words if isinstance(node, SpinnakerPopulation) else ():
            value = np.asarray(getattr(node, field))
            if value.min() < sq.ACCUM_MIN or value.max() > sq.ACCUM_MAX:
                out.append(Violation(node.name, field, "an s16.15 word", f"values in [{value.min()}, {value.max()}]"))
        for field in lif_words[:4] if isinstance(node, SpinnakerPopulation) else ():
            if np.asarray(getattr(node, field)).min() <= 0:
                out.append(Violation(node.name, field, "> 0", str(getattr(node, field))))
        return out

    def synapse_core_plan(self, graph: Graph, population: SpinnakerPopulation):
        """Synapse cores the population's synaptic load needs (None: no event budget in this spec)."""
        if self.synaptic_events_per_core_per_s is None:
            return None
        return plan_synapse_cores(graph, population, self)

    def _synapse_core_violations(self, graph: Graph, node: SpinnakerPopulation) -> list[Violation]:
        out = []
        plan = self.synapse_core_plan(graph, node)
        if plan is not None and plan.n_synapse_cores is None:
            out.append(Violation(node.name, "synaptic events per tick", f"<= {plan.budget:g} per core with up to "
                                 f"{plan.max_synapse_cores} synapse cores", f"{plan.per_core_events:g} on one core",
                                 "one source slice alone overloads a synapse core: reduce the fan-in"))
        elif plan is not None and node.n_synapse_cores < plan.n_synapse_cores:
            out.append(Violation(node.name, "n_synapse_cores", f">= {plan.n_synapse_cores} for "
                                 f"{plan.events_per_tick:g} synaptic events per tick (a core processes "
                                 f"{plan.budget:g})", str(node.n_synapse_cores), "needs fan-in partitioning"))
        if node.n_synapse_cores > 0:
            for receptor, total in max_summed_words(graph, node).items():
                if total > PACKED_INPUT_MAX:
                    out.append(Violation(node.name, f"summed weight words[{receptor}]", f"<= {PACKED_INPUT_MAX:#x} "
                                         "with synapse cores", str(total), "the neuron core's packed 32-bit sum "
                                         "would carry into the neighbouring neuron instead of saturating"))
        return out


def max_delay_ticks(graph: Graph, population: SpinnakerPopulation) -> int:
    """Largest PyNN delay (ticks, = 1 + hop delay) among the population's incoming projections."""
    longest = 1
    for name in population.inputs:
        projection = graph.node(name)
        if isinstance(projection, SpinnakerProjection):
            delays = np.asarray(projection.delay_steps)
            present = delays if delays.ndim == 0 else delays[np.asarray(projection.weight_word) > 0]
            if np.size(present):
                longest = max(longest, 1 + int(np.max(present)))
    return longest


def _no_population_rule(model) -> str:
    if model.spinnaker_refusal:
        return model.spinnaker_refusal
    if model.traits.output == "membrane":
        return "IF_curr_exp has no non-spiking readout; end the model with a spiking layer"
    if model.traits.output == "graded":
        return ("sPyNNaker's cells send binary spikes only: graded (multi-bit) messages such as sigma-delta "
                "values are not expressible; run it on loihi2 or the emulator")
    return "no sPyNNaker neuron model is mapped for it"


def _decay_violations(node) -> list[Violation]:
    """Decays IF_curr_exp cannot express (per-neuron decays are fine: its taus are per neuron)."""
    out = []
    if np.any(np.asarray(node.voltage_decay) <= 0):
        out.append(Violation(node.name, "voltage_decay", "> 0", repr(float(np.min(node.voltage_decay))),
                             "IF_curr_exp scales its input by (1 - exp(-dt/tau_m)): it cannot integrate without leak"))
    if np.any(np.asarray(node.current_decay) <= 0):
        out.append(Violation(node.name, "current_decay", "> 0", repr(float(np.min(node.current_decay))),
                             "a current that never decays needs tau_syn = infinity"))
    return out
