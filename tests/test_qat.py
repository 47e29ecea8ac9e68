"""QAT: the fine-tuned model compiles (``snnc compile``, from its saved bundle) to exactly the network it
was trained as; gradients are straight-through and masked where the hardware saturates.

Training runs 1 epoch on 256 training samples (~3 s): enough to move weights (asserted) and to check
exactness; the accuracy of longer runs is measured by benchmarks/compression.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from snnc.compiler.commands import compile_model
from snnc.compression.pruning import prune_graph
from snnc.datasets.digits import digits_split, rate_encode
from snnc.errors import UnsupportedError
from snnc.frontends.torch_bundle import load_bundle_module, save_bundle
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, CubaLIF, Dense, Input
from snnc.ir.serialize import load_graph
from snnc.simulators.aligned import predicted_classes, run_on_ir_grid
from snnc.targets.catalog import LOIHI2
from snnc.training.qat import QatNetwork, count_loss, predict, qat

STEPS = 20


@pytest.fixture(scope="module")
def digits():
    x_train, x_test, y_train, y_test = digits_split()
    return rate_encode(x_train[:256], STEPS), y_train[:256], rate_encode(x_test, STEPS), y_test


@pytest.mark.parametrize("bits", [8, 4])
def test_compiled_qat_model_reproduces_the_trained_network_on_the_test_split(bits, digits, digits_model_path,
                                                                           tmp_path):
    """Issue contract: after QAT, `snnc compile` -> emulator == the QAT model, spike for spike, on all 360
    held-out digits (here with 4-bit words and PTQ calibration, the options QAT was run with)."""
    x_train, y_train, x_test, y_test = digits
    model, shape, _, _ = load_bundle_module(digits_model_path)
    before = model[0].weight.detach().clone()
    result = qat(model, (x_train, y_train), "emulator", epochs=1, weight_bits=bits, calibration=x_train[:128])
    assert torch.equal(model[0].weight, before), "qat must not modify its input model"
    assert not torch.equal(result.model[0].weight, before), "training did not move the weights"
    spikes, classes = predict(result.network, x_test)
    save_bundle(result.model, shape, tmp_path / "qat.pt", name="digits_qat")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=x_train[:128])
    compile_model(tmp_path / "qat.pt", "emulator", tmp_path / "out",
                  compression={"weight_bits": bits, "calibration": np.load(calib)["x"]})
    lowered = load_graph(tmp_path / "out" / "lowered.snnc")
    emulated = run_on_ir_grid(lowered, x_test)
    assert np.array_equal(emulated.spikes["lif_3"], spikes)
    assert np.array_equal(predicted_classes(emulated, "lif_3"), classes)
    assert spikes.sum() > 1000 and np.mean(classes == y_test) > 0.95   # a working network (measured ~0.97)


def test_gradients_pass_straight_through_and_stop_where_words_saturate(digits):
    """Forcing one weight far beyond the largest word (it saturates) zeroes its gradient; in-range
    weights get gradient through the integer network."""
    x_train, y_train, _, _ = digits
    rng = np.random.default_rng(0)
    graph = Graph((Input("x", (64,)), Dense("d1", "x", rng.normal(0.05, 0.2, (32, 64))),
                   CubaLIF("h", ("d1",), (32,), current_decay=1.0, voltage_decay=0.1, threshold=1.0, reset="zero"),
                   Dense("d2", "h", rng.normal(0.05, 0.3, (10, 32))),
                   CubaLIF("o", ("d2",), (10,), current_decay=1.0, voltage_decay=0.1, threshold=1.0,
                           reset="zero")),
                  outputs=("o",), name="small")
    network = QatNetwork(graph, "emulator", weight_bits=4, calibration=x_train[:64])
    with torch.no_grad():
        network.param("d1")[0, 0] = 50.0        # ~100x the others: calibrated scaling clips it
    network.replan()
    loss = count_loss(network(x_train[:64])["o"], torch.as_tensor(y_train[:64]))
    loss.backward()
    grad = network.param("d1").grad
    assert grad[0, 0] == 0.0
    assert torch.count_nonzero(grad) > grad.numel() // 4


def test_qat_of_a_pruned_graph_keeps_its_zeros(digits):
    x_train, y_train, _, _ = digits
    from conftest import DIGITS_MODEL
    from snnc.frontends.loader import load_model
    pruned, _ = prune_graph(load_model(DIGITS_MODEL), 0.8, "sbc", x_train[:128],
                            bias_floor=LOIHI2.pruning_bias_floor)
    result = qat(pruned, (x_train, y_train), "emulator", epochs=1)
    for name in ("syn_0", "syn_2"):
        zero = pruned.node(name).weight == 0
        assert np.all(result.model.node(name).weight[zero] == 0)
        assert not np.array_equal(result.model.node(name).weight[~zero], pruned.node(name).weight[~zero])


def test_qat_refuses_what_it_cannot_train_exactly():
    graph = Graph((Input("x", (1, 4, 4)), Conv2d("c", "x", np.ones((2, 1, 3, 3)), in_shape=(1, 4, 4)),
                   CubaLIF("n", ("c",), (2, 2, 2), current_decay=1.0, voltage_decay=0.1, threshold=1.0,
                           reset="zero")), outputs=("n",))
    with pytest.raises(UnsupportedError, match=r"^node 'c' field 'type': limit Input, Flatten, Dense, CubaLIF or "
                                               r"LI for QAT, got Conv2d$"):
        QatNetwork(graph, "emulator")


def test_qat_for_a_target_without_loihi_arithmetic_is_refused():
    import snntorch as snn
    from torch import nn
    from snnc.errors import UnsupportedError
    from snnc.training.qat import QatNetwork
    model = nn.Sequential(nn.Linear(4, 3, bias=False), snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero"))
    with pytest.raises(UnsupportedError, match="field 'target': limit a target lowered with Loihi arithmetic "
                                               r"\(loihi2, emulator\), got spinnaker"):
        QatNetwork.from_model(model, (4,), target="spinnaker")
