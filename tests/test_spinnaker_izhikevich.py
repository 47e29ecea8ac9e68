"""The Izhikevich family (issue 11 item 5): float semantics equal NEST's ``izhikevich`` (forward Euler,
``consistent_integration``) and Norse's IzhikevichCell step; the s16.15 emulator of sPyNNaker's
IZK_curr_exp equals a plain-integer transcription of its C update and, from every recorded state, NEST's
Euler step plus the midpoint correction within the derived rounding bound (Loihi's fixed point:
tests/test_loihi_izhikevich.py)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from conftest import random_spikes
from snnc.arith import spinnaker as sq
from snnc.arith.spinnaker_izhikevich import MAGIC_MULTIPLIER, SIMPLE_TQ_OFFSET
from snnc.compiler.pipeline import compile_graph
from snnc.errors import DesignRuleError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Dense, Input, Izhikevich, SpinnakerIzhikevich, SpinnakerProjection
from snnc.ir.serialize import load_graph, save_graph
from snnc.neurons import model_of
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker

ULP = 2.0 ** -15
N_IN, N = 8, 12


def izhikevich_graph(seed: int = 3, bias=None, current_decay: float = 1.0, comparison: str = "ge", **params) -> Graph:
    rng = np.random.default_rng(seed)
    bias = rng.uniform(0.0, 6.0, N) if bias is None else bias
    neuron = dict(a=0.02, b=0.2, c=-65.0, d=8.0, bias=bias, current_decay=current_decay, comparison=comparison)
    neuron.update(params)
    return Graph((Input("in", (N_IN,)), Dense("syn", "in", rng.normal(4.0, 6.0, (N, N_IN))),
                  Izhikevich("iz", ("syn",), (N,), **neuron)), outputs=("iz",))


# --- float semantics -------------------------------------------------------------------------------------

def nest_izhikevich_run(graph: Graph, x: np.ndarray):
    """The float graph's single layer on NEST 3.10 ``izhikevich`` (h = 1 ms, delta synapses of weight w mV):
    spikes (steps, n) and V_m (steps, n) on the float model's step grid."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    nest = pytest.importorskip("nest")
    node, dense = graph.node("iz"), graph.node("syn")
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution = 1.0
    population = nest.Create("izhikevich", N, params={"a": node.a, "b": node.b, "c": node.c, "d": node.d,
                                                      "consistent_integration": True, "V_m": node.v_init,
                                                      "U_m": node.u_init})
    offset = 2                                    # NEST's generators cannot spike at time 0
    generators = nest.Create("spike_generator", N_IN)
    for i in range(N_IN):
        generators[i].spike_times = [float(t + offset) for t in np.flatnonzero(x[:, i])]
    nest.Connect(generators, population, "all_to_all", {"weight": dense.weight, "delay": 1.0})
    recorder = nest.Create("spike_recorder")
    nest.Connect(population, recorder)
    meter = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": 1.0})
    nest.Connect(meter, population)
    nest.Simulate(float(offset))                  # input-free ticks: start (again) from the initial state
    population.set(I_e=list(np.broadcast_to(node.bias, (N,))), V_m=node.v_init, U_m=node.u_init)
    steps = x.shape[0]
    nest.Simulate(float(steps + 1))
    first = population[0].global_id
    spikes = np.zeros((steps, N), np.uint8)
    events = recorder.events
    for time, sender in zip(events["times"], events["senders"]):
        step = int(round(time)) - offset - 1      # step k is NEST's update ending at offset + k + 1
        if step < steps:
            spikes[step, sender - first] = 1
    v = np.full((steps, N), np.nan)
    events = meter.events
    for time, sender, value in zip(events["times"], events["senders"], events["V_m"]):
        step = int(round(time)) - offset - 1
        if 0 <= step < steps:
            v[step, sender - first] = value
    return spikes, v


def test_float_izhikevich_equals_nest_spike_for_spike():
    graph = izhikevich_graph()
    x = random_spikes(1, (1, 80, N_IN), rate=0.3)
    ours = run_float(graph, x)
    spikes, v = nest_izhikevich_run(graph, x[0])
    assert spikes.sum() > 30
    np.testing.assert_array_equal(ours.spikes["iz"][0], spikes)
    np.testing.assert_allclose(ours.states["iz"]["v"][0], v, rtol=0, atol=1e-9)   # float64 sums, other order


def norse_izhikevich_step(input_current, v, u, a, b, c, d, tau_inv, dt):
    """Norse 1.x ``izhikevich_feed_forward_step`` (norse/torch/functional/izhikevich.py, transcribed: Norse is
    not installed here), with its heaviside threshold ``v - v_th > 0``."""
    v_ = v + tau_inv * dt * (0.04 * v ** 2 + 5 * v + 140 - u + input_current)
    u_ = u + tau_inv * dt * a * (b * v - u)
    z = (v_ - 30 > 0).to(v_.dtype)
    return z, (1 - z) * v_ + z * c, (1 - z) * u_ + z * (u_ + d)


def test_float_izhikevich_is_norses_step_with_h_tau_inv_dt():
    rng = np.random.default_rng(8)
    weight = rng.normal(8.0, 10.0, (N, N_IN))
    graph = Graph((Input("in", (N_IN,)), Dense("syn", "in", weight),
                   Izhikevich("iz", ("syn",), (N,), a=0.02, b=0.2, c=-65.0, d=8.0, v_init=-70.0, u_init=-14.0,
                              step_ms=0.25)), outputs=("iz",))
    x = random_spikes(6, (3, 120, N_IN), rate=0.4)
    ours = run_float(graph, x)
    v, u = torch.full((3, N), -70.0, dtype=torch.float64), torch.full((3, N), -14.0, dtype=torch.float64)
    expected = []
    for t in range(x.shape[1]):
        current = torch.as_tensor(x[:, t].astype(np.float64)) @ torch.as_tensor(weight).T
        z, v, u = norse_izhikevich_step(current, v, u, 0.02, 0.2, -65.0, 8.0, 250.0, 0.001)
        expected.append(z.numpy())
    expected = np.stack(expected, axis=1)
    assert expected.sum() > 50
    np.testing.assert_array_equal(ours.spikes["iz"], expected)


def test_izhikevich_nodes_round_trip_through_snnc_files(tmp_path):
    graph = izhikevich_graph(bias=np.linspace(0, 3, N), comparison="gt", current_decay=0.5)
    save_graph(graph, tmp_path / "g.snnc")
    loaded = load_graph(tmp_path / "g.snnc")
    x = random_spikes(2, (2, 30, N_IN))
    np.testing.assert_array_equal(run_float(loaded, x).spikes["iz"], run_float(graph, x).spikes["iz"])
    lowered = compile_graph(graph, "spinnaker").graph
    save_graph(lowered, tmp_path / "l.snnc")
    again = load_graph(tmp_path / "l.snnc")
    np.testing.assert_array_equal(run_spinnaker(again, x).spikes["iz"], run_spinnaker(lowered, x).spikes["iz"])


# --- the s16.15 emulator -----------------------------------------------------------------------------------

def c_update(v, u, h, a, b, c, d, current):
    """neuron_model_izh_impl.h with plain Python integers: accum * accum = (x * y) >> 15 (floor), REAL_HALF
    = * 0.5k; one neuron. Returns (v, u, h, v_pre, spiked)."""
    def mul(x, y):
        return (x * y) >> 15
    pre = 140 * 32768 + current - u
    alpha = pre + mul(5 * 32768 + mul(1311, v), v)
    eta = v + mul(mul(h, alpha), 16384)
    beta = mul(mul(mul(h, mul(b, v) - u), a), 16384)
    v_new = v + mul(h, pre - beta + mul(5 * 32768 + mul(1311, eta), eta))
    u_new = u + mul(mul(a, h), -u - beta + mul(b, eta))
    if v_new >= 30 * 32768:
        return c, u_new + d, mul(32768, 60620), v_new, True
    return v_new, u_new, 32768, v_new, False


def test_emulator_is_the_c_update_integer_for_integer():
    graph = izhikevich_graph(seed=4, a=np.linspace(0.02, 0.1, N), d=np.linspace(2.0, 8.0, N), current_decay=0.4)
    lowered = compile_graph(graph, "spinnaker").graph
    population = lowered.node("iz")
    x = random_spikes(9, (2, 60, N_IN), rate=0.3)
    traces = run_spinnaker(lowered, x)
    states = traces.states["iz"]
    assert traces.spikes["iz"].sum() > 40
    words = {k: np.broadcast_to(np.asarray(getattr(population, k)).reshape(-1), (N,)) for k in "abcd"}
    offset = np.broadcast_to(np.asarray(population.i_offset).reshape(-1), (N,))
    for sample in range(2):
        for i in range(N):
            v, u, h = int(np.reshape(population.v_init, -1)[0]), int(np.reshape(population.u_init, -1)[0]), 32768
            for t in range(60):
                current = int(states["isyn_exc"][sample, t, i] - states["isyn_inh"][sample, t, i] + offset[i])
                v, u, h, v_pre, spiked = c_update(v, u, h, *(int(words[k][i]) for k in "abcd"), current)
                assert (v, u, v_pre, spiked) == (states["v"][sample, t, i], states["u"][sample, t, i],
                                                 states["v_pre"][sample, t, i], bool(traces.spikes["iz"][sample, t, i]))


def test_chip_constants_are_the_binarys():
    """1.85k truncates to 60620 and 0.040008544921875k is 1311: both words are in the installed binary."""
    spynnaker = pytest.importorskip("spynnaker")
    from pathlib import Path
    binary = (Path(spynnaker.__file__).parent / "pyNN" / "model_binaries" / "IZK_curr_exp_neuron.aplx").read_bytes()
    assert SIMPLE_TQ_OFFSET.to_bytes(4, "little") in binary and MAGIC_MULTIPLIER.to_bytes(4, "little") in binary
    assert (SIMPLE_TQ_OFFSET + 1).to_bytes(4, "little") not in binary


def midpoint_real(v, u, h, a, b, current):
    """The chip's RK2 midpoint step in real arithmetic (its constant 0.040008544921875 for 0.04)."""
    m = MAGIC_MULTIPLIER / 32768.0
    pre = 140.0 + current - u
    eta = v + h * (pre + (5.0 + m * v) * v) / 2
    beta = h * (b * v - u) * a / 2
    return v + h * (pre - beta + (5.0 + m * eta) * eta), u + a * h * (-u - beta + b * eta), eta, beta


def rounding_bound(v, u, h, a, b, eta, beta):
    """Largest |chip - real midpoint| (mV, mV/ms) from the floors of the accum products (one ULP each, each
    error carried through the later products' factors)."""
    e_alpha = (np.abs(v) + 1) * ULP
    e_eta = (h * e_alpha + ULP) / 2 + ULP
    e_beta = (np.abs(a) * (h + 1) + 1) * ULP / 2 + ULP
    m = MAGIC_MULTIPLIER / 32768.0
    e_quad = np.abs(5 + 2 * m * eta) * e_eta + m * e_eta ** 2 + (np.abs(eta) + e_eta + 1) * ULP
    e_v = h * (e_beta + e_quad) + ULP
    drive = np.abs(-u - beta + b * eta)
    e_u = ULP * drive + np.abs(a) * h * (e_beta + np.abs(b) * e_eta + ULP) + 2 * ULP
    return e_v, e_u


def test_emulator_step_is_nests_euler_step_plus_the_midpoint_correction():
    """Teacher-forced reference: from each recorded chip state (v, u) and input, NEST 3.10's ``izhikevich``
    takes one Euler step; the chip's step must equal it plus G = midpoint - Euler (real arithmetic) within
    the rounding bound. An Euler emulator would miss by |G| (asserted to exceed the bound on many steps)."""
    os.environ.setdefault("PYNEST_QUIET", "1")
    nest = pytest.importorskip("nest")
    lowered = compile_graph(izhikevich_graph(seed=6, current_decay=0.6), "spinnaker").graph
    population = lowered.node("iz")
    x = random_spikes(11, (2, 50, N_IN), rate=0.3)
    traces = run_spinnaker(lowered, x)
    s = {k: sq.decode_s1615(v).reshape(-1, 50, N).transpose(1, 0, 2).reshape(50, -1) for k, v in traces.states["iz"].items()}
    fired = traces.spikes["iz"].transpose(1, 0, 2).reshape(50, -1).astype(bool)
    a, b, c, d = (float(sq.decode_s1615(getattr(population, k))) for k in "abcd")
    offset = np.tile(np.broadcast_to(sq.decode_s1615(population.i_offset).reshape(-1), (N,)), 2)
    nest.ResetKernel()
    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.resolution = 1.0
    cells = nest.Create("izhikevich", fired.shape[1], params={"a": a, "b": b, "c": c, "d": d, "consistent_integration": True})
    v_prev = np.full(fired.shape[1], float(sq.decode_s1615(population.v_init)))
    u_prev = np.full(fired.shape[1], float(sq.decode_s1615(population.u_init)))
    h = np.ones(fired.shape[1])
    beyond_bound = 0
    for t in range(50):
        current = s["isyn_exc"][t] - s["isyn_inh"][t] + offset
        cells.set(V_m=list(v_prev), U_m=list(u_prev), I_e=list(current))
        nest.Simulate(1.0)
        v_nest, u_nest = np.array(cells.get("V_m")), np.array(cells.get("U_m"))
        nest_fired = v_nest == c
        v_mid, u_mid, eta, beta = midpoint_real(v_prev, u_prev, h, a, b, current)
        v_euler = v_prev + 0.04 * v_prev ** 2 + 5 * v_prev + 140 - u_prev + current
        e_v, e_u = rounding_bound(v_prev, u_prev, h, a, b, eta, beta)
        u_chip_pre = s["u"][t] - d * fired[t]
        u_nest_pre = u_nest - d * nest_fired
        u_gap = u_mid - (u_prev + a * (b * v_prev - u_prev))
        assert np.all(np.abs(u_chip_pre - (u_nest_pre + u_gap)) <= e_u + 1e-9), t
        free = ~nest_fired
        assert np.all(np.abs(s["v_pre"][t][free] - (v_nest[free] + v_mid[free] - v_euler[free])) <= e_v[free] + 1e-9), t
        assert np.all((fired[t] == (v_mid >= 30)) | (np.abs(v_mid - 30) <= e_v)), t
        beyond_bound += int(np.sum(np.abs(v_mid - v_euler)[free] > e_v[free]))
        v_prev, u_prev = s["v"][t], s["u"][t]
        h = np.where(fired[t], SIMPLE_TQ_OFFSET / 32768.0, 1.0)
    assert fired.sum() > 20 and beyond_bound > 500


# --- compilation, targets and mapping ----------------------------------------------------------------------

def test_spinnaker_lowering_words():
    graph = izhikevich_graph(seed=2, bias=np.full(N, 2.5), current_decay=1.0)
    lowered = compile_graph(graph, "spinnaker").graph
    population = lowered.node("iz")
    assert isinstance(population, SpinnakerIzhikevich)
    assert (population.a, population.b, population.c, population.d) == (655, 6554, -65 * 32768, 8 * 32768)
    assert population.i_offset == 81920 and population.tau_syn_e == 3072
    decay, init = sq.synapse_constants(population.tau_syn_e)
    assert decay == 0
    projections = [n for n in lowered.nodes if isinstance(n, SpinnakerProjection)]
    weight = graph.node("syn").weight
    for projection in projections:
        shift = population.ring_buffer_shift[projection.receptor == "inhibitory"]
        restored = sq.word_to_weight(projection.weight_word, shift) * init / 2.0 ** 32
        part = np.where(weight > 0, weight, 0) if projection.receptor == "excitatory" else np.where(weight < 0, -weight, 0)
        assert np.max(np.abs(restored - part)) <= 2.0 ** (shift - 16) * init / 2.0 ** 32 + 1e-12
    assert model_of(population).pynn_cell == "IZK_curr_exp"


def test_spinnaker_refuses_what_izk_curr_exp_cannot_compute():
    graph = izhikevich_graph(step_ms=0.25, v_coeff=4.1, constant=108.0, threshold=35.0)
    with pytest.raises(DesignRuleError) as info:
        compile_graph(graph, "spinnaker")
    text = str(info.value)
    assert "node 'iz' field 'v_coeff': limit 5 (compiled into IZK_curr_exp), got 4.1" in text
    assert "field 'constant': limit 140 (compiled into IZK_curr_exp), got 108.0" in text
    assert "field 'threshold': limit 30 (compiled into IZK_curr_exp), got 35.0" in text
    assert "field 'step_ms': with Norse, choose dt * tau_inv = 1 ms (e.g. dt=0.004 with tau_inv=250): limit 1 " \
           "(one tick of the chip's update), got 0.25" in text


def test_nest_network_comparison_refuses_izhikevich_by_name():
    from snnc.backends.spinnaker.compare import compare_with_nest
    lowered = compile_graph(izhikevich_graph(), "spinnaker").graph
    traces = run_spinnaker(lowered, random_spikes(1, (1, 5, N_IN)))
    with pytest.raises(UnsupportedError, match=r"node 'iz' field 'type': IZK_curr_exp's RK2 midpoint step and NEST's "
                                               r"Euler step differ by more than rounding"):
        compare_with_nest(lowered, traces, traces)


def test_virtual_board_maps_izk_curr_exp_as_predicted(tmp_path):
    """Real sPyNNaker 7.4.1 on a virtual board places the IZK_curr_exp population and writes the ring-buffer
    shifts and 16-bit weight words the compiler predicted."""
    pytest.importorskip("spynnaker")
    from snnc.backends.spinnaker.mapping import predicted_blocks, read_placements, read_population_cores
    from snnc.backends.spinnaker.spynnaker_run import run_spynnaker
    from snnc.targets.catalog import get_target
    result = compile_graph(izhikevich_graph(seed=5, current_decay=0.5), "spinnaker")
    lowered, spec = result.graph, get_target("spinnaker")
    _, run_dir = run_spynnaker(lowered, random_spikes(1, (1, 5, N_IN)), tmp_path)
    placements = read_placements(run_dir)
    assert {k: len(v) for k, v in placements.items() if k in ("in", "iz")} == result.reports["check_design_rules"]["cores"]
    population = lowered.node("iz")
    cores = read_population_cores(run_dir, "iz", N, spec.neurons_per_core)
    assert len(cores) == 1
    assert cores[0].ring_buffer_shift == population.ring_buffer_shift
    predicted = predicted_blocks(lowered, population, *cores[0].slice)
    assert sorted(map(repr, (sorted(b.items()) for b in cores[0].blocks))) == \
        sorted(map(repr, (sorted(b.items()) for b in predicted)))
    # neuron_params: one header word, then per neuron {a, b, c, d, v, u, i_offset, time_step, next_h}, then
    # the static thresholds (30 mV)
    words = _neuron_param_words(run_dir, cores[0].core)
    expected = np.stack([np.broadcast_to(np.asarray(getattr(population, k)).reshape(-1), (N,))
                         for k in ("a", "b", "c", "d", "v_init", "u_init", "i_offset")]
                        + [np.full(N, 32768), np.full(N, 32768)], axis=1) & 0xFFFFFFFF
    np.testing.assert_array_equal(words[1:1 + 9 * N].reshape(N, 9), expected)
    np.testing.assert_array_equal(words[1 + 9 * N:1 + 10 * N], np.full(N, 30 * 32768))


def _neuron_param_words(run_dir, core) -> np.ndarray:
    import sqlite3
    db = sqlite3.connect(f"file:{run_dir / 'ds.sqlite3'}?mode=ro", uri=True)
    try:
        (blob,) = db.execute("SELECT content FROM region WHERE x=? AND y=? AND p=? AND region_label='neuron_params'",
                             core).fetchone()
    finally:
        db.close()
    return np.frombuffer(blob, dtype="<u4").astype(np.int64)


def test_float_step_against_a_hand_computed_trace():
    """h = 1: v' = v + 0.04 v^2 + 5 v + 140 - u + I + bias, u' = u + a (b v - u); reset v = c, u += d."""
    node = Izhikevich("n", ("d",), (1,), a=0.1, b=0.2, c=-60.0, d=4.0, bias=1.0, v_init=-70.0, u_init=-14.0)
    model = model_of(node)
    state = {var: np.zeros((1, 2, 1)) for var in model.state_variables}
    out = np.zeros((1, 2, 1))
    out[:, 0] = model.float_step(node, 0, np.array([[10.0]]), out, state)
    # v = -70 + 196 - 350 + 140 + 14 + 10 + 1 = -59; u = -14 + 0.1 (-14 + 14) = -14
    assert (state["v"][0, 0, 0], state["u"][0, 0, 0], out[0, 0, 0]) == pytest.approx((-59.0, -14.0, 0.0))
    out[:, 1] = model.float_step(node, 1, np.array([[100.0]]), out, state)
    # v' = -59 + 139.24 - 295 + 140 + 14 + 100 + 1 = 40.24 > 30: fires, v = -60; u = -14 + 0.1 (-11.8 + 14) + 4
    assert (state["v"][0, 1, 0], state["u"][0, 1, 0], out[0, 1, 0]) == pytest.approx((-60.0, -9.78, 1.0))


def test_nest_run_of_an_izhikevich_network_is_refused_by_name():
    from snnc.backends.spinnaker.nest_run import run_nest
    lowered = compile_graph(izhikevich_graph(), "spinnaker").graph
    with pytest.raises(UnsupportedError, match=r"node 'iz' field 'type': NEST's izhikevich has delta synapses and an "
                                               r"Euler step.*limit IF_curr_exp populations for a NEST run"):
        run_nest(lowered, random_spikes(1, (1, 5, N_IN)))
