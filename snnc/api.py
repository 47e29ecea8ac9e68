"""snnc in Python: the twin of the command line (``snnc.compile``, ``snnc.load``, ``snnc.run``, ``snnc.verify``).

    import snnc
    result = snnc.compile(model, example_input=(64,), target="loihi2", out="out/net")
    print(result.summary)                       # what `snnc compile` prints
    run = snnc.run(result.out, x)               # emulator traces on the float model's step grid
    check = snnc.verify(result.out, x, y)       # emulator vs Lava (or NEST) and vs the float model

``model`` is a model file of any supported format (``.pt`` torch bundle, ``.onnx``, ``.nir``, ``.net``,
``.snnc``), a ``torch.nn.Module`` (with ``example_input``: the input shape without batch and time, or an
example tensor the module's forward takes - one step ``(batch, *shape)``, or ``(steps, batch, *shape)``
for a forward that loops over time or a SpikingJelly multi-step model; any module the tracer
``snnc.frontends.torch_trace`` accepts), or a float IR ``Graph``. Everything goes through the
same code as the CLI, so a compiled folder written here is what ``snnc compile`` writes (with its manifest);
errors are the same typed ``SnncError`` subclasses.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.backends.registry import EMULATE
from snnc.compiler import formatting, services
from snnc.compiler.artifacts import LOWERED_FILE, SOURCE_FILE, load_compiled_graph, load_report
from snnc.compiler.input_files import InputData
from snnc.compiler.slayer_agreement import layer_agreement
from snnc.errors import UnsupportedError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.serialize import save_graph
from snnc.simulators.aligned import predicted_classes
from snnc.simulators.traces import Traces

__all__ = ["CompileResult", "RunResult", "VerifyResult", "compile", "load", "run", "verify"]


@dataclass(frozen=True)
class CompileResult:
    """A compiled folder: where it is, the target, the printed summary, report.json's content and the
    lowered and source graphs."""

    out: Path
    target: str
    summary: str
    report: dict
    graph: Graph
    source: Graph


@dataclass(frozen=True)
class RunResult:
    """One backend's run: ``traces`` (spikes and, where recorded, states per node on the float model's step
    grid), the ``output`` node and its top class per sample (after an early exit policy, if any)."""

    traces: Traces
    output: str
    predictions: np.ndarray


@dataclass(frozen=True)
class VerifyResult:
    """``ok``: the emulator equals the reference exactly and agrees with the float model within the stated
    bounds; ``text``: what ``snnc verify`` prints."""

    ok: bool
    text: str


def compile(model, example_input=None, target: str = "loihi2", out: str | Path | None = None,  # noqa: A001
            compression: dict | None = None, **load_options) -> CompileResult:
    """Compile ``model`` for ``target`` into the folder ``out`` (a new temporary folder when None).
    ``compression``: the pass options of ``snnc compile``'s compression flags (calibration, weight_bits,
    prune_sparsity, ...); ``load_options``: dt_s, reset, comparison for formats that do not store them."""
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="snnc-"))
    with tempfile.TemporaryDirectory(prefix="snnc-model-") as scratch:
        path = _model_file(model, example_input, Path(scratch))
        report = services.compile_folder(path, target, folder, compression, **load_options)
    return CompileResult(folder, target, formatting.compile_summary(path, target, folder, report),
                         load_report(folder), load_compiled_graph(folder, LOWERED_FILE),
                         load_compiled_graph(folder, SOURCE_FILE))


def load(path: str | Path, **load_options) -> Graph:
    """The float IR (or, for a lava-dl ``.net``, the lowered Loihi IR) of a model file."""
    return load_model(Path(path), **load_options)


def run(compiled: str | Path | CompileResult, x, backend: str = EMULATE, y=None,
        batch_size: int = 64) -> RunResult:
    """Run a compiled folder on inputs ``x`` (samples, steps, *input_shape) of 0/1 spikes with a backend of
    its target (the emulator by default, "float" for the source model, "lava" / "nest" where installed)."""
    data = InputData(np.asarray(x), None if y is None else np.asarray(y))
    outcome = services.simulate_compiled(_folder(compiled), data, backend, batch_size)
    return RunResult(outcome.traces, outcome.output, predicted_classes(outcome.traces, outcome.output))


def verify(compiled: str | Path | CompileResult, x, y=None, with_reference: bool = True,
           batch_size: int = 64, model=None, reference: str | None = None) -> VerifyResult:
    """``snnc verify``: the emulator against the target's reference (Lava fixed_pt / NEST; skipped with
    ``with_reference=False``) and against the float model. ``model``: the lava-dl slayer network the folder
    was compiled from; its own forward is then compared with the emulator layer by layer
    (``snnc.compiler.slayer_agreement``), and ``ok`` needs every layer equal. ``reference="netx"`` (a
    folder compiled from a lava-dl ``.net`` file): also lava-dl netx's own network built from that file,
    run on Lava fixed_pt, which every layer must equal (``snnc verify --reference netx``)."""
    if reference not in (None, "netx"):
        raise UnsupportedError("verify", "reference", "None or 'netx'", reference)
    data = InputData(np.asarray(x), None if y is None else np.asarray(y))
    outcome = services.verify_compiled(_folder(compiled), data, with_reference, batch_size, reference == "netx")
    ok, text = outcome.ok, formatting.verify_text(outcome)
    if model is not None:
        source = load_compiled_graph(_folder(compiled), SOURCE_FILE)
        agreed, lines = layer_agreement(model, source, data.for_graph(source))
        ok, text = ok and agreed, "\n".join([text] + lines)
    return VerifyResult(ok, text)


def _folder(compiled) -> Path:
    """The folder of a compile result, or the path given."""
    return compiled.out if isinstance(compiled, CompileResult) else Path(compiled)


def _model_file(model, example_input, scratch: Path) -> Path:
    """A path ``services.compile_folder`` can read: the file itself, or the module / graph saved (as data,
    never code) into ``scratch``."""
    if isinstance(model, (str, Path)):
        return Path(model)
    if isinstance(model, Graph):
        path = scratch / f"{model.name}.snnc"
        save_graph(model, path)
        return path
    import torch
    if isinstance(model, torch.nn.Module):
        from snnc.frontends.torch_bundle import save_bundle
        if example_input is None:
            raise UnsupportedError(type(model).__name__, "example_input", "the input shape (without batch and "
                                   "time) or an example tensor", "None")
        path = scratch / "model.pt"
        if isinstance(example_input, torch.Tensor):    # traced as it is: one step, a time loop or multi-step
            save_bundle(model, tuple(example_input.shape[1:]), path, name=type(model).__name__,
                        example_input=example_input)
        else:
            save_bundle(model, tuple(example_input), path, name=type(model).__name__)
        return path
    raise UnsupportedError(type(model).__name__, "model", "a model file path, a torch.nn.Module or an snnc "
                           "Graph", type(model).__name__)
