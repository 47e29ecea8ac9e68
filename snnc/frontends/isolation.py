"""Parse an untrusted file in a child process that a hang or a memory bomb cannot take down with it.

HDF5's C library can loop on a corrupt file (a damaged heap of variable-length strings) where no Python
signal reaches it, and a declared size can hide in places ``hdf5_guard`` does not see. ``load_isolated``
forks: the child sets an address-space limit (``resource.RLIMIT_AS``: what it already maps plus
``IsolationLimits.memory_bytes``), runs the loader and writes the resulting graph with
``snnc.ir.serialize.save_graph`` (plain arrays and JSON); the parent waits at most
``IsolationLimits.seconds``, kills the child with SIGKILL on overrun, and reads the graph back with the
schema-checked ``load_graph`` (``allow_pickle=False``): nothing the child sends is executed or unpickled.

A typed error in the child (``SnncError``) reaches the caller as the same class with the same message; a
child killed by a signal (the C reader crashed on the file) is a ``ModelFileError``. Any other exception
is a bug in snnc, not a property of the file: it is re-raised as ``RuntimeError``
naming the original type, so it is neither hidden nor dressed up as a file error.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import resource
import select
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snnc.errors import ModelFileError, SnncError, Violation
from snnc.ir.graph import Graph
from snnc.ir.serialize import load_graph, save_graph

_OK, _TYPED, _MEMORY, _OTHER = 0, 2, 3, 4


@dataclass(frozen=True)
class IsolationLimits:
    """Wall-clock seconds and extra address space (bytes) one parse may use."""

    seconds: float = 60.0
    memory_bytes: int = 2 << 30      # HDF5Limits.cap_bytes: no declared dataset needs more


def load_isolated(load: Callable[[], Graph], path: str | Path, limits: IsolationLimits = IsolationLimits()) -> Graph:
    """``load()`` run in a forked child under ``limits``; its graph, or its error, in this process."""
    with tempfile.TemporaryDirectory(prefix="snnc-parse-") as folder:
        graph_file, error_file = Path(folder, "graph.snnc"), Path(folder, "error.json")
        pid = os.fork()
        if pid == 0:                                   # child: never returns
            _run_child(load, graph_file, error_file, limits.memory_bytes)
        code = _wait(pid, limits.seconds)
        if code is None:
            raise ModelFileError(str(path), f"reading took longer than {limits.seconds:g} s and was stopped "
                                            "(a corrupt or hostile file; IsolationLimits.seconds)")
        if code == _OK:
            return load_graph(graph_file)
        _raise_child_error(path, code, error_file, limits)


def _run_child(load, graph_file: Path, error_file: Path, memory_bytes: int) -> None:
    code = _OTHER
    try:
        _limit_address_space(memory_bytes)
        save_graph(load(), graph_file)
        code = _OK
    except SnncError as exc:
        code = _TYPED
        error_file.write_text(json.dumps({"module": type(exc).__module__, "class": type(exc).__qualname__,
                                          "message": str(exc), "fields": _text_fields(exc)}))
    except MemoryError:
        code = _MEMORY
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a bug, never swallowed
        error_file.write_text(json.dumps({"class": type(exc).__name__, "message": str(exc)[:300]}))
    finally:
        os._exit(code)


def _limit_address_space(extra: int) -> None:
    mapped = process_memory_bytes("VmSize")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = mapped + extra
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))


def process_memory_bytes(field: str = "VmSize") -> int:
    """This process's ``field`` of /proc/self/status in bytes (VmSize: mapped address space, VmHWM: peak
    resident set); 0 where the field is missing."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    return 0


def _wait(pid: int, seconds: float) -> int | None:
    """The child's exit code, or None after killing it at the deadline (woken by the child's pidfd the
    moment it exits)."""
    descriptor = os.pidfd_open(pid)
    try:
        ready = select.select([descriptor], [], [], seconds)[0]
    finally:
        os.close(descriptor)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _text_fields(exc: SnncError) -> dict:
    """The error's attributes that are text or violations (``path``, ``node``, ``field``, ``violations``)."""
    fields = {}
    for key, value in vars(exc).items():
        if isinstance(value, str):
            fields[key] = value
        elif isinstance(value, Violation):
            fields[key] = {"violation": dataclasses.asdict(value)}
        elif isinstance(value, list) and all(isinstance(v, Violation) for v in value):
            fields[key] = {"violations": [dataclasses.asdict(v) for v in value]}
    return fields


def _field_value(value):
    if isinstance(value, dict) and "violation" in value:
        return Violation(**value["violation"])
    if isinstance(value, dict) and "violations" in value:
        return [Violation(**v) for v in value["violations"]]
    return value


def _raise_child_error(path, code: int, error_file: Path, limits: IsolationLimits):
    if code == _MEMORY:
        raise ModelFileError(str(path), f"reading needed more than {limits.memory_bytes} bytes of memory and was "
                                        "stopped (IsolationLimits.memory_bytes)")
    if code < 0:      # killed by a signal: a C library (HDF5) crashed on the file, nothing of snnc's ran there
        raise ModelFileError(str(path), f"the file crashed its C reader ({signal.Signals(-code).name}); a corrupt "
                                        "or hostile file")
    payload = json.loads(error_file.read_text()) if error_file.exists() else {}
    if code == _TYPED:
        raise _typed_error(payload)
    raise RuntimeError(f"reading '{path}' failed in the parser process with exit code {code}: "
                       f"{payload.get('class', 'no exception')}: {payload.get('message', '')}")


def _typed_error(payload: dict) -> SnncError:
    """The child's SnncError rebuilt as the same class (looked up only inside snnc) and message."""
    cls = SnncError
    if str(payload.get("module", "")).startswith("snnc."):
        found = getattr(importlib.import_module(payload["module"]), payload["class"], None)
        if isinstance(found, type) and issubclass(found, SnncError):
            cls = found
    error = cls.__new__(cls)
    Exception.__init__(error, payload.get("message", ""))
    for key, value in payload.get("fields", {}).items():
        setattr(error, key, _field_value(value))
    return error
