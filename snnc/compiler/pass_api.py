"""What every pass takes and returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snnc.ir.graph import Graph
from snnc.targets.spec import TargetSpec


@dataclass(frozen=True)
class PassOptions:
    """The target, plus compression choices; every default reproduces the uncompressed compile.

    ``calibration``: input spikes (samples, steps, *input_shape) for PTQ and pruning (None: worst-case
    scaling, no data). ``weight_bits``: Lava ``num_weight_bits`` (8 = full words). ``weight_rounding``:
    "nearest" or "sbc" (Hessian-compensated, needs calibration). ``prune_sparsity``: global fraction of
    dense weights set to zero by ``prune_method`` "sbc", "obc" or "magnitude". ``progress``: show bars.
    """

    target: TargetSpec
    calibration: Any = field(default=None, compare=False, repr=False)
    weight_bits: int = 8
    weight_rounding: str = "nearest"
    prune_sparsity: float = 0.0
    prune_method: str = "sbc"
    progress: bool = False
    # Timestep compression (snnc.compiler.passes.compress_timesteps.CompressionConfig: labelled
    # calibration inputs, error budget; `snnc compile --compress-timesteps`); None (the default) leaves
    # the timesteps and the graph unchanged.
    timestep_compression: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PassResult:
    """The new graph, whether anything changed, and a JSON-able report for `snnc report`/`compile`."""

    graph: Graph
    changed: bool
    report: dict = field(default_factory=dict)
