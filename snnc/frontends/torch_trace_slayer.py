"""lava-dl slayer networks traced as modules: a chain of slayer blocks -> the lowered Loihi IR netx runs.

A lava-dl model is an ``nn.Module`` whose forward passes ``[N, C, T]`` (or ``[N, C, H, W, T]``) spike
tensors through slayer blocks (``slayer.block.cuba.Dense/Conv/Pool/Flatten``, resonate-and-fire
``slayer.block.rf.Dense`` / ``slayer.block.rf_iz.Dense``), usually a
``torch.nn.ModuleList`` looped over in ``forward``. The torch tracer (``snnc.frontends.torch_trace``)
records each block as one leaf call; this module checks that the calls form one chain (each block reads
the previous block's output, the first reads the example input) and asks every block for the integers it
deploys with: its own ``export_hdf5`` (slayer's weight quantization to the 8-bit values netx loads, the
neuron's ``iDecay``/``vDecay`` in Loihi's 12-bit units and ``vThMant``), written into a ``.net`` file
and read by ``snnc.frontends.lava_dl_net.load_net``. The graph is therefore exactly what netx builds from
the same net's ``export_hdf5`` (``hop_latency`` timing; layer 0 is the input, node ``lif_<i>`` is the
neurons of the ``i``-th block, counting from 1), and the
emulator runs it bit-exactly like netx on Lava fixed_pt.

Time: slayer's time axis is the last one; snnc's input is ``(samples, steps, *shape)``. A block with
``delay_shift=True`` (slayer's default) delays its output by one step, which is the layer latency of
Lava (and of the imported graph): the ``i``-th block's output at slayer step ``t`` is node ``lif_<i>``'s
spike at emulator step ``t`` (``snnc.compiler.slayer_agreement`` compares them layer by layer).

Refused (``UnsupportedError`` naming the block's path): blocks that are not a chain (a block reading
anything but the previous block's output unchanged), block types netx cannot load (and whatever ``load_net`` refuses in the exported layers).
"""
from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import numpy as np

from snnc.errors import NodeError, UnsupportedError
from snnc.frontends.lava_dl_net import load_net
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields
from snnc.ir.verify import verify

SLAYER_BLOCK_MODULE = "lava.lib.dl.slayer.block"
SLAYER_CUBA_MODULE = SLAYER_BLOCK_MODULE + ".cuba"   # the blocks traced directly (CUBA LIF neurons)
SLAYER_BLOCKS = ("Dense", "Conv", "Pool", "Flatten")
# Resonate-and-fire families: their Dense blocks (complex synapse) are what netx loads (ComplexDense).
SLAYER_RESONATOR_MODULES = (SLAYER_BLOCK_MODULE + ".rf", SLAYER_BLOCK_MODULE + ".rf_iz")
SLAYER_RESONATOR_BLOCKS = ("Dense",)


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
    if found is None or not 1 <= int(found.group(1)) <= len(blocks):
        return error
    block_path, block = blocks[int(found.group(1)) - 1]
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
        _check_block_type(call)
        if not call.args or call.args[0] is not current:
            origin = made_by.get(id(call.args[0])) if call.args else None
            raise UnsupportedError(call.path, "input", "the previous block's output, unchanged (a chain of "
                                   "slayer blocks)", f"the result of {origin}" if origin else "another tensor")
        chain.append((call.path, call.target))
        current = call.outputs[0]
    if not chain:
        raise UnsupportedError(model_name, "layers", "at least one slayer block", "none called")
    return chain


def _check_block_type(call) -> None:
    """A CUBA block of a kind netx loads, or a resonator (rf / rf_iz) Dense block."""
    kind, family = type(call.target).__name__, type(call.target).__module__
    if family in SLAYER_RESONATOR_MODULES:
        if kind not in SLAYER_RESONATOR_BLOCKS:
            raise UnsupportedError(call.path, "type", "Dense for resonator blocks (netx 0.6 builds RF neurons only "
                                   "in ComplexDense layers)", f"{family.removeprefix('lava.lib.dl.')}.{kind}")
        return
    if family != SLAYER_CUBA_MODULE:
        raise UnsupportedError(call.path, "type", "a slayer CUBA block (slayer.block.cuba.*) or rf / rf_iz Dense "
                               "block; for other neuron blocks (e.g. sigma_delta) save the net with export_hdf5 and "
                               "compile the .net file", f"{family.removeprefix('lava.lib.dl.')}.{kind}")
    if kind not in SLAYER_BLOCKS:
        raise UnsupportedError(call.path, "type", "a slayer block of kind " + ", ".join(SLAYER_BLOCKS),
                               f"{family}.{kind}")


def _export(blocks: list, input_shape: tuple[int, ...], path: Path) -> None:
    """Write the blocks' own ``export_hdf5`` layers, after an input layer, as netx reads them."""
    import h5py
    with h5py.File(path, "w") as handle:
        layers = handle.create_group("layer")
        first = layers.create_group("0")
        first.create_dataset("type", (1,), "S10", [b"input"])
        first.create_dataset("shape", data=np.asarray(input_shape, np.int64))
        for index, (block_path, block) in enumerate(blocks, start=1):
            try:
                block.export_hdf5(layers.create_group(str(index)))
            except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
                first_line = (str(exc).splitlines() or ["(no message)"])[0][:160]
                raise UnsupportedError(block_path, "export_hdf5", "a block slayer can export for netx",
                                       f"{type(exc).__name__}: {first_line}") from None
