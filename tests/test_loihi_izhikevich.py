"""Izhikevich on Loihi arithmetic (issue 11 item 5): snnc's fixed-point step (``snnc.arith.loihi_izhikevich``)
is a plain-integer transcription of its documented equations; the emulator equals real Lava running snnc's
``SnncIzhikevich`` process (fixed_pt) spike for spike and i, v, u for every step; from every recorded
fixed-point state the float model's Euler step lands within the derived rounding bound; what cannot be
bounded or represented is refused at compile time with a message naming node, field, limit and value."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import random_spikes
from snnc.arith import loihi_izhikevich as lz
from snnc.compiler.pipeline import compile_graph
from snnc.errors import QuantizationError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Dense, Input, Izhikevich, LoihiDense, LoihiIzhikevich
from snnc.ir.serialize import load_graph, save_graph
from snnc.neurons import model_of
from snnc.simulators.float_reference import run_float
from snnc.simulators.loihi_emulator import run_loihi

N_IN, N, N2 = 8, 12, 6
K = lz.COEFF_FRAC_BITS
LIMIT = lz.STATE_LIMIT


def izhikevich_graph(seed: int = 3, comparison: str = "ge", two_layers: bool = False, **params) -> Graph:
    rng = np.random.default_rng(seed)
    neuron = dict(a=0.02, b=0.2, c=-65.0, d=8.0, bias=rng.uniform(0.0, 6.0, N), comparison=comparison)
    neuron.update(params)
    nodes = [Input("in", (N_IN,)), Dense("syn", "in", rng.normal(4.0, 6.0, (N, N_IN))),
             Izhikevich("iz", ("syn",), (N,), **neuron)]
    if two_layers:
        nodes += [Dense("syn2", "iz", rng.normal(6.0, 8.0, (N2, N))),
                  Izhikevich("iz2", ("syn2",), (N2,), a=0.1, b=0.2, c=-65.0, d=2.0, bias=3.0, current_decay=0.3,
                             comparison=comparison)]
    return Graph(tuple(nodes), outputs=(nodes[-1].name,))


# --- the arithmetic --------------------------------------------------------------------------------------

def rtz(x: int, bits: int) -> int:
    return -((-x) >> bits) if x < 0 else x >> bits


def sat(x: int) -> int:
    return max(-LIMIT, min(LIMIT, x))


def plain_step(i, v, u, activation, w, s, ge):
    """The module docstring's step with Python integers (>> floors) for one neuron: (i, v, u, spiked)."""
    i = sat(rtz(i * (4096 - w["di"]), 12) + (activation << 6))
    slope = w["k1"] + ((w["k2"] * v) >> s)
    dv = ((slope * v) >> K) + w["k0"] - u + i + w["bias"]
    v_new = sat(v + ((w["hk"] * dv) >> K))
    u_new = sat(u + ((w["ahk"] * (((w["bk"] * v) >> K) - u)) >> K))
    spiked = v_new >= w["vth"] if ge else v_new > w["vth"]
    return (i, w["c"], sat(u_new + w["d"]), True) if spiked else (i, v_new, u_new, False)


def neuron_words(node: LoihiIzhikevich, index: int) -> dict:
    return {k: int(np.reshape(getattr(node, k), -1)[index if np.size(getattr(node, k)) > 1 else 0])
            for k in lz.WORD_FIELDS}


def activations(dense: LoihiDense, x: np.ndarray) -> np.ndarray:
    """Lava Dense's activation per step (steps, n): the previous step's spikes through the words, the
    exponent applied to the sum."""
    total = np.zeros((x.shape[0], dense.weight_mant.shape[0]), np.int64)
    total[1:] = x[:-1].astype(np.int64) @ np.asarray(dense.weight_mant, np.int64).T
    return total << dense.weight_exp if dense.weight_exp >= 0 else total >> -dense.weight_exp


def test_emulator_is_the_documented_integer_step():
    """Per-neuron a and d, a decaying current, '>' and the one hold step of the pipeline fill."""
    graph = izhikevich_graph(seed=4, comparison="gt", a=np.linspace(0.02, 0.1, N), d=np.linspace(2.0, 8.0, N),
                             current_decay=0.4)
    lowered = compile_graph(graph, "emulator").graph
    node, dense = lowered.node("iz"), lowered.node("syn")
    assert node.hold_steps == 1 and np.ndim(node.ahk) == 1 and node.di == round(0.4 * 4096)
    x = random_spikes(9, (2, 60, N_IN), rate=0.3)
    traces = run_loihi(lowered, x, engine="step")
    assert traces.spikes["iz"].sum() > 40
    for sample in range(2):
        act = activations(dense, x[sample])
        for n in range(N):
            w = neuron_words(node, n)
            i, v, u = 0, int(np.reshape(node.v_init, -1)[0]), int(np.reshape(node.u_init, -1)[0])
            for t in range(60):
                spiked = False
                if t >= node.hold_steps:
                    i, v, u, spiked = plain_step(i, v, u, int(act[t, n]), w, node.frac_bits, ge=False)
                recorded = tuple(int(traces.states["iz"][k][sample, t, n]) for k in ("i", "v", "u"))
                assert (i, v, u, spiked) == (*recorded, bool(traces.spikes["iz"][sample, t, n])), (sample, n, t)


def test_any_24_bit_state_steps_exactly_as_the_plain_integers():
    """Across the whole 24-bit state range (saturation included) the int64 arithmetic never overflows:
    the compiled words keep every product below 2^63 (``product_bound``)."""
    node = compile_graph(izhikevich_graph(seed=8, a=np.linspace(0.02, 0.1, N), current_decay=0.3), "emulator").graph.node("iz")
    rng = np.random.default_rng(0)
    states = rng.integers(-LIMIT, LIMIT + 1, (3, 400, N))
    states[:, :8] = np.array([-LIMIT, LIMIT, 0, -1, 1, LIMIT - 1, -LIMIT + 1, node.vth])[None, :, None]
    activation = rng.integers(-(1 << 16), 1 << 16, (400, N))
    words = {k: np.broadcast_to(np.asarray(getattr(node, k)).reshape(-1), (N,)) if np.ndim(getattr(node, k))
             else getattr(node, k) for k in lz.WORD_FIELDS}
    i, v, u, _, spikes = lz.izhikevich_update(states[0], states[1], states[2], activation, words, node.frac_bits, True)
    assert lz.product_bound(words, node.frac_bits, 1 << 16) < 2 ** 63
    for row in range(400):
        for n in range(N):
            expected = plain_step(*(int(states[k, row, n]) for k in range(3)), int(activation[row, n]),
                                  neuron_words(node, n), node.frac_bits, ge=True)
            assert expected == (int(i[row, n]), int(v[row, n]), int(u[row, n]), bool(spikes[row, n])), (row, n)
    assert np.any(np.abs(v) == LIMIT) or np.any(np.abs(u) == LIMIT)


def test_step_and_layerwise_engines_agree():
    lowered = compile_graph(izhikevich_graph(seed=5, two_layers=True, current_decay=0.5), "emulator").graph
    x = random_spikes(6, (3, 50, N_IN), rate=0.35)
    a, b = run_loihi(lowered, x, engine="step"), run_loihi(lowered, x, engine="layerwise")
    for name in ("iz", "iz2"):
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
        for var in ("i", "v", "u"):
            np.testing.assert_array_equal(a.states[name][var], b.states[name][var])


# --- emulator == real Lava ---------------------------------------------------------------------------------

@pytest.mark.lava
def test_emulator_equals_real_lava_running_snnc_izhikevich():
    """One group, per-neuron a, '>=': Lava 0.10 fixed_pt runs snnc's SnncIzhikevich (not a stock process)."""
    from snnc.backends.lava_loihi2.run import run_lava
    result = compile_graph(izhikevich_graph(a=np.linspace(0.02, 0.1, N), current_decay=0.5), "loihi2")
    lowered = result.graph
    process = model_of(lowered.node("iz")).lava_process(lowered.node("iz"))
    assert (process.module, process.name, process.stock) == \
        ("snnc.backends.lava_loihi2.processes.izhikevich", "SnncIzhikevich", False)
    assert result.reports["lower_loihi"]["snnc_processes"] == {"iz": "SnncIzhikevich (fixed-point Izhikevich, "
                                                                      "forward Euler; v, u at 2^-14 mV in 24 bits, comparison ge)"}
    x = random_spikes(1, (1, 60, N_IN), rate=0.3)
    emulated, lava = run_loihi(lowered, x), run_lava(lowered, x)
    assert emulated.spikes["iz"].sum() > 40
    np.testing.assert_array_equal(emulated.spikes["iz"], lava.spikes["iz"])
    for var in ("i", "v", "u"):
        np.testing.assert_array_equal(emulated.states["iz"][var], lava.states["iz"][var], err_msg=var)


@pytest.mark.lava
@pytest.mark.slow
def test_two_layer_network_verifies_against_real_lava_and_the_float_model(tmp_path):
    """`snnc.verify` on a compiled two-layer Izhikevich network: emulator == Lava (spikes, i, v, u), float
    agreement within the verify bounds; the second group holds for its two pipeline-fill steps."""
    import snnc
    graph = izhikevich_graph(seed=7, two_layers=True, comparison="gt", d=np.linspace(2.0, 8.0, N))
    result = snnc.compile(graph, target="loihi2", out=tmp_path / "out")
    assert result.graph.node("iz2").hold_steps == 2
    x = random_spikes(8, (2, 50, N_IN), rate=0.35)
    check = snnc.verify(result, x)
    assert check.ok, check.text
    assert "emulator vs Lava fixed_pt: identical spikes, i, v and u at every step for every node" in check.text


# --- float model vs fixed point ----------------------------------------------------------------------------

def euler_bound(v, u, dv, du, words_lsb: float, h: float, ha):
    """Largest |fixed - float| of one step from the same state (mV, mV/ms). Words of 2^-24 (k2, k1, hk, ahk,
    bk) are off by <= q/2 (q = 2^-24), words of 2^-S (k0, bias) by <= lsb/2, each floor by one unit:
    slope = k1 + k2 v: e_s = q/2 (1 + |v|) + q; dv: e_dv = |v| e_s + lsb (floor) + lsb (k0, bias);
    v' = v + h dv: h e_dv + q/2 (|dv| + e_dv) + lsb; u' = u + h a (b v - u): e_du = |v| q/2 + lsb,
    h a e_du + q/2 (|du| + e_du) + lsb."""
    q, lsb = 2.0 ** -K, words_lsb
    e_slope = q / 2 * (1 + np.abs(v)) + q
    e_dv = np.abs(v) * e_slope + 2 * lsb
    e_du = np.abs(v) * q / 2 + lsb
    return h * e_dv + q / 2 * (np.abs(dv) + e_dv) + lsb, ha * e_du + q / 2 * (np.abs(du) + e_du) + lsb


def test_float_step_from_every_fixed_point_state_is_within_the_rounding_bound():
    """Teacher-forced: from each recorded (v, u) and the step's current i, the float model's Euler step
    equals the fixed-point step within ``euler_bound``; spikes differ only where the float v' lies within
    the bound of the threshold."""
    graph = izhikevich_graph(seed=6, a=np.linspace(0.02, 0.1, N), current_decay=0.6)
    lowered = compile_graph(graph, "emulator").graph
    node, float_node = lowered.node("iz"), graph.node("iz")
    s = node.frac_bits
    x = random_spikes(11, (2, 60, N_IN), rate=0.3)
    traces = run_loihi(lowered, x)
    real = {k: lz.decode(traces.states["iz"][k], s) for k in ("i", "v", "u")}
    fired = traces.spikes["iz"].astype(bool)
    a, bias = float_node.a, float_node.bias
    v_prev = np.concatenate([np.full((2, 1, N), lz.decode(node.v_init, s)), real["v"][:, :-1]], axis=1)
    u_prev = np.concatenate([np.full((2, 1, N), lz.decode(node.u_init, s)), real["u"][:, :-1]], axis=1)
    dv = 0.04 * v_prev ** 2 + 5 * v_prev + 140 - u_prev + real["i"] + bias
    du = 0.2 * v_prev - u_prev
    v_float, u_float = v_prev + dv, u_prev + a * du
    e_v, e_u = euler_bound(v_prev, u_prev, dv, du, 2.0 ** -s, 1.0, a)
    steps = slice(node.hold_steps, None)
    quiet = ~fired[:, steps]
    assert np.all(np.abs(real["v"][:, steps] - v_float[:, steps])[quiet] <= e_v[:, steps][quiet])
    u_before_reset = real["u"] - float_node.d * fired
    assert np.all(np.abs(u_before_reset - u_float)[:, steps] <= (e_u + 2.0 ** -(s + 1))[:, steps])
    decided = np.abs(v_float - 30.0) > e_v
    assert np.array_equal(fired[:, steps][decided[:, steps]], (v_float >= 30.0)[:, steps][decided[:, steps]])
    assert fired.sum() > 40 and float(np.max(e_v)) < 1e-2      # the bound is tight: 13 fraction bits


def test_float_model_and_emulator_agree_spike_for_spike_mostly():
    """Free-running (not teacher-forced) the rounding can move a spike near the threshold; the slots agree
    as the LIF's do (`snnc verify` reports this share), after the one step of pipeline latency."""
    graph = izhikevich_graph(seed=2, current_decay=0.5)
    lowered = compile_graph(graph, "emulator").graph
    x = random_spikes(3, (4, 80, N_IN), rate=0.3)
    emulated, floats = run_loihi(lowered, x).spikes["iz"][:, 1:], run_float(graph, x).spikes["iz"][:, :-1]
    assert floats.sum() > 150
    assert np.mean(emulated == floats) >= 0.97
    assert abs(int(emulated.sum()) - int(floats.sum())) <= 0.05 * floats.sum()


# --- compile-time refusals and limits ----------------------------------------------------------------------

PREFIX = r"in pass 'lower_loihi' \(after prune, fold_synapse_bias, check_target_semantics\): node 'iz' "


@pytest.mark.parametrize("params, message", [
    (dict(a=2.0), r"field 'a': the fixed-point bound on u needs a decaying recovery variable: limit 0 < a \* step_ms "
                  r"<= 1 \(step_ms 1\), got \[2, 2\]"),
    (dict(current_decay=0.0), r"field 'current_decay': limit > 0 for a group with input \(a current that never "
                              r"decays has no bound\), got 0\.0"),
    (dict(b=1e-9), r"field 'b': it would round to 0: limit \|value\| >= 2\^-25 \(a 2\^-24 word\), got \[1e-09, 1e-09\]"),
    (dict(v2_coeff=0.0), r"field 'v2_coeff': limit > 0 \(the bound on v needs an upward parabola\), got 0\.0"),
    (dict(a=1e-5), r"field 'state range': smaller weights, bias or d, or a larger a \* step_ms: limit \|state\| <= "
                   r"513802 \(24 bits at 2\^-4 mV\) and weights within 8-bit words, got worst case v_lo -8\.001e\+05"),
])
def test_what_cannot_be_bounded_or_represented_is_refused_at_compile_time(params, message):
    with pytest.raises(QuantizationError, match=PREFIX + message):
        compile_graph(izhikevich_graph(**{"bias": 1.0, "current_decay": 1.0, **params}), "loihi2")


def test_the_chosen_scale_keeps_the_worst_case_inside_24_bits():
    """S is the finest scale at which the derived worst case fits (2^-13 mV here; 2^-12 would not)."""
    result = compile_graph(izhikevich_graph(bias=1.0, current_decay=1.0), "emulator")
    report = result.reports["lower_loihi"]["layers"]["iz"]
    worst = max(abs(v) for v in report["worst_case"].values())
    assert report["frac_bits"] == result.graph.node("iz").frac_bits == 13
    assert worst * 2 ** 13 <= 0.98 * LIMIT < worst * 2 ** 14
    # u's bound: b * 30 mV + d / (h a) = 6 + 400; v_lo: the parabola's vertex minus h * u_hi
    assert report["worst_case"]["u_hi"] == pytest.approx(406.0)
    worst = report["worst_case"]
    assert worst["v_lo"] == pytest.approx(-85.0 + worst["i_lo"] + 1.0 - 406.0) and worst["i_lo"] < 0


def test_lowered_words_outside_their_formats_are_design_rule_violations():
    from snnc.targets.catalog import get_target
    spec = get_target("loihi2")
    node = LoihiIzhikevich("iz", ("syn",), (4,), frac_bits=10, di=4096, k2=1 << 31, k1=5 << 24, k0=140 << 10,
                           hk=1 << 24, ahk=1 << 20, bk=1 << 22, c=-65 << 10, d=8 << 10, vth=1 << 24)
    assert [(v.field, v.limit, v.actual) for v in model_of(node).limit_violations(node, spec)] == [
        ("k2", "[-2147483647, 2147483647]", "2147483648"), ("vth", "[-8388607, 8388607]", "16777216")]
    wide = (1 << 31) - 1
    node = LoihiIzhikevich("iz", ("syn",), (4,), frac_bits=4, di=4096, k2=wide, k1=wide, k0=140 << 4, hk=wide,
                           ahk=1 << 20, bk=wide, c=-65 << 4, d=8 << 4, vth=30 << 4)
    assert [(v.field, v.limit, v.actual) for v in model_of(node).limit_violations(node, spec)] == [
        ("k2/k1/hk/ahk/bk", "64-bit intermediate products", "2^81")]


def test_lowered_izhikevich_round_trips_through_snnc_files(tmp_path):
    lowered = compile_graph(izhikevich_graph(a=np.linspace(0.02, 0.1, N)), "emulator").graph
    save_graph(lowered, tmp_path / "l.snnc")
    again = load_graph(tmp_path / "l.snnc")
    x = random_spikes(2, (2, 30, N_IN))
    a, b = run_loihi(again, x), run_loihi(lowered, x)
    np.testing.assert_array_equal(a.spikes["iz"], b.spikes["iz"])
    np.testing.assert_array_equal(a.states["iz"]["u"], b.states["iz"]["u"])


def test_weight_bits_apply_and_calibration_is_reported_unused():
    graph = izhikevich_graph(bias=1.0)
    x = random_spikes(4, (4, 30, N_IN), rate=0.3)
    plain = compile_graph(graph, "emulator")
    tuned = compile_graph(graph, "emulator", calibration=x, weight_bits=4)
    layer = tuned.reports["lower_loihi"]["layers"]["iz"]
    assert tuned.graph.node("syn").num_weight_bits == 4 and layer["weight_bits"] == 4
    assert tuned.graph.node("iz").frac_bits == plain.graph.node("iz").frac_bits
    assert layer["warnings"] == ["Izhikevich groups are scaled by their worst case and rounded to nearest: "
                                 "calibration data and 'sbc' rounding were not used for this group"]


def test_timestep_compression_refuses_an_izhikevich_group_by_name():
    from snnc.compiler.passes.compress_timesteps import CompressionConfig
    from snnc.errors import UnsupportedError
    x = random_spikes(1, (4, 20, N_IN), rate=0.3)
    config = CompressionConfig(labels=np.array([0, 1, 2, 3]), spikes=x)
    with pytest.raises(UnsupportedError, match=r"node 'iz' field 'type': compile without --compress-timesteps: limit "
                                               r"Loihi LIF groups \(timestep compression re-solves their vth and "
                                               r"initial v\), got LoihiIzhikevich"):
        compile_graph(izhikevich_graph(), "loihi2", timestep_compression=config)


def test_compile_summary_states_the_scale_the_worst_case_and_the_snnc_process():
    from snnc.backends.lava_loihi2.report import lowering_lines
    result = compile_graph(izhikevich_graph(bias=1.0, current_decay=1.0), "loihi2")
    worst = result.reports["lower_loihi"]["layers"]["iz"]["worst_case"]
    lines = lowering_lines({"passes": result.reports})
    assert f"iz: Izhikevich fixed point, i/v/u at 2^-13 in 24 bits; worst case v >= {worst['v_lo']:.1f} mV, u in " \
           f"[{worst['u_lo']:.1f}, 406.0], i in [{worst['i_lo']:.1f}, {worst['i_hi']:.1f}] mV/ms: no saturation below " \
           "the threshold" in lines
    assert "    iz: SnncIzhikevich (fixed-point Izhikevich, forward Euler; v, u at 2^-13 mV in 24 bits, comparison ge)" \
        in lines
