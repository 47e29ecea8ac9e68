"""What to change when a target refuses a neuron's reset kind or threshold test (issue 11, item 6).

Two halves: ``retrain_advice`` names the peer-library options that train a model with a kind the refusing
target runs (the spec writes it into its violation); ``target_advice`` names the registered targets that run
the refused kind exactly (``check_target_semantics`` adds it, since a spec does not know the other targets).
"""
from __future__ import annotations

from dataclasses import replace

from snnc.errors import Violation
from snnc.ir.nodes import Comparison, ResetKind

# The peer-library options whose models import with each kind (snnc.frontends: snnTorch Leaky's 'zero' is
# 'zero'; Synaptic's and RLeaky's 'zero' resets at the next step, 'zero_next'; SpikingJelly hard reset to
# 0.0 is 'zero', soft reset (v_reset=None) is 'subtract'; every spiking neuron of snnTorch and Norse fires
# on v > threshold, SpikingJelly's on v >= v_threshold). NIR files carry neither: `--reset` / `--comparison`.
RESET_OPTIONS: dict[str, tuple[str, ...]] = {
    ResetKind.ZERO: ("snnTorch reset_mechanism='zero'", "SpikingJelly v_reset=0.0"),
    ResetKind.ZERO_NEXT: ("snnTorch reset_mechanism='zero'",),
    ResetKind.SUBTRACT: ("snnTorch reset_mechanism='subtract'", "SpikingJelly v_reset=None"),
    ResetKind.NONE: ("snnTorch reset_mechanism='none'",),
}
COMPARISON_OPTIONS: dict[str, tuple[str, ...]] = {
    Comparison.GT: ("snnTorch or Norse neurons (spike where v > threshold)",),
    Comparison.GE: ("SpikingJelly neurons (spike where v >= v_threshold)",),
}
ADVISED_FIELDS = {"reset": RESET_OPTIONS, "comparison": COMPARISON_OPTIONS}


def retrain_advice(field: str, supported: tuple[str, ...]) -> str:
    """'retrain with ...': the options of every kind in ``supported`` for ``field`` ("reset" or
    "comparison"), each named once, in the order of ``supported``."""
    options: list[str] = []
    for kind in supported:
        options += [o for o in ADVISED_FIELDS[field].get(kind, ()) if o not in options]
    return "retrain with " + " or ".join(options) if options else ""


def target_advice(violation: Violation, refusing: str, specs) -> Violation:
    """``violation`` with "or compile for X, which run(s) '<value>' exactly" added to its rule, X being
    every spec in ``specs`` other than ``refusing`` that supports the refused value (unchanged when the
    field is not a reset or comparison, or no other target runs it)."""
    if violation.field not in ADVISED_FIELDS:
        return violation
    attribute = "reset_kinds" if violation.field == "reset" else "comparisons"
    others = [s.name for s in specs if s.name != refusing and violation.actual in getattr(s, attribute)]
    if not others:
        return violation
    verb = "runs" if len(others) == 1 else "run"
    text = f"compile for {' or '.join(others)}, which {verb} '{violation.actual}' exactly"
    rule = f"{violation.rule}, or {text}" if violation.rule else text
    return replace(violation, rule=rule)
