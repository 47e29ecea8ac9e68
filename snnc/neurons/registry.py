"""The neuron-model registry: one ``NeuronModel`` per IR neuron node type, looked up with ``model_of``.

Passes, the verifier's callers, targets, placement, the report, simulators and backends ask the model
(its ``traits`` and methods) instead of testing node classes. A family module (``snnc.neurons.cuba_lif``)
defines its models and calls ``register`` at import; ``snnc.neurons`` imports every family.
"""
from __future__ import annotations

from dataclasses import dataclass

from snnc.errors import SnncError, Violation
from snnc.ir.nodes import Comparison, ResetKind


@dataclass(frozen=True)
class Traits:
    """What a neuron model is, as data.

    ``output``: "spikes", "graded" (multi-bit payloads) or "membrane" (a readout's v);
    ``current_memory``: it keeps a synaptic current u between steps; ``resets`` / ``comparisons``: the
    reset kinds and threshold tests its nodes may carry; ``arithmetic``: "float" (float IR) or the target
    arithmetic its lowered node computes in ("loihi", "spinnaker"); ``lowers_to``: the target
    arithmetics a float model has a lowering for."""

    output: str
    current_memory: bool
    arithmetic: str
    resets: tuple[ResetKind, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    lowers_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class LavaProcess:
    """The Lava process a lowered neuron runs as: ``module.name(**parameters)`` (the backend adds the
    shape, the layout of per-neuron arrays and the name). ``stock``: shipped with Lava itself;
    ``summary``: what a compile summary says about a process snnc ships (what it computes)."""

    module: str
    name: str
    parameters: dict
    stock: bool = True
    summary: str = ""


class NeuronModel:
    """One neuron model: its IR node type, traits and state variables; families override what applies.

    Float models implement ``float_step`` (the reference semantics); lowered models the emulator kernels,
    ``limit_violations`` (integer formats of a target) and ``lava_process`` / ``pynn_cell``."""

    node_type: type = type(None)
    traits: Traits
    state_variables: tuple[str, ...] = ()
    # The float fields holding decays, and whether its Loihi lowering gives each neuron its own decay words
    # (else a Loihi target refuses decays that differ within a group).
    decay_fields: tuple[str, ...] = ()
    per_neuron_decays: bool = False
    spinnaker_cell: str | None = None      # the sPyNNaker cell a float model lowers to (None: none)
    loihi_refusal = "no Loihi lowering exists for this neuron model"   # the hint where Loihi refuses it
    loihi_lowering = "lif"    # how a float model lowers to Loihi: a key of lower_loihi.LOWERINGS ("lif", ...)
    qat_trainable = False     # QAT trains it through its lowered Loihi LIF form (snnc.training.qat)
    spinnaker_refusal: str | None = None   # the hint where SpiNNaker refuses it (None: the generic one)
    lava_state_ports = {"u": "u", "v": "v"}   # Lava process Vars a Monitor reads for the recorded u and v
    recalibrates_threshold = False   # timestep compression may re-solve its vth and v_init (the Loihi LIF)
    # What a lowered group whose fan-in exceeds a core should do (the design-rule hint): the default,
    # partition_fanin's graded relays, applies to groups of 0/1 spikes.
    fan_in_remedy = "needs fan-in partitioning"
    # The Lava InPorts its ``inputs`` connect to, one per input in order, read apart (a resonator's real and
    # imaginary synapses); empty: every input into ``a_in``, summed.
    input_ports: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The name of the IR node type this model describes."""
        return self.node_type.__name__

    def reset_of(self, node) -> ResetKind | None:
        """The node's reset kind (None: the model never resets)."""
        return None

    def comparison_of(self, node) -> Comparison | None:
        """The node's threshold test (None: the model has no threshold)."""
        return None

    def loihi_semantic_violations(self, node) -> list[Violation]:
        """What a Loihi target cannot compute in this float node beyond its reset and comparison (default:
        nothing); the target's semantic check adds these."""
        return []

    def float_step(self, node, t: int, current, out, state):
        """Output of step ``t`` of a float neuron (reference semantics), updating ``state`` in place."""
        raise SnncError(f"node '{node.name}': {self.name} has no float semantics (a lowered node)")

    def deployment_note(self, node) -> str:
        """Where what netx deploys for this lowered node departs from the parameters it was trained with
        ("" where it does not); a layer-by-layer comparison with the training framework shows it."""
        return ""

    def membrane_decays(self, node) -> tuple[float, float] | None:
        """(current_decay, voltage_decay) of the LIF membrane through which SBC/OBC weigh a synapse's errors
        (``snnc.compression``); None (the default): the model has no such membrane, so those methods refuse
        its synapses."""
        return None

    def loihi_vth_limit(self, node, thr, drive, cd_eff: float) -> float:
        """A model's own upper bound on the integer vth (state ranges the shared lowering does not know)."""
        return float("inf")

    def limit_violations(self, node, spec) -> list[Violation]:
        """Violations of ``spec``'s integer formats by a lowered node."""
        return []


_MODELS: dict[type, NeuronModel] = {}


def register(model: NeuronModel) -> NeuronModel:
    """Make ``model`` the model of its node type (one model per type)."""
    if model.node_type in _MODELS:
        raise ValueError(f"neuron node type {model.name} is registered twice")
    _MODELS[model.node_type] = model
    return model


def model_of(node) -> NeuronModel:
    """The model of neuron node ``node``; ``SnncError`` for a node type no model describes."""
    model = _MODELS.get(type(node))
    if model is None:
        raise SnncError(f"node '{node.name}': {type(node).__name__} is not a registered neuron model")
    return model


def models(arithmetic: str | None = None) -> tuple[NeuronModel, ...]:
    """Every registered model in registration order, or those of one ``arithmetic``."""
    return tuple(m for m in _MODELS.values() if arithmetic is None or m.traits.arithmetic == arithmetic)


def is_neuron_in(node, arithmetic: str) -> bool:
    """Whether ``node`` is a neuron whose registered model computes in ``arithmetic`` ("float", "loihi",
    "spinnaker"); False for any other node, unregistered neuron types included."""
    model = _MODELS.get(type(node))
    return model is not None and model.traits.arithmetic == arithmetic


def lowered_neuron_types(arithmetic: str) -> tuple[type, ...]:
    """The lowered neuron node types computed in ``arithmetic`` (what a target of it knows)."""
    return tuple(m.node_type for m in models(arithmetic))


def float_models_lowering_to(arithmetic: str) -> tuple[NeuronModel, ...]:
    """The float models with a lowering to ``arithmetic``."""
    return tuple(m for m in models("float") if arithmetic in m.traits.lowers_to)
