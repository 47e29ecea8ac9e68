"""The bundled digits example: float vs emulator vs Lava accuracy on the held-out split."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DIGITS_MODEL
from snnc.compiler.pipeline import compile_graph
from snnc.datasets import digits
from snnc.frontends.torch_bundle import load_bundle, load_bundle_module
from snnc.simulators.aligned import predicted_classes, run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc_torch_accuracy import snntorch_predictions


@pytest.fixture(scope="module")
def compiled():
    graph = load_bundle(DIGITS_MODEL)
    return graph, compile_graph(graph, "loihi2").graph


def test_float_ir_equals_snntorch_and_emulator_keeps_accuracy(compiled):
    """Held-out split (360 images): the float IR reproduces snnTorch's predictions exactly; the 8-bit
    emulator may lose at most 1 pp (measured: 0 pp)."""
    graph, lowered = compiled
    x, y = digits.test_spikes(20)
    float_pred = predicted_classes(run_float(graph, x, record_state=False), graph.outputs[0])
    emu_pred = predicted_classes(run_on_ir_grid(lowered, x), graph.outputs[0])
    model, *_ = load_bundle_module(DIGITS_MODEL)
    assert np.array_equal(float_pred, snntorch_predictions(model, x))
    float_acc, emu_acc = np.mean(float_pred == y), np.mean(emu_pred == y)
    assert float_acc >= 0.95
    assert emu_acc >= float_acc - 0.01
    print(f"digits held-out accuracy: float {float_acc:.4f}, emulator {emu_acc:.4f}")


@pytest.mark.lava
def test_lava_predictions_equal_emulator_on_a_subset(compiled):
    from snnc.backends.lava_loihi2.run import run_lava
    graph, lowered = compiled
    x, y = digits.test_spikes(20, 6)
    emulated = run_on_ir_grid(lowered, x, record_state=True)
    lava = run_on_ir_grid(lowered, x, run_lava, record_state=True)
    from snnc.simulators.traces import first_divergence
    assert first_divergence(emulated, lava) is None
    assert np.array_equal(predicted_classes(lava, graph.outputs[0]), predicted_classes(emulated, graph.outputs[0]))
