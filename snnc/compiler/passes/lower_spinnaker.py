"""Pass: lower a float zero-latency graph to sPyNNaker IF_curr_exp populations and projections.

Time: one model step becomes one sPyNNaker tick (``time_mapping``), so a step-based model (snnTorch,
SpikingJelly, their NIR exports at dt = 1e-4 s) keeps its per-step decays exactly.

Preserves: node names of inputs, flattens and neuron groups (each synapse becomes ``<name>_exc`` and/or
``<name>_inh`` projections, split by weight sign: a negative weight always lands on the inhibitory
receptor); spikes up to the per-layer quantization in the report, with node n's output delayed by
``latency_steps[n]`` (every SpiNNaker synapse takes at least one tick, like Lava's, so the alignment of
``snnc.compiler.latency`` applies unchanged). Does not preserve float parameters (replaced by s16.15 and
16-bit weight words; see ``snnc.lowering.spinnaker_lowering``).
"""
from __future__ import annotations

from snnc.compiler.latency import hop_delays, hop_latencies
from snnc.compiler.pass_api import FLOAT, Condition, Pass, PassOptions, PassResult
from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Flatten, Input
from snnc.lowering.spinnaker_izhikevich import lower_izhikevich
from snnc.lowering.spinnaker_lowering import lower_population, with_warmup
from snnc.neurons import float_models_lowering_to, model_of


def run(graph: Graph, options: PassOptions) -> PassResult:
    """Lower each spiking float neuron group to a population and its synapses to sign-split projections in hop-latency
    timing; input, flatten and group names are preserved, spikes up to the reported quantization."""
    latency = hop_latencies(graph)
    delays = hop_delays(graph, latency)
    lowered: dict[str, list] = {}
    reports = {}
    for node in graph.nodes:
        if node.ROLE != "neuron":
            continue
        lowerable = float_models_lowering_to("spinnaker")
        if model_of(node) not in lowerable:
            raise UnsupportedError(node.name, "type", " or ".join(m.name for m in lowerable), type(node).__name__)
        synapses = {name: _single_consumer_synapse(graph, name) for name in node.inputs}
        shapes = {syn.source: graph.shapes[syn.source] for syn in synapses.values()}
        if model_of(node).spinnaker_cell == "IZK_curr_exp":
            new_nodes, report = lower_izhikevich(node, synapses, delays, shapes)
        else:
            new_nodes, report = lower_population(node, synapses, delays, shapes)
            new_nodes = [with_warmup(n, latency[node.name], options.target.startup_ticks) if n.name == node.name
                         else n for n in new_nodes]
        lowered[node.name] = new_nodes
        reports[node.name] = report.as_dict()
    nodes = []
    for node in graph.nodes:
        if isinstance(node, (Input, Flatten)):
            nodes.append(node)
        elif node.name in lowered:
            nodes += lowered[node.name]
    out = graph.replace_nodes(nodes, timing="hop_latency", latency_steps=tuple(sorted(latency.items())))
    return PassResult(out, True, {"layers": reports, "latency_steps": latency,
                                  "time_mapping": time_mapping(graph.dt_s, options.target.tick_s)})


def time_mapping(model_dt_s: float, tick_s: float) -> dict:
    """One model step runs as one tick: the float IR's decays are per step, so they are kept exactly
    whatever ``dt_s`` the model names; only wall-clock time scales (by ``tick_s / model_dt_s``)."""
    return {"model_dt_s": model_dt_s, "tick_s": tick_s, "ticks_per_step": 1, "time_scale": tick_s / model_dt_s}


def _single_consumer_synapse(graph: Graph, name: str):
    if len(graph.consumers(name)) != 1:
        raise UnsupportedError(name, "consumers", "exactly one neuron group", len(graph.consumers(name)))
    return graph.node(name)


PASS = Pass("lower_spinnaker", run, requires=FLOAT,
            ensures=Condition(timing=("hop_latency",), domain=("lowered-spinnaker",)))
