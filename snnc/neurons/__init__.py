"""Neuron models as units: one module per family, each model registered for its IR node type.

``model_of(node)`` returns the ``NeuronModel`` of a neuron node: its traits (output, current memory,
reset kinds and comparisons, arithmetic), float step, lowering helpers per target arithmetic, emulator
kernels and the Lava process / PyNN cell it maps to. See docs/adding-a-neuron-model.md.
"""
from snnc.neurons.registry import (
    LavaProcess, NeuronModel, Traits, float_models_lowering_to, is_neuron_in, lowered_neuron_types, model_of,
    models, register,
)
from snnc.neurons import (  # noqa: F401  (each family registers its models)
    adaptive_lif, cuba_lif, graded_relay, izhikevich, resonator, sigma_delta,
)

__all__ = ["LavaProcess", "NeuronModel", "Traits", "float_models_lowering_to", "is_neuron_in",
           "lowered_neuron_types", "model_of", "models", "register"]
