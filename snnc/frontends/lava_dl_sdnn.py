"""lava-dl ``.net`` sigma-delta (SDNN) layers, as netx 0.6 loads them (``Network.get_neuron_params``).

A layer whose ``neuron/type`` is ``SDNN`` becomes, with netx's ``spike_exp`` (load option, default 6,
0..7 here: ``NetOptions``) and its fixed ``state_exp = 6``:

* the input layer: a ``GradedInput`` read directly (same step, no synapse) by a ``LoihiDelta`` encoder
  (Lava ``Delta``, vth = ``vThMant``). netx's input block leaves the input port unconnected and ignores the
  layer's ``weight``/``bias`` transform (it is for the user's encoder): the values given to ``snnc run``
  are what reaches ``Delta.a_in``, the values a ``RingBuffer`` connected to ``in_layer.neuron.a_in`` sends;
  |x| < 2^(25 - spike_exp) so that ``x << (spike_exp + 6)`` fits Lava's int32 (2^19 at spike_exp 6).
* a dense layer: its synapse as for CUBA layers (now carrying graded messages), then a ``LoihiSigmaDelta``
  (Lava ``SigmaDelta``, ReLU, vth = ``vThMant``, bias from ``bias``) or, where ``neuron/sigma_output`` is
  present (slayer's ``sigma_delta.Output``), a ``LoihiSigma``.

* a conv layer (PilotNet SDNN's ``sigma_delta.Conv``): its ``LoihiConv`` as for CUBA layers, reading the
  graded messages (Lava ``Conv`` with ``num_message_bits``: float64 sum, int32 cast, 24-bit wrap;
  ``snnc.arith.loihi.conv_output_wrap``), then the same sigma-delta neuron group on (C, H, W), the bias
  per output channel or per neuron in netx's (W, H, C) order (``lava_dl_net.CONV_BIAS``). Input and
  flatten layers as for CUBA nets.

netx's ``reset_interval`` option is refused on SDNN layers (netx drops it with a warning).
netx always builds ReLU sigma-delta neurons (it never reads ``neuron/activation``), so another activation
is refused rather than silently replaced. ``messageBits`` only sets Lava's port precision (unchecked by
its Python models) and is ignored here as there.
"""
from __future__ import annotations

import numpy as np

from snnc.arith.sigma_delta import scaled_threshold
from snnc.errors import UnsupportedError
from snnc.ir.nodes import GradedInput, LoihiDelta, LoihiSigma, LoihiSigmaDelta

EXPORTED = (LoihiSigmaDelta, LoihiSigma)   # the neuron groups of exported SDNN dense and conv layers

SDNN = "SDNN"
NETX_SPIKE_EXP = 6       # netx Network(spike_exp=6) default
NETX_STATE_EXP = 6       # netx passes state_exp=6 to Delta and SigmaDelta


def scale_bits(spike_exp: int) -> int:
    """The shift Lava's Delta / SigmaDelta apply to vth, bias and the Delta input: spike_exp + state_exp."""
    return spike_exp + NETX_STATE_EXP


def value_limit(spike_exp: int) -> int:
    """|vth|, |bias| and |x| stay below this so that their ``<< scale_bits`` fits Lava's int32."""
    return 1 << (31 - scale_bits(spike_exp))
ACTIVATIONS = ("relu",)


def is_sdnn(layer: dict) -> bool:
    """True where the layer has a neuron group of type SDNN."""
    neuron = layer.get("neuron")
    return isinstance(neuron, dict) and net_text(neuron.get("type")) == SDNN


def add_delta_input(builder, index: int, layer: dict) -> None:
    """The SDNN input layer: a graded input and its delta encoder (latency 0, read in the same step)."""
    if builder.nodes:
        raise builder.error(index, "type", "'input' only as the first layer", "input")
    refuse_reset(builder, index)
    shape = tuple(int(d) for d in builder.int_array(index, layer, "shape", ndim=1))
    if any(d <= 0 for d in shape) or not 1 <= len(shape) <= 3:
        raise builder.error(index, "shape", "1 to 3 positive sizes", shape)
    vth = _threshold(builder, index, layer["neuron"])
    name = f"delta_{index}"
    builder.nodes += [GradedInput("input", shape, bits=32 - scale_bits(builder.spike_exp)),
                      LoihiDelta(name, ("input",), shape, vth=vth, spike_exp=builder.spike_exp,
                                 state_exp=NETX_STATE_EXP)]
    builder.latency.update({"input": 0, name: 0})
    builder.cursor, builder.shape = name, shape


def add_sigma_delta(builder, index: int, layer: dict, synapse: str, shape: tuple[int, ...]) -> None:
    """The neuron group of an SDNN dense or conv layer: ``LoihiSigma`` for an output layer
    (``sigma_output``), else a ReLU ``LoihiSigmaDelta``."""
    where = f"{builder.path}: layer {index}"
    neuron = layer["neuron"]
    refuse_reset(builder, index)
    if "sigma_output" in neuron:
        name, node = f"sigma_{index}", None
        if "bias" in layer:
            raise UnsupportedError(where, "bias", "none on a sigma output layer (Lava's Sigma has no bias; "
                                   "netx would fail)", "present")
        node = LoihiSigma(name, (synapse,), shape)
    else:
        builder.field = "neuron/activation"
        activation = net_text(neuron.get("activation", "relu")).lower()
        if activation not in ACTIVATIONS:
            raise UnsupportedError(where, "neuron/activation", "relu (netx always builds ReLU sigma-delta "
                                   "neurons)", activation)
        name = f"sigma_delta_{index}"
        node = LoihiSigmaDelta(name, (synapse,), shape, vth=_threshold(builder, index, neuron),
                               bias=_bias(builder, index, layer, shape), spike_exp=builder.spike_exp,
                               state_exp=NETX_STATE_EXP)
    builder.nodes.append(node)
    builder.latency[name] = builder.latency[builder.cursor] + 1
    builder.cursor, builder.shape = name, shape


def refuse_reset(builder, index: int) -> None:
    """netx's ``reset_interval`` option on a sigma-delta layer: netx 0.6 drops it (with a warning) as Lava's
    Delta, SigmaDelta and Sigma have no reset; snnc refuses it instead of dropping it unasked."""
    if builder.reset_interval:
        raise UnsupportedError(f"{builder.path}: layer {index}", "reset_interval", "none with sigma-delta (SDNN) "
                               "layers (netx 0.6 ignores it there with a warning: Lava's Delta, SigmaDelta and "
                               "Sigma have no reset); load the file without it", builder.reset_interval)


def _threshold(builder, index: int, neuron: dict) -> int:
    vth = builder.scalar(index, neuron, "vThMant", None, prefix="neuron/")
    limit, shift = value_limit(builder.spike_exp), scale_bits(builder.spike_exp)
    if not 0 <= vth < limit:
        raise builder.error(index, "neuron/vThMant", f"an integer in [0, {limit - 1}] (vth << "
                            f"{shift} must fit Lava's int32)", vth)
    assert scaled_threshold(vth, builder.spike_exp, NETX_STATE_EXP) >= 0
    return vth


def _bias(builder, index: int, layer: dict, shape: tuple[int, ...]) -> np.ndarray:
    bias = builder._bias(index, layer, shape)
    shift = scale_bits(builder.spike_exp)
    if np.any(np.abs(bias) >= value_limit(builder.spike_exp)):
        raise builder.error(index, "bias", f"|bias| < 2^{31 - shift} (bias << {shift} must fit "
                            "Lava's int32)", int(np.max(np.abs(bias))))
    return bias


def net_text(value) -> str:
    """The text of a .net dataset (an HDF5 string, bytes or a one-element array), ASCII-decoded."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("ascii", "replace")
    return str(value)


# ------------------------------------------------------------------------------------------- export

def is_delta(node) -> bool:
    """True for a delta encoder (the first neuron group of a sigma-delta net)."""
    return isinstance(node, LoihiDelta)


def export_input_layer(inp, delta: LoihiDelta) -> dict:
    """The SDNN input layer netx turns back into ``delta`` (slayer ``sigma_delta.Input`` fields)."""
    _check_netx_exponents(delta)
    if not isinstance(inp, GradedInput) or delta.inputs != (inp.name,):
        raise UnsupportedError(delta.name, "inputs", "the graded network input alone (netx's input layer)",
                               ", ".join(delta.inputs))
    return {"type": "input", "shape": np.asarray(delta.shape, np.int64), "neuron/type": SDNN,
            "neuron/activation": "relu", "neuron/vThMant": np.int64(delta.vth)}


def export_neuron(neuron, conv: bool = False) -> dict:
    """The neuron fields (and bias) of an SDNN dense or conv layer that netx loads as ``neuron``; a conv
    layer's bias as ``conv_bias_dataset`` writes it."""
    if isinstance(neuron, LoihiSigma):
        return {"neuron/type": SDNN, "neuron/sigma_output": True}
    _check_netx_exponents(neuron)
    fields = {"neuron/type": SDNN, "neuron/activation": "relu", "neuron/vThMant": np.int64(neuron.vth)}
    bias = np.broadcast_to(np.asarray(neuron.bias, np.int64).reshape(-1), (int(np.prod(neuron.shape)),))
    if np.any(bias):
        fields["bias"] = conv_bias_dataset(bias, tuple(neuron.shape)) if conv else bias.copy()
    return fields


def conv_bias_dataset(bias: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The ``bias`` dataset of a (C, H, W) layer that netx reads back as ``bias`` (flat, (C, H, W) order):
    one value per channel where all positions of each channel agree, else the per-neuron array in netx's
    (W, H, C) order (the only per-neuron layout netx 0.6 loads)."""
    per_channel = bias.reshape(shape[0], -1)
    if np.all(per_channel == per_channel[:, :1]):
        return per_channel[:, 0].copy()
    return bias.reshape(shape).transpose(2, 1, 0).copy()


def check_spike_exp(graph, spike_exp: int) -> None:
    """Every delta encoder and sigma-delta group has the ``spike_exp`` that loading the file with netx's
    ``spike_exp`` option (a load option, not file content) gives back; ``UnsupportedError`` naming the
    first that does not."""
    for node in graph.nodes:
        if isinstance(node, (LoihiDelta, LoihiSigmaDelta)) and int(node.spike_exp) != spike_exp:
            raise UnsupportedError(node.name, "spike_exp", f"{spike_exp} (what netx loads with spike_exp="
                                   f"{spike_exp}: a .net file does not store it; pass that load option)",
                                   int(node.spike_exp))


def _check_netx_exponents(node) -> None:
    if int(node.state_exp) != NETX_STATE_EXP:
        raise UnsupportedError(node.name, "state_exp", f"{NETX_STATE_EXP} (what netx passes to Lava)",
                               int(node.state_exp))
