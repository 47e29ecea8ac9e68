"""scikit-learn's 8x8 digits (1,797 images, shipped with scikit-learn, no download) as spike trains."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

PIXEL_MAX = 16
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test): pixels 0..16 as (n, 64) int, fixed stratified 80/20 split."""
    data = load_digits()
    return train_test_split(data.data.astype(np.int64), data.target.astype(np.int64),
                            test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=data.target)


def rate_encode(pixels: np.ndarray, steps: int) -> np.ndarray:
    """Deterministic rate code: pixel p fires at step t iff floor((t+1) p / 16) > floor(t p / 16).

    A pixel of value p fires floor(steps * p / 16) times, evenly spread; no randomness, so every
    simulator sees identical input. Returns (n, steps, 64) uint8.
    """
    t = np.arange(steps + 1)[None, :, None]
    counts = (t * np.asarray(pixels)[:, None, :]) // PIXEL_MAX
    return (np.diff(counts, axis=1) > 0).astype(np.uint8)


def test_pixels(samples: int | None = None) -> np.ndarray:
    """The held-out pixels 0..16 (the first ``samples``), (n, 64) int: static inputs at full scale 16."""
    return digits_split()[1][:samples]


def test_spikes(steps: int, samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out spike trains and labels (the first ``samples`` of the test split)."""
    _, x_test, _, y_test = digits_split()
    x_test, y_test = x_test[:samples], y_test[:samples]
    return rate_encode(x_test, steps), y_test
