"""How the synapse terms of a recognised ONNX step become IR synapse nodes: ``Dense`` (Gemm/MatMul),
``Conv2d``, ``SumPool2d`` (AveragePool), or one ``Dense`` composed from any chain of linear ops."""
from __future__ import annotations

import itertools

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.ir_values import ir_name
from snnc.frontends.onnx_step import OnnxError, Step
from snnc.frontends.onnx_symbolic import Lin, Syn, SymbolicOps, apply_op
from snnc.ir.nodes import Conv2d, Dense, Flatten, SumPool2d

MAX_COMPOSED_INPUTS = 1 << 14


class NetworkBuilder:
    """The IR under construction, and the synapse nodes that carry symbolic synapse terms into it. A subclass
    (``onnx_neurons.Recognizer``) fills ``neurons``, ``spike_owner`` and ``history`` before it builds the
    synapses that read them."""

    def __init__(self, path: str, step: Step, ops: SymbolicOps):
        self.path, self.step, self.ops = path, step, ops
        self.ir: list = []
        self.neurons: dict = {}                    # by voltage state input
        self.spike_owner: dict[int, str] = {}      # spike index -> IR neuron name
        self.history: dict[str, tuple[str, int]] = {}  # spike-history input -> (IR spiking node, delay)
        self.ir_shapes: dict[str, tuple[int, ...]] = {}

    def error(self, node: str, field: str, problem: str) -> OnnxError:
        """The typed ONNX error for ``field`` of ``node``."""
        return OnnxError(self.path, node, field, problem)

    def synapses(self, target: str, drive: Lin, bias_to_synapse: bool) -> tuple[str, ...]:
        """The IR synapse nodes of neuron ``target``'s drive (one per synaptic term, in a stable order);
        ``bias_to_synapse``: the drive's constant becomes the first synapse's bias. Their names."""
        names = []
        for index, (key, coef) in enumerate(sorted(drive.terms.items(), key=lambda kv: str(kv[0]))):
            if key[0] != "syn":
                if key[0] == "in" and key[1] in self.step.data:
                    raise self.error(target, "inputs", f"input '{key[1]}' through a synapse (Gemm/MatMul/Conv)")
                raise self.error(target, "inputs", f"synaptic currents (Gemm/MatMul/Conv of inputs or spikes) and "
                                 f"the neuron's own state, got term {key} (a value from another state of the "
                                 f"step before that is neither this neuron's current nor spike history)")
            syn = self.ops.syns[key[1]]
            chain = syn.chain + ((("scale", np.asarray(coef)),) if not np.all(coef == 1.0) else ())
            names.append(self.synapse_node(target, syn, chain, index))
        if bias_to_synapse and np.any(drive.const):
            if not names:
                raise self.error(target, "inputs", "at least one synapse")
            self.add_bias(names[0], drive.const)
        if not names:
            raise self.error(target, "inputs", "at least one synaptic input")
        return tuple(names)

    def source(self, target: str, key: tuple) -> tuple[str, int]:
        """(IR node, delay) that a synapse reads."""
        if key[0] == "in":
            if key[1] in self.step.data:
                return ir_name(key[1]), 0
            if key[1] in self.history:
                return self.history[key[1]]
            raise self.error(target, "inputs", f"a synapse from state input '{key[1]}' that is not spike history")
        if key[1] in self.spike_owner:
            return self.spike_owner[key[1]], 0
        delayed = self.delayed_spike(key[1])
        if delayed is None:
            raise self.error(target, "inputs", "spikes of a recognised neuron (a threshold of a bound state)")
        return delayed

    def delayed_spike(self, index: int) -> tuple[str, int] | None:
        """(neuron, 1) when spike indicator ``index`` is a neuron's previous spike recomputed from its state
        input (``onnx_neurons.Recognizer``); None here."""
        return None

    def synapse_node(self, target: str, syn: Syn, chain: tuple, index: int) -> str:
        """One IR synapse for a synapse term: a Dense for a matmul, a Conv2d/SumPool2d for a conv or pool that
        reads its source in the source's own (C, H, W) layout, else one Dense composed from the whole chain
        (a conv reading a flat source through a Reshape included: the IR has no reshape a Conv2d could read)."""
        source, delay = self.source(target, syn.source)
        in_shape = tuple(syn.in_shape[1:])
        source_shape = self.ir_shapes[source]
        view = ()
        if in_shape != source_shape:
            if int(np.prod(in_shape)) != int(np.prod(source_shape)):
                raise self.error(target, "inputs", f"a synapse reading all {int(np.prod(source_shape))} values "
                                 f"of '{source}', got shape {in_shape}")
            view = (("reshape", (1, *in_shape)),)
            if _squeezed(in_shape) != _squeezed(source_shape):
                return self.composed(self.unique(f"{target}_syn{index}" if index else f"{target}_syn"), source,
                                     source_shape, view + chain, delay)
            in_shape = source_shape
        name = self.unique(f"{target}_syn{index}" if index else f"{target}_syn")
        core = [op for op in chain if op[0] != "scale"]
        pre = [op[1] for op in itertools.takewhile(lambda o: o[0] == "scale", chain)]
        post = [op[1] for op in chain[len(pre) + len(core):]] if core else []
        clean = core and all(op[0] != "scale" for op in chain[len(pre):len(pre) + len(core)])
        if clean and [op[0] for op in core] in (["matmul"], ["reshape", "matmul"]) and \
                all(np.size(p) == 1 or p.shape[-1:] == (core[-1][1].shape[0],) for p in pre):
            return self.dense(name, source, in_shape, core, pre, post, delay)
        if clean and not view and [op[0] for op in core] in (["conv"], ["pool"]) and \
                all(np.size(p) == 1 or np.all(p == p.reshape(-1)[0]) for p in pre):
            node = self.spatial(name, source, in_shape, core[0], pre, post, delay)
            if node is not None:
                return node
        return self.composed(name, source, in_shape, view + chain, delay)

    def dense(self, name, source, in_shape, core, pre, post, delay) -> str:
        """A Dense from a Gemm/MatMul core with its per-input (``pre``) and per-output (``post``) scales folded into
        the weight; its name."""
        weight = core[-1][1].T.copy()
        for p in pre:
            weight = weight * np.broadcast_to(np.asarray(p).reshape(-1), (weight.shape[1],))[None, :] \
                if np.size(p) > 1 else weight * float(np.asarray(p).reshape(-1)[0])
        for p in post:
            weight = weight * np.broadcast_to(np.asarray(p).reshape(-1), (weight.shape[0],))[:, None]
        return self.append_dense(name, source, in_shape, weight, delay)

    def spatial(self, name, source, in_shape, op, pre, post, delay):
        """A Conv2d or SumPool2d from a conv/pool core with uniform (pre) and per-channel (post) scales folded in;
        its name, or None when the scales do not fit the node (the caller composes a Dense)."""
        factor = float(np.prod([np.asarray(p).reshape(-1)[0] for p in pre])) if pre else 1.0
        per_channel = np.ones(1)
        for p in post:
            arr = np.asarray(p)[0]
            flat = arr.reshape(arr.shape[0], -1) if arr.ndim == 3 else None
            if flat is None or np.any(flat != flat[:, :1]):
                return None
            per_channel = per_channel * flat[:, 0]
        if op[0] == "conv":
            _, weight, stride, padding, groups = op
            weight = weight * factor * np.broadcast_to(per_channel, (weight.shape[0],))[:, None, None, None]
            self.ir.append(Conv2d(name, source, weight, in_shape=in_shape, stride=stride, padding=padding,
                                  groups=groups, delay_steps=delay))
            return name
        if np.any(per_channel != per_channel[0]):
            return None
        _, kernel, stride = op
        self.ir.append(SumPool2d(name, source, in_shape=in_shape, kernel=kernel, stride=stride,
                                 scale=factor * float(per_channel[0]) / (kernel[0] * kernel[1]), delay_steps=delay))
        return name

    def append_dense(self, name, source, in_shape, weight, delay) -> str:
        """A Dense reading ``source`` (flattened first when it is multi-dimensional)."""
        if len(in_shape) > 1:
            flat = self.unique(f"{source}_flat")
            self.ir.append(Flatten(flat, source))
            source = flat
        self.ir.append(Dense(name, source, weight, None, delay_steps=delay))
        return name

    def composed(self, name, source, in_shape, chain, delay) -> str:
        """One Dense whose weight is the chain of linear ops applied to the identity (at most ``MAX_COMPOSED_INPUTS``
        inputs); its name."""
        size = int(np.prod(in_shape))
        if size > MAX_COMPOSED_INPUTS:
            raise UnsupportedError(f"{self.path}: {name}", "synapse", "a single Gemm/MatMul/Conv/AveragePool "
                                   f"per synapse for inputs above {MAX_COMPOSED_INPUTS}", size)
        x = np.eye(size).reshape(size, *in_shape)
        for op in chain:
            if op[0] == "reshape":
                x = x.reshape(size, *op[1][1:])
                continue
            x = apply_op(op, x)
        weight = x.reshape(size, -1).T.copy()
        return self.append_dense(name, source, in_shape, weight, delay)

    def add_bias(self, name: str, const: np.ndarray) -> None:
        """Give synapse ``name`` the bias ``const`` (per output on a Dense, per channel on a Conv2d);
        ``UnsupportedError`` for any other."""
        index = next(i for i, n in enumerate(self.ir) if n.name == name)
        node = self.ir[index]
        bias = np.broadcast_to(const, const.shape)[0]
        if isinstance(node, Dense):
            self.ir[index] = Dense(node.name, node.source, node.weight, bias.reshape(-1).copy(), node.delay_steps)
            return
        if isinstance(node, Conv2d):
            flat = bias.reshape(bias.shape[0], -1)
            if np.all(flat == flat[:, :1]):
                self.ir[index] = Conv2d(node.name, node.source, node.weight, node.in_shape, node.stride,
                                        node.padding, node.groups, flat[:, 0].copy(), node.delay_steps)
                return
        raise UnsupportedError(f"{self.path}: {name}", "bias", "a per-output bias on a dense or per-channel bias "
                               "on a conv synapse into a neuron with current memory", "other")

    def unique(self, name: str) -> str:
        """An IR name from ``name`` not yet taken by a synapse or neuron (suffixed _1, _2... where needed)."""
        taken = {n.name for n in self.ir} | {n.name for n in self.neurons.values()}
        candidate, k = ir_name(name), 1
        while candidate in taken:
            candidate, k = f"{ir_name(name)}_{k}", k + 1
        return candidate


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)
