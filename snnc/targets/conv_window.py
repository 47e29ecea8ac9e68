"""What a tile of a convolution's output neurons asks of a Loihi core: input axons and weight words.

An output neuron (co, y, x) of a ``LoihiConv`` (kernel kh x kw, stride s, padding p, dilation d,
``groups``) reads the input neurons (ci, y*s - p + ky*d, x*s - p + kx*d) for the input channels ci of
its channel group and the kernel taps (ky, kx) with a non-zero weight, inside the input. On a Loihi core
every *distinct* source neuron that synapses onto a neuron of the core needs one input axon, so a core
holding a tile T of output neurons needs the axons of the *union* of their windows, not of one window
and not of the whole input layer. This module counts that union as

    axons(T) = |C(T)| x |R(T)| x |X(T)|

with C(T) the input channels any output channel of T reads through a non-zero weight, R(T) the input
rows { y*s - p + ky*d } over the output rows y in T and the used kernel rows ky (inside the input), and
X(T) the same for columns. That is exact for a tile that is a channel block times a rectangle of
positions with a dense kernel, and an upper bound otherwise (never too few axons). One neuron alone needs
``window_fan_in``: its channel group's used input channels x used kernel rows x used kernel columns
(clipped to the input) - ``in_channels / groups x kh x kw`` for a dense kernel.

Weights are shared: Loihi 2 stores a convolution's kernel once per core, not once per neuron (its
shared-weight convolutional synapse encoding; Intel, "Taking Neuromorphic Computing to the Next Level
with Loihi 2", 2021; lava-dl's mapping splits conv layers into (x, y, c) tiles, shared SEMANTICS.md), so
a tile needs the non-zero weights of its output channels' kernels as synapse words.

Tiles are consecutive neurons in (x, y, c) tile order (``tile_order``): Lava's order (every channel of
one position next to each other, then y, then x; the layout the Lava backend emits convolutions in)
within blocks of output channels whose kernels fit one core's synapse words together
(``channel_block``). A tile is then a channel block times a stripe of positions, whose windows overlap
most.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from snnc.ir.nodes import LoihiConv


@dataclass(frozen=True)
class ConvWindow:
    """Per-output-channel use of one convolution's kernel (see module docstring)."""

    name: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    channels: np.ndarray       # (C_out, C_in) bool: input channel read through a non-zero weight
    rows: np.ndarray           # (C_out, kh) bool: kernel row with a non-zero weight
    cols: np.ndarray           # (C_out, kw) bool
    words: np.ndarray          # (C_out,) non-zero weights of each output channel's kernel

    @classmethod
    def of(cls, conv: LoihiConv) -> "ConvWindow":
        """The window of ``conv`` (any dilation attribute it has is honoured)."""
        weight = np.asarray(conv.weight_mant) != 0
        c_out, c_per_group = weight.shape[:2]
        in_shape = tuple(int(v) for v in conv.in_shape)
        out_group = c_out // max(int(conv.groups), 1)
        channels = np.zeros((c_out, in_shape[0]), bool)
        for co in range(c_out):
            first = (co // out_group) * c_per_group
            channels[co, first:first + c_per_group] = weight[co].any(axis=(1, 2))
        out_shape = tuple(int(v) for v in conv.output_shape(None))
        return cls(conv.name, in_shape, out_shape, tuple(conv.stride), tuple(conv.padding),
                   tuple(getattr(conv, "dilation", (1, 1))), channels, weight.any(axis=(1, 3)),
                   weight.any(axis=(1, 2)), weight.reshape(c_out, -1).sum(axis=1).astype(np.int64))

    @property
    def neurons(self) -> int:
        """Output neurons of the convolution."""
        return int(np.prod(self.out_shape))

    def window_fan_in(self) -> int:
        """Input axons of the widest single output neuron (module docstring)."""
        if not self.words.any():
            return 0
        c_in, height, width = self.in_shape
        per_channel = (self.channels.sum(axis=1) * np.minimum(self.rows.sum(axis=1), height)
                       * np.minimum(self.cols.sum(axis=1), width))
        return int(per_channel.max())

    def tile_axons(self, neurons: np.ndarray) -> int:
        """Input axons of the tile holding output neurons ``neurons`` (flat (C, H, W) indices)."""
        return self.span_axons(TileSpan.of_neurons(self.out_shape, neurons))

    def tile_words(self, neurons: np.ndarray) -> int:
        """Synapse words of the tile: each of its output channels' kernel once (shared weights)."""
        return self.span_words(TileSpan.of_neurons(self.out_shape, neurons))

    def span_axons(self, span: "TileSpan") -> int:
        """Input axons of a tile covering ``span`` (module docstring)."""
        return int(np.prod([mask.sum() for mask in self.input_masks(span)]))

    def input_masks(self, span: "TileSpan") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The input channels, rows and columns (bool masks) a tile covering ``span`` reads; their
        product is the set of input neurons it needs axons for."""
        used = span.channels
        return (self.channels[used].any(axis=0), _touched(span.rows, self.rows[used].any(axis=0), 0, self),
                _touched(span.cols, self.cols[used].any(axis=0), 1, self))

    def input_box(self, span: "TileSpan") -> np.ndarray:
        """Flat (C, H, W) bool mask of the input neurons a tile covering ``span`` reads."""
        channels, rows, cols = self.input_masks(span)
        return (channels[:, None, None] & rows[None, :, None] & cols[None, None, :]).reshape(-1)

    def span_words(self, span: "TileSpan") -> int:
        """Synapse words of a tile covering ``span``: its output channels' kernels once each."""
        return int(self.words[span.channels].sum())


@dataclass(frozen=True)
class TileSpan:
    """The output channels, rows and columns (bool masks) a tile of convolution output neurons covers."""

    channels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    @classmethod
    def of_neurons(cls, shape: tuple[int, int, int], neurons: np.ndarray) -> "TileSpan":
        """The span of any set of flat (C, H, W) neuron indices."""
        c, h, w = shape
        masks = [np.zeros(n, bool) for n in shape]
        for mask, index in zip(masks, (neurons // (h * w), (neurons // w) % h, neurons % w)):
            mask[index] = True
        return cls(*masks)

    @classmethod
    def of_range(cls, shape: tuple[int, int, int], block: int, start: int, stop: int) -> "TileSpan":
        """The span of tile [start, stop) of ``tile_order(shape, block)``, without listing its neurons."""
        c, h, w = shape
        span = cls(np.zeros(c, bool), np.zeros(h, bool), np.zeros(w, bool))
        per_block = block * h * w
        for first in range(start // per_block * block, c, block):
            offset = first * h * w
            if offset >= stop:
                break
            size = min(block, c - first)
            lo, hi = max(start - offset, 0), min(stop - offset, size * h * w)
            _mark_wrapped(span.channels[first:first + size], lo % size, (hi - 1) % size,
                          (hi - 1) // size - lo // size)
            (x0, y0), (x1, y1) = divmod(lo // size, h), divmod((hi - 1) // size, h)
            _mark_wrapped(span.rows, y0, y1, x1 - x0)
            span.cols[x0:x1 + 1] = True
        return span


def _mark_wrapped(mask: np.ndarray, first: int, last: int, laps: int) -> None:
    """Mark a run of a cyclic index from ``first`` to ``last`` that wraps around ``laps`` times."""
    if laps == 0:
        mask[first:last + 1] = True
    elif laps == 1:
        mask[first:] = True
        mask[:last + 1] = True
    else:
        mask[:] = True


def _touched(outputs: np.ndarray, taps: np.ndarray, axis: int, window: ConvWindow) -> np.ndarray:
    """Input rows (axis 0) or columns (axis 1), as a bool mask, that the ``outputs`` mask reads through
    the used ``taps``."""
    offsets = np.flatnonzero(taps) * window.dilation[axis] - window.padding[axis]
    inputs = np.add.outer(np.flatnonzero(outputs) * window.stride[axis], offsets).ravel()
    size = window.in_shape[1 + axis]
    touched = np.zeros(size, bool)
    touched[inputs[(inputs >= 0) & (inputs < size)]] = True
    return touched


@functools.lru_cache(maxsize=32)
def tile_order(shape: tuple[int, ...], channel_block: int) -> np.ndarray:
    """Flat (C, H, W) indices in (x, y, c) tile order: blocks of ``channel_block`` output channels, each
    position-major with the block's channels of one position adjacent (Lava's order when the block is
    every channel)."""
    c, h, w = shape
    flat = np.arange(c * h * w).reshape(c, h, w)
    blocks = [flat[lo:lo + channel_block].transpose(2, 1, 0).reshape(-1) for lo in range(0, c, channel_block)]
    order = np.concatenate(blocks)
    order.flags.writeable = False     # cached: shared by every caller
    return order


def channel_block(words_per_channel: np.ndarray, synapse_words: int | None) -> int:
    """Output channels per block: all of them when their kernels fit one core's synapse words, else as
    few equal blocks as do (at least one channel)."""
    channels = int(words_per_channel.size)
    widest = int(words_per_channel.max()) if channels else 0
    if synapse_words is None or widest == 0 or int(words_per_channel.sum()) <= synapse_words:
        return max(channels, 1)
    blocks = -(-channels // max(synapse_words // widest, 1))
    return -(-channels // blocks)
