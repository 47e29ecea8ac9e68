"""Norse 1.1 neuron modules met by the torch tracer -> float IR groups, exactly.

Norse integrates with forward Euler at its module's ``dt`` (default 1e-3 s); with ``a = dt * tau_mem_inv``
and ``b = dt * tau_syn_inv`` (computed in the parameters' own dtype, as Norse does) and X the input
(``norse/torch/functional/*.py``, the ``*_feed_forward_step`` functions)::

    LIFCell / LIF         i' = i + X;  v' = v + a (v_leak - v + i');  z = v' > v_th;
                          v = v_reset where z else v';  i = (1 - b) i'        (start: v = v_leak, i = 0)
    LIFBoxCell            v' = v + a (X + v_leak - v);  z = v' > v_th;  v = v_reset where z
                          (reset_subtract: v = v' - v_th where z)             (start: v = v_leak)
    LICell / LI           i' = i + X;  v = v + a (v_leak - v + i');  i = (1 - b) i'; output v (no spikes)
    LIBoxCell             v = v + a (X + v_leak - v); output v                 (start: v = v_leak, i = 0)
    IAFCell / IAF         v' = v + X;  z = v' > v_th;  v = v_reset where z    (start: v = v_reset)
    LSNNCell / LSNN       v' = v + a (v_leak - v + i);  i = (1 - b) i + X (after v: v reads the previous
                          step's current);  th' = th + e (v_th - th), e = dt * tau_adapt_inv;  z = v' > th';
                          v = v_reset where z else v';  th = th' + beta z     (start: v = v_leak, i = 0, th = v_th)
    IzhikevichCell / Izhikevich   h = tau_inv * dt;  v' = v + h (sq v^2 + mn v + bias - u + X);
                          u' = u + h a (b v - u);  z = v' > v_th;  v = c, u = u' + d where z
                          (start: the behaviour's state s)

Mapped onto ``CubaLIF`` with the membrane measured from v_leak (v~ = v - v_leak, so v~ starts at 0 and the
reset to v_reset = v_leak is the reset to 0): u = a i' (the synapses carry the factor a), current_decay = b,
voltage_decay = a, threshold = v_th - v_leak, reset "zero", comparison "gt" (Norse's heaviside is
``x > 0`` for every surrogate method). IAF: current_decay 1, voltage_decay 0, threshold v_th - v_reset.
LIFBoxCell's ``reset_subtract`` removes v_th before the leak, ``v[t+1] = (1 - a)(v[t] - v_th z[t]) + ...``,
while snnc's "subtract" removes it undecayed at the next update: the difference ``a v_th z[t]`` is added
back by a one-to-one recurrent synapse (delay 1), as for SpikingJelly's soft reset. Izhikevich maps term for
term onto the float ``Izhikevich`` group (step_ms = tau_inv * dt, v2_coeff = sq, v_coeff = mn, constant =
bias). The leaky integrators (LICell, LI, LIBoxCell) are snnc's ``LI`` readout (current_decay b, resp. 1,
voltage_decay a, synapses x a), with v_leak = 0 (their output is v itself). LSNN maps onto ``AdaptiveLIF`` in its Norse form (reset "zero", refractory_scale 0, ">"), measured from
v_leak (threshold v_th - v_leak, threshold_decay e, threshold_step beta), its synapses scaled by a and delayed
one step (v reads the previous step's current), so a synapse bias is refused: Norse's first step sees no
input at all, a bias included. The recurrent cells are refused with the reason (``norse_layer``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snnc.errors import UnsupportedError
from snnc.frontends.ir_values import compact_parameter
from snnc.ir.adaptive_lif_nodes import AdaptiveLIF
from snnc.ir.izhikevich_nodes import Izhikevich
from snnc.ir.nodes import LI, Comparison, CubaLIF, Dense, ResetKind

NORSE_KINDS = ("LIFCell", "LIF", "LIFBoxCell", "IAFCell", "IAF", "LSNNCell", "LSNN", "IzhikevichCell", "Izhikevich",
               "LICell", "LI", "LIBoxCell")
NORSE_BASES = ("SNNCell", "SNN", "SNNRecurrentCell", "SNNRecurrent")
RECURRENT_REFUSAL = ("a feed-forward Norse cell (LIFCell, IAFCell, ...) after an nn.Linear; for recurrence add "
                     "the recurrent nn.Linear on the previous step's spikes in your own time loop")


def is_norse_neuron(module: nn.Module) -> bool:
    """True for Norse's neuron modules (subclasses of its SNNCell/SNN bases), not its containers."""
    if not type(module).__module__.startswith("norse."):
        return False
    return any(base.__module__ == "norse.torch.module.snn" and base.__name__ in NORSE_BASES
               for base in type(module).__mro__)


def is_norse_multi_step(module: nn.Module) -> bool:
    """Norse's ``SNN`` modules (LIF, IAF, ...) take the whole ``[T, N, ...]`` sequence in one call."""
    return any(base.__module__ == "norse.torch.module.snn" and base.__name__ in ("SNN", "SNNRecurrent")
               for base in type(module).__mro__)


def norse_layer(path: str, module: nn.Module, name: str, inputs: tuple[str, ...], shape):
    """(float IR group, input scale, extra synapses, input delay in steps) of one Norse neuron module;
    ``UnsupportedError`` naming the field and what to change for what snnc cannot compute exactly."""
    kind = type(module).__name__
    if "Recurrent" in kind:
        raise UnsupportedError(path, "type", RECURRENT_REFUSAL, f"norse.{kind}")
    if kind not in NORSE_KINDS:
        raise UnsupportedError(path, "type", "one of norse." + ", norse.".join(NORSE_KINDS), f"norse.{kind}")
    if kind.startswith("Izhikevich"):
        return _izhikevich(path, module, name, inputs, shape), 1.0, [], 0
    if kind.startswith("IAF"):
        return _iaf(path, module, name, inputs, shape), 1.0, [], 0
    if kind in ("LICell", "LI", "LIBoxCell"):
        return (*_readout(path, module, kind, name, inputs, shape), [], 0)
    if kind.startswith("LSNN"):
        node, scale = _lsnn(path, module, name, inputs, shape)
        return node, scale, [], 1
    return (*_leaky(path, module, kind, name, inputs, shape), 0)


def _values(path: str, value, field: str, shape) -> np.ndarray:
    """A Norse parameter (number or tensor) as float64, broadcast to the layer's shape."""
    arr = value.detach().double().cpu().numpy() if torch.is_tensor(value) else np.asarray(value, np.float64)
    try:
        return np.broadcast_to(arr, tuple(shape)).copy()
    except ValueError:
        raise UnsupportedError(path, field, f"a number or a tensor broadcastable to {tuple(shape)}",
                               f"shape {arr.shape}") from None


def _rate(path: str, module, field: str, shape) -> np.ndarray:
    """``dt * tau_inv`` as Norse computes it (in the parameter's dtype), checked in [0, 1]."""
    tau_inv = getattr(module.p, field)
    product = module.dt * tau_inv if torch.is_tensor(tau_inv) else module.dt * float(tau_inv)
    rate = _values(path, product, field, shape)
    if np.any(rate < 0) or np.any(rate > 1):
        raise UnsupportedError(path, field, f"dt * {field} in [0, 1] (forward Euler decay per step; dt = "
                               f"{module.dt!r})", f"values in [{rate.min()!r}, {rate.max()!r}]")
    return rate


def _threshold(path: str, module, base: np.ndarray, shape) -> np.ndarray:
    threshold = _values(path, module.p.v_th, "v_th", shape) - base
    if np.any(threshold <= 0):
        raise UnsupportedError(path, "v_th", "> the resting potential (v_leak, IAF: v_reset)",
                               f"v_th - rest in [{threshold.min()!r}, {threshold.max()!r}]")
    return threshold


def _leaky(path: str, module, kind: str, name: str, inputs, shape):
    """LIFCell / LIF (synaptic current) and LIFBoxCell (none) as a CubaLIF measured from v_leak."""
    leak = _values(path, module.p.v_leak, "v_leak", shape)
    a = _rate(path, module, "tau_mem_inv", shape)
    b = _rate(path, module, "tau_syn_inv", shape) if kind != "LIFBoxCell" else np.ones(tuple(shape))
    subtract = getattr(getattr(module.p, "reset_method", None), "__name__", "reset_value") == "reset_subtract"
    if subtract and np.any(leak != 0):
        raise UnsupportedError(path, "v_leak", "0 with reset_subtract (the membrane is measured from v_leak)",
                               f"values in [{leak.min()!r}, {leak.max()!r}]")
    if not subtract:
        _rest_reset(path, module, leak, shape)
    threshold = _threshold(path, module, leak, shape)
    extra = []
    if subtract:
        gain = (a * threshold).reshape(-1)
        extra.append(Dense(f"rec_{name}", name, np.diag(gain), delay_steps=1))
        inputs = tuple(inputs) + (extra[0].name,)
    node = CubaLIF(name, tuple(inputs), tuple(shape), current_decay=compact_parameter(b),
                   voltage_decay=compact_parameter(a), threshold=compact_parameter(threshold),
                   reset=ResetKind.SUBTRACT if subtract else ResetKind.ZERO, comparison=Comparison.GT)
    scale = compact_parameter(a)
    return node, scale, extra


def _rest_reset(path: str, module, leak: np.ndarray, shape) -> None:
    reset = _values(path, module.p.v_reset, "v_reset", shape)
    if np.any(reset != leak):
        raise UnsupportedError(path, "v_reset", "equal to v_leak (Norse starts v at v_leak; snnc's "
                               "membrane starts at and resets to one rest value)",
                               f"v_reset {reset.min()!r}..{reset.max()!r}, v_leak {leak.min()!r}..{leak.max()!r}")


def _one_value(path: str, values: np.ndarray, field: str) -> float:
    if np.any(values != values.reshape(-1)[0]):
        raise UnsupportedError(path, field, "one value for the layer (snnc's adaptive LIF takes a scalar)",
                               f"values in [{values.min()!r}, {values.max()!r}]")
    return float(values.reshape(-1)[0])


def _lsnn(path: str, module, name: str, inputs, shape) -> tuple[AdaptiveLIF, float]:
    """LSNNCell / LSNN: the adaptive LIF in Norse's form, measured from v_leak; the input scale a."""
    leak = _values(path, module.p.v_leak, "v_leak", shape)
    _rest_reset(path, module, leak, shape)
    rates = {k: _one_value(path, _rate(path, module, f, shape), f)
             for k, f in (("a", "tau_mem_inv"), ("b", "tau_syn_inv"), ("e", "tau_adapt_inv"))}
    threshold = _one_value(path, _threshold(path, module, leak, shape), "v_th")
    step = _one_value(path, _values(path, module.p.beta, "beta", shape), "beta")
    if step < 0:
        raise UnsupportedError(path, "beta", ">= 0 (the threshold rises at a spike)", step)
    node = AdaptiveLIF(name, tuple(inputs), tuple(shape), current_decay=rates["b"], voltage_decay=rates["a"],
                       threshold_decay=rates["e"], refractory_decay=0.0, threshold=threshold,
                       threshold_step=step, reset=ResetKind.ZERO, refractory_scale=0.0, comparison=Comparison.GT)
    return node, rates["a"]


def _readout(path: str, module, kind: str, name: str, inputs, shape) -> tuple[LI, float]:
    """LICell / LI / LIBoxCell: the LI readout (its v is the module's output, so v_leak must be 0)."""
    leak = _values(path, module.p.v_leak, "v_leak", shape)
    if np.any(leak != 0):
        raise UnsupportedError(path, "v_leak", "0 (the readout's output is v itself; snnc's LI rests at 0)",
                               f"values in [{leak.min()!r}, {leak.max()!r}]")
    a = compact_parameter(_rate(path, module, "tau_mem_inv", shape))
    b = compact_parameter(_rate(path, module, "tau_syn_inv", shape)) if kind != "LIBoxCell" else 1.0
    return LI(name, tuple(inputs), tuple(shape), current_decay=b, voltage_decay=a), a


def _iaf(path: str, module, name: str, inputs, shape) -> CubaLIF:
    """IAFCell / IAF: a pure integrator measured from v_reset (where Norse starts and resets it)."""
    reset = _values(path, module.p.v_reset, "v_reset", shape)
    threshold = _threshold(path, module, reset, shape)
    return CubaLIF(name, tuple(inputs), tuple(shape), current_decay=1.0, voltage_decay=0.0,
                   threshold=compact_parameter(threshold), reset=ResetKind.ZERO, comparison=Comparison.GT)


def _izhikevich(path: str, module, name: str, inputs, shape) -> Izhikevich:
    """IzhikevichCell / Izhikevich: the float Izhikevich group, step h = tau_inv * dt."""
    p, state = module.p, module.spiking_method.s
    per = {k: compact_parameter(_values(path, getattr(p, k), k, shape)) for k in ("a", "b", "c", "d")}
    step = float(p.tau_inv) * float(module.dt)
    constants = {k: float(getattr(p, k)) for k in ("sq", "mn", "bias", "v_th")}
    return Izhikevich(name, tuple(inputs), tuple(shape), **per,
                      v_init=compact_parameter(_values(path, state.v, "v", shape)),
                      u_init=compact_parameter(_values(path, state.u, "u", shape)),
                      threshold=constants["v_th"], step_ms=step, v2_coeff=constants["sq"],
                      v_coeff=constants["mn"], constant=constants["bias"], comparison=Comparison.GT)
