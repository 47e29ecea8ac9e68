"""A lava-dl slayer network's own forward against snnc's emulator, layer by layer.

slayer trains with a float forward that quantizes weights and neuron parameters the way ``export_hdf5``
writes them; netx (and snnc, which runs exactly what netx runs) deploys those integers. When accuracy
drops after export (lava-dl issues 92 and 260), the question is *which layer* first behaves differently.
``layer_agreement`` runs the model's forward on the same spikes, records every slayer block's output and
compares it, step for step, with the graph node built from that block (``lif_<i>`` of the ``i``-th block
with neurons, as ``snnc.frontends.torch_trace_slayer`` names them; ``delta_0``/``sigma_delta_<i>``/``sigma_<i>``
for sigma-delta blocks) in the emulator: spikes, an Affine block's voltage, sigma-delta graded messages.
Both sides are on one grid: a block with ``delay_shift=True`` delays its output one step, as every Loihi
layer does; blocks without it are compared with the emulator's node as many steps later as it lags. A
``cuba.Input`` block's delay_shift has no Loihi hop (netx's input neuron spikes in the step its bias is
set): after it, slayer's layers are compared with the emulator's one step earlier.
A layer that differs is reported with its first differing step; layers after it see different inputs, so
the first differing layer is where the drop comes from; where the neuron model knows why netx's deployment
departs from the exported parameters (``deployment_note``: a resonator's decay words), the line says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.errors import UnsupportedError
from snnc.frontends.torch_trace_slayer import SLAYER_SIGMA_DELTA_MODULE, is_slayer_block
from snnc.ir.graph import Graph
from snnc.neurons import model_of
from snnc.simulators.loihi_emulator import run_loihi

NO_DELAY_SHIFT = (" (block trained with delay_shift=False: slayer's layer answers in the step of its input, a "
                  "Loihi layer one step later; train with delay_shift=True to deploy)")
INPUT_SHIFT = "the Input block's delay_shift, netx's input neuron spikes in the step its bias is set"
HEADER = "slayer forward vs emulator, layer by layer (spikes at every step):"
HEADER_GRADED = ("slayer forward vs emulator, layer by layer (spikes, graded values and states at every step; "
                 "graded values and states in Loihi's integer units):")


@dataclass(frozen=True)
class _Block:
    """One slayer block with neurons as its forward ran: output (samples, steps, neurons) in slayer's
    float units, and how the emulator's node is compared with it."""

    path: str
    block: object
    output: np.ndarray
    shifts: int          # slayer delay_shift steps up to this block


def layer_agreement(model, graph: Graph, x: np.ndarray) -> tuple[bool, list[str]]:
    """(every layer equal, report lines) for ``model`` (a slayer network) and its lowered ``graph`` on input
    ``x`` (samples, steps, *input_shape), snnc's layout; the model gets ``[N, *shape, T]`` (a sigma-delta
    net's graded integers, or a ``cuba.Input`` net's bias values, divided by the Input block's weight
    scale, the float values netx's integers stand for).

    Spiking CUBA blocks: spikes at the same step (``delay_shift=True`` is Loihi's layer latency; after a
    ``cuba.Input`` block with delay_shift, slayer's step t + 1 against the emulator's step t). Affine
    blocks: the neuron's voltage v, slayer's times ``s_scale``; sigma-delta blocks: the decoded activation
    (running sum of the graded messages, what the next layer integrates; ``s_scale`` units) and the
    Output block's sigma (``s_scale * w_scale``). Those slayer layers answer in the step of their input;
    the emulator's node is compared ``latency - delay shifts`` steps later. The sums include what a
    Loihi layer sends before its input arrives (a bias alone: netx's layers start ``latency`` steps
    before slayer's), so a net with biases shows that transient where it changes the result."""
    blocks = _forward_blocks(model, _model_input(model, x))
    groups = [n.name for n in graph.nodes if n.ROLE == "neuron"]
    if len(groups) != len(blocks):
        raise UnsupportedError(graph.name, "neuron groups", f"one per slayer block with neurons "
                               f"({len(blocks)})", len(groups))
    emulated = run_loihi(graph, x, record_state=any(_measure(b) == "v" for b in blocks))
    ok, lines = True, []
    for block, name in zip(blocks, groups):
        equal, line = _compare(block, name, graph, emulated)
        ok &= equal
        lines.append(line)
    graded = any(_measure(b) != "spikes" for b in blocks)
    return ok, [HEADER_GRADED if graded else HEADER] + lines


def _model_input(model, x: np.ndarray) -> np.ndarray:
    """``x`` as the model reads it: a sigma-delta or CUBA Input block's float values are netx's integers
    over its neuron's ``w_scale`` (what its export and quantization assume)."""
    first = next((m for m in model.modules() if is_slayer_block(m)), None)
    if first is not None and type(first).__name__ == "Input" and getattr(first, "neuron", None) is not None:
        return np.asarray(x, np.float64) / first.neuron.w_scale
    return x


def _measure(block: _Block) -> str:
    """What of the block is compared: "spikes" (CUBA), "v" (Affine) or "graded" (sigma-delta)."""
    if type(block.block).__name__ == "Affine":
        return "v"
    return "graded" if type(block.block).__module__ == SLAYER_SIGMA_DELTA_MODULE else "spikes"


def _scale(block: _Block) -> int:
    """Loihi integer units per slayer float unit of the block's compared output."""
    neuron = block.block.neuron
    return neuron.s_scale * neuron.w_scale if type(block.block).__name__ == "Output" else neuron.s_scale


def _compare(block: _Block, name: str, graph: Graph, emulated) -> tuple[bool, str]:
    samples, steps = block.output.shape[:2]
    measure = _measure(block)
    lag = graph.latency[name] - block.shifts
    if measure == "spikes":
        lag = min(lag, 0)     # a layer late for want of delay_shift is reported as different (NO_DELAY_SHIFT)
        mine = emulated.spikes[name].reshape(block.output.shape)
        theirs, mine = _aligned(block.output.astype(np.int64), mine, lag)
        label = f"{name}, {_timing(lag)}" if lag else name
        equal, line = _layer_line(block.path, label, theirs, mine)
        note = model_of(graph.node(name)).deployment_note(graph.node(name))
        if not equal and note:
            line += f" ({note})"
        shifted = bool(getattr(block.block, "delay_shift", True))
        return equal, line if equal or shifted else line + NO_DELAY_SHIFT
    trace = emulated.states[name]["v"] if measure == "v" else emulated.spikes[name]
    mine = np.asarray(trace, np.int64).reshape(samples, steps, -1)
    theirs = block.output * _scale(block)
    what = "v" if measure == "v" else "sigma"
    if measure == "graded" and type(block.block).__name__ != "Output":
        mine, theirs, what = np.cumsum(mine, axis=1), np.cumsum(theirs, axis=1), "decoded (summed messages)"
    return _value_line(block.path, name, what, *_aligned(theirs, mine, lag), lag)


def _aligned(theirs: np.ndarray, mine: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """slayer's and the emulator's (samples, steps, neurons) on one grid: the emulator ``lag`` steps later
    (negative: slayer ``-lag`` steps later, as after a ``cuba.Input`` block's delay_shift); steps that one
    side has no partner for are left out."""
    steps = theirs.shape[1]
    if lag >= 0:
        return theirs[:, :steps - lag], mine[:, lag:]
    return theirs[:, -lag:], mine[:, :steps + lag]


def _timing(lag: int) -> str:
    """How the two sides are aligned, as a report line says it."""
    if lag < 0:
        return f"slayer {-lag} step{'s' * (lag != -1)} later: {INPUT_SHIFT}"
    return f"emulator {lag} step{'s' * (lag != 1)} later as Loihi's layers"


def _forward_blocks(model, x: np.ndarray) -> list[_Block]:
    """Each slayer block with neurons, in call order, with its output as (samples, steps, neurons)."""
    import torch
    paths = {id(m): p for p, m in model.named_modules()}
    recorded: list[_Block] = []
    shifts = [0]

    def keep(module, args, output):
        shifts[0] += bool(getattr(module, "delay_shift", False))
        if getattr(module, "neuron", None) is not None:
            out = output[0] if isinstance(output, tuple) else output
            values = torch.movedim(out.detach(), -1, 1).reshape(out.shape[0], out.shape[-1], -1)
            recorded.append(_Block(paths.get(id(module), type(module).__name__), module,
                                   values.double().numpy(), shifts[0]))

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


def _value_line(path: str, name: str, what: str, theirs: np.ndarray, mine: np.ndarray,
                lag: int) -> tuple[bool, str]:
    """Integer values of the emulator against slayer's scaled floats (equal: the float is that integer)."""
    head = f"  {path} ({name}, {what}, {_timing(lag)}): "
    differ = theirs != mine
    count = int(differ.sum())
    nonzero = int(np.count_nonzero(mine))
    if not count:
        return True, head + f"equal ({nonzero} of {mine.size} non-zero)"
    first = int(np.argmax(differ.any(axis=(0, 2))))
    agree = 100.0 * (1 - count / differ.size)
    largest = float(np.max(np.abs(theirs - mine)))
    return False, head + (f"{count} of {differ.size} differ ({agree:.1f}% agree), first at slayer step {first}; "
                          f"largest difference {largest:g}")
