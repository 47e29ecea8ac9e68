"""The one error hierarchy users see.

Every user-facing failure is an ``SnncError`` subclass whose message names the node, the field, the limit
and the actual value, so a user can find the offending layer without reading a traceback. The CLI prints
``error: <message>`` and exits with status 2 for these; anything else is a bug in snnc.
"""
from __future__ import annotations

from dataclasses import dataclass


class SnncError(Exception):
    """Base of every error snnc reports to a user.

    ``pass_name`` / ``passes_before``: set on the copy ``in_pass`` makes when a compiler pass raised it."""

    pass_name: str | None = None
    passes_before: tuple[str, ...] = ()
    original: "SnncError | None" = None

    def in_pass(self, pass_name: str, passes_before: tuple[str, ...]) -> "SnncError":
        """A copy of this error (same type, same fields; the original is its ``original``) whose message
        starts with ``in pass 'NAME' (after A, B): `` so a user sees which compiler step failed."""
        after = f" (after {', '.join(passes_before)})" if passes_before else ""
        wrapped = type(self).__new__(type(self))
        wrapped.__dict__.update(self.__dict__)
        wrapped.args = (f"in pass '{pass_name}'{after}: {self}",)
        wrapped.pass_name, wrapped.passes_before, wrapped.original = pass_name, tuple(passes_before), self
        return wrapped


@dataclass(frozen=True)
class Violation:
    """One broken rule: which node and field, the limit, and the value found."""

    node: str
    field: str
    limit: str
    actual: str
    rule: str = ""

    def __str__(self) -> str:
        rule = f"{self.rule}: " if self.rule else ""
        return (f"node '{printable(self.node)}' field '{printable(self.field)}': {rule}limit {self.limit}, "
                f"got {printable(self.actual)}")


class NodeError(SnncError):
    """An error about one field of one node."""

    def __init__(self, node: str, field: str, limit: str, actual: object, rule: str = "") -> None:
        self.violation = Violation(node, field, str(limit), _short(actual), rule)
        super().__init__(str(self.violation))


class UnsupportedError(NodeError):
    """The model uses a module, operator or parameter snnc cannot represent exactly."""


class QuantizationError(NodeError):
    """A value cannot be represented in the target's integer formats without silent change."""


class ModelFileError(SnncError):
    """A model or compiled-artifact file cannot be read."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        super().__init__(f"file '{printable(path)}': {problem}")


class ModifiedArtifactError(ModelFileError):
    """A compiled folder's file is not what ``snnc compile`` wrote (its sha256 differs from the manifest's,
    or the manifest is missing); the message says to recompile."""


class BackendUnavailableError(SnncError):
    """A backend's software (or hardware) is not installed or not reachable on this machine."""

    def __init__(self, backend: str, reason: str) -> None:
        self.backend = backend
        self.reason = reason
        super().__init__(f"backend '{backend}' unavailable: {reason}")


class ModelFieldError(ModelFileError):
    """A model file's node has a field snnc cannot read; names file, node and field."""

    def __init__(self, path, node: str, field: str, problem: str) -> None:
        self.node, self.field = node, field
        super().__init__(str(path), f"node '{node}' field '{field}': {problem}")


class ViolationsError(SnncError):
    """Several broken rules reported at once, one line each."""

    kind = "violation"

    def __init__(self, subject: str, violations: list[Violation]) -> None:
        self.subject = subject
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in self.violations)
        super().__init__(f"{len(self.violations)} {self.kind}(s) in {subject}:\n{lines}")


class IRVerificationError(ViolationsError):
    """The graph is not well formed (dangling edge, shape mismatch, cycle without delay, NaN, ...)."""

    kind = "IR verification error"


class DesignRuleError(ViolationsError):
    """One or more target design rules are violated; all violations are reported at once."""

    kind = "design-rule violation"


def printable(text: str) -> str:
    """``text`` itself when every character prints, else its ``ascii()`` quoting: a name or path taken from
    a model file cannot move the cursor, clear a terminal or forge a line of output."""
    return text if text.isprintable() else ascii(text)


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
