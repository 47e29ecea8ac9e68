"""Input samples for run, verify and report: an .npz the user names (``load_input_file``) or the held-out
digits (``digits_input``), checked for size before any array is allocated and typed as ``InputData``."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput


@dataclass(frozen=True)
class InputData:
    """Samples for run/verify/report: ``x`` (samples, steps, *shape) per-step inputs (0/1 spikes, or
    graded values for a static input), labels ``y``, and optionally the static ``values`` (samples,
    *shape) that ``x`` rate-codes at full scale ``levels``: a graph whose input was made static by
    ``--compress-timesteps`` (a ``GradedInput``) is given those values at every step instead."""

    x: np.ndarray
    y: np.ndarray | None = None
    values: np.ndarray | None = None
    levels: int | None = None

    def for_graph(self, graph: Graph, policy: dict | None = None) -> np.ndarray:
        """The per-step input ``graph`` takes: ``x``, or where ``--compress-timesteps`` made the input static
        (``policy``, the run-time policy the compile recorded, says ``static_input``) the static ``values``
        repeated at every step (their ``levels`` must be the compiled full scale). Any other ``GradedInput``
        (a sigma-delta .net's, one after ``--skip-layers`` dropped a sigma-delta layer, ``--input-message-bits``)
        takes its per-step integer values from ``x``."""
        static = [n for n in graph.inputs if isinstance(n, GradedInput)] if made_static(policy) else []
        if not static:
            return self.x
        from snnc.compiler.passes.compress_timesteps import static_input_levels
        expected = static_input_levels(static[0])
        if self.values is None:
            raise UnsupportedError(static[0].name, "input", f"static values: 'values' (samples, *shape) and "
                                   f"'levels' = {expected} in the --input .npz, or --digits (the input was made "
                                   "static by --compress-timesteps)", "spike trains 'x' only")
        if self.levels != expected:
            raise UnsupportedError(static[0].name, "levels", f"{expected} (the full scale the static input "
                                   "was compiled for)", self.levels)
        return np.repeat(np.asarray(self.values)[:, None], self.x.shape[1], axis=1)


def made_static(policy: dict | None) -> bool:
    """Whether the run-time policy ``--compress-timesteps`` recorded (None: none) made the input static:
    the compile's record, not the node type, tells it (a .net file's own input may be a ``GradedInput``)."""
    return bool(policy and policy.get("static_input"))


@dataclass(frozen=True)
class InputChoice:
    """Where run, verify and report take their samples: the .npz ``file`` (None: the held-out digits, rate
    coded over ``steps`` steps), the first ``samples`` of them (None: all); ``named``: the user chose the
    input (``--input`` or ``--digits``) rather than taking the default."""

    file: Path | None
    samples: int | None
    steps: int
    named: bool

    def load(self) -> InputData:
        """Read the file, or build the digits input."""
        if self.file is not None:
            return load_input_file(self.file, self.samples)
        return digits_input(self.steps, self.samples)


# Largest input read or generated for run/verify/report: samples x steps x inputs spike slots (uint8, 128 MiB;
# the digits rate code needs 8 bytes per slot while it is built, the emulator records more per layer).
MAX_INPUT_SLOTS = 2 ** 27


def load_input_file(path: Path, samples: int | None) -> InputData:
    """``x`` and the optional ``y``, ``values`` and ``levels`` of an .npz (see ``InputData``). The sizes
    declared in the file are checked against ``MAX_INPUT_SLOTS`` before any array is read."""
    if not path.is_file():
        raise ModelFileError(str(path), "no such file")
    try:
        if not zipfile.is_zipfile(path):
            raise ModelFileError(str(path), "expected an .npz (a zip of arrays) with array 'x' (and optional "
                                 "'y'); save with np.savez(path, x=..., y=...)")
        with np.load(path, allow_pickle=False) as data:
            _check_input_size(path, _declared_shape(path, data, "x"))
            x = data["x"]
            if x.ndim < 2:
                raise ModelFileError(str(path), f"'x' must be (samples, steps, *shape), got {x.ndim}-D shape "
                                     f"{x.shape}")
            x = x[:samples]
            y = data["y"][:samples] if "y" in data.files else None
            values, levels = _static_values(path, data, samples)
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        raise ModelFileError(str(path), f"expected an .npz with array 'x' (and optional 'y'): {exc}") from None
    if 0 in x.shape[:2]:
        raise ModelFileError(str(path), f"'x' must be (samples, steps, *shape) with samples, steps >= 1, got "
                             f"shape {x.shape}")
    _check_labels(path, x, y)
    if values is not None and len(values) != len(x):
        raise ModelFileError(str(path), f"'values' has {len(values)} static inputs for {len(x)} samples in 'x'")
    return InputData(x, y, values, levels)


def _declared_shape(path: Path, data, key: str) -> tuple[int, ...]:
    """The shape an .npz member declares in its header, read without reading the array."""
    if key not in data.files:
        raise ModelFileError(str(path), f"expected an .npz with array '{key}' (and optional 'y'); it holds "
                             f"{sorted(data.files)}")
    with data.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(reader(member)[0])


def _check_input_size(source, shape: tuple[int, ...]) -> None:
    """Refuse an input of more than ``MAX_INPUT_SLOTS`` values before it is allocated."""
    slots = int(np.prod(shape, dtype=object))
    if slots > MAX_INPUT_SLOTS:
        raise SnncError(f"input {source}: {' x '.join(map(str, shape))} = {slots} values exceed the cap of "
                        f"{MAX_INPUT_SLOTS} (samples x steps x inputs); use fewer --samples or --steps")


def _check_labels(path: Path, x: np.ndarray, y: np.ndarray | None) -> None:
    """Labels: one integer class per sample; a count equal to x's steps names the swapped axes."""
    if y is None:
        return
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ModelFileError(str(path), f"'y' must be one integer label per sample (1-D), got {y.dtype} "
                             f"shape {y.shape}")
    if len(y) != len(x):
        swapped = (f"; 'x' has {x.shape[1]} steps: are its axes (steps, samples)? snnc reads 'x' as "
                   "(samples, steps, *shape)") if len(y) == x.shape[1] else ""
        raise ModelFileError(str(path), f"'y' has {len(y)} labels for {len(x)} samples in 'x'{swapped}")


def _static_values(path: Path, data, samples: int | None) -> tuple[np.ndarray | None, int | None]:
    """Optional 'values' (static inputs) and 'levels' (their rate code's full scale): both or neither."""
    given = [name for name in ("values", "levels") if name in data.files]
    if not given:
        return None, None
    if len(given) == 1:
        other = "levels" if given[0] == "values" else "values"
        raise ModelFileError(str(path), f"'{given[0]}' needs '{other}' too (static inputs and their rate "
                             "code's full scale)")
    levels = data["levels"]
    if levels.ndim != 0 or levels.dtype.kind not in "iu":
        raise ModelFileError(str(path), f"'levels' must be one integer, got {levels.dtype} {levels.shape}")
    return data["values"][:samples], int(levels)


def digits_input(steps: int, samples: int | None) -> InputData:
    """The held-out digits: rate-coded spikes, and the pixels for a static-input artifact."""
    from snnc.datasets.digits import PIXEL_MAX, test_pixels, test_spikes
    pixels = test_pixels(samples)
    _check_input_size(f"--digits --steps {steps}", (len(pixels), steps, *pixels.shape[1:]))
    x, y = test_spikes(steps, samples)
    return InputData(x, y, pixels, PIXEL_MAX)
