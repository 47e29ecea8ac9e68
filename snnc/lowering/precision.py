"""Weights a target's integer format loses: nonzero float weights that round to 0, per synapse.

A layer's relative RMS weight error hides this when one large weight dominates the norm: one outlier
(1e4 among weights near 0.6) sets the scale, every other weight rounds to 0 and the RMS error is 0.18%.
So both lowerings (Loihi, SpiNNaker) count, per synapse node, the nonzero float weights whose integer
weight is 0, and warn above ``ZEROED_WARNING_FRACTION``.

Why 10%: nearest rounding of a healthy, bell-shaped trained layer zeroes only the weights below half a
word step. On the bundled digits network that is 1.6% (syn_0) and 2.2% (syn_2) of the nonzero weights in
Loihi's 8-bit words and at most 0.2% in SpiNNaker's 16-bit words. 10% is about five times that, so the
warning stays quiet on ordinary 8-bit quantization, while a layer whose range is set by an outlier
(99% zeroed in the example above) or words too narrow for its spread of magnitudes is named.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ZEROED_WARNING_FRACTION = 0.10


@dataclass(frozen=True)
class ZeroedWeights:
    """Of a synapse's ``nonzero`` float weights, ``zeroed`` have integer weight 0; ``largest_abs`` (at
    ``largest_index``; ``largest_kept``: its integer weight is not 0) and ``median_abs`` are over the
    nonzero float weights."""

    nonzero: int
    zeroed: int
    largest_abs: float
    largest_index: tuple[int, ...]
    median_abs: float
    largest_kept: bool = True

    @property
    def fraction(self) -> float:
        """Zeroed weights as a fraction of the nonzero float weights (0 when there are none)."""
        return self.zeroed / self.nonzero if self.nonzero else 0.0

    def as_dict(self) -> dict:
        """The counts and magnitudes as a JSON-able dict."""
        return {"nonzero": self.nonzero, "zeroed": self.zeroed, "fraction": self.fraction,
                "largest_abs": self.largest_abs, "largest_index": list(self.largest_index),
                "median_abs": self.median_abs, "largest_kept": self.largest_kept}


def zeroed_weights(weight, restored) -> ZeroedWeights:
    """Count the nonzero entries of ``weight`` (float) whose ``restored`` (integer weight in float
    units, same shape) is 0."""
    weight, restored = np.asarray(weight, np.float64), np.asarray(restored, np.float64)
    nonzero = weight != 0
    if not nonzero.any():
        return ZeroedWeights(0, 0, 0.0, (), 0.0)
    magnitude = np.abs(weight)
    largest = tuple(int(i) for i in np.unravel_index(int(np.argmax(magnitude)), weight.shape))
    return ZeroedWeights(int(np.count_nonzero(nonzero)), int(np.count_nonzero(nonzero & (restored == 0))),
                         float(magnitude[largest]), largest, float(np.median(magnitude[nonzero])),
                         bool(restored[largest] != 0))


def zeroed_warning(synapse: str, counts: ZeroedWeights, word: str, finer: str = "",
                   scale_set_by: str = "") -> str | None:
    """The warning for a synapse that loses more than ``ZEROED_WARNING_FRACTION`` of its nonzero weights
    (None below it); ``word`` names the integer format, e.g. "Loihi 8-bit weights", ``finer`` the
    target's options for finer words (e.g. "more weight bits"), ``scale_set_by`` what sets the layer's
    scale and how to change it, said when even the largest weight rounds to 0 (empty: the threshold, bias
    or summed input of a scaled-threshold group)."""
    if counts.fraction <= ZEROED_WARNING_FRACTION:
        return None
    index = ", ".join(str(i) for i in counts.largest_index)
    ratio = counts.largest_abs / counts.median_abs
    return (f"{synapse}: {counts.zeroed} of {counts.nonzero} nonzero weights ({counts.fraction:.1%}) round to 0 "
            f"in {word} (warning above {ZEROED_WARNING_FRACTION:.0%}); the largest |w| {counts.largest_abs:.4g} "
            f"at [{index}] is {ratio:.3g}x the median nonzero |w| {counts.median_abs:.4g}"
            f"{_advice(counts, finer, scale_set_by)}")


def _advice(counts: ZeroedWeights, finer: str, scale_set_by: str = "") -> str:
    """What to do: the median weight lost while the largest is kept means the largest weights set the
    scale (an outlier); fewer than half lost means the words are too coarse for the layer's spread."""
    if not counts.largest_kept and scale_set_by:
        return f": even it rounds to 0, so the scale is set by {scale_set_by}"
    if not counts.largest_kept:
        return (": even it rounds to 0, so the scale is set by the threshold, bias, summed input or another "
                "synapse, not by these weights; lower the threshold or bias, or scale these weights up")
    if counts.fraction > 0.5:
        return (" and sets the scale: clip it (and outliers like it), or retrain with weight clipping so the "
                "layer's weights fit the word range")
    return (": the words are too coarse for this spread; " + (f"use {finer}, " if finer else "")
            + "clip the largest weights, or retrain with weight clipping")

