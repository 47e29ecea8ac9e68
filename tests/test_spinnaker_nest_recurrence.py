"""NEST comparison of snnTorch's one-step recurrence (issue 14, item 3): RLeaky / RSynaptic feed mem[t] with
V * spk[t-1], a recurrent projection of hop delay 0 on the chip (spikes of tick n reach V at tick n + 1).
NEST adds an arriving spike to I_syn after that step's V update and its delays are >= 1 tick, so its
shortest loop takes 2 ticks: no NEST delay follows it. ``run_nest`` replays the emulator's own spikes of the
recurrent population on that projection instead (``nest_replays``), which equals the closed loop up to the
first tick where the two differ; ``verify`` reports that tick, population and neuron."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

pytest.importorskip("pyNN.nest")

from conftest import random_spikes                                                        # noqa: E402
from snnc.backends.spinnaker.commands import first_nest_divergence_line                  # noqa: E402
from snnc.backends.spinnaker.compare import compare_with_nest                             # noqa: E402
from snnc.backends.spinnaker.nest_run import run_nest                                     # noqa: E402
from snnc.backends.spinnaker.network import describe, nest_replays, nest_shift_steps     # noqa: E402
from snnc.compiler.pipeline import compile_graph                                          # noqa: E402
from snnc.errors import UnsupportedError                                                  # noqa: E402
from snnc.frontends.torch_frontend import from_torch                                      # noqa: E402
from snnc.simulators.spinnaker_emulator import run_spinnaker                              # noqa: E402
from snnc.simulators.traces import first_divergence                                       # noqa: E402
from test_spinnaker_resets import assert_emulator_equals_float                            # noqa: E402

CASES = [("RLeaky", True), ("RLeaky", False), ("RSynaptic", True), ("RSynaptic", False)]


def recurrent_model(kind: str, all_to_all: bool) -> nn.Module:
    """Linear -> snnTorch RLeaky / RSynaptic (all-to-all: a bias-free recurrent Linear, doubled so the
    recurrence moves spikes; one-to-one: V = 0.3) -> Linear -> Synaptic, reset_mechanism='zero'."""
    torch.manual_seed(4)
    common = dict(beta=0.85, threshold=0.6, reset_mechanism="zero", init_hidden=True)
    recurrence = dict(linear_features=14) if all_to_all else dict(all_to_all=False, V=0.3)
    hidden = snn.RLeaky(**recurrence, **common) if kind == "RLeaky" else \
        snn.RSynaptic(alpha=0.7, **recurrence, **common)
    if all_to_all:
        with torch.no_grad():
            hidden.recurrent.bias.zero_()
            hidden.recurrent.weight.mul_(2.0)
    return nn.Sequential(nn.Linear(10, 14, bias=False), hidden, nn.Linear(14, 4, bias=False),
                         snn.Synaptic(alpha=0.5, beta=0.9, threshold=0.5, reset_mechanism="zero", init_hidden=True))


def lowered_case(kind: str, all_to_all: bool):
    return compile_graph(from_torch(recurrent_model(kind, all_to_all), (10,)), "spinnaker").graph


@pytest.mark.parametrize("kind,all_to_all", CASES)
def test_nest_equals_the_emulator_spike_for_spike_on_one_step_recurrence(kind, all_to_all):
    graph = from_torch(recurrent_model(kind, all_to_all), (10,))
    x = random_spikes(8, (2, 40, 10), rate=0.4)
    assert_emulator_equals_float(graph, x, ("lif_1", "lif_3"), min_spikes=20)   # the chip runs the model
    lowered = compile_graph(graph, "spinnaker").graph
    replayed = nest_replays(lowered, nest_shift_steps(lowered))
    assert set(replayed) == {n for n in lowered.node("lif_1").inputs if n.startswith("rec_1")} != set()
    assert set(replayed.values()) == {1}          # played one tick early over a 1-tick NEST delay
    emulated = run_spinnaker(lowered, x)
    nest = run_nest(lowered, x, replayed=emulated)
    agreement = compare_with_nest(lowered, emulated, nest)
    lines = "\n".join(p.line() for p in agreement)
    assert all(p.ok for p in agreement), lines
    for name in ("lif_1", "lif_3"):
        np.testing.assert_array_equal(nest.spikes[name], emulated.spikes[name], err_msg=name)
    assert emulated.spikes["lif_1"].sum() > 100 and emulated.spikes["lif_3"].sum() > 20
    assert "replayed from the emulator's spikes" in agreement[0].line()
    assert first_nest_divergence_line(lowered, emulated, nest) == \
        "emulator vs NEST: identical spikes at every tick of every population"


def test_the_recurrence_changes_the_run():
    """Not vacuous: without its recurrent weights lif_1 fires differently on the same input."""
    lowered = lowered_case("RLeaky", True)
    x = random_spikes(8, (2, 40, 10), rate=0.4)
    cut = lowered.replace_nodes([dataclasses.replace(n, weight_word=np.zeros_like(n.weight_word))
                                 if n.name.startswith("rec_1") else n for n in lowered.nodes])
    assert not np.array_equal(run_spinnaker(lowered, x).spikes["lif_1"], run_spinnaker(cut, x).spikes["lif_1"])


def test_a_perturbed_recurrent_weight_is_reported_at_its_first_divergence():
    """NEST runs a network whose recurrent word from neuron 0 (26 spikes) to neuron 7 (silent) is four times
    the largest one: verify's line names the population, tick and neuron where the emulator of that perturbed
    network first leaves the emulator of the compiled one (the replayed loop equals the closed one until then)."""
    lowered = lowered_case("RLeaky", True)
    words = np.array(lowered.node("rec_1_exc").weight_word)
    words[7, 0] = 4 * words.max()
    perturbed = lowered.replace_nodes([dataclasses.replace(n, weight_word=words) if n.name == "rec_1_exc" else n
                                       for n in lowered.nodes])
    x = random_spikes(8, (2, 40, 10), rate=0.4)
    emulated = run_spinnaker(lowered, x)
    expected = first_divergence(emulated, run_spinnaker(perturbed, x), ["lif_1", "lif_3"], with_states=False)
    assert expected is not None and expected.node == "lif_1" and expected.neuron == (7,)
    line = first_nest_divergence_line(lowered, emulated, run_nest(perturbed, x, replayed=emulated))
    assert line == (f"emulator vs NEST: first spike difference at population 'lif_1', tick {expected.step}, "
                    f"sample {expected.batch}, neuron (7,): emulator {expected.expected:g}, NEST {expected.actual:g}")


def test_a_closed_loop_nest_run_is_refused_by_name():
    """`snnc run --backend nest` has no emulator spikes to replay."""
    lowered = lowered_case("RLeaky", False)
    with pytest.raises(UnsupportedError, match=r"node 'rec_1_exc' field 'delay_steps': limit >= 1 on a recurrent "
                                               r"projection for a closed-loop NEST run \(NEST applies a spike one "
                                               r"tick later than the chip; verify replays the emulator's spikes of "
                                               r"'lif_1' instead\), got 0"):
        run_nest(lowered, random_spikes(8, (1, 5, 10)))


def test_the_chip_network_keeps_its_one_tick_recurrent_projection():
    """The sPyNNaker network (and the script's NEST copy, which cannot replay) is not touched by the replay."""
    lowered = lowered_case("RSynaptic", True)
    chip = describe(lowered)
    recurrent = [p for p in chip.projections if p.label.startswith("rec_1")]
    assert recurrent and all(p.pre == "lif_1" == p.post for p in recurrent)
    assert all(np.all(p.connections[:, 3] == chip.dt_ms) for p in recurrent)
    assert set(chip.inputs) == {"input"} == set(describe(lowered, for_nest=True).inputs)
    nest = describe(lowered, for_nest=True, batch=2, replay=True)
    assert nest.inputs == {"input": 20, "rec_1_exc.replay": 28, "rec_1_inh.replay": 28}
    replays = [p for p in nest.projections if p.label.startswith("rec_1")]
    assert all(p.pre == p.label + ".replay" and np.all(p.connections[:, 3] == chip.dt_ms) for p in replays)


def test_cli_verify_reports_the_first_divergence(tmp_path, capsys):
    from snnc.compiler.cli import main
    from snnc.frontends.torch_bundle import save_bundle
    save_bundle(recurrent_model("RLeaky", True), (10,), tmp_path / "rleaky.pt")
    np.savez(tmp_path / "x.npz", x=random_spikes(8, (2, 30, 10), rate=0.4))
    out = tmp_path / "spin"
    assert main(["compile", str(tmp_path / "rleaky.pt"), "--target", "spinnaker", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--target", "spinnaker", "--input", str(tmp_path / "x.npz")]) == 0
    text = capsys.readouterr().out
    assert "recurrent input 'rec_1_exc', 'rec_1_inh' replayed from the emulator's spikes [ok]" in text
    assert "emulator vs NEST: identical spikes at every tick of every population" in text


@pytest.mark.parametrize("kind,all_to_all", [("RLeaky", True), pytest.param("RSynaptic", False,
                                                                           marks=pytest.mark.slow)])
def test_virtual_board_maps_the_recurrent_projection_as_predicted(kind, all_to_all, tmp_path):
    pytest.importorskip("spynnaker")
    from snnc.backends.spinnaker.mapping import predicted_blocks, read_population_cores
    from snnc.backends.spinnaker.spynnaker_run import run_spynnaker
    from snnc.ir.nodes import SpinnakerPopulation
    from snnc.targets.catalog import get_target
    lowered = lowered_case(kind, all_to_all)
    _, run_dir = run_spynnaker(lowered, random_spikes(1, (1, 5, 10)), tmp_path)
    spec = get_target("spinnaker")
    for node in (n for n in lowered.nodes if isinstance(n, SpinnakerPopulation)):
        for core in read_population_cores(run_dir, node.name, int(np.prod(node.shape)), spec.neurons_per_core):
            assert core.ring_buffer_shift == node.ring_buffer_shift
            predicted = predicted_blocks(lowered, node, *core.slice)
            assert len(predicted) == (2 if node.name == "lif_1" else 1)     # lif_1: the input and itself
            assert sorted(repr(sorted(b.items())) for b in core.blocks) == \
                sorted(repr(sorted(b.items())) for b in predicted), (node.name, core.slice)


@pytest.mark.parametrize("delay,early", [(2, 2), (3, 1)])
def test_a_loop_through_two_populations_is_replayed_where_no_nest_delay_follows_it(delay, early):
    """in -> a -> b -> a: the back edge b -> a (IR delay 2 or 3: hop delay 0 or 1 after a -> b's tick) needs
    a NEST delay of 1 + hop - 2 < 1 tick; its replay plays the emulator's spikes of b ``early`` ticks early."""
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import CubaLIF, Dense, Input
    rng = np.random.default_rng(5)
    nodes = (Input("in", (10,)), Dense("ia", "in", rng.normal(0.2, 0.5, (14, 10))),
             Dense("ba", "b", rng.normal(0.1, 0.5, (14, 6)), delay_steps=delay),
             CubaLIF("a", ("ia", "ba"), (14,), 1.0, 0.15, 1.0, reset="zero"),
             Dense("ab", "a", rng.normal(0.15, 0.5, (6, 14))),
             CubaLIF("b", ("ab",), (6,), 1.0, 0.1, 0.8, reset="zero"))
    lowered = compile_graph(Graph(nodes, outputs=("b",)), "spinnaker").graph
    assert nest_replays(lowered, nest_shift_steps(lowered)) == {"ba_exc": early, "ba_inh": early}
    x = random_spikes(4, (3, 40, 10), rate=0.35)
    emulated = run_spinnaker(lowered, x)
    nest = run_nest(lowered, x, replayed=emulated)
    agreement = compare_with_nest(lowered, emulated, nest)
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    for name in ("a", "b"):
        np.testing.assert_array_equal(nest.spikes[name], emulated.spikes[name], err_msg=name)
    assert emulated.spikes["b"].sum() > 100
