"""`snnc report` activity section: synaptic operations, spikes per layer per step, neuron updates,
messages between cores and an energy *estimate*, measured by running the bit-accurate emulator.

Counting rules (per sample, over every step the emulator runs: the input's steps plus the pipeline
latency, so all activity an input causes is counted):

* a synaptic operation (SynOp) is one spike (or one non-zero graded payload) delivered to one non-zero
  synapse: a spike of source neuron j through a dense synapse costs the number of non-zero weights in
  column j (a SpiNNaker projection: non-zero weight words in column j); through a convolution, the number of (output position, channel) pairs its kernel reaches
  with a non-zero weight; through a graded sum, one;
* a dense synapse fed by a static graded input (the same payload at every step, e.g. the constant
  input current of ``compress_timesteps``) is computed once per sample, so its SynOps count once;
* every neuron (LIF, partial-sum relay or SpiNNaker population) updates every step: neurons x steps;
* messages per step come from the target's placement (``place_cores``) with the measured per-neuron
  spike rates; input spikes come from the host.

Energy = SynOps x E_synop + updates x E_update + messages x E_message, with the per-event constants of
``snnc.targets.catalog.ENERGY`` (cited there). These are estimates, labelled as such everywhere.

This module measures only: ``measure`` counts events, ``activity`` returns a typed ``ActivityReport``
(``as_json`` gives report.json's "activity" object); ``snnc.compiler.formatting.format_activity`` prints
it and ``snnc.compiler.activity_plots`` draws it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from snnc.compiler.artifacts import compiled_policy, load_report
from snnc.compiler.input_files import InputData
from snnc.compiler.placement import Placement
from snnc.compiler.services import policy_input
from snnc.errors import SnncError
from snnc.ir.graph import Graph
from snnc.ir.nodes import (
    GradedInput, Input, LoihiConv, LoihiDense, LoihiGradedSum, SpinnakerProjection,
)
from snnc.neurons import models
from snnc.arith.synapse_math import conv2d_sum
from snnc.compiler.passes.place_cores import place_graph
from snnc.simulators.early_exit import decide_on_output
from snnc.simulators.loihi_emulator import run_loihi
from snnc.simulators.traces import as_input_dict
from snnc.targets.catalog import ENERGY, get_target
from snnc.targets.energy import EnergyModel
from snnc.targets.footprint import source_range

# Every lowered neuron node type (each registered model of a target arithmetic).
NEURONS = tuple(m.node_type for m in models() if m.traits.arithmetic != "float")
PRODUCERS = (Input, *NEURONS)
ESTIMATE_LABEL = "ESTIMATE from published per-event energies, not a measurement"
DIGITS_INPUTS = 64


@dataclass
class Counts:
    """Sums over all samples of one or more emulator batches."""

    samples: int = 0
    steps_run: int = 0
    sample_steps: int = 0     # steps run, summed over samples (differs from samples x steps_run on exit)
    ir_steps: int = 0         # of those, steps on the IR grid (without the pipeline latency)
    events: dict[str, np.ndarray] = field(default_factory=dict)     # producer -> per-neuron events
    profile: dict[str, np.ndarray] = field(default_factory=dict)    # producer -> events per step
    static: dict[str, bool] = field(default_factory=dict)           # graded input constant over time
    first_step: dict[str, np.ndarray] = field(default_factory=dict)  # per-neuron events at step 0
    correct: int = 0
    labelled: int = 0


def measure(graph: Graph, x: np.ndarray, y=None, batch_size: int = 64, exit_margin: int | None = None,
            emulate=run_loihi) -> Counts:
    """Run the target's emulator (``emulate(graph, x, record_state)``) on ``x`` (padded by the pipeline
    latency) and count events per producer.

    ``exit_margin``: early exit at that output lead (``snnc.simulators.early_exit``): the hardware stops a
    sample ``latency`` steps after its exit step, so nothing later is counted, and the accuracy is the
    early-exit answer's (None: every step runs, the top class at the end)."""
    if graph.timing != "hop_latency":
        raise SnncError(f"activity needs a lowered (hop_latency) graph; '{graph.name}' is {graph.timing}")
    pad = max(graph.latency.values(), default=0)
    output = graph.outputs[0]
    counts = Counts()
    for start in range(0, len(x), batch_size):
        part = x[start:start + batch_size]
        padded = np.concatenate([part, np.zeros((len(part), pad, *part.shape[2:]), part.dtype)], axis=1)
        traces = emulate(graph, padded, record_state=False)
        aligned = traces.shifted(graph.latency).spikes[output][:, :x.shape[1]]
        predictions, used = decide_on_output(aligned, exit_margin)
        _accumulate(graph, traces, counts, used + pad)
        _note_static_inputs(graph, part, counts)
        counts.ir_steps += int(used.sum())
        if y is not None:
            counts.correct += int(np.sum(predictions == np.asarray(y[start:start + batch_size])))
            counts.labelled += len(part)
    return counts


def _accumulate(graph: Graph, traces, counts: Counts, stops=None) -> None:
    batch, steps = next(iter(traces.spikes.values())).shape[:2]
    running = np.ones((batch, steps), bool) if stops is None else np.arange(steps)[None] < stops[:, None]
    for node in graph.nodes:
        if not isinstance(node, PRODUCERS) or node.name not in traces.spikes:
            continue
        train = traces.spikes[node.name]
        events = (train.reshape(batch, steps, -1) != 0) & running[:, :, None]
        counts.events[node.name] = counts.events.get(node.name, 0) + events.sum(axis=(0, 1))
        counts.profile[node.name] = counts.profile.get(node.name, 0) + events.sum(axis=(0, 2))
        counts.first_step[node.name] = counts.first_step.get(node.name, 0) + events[:, 0].sum(axis=0)
    counts.samples += batch
    counts.steps_run = steps
    counts.sample_steps += int(running.sum())


def _note_static_inputs(graph: Graph, x: np.ndarray, counts: Counts) -> None:
    """A graded input is static when every sample holds one value over all its (unpadded) steps."""
    inputs = as_input_dict(graph, x)
    for node in graph.inputs:
        if isinstance(node, GradedInput):
            flat = inputs[node.name].reshape(x.shape[0], x.shape[1], -1)
            constant = bool(np.all(flat == flat[:, :1]))
            counts.static[node.name] = counts.static.get(node.name, True) and constant


def synops(graph: Graph, counts: Counts) -> dict[str, dict]:
    """SynOps per synapse (totals over all samples) and whether it was counted once (static input)."""
    out = {}
    for node in graph.nodes:
        if isinstance(node, LoihiGradedSum):
            total = sum(float(counts.events[s].sum()) for s in node.sources)
            out[node.name] = {"synops": total, "static": False}
        elif isinstance(node, (LoihiDense, LoihiConv, SpinnakerProjection)):
            producer, start, stop = source_range(graph, node.source)
            static = counts.static.get(producer, False)
            per_neuron = (counts.first_step if static else counts.events)[producer][start:stop]
            out[node.name] = {"synops": _synops(node, per_neuron), "static": static}
    return out


def _synops(node, per_neuron: np.ndarray) -> float:
    if isinstance(node, (LoihiDense, SpinnakerProjection)):
        words = node.weight_mant if isinstance(node, LoihiDense) else node.weight_word
        fanout = np.count_nonzero(np.asarray(words), axis=0)
        return float(np.dot(per_neuron.astype(np.float64), fanout))
    mask = (np.asarray(node.weight_mant) != 0).astype(np.float64)
    reach = conv2d_sum(per_neuron.reshape(1, *node.in_shape).astype(np.float64), mask, node.in_shape,
                       node.stride, node.padding, node.groups)
    return float(reach.sum())


@dataclass(frozen=True)
class LayerActivity:
    """Spikes of one producer (input or neuron group), per sample over the steps run: the mean per step
    and per neuron per step, and the mean spikes at each step (``spikes_per_step_profile``)."""

    neurons: int
    spikes_per_sample: float
    spikes_per_step: float
    rate_per_neuron_per_step: float
    spikes_per_step_profile: tuple[float, ...]


@dataclass(frozen=True)
class SynapseActivity:
    """SynOps of one synapse per sample; ``computed_once``: fed by a static input, counted at one step."""

    synops_per_sample: float
    computed_once: bool


@dataclass(frozen=True)
class ActivityTotals:
    """Per-sample totals: SynOps, neuron updates (neurons x steps run) and spikes of every neuron group."""

    synops_per_sample: float
    neuron_updates_per_sample: float
    spikes_per_sample: float


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy per sample in joules, an estimate from the target's published per-event ``model``
    (``snnc.targets.energy.EnergyModel``): SynOps, neuron updates, intra- and inter-core messages."""

    model: EnergyModel
    synops_j: float
    neuron_updates_j: float
    messages_intra_core_j: float
    messages_inter_core_j: float
    label: str = ESTIMATE_LABEL

    @property
    def parts_j(self) -> dict[str, float]:
        """The per-sample parts in joules, by name (``synops_j`` ... ``messages_inter_core_j``)."""
        return {"synops_j": self.synops_j, "neuron_updates_j": self.neuron_updates_j,
                "messages_intra_core_j": self.messages_intra_core_j,
                "messages_inter_core_j": self.messages_inter_core_j}

    @property
    def total_j(self) -> float:
        """The sum of the parts, joules per sample."""
        return sum(self.parts_j.values())

    def as_json(self) -> dict:
        """The ``energy_estimate`` object of report.json."""
        model = self.model
        return {"label": self.label, "source": model.source,
                "constants_j": {"synop": model.synop_j, "neuron_update": model.neuron_update_j,
                                "message_intra_core": model.message_intra_core_j,
                                "message_inter_core": model.message_inter_core_j},
                "per_sample_j": {**self.parts_j, "total_j": self.total_j}}


@dataclass(frozen=True)
class ActivityReport:
    """What an emulator run measured (per sample unless stated): ``samples``, the steps run
    (``steps_run``; ``mean_steps_run`` differs with early exit), per-layer spikes, per-synapse SynOps,
    totals; when known the messages per step by kind (placement), the accuracy, the energy estimate and
    the compressed policy's mean steps before exit."""

    samples: int
    steps_run: int
    mean_steps_run: float
    layers: dict[str, LayerActivity]
    synapses: dict[str, SynapseActivity]
    totals: ActivityTotals
    messages_per_step: dict[str, float] | None = None
    accuracy: float | None = None
    energy_estimate: EnergyEstimate | None = None
    policy_mean_steps: float | None = None

    def as_json(self) -> dict:
        """The ``activity`` object of ``snnc report --json`` (optional keys only when known)."""
        out = {"samples": self.samples, "steps_run": self.steps_run, "mean_steps_run": self.mean_steps_run,
               "layers": {k: {**asdict(v), "spikes_per_step_profile": list(v.spikes_per_step_profile)}
                          for k, v in self.layers.items()},
               "synapses": {k: asdict(v) for k, v in self.synapses.items()},
               "totals": asdict(self.totals)}
        optional = {"messages_per_step": self.messages_per_step, "accuracy": self.accuracy,
                    "energy_estimate": None if self.energy_estimate is None else self.energy_estimate.as_json(),
                    "policy_mean_steps": self.policy_mean_steps}
        return out | {k: v for k, v in optional.items() if v is not None}


def activity(graph: Graph, counts: Counts, target: str, placement: Placement | None) -> ActivityReport:
    """The activity report of ``counts`` measured on ``graph`` (per sample unless stated); messages only
    with a ``placement``, the energy estimate when the target has an energy model."""
    n, steps = counts.samples, counts.sample_steps / counts.samples
    layers = {node.name: _layer_activity(counts, node.name, n, steps) for node in graph.nodes
              if node.name in counts.events}
    syn = synops(graph, counts)
    updates = sum(int(np.prod(g.shape)) for g in graph.nodes if isinstance(g, NEURONS))
    totals = ActivityTotals(sum(s["synops"] for s in syn.values()) / n, float(updates * steps),
                            sum(layers[p].spikes_per_sample for p in layers if not isinstance(graph.node(p), Input)))
    messages = None
    if placement is not None:
        messages = placement.messages_per_step({k: v / (n * steps) for k, v in counts.events.items()})
    return ActivityReport(
        n, counts.steps_run, steps, layers,
        {k: SynapseActivity(v["synops"] / n, v["static"]) for k, v in syn.items()}, totals, messages,
        counts.correct / counts.labelled if counts.labelled else None,
        energy_estimate(totals, steps, messages or {}, ENERGY[target]) if target in ENERGY else None)


def _layer_activity(counts: Counts, name: str, n: int, steps: float) -> LayerActivity:
    """Spike statistics of one producer over ``n`` samples of ``steps`` steps on average."""
    size = counts.events[name].size
    spikes = float(counts.events[name].sum())
    return LayerActivity(int(size), spikes / n, spikes / (n * steps), spikes / (n * steps * size),
                         tuple((counts.profile[name] / n).tolist()))


def energy_estimate(totals: ActivityTotals, steps: float, messages: dict[str, float],
                    model: EnergyModel) -> EnergyEstimate:
    """Energy per sample: SynOps x E_synop + updates x E_update + messages per step x steps x E_message
    (messages from the host count as inter-core)."""
    return EnergyEstimate(
        model, totals.synops_per_sample * model.synop_j,
        totals.neuron_updates_per_sample * model.neuron_update_j,
        messages.get("intra_core", 0.0) * steps * model.message_intra_core_j,
        (messages.get("inter_core", 0.0) + messages.get("from_host", 0.0)) * steps * model.message_inter_core_j)


def measure_compiled(compiled: Path, graph: Graph, data: InputData, batch_size: int,
                     emulate=run_loihi) -> tuple[ActivityReport, np.ndarray]:
    """The activity report of ``graph`` (the lowered graph of ``compiled``) on ``data`` as the artifact
    runs: a compressed policy's steps and early exit (nothing counted after a sample stops; accuracy and
    mean steps are the policy's); also the inputs it ran."""
    policy = compiled_policy(compiled)
    x = policy_input(data, graph, policy)
    counts = measure(graph, x, data.y, batch_size, exit_margin=policy["exit_margin"] if policy else None,
                     emulate=emulate)
    target = load_report(compiled)["target"]
    result = activity(graph, counts, target, place_graph(graph, get_target(target)))
    if policy:
        result = replace(result, policy_mean_steps=counts.ir_steps / counts.samples)
    return result, x
