"""lava-dl adaptive LIF (``ALIF``) layers in ``.net`` files, as slayer's ``alif`` blocks export them.

netx 0.6 cannot load them (``Network.get_neuron_params`` knows CUBA/LOIHI, SDNN and RF neurons only, and
returns None for ``ALIF``): the reference is slayer's own forward, which computes in the integers of
Lava's stock ``ATRLIF`` process (``snnc.neurons.adaptive_lif``). A layer whose ``neuron/type`` is ``ALIF``
becomes a ``LoihiAdaptiveLIF`` after its synapse, with slayer's device parameters mapped as for CUBA
(``du = iDecay - 1``; ATRLIF adds the 1 back):

    du = iDecay - 1, dv = vDecay, dth = thDecay, dr = refDecay, vth = vThMant, vth_step = vThStep,
    bias_mant = bias, bias_exp = 6 (the bias convention of netx's LIF layers)

``refDelay`` is ignored as slayer's ALIF ignores it (its refractory state ``r`` is the refractory
mechanism); a graded spike and netx's periodic reset (``reset_interval``) are refused by field.
"""
from __future__ import annotations

import numpy as np

from snnc.arith import loihi as lq
from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_sdnn import net_text
from snnc.ir.nodes import LoihiAdaptiveLIF

ALIF = "ALIF"
BIAS_EXP = 6
# (.net field, LoihiAdaptiveLIF field, offset): du is iDecay - 1 as for netx's CUBA layers
FIELDS = (("iDecay", "du", -1), ("vDecay", "dv", 0), ("thDecay", "dth", 0), ("refDecay", "dr", 0))
VTH_LIMIT = (1 << 24) - 1      # vth << 6 fits Lava's int32 Vars with room for theta's growth


def is_alif(neuron) -> bool:
    """True for a neuron group of type ALIF."""
    return isinstance(neuron, dict) and net_text(neuron.get("type")) == ALIF


def add_adaptive_lif(builder, index: int, layer: dict, synapse: str, shape: tuple[int, ...]) -> None:
    """The ``LoihiAdaptiveLIF`` group of an ALIF dense or conv layer, reading ``synapse``."""
    where, neuron = f"{builder.path}: layer {index}", layer["neuron"]
    if synapse is None:
        raise UnsupportedError(where, "neuron/type", "CUBA on an input layer (netx's bias-driven input neuron)",
                               ALIF)
    if builder.reset_interval:
        raise UnsupportedError(where, "reset_interval", "none on ALIF layers (Lava's ATRLIF has no periodic "
                               "reset)", builder.reset_interval)
    if "gradedSpike" in neuron and np.any(np.asarray(neuron["gradedSpike"]).astype(bool)):
        raise UnsupportedError(where, "neuron/gradedSpike", "False (binary spikes: Lava's ATRLIF)", True)
    params = {}
    for key, field, offset in FIELDS:
        value = builder.scalar(index, neuron, key, None, prefix="neuron/")
        if not 0 <= value <= lq.DECAY_UNITY:
            raise builder.error(index, f"neuron/{key}", f"an integer in [0, {lq.DECAY_UNITY}]", value)
        params[field] = value + offset
    for key, field in (("vThMant", "vth"), ("vThStep", "vth_step")):
        value = builder.scalar(index, neuron, key, None, prefix="neuron/")
        if not 0 <= value <= VTH_LIMIT:
            raise builder.error(index, f"neuron/{key}", f"an integer in [0, {VTH_LIMIT}]", value)
        params[field] = value
    bias = builder._bias(index, layer, shape)
    name = f"alif_{index}"
    builder.nodes.append(LoihiAdaptiveLIF(name, (synapse,), shape, bias_mant=bias,
                                          bias_exp=np.full(bias.shape, BIAS_EXP, np.int64), **params))
    builder.latency[name] = builder.latency[builder.cursor] + 1
    builder.cursor, builder.shape = name, shape
    builder.neuron_layers += 1


def export_neuron(neuron: LoihiAdaptiveLIF) -> dict:
    """The ``neuron/...`` datasets of a ``LoihiAdaptiveLIF`` (the loading above, inverted)."""
    for field in ("du", "dv", "dth", "dr", "vth", "vth_step"):
        if np.ndim(getattr(neuron, field)):
            raise UnsupportedError(neuron.name, field, "one value per layer (slayer's ALIF export)",
                                   f"{np.unique(getattr(neuron, field)).size} distinct values")
    fields = {f"neuron/{key}": np.int64(getattr(neuron, field) - offset) for key, field, offset in FIELDS}
    fields.update({"neuron/type": ALIF, "neuron/vThMant": np.int64(neuron.vth),
                   "neuron/vThStep": np.int64(neuron.vth_step), "neuron/refDelay": np.int64(1),
                   "neuron/gradedSpike": False})
    return fields
