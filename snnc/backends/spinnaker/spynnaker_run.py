"""Real sPyNNaker 7.4.1 in this process: a virtual board (maps, places, routes and writes every core's data,
returns no spikes) or a real machine (``machine_name`` or a spalloc server), configured through a
``spynnaker.cfg`` in a work directory so nothing in the user's home is created or changed.

sPyNNaker reads one user configuration (``~/.spynnaker.cfg`` or the XDG config dirs) and then
``./spynnaker.cfg``. If the user has none, a minimal one is written to the work directory and
``XDG_CONFIG_HOME`` points there while ``setup()`` runs; the local file carries our settings either way.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from snnc.backends.spinnaker.build import batch_spike_times, build_pynn
from snnc.backends.spinnaker.network import TIME_OFFSET_STEPS, describe
from snnc.errors import BackendUnavailableError
from snnc.ir.graph import Graph
from snnc.simulators.traces import Traces, as_input_dict

REPORT_SETTINGS = """[Reports]
default_report_file_path = {reports}
write_application_graph_placer_report = True
write_partitioner_reports = True
keep_dataspec_database = True
"""


@dataclass(frozen=True)
class BoardConfig:
    """Where to run: ``virtual`` (no hardware), a machine by name/IP, or a spalloc server."""

    virtual: bool = True
    machine_name: str | None = None
    spalloc_server: str | None = None
    version: int = 5

    def machine_section(self) -> str:
        """The ``[Machine]`` section of spynnaker.cfg for this board."""
        if self.virtual:
            return f"[Machine]\nvirtual_board = True\nversion = {self.version}\n"
        if self.machine_name:
            return f"[Machine]\nmachineName = {self.machine_name}\nversion = {self.version}\n"
        return f"[Machine]\nspalloc_server = {self.spalloc_server}\n"


def board_from_environment() -> BoardConfig | None:
    """A real board if ``SNNC_SPINNAKER_MACHINE`` (name/IP) or ``SNNC_SPALLOC_SERVER`` is set, else None."""
    machine = os.environ.get("SNNC_SPINNAKER_MACHINE")
    server = os.environ.get("SNNC_SPALLOC_SERVER")
    if machine:
        return BoardConfig(virtual=False, machine_name=machine,
                           version=int(os.environ.get("SNNC_SPINNAKER_VERSION", "5")))
    if server:
        return BoardConfig(virtual=False, spalloc_server=server)
    return None


def import_spynnaker():
    """``pyNN.spiNNaker``, or ``BackendUnavailableError`` saying what to install."""
    try:
        import pyNN.spiNNaker as sim
    except ImportError as exc:
        raise BackendUnavailableError("spinnaker", f"sPyNNaker cannot be imported ({exc}); pip install "
                                      "'sPyNNaker==1!7.4.1'") from None
    return sim


def _user_config_exists() -> bool:
    import appdirs
    name = ".spynnaker.cfg"
    places = (appdirs.site_config_dir(), appdirs.user_config_dir(), os.path.expanduser("~"))
    return any(Path(p, name).is_file() for p in places)


@contextlib.contextmanager
def configured(workdir: Path, board: BoardConfig):
    """Write the cfg files and run the body with sPyNNaker reading them; environment and cwd restored."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = board.machine_section() + "\n" + REPORT_SETTINGS.format(reports=workdir / "reports")
    (workdir / "spynnaker.cfg").write_text(text)
    saved_env = os.environ.get("XDG_CONFIG_HOME")
    saved_cwd = os.getcwd()
    if not _user_config_exists():
        (workdir / ".spynnaker.cfg").write_text(board.machine_section())
        os.environ["XDG_CONFIG_HOME"] = str(workdir)
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        if saved_env is None:
            os.environ.pop("XDG_CONFIG_HOME", None)
        else:
            os.environ["XDG_CONFIG_HOME"] = saved_env


def run_spynnaker(graph: Graph, x, workdir: Path, board: BoardConfig = BoardConfig()) -> tuple[Traces | None, Path]:
    """Build and run the network; returns (traces on the emulator's tick grid or None on a virtual board,
    the run's report directory)."""
    sim = import_spynnaker()
    inputs = as_input_dict(graph, x)
    batch, steps = next(iter(inputs.values())).shape[:2]
    net = describe(graph, batch=batch)
    with configured(workdir, board):
        sim.setup(timestep=net.dt_ms)
        try:
            made = build_pynn(sim, net, {k: batch_spike_times(v, net.dt_ms) for k, v in inputs.items()}, True)
            sim.run((steps + TIME_OFFSET_STEPS + 1) * net.dt_ms)
            traces = None if board.virtual else _read_spikes(graph, net, made, batch, steps)
        finally:
            sim.end()
    return traces, latest_run_directory(workdir / "reports")


def latest_run_directory(reports: Path) -> Path:
    """The newest ``run_*`` report directory sPyNNaker wrote under ``reports``."""
    runs = sorted(reports.glob("**/run_*"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise BackendUnavailableError("spinnaker", f"sPyNNaker wrote no report directory under {reports}")
    return runs[-1]


def _read_spikes(graph: Graph, net, made: dict, batch: int, steps: int) -> Traces:
    """Spikes recorded on the board at tick ``t + TIME_OFFSET_STEPS`` are the emulator's tick t."""
    traces = Traces({}, {})
    for spec in net.populations:
        shape = tuple(graph.node(spec.label).shape)
        size = int(np.prod(shape))
        grid = np.zeros((batch * size, steps), np.uint8)
        for index, train in enumerate(made[spec.label].get_data("spikes").segments[0].spiketrains):
            ticks = np.rint(np.asarray(train.magnitude) / net.dt_ms).astype(np.int64) - TIME_OFFSET_STEPS
            grid[index, ticks[(ticks >= 0) & (ticks < steps)]] = 1
        traces.spikes[spec.label] = grid.reshape(batch, size, steps).transpose(0, 2, 1).reshape(batch, steps, *shape)
    return traces
