"""Shared fixtures: small seeded networks and input spike trains."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

ROOT = Path(__file__).resolve().parents[1]
DIGITS_MODEL = ROOT / "examples" / "digits" / "digits_snn.pt"


def random_spikes(seed: int, shape, rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


@pytest.fixture
def digits_model_path() -> Path:
    return DIGITS_MODEL
