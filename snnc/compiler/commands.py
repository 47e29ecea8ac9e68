"""What each CLI command does, as plain functions returning text (testable without a shell)."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.backends.registry import BACKENDS, EMULATE, TargetBackends
from snnc.compiler.artifacts import MANIFEST_FILE, ArtifactWriter, check_output_folder, file_sha256, read_artifact
from snnc.compiler.float_agreement import float_agreement
from snnc.compiler.liveness import compile_liveness, liveness_lines, verify_liveness
from snnc.compiler.pipeline import compile_graph, pass_names
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.formats import export_format
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput
from snnc.ir.printer import format_graph
from snnc.ir.serialize import graph_bytes, load_graph
from snnc.simulators.aligned import batched, predicted_classes, run_on_ir_grid
from snnc.simulators.early_exit import decide_on_output
from snnc.simulators.float_reference import run_float
from snnc.simulators.traces import Traces

SOURCE_FILE, LOWERED_FILE, REPORT_FILE, IR_TEXT_FILE = "source.snnc", "lowered.snnc", "report.json", "ir.txt"
PRUNED_FILE = "pruned.snnc"   # the float graph after the prune pass, when it pruned


def compile_model(model: Path, target: str, out: Path, compression: dict | None = None, **load_options) -> str:
    """``load_options`` (dt_s, reset, comparison) go to the model loader (NIR needs dt_s and reset);
    ``compression``: optional choices, fields of the passes' options (calibration, weight_bits,
    weight_rounding, prune_sparsity, prune_method, progress). A pruned float graph is also written as
    pruned.snnc.
    ``out`` must be new, empty or an earlier compile's folder (see ``snnc.compiler.artifacts``)."""
    check_output_folder(out)
    graph = load_model(model, **load_options)
    model_sha256 = file_sha256(model)
    result = compile_graph(graph, target, **(compression or {}))
    report = {"model": str(model), "model_sha256": model_sha256, "target": target, "passes": result.reports}
    report.update(model_record(graph, load_options, (compression or {}).get("calibration")))
    writer = ArtifactWriter(out, model, model_sha256)
    writer.open()
    writer.add(SOURCE_FILE, graph_bytes(graph))
    if result.reports.get("prune", {}).get("changed"):
        writer.add(PRUNED_FILE, graph_bytes(dict(result.steps)["prune"]))
    writer.add(LOWERED_FILE, graph_bytes(result.graph))
    writer.add(IR_TEXT_FILE, format_graph(result.graph).encode())
    writer.add(REPORT_FILE, json.dumps(report, indent=2, default=_json_default).encode())
    if BACKENDS[target].write_artifacts is not None:
        writer.add_generated(lambda folder: BACKENDS[target].write_artifacts(result.graph, folder))
    writer.close()
    return f"compiled {model} for {target} -> {out}\n" + format_report(report)


def load_compiled_graph(compiled: Path, name: str) -> Graph:
    """One graph of a compiled folder, after checking it is the file ``snnc compile`` wrote."""
    return load_graph(compiled / name, read_artifact(compiled, name))


def export_model(model: Path, fmt: str, out: Path, **load_options) -> str:
    """Write ``model`` (any readable format, or a compiled directory) in the writable format ``fmt``
    (``snnc.frontends.formats``). ONNX and NIR take the float source graph; .net takes the lowered
    (Loihi integer) graph, compiled for the emulator when ``model`` holds a float one."""
    writer = export_format(fmt)
    if model.is_dir():
        graph = load_compiled_graph(model, LOWERED_FILE if writer.exports_lowered else SOURCE_FILE)
    else:
        graph = load_model(model, **load_options)
    if writer.exports_lowered and graph.timing != "hop_latency":
        graph = compile_graph(graph, "emulator").graph
    writer.export(graph, out)
    return f"exported {model} as {fmt} -> {out}"


def pass_list(target: str) -> list[str]:
    return [f"{i + 1}. {name}" for i, name in enumerate(pass_names(target))]


def inspect(path: Path, source: bool) -> str:
    if path.is_dir():
        return format_graph(load_compiled_graph(path, SOURCE_FILE if source else LOWERED_FILE))
    return format_graph(load_model(path))


def load_report(compiled: Path) -> dict:
    """``report.json`` of a compiled directory: an object with a string ``target`` and a ``passes`` object."""
    path = compiled / REPORT_FILE
    try:
        report = json.loads(read_artifact(compiled, REPORT_FILE).decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(str(path), f"cannot read compile report: {exc}") from None
    if not isinstance(report, dict):
        raise ModelFileError(str(path), f"expected a JSON object, got {type(report).__name__}: recompile with "
                             "snnc compile")
    for key, kind in (("target", str), ("passes", dict)):
        if not isinstance(report.get(key), kind):
            found = "missing" if key not in report else type(report[key]).__name__
            raise ModelFileError(str(path), f"field '{key}': expected {'a string' if kind is str else 'an object'}, "
                                 f"got {found}: recompile with snnc compile")
    return report


def format_report(report: dict) -> str:
    """The compile summary: pruning, the target's lowering table, cores, timestep compression."""
    backends = BACKENDS[report["target"]]     # compile_model's target, or checked by compiled_backends
    lines = prune_lines(report["passes"].get("prune", {})) + backends.lowering_lines(report)
    lines += core_lines(report) + timestep_lines(report["passes"].get("compress_timesteps", {}))
    return "\n".join(model_option_lines(report) + lines + liveness_lines(report.get("liveness", {})))


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


def model_option_lines(report: dict) -> list[str]:
    """What the model file did not say and the command line stated (NIR's time step and reset kind)."""
    options = report.get("model_options") or {}
    if not options:
        return []
    return ["model options given (--dt, --reset, --comparison; not stored in the model file): " +
            ", ".join(f"{key}={value}" for key, value in sorted(options.items()))]


def timestep_lines(compression: dict) -> list[str]:
    """The run-time policy compress_timesteps chose (nothing if it did not run)."""
    if "chosen" not in compression:
        return []
    chosen, reference, check = compression["chosen"], compression["reference"], compression["validation"]
    exit_rule = "never" if chosen["exit_margin"] is None else f"at a lead of {chosen['exit_margin']} spikes"
    return [f"timestep compression (error budget {compression['epsilon']:.2%}): static input "
            f"{'yes' if chosen['static_input'] else 'no'}, v_init {chosen['v_init_fraction']:g} x threshold, "
            f"threshold x {chosen['threshold_scale']:g}, {chosen['steps']} of {reference['steps']} steps, "
            f"early exit {exit_rule}",
            f"  calibration: {chosen['mean_steps']:.2f} mean steps ({chosen['mean_hardware_steps']:.2f} with "
            f"pipeline latency), accuracy {chosen['accuracy']:.2%} vs {reference['accuracy']:.2%} at "
            f"{reference['steps']} steps; check half: {check['worse']} worse, {check['better']} better of "
            f"{check['samples']}"]


def core_lines(report: dict) -> list[str]:
    """Cores from placement (what the mapping uses) and the per-group budget check's upper bound."""
    placed = report["passes"].get("place_cores", {})
    bound = report["passes"].get("check_design_rules", {}).get("cores_total")
    lines = []
    if "cores_used" in placed:
        extra = f" + {placed['synapse_cores']} synapse cores" if placed.get("synapse_cores") else ""
        lines.append(f"cores: {placed['cores_used']} placed{extra} (lower bound {placed['lower_bound']}, "
                     f"strategy {placed['strategy']})")
    if bound is not None:
        lines.append(f"cores if every group had its own: {bound}")
    return lines


def prune_lines(prune: dict) -> list[str]:
    """Per-layer sparsity and relative membrane error of the prune pass (nothing if it did not run)."""
    if not prune.get("changed"):
        return []
    lines = [f"pruned ({prune['method']}): {prune['sparsity']:.1%} of dense weights are zero "
             f"(target {prune['target_sparsity']:.1%})"]
    for name, layer in prune["layers"].items():
        error = layer["rel_membrane_error"]
        lines.append(f"  {name:<14}{layer['sparsity']:>7.1%} zero  {layer['kept']:>7}/{layer['total']:<7} kept  "
                     f"membrane error {'-' if error is None else f'{error:.2%}'}  ({layer['solver']}"
                     f"{', bias corrected' if layer['bias_corrected'] else ''})")
    return lines


@dataclass(frozen=True)
class InputData:
    """Samples for run/verify/report: ``x`` (samples, steps, *shape) per-step inputs (0/1 spikes, or
    graded values for a static input), labels ``y``, and optionally the static ``values`` (samples,
    *shape) that ``x`` rate-codes at full scale ``levels``: a graph whose input was made static by
    ``--compress-timesteps`` (a ``GradedInput``) is given those values at every step instead."""

    x: np.ndarray
    y: np.ndarray | None = None
    values: np.ndarray | None = None
    levels: int | None = None

    def for_graph(self, graph: Graph) -> np.ndarray:
        static = [n for n in graph.inputs if isinstance(n, GradedInput) and not _read_per_step(graph, n)]
        if not static:
            return self.x
        from snnc.compiler.passes.compress_timesteps import static_input_levels
        expected = static_input_levels(static[0])
        if self.values is None:
            raise UnsupportedError(static[0].name, "input", f"static values: 'values' (samples, *shape) and "
                                   f"'levels' = {expected} in the --input .npz, or --digits (the input was made "
                                   "static by --compress-timesteps)", "spike trains 'x' only")
        if self.levels != expected:
            raise UnsupportedError(static[0].name, "levels", f"{expected} (the full scale the static input "
                                   "was compiled for)", self.levels)
        return np.repeat(np.asarray(self.values)[:, None], self.x.shape[1], axis=1)


def _read_per_step(graph: Graph, node: GradedInput) -> bool:
    """True where neurons read the graded input directly (a sigma-delta net's delta encoder): ``x`` holds
    its per-step integer values, as netx's RingBuffer sends them."""
    consumers = graph.consumers(node.name)
    return bool(consumers) and all(c.ROLE == "neuron" for c in consumers)


# Largest input read or generated for run/verify/report: samples x steps x inputs spike slots (uint8, 128 MiB;
# the digits rate code needs 8 bytes per slot while it is built, the emulator records more per layer).
MAX_INPUT_SLOTS = 2 ** 27


def load_input_file(path: Path, samples: int | None) -> InputData:
    """``x`` and the optional ``y``, ``values`` and ``levels`` of an .npz (see ``InputData``). The sizes
    declared in the file are checked against ``MAX_INPUT_SLOTS`` before any array is read."""
    if not path.is_file():
        raise ModelFileError(str(path), "no such file")
    try:
        if not zipfile.is_zipfile(path):
            raise ModelFileError(str(path), "expected an .npz (a zip of arrays) with array 'x' (and optional "
                                 "'y'); save with np.savez(path, x=..., y=...)")
        with np.load(path, allow_pickle=False) as data:
            _check_input_size(path, _declared_shape(path, data, "x"))
            x = data["x"]
            if x.ndim < 2:
                raise ModelFileError(str(path), f"'x' must be (samples, steps, *shape), got {x.ndim}-D shape "
                                     f"{x.shape}")
            x = x[:samples]
            y = data["y"][:samples] if "y" in data.files else None
            values, levels = _static_values(path, data, samples)
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        raise ModelFileError(str(path), f"expected an .npz with array 'x' (and optional 'y'): {exc}") from None
    if 0 in x.shape[:2]:
        raise ModelFileError(str(path), f"'x' must be (samples, steps, *shape) with samples, steps >= 1, got "
                             f"shape {x.shape}")
    _check_labels(path, x, y)
    if values is not None and len(values) != len(x):
        raise ModelFileError(str(path), f"'values' has {len(values)} static inputs for {len(x)} samples in 'x'")
    return InputData(x, y, values, levels)


def _declared_shape(path: Path, data, key: str) -> tuple[int, ...]:
    """The shape an .npz member declares in its header, read without reading the array."""
    if key not in data.files:
        raise ModelFileError(str(path), f"expected an .npz with array '{key}' (and optional 'y'); it holds "
                             f"{sorted(data.files)}")
    with data.zip.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return tuple(reader(member)[0])


def _check_input_size(source, shape: tuple[int, ...]) -> None:
    """Refuse an input of more than ``MAX_INPUT_SLOTS`` values before it is allocated."""
    slots = int(np.prod(shape, dtype=object))
    if slots > MAX_INPUT_SLOTS:
        raise SnncError(f"input {source}: {' x '.join(map(str, shape))} = {slots} values exceed the cap of "
                        f"{MAX_INPUT_SLOTS} (samples x steps x inputs); use fewer --samples or --steps")


def _check_labels(path: Path, x: np.ndarray, y: np.ndarray | None) -> None:
    """Labels: one integer class per sample; a count equal to x's steps names the swapped axes."""
    if y is None:
        return
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ModelFileError(str(path), f"'y' must be one integer label per sample (1-D), got {y.dtype} "
                             f"shape {y.shape}")
    if len(y) != len(x):
        swapped = (f"; 'x' has {x.shape[1]} steps: are its axes (steps, samples)? snnc reads 'x' as "
                   "(samples, steps, *shape)") if len(y) == x.shape[1] else ""
        raise ModelFileError(str(path), f"'y' has {len(y)} labels for {len(x)} samples in 'x'{swapped}")


def _static_values(path: Path, data, samples: int | None) -> tuple[np.ndarray | None, int | None]:
    """Optional 'values' (static inputs) and 'levels' (their rate code's full scale): both or neither."""
    given = [name for name in ("values", "levels") if name in data.files]
    if not given:
        return None, None
    if len(given) == 1:
        other = "levels" if given[0] == "values" else "values"
        raise ModelFileError(str(path), f"'{given[0]}' needs '{other}' too (static inputs and their rate "
                             "code's full scale)")
    levels = data["levels"]
    if levels.ndim != 0 or levels.dtype.kind not in "iu":
        raise ModelFileError(str(path), f"'levels' must be one integer, got {levels.dtype} {levels.shape}")
    return data["values"][:samples], int(levels)


@dataclass(frozen=True)
class RunOutcome:
    """What one backend produced on a compiled folder: ``traces`` on the float model's step grid, the
    ``output`` node, the run-time ``policy`` of ``--compress-timesteps`` (None: every step) and the inputs
    ``x`` it ran."""

    traces: Traces
    output: str
    policy: dict | None
    x: np.ndarray


def simulate_compiled(compiled: Path, data: InputData, backend: str, batch_size: int) -> RunOutcome:
    """Run a backend on a compiled folder; a policy chosen by ``--compress-timesteps`` (steps, early exit)
    is applied as the hardware would run it."""
    graph = load_compiled_graph(compiled, SOURCE_FILE if backend == "float" else LOWERED_FILE)
    policy = None if backend == "float" else compiled_policy(compiled)
    x = policy_input(data, graph, policy)
    traces = _simulate(graph, x, backend, batch_size, compiled_backends(compiled))
    return RunOutcome(traces, graph.outputs[0], policy, x)


def run_compiled(compiled: Path, data: InputData, backend: str, batch_size: int) -> str:
    """``snnc run``: output spike counts and, with labels, accuracy (after the policy's early exit)."""
    run = simulate_compiled(compiled, data, backend, batch_size)
    counts = run.traces.spikes[run.output].sum(axis=(0, 1))
    text = [f"{backend}: {len(run.x)} samples x {run.x.shape[1]} steps; output '{run.output}' spike counts "
            f"{counts.tolist()}"]
    return "\n".join(text + outcome_lines(run.traces, run.output, data.y, run.policy))


def compiled_policy(compiled: Path) -> dict | None:
    """The run-time policy ``compress_timesteps`` chose for this artifact (None: run every step)."""
    return load_report(compiled)["passes"].get("compress_timesteps", {}).get("chosen")


def policy_input(data: InputData, graph: Graph, policy: dict | None) -> np.ndarray:
    """The graph's input, cut to the policy's steps."""
    x = data.for_graph(graph)
    return x[:, :policy["steps"]] if policy else x


def outcome_lines(traces: Traces, output: str, y, policy: dict | None) -> list[str]:
    """Accuracy (with labels) of the top class, after the policy's early exit when there is one."""
    lines, predictions = [], predicted_classes(traces, output)
    if policy:
        predictions, used = decide_on_output(traces.spikes[output], policy["exit_margin"])
        exit_rule = "never" if policy["exit_margin"] is None else f"at a lead of {policy['exit_margin']} spikes"
        lines.append(f"compressed policy: at most {traces.spikes[output].shape[1]} steps, early exit {exit_rule}; "
                     f"mean steps {used.mean():.2f}")
    if y is not None:
        accuracy = float(np.mean(predictions == y))
        lines.append(f"accuracy: {accuracy:.4f} ({int(round(accuracy * len(y)))}/{len(y)})")
    return lines


def digits_input(steps: int, samples: int | None) -> InputData:
    """The held-out digits: rate-coded spikes, and the pixels for a static-input artifact."""
    from snnc.datasets.digits import PIXEL_MAX, test_pixels, test_spikes
    pixels = test_pixels(samples)
    _check_input_size(f"--digits --steps {steps}", (len(pixels), steps, *pixels.shape[1:]))
    x, y = test_spikes(steps, samples)
    return InputData(x, y, pixels, PIXEL_MAX)


def verify_compiled(compiled: Path, data: InputData, with_reference: bool, batch_size: int) -> tuple[bool, str]:
    """The emulator must equal the target's reference exactly (Lava: spikes, u, v of every node; NEST:
    spikes after its documented lag) and agree with the float model within the bounds of
    ``snnc.compiler.float_agreement`` (checked also without the reference)."""
    lowered = load_compiled_graph(compiled, LOWERED_FILE)
    source = load_compiled_graph(compiled, SOURCE_FILE)
    backends = compiled_backends(compiled)
    x, y = data.for_graph(lowered), data.y
    emulated = _simulate(lowered, x, EMULATE, batch_size, backends, record_state=with_reference)
    ok, lines = True, [f"{backends.reference} comparison skipped"]
    if with_reference:
        simulate = lambda graph, inputs, backend: _simulate(graph, inputs, backend, batch_size, backends, True)  # noqa: E731
        ok, lines = backends.compare_with_reference(lowered, x, y, emulated, simulate)
    if source.timing != "zero_latency":   # e.g. a lava-dl .net: the model itself is already integer
        lines.append("float reference: none (the source model is already in the target's integer formats)")
        return ok, "\n".join(lines)
    if any(isinstance(n, GradedInput) for n in lowered.inputs):
        lines.append("float reference: not compared (the input was made static by --compress-timesteps; "
                     "the float model takes the spike trains)")
        return ok, "\n".join(lines)
    reference = _simulate(source, x, "float", batch_size, backends)
    agreed, agreement = float_agreement(source, reference, emulated, y)
    live, warnings = verify_liveness(source, reference.spikes, f"the {len(x)} verify samples")
    return ok and agreed and live, "\n".join(lines + agreement + warnings)


def compiled_backends(compiled: Path) -> TargetBackends:
    """The backends of the target a directory was compiled for (``report.json``)."""
    target = load_report(compiled).get("target")
    if target not in BACKENDS:
        raise ModelFileError(str(compiled / REPORT_FILE), f"unknown target {target!r}: recompile with snnc compile")
    return BACKENDS[target]


def _simulate(graph: Graph, x: np.ndarray, backend: str, batch_size: int, backends: TargetBackends,
              record_state: bool = False) -> Traces:
    _check_backend(graph, backend, backends)
    if backend == "float":
        runner = lambda part: run_float(graph, part, record_state=record_state)  # noqa: E731
    else:
        simulate = backends.runner(backend)
        runner = (lambda part: run_on_ir_grid(graph, part, simulate, record_state)) if simulate else \
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


def check_compiled_target(compiled: Path, target: str) -> None:
    """``snnc verify --target X``: the directory must have been compiled for X."""
    found = load_report(compiled).get("target")
    if found != target:
        raise SnncError(f"'{compiled}' was compiled for target '{found}', not '{target}': recompile with "
                        f"--target {target}")


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(type(value).__name__)
