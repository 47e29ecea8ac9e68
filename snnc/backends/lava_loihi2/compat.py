"""The one place where snnc works around Lava's packaging; every other module imports Lava after
calling ``import_lava()``.

Why each shim exists:

* **Dataclass defaults.** lava-nc 0.10 pins ``python < 3.11`` (we install it with
  ``--ignore-requires-python``). ``lava.magma.compiler.var_model`` declares dataclass fields whose default
  is an *instance* of another dataclass (e.g. ``x: ByteEncoder = ByteEncoder()``). Python 3.11 rejects
  every unhashable default ("mutable default ... use default_factory"), so the import fails. While (and
  only while) that one module is imported we turn such defaults into ``default_factory`` copies, which is
  what the authors meant; the patch is removed again afterwards, so no other dataclass is affected.
* **cv2 / torchvision.** lava-dl 0.6 imports OpenCV and torchvision at import time (dataset helpers in
  ``lava.lib.dl.slayer``) although the ``netx`` network loader never calls them. When those packages are
  absent we register inert stub modules for the duration of the import (any call on a stub raises
  ``RuntimeError``) and then remove them from ``sys.modules`` so other libraries still see them missing.
  Installed packages are never replaced.
* **multiprocessing start method.** Lava's message infrastructure calls
  ``multiprocessing.set_start_method('fork')`` at import without ``force``; that raises "context has
  already been set" once anything else in the process (scikit-learn, torch, a tqdm lock) has touched the
  default context. While (and only while) that module is imported we pass ``force=True``, selecting the
  same 'fork' method Lava requires.

* **A print at import.** lava-dl 0.6's Prophesee dataset module prints "WARNING: Prophesee Dataset
  Toolbox could not be found!" to stdout when that optional toolbox is absent; it would land in the text
  ``snnc verify`` prints. Output written while (and only while) ``lava.lib.dl.netx`` is imported is dropped.

If Lava itself is missing, ``import_lava`` raises ``BackendUnavailableError`` (tests skip on it).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import importlib.machinery
import importlib.util
import io
import multiprocessing
import sys
import types
from contextlib import contextmanager

from snnc.errors import BackendUnavailableError

BACKEND = "lava-loihi2"
_VAR_MODEL = "lava.magma.compiler.var_model"
_LAVA_MP = "lava.magma.runtime.message_infrastructure.multiprocessing"
_DL_ONLY_MODULES = ("cv2", "torchvision")
_TORCHVISION_SUBMODULES = ("ops", "transforms", "transforms.functional", "io", "utils", "models",
                           "datasets")
_imported: set[str] = set()


def import_lava(dl: bool = False) -> None:
    """Make ``import lava...`` work on this interpreter; idempotent.

    ``dl=True`` also imports ``lava.lib.dl.netx`` (lava-dl's network loader). Raises
    ``BackendUnavailableError`` naming the missing package when lava-nc (or, with ``dl``, lava-dl) is
    not installed.
    """
    if "core" not in _imported:
        _require("lava", "lava-nc 0.10 is not installed (pip install --ignore-requires-python --no-deps "
                         "lava-nc==0.10.0)")
        with _lenient_dataclass_defaults():
            importlib.import_module(_VAR_MODEL)
        with _forced_start_method():
            importlib.import_module(_LAVA_MP)
        _imported.add("core")
    if dl and "dl" not in _imported:
        _require("lava.lib.dl", "lava-dl 0.6 is not installed (pip install --ignore-requires-python "
                                "--no-deps lava-dl==0.6.0)")
        with _stub_modules_if_absent(_DL_ONLY_MODULES), contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module("lava.lib.dl.netx")
        _imported.add("dl")


def _require(module: str, reason: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BackendUnavailableError(BACKEND, reason)


@contextmanager
def _lenient_dataclass_defaults():
    """Within the block, an unhashable dataclass-instance default becomes a ``default_factory`` copy."""
    original = dataclasses._get_field

    def lenient(cls, name, type_, kw_only):
        default = cls.__dict__.get(name, dataclasses.MISSING)
        if (dataclasses.is_dataclass(default) and not isinstance(default, type)
                and type(default).__hash__ is None):
            setattr(cls, name, dataclasses.field(default_factory=lambda d=default: copy.copy(d)))
        return original(cls, name, type_, kw_only)

    dataclasses._get_field = lenient
    try:
        yield
    finally:
        dataclasses._get_field = original


@contextmanager
def _forced_start_method():
    """Within the block, ``multiprocessing.set_start_method`` always passes ``force=True``."""
    original = multiprocessing.set_start_method

    def forced(method, force=False):
        original(method, force=True)

    multiprocessing.set_start_method = forced
    try:
        yield
    finally:
        multiprocessing.set_start_method = original


class _Stub(types.ModuleType):
    """An inert stand-in module: attributes are further stubs, calling one raises."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        sub = sys.modules.get(full) or _new_stub(full)
        sys.modules[full] = sub
        return sub

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self.__name__} is a stub registered by snnc for the lava-dl import; "
                           f"install the real package to use it")


def _new_stub(name: str) -> _Stub:
    stub = _Stub(name)
    stub.__spec__ = importlib.machinery.ModuleSpec(name, None)
    stub.__path__ = []
    return stub


@contextmanager
def _stub_modules_if_absent(names: tuple[str, ...]):
    """Register stubs for the absent top-level packages ``names`` (and torchvision's submodules) while
    the block runs; remove exactly the stubs afterwards."""
    absent = [n for n in names if n not in sys.modules and importlib.util.find_spec(n) is None]
    wanted = list(absent)
    if "torchvision" in absent:
        wanted += [f"torchvision.{sub}" for sub in _TORCHVISION_SUBMODULES]
    for name in wanted:
        sys.modules[name] = _new_stub(name)
    try:
        yield
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in absent]:
            if isinstance(sys.modules[name], _Stub):
                del sys.modules[name]
