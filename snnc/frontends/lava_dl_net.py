"""lava-dl ``.net`` (HDF5) import and export, bit-exact with lava-dl netx running in Lava fixed_pt.

A ``.net`` file is what ``lava.lib.dl.slayer`` blocks write with ``export_hdf5`` and what
``lava.lib.dl.netx.hdf5.Network`` loads: ``layer/<i>`` groups, ``i = 0, 1, ...``, each with ``type``
(``input``, ``dense``, ``dense_rec``, ``conv``, ``pool``, ``flatten``), ``shape`` (C, H, W or (N,)) and,
for layers with neurons, ``weight`` (integers), optional ``weight_rec``, ``bias`` (integers), ``delay``
(dense, integer steps) and ``neuron/{type, iDecay, vDecay, vThMant, refDelay, gradedSpike}``.

The file holds integer-ready Loihi parameters, so it maps onto the *lowered* IR directly (``LoihiDense``,
``LoihiConv``, ``LoihiLIF``, ``hop_latency`` timing), using the same conversion as netx:

* neuron ``CUBA``/``LOIHI``: ``vth = vThMant``, ``du = iDecay - 1`` (Lava's fixed_pt LIF decays u by
  ``du + 1``), ``dv = vDecay``, ``bias_mant = bias``, ``bias_exp = 6``; u and v start at 0. ``refDelay``
  is ignored exactly as netx ignores it (Lava's LIF has no refractory period).
* an ``input`` layer with a neuron is netx's Input block: a LIF driven only through its ``bias_mant``
  (``BiasInput`` + ``LoihiLIF.bias_input``); the user's values are the bias, set every step, no hop. The
  layer's optional ``weight``/``bias`` are the user's input transform (netx applies neither; kept).
* a ``dense`` layer without neuron gets netx's non-leaky integrator (``NETX_INTEGRATOR``: du = -1,
  dv = 4096, vth = 1 << 17; it never spikes); a conv layer needs a neuron (netx raises KeyError).
* dense weight ``w`` (8-bit integers): netx rescales to ``w << k`` with ``weight_exp = -k`` and a
  ``num_weight_bits`` of its choice (``dense_weight_format``); the activation equals ``W @ s`` exactly.
  Delays become ``DelayDense`` delays (per output row, per input column or scalar, 0..62). ``dense_rec``
  adds a second dense synapse from the layer's own spikes, formatted together with the first.
* conv weight (out, in/groups, kh, kw), torch cross-correlation layout; Lava's Conv uses it without
  exponent. Bias: per output channel (C,), or per neuron as netx reads it, an array in Lava's (W, H, C)
  order (``CONV_BIAS``; export writes it so). Dilation is kept (``LoihiConv.dilation``).
* ``flatten`` is the C-order flatten of (C, H, W) (netx: ``transpose([2, 1, 0]).flatten()`` in Lava's
  (x, y, c) layout). ``pool`` (which netx itself does not load) becomes a depthwise ``LoihiConv``.
* netx's loading options ``num_layers``, ``skip_layers``, ``input_message_bits``, ``reset_interval``,
  ``reset_offset`` (``NetOptions``): the first N layers; the first k dropped (the input then feeds layer
  k); a graded input (``GradedInput``); Lava ``LIFReset`` per neuron layer with netx's per-layer offsets.
  ``spike_exp`` (0..7, sigma-delta layers: ``snnc.frontends.lava_dl_sdnn``), ``input_shape`` (the input
  of a conv-first file without input layer, netx's (x, y, f) order; refused where netx would ignore it)
  and ``sparse_fc_layer`` (Lava ``Sparse`` synapses: same arithmetic as ``Dense``, so a no-op here).

Time alignment (stated, not hidden): the emulator's step ``t`` is Lava's ``time_step t + 1`` (Lava counts
from 1), and every layer adds one step, because Lava's synapses deliver the previous step's spikes: an
input spike at step ``t`` reaches layer ``k``'s neurons (k = 1, 2, ...) at step ``t + k``. The imported
graph records this as ``latency_steps`` (layer ``k`` -> ``k``; see ``layer_latency``), which
``snnc.simulators.aligned.run_on_ir_grid`` uses to put traces on the un-delayed (slayer
``delay_shift=False``) grid. Nothing is re-timed inside the graph itself.

Sigma-delta (``SDNN``) layers: ``snnc.frontends.lava_dl_sdnn`` (Delta input, ReLU SigmaDelta, Sigma output).
Adaptive LIF (``ALIF``, slayer's ``alif`` blocks; netx 0.6 cannot load them): ``snnc.frontends.lava_dl_alif``.
Resonate-and-fire (``RF_PHASE``, ``RF_IZHIKEVICH``) dense layers with ``weight/real`` and ``weight/imag``:
``snnc.frontends.lava_dl_rf`` (netx's ComplexDense into Lava RF / RF_IZ).

Refused with a typed error naming file, layer and field: unknown layer types, the types netx 0.6 cannot
load (``average``, ``concat``, ``convT``, ``unpool``, ``dense_comp``: ``NETX_REFUSES`` quotes why),
graded spikes (``gradedSpike``), a ``dense_rec`` layer of SDNN or ALIF neurons (``RECURRENT_NEURONS``),
non-integer or non-finite values, weights outside the 8-bit range or that Lava would truncate, shape
mismatches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from snnc.arith import loihi as lq
from snnc.arith.rounding import shift_by_exponent
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends import lava_dl_alif as alif
from snnc.frontends import lava_dl_rf as rf
from snnc.frontends import lava_dl_sdnn as sdnn
from snnc.frontends.hdf5_guard import HDF5Limits, check_hdf5
from snnc.frontends.isolation import IsolationLimits, load_isolated
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields
from snnc.ir.nodes import (
    BiasInput, Flatten, GradedInput, Input, LoihiAdaptiveLIF, LoihiConv, LoihiDense, LoihiLIF, conv_output_hw,
)
from snnc.ir.verify import verify

NEURON_TYPES = ("CUBA", "LOIHI")
LAYER_TYPES = ("input", "dense", "dense_rec", "conv", "pool", "flatten")
# Layer types netx 0.6 cannot load itself (hdf5.Network._create): what it raises, quoted in snnc's refusal.
NETX_REFUSES = {
    "average": "netx 0.6 raises NotImplementedError('average is not implemented.'); slayer's Average "
               "block cannot export it either (its export_hdf5 reads a 'neuron' it does not have)",
    "concat": "netx 0.6 raises NotImplementedError('concat is not implemented.')",
    "convT": "netx 0.6 raises NotImplementedError('convT is not implemented.')",
    "unpool": "netx 0.6 raises NotImplementedError('unpool is not implemented.')",
    "dense_comp": "netx 0.6 cannot load it: Network._create calls self.create_complex_dense, which 0.6 does "
                  "not define (AttributeError); what netx does load is a 'dense' layer with weight/real and "
                  "weight/imag and an RF neuron (slayer's rf/rf_iz Dense blocks export that), which snnc loads",
}
# Why a graded CUBA spike is refused: snnc would have to pick one of two behaviours that disagree.
GRADED_CUBA = ("slayer's graded CUBA spike carries v, but netx 0.6 ignores gradedSpike and runs Lava's binary LIF "
               "(train with binary spikes, or set gradedSpike False to deploy netx's binary LIF)")
# netx 0.6's NetDict does not list messageBits among its array keys: it hands Lava a NetDict as
# num_message_bits and the run fails ("setting an array element with a sequence").
MESSAGE_BITS = "netx 0.6 cannot load messageBits on a CUBA neuron (its NetDict passes the dataset on as a group)"
# How netx 0.6 treats a conv layer's bias of another layout (AbstractBlock._neuron), quoted in snnc's refusal.
CONV_BIAS = ("netx 0.6 loads a conv bias of C values or a per-neuron array in Lava's (W, H, C) order only (a flat "
             "per-neuron bias raises its RuntimeError 'Bias of shape ... could not be broadcast'); write a "
             "per-neuron bias b[c, y, x] as b.transpose(2, 1, 0)")
# netx's neuron for a dense layer without one: a non-leaky integrator (hdf5.Network.create_dense). Lava's
# fixed_pt LIF then keeps u undecayed (du = -1), sets v = u + bias (dv = 4096) and never spikes:
# vThMant is netx's ``1 << 18 - 1`` == 1 << 17, and v is clipped below 2^23 == (1 << 17) << 6.
NETX_INTEGRATOR = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17, "refDelay": 1,
                   "gradedSpike": False}
# netx 0.6 builds no ALIF neuron at all, and snnc's sigma-delta and ALIF groups take no recurrent synapse.
RECURRENT_NEURONS = "a recurrent layer of SDNN or ALIF neurons has no exact netx 0.6 deployment (slayer's alif.Recurrent)"
# The netx block each layer type becomes where it is not a dense layer (none of them takes an RF neuron).
RF_BLOCKS = {"input": "Input", "conv": "Conv", "pool": "Conv", "dense_rec": "RecurrentDense"}
NETX_BIAS_EXP = 6          # netx passes bias_exp=6 to every LIF
NETX_MAX_DELAY = 62        # netx clamps dense delays to 0..62 (DelayDense max_delay=62)
LAVA_TIME_STEP_OFFSET = 1  # emulator step t == Lava time_step t + 1
SPIKE_EXP_MAX = 7          # Lava's Delta/SigmaDelta spike_exp Var: precision=3
GRADED_BITS = 24           # a Loihi 2 graded spike's payload: the input width after a dropped SDNN layer
NET_LIMITS = HDF5Limits()  # slayer's export_hdf5 stores raw integers: the default budget holds any real net


class NetFileError(ModelFileError):
    """A ``.net`` file is unreadable or malformed; names the layer and field."""

    def __init__(self, path, layer: str, field: str, problem: str) -> None:
        self.layer, self.field = layer, field
        super().__init__(str(path), f"{layer} field '{field}': {problem}")


# ------------------------------------------------------------------------------------------- import

@dataclass(frozen=True)
class NetOptions:
    """netx ``hdf5.Network`` options snnc reproduces: ``num_layers`` (load only the file's first N
    layers, input and flatten layers included, as netx counts them; None: all), ``reset_interval`` /
    ``reset_offset`` (every neuron layer becomes a Lava ``LIFReset``; layer k of the loaded neuron layers
    resets at Lava time steps ``(reset_offset + 1 + k) mod reset_interval``; None: no reset),
    ``skip_layers`` (netx builds the file's first k layers only to learn their output shape and message
    width, then drops them: the network input feeds layer k's synapse directly, spikes or, after a dropped
    sigma-delta layer, graded values; reset offsets count from the first kept layer) and
    ``input_message_bits`` (graded integer input into the first synapse where no input neuron precedes
    it: a ``GradedInput`` of that width; 0: spikes), ``spike_exp`` (the graded-spike exponent netx hands
    Lava's ``Delta`` and ``SigmaDelta``: they scale vth, bias and the Delta input by
    ``2^(spike_exp + state_exp)``, state_exp fixed at 6), ``input_shape`` (netx's (x, y, f) = (W, H, C)
    shape of the network input where the file has no input layer and starts with a conv layer; netx
    uses it there only) and ``sparse_fc_layer`` (netx builds Lava ``Sparse`` instead of ``Dense``
    synapses for dense layers: the same integer arithmetic, so the emulator is unchanged)."""

    num_layers: int | None = None
    reset_interval: int | None = None
    reset_offset: int = 0
    skip_layers: int = 0
    input_message_bits: int = 0
    spike_exp: int = 6
    input_shape: tuple[int, ...] | None = None
    sparse_fc_layer: bool = False

    def check(self) -> None:
        """``UnsupportedError`` naming the option for values netx would not accept."""
        if self.num_layers is not None and self.num_layers < 1:
            raise UnsupportedError("netx options", "num_layers", ">= 1 (None: all layers)", self.num_layers)
        if self.reset_interval is not None and self.reset_interval < 1:
            raise UnsupportedError("netx options", "reset_interval", ">= 1 (None: no reset)", self.reset_interval)
        if self.reset_offset < 0:
            raise UnsupportedError("netx options", "reset_offset", ">= 0", self.reset_offset)
        if self.skip_layers < 0:
            raise UnsupportedError("netx options", "skip_layers", ">= 0", self.skip_layers)
        if not 0 <= self.input_message_bits <= GRADED_BITS:
            raise UnsupportedError("netx options", "input_message_bits", f"0 (spikes) to {GRADED_BITS} (a Loihi 2 "
                                   "graded spike)", self.input_message_bits)
        if not 0 <= self.spike_exp <= SPIKE_EXP_MAX:
            raise UnsupportedError("netx options", "spike_exp", f"0 to {SPIKE_EXP_MAX} (Lava's Delta and "
                                   "SigmaDelta hold spike_exp in a 3-bit Var; a negative one fails in their "
                                   "1 << (spike_exp + state_exp))", self.spike_exp)
        if self.input_shape is not None and (len(self.input_shape) != 3 or min(self.input_shape) < 1):
            raise UnsupportedError("netx options", "input_shape", "three positive sizes (x, y, f) = (W, H, C), "
                                   "the input of a first conv layer", tuple(self.input_shape))


def load_net(path: str | Path, limits: HDF5Limits = NET_LIMITS,
             isolation: IsolationLimits | None = IsolationLimits(), options: NetOptions | None = None,
             **netx_options) -> Graph:
    """Read a lava-dl ``.net`` file into a verified lowered (``hop_latency``) graph; ``limits`` bound what
    the file may declare (``snnc.frontends.hdf5_guard``); the HDF5 parse runs in a child process under
    ``isolation`` (``snnc.frontends.isolation``; None: in this process, for a trusted file); ``options``
    (or the same as keywords ``num_layers``, ``reset_interval``, ``reset_offset``): netx's loading
    options (``NetOptions``)."""
    path = Path(path)
    options = options or NetOptions(**{k: v for k, v in netx_options.items() if v is not None})
    options.check()
    if isolation is not None:
        return load_isolated(lambda: load_net(path, limits, isolation=None, options=options), path, isolation)
    layers = _read_layers(path, limits)
    if options.num_layers is not None:
        layers = layers[:options.num_layers]
    if options.skip_layers >= len(layers):
        raise UnsupportedError("netx options", "skip_layers", f"fewer than the {len(layers)} layers loaded "
                               "(netx then builds no layer at all)", options.skip_layers)
    builder = _GraphBuilder(path, name=path.stem or "network", reset_interval=options.reset_interval or 0,
                            reset_offset=options.reset_offset, skip_layers=options.skip_layers,
                            input_bits=options.input_message_bits, spike_exp=options.spike_exp,
                            input_shape=options.input_shape)
    index = 0
    try:
        for index, layer in enumerate(layers):
            builder.field = "type"
            builder.add(index, layer)
        builder.check_input_shape_used()
        return builder.finish()
    except SnncError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, AttributeError, ZeroDivisionError) as exc:
        raise NetFileError(path, f"layer {index}", builder.field, f"malformed value ({type(exc).__name__}: "
                                                                  f"{str(exc)[:160]})") from None


# What snnc loads from a .net file but netx 0.6 cannot build into a Network (hdf5.Network._create and
# get_neuron_params), quoted in the refusal of ``snnc verify --reference netx``.
NETX_CANNOT_BUILD = {
    "pool": "netx 0.6 raises NotImplementedError('pool is not implemented.') (snnc loads a pool layer as a "
            "depthwise conv)",
    alif.ALIF: "netx 0.6 cannot build ALIF neurons (Network.get_neuron_params knows CUBA/LOIHI, SDNN and RF "
               "neurons only and returns None for ALIF; slayer's forward is their reference)",
}


def check_netx_builds(path: str | Path, options: NetOptions | None = None) -> None:
    """Refuse, naming file, layer and field, a ``.net`` file that snnc loads but netx 0.6 cannot build
    (``NETX_CANNOT_BUILD``: pool layers, ALIF neurons) among the layers ``options.num_layers`` keeps. Reads
    the file in this process (as netx itself does); ``load_net`` has already refused everything else netx
    cannot load."""
    path = Path(path)
    layers = _read_layers(path, NET_LIMITS)[:(options or NetOptions()).num_layers]
    for index, layer in enumerate(layers):
        kind = sdnn.net_text(layer.get("type"))
        if kind in NETX_CANNOT_BUILD:
            raise UnsupportedError(f"{path}: layer {index}", "type", "a layer netx builds", repr(kind),
                                   rule=NETX_CANNOT_BUILD[kind])
        if alif.is_alif(layer.get("neuron")):
            raise UnsupportedError(f"{path}: layer {index}", "neuron/type", "a neuron netx builds (CUBA, LOIHI, "
                                   "SDNN, RF_PHASE or RF_IZHIKEVICH)", alif.ALIF, rule=NETX_CANNOT_BUILD[alif.ALIF])


def layer_latency(graph: Graph) -> dict[str, int]:
    """Steps by which each node of an imported (or exported) ``.net`` graph lags the network input:
    the input 0, every neuron layer one more than the layer feeding it, flattens as their source."""
    return graph.latency


def _read_layers(path: Path, limits: HDF5Limits) -> list[dict]:
    import h5py
    try:
        check_hdf5(path, limits)
        with h5py.File(path, "r") as handle:
            if "layer" not in handle:
                raise NetFileError(path, "file", "layer", "no 'layer' group (not a lava-dl .net file)")
            group = handle["layer"]
            count = len(group)
            for index in range(count):
                if str(index) not in group:
                    raise NetFileError(path, "layer", str(index),
                                       f"layers must be numbered 0..{count - 1}; found {sorted(group)}")
            return [_read_group(group[str(i)], path, f"layer {i}") for i in range(count)]
    except SnncError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError) as exc:
        raise ModelFileError(str(path), f"not a readable lava-dl .net (HDF5) file "
                                        f"({type(exc).__name__}: {str(exc)[:160]})") from None


def _read_group(group, path: Path, where: str) -> dict:
    import h5py
    out = {}
    for key in group:
        item = group[key]
        if isinstance(item, h5py.Group):
            out[key] = _read_group(item, path, f"{where}/{key}")
        else:
            out[key] = item[()]
    return out


class _GraphBuilder:
    """Appends the nodes of one netx layer at a time; tracks the current output node and shape."""

    def __init__(self, path: Path, name: str, reset_interval: int = 0, reset_offset: int = 0,
                 skip_layers: int = 0, input_bits: int = 0, spike_exp: int = sdnn.NETX_SPIKE_EXP,
                 input_shape: tuple[int, ...] | None = None):
        self.path, self.name = path, name
        self.spike_exp = spike_exp   # netx's spike_exp, handed to every Delta / SigmaDelta
        self.input_shape = input_shape   # netx's (x, y, f) input shape for a conv-first file, or None
        self.used_input_shape = False
        self.reset_interval, self.reset_offset = reset_interval, reset_offset
        self.skip_layers = skip_layers
        self.input_bits = input_bits   # message width into the next layer's synapse from the network input
        self.neuron_layers = 0   # neuron layers made so far (netx's reset offset counts them)
        self.nodes: list = []
        self.latency: dict[str, int] = {}
        self.cursor: str | None = None
        self.shape: tuple[int, ...] | None = None
        self.flatten_next = False
        self.field = "type"    # the field being read, for error messages

    def check_input_shape_used(self) -> None:
        """netx reads ``input_shape`` only for a conv-first file; elsewhere snnc refuses it rather than
        ignore it as netx does (the file's input layer or the first dense weight fixes the shape)."""
        if self.input_shape is not None and not self.used_input_shape:
            raise UnsupportedError("netx options", "input_shape", "only for a file whose first layer is conv "
                                   "or pool (netx ignores it where an input layer or a dense layer gives the "
                                   "input shape)", tuple(self.input_shape))

    def error(self, index: int, field: str, expected: str, actual) -> NetFileError:
        return NetFileError(self.path, f"layer {index}", field, f"expected {expected}, got {actual}")

    def add(self, index: int, layer: dict) -> None:
        """Append layer ``index``; at netx's ``skip_layers`` first drop the layers built so far."""
        if index and index == self.skip_layers:
            self._drop_built_layers(sdnn.net_text(layer.get("type")))
        self._add(index, layer)
        if "neuron" in layer or sdnn.net_text(layer.get("type")) in ("dense", "dense_rec"):
            self.input_bits = GRADED_BITS if sdnn.is_sdnn(layer) else 0   # netx: the layer's output_message_bits

    def _drop_built_layers(self, next_kind: str) -> None:
        """netx's ``skip_layers``: the layers built so far only gave the shape (and message width) of what
        the network input now is; a dense layer after them reads it flat (netx connects nothing to the
        first kept layer, whose input port is the network's)."""
        shape = self.shape
        if self.flatten_next or next_kind in ("flatten", "dense", "dense_rec"):
            shape, self.flatten_next = (int(np.prod(shape)),), False
        self.nodes, self.latency, self.cursor, self.neuron_layers = [], {}, None, 0
        self._start(shape)

    def _add(self, index: int, layer: dict) -> None:
        kind = sdnn.net_text(layer.get("type"))
        if kind in NETX_REFUSES:
            raise UnsupportedError(f"{self.path}: layer {index}", "type", "a layer type netx loads "
                                   f"({', '.join(LAYER_TYPES)})", repr(kind), rule=NETX_REFUSES[kind])
        if kind not in LAYER_TYPES:
            raise self.error(index, "type", f"one of {', '.join(LAYER_TYPES)}", repr(kind))
        if kind in RF_BLOCKS and rf.is_resonator(layer):
            rf.refuse_outside_dense(self, index, layer, RF_BLOCKS[kind])
        if kind == "input" and sdnn.is_sdnn(layer):
            return sdnn.add_delta_input(self, index, layer)
        if kind == "input":
            return self._input(index, layer)
        if kind == "flatten":     # a no-op after a 1-D layer (as after skip_layers' flat input)
            self.flatten_next = self.shape is None or len(self.shape) > 1
            return None
        if kind in ("dense", "dense_rec"):
            return self._dense(index, layer, recurrent=kind == "dense_rec")
        return self._conv(index, layer, pool=(kind == "pool"))

    def _input(self, index: int, layer: dict) -> None:
        if self.nodes:
            raise self.error(index, "type", "'input' only as the first layer", "input")
        shape = tuple(int(d) for d in self.int_array(index, layer, "shape", ndim=1))
        if "neuron" not in layer:
            return self._start(shape)
        # netx: an Input block whose LIF is driven through its bias_mant only (its InPort is unconnected);
        # the optional weight/bias are the user's transform, applied by neither netx nor snnc
        transform = {key: self.scalar(index, layer, key, None) if key in layer else None
                     for key in ("weight", "bias")}
        self._start(shape, BiasInput("input", shape, transform_weight=transform["weight"],
                                     transform_bias=transform["bias"]))
        self._neuron(index, {"neuron": layer["neuron"]}, None, shape)
        self.latency[self.cursor] = 0      # the bias acts in the step it is set: no hop

    def _start(self, shape: tuple[int, ...], node: Input | None = None) -> None:
        if any(d <= 0 for d in shape) or not 1 <= len(shape) <= 3:
            raise NetFileError(self.path, "layer 0", "shape", f"1 to 3 positive sizes, got {shape}")
        plain = GradedInput("input", shape, bits=self.input_bits) if self.input_bits else Input("input", shape)
        self.nodes.append(node or plain)
        self.latency["input"] = 0
        self.cursor, self.shape = "input", shape

    def _flatten_if_needed(self, index: int) -> None:
        if self.flatten_next or len(self.shape) > 1:
            if not self.flatten_next:
                raise self.error(index, "type", "a 'flatten' layer between a multi-dimensional layer and "
                                 "'dense'", f"dense after shape {self.shape}")
            name = f"flatten_{index}"
            self.nodes.append(Flatten(name, self.cursor))
            self.latency[name] = self.latency[self.cursor]
            self.cursor, self.shape = name, (int(np.prod(self.shape)),)
        self.flatten_next = False

    def _dense(self, index: int, layer: dict, recurrent: bool = False) -> None:
        if rf.is_resonator(layer):
            return self._complex_dense(index, layer)
        out_size = int(np.prod(self.int_array(index, layer, "shape", ndim=1)))
        weight = self._matrix(index, layer, "weight", out_size)
        self._connect_columns(index, weight, "weight")
        if recurrent:
            return self._dense_rec(index, layer, weight, out_size)
        name = f"dense_{index}"
        words, exp, bits, mode = dense_weight_format(weight, f"{self.path}: layer {index}")
        delay = self._dense_delay(index, layer, weight.shape)
        self.nodes.append(LoihiDense(name, self.cursor, words, weight_exp=exp, num_weight_bits=bits,
                                     sign_mode=mode, delay_steps=delay))
        self._neuron(index, layer, name, (out_size,), default=NETX_INTEGRATOR)

    def _connect_columns(self, index: int, weight: np.ndarray, field: str) -> None:
        """Start the graph at a dense first layer, flatten where needed; the columns must match."""
        if self.cursor is None:
            self._start((int(weight.shape[1]),))
        self._flatten_if_needed(index)
        if weight.shape[1] != self.shape[0]:
            raise self.error(index, field, f"{self.shape[0]} input columns (size of the previous layer)",
                             weight.shape[1])

    def _complex_dense(self, index: int, layer: dict) -> None:
        """netx's ComplexDense: weight/real and weight/imag, each its own Lava Dense (formatted apart),
        into a resonator's real and imaginary inputs."""
        rf.check_complex_layer(self, index, layer)
        out_size = int(np.prod(self.int_array(index, layer, "shape", ndim=1)))
        parts = {part: self._matrix(index, layer["weight"], part, out_size, prefix="weight/")
                 for part in ("real", "imag")}
        if parts["real"].shape != parts["imag"].shape:
            raise self.error(index, "weight/imag", f"shape {parts['real'].shape} (as weight/real)",
                             parts["imag"].shape)
        self._connect_columns(index, parts["real"], "weight/real")
        names = []
        for part, weight in parts.items():
            name = f"dense_{index}_{part}"
            words, exp, bits, mode = dense_weight_format(weight, f"{self.path}: layer {index}", f"weight/{part}")
            self.nodes.append(LoihiDense(name, self.cursor, words, weight_exp=exp, num_weight_bits=bits,
                                         sign_mode=mode))
            names.append(name)
        rf.add_resonator(self, index, layer, tuple(names), (out_size,))

    def _matrix(self, index: int, layer: dict, field: str, out_size: int, prefix: str = "") -> np.ndarray:
        """A dense layer's (out, in) weight matrix; netx reshapes a flat one to (out, -1)."""
        weight = self.int_array(index, layer, field, prefix=prefix)
        if weight.ndim == 1:
            if out_size == 0 or weight.size % out_size:
                raise self.error(index, prefix + field, f"a multiple of {out_size} values", weight.size)
            weight = weight.reshape(out_size, -1)
        if weight.ndim != 2 or weight.shape[0] != out_size:
            raise self.error(index, prefix + field, f"shape ({out_size}, in)", weight.shape)
        return weight

    def _dense_rec(self, index: int, layer: dict, weight: np.ndarray, out_size: int) -> None:
        """netx's RecurrentDense: one weight format for [weight | weight_rec] (netx optimizes the two
        together), two Lava Dense synapses (each infers its own sign mode), the neuron's own spikes fed
        back through the second one (hop latency: a spike of step t arrives at t + 1)."""
        where = f"{self.path}: layer {index}"
        weight_rec = self._matrix(index, layer, "weight_rec", out_size)
        if weight_rec.shape != (out_size, out_size):
            raise self.error(index, "weight_rec", f"shape ({out_size}, {out_size})", weight_rec.shape)
        if "delay" in layer:
            raise UnsupportedError(where, "delay", "none on dense_rec (netx 0.6 then builds both DelayDense "
                                   "synapses without the weight exponent and with the input delays on the "
                                   "recurrent one)", "present")
        words, exp, bits, _ = dense_weight_format(np.hstack([weight, weight_rec]), where)
        name, rec, neuron = f"dense_{index}", f"dense_{index}_rec", f"lif_{index}"
        parts = (("weight", name, self.cursor, words[:, :weight.shape[1]]),
                 ("weight_rec", rec, neuron, words[:, weight.shape[1]:]))
        synapses = [LoihiDense(n, source, part, weight_exp=exp, num_weight_bits=bits,
                               sign_mode=_lava_sign_mode(part, where, field, bits))
                    for field, n, source, part in parts]
        self.nodes.append(synapses[0])
        self._neuron(index, layer, name, (out_size,), recurrent=rec, default=NETX_INTEGRATOR)
        self.nodes.append(synapses[1])

    def _dense_delay(self, index: int, layer: dict, shape: tuple[int, int]):
        if "delay" not in layer:
            return 0
        delay = self.int_array(index, layer, "delay")
        if delay.size and (delay.min() < 0 or delay.max() > NETX_MAX_DELAY):
            raise self.error(index, "delay", f"integers in [0, {NETX_MAX_DELAY}] (netx clamps larger ones)",
                             f"values in [{delay.min()}, {delay.max()}]")
        if delay.ndim == 0:
            return int(delay)
        flat = delay.reshape(-1)
        if flat.size == shape[0]:
            return np.repeat(flat.reshape(-1, 1), shape[1], axis=1)
        if flat.size == shape[1]:
            return np.repeat(flat.reshape(1, -1), shape[0], axis=0)
        raise self.error(index, "delay", f"a scalar or {shape[0]} (per output) or {shape[1]} (per input) "
                         "values", delay.shape)

    def _conv(self, index: int, layer: dict, pool: bool) -> None:
        kind = "pool" if pool else "conv"
        if self.cursor is None and self.input_shape is not None:   # netx: conv first, shape given
            self._start(tuple(int(d) for d in reversed(self.input_shape)))
            self.used_input_shape = True
        if self.cursor is None or len(self.shape) != 3:
            raise self.error(index, "type", f"'{kind}' after an input layer or layer of shape (C, H, W), or "
                             "first with the input_shape option (netx's hdf5.Network(input_shape=...))",
                             "no (C, H, W) input shape" if self.cursor is None else f"input shape {self.shape}")
        if self.flatten_next:
            raise self.error(index, "type", f"'{kind}' not directly after 'flatten'", kind)
        if layer.get("delay") is not None:
            raise UnsupportedError(f"{self.path}: layer {index}", "delay",
                                   "none on conv/pool layers (netx ignores them)", "present")
        weight = self.int_array(index, layer, "weight")
        weight = self._pool_weight(index, weight) if pool else self._conv_weight(index, weight)
        stride = self.pair(index, layer, "stride", 1)
        padding = self.pair(index, layer, "padding", 0)
        dilation = self.pair(index, layer, "dilation", 1)
        if min(dilation) < 1 or (pool and dilation != (1, 1)):
            raise self.error(index, "dilation", "(1, 1) on pool, >= 1 on conv", dilation)
        groups = self.shape[0] if pool else self.scalar(index, layer, "groups", 1)
        if groups < 1 or self.shape[0] % groups or weight.shape[0] % groups or \
                weight.shape[1] * groups != self.shape[0]:
            raise self.error(index, "groups", f"a divisor of {self.shape[0]} input channels matching weight "
                             f"shape {weight.shape}", groups)
        if min(stride) < 1 or min(padding) < 0:
            raise self.error(index, "stride/padding", "stride >= 1, padding >= 0", f"{stride}/{padding}")
        span = tuple((k - 1) * d + 1 for k, d in zip(weight.shape[2:], dilation))
        hw = conv_output_hw(self.shape[1:], span, stride, padding)
        out_shape = (int(weight.shape[0]), *hw)
        declared = tuple(int(d) for d in self.int_array(index, layer, "shape", ndim=1))
        if declared != out_shape or min(hw) < 1:
            raise self.error(index, "shape", f"{out_shape} (computed from the input and kernel)", declared)
        name = f"{kind}_{index}"
        self.nodes.append(LoihiConv(name, self.cursor, weight, in_shape=tuple(self.shape), stride=stride,
                                    padding=padding, groups=groups, dilation=dilation))
        self._neuron(index, layer, name, out_shape)

    def _conv_weight(self, index: int, weight: np.ndarray) -> np.ndarray:
        if weight.ndim == 5 and weight.shape[4] == 1:
            weight = weight[..., 0]
        if weight.ndim != 4:
            raise self.error(index, "weight", "4-D (out, in/groups, kh, kw)", weight.shape)
        return weight

    def _pool_weight(self, index: int, weight: np.ndarray) -> np.ndarray:
        if weight.ndim == 5 and weight.shape[4] == 1:
            weight = weight[..., 0]
        if weight.ndim != 4 or weight.shape[:2] != (1, 1):
            raise self.error(index, "weight", "(1, 1, kh, kw) pooling kernel", weight.shape)
        return np.repeat(weight, self.shape[0], axis=0)

    def _neuron(self, index: int, layer: dict, synapse: str | None, shape: tuple[int, ...],
                recurrent: str | None = None, default: dict | None = None) -> None:
        """The layer's LIF group reading ``synapse`` (None: an input layer's, driven by its bias) and
        ``recurrent``; ``default``: the neuron of a layer without one (netx's integrator for dense)."""
        neuron = layer.get("neuron", default)
        if not isinstance(neuron, dict):
            raise self.error(index, "neuron", "a neuron group (netx requires one on conv layers)", "missing")
        kind = sdnn.net_text(neuron.get("type"))
        if recurrent and kind in (sdnn.SDNN, alif.ALIF):
            raise UnsupportedError(f"{self.path}: layer {index}", "neuron/type", "CUBA or LOIHI on a 'dense_rec' "
                                   "layer (snnc's recurrent layers are LIF groups)", kind, rule=RECURRENT_NEURONS)
        if kind == sdnn.SDNN:
            return sdnn.add_sigma_delta(self, index, layer, synapse, shape)
        if kind == alif.ALIF:
            return alif.add_adaptive_lif(self, index, layer, synapse, shape)
        where = f"{self.path}: layer {index}"
        if kind not in NEURON_TYPES:
            raise UnsupportedError(where, "neuron/type", "CUBA, LOIHI, SDNN, ALIF, RF_PHASE or RF_IZHIKEVICH", kind)
        self.field = "neuron/gradedSpike"
        if "gradedSpike" in neuron and np.any(np.asarray(neuron["gradedSpike"]).astype(bool)):
            raise UnsupportedError(where, "neuron/gradedSpike", "False (binary spikes)", True, rule=GRADED_CUBA)
        if "messageBits" in neuron:
            raise UnsupportedError(where, "neuron/messageBits", "absent (binary spikes)",
                                   self.scalar(index, neuron, "messageBits", None, prefix="neuron/"),
                                   rule=MESSAGE_BITS)
        i_decay = self.scalar(index, neuron, "iDecay", None, prefix="neuron/")
        v_decay = self.scalar(index, neuron, "vDecay", None, prefix="neuron/")
        vth = self.scalar(index, neuron, "vThMant", None, prefix="neuron/")
        for field, value, hi in (("iDecay", i_decay, lq.DECAY_UNITY), ("vDecay", v_decay, lq.DECAY_UNITY),
                                 ("vThMant", vth, (1 << 24) - 1)):
            if not 0 <= value <= hi:
                raise self.error(index, f"neuron/{field}", f"an integer in [0, {hi}]", value)
        bias = self._bias(index, layer, shape) if synapse else np.zeros(1, np.int64)
        name = f"lif_{index}"
        inputs = tuple(n for n in (synapse, recurrent) if n)
        self.nodes.append(LoihiLIF(name, inputs, shape, du=i_decay - 1, dv=v_decay, vth=vth,
                                   bias_mant=bias, bias_exp=np.full(bias.shape, NETX_BIAS_EXP, np.int64),
                                   bias_input="" if synapse else self.cursor, **self.reset_fields()))
        self.latency[name] = self.latency[self.cursor] + 1
        self.cursor, self.shape = name, shape
        self.neuron_layers += 1

    def reset_fields(self) -> dict:
        """netx's periodic reset of the next neuron layer: Lava reset_offset = offset + 1 + (layers made
        so far), i.e. reset_phase = (offset + layers) % interval."""
        if not self.reset_interval:
            return {}
        return {"reset_interval": self.reset_interval,
                "reset_phase": (self.reset_offset + self.neuron_layers) % self.reset_interval}

    def _bias(self, index: int, layer: dict, shape: tuple[int, ...]) -> np.ndarray:
        """The layer's bias per neuron, flat in snnc's (C, H, W) order; 0 where absent."""
        if "bias" not in layer:
            return np.zeros(1, np.int64)
        raw = self.int_array(index, layer, "bias")
        size = int(np.prod(shape))
        if len(shape) == 3:
            out = self._conv_bias(index, raw, shape)
        elif raw.size == size:
            out = raw.reshape(-1)
        else:
            raise self.error(index, "bias", f"{size} (per neuron) values", raw.size)
        limit = 1 << 24
        if np.any(np.abs(out) >= limit):
            raise self.error(index, "bias", "|bias| < 2^24 (bias << 6 must fit Lava's int32)",
                             int(np.max(np.abs(out))))
        return out.astype(np.int64)

    def _conv_bias(self, index: int, raw: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """A (C, H, W) layer's bias as netx reads it (``AbstractBlock._neuron``): C values (one per channel)
        or one per neuron as an array of shape (W, H, C), Lava's order (the layer's shape reversed),
        transposed here to (C, H, W). netx cannot load any other layout (a flat per-neuron bias raises its
        RuntimeError; a (C, H, W) array fails to broadcast), so snnc refuses it rather than guess an order."""
        channels, lava_shape = shape[0], tuple(reversed(shape))
        if raw.ndim == 1 and raw.size == channels:
            return np.repeat(raw, int(np.prod(shape[1:])))
        if raw.shape == lava_shape:
            return raw.transpose(2, 1, 0).reshape(-1)
        raise UnsupportedError(f"{self.path}: layer {index}", "bias", f"{channels} values (one per channel) or "
                               f"an array of shape {lava_shape} (one per neuron in netx's (W, H, C) order, the "
                               "layer's shape reversed)", f"shape {raw.shape}", rule=CONV_BIAS)

    def int_array(self, index: int, group: dict, field: str, ndim: int | None = None,
                  prefix: str = "") -> np.ndarray:
        self.field = prefix + field
        if field not in group:
            raise self.error(index, prefix + field, "present", "missing")
        return _integers(group[field], lambda expected, actual: self.error(index, prefix + field, expected,
                                                                           actual), ndim)

    def scalar(self, index: int, group: dict, field: str, default, prefix: str = "") -> int:
        if field not in group:
            if default is None:
                raise self.error(index, prefix + field, "present", "missing")
            return default
        arr = self.int_array(index, group, field, prefix=prefix)
        if arr.size != 1:
            raise self.error(index, prefix + field, "one integer", arr.shape)
        return int(arr.reshape(-1)[0])

    def pair(self, index: int, group: dict, field: str, default: int) -> tuple[int, int]:
        if field not in group:
            return (default, default)
        arr = self.int_array(index, group, field).reshape(-1)
        if arr.size == 1:
            return (int(arr[0]), int(arr[0]))
        if arr.size != 2:
            raise self.error(index, field, "one integer or (H, W)", arr.shape)
        return (int(arr[0]), int(arr[1]))

    def finish(self) -> Graph:
        if self.cursor is None or not any(n.ROLE == "neuron" for n in self.nodes):
            raise NetFileError(self.path, "file", "layer", "at least one dense/conv/pool layer with neurons")
        if self.flatten_next:
            raise NetFileError(self.path, "file", "layer", "a layer after the last 'flatten'")
        graph = Graph(tuple(self.nodes), (self.cursor,), timing="hop_latency", **graph_name_fields(self.name),
                      latency_steps=tuple(sorted(self.latency.items())))
        return verify(graph)



def _integers(value, error, ndim: int | None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iubf":
        raise error("numbers", f"dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise error("finite values", "NaN or inf")
        if np.any(arr != np.round(arr)):
            raise error("integer values (netx truncates fractions)", "non-integer values")
        if arr.size and np.max(np.abs(arr)) >= 2 ** 53:
            raise error("|value| < 2^53", "values too large")
    if ndim is not None and arr.ndim != ndim:
        raise error(f"{ndim}-D", f"{arr.ndim}-D")
    return arr.astype(np.int64)


def _lava_sign_mode(words: np.ndarray, where: str, field: str, bits: int) -> str:
    """The sign mode Lava's Dense infers from ``words`` (``determine_sign_mode``); the words must pass
    Lava's truncation to ``bits`` in that mode unchanged (netx sizes ``bits`` for both matrices of a
    dense_rec layer together: one of one sign is then truncated silently, e.g. excitatory weights
    beside mixed recurrent ones)."""
    mode = "excitatory" if words.min() >= 0 else "inhibitory" if words.max() <= 0 else "mixed"
    changed = int(np.count_nonzero(lq.lava_weight_words(words, mode, bits) != words))
    if changed:
        raise UnsupportedError(where, field, f"weights Lava keeps unchanged in sign mode {mode} with netx's "
                               f"joint num_weight_bits {bits} (weight and weight_rec are rescaled together)",
                               f"{changed} weights would change")
    return mode


def dense_weight_format(weight: np.ndarray, where: str, field: str = "weight") -> tuple[np.ndarray, int, int, str]:
    """What netx hands to Lava's ``Dense`` for integer weights ``weight``: (weight words after Lava's
    clip/truncate, weight_exp, num_weight_bits, sign mode Lava infers). netx shifts the weights left by
    ``k`` bits, sets ``weight_exp = -k`` and chooses ``num_weight_bits`` so that nothing is lost: the
    activation is exactly ``weight @ s``.

    Weights must be 8-bit (mixed signs: [-256, 254]; one sign: [-255, 255]; outside, netx or Lava clips
    them silently, e.g. an all-negative -256 becomes -254) and not all zero (netx cannot load an all-zero
    matrix).
    """
    w = np.asarray(weight, np.int64)
    hi, lo = int(w.max()), int(w.min())
    if hi <= 0 and lo >= 0:
        raise UnsupportedError(where, field, "at least one non-zero weight (netx cannot load an all-zero "
                               "matrix)", "all zero")
    mixed = hi > 0 and lo < 0
    limit = (-256, 254) if mixed else (-255, 255)   # Lava clips one-sign weights to 8-bit magnitudes
    if lo < limit[0] or hi > limit[1]:
        raise UnsupportedError(where, field, f"8-bit integers in [{limit[0]}, {limit[1]}]",
                               f"values in [{lo}, {hi}]")
    if mixed:
        scale = min(127 / hi, -128 / lo)
    else:
        scale = 255 / hi if lo >= 0 else -256 / lo
    shift = int(math.floor(math.log2(scale))) + int(mixed)
    low_zero_bits = next((n for n in range(8, 0, -1) if np.all(w % (1 << n) == 0)), 0)
    bits = 8 - shift - (low_zero_bits - int(mixed))
    shifted = w << shift
    mode = "excitatory" if shifted.min() >= 0 else "inhibitory" if shifted.max() <= 0 else "mixed"
    words = lq.lava_weight_words(shifted, mode, bits)
    if not np.array_equal(words, shifted):
        raise UnsupportedError(where, field, "weights Lava keeps unchanged after netx's rescaling",
                               f"{int(np.count_nonzero(words != shifted))} weights would change")
    return words, -shift, bits, mode


# ------------------------------------------------------------------------------------------- export

def save_net(graph: Graph, path: str | Path, options: NetOptions | None = None) -> None:
    """Write a lowered feed-forward chain (Input -> [Flatten] -> LoihiDense/LoihiConv -> LoihiLIF -> ...;
    or BiasInput -> LoihiLIF -> ..., an input layer with neuron) as a lava-dl ``.net`` file that netx
    loads with identical fixed_pt behaviour. A group with netx's integrator parameters (biased or not) is
    written as a dense layer without neuron. A periodic reset is a netx load option, not file content:
    pass the ``options`` (reset_interval, reset_offset) that reproduce the graph's resets on loading.

    Raises ``UnsupportedError``/``QuantizationError`` naming the node and field for what netx cannot
    express exactly: branches or recurrence, weight exponents that are not whole shifts of 8-bit
    weights, a bias that is not a multiple of 64 (netx fixes bias_exp = 6), non-zero initial voltage,
    per-synapse delays that are neither per row nor per column, conv delays, resets, a graded input
    width or a sigma-delta ``spike_exp`` that ``options`` do not reproduce.
    """
    import h5py
    sdnn.check_spike_exp(graph, (options or NetOptions()).spike_exp)
    layers = _export_layers(graph)
    _check_resets(graph, options or NetOptions())
    _check_input_options(graph, options or NetOptions())
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, layer in enumerate(layers):
            sub = group.create_group(str(index))
            sub.create_dataset("type", (1,), "S10", [layer.pop("type").encode("ascii")])
            for key, value in layer.items():
                sub.create_dataset(key, data=value)


def _export_layers(graph: Graph) -> list[dict]:
    if graph.timing != "hop_latency":
        raise UnsupportedError(graph.name, "timing", "hop_latency (compile the model first: a .net file "
                               "holds Loihi integers)", graph.timing)
    chain = _chain(graph)
    inp = chain[0]
    layers = [{"type": "input", "shape": np.asarray(inp.shape, np.int64)}]
    if sdnn.is_delta(chain[1]):      # a sigma-delta net: the input layer is its Delta encoder
        layers, chain = [sdnn.export_input_layer(inp, chain[1])], chain[1:]
    shape = tuple(inp.shape)
    if isinstance(inp, BiasInput):
        layers[0].update(_input_neuron_layer(inp, chain[1]))
        chain = chain[1:]
    for synapse, neuron in _pairs(graph, chain[1:]):
        if isinstance(synapse, LoihiDense) and len(shape) > 1:
            layers.append({"type": "flatten", "shape": np.asarray(shape, np.int64)})
        layers.append(_export_layer(graph, synapse, neuron))
        shape = tuple(neuron.shape)
    return layers


def _chain(graph: Graph) -> list:
    """The nodes along the single path from the one input to the one output (flattens skipped)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError(graph.name, "inputs/outputs", "one input and one output",
                               f"{len(graph.inputs)} inputs, {len(graph.outputs)} outputs")
    order, current = [graph.inputs[0]], graph.inputs[0].name
    while True:
        consumers = [c for c in graph.consumers(current) if not _off_chain(graph, c)]
        if not consumers:
            break
        if len(consumers) != 1:
            raise UnsupportedError(current, "consumers", "one (a .net file is a feed-forward chain)",
                                   len(consumers))
        node = consumers[0]
        if isinstance(node, LoihiLIF) and node.bias_input and not node.inputs:
            pass        # the neuron of an input layer
        elif isinstance(node, LoihiLIF) and len(node.inputs) != 1 + (_feedback_of(graph, node) is not None):
            raise UnsupportedError(node.name, "inputs", "one synapse, or two for a dense_rec layer (its own "
                                   "spikes through a LoihiDense)", len(node.inputs))
        if not isinstance(node, Flatten):
            order.append(node)
        current = node.name
    if current != graph.outputs[0] and graph.node(graph.outputs[0]) not in order:
        raise UnsupportedError(graph.outputs[0], "outputs", "the last layer of the chain", current)
    if len(order) != len([n for n in graph.nodes if not isinstance(n, Flatten) and not _off_chain(graph, n)]):
        raise UnsupportedError(graph.name, "nodes", "a single chain from input to output",
                               "nodes off the chain")
    return order


def _off_chain(graph: Graph, node) -> bool:
    """A synapse exported with its layer's main one: a dense_rec feedback or a resonator's imaginary part."""
    return _is_feedback(graph, node) or rf.is_imag_synapse(graph, node)


def _is_feedback(graph: Graph, node) -> bool:
    """True for a LoihiDense feeding a LIF's own spikes back into it (a dense_rec layer)."""
    return isinstance(node, LoihiDense) and node.name in getattr(graph.node(node.source), "inputs", ())


def _feedback_of(graph: Graph, neuron: LoihiLIF):
    """The recurrent synapse of ``neuron`` (None: none)."""
    return next((graph.node(n) for n in neuron.inputs if _is_feedback(graph, graph.node(n))), None)


def _pairs(graph: Graph, nodes: list):
    for synapse, neuron in zip(nodes[0::2], nodes[1::2]):
        if not isinstance(synapse, (LoihiDense, LoihiConv)) or \
                not isinstance(neuron, (LoihiLIF, LoihiAdaptiveLIF) + sdnn.EXPORTED + rf.EXPORTED):
            raise UnsupportedError(getattr(synapse, "name", "?"), "type",
                                   "LoihiDense/LoihiConv followed by LoihiLIF",
                                   f"{type(synapse).__name__} -> {type(neuron).__name__}")
        yield synapse, neuron
    if len(nodes) % 2:
        raise UnsupportedError(nodes[-1].name, "type", "a LoihiLIF after each synapse", "none")


def _input_neuron_layer(inp: BiasInput, neuron) -> dict:
    """The neuron and transform fields of an input layer with neuron (netx's Input block)."""
    if not isinstance(neuron, LoihiLIF) or neuron.bias_input != inp.name or neuron.inputs:
        raise UnsupportedError(inp.name, "consumers", "one LoihiLIF driven by its bias only",
                               type(neuron).__name__)
    if np.any(np.asarray(neuron.bias_mant)) or np.any(np.asarray(neuron.bias_exp) != NETX_BIAS_EXP):
        raise UnsupportedError(neuron.name, "bias_mant/bias_exp", f"0 and {NETX_BIAS_EXP} (netx's input neuron "
                               "has no bias of its own)", "other values")
    layer = {key: np.asarray([value], np.float32) for key, value in (("weight", inp.transform_weight),
                                                                      ("bias", inp.transform_bias))
             if value is not None}     # as slayer's Input block writes them: shape (1,), float
    layer.update(_neuron_fields(neuron))
    return layer


def _neuron_fields(neuron: LoihiLIF) -> dict:
    """The ``neuron/...`` datasets of a LoihiLIF (netx's CUBA conversion, inverted)."""
    if np.any(np.asarray(neuron.v_init) != 0):
        raise UnsupportedError(neuron.name, "v_init", "0 (netx starts every neuron at v = 0)",
                               f"values in [{np.min(neuron.v_init)}, {np.max(neuron.v_init)}]")
    if neuron.reset != "zero" or neuron.comparison != "gt":
        raise UnsupportedError(neuron.name, "reset/comparison", "zero/gt (netx's Lava LIF)",
                               f"{neuron.reset}/{neuron.comparison}")
    for field in ("du", "dv"):
        if np.ndim(getattr(neuron, field)):
            raise UnsupportedError(neuron.name, field, "one value per layer (netx's CUBA neuron has scalar "
                                   "iDecay and vDecay)", f"{np.unique(getattr(neuron, field)).size} distinct values",
                                   "run the compiled folder with snnc (its Lava backend takes per-neuron decays), "
                                   "or train one decay per layer")
    return {"neuron/type": "CUBA", "neuron/iDecay": np.int64(neuron.du + 1), "neuron/vDecay": np.int64(neuron.dv),
            "neuron/vThMant": np.int64(neuron.vth), "neuron/refDelay": np.int64(1), "neuron/gradedSpike": False}


def _is_netx_integrator(neuron: LoihiLIF) -> bool:
    """True for the neuron netx gives a dense layer without one (``NETX_INTEGRATOR``; the layer's bias, if
    any, still reaches it: netx passes a dense layer's bias to whichever neuron it builds)."""
    return np.ndim(neuron.du) == 0 and neuron.du + 1 == NETX_INTEGRATOR["iDecay"] and \
        neuron.dv == NETX_INTEGRATOR["vDecay"] and neuron.vth == NETX_INTEGRATOR["vThMant"] and \
        not np.any(np.asarray(neuron.v_init)) and neuron.reset == "zero" and neuron.comparison == "gt"


def _check_resets(graph: Graph, options: NetOptions) -> None:
    """The graph's periodic resets must be what loading the file with ``options`` produces."""
    neurons = [n for n in graph.nodes if n.ROLE == "neuron"]   # netx's offset counts every neuron layer
    interval = options.reset_interval or 0
    for index, neuron in enumerate(neurons):
        if not isinstance(neuron, LoihiLIF):
            continue
        phase = (options.reset_offset + index) % interval if interval else 0
        if (neuron.reset_interval, neuron.reset_phase) != (interval, phase):
            raise UnsupportedError(neuron.name, "reset_interval/reset_phase", f"{interval}/{phase} (what netx "
                                   f"loads with reset_interval={options.reset_interval}, reset_offset="
                                   f"{options.reset_offset}: a .net file does not store resets)",
                                   f"{neuron.reset_interval}/{neuron.reset_phase}")


def net_options(load_options: dict) -> NetOptions:
    """The ``NetOptions`` among a model's load options (as a compile records them: other formats' options
    such as ``dt_s`` left out, None as the default, a JSON list as a tuple)."""
    return NetOptions(**{f.name: tuple(v) if isinstance(v := load_options[f.name], list) else v
                         for f in fields(NetOptions) if load_options.get(f.name) is not None})


def changed_options(options: NetOptions) -> dict:
    """The fields of ``options`` that differ from netx's defaults (what loading must be told)."""
    default = NetOptions()
    return {f.name: getattr(options, f.name) for f in fields(NetOptions)
            if getattr(options, f.name) != getattr(default, f.name)}


def reload_options(graph: Graph, loaded: NetOptions) -> NetOptions:
    """The netx load options that give ``graph`` back from the file ``save_net`` writes of it, where
    ``graph`` was loaded (or compiled from a model loaded) with ``loaded``: the same periodic reset,
    ``spike_exp`` and ``sparse_fc_layer``; the file holds the loaded, kept layers behind an input layer, so
    no ``num_layers``, ``skip_layers`` or ``input_shape``; ``input_message_bits``: the width of a graded
    input the file cannot state (after ``skip_layers`` dropped a sigma-delta layer, that layer's output
    width), 0 for spikes or a sigma-delta net's own Delta input."""
    return NetOptions(reset_interval=loaded.reset_interval, reset_offset=loaded.reset_offset,
                      spike_exp=loaded.spike_exp, sparse_fc_layer=loaded.sparse_fc_layer,
                      input_message_bits=_graded_input_bits(graph))


def _graded_input_bits(graph: Graph) -> int:
    """The width of ``graph``'s graded network input that a .net file does not store (0: none)."""
    inp = graph.inputs[0]
    consumers = graph.consumers(inp.name)
    graded = isinstance(inp, GradedInput) and not (consumers and sdnn.is_delta(consumers[0]))
    return int(inp.bits) if graded else 0


def _check_input_options(graph: Graph, options: NetOptions) -> None:
    """A file holds no input width: a graded network input (not a sigma-delta net's, which its Delta input
    layer states) needs the ``input_message_bits`` that give it back on loading; the file holds the kept
    layers only, so loading it needs no ``skip_layers``."""
    inp = graph.inputs[0]
    bits = _graded_input_bits(graph)
    graded = bits > 0
    if options.input_message_bits != bits:
        raise UnsupportedError(inp.name, "input_message_bits", f"{bits} (what loading the file needs for this "
                               f"{'graded' if graded else 'spiking'} input: a .net file does not store it)",
                               options.input_message_bits)
    if options.skip_layers:
        raise UnsupportedError(inp.name, "skip_layers", "0 (the file holds the kept layers only)",
                               options.skip_layers)


def _export_layer(graph: Graph, synapse, neuron: LoihiLIF) -> dict:
    layer = {"shape": np.asarray(neuron.shape, np.int64)}
    feedback = _feedback_of(graph, neuron)
    if feedback is not None:
        if not isinstance(synapse, LoihiDense) or _netx_delay(synapse) is not None or np.any(feedback.delay_steps):
            raise UnsupportedError(feedback.name, "type", "a recurrent synapse beside an undelayed dense one "
                                   "(netx dense_rec)", type(synapse).__name__)
        layer.update(type="dense_rec", weight=_netx_weight(synapse), weight_rec=_netx_weight(feedback))
    elif isinstance(neuron, rf.EXPORTED):
        return _resonator_layer(graph, synapse, neuron, layer)
    elif isinstance(synapse, LoihiDense):
        layer.update(type="dense", weight=_netx_weight(synapse))
        delay = _netx_delay(synapse)
        if delay is not None:
            layer["delay"] = delay
    else:
        layer.update(type="conv", weight=np.asarray(synapse.weight_mant, np.int64),
                     stride=np.asarray(synapse.stride, np.int64), padding=np.asarray(synapse.padding, np.int64),
                     dilation=np.asarray(synapse.dilation, np.int64), groups=np.int64(synapse.groups),
                     inChannels=np.int64(synapse.in_shape[0]), outChannels=np.int64(synapse.weight_mant.shape[0]))
    if isinstance(neuron, sdnn.EXPORTED):
        layer.update(sdnn.export_neuron(neuron, conv=isinstance(synapse, LoihiConv)))
        return layer
    bias = _netx_bias(neuron, conv=isinstance(synapse, LoihiConv))
    if bias is not None:
        layer["bias"] = bias
    if isinstance(neuron, LoihiAdaptiveLIF):
        layer.update(alif.export_neuron(neuron))
        return layer
    if isinstance(synapse, LoihiDense) and _is_netx_integrator(neuron):
        return layer
    layer.update(_neuron_fields(neuron))
    return layer


def _resonator_layer(graph: Graph, synapse, neuron, layer: dict) -> dict:
    """A resonator's complex dense layer: weight/real, weight/imag (netx ComplexDense) and its neuron."""
    real, imag = (graph.node(n) for n in neuron.inputs)
    for node in (real, imag):
        if not isinstance(node, LoihiDense) or np.any(node.delay_steps):
            raise UnsupportedError(node.name, "type", "an undelayed LoihiDense (netx's ComplexDense has no delays)",
                                   type(node).__name__)
    if real.source != imag.source:
        raise UnsupportedError(neuron.name, "inputs", "real and imag synapses of one source",
                               f"{real.source}, {imag.source}")
    layer.update({"type": "dense", "weight/real": _netx_weight(real), "weight/imag": _netx_weight(imag),
                  "inFeatures": np.int64(real.weight_mant.shape[1]), "outFeatures": np.int64(real.weight_mant.shape[0])})
    layer.update(rf.export_neuron(neuron))
    return layer


def _netx_weight(node: LoihiDense) -> np.ndarray:
    """Integer weights whose netx loading reproduces ``shift(W_words @ s, weight_exp)`` exactly."""
    words = lq.lava_weight_words(node.weight_mant, node.sign_mode, node.num_weight_bits)
    exp = int(node.weight_exp)
    if exp < 0 and np.any(words % (1 << -exp)):
        raise UnsupportedError(node.name, "weight_exp", "a shift netx can express (weights divisible by "
                               f"2^{-exp} for weight_exp {exp})", exp)
    weight = shift_by_exponent(words, exp)
    if weight.min() < -256 or weight.max() > (254 if weight.min() < 0 < weight.max() else 255):
        raise UnsupportedError(node.name, "weight_mant * 2^weight_exp", "8-bit integers netx can store",
                               f"values in [{weight.min()}, {weight.max()}]",
                               rule="a .net layer holds its weights without an exponent; the compiled folder "
                                    "runs them as they are (lowered.snnc, run_on_lava.py, snnc run/verify)")
    return weight


def _netx_delay(node: LoihiDense):
    delay = np.asarray(node.delay_steps, np.int64)
    if delay.size == 1:
        value = int(delay.reshape(-1)[0])
        return None if value == 0 else np.full(node.weight_mant.shape[0], value, np.int64)
    if delay.max() > NETX_MAX_DELAY:
        raise UnsupportedError(node.name, "delay_steps", f"<= {NETX_MAX_DELAY} (netx)", int(delay.max()))
    if np.all(delay == delay[:, :1]):
        return delay[:, 0].copy()
    if np.all(delay == delay[:1, :]):
        return delay[0].copy()
    raise UnsupportedError(node.name, "delay_steps", "one delay per output or per input (netx axonal "
                           "delays)", "per-synapse delays")


def _netx_bias(neuron: LoihiLIF, conv: bool):
    size = int(np.prod(neuron.shape))
    bias = np.broadcast_to(lq.effective_bias(neuron.bias_mant, neuron.bias_exp).reshape(-1), (size,))
    if not np.any(bias):
        return None
    if np.any(bias % (1 << NETX_BIAS_EXP)):
        raise UnsupportedError(neuron.name, "bias_mant << bias_exp", "multiples of 64 (netx fixes bias_exp "
                               "= 6)", "other values")
    bias = bias >> NETX_BIAS_EXP
    return sdnn.conv_bias_dataset(bias.astype(np.int64), tuple(neuron.shape)) if conv else bias.astype(np.int64)

