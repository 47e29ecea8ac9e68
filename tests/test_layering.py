"""Import contract: snnc's subpackages form an acyclic stack (the order is data in snnc/layers.py).

Every import statement of every module under snnc/ counts: module-level, function-level, under
TYPE_CHECKING, relative (``from . import x``, ``from .. import y``) and ``importlib.import_module`` /
``__import__`` with a literal name. Each is mapped to the top-level unit it names (``snnc.ir.graph`` -> ir).
A violation names the importing file, the line and the imported module.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT
from snnc.layers import LAYERS, layer_of

PACKAGE = ROOT / "snnc"


@dataclass(frozen=True)
class Import:
    """One import of an snnc module: the importing file (relative to the repository root), line, module."""
    file: str
    line: int
    module: str


def package_of(file: str) -> list[str]:
    """The dotted package a module file belongs to, as parts: snnc/ir/graph.py -> [snnc, ir]."""
    return list(Path(file).parts[:-1])


def resolve_relative(file: str, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``file``."""
    base = package_of(file)[:len(package_of(file)) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imported_modules(node: ast.AST, file: str) -> list[str]:
    """The module names one AST node imports (empty for nodes that import nothing)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        module = resolve_relative(file, node.level, node.module) if node.level else node.module
        if module == "snnc" or (node.level and node.module is None):
            return [f"{module}.{alias.name}" for alias in node.names]
        return [module]
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
            return [node.args[0].value]
    return []


def snnc_imports(file: str, source: str) -> list[Import]:
    """Every import of an snnc module in ``source`` (the text of ``file``, e.g. "snnc/ir/graph.py")."""
    found = []
    for node in ast.walk(ast.parse(source, filename=file)):
        for module in imported_modules(node, file):
            if module == "snnc" or module.startswith("snnc."):
                found.append(Import(file, node.lineno, module))
    return sorted(found, key=lambda i: (i.file, i.line, i.module))


def unit_of_file(file: str) -> str:
    """The top-level unit of a module file: snnc/ir/graph.py -> ir, snnc/errors.py -> errors."""
    parts = Path(file).parts
    return parts[1].removesuffix(".py")


def unit_of_module(module: str) -> str:
    """The top-level unit a module name lies in: snnc.ir.graph -> ir; "snnc" itself -> "snnc"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "snnc"


def tree_imports() -> list[Import]:
    """Every snnc import of every module under snnc/ but the package root (above every layer; its own
    test allows it exactly one lazy import, of the API)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        file = path.relative_to(ROOT).as_posix()
        if file == "snnc/__init__.py":
            continue
        found += snnc_imports(file, path.read_text())
    return found


def layer_violations(imports: list[Import]) -> list[str]:
    """Imports that go to a unit of the same or a higher layer, or to or from a unit no layer names."""
    problems = []
    for imp in imports:
        source, target = unit_of_file(imp.file), unit_of_module(imp.module)
        if source == target:
            continue
        try:
            source_layer, target_layer = layer_of(source), layer_of(target)
        except KeyError as missing:
            problems.append(f"{imp.file}:{imp.line} imports {imp.module}: unit {missing} is in no layer "
                            "of snnc/layers.py")
            continue
        if target_layer >= source_layer:
            kind = "a unit of its own layer" if target_layer == source_layer else "a higher layer"
            problems.append(f"{imp.file}:{imp.line} imports {imp.module}: {source} (layer {source_layer}) "
                            f"may not import {target} (layer {target_layer}, {kind})")
    return problems


def unit_edges(imports: list[Import]) -> dict[tuple[str, str], Import]:
    """Importing unit -> imported unit, each with its first import as the witness."""
    edges: dict[tuple[str, str], Import] = {}
    for imp in imports:
        edge = (unit_of_file(imp.file), unit_of_module(imp.module))
        if edge[0] != edge[1]:
            edges.setdefault(edge, imp)
    return edges


def find_cycle(edges) -> list[str] | None:
    """One cycle of units in the directed graph ``edges`` ((from, to) pairs), as [a, b, ..., a]; else None."""
    successors: dict[str, list[str]] = {}
    for start, end in edges:
        successors.setdefault(start, []).append(end)
    state: dict[str, str] = {}     # "open" while on the DFS path, "done" after

    def visit(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = "open"
        for nxt in sorted(successors.get(unit, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[unit] = "done"
        return None

    for unit in sorted(successors):
        if unit not in state and (cycle := visit(unit, [unit])):
            return cycle
    return None


def describe_cycle(cycle: list[str], edges: dict[tuple[str, str], Import]) -> str:
    """The cycle with the file, line and module of one import along each of its edges."""
    steps = []
    for start, end in zip(cycle, cycle[1:]):
        imp = edges[(start, end)]
        steps.append(f"{start} -> {end} ({imp.file}:{imp.line} imports {imp.module})")
    return "import cycle: " + "; ".join(steps)


def test_every_unit_under_snnc_is_in_exactly_one_layer():
    units = {unit_of_file(p.relative_to(ROOT).as_posix()) for p in PACKAGE.glob("*")
             if p.suffix == ".py" or (p / "__init__.py").is_file()} - {"__init__"}
    listed = [unit for layer in LAYERS for unit in layer]
    assert len(listed) == len(set(listed)), f"a unit is listed twice: {listed}"
    assert units == set(listed)


def test_the_package_root_imports_only_the_api_and_only_lazily():
    """``snnc/__init__.py`` may import ``snnc.api`` inside its module ``__getattr__`` (resolved on first
    use of ``snnc.compile`` etc.), nothing else and nothing at import time."""
    source = (PACKAGE / "__init__.py").read_text()
    imports = snnc_imports("snnc/__init__.py", source)
    assert all(imp.module == "snnc.api" for imp in imports), imports
    lazy = {getattr(node, "lineno", None) for f in ast.parse(source).body
            if isinstance(f, ast.FunctionDef) and f.name == "__getattr__" for node in ast.walk(f)}
    assert all(imp.line in lazy for imp in imports), imports


def test_no_import_goes_up_or_sideways():
    problems = layer_violations(tree_imports())
    assert not problems, "\n".join(problems)


def test_subpackages_form_no_import_cycle():
    edges = unit_edges(tree_imports())
    cycle = find_cycle(edges)
    assert cycle is None, describe_cycle(cycle, edges)


def test_function_level_imports_of_the_tree_are_seen():
    """The tree imports heavy modules inside functions (Lava, NEST, exporters); the walk must count them."""
    top_level = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        file = path.relative_to(ROOT).as_posix()
        for node in ast.parse(path.read_text()).body:
            top_level |= {(file, node.lineno, m) for m in imported_modules(node, file)}
    nested = [i for i in tree_imports() if (i.file, i.line, i.module) not in top_level]
    assert len(nested) > 10, nested


def test_a_function_level_upward_import_is_a_violation():
    source = "import numpy as np\n\n\ndef step():\n    from snnc.compiler.pipeline import compile_graph\n"
    imports = snnc_imports("snnc/simulators/fake.py", source)
    assert layer_violations(imports) == [
        "snnc/simulators/fake.py:5 imports snnc.compiler.pipeline: simulators (layer 4) may not import "
        "compiler (layer 7, a higher layer)"]


def test_relative_package_and_dynamic_imports_are_resolved():
    source = ("from . import graph\n"
              "from .. import training\n"
              "from ..arith import rounding\n"
              "from snnc import lowering\n"
              "import snnc.targets.spec as spec\n"
              "import importlib\n"
              "importlib.import_module('snnc.backends.registry')\n")
    imports = snnc_imports("snnc/ir/fake.py", source)
    assert [(i.line, i.module) for i in imports] == [
        (1, "snnc.ir.graph"), (2, "snnc.training"), (3, "snnc.arith"), (4, "snnc.lowering"),
        (5, "snnc.targets.spec"), (7, "snnc.backends.registry")]
    assert [p.split(":")[1].split(" ")[0] for p in layer_violations(imports)] == ["2", "4", "5", "7"]


def test_an_import_between_units_of_one_layer_is_a_violation():
    imports = snnc_imports("snnc/targets/fake.py", "from snnc.frontends.loader import load_model\n")
    assert layer_violations(imports) == [
        "snnc/targets/fake.py:1 imports snnc.frontends.loader: targets (layer 3) may not import frontends "
        "(layer 3, a unit of its own layer)"]


def test_an_unlisted_unit_is_a_violation():
    imports = snnc_imports("snnc/quantize/fake.py", "from snnc.ir.graph import Graph\n")
    assert layer_violations(imports) == [
        "snnc/quantize/fake.py:1 imports snnc.ir.graph: unit 'quantize' is in no layer of snnc/layers.py"]


def test_a_synthetic_cycle_is_found_and_named():
    imports = (snnc_imports("snnc/ir/a.py", "from snnc.arith import loihi\n")
               + snnc_imports("snnc/arith/b.py", "\n\nfrom snnc.ir.graph import Graph\n"))
    edges = unit_edges(imports)
    assert describe_cycle(find_cycle(edges), edges) == (
        "import cycle: arith -> ir (snnc/arith/b.py:3 imports snnc.ir.graph); "
        "ir -> arith (snnc/ir/a.py:1 imports snnc.arith)")
    assert find_cycle({("ir", "arith"), ("targets", "ir")}) is None
