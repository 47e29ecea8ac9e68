"""What each target's compiled artifact runs on and writes, as data: the CLI commands look the compiled
target up here (``report.json`` records it) instead of inspecting a graph's node types.

Per target: the bit-exact emulator, the reference simulator ``snnc verify`` compares it with and the
backends ``snnc run`` accepts, the runnable script written next to the artifact, and the lines that
describe the target's lowering in the compile summary. Heavy simulators (Lava, NEST) are imported only
when used.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from snnc.ir.graph import Graph
from snnc.targets.catalog import TARGETS


@dataclass(frozen=True)
class TargetBackends:
    """``runners``: backend name ("emulator" first) -> loader of its ``run(graph, x, record_state)`` on
    the hop-latency grid (a loader returning None: the Loihi step engine ``run_on_ir_grid`` uses by
    default); ``reference``: the backend ``snnc verify`` compares the emulator with;
    ``write_artifacts(graph, out)`` (None: nothing beside the IR);
    ``lowering_lines(report)``: the compile summary's per-layer table;
    ``compare_with_reference(lowered, x, y, emulated, simulate) -> (ok, lines)``, where
    ``simulate(graph, x, backend)`` runs a backend on the hop-latency grid recording states."""

    reference: str
    runners: dict[str, Callable[[], Callable | None]]
    write_artifacts: Callable[[Graph, Path], list[Path]] | None
    lowering_lines: Callable[[dict], list[str]]
    compare_with_reference: Callable

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(self.runners)

    def runner(self, backend: str) -> Callable | None:
        return self.runners[backend]()


def _lava():
    from snnc.backends.lava_loihi2.run import run_lava
    return run_lava


def _spinnaker_emulator():
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    return run_spinnaker


def _nest():
    from snnc.backends.spinnaker.commands import nest_runner
    return nest_runner()


def _lava_script(graph: Graph, out: Path) -> list[Path]:
    from snnc.backends.lava_loihi2.script import write_lava_script
    return [write_lava_script(out)]


def _pynn_script(graph: Graph, out: Path) -> list[Path]:
    from snnc.backends.spinnaker.commands import write_artifacts
    return write_artifacts(graph, out)


def _loihi_lines(report: dict) -> list[str]:
    from snnc.backends.lava_loihi2.report import lowering_lines
    return lowering_lines(report)


def _spinnaker_lines(report: dict) -> list[str]:
    from snnc.backends.spinnaker.commands import report_lines
    return report_lines(report)


def _compare_with_lava(lowered: Graph, x, y, emulated, simulate) -> tuple[bool, list[str]]:
    """Lava fixed_pt must reproduce the emulator's spikes, u and v of every node at every step."""
    from snnc.simulators.traces import first_divergence
    divergence = first_divergence(emulated, simulate(lowered, x, "lava"))
    return divergence is None, ["emulator vs Lava fixed_pt: " + (
        "identical spikes, u and v at every step for every node" if divergence is None else f"MISMATCH: {divergence}")]


def _compare_with_nest(lowered: Graph, x, y, emulated, simulate) -> tuple[bool, list[str]]:
    from snnc.backends.spinnaker.commands import verify_against_nest
    return verify_against_nest(lowered, x, y)


_LOIHI_RUNNERS = {"emulator": lambda: None, "lava": _lava}
BACKENDS = {
    "loihi2": TargetBackends("lava", _LOIHI_RUNNERS, _lava_script, _loihi_lines, _compare_with_lava),
    "emulator": TargetBackends("lava", _LOIHI_RUNNERS, None, _loihi_lines, _compare_with_lava),
    "spinnaker": TargetBackends("nest", {"emulator": _spinnaker_emulator, "nest": _nest}, _pynn_script,
                                _spinnaker_lines, _compare_with_nest),
}
assert set(BACKENDS) == set(TARGETS), "every target in the catalog needs its backends listed"
