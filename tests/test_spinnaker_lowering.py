"""Compiling float graphs for target 'spinnaker': mapping, sign split, design rules, CLI."""
from __future__ import annotations

import numpy as np
import pytest

from snnc.arith import spinnaker as sq
from snnc.compiler.cli import main
from snnc.compiler.pipeline import compile_graph, pass_names
from snnc.errors import DesignRuleError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input, SpinnakerPopulation
from snnc.ir.printer import format_graph
from snnc.ir.serialize import load_graph, save_graph
from snnc.simulators.aligned import predicted_classes, run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker

from conftest import DIGITS_MODEL


def _two_layer(seed=3, reset="zero", delay=0, n_hidden=7):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.2, 0.5, (n_hidden, 5))
    w2 = rng.normal(0.1, 0.6, (3, n_hidden))
    nodes = (Input("in", (5,)), Dense("s1", "in", w1),
             CubaLIF("l1", ("s1",), (n_hidden,), 0.3, 0.1, 1.0, reset=reset),
             Dense("s2", "l1", w2, delay_steps=delay), CubaLIF("l2", ("s2",), (3,), 1.0, 0.2, 0.8, reset="zero",
                                                              comparison="ge"))
    return Graph(nodes, outputs=("l2",))


def test_pass_list_is_explicit():
    names = pass_names("spinnaker")
    assert names[:4] == ["prune", "fold_synapse_bias", "check_target_semantics", "lower_spinnaker"]
    assert "check_design_rules" in names[4:]


def test_negative_weights_become_inhibitory_words_never_positive():
    graph = _two_layer()
    lowered = compile_graph(graph, "spinnaker").graph
    for syn in ("s1", "s2"):
        w = graph.node(syn).weight
        exc, inh = lowered.node(f"{syn}_exc"), lowered.node(f"{syn}_inh")
        assert (exc.receptor, inh.receptor) == ("excitatory", "inhibitory")
        assert np.all(exc.weight_word[w < 0] == 0) and np.all(inh.weight_word[w > 0] == 0)
        assert np.all((exc.weight_word > 0) | (inh.weight_word > 0) | (w == 0))


def test_lowered_ir_prints_roundtrips_and_shifts_match_the_words():
    lowered = compile_graph(_two_layer(), "spinnaker").graph
    pop = lowered.node("l1")
    assert isinstance(pop, SpinnakerPopulation) and pop.cm == pop.tau_m            # R = 1.0 exactly
    assert lowered.node("l2").tau_syn_e == lowered.node("l2").tau_syn_i == 3072     # current_decay 1: no memory
    assert pop.ring_buffer_shift == tuple(sq.ring_buffer_shift(w) for w in pop.max_summed_weight)
    text = format_graph(lowered)
    assert "%l1: SpinnakerPopulation<7> inputs=(%s1_exc, %s1_inh)" in text
    assert "%s2_inh: SpinnakerProjection<3> source=%l1" in text and "receptor='inhibitory'" in text


def test_lowered_graph_serializes(tmp_path):
    lowered = compile_graph(_two_layer(), "spinnaker").graph
    save_graph(lowered, tmp_path / "g.snnc")
    assert format_graph(load_graph(tmp_path / "g.snnc")) == format_graph(lowered)


@pytest.mark.parametrize("comparison, expected", [
    # The chip fires on V >= V_thresh (s16.15 words); the float neuron on v >= t ('ge') or v > t ('gt').
    # With S = 64 mV per unit, x = 64 t 2^15 and the smallest word passing the float test is ceil(x) for
    # 'ge' and floor(x) + 1 for 'gt'. t = 1.0: x = 2097152 exactly (a word); t = 0.7: x = 1468006.4;
    # t = 0.8: x = 1677721.6. Rounding to nearest gave 1468006 for 'ge' (a voltage 0.4 LSB below the
    # threshold fired) and 1677723 for 'gt' (the word 1677722 > x did not fire).
    ("ge", [2097152, 1468007, 1677722]),
    ("gt", [2097153, 1468007, 1677722]),
])
def test_threshold_word_is_the_first_word_passing_the_float_comparison(comparison, expected):
    nodes = (Input("in", (2,)), Dense("s", "in", np.full((3, 2), 0.1)),
             CubaLIF("p", ("s",), (3,), 1.0, 0.2, np.array([1.0, 0.7, 0.8]), reset="zero",
                     comparison=comparison))
    result = compile_graph(Graph(nodes, outputs=("p",)), "spinnaker")
    assert result.reports["lower_spinnaker"]["layers"]["p"]["voltage_scale_mv"] == 64.0      # S_CAP
    assert result.graph.node("p").v_thresh.tolist() == expected


def test_emulator_follows_the_float_reference_on_digits():
    from snnc.datasets.digits import test_spikes
    graph = load_model(DIGITS_MODEL)
    lowered = compile_graph(graph, "spinnaker").graph
    x, y = test_spikes(20, 200)
    emulated, reference = run_on_ir_grid(lowered, x, run_spinnaker), run_float(graph, x, record_state=False)
    # 16-bit weights relative to the largest summed weight (~2^-15 relative) and a decay error of 6e-6:
    # only neurons whose float v ends within ~1e-3 of the threshold can flip; measured 99.93% / 99.85%.
    for name in ("lif_1", "lif_3"):
        assert np.mean(emulated.spikes[name] == reference.spikes[name]) > 0.998
    assert np.mean(predicted_classes(emulated, "lif_3") == y) >= np.mean(predicted_classes(reference, "lif_3") == y) - 0.01


def test_unmappable_float_features_are_refused_with_node_field_limit_value():
    graph = _two_layer(reset="subtract")
    with pytest.raises(DesignRuleError) as info:
        compile_graph(graph, "spinnaker")
    assert ("node 'l1' field 'reset': spinnaker neurons set v to v_reset when they spike (IF_curr_exp; 'zero_next' "
            "holds it there one refractory tick): retrain with snnTorch reset_mechanism='zero' or SpikingJelly "
            "v_reset=0.0, or compile for loihi2 or emulator, which run 'subtract' exactly: limit zero|zero_next, "
            "got subtract") in str(info.value)


def test_delay_limits_follow_spynnaker_ring_buffer_bits():
    from snnc.targets.catalog import get_target
    spec = get_target("spinnaker")
    assert (spec.delay_support(256, 32).on_core, spec.delay_support(256, 32).needs_extension) == (32, False)
    assert spec.delay_support(256, 33).limit == 288 and spec.delay_support(256, 33).needs_extension
    rng = np.random.default_rng(0)
    # two paths: the direct one fixes p's latency, so the delayed one keeps its 288 (+1 tick) delay
    nodes = (Input("in", (4,)), Dense("s", "in", rng.normal(0.3, 0.1, (256, 4))),
             Dense("late", "in", rng.normal(0.3, 0.1, (256, 4)), delay_steps=288),
             CubaLIF("p", ("s", "late"), (256,), 1.0, 0.1, 1.0, reset="zero"))
    with pytest.raises(DesignRuleError) as info:
        compile_graph(Graph(nodes, outputs=("p",)), "spinnaker")
    assert "node 'p' field 'delay': limit <= 288 ticks (32 on core x 9 with a delay extension), got 289 ticks" \
        in str(info.value)


def test_cli_compile_run_verify_on_digits(tmp_path, capsys):
    out = tmp_path / "spin"
    assert main(["compile", str(DIGITS_MODEL), "--target", "spinnaker", "-o", str(out)]) == 0
    assert "warning" not in capsys.readouterr().out
    assert (out / "run_spinnaker.py").is_file() and (out / "spinnaker_network.npz").is_file()
    assert main(["verify", str(out), "--digits", "--samples", "4", "--no-lava"]) == 0
    assert "output 'lif_3' spike-count error vs float: 1.8% (56 float, 55 emulated spikes): within the bound" \
        in capsys.readouterr().out
    assert main(["run", str(out), "--samples", "20"]) == 0
    assert "accuracy:" in capsys.readouterr().out
    assert main(["verify", str(out), "--target", "loihi2", "--no-lava", "--samples", "2"]) == 2
    assert "was compiled for target 'spinnaker', not 'loihi2'" in capsys.readouterr().err


@pytest.mark.parametrize("decay", [0.01, 0.2, 0.5, 0.874, 0.9, 0.97, 0.999])
def test_every_decay_gets_a_tau_word_near_the_requested_decay(decay):
    """Regression: strong decays (>= 0.874) used to find no candidate quotient and crash.

    Tolerance: the chip's factor is expk(-x / 2^15) for a reachable quotient x = 2^30 // tau. Adjacent
    taus give quotients about x^2 / 2^30 apart (at least 1), so the nearest reachable x is within that
    spacing of -ln(1 - decay) * 2^15, changing the factor by at most target * spacing / 2^15; expk
    truncates by at most 2 LSB (2 / 2^15) more."""
    from snnc.lowering.spinnaker_lowering import choose_tau_word
    target = 1.0 - decay
    tau = choose_tau_word("n", "voltage_decay", target, sq.expk, sq.ONE)
    x = sq.kdivk(sq.ONE, tau)
    achieved = sq.expk(-x) / sq.ONE
    spacing = max(1.0, x * x / 2.0 ** 30) + 1
    assert abs(achieved - target) <= target * spacing / sq.ONE + 2 / sq.ONE
