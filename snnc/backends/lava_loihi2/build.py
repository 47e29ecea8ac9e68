"""Build real Lava 0.10 processes for a lowered (hop-latency) graph and one input sample.

Mapping (one Lava process per node):

* ``Input``      -> ``RingBuffer`` holding this sample's spikes; at Lava time_step t + 1 it sends column t,
  i.e. our step t.
* ``LoihiDense`` -> ``Dense`` (``DelayDense`` when any delay is non-zero), with ``weight_exp``,
  ``num_weight_bits`` and ``sign_mode``; Lava clips/truncates the weights exactly as snnc modelled.
* ``LoihiConv``  -> ``Conv`` (fixed_pt: no weight exponent, output wrapped to 24 bits).
* a neuron group -> the process its model names (``snnc.neurons``: ``lava_process``), e.g. ``LIF`` (du,
  dv, vth, bias_mant, bias_exp, v) for the CUBA LIF; a graded relay -> ``GradedVec`` (graded.py).
* ``Flatten``    -> no process: a virtual reshape port on its source.

Layout. The IR is (C, H, W) throughout; Lava is (X, Y, C) = (W, H, C). Every multi-dimensional tensor of
IR shape S is held in Lava with the axes reversed, shape ``S[::-1]``. Lava flattens/reshapes ports in
C order over ``S[::-1]``, which is Fortran order over S, so a Dense reading a flattened multi-D source has
its columns permuted (``lava_flat_order``), and a Dense writing into a multi-D neuron has its rows
permuted the same way. Convolutions get Lava's (C_out, KX, KY, C_in/groups) weight with the kernel
flipped, because Lava's Conv is a true convolution and ours (torch) a cross-correlation.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from snnc.backends.lava_loihi2.compat import import_lava
from snnc.errors import SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import BiasInput, Flatten, Input, LoihiConv, LoihiDense
from snnc.ir.nodes import GRADED_TYPES, LoihiGradedRelay, LoihiGradedSum, Slice
from snnc.neurons import model_of, models
from snnc.backends.lava_loihi2 import graded
from snnc.simulators.traces import Traces
from snnc.targets.catalog import LOIHI2   # the Lava backend runs Loihi arithmetic: its limits

# Neuron groups: every model of Loihi arithmetic that names a Lava process (graded relays: graded.py).
LAVA_NEURON_TYPES = tuple(m.node_type for m in models("loihi") if hasattr(m, "lava_process"))
LAVA_NODE_TYPES = (Input, Flatten, LoihiDense, LoihiConv) + LAVA_NEURON_TYPES + (Slice, LoihiGradedSum)
SIGN_MODE_NAMES = {"mixed": "MIXED", "excitatory": "EXCITATORY", "inhibitory": "INHIBITORY"}


@dataclass
class LavaNetwork:
    """Lava processes of one graph for one sample, plus the monitors that read it out.

    ``processes`` maps node names to processes (Flatten nodes have none); ``monitors`` maps
    (neuron name, "s_out" | "u" | "v") to a Monitor probing ``steps`` steps; ``recorded`` lists the node
    names whose traces ``traces()`` returns.
    """

    graph: Graph
    steps: int
    sample: dict[str, np.ndarray]
    processes: dict[str, object] = field(default_factory=dict)
    monitors: dict[tuple[str, str], object] = field(default_factory=dict)
    recorded: tuple[str, ...] = ()

    @property
    def root(self):
        """Any process of the network: running or stopping it runs or stops all connected ones."""
        return next(iter(self.processes.values()))

    def traces(self) -> Traces:
        """Monitored data as a batch-1 ``Traces`` in the emulator's layout and dtypes; call after the run
        and before stopping the runtime. Input spikes are the sample itself (what the RingBuffer sent)."""
        spikes, states = {}, {}
        for name in self.recorded:
            spikes[name] = self._spikes(name)
            variables = [var for (node, var) in self.monitors if node == name and var != "s_out"]
            if variables:
                states[name] = {var: self._read(name, var) for var in variables}
        return Traces(spikes, states)

    def _spikes(self, name: str) -> np.ndarray:
        """(1, steps, *IR shape) uint8 spikes of an Input, Flatten, Slice or neuron node (int64
        payloads where the producer is graded)."""
        node = self.graph.node(name)
        if isinstance(node, Slice):
            source = self._spikes(node.source)
            return source.reshape(1, self.steps, -1)[:, :, node.start:node.stop]
        base = self.graph.producer(name).name
        if isinstance(self.graph.node(base), Input):
            spikes = self.sample[base][None]
        else:
            spikes = self._read(base, "s_out")
        dtype = np.int64 if isinstance(self.graph.node(base), GRADED_TYPES + (BiasInput,)) else np.uint8
        return spikes.astype(dtype).reshape(1, self.steps, *self.graph.shapes[name])

    def _read(self, name: str, var: str) -> np.ndarray:
        """(1, steps, *IR shape) int64 from the monitor of ``name.var``."""
        monitor = self.monitors[(name, var)]
        lava_var = model_of(self.graph.node(name)).lava_state_ports.get(var, var)   # ATRLIF's u is "i"
        data = np.asarray(monitor.get_data()[name][lava_var]).astype(np.int64)
        return from_lava_layout(data, leading=1)[None]


def build_lava(graph: Graph, sample: dict[str, np.ndarray], record_state: bool = True,
               nodes: tuple[str, ...] | list[str] | None = None) -> LavaNetwork:
    """Lava processes for ``graph`` driven by ``sample`` (input name -> (steps, *shape) 0/1 array).

    ``nodes`` names the Input/Flatten/neuron nodes to record (default: all); neuron states u, v are
    monitored too when ``record_state``. Raises ``SnncError`` for graphs Lava cannot run, before any
    Lava object is created.
    """
    check_lava_supports(graph)
    recorded = _recordable(graph, nodes)
    import_lava()
    steps = int(next(iter(sample.values())).shape[0])
    net = LavaNetwork(graph, steps, sample, recorded=recorded)
    for node in graph.nodes:
        process = _make_process(node, graph, sample)
        if process is not None:
            net.processes[node.name] = process
    for node in graph.nodes:
        if isinstance(node, (LoihiDense, LoihiConv)):
            _connect_synapse(net, node)
        elif isinstance(node, LoihiGradedSum):
            _connect_graded_sum(net, node)
        elif node.ROLE == "neuron":
            _connect_direct_inputs(net, node)
    _add_monitors(net, record_state)
    return net


def default_recorded(graph: Graph) -> tuple[str, ...]:
    """Every node the emulator records: inputs, flattens and neurons."""
    return tuple(n.name for n in graph.nodes if isinstance(n, (Input, Flatten, Slice)) or n.ROLE == "neuron")


def _recordable(graph: Graph, nodes) -> tuple[str, ...]:
    """``nodes`` (default: all Input/Flatten/Slice/neuron nodes), checked to name such nodes."""
    if nodes is None:
        return default_recorded(graph)
    allowed = set(default_recorded(graph))
    for name in nodes:
        if name not in allowed:
            raise SnncError(f"cannot record node '{name}': record one of {sorted(allowed)}")
    return tuple(nodes)


def check_lava_supports(graph: Graph) -> None:
    """Raise ``SnncError`` for what Lava 0.10 cannot express: wrong timing, a node type without a Lava
    process, delays outside 0..63, a synapse feeding neurons of different shapes, a conv feeding a
    neuron of another multi-D shape."""
    if graph.timing != "hop_latency":
        raise SnncError(f"the Lava backend runs lowered (hop_latency) graphs; '{graph.name}' is "
                        f"{graph.timing}: compile it first")
    for node in graph.nodes:
        if not isinstance(node, LAVA_NODE_TYPES):
            raise UnsupportedError(node.name, "type", _lava_type_names(), type(node).__name__)
        if isinstance(node, LoihiDense):
            _check_delays(node)
        if isinstance(node, (LoihiDense, LoihiConv, LoihiGradedSum)):
            _consumer_shape(graph, node)


def _check_delays(node: LoihiDense) -> None:
    delays = np.asarray(node.delay_steps)
    if delays.dtype.kind not in "iu" or delays.size == 0:
        raise UnsupportedError(node.name, "delay_steps", "integers", delays.dtype)
    if delays.min() < 0 or delays.max() > LOIHI2.max_delay_steps:
        raise UnsupportedError(node.name, "delay_steps", f"0..{LOIHI2.max_delay_steps} (Lava DelayDense, 6-bit)",
                               f"range [{delays.min()}, {delays.max()}]")


def _consumer_shape(graph: Graph, synapse) -> tuple[int, ...] | None:
    """The IR shape of the neurons reading ``synapse`` (None if unread); all readers must share it."""
    shapes = {tuple(n.shape) for n in graph.consumers(synapse.name)}
    if len(shapes) > 1:
        raise UnsupportedError(synapse.name, "consumers", "neurons of one shape (one Lava a_out layout)",
                               sorted(shapes))
    shape = next(iter(shapes), None)
    out_shape = graph.shapes[synapse.name]
    if isinstance(synapse, LoihiConv) and shape is not None and len(shape) > 1 and shape != out_shape:
        raise UnsupportedError(synapse.name, "consumers", f"neurons shaped {out_shape} or 1-D", shape)
    return shape


# ----------------------------------------------------------------------------------------------- layout

def lava_shape(shape) -> tuple[int, ...]:
    """Lava's shape for an IR tensor shape: axes reversed ((C, H, W) -> (W, H, C))."""
    return tuple(int(s) for s in reversed(tuple(shape)))


def to_lava_layout(arr: np.ndarray, leading: int = 0) -> np.ndarray:
    """Reverse the axes after the first ``leading`` ones (IR layout -> Lava layout)."""
    n = arr.ndim
    return arr.transpose(*range(leading), *reversed(range(leading, n)))


def from_lava_layout(arr: np.ndarray, leading: int = 0) -> np.ndarray:
    """Inverse of ``to_lava_layout`` (reversal is its own inverse)."""
    return to_lava_layout(arr, leading)


def lava_flat_order(shape) -> np.ndarray:
    """``order[k]`` = IR C-order flat index of the element Lava places at flat position k."""
    return np.arange(int(np.prod(shape))).reshape(shape).ravel(order="F")


def lava_conv_weight(weight_mant: np.ndarray) -> np.ndarray:
    """IR (O, C/g, KH, KW) cross-correlation kernel -> Lava (O, KX, KY, C/g) true-convolution kernel."""
    w = np.asarray(weight_mant, dtype=np.int64).transpose(0, 3, 2, 1)
    return np.ascontiguousarray(w[:, ::-1, ::-1, :])


def lava_dense_weight(graph: Graph, node: LoihiDense, matrix: np.ndarray) -> np.ndarray:
    """Permute a (out, in) matrix into Lava's port order: columns for a multi-D (flattened) source,
    rows for multi-D consumer neurons."""
    source_shape = graph.shapes[graph.producer(node.source).name]
    out = np.asarray(matrix)
    if len(source_shape) > 1:
        out = out[:, lava_flat_order(source_shape)]
    target_shape = _consumer_shape(graph, node)
    if target_shape is not None and len(target_shape) > 1:
        out = out[lava_flat_order(target_shape), :]
    return np.ascontiguousarray(out)


# -------------------------------------------------------------------------------------------- processes

def _make_process(node, graph: Graph, sample: dict[str, np.ndarray]):
    if isinstance(node, BiasInput):
        return None     # its values become the reading neurons' bias_mant (``_neuron_process``)
    if isinstance(node, Input):
        return _ring_buffer(node, sample[node.name])
    if isinstance(node, LoihiGradedRelay):
        return graded.relay_process(node)
    if node.ROLE == "neuron":
        return _neuron_process(node, sample)
    if isinstance(node, LoihiDense):
        return _dense(node, graph)
    if isinstance(node, LoihiConv):
        return _conv(node, graph)
    if isinstance(node, LoihiGradedSum):
        return graded.graded_sum_process(node, _graded_sum_identity(graph, node))
    return None


def _ring_buffer(node: Input, spikes: np.ndarray):
    """Lava data is (*shape[::-1], steps): reversing all axes of (steps, *shape)."""
    from lava.proc.io.source import RingBuffer
    data = np.asarray(spikes, dtype=np.int64).reshape(-1, *node.shape)
    process = RingBuffer(data=np.ascontiguousarray(data.transpose()))
    process.name = node.name   # RingBuffer takes no name argument; monitors key their data by it
    return process


def _neuron_process(node, sample: dict[str, np.ndarray]):
    """The Lava process the node's model names; array parameters become Lava-layout per-neuron arrays.
    A group with a bias input gets ``bias_mant + x`` (netx sets ``bias_mant`` before the run)."""
    spec = model_of(node).lava_process(node)
    for name in node.bias_sources():
        spec.parameters["bias_mant"] = np.asarray(spec.parameters["bias_mant"]).reshape(-1) + \
            _static_bias(node, name, sample[name])
    process_class = getattr(importlib.import_module(spec.module), spec.name)
    params = {key: _per_neuron(value, node.shape) if isinstance(value, np.ndarray) else value
              for key, value in spec.parameters.items()}
    process = process_class(shape=lava_shape(node.shape), **params)
    process.name = node.name   # not every process takes a name argument (Sigma, Delta); monitors key by it
    return process


def _static_bias(node, name: str, values: np.ndarray) -> np.ndarray:
    """The one bias vector a bias input holds over the run (steps, *shape) -> (size,); a bias that
    changes during the run is refused (Lava's bias_mant is set once, before the run, as netx does)."""
    values = np.asarray(values, np.int64).reshape(values.shape[0], -1)
    if np.any(values != values[:1]):
        changed = int(np.argmax(np.any(values != values[:1], axis=1)))
        raise UnsupportedError(node.name, f"bias_input '{name}'", "the same values at every step (the Lava "
                               "backend sets bias_mant once, before the run)", f"a change at step {changed}")
    return values[0]


def _lava_type_names() -> str:
    """The node types with a Lava process, as an error message lists them."""
    names = ["Input", "Flatten", "LoihiDense", "LoihiConv"] + \
        [m.name for m in models("loihi") if hasattr(m, "lava_process") and m.traits.output != "graded"]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _per_neuron(values, shape) -> np.ndarray:
    """A scalar, (1,), flat or IR-shaped per-neuron parameter as a Lava-layout array."""
    arr = np.asarray(values, dtype=np.int64)
    arr = arr.reshape(-1)[0] if arr.size == 1 else arr.reshape(shape)
    return np.ascontiguousarray(to_lava_layout(np.broadcast_to(arr, shape)))


# Connections at most this dense become Lava ``Sparse`` processes (same fixed_pt arithmetic as Dense,
# verified in test_lava_parity.py); denser ones stay ``Dense``.
SPARSE_DENSITY = 0.25


def _dense(node: LoihiDense, graph: Graph):
    from lava.proc.dense.process import DelayDense, Dense
    from lava.utils.weightutils import SignMode
    matrix = np.asarray(node.weight_mant, dtype=np.int64)
    delays = np.broadcast_to(np.asarray(node.delay_steps, dtype=np.int64), node.weight_mant.shape)
    if graded.reads_slice(graph, node.source):
        matrix = graded.scatter_columns(graph, node, matrix)
        delays = graded.scatter_columns(graph, node, delays)
    weights = lava_dense_weight(graph, node, matrix)
    kwargs = dict(weights=weights, weight_exp=int(node.weight_exp), num_weight_bits=int(node.num_weight_bits),
                  sign_mode=getattr(SignMode, SIGN_MODE_NAMES[node.sign_mode]), name=node.name)
    if graded.message_bits(graph, node.source):
        kwargs["num_message_bits"] = graded.message_bits(graph, node.source)
    if np.any(delays):
        return DelayDense(delays=lava_dense_weight(graph, node, delays), **kwargs)
    if np.count_nonzero(weights) <= SPARSE_DENSITY * weights.size:
        from lava.proc.sparse.process import Sparse
        from scipy.sparse import csr_matrix
        return Sparse(**{**kwargs, "weights": csr_matrix(weights)})
    return Dense(**kwargs)


def _conv(node: LoihiConv, graph: Graph):
    """Lava ``Conv``; one reading a graded producer (a sigma-delta layer) gets its ``num_message_bits``
    (else Lava's Conv turns the payloads into binary spikes)."""
    from lava.proc.conv.process import Conv
    c, h, w = node.in_shape
    kwargs = dict(weight=lava_conv_weight(node.weight_mant), input_shape=(w, h, c),
                  padding=tuple(reversed(node.padding)), stride=tuple(reversed(node.stride)),
                  dilation=tuple(reversed(node.dilation)), groups=int(node.groups), name=node.name)
    if graded.message_bits(graph, node.source):
        kwargs["num_message_bits"] = graded.message_bits(graph, node.source)
    return Conv(**kwargs)


# ---------------------------------------------------------------------------------------------- wiring

def _connect_synapse(net: LavaNetwork, node) -> None:
    """Source spikes -> synapse s_in; synapse a_out -> every neuron listing it in ``inputs``."""
    graph = net.graph
    base = graph.producer(node.source).name
    port = net.processes[base].s_out
    if isinstance(node, LoihiDense) and len(graph.shapes[base]) > 1:
        port = port.flatten()
    port.connect(net.processes[node.name].s_in)
    synapse = net.processes[node.name]
    for consumer in graph.consumers(node.name):
        _activation_port(node, synapse, consumer).connect(_input_port(net, consumer, node.name))


def _input_port(net: LavaNetwork, consumer, source: str):
    """The consumer's InPort for ``source``: its model's port for that input where it reads its inputs
    apart (``input_ports``: a resonator's ``a_real_in`` / ``a_imag_in``), else ``a_in``."""
    ports = model_of(consumer).input_ports
    name = ports[consumer.inputs.index(source)] if ports else "a_in"
    return getattr(net.processes[consumer.name], name)


def _connect_direct_inputs(net: LavaNetwork, node) -> None:
    """An input a neuron reads without synapse (a delta encoder): its s_out straight into ``a_in``."""
    for src in node.inputs:
        if net.graph.node(src).ROLE == "input":
            net.processes[src].s_out.connect(net.processes[node.name].a_in)


def _connect_graded_sum(net: LavaNetwork, node: LoihiGradedSum) -> None:
    """Every source's graded s_out into the one identity Dense (Lava adds them); a_out -> consumers."""
    synapse = net.processes[node.name]
    for source in node.sources:
        port = net.processes[source].s_out
        if len(port.shape) > 1:   # Lava's flat order differs from the IR's: not modelled
            raise UnsupportedError(node.name, "sources", "1-D graded sources", f"'{source}' {port.shape}")
        port.connect(synapse.s_in)
    for consumer in net.graph.consumers(node.name):
        _activation_port(node, synapse, consumer).connect(net.processes[consumer.name].a_in)


def _graded_sum_identity(graph: Graph, node: LoihiGradedSum) -> np.ndarray:
    """Identity weights with rows in the consumer's Lava order (as ``lava_dense_weight`` permutes)."""
    size = int(np.prod(graph.shapes[node.name]))
    identity = np.eye(size, dtype=np.int64)
    target_shape = _consumer_shape(graph, node)
    if target_shape is not None and len(target_shape) > 1:
        identity = identity[lava_flat_order(target_shape), :]
    return identity


def _activation_port(node, process, consumer):
    """``process.a_out`` viewed in the consumer's Lava shape."""
    target = lava_shape(consumer.shape)
    if tuple(process.a_out.shape) == target:
        return process.a_out
    if isinstance(node, LoihiConv):   # conv (X, Y, C) -> 1-D neurons in IR (C, H, W) C-order
        return process.a_out.transpose([2, 1, 0]).flatten()
    return process.a_out.reshape(target)


def _add_monitors(net: LavaNetwork, record_state: bool) -> None:
    from lava.proc.monitor.process import Monitor
    neurons = {net.graph.producer(n).name for n in net.recorded}
    for name in sorted(neurons):
        node = net.graph.node(name)
        if node.ROLE != "neuron":
            continue
        process = net.processes[name]
        targets = {"s_out": process.s_out}
        if record_state and name in net.recorded:
            ports = model_of(node).lava_state_ports
            targets.update({var: getattr(process, ports.get(var, var)) for var in model_of(node).state_variables})
        for var, target in targets.items():
            monitor = Monitor()
            monitor.probe(target, net.steps)
            net.monitors[(name, var)] = monitor
