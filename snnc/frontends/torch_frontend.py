"""PyTorch / snnTorch frontend: an ``nn.Sequential`` of layers -> float IR (zero-latency timing).

Supported, exactly (see ``CubaLIF`` for the equations):
* ``nn.Linear``, ``nn.Conv2d`` (dilation 1, zero padding), ``nn.AvgPool2d`` (no padding, divisor = area),
  ``nn.Flatten``, ``nn.Identity``, ``nn.Dropout`` (inference: identity).
* ``snntorch.Leaky``: beta -> voltage_decay = 1 - clamp(beta, 0, 1), current_decay = 1; reset
  subtract -> "subtract", zero -> "zero", none -> "none".
* ``snntorch.Synaptic``: alpha -> current_decay = 1 - clamp(alpha, 0, 1); zero reset -> "zero_next"
  (snnTorch zeroes the whole next update).
* ``snntorch.RLeaky``: adds a recurrent synapse (Linear / Conv2d / one-to-one V) reading the previous
  step's spikes (delay_steps = 1); zero reset -> "zero_next".
* ``snntorch.RSynaptic``: a ``Synaptic`` neuron with ``RLeaky``'s recurrent synapse (snnTorch adds
  ``recurrent(spk)`` to the synaptic current, as snnc adds every input synapse to u).
Linear layers between two spiking layers are composed into one synapse (exactly, in float64). Anything
else raises ``UnsupportedError`` naming the module path and what is supported; nothing is approximated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields
from snnc.ir.nodes import Comparison, Conv2d, CubaLIF, Dense, Flatten, Input, ResetKind, SumPool2d, conv_output_hw
from snnc.ir.verify import verify

SUPPORTED = ("nn.Linear", "nn.Conv2d", "nn.AvgPool2d", "nn.Flatten", "nn.Identity", "nn.Dropout",
             "snntorch.Leaky", "snntorch.Synaptic", "snntorch.RLeaky", "snntorch.RSynaptic")
RECURRENT_KINDS = ("RLeaky", "RSynaptic")
MAX_COMPOSED_INPUTS = 1 << 13      # the float64 basis of a composed chain: 512 MiB
LINEAR_TYPES = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten)
PASSTHROUGH = (nn.Identity, nn.Dropout)


@dataclass
class _Cursor:
    """The spiking node the next synapse reads, and its shape."""

    name: str
    shape: tuple[int, ...]


def from_torch(model: nn.Module, input_shape: tuple[int, ...], name: str = "network",
               dt_s: float = 1e-3) -> Graph:
    """Translate ``model`` (one call = one time step, snnTorch convention) into a verified IR graph."""
    layers = _flatten_modules(model, prefix="")
    cursor = _Cursor("input", tuple(input_shape))
    nodes: list = [Input("input", tuple(input_shape))]
    pending: list[tuple[str, nn.Module]] = []
    for path, module in layers:
        if isinstance(module, PASSTHROUGH):
            continue
        if isinstance(module, LINEAR_TYPES):
            pending.append((path, module))
            continue
        if not _is_snntorch_neuron(module):
            raise UnsupportedError(path, "type", "one of " + ", ".join(SUPPORTED), type(module).__name__)
        cursor = _add_neuron_layer(nodes, cursor, pending, path, module)
        pending = []
    if pending:
        raise UnsupportedError(pending[-1][0], "position", "a spiking layer after every synapse",
                               "output ends in a linear layer; end the model with a neuron layer")
    if len(nodes) == 1:
        raise UnsupportedError(type(model).__name__, "layers", "at least one spiking layer", "none")
    return verify(Graph(tuple(nodes), outputs=(cursor.name,), dt_s=dt_s, **graph_name_fields(name)))


def _flatten_modules(module: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        out = []
        for child_name, child in module.named_children():
            out += _flatten_modules(child, f"{prefix}.{child_name}" if prefix else child_name)
        return out
    return [(prefix or type(module).__name__, module)]


def _is_snntorch_neuron(module: nn.Module) -> bool:
    return type(module).__module__.startswith("snntorch") and hasattr(module, "state_function")


def _add_neuron_layer(nodes, cursor: _Cursor, pending, path: str, module) -> _Cursor:
    while pending and isinstance(pending[0][1], nn.Flatten):
        flat_name = _node_name(pending[0][0], "flatten")
        nodes.append(Flatten(flat_name, cursor.name))
        cursor = _Cursor(flat_name, (int(np.prod(cursor.shape)),))
        pending = pending[1:]
    if not pending:
        raise UnsupportedError(path, "position", "a synapse (Linear/Conv2d/AvgPool2d) before each neuron",
                               f"{type(module).__name__} follows '{cursor.name}' directly")
    synapse = _synapse_node(pending, cursor)
    nodes.append(synapse)
    out_shape = _chain_shape(pending, cursor) if len(pending) > 1 else _synapse_shape(synapse)
    neuron_name = _node_name(path, "lif")
    inputs = [synapse.name]
    if type(module).__name__ in RECURRENT_KINDS:
        recurrent = _recurrent_synapse(path, module, neuron_name, out_shape)
        nodes.append(recurrent)
        inputs.append(recurrent.name)
    nodes.append(_neuron_node(path, module, neuron_name, tuple(inputs), out_shape))
    return _Cursor(neuron_name, out_shape)


def _node_name(path: str, kind: str) -> str:
    return f"{kind}_{path.replace('.', '_')}"


def _synapse_node(pending, cursor: _Cursor):
    path, module = pending[-1]
    name = _node_name(path, "syn")
    if len(pending) > 1:
        return _composed_dense(pending, cursor, name)
    if isinstance(module, nn.Linear):
        return Dense(name, cursor.name, _np(module.weight), _np_or_none(module.bias))
    if isinstance(module, nn.Conv2d):
        _check_conv(path, module, cursor)
        return Conv2d(name, cursor.name, _np(module.weight), in_shape=tuple(cursor.shape),
                      stride=_pair(module.stride), padding=_pair(module.padding), groups=module.groups,
                      bias=_np_or_none(module.bias))
    _check_pool(path, module, cursor)
    kernel, stride = _pair(module.kernel_size), _pair(module.stride or module.kernel_size)
    return SumPool2d(name, cursor.name, in_shape=tuple(cursor.shape), kernel=kernel, stride=stride,
                     scale=1.0 / (kernel[0] * kernel[1]))


def _composed_dense(pending, cursor: _Cursor, name: str) -> Dense:
    """Several linear layers in a row are one affine map; probe it exactly in float64 (a size x size basis,
    so the input size is bounded first: ``MAX_COMPOSED_INPUTS``)."""
    size = int(np.prod(cursor.shape))
    paths = "+".join(path for path, _ in pending)
    if size > MAX_COMPOSED_INPUTS:
        raise UnsupportedError(paths, "input size", f"at most {MAX_COMPOSED_INPUTS} values into a chain of linear "
                               "layers (composed exactly through a size x size basis)", size)
    chain = nn.Sequential(*[m for _, m in pending]).double().eval()
    with torch.no_grad():
        basis = torch.eye(size, dtype=torch.float64).reshape(size, *cursor.shape)
        zero = torch.zeros(1, *cursor.shape, dtype=torch.float64)
        try:
            bias = chain(zero).reshape(-1)
        except RuntimeError as exc:     # layer sizes that do not chain (a bundle's specs and weights disagree)
            raise UnsupportedError(paths, "shapes", f"layers that chain from input shape {tuple(cursor.shape)}",
                                   str(exc).splitlines()[0]) from None
        weight = (chain(basis).reshape(size, -1) - bias).T
    for _, m in pending:
        m.float()
    has_bias = bool(torch.any(bias != 0))
    return Dense(name, cursor.name, weight.numpy().copy(), bias.numpy().copy() if has_bias else None)


def _chain_shape(pending, cursor: _Cursor) -> tuple[int, ...]:
    """Output shape of a composed chain (a Conv2d + AvgPool2d chain keeps (C, H, W) for the next conv)."""
    dtype = next((p.dtype for _, m in pending for p in m.parameters()), torch.float32)
    with torch.no_grad():
        out = nn.Sequential(*[m for _, m in pending])(torch.zeros(1, *cursor.shape, dtype=dtype))
    return tuple(int(d) for d in out.shape[1:])


def _check_conv(path: str, module: nn.Conv2d, cursor: _Cursor) -> None:
    if len(cursor.shape) != 3:
        raise UnsupportedError(path, "input shape", "(C, H, W)", cursor.shape)
    if _pair(module.dilation) != (1, 1):
        raise UnsupportedError(path, "dilation", "(1, 1)", _pair(module.dilation))
    if isinstance(module.padding, str) or module.padding_mode != "zeros":
        raise UnsupportedError(path, "padding", "explicit integers with padding_mode='zeros'",
                               f"{module.padding!r}/{module.padding_mode}")


def _check_pool(path: str, module: nn.AvgPool2d, cursor: _Cursor) -> None:
    if len(cursor.shape) != 3:
        raise UnsupportedError(path, "input shape", "(C, H, W)", cursor.shape)
    if _pair(module.padding) != (0, 0) or module.ceil_mode or module.divisor_override:
        raise UnsupportedError(path, "padding/ceil_mode/divisor_override", "0/False/None",
                               f"{module.padding}/{module.ceil_mode}/{module.divisor_override}")


def _synapse_shape(node) -> tuple[int, ...]:
    if isinstance(node, Dense):
        return (int(node.weight.shape[0]),)
    if isinstance(node, Conv2d):
        hw = conv_output_hw(node.in_shape[1:], node.weight.shape[2:], node.stride, node.padding)
        return (int(node.weight.shape[0]), *hw)
    return (node.in_shape[0], *conv_output_hw(node.in_shape[1:], node.kernel, node.stride, (0, 0)))


def _neuron_node(path: str, module, name: str, inputs: tuple[str, ...], shape) -> CubaLIF:
    _check_neuron_options(path, module)
    kind = type(module).__name__
    reset = _reset_kind(path, module, kind)
    beta = _per_neuron(path, "beta", module.beta, shape)
    alpha = _per_neuron(path, "alpha", module.alpha, shape) if kind in ("Synaptic", "RSynaptic") else 0.0
    return CubaLIF(name, inputs, shape,
                   current_decay=_compact(1.0 - np.clip(alpha, 0.0, 1.0)),
                   voltage_decay=_compact(1.0 - np.clip(beta, 0.0, 1.0)),
                   threshold=_compact(_per_neuron(path, "threshold", module.threshold, shape)),
                   reset=reset, comparison=Comparison.GT)


def _check_neuron_options(path: str, module) -> None:
    if getattr(module, "inhibition", False):
        raise UnsupportedError(path, "inhibition", "False", True)
    if getattr(module, "state_quant", False):
        raise UnsupportedError(path, "state_quant", "False (snnc.lowering produces the target formats)", "set")
    gsf = float(torch.as_tensor(getattr(module, "graded_spikes_factor", 1.0)).reshape(-1)[0])
    if gsf != 1.0:
        raise UnsupportedError(path, "graded_spikes_factor", "1.0", gsf)


def _reset_kind(path: str, module, kind: str) -> str:
    mechanism = module.state_function.__name__
    if mechanism == "_base_int":
        return ResetKind.NONE
    if mechanism == "_base_zero":
        return ResetKind.ZERO if kind == "Leaky" else ResetKind.ZERO_NEXT
    if mechanism == "_base_sub" and module.reset_delay:
        return ResetKind.SUBTRACT
    raise UnsupportedError(path, "reset_delay", "True for reset_mechanism='subtract'",
                           f"{mechanism}, reset_delay={module.reset_delay}",
                           "a subtraction at the spike step itself is no snnc reset kind: retrain with "
                           "reset_delay=True (snnTorch's default) or reset_mechanism='zero'")


def _recurrent_synapse(path: str, module, neuron_name: str, shape):
    name = _node_name(path, "rec")
    rec = module.recurrent
    if isinstance(rec, nn.Linear):
        return Dense(name, neuron_name, _np(rec.weight), _np_or_none(rec.bias), delay_steps=1)
    if isinstance(rec, nn.Conv2d):
        return Conv2d(name, neuron_name, _np(rec.weight), in_shape=tuple(shape), stride=(1, 1),
                      padding=_pair(rec.padding), bias=_np_or_none(rec.bias), delay_steps=1)
    v = _per_neuron(path, "V", rec.V, (int(np.prod(shape)),))
    return Dense(name, neuron_name, np.diag(np.broadcast_to(v, (int(np.prod(shape)),))), delay_steps=1)


def _per_neuron(path: str, field: str, value, shape) -> np.ndarray:
    arr = np.asarray(torch.as_tensor(value).detach().double().cpu().numpy())
    try:
        return np.broadcast_to(arr, shape).copy() if arr.size > 1 else arr.reshape(())
    except ValueError:
        raise UnsupportedError(path, field, f"a scalar or broadcastable to {shape}", arr.shape) from None


def _compact(arr) -> float | np.ndarray:
    arr = np.asarray(arr, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy().copy()


def _np_or_none(t) -> np.ndarray | None:
    return None if t is None else _np(t)


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value), int(value))


def lif_group(name: str, inputs: tuple[str, ...], shape, voltage_decay: float, threshold: float,
              reset: ResetKind, comparison: Comparison) -> CubaLIF:
    """A float LIF group without synaptic memory (current_decay 1), for the module tracer
    (``snnc.frontends.torch_trace``: SpikingJelly neurons and MaxPool OR units)."""
    return CubaLIF(name, tuple(inputs), tuple(shape), current_decay=1.0, voltage_decay=voltage_decay,
                   threshold=threshold, reset=reset, comparison=comparison)
