"""Pass: timestep compression, calibrated on data (off unless ``options.timestep_compression`` is set).

Three levers, searched jointly on calibration data with the bit-accurate emulator:

1. Static inputs as a constant input current: an input that is a static value rate-coded with full
   scale ``levels`` (a power of two; rate = value / levels) becomes a ``GradedInput`` holding the value
   at every step, and each dense synapse reading it takes ``weight_exp - log2(levels)``: it delivers
   ``shift(W @ value, e - log2(levels))``, the rate code's mean current, every step without the code's
   quantization noise. Its SynOps count once per sample (``snnc report``): the first layer is computed
   once and held.
2. Recalibrated neuron state: every spiking group starts its first input step at ``alpha * threshold``
   (the initial voltage is solved back through the pipeline warm-up, ``snnc.quantize.warmup``) and
   ``vth`` may be scaled by ``beta``.
3. Truncation to ``steps <= config.steps`` and early exit at a top-1 minus top-2 output-count lead of
   ``margin`` (``snnc.simulators.early_exit``).

Among all (static?, alpha, beta, steps, margin) whose accuracy drop against the original graph at full
length stays within ``epsilon`` *with confidence* — the one-sided upper bound
``(bad - good + z * sqrt(bad + good)) / N``, where bad/good count calibration samples the candidate gets
wrong/right that the original gets right/wrong (McNemar's discordant pairs, normal approximation) —
the one with the fewest mean steps wins (then higher accuracy, then the simpler graph). The bound
matters: calibration data is often the training data, on which a network is more confident than on
new inputs, and a search over many policies otherwise picks one that merely fits the calibration set.
Preserves: with no feasible improvement, the graph unchanged.
Changes otherwise: the input node kind (static), ``v_init`` and ``vth`` of spiking groups, and the
run-time policy (``steps``, ``exit_margin`` in the report, which ``snnc.simulators.early_exit`` applies).
The result is an ordinary lowered graph: emulator and Lava still agree bit for bit.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snnc.compiler.pass_api import PassOptions, PassResult
from snnc.errors import QuantizationError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput, LoihiDense, LoihiLIF
from snnc.quantize import loihi as lq
from snnc.quantize.warmup import voltage_before
from snnc.simulators.early_exit import cumulative_output_counts, decide


@dataclass(frozen=True)
class CompressionConfig:
    """Calibration data and search grid for ``compress_timesteps``.

    ``values``: (N, *input_shape) static input values (e.g. pixels 0..levels); ``labels``: (N,) classes;
    ``encode(values, steps)``: the (N, steps, *shape) 0/1 code the model was trained with; ``steps``:
    the uncompressed length; ``epsilon``: accuracy budget as a fraction (0.005 = 0.5 percentage points);
    ``levels``: the code's full scale (None: no static-input variant).
    """

    values: np.ndarray = field(compare=False, repr=False)
    labels: np.ndarray = field(compare=False, repr=False)
    encode: Callable = field(compare=False, repr=False)
    steps: int = 20
    epsilon: float = 0.005
    levels: int | None = None
    v_init_fractions: tuple[float, ...] = (0.0, 0.25, 0.5)
    threshold_scales: tuple[float, ...] = (1.0, 0.9)
    margins: tuple[int, ...] = tuple(range(1, 9))
    confidence_z: float = 1.645   # one-sided 95%


@dataclass(frozen=True)
class Variant:
    static: bool
    alpha: float
    beta: float

    @property
    def simplicity(self) -> tuple:
        return (self.static, self.alpha != 0, self.beta != 1.0)


ORIGINAL = Variant(False, 0.0, 1.0)


def run(graph: Graph, options: PassOptions) -> PassResult:
    config = options.timestep_compression
    if config is None or graph.timing != "hop_latency":
        return PassResult(graph, False)
    choices, skipped = _evaluate_variants(graph, config, options.target)
    reference = choices[ORIGINAL][1]
    best = _best_policy(choices, config, decide(choices[ORIGINAL][2], config.steps, None)[0])
    variant, policy = best
    graph_out = choices[variant][0]
    report = {"reference": {"steps": config.steps, "accuracy": reference, "latency": _latency(graph)},
              "chosen": {"static_input": variant.static, "v_init_fraction": variant.alpha,
                         "threshold_scale": variant.beta, **policy,
                         "mean_hardware_steps": policy["mean_steps"] + _latency(graph_out)},
              "epsilon": config.epsilon, "skipped_variants": skipped}
    changed = variant != ORIGINAL
    return PassResult(graph_out if changed else graph, changed, report)


def _evaluate_variants(graph: Graph, config: CompressionConfig, spec):
    """Every variant's graph and cumulative output counts on the calibration data."""
    statics = (False, True) if config.levels else (False,)
    choices, skipped = {}, {}
    grid = itertools.product(statics, config.v_init_fractions, config.threshold_scales)
    variants = dict.fromkeys([ORIGINAL, *(Variant(s, float(a), float(b)) for s, a, b in grid)])
    for variant in variants:
        try:
            candidate = variant_graph(graph, variant, config.levels, spec)
        except (QuantizationError, UnsupportedError) as exc:
            skipped[str(variant)] = str(exc)
            continue
        x = _inputs(config, variant.static, config.steps)
        counts = cumulative_output_counts(candidate, x)
        accuracy = float(np.mean(decide(counts, config.steps, None)[0] == config.labels))
        choices[variant] = (candidate, accuracy, counts)
    return choices, skipped


def _best_policy(choices: dict, config: CompressionConfig, reference_predictions: np.ndarray):
    """Fewest mean steps among policies whose confident accuracy drop is within the budget, then
    higher accuracy, then the simpler variant (the original at full length always qualifies)."""
    labels = np.asarray(config.labels)
    reference_ok = reference_predictions == labels
    best, best_key = None, None
    for variant, (_graph, _acc, counts) in choices.items():
        for steps, margin in itertools.product(range(1, config.steps + 1), (None, *config.margins)):
            predictions, used = decide(counts, steps, margin)
            ok = predictions == labels
            bad, good = int(np.sum(reference_ok & ~ok)), int(np.sum(~reference_ok & ok))
            bound = (bad - good + config.confidence_z * math.sqrt(bad + good)) / len(labels)
            if bound > config.epsilon + 1e-12:
                continue
            accuracy = float(np.mean(ok))
            key = (float(used.mean()), -accuracy, variant.simplicity, steps)
            if best_key is None or key < best_key:
                best_key = key
                best = (variant, {"steps": steps, "exit_margin": margin, "accuracy": accuracy,
                                  "mean_steps": float(used.mean()), "worse": bad, "better": good,
                                  "drop_upper_bound": bound})
    return best


def _inputs(config: CompressionConfig, static: bool, steps: int) -> np.ndarray:
    if static:
        return np.repeat(np.asarray(config.values)[:, None], steps, axis=1)
    return config.encode(config.values, steps)


def _latency(graph: Graph) -> int:
    return max(graph.latency.values(), default=0)


# ------------------------------------------------------------------------------------------ variants

def variant_graph(graph: Graph, variant: Variant, levels: int | None, spec) -> Graph:
    """The graph with the variant's input kind, thresholds and initial voltages."""
    out = static_input_graph(graph, levels, spec) if variant.static else graph
    if variant.alpha == 0.0 and variant.beta == 1.0:
        return out
    nodes = [_recalibrated(n, variant, out.latency.get(n.name, 0)) if isinstance(n, LoihiLIF) and n.spiking
             else n for n in out.nodes]
    return out.replace_nodes(nodes)


def _recalibrated(node: LoihiLIF, variant: Variant, latency: int) -> LoihiLIF:
    vth = min(max(1, int(round(node.vth * variant.beta))), lq.VTH_MAX)
    node = dataclasses.replace(node, vth=vth)
    if variant.alpha == 0.0:
        return node
    target = int(math.floor(variant.alpha * (vth << lq.THRESHOLD_SHIFT)))
    v_init = voltage_before(node, target, latency, "timestep compression's initial voltage")
    return dataclasses.replace(node, v_init=v_init)


def static_input_graph(graph: Graph, levels: int, spec) -> Graph:
    """Each binary input read only by dense synapses becomes a ``GradedInput`` of the static value;
    the synapses' exponents drop by log2(levels) so they deliver the rate code's mean current."""
    shift = int(levels).bit_length() - 1
    if levels <= 0 or (1 << shift) != levels:
        raise UnsupportedError(graph.name, "levels", "a power of two (the exponent shifts exactly)", levels)
    replaced = {}
    for node in graph.inputs:
        readers = graph.consumers(node.name)
        if isinstance(node, GradedInput) or not all(isinstance(r, LoihiDense) for r in readers):
            continue
        replaced[node.name] = GradedInput(node.name, tuple(node.shape), bits=int(levels).bit_length() + 1)
        for reader in readers:
            exp = reader.weight_exp - shift
            low = spec.weight_exp_range[0]
            if exp < low:
                raise QuantizationError(reader.name, "weight_exp", f">= {low}", exp,
                                        "the static input current needs a smaller exponent")
            replaced[reader.name] = dataclasses.replace(reader, weight_exp=exp)
    if not replaced:
        raise UnsupportedError(graph.name, "inputs", "an Input read only by dense synapses", "none")
    return graph.replace_nodes([replaced.get(n.name, n) for n in graph.nodes])
