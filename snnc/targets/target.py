"""A target is one registered object: ``Target``, whose limits are a ``TargetSpec`` (the one Protocol
both the Loihi and the SpiNNaker spec implement), plus its energy model and the *names* of the parts
that live higher in the layer stack (``snnc.layers``).

Why names: ``targets`` sits at layer 2, below the simulators, backends, lowering and compiler that
emulate, run and compile for a target, and may not import them. So a ``Target`` holds data only, and
each higher layer registers its part against what the entry names, the way sinabs' ChipFactory keys
a chip's builders by the chip's name:

* ``spec.arithmetic`` ("loihi", "spinnaker"): the lowered node domain (``lowered-<arithmetic>``, see
  ``snnc.compiler.pass_api``); ``snnc.backends.registry`` keys the bit-exact emulator, the run backends,
  the reference simulator and the compile-summary lines by it;
* ``passes``: the target's own pass tail, by pass name; ``snnc.compiler.pipeline`` puts the shared prefix
  (``SHARED_PREFIX``) in front and resolves each name in its pass registry;
* ``script``: the artifact writer ``snnc.backends.registry`` registers under that name (None: none).

``snnc.targets.catalog.TARGETS`` is the one registry; every per-target table (the compiler's pipelines,
the backends, the energy models, the CLI's target choices) is computed from it, so a target cannot be
listed in one table and missing from another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from snnc.errors import Violation
from snnc.ir.graph import Graph
from snnc.targets.energy import EnergyModel


class TargetSpec(Protocol):
    """Hardware limits as data (None = unlimited), and the checks generic passes run against them.

    Both ``LoihiTargetSpec`` and ``SpinnakerTargetSpec`` implement every member, so passes read limits
    directly (no ``getattr`` fallbacks) and never branch on a target's name."""

    name: str
    description: str
    arithmetic: str                      # "loihi" | "spinnaker": lowered node domain, emulator, backends
    reset_kinds: tuple[str, ...]
    comparisons: tuple[str, ...]
    weight_bits: int
    neurons_per_core: int | None
    synapses_per_core: int | None
    input_axons_per_core: int | None
    cores_per_chip: int | None
    chips: int
    groups_share_cores: bool             # False: a core holds tiles of one neuron group only
    graded_spike_bits: int | None        # None: binary spikes only
    partial_sum_transport: str | None    # "graded_relay" | "synapse_cores" | None (see partition_fanin)
    pruning_bias_floor: float | None

    def semantic_violations(self, graph: Graph) -> list[Violation]:
        """Float-IR features this target cannot execute exactly."""

    def fits(self, graph: Graph) -> list[Violation]:
        """Every violation of the target's integer formats and capacity by a lowered graph."""

    def cores_needed(self, graph: Graph) -> dict[str, int]:
        """Estimated cores per neuron group (empty: no per-core limits)."""

    def synapse_core_plan(self, graph: Graph, population):
        """Synapse cores a population's synaptic load needs (None: the target has no such split)."""


@dataclass(frozen=True)
class Target:
    """One registered target: limits, energy model, and the names its higher-layer parts register under
    (module docstring)."""

    spec: TargetSpec
    energy: EnergyModel
    passes: tuple[str, ...]
    script: str | None = None

    @property
    def name(self) -> str:
        """The target's name (its spec's)."""
        return self.spec.name

    @property
    def arithmetic(self) -> str:
        """The target arithmetic its spec computes in ("loihi", "spinnaker")."""
        return self.spec.arithmetic


def registry(*targets: Target) -> dict[str, Target]:
    """The registry of ``targets`` keyed by name, in the order given; a name registered twice is a bug."""
    out: dict[str, Target] = {}
    for target in targets:
        if target.name in out:
            raise ValueError(f"target '{target.name}' registered twice")
        out[target.name] = target
    return out
