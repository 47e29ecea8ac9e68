"""What each CLI command does: a service (``snnc.compiler.services``, typed results), then its text
(``snnc.compiler.formatting``). Testable without a shell; the script ``snnc compile --target loihi2``
writes imports its helpers from here, so the names it uses stay importable from this module."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from snnc.backends.registry import EMULATE
from snnc.compiler import formatting, services
from snnc.compiler.activity_plots import write_plots
from snnc.compiler.activity_report import measure_compiled
from snnc.compiler.artifacts import (  # noqa: F401  (re-exported: the run_on_lava.py script, tests, api)
    IR_TEXT_FILE, LOWERED_FILE, MANIFEST_FILE, PRUNED_FILE, REPORT_FILE, SOURCE_FILE, check_compiled_target,
    compiled_backends, compiled_policy, json_default, load_compiled_graph, load_report,
)
from snnc.compiler.input_files import InputChoice, InputData, digits_input, load_input_file  # noqa: F401
from snnc.compiler.pipeline import pass_names
from snnc.compiler.services import policy_input, simulate_compiled  # noqa: F401  (re-exported)
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import Traces

DIGITS_INPUTS = 64    # values of the default (digits) input of ``snnc report``


def compile_model(model: Path, target: str, out: Path, compression: dict | None = None, **load_options) -> str:
    """``snnc compile``: compile into ``out`` (``services.compile_folder``); the summary it prints."""
    report = services.compile_folder(model, target, out, compression, **load_options)
    return formatting.compile_summary(model, target, out, report)


def export_model(model: Path, fmt: str, out: Path, **load_options) -> str:
    """``snnc export``: write ``model`` in format ``fmt`` (``services.export_graph``); the line it prints (with
    the load options reading the file back needs)."""
    reload_options = services.export_graph(model, fmt, out, **load_options)
    return formatting.export_summary(model, fmt, out, reload_options)


def pass_list(target: str) -> list[str]:
    """``snnc passes``: the target's passes, numbered in pipeline order."""
    return formatting.numbered_passes(pass_names(target))


def inspect(path: Path, source: bool) -> str:
    """``snnc inspect``: the IR text of a model file or of a compiled folder's lowered (or source) graph."""
    return format_graph(services.inspected_graph(path, source))


def run_compiled(compiled: Path, data: InputData, backend: str, batch_size: int) -> str:
    """``snnc run``: output spike counts and, with labels, accuracy (after the policy's early exit)."""
    run = services.simulate_compiled(compiled, data, backend, batch_size)
    return formatting.run_text(backend, run, services.decide(run.traces, run.output, data.y, run.policy))


def outcome_lines(traces: Traces, output: str, y, policy: dict | None) -> list[str]:
    """Accuracy (with labels) of the top class, after the policy's early exit when there is one."""
    return formatting.decision_lines(services.decide(traces, output, y, policy))


def verify_compiled(compiled: Path, data: InputData, with_reference: bool, batch_size: int,
                    netx: bool = False) -> tuple[bool, str]:
    """``snnc verify``: whether the emulator equals the reference (and, ``netx``, lava-dl netx running the
    compiled .net file) and agrees with the float model (``services.verify_compiled``), and the text it
    prints."""
    outcome = services.verify_compiled(compiled, data, with_reference, batch_size, netx)
    return outcome.ok, formatting.verify_text(outcome)


def report(compiled: Path, inputs: InputChoice | None, batch_size: int, plot: Path | None = None,
           as_json: bool = False) -> str:
    """``snnc report``: the compile report, then (``inputs`` not None) the activity measured on them
    (``activity_report.measure_compiled``; the default digits input only when the model takes
    ``DIGITS_INPUTS`` values); ``plot``: also write raster.png and rates.png into that folder; ``as_json``:
    one JSON object (the compile report with an "activity" key)."""
    summary = load_report(compiled)
    backends = compiled_backends(compiled)
    graph = load_compiled_graph(compiled, LOWERED_FILE)
    size = int(np.prod(graph.inputs[0].shape))
    activity, notes = None, []
    if inputs is not None and not inputs.named and size != DIGITS_INPUTS:
        notes.append(formatting.missing_input_note(graph.inputs[0].name, size, DIGITS_INPUTS))
    elif inputs is not None:
        emulate = backends.runner(EMULATE) or run_loihi
        activity, x = measure_compiled(compiled, graph, inputs.load(), batch_size, emulate)
        if plot is not None:
            notes.append(formatting.plots_note(write_plots(graph, x, activity, plot, emulate)))
    if as_json:
        extra = {} if activity is None else {"activity": activity.as_json()}
        return json.dumps(summary | extra, indent=2, default=json_default)
    return formatting.report_text(summary, activity, notes)
