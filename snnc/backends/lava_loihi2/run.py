"""Run lowered graphs in real Lava 0.10 (CPU, ``fixed_pt`` models) and read them out as ``Traces``.

Lava has no batch dimension: every sample is built, compiled and run on its own, and the results are
stacked. The returned ``Traces`` use the emulator's layout and dtypes (spikes uint8 (B, T, *shape), states
int64), so ``first_divergence(run_loihi(g, x), run_lava(g, x))`` compares them element for element.
"""
from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass

import numpy as np

from snnc.backends.lava_loihi2.build import build_lava
from snnc.backends.lava_loihi2.compat import BACKEND, import_lava
from snnc.errors import BackendUnavailableError
from snnc.ir.graph import Graph
from snnc.simulators.traces import Traces, as_input_dict

# Modules only the proprietary lava-loihi extension provides: the NeuroCore sub-compiler that lava-nc's
# Compiler tries to import (and silently stubs out when absent) and the module
# ``lava.utils.loihi.is_installed`` probes.
LAVA_LOIHI_MODULES = ("lava.magma.compiler.subcompilers.nc.ncproc_compiler", "lava.utils.loihi2_profiler")


@dataclass(frozen=True)
class LavaTiming:
    """Wall-clock seconds of one sample: building processes, compiling + starting the runtime, running
    the steps, reading the monitors."""

    build_s: float
    compile_s: float
    run_s: float
    read_s: float


def simulation_run_config():
    """Lava's CPU simulation of Loihi 2 with the bit-accurate (``fixed_pt``) process models."""
    import_lava()
    from lava.magma.core.run_configs import Loihi2SimCfg
    return Loihi2SimCfg(select_tag="fixed_pt")


def hardware_run_config():
    """A ``Loihi2HwCfg`` for a real Loihi 2 chip; raises ``BackendUnavailableError`` unless Intel's
    lava-loihi extension (its NeuroCore compiler) is importable."""
    import_lava()
    missing = [m for m in LAVA_LOIHI_MODULES if not _importable(m)]
    if missing:
        raise BackendUnavailableError(
            BACKEND + " hardware", "lava-loihi (Intel's Loihi 2 compiler/runtime, distributed to INRC "
            f"members only) is not installed: cannot import {', '.join(missing)}")
    from lava.magma.core.run_configs import Loihi2HwCfg
    return Loihi2HwCfg()


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def run_lava(graph: Graph, x, record_state: bool = True, nodes=None, run_cfg=None) -> Traces:
    """Run ``graph`` in Lava fixed_pt on ``x`` (batch, steps, *input_shape) 0/1 (or a name -> array dict
    for several inputs); one Lava run per sample. ``nodes`` limits what is recorded (Input, Flatten and
    neuron group names; default all); ``record_state`` adds u and v of the recorded neurons; ``run_cfg``
    defaults to ``simulation_run_config()`` (pass ``hardware_run_config()`` for a Loihi 2 chip)."""
    inputs = as_input_dict(graph, x)
    batch = next(iter(inputs.values())).shape[0]
    per_sample = [run_sample(graph, {n: a[b] for n, a in inputs.items()}, record_state, nodes, run_cfg)[0]
                  for b in range(batch)]
    return stack_traces(per_sample)


def run_sample(graph: Graph, sample: dict[str, np.ndarray], record_state: bool = True,
               nodes=None, run_cfg=None) -> tuple[Traces, LavaTiming]:
    """Build, compile, run and read one sample (input name -> (steps, *shape)); the runtime is always
    stopped. Returns batch-1 ``Traces`` and the time spent in each phase."""
    start = time.perf_counter()
    net = build_lava(graph, sample, record_state, nodes)
    built = time.perf_counter()
    try:
        net.root.create_runtime(run_cfg=run_cfg or simulation_run_config())
        compiled = time.perf_counter()
        from lava.magma.core.run_conditions import RunSteps
        net.root.run(condition=RunSteps(num_steps=net.steps))
        ran = time.perf_counter()
        traces = net.traces()
        read = time.perf_counter()
    finally:
        net.root.stop()
    return traces, LavaTiming(built - start, compiled - built, ran - compiled, read - ran)


def stack_traces(parts: list[Traces]) -> Traces:
    """Concatenate batch-1 ``Traces`` along the batch axis."""
    first = parts[0]
    spikes = {n: np.concatenate([p.spikes[n] for p in parts]) for n in first.spikes}
    states = {n: {k: np.concatenate([p.states[n][k] for p in parts]) for k in s}
              for n, s in first.states.items()}
    return Traces(spikes, states)
