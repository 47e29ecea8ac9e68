"""IR nodes of the adaptive-threshold LIF family: the float ``AdaptiveLIF`` group and the lowered Loihi
``LoihiAdaptiveLIF`` (Lava ``ATRLIF`` fixed_pt). Imported by ``snnc.ir.nodes``, which lists them in
``NEURON_TYPES``; what they compute is the model unit ``snnc.neurons.adaptive_lif``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import Violation
from snnc.ir.nodes import Comparison, ResetKind, _Neuron, _range

ADAPTIVE_DECAYS = ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")


@dataclass(frozen=True, eq=False)
class AdaptiveLIF(_Neuron):
    """Adaptive-threshold LIF with a refractory state (lava-dl ``slayer.neuron.alif``, Lava ``ATRLIF``; Norse
    ``LSNNCell``).

    With I[t] the sum of the currents of ``inputs``, theta[-1] = ``threshold``, r[-1] = u[-1] = v[-1] = 0::

        u[t]     = (1 - current_decay) * u[t-1] + I[t]
        v[t]     = (1 - voltage_decay) * v[t-1] + u[t] + bias
        theta[t] = (1 - threshold_decay) * (theta[t-1] - threshold) + threshold
        r[t]     = (1 - refractory_decay) * r[t-1]
        s[t]     = v[t] - r[t] >= theta[t]          (">" when comparison == "gt")
        where s[t]: r[t] += refractory_scale * theta[t];  theta[t] += threshold_step;
                    v[t] := 0 if reset == "zero"

    lava-dl's ALIF (the defaults: reset "none", refractory_scale 2, ">="): v is never reset, the refractory
    state r (twice the threshold at the spike, decaying) holds the neuron below threshold instead. Norse's
    LSNN: reset "zero", refractory_scale 0, ">" (its one-step-late current is a delay on the synapses).
    Decays are per step in [0, 1]."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    current_decay: float
    voltage_decay: float
    threshold_decay: float
    refractory_decay: float
    threshold: float
    threshold_step: float
    bias: float | np.ndarray = 0.0
    reset: ResetKind = ResetKind.NONE
    refractory_scale: float = 2.0
    comparison: Comparison = Comparison.GE

    OMITTED_AT_DEFAULT = ("reset", "refractory_scale", "comparison")

    def emits_spikes(self) -> bool:
        """An adaptive LIF group outputs 0/1 spikes."""
        return True

    def field_violations(self) -> list[Violation]:
        """Decays in [0, 1], threshold > 0, a threshold step and refractory scale >= 0, reset none or zero."""
        out = []
        for name in ADAPTIVE_DECAYS:
            value = np.asarray(getattr(self, name), dtype=float)
            if np.any(value < 0) or np.any(value > 1):
                out.append(Violation(self.name, name, "in [0, 1]", _range(value)))
        if not self.threshold > 0:
            out.append(Violation(self.name, "threshold", "> 0", repr(self.threshold)))
        if not self.threshold_step >= 0:
            out.append(Violation(self.name, "threshold_step", ">= 0", repr(self.threshold_step)))
        if not self.refractory_scale >= 0:
            out.append(Violation(self.name, "refractory_scale", ">= 0", repr(self.refractory_scale)))
        if self.reset not in (ResetKind.NONE, ResetKind.ZERO):
            out.append(Violation(self.name, "reset", "none|zero", repr(self.reset)))
        if self.comparison not in tuple(Comparison):
            out.append(Violation(self.name, "comparison", "|".join(Comparison), repr(self.comparison)))
        return out


@dataclass(frozen=True, eq=False)
class LoihiAdaptiveLIF(_Neuron):
    """Lowered adaptive LIF with Lava ``ATRLIF`` fixed_pt (bit-accurate) semantics, all integers::

        u[t]     = wrap24(rtz(u[t-1] * (4096 - (du + 1)), 12) + (a[t] << 6))
        v[t]     = clip(rtz(v[t-1] * (4096 - dv), 12) + u[t] + (bias_mant << bias_exp), -(2^23-1), 2^23-1)
        theta[t] = rtz((theta[t-1] - (vth << 6)) * (4096 - dth), 12) + (vth << 6)
        r[t]     = rtz(r[t-1] * (4096 - dr), 12)
        s[t]     = v[t] - r[t] >= theta[t]          (">" when comparison == "gt")
        where s[t]: r[t] += refractory_scale * theta[t];  theta[t] += vth_step << 6;
                    v[t] := 0 if reset == "zero"

    theta[-1] = vth << 6, u, v, r start at 0; ``a[t]`` is the sum of the inputs' activations. ATRLIF's
    delta_i = du / 4096 (its +1 offset gives du + 1), delta_v = dv / 4096, delta_theta = dth / 4096,
    delta_r = dr / 4096, theta_0 = vth, theta_step = vth_step. The defaults (reset "none", refractory_scale
    2, ">=") are Lava's stock ATRLIF; Norse's LSNN form (reset "zero", refractory_scale 0, ">") runs as
    snnc's ``SnncATRLIF`` process (same integer update, then its reset and test)."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    du: int
    dv: int
    dth: int
    dr: int
    vth: int
    vth_step: int
    bias_mant: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    bias_exp: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    reset: ResetKind = ResetKind.NONE
    refractory_scale: int = 2
    comparison: Comparison = Comparison.GE

    DOMAIN = "lowered"
    OMITTED_AT_DEFAULT = ("reset", "refractory_scale", "comparison")

    def emits_spikes(self) -> bool:
        """A lowered adaptive LIF group outputs 0/1 spikes."""
        return True
