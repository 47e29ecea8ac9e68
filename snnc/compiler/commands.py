"""What each CLI command does, as plain functions returning text (testable without a shell)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.compiler.pipeline import compile_graph, pass_names
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.printer import format_graph
from snnc.ir.serialize import load_graph, save_graph
from snnc.simulators.aligned import batched, predicted_classes, run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import is_spinnaker_graph, run_spinnaker
from snnc.simulators.traces import Traces, first_divergence

SOURCE_FILE, LOWERED_FILE, REPORT_FILE, IR_TEXT_FILE = "source.snnc", "lowered.snnc", "report.json", "ir.txt"
PRUNED_FILE = "pruned.snnc"   # the float graph after the prune pass, when it pruned
LAVA_SCRIPT_TARGETS = ("loihi2",)   # targets whose artifacts include a runnable Lava script
SPINNAKER_TARGETS = ("spinnaker",)  # targets whose artifacts include a runnable PyNN script (sPyNNaker/NEST)


def compile_model(model: Path, target: str, out: Path, compression: dict | None = None, **load_options) -> str:
    """``load_options`` (dt_s, reset, comparison) go to the model loader (NIR needs dt_s and reset);
    ``compression``: optional PassOptions fields (calibration, weight_bits, weight_rounding,
    prune_sparsity, prune_method, progress). A pruned float graph is also written as pruned.snnc."""
    graph = load_model(model, **load_options)
    result = compile_graph(graph, target, **(compression or {}))
    out.mkdir(parents=True, exist_ok=True)
    save_graph(graph, out / SOURCE_FILE)
    if result.reports.get("prune", {}).get("changed"):
        save_graph(dict(result.steps)["prune"], out / PRUNED_FILE)
    save_graph(result.graph, out / LOWERED_FILE)
    (out / IR_TEXT_FILE).write_text(format_graph(result.graph))
    report = {"model": str(model), "target": target, "passes": result.reports}
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2, default=_json_default))
    if target in LAVA_SCRIPT_TARGETS:
        from snnc.backends.lava_loihi2.script import write_lava_script
        write_lava_script(out)
    if target in SPINNAKER_TARGETS:
        from snnc.backends.spinnaker.commands import write_artifacts
        write_artifacts(result.graph, out)
    return f"compiled {model} for {target} -> {out}\n" + format_report(report)


def export_model(model: Path, fmt: str, out: Path, **load_options) -> str:
    """Write ``model`` (any readable format, or a compiled directory) as ONNX, NIR or lava-dl .net.
    ONNX and NIR take the float source graph; .net takes the lowered (Loihi integer) graph."""
    if model.is_dir():
        graph = load_graph(model / (LOWERED_FILE if fmt == "net" else SOURCE_FILE))
    else:
        graph = load_model(model, **load_options)
    if fmt == "onnx":
        from snnc.frontends.onnx_export import save_onnx
        save_onnx(graph, out)
    elif fmt == "nir":
        from snnc.frontends.nir_frontend import save_nir
        save_nir(graph, out)
    elif fmt == "net":
        from snnc.frontends.lava_dl_net import save_net
        if graph.timing != "hop_latency":
            graph = compile_graph(graph, "emulator").graph
        save_net(graph, out)
    else:
        raise SnncError(f"unknown export format '{fmt}': choose onnx, nir or net")
    return f"exported {model} as {fmt} -> {out}"


def pass_list(target: str) -> list[str]:
    return [f"{i + 1}. {name}" for i, name in enumerate(pass_names(target))]


def inspect(path: Path, source: bool) -> str:
    if path.is_dir():
        return format_graph(load_graph(path / (SOURCE_FILE if source else LOWERED_FILE)))
    return format_graph(load_model(path))


def load_report(compiled: Path) -> dict:
    try:
        return json.loads((compiled / REPORT_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(str(compiled / REPORT_FILE), f"cannot read compile report: {exc}") from None


def format_report(report: dict) -> str:
    pruning = prune_lines(report["passes"].get("prune", {}))
    if "lower_spinnaker" in report["passes"]:
        from snnc.backends.spinnaker.commands import report_lines
        return "\n".join(pruning + report_lines(report) + core_lines(report))
    lines = pruning + quantization_lines(report["passes"].get("lower_loihi", {}))
    lines += [f"{'layer':<16}{'vth':>8}{'du':>6}{'dv':>6}  {'weight exp / rel. RMS error':<34}warnings"]
    layers = report["passes"].get("lower_loihi", {}).get("layers", {})
    for name, layer in layers.items():
        weights = ", ".join(f"{k}: 2^{layer['weight_exp'][k]} {v:.2%}"
                            for k, v in layer["weight_rel_rms_error"].items())
        lines.append(f"{name:<16}{layer['vth']:>8}{layer['du']:>6}{layer['dv']:>6}  {weights:<34}"
                     f"{'; '.join(layer['warnings']) or '-'}")
    compression = timestep_lines(report["passes"].get("compress_timesteps", {}))
    return "\n".join(lines + core_lines(report) + compression)


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
        lines.append(f"cores: {placed['cores_used']} placed (lower bound {placed['lower_bound']}, "
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


def quantization_lines(lowering: dict) -> list[str]:
    """How weights were quantized when not the default (bits, rounding, calibration)."""
    layers = list(lowering.get("layers", {}).values())
    if not layers or not any(l.get("calibrated") or l.get("weight_bits", 8) != 8 for l in layers):
        return []
    first = layers[0]
    how = "calibrated (PTQ)" if any(l.get("calibrated") for l in layers) else "worst-case scaling"
    return [f"weights: {first['weight_bits']}-bit, {first['rounding']} rounding, {how}"]


def load_input_file(path: Path, samples: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            x = data["x"][:samples]
            y = data["y"][:samples] if "y" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFileError(str(path), f"expected an .npz with array 'x' (and optional 'y'): {exc}") from None
    if y is not None and len(y) != len(x):
        raise ModelFileError(str(path), f"'y' has {len(y)} labels for {len(x)} samples in 'x'")
    return x, y


def run_compiled(compiled: Path, x: np.ndarray, y, backend: str, batch_size: int) -> str:
    graph = load_graph(compiled / (SOURCE_FILE if backend == "float" else LOWERED_FILE))
    traces = _simulate(graph, x, backend, batch_size)
    output = graph.outputs[0]
    counts = traces.spikes[output].sum(axis=(0, 1))
    text = [f"{backend}: {len(x)} samples x {x.shape[1]} steps; output '{output}' spike counts {counts.tolist()}"]
    if y is not None:
        accuracy = float(np.mean(predicted_classes(traces, output) == y))
        text.append(f"accuracy: {accuracy:.4f} ({int(round(accuracy * len(y)))}/{len(y)})")
    return "\n".join(text)


def verify_compiled(compiled: Path, x, y, with_lava: bool, batch_size: int) -> tuple[bool, str]:
    """Emulator vs Lava must agree exactly (spikes, u, v of every node); float agreement is reported."""
    lowered = load_graph(compiled / LOWERED_FILE)
    source = load_graph(compiled / SOURCE_FILE)
    emulated = _simulate(lowered, x, "emulator", batch_size, record_state=with_lava)
    lines, ok = [], True
    if is_spinnaker_graph(lowered):   # reference: NEST on the same PyNN network (with_lava: with reference)
        from snnc.backends.spinnaker.commands import verify_against_nest
        ok, lines = verify_against_nest(lowered, x, y, with_lava)
        with_lava = False
    if with_lava:
        lava = _simulate(lowered, x, "lava", batch_size, record_state=True)
        divergence = first_divergence(emulated, lava)
        ok = divergence is None
        lines.append("emulator vs Lava fixed_pt: " + ("identical spikes, u and v at every step for every node"
                                                      if ok else f"MISMATCH: {divergence}"))
    if source.timing != "zero_latency":   # e.g. a lava-dl .net: the model itself is already integer
        lines.append("float reference: none (the source model is already in the target's integer formats)")
        return ok, "\n".join(lines)
    reference = _simulate(source, x, "float", batch_size)
    lines += _float_agreement(source, reference, emulated, y)
    return ok, "\n".join(lines)


def _float_agreement(source: Graph, reference: Traces, emulated: Traces, y) -> list[str]:
    lines = []
    for name in (n.name for n in source.nodes if n.name in emulated.spikes and n.name in reference.spikes):
        if name in {i.name for i in source.inputs}:
            continue
        same = float(np.mean(reference.spikes[name] == emulated.spikes[name]))
        lines.append(f"emulator vs float reference, '{name}': {same:.4%} of spike slots agree "
                     f"({int(reference.spikes[name].sum())} vs {int(emulated.spikes[name].sum())} spikes)")
    output = source.outputs[0]
    if y is not None:
        for label, traces in (("float reference", reference), ("emulator", emulated)):
            lines.append(f"{label} accuracy: {np.mean(predicted_classes(traces, output) == y):.4f}")
    divergence = first_divergence(reference, emulated, with_states=False)
    if divergence is not None:
        lines.append(f"first float/emulator difference (quantization): {divergence}")
    return lines


def _simulate(graph: Graph, x: np.ndarray, backend: str, batch_size: int, record_state: bool = False) -> Traces:
    _check_backend(graph, backend)
    if backend == "float":
        runner = lambda part: run_float(graph, part, record_state=record_state)  # noqa: E731
    else:
        simulate = _lava_runner() if backend == "lava" else None
        if is_spinnaker_graph(graph):
            simulate = _spinnaker_runner(backend)
        runner = (lambda part: run_on_ir_grid(graph, part, simulate, record_state)) if simulate else \
            (lambda part: run_on_ir_grid(graph, part, record_state=record_state))
    size = 1 if backend == "lava" else batch_size
    bar = (lambda it: tqdm(it, desc=backend, unit="batch" if size > 1 else "sample",
                           disable=len(x) <= size, leave=False))
    return batched(runner, x, size, bar)


def _check_backend(graph: Graph, backend: str) -> None:
    """Each backend runs one kind of graph; asking for another is an error, never a silent substitute."""
    if graph.timing == "zero_latency":
        allowed = ("float",)
    else:
        allowed = ("emulator", "nest") if is_spinnaker_graph(graph) else ("emulator", "lava")
    if backend not in allowed:
        raise UnsupportedError(graph.name, "backend", "|".join(allowed) + " for this compiled graph", backend)


def check_compiled_target(compiled: Path, target: str) -> None:
    """``snnc verify --target X``: the directory must have been compiled for X."""
    found = load_report(compiled).get("target")
    if found != target:
        raise SnncError(f"'{compiled}' was compiled for target '{found}', not '{target}': recompile with "
                        f"--target {target}")


def _spinnaker_runner(backend: str):
    """SpiNNaker-lowered graphs: the integer emulator, or NEST ('nest') on the emitted PyNN network."""
    from snnc.backends.spinnaker.commands import nest_runner
    return nest_runner() if backend == "nest" else run_spinnaker


def _lava_runner():
    from snnc.backends.lava_loihi2.run import run_lava
    return run_lava


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(type(value).__name__)
