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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.backends.registry import EMULATE
from snnc.compiler.placement import Placement
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


def activity(graph: Graph, counts: Counts, target: str, placement: Placement | None) -> dict:
    """JSON-able activity report (per sample unless stated)."""
    n, steps = counts.samples, counts.sample_steps / counts.samples
    layers = {}
    for node in graph.nodes:
        if node.name in counts.events:
            size = counts.events[node.name].size
            spikes = float(counts.events[node.name].sum())
            layers[node.name] = {"neurons": int(size), "spikes_per_sample": spikes / n,
                                 "spikes_per_step": spikes / (n * steps),
                                 "rate_per_neuron_per_step": spikes / (n * steps * size),
                                 "spikes_per_step_profile": (counts.profile[node.name] / n).tolist()}
    syn = synops(graph, counts)
    updates = sum(int(np.prod(g.shape)) for g in graph.nodes if isinstance(g, NEURONS))
    totals = {"synops_per_sample": sum(s["synops"] for s in syn.values()) / n,
              "neuron_updates_per_sample": float(updates * steps),
              "spikes_per_sample": sum(layers[p]["spikes_per_sample"] for p in layers
                                       if not isinstance(graph.node(p), Input))}
    report = {"samples": n, "steps_run": counts.steps_run, "mean_steps_run": steps, "layers": layers,
              "synapses": {k: {"synops_per_sample": v["synops"] / n, "computed_once": v["static"]}
                           for k, v in syn.items()},
              "totals": totals}
    if placement is not None:
        rates = {k: v / (n * steps) for k, v in counts.events.items()}
        report["messages_per_step"] = placement.messages_per_step(rates)
    if counts.labelled:
        report["accuracy"] = counts.correct / counts.labelled
    if target in ENERGY:
        report["energy_estimate"] = energy_estimate(report, ENERGY[target])
    return report


def energy_estimate(report: dict, model) -> dict:
    totals, steps = report["totals"], report["mean_steps_run"]
    messages = report.get("messages_per_step", {})
    parts = {"synops_j": totals["synops_per_sample"] * model.synop_j,
             "neuron_updates_j": totals["neuron_updates_per_sample"] * model.neuron_update_j,
             "messages_intra_core_j": messages.get("intra_core", 0.0) * steps * model.message_intra_core_j,
             "messages_inter_core_j": (messages.get("inter_core", 0.0) + messages.get("from_host", 0.0))
             * steps * model.message_inter_core_j}
    return {"label": ESTIMATE_LABEL, "source": model.source,
            "constants_j": {"synop": model.synop_j, "neuron_update": model.neuron_update_j,
                            "message_intra_core": model.message_intra_core_j,
                            "message_inter_core": model.message_inter_core_j},
            "per_sample_j": {**parts, "total_j": sum(parts.values())}}


def format_activity(report: dict) -> str:
    """Human-readable table of an activity report."""
    lines = [f"activity over {report['samples']} sample(s) x {report['steps_run']} steps (emulator)"
             + (f"; accuracy {report['accuracy']:.4f}" if "accuracy" in report else "")]
    if "policy_mean_steps" in report:
        lines.append(f"compressed policy: early exit after {report['policy_mean_steps']:.2f} steps on average "
                     f"(+ pipeline latency: {report['mean_steps_run']:.2f} steps run; nothing counted after)")
    lines.append(f"{'layer':<22}{'neurons':>8}{'spikes/sample':>15}{'spikes/step':>13}{'rate/neuron/step':>18}")
    for name, layer in report["layers"].items():
        lines.append(f"{name:<22}{layer['neurons']:>8}{layer['spikes_per_sample']:>15.1f}"
                     f"{layer['spikes_per_step']:>13.2f}{layer['rate_per_neuron_per_step']:>18.4f}")
    lines.append(f"{'synapse':<22}{'SynOps/sample':>23}")
    for name, syn in report["synapses"].items():
        once = "  (static input: computed once)" if syn["computed_once"] else ""
        lines.append(f"{name:<22}{syn['synops_per_sample']:>23.1f}{once}")
    totals = report["totals"]
    lines.append(f"total SynOps/sample {totals['synops_per_sample']:.1f}; neuron updates/sample "
                 f"{totals['neuron_updates_per_sample']:.0f}; "
                 f"spikes/sample {totals['spikes_per_sample']:.1f}")
    if "messages_per_step" in report:
        m = report["messages_per_step"]
        lines.append(f"messages/step: inter-core {m['inter_core']:.2f}, intra-core {m['intra_core']:.2f}, "
                     f"from host {m['from_host']:.2f}")
    if "energy_estimate" in report:
        e = report["energy_estimate"]
        parts = ", ".join(f"{k[:-2]} {v * 1e9:.3f} nJ" for k, v in e["per_sample_j"].items()
                          if k != "total_j")
        lines.append(f"energy per sample: {e['per_sample_j']['total_j'] * 1e9:.3f} nJ ({parts})")
        lines.append(f"  {e['label']}; constants: {e['source']}")
    return "\n".join(lines)


def write_plots(graph: Graph, x: np.ndarray, report: dict, folder: Path, emulate=run_loihi) -> list[Path]:
    """raster.png (every producer's spikes for the first sample) and rates.png (per-layer spikes per
    neuron per step); returns the paths written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    folder.mkdir(parents=True, exist_ok=True)
    pad = max(graph.latency.values(), default=0)
    sample = np.concatenate([x[:1], np.zeros((1, pad, *x.shape[2:]), x.dtype)], axis=1)
    traces = emulate(graph, sample, record_state=False)
    names = [n for n in report["layers"] if n in traces.spikes]
    fig, ax = plt.subplots(figsize=(10, 6))
    offset = 0
    for name in names:
        flat = traces.spikes[name][0].reshape(traces.spikes[name].shape[1], -1)
        t, neuron = np.nonzero(flat)
        ax.scatter(t, neuron + offset, s=2, label=name)
        offset += flat.shape[1]
        ax.axhline(offset - 0.5, color="grey", linewidth=0.5)
    ax.set(xlabel="step", ylabel="neuron (layers stacked)", title=f"{graph.name}: spikes of sample 0")
    ax.legend(loc="upper right", fontsize="small", markerscale=4)
    raster = folder / "raster.png"
    fig.savefig(raster, dpi=120, bbox_inches="tight")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in names:
        layer = report["layers"][name]
        ax.plot(np.asarray(layer["spikes_per_step_profile"]) / layer["neurons"], label=name)
    ax.set(xlabel="step", ylabel="spikes per neuron per step", title="per-layer rate (mean over samples)")
    ax.legend(fontsize="small")
    rates = folder / "rates.png"
    fig.savefig(rates, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [raster, rates]


# ------------------------------------------------------------------------------------------- command

def report_text(compiled: Path, args, load_inputs) -> str:
    """What ``snnc report`` prints: the compile report, then (unless ``--no-activity``) the activity
    measured on ``--input``/``--digits`` (default: the digits test split when the model takes 64
    inputs); ``--plot DIR`` also writes raster.png and rates.png; ``--json`` prints one JSON object
    (the compile report with an "activity" key)."""
    import json
    from snnc.compiler.artifacts import LOWERED_FILE, compiled_backends, json_default, load_compiled_graph, load_report
    from snnc.compiler.formatting import format_report, mapping_lines
    report = load_report(compiled)
    backends = compiled_backends(compiled)
    graph = load_compiled_graph(compiled, LOWERED_FILE)
    notes = []
    if not args.no_activity:
        given = args.input or args.digits
        if not given and int(np.prod(graph.inputs[0].shape)) != DIGITS_INPUTS:
            notes.append(f"activity: pass --input (the default digits input has {DIGITS_INPUTS} values, "
                         f"'{graph.inputs[0].name}' takes {int(np.prod(graph.inputs[0].shape))})")
        else:
            report["activity"], x = _measured_activity(compiled, graph, report["target"], backends,
                                                       load_inputs(args), args.batch_size)
            if args.plot:
                emulate = backends.runner(EMULATE) or run_loihi
                paths = write_plots(graph, x, report["activity"], Path(args.plot), emulate)
                notes.append("plots: " + ", ".join(str(p) for p in paths))
    if args.json:
        return json.dumps(report, indent=2, default=json_default)
    parts = [format_report(report)] + mapping_lines(report)
    if "activity" in report:
        parts.append(format_activity(report["activity"]))
    return "\n".join(parts + notes)


def _measured_activity(compiled: Path, graph: Graph, target: str, backends, data, batch_size: int):
    """The activity report on ``data`` as the artifact runs: a compressed policy's steps and early exit
    (nothing counted after a sample stops; accuracy and mean steps are the policy's)."""
    from snnc.compiler.artifacts import compiled_policy
    from snnc.compiler.services import policy_input
    policy = compiled_policy(compiled)
    x = policy_input(data, graph, policy)
    counts = measure(graph, x, data.y, batch_size, exit_margin=policy["exit_margin"] if policy else None,
                     emulate=backends.runner(EMULATE) or run_loihi)
    result = activity(graph, counts, target, place_graph(graph, get_target(target)))
    if policy:
        result["policy_mean_steps"] = counts.ir_steps / counts.samples
    return result, x
