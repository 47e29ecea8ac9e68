"""Which strings may name a graph or a node, and how a name read from a model file becomes one.

Names reach emitted text: the IR text, the generated ``run_spinnaker.py`` and ``run_on_lava.py``, Lava
process and PyNN population labels, error messages on a terminal. A name from a model file is untrusted,
so an IR name is restricted to ASCII letters, digits, ``_``, ``.`` and ``-`` (at most ``MAX_NAME_LENGTH``
characters): it cannot close a string literal, start a line, or carry a terminal escape. Frontends map a
file's name onto that set with ``safe_name`` (the original is kept in ``Graph.source_names``); the
verifier refuses any other name, so an edited ``.snnc`` artifact cannot smuggle one in either.
"""
from __future__ import annotations

import string

NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_.-")
NAME_RULE = "ASCII letters, digits, '_', '.', '-'; 1 to 128 characters"
MAX_NAME_LENGTH = 128


def is_safe_name(name) -> bool:
    """True if ``name`` is a str of 1..MAX_NAME_LENGTH characters, all in NAME_CHARACTERS."""
    return isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and set(name) <= NAME_CHARACTERS


def safe_name(text, fallback: str = "network") -> str:
    """``text`` with every character outside NAME_CHARACTERS replaced by ``_``, cut to MAX_NAME_LENGTH;
    ``fallback`` when nothing is left."""
    cleaned = "".join(c if c in NAME_CHARACTERS else "_" for c in str(text))[:MAX_NAME_LENGTH]
    return cleaned if cleaned.strip("_") else fallback


def shown_name(name) -> str:
    """A name as it may be printed: itself when safe, else its ``ascii()`` quoting (no raw control
    characters or quotes reach a terminal or a log)."""
    return name if is_safe_name(name) else ascii(name)



def graph_name_fields(text, fallback: str = "network") -> dict:
    """A model file's graph name as ``Graph`` fields: ``name`` (safe) and ``source_names`` keeping the
    original when it had to change."""
    name = safe_name(text, fallback)
    return {"name": name, "source_names": () if name == text else (("", str(text)),)}
