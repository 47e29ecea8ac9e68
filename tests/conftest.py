"""Shared fixtures: small seeded networks and input spike trains."""
from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
DIGITS_MODEL = ROOT / "examples" / "digits" / "digits_snn.pt"


def random_spikes(seed: int, shape, rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


@contextlib.contextmanager
def time_limit(seconds: int, what: str = "the import"):
    """Fail with TimeoutError instead of hanging (a malformed model once made an import loop forever)."""
    def expire(*_):
        raise TimeoutError(f"{what} ran longer than {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def digits_model_path() -> Path:
    return DIGITS_MODEL


@pytest.fixture(scope="module")
def slayer():
    """lava-dl's slayer package (imported through the Lava backend's compatibility shim); skips where the
    machine has no lava-dl."""
    from snnc.errors import SnncError
    try:
        from snnc.backends.lava_loihi2.compat import import_lava
        import_lava(dl=True)
    except SnncError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    import lava.lib.dl.slayer as slayer
    return slayer
