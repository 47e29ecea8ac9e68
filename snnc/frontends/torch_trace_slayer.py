"""lava-dl slayer networks traced as modules: a chain of slayer blocks -> the lowered Loihi IR netx runs.

A lava-dl model is an ``nn.Module`` whose forward passes ``[N, C, T]`` (or ``[N, C, H, W, T]``) spike
tensors through slayer blocks (``slayer.block.cuba.Input/Dense/Conv/Pool/Flatten/Affine`` or
``slayer.block.sigma_delta.Input/Conv/Pool/Dense/Flatten/Output``, PilotNet SDNN's blocks, or
``slayer.block.alif.Input/Dense/Conv/Pool/Flatten``: ``LoihiAdaptiveLIF`` groups, nodes ``alif_<i>`` (an
``alif.Input`` only without neuron: a plain input layer), or resonate-and-fire
``slayer.block.rf.Dense`` / ``slayer.block.rf_iz.Dense``), usually a
``torch.nn.ModuleList`` looped over in ``forward``. The torch tracer (``snnc.frontends.torch_trace``)
records each block as one leaf call; this module checks that the calls form one chain (each block reads
the previous block's output, the first reads the example input) and asks every block for the integers it
deploys with: its own ``export_hdf5`` (slayer's weight quantization to the 8-bit values netx loads, the
neuron's ``iDecay``/``vDecay`` in Loihi's 12-bit units and ``vThMant``), written into a ``.net`` file
and read by ``snnc.frontends.lava_dl_net.load_net``. The graph is therefore exactly what netx builds from
the same net's ``export_hdf5`` (``hop_latency`` timing; layer 0 is the input, node ``lif_<i>`` is the
neurons of the ``i``-th block, counting from 1), and the
emulator runs it bit-exactly like netx on Lava fixed_pt. A ``Pool`` block (any family) is a sum pool
with slayer's one quantized kernel: a depthwise ``LoihiConv`` (node ``pool_<i>``) into the family's
neurons; netx 0.6 raises NotImplementedError on ``pool`` layers, and the same synapse written as the
depthwise ``conv`` layer it does load runs there exactly as in snnc. netx 0.6 cannot load ALIF layers at
all: for alif blocks the references are slayer's forward and Lava's ATRLIF (``lava_dl_alif``).

Time: slayer's time axis is the last one; snnc's input is ``(samples, steps, *shape)``. A block with
``delay_shift=True`` (slayer's default) delays its output by one step, which is the layer latency of
Lava (and of the imported graph): the ``i``-th block's output at slayer step ``t`` is node ``lif_<i>``'s
spike at emulator step ``t`` (``snnc.compiler.slayer_agreement`` compares them layer by layer).

A ``cuba.Input`` block writes layer 0: with a neuron it is netx's input layer, its LIF (node ``lif_0``, no
hop) driven through ``bias_mant``, so the graph's input values are the bias, per step (``BiasInput``).
slayer's forward computes ``q8(x)`` (x quantized like an 8-bit weight: steps of 2/64, clamped to
[-256/64, 254/64]), adds it to the neuron's current and the current to v; netx's input neuron gets nothing
into its current and the bias into v. With ``current_decay=1.0`` (iDecay 4096) slayer's current is the
step's ``q8(x)`` alone, and bias ``64 * x`` is exactly it for x on slayer's grid: bias values that are even
integers in [-256, 254] (a spike is 64; a pixel image is held as the bias at every step, as netx's
tutorials feed it). The Input block's ``delay_shift`` has no Loihi hop: slayer's every layer is the
emulator's one step later. Without a neuron, ``cuba.Input(delay_shift=False)`` is the plain input layer
(slayer's own forward fails on a neuron-less Input with delay_shift).

A sigma-delta chain starts with its ``Input`` block, which writes layer 0 (netx's Delta encoder; nodes
``delta_0``, ``sigma_delta_<i>``, ``sigma_<i>`` for the Output block). A ``cuba.Affine`` block is netx's
LIF with ``vThMant`` 2^18 - 1, which never spikes: its voltage is the output.

Refused (``UnsupportedError`` naming the block's path): blocks that are not a chain (a block reading
anything but the previous block's output unchanged), block types netx cannot load (``BLOCK_REFUSALS``
says why for each of Average, TimeDecimation, ConvT, Unpool, KWTA, Recurrent), ``cuba.Input`` with a
current that keeps earlier steps' input (``CUBA_INPUT_CURRENT``) or with a weight/bias transform other
than the identity (``CUBA_INPUT_TRANSFORM``: exported, applied by neither netx nor snnc), ``alif.Input``
with a neuron (``ALIF_INPUT_NEURON``), a Pool block whose input slayer pads into more outputs than netx's layer
has (``POOL_PADDING``), a sigma-delta chain
without its Input block first, an Affine or Output block that is not last (its output is a state),
``Affine(dynamics=False)`` (``AFFINE_WITHOUT_DYNAMICS``), and whatever ``load_net`` refuses in the exported
layers.
"""
from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import numpy as np

from snnc.errors import NodeError, UnsupportedError
from snnc.frontends.lava_dl_net import NETX_REFUSES, load_net
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields
from snnc.ir.nodes import conv_output_hw
from snnc.ir.verify import verify

SLAYER_BLOCK_MODULE = "lava.lib.dl.slayer.block"
SLAYER_CUBA_MODULE = SLAYER_BLOCK_MODULE + ".cuba"             # CUBA LIF neurons
SLAYER_SIGMA_DELTA_MODULE = SLAYER_BLOCK_MODULE + ".sigma_delta"   # sigma-delta (SDNN) neurons
SLAYER_ALIF_MODULE = SLAYER_BLOCK_MODULE + ".alif"             # adaptive LIF neurons (Lava ATRLIF)
# Resonate-and-fire families: their Dense blocks (complex synapse) are what netx loads (ComplexDense).
SLAYER_RESONATOR_MODULES = (SLAYER_BLOCK_MODULE + ".rf", SLAYER_BLOCK_MODULE + ".rf_iz")
# The blocks traced directly, per slayer family (what load_net reads from their export_hdf5).
SLAYER_FAMILIES = {SLAYER_CUBA_MODULE: ("Input", "Dense", "Conv", "Pool", "Flatten", "Affine"),
                   SLAYER_SIGMA_DELTA_MODULE: ("Input", "Dense", "Conv", "Pool", "Flatten", "Output"),
                   SLAYER_ALIF_MODULE: ("Input", "Dense", "Conv", "Pool", "Flatten"),
                   **{module: ("Dense",) for module in SLAYER_RESONATOR_MODULES}}
SLAYER_BLOCKS = SLAYER_FAMILIES[SLAYER_CUBA_MODULE]
# Why the other blocks of the accepted families are refused (their export_hdf5 and what netx 0.6 does with it).
BLOCK_REFUSALS = {
    "Average": NETX_REFUSES["average"] + "; average the last block's output outside the network",
    "TimeDecimation": "it averages bins of time steps (fewer output steps than input steps), which a Loihi layer "
                      "cannot; its export_hdf5 writes an 'average' layer netx 0.6 cannot load",
    "ConvT": NETX_REFUSES["convT"],
    "Unpool": NETX_REFUSES["unpool"],
    "KWTA": "its export_hdf5 writes nothing (an empty layer netx cannot load)",
    "Recurrent": "its export is a 'dense_rec' layer with an ALIF neuron: netx 0.6 builds no ALIF neuron "
                 "(get_neuron_params knows CUBA, SDNN and RF only) and snnc has no recurrent ALIF layer",
}
# slayer.synapse.Pool.forward pads an input whose size the kernel does not divide; netx's layers cannot.
POOL_PADDING = ("slayer's Pool appends H % kh zero rows and W % kw zero columns at the bottom and right of its "
                "input, so it pools to more outputs than netx's conv layer (same padding on both sides); pad or "
                "crop the block's input to a multiple of the kernel")
# alif.Input with a neuron: netx's input layer is a neuron driven through its bias; slayer feeds the values
# into the neuron's current, and netx 0.6 builds no ALIF neuron at all.
ALIF_INPUT_NEURON = ("slayer's alif.Input feeds the input into an ALIF neuron's current; its export is an input "
                     "layer with an ALIF neuron, which netx 0.6 cannot build (get_neuron_params knows no ALIF) "
                     "and which netx's input layers would drive through the bias instead; start the chain with "
                     "the first alif.Dense/Conv block (it reads the spikes), or use alif.Input() without "
                     "neuron_params and with delay_shift=False (a plain input layer)")
# cuba.Input with a neuron: slayer adds q8(x) (x quantized as an 8-bit weight) to the neuron's current, netx's
# input layer sets the user's values as the neuron's bias_mant, added to v (its current gets nothing). The
# two agree exactly where slayer's current holds only the step's input (iDecay 4096) and x is the bias over
# w_scale; an input transform (weight/bias) is exported but applied by neither netx nor snnc.
CUBA_INPUT_DECAY = 4096
CUBA_INPUT_CURRENT = ("slayer's cuba.Input adds each step's input to its neuron's current, which carries a "
                      "decayed part of earlier steps' input into v; netx's input layer sets the values as the "
                      "neuron's bias, added to v alone (its current stays 0), so only current_decay=1.0 (the "
                      "current is the step's input) deploys as trained; build cuba.Input with current_decay=1.0 "
                      "and retrain, or start the chain with the first cuba.Dense/Conv block (it reads the spikes)")
CUBA_INPUT_TRANSFORM = ("slayer's cuba.Input computes q8(x) * q8(weight) + q8(bias); its export writes weight and "
                        "bias as the input layer's transform, which netx does not apply (the values set as bias_mant "
                        "are the input as given) and whose result is no integer bias in general; build cuba.Input "
                        "without weight and bias (or fold them into the input, as even integers in [-256, 254] "
                        "per step)")
# netx gives a dense layer without neuron an integrator (u sums every step's input); slayer's Affine
# with dynamics=False outputs each step's input alone: refused rather than deployed as something else.
AFFINE_WITHOUT_DYNAMICS = ("slayer's Affine(dynamics=False) outputs each step's weighted input; its export has "
                           "no neuron and netx then builds a non-leaky integrator that sums them over time")


def is_slayer_block(module) -> bool:
    """True for a lava-dl slayer block (``slayer.block.<neuron>.<Kind>``), traced as one leaf."""
    return type(module).__module__.startswith(SLAYER_BLOCK_MODULE)


def slayer_graph(calls: list, example_input, name: str, model_name: str) -> Graph:
    """The lowered graph of the recorded ``calls`` (``torch_trace._Call``: block calls and tensor ops) of a
    slayer network run once on ``example_input`` ([N, C, T] or [N, C, H, W, T])."""
    blocks = _block_chain(calls, example_input, model_name)
    with tempfile.TemporaryDirectory(prefix="snnc-slayer-") as scratch:
        path = Path(scratch) / "slayer.net"
        _export(blocks, tuple(int(d) for d in example_input.shape[1:-1]), path)
        try:
            graph = load_net(path, isolation=None)
        except NodeError as error:     # name the block, not the scratch file's layer
            raise _block_error(error, path, blocks) from None
    return verify(dataclasses.replace(graph, **graph_name_fields(name)))


def _block_error(error: NodeError, path: Path, blocks: list) -> NodeError:
    """``error`` (about ``<path>: layer <i>``) re-raised about the block that wrote layer ``i``."""
    found = re.fullmatch(rf"{re.escape(str(path))}: layer (\d+)", error.violation.node)
    index = -1 if found is None else int(found.group(1)) - _first_layer(blocks)
    if not 0 <= index < len(blocks):
        return error
    block_path, block = blocks[index]
    v = error.violation
    node = f"{block_path} ({type(block).__module__.removeprefix('lava.lib.dl.')}.{type(block).__name__})"
    return type(error)(node, f"export_hdf5 {v.field}", v.limit, v.actual, v.rule)


def _block_chain(calls: list, example_input, model_name: str) -> list:
    """The (path, block) pairs in call order, after checking that they form one chain. Tensor ops whose
    results no block reads (the tutorials' spike-rate logging, ``torch.mean(spike)``) are ignored."""
    current, chain, made_by = example_input, [], {}
    for call in calls:
        if not call.is_module or not is_slayer_block(call.target):
            label = getattr(call.target, "__name__", type(call.target).__name__)
            made_by.update({id(t): f"{call.path}: {label}" for t in call.outputs})
            continue
        _check_block(call.path, call.target, chain)
        if not call.args or call.args[0] is not current:
            origin = made_by.get(id(call.args[0])) if call.args else None
            raise UnsupportedError(call.path, "input", "the previous block's output, unchanged (a chain of "
                                   "slayer blocks)", f"the result of {origin}" if origin else "another tensor")
        if type(call.target).__name__ == "Pool":
            _check_pool_input(call.path, call.target, tuple(call.args[0].shape))
        chain.append((call.path, call.target))
        current = call.outputs[0]
    if not chain:
        raise UnsupportedError(model_name, "layers", "at least one slayer block", "none called")
    return chain


def _check_block(path: str, block, chain: list) -> None:
    """``UnsupportedError`` for a block netx cannot deploy as slayer runs it, at this place of the chain."""
    kind, family = type(block).__name__, type(block).__module__
    label = f"{family.removeprefix('lava.lib.dl.')}.{kind}"
    if family not in SLAYER_FAMILIES:
        raise UnsupportedError(path, "type", "a slayer CUBA, sigma-delta, ALIF or resonate-and-fire block "
                               "(slayer.block.cuba.*, slayer.block.sigma_delta.*, slayer.block.alif.*, "
                               "slayer.block.rf.Dense, slayer.block.rf_iz.Dense); for other neuron blocks save "
                               "the net with export_hdf5 and compile the .net file", label)
    if family in SLAYER_RESONATOR_MODULES and kind not in SLAYER_FAMILIES[family]:
        raise UnsupportedError(path, "type", "Dense for resonator blocks (netx 0.6 builds RF neurons only in "
                               "ComplexDense layers)", label)
    if kind not in SLAYER_FAMILIES[family]:
        raise UnsupportedError(path, "type", f"a {family.rsplit('.', 1)[1]} block of kind "
                               + ", ".join(SLAYER_FAMILIES[family]), label, rule=BLOCK_REFUSALS.get(kind, ""))
    if family == SLAYER_CUBA_MODULE and kind == "Input" and block.neuron is not None:
        _check_cuba_input(path, block)
    if family == SLAYER_ALIF_MODULE and kind == "Input" and block.neuron is not None:
        raise UnsupportedError(path, "neuron_params", "None (an input layer without neuron)",
                               "an ALIF neuron", rule=ALIF_INPUT_NEURON)
    if chain and is_terminal(chain[-1][1]):
        raise UnsupportedError(chain[-1][0], "position", "the last block (its output is a neuron state, not "
                               "messages netx could send on)", f"followed by {path}")
    if kind == "Input" and chain:
        raise UnsupportedError(path, "position", "the first block (netx's input layer)", f"block {len(chain) + 1}")
    if family == SLAYER_SIGMA_DELTA_MODULE and not chain and kind != "Input":
        raise UnsupportedError(path, "type", "a sigma_delta.Input block first (netx's Delta encoder of the "
                               "graded input)", label)
    if kind == "Affine" and not block.dynamics:
        raise UnsupportedError(path, "dynamics", "True (a CUBA neuron whose voltage is the output)", False,
                               rule=AFFINE_WITHOUT_DYNAMICS)


def _check_cuba_input(path: str, block) -> None:
    """``UnsupportedError`` for a ``cuba.Input`` with neuron whose forward netx's bias-driven input layer
    cannot reproduce: a current that keeps part of earlier steps' input, or an input transform."""
    decay = np.asarray(block.neuron.device_params["iDecay"])
    if np.any(decay != CUBA_INPUT_DECAY):
        actual = int(decay.flat[0]) if decay.size == 1 else f"{int(decay.min())}..{int(decay.max())}"
        raise UnsupportedError(path, "neuron current_decay", f"1.0 (iDecay {CUBA_INPUT_DECAY})",
                               f"iDecay {actual}", rule=CUBA_INPUT_CURRENT)
    transform = {name: getattr(block, name) for name in ("weight", "bias")}
    scale = block.neuron.w_scale
    exported = {name: None if value is None else int(block.neuron.quantize_8bit(value.detach(), descale=True)[0])
                for name, value in transform.items()}
    if exported["weight"] not in (None, scale) or exported["bias"] not in (None, 0):
        raise UnsupportedError(path, "weight/bias", f"None (or weight 1, bias 0: {scale} and 0 as exported)",
                               f"{exported['weight']} and {exported['bias']} as exported",
                               rule=CUBA_INPUT_TRANSFORM)


def _check_pool_input(path: str, block, input_shape: tuple[int, ...]) -> None:
    """``UnsupportedError`` where slayer's Pool pads its input into an output netx's conv layer does not
    have: it appends ``H % kh`` zero rows and ``W % kw`` zero columns at the bottom and right, and a
    netx/Loihi convolution pads both sides alike (where the output size stays the same, the extra zeros
    only fall into windows that netx's padding or nothing covers: same sums)."""
    synapse = block.synapse
    hw = tuple(int(d) for d in input_shape[2:4])
    kernel, stride, padding, dilation = (tuple(int(v) for v in getattr(synapse, field)[:2]) for field in
                                         ("kernel_size", "stride", "padding", "dilation"))
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
    slayer_hw = tuple(int(d) for d in block.shape[1:3])
    netx_hw = conv_output_hw(hw, span, stride, padding)
    if slayer_hw != netx_hw:
        raise UnsupportedError(path, "input shape", f"a height and width the pooling kernel {kernel} divides "
                               f"(or a stride and padding for which slayer's padding adds no output)",
                               f"{hw}: slayer pools to {slayer_hw}, netx's conv layer to {netx_hw}",
                               rule=POOL_PADDING)


def _first_layer(blocks: list) -> int:
    """The .net layer index of the first block: 0 for an Input block (it writes the input layer), else 1."""
    return 0 if type(blocks[0][1]).__name__ == "Input" else 1


def is_terminal(block) -> bool:
    """True for a block whose output is a neuron state (Affine: voltage; sigma_delta Output: sigma)."""
    return type(block).__name__ in ("Affine", "Output")


def _export(blocks: list, input_shape: tuple[int, ...], path: Path) -> None:
    """Write the blocks' own ``export_hdf5`` layers, after an input layer, as netx reads them."""
    import h5py
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        start = _first_layer(blocks)
        if start:
            first = layers.create_group("0")
            first.create_dataset("type", (1,), "S10", [b"input"])
            first.create_dataset("shape", data=np.asarray(input_shape, np.int64))
        for index, (block_path, block) in enumerate(blocks, start=start):
            try:
                block.export_hdf5(layers.create_group(str(index)))
            except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
                first_line = (str(exc).splitlines() or ["(no message)"])[0][:160]
                raise UnsupportedError(block_path, "export_hdf5", "a block slayer can export for netx",
                                       f"{type(exc).__name__}: {first_line}") from None
