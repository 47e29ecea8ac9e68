"""A lowered SpiNNaker graph as plain PyNN data: populations, projections (i, j, weight, delay) and spike
sources, for one simulator. Nothing here imports PyNN.

Time: emulator tick t is PyNN time ``(t + TIME_OFFSET_STEPS) * dt`` (NEST's spike generators cannot emit
at time 0). Weights are the exact values the 16-bit words stand for (``word / 2^(15 - shift)`` nA), negative
on inhibitory projections (PyNN's convention for current synapses; sPyNNaker stores |w|).

NEST integrates the same ODE exactly, sPyNNaker with a current held over each tick. For both, the response
of V to one spike is the two-exponential kernel (e^k - d^k) of the same taus, only NEST's starts one tick
later and its amplitude differs by a constant factor; so ``for_nest`` scales every weight by
``init * (1 - e) (tau_m - tau_s) / (tau_s (e - d))`` (``nest_weight_factor``) and NEST then simulates the same
discrete-time network as the chip, each population one tick later per layer of neurons in front of it
(``nest_shift_steps``). i_offset needs no factor: both add (1 - e) R I_offset per tick; but both simulators
run input-free ticks from PyNN time 0 before the tick the emulator calls 0, so each population starts from
the voltage that lands on the lowered ``v_init`` then (``start_voltage``).

Recurrence: a spike of tick n over a projection of hop delay d reaches the chip's V at tick n + 1 + d, NEST's
(delay D >= 1 tick, added to I_syn after that step's V update) at n + 1 + D; a loop through k populations
therefore takes >= 2k NEST ticks but only k chip ticks, and no NEST delay follows a one-step recurrence
(snnTorch RLeaky / RSynaptic, hop delay 0) tick for tick. Such a projection is replayed instead
(``nest_replays``): a spike source plays the emulator's own spikes of its source population ``k`` ticks
early over a delay ``k`` ticks longer, so they land on NEST's V exactly when the closed loop's would. Until
the first tick where NEST and the emulator differ, the replayed spikes are the ones the closed loop would
have sent (by induction over ticks), so the first divergence - population, tick, neuron - is the exact
network's; after it, the populations fed by the replay still see the emulator's history.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from snnc.arith import spinnaker as sq
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Input, SpinnakerPopulation, SpinnakerProjection
from snnc.neurons import is_neuron_in, model_of
from snnc.targets.catalog import SPINNAKER
from snnc.targets.spinnaker_synapse_cores import feeds_synapse_cores

TIME_OFFSET_STEPS = SPINNAKER.startup_ticks
CELL_TYPE = "IF_curr_exp"


@dataclass(frozen=True)
class PopulationSpec:
    """One PyNN IF_curr_exp population: label, size, cell parameters, sPyNNaker's expected summed weights per
    receptor, synapse cores per neuron core and the start voltage (mV)."""

    label: str
    size: int
    parameters: dict            # PyNN IF_curr_exp parameters (floats or per-neuron arrays)
    max_expected_summed_weight: tuple[float, float]
    n_synapse_cores: int = 0    # 0: combined neuron+synapse cores; k: sPyNNaker's split, k per neuron core
    v_start: float | np.ndarray = 0.0   # mV at PyNN time 0 (``start_voltage``)
    cell: str = CELL_TYPE       # the PyNN cell type (IF_curr_exp, IZK_curr_exp / Izhikevich)
    initial: dict | None = None  # further initial values (IZK_curr_exp: u)


@dataclass(frozen=True)
class ProjectionSpec:
    """One PyNN projection: label, pre and post populations, receptor, and its connections (pre, post, weight in nA,
    delay in ms)."""

    label: str
    pre: str
    post: str
    receptor: str
    connections: np.ndarray     # (k, 4): pre index, post index, weight (nA, signed), delay (ms)


@dataclass(frozen=True)
class PyNNNetwork:
    """The PyNN network of a lowered SpiNNaker graph: time step (ms), spike sources, populations, projections, batch
    copies, and the sources sliced like populations for synapse cores."""

    name: str
    dt_ms: float
    inputs: dict[str, int]                  # label -> size
    populations: tuple[PopulationSpec, ...]
    projections: tuple[ProjectionSpec, ...]
    batch: int = 1
    # Spike source arrays feeding a split population are sliced like populations, so sPyNNaker can spread
    # their synaptic events over its synapse cores (snnc.targets.spinnaker_synapse_cores).
    sliced_inputs: tuple[str, ...] = ()
    source_neurons_per_core: int = SPINNAKER.neurons_per_core


def describe(graph: Graph, for_nest: bool = False, batch: int = 1, replay: bool = False) -> PyNNNetwork:
    """The PyNN network of a lowered graph; ``batch`` independent copies side by side (index b * n + i).
    ``replay`` (NEST only): the projections of ``nest_replays`` read the spike sources ``replay_label``
    instead of their population (``run_nest`` fills them with the emulator's spikes); without it a graph
    with such a projection gets no NEST alignment at all (the standalone script's NEST network)."""
    dt_ms = SPINNAKER.tick_s * 1e3          # one model step = one tick (lower_spinnaker: time mapping)
    pops = [n for n in graph.nodes if is_neuron_in(n, "spinnaker")]
    if batch > 1 and not for_nest and any(p.n_synapse_cores for p in pops):
        split = next(p for p in pops if p.n_synapse_cores)
        raise UnsupportedError(split.name, "batch", "1 on sPyNNaker (batch copies side by side would re-slice "
                               "the sources its synapse cores were planned for)", batch)
    for other in (p for p in pops if for_nest and not isinstance(p, SpinnakerPopulation)):
        _refuse_on_nest(other)
    shifts, extra, early = _nest_alignment_if_comparable(graph, replay) if for_nest else ({}, {}, {})
    populations = tuple(_population_spec(p, batch, start_voltage(p, for_nest, shifts.get(p.name, 0)))
                        if isinstance(p, SpinnakerPopulation) else _izhikevich_spec(p, batch) for p in pops)
    projections = []
    for post in pops:
        factor = nest_weight_factor(post) if for_nest else 1.0
        shift = dict(zip(("excitatory", "inhibitory"), post.ring_buffer_shift))
        for name in post.inputs:
            node = graph.node(name)
            connections = _connections(node, shift[node.receptor], factor, dt_ms, batch,
                                       extra.get(name, 0) + early.get(name, 0))
            pre = replay_label(name) if name in early else graph.producer(node.source).name
            if len(connections):
                projections.append(ProjectionSpec(name, pre, post.name, node.receptor, connections))
    inputs = {n.name: int(np.prod(n.shape)) * batch for n in graph.nodes if isinstance(n, Input)}
    sliced = tuple(name for name in inputs if feeds_synapse_cores(graph, name))
    inputs.update({replay_label(name): int(np.prod(graph.shapes[graph.node(name).source])) * batch
                   for name in early})
    return PyNNNetwork(graph.name, dt_ms, inputs, populations, tuple(projections), batch, sliced)



def _nest_alignment_if_comparable(graph: Graph, replay: bool) -> tuple[dict, dict, dict]:
    """``nest_shift_steps``, ``nest_extra_delays`` and (with ``replay``) ``nest_replays``; none at all for a
    graph NEST cannot follow tick for tick (the emitted script still runs it on NEST; ``run_nest`` refuses
    to compare it)."""
    try:
        shifts = nest_shift_steps(graph)
    except UnsupportedError:
        return {}, {}, {}
    extra, early = nest_extra_delays(graph, shifts), nest_replays(graph, shifts)
    if early and not replay:
        return {}, {}, {}
    return shifts, extra, early


def start_voltage(node: SpinnakerPopulation, for_nest: bool, nest_shift: int = 0) -> np.ndarray:
    """V (mV, per neuron) at PyNN time 0 such that the simulator is at ``v_init`` when it reaches the
    emulator's tick 0. The chip runs ``TIME_OFFSET_STEPS`` input-free ticks before it (its inputs start at
    ``TIME_OFFSET_STEPS * dt``), solved exactly in its arithmetic (``sq.bias_only_start``; the lowering
    checked that they stay below the threshold). NEST's v recorded at time k dt follows k updates and
    ``run_nest`` reads tick 0 (after one update) at ``TIME_OFFSET_STEPS + nest_shift``, so NEST reaches
    ``v_init`` after ``TIME_OFFSET_STEPS + nest_shift - 1`` updates of its exact propagator
    ``V' = V_inf + (V - V_inf) e``, ``V_inf = v_rest + R i_offset`` (measured: one tick more or less leaves
    a biased layer 20 mV outside the NEST bound, tests/test_spinnaker_bias.py)."""
    size = int(np.prod(node.shape))
    v_init = np.broadcast_to(np.asarray(node.v_init, np.int64).reshape(-1), (size,))
    offset = np.broadcast_to(np.asarray(node.i_offset, np.int64).reshape(-1), (size,))
    if for_nest:
        tau_m, cm = _per_neuron_ms(node.tau_m, size), _per_neuron_ms(node.cm, size)
        v_inf = sq.decode_s1615(node.v_rest).item() + tau_m / cm * sq.decode_s1615(offset)
        ticks = TIME_OFFSET_STEPS + nest_shift - 1
        return v_inf + (sq.decode_s1615(v_init) - v_inf) * _exp(ticks / tau_m)
    const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
    try:
        states = sq.bias_only_start(offset, const, node.v_rest, node.v_thresh, v_init, TIME_OFFSET_STEPS)
    except ValueError as exc:
        raise QuantizationError(node.name, "v_init", "a start reached by input-free ticks below v_thresh",
                                str(exc)) from None
    return sq.decode_s1615(states[0])


def _population_spec(node: SpinnakerPopulation, batch: int, v_start: np.ndarray) -> PopulationSpec:
    size = int(np.prod(node.shape))
    params = {
        "cm": _tiled(sq.decode_s1615(node.cm), size, batch), "tau_m": _tiled(sq.decode_s1615(node.tau_m), size, batch),
        "tau_syn_E": _tiled(sq.decode_s1615(node.tau_syn_e), size, batch),
        "tau_syn_I": _tiled(sq.decode_s1615(node.tau_syn_i), size, batch),
        "tau_refrac": sq.decode_s1615(node.tau_refrac).item(), "v_rest": sq.decode_s1615(node.v_rest).item(),
        "v_reset": sq.decode_s1615(node.v_reset).item(),
        "v_thresh": _tiled(sq.decode_s1615(node.v_thresh), size, batch),
        "i_offset": _tiled(sq.decode_s1615(node.i_offset), size, batch),
    }
    return PopulationSpec(node.name, size * batch, params, tuple(float(w) for w in node.max_summed_weight),
                          node.n_synapse_cores, _tiled(v_start, size, batch))


def _izhikevich_spec(node, batch: int) -> PopulationSpec:
    """PyNN ``Izhikevich`` on sPyNNaker: IZK_curr_exp (exponential synapses, tau_syn_E/I)."""
    size = int(np.prod(node.shape))
    parameters, initial = model_of(node).pynn_parameters(node)
    return PopulationSpec(node.name, size * batch, {k: _tiled(v, size, batch) for k, v in parameters.items()},
                          tuple(float(w) for w in node.max_summed_weight), node.n_synapse_cores,
                          _tiled(initial["v"], size, batch), "Izhikevich", {"u": _tiled(initial["u"], size, batch)})


def _refuse_on_nest(node) -> None:
    """NEST's ``izhikevich`` (PyNN ``Izhikevich`` there) has delta synapses and its own i_offset units, and
    integrates with Euler where IZK_curr_exp takes a midpoint step: no tick-for-tick NEST network exists."""
    raise UnsupportedError(node.name, "type", "IF_curr_exp populations for a NEST run of the network",
                           type(node).__name__, "NEST's izhikevich has delta synapses and an Euler step; each "
                           "IZK_curr_exp step is checked against NEST's from the same state in "
                           "tests/test_spinnaker_izhikevich.py")


def _tiled(values: np.ndarray, size: int, batch: int):
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return float(values.reshape(-1)[0])
    return np.tile(values.reshape(-1), batch)


def _connections(node: SpinnakerProjection, shift: int, factor, dt_ms: float, batch: int,
                 extra_ticks: int = 0) -> np.ndarray:
    """(pre, post, weight nA, delay ms) rows of ``batch`` copies; ``factor``: one weight factor, or one
    per post neuron (per-neuron taus for NEST)."""
    words = np.asarray(node.weight_word)
    post, pre = np.nonzero(words)
    weights = sq.word_to_weight(words[post, pre], shift) * (factor if np.ndim(factor) == 0 else factor[post])
    if node.receptor == "inhibitory":
        weights = -weights
    delays = np.broadcast_to(np.asarray(node.delay_steps), words.shape)[post, pre]
    delay_ms = (1 + extra_ticks + delays.astype(np.float64)) * dt_ms
    n_pre, n_post = words.shape[1], words.shape[0]
    blocks = [np.stack([pre + b * n_pre, post + b * n_post, weights, delay_ms], axis=1) for b in range(batch)]
    return np.concatenate(blocks) if blocks else np.zeros((0, 4))


def nest_weight_factor(node: SpinnakerPopulation):
    """w_NEST / w_chip that makes NEST's exact PSP equal the chip's, one tick later (module docstring);
    the chip's init is used as it computes it, e and d as NEST computes them from the same taus. A float,
    or an array with one factor per neuron where the taus are per neuron."""
    per_neuron = any(np.ndim(w) for w in (node.tau_m, node.tau_syn_e, node.tau_syn_i))
    size = int(np.prod(node.shape)) if per_neuron else 1
    tau_m = _per_neuron_ms(node.tau_m, size)
    const = sq.lif_constants(node.tau_m, node.cm, node.tau_refrac, node.tau_syn_e, node.tau_syn_i)
    factors = []
    for tau_word, init in ((node.tau_syn_e, const.init_exc), (node.tau_syn_i, const.init_inh)):
        tau_s = _per_neuron_ms(tau_word, size)
        e, d = _exp(-1.0 / tau_m), _exp(-1.0 / tau_s)
        factors.append(np.asarray(init) / 2.0 ** 32 * (1.0 - e) * (tau_m - tau_s) / (tau_s * (e - d)))
    if not np.allclose(factors[0], factors[1], rtol=1e-9, atol=0.0):
        raise UnsupportedError(node.name, "tau_syn_i", "equal to tau_syn_e for the NEST reference", node.tau_syn_i)
    return factors[0] if per_neuron else float(factors[0].reshape(-1)[0])


def _per_neuron_ms(word, size: int) -> np.ndarray:
    """An s16.15 word (or one per neuron) in ms as a float64 array of ``size`` values."""
    return np.broadcast_to(sq.decode_s1615(np.asarray(word, np.int64)).reshape(-1), (size,)).astype(np.float64)


def _exp(x) -> np.ndarray:
    """e^x element by element with Python's math.exp (the float the scalar reference computes)."""
    return np.vectorize(math.exp, otypes=[np.float64])(np.asarray(x, np.float64))


def nest_shift_steps(graph: Graph) -> dict[str, int]:
    """Ticks by which NEST's trace of each node lags the chip's: inputs 0, a population one more than the
    deepest of its feed-forward sources (recurrent edges - those closing a cycle - do not count). NEST
    applies an arriving spike one tick later than the chip, so each projection into a population is given
    the delay that makes every path agree (``nest_delay_ticks``)."""
    back = _recurrent_edges(graph)
    shift: dict[str, int] = {node.name: 0 for node in graph.inputs}
    pending = [n for n in graph.nodes if is_neuron_in(n, "spinnaker")]
    while pending:
        ready = [p for p in pending if all(_source_of(graph, name) in shift for name in p.inputs
                                           if (name, p.name) not in back)]
        for population in ready:
            shift[population.name] = 1 + max(shift[_source_of(graph, name)] for name in population.inputs
                                             if (name, population.name) not in back)
        pending = [p for p in pending if p.name not in shift]
        if not ready:
            raise UnsupportedError(pending[0].name, "inputs", "populations reachable from the inputs", "none")
    for view in (n for n in graph.structural_order if n.ROLE == "view"):
        shift[view.name] = shift[view.source]
    return shift


def nest_extra_delays(graph: Graph, shifts: dict[str, int]) -> dict[str, int]:
    """Per projection, the ticks NEST's delay adds to the chip's (1 + d): shift[post] - shift[source] - 1,
    so that a spike lands on the chip's tick once both traces are shifted (0 on a feed-forward layer, more on
    a skip path, -1 or less on a recurrent edge, which NEST can follow only where 1 + d + extra >= 1 for
    every synapse: its delays are >= 1 tick; ``nest_replays`` names the others)."""
    return {name: shifts[post.name] - shifts[_source_of(graph, name)] - 1
            for post in (n for n in graph.nodes if is_neuron_in(n, "spinnaker")) for name in post.inputs}


def nest_replays(graph: Graph, shifts: dict[str, int]) -> dict[str, int]:
    """Recurrent projections NEST cannot follow in a closed loop (a synapse whose NEST delay
    1 + d + extra would be < 1 tick), each with the ticks ``k`` = -(min d + extra) by which its replayed
    source plays the emulator's spikes early (its NEST delays grow by ``k``: the smallest becomes 1 tick).
    k <= shift[source], so a replayed spike of tick n >= 0 is played at input tick n + shift[source] - k >= 0."""
    early = {}
    for name, extra in nest_extra_delays(graph, shifts).items():
        low = int(np.min(graph.node(name).delay_steps))
        if 1 + low + extra < 1:
            early[name] = -(low + extra)
    return early


def replay_label(projection: str) -> str:
    """The PyNN label of the spike source that replays ``projection``'s source population on NEST."""
    return f"{projection}.replay"


def refuse_closed_loop(graph: Graph, early: dict[str, int]) -> None:
    """``UnsupportedError`` naming the first projection of ``nest_replays`` (a NEST run without the
    emulator's spikes to replay)."""
    if early:
        name = next(iter(early))
        low = int(np.min(graph.node(name).delay_steps))
        raise UnsupportedError(name, "delay_steps", ">= 1 on a recurrent projection for a closed-loop NEST run "
                               "(NEST applies a spike one tick later than the chip; verify replays the emulator's "
                               f"spikes of '{_source_of(graph, name)}' instead)", low)


def _source_of(graph: Graph, projection: str) -> str:
    return graph.producer(graph.node(projection).source).name


def _recurrent_edges(graph: Graph) -> set[tuple[str, str]]:
    """(projection, population) edges that close a cycle: found by a depth-first walk from the inputs
    along projections, an edge back into a population still on the walk's stack."""
    consumers: dict[str, list[tuple[str, str]]] = {}
    for population in (n for n in graph.nodes if is_neuron_in(n, "spinnaker")):
        for name in population.inputs:
            consumers.setdefault(_source_of(graph, name), []).append((name, population.name))
    back, done, stack = set(), set(), []

    def walk(node: str) -> None:
        stack.append(node)
        for projection, population in consumers.get(node, []):
            if population in stack:
                back.add((projection, population))
            elif population not in done:
                walk(population)
        stack.pop()
        done.add(node)
    for source in graph.inputs:
        walk(source.name)
    return back
