"""Golden text per pass: for every pass of every target's pipeline, a small asymmetric graph goes through
the passes before it, then through that pass alone; the printed input and output IR (``format_graph``),
the pass's report and, for passes that refuse inputs, the exact error text are compared with
``tests/golden/passes/<target>/<pass>.txt``. Any difference fails; ``SNNC_UPDATE_GOLDEN=1`` rewrites the
files instead (review the diff before committing it).

Each case makes its pass do something: a prune ratio, synapse biases to fold, float features the target
refuses, fan-in over a (shrunk) core, a calibration set for timestep compression, a core budget the
placement overflows. The golden text depends only on node fields (see ``snnc.ir.printer``) and on the
report, whose floats are written to 6 significant digits.

Beside the text, each pass is run before/after on the emulator where its contract says the behaviour is
kept exactly: ``fold_synapse_bias`` (float reference: spikes and voltages), ``partition_fanin`` (Loihi:
spikes, u and v on the IR grid; SpiNNaker: spikes and states of the split against the combined core),
and every pass that reports ``changed=False`` must return the same text. Pruning, lowering and timestep
compression change the function by design (their reports state how much), so they are pinned by text.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from conftest import random_spikes
from snnc.compiler.pass_api import Pass, PassResult
from snnc.compiler.passes.compress_timesteps import CompressionConfig
from snnc.compiler.pipeline import PIPELINES, pass_names
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Conv2d, CubaLIF, Dense, Flatten, Input
from snnc.ir.printer import format_graph
from snnc.ir.verify import verify
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.early_exit import cumulative_output_counts, decide
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import TARGETS

GOLDEN_DIR = Path(__file__).parent / "golden" / "passes"
UPDATE = os.environ.get("SNNC_UPDATE_GOLDEN") == "1"


# ------------------------------------------------------------------------------------------- graphs

def float_graph(seed: int = 7, synapse_bias: bool = True, **neuron) -> Graph:
    """x(12) -> a(7) -> b(5, recurrent, current memory) -> c(3) with a delayed skip x -> c; synapse biases
    on xa (folds) and bc (folds), none on the current-memory group b; every size and weight differs."""
    rng = np.random.default_rng(seed)

    def w(o, i, scale=0.6):
        return rng.normal(0.05, scale, (o, i))
    lif = dict(voltage_decay=0.2, threshold=1.0, reset="zero", **neuron)
    return Graph((
        Input("x", (12,)),
        Dense("xa", "x", w(7, 12), bias=np.linspace(0.02, 0.14, 7) if synapse_bias else None),
        CubaLIF("a", ("xa",), (7,), current_decay=1.0, bias=0.05, **lif),
        Dense("ab", "a", w(5, 7, 0.9)),
        Dense("bb", "b", w(5, 5, 0.3), delay_steps=1),
        CubaLIF("b", ("ab", "bb"), (5,), current_decay=0.5, **lif),
        Dense("bc", "b", w(3, 5, 0.8), bias=np.array([0.1, -0.05, 0.0]) if synapse_bias else None),
        Dense("xc", "x", w(3, 12, 0.3), delay_steps=2),
        CubaLIF("c", ("bc", "xc"), (3,), current_decay=1.0, **lif),
    ), outputs=("c",), name="golden")


def conv_float_graph(seed: int = 5) -> Graph:
    """x(2, 4, 5) -> conv 3x3 pad 1 (window 2 x 3 x 3 = 18) -> a(4, 4, 5) -> flatten -> dense -> c(3), with
    a delayed skip from the flattened x: fan-in partitioning splits the convolution by input channels and
    the denses by columns."""
    rng = np.random.default_rng(seed)
    lif = dict(voltage_decay=0.2, threshold=1.0, reset="zero")
    return Graph((
        Input("x", (2, 4, 5)),
        Conv2d("xa", "x", rng.normal(0.15, 0.5, (4, 2, 3, 3)), in_shape=(2, 4, 5), padding=(1, 1)),
        CubaLIF("a", ("xa",), (4, 4, 5), current_decay=1.0, **lif),
        Flatten("af", "a"),
        Dense("ac", "af", rng.normal(0.05, 0.4, (3, 80))),
        Flatten("xf", "x"),
        Dense("xc", "xf", rng.normal(0.05, 0.3, (3, 40)), delay_steps=2),
        CubaLIF("c", ("ac", "xc"), (3,), current_decay=0.5, **lif),
    ), outputs=("c",), name="golden_conv")


def rate_code(values: np.ndarray, steps: int, levels: int = 4) -> np.ndarray:
    """Deterministic rate code: value v of 0..levels spikes v times per ``levels`` steps, evenly spread."""
    t = np.arange(steps + 1).reshape((1, -1) + (1,) * (values.ndim - 1))
    counts = np.floor(t * values[:, None] / levels)
    return (np.diff(counts, axis=1) > 0).astype(np.uint8)


def compression_config(target: str) -> CompressionConfig:
    """16 samples labelled with the uncompressed network's own predictions (so the reference is right on
    all of them and any drop is the policy's); values 0..4 rate-coded over 16 steps."""
    values = np.random.default_rng(3).integers(0, 5, (16, 12)).astype(np.float64)
    steps = 16
    lowered = run_prefix(float_graph(), target, "compress_timesteps", TARGETS[target].spec, {})
    labels = decide(cumulative_output_counts(lowered, rate_code(values, steps)), steps, None)[0]
    return CompressionConfig(labels=labels, values=values, encode=rate_code, steps=steps, levels=4,
                             v_init_fractions=(0.0, 0.5), threshold_scales=(1.0, 0.8), margins=(2, 3, 4))


# -------------------------------------------------------------------------------------------- cases

@dataclass
class Case:
    """What one golden runs: the float graph, the target spec changes and pass options, and optionally a
    variant the pass must refuse: (what, change to the pass's input graph, further spec changes)."""

    graph: Callable[[], Graph] = float_graph
    spec: dict = field(default_factory=dict)
    choices: Callable[[str], dict] = lambda target: {}
    refused: tuple[str, Callable[[Graph], Graph], dict] | None = None
    equivalence: Callable[[Graph, Graph, str], None] | None = None


def fold_keeps_float_run(before: Graph, after: Graph, target: str) -> None:
    x = random_spikes(0, (2, 25, 12), 0.4)
    old, new = run_float(before, x), run_float(after, x)
    assert sum(s.sum() for s in old.spikes.values()) > 0
    for name in ("a", "b", "c"):
        assert np.array_equal(old.spikes[name], new.spikes[name]), name
        np.testing.assert_allclose(old.states[name]["v"], new.states[name]["v"], rtol=0, atol=1e-12)


def partition_keeps_loihi_run(before: Graph, after: Graph, target: str) -> None:
    x = random_spikes(1, (2, 25, 12), 0.4)
    old = run_on_ir_grid(before, x, record_state=True)
    new = run_on_ir_grid(after, x, record_state=True)
    assert old.spikes["c"].sum() > 0
    assert first_divergence(old, new, names=list(old.spikes)) is None


def conv_partition_keeps_loihi_run(before: Graph, after: Graph, target: str) -> None:
    x = random_spikes(1, (2, 25, 2, 4, 5), 0.4)
    old = run_on_ir_grid(before, x, record_state=True)
    new = run_on_ir_grid(after, x, record_state=True)
    assert old.spikes["a"].sum() > 0 and old.spikes["c"].sum() > 0
    assert first_divergence(old, new, names=list(old.spikes)) is None


def partition_keeps_spinnaker_run(before: Graph, after: Graph, target: str) -> None:
    x = random_spikes(2, (2, 25, 12), 0.4)
    old, new = run_spinnaker(before, x), run_spinnaker(after, x)
    assert old.spikes["c"].sum() > 0
    assert first_divergence(old, new) is None


def with_reset(reset: str, comparison: str) -> Callable[[Graph], Graph]:
    def change(graph: Graph) -> Graph:
        return graph.replace_nodes([dataclasses.replace(n, reset=reset, comparison=comparison)
                                    if n.name == "b" else n for n in graph.nodes])
    return change


def li_readout(graph: Graph) -> Graph:
    """The output group c as a non-spiking LI readout."""
    c = graph.node("c")
    return graph.replace_nodes([LI("c", c.inputs, c.shape, c.current_decay, c.voltage_decay, c.bias)
                                if n.name == "c" else n for n in graph.nodes])


def same(graph: Graph) -> Graph:
    return graph


PRUNE = Case(choices=lambda target: {"prune_sparsity": 0.3, "prune_method": "magnitude"})
LOIHI_CASES = {
    "prune": PRUNE,
    "fold_synapse_bias": Case(equivalence=fold_keeps_float_run),
    "check_target_semantics": Case(refused=("b: '>=' where the target tests '>' only", with_reset("zero", "ge"),
                                            {"comparisons": ("gt",)})),
    "lower_loihi": Case(graph=lambda: li_readout(float_graph()),
                        refused=("b: a current that never decays", lambda g: g.replace_nodes(
                            [dataclasses.replace(n, current_decay=0.0) if n.name == "b" else n
                             for n in g.nodes]), {})),
    "compress_timesteps": Case(choices=lambda target: {"timestep_compression": compression_config(target)}),
    "partition_fanin": Case(graph=conv_float_graph, spec={"input_axons_per_core": 16},
                            equivalence=conv_partition_keeps_loihi_run,
                            refused=("a 3x3 kernel over cores of 8 axons", same, {"input_axons_per_core": 8})),
    "check_design_rules": Case(refused=("cores of 10 input axons", same, {"input_axons_per_core": 10})),
    "place_cores": Case(spec={"neurons_per_core": 6, "input_axons_per_core": 20, "synapses_per_core": 100},
                        refused=("one core per chip", same, {"cores_per_chip": 1})),
}
SPINNAKER_CASES = {
    **LOIHI_CASES,
    "check_target_semantics": Case(refused=("b: subtract reset", with_reset("subtract", "gt"), {})),
    "lower_spinnaker": Case(refused=("c: an LI readout", li_readout, {})),
    "partition_fanin": Case(spec={"synaptic_events_per_core_per_s": 40_000, "planning_spikes_per_tick": 1.0,
                                  "neurons_per_core": 4},
                            equivalence=partition_keeps_spinnaker_run),
    "check_design_rules": Case(refused=("at most 2 ticks of delay", same, {"delay_extension_slots": 0,
                                                                          "ring_buffer_bits": 3})),
    "place_cores": Case(spec={"neurons_per_core": 4}, refused=("one core per chip", same,
                                                               {"cores_per_chip": 1, "chips": 1})),
}
EMULATOR_CASES = {   # no capacity limits: fan-in and placement leave the graph as it is
    **LOIHI_CASES,
    "partition_fanin": Case(),
    "place_cores": Case(),
}
CASES = {"loihi2": LOIHI_CASES, "emulator": EMULATOR_CASES, "spinnaker": SPINNAKER_CASES}


# ------------------------------------------------------------------------------------------- driver

def pipeline(target: str) -> dict[str, Pass]:
    """The target's passes in order, by name."""
    return {step.name: step for step in PIPELINES[target]}


def run_pass(step: Pass, graph: Graph, spec, choices: dict) -> PassResult:
    """One pass, its contract checked, with its options made of ``spec`` and the ``choices`` it takes."""
    return step(graph, step.options_from(spec, choices))


def run_prefix(graph: Graph, target: str, pass_name: str, spec, choices: dict) -> Graph:
    """The graph after every pass that precedes ``pass_name`` in the target's pipeline (verified)."""
    graph = verify(graph)
    for name, step in pipeline(target).items():
        if name == pass_name:
            return graph
        graph = verify(run_pass(step, graph, spec, choices).graph)
    raise AssertionError(f"{pass_name} is not in the {target} pipeline")


def spec_for(target: str, spec_changes: dict):
    return dataclasses.replace(TARGETS[target].spec, **spec_changes)


def describe_options(target: str, spec_changes: dict, choices: dict) -> str:
    parts = [f"target={target}"] + [f"target.{k}={v!r}" for k, v in sorted(spec_changes.items())]
    for key, value in sorted(choices.items()):
        parts.append(f"{key}={type(value).__name__}(...)" if dataclasses.is_dataclass(value) else f"{key}={value!r}")
    return " ".join(parts)


def stable(value):
    """The report as plain JSON values, floats to 6 significant digits (platform-stable text)."""
    if isinstance(value, dict):
        return {str(k): stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stable(v) for v in value]
    if isinstance(value, np.ndarray):
        return stable(value.tolist())
    if isinstance(value, np.generic):
        return stable(value.item())
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def golden_text(target: str, pass_name: str, case: Case) -> tuple[str, Graph, Graph, PassResult]:
    choices = case.choices(target)
    spec = spec_for(target, case.spec)
    before = run_prefix(case.graph(), target, pass_name, spec, choices)
    result = run_pass(pipeline(target)[pass_name], before, spec, choices)
    after = verify(result.graph)
    text_in, text_out = format_graph(before), format_graph(after)
    lines = [f"# golden: pass {pass_name} of target {target} (tests/test_pass_goldens.py)",
             f"# options: {describe_options(target, case.spec, choices)}",
             "# regenerate: SNNC_UPDATE_GOLDEN=1 pytest tests/test_pass_goldens.py", "", "== input", text_in,
             f"== output (changed={result.changed})"]
    lines.append("identical to the input\n" if text_out == text_in else text_out)
    lines += ["== report", json.dumps(stable(result.report), indent=1, sort_keys=True), ""]
    if case.refused:
        lines += refused_text(target, pass_name, case, before, choices)
    return "\n".join(lines), before, after, result


def refused_text(target: str, pass_name: str, case: Case, before: Graph, choices: dict) -> list[str]:
    what, change_graph, spec_changes = case.refused
    spec = spec_for(target, {**case.spec, **spec_changes})
    with pytest.raises(SnncError) as error:
        run_pass(pipeline(target)[pass_name], change_graph(before), spec, choices)
    return [f"== refused: {what} ({describe_options(target, spec_changes, {})})",
            f"{type(error.value).__name__}: {error.value}", ""]


PARAMS = [(target, name) for target in ("loihi2", "spinnaker", "emulator") for name in pass_names(target)]


@pytest.mark.parametrize("target,pass_name", PARAMS, ids=[f"{t}-{p}" for t, p in PARAMS])
def test_pass_output_matches_golden(target, pass_name):
    case = CASES[target][pass_name]
    text, before, after, result = golden_text(target, pass_name, case)
    path = GOLDEN_DIR / target / f"{pass_name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden {path}: run with SNNC_UPDATE_GOLDEN=1 and review it"
    stored = path.read_text()
    diff = "".join(difflib.unified_diff(stored.splitlines(True), text.splitlines(True), str(path), "now"))
    assert text == stored, f"golden differs (SNNC_UPDATE_GOLDEN=1 rewrites it; review the diff):\n{diff}"
    if not result.changed:
        assert format_graph(after) == format_graph(before), "a pass reporting changed=False changed the graph"
    if case.equivalence:
        assert result.changed, "the equivalence check needs a pass that changed the graph"
        case.equivalence(before, after, target)


def test_every_pipeline_pass_has_a_golden_case_and_no_golden_is_stale():
    expected = {f"{t}/{p}.txt" for t, p in PARAMS}
    stored = {str(p.relative_to(GOLDEN_DIR)) for p in GOLDEN_DIR.glob("*/*.txt")}
    assert stored == expected
