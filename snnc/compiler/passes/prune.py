"""Pass: one-shot global pruning of dense synapses on the float IR (``snnc.compression.pruning``).

Preserves: the graph's structure, node names, where each weight sits, and every node other than the
pruned ``Dense`` synapses and (sbc/obc bias correction) the bias of a neuron group fed by one synapse.
Changes: ``options.prune_sparsity`` of all prunable dense weights become exactly 0 (so they stay 0
through lowering); with ``sbc``/``obc`` the rest of each row (and that bias) is re-solved to keep the
surrogate membrane potential (sbc) or input current (obc) of the unpruned graph on the calibration data,
the bias kept above the target's ``pruning_bias_floor``.
The float function changes by what the report states per layer: sparsity and relative membrane error on
the calibration data. With ``prune_sparsity`` 0 (the default) nothing changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.compiler.pass_api import ANY, Pass, PassOptions, PassResult
from snnc.compression.pruning import prune_graph, report_dict
from snnc.ir.graph import Graph


@dataclass(frozen=True)
class PruneOptions(PassOptions):
    """``prune_sparsity``: global fraction of dense weights set to zero by ``prune_method`` "sbc", "obc" or
    "magnitude"; ``calibration``: input spikes (samples, steps, *input_shape) the sbc/obc corrections
    are solved on (None: no data); ``progress``: show progress bars."""

    prune_sparsity: float = 0.0
    prune_method: str = "sbc"
    calibration: np.ndarray | None = field(default=None, compare=False, repr=False)
    progress: bool = False


def run(graph: Graph, options: PruneOptions) -> PassResult:
    """Prune ``options.prune_sparsity`` of the dense weights; structure and names are preserved, the float
    function changes by the reported error. With sparsity 0 ``graph`` is returned unchanged."""
    if not options.prune_sparsity:
        return PassResult(graph, False)
    pruned, layers = prune_graph(graph, options.prune_sparsity, options.prune_method, options.calibration,
                                 options.progress, options.target.pruning_bias_floor)
    return PassResult(pruned, True, report_dict(options.prune_method, options.prune_sparsity, layers))


# Any state: only float Dense synapses are pruned (a lowered import passes through unchanged).
PASS = Pass("prune", run, PruneOptions, requires=ANY)
