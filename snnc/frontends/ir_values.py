"""How names and parameter arrays read from model files become IR values (shared by the file frontends)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snnc.errors import ModelFieldError
from snnc.ir.graph import dt_in_range, dt_range_text


NODE_NAME_LENGTH = 100   # below snnc.ir.names.MAX_NAME_LENGTH: room for the suffixes frontends add


def ir_name(key) -> str:
    """A file's node key as an IR node name: ASCII letters, digits and '_' only, not starting with a
    digit, at most NODE_NAME_LENGTH characters (see ``snnc.ir.names``)."""
    text = "".join(c if (c.isascii() and c.isalnum()) or c == "_" else "_" for c in str(key))
    return (text if text and not text[0].isdigit() else f"n{text}")[:NODE_NAME_LENGTH]


def compact_parameter(arr) -> float | np.ndarray:
    """A per-neuron parameter as one float when every entry is equal, else a float64 copy."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.size and np.all(arr == arr.reshape(-1)[0]):
        return float(arr.reshape(-1)[0])
    return arr.copy()


def time_step_seconds(option, stored, stored_field: str, error: Callable[[str, str], ModelFieldError]) -> float:
    """The graph's ``dt_s``: the caller's ``option`` (CLI ``--dt``) when given, else the value ``stored`` in the
    file under the format's key ``stored_field``; refused outside ``DT_RANGE_S`` (1 ns to 1000 s).
    ``error(field, problem)`` builds the format's error; the field it names is where the refused value came
    from ("dt" for the option)."""
    value, field = (option, "dt") if option is not None else (stored, stored_field)
    try:
        dt = float(value)
    except (TypeError, ValueError, OverflowError):
        raise error(field, f"expected seconds, got {value!r}") from None
    if not dt_in_range(dt):
        raise error(field, f"expected seconds in {dt_range_text()}, got {dt!r}")
    return dt
