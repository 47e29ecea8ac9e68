"""What each target's compiled artifact runs on and writes: the CLI commands look the compiled target up
here (``report.json`` records it) instead of inspecting a graph's node types.

The backends register their parts against the names a registered target carries
(``snnc.targets.target``): per target arithmetic (``ARITHMETIC``, keyed by ``TargetSpec.arithmetic``) the
bit-exact emulator (backend ``EMULATE``), the other run backends, the reference simulator ``snnc verify``
compares the emulator with, and the lines that describe the lowering in the compile summary; per script
name (``SCRIPTS``, keyed by ``Target.script``) the runnable script written next to the artifact.
``BACKENDS`` is computed from the target registry. Heavy simulators (Lava, NEST) are imported only when
used.

The emulator *backend* is called "emulate" so it cannot be confused with the "emulator" *target*
(Loihi arithmetic without capacity limits).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from snnc.ir.graph import Graph
from snnc.targets.catalog import TARGETS
from snnc.targets.target import Target

EMULATE = "emulate"


@dataclass(frozen=True)
class TargetBackends:
    """``runners``: backend name (``EMULATE`` first) -> loader of its ``run(graph, x, record_state)`` on
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
        """The run backends of the target, by name (``snnc run --backend`` choices besides float)."""
        return tuple(self.runners)

    def runner(self, backend: str) -> Callable | None:
        """The runner of ``backend`` (``runner(graph, x, record_state) -> Traces``), imported on demand; None: the
        target's default numpy emulator."""
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
    from snnc.simulators.traces import first_divergence, state_names
    divergence = first_divergence(emulated, simulate(lowered, x, "lava"))
    names = state_names(emulated) or ["u", "v"]
    compared = ", ".join(["spikes"] + names[:-1]) + " and " + names[-1]
    return divergence is None, ["emulator vs Lava fixed_pt: " + (
        f"identical {compared} at every step for every node" if divergence is None else f"MISMATCH: {divergence}")]


def _compare_with_nest(lowered: Graph, x, y, emulated, simulate) -> tuple[bool, list[str]]:
    from snnc.backends.spinnaker.commands import verify_against_nest
    return verify_against_nest(lowered, x, y)


@dataclass(frozen=True)
class ArithmeticBackends:
    """What every target of one arithmetic shares (fields as in ``TargetBackends``)."""

    reference: str
    runners: dict[str, Callable[[], Callable | None]]
    lowering_lines: Callable[[dict], list[str]]
    compare_with_reference: Callable


ARITHMETIC = {
    "loihi": ArithmeticBackends("lava", {EMULATE: lambda: None, "lava": _lava}, _loihi_lines, _compare_with_lava),
    "spinnaker": ArithmeticBackends("nest", {EMULATE: _spinnaker_emulator, "nest": _nest}, _spinnaker_lines,
                                    _compare_with_nest),
}
SCRIPTS = {"lava": _lava_script, "pynn": _pynn_script}


def backends_of(target: Target) -> TargetBackends:
    """The backends of a registered target, from its arithmetic and script names."""
    shared = ARITHMETIC[target.arithmetic]
    script = SCRIPTS[target.script] if target.script is not None else None
    return TargetBackends(shared.reference, shared.runners, script, shared.lowering_lines,
                          shared.compare_with_reference)


BACKENDS: dict[str, TargetBackends] = {name: backends_of(target) for name, target in TARGETS.items()}
# Every backend name `snnc run --backend` accepts: "float" (the float reference on the source IR) and
# each target's run backends.
RUN_BACKENDS: tuple[str, ...] = tuple(dict.fromkeys(
    name for target in ARITHMETIC.values() for name in target.runners)) + ("float",)
