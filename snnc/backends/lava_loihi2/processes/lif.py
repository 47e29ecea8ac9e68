"""snnc's own Lava process: the CUBA LIF variants Lava 0.10's ``LIF`` lacks, bit-accurate in fixed_pt.

Lava's ``LIF`` resets v to 0 at the spike and tests ``v > vth << 6``. ``SnncLIF`` runs the same
sub-threshold update (Lava's own ``AbstractPyLifModelFixed.subthr_dynamics``: u and v decays, 24-bit
wrap of u, saturation of v) with the reset kinds and threshold tests of ``snnc.ir.nodes.LoihiLIF``:

* ``subtract``: (vth << 6) is subtracted, undecayed, inside the next update (it joins the bias, so v
  saturates after the subtraction);
* ``zero_next``: v := 0 instead of the update one step after a spike (u still updates);
* ``zero``: v := 0 at the spike (as Lava's LIF); ``none``: no reset;
* ``comparison`` "ge": s = v >= (vth << 6), else v > (vth << 6).

``du`` and ``dv`` may be per-neuron arrays (Lava's ``LIF`` declares one value per process; its
sub-threshold arithmetic is elementwise, so the same code computes per-neuron decays). The previous
step's spikes are the Var ``spiked``. Lava's CPU simulation runs it as it runs any process
(``Loihi2SimCfg(select_tag="fixed_pt")``); a Loihi 2 chip has no stock neuron for it: it needs a
microcode neuron program, which lava-loihi (not public) would have to supply.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed
from lava.proc.lif.process import AbstractLIF

from snnc.ir.nodes import Comparison, ResetKind

RESETS = tuple(k.value for k in ResetKind)
COMPARISONS = tuple(c.value for c in Comparison)


class SnncLIF(AbstractLIF):
    """CUBA LIF with a chosen reset kind (``RESETS``) and threshold test (``COMPARISONS``); the other
    parameters are Lava ``LIF``'s (du, dv, vth, bias_mant, bias_exp, u, v)."""

    def __init__(self, *, shape: tuple[int, ...], u=0, v=0, du: int = 0, dv: int = 0, bias_mant=0, bias_exp=0,
                 vth: int = 10, reset: str = "zero", comparison: str = "gt", name: str | None = None,
                 log_config=None, **kwargs) -> None:
        if reset not in RESETS or comparison not in COMPARISONS:
            raise ValueError(f"SnncLIF: reset {reset!r} must be one of {RESETS}, comparison {comparison!r} "
                             f"one of {COMPARISONS}")
        super().__init__(shape=shape, u=u, v=v, du=du, dv=dv, bias_mant=bias_mant, bias_exp=bias_exp, name=name,
                         log_config=log_config, reset=reset, comparison=comparison, **kwargs)
        self.du = Var(shape=_decay_shape(du, shape), init=du)
        self.dv = Var(shape=_decay_shape(dv, shape), init=dv)
        self.vth = Var(shape=(1,), init=vth)
        self.spiked = Var(shape=shape, init=0)


@implements(proc=SnncLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySnncLifModelFixed(AbstractPyLifModelFixed):
    """Fixed-point model of ``SnncLIF``: Lava's LIF sub-threshold arithmetic, snnc's reset and test."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.uint16, precision=12)
    vth: int = LavaPyType(int, np.int32, precision=17)
    spiked: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset = proc_params["reset"]
        self.comparison = proc_params["comparison"]
        self.effective_vth = 0

    def scale_threshold(self):
        """vth is MSB-aligned like Lava's LIF: vth << 6."""
        self.effective_vth = np.left_shift(np.int32(self.vth), self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        """The threshold test on the updated v."""
        if self.comparison == Comparison.GE:
            return self.v >= self.effective_vth
        return self.v > self.effective_vth

    def run_spk(self):
        """One step: receive, update u and v (with the reset that acts on this update), test, reset."""
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        fired_before = self.spiked != 0
        if self.reset == ResetKind.SUBTRACT:
            self.effective_bias = self.effective_bias - self.effective_vth * fired_before.astype(np.int32)
        self.subthr_dynamics(activation_in=a_in_data)
        if self.reset == ResetKind.ZERO_NEXT:
            self.v[fired_before] = 0
        spikes = self.spiking_activation()
        if self.reset == ResetKind.ZERO:
            self.v[spikes] = 0
        self.spiked[:] = spikes
        self.s_out.send(spikes)


def _decay_shape(decay, shape: tuple[int, ...]) -> tuple[int, ...]:
    """One decay per process (shape (1,)) or one per neuron (the process's shape)."""
    return (1,) if np.size(decay) == 1 else tuple(shape)
