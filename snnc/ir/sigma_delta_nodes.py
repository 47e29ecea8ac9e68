"""IR nodes of the float sigma-delta family (lava-dl SDNN, real-valued): the ``DeltaEncoder`` of a graded
input, the ReLU ``SigmaDelta`` neuron and the ``SigmaDecoder`` readout. Imported by ``snnc.ir.nodes``,
which lists them in ``NEURON_TYPES``; what they compute is the model unit ``snnc.neurons.sigma_delta``.

They are the real-number form of the lowered ``LoihiDelta`` / ``LoihiSigmaDelta`` / ``LoihiSigma`` (Lava's
``lava.proc.sdn``): the same equations without the integer scaling, shifts and int32 wraps. Messages are
graded: a group sends the change of its activation once it reaches the threshold, and the next group's
sigma integrates the changes back. State starts at zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.errors import Violation
from snnc.ir.nodes import _Neuron


def _threshold_violations(node) -> list[Violation]:
    if not np.ndim(node.threshold) == 0 or not float(node.threshold) > 0:
        return [Violation(node.name, "threshold", "one number > 0", repr(node.threshold))]
    return []


@dataclass(frozen=True, eq=False)
class DeltaEncoder(_Neuron):
    """Delta encoder of a graded input (lava-dl ``sigma_delta.Input``, Lava ``Delta``)::

        x[t]       = the input node's value at step t      (read in the same step: no synapse)
        d[t]       = x[t] - x[t-1] + residue[t-1]
        s[t]       = d[t] if |d[t]| >= threshold else 0
        residue[t] = d[t] - s[t]

    x[-1] = residue[-1] = 0; the output s is graded (a real value per neuron), so the sum of s up to t is
    x[t] - residue[t]. ``inputs`` names one ``GradedInput`` (integer values; ``threshold`` is in the
    input's units). State variables: ``act`` (= x) and ``residue``."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    threshold: float

    INPUT_ROLES = ("input",)

    def emits_graded(self) -> bool:
        """Its output is a graded value per neuron (the sent change), not a 0/1 spike."""
        return True

    def field_violations(self) -> list[Violation]:
        """One threshold > 0."""
        return _threshold_violations(self)


@dataclass(frozen=True, eq=False)
class SigmaDelta(_Neuron):
    """Sigma-delta neuron with ReLU activation (lava-dl ``sigma_delta.Dense`` / ``Conv`` neuron, Lava
    ``SigmaDelta`` act_mode RELU, no cumulative error). With a[t] the sum of the currents of ``inputs``::

        sigma[t]   = sigma[t-1] + a[t]
        act[t]     = max(sigma[t] + bias, 0)
        d[t]       = act[t] - act[t-1] + residue[t-1]
        s[t]       = d[t] if |d[t]| >= threshold else 0
        residue[t] = d[t] - s[t]

    sigma[-1] = act[-1] = residue[-1] = 0; the output s is graded. The synapses carry graded messages: a
    group reading this one integrates them (the sum of s up to t is act[t] - residue[t]). ``bias`` is one
    value or one per neuron; ``threshold`` one value."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    threshold: float
    bias: float | np.ndarray = 0.0

    def emits_graded(self) -> bool:
        """Its output is a graded value per neuron (the sent change), not a 0/1 spike."""
        return True

    def field_violations(self) -> list[Violation]:
        """One threshold > 0; a finite bias (the verifier checks finiteness) of one value or one per
        neuron."""
        out = _threshold_violations(self)
        size = int(np.prod(self.shape))
        if np.size(self.bias) not in (1, size):
            out.append(Violation(self.name, "bias", f"one value or {size} (one per neuron)",
                                 f"{np.size(self.bias)} values"))
        return out


@dataclass(frozen=True, eq=False)
class SigmaDecoder(_Neuron):
    """Sigma decoder (lava-dl ``sigma_delta.Output``, Lava ``Sigma``): integrates the graded messages of
    its inputs and outputs the sum, ``sigma[t] = sigma[t-1] + a[t]``, ``out[t] = sigma[t]`` (graded),
    sigma[-1] = 0. A network's readout: its output is a value per step, not a change."""

    name: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]

    def emits_graded(self) -> bool:
        """Its output is a graded value per neuron (the decoded sum)."""
        return True


SIGMA_DELTA_FLOAT_TYPES = (DeltaEncoder, SigmaDelta, SigmaDecoder)
