"""The targets snnc knows, as data. Sources for every number are in the comments."""
from __future__ import annotations

from snnc.errors import SnncError
from snnc.targets.spec import TargetSpec

_LOIHI_ARITHMETIC = dict(
    # Lava 0.10 LIF fixed_pt: only zero reset, strict '>' threshold test (lava/proc/lif/models.py).
    reset_kinds=("zero",),
    comparisons=("gt",),
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
)

LOIHI2 = TargetSpec(
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

EMULATOR = TargetSpec(
    name="emulator",
    description="snnc's bit-accurate Loihi 2 emulator: Loihi arithmetic, no capacity limits",
    **_LOIHI_ARITHMETIC,
)

TARGETS = {spec.name: spec for spec in (LOIHI2, EMULATOR)}


def get_target(name: str) -> TargetSpec:
    try:
        return TARGETS[name]
    except KeyError:
        raise SnncError(f"unknown target '{name}': choose one of {', '.join(sorted(TARGETS))}") from None
