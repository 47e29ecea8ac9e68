"""Step-based time on SpiNNaker (issue 14, item 2): one model step runs as one 1 ms tick, decays kept.

snnTorch and SpikingJelly export NIR with dt = 1e-4 s and their models are per step: the float IR holds
per-step decays, so mapping a step to a tick is exact whatever dt the model names. Before, such a graph was
refused (`field 'dt_s': limit 0.001`) and the retry with --dt 1e-3 changed beta 0.95 into 0.5 silently.
"""
from __future__ import annotations

import nir
import numpy as np
import torch

from conftest import DIGITS_MODEL
from snnc.compiler.cli import main
from snnc.compiler.commands import LOWERED_FILE, SOURCE_FILE, load_compiled_graph
from snnc.datasets import digits
from snnc.frontends.torch_bundle import load_bundle_module
from snnc.simulators.aligned import predicted_classes, run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker


def exportable(model: torch.nn.Sequential) -> torch.nn.Sequential:
    """The digits net as snnTorch's NIR tutorial writes it: per-neuron beta and threshold tensors (its
    exporter reads layer sizes from them), init_hidden, the same values."""
    import snntorch as snn
    layers = []
    for module in model:
        if isinstance(module, snn.Leaky):
            size = layers[-1].out_features
            module = snn.Leaky(beta=torch.full((size,), float(module.beta)),
                               threshold=torch.full((size,), float(module.threshold)), init_hidden=True,
                               reset_mechanism=module.reset_mechanism)
        layers.append(module)
    return torch.nn.Sequential(*layers)


def test_snntorch_nir_export_at_dt_1e4_runs_step_for_tick(tmp_path, capsys):
    from snntorch.export_nir import export_to_nir
    model, shape, _, _ = load_bundle_module(DIGITS_MODEL)
    model = exportable(model)
    path = tmp_path / "digits.nir"
    nir.write(path, export_to_nir(model, torch.zeros(1, *shape), ignore_dims=[0]))
    out = tmp_path / "out"
    assert main(["compile", str(path), "--target", "spinnaker", "--dt", "1e-4", "--reset", "zero",
                 "-o", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "time: one model step (dt 0.0001 s) = one sPyNNaker tick (1 ms), per-step decays kept exactly; the " \
           "chip runs 10x slower than the model's dt" in summary
    source, lowered = load_compiled_graph(out, SOURCE_FILE), load_compiled_graph(out, LOWERED_FILE)
    assert source.dt_s == 1e-4
    x, y = digits.test_spikes(20, None)
    reference = predicted_classes(run_float(source, x), source.outputs[0])
    emulated = predicted_classes(run_on_ir_grid(lowered, x, lambda g, part, record_state: run_spinnaker(
        g, part, record_state)), lowered.outputs[0])
    float_accuracy, chip_accuracy = np.mean(reference == y), np.mean(emulated == y)
    assert float_accuracy > 0.9
    assert chip_accuracy >= float_accuracy - 0.005, (float_accuracy, chip_accuracy)


def test_the_same_network_at_either_dt_lowers_to_the_same_chip_network(tmp_path):
    """dt only labels a step: a graph at 1e-4 s and at 1e-3 s give the same populations and projections."""
    from snnc.compiler.pipeline import compile_graph
    from snnc.frontends.torch_bundle import load_bundle
    from snnc.ir.printer import format_graph
    graph = load_bundle(DIGITS_MODEL)
    fast = compile_graph(graph.replace_nodes(graph.nodes, dt_s=1e-4), "spinnaker").graph
    slow = compile_graph(graph, "spinnaker").graph
    assert format_graph(fast).split("\n", 1)[1] == format_graph(slow).split("\n", 1)[1]
