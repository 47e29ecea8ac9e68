"""The import contract between snnc's subpackages, as data (enforced by tests/test_layering.py).

``LAYERS`` lists snnc's top-level units (subpackages, and the modules directly under ``snnc/``) from the
bottom up. A unit may import units of lower layers only: never one of a higher layer and never another
unit of its own layer (units that share a layer are independent of each other). Every import counts,
function-level and relative ones included. A new subpackage is placed here before it is imported.

Why this order (bottom to top):
  * ``errors``, ``layers``, ``datasets``, ``arith``: the error hierarchy, this table, the bundled data
    set, and target arithmetic (rounding, Loihi fixed point, SpiNNaker s16.15, synapse math), which
    everything from the IR's value checks to the emulators computes with;
  * ``ir``: the typed graph;
  * ``neurons``: neuron-model units (float step, lowering rules, emulator kernels, Lava process and PyNN
    cell per model), which every layer above asks instead of testing node classes;
  * ``targets`` (hardware limits as data) and ``frontends`` (model files -> float IR);
  * ``simulators``: the float reference and the bit-exact emulators, which read target limits;
  * ``backends`` (Lava, sPyNNaker / NEST, which run and are compared with the emulators) and
    ``compression`` (PTQ ranges, pruning, SBC, measured with the float reference);
  * ``lowering``: float IR -> target IR; it rounds with SBC and takes calibrated ranges from compression;
  * ``compiler``: passes, pipelines, the CLI and its commands, which dispatch to each target's backends;
  * ``training``: QAT, which trains through the compiler's pipeline and the torch frontend;
  * ``api``: the Python twin of the CLI (``snnc.compile`` and friends), on top of everything it calls.
The package root ``snnc/__init__.py`` imports nothing at import time; it resolves the API names lazily
(module ``__getattr__``), so ``import snnc.errors`` stays cheap.
Benchmarks, examples and tests sit above all of them.
"""
from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "layers", "datasets", "arith"),
    ("ir",),
    ("neurons",),
    ("targets", "frontends"),
    ("simulators",),
    ("backends", "compression"),
    ("lowering",),
    ("compiler",),
    ("training",),
    ("api",),
)


def layer_of(unit: str) -> int:
    """The index in ``LAYERS`` (0 = bottom) of the top-level unit ``unit`` (e.g. "ir", "errors").
    Raises KeyError for a unit no layer names."""
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise KeyError(unit)
