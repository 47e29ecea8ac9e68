"""Energy per event of a target, for *estimates* in ``snnc report`` (values live in ``catalog.py``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnergyModel:
    """Joules per synaptic operation, per neuron (compartment) update and per spike message within one
    core / between cores (one mesh hop assumed); ``source`` names where the numbers come from."""

    synop_j: float
    neuron_update_j: float
    message_intra_core_j: float
    message_inter_core_j: float
    source: str
