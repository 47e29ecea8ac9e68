"""What each CLI command does: a service (``snnc.compiler.services``, typed results), then its text
(``snnc.compiler.formatting``). Testable without a shell; the script ``snnc compile --target loihi2``
writes imports its helpers from here, so the names it uses stay importable from this module."""
from __future__ import annotations

from pathlib import Path

from snnc.backends.registry import EMULATE
from snnc.compiler import formatting, services
from snnc.compiler.artifacts import (  # noqa: F401  (re-exported: the run_on_lava.py script, tests, api)
    IR_TEXT_FILE, LOWERED_FILE, MANIFEST_FILE, PRUNED_FILE, REPORT_FILE, SOURCE_FILE, check_compiled_target,
    compiled_backends, compiled_policy, load_compiled_graph, load_report,
)
from snnc.compiler.input_files import InputData, digits_input, load_input_file  # noqa: F401  (re-exported)
from snnc.compiler.pipeline import pass_names
from snnc.compiler.services import policy_input, simulate_compiled  # noqa: F401  (re-exported)
from snnc.ir.printer import format_graph
from snnc.simulators.traces import Traces


def compile_model(model: Path, target: str, out: Path, compression: dict | None = None, **load_options) -> str:
    """``snnc compile``: compile into ``out`` (``services.compile_folder``); the summary it prints."""
    report = services.compile_folder(model, target, out, compression, **load_options)
    return formatting.compile_summary(model, target, out, report)


def export_model(model: Path, fmt: str, out: Path, **load_options) -> str:
    """``snnc export``: write ``model`` in format ``fmt`` (``services.export_graph``); the line it prints."""
    services.export_graph(model, fmt, out, **load_options)
    return formatting.export_summary(model, fmt, out)


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


def verify_compiled(compiled: Path, data: InputData, with_reference: bool, batch_size: int) -> tuple[bool, str]:
    """``snnc verify``: whether the emulator equals the reference and agrees with the float model
    (``services.verify_compiled``), and the text it prints."""
    outcome = services.verify_compiled(compiled, data, with_reference, batch_size)
    return outcome.ok, formatting.verify_text(outcome)
