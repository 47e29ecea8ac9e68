"""The graded relay: the stateless partial-sum unit of a fan-in-partitioned Loihi neuron group.

Semantics (``snnc.ir.nodes.LoihiGradedRelay``): in the step its activations arrive it emits their sum as
a graded spike, ``g[t] = wrap32(sum_i a_i[t])`` (Lava ``GradedVec`` fixed_pt with vth = 0). It only exists
in lowered graphs (``snnc.compiler.passes.partition_fanin`` creates it).
"""
from __future__ import annotations

from snnc.ir.nodes import LoihiGradedRelay
from snnc.neurons.registry import LavaProcess, NeuronModel, Traits, register


class GradedRelayModel(NeuronModel):
    """Lava ``GradedVec`` with vth = 0 (stateless, graded output)."""

    node_type = LoihiGradedRelay
    traits = Traits(output="graded", current_memory=False, arithmetic="loihi")

    def lava_process(self, node) -> LavaProcess:
        """Lava's stock GradedVec with threshold 0 (every nonzero sum is sent)."""
        return LavaProcess("lava.proc.graded.process", "GradedVec", dict(vth=0))


GRADED_RELAY = register(GradedRelayModel())
