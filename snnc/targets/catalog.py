"""The targets snnc knows, as data: ``TARGETS``, the one registry (``snnc.targets.target`` explains how
the compiler and backends attach their parts). Sources for every number are in the comments."""
from __future__ import annotations

from snnc.errors import SnncError
from snnc.targets.energy import EnergyModel
from snnc.targets.spec import LoihiTargetSpec
from snnc.targets.spinnaker_spec import SpinnakerTargetSpec
from snnc.targets.target import Target, TargetSpec, registry

_LOIHI_ARITHMETIC = dict(
    # Lava 0.10 LIF fixed_pt resets to zero and tests '>' (lava/proc/lif/models.py); the other reset kinds
    # and '>=' (exact on the integer v) run as snnc's own fixed_pt Lava process (SnncLIF), which on a
    # Loihi 2 chip needs a microcode neuron.
    reset_kinds=("zero", "zero_next", "subtract", "none"),
    comparisons=("gt", "ge"),
    # 8-bit synaptic weights with a shared exponent per Dense process (lava/utils/weightutils.py);
    # Loihi exponent register range -8..7 (Loihi weightExp, Davies et al. 2018).
    weight_bits=8,
    weight_exp_range=(-8, 7),
    # DelayDense: 6-bit delays, 0..63 (lava/proc/dense/models.py raises above 63).
    max_delay_steps=63,
    # LIF declared precisions (lava/proc/lif/models.py AbstractPyLifModelFixed): du/dv 12-bit unsigned,
    # vth 17-bit unsigned, bias_mant 13-bit signed, bias_exp 3-bit; Lava does not enforce them.
    decay_bits=12,
    vth_bits=17,
    bias_mant_bits=13,
    bias_exp_range=(0, 7),
    # A negative bias is cancelled during pipeline fill by a positive initial voltage below threshold
    # (snnc.lowering.warmup); pruning keeps corrected biases >= -0.25 x threshold so that stays possible.
    pruning_bias_floor=0.25,
    # Graded spikes: Lava's GradedVec / Dense (num_message_bits > 0) fixed_pt ports are declared 24-bit
    # (lava/proc/graded/models.py, lava/proc/dense/models.py); Loihi 2 sends integer-valued (graded)
    # spikes (Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2", 2021).
    graded_spike_bits=24,
    # Fan-in beyond one core: partial sums on extra cores sent as graded spikes to the soma group.
    partial_sum_transport="graded_relay",
)

LOIHI2 = LoihiTargetSpec(
    name="loihi2",
    description="Intel Loihi 2 via Lava 0.10 (fixed_pt simulation; Loihi2HwCfg where lava-loihi exists)",
    # Per-core budgets from public Lava source and lava-dl tutorial mapping logs (shared SEMANTICS.md):
    # about 4096 neurons, ~40k dense 8-bit synapses, ~16k input axons per neuro core; 120 neuro cores
    # per Loihi 2 chip (low end of the 120-128 range).
    neurons_per_core=4096,
    synapses_per_core=40_000,
    input_axons_per_core=16_384,
    cores_per_chip=120,
    **_LOIHI_ARITHMETIC,
)

EMULATOR = LoihiTargetSpec(
    name="emulator",
    description="snnc's bit-accurate Loihi 2 emulator: Loihi arithmetic, no capacity limits",
    lava_sim_integrator=True,
    **_LOIHI_ARITHMETIC,
)

SPINNAKER = SpinnakerTargetSpec(
    name="spinnaker",
    description="SpiNNaker 1 via sPyNNaker 7.4.1 (IF_curr_exp, s16.15; virtual board, NEST reference, real board)",
    # neuron_model_lif_impl.h resets V to V_reset when V >= V_thresh; a strict '>' maps exactly onto
    # '>=' with the threshold word + 1 (values are integers of 2^-15 mV). 'zero' is tau_refrac = 0,
    # 'zero_next' one refractory tick (V held at V_reset, input still shaped into isyn); no sPyNNaker
    # 7.4.1 model keeps v at a spike, so 'subtract' and 'none' are refused (snnc.neurons.cuba_lif).
    reset_kinds=("zero", "zero_next"),
    comparisons=("gt", "ge"),
    # synapse_row.h: 16-bit weight in the top half of each synaptic word.
    weight_bits=16,
    # POP_TABLE_MAX_ROW_LENGTH = 256 atoms per core for static synapses (IF_curr_exp); the ring buffer
    # index has MAX_RING_BUFFER_BITS = 14 bits (utilities/constants.py), 1 of them for the 2 synapse types;
    # DelayExtensionVertex.MAX_SLOTS = 8 extra stages. At 256 neurons: 32 ticks on core, 288 in total.
    neurons_per_core=256,
    ring_buffer_bits=14,
    synapse_type_bits=1,
    delay_extension_slots=8,
    # SpiNN-5 board: 48 chips, 18 cores each of which 1 monitor and 1 reserved -> 16 application cores.
    cores_per_chip=16,
    chips=48,
    # SynapseDynamicsStatic.synapses_per_second = 13e6 (Knight & Furber 2016, "Synapse-centric mapping of
    # cortical models to the SpiNNaker neuromorphic architecture", Front. Neurosci. 10:420), per core at
    # time_scale_factor 1. Planned at sPyNNaker's own rate, spynnaker.cfg [Simulation] spikes_per_second = 30
    # (0.03 spikes per 1 ms tick): an estimate, like sPyNNaker's; the worst case (1.0, every neuron every
    # tick) would refuse any dense 256 x 256 block, which one core can never process in one tick.
    synaptic_events_per_core_per_s=13_000_000,
    planning_spikes_per_tick=0.03,
    partial_sum_transport="synapse_cores",
)

# Energy per event, for reports only: ESTIMATES, not measurements (``snnc report`` says so).
_LOIHI_ENERGY = EnergyModel(
    # Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning", IEEE Micro 38(1),
    # 2018, pre-silicon (Loihi 1, 14 nm) figures as tabulated by nengo/keras-spiking (model_energy.py):
    # 23.6 pJ per synaptic spike operation, 81 pJ per neuron update. Spike messages (same paper, as used
    # by the SANA-FE Loihi model): 1.7 pJ within a tile; 3.0 pJ (E-W) / 4.2 pJ (N-S) per tile hop, so an
    # inter-core message is taken as 1.7 + 3.6 pJ (one average hop). Loihi 2 per-operation energies are
    # not public: these Loihi 1 numbers stand in for them.
    synop_j=23.6e-12, neuron_update_j=81e-12, message_intra_core_j=1.7e-12, message_inter_core_j=5.3e-12,
    source="Davies et al. 2018 (IEEE Micro 38(1)), Loihi 1 pre-silicon figures; estimate for Loihi 2",
)
# SpiNNaker 1: 13.3 nJ per synaptic event, 26 nJ per neuron update (arXiv:1903.08941, as tabulated by
# nengo/keras-spiking); packet energy is inside those whole-chip figures, so messages cost 0 here.
_SPINNAKER_ENERGY = EnergyModel(13.3e-9, 26e-9, 0.0, 0.0, "arXiv:1903.08941 via keras-spiking; SpiNNaker 1")

# Each target's own pass tail, after snnc.compiler.pipeline.SHARED_PREFIX.
_LOIHI_PASSES = ("lower_loihi", "compress_timesteps", "partition_fanin", "check_design_rules", "place_cores")
_SPINNAKER_PASSES = ("lower_spinnaker", "partition_fanin", "check_design_rules", "place_cores")

TARGETS: dict[str, Target] = registry(
    Target(LOIHI2, _LOIHI_ENERGY, _LOIHI_PASSES, script="lava"),
    Target(EMULATOR, _LOIHI_ENERGY, _LOIHI_PASSES),
    Target(SPINNAKER, _SPINNAKER_ENERGY, _SPINNAKER_PASSES, script="pynn"),
)
TARGET_NAMES: tuple[str, ...] = tuple(TARGETS)
ENERGY: dict[str, EnergyModel] = {name: target.energy for name, target in TARGETS.items()}


def registered_target(name: str) -> Target:
    """The registered target called ``name``; an unknown name is an ``SnncError`` listing the choices."""
    try:
        return TARGETS[name]
    except KeyError:
        raise SnncError(f"unknown target '{name}': choose one of {', '.join(sorted(TARGETS))}") from None


def get_target(name: str) -> TargetSpec:
    """The limits (spec) of the registered target ``name``."""
    return registered_target(name).spec
