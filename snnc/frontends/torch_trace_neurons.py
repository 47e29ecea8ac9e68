"""Spiking modules the torch tracer meets: which are neurons, and their float IR (a LIF group).

Norse 1.1 cells and layers: ``snnc.frontends.torch_trace_norse`` (equations and mapping there).

snnTorch ``Leaky``/``Synaptic``/``RLeaky``/``RSynaptic`` go through ``snnc.frontends.torch_frontend`` (one
mapping for both torch frontends). SpikingJelly 2.0 ``IFNode``/``LIFNode``/``ParametricLIFNode`` (``neuron.py`` and
``_ops/*/reference.py``), with ``a = 1/tau`` (PLIF: ``a = sigmoid(w)``) and ``X`` the synaptic input::

    H[t] = V[t-1] + a (X[t] - V[t-1])      (decay_input=True; IF: a = 0 and H = V + X)
    H[t] = (1 - a) V[t-1] + X[t]           (decay_input=False)
    S[t] = H[t] >= v_threshold             (heaviside(H - v_th) fires on equality: comparison "ge")
    V[t] = 0 where S[t] (v_reset = 0.0)    or  V[t] = H[t] - v_threshold S[t] (v_reset = None)

map to the float LIF group (``torch_frontend.lif_group``) with current_decay = 1, voltage_decay = a and the synapses scaled by ``a`` when
decay_input (``input_scale``); v = H. A PLIF ``w`` tensor broadcastable to the layer (e.g. one per channel,
(C, 1, 1)) gives one a per neuron, and each synapse row or output channel is scaled by its own a. Hard reset is "zero". The soft reset subtracts the threshold before
the leak, ``H[t+1] = (1 - a)(H[t] - th S[t]) + X``, while snnc's "subtract" removes ``th`` undecayed at the
next step: the difference ``a * th * S[t]`` is added back by a one-to-one recurrent synapse (delay 1), so
the soft-reset LIF is exact too (IF needs none). Another ``v_reset`` is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import snntorch
import torch
from torch import nn

from snnc.errors import UnsupportedError
from snnc.frontends import torch_frontend
from snnc.frontends.torch_trace_norse import NORSE_KINDS, is_norse_multi_step, is_norse_neuron, norse_layer
from snnc.ir.nodes import Comparison, Dense, ResetKind

try:
    from spikingjelly.activation_based import neuron as sj_neuron
except ImportError:  # SpikingJelly is optional
    sj_neuron = None

SNNTORCH_KINDS = ("Leaky", "Synaptic", "RLeaky", "RSynaptic")
SPIKINGJELLY_KINDS = ("IFNode", "LIFNode", "ParametricLIFNode")
SUPPORTED_NEURONS = tuple(f"snntorch.{k}" for k in SNNTORCH_KINDS) + \
    tuple(f"spikingjelly.{k}" for k in SPIKINGJELLY_KINDS) + tuple(f"norse.{k}" for k in NORSE_KINDS)


@dataclass
class NeuronLayer:
    """A neuron group and what it needs: the scale and delay its input synapses carry, and extra synapses
    (recurrent ones, reading the group itself) that come before it in the node list."""

    node: object
    input_scale: float = 1.0
    extra_synapses: list = field(default_factory=list)
    input_delay: int = 0      # steps every input synapse waits (Norse LSNN reads the previous step's current)


def is_neuron(module: nn.Module) -> bool:
    """True for the stateful spiking modules of snnTorch, SpikingJelly and Norse (traced as leaves)."""
    if isinstance(module, snntorch.SpikingNeuron):
        return True
    if sj_neuron is not None and isinstance(module, sj_neuron.BaseNode):
        return True
    return is_norse_neuron(module)


def is_multi_step(module: nn.Module) -> bool:
    """SpikingJelly neurons in ``step_mode='m'`` and Norse's ``SNN`` modules (LIF, IAF, ...) take the whole
    ``[T, N, ...]`` sequence in one call."""
    return getattr(module, "step_mode", "s") == "m" or is_norse_multi_step(module)


def neuron_layer(path: str, module: nn.Module, name: str, inputs: tuple[str, ...], shape) -> NeuronLayer:
    """The IR of one neuron module fed by the synapses ``inputs`` (``UnsupportedError`` if it has none)."""
    kind = type(module).__name__
    if isinstance(module, snntorch.SpikingNeuron):
        if kind not in SNNTORCH_KINDS:
            raise UnsupportedError(path, "type", "one of " + ", ".join(SUPPORTED_NEURONS), f"snntorch.{kind}")
        extra = []
        if kind in torch_frontend.RECURRENT_KINDS:
            extra.append(torch_frontend._recurrent_synapse(path, module, name, shape))
            inputs = inputs + (extra[0].name,)
        return NeuronLayer(torch_frontend._neuron_node(path, module, name, inputs, shape), 1.0, extra)
    if sj_neuron is not None and isinstance(module, sj_neuron.BaseNode) and kind in SPIKINGJELLY_KINDS:
        return _spikingjelly_layer(path, module, kind, name, inputs, shape)
    if is_norse_neuron(module):
        return NeuronLayer(*norse_layer(path, module, name, inputs, shape))
    library = type(module).__module__.split(".")[0]
    raise UnsupportedError(path, "type", "one of " + ", ".join(SUPPORTED_NEURONS), f"{library}.{kind}")


def _spikingjelly_layer(path: str, module, kind: str, name: str, inputs, shape) -> NeuronLayer:
    leak = _spikingjelly_leak(path, module, kind, shape)
    threshold = float(module.v_threshold)
    if threshold <= 0:
        raise UnsupportedError(path, "v_threshold", "> 0", threshold)
    if module.v_reset is not None and float(module.v_reset) != 0.0:
        raise UnsupportedError(path, "v_reset", "0.0 (hard reset to zero) or None (soft reset)",
                               module.v_reset)
    soft = module.v_reset is None
    decay_input = getattr(module, "decay_input", False)
    extra = []
    if soft and np.any(leak > 0):
        size = int(np.prod(shape))
        gain = np.broadcast_to(np.asarray(leak * threshold, np.float64), tuple(shape)).reshape(-1)
        extra.append(Dense(f"rec_{name}", name, np.diag(gain) if np.ndim(leak) else np.eye(size) * gain[0],
                           delay_steps=1))
        inputs = inputs + (extra[0].name,)
    node = torch_frontend.lif_group(name, inputs, shape, voltage_decay=leak, threshold=threshold,
                                    reset=ResetKind.SUBTRACT if soft else ResetKind.ZERO, comparison=Comparison.GE)
    return NeuronLayer(node, leak if decay_input else 1.0, extra)


def _spikingjelly_leak(path: str, module, kind: str, shape):
    """The voltage decay a: 0 (IF), 1/tau (LIF), sigmoid(w) (PLIF; a w tensor broadcastable to the layer's
    shape, e.g. one per channel (C, 1, 1), gives one decay per neuron)."""
    if kind == "IFNode":
        return 0.0
    if kind == "LIFNode":
        return 1.0 / float(module.tau)
    leak = torch.sigmoid(module.w.detach().double()).numpy()
    if leak.size == 1:
        return float(leak.reshape(-1)[0])
    try:
        return np.broadcast_to(leak, tuple(shape)).copy()
    except ValueError:
        raise UnsupportedError(path, "w", f"a scalar or broadcastable to the layer's shape {tuple(shape)}",
                               f"shape {leak.shape}") from None
