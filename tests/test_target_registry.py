"""One registered object per target: every per-target table, the CLI's choices included, is computed from
``snnc.targets.catalog.TARGETS``; both specs implement the one ``TargetSpec`` Protocol."""
from __future__ import annotations

import ast
import typing

from conftest import ROOT
from snnc.backends.registry import BACKENDS, EMULATE, RUN_BACKENDS
from snnc.compiler.cli import build_parser
from snnc.compiler.pipeline import PIPELINES, SHARED_PREFIX, pass_names
from snnc.targets.catalog import ENERGY, TARGET_NAMES, TARGETS
from snnc.targets.target import TargetSpec


def _choices(command: str, option: str) -> tuple[str, ...]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_cli_target_choices_are_the_registry_names():
    for command in ("compile", "verify", "passes"):
        assert _choices(command, "--target") == tuple(TARGETS) == TARGET_NAMES == ("loihi2", "emulator", "spinnaker")


def test_every_table_is_keyed_by_the_registry():
    assert list(PIPELINES) == list(BACKENDS) == list(ENERGY) == list(TARGETS)
    for name, target in TARGETS.items():
        assert pass_names(name) == list(SHARED_PREFIX + target.passes)
        assert ENERGY[name] is target.energy
        assert BACKENDS[name].backends[0] == EMULATE
    assert (BACKENDS["loihi2"].write_artifacts is not None, BACKENDS["emulator"].write_artifacts) == (True, None)


def test_emulator_backend_and_emulator_target_have_distinct_names():
    assert "emulator" in TARGETS and "emulator" not in RUN_BACKENDS
    assert _choices("run", "--backend") == RUN_BACKENDS == ("emulate", "lava", "nest", "float")
    assert not set(RUN_BACKENDS) & set(TARGETS)


def test_both_specs_implement_every_member_of_the_protocol():
    members = set(typing.get_type_hints(TargetSpec)) | {
        name for name, value in vars(TargetSpec).items() if callable(value) and not name.startswith("_")}
    assert {"neurons_per_core", "graded_spike_bits", "fits", "synapse_core_plan", "arithmetic"} <= members
    for target in TARGETS.values():
        missing = sorted(name for name in members if not hasattr(target.spec, name))
        assert missing == [], (target.name, missing)
    assert {t.name: t.arithmetic for t in TARGETS.values()} == {
        "loihi2": "loihi", "emulator": "loihi", "spinnaker": "spinnaker"}


def test_no_module_level_assert_cross_checks_tables():
    """python -O strips ``assert``: a table invariant must hold by construction, never by an assert."""
    found = []
    for path in sorted((ROOT / "snnc").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assert):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []
