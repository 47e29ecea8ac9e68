"""Public API carries docstrings (style guide: "public functions have docstrings").

Public means: a module, a class, or a function or method (properties included) defined at module level or
directly in a class, whose name does not start with ``_``, in a module path without a ``_``-prefixed part.
Functions nested inside functions are private by construction and not counted.

Enforced over the whole ``snnc/`` package (the test fails on any missing docstring, naming file, line and
definition); in ``snnc/compiler/passes/`` every pass module, pass class and its ``run`` must also say what
the pass preserves.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "snnc"
ENFORCED = ("snnc/",)


@dataclass(frozen=True)
class Missing:
    """One public definition without a docstring: file (relative to the repository root), line, dotted name."""

    file: str
    line: int
    name: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.name}"


def is_public(name: str) -> bool:
    """Names without a leading underscore (dunder methods count as private: Python documents them)."""
    return not name.startswith("_")


def missing_in_module(path: Path) -> list[Missing]:
    """Public module, classes, functions and methods of one file that have no docstring."""
    file = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(), filename=file)
    out = [] if ast.get_docstring(tree) else [Missing(file, 1, "<module>")]
    out += missing_in_body(tree.body, file, prefix="")
    return out


def missing_in_body(body: list[ast.stmt], file: str, prefix: str) -> list[Missing]:
    """Walk class bodies recursively; functions are leaves (their nested definitions are private)."""
    out = []
    for node in body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not is_public(node.name):
            continue
        name = prefix + node.name
        if not ast.get_docstring(node):
            out.append(Missing(file, node.lineno, name))
        if isinstance(node, ast.ClassDef):
            out += missing_in_body(node.body, file, prefix=name + ".")
    return out


def public_modules() -> list[Path]:
    """Every module under snnc/ whose path has no ``_``-prefixed part (``__init__.py`` is kept)."""
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p.name == "__init__.py" or all(is_public(part) for part in p.relative_to(ROOT).parts))


def all_missing() -> list[Missing]:
    """Missing docstrings over the package, empty package ``__init__.py`` files excepted."""
    out = []
    for path in public_modules():
        if path.name == "__init__.py" and not path.read_text().strip():
            continue
        out += missing_in_module(path)
    return out


def enforced(item: Missing) -> bool:
    """Whether the test fails on this missing docstring (every file under ``ENFORCED``)."""
    return item.file.startswith(ENFORCED)


def test_every_public_definition_in_snnc_has_a_docstring():
    missing = [str(m) for m in all_missing() if enforced(m)]
    assert missing == [], "public definitions without a docstring:\n" + "\n".join(missing)


def test_the_checker_finds_undocumented_classes_methods_and_functions_but_not_private_or_nested_ones():
    source = ('class Pass:\n    """Doc."""\n    def run(self):\n        pass\n    def _helper(self):\n'
              '        pass\n    @property\n    def k(self):\n        return 1\n'
              'class Bare:\n    def ok(self):\n        """Doc."""\n'
              'def top():\n    def nested():\n        pass\n')
    found = missing_in_body(ast.parse(source).body, "snnc/compiler/passes/x.py", prefix="")
    assert [(m.line, m.name) for m in found] == [(3, "Pass.run"), (8, "Pass.k"), (10, "Bare"), (13, "top")]
    assert all(enforced(m) for m in found)
