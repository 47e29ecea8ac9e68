"""snnc's own Lava process: the Izhikevich neuron in Loihi-style fixed point (Lava 0.10 has none; its RF_IZ
is a resonate-and-fire neuron), bit-accurate in fixed_pt.

``SnncIzhikevich`` holds the words of ``snnc.ir.nodes.LoihiIzhikevich`` and its fixed_pt model computes
``snnc.arith.loihi_izhikevich.izhikevich_update`` - the one definition the emulator also runs - on its
Vars: 24-bit states i, v, u (value * 2^frac_bits), coefficient words k2, k1, hk, ahk, bk (value * 2^24),
k0, bias, c, d, vth (value * 2^frac_bits) and the current's 12-bit decay di. The first ``hold_steps``
time steps it receives its input, keeps its state and sends no spike (the pipeline fill before its first
input). Lava's CPU simulation runs it as any process (``Loihi2SimCfg(select_tag="fixed_pt")``); a Loihi
2 chip has no stock neuron for it: it would need a microcode neuron program (lava-loihi, not public), whose
products would need more than the chip's 24-bit registers (they are formed in 64 bits here).
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from snnc.arith.loihi_izhikevich import izhikevich_update

PER_NEURON_WORDS = ("ahk", "bk", "bias", "c", "d")
GROUP_WORDS = ("di", "k2", "k1", "k0", "hk", "vth", "frac_bits", "hold_steps")
COMPARISONS = ("gt", "ge")


class SnncIzhikevich(AbstractProcess):
    """Fixed-point Izhikevich group: states i, v, u; words as ``LoihiIzhikevich`` (scalars or per-neuron
    arrays for ahk, bk, bias, c, d, v, u); ``comparison`` "gt" (v' > vth) or "ge"."""

    def __init__(self, *, shape: tuple[int, ...], v=0, u=0, di: int = 4096, k2: int = 0, k1: int = 0, k0: int = 0,
                 hk: int = 0, vth: int = 0, frac_bits: int = 0, hold_steps: int = 0, ahk=0, bk=0, bias=0, c=0, d=0,
                 comparison: str = "gt", name: str | None = None, log_config=None) -> None:
        if comparison not in COMPARISONS:
            raise ValueError(f"SnncIzhikevich: comparison {comparison!r} must be one of {COMPARISONS}")
        super().__init__(shape=shape, name=name, log_config=log_config, comparison=comparison)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.i = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=v)
        self.u = Var(shape=shape, init=u)
        for key, value in dict(ahk=ahk, bk=bk, bias=bias, c=c, d=d).items():
            setattr(self, key, Var(shape=shape, init=value))
        for key, value in dict(di=di, k2=k2, k1=k1, k0=k0, hk=hk, vth=vth, frac_bits=frac_bits,
                               hold_steps=hold_steps).items():
            setattr(self, key, Var(shape=(1,), init=value))


@implements(proc=SnncIzhikevich, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PySnncIzhikevichModelFixed(PyLoihiProcessModel):
    """Fixed-point model of ``SnncIzhikevich``: ``izhikevich_update`` on its Vars, one call per time step."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=32)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    i: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    ahk: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    bk: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    bias: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    c: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    d: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    di: int = LavaPyType(int, np.int32, precision=13)
    k2: int = LavaPyType(int, np.int64, precision=32)
    k1: int = LavaPyType(int, np.int64, precision=32)
    k0: int = LavaPyType(int, np.int32, precision=24)
    hk: int = LavaPyType(int, np.int64, precision=32)
    vth: int = LavaPyType(int, np.int32, precision=24)
    frac_bits: int = LavaPyType(int, np.int32, precision=5)
    hold_steps: int = LavaPyType(int, np.int32, precision=32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.ge = proc_params["comparison"] == "ge"

    def run_spk(self):
        """Receive the activation; after the hold, one fixed-point step; send the spikes."""
        activation = self.a_in.recv()
        if self.time_step <= int(self.hold_steps):
            self.s_out.send(np.zeros(self.v.shape, np.int32))
            return
        words = {k: getattr(self, k) for k in PER_NEURON_WORDS + ("di", "k2", "k1", "k0", "hk", "vth")}
        i, v, u, _, spikes = izhikevich_update(self.i, self.v, self.u, activation, words, int(self.frac_bits),
                                               self.ge)
        self.i[:], self.v[:], self.u[:] = i, v, u
        self.s_out.send(spikes.astype(np.int32))
