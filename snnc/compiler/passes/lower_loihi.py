"""Pass: lower a float zero-latency graph to Loihi integer nodes in hop-latency timing.

Preserves: the graph structure and node names (plus relay groups before a convolution that would need a
hop delay, which Loihi lacks: ``relay_delayed_convolutions``); spikes up to the quantization reported per
layer, with node n's output delayed by ``latency_steps[n]`` (see ``snnc.compiler.latency``). Does not preserve: float
parameters (replaced by integer formats). Overflow of u is impossible by construction
(``snnc.lowering.loihi_lowering``); weight, decay and bias rounding errors are in the report. With
``options.calibration`` (PTQ) the scales come from calibration data instead of the worst case and any
remaining wrap risk is reported per layer; ``weight_bits``/``weight_rounding`` pick the weight words.
Float sigma-delta groups send graded values, preserved up to the reported rounding in units of each
layer's ``output_scale`` (``snnc.lowering.loihi_sigma_delta``); graded values into any other group are
refused before, by the target's semantic check (``snnc.targets.graded_rules.graded_reader_violations``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.compiler.latency import hop_delays, hop_latencies, relay_delayed_convolutions
from snnc.compiler.pass_api import Condition, Pass, PassOptions, PassResult
from snnc.compression.calibration import calibrate
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, Flatten, Input, SumPool2d
from snnc.neurons import model_of
from snnc.lowering.loihi_izhikevich import lower_izhikevich
from snnc.lowering.loihi_resonator import lower_resonator
from snnc.lowering.loihi_sigma_delta import lower_sigma_delta
from snnc.lowering.loihi_lowering import (
    ROUNDINGS, SUPPORTED_SYNAPSES, LoweringChoices, lower_group, supported_neurons,
)


@dataclass(frozen=True)
class LowerLoihiOptions(PassOptions):
    """``weight_bits``: Lava ``num_weight_bits`` (8 = full words); ``weight_rounding``: "nearest" or "sbc"
    (Hessian-compensated, needs calibration); ``calibration``: input spikes (samples, steps,
    *input_shape) for PTQ (None: worst-case scaling, no data)."""

    weight_bits: int = 8
    weight_rounding: str = "nearest"
    calibration: np.ndarray | None = field(default=None, compare=False, repr=False)


def run(graph: Graph, options: LowerLoihiOptions) -> PassResult:
    """Lower each neuron group and its synapses to Loihi integer nodes in hop-latency timing; names and
    structure are preserved, spikes up to the reported quantization. A lowered graph is returned as is."""
    if graph.timing == "hop_latency":
        return PassResult(graph, False, {"note": "already lowered (e.g. a lava-dl .net import)"})
    graph, relayed = relay_delayed_convolutions(graph, (Conv2d, SumPool2d))
    latency = hop_latencies(graph)
    delays = hop_delays(graph, latency)
    calibration = _calibration(graph, options)
    lowered: dict[str, object] = {}
    reports = {}
    for node in graph.nodes:
        if node.ROLE == "neuron":
            synapses = {name: _supported_synapse(graph, name) for name in node.inputs
                        if graph.node(name).ROLE == "synapse"}     # a delta encoder reads its input directly
            _check_neuron(node)
            choices = LoweringChoices(options.weight_bits, options.weight_rounding, calibration.get(node.name))
            key = model_of(node).loihi_lowering
            context = {"graph": graph, "calibrations": calibration} if key in GRAPH_LOWERINGS else {}
            new_nodes, report = LOWERINGS[key](node, synapses, delays, options.target, latency[node.name], choices,
                                               calibrated=options.calibration is not None, **context)
            lowered.update({n.name: n for n in new_nodes})
            reports[node.name] = report.as_dict()
    nodes = [n if isinstance(n, (Input, Flatten)) else lowered[n.name] for n in graph.nodes]
    out = graph.replace_nodes(nodes, timing="hop_latency", latency_steps=tuple(sorted(latency.items())))
    details = {"layers": reports, "latency_steps": latency}
    if relayed:
        details["relayed_convolutions"] = relayed
    own = snnc_processes(out)
    if own:
        details["snnc_processes"] = own
    return PassResult(out, True, details)


def _lower_lif(node, synapses: dict, delays: dict[str, int], spec, latency: int, choices: LoweringChoices,
               calibrated: bool):
    """The scaled-threshold lowering (``snnc.lowering.loihi_lowering``); calibration arrives in ``choices``."""
    return lower_group(node, synapses, delays, spec, latency, choices)


# How each float model lowers, by its model's ``loihi_lowering``: every entry takes (neuron, synapses by
# name, delays, target spec, latency, choices, calibrated=) and returns (lowered nodes, layer report).
LOWERINGS = {"lif": _lower_lif, "izhikevich": lower_izhikevich, "resonator": lower_resonator,
             "sigma_delta": lower_sigma_delta}
# Lowerings whose scales depend on the groups upstream (a sigma-delta synapse's words are w 2^6 K_l / K_{l-1})
# also get the float graph, as ``graph=``, and every group's calibration (``calibrate``'s dict, empty
# without data), as ``calibrations=``.
GRAPH_LOWERINGS = ("sigma_delta",)


def snnc_processes(graph: Graph) -> dict[str, str]:
    """Neuron groups whose Lava process snnc ships (not stock Lava), each with what it computes: on a
    Loihi 2 chip they need a microcode neuron, unlike stock Lava processes (lava-loihi runs those)."""
    out = {}
    for node in graph.nodes:
        model = model_of(node) if node.ROLE == "neuron" else None
        process = model.lava_process(node) if hasattr(model, "lava_process") else None
        if process is not None and not process.stock:
            options = ", ".join(f"{k} {process.parameters[k]}" for k in ("reset", "comparison")
                                if k in process.parameters)
            out[node.name] = process.summary or (f"{process.name} ({options})" if options else process.name)
    return out


def _calibration(graph: Graph, options: LowerLoihiOptions) -> dict:
    """Per-group calibration statistics (PTQ) when calibration data is given; checks the choices."""
    bits = options.weight_bits
    if not 1 <= bits <= options.target.weight_bits:
        raise QuantizationError(graph.name, "weight_bits", f"1..{options.target.weight_bits}", bits)
    if options.weight_rounding not in ROUNDINGS:
        raise QuantizationError(graph.name, "weight_rounding", "|".join(ROUNDINGS), options.weight_rounding)
    if options.calibration is None:
        if options.weight_rounding == "sbc":
            raise QuantizationError(graph.name, "weight_rounding", "'nearest' without calibration data "
                                    "('sbc' needs --calib)", options.weight_rounding)
        return {}
    return calibrate(graph, options.calibration)


def _supported_synapse(graph: Graph, name: str):
    syn = graph.node(name)
    if not isinstance(syn, SUPPORTED_SYNAPSES):
        raise UnsupportedError(name, "type", "Dense, Conv2d or SumPool2d", type(syn).__name__)
    if len(graph.consumers(name)) != 1:
        raise UnsupportedError(name, "consumers", "exactly one neuron group", len(graph.consumers(name)))
    return syn


def _check_neuron(node) -> None:
    supported = supported_neurons()
    if not isinstance(node, supported):
        raise UnsupportedError(node.name, "type", " or ".join(t.__name__ for t in supported), type(node).__name__)


# A graph already in Loihi integer nodes (a lava-dl .net import) is accepted and passed through.
PASS = Pass("lower_loihi", run, LowerLoihiOptions, requires=Condition(domain=("float", "lowered-loihi")),
            ensures=Condition(timing=("hop_latency",), domain=("lowered-loihi",)))
