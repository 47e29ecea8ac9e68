"""Field checks of ``.snnc`` files, derived from the node dataclasses' type annotations.

Before a node is constructed every field is checked against its annotation (``str``, ``int``, ``float``,
``bool``, ``Literal[...]``, str enums such as ``ResetKind``, ``tuple[...]``, ``np.ndarray``, unions and
``None``): Python type, array dtype kind (numbers only), finite values, and the few ranges and array ranks
the annotations cannot say (``FIELD_RULES``). A failure is a ``ModelFieldError`` naming file, node (index and name) and field; nothing of
an untrusted file reaches the verifier or the emulator unchecked.
"""
from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from enum import Enum
from typing import Literal, Union

import numpy as np

from snnc.errors import ModelFieldError

INT_LIMIT = 2 ** 31          # |int| and array integers: what the targets' words and numpy int64 math hold
MAX_DELAY_STEPS = 2 ** 16    # the emulators keep a ring of this many steps per synapse
MAX_ELEMENTS = 2 ** 26       # per array and per node shape (64 Mi values)

# What annotations cannot say, per field name: inclusive (low, high) for ints and int arrays, array rank.
FIELD_RULES: dict[str, dict] = {
    "shape": {"range": (1, MAX_ELEMENTS)}, "in_shape": {"range": (1, MAX_ELEMENTS)},
    "stride": {"range": (1, 1 << 16)}, "kernel": {"range": (1, 1 << 16)}, "padding": {"range": (0, 1 << 16)},
    "groups": {"range": (1, 1 << 16)}, "delay_steps": {"range": (0, MAX_DELAY_STEPS)},
    "start": {"range": (0, MAX_ELEMENTS)}, "stop": {"range": (0, MAX_ELEMENTS)}, "bits": {"range": (1, 32)},
    "weight_exp": {"range": (-63, 63)}, "bias_exp": {"range": (-63, 63)}, "num_weight_bits": {"range": (1, 8)},
    "du": {"range": (0, 4095)}, "dv": {"range": (0, 4095)}, "ring_buffer_shift": {"range": (0, 31)},
    "n_synapse_cores": {"range": (0, 1 << 16)}
}
WEIGHT_NDIM = {"Dense": 2, "LoihiDense": 2, "SpinnakerProjection": 2, "Conv2d": 4, "LoihiConv": 4}


class FieldCheck:
    """Checks the fields of one node of one file; ``fail`` builds the error naming them."""

    def __init__(self, path: str, node: str) -> None:
        self.path, self.node = path, node

    def fail(self, field: str, problem: str) -> ModelFieldError:
        """The typed error for ``field`` of this node, saying ``problem``."""
        return ModelFieldError(self.path, self.node, field, problem)

    def value(self, annotation, value, field: str):
        """``value`` if it fits ``annotation`` (and ``FIELD_RULES[field]``), converted to the IR's type."""
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (Union, types.UnionType):
            return self.union(args, value, field)
        if origin is Literal:
            if not isinstance(value, str) or value not in args:
                raise self.fail(field, f"expected one of {'|'.join(args)}, got {_show(value)}")
            return value
        if isinstance(annotation, type) and issubclass(annotation, Enum):   # ResetKind, Comparison
            choices = [member.value for member in annotation]
            if not isinstance(value, str) or value not in choices:
                raise self.fail(field, f"expected one of {'|'.join(choices)}, got {_show(value)}")
            return value
        if origin is tuple:
            return self.tuple(args, value, field)
        if annotation is np.ndarray:
            return self.array(value, field)
        if annotation is type(None):
            if value is not None:
                raise self.fail(field, f"expected null, got {_show(value)}")
            return None
        return self.scalar(annotation, value, field)

    def union(self, args, value, field: str):
        """``value`` checked against the first member of a union it can be (None, an array, or the scalar types)."""
        if value is None and type(None) in args:
            return None
        if isinstance(value, np.ndarray) and np.ndarray in args:
            return self.array(value, field)
        scalars = [a for a in args if a not in (np.ndarray, type(None))]
        if not scalars:
            raise self.fail(field, f"expected an array, got {_show(value)}")
        return self.value(scalars[0] if len(scalars) == 1 else Union[tuple(scalars)], value, field)

    def tuple(self, args, value, field: str) -> tuple:
        """``value`` checked as a tuple of the annotated entries (a shape holds at most ``MAX_ELEMENTS`` neurons)."""
        if not isinstance(value, tuple):
            raise self.fail(field, f"expected a tuple, got {_show(value)}")
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            raise self.fail(field, f"expected {len(items)} entries, got {len(value)}")
        out = tuple(self.value(a, v, f"{field}[{i}]") for i, (a, v) in enumerate(zip(items, value)))
        if field in ("shape", "in_shape") and int(np.prod(out, dtype=object)) > MAX_ELEMENTS:
            raise self.fail(field, f"at most {MAX_ELEMENTS} neurons, got {_show(out)}")
        return out

    def scalar(self, annotation, value, field: str):
        """``value`` checked as one bool, str, int or float (and the field's rule), converted to the IR's type."""
        base = field.split("[")[0]
        if annotation is bool:
            if not isinstance(value, bool):
                raise self.fail(field, f"expected true or false, got {_show(value)}")
            return value
        if annotation is str:
            if not isinstance(value, str):
                raise self.fail(field, f"expected a string, got {_show(value)}")
            return value
        if annotation is int:
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                raise self.fail(field, f"expected an integer, got {_show(value)}")
            low, high = FIELD_RULES.get(base, {}).get("range", (-INT_LIMIT + 1, INT_LIMIT - 1))
            if not low <= value <= high:
                raise self.fail(field, f"expected an integer in [{low}, {high}], got {value}")
            return int(value)
        if annotation is float:
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(float(value)):
                raise self.fail(field, f"expected a finite number, got {_show(value)}")
            return float(value)
        raise self.fail(field, f"no reader for annotation {annotation!r}")   # a node type snnc cannot read

    def array(self, value, field: str) -> np.ndarray:
        """``value`` checked as a finite integer or float array of at most ``MAX_ELEMENTS`` values."""
        if not isinstance(value, np.ndarray):
            raise self.fail(field, f"expected an array, got {_show(value)}")
        if value.dtype.kind not in "iuf" or value.dtype.itemsize > 8:
            raise self.fail(field, f"expected an integer or float array, got dtype {value.dtype}")
        if value.size > MAX_ELEMENTS:
            raise self.fail(field, f"at most {MAX_ELEMENTS} values, got {value.size}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise self.fail(field, "expected finite values, got NaN or inf")
        rules = FIELD_RULES.get(field, {})
        low, high = rules.get("ndim", (0, 4))
        if not low <= value.ndim <= high:
            raise self.fail(field, f"expected {low} to {high} dimensions, got shape {value.shape}")
        if value.dtype.kind in "iu" and value.size:
            low, high = rules.get("range", (-INT_LIMIT + 1, INT_LIMIT - 1))
            if value.min() < low or value.max() > high:
                raise self.fail(field, f"expected integers in [{low}, {high}], got values in "
                                f"[{value.min()}, {value.max()}]")
        elif "range" in rules:
            raise self.fail(field, f"expected integers, got dtype {value.dtype}")
        return value


def checked_fields(cls, fields, path: str, index: int) -> dict:
    """``fields`` of node ``index`` (of type ``cls``) checked against ``cls``'s annotations; raises
    ``ModelFieldError`` for a missing, unknown or ill-typed field."""
    name = fields.get("name") if isinstance(fields, dict) else None
    check = FieldCheck(path, f"#{index} {name}" if isinstance(name, str) else f"#{index}")
    if not isinstance(fields, dict):
        raise check.fail("fields", f"expected an object, got {_show(fields)}")
    hints = typing.get_type_hints(cls)
    declared = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - set(declared))
    if unknown:
        raise check.fail(unknown[0], f"node type {cls.__name__} has no such field")
    out = {}
    for key, spec in declared.items():
        if key not in fields:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise check.fail(key, "missing")
            continue
        out[key] = check.value(hints[key], fields[key], key)
    _check_weight_ranks(check, cls.__name__, out)
    _check_per_neuron_arrays(check, out)
    return out


def _check_per_neuron_arrays(check: FieldCheck, fields: dict) -> None:
    """A neuron group's array parameters hold one value or one per neuron."""
    if "shape" not in fields or "inputs" not in fields:
        return
    size = int(np.prod(fields["shape"]))
    for key, value in fields.items():
        if isinstance(value, np.ndarray) and value.size not in (1, size) or \
                isinstance(value, np.ndarray) and value.ndim > 1 and value.shape != fields["shape"]:
            raise check.fail(key, f"expected one value or one per neuron ({size}, or shape {fields['shape']}), "
                             f"got shape {value.shape}")


def _check_weight_ranks(check: FieldCheck, kind: str, fields: dict) -> None:
    """The weight array's rank, and per-synapse delays shaped like the weights."""
    key = next((k for k in ("weight", "weight_mant", "weight_word") if k in fields), None)
    if key is None or kind not in WEIGHT_NDIM:
        return
    weight = fields[key]
    if weight.ndim != WEIGHT_NDIM[kind] or 0 in weight.shape:
        raise check.fail(key, f"expected a non-empty {WEIGHT_NDIM[kind]}-D array, got shape {weight.shape}")
    delay = fields.get("delay_steps")
    if isinstance(delay, np.ndarray) and delay.shape != weight.shape:
        raise check.fail("delay_steps", f"expected an integer or an array of the weights' shape {weight.shape}, "
                         f"got shape {delay.shape}")


def _show(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"
