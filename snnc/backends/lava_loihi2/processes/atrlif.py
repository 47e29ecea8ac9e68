"""snnc's own Lava process: the adaptive-threshold LIF in Norse's LSNN form, bit-accurate in fixed_pt.

Lava 0.10's ``ATRLIF`` never resets v, adds twice the threshold to its refractory state r at a spike and
fires on ``v - r >= theta``. ``SnncATRLIF`` runs ATRLIF's own integer update (``PyATRLIFModelFixed``'s
sub-threshold dynamics, bias and threshold scaling) with the fields of ``snnc.ir.nodes.LoihiAdaptiveLIF``:

* ``comparison`` "gt": s = v - r > theta, else v - r >= theta;
* ``refractory_scale``: at a spike r += refractory_scale * theta (ATRLIF: 2; Norse's LSNN: 0);
* ``reset`` "zero": v := 0 at the spike (after the test); "none": no reset (ATRLIF).

Lava's CPU simulation runs it as it runs any process (``Loihi2SimCfg(select_tag="fixed_pt")``); a Loihi 2
chip has no stock neuron for it: it needs a microcode neuron program, which lava-loihi (not public) would
have to supply.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.atrlif.models import PyATRLIFModelFixed
from lava.proc.atrlif.process import ATRLIF

from snnc.ir.nodes import Comparison, ResetKind

RESETS = (ResetKind.NONE.value, ResetKind.ZERO.value)
COMPARISONS = tuple(c.value for c in Comparison)


class SnncATRLIF(ATRLIF):
    """ATRLIF with a chosen reset (``RESETS``), refractory scale (whole number >= 0) and threshold test
    (``COMPARISONS``); the other parameters are Lava ``ATRLIF``'s."""

    def __init__(self, *, shape: tuple[int, ...], reset: str = "none", refractory_scale: int = 2,
                 comparison: str = "ge", **kwargs) -> None:
        if reset not in RESETS or comparison not in COMPARISONS or int(refractory_scale) != refractory_scale \
                or refractory_scale < 0:
            raise ValueError(f"SnncATRLIF: reset {reset!r} must be one of {RESETS}, comparison {comparison!r} "
                             f"one of {COMPARISONS}, refractory_scale {refractory_scale!r} a whole number >= 0")
        super().__init__(shape=shape, **kwargs)
        self.proc_params["reset"] = reset
        self.proc_params["refractory_scale"] = int(refractory_scale)
        self.proc_params["comparison"] = comparison


@implements(proc=SnncATRLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySnncATRLIFModelFixed(PyLoihiProcessModel):
    """Fixed-point model of ``SnncATRLIF``: ATRLIF's integer update, snnc's test, refractory scale and reset."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int16, precision=16)
    i: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    theta: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    r: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    s: np.ndarray = LavaPyType(np.ndarray, bool)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int16, precision=3)
    delta_i: int = LavaPyType(int, np.uint16, precision=12)
    delta_v: int = LavaPyType(int, np.uint16, precision=12)
    delta_theta: int = LavaPyType(int, np.uint16, precision=12)
    delta_r: int = LavaPyType(int, np.uint16, precision=12)
    theta_0: int = LavaPyType(int, np.uint16, precision=12)
    theta_step: int = LavaPyType(int, np.uint16, precision=12)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    # ATRLIF's own integer arithmetic (Lava's functions, so both processes compute the same sub-threshold step).
    subthr_dynamics = PyATRLIFModelFixed.subthr_dynamics
    scale_bias = PyATRLIFModelFixed.scale_bias
    scale_threshold = PyATRLIFModelFixed.scale_threshold

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.ds_offset, self.isthrscaled, self.effective_bias = 1, False, 0
        self.iv_bitwidth = 24
        self.max_iv_val = 2 ** (self.iv_bitwidth - 1)
        self.decay_shift = 12
        self.decay_unity = 2 ** self.decay_shift
        self.theta_unity = self.act_unity = 2 ** 6

    def run_spk(self):
        """One step: receive, ATRLIF's update of i, v, theta and r, snnc's test, then r, theta and the reset."""
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in_data)
        excess = self.v - self.r
        gt = self.proc_params["comparison"] == Comparison.GT
        self.s[:] = excess > self.theta if gt else excess >= self.theta
        self.r[self.s] = self.r[self.s] + self.proc_params["refractory_scale"] * self.theta[self.s]
        self.theta[self.s] = self.theta[self.s] + self.theta_step
        if self.proc_params["reset"] == ResetKind.ZERO:
            self.v[self.s] = 0
        self.s_out.send(self.s)
