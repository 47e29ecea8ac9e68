"""What the commands do, as services returning typed results (no text): compile into a folder, export,
run a backend on a compiled folder, decide each sample's class, verify the emulator. ``snnc.compiler.
formatting`` turns the results into what the CLI prints; ``snnc.compiler.artifacts`` reads and writes the
folders."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.backends.registry import EMULATE, TargetBackends
from snnc.compiler.artifacts import (
    LOWERED_FILE, SOURCE_FILE, check_output_folder, compiled_backends, compiled_policy, file_sha256,
    load_compiled_graph, load_report, write_compiled,
)
from snnc.compiler.float_agreement import float_agreement, in_float_units
from snnc.compiler.input_files import InputData, made_static
from snnc.compiler.liveness import compile_liveness, liveness_lines, verify_liveness
from snnc.compiler.pipeline import compile_graph
from snnc.errors import ModelFileError, ModifiedArtifactError, UnsupportedError
from snnc.frontends.formats import export_format
from snnc.frontends.lava_dl_net import NetOptions, check_netx_builds, net_options
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.simulators.aligned import batched, predicted_classes, run_on_ir_grid
from snnc.simulators.early_exit import decide_on_output
from snnc.simulators.float_reference import run_float
from snnc.simulators.traces import Traces


def compile_folder(model: Path, target: str, out: Path, compression: dict | None = None, **load_options) -> dict:
    """Compile ``model`` for ``target`` into the folder ``out``; returns the compile report (what
    ``report.json`` holds). ``load_options`` (dt_s, reset, comparison) go to the model loader (NIR needs
    dt_s and reset); ``compression``: optional choices, fields of the passes' options (calibration,
    weight_bits, weight_rounding, prune_sparsity, prune_method, progress). A pruned float graph is also
    written as pruned.snnc. ``out`` must be new, empty or an earlier compile's folder
    (see ``snnc.compiler.artifacts``)."""
    check_output_folder(out)
    graph = load_model(model, **load_options)
    model_sha256 = file_sha256(model)
    result = compile_graph(graph, target, **(compression or {}))
    report = {"model": str(model), "model_sha256": model_sha256, "target": target, "passes": result.reports}
    report.update(model_record(graph, load_options, (compression or {}).get("calibration")))
    write_compiled(out, model, model_sha256, graph, result, report)
    return report


def model_record(graph: Graph, load_options: dict, calibration) -> dict:
    """Report entries about the model itself, present only when they say something (so a plain compile's
    report.json stays as it was): the load options given (NIR's dt and reset), liveness warnings."""
    record = {}
    options = {k: v for k, v in load_options.items() if v is not None}
    if options:
        record["model_options"] = options
    liveness = compile_liveness(graph, calibration)
    if liveness_lines(liveness):
        record["liveness"] = liveness
    return record


def export_graph(model: Path, fmt: str, out: Path, **load_options) -> dict:
    """Write ``model`` (any readable format, or a compiled directory) in the writable format ``fmt``
    (``snnc.frontends.formats``). ONNX and NIR take the float source graph; .net takes the lowered
    (Loihi integer) graph, compiled for the emulator when ``model`` holds a float one, and is written with
    the load options the model was read with (``load_options``; a compiled directory: those its compile
    recorded, and no others may be given). Returns the load options reading ``out`` back needs (a .net
    file does not store netx's periodic reset, spike_exp or graded input width; ``{}``: none)."""
    writer = export_format(fmt)
    if model.is_dir():
        _refuse_load_options(model, load_options)
        graph = load_compiled_graph(model, LOWERED_FILE if writer.exports_lowered else SOURCE_FILE)
        load_options = load_report(model).get("model_options") or {}
    else:
        graph = load_model(model, **load_options)
    if writer.exports_lowered and graph.timing != "hop_latency":
        graph = compile_graph(graph, "emulator").graph
    return writer.export(graph, out, **load_options)


def _refuse_load_options(compiled: Path, load_options: dict) -> None:
    """A compiled folder's graph was loaded with the options its compile recorded: others would not act."""
    given = {k: v for k, v in load_options.items() if v is not None}
    if given:
        name, value = next(iter(given.items()))
        raise UnsupportedError(str(compiled), name, "none for a compiled folder (its graph was loaded with the "
                               "options its compile recorded, which export uses; recompile to change them)", value)


def inspected_graph(path: Path, source: bool) -> Graph:
    """The graph ``snnc inspect`` prints: a model file's, or a compiled folder's lowered (``source``: float)."""
    if path.is_dir():
        return load_compiled_graph(path, SOURCE_FILE if source else LOWERED_FILE)
    return load_model(path)


@dataclass(frozen=True)
class RunOutcome:
    """What one backend produced on a compiled folder: ``traces`` on the float model's step grid, the
    ``output`` node, the run-time ``policy`` of ``--compress-timesteps`` (None: every step) and the inputs
    ``x`` it ran."""

    traces: Traces
    output: str
    policy: dict | None
    x: np.ndarray

    @property
    def output_counts(self) -> np.ndarray:
        """Spikes of each output neuron, summed over samples and steps."""
        return self.traces.spikes[self.output].sum(axis=(0, 1))


def simulate_compiled(compiled: Path, data: InputData, backend: str, batch_size: int) -> RunOutcome:
    """Run a backend on a compiled folder; a policy chosen by ``--compress-timesteps`` (steps, early exit)
    is applied as the hardware would run it."""
    graph = load_compiled_graph(compiled, SOURCE_FILE if backend == "float" else LOWERED_FILE)
    policy = None if backend == "float" else compiled_policy(compiled)
    x = policy_input(data, graph, policy)
    traces = simulate(graph, x, backend, batch_size, compiled_backends(compiled))
    return RunOutcome(traces, graph.outputs[0], policy, x)


def policy_input(data: InputData, graph: Graph, policy: dict | None) -> np.ndarray:
    """The graph's input, cut to the policy's steps."""
    x = data.for_graph(graph, policy)
    return x[:, :policy["steps"]] if policy else x


@dataclass(frozen=True)
class PolicyUse:
    """How a compressed run-time policy ran: at most ``max_steps`` steps, early exit at a lead of
    ``exit_margin`` output spikes (None: never), ``mean_steps`` steps per sample on average."""

    max_steps: int
    exit_margin: int | None
    mean_steps: float


@dataclass(frozen=True)
class Decision:
    """Each sample's top class (``predictions``, after the policy's early exit when there is one), the
    policy's use (None without a policy) and, with labels, the ``accuracy`` over ``labelled`` samples."""

    predictions: np.ndarray
    policy: PolicyUse | None
    accuracy: float | None
    labelled: int


def decide(traces: Traces, output: str, y, policy: dict | None) -> Decision:
    """The top class per sample of ``output``'s spike counts, after the policy's early exit when there
    is one; the accuracy against labels ``y`` (None: no labels)."""
    predictions, used = predicted_classes(traces, output), None
    if policy:
        predictions, steps = decide_on_output(traces.spikes[output], policy["exit_margin"])
        used = PolicyUse(traces.spikes[output].shape[1], policy["exit_margin"], float(steps.mean()))
    accuracy = None if y is None else float(np.mean(predictions == y))
    return Decision(predictions, used, accuracy, 0 if y is None else len(y))


class FloatCheck(enum.Enum):
    """Whether ``snnc verify`` compared the emulator with the float model, and if not, why."""

    COMPARED = "compared"
    ALREADY_INTEGER = "already_integer"     # e.g. a lava-dl .net: the source is in the target's formats
    STATIC_INPUT = "static_input"           # --compress-timesteps made the input static


@dataclass(frozen=True)
class VerifyOutcome:
    """``snnc verify``'s result: ``ok`` overall; the ``reference`` backend's comparison lines (None: the
    comparison was skipped); whether the float model was compared and, if it was, the agreement lines and
    the liveness warnings of the float run (``snnc.compiler.liveness``); ``netx_lines``: the comparison
    with lava-dl netx (``--reference netx``; empty when not asked for)."""

    ok: bool
    reference: str
    reference_lines: tuple[str, ...] | None
    float_check: FloatCheck
    agreement_lines: tuple[str, ...] = ()
    liveness_lines: tuple[str, ...] = ()
    netx_lines: tuple[str, ...] = ()


def verify_compiled(compiled: Path, data: InputData, with_reference: bool, batch_size: int,
                    netx: bool = False) -> VerifyOutcome:
    """The emulator must equal the target's reference exactly (Lava: spikes, u, v of every node; NEST:
    spikes after its documented lag) and agree with the float model within the bounds of
    ``snnc.compiler.float_agreement`` (checked also without the reference). ``netx``: also run lava-dl
    netx's own network built from the ``.net`` file the folder was compiled from (``netx_reference``) and
    require the emulator to equal it (``snnc.backends.lava_loihi2.netx.compare_with_netx``)."""
    lowered = load_compiled_graph(compiled, LOWERED_FILE)
    source = load_compiled_graph(compiled, SOURCE_FILE)
    backends = compiled_backends(compiled)
    netx_file = netx_reference(compiled) if netx else None
    if netx_file is not None:
        _check_netx(source, lowered, netx_file)
    policy = compiled_policy(compiled)
    x, y = data.for_graph(lowered, policy), data.y
    emulated = simulate(lowered, x, EMULATE, batch_size, backends, record_state=with_reference or netx)
    ok, lines, netx_lines = True, None, ()
    if with_reference:
        run = lambda graph, inputs, backend: simulate(graph, inputs, backend, batch_size, backends, True)  # noqa: E731
        ok, lines = backends.compare_with_reference(lowered, x, y, emulated, run)
        lines = tuple(lines)
    if netx_file is not None:
        netx_ok, netx_lines = _compare_with_netx(source, lowered, netx_file, x, emulated)
        ok = ok and netx_ok
    if source.timing != "zero_latency":
        return VerifyOutcome(ok, backends.reference, lines, FloatCheck.ALREADY_INTEGER, netx_lines=netx_lines)
    if made_static(policy):
        return VerifyOutcome(ok, backends.reference, lines, FloatCheck.STATIC_INPUT, netx_lines=netx_lines)
    reference = simulate(source, x, "float", batch_size, backends)
    lowering = load_report(compiled)["passes"].get("lower_loihi", {})
    agreed, agreement = float_agreement(source, reference, in_float_units(emulated, lowering), y)
    live, warnings = verify_liveness(source, reference.spikes, f"the {len(x)} verify samples")
    return VerifyOutcome(ok and agreed and live, backends.reference, lines, FloatCheck.COMPARED, tuple(agreement),
                         tuple(warnings), netx_lines)


@dataclass(frozen=True)
class NetxFile:
    """The ``.net`` file a folder was compiled from (unchanged since: its sha256 is the recorded one) and
    the netx loading options the compile used (every ``NetOptions`` field: ``--num-layers``,
    ``--reset-interval``, ``--skip-layers``, ``--spike-exp``, ``--input-shape``, ...)."""

    path: Path
    options: NetOptions


def netx_reference(compiled: Path) -> NetxFile:
    """What ``--reference netx`` rebuilds netx's network from: the model file recorded in the folder's
    report, refused (typed) unless it is a lava-dl ``.net`` file (only Loihi targets compile one), still
    present and unchanged."""
    report = load_report(compiled)
    model = Path(report["model"]) if isinstance(report.get("model"), str) else None
    if model is None or model.suffix != ".net":
        raise UnsupportedError(str(compiled), "model", "a lava-dl .net file (netx loads .net files only)",
                               str(model) if model is not None else "none recorded")
    if not model.is_file():
        raise ModelFileError(str(model), "--reference netx rebuilds netx's network from the .net file this "
                             f"folder was compiled from; it is missing (run verify where '{model}' resolves)")
    if file_sha256(model) != report.get("model_sha256"):
        raise ModifiedArtifactError(str(model), "sha256 differs from the one snnc compile recorded: netx would "
                                    "run another network than the one compiled; recompile")
    return NetxFile(model, net_options(report.get("model_options") or {}))


def _check_netx(source: Graph, lowered: Graph, netx_file: NetxFile) -> None:
    """Before anything runs: refuse what netx cannot build or feed (``snnc.backends.lava_loihi2.netx``)."""
    from snnc.backends.lava_loihi2.netx import check_netx_input
    check_netx_builds(netx_file.path, netx_file.options)
    check_netx_input(source, lowered)


def _compare_with_netx(source: Graph, lowered: Graph, netx_file: NetxFile, x: np.ndarray,
                       emulated: Traces) -> tuple[bool, tuple[str, ...]]:
    """The emulator's traces (of ``lowered``) against netx running ``netx_file`` (layers of ``source``)."""
    from snnc.backends.lava_loihi2.netx import compare_with_netx
    ok, lines = compare_with_netx(source, netx_file.path, netx_file.options, x, emulated)
    return ok, tuple(lines)


def simulate(graph: Graph, x: np.ndarray, backend: str, batch_size: int, backends: TargetBackends,
             record_state: bool = False) -> Traces:
    """Run ``backend`` (one of the target's, or "float") on ``x`` in batches (Lava: one sample at a time),
    with a progress bar when there is more than one batch; traces on the graph's step grid."""
    _check_backend(graph, backend, backends)
    if backend == "float":
        runner = lambda part: run_float(graph, part, record_state=record_state)  # noqa: E731
    else:
        run = backends.runner(backend)
        runner = (lambda part: run_on_ir_grid(graph, part, run, record_state)) if run else \
            (lambda part: run_on_ir_grid(graph, part, record_state=record_state))
    size = 1 if backend == "lava" else batch_size
    bar = (lambda it: tqdm(it, desc=backend, unit="batch" if size > 1 else "sample",
                           disable=len(x) <= size, leave=False))
    return batched(runner, x, size, bar)


def _check_backend(graph: Graph, backend: str, backends: TargetBackends) -> None:
    """Each backend runs one kind of graph; asking for another is an error, never a silent substitute."""
    allowed = ("float",) if graph.timing == "zero_latency" else backends.backends
    if backend not in allowed:
        raise UnsupportedError(graph.name, "backend", "|".join(allowed) + " for this compiled graph", backend)
