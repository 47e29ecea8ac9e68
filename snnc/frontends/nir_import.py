"""NIR 1.0 (Neuromorphic Intermediate Representation) import (export: ``snnc.frontends.nir_export``).

NIR nodes are continuous-time; NIR stores no time step, no reset kind and no update order. snnc
therefore never guesses them: ``load_nir`` needs ``dt_s`` and ``reset`` (CLI ``--dt``, ``--reset``) unless
the file carries snnc's own metadata (``snnc.dt_s``, ``snnc.reset``, written by ``save_nir``); the
threshold test is NIR's documented ``v > v_threshold`` unless ``comparison="ge"`` is given.

Discretisation (forward Euler at step ``dt``, current updated before voltage, as snnTorch, SpikingJelly
and Norse export and simulate)::

    LIF      tau dv/dt = (v_leak - v) + r I          -> voltage_decay = dt/tau, input x dt*r/tau,
                                                        bias = dt*v_leak/tau, current_decay = 1
    CubaLIF  tau_syn dI/dt = -I + w_in S             -> current_decay = dt/tau_syn,
             tau_mem dv/dt = (v_leak - v) + r I         voltage_decay = dt/tau_mem,
                                                        input x (dt*w_in/tau_syn) * (dt*r/tau_mem)
    IF       dv/dt = r I                             -> voltage_decay = 0, input x dt*r
    LI / CubaLI / I                                  -> ``LI`` readouts with the same rules
    Threshold                                        -> memoryless ``CubaLIF`` (both decays 1, no reset)

The input factor of a neuron is folded into the weights of the synapse(s) feeding it. Synapses:
``Affine``/``Linear`` -> ``Dense``; ``Conv2d`` (dilation 1) -> ``Conv2d``; ``SumPool2d``/``AvgPool2d``
(no padding) -> ``SumPool2d``; ``Flatten`` (all dimensions) -> ``Flatten``; ``Scale`` is folded into the
next ``Affine``/``Linear``; ``Delay`` (a whole number of steps) -> the synapse's ``delay_steps``; nested
``NIRGraph`` subgraphs (snnTorch's RLeaky) are inlined. ``v_reset`` must be 0. Anything else raises an
error naming the file, the node and the field. Several linear nodes on one path are composed into one
``Dense`` by ``apply_chain``, a pure evaluation of their maps on a basis.

``snnc.frontends.nir_export.save_nir`` writes ``dt``, reset and comparison as graph and node metadata, so
``load_nir`` reads such a file back without options.

Producer conventions (``producer``, CLI ``--producer``): "nir" (default) reads the continuous-time definition
above. "norse" reads what Norse 1.1's ``norse.torch.to_nir(model, sample, dt=dt)`` writes, which is not that
definition: it writes ``tau = dt / tau_inv`` (the module's inverse time constant; the result is dt * tau, in
seconds squared) and r = 1, and its cells integrate the input as a jump (``i = i + X``, IAF ``v = v + X``),
not as dt/tau_syn * X. With ``dt_s`` the dt given to ``to_nir`` (default 1e-3), the exact per-step form
(``snnc.frontends.torch_trace_norse`` for the cells' equations)::

    CubaLIF (LIFCell)   current_decay = dt^2/tau_syn, voltage_decay = a = dt^2/tau_mem, input x w_in * r * a
    LIF (LIFBoxCell)    current_decay = 1, voltage_decay = a = dt^2/tau, input x r * a
    LI (LIBoxCell)      as LIF, a readout
    IF (IAFCell)        current_decay = 1, voltage_decay = 0, input x r

the Input's leading batch axis of 1 (``to_nir`` writes the sample's shape) dropped, v_leak = 0 required
(Norse starts v at v_leak and resets it to v_reset, which ``to_nir`` does not write; both are 0 by default)
and the reset "zero" (LIFCell and IAFCell always reset to v_reset; for LIFBoxCell, whose reset_method the
file does not record, ``--reset zero`` must be given: its ``reset_subtract`` subtracts before the leak and is
compiled exactly only from the torch module). Norse's LI (LIBoxCell) is read the same way; a node Norse does
not write (Threshold, I, CubaLI) is refused under this convention.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from snnc.errors import ModelFieldError, ModelFileError, SnncError, UnsupportedError
from snnc.frontends.hdf5_guard import HDF5Limits, check_hdf5
from snnc.frontends.isolation import IsolationLimits, load_isolated
from snnc.frontends.ir_values import compact_parameter, ir_name, time_step_seconds
from snnc.arith.synapse_math import conv2d_sum, dense_sum, sum_pool_sum
from snnc.ir.graph import Graph, output_shape
from snnc.ir.names import graph_name_fields
from snnc.ir.nodes import LI, Comparison, Conv2d, CubaLIF, Dense, Flatten, Input, ResetKind, SumPool2d
from snnc.ir.verify import verify

# the one table of NIR node classes snnc reads (keyed on the class name): what role each plays
NODE_ROLES = {
    "LIF": "spiking", "CubaLIF": "spiking", "IF": "spiking", "Threshold": "spiking",
    "LI": "readout", "CubaLI": "readout", "I": "readout",
    "Affine": "synapse", "Linear": "synapse", "Conv2d": "synapse", "SumPool2d": "synapse", "AvgPool2d": "synapse",
    "Flatten": "passing", "Scale": "passing", "Delay": "passing",
    "Input": "boundary", "Output": "boundary",
}
SPIKING, READOUTS, SYNAPSES, PASSING = (tuple(k for k, role in NODE_ROLES.items() if role == wanted)
                                        for wanted in ("spiking", "readout", "synapse", "passing"))
META_PREFIX = "snnc."
NIR_LIMITS = HDF5Limits()  # nir.write stores raw arrays: the default budget holds any real graph


class NirFileError(ModelFieldError):
    """A NIR file is unreadable, malformed or needs an option; names the node and field."""


@dataclass(frozen=True)
class NirOptions:
    """What NIR does not store. ``dt_s``: seconds per step; ``reset``: a ``ResetKind`` value for every
    spiking node; ``comparison``: "gt" (NIR's definition) or "ge" (SpikingJelly's heaviside)."""

    dt_s: float
    reset: str | None
    comparison: str = Comparison.GT
    default_reset: str | None = None
    producer: str = "nir"


PRODUCERS = ("nir", "norse")
NORSE_NODES = ("CubaLIF", "LIF", "LI", "IF")
NORSE_TAU = ("Norse's to_nir writes tau = dt / tau_inv, so the decay per step is dt * tau_inv = dt^2 / tau; "
             "pass the dt given to to_nir (default 1e-3)")


@dataclass(frozen=True)
class ChainStep:
    """One linear NIR node as a pure map of a batch (first axis: batch) and the shape it outputs."""

    apply: Callable[[np.ndarray], np.ndarray]
    out_shape: tuple[int, ...]


def apply_chain(steps: Sequence[ChainStep], x: np.ndarray) -> np.ndarray:
    """The batch ``x`` through every step in order; reads nothing else and changes nothing."""
    for step in steps:
        x = step.apply(x)
    return x


def apply_synapse(synapse: Dense | Conv2d | SumPool2d, x: np.ndarray) -> np.ndarray:
    """The currents of an IR synapse (delay aside) for the batch of inputs ``x``, in float64."""
    if isinstance(synapse, Dense):
        y = dense_sum(x, synapse.weight)
        return y if synapse.bias is None else y + synapse.bias
    if isinstance(synapse, Conv2d):
        y = conv2d_sum(x, synapse.weight, synapse.in_shape, synapse.stride, synapse.padding, synapse.groups)
        return y if synapse.bias is None else y + synapse.bias[None, :, None, None]
    return synapse.scale * sum_pool_sum(x, synapse.in_shape, synapse.kernel, synapse.stride)


def _flattened(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


# ------------------------------------------------------------------------------------------- import

def load_nir(path: str | Path, dt_s: float | None = None, reset: str | None = None,
             comparison: str | None = None, limits: HDF5Limits = NIR_LIMITS,
             isolation: IsolationLimits | None = IsolationLimits(), producer: str | None = None) -> Graph:
    """Read a NIR file into a verified float IR graph (zero-latency timing); ``limits`` bound what the file
    may declare (``snnc.frontends.hdf5_guard``); the HDF5 parse runs in a child process under ``isolation``
    (``snnc.frontends.isolation``; None: in this process, for a trusted file). ``producer``: whose
    convention the parameters follow ("nir", the default, or "norse"; module docstring)."""
    path = Path(path)
    if isolation is not None:
        return load_isolated(lambda: load_nir(path, dt_s, reset, comparison, limits, isolation=None,
                                              producer=producer), path, isolation)
    nir_graph = _read(path, limits)
    return _translate(path, nir_graph, dt_s, reset, comparison, path.stem or "network", producer)


def nir_graph_to_ir(nir_graph, dt_s: float, reset: str | None, comparison: str = Comparison.GT,
                    name: str = "network", path: str = "<nir graph>", producer: str | None = None) -> Graph:
    """Translate an in-memory ``nir.NIRGraph`` (e.g. from ``export_to_nir`` or Norse's ``to_nir``) with
    explicit options."""
    return _translate(Path(path), nir_graph, dt_s, reset, comparison, name, producer)


def _translate(path: Path, nir_graph, dt_s, reset, comparison, name: str, producer: str | None = None) -> Graph:
    """Options, subgraph inlining and translation; a malformed value anywhere becomes a NirFileError that
    names the node and field being read."""
    importer = None
    try:
        options = _options(path, nir_graph, dt_s, reset, comparison, producer)
        nodes, edges = _inline_subgraphs(path, nir_graph.nodes, nir_graph.edges, prefix="")
        importer = _Importer(path, nodes, edges, options)
        return importer.build(name=name)
    except SnncError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError) as exc:
        node, field = (importer.current, importer.field) if importer else ("graph", "metadata")
        problem = str(exc) if isinstance(exc, _FieldValueError) else f"malformed value ({type(exc).__name__}: {exc})"
        raise NirFileError(path, node, field, problem[:240]) from None


def _read(path: Path, limits: HDF5Limits):
    import nir
    try:
        check_hdf5(path, limits)
        graph = nir.read(path, type_check=False)
    except SnncError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside the third-party reader is a file problem
        raise ModelFileError(str(path), f"not a readable NIR file ({type(exc).__name__}: "
                                        f"{str(exc)[:160]})") from None
    if type(graph).__name__ != "NIRGraph":
        raise NirFileError(path, "node", "type", f"expected a NIRGraph at the top, got {type(graph).__name__}")
    return graph


def _options(path: Path, graph, dt_s, reset, comparison, producer=None) -> NirOptions:
    metadata = getattr(graph, "metadata", None) or {}
    if not isinstance(metadata, dict):
        raise NirFileError(path, "graph", "metadata", f"a mapping, got {type(metadata).__name__}")
    meta = {k[len(META_PREFIX):]: _meta_value(v) for k, v in metadata.items()
            if isinstance(k, str) and k.startswith(META_PREFIX)}
    comparison = comparison if comparison is not None else meta.get("comparison", Comparison.GT)
    if dt_s is None and meta.get("dt_s") is None:
        raise NirFileError(path, "graph", "dt", "NIR stores no time step: pass --dt SECONDS (snnTorch's and "
                           "SpikingJelly's export_to_nir write parameters for 1e-4; Norse's to_nir: --producer "
                           "norse with the dt given to to_nir, default 1e-3; another producer: the step its own "
                           "simulation used)")
    dt_s = time_step_seconds(dt_s, meta.get("dt_s"), f"metadata['{META_PREFIX}dt_s']",
                             lambda field, problem: NirFileError(path, "graph", field, problem))
    default = meta.get("reset") if isinstance(meta.get("reset"), str) and meta.get("reset") in tuple(ResetKind) \
        else None
    comparison = comparison if isinstance(comparison, str) else repr(comparison)
    if reset is not None and reset not in tuple(ResetKind):
        raise NirFileError(path, "graph", "reset", f"one of {', '.join(ResetKind)} expected, got {reset!r}")
    if comparison not in tuple(Comparison):
        raise NirFileError(path, "graph", "comparison", f"gt or ge expected, got {comparison!r}")
    producer = "nir" if producer is None else producer
    if producer not in PRODUCERS:
        raise NirFileError(path, "graph", "producer", f"one of {', '.join(PRODUCERS)} expected, got {producer!r}")
    return NirOptions(dt_s, reset, comparison, default, producer)


def _meta_value(value):
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (str, int, float)) else None


def _inline_subgraphs(path: Path, nodes: dict, edges, prefix: str):
    """Replace nested NIRGraph nodes by their contents (names ``outer.inner``); subgraph Input/Output
    nodes become pass-throughs that are removed."""
    if not isinstance(nodes, dict):
        raise NirFileError(path, prefix.rstrip(".") or "graph", "nodes", f"a mapping of names to nodes, got "
                           f"{type(nodes).__name__}")
    flat, flat_edges, entry, exit_ = {}, [], {}, {}
    for name, node in nodes.items():
        full = prefix + str(name)
        if type(node).__name__ == "NIRGraph":
            inner, inner_edges = _inline_subgraphs(path, node.nodes, node.edges, prefix=full + ".")
            ins = [k for k, v in inner.items() if type(v).__name__ == "Input"]
            outs = [k for k, v in inner.items() if type(v).__name__ == "Output"]
            if len(ins) != 1 or len(outs) != 1:
                raise NirFileError(path, full, "nodes", f"a subgraph with one Input and one Output, got "
                                   f"{len(ins)} and {len(outs)}")
            for k in ins + outs:
                inner[k] = _PassThrough()
            flat.update(inner)
            flat_edges += inner_edges
            entry[full], exit_[full] = ins[0], outs[0]
        else:
            flat[full] = node
    for edge in edges:
        if len(edge) != 2:
            raise NirFileError(path, prefix or "graph", "edges", f"pairs expected, got {edge!r}")
        src, dst = prefix + _name(edge[0]), prefix + _name(edge[1])
        flat_edges.append((exit_.get(src, src), entry.get(dst, dst)))
    return _drop_pass_throughs(flat, flat_edges)


class _PassThrough:
    """A subgraph boundary: forwards its input unchanged."""


def _name(value) -> str:
    return value.decode("utf8", "replace") if isinstance(value, (bytes, np.bytes_)) else str(value)


def _drop_pass_throughs(nodes: dict, edges: list):
    passing = {k for k, v in nodes.items() if isinstance(v, _PassThrough)}
    for name in passing:
        preds = [s for s, d in edges if d == name]
        succs = [d for s, d in edges if s == name]
        edges = [(s, d) for s, d in edges if name not in (s, d)] + [(p, q) for p in preds for q in succs]
        del nodes[name]
    return nodes, edges


class _Importer:
    """Builds IR nodes from a flat NIR node dict and edge list."""

    def __init__(self, path: Path, nodes: dict, edges: list, options: NirOptions):
        self.path, self.nodes, self.options = path, nodes, options
        for src, dst in edges:
            for end in (src, dst):
                if end not in nodes:
                    raise NirFileError(path, end, "edges", f"an existing node; edge ({src!r}, {dst!r})")
        self.preds = {k: [s for s, d in edges if d == k] for k in nodes}
        self.succs = {k: [d for s, d in edges if s == k] for k in nodes}
        self.ir: list = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        # (synapse, target neuron) pairs whose bias is already in the IR: when several sources feed one
        # Affine/Conv2d, the target gets that bias once (each fan-out target gets its own)
        self.biased: set[tuple[str, str]] = set()
        self.current, self.field = "graph", "edges"   # what is being read (for error messages)

    def error(self, node: str, field: str, problem: str) -> NirFileError:
        return NirFileError(self.path, node, field, problem)

    def kind(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    def build(self, name: str) -> Graph:
        inputs = [k for k in self.nodes if self.kind(k) == "Input"]
        outputs = [k for k in self.nodes if self.kind(k) == "Output"]
        if not inputs or not outputs:
            raise self.error("graph", "nodes", f"at least one Input and one Output, got {len(inputs)} and "
                             f"{len(outputs)}")
        for key in self.nodes:
            if self.kind(key) not in NODE_ROLES:
                raise UnsupportedError(f"{self.path}: {key}", "type", "a NIR node snnc represents ("
                                       + ", ".join(SPIKING + READOUTS + SYNAPSES + PASSING) + ")", self.kind(key))
        for key in inputs:
            self._add_input(key)
        neurons = [k for k in self.nodes if self.kind(k) in SPIKING + READOUTS]
        paths = {k: self._paths_to(k) for k in neurons}
        for key in neurons:
            self.shapes[key] = self._neuron_shape(key, paths[key])
        recurrent = recurrent_edges(inputs, paths)
        for key in neurons:
            self._add_neuron(key, paths[key], recurrent)
        outs = tuple(self._output_source(k) for k in outputs)
        graph = Graph(tuple(self.ir), outs, dt_s=self.options.dt_s, **graph_name_fields(name))
        try:
            return verify(graph)
        except SnncError as exc:
            raise ModelFileError(str(self.path), f"the translated graph is invalid: {exc}") from None

    def _add_input(self, key: str) -> None:
        self.current, self.field = key, "shape"
        node = self.nodes[key]
        shape = _shape_of(node.input_type.get("input") if isinstance(node.input_type, dict) else None)
        if self.options.producer == "norse" and shape is not None and len(shape) > 1 and shape[0] == 1:
            shape = shape[1:]          # Norse's to_nir writes the sample's shape, batch axis (1) included
        if shape is None or any(d <= 0 for d in shape):
            raise self.error(key, "shape", f"positive sizes, got {shape}")
        self.ir.append(Input(ir_name(key), shape))
        self.shapes[key] = shape

    def _paths_to(self, key: str) -> list[tuple[str, list[str]]]:
        """(spiking source, [linear nodes from the source to ``key``]) for every path into ``key``."""
        out = []
        stack = [(p, []) for p in self.preds[key]]
        while stack:
            node, chain = stack.pop()
            kind = self.kind(node)
            if kind in ("Input",) + SPIKING + READOUTS:
                out.append((node, chain))
            elif kind in SYNAPSES + PASSING:
                if len(chain) > 32 or node in chain:
                    raise self.error(node, "edges", "no cycle through synapses alone")
                stack += [(p, [node] + chain) for p in self.preds[node]]
            else:
                raise self.error(node, "edges", f"a synapse or spiking node before '{key}', got {kind}")
        if not out:
            raise self.error(key, "edges", "at least one input edge")
        return sorted(out, key=lambda p: (p[0], p[1]))

    def _neuron_shape(self, key: str, paths) -> tuple[int, ...]:
        self.current, self.field = key, "shape"
        node = self.nodes[key]
        field = {"Threshold": "threshold", "I": "r", "LI": "r", "IF": "r"}.get(self.kind(key), "v_leak")
        shape = tuple(int(d) for d in np.shape(getattr(node, field, None)))
        if shape in ((), (1,)):          # one value for the group (Norse writes 0-D or 1-element parameters)
            first = [c[-1] for _, c in paths if c and self.kind(c[-1]) in ("Affine", "Linear")]
            if first and np.ndim(self.nodes[first[0]].weight) == 2:
                shape = (int(np.shape(self.nodes[first[0]].weight)[0]),)
        if shape == () or int(np.prod(shape)) == 0:
            raise self.error(key, field, f"a per-neuron array (or an Affine/Linear input giving the size), got "
                             f"shape {shape}")
        return shape

    def _add_neuron(self, key: str, paths, recurrent: set) -> None:
        self.current, self.field = key, "parameters"
        params = self._neuron_params(key)
        shape = self.shapes[key]
        inputs = [self._synapse(key, source, chain, params["input_scale"],
                                1 if (source, key) in recurrent else 0).name for source, chain in paths]
        name = ir_name(key)
        common = dict(current_decay=params["current_decay"], voltage_decay=params["voltage_decay"],
                      bias=params["bias"])
        if self.kind(key) in READOUTS:
            self.ir.append(LI(name, tuple(inputs), shape, **common))
        else:
            self.ir.append(CubaLIF(name, tuple(inputs), shape, threshold=params["threshold"],
                                   reset=params["reset"], comparison=self.options.comparison, **common))

    def _neuron_params(self, key: str) -> dict:
        node, kind, dt = self.nodes[key], self.kind(key), self.options.dt_s
        shape = self.shapes[key]
        get = lambda field: self._array(key, node, field, shape)  # noqa: E731
        if self.options.producer == "norse":
            return self._norse_params(key, node, kind, shape)
        if kind == "Threshold":
            return dict(current_decay=1.0, voltage_decay=1.0, bias=0.0, threshold=compact_parameter(get("threshold")),
                        reset="none", input_scale=1.0)
        if kind in ("IF", "I"):
            self._zero_reset_potential(key, node, shape, kind)
            params = dict(current_decay=1.0, voltage_decay=0.0, bias=0.0, input_scale=dt * get("r"))
        elif kind in ("LIF", "LI"):
            self._zero_reset_potential(key, node, shape, kind)
            tau = get("tau")
            vd = self._decay(key, "tau", tau)
            params = dict(current_decay=1.0, voltage_decay=compact_parameter(vd), bias=compact_parameter(vd * get("v_leak")),
                          input_scale=dt * get("r") / tau)
        else:
            self._zero_reset_potential(key, node, shape, kind)
            tau_syn, tau_mem = get("tau_syn"), get("tau_mem")
            cd, vd = self._decay(key, "tau_syn", tau_syn), self._decay(key, "tau_mem", tau_mem)
            params = dict(current_decay=compact_parameter(cd), voltage_decay=compact_parameter(vd),
                          bias=compact_parameter(vd * get("v_leak")),
                          input_scale=(dt * get("w_in") / tau_syn) * (dt * get("r") / tau_mem))
        if kind in SPIKING:
            params.update(threshold=compact_parameter(get("v_threshold")), reset=self._reset(key))
        return params

    def _norse_params(self, key: str, node, kind: str, shape) -> dict:
        """Parameters of a node written by Norse 1.1's ``to_nir`` (module docstring)."""
        get = lambda field: self._array(key, node, field, shape)  # noqa: E731
        if kind not in NORSE_NODES:
            raise UnsupportedError(f"{self.path}: {key}", "type", "a node Norse's to_nir writes for a neuron ("
                                   + ", ".join(NORSE_NODES) + ")", kind)
        self._zero_reset_potential(key, node, shape, kind)
        if kind == "IF":
            params = dict(current_decay=1.0, voltage_decay=0.0, bias=0.0, input_scale=get("r"))
        else:
            leak = get("v_leak")
            if np.any(leak != 0):
                raise UnsupportedError(f"{self.path}: {key}", "v_leak", "0 (Norse starts v at v_leak and resets it "
                                       "to v_reset, which to_nir does not write; compile the torch module instead)",
                                       f"values in [{leak.min()!r}, {leak.max()!r}]")
            field = "tau_mem" if kind == "CubaLIF" else "tau"
            a = self._norse_decay(key, field, get(field))
            b = self._norse_decay(key, "tau_syn", get("tau_syn")) if kind == "CubaLIF" else 1.0
            w_in = get("w_in") if kind == "CubaLIF" else 1.0
            params = dict(current_decay=compact_parameter(b), voltage_decay=compact_parameter(a), bias=0.0,
                          input_scale=w_in * get("r") * a)
        if kind in SPIKING:
            params.update(threshold=compact_parameter(get("v_threshold")), reset=self._norse_reset(key, kind))
        return params

    def _norse_decay(self, key: str, field: str, tau: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            decay = self.options.dt_s * self.options.dt_s / tau
        if not np.all(np.isfinite(decay)) or np.any(decay < 0) or np.any(decay > 1):
            raise UnsupportedError(f"{self.path}: {key}", field, f">= dt^2 = {self.options.dt_s ** 2!r} "
                                   f"({NORSE_TAU})", f"values in [{np.min(tau)!r}, {np.max(tau)!r}]")
        return decay

    def _norse_reset(self, key: str, kind: str) -> str:
        """Norse's LIFCell and IAFCell reset to v_reset (= 0 here): "zero"; LIFBoxCell's reset_method is not in
        the file, so ``--reset zero`` must say it."""
        reset = self.options.reset
        if reset is None and kind != "LIF":
            return ResetKind.ZERO
        if reset != ResetKind.ZERO:
            what = "NIR stores no reset kind: pass --reset zero (LIFBoxCell's default reset_value)" \
                if reset is None else "zero (Norse cells reset to v_reset)"
            raise UnsupportedError(f"{self.path}: {key}", "reset", what + "; LIFBoxCell's reset_subtract subtracts "
                                   "v_th before the leak, which snnc compiles exactly from the torch module "
                                   "(snnc.compile(model, ...)), not from NIR", reset)
        return reset

    def _reset(self, key: str) -> str:
        """The user's --reset, else this node's snnc metadata, else the graph's; never a guess."""
        meta = getattr(self.nodes[key], "metadata", None)
        own = _meta_value(meta.get(META_PREFIX + "reset")) if isinstance(meta, dict) else None
        reset = self.options.reset or (own if own in tuple(ResetKind) else None) or self.options.default_reset
        if reset is None:
            raise self.error(key, "reset", "NIR stores no reset kind: pass --reset "
                             f"{{{','.join(ResetKind)}}} (snnTorch: the module's reset_mechanism, default "
                             "subtract; its 'zero' is zero for Leaky, zero_next for Synaptic/RLeaky; SpikingJelly "
                             "hard reset: zero)")
        return reset

    def _zero_reset_potential(self, key: str, node, shape, kind: str) -> None:
        if kind in ("IF", "LIF", "CubaLIF") and getattr(node, "v_reset", None) is not None:
            v_reset = self._array(key, node, "v_reset", shape)
            if np.any(v_reset != 0):
                raise UnsupportedError(f"{self.path}: {key}", "v_reset", "0 (snnc neurons reset to 0)",
                                       f"values in [{v_reset.min()}, {v_reset.max()}]",
                                       "export a model trained with a reset to 0 (snnTorch "
                                       "reset_mechanism='zero', SpikingJelly v_reset=0.0) or by subtraction")

    def _decay(self, key: str, field: str, tau: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            decay = self.options.dt_s / tau
        if not np.all(np.isfinite(decay)) or np.any(decay < 0) or np.any(decay > 1):
            raise UnsupportedError(f"{self.path}: {key}", field, f">= dt = {self.options.dt_s!r} s (forward "
                                   "Euler decay dt/tau in [0, 1]; a file from Norse's to_nir: --producer norse)",
                                   f"values in [{np.min(tau)!r}, {np.max(tau)!r}]")
        return decay

    def _array(self, key: str, node, field: str, shape) -> np.ndarray:
        self.field = field
        value = getattr(node, field, None)
        if value is None:
            raise self.error(key, field, "present")
        try:
            arr = np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()
        except (ValueError, TypeError):
            raise self.error(key, field, f"numbers broadcastable to {shape}, got shape {np.shape(value)}") \
                from None
        if not np.all(np.isfinite(arr)):
            raise self.error(key, field, "finite values, got NaN or inf")
        return arr

    # --------------------------------------------------------------------------------- synapses

    def _synapse(self, target: str, source: str, chain: list[str], scale, recurrent_delay: int):
        """One IR synapse for the linear chain ``source -> chain -> target`` (input factor folded in).
        ``recurrent_delay`` is 1 on an edge that closes a cycle: it reads the previous step's spikes."""
        cursor, shape = ir_name(source), self.shapes[source]
        delay = recurrent_delay + sum(self._delay_steps(k) for k in chain if self.kind(k) == "Delay")
        ops = [k for k in chain if self.kind(k) in SYNAPSES]
        if len(ops) != 1 or not self._single_op_chain(chain, ops[0]):
            return self._scaled(target, self._composed(target, source, chain, delay), scale)
        pre_scale = None
        for key in chain[:chain.index(ops[0])]:
            if self.kind(key) == "Scale":
                pre_scale = self._scale(key, shape) if pre_scale is None else pre_scale * self._scale(key, shape)
            elif self.kind(key) == "Flatten":
                cursor, shape = self._flatten(key, cursor, shape)
        name = self._unique(ir_name(ops[0]))
        node = self._synapse_node(ops[0], target, name, cursor, shape, pre_scale, delay)
        return self._scaled(target, node, scale)

    def _single_op_chain(self, chain: list[str], op: str) -> bool:
        """True when ``op`` alone maps the chain: only Delay nodes after it (a Scale or Flatten after it
        acts on its outputs, which the folding below cannot express), and for Conv2d/pooling nothing
        but Delay before it either."""
        index = chain.index(op)
        before_ok = self.kind(op) in ("Affine", "Linear") or all(self.kind(k) == "Delay" for k in chain[:index])
        return before_ok and all(self.kind(k) == "Delay" for k in chain[index + 1:])

    def _composed(self, target: str, source: str, chain: list[str], delay: int) -> Dense:
        """Several linear nodes in a row are one affine map: evaluate it exactly in float64 on a basis."""
        shape = self.shapes[source]
        size = int(np.prod(shape))
        if size > 1 << 14:
            raise UnsupportedError(f"{self.path}: {target}", "inputs", "one linear node per path for inputs "
                                   "larger than 16384 (composition would be a dense matrix)", size)
        steps = self._chain_steps(chain, target, shape)
        zero = apply_chain(steps, np.zeros((1, *shape)))
        basis = apply_chain(steps, np.eye(size).reshape(size, *shape))
        bias = zero.reshape(-1)
        weight = (basis.reshape(size, -1) - bias).T
        self.biased.update((key, target) for key in chain)
        name = self._unique(ir_name("_".join(chain[-1:]) or source))
        self.ir.append(Dense(name, ir_name(source), weight, bias if np.any(bias) else None, delay_steps=delay))
        return self.ir[-1]

    def _chain_steps(self, chain: list[str], target: str, shape) -> list[ChainStep]:
        """The validated linear map of every node of ``chain`` (Delay maps nothing), each with the biases
        not yet used for ``target``; reads the importer's state and changes none of it."""
        steps = []
        for key in chain:
            self.current, self.field = key, "parameters"
            node, kind = self.nodes[key], self.kind(key)
            if kind == "Flatten":
                steps.append(ChainStep(_flattened, (int(np.prod(shape)),)))
            elif kind == "Scale":
                steps.append(ChainStep(partial(np.multiply, self._array(key, node, "scale", shape)), shape))
            elif kind in SYNAPSES:
                synapse = self._synapse_map(key, target, node, shape)
                steps.append(ChainStep(partial(apply_synapse, synapse), output_shape(synapse, {})))
            shape = steps[-1].out_shape if steps else shape
        return steps

    def _synapse_map(self, key: str, target: str, node, shape):
        """The IR synapse (named ``probe``) of one NIR synapse reading a ``shape`` input, bias included
        when it was not used for ``target`` yet."""
        kind, unused = self.kind(key), (key, target) not in self.biased
        if kind in ("Affine", "Linear"):
            weight = self._matrix(key, node, int(np.prod(shape)))
            bias = self._vector(key, node, "bias", weight.shape[0]) if kind == "Affine" and unused \
                and np.any(node.bias) else None
            return Dense("probe", "probe", weight, bias)
        if len(shape) != 3:
            raise self.error(key, "input", f"(C, H, W) spikes, got shape {tuple(shape)}")
        if kind == "Conv2d":
            return self._conv(key, node, "probe", "probe", tuple(shape), 0, unused)
        return self._pool(key, node, "probe", "probe", tuple(shape), 0, average=(kind == "AvgPool2d"))

    def _unique(self, name: str) -> str:
        taken = {n.name for n in self.ir} | {ir_name(k) for k in self.nodes if self.kind(k) not in SYNAPSES}
        candidate, index = name, 1
        while candidate in taken:
            candidate, index = f"{name}_{index}", index + 1
        return candidate

    def _synapse_node(self, key: str, target: str, name: str, cursor: str, shape, pre_scale, delay: int):
        self.current, self.field = key, "parameters"
        node, kind = self.nodes[key], self.kind(key)
        if kind in ("Affine", "Linear"):
            weight = self._matrix(key, node, int(np.prod(shape)))
            if pre_scale is not None:
                weight = weight * pre_scale.reshape(1, -1)
            bias = self._vector(key, node, "bias", weight.shape[0]) if kind == "Affine" else None
            bias = None if (key, target) in self.biased else bias
            self.biased.add((key, target))
            self.ir.append(Dense(name, cursor, weight, bias, delay_steps=delay))
            return self.ir[-1]
        if pre_scale is not None:
            raise UnsupportedError(f"{self.path}: {key}", "inputs", "Scale only before Affine/Linear", "Scale")
        if len(shape) != 3:
            raise self.error(key, "input", f"(C, H, W) spikes, got shape {shape}")
        if kind == "Conv2d":
            synapse = self._conv(key, node, name, cursor, shape, delay, (key, target) not in self.biased)
            self.biased.add((key, target))
        else:
            synapse = self._pool(key, node, name, cursor, shape, delay, average=(kind == "AvgPool2d"))
        self.ir.append(synapse)
        return synapse

    def _conv(self, key, node, name, cursor, shape, delay, with_bias: bool) -> Conv2d:
        """The IR Conv2d of NIR Conv2d ``key`` (bias zero unless ``with_bias``); appends nothing."""
        weight = np.asarray(node.weight, dtype=np.float64)
        self.field = "groups"
        groups = _int(node.groups, 1)
        if weight.ndim != 4 or groups < 1 or shape[0] % groups or weight.shape[1] * groups != shape[0] \
                or weight.shape[0] % groups:
            raise self.error(key, "weight", f"(out, {shape[0]}/groups, kh, kw), got {weight.shape} with groups "
                             f"{groups}")
        self.field = "dilation"
        if _pair(node.dilation) != (1, 1):
            raise UnsupportedError(f"{self.path}: {key}", "dilation", "(1, 1)", _pair(node.dilation))
        self.field = "padding/stride"
        padding = self._padding(key, node.padding, weight.shape[2:])
        bias = np.asarray(node.bias, dtype=np.float64).reshape(-1)
        bias = np.zeros(weight.shape[0]) if not with_bias and bias.size == weight.shape[0] else bias
        if bias.size != weight.shape[0]:
            raise self.error(key, "bias", f"{weight.shape[0]} values, got {bias.size}")
        self._finite(key, "weight", weight)
        self._finite(key, "bias", bias)
        return Conv2d(name, cursor, weight, in_shape=shape, stride=_pair(node.stride), padding=padding,
                      groups=groups, bias=bias if np.any(bias) else None, delay_steps=delay)

    def _pool(self, key, node, name, cursor, shape, delay, average: bool) -> SumPool2d:
        """The IR SumPool2d of NIR SumPool2d/AvgPool2d ``key``; appends nothing."""
        self.field = "kernel_size/stride/padding"
        kernel, stride = _pair(node.kernel_size), _pair(node.stride)
        if _pair(node.padding) != (0, 0):
            raise UnsupportedError(f"{self.path}: {key}", "padding", "(0, 0)", _pair(node.padding))
        if min(kernel) < 1 or min(stride) < 1:
            raise self.error(key, "kernel_size/stride", f">= 1, got {kernel}/{stride}")
        scale = 1.0 / (kernel[0] * kernel[1]) if average else 1.0
        return SumPool2d(name, cursor, in_shape=shape, kernel=kernel, stride=stride, scale=scale,
                         delay_steps=delay)

    def _padding(self, key: str, padding, kernel) -> tuple[int, int]:
        if isinstance(padding, (str, bytes, np.bytes_)) or (isinstance(padding, np.ndarray) and
                                                            padding.dtype.kind in "SUO"):
            text = _meta_value(np.asarray(padding).reshape(()) if isinstance(padding, np.ndarray) else padding)
            if text == "valid":
                return (0, 0)
            if text == "same" and all(k % 2 for k in kernel):
                return (int(kernel[0]) // 2, int(kernel[1]) // 2)
            raise UnsupportedError(f"{self.path}: {key}", "padding", "integers, 'valid' or 'same' with odd "
                                   "kernels", text)
        return _pair(padding)

    def _scaled(self, target: str, node, scale):
        """The synapse with each output multiplied by the target neuron's input factor."""
        scale = np.asarray(scale, dtype=np.float64)
        if np.all(scale == 1.0):
            return node
        out_shape = self.shapes[target]
        flat = np.broadcast_to(scale, out_shape).reshape(-1)
        index = self.ir.index(node)
        if isinstance(node, Dense):
            bias = None if node.bias is None else node.bias * flat
            new = Dense(node.name, node.source, node.weight * flat[:, None], bias, node.delay_steps)
        else:
            per_channel = flat.reshape(out_shape[0], -1)
            if np.any(per_channel != per_channel[:, :1]):
                raise UnsupportedError(f"{self.path}: {target}", "input factor", "one value per channel after a "
                                       "convolution or pooling", "per-neuron values")
            new = self._scaled_spatial(node, per_channel[:, 0])
        self.ir[index] = new
        return new

    def _scaled_spatial(self, node, per_channel: np.ndarray):
        if isinstance(node, Conv2d):
            bias = None if node.bias is None else node.bias * per_channel
            return Conv2d(node.name, node.source, node.weight * per_channel[:, None, None, None], node.in_shape,
                          node.stride, node.padding, node.groups, bias, node.delay_steps)
        if np.any(per_channel != per_channel[0]):
            raise UnsupportedError(node.name, "input factor", "one value for a pooling layer", "per channel")
        return SumPool2d(node.name, node.source, node.in_shape, node.kernel, node.stride,
                         node.scale * float(per_channel[0]), node.delay_steps)

    def _flatten(self, key: str, cursor: str, shape):
        self.current, self.field = key, "start_dim/end_dim"
        node = self.nodes[key]
        start, end = _int(node.start_dim, 1), _int(node.end_dim, -1)
        rank = len(shape)
        dims = list(range(rank))
        try:
            covered = dims[start:(end % rank) + 1] if rank else []
        except ZeroDivisionError:
            covered = []
        if covered != dims and len(shape) > 1:
            raise UnsupportedError(f"{self.path}: {key}", "start_dim/end_dim", "flattening every dimension of "
                                   f"{shape}", f"{start}/{end}")
        name = ir_name(f"{key}_from_{cursor}") if any(n.name == ir_name(key) for n in self.ir) else ir_name(key)
        if not any(n.name == name for n in self.ir):
            self.ir.append(Flatten(name, cursor))
        return name, (int(np.prod(shape)),)

    def _delay_steps(self, key: str) -> int:
        self.current, self.field = key, "delay"
        delay = np.asarray(self.nodes[key].delay, dtype=np.float64).reshape(-1)
        if delay.size == 0 or np.any(delay != delay[0]):
            raise UnsupportedError(f"{self.path}: {key}", "delay", "one delay for the whole layer", "per-neuron")
        steps = delay[0] / self.options.dt_s
        if not np.isfinite(steps) or steps < 0 or abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
            raise UnsupportedError(f"{self.path}: {key}", "delay", f"a whole number of steps of dt = "
                                   f"{self.options.dt_s!r} s", float(delay[0]))
        return int(round(steps))

    def _scale(self, key: str, shape) -> np.ndarray:
        return self._array(key, self.nodes[key], "scale", shape).reshape(-1)

    def _matrix(self, key: str, node, size: int) -> np.ndarray:
        self.field = "weight"
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2 or weight.shape[1] != size:
            raise self.error(key, "weight", f"(out, {size}), got {weight.shape}")
        self._finite(key, "weight", weight)
        return weight

    def _vector(self, key: str, node, field: str, size: int) -> np.ndarray | None:
        self.field = field
        value = np.asarray(getattr(node, field), dtype=np.float64).reshape(-1)
        if value.size != size:
            raise self.error(key, field, f"{size} values, got {value.size}")
        self._finite(key, field, value)
        return value if np.any(value) else None

    def _finite(self, key: str, field: str, arr: np.ndarray) -> None:
        if not np.all(np.isfinite(arr)):
            raise self.error(key, field, "finite values, got NaN or inf")

    def _output_source(self, key: str) -> str:
        preds = self.preds[key]
        if len(preds) != 1 or self.kind(preds[0]) not in ("Input",) + SPIKING + READOUTS:
            raise self.error(key, "edges", f"one edge from a neuron or Input node, got {preds}")
        return ir_name(preds[0])


def recurrent_edges(inputs: list[str], paths: dict) -> set[tuple[str, str]]:
    """(source, neuron) edges that close a cycle in a depth-first walk from the inputs: NIR recurrence
    (as snnTorch's RLeaky export) reads the previous step's spikes there."""
    targets: dict[str, list[str]] = {}
    for neuron, incoming in paths.items():
        for source, _ in incoming:
            targets.setdefault(source, []).append(neuron)
    back, state = set(), {}
    for root in inputs:
        stack = [(root, iter(sorted(set(targets.get(root, [])))))]
        state[root] = "open"
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "done"
                stack.pop()
            elif state.get(child) == "open":
                back.add((node, child))
            elif child not in state:
                state[child] = "open"
                stack.append((child, iter(sorted(set(targets.get(child, []))))))
    return back


def _shape_of(value) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        arr = np.asarray(value).reshape(-1)
        return tuple(int(d) for d in arr) if arr.dtype.kind in "iuf" and arr.size else None
    except (TypeError, ValueError):
        return None


def _int(value, default: int) -> int:
    if value is None:
        return default
    arr = _integers(value)
    if arr.size != 1:
        raise _FieldValueError(f"one integer, got {arr.size} values")
    return int(arr[0])


def _pair(value) -> tuple[int, int]:
    arr = _integers(value)
    if arr.size == 1:
        return (int(arr[0]), int(arr[0]))
    if arr.size != 2:
        raise _FieldValueError(f"one or two integers, got {arr.size} values")
    return (int(arr[0]), int(arr[1]))


class _FieldValueError(ValueError):
    """A field holds the wrong kind of value (turned into NirFileError with node and field)."""


def _integers(value) -> np.ndarray:
    arr = np.asarray(value).reshape(-1)
    if arr.dtype.kind not in "iuf" or arr.size == 0:
        raise _FieldValueError(f"integers, got {arr.dtype.kind!r} values of size {arr.size}")
    if arr.dtype.kind == "f" and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        raise _FieldValueError("whole finite numbers")
    if np.any(np.abs(arr) > 1 << 30):
        raise _FieldValueError("integers below 2^30")
    return arr.astype(np.int64)

