"""Biased layers on SpiNNaker (issue 14, item 1): where the NEST mismatch came from, stage by stage.

The float IR, the s16.15 emulator and NEST all add a bias every tick. Two start-up phases were not modelled:
a population at pipeline latency L runs L input-free ticks before its first input (the float model starts
at its first input), and both sPyNNaker and NEST run ``TIME_OFFSET_STEPS`` ticks from PyNN time 0 before the
emulator's tick 0 (NEST one more per layer of lag). Unbiased nets were exact because v = v_rest is a fixed
point of input-free ticks; with a bias, v had drifted by the integrated bias before the first input. Now the
lowering starts each population at the voltage whose input-free ticks land on v_rest (``v_init``), and
the PyNN network starts each population where its simulator reaches that ``v_init`` (``start_voltage``).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_spikes
from snnc.arith import spinnaker as sq
from snnc.backends.spinnaker.network import TIME_OFFSET_STEPS, describe, start_voltage
from snnc.compiler.pipeline import compile_graph
from snnc.errors import QuantizationError
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker


def biased_mlp(bias_scale: float, depth: int = 3) -> Graph:
    """12 -> 20 -> 16 -> 6 with biases (nn.Linear's default), asymmetric so a wrong layer shows."""
    rng = np.random.default_rng(7)
    sizes = (12, 20, 16, 6)[: depth + 1]
    nodes, source = [Input("in", (12,))], "in"
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        nodes.append(Dense(f"s{k}", source, rng.normal(0.15, 0.45, (n_out, n_in)),
                           rng.normal(0.05, 0.05, n_out) * bias_scale))
        nodes.append(CubaLIF(f"l{k}", (f"s{k}",), (n_out,), 1.0, 0.1 + 0.05 * k, 0.8 + 0.1 * k, reset="zero"))
        source = f"l{k}"
    return Graph(tuple(nodes), outputs=(source,))


@pytest.mark.parametrize("bias_scale", [1.0, 1.5])
def test_emulator_equals_float_on_a_biased_three_layer_net(bias_scale):
    graph = biased_mlp(bias_scale)
    lowered = compile_graph(graph, "spinnaker").graph
    x = random_spikes(3, (4, 30, 12), rate=0.3)
    reference = run_float(graph, x)
    emulated = run_on_ir_grid(lowered, x, lambda g, part, record_state: run_spinnaker(g, part, record_state))
    for name in ("l0", "l1", "l2"):
        np.testing.assert_array_equal(emulated.spikes[name], reference.spikes[name], err_msg=name)
    assert np.ndim(lowered.node("l2").v_init) == 1      # per-neuron start, solved for 3 input-free ticks


def test_lowered_start_lands_on_v_rest_after_pipeline_fill():
    lowered = compile_graph(biased_mlp(1.5), "spinnaker").graph
    for name, latency in lowered.latency.items():
        if not name.startswith("l"):
            continue
        node = lowered.node(name)
        const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
        v = np.broadcast_to(np.asarray(node.v_init, np.int64), (int(np.prod(node.shape)),))
        assert np.any(v != node.v_rest)
        for _ in range(latency):
            v = sq.bias_only_update(v, node.i_offset, const, node.v_rest)
        np.testing.assert_array_equal(v, node.v_rest, err_msg=name)


def test_pynn_start_voltage_reaches_v_init_on_the_chip():
    lowered = compile_graph(biased_mlp(1.5), "spinnaker").graph
    node = lowered.node("l1")
    const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
    v = sq.encode_s1615(start_voltage(node, for_nest=False))
    for _ in range(TIME_OFFSET_STEPS):
        v = sq.bias_only_update(v, node.i_offset, const, node.v_rest)
    np.testing.assert_array_equal(v, np.broadcast_to(node.v_init, v.shape))
    spec = {p.label: p for p in describe(lowered).populations}["l1"]
    np.testing.assert_array_equal(spec.v_start, start_voltage(node, for_nest=False))


def test_a_bias_that_fires_before_the_first_input_is_refused():
    """Biases x3: some neuron of l0 (latency 1) would reach its threshold within its 1 + 2 input-free
    ticks (pipeline fill + PyNN start-up); exactness cannot hold, so the compile says so by name."""
    with pytest.raises(QuantizationError, match=r"node 'l0' field 'v_init': limit input-free start-up ticks below "
                                                r"v_thresh \(a negative bias this large.*got the bias alone "
                                                r"reaches v_thresh within the 3 input-free ticks"):
        compile_graph(biased_mlp(3.0, depth=2), "spinnaker")


@pytest.mark.parametrize("bias_scale", [0.0, 1.0, 1.5])
def test_biased_layers_verify_against_nest(bias_scale):
    """Before: biased layers left the bound by 9-27 mV (the issue measured 5.5 mV and 15.9 mV on its MLP);
    now every spike slot agrees and v stays within the derived bound."""
    pytest.importorskip("pyNN.nest")
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    lowered = compile_graph(biased_mlp(bias_scale, depth=2), "spinnaker").graph
    x = random_spikes(11, (3, 40, 12), rate=0.35)
    agreement = compare_with_nest(lowered, run_spinnaker(lowered, x), run_nest(lowered, x))
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    assert all(p.identical_fraction > 0.999 for p in agreement), "\n".join(p.line() for p in agreement)
