"""snnTorch's own predictions (spike counts) for a Sequential, in float64 (test helper)."""
from __future__ import annotations

import numpy as np

from snntorch_runner import run_snntorch


def snntorch_predictions(model, x: np.ndarray) -> np.ndarray:
    spikes = run_snntorch(model, x)
    last = list(spikes)[-1]
    return spikes[last].sum(axis=1).argmax(axis=1)
