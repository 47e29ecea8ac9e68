"""lava-dl netx as the reference of a ``.net`` file: netx's own ``hdf5.Network`` built from the file (with
the netx loading options the load used, ``NetOptions``), run on Lava fixed_pt, its layers
read by Monitors, and compared with snnc's emulator (``snnc verify --reference netx``).

Alignment (the one the parity tests check): netx's Monitor step ``t`` of layer ``k`` is step ``t`` of the
same neuron group in ``run_loihi(load_net(path), x)``: both start at Lava's time_step 1 and every layer adds
one step. ``netx_runner`` is therefore a runner for ``snnc.simulators.aligned.run_on_ir_grid``, which pads
the input by the pipeline latency and shifts every trace by its node's latency exactly as it does for the
emulator; its traces compare element for element with the emulator's on the same grid.

Input, as ``snnc --input`` gives it to a .net graph: 0/1 spikes (``Input``), or the graded values of
``input_message_bits`` / after ``skip_layers``, go into ``net.inp``; a
sigma-delta file's graded values (``GradedInput``) into its input Delta's ``a_in`` (netx's Input block
leaves its own port unconnected); pixel values of a bias-driven input layer (``BiasInput``) become the
input neurons' ``bias_mant``, set once before the run as netx users do, so they must not change over the
steps. A Lava run that raises leaves runtime processes alive: every network is stopped in a ``finally``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.backends.lava_loihi2.build import from_lava_layout, to_lava_layout
from snnc.backends.lava_loihi2.compat import import_lava
from snnc.backends.lava_loihi2.run import simulation_run_config, stack_traces
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import NetOptions, check_netx_builds
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput
from snnc.simulators.aligned import Runner, run_on_ir_grid
from snnc.simulators.traces import Divergence, Traces, as_input_dict, first_divergence

# The Lava Vars netx's neuron processes hold, by process class (what its Monitors can probe besides s_out);
# they are the emulator's state names of the same neuron groups.
NETX_STATE = {"LIF": ("u", "v"), "LIFReset": ("u", "v"), "Delta": ("act", "residue"),
              "SigmaDelta": ("sigma", "act", "residue"), "Sigma": ("sigma",), "RF": ("real", "imag"),
              "RF_IZ": ("real", "imag")}


def run_netx(path: str | Path, sample: np.ndarray | None = None, *, bias: np.ndarray | None = None,
             steps: int | None = None, record_state: bool = True, **options) -> list[dict[str, np.ndarray]]:
    """Build netx's ``hdf5.Network`` from ``path`` (``options``: its loading options, ``NetOptions``'s
    fields; None values are left to netx's defaults), drive it with ``sample`` (steps, *shape) from a
    RingBuffer or, for a bias-driven input layer, with ``bias`` (*shape, IR layout) as the input neurons'
    ``bias_mant`` for ``steps`` steps, and run it on Lava fixed_pt. Per netx layer, in order: ``s_out`` and
    (``record_state``) the neuron's state Vars (``NETX_STATE``), each (steps, *shape) int64 in snnc's
    layout. The network is always stopped."""
    import_lava(dl=True)
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps

    steps = sample.shape[0] if sample is not None else steps
    net = netx.hdf5.Network(net_config=str(path), **{k: v for k, v in options.items() if v is not None})
    try:
        _drive(net, sample, bias)
        monitors = [_probe(layer.neuron, steps, record_state) for layer in net.layers]
        net.run(condition=RunSteps(num_steps=steps), run_cfg=simulation_run_config())
        return [{var: _read(monitor, var) for var, monitor in layer.items()} for layer in monitors]
    finally:
        net.stop()


def _drive(net, sample: np.ndarray | None, bias: np.ndarray | None) -> None:
    """Connect the input: ``bias`` into the input neurons' bias_mant, else a RingBuffer holding ``sample``
    into the input block's neuron (netx's Input block) or the network's ``inp``."""
    from lava.proc.io.source import RingBuffer
    has_input_block = type(net.in_layer).__name__ == "Input"
    if bias is not None:
        if not has_input_block:
            raise SnncError("netx: bias values given, but the network's first layer is not an input layer "
                            "with a neuron")
        net.in_layer.neuron.bias_mant.init = to_lava_layout(np.asarray(bias)).astype(np.int32)
        return
    data = np.moveaxis(to_lava_layout(np.asarray(sample), leading=1), 0, -1).astype(np.int32)
    source = RingBuffer(data=np.ascontiguousarray(data))
    source.s_out.connect(net.in_layer.neuron.a_in if has_input_block else net.inp)


def _probe(neuron, steps: int, record_state: bool) -> dict:
    """One Monitor per recorded Var of a netx layer's neuron process."""
    from lava.proc.monitor.process import Monitor
    names = ("s_out",) + (NETX_STATE[type(neuron).__name__] if record_state else ())
    monitors = {}
    for var in names:
        monitors[var] = Monitor()
        monitors[var].probe(getattr(neuron, var), steps)
    return monitors


def _read(monitor, var: str) -> np.ndarray:
    """A Monitor's trace (steps, *Lava shape) in snnc's layout (steps, *shape), int64."""
    data = np.asarray(next(iter(monitor.get_data().values()))[var])
    return from_lava_layout(data, leading=1).astype(np.int64)


def neuron_names(graph: Graph) -> list[str]:
    """The neuron groups of a graph ``load_net`` made, in file order: netx's ``net.layers`` one for one."""
    return [n.name for n in graph.nodes if n.ROLE == "neuron"]


def netx_traces(graph: Graph, layers: list[dict[str, np.ndarray]]) -> Traces:
    """netx's per-layer records of one sample as batch-1 ``Traces`` keyed by ``graph``'s neuron groups."""
    names = neuron_names(graph)
    if len(names) != len(layers):
        raise SnncError(f"netx built {len(layers)} neuron layers, graph '{graph.name}' has {len(names)} "
                        f"neuron groups ({', '.join(names)}): they do not describe the same network")
    shapes = graph.shapes
    spikes, states = {}, {}
    for name, layer in zip(names, layers):
        as_node = {var: trace.reshape(1, trace.shape[0], *shapes[name]) for var, trace in layer.items()}
        spikes[name] = as_node.pop("s_out")
        if as_node:
            states[name] = as_node
    return Traces(spikes, states)


def netx_runner(path: str | Path, options: NetOptions | None = None) -> Runner:
    """A ``run(graph, x, record_state)`` that runs netx on ``path`` once per sample of ``x`` (input name ->
    (batch, steps, *shape), as ``run_on_ir_grid`` passes it) and returns the stacked ``Traces``."""
    options = options or NetOptions()

    def run(graph: Graph, x, record_state: bool = True) -> Traces:
        ((name, values),) = as_input_dict(graph, x).items()
        node = graph.node(name)
        parts = []
        for b in tqdm(range(len(values)), desc="netx", unit="sample", disable=len(values) <= 1, leave=False):
            if isinstance(node, BiasInput):
                layers = run_netx(path, bias=_static_bias(node, values[b]), steps=values.shape[1],
                                  record_state=record_state, **vars(options))
            else:
                layers = run_netx(path, values[b], record_state=record_state, **vars(options))
            parts.append(netx_traces(graph, layers))
        return stack_traces(parts)
    return run


def _static_bias(node: BiasInput, values: np.ndarray) -> np.ndarray:
    """The one bias image a sample holds over its steps (steps, *shape) -> (*shape); netx sets bias_mant once."""
    changed = np.any((values != values[:1]).reshape(len(values), -1), axis=1)
    if np.any(changed):
        raise UnsupportedError(node.name, "bias", "the same values at every step (netx's input neurons take "
                               "them as bias_mant, set once before the run)", f"a change at step "
                               f"{int(np.argmax(changed))}")
    return values[0]


def check_netx_input(graph: Graph, lowered: Graph) -> None:
    """netx takes what the file's input layer takes: refuse a compiled graph whose input was changed (a
    static input made by ``--compress-timesteps``)."""
    source, compiled = graph.inputs[0], lowered.inputs[0]
    if type(source) is not type(compiled):
        raise UnsupportedError(compiled.name, "type", f"{type(source).__name__} (netx feeds the .net file's own "
                               "input layer; recompile without --compress-timesteps)", type(compiled).__name__)


def compare_with_netx(graph: Graph, path: str | Path, options: NetOptions | None, x: np.ndarray,
                      emulated: Traces) -> tuple[bool, list[str]]:
    """netx's network from ``path`` (the file ``graph`` was loaded from with ``options``) run on ``x``
    (samples, steps, *shape), on the same step grid as ``emulated`` (``run_on_ir_grid`` traces of the
    emulator): whether the spikes (and, where ``emulated`` recorded them, the states) of every netx layer
    equal the emulator's, and the line ``snnc verify`` prints: the counts, or the first divergence by layer,
    node, quantity, sample, step and neuron. Refuses up front (``check_netx_builds``) what netx cannot build."""
    options = options or NetOptions()
    check_netx_builds(path, options)
    names = neuron_names(graph)
    missing = [n for n in names if n not in emulated.spikes]
    if missing:
        raise SnncError(f"--reference netx: the emulator recorded no trace of '{missing[0]}' (netx layer "
                        f"{names.index(missing[0])}); the compiled graph renamed or split it")
    with_states = bool(emulated.states)
    reference = run_on_ir_grid(graph, x, netx_runner(path, options), record_state=with_states)
    divergence = first_divergence(reference, emulated, names, with_states=with_states)
    head = f"emulator vs lava-dl netx on Lava fixed_pt ({path}): "
    if divergence is not None:
        return False, [head + "MISMATCH: " + _divergence_text(divergence, names)]
    quantities = ["spikes"] + sorted({v for n in names for v in reference.states.get(n, {})})
    compared = ", ".join(quantities[:-1]) + " and " + quantities[-1] if len(quantities) > 1 else "spikes"
    output = graph.outputs[0]
    samples = f"{len(x)} sample" + ("s" if len(x) != 1 else "")
    return True, [head + f"equal: identical {compared} of the {len(names)} netx layers at every step ({samples} "
                  f"x {x.shape[1]} steps; output '{output}' "
                  f"{int(np.count_nonzero(reference.spikes[output]))} spikes)"]


def _divergence_text(d: Divergence, names: list[str]) -> str:
    """The first divergence, netx's value as the expected one."""
    return (f"first divergence at netx layer {names.index(d.node)} (node '{d.node}') {d.quantity}: sample "
            f"{d.batch}, step {d.step}, neuron {d.neuron}: netx {d.expected!r}, emulator {d.actual!r}")
