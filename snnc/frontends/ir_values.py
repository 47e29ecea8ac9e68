"""How names and parameter arrays read from model files become IR values (shared by the file frontends)."""
from __future__ import annotations

import numpy as np


def ir_name(key) -> str:
    """A file's node key as an IR node name: letters, digits and '_' only, not starting with a digit."""
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in str(key))
    return text if text and not text[0].isdigit() else f"n{text}"


def compact_parameter(arr) -> float | np.ndarray:
    """A per-neuron parameter as one float when every entry is equal, else a float64 copy."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size and np.all(arr == arr.reshape(-1)[0]):
        return float(arr.reshape(-1)[0])
    return arr.copy()
