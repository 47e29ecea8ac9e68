"""lava-dl ``.net`` resonate-and-fire layers, as netx 0.6 loads them (``Network.get_neuron_params``,
``Network.create_dense`` and the ``ComplexDense`` block).

slayer's ``rf.Dense`` / ``rf_iz.Dense`` blocks export a ``dense`` layer with two weight matrices,
``weight/real`` and ``weight/imag``, and ``neuron/{type, sinDecay, cosDecay, vThMant, gradedSpike}``.
netx builds a ``ComplexDense``: each matrix becomes its own Lava ``Dense`` (formatted apart by
``optimize_weight_bits``), feeding ``a_real_in`` / ``a_imag_in`` of a Lava ``RF`` (type containing
``PHASE``) or ``RF_IZ`` (any other type containing ``RF``), with ``vth = vThMant``, ``state_exp = 6``,
``decay_bits = 12`` and the period and decay of slayer's ``neuron_params`` (so Lava's decay words are
``snnc.arith.resonator.lava_decay_words`` of the file's). Here: two ``LoihiDense`` nodes
(``dense_<i>_real``, ``dense_<i>_imag``) and a ``LoihiRF`` / ``LoihiRFIzhikevich`` reading them.

What netx itself cannot load or silently changes is refused by field: a resonator on an ``input`` or
``conv`` layer (netx's Input and Conv blocks connect the neuron's ``a_in``, which Lava's RF has not), a
``dense`` RF layer without complex weights, ``bias`` and ``delay`` on it (``ComplexDense`` ignores both),
``ADRF_*`` neurons (netx loads them as plain RF, dropping slayer's adaptive threshold), graded RF spikes,
per-neuron decays (Lava's RF holds one decay pair per process), words outside slayer's range, netx's
``reset_interval`` option (netx skips the reset on RF layers without a word).
``messageBits`` is ignored as netx ignores it for RF (Lava's RF sends binary spikes).
"""
from __future__ import annotations

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.lava_dl_sdnn import net_text
from snnc.ir.resonator_nodes import DECAY_WORD_RANGE, RESONATOR_TYPES, LoihiRF, LoihiRFIzhikevich

EXPORTED = RESONATOR_TYPES
PHASE_TYPE, IZHIKEVICH_TYPE = "RF_PHASE", "RF_IZHIKEVICH"   # what slayer's rf / rf_iz neurons write
VTH_LIMIT = 1 << 17         # vThMant << 6 stays inside Lava's 24-bit resonator state
ADAPTIVE = ("netx 0.6 loads an ADRF neuron as a plain Lava RF/RF_IZ ('RF' in its type), dropping the adaptive "
            "threshold and refractory state slayer trained it with")
GRADED = ("slayer's graded RF spike carries the real state, but netx 0.6 ignores gradedSpike and runs Lava's binary RF "
          "(train with binary spikes, or set gradedSpike False to deploy netx's binary RF)")


def is_resonator(layer: dict) -> bool:
    """True where the layer's neuron type names a resonator (netx: ``"RF" in type``)."""
    neuron = layer.get("neuron")
    return isinstance(neuron, dict) and "RF" in net_text(neuron.get("type"))


def refuse_outside_dense(builder, index: int, layer: dict, block: str) -> None:
    """A resonator neuron on a layer netx builds with ``block`` (Input, Conv, RecurrentDense): that block
    connects the neuron's ``a_in``, which Lava's RF lacks."""
    raise UnsupportedError(f"{builder.path}: layer {index}", "neuron/type", "a resonator (RF) neuron on a dense "
                           "layer with weight/real and weight/imag only (netx 0.6 builds RF in ComplexDense "
                           f"blocks; its {block} block connects the neuron's a_in, which Lava's RF has not)",
                           net_text(layer["neuron"].get("type")))


def check_complex_layer(builder, index: int, layer: dict) -> None:
    """The dense layer's fields netx's ``ComplexDense`` would ignore, and complex weights present."""
    where = f"{builder.path}: layer {index}"
    weights = layer.get("weight")
    if not isinstance(weights, dict) or not {"real", "imag"} <= set(weights):
        raise UnsupportedError(where, "weight", "weight/real and weight/imag (netx builds RF neurons only in "
                               "ComplexDense blocks)", "a real weight matrix" if "weight" in layer else "missing")
    for field in ("bias", "delay", "weight_rec"):
        if field in layer:
            raise UnsupportedError(where, field, "none on a resonator layer (netx 0.6's ComplexDense ignores "
                                   "it)", "present")


def add_resonator(builder, index: int, layer: dict, synapses: tuple[str, str], shape: tuple[int, ...]) -> None:
    """The neuron group of a complex dense layer, reading (real, imag) ``synapses``."""
    where = f"{builder.path}: layer {index}"
    neuron = layer["neuron"]
    kind = net_text(neuron.get("type"))
    builder.field = "neuron/type"
    if kind.startswith("ADRF"):
        raise UnsupportedError(where, "neuron/type", f"{PHASE_TYPE} or {IZHIKEVICH_TYPE}", kind, rule=ADAPTIVE)
    if "gradedSpike" in neuron and np.any(np.asarray(neuron["gradedSpike"]).astype(bool)):
        raise UnsupportedError(where, "neuron/gradedSpike", "False (binary spikes)", True, rule=GRADED)
    if builder.reset_interval:
        raise UnsupportedError(where, "reset_interval", "none with resonator layers (netx 0.6 silently skips the "
                               "periodic reset on RF layers: Lava's RF and RF_IZ have no reset)", builder.reset_interval)
    words = {}
    for field, (lo, hi) in (("sinDecay", DECAY_WORD_RANGE["sin_decay"]), ("cosDecay", DECAY_WORD_RANGE["cos_decay"]),
                            ("vThMant", (0, VTH_LIMIT - 1))):
        if np.size(neuron.get(field, 0)) != 1:
            raise builder.error(index, f"neuron/{field}", "one value per layer (Lava's RF holds one decay pair "
                                "and threshold per process; slayer's shared_param=False is not loadable)",
                                f"shape {np.shape(neuron[field])}")
        words[field] = builder.scalar(index, neuron, field, None, prefix="neuron/")
        if not lo <= words[field] <= hi:
            raise builder.error(index, f"neuron/{field}", f"an integer in [{lo}, {hi}]", words[field])
    node_type, prefix = (LoihiRF, "rf") if "PHASE" in kind else (LoihiRFIzhikevich, "rf_iz")
    name = f"{prefix}_{index}"
    builder.nodes.append(node_type(name, synapses, shape, sin_decay=words["sinDecay"], cos_decay=words["cosDecay"],
                                   vth=words["vThMant"]))
    builder.latency[name] = builder.latency[builder.cursor] + 1
    builder.cursor, builder.shape = name, shape
    builder.neuron_layers += 1


# ------------------------------------------------------------------------------------------- export

def is_imag_synapse(graph, node) -> bool:
    """True for the imaginary-part synapse of a resonator (the second input of its one consumer)."""
    consumers = graph.consumers(node.name)
    return len(consumers) == 1 and isinstance(consumers[0], RESONATOR_TYPES) and \
        consumers[0].inputs[1:] == (node.name,)


def export_neuron(neuron) -> dict:
    """The ``neuron/...`` fields of a resonator layer (what slayer's rf / rf_iz blocks write)."""
    kind = PHASE_TYPE if isinstance(neuron, LoihiRF) else IZHIKEVICH_TYPE
    return {"neuron/type": kind, "neuron/sinDecay": np.int64(neuron.sin_decay),
            "neuron/cosDecay": np.int64(neuron.cos_decay), "neuron/vThMant": np.int64(neuron.vth),
            "neuron/gradedSpike": False}
