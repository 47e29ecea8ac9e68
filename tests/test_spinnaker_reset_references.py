"""Every neuron the SpiNNaker target accepts against the two references (issue 14, item 4): the s16.15
emulator against the emitted PyNN network on NEST (iaf_psc_exp; t_ref = 1 ms holds V for the same one step
as sPyNNaker's refractory timer), and the words a sPyNNaker 7.4.1 virtual board writes into each core's
``neuron_params`` against the lowered population (tau_refrac 0 for 'zero', 1 ms for 'zero_next').

Neurons: hand-built CubaLIF groups with each accepted reset, and snnTorch's own Leaky / Synaptic / RLeaky
(reset_mechanism='zero') through the torch frontend (fixtures in tests/test_spinnaker_resets.py)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import random_spikes
from snnc.arith import spinnaker as sq
from snnc.compiler.pipeline import compile_graph
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import Dense, SpinnakerPopulation
from snnc.simulators.spinnaker_emulator import run_spinnaker
from test_spinnaker_resets import SNNTORCH_KINDS, snntorch_model, two_layer



def recurrent_zero_next() -> Graph:
    """two_layer('zero_next') with a 2-step recurrent projection on l2 (NEST follows it: one spare tick)."""
    graph = two_layer("zero_next")
    rng = np.random.default_rng(9)
    nodes = [n if n.name != "l2" else dataclasses.replace(n, inputs=n.inputs + ("rec",)) for n in graph.nodes]
    nodes.insert(-1, Dense("rec", "l2", rng.normal(0.1, 0.4, (5, 5)), delay_steps=2))
    return Graph(tuple(nodes), outputs=("l2",))


ACCEPTED = {"zero": lambda: two_layer("zero"), "zero_next": lambda: two_layer("zero_next"),
            "zero_next_recurrent": recurrent_zero_next,
            **{f"snntorch_{kind}": (lambda kind=kind: from_torch(snntorch_model(kind), (10,)))
               for kind in SNNTORCH_KINDS}}


# snnTorch RLeaky feeds its spikes back at the next step: a one-tick recurrent projection, which NEST (it
# applies a spike one tick later than the chip) follows with the emulator's spikes replayed on it
# (tests/test_spinnaker_nest_recurrence.py).
@pytest.mark.parametrize("case", list(ACCEPTED))
def test_emulator_agrees_with_nest(case):
    pytest.importorskip("pyNN.nest")
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    lowered = compile_graph(ACCEPTED[case](), "spinnaker").graph
    x = random_spikes(8, (2, 40, 10), rate=0.4)
    emulated = run_spinnaker(lowered, x)
    agreement = compare_with_nest(lowered, emulated, run_nest(lowered, x, replayed=emulated))
    lines = "\n".join(p.line() for p in agreement)
    assert len(agreement) == 2 and all(p.ok for p in agreement), lines
    assert all(p.identical_fraction > 0.999 and p.spikes_emulator > 10 for p in agreement), lines


@pytest.mark.parametrize("case", ["zero_next", pytest.param("zero", marks=pytest.mark.slow),
                                  pytest.param("snntorch_Synaptic", marks=pytest.mark.slow)])
def test_virtual_board_writes_the_predicted_neuron_words(case, tmp_path):
    pytest.importorskip("spynnaker")
    from snnc.backends.spinnaker.mapping import predicted_neuron_words, read_neuron_words
    from snnc.backends.spinnaker.network import start_voltage
    from snnc.backends.spinnaker.spynnaker_run import run_spynnaker
    lowered = compile_graph(ACCEPTED[case](), "spinnaker").graph
    _, run_dir = run_spynnaker(lowered, random_spikes(1, (1, 5, 10)), tmp_path)
    expected_ticks = 0 if case == "zero" else 1
    for node in (n for n in lowered.nodes if isinstance(n, SpinnakerPopulation)):
        v_start = sq.encode_s1615(start_voltage(node, for_nest=False))
        for (lo, hi), words in read_neuron_words(run_dir, node.name):
            predicted = predicted_neuron_words(node, v_start, lo, hi, sq.ONE)
            assert set(words) == set(predicted)
            for field, values in predicted.items():
                np.testing.assert_array_equal(words[field], values, err_msg=f"{node.name}.{field}")
            refractory = {sq.lif_constants(node.tau_m, node.cm, int(t), node.tau_syn_e, node.tau_syn_i).t_refract
                          for t in words["tau_refrac"]}
            assert refractory == {expected_ticks if node.name != "lif_3" else 1}, node.name
