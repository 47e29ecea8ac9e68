"""Norse 1.1 on snnc (issue 11 "neurons", issue 12 item 4): Norse's own neuron modules, built with Norse's API,
traced by snnc's torch frontend and read from Norse's own NIR export (``norse.torch.to_nir``), on every target.
Backs the Norse rows of the README's neuron x target table; equations in ``snnc.frontends.torch_trace_norse``
and ``snnc.frontends.nir_import`` (``producer="norse"``).

For each Norse neuron: snnc's float IR equals Norse's own forward spike for spike on seeded random inputs
(torch: one-step cells in a user time loop and the multi-step ``SNN`` layers; NIR: the cells ``to_nir``
exports); for each target {emulator, loihi2, spinnaker} the compile succeeds and the target agrees with the
float IR, or the refusal text is asserted exactly. Real Lava equals the emulator (lava marker; one fast
representative in the default suite, the rest slow) and the SpiNNaker emulator equals NEST where spinnaker
accepts an IF_curr_exp model.

Tolerance policy for float ties: Norse runs in float64 inputs (its parameters stay float32 tensors, and snnc
reads dt * tau_inv exactly as Norse computes it, in float32) and spikes are compared EXACTLY. The two compute
the same real numbers in a different operation order (Norse ``v + a (v_leak - v + i)``, snnc ``(1 - a) v + a
i``), ~1e-15 apart, so each comparison also asserts that no membrane of snnc's run lies within 1e-9 (NIR:
1e-6, its taus are float32, so dt^2 / tau carries a relative error of ~1e-7) of its threshold, where such a
difference could flip a spike: an input that came that close fails. Izhikevich is computed term for term in
Norse's order and must match exactly; its margin is asserted on the pre-reset membrane too.
"""
from __future__ import annotations

import dataclasses
import copy
import functools

import numpy as np
import pytest
import torch
from torch import nn

norse = pytest.importorskip("norse.torch")
from norse.torch.functional.izhikevich import create_izhikevich_spiking_behavior  # noqa: E402
from norse.torch.functional.lif_box import LIFBoxParameters  # noqa: E402
from norse.torch.functional.reset import reset_subtract  # noqa: E402

from conftest import random_spikes  # noqa: E402
from snnc.compiler.pipeline import compile_graph  # noqa: E402
from snnc.datasets import digits  # noqa: E402
from snnc.errors import SnncError, UnsupportedError  # noqa: E402
from snnc.frontends.nir_import import load_nir, nir_graph_to_ir  # noqa: E402
from snnc.frontends.torch_trace import trace_module  # noqa: E402
from snnc.ir.nodes import AdaptiveLIF, Comparison, CubaLIF, ResetKind  # noqa: E402
from snnc.neurons import model_of  # noqa: E402
from snnc.simulators.aligned import run_on_ir_grid  # noqa: E402
from snnc.simulators.float_reference import run_float  # noqa: E402
from snnc.simulators.spinnaker_emulator import run_spinnaker  # noqa: E402
from snnc.simulators.traces import first_divergence  # noqa: E402

TARGETS = ("emulator", "loihi2", "spinnaker")
CELLS = ("LIFCell", "LIFBoxCell", "LIFBoxCell-subtract", "IAFCell", "LSNNCell", "IzhikevichCell",
         "IzhikevichCell-dt4ms")
LAYERS = ("LIF", "IAF", "LSNN", "Izhikevich")          # Norse's multi-step SNN modules: one call on [T, N, ...]
NIR_CELLS = ("LIFCell", "LIFBoxCell", "IAFCell")
STEPS = {"IzhikevichCell": 60}
MARGIN, NIR_MARGIN = 1e-9, 1e-6

SPINNAKER_SUBTRACT = ("field 'reset': spinnaker neurons set v to v_reset when they spike (IF_curr_exp; 'zero_next' "
                      "holds it there one refractory tick): retrain with snnTorch reset_mechanism='zero' or "
                      "SpikingJelly v_reset=0.0, or compile for loihi2 or emulator, which run 'subtract' exactly: "
                      "limit zero|zero_next, got subtract")
SPINNAKER_NO_LEAK = ("field 'voltage_decay': IF_curr_exp scales its input by (1 - exp(-dt/tau_m)): it cannot "
                     "integrate without leak: limit > 0, got 0.0")
SPINNAKER_IZHIKEVICH_STEP = ("field 'step_ms': with Norse, choose dt * tau_inv = 1 ms (e.g. dt=0.004 with "
                             "tau_inv=250): limit 1 (one tick of the chip's update), got 0.25")
SPINNAKER_LSNN = ("field 'type': no sPyNNaker 7.4.1 cell has a threshold that rises per spike and decays back (its "
                  "threshold types are static, fixed-probability and Maass stochastic; IF_curr_exp_ca2_adaptive "
                  "adapts through a calcium current, which is not the same dynamics): compile lava-dl's ALIF with "
                  "--target loihi2 (Lava ATRLIF) or --target emulator; Norse's LSNN likewise (snnc's SnncATRLIF): "
                  "limit CubaLIF or Izhikevich (spiking), got AdaptiveLIF")
REFUSALS = {
    ("LSNNCell", "spinnaker"): SPINNAKER_LSNN,
    ("LIFBoxCell-subtract", "spinnaker"): SPINNAKER_SUBTRACT,
    ("IAFCell", "spinnaker"): SPINNAKER_NO_LEAK,
    ("IzhikevichCell", "spinnaker"): SPINNAKER_IZHIKEVICH_STEP,
}


def norse_cell(kind: str) -> nn.Module:
    """A Norse neuron module of ``kind`` (CELLS or LAYERS) with thresholds that spike on the test inputs."""
    izhikevich = create_izhikevich_spiking_behavior(0.02, 0.2, -65.0, 8.0, -70.0, -14.0)
    lsnn = norse.LSNNParameters(v_th=torch.as_tensor(0.3), tau_adapt_inv=torch.as_tensor(20.0),
                                beta=torch.as_tensor(0.2))
    make = {
        "LIFCell": lambda: norse.LIFCell(norse.LIFParameters(v_th=torch.as_tensor(0.3))),
        "LIF": lambda: norse.LIF(norse.LIFParameters(v_th=torch.as_tensor(0.3))),
        "LIFBoxCell": lambda: norse.LIFBoxCell(LIFBoxParameters(v_th=torch.as_tensor(0.3))),
        "LIFBoxCell-subtract": lambda: norse.LIFBoxCell(LIFBoxParameters(v_th=torch.as_tensor(0.3),
                                                                         reset_method=reset_subtract)),
        "IAFCell": lambda: norse.IAFCell(norse.IAFParameters(v_th=torch.as_tensor(0.5))),
        "IAF": lambda: norse.IAF(norse.IAFParameters(v_th=torch.as_tensor(0.5))),
        "LSNNCell": lambda: norse.LSNNCell(lsnn),
        "LSNN": lambda: norse.LSNN(lsnn),
        "LICell": lambda: norse.LICell(),
        "LI": lambda: norse.LI(),
        "LIBoxCell": lambda: norse.LIBoxCell(),
        "IzhikevichCell": lambda: norse.IzhikevichCell(izhikevich),
        "IzhikevichCell-dt4ms": lambda: norse.IzhikevichCell(izhikevich, dt=0.004),
        "Izhikevich": lambda: norse.Izhikevich(izhikevich),
    }
    return make[kind]()


def synapse(kind: str) -> nn.Linear:
    """Linear(8, 6), seeded: no bias into a LIF current (no target has a constant input into a decaying
    current), a strong biased drive for Izhikevich (currents in mV/ms)."""
    torch.manual_seed(0)
    izhikevich = kind.startswith("Izhikevich")
    linear = nn.Linear(8, 6, bias=izhikevich)
    with torch.no_grad():
        linear.weight.mul_(30.0 if izhikevich else 3.0)
        if izhikevich:
            linear.bias.uniform_(8.0, 16.0)
    return linear


class CellLoop(nn.Module):
    """A user's module: Linear -> one-step Norse cell, looping over time with Norse's explicit state."""

    def __init__(self, kind: str):
        super().__init__()
        self.fc, self.cell = synapse(kind), norse_cell(kind)

    def forward(self, x):
        """x: [T, N, 8] -> spikes [T, N, 6]."""
        state, out = None, []
        for t in range(x.shape[0]):
            z, state = self.cell(self.fc(x[t]), state)
            out.append(z)
        return torch.stack(out)


class StateLoop(nn.Module):
    """Loops a Norse ``SequentialState`` (Linear and cells, one state per cell) over time, as Norse's docs do."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        """x: [T, N, ...] -> the last layer's spikes [T, N, ...]."""
        state, out = None, []
        for t in range(x.shape[0]):
            z, state = self.net(x[t], state)
            out.append(z)
        return torch.stack(out)


def norse_spikes(model: nn.Module, x: np.ndarray, multi_step: bool = False) -> dict[str, np.ndarray]:
    """Norse's own forward on x (batch, steps, features) in float64 inputs: every Norse neuron module's spikes
    by module path, (batch, steps, *shape)."""
    model = copy.deepcopy(model).double().eval()
    paths = {id(m): p for p, m in model.named_modules()}
    recorded: dict[str, list] = {}
    hooks = [m.register_forward_hook(lambda mod, _i, out: recorded.setdefault(paths[id(mod)], []).append(
        out[0].detach().double().numpy().copy()))
        for m in model.modules() if type(m).__module__.startswith("norse.torch.module.")
        and not isinstance(m, nn.Sequential)]
    try:
        with torch.no_grad():
            model(torch.as_tensor(x, dtype=torch.float64).transpose(0, 1))
    finally:
        for h in hooks:
            h.remove()
    stack = (lambda s: s[0]) if multi_step else np.stack
    return {p: stack(s).swapaxes(0, 1).astype(np.uint8) for p, s in recorded.items()}


def assert_float_ir_equals(expected: np.ndarray, graph, name: str, x: np.ndarray, margin: float) -> None:
    """snnc's float run of ``graph`` spikes exactly as ``expected`` at group ``name``, no membrane near a tie."""
    traces = run_float(graph, x)
    np.testing.assert_array_equal(traces.spikes[name], expected)
    node = graph.node(name)
    states = traces.states[name]
    if isinstance(node, (CubaLIF, AdaptiveLIF)):
        bound = states["theta"] + states["r"] if isinstance(node, AdaptiveLIF) else np.asarray(node.threshold)
        gap = np.abs(states["v"] - bound)
        assert gap.min() > margin, f"{name}: a membrane within {margin} of threshold"
    assert expected.sum() > 0


def steps_of(kind: str) -> int:
    return STEPS.get(kind.split("-")[0], 40)


@functools.lru_cache(maxsize=None)
def traced(kind: str):
    """(Norse model, float IR, input spikes (3, steps, 8)), cached across the tests of one run."""
    model = CellLoop(kind)
    steps = steps_of(kind)
    return model, trace_module(model, torch.zeros(steps, 3, 8)), random_spikes(7, (3, steps, 8), 0.4)


# ------------------------------------------------------------------------------ float IR == Norse (torch)

@pytest.mark.parametrize("kind", CELLS)
def test_float_ir_of_a_traced_norse_cell_equals_norse(kind):
    model, graph, x = traced(kind)
    assert_float_ir_equals(norse_spikes(model, x)["cell"], graph, "lif_cell", x, MARGIN)


@pytest.mark.parametrize("kind", LAYERS)
def test_float_ir_of_a_norse_multi_step_layer_equals_norse(kind):
    model = nn.Sequential(synapse(kind), norse_cell(kind))
    steps = 60 if kind == "Izhikevich" else 40
    x = random_spikes(8, (3, steps, 8), 0.4)
    graph = trace_module(model, torch.zeros(steps, 3, 8))
    assert_float_ir_equals(norse_spikes(model, x, multi_step=True)["1"], graph, "lif_1", x, MARGIN)


@pytest.mark.parametrize("kind", ["LICell", "LIBoxCell", "LI"])
def test_a_norse_leaky_integrator_readout_is_snncs_li_with_norses_voltage(kind):
    """Norse's readouts output v itself: snnc's LI readout holds the same v (float64, ~1e-15 apart)."""
    model = nn.Sequential(synapse(kind), norse_cell(kind)) if kind == "LI" else CellLoop(kind)
    x = random_spikes(10, (3, 30, 8), 0.4)
    graph = trace_module(model, torch.zeros(30, 3, 8))
    name = "lif_1" if kind == "LI" else "lif_cell"
    assert type(graph.node(name)).__name__ == "LI" and graph.outputs == (name,)
    with torch.no_grad():
        out = copy.deepcopy(model).double()(torch.as_tensor(x, dtype=torch.float64).transpose(0, 1))
    voltage = (out[0] if isinstance(out, tuple) else out).numpy().swapaxes(0, 1)
    np.testing.assert_allclose(run_float(graph, x).states[name]["v"], voltage, rtol=0, atol=1e-12)
    assert np.abs(voltage).max() > 0.1


def test_the_mapping_norse_cells_get():
    lif, box, sub, iaf = (traced(k)[1].node("lif_cell") for k in ("LIFCell", "LIFBoxCell", "LIFBoxCell-subtract",
                                                                 "IAFCell"))
    a, b = float(torch.tensor(1e-3) * torch.tensor(100.0)), float(0.001 * torch.as_tensor(200.0))
    assert (lif.current_decay, lif.voltage_decay, lif.reset, lif.comparison) == (b, a, "zero", "gt")
    assert (box.current_decay, box.voltage_decay, sub.reset, iaf.voltage_decay) == (1.0, a, "subtract", 0.0)
    assert traced("LIFBoxCell-subtract")[1].node("rec_lif_cell").delay_steps == 1
    izhikevich = traced("IzhikevichCell")[1].node("lif_cell")
    assert (izhikevich.step_ms, izhikevich.v_init, izhikevich.threshold) == (0.25, -70.0, 30.0)


def test_norse_lsnn_is_the_adaptive_lif_in_norses_form():
    node, synapse_node = (traced("LSNNCell")[1].node(k) for k in ("lif_cell", "syn_cell"))
    assert (node.reset, node.refractory_scale, node.comparison, synapse_node.delay_steps) == ("zero", 0.0, "gt", 1)
    assert (node.threshold_decay, node.threshold_step) == (float(1e-3 * torch.as_tensor(20.0)),
                                                         float(torch.as_tensor(0.2)))


def test_a_bias_into_a_norse_lsnn_is_refused_before_it_changes_step_zero():
    model = CellLoop("LSNNCell")
    model.fc = nn.Linear(8, 6)
    with pytest.raises(UnsupportedError) as info:
        trace_module(model, torch.zeros(5, 3, 8))
    assert str(info.value) == ("node 'cell' field 'bias': limit none (this neuron reads the previous step's "
                               "current, so its first step sees no input; a constant bias would reach it: "
                               "nn.Linear(bias=False)), got a constant input")


def test_norse_recurrent_cells_and_a_reset_away_from_rest_are_refused_by_field():
    with pytest.raises(UnsupportedError, match=r"node '1' field 'type': limit a feed-forward Norse cell .* got "
                                               r"norse.LIFRecurrentCell"):
        trace_module(nn.Sequential(nn.Identity(), norse.LIFRecurrentCell(8, 6)), torch.zeros(3, 8))
    cell = norse.LIFCell(norse.LIFParameters(v_leak=torch.as_tensor(0.0), v_reset=torch.as_tensor(-0.5)))
    with pytest.raises(UnsupportedError) as info:
        trace_module(nn.Sequential(nn.Linear(8, 6), cell), torch.zeros(3, 8))
    assert str(info.value) == ("node '1' field 'v_reset': limit equal to v_leak (Norse starts v at v_leak; snnc's "
                               "membrane starts at and resets to one rest value), got v_reset -0.5..-0.5, v_leak "
                               "0.0..0.0")


def test_a_norse_rest_potential_is_measured_away_exactly():
    """Norse's bio-style rest (v_leak = v_reset = -65 mV): snnc's membrane is v - v_leak, threshold 0.3 above."""
    model = CellLoop("LIFBoxCell")
    model.cell = norse.LIFBoxCell(LIFBoxParameters(v_leak=torch.as_tensor(-65.0), v_reset=torch.as_tensor(-65.0),
                                                   v_th=torch.as_tensor(-64.7)))
    x = random_spikes(9, (3, 40, 8), 0.4)
    graph = trace_module(model, torch.zeros(40, 3, 8))
    assert abs(graph.node("lif_cell").threshold - 0.3) < 1e-5
    assert_float_ir_equals(norse_spikes(model, x)["cell"], graph, "lif_cell", x, MARGIN)


# ------------------------------------------------------------------------------ NIR (norse.torch.to_nir)

def norse_nir(kind: str):
    """Norse's own export of SequentialState(Linear, cell) and the looped module Norse runs."""
    net = norse.SequentialState(synapse(kind), norse_cell(kind))
    return norse.to_nir(net, torch.zeros(1, 8)), StateLoop(net)


@pytest.mark.parametrize("kind", NIR_CELLS)
def test_float_ir_of_norses_nir_export_equals_norse(kind):
    exported, model = norse_nir(kind)
    graph = nir_graph_to_ir(exported, dt_s=1e-3, reset="zero", producer="norse")
    x = random_spikes(7, (3, 40, 8), 0.4)
    assert_float_ir_equals(norse_spikes(model, x)["net.1"], graph, "n1", x, NIR_MARGIN)
    traced_node = traced(kind)[1].node("lif_cell")
    node = graph.node("n1")
    assert (node.reset, node.comparison) == (traced_node.reset, traced_node.comparison)
    assert abs(node.voltage_decay - traced_node.voltage_decay) < 1e-7


def test_a_norse_leaky_integrator_readout_via_nir_holds_norses_voltage():
    net = norse.SequentialState(synapse("LIFCell"), norse_cell("LIFCell"), nn.Linear(6, 3, bias=False),
                                norse.LIBoxCell())
    graph = nir_graph_to_ir(norse.to_nir(net, torch.zeros(1, 8)), dt_s=1e-3, reset="zero", producer="norse")
    x = random_spikes(11, (3, 40, 8), 0.4)
    with torch.no_grad():
        out = StateLoop(copy.deepcopy(net).double())(torch.as_tensor(x, dtype=torch.float64).transpose(0, 1))
    voltage = out.numpy().swapaxes(0, 1)
    np.testing.assert_allclose(run_float(graph, x).states["n3"]["v"], voltage, rtol=0, atol=1e-6)
    assert np.abs(voltage).max() > 0.01


def numpy_graph(graph):
    """Norse's to_nir graph with its tensors as numpy arrays, at least 1-D (h5py cannot write a 0-D array with
    nir.write's compression), so ``nir.write`` accepts it."""
    for node in graph.nodes.values():
        for key, value in vars(node).items():
            if torch.is_tensor(value):
                value = value.detach().numpy()
            if isinstance(value, np.ndarray):
                setattr(node, key, np.atleast_1d(value))
    return graph


def test_a_norse_nir_file_compiles_and_spikes_with_producer_norse(tmp_path):
    """The issue's case: IAFCell read as NIR's IF with --dt 1e-3 emitted no spike; with the Norse convention it
    equals Norse."""
    import nir
    exported, model = norse_nir("IAFCell")
    path = tmp_path / "iaf.nir"
    nir.write(path, numpy_graph(exported))
    x = random_spikes(7, (3, 40, 8), 0.4)
    expected = norse_spikes(model, x)["net.1"]
    assert run_float(load_nir(path, dt_s=1e-3, reset="zero"), x).spikes["n1"].sum() == 0
    assert_float_ir_equals(expected, load_nir(path, dt_s=1e-3, producer="norse"), "n1", x, NIR_MARGIN)


def test_norse_nir_options_are_never_guessed():
    lif_box, _ = norse_nir("LIFBoxCell")
    with pytest.raises(UnsupportedError) as info:
        nir_graph_to_ir(lif_box, dt_s=1e-3, reset=None, producer="norse", path="box.nir")
    assert str(info.value) == (
        "node 'box.nir: 1' field 'reset': limit NIR stores no reset kind: pass --reset zero (LIFBoxCell's default "
        "reset_value); LIFBoxCell's reset_subtract subtracts v_th before the leak, which snnc compiles exactly "
        "from the torch module (snnc.compile(model, ...)), not from NIR, got None")
    lif, _ = norse_nir("LIFCell")
    with pytest.raises(UnsupportedError) as info:
        nir_graph_to_ir(lif, dt_s=1e-3, reset="zero", path="lif.nir")
    assert str(info.value).startswith(
        "node 'lif.nir: 1' field 'tau_syn': limit >= dt = 0.001 s (forward Euler decay dt/tau in [0, 1]; a file "
        "from Norse's to_nir: --producer norse), got values in [")


# ------------------------------------------------------------------------------ targets

@functools.lru_cache(maxsize=None)
def lowered(kind: str, target: str):
    return compile_graph(traced(kind)[1], target).graph


def target_run(kind: str, target: str):
    x = traced(kind)[2]
    if target == "spinnaker":
        return run_on_ir_grid(lowered(kind, target), x, lambda g, part, record_state: run_spinnaker(g, part,
                                                                                                  record_state))
    return run_on_ir_grid(lowered(kind, target), x)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", CELLS)
def test_target_runs_the_norse_cell_or_refuses_with_advice(kind, target):
    refusal = REFUSALS.get((kind, target))
    if refusal is not None:
        with pytest.raises(SnncError) as info:
            lowered(kind, target)
        assert f"node 'lif_cell' {refusal}" in str(info.value)
        return
    expected = run_float(traced(kind)[1], traced(kind)[2]).spikes["lif_cell"]
    got = target_run(kind, target).spikes["lif_cell"]
    assert expected.sum() > 0 and got.sum() > 0
    if target == "spinnaker" and not kind.startswith("Izhikevich"):
        np.testing.assert_array_equal(got, expected)          # IF_curr_exp's arithmetic follows the float model
    else:   # Loihi's 8-bit weights (and fixed-point Izhikevich); IZK_curr_exp's midpoint step vs Norse's Euler
        assert np.mean(got == expected) >= 0.9, np.mean(got == expected)


LAVA_DEFAULT = ("LIFCell", "LSNNCell")     # LSNNCell: snnc's SnncATRLIF (Norse's LSNN form), 2 s


def test_norses_lsnn_lowers_to_snncs_atrlif_process_and_lava_dls_alif_to_stock_atrlif():
    node = lowered("LSNNCell", "loihi2").node("lif_cell")
    assert (node.reset, node.refractory_scale, node.comparison) == ("zero", 0, "gt")
    process = model_of(node).lava_process(node)
    assert (process.module, process.name, process.stock) == ("snnc.backends.lava_loihi2.processes.atrlif",
                                                             "SnncATRLIF", False)
    assert process.summary == "SnncATRLIF (reset zero, refractory_scale 0, comparison gt)"
    alif = dataclasses.replace(node, reset=ResetKind.NONE, refractory_scale=2, comparison=Comparison.GE)
    assert (model_of(alif).lava_process(alif).name, model_of(alif).lava_process(alif).stock) == ("ATRLIF", True)


def assert_lava_equals_emulator(kind: str) -> None:
    pytest.importorskip("lava.magma.core.run_configs")
    from snnc.backends.lava_loihi2.run import run_lava
    graph, x = lowered(kind, "loihi2"), traced(kind)[2][:1]
    emulated = run_on_ir_grid(graph, x, record_state=True)
    divergence = first_divergence(emulated, run_on_ir_grid(graph, x, run_lava, record_state=True))
    assert divergence is None, str(divergence)
    assert emulated.spikes["lif_cell"].sum() > 0


@pytest.mark.lava
@pytest.mark.parametrize("kind", LAVA_DEFAULT)
def test_lava_equals_emulator_for_a_norse_cell(kind):
    assert_lava_equals_emulator(kind)


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("kind", [k for k in CELLS if (k, "loihi2") not in REFUSALS and k not in LAVA_DEFAULT])
def test_lava_equals_emulator_for_every_accepted_norse_cell(kind):
    assert_lava_equals_emulator(kind)


@pytest.mark.parametrize("kind", ["LIFCell", "LIFBoxCell"])
def test_spinnaker_emulator_equals_nest_for_norse_cells(kind):
    pytest.importorskip("pyNN.nest")
    from snnc.backends.spinnaker.compare import compare_with_nest
    from snnc.backends.spinnaker.nest_run import run_nest
    graph, x = lowered(kind, "spinnaker"), traced(kind)[2]
    emulated = run_spinnaker(graph, x)
    agreement = compare_with_nest(graph, emulated, run_nest(graph, x))
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    assert all(p.identical_fraction > 0.99 for p in agreement), "\n".join(p.line() for p in agreement)
    assert emulated.spikes["lif_cell"].sum() > 0


# ------------------------------------------------------------------------------ a Norse network on digits

DIGITS_STEPS, DIGITS_HIDDEN = 20, 32


class NorseDigitsNet(nn.Module):
    """Linear(64, 32) -> LIFCell -> Linear(32, 10) -> LIFCell in Norse's SequentialState, looped over time;
    output: spike counts per class summed over the steps are the prediction."""

    def __init__(self):
        super().__init__()
        self.net = norse.SequentialState(
            nn.Linear(64, DIGITS_HIDDEN, bias=False), norse.LIFCell(norse.LIFParameters(v_th=torch.as_tensor(0.3))),
            nn.Linear(DIGITS_HIDDEN, 10, bias=False), norse.LIFCell(norse.LIFParameters(v_th=torch.as_tensor(0.2))))

    def forward(self, x):
        """x: [T, N, 64] spikes -> output spikes [T, N, 10]."""
        state, out = None, []
        for t in range(x.shape[0]):
            z, state = self.net(x[t], state)
            out.append(z)
        return torch.stack(out)


def _hidden_counts(model: NorseDigitsNet, x: np.ndarray) -> np.ndarray:
    return norse_spikes(model, x)["net.1"].sum(axis=1).astype(np.float64)


@functools.lru_cache(maxsize=1)
def norse_digits_model() -> tuple[nn.Module, torch.Tensor]:
    """(Norse digits network with fixed weights, example input [T, N, 64]) for the peer-model table.

    Weights without training, deterministic: a seeded random projection into 32 LIF neurons, and a readout
    fitted by ridge regression of one-hot labels on the hidden spike counts of the training split (scaled so
    the output LIFs spike)."""
    torch.manual_seed(0)
    model = NorseDigitsNet()
    with torch.no_grad():
        model.net[0].weight.copy_(torch.randn(DIGITS_HIDDEN, 64) * 0.12)
    x_train, _, y_train, _ = digits.digits_split()
    counts = _hidden_counts(model, digits.rate_encode(x_train, DIGITS_STEPS))
    features = np.concatenate([counts, np.ones((len(counts), 1))], axis=1)
    targets = np.eye(10)[y_train] - 0.1
    readout = np.linalg.solve(features.T @ features + 10.0 * np.eye(features.shape[1]), features.T @ targets)
    with torch.no_grad():
        model.net[2].weight.copy_(torch.as_tensor(readout[:-1].T * 8.0, dtype=torch.float32))
    example = torch.as_tensor(digits.test_spikes(DIGITS_STEPS, 8)[0], dtype=torch.float32).transpose(0, 1)
    return model, example


def test_norse_digits_network_float_ir_equals_norse_per_spike_slot():
    model, example = norse_digits_model()
    graph = trace_module(model, example)
    x, y = digits.test_spikes(DIGITS_STEPS, 60)
    expected = norse_spikes(model, x)
    for path, name in (("net.1", "lif_net_1"), ("net.3", "lif_net_3")):
        np.testing.assert_array_equal(run_float(graph, x).spikes[name], expected[path])
    accuracy = np.mean(expected["net.3"].sum(axis=1).argmax(axis=1) == y)
    assert accuracy >= 0.7, accuracy
    exported = norse.to_nir(model.net, torch.zeros(1, 64))
    via_nir = nir_graph_to_ir(exported, dt_s=1e-3, reset="zero", producer="norse")
    np.testing.assert_array_equal(run_float(via_nir, x).spikes["n3"], expected["net.3"])


@pytest.mark.parametrize("target", TARGETS)
def test_a_linear_bias_into_a_norse_lif_current_is_refused(target):
    model = CellLoop("LIFCell")
    model.fc = nn.Linear(8, 6)
    with pytest.raises(SnncError) as info:
        compile_graph(trace_module(model, torch.zeros(5, 3, 8)), target)
    assert "node 'syn_cell' field 'bias'" in str(info.value) and "a bias into a neuron with current memory" in \
        str(info.value)


def test_the_cli_compiles_norses_nir_export_of_the_digits_network(tmp_path, capsys):
    """`snnc compile digits.nir --producer norse --dt 1e-3` then `snnc run --digits`: the option is recorded in
    the summary and the emulator classifies as Norse does (Loihi's 8-bit weights move a few spikes)."""
    import nir
    from snnc.compiler.cli import main
    model, _ = norse_digits_model()
    path, out = tmp_path / "digits.nir", tmp_path / "compiled"
    nir.write(path, numpy_graph(norse.to_nir(model.net, torch.zeros(1, 64))))
    assert main(["compile", str(path), "--producer", "norse", "--dt", "1e-3", "--target", "emulator",
                 "-o", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "model options given (--dt, --reset, --comparison, --producer; not stored in the model file): dt_s=0.001, " \
           "producer=norse" in summary
    assert "warning: liveness" not in summary
    assert main(["run", str(out), "--digits", "--samples", "60"]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy: ")[1].split()[0])
    x, y = digits.test_spikes(DIGITS_STEPS, 60)
    norse_accuracy = np.mean(norse_spikes(model, x)["net.3"].sum(axis=1).argmax(axis=1) == y)
    assert accuracy >= norse_accuracy - 0.1, (accuracy, norse_accuracy)


@pytest.mark.slow
def test_snnc_compile_and_run_take_the_norse_digits_network(tmp_path):
    """The Python API on the Norse module itself: compile for the emulator, run on held-out digits; the
    source model ("float" backend) is Norse's forward spike for spike."""
    import snnc
    model, example = norse_digits_model()
    result = snnc.compile(model, example, target="emulator", out=tmp_path / "out")
    x, y = digits.test_spikes(DIGITS_STEPS, 60)
    float_run = snnc.run(result, x, backend="float", y=y)
    np.testing.assert_array_equal(float_run.traces.spikes["lif_net_3"], norse_spikes(model, x)["net.3"])
    emulated = snnc.run(result, x, y=y)
    assert np.mean(emulated.predictions == float_run.predictions) >= 0.85


def test_norses_lsnn_form_survives_save_and_load(tmp_path):
    from snnc.ir.serialize import load_graph, save_graph
    save_graph(traced("LSNNCell")[1], tmp_path / "lsnn.snnc")
    node = load_graph(tmp_path / "lsnn.snnc").node("lif_cell")
    assert (node.reset, node.refractory_scale, node.comparison) == ("zero", 0.0, "gt")
    x = traced("LSNNCell")[2]
    np.testing.assert_array_equal(run_float(load_graph(tmp_path / "lsnn.snnc"), x).spikes["lif_cell"],
                                  norse_spikes(traced("LSNNCell")[0], x)["cell"])


@pytest.mark.parametrize("target", TARGETS)
def test_a_norse_readout_network_runs_on_loihi_and_is_refused_by_spinnaker(target):
    net = norse.SequentialState(synapse("LIFCell"), norse_cell("LIFCell"), nn.Linear(6, 3, bias=False),
                                norse.LICell())
    graph = trace_module(StateLoop(net), torch.zeros(30, 3, 8))
    if target == "spinnaker":
        with pytest.raises(SnncError) as info:
            compile_graph(graph, target)
        assert "node 'lif_net_3' field 'type': IF_curr_exp has no non-spiking readout; end the model with a " \
               "spiking layer: limit CubaLIF or Izhikevich (spiking), got LI" in str(info.value)
        return
    x = random_spikes(12, (2, 30, 8), 0.4)
    expected = run_float(graph, x).states["lif_net_3"]["v"]
    got = run_on_ir_grid(compile_graph(graph, target).graph, x, record_state=True)
    assert np.corrcoef(got.states["lif_net_3"]["v"].reshape(-1), expected.reshape(-1))[0, 1] > 0.95
