"""A lava-dl slayer network's own forward against snnc's emulator, layer by layer.

slayer trains with a float forward that quantizes weights and neuron parameters the way ``export_hdf5``
writes them; netx (and snnc, which runs exactly what netx runs) deploys those integers. When accuracy
drops after export (lava-dl issues 92 and 260), the question is *which layer* first behaves differently.
``layer_agreement`` runs the model's forward on the same spikes, records every slayer block's output and
compares it, step for step, with the spikes of the graph node built from that block (``lif_<i>`` of the
``i``-th block with neurons, as ``snnc.frontends.torch_trace_slayer`` names them) in the emulator. Both sides
are on one grid: a block with ``delay_shift=True`` delays its output one step, as every Loihi layer does.
A layer that differs is reported with its first differing step; layers after it see different inputs, so
the first differing layer is where the drop comes from; where the neuron model knows why netx's deployment
departs from the exported parameters (``deployment_note``: a resonator's decay words), the line says so.
"""
from __future__ import annotations

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.torch_trace_slayer import is_slayer_block
from snnc.ir.graph import Graph
from snnc.neurons import model_of
from snnc.simulators.loihi_emulator import run_loihi

NO_DELAY_SHIFT = (" (block trained with delay_shift=False: slayer's layer answers in the step of its input, a "
                  "Loihi layer one step later; train with delay_shift=True to deploy)")


def layer_agreement(model, graph: Graph, x: np.ndarray) -> tuple[bool, list[str]]:
    """(every layer equal, report lines) for ``model`` (a slayer network) and its lowered ``graph`` on input
    spikes ``x`` (samples, steps, *input_shape), snnc's layout; the model gets ``[N, *shape, T]``."""
    blocks = _forward_blocks(model, x)
    groups = [n for n in graph.nodes if n.ROLE == "neuron"]
    if len(groups) != len(blocks):
        raise UnsupportedError(graph.name, "neuron groups", f"one per slayer block with neurons "
                               f"({len(blocks)})", len(groups))
    emulated = run_loihi(graph, x, record_state=False)
    lines, ok = ["slayer forward vs emulator, layer by layer (spikes at every step):"], True
    for (path, shifted, slayer_spikes), node in zip(blocks, groups):
        mine = emulated.spikes[node.name].reshape(slayer_spikes.shape)
        equal, line = _layer_line(path, node.name, slayer_spikes, mine)
        ok &= equal
        note = model_of(node).deployment_note(node)
        if not equal and note:
            line += f" ({note})"
        lines.append(line if equal or shifted else line + NO_DELAY_SHIFT)
    return ok, lines


def _forward_blocks(model, x: np.ndarray) -> list[tuple[str, bool, np.ndarray]]:
    """Each slayer block with neurons, in call order: its path, its ``delay_shift`` and its output as
    (samples, steps, neurons)."""
    import torch
    paths = {id(m): p for p, m in model.named_modules()}
    recorded: list[tuple[str, np.ndarray]] = []

    def keep(module, args, output):
        if hasattr(module, "neuron"):
            out = output[0] if isinstance(output, tuple) else output
            spikes = torch.movedim(out.detach(), -1, 1).reshape(out.shape[0], out.shape[-1], -1)
            recorded.append((paths.get(id(module), type(module).__name__), bool(getattr(module, "delay_shift", True)),
                             spikes.numpy().astype(np.int64)))

    handles = [m.register_forward_hook(keep) for m in model.modules() if is_slayer_block(m)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.movedim(torch.as_tensor(np.asarray(x), dtype=torch.float32), 1, -1))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return recorded


def _layer_line(path: str, name: str, theirs: np.ndarray, mine: np.ndarray) -> tuple[bool, str]:
    differ = theirs != mine
    count = int(differ.sum())
    head = f"  {path} ({name}): "
    if not count:
        return True, head + f"equal ({int(mine.sum())} spikes)"
    first = int(np.argmax(differ.any(axis=(0, 2))))
    agree = 100.0 * (1 - count / differ.size)
    return False, head + (f"{count} of {differ.size} spike values differ ({agree:.1f}% agree), first at step "
                          f"{first}; slayer {int(theirs.sum())} spikes, emulator {int(mine.sum())}")
