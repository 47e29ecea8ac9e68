"""Pass: timestep compression, calibrated on data (off unless ``options.timestep_compression`` is set).

Three levers, searched jointly on calibration data with the bit-accurate emulator:

1. Static inputs as a constant input current: an input that is a static value rate-coded with full
   scale ``levels`` (a power of two; rate = value / levels) becomes a ``GradedInput`` holding the value
   at every step, and each dense synapse reading it takes ``weight_exp - log2(levels)``: it delivers
   ``shift(W @ value, e - log2(levels))``, the rate code's mean current, every step without the code's
   quantization noise. Its SynOps count once per sample (``snnc report``): the first layer is computed
   once and held.
2. Recalibrated neuron state: every spiking group starts its first input step at ``alpha * threshold``
   (the initial voltage is solved back through the pipeline warm-up, ``snnc.lowering.warmup``) and
   ``vth`` may be scaled by ``beta``.
3. Truncation to ``steps <= config.steps`` and early exit at a top-1 minus top-2 output-count lead of
   ``margin`` (``snnc.simulators.early_exit``).

A policy is (static?, alpha, beta, steps, margin). Its drop against the original graph at full length
is judged *with confidence*: the one-sided upper bound ``(bad - good + z * sqrt(bad + good)) / N``,
where bad/good count samples the policy gets wrong/right that the original gets right/wrong
(McNemar's discordant pairs, normal approximation). The calibration samples are split into two
interleaved halves: the even positions choose, the odd positions check. Policies whose bound on the
choosing half is within ``epsilon`` are ranked by fewest mean steps (then higher accuracy, then the
simpler graph); the first in that ranking whose bound on the checking half, samples the search never
saw, is also within ``epsilon`` wins (falling back down the ranking towards safer policies; the
original at full length always qualifies). A search over thousands of policies otherwise picks one
that merely fits its own samples.

The default ``epsilon`` is 0 (no confidently measurable drop on the calibration data), because
calibration data is usually the training data, on which a network is far more confident than on new
inputs: on the digits example (``benchmarks/timestep_compression.py --splits 12``, calibrated on the
training split, scored on the held-out split), ``epsilon = 0.005`` lost 0.56 pp held-out without the
check and still in 9 of 12 random choose/check splits with it, while ``epsilon = 0`` lost 0.28 pp
(1 of 360 samples) in all 12 at 5.25x fewer steps.
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

from snnc.arith import loihi as lq
from snnc.compiler.pass_api import Condition, Pass, PassOptions, PassResult
from snnc.compression.calibration import check_calibration
from snnc.errors import QuantizationError, SnncError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput, LoihiDense
from snnc.neurons import model_of
from snnc.lowering.warmup import voltage_before
from snnc.simulators.early_exit import cumulative_output_counts, decide


@dataclass(frozen=True)
class CompressionConfig:
    """Calibration data and search grid for ``compress_timesteps``.

    ``labels``: (N,) classes, N >= 2 (half choose, half check). The binary code the model was trained
    with is ``spikes`` (N, >= steps, *input_shape) 0/1, or ``encode(values, steps)`` when ``spikes`` is
    None. ``values``: (N, *input_shape) static input values (e.g. pixels 0..levels); ``levels``: the
    code's full scale (None: no static-input variant; needs ``values``). ``steps``: the uncompressed
    length; ``epsilon``: accuracy budget as a fraction (0.005 = 0.5 percentage points; default 0, see
    the module docstring for why).
    """

    labels: np.ndarray = field(compare=False, repr=False)
    values: np.ndarray | None = field(default=None, compare=False, repr=False)
    encode: Callable | None = field(default=None, compare=False, repr=False)
    spikes: np.ndarray | None = field(default=None, compare=False, repr=False)
    steps: int = 20
    epsilon: float = 0.0
    levels: int | None = None
    v_init_fractions: tuple[float, ...] = (0.0, 0.25, 0.5)
    threshold_scales: tuple[float, ...] = (1.0, 0.9)
    margins: tuple[int, ...] = tuple(range(1, 9))
    confidence_z: float = 1.645   # one-sided 95%


@dataclass(frozen=True)
class Variant:
    """One graph of the search: static input current or not, initial voltage fraction ``alpha`` of the
    threshold, threshold scale ``beta``."""

    static: bool
    alpha: float
    beta: float

    @property
    def simplicity(self) -> tuple:
        """Ranking tie-break: a variant that pulls fewer levers sorts first."""
        return (self.static, self.alpha != 0, self.beta != 1.0)


@dataclass(frozen=True)
class Policy:
    """A variant run for at most ``steps`` steps, exiting early at an output lead of ``margin`` (None: never)."""

    variant: Variant
    steps: int
    margin: int | None


ORIGINAL = Variant(False, 0.0, 1.0)


@dataclass(frozen=True)
class CompressTimestepsOptions(PassOptions):
    """``timestep_compression``: calibration data and search grid (`snnc compile --compress-timesteps`);
    None (the default) leaves the timesteps and the graph unchanged."""

    timestep_compression: CompressionConfig | None = field(default=None, compare=False, repr=False)


def run(graph: Graph, options: CompressTimestepsOptions) -> PassResult:
    """Search the policies on the calibration data (module docstring) and return the winner's graph.

    Preserves structure and node names; returns ``graph`` itself (changed=False) when compression is off,
    the graph is not lowered yet, or the original variant wins. The report carries the run-time policy."""
    config = options.timestep_compression
    if config is None or graph.timing != "hop_latency":
        return PassResult(graph, False)
    check_config(graph, config)
    choices, skipped = _evaluate_variants(graph, config, options.target)
    labels = np.asarray(config.labels)
    reference_ok = decide(choices[ORIGINAL][2], config.steps, None)[0] == labels
    policy, selection, validation, rejected = choose_policy(choices, config, reference_ok)
    overall = _outcome(choices[policy.variant][2], labels, reference_ok, policy, np.arange(len(labels)),
                       config.confidence_z)
    graph_out = choices[policy.variant][0]
    report = {"reference": {"steps": config.steps, "accuracy": choices[ORIGINAL][1], "latency": _latency(graph)},
              "chosen": {"static_input": policy.variant.static, "v_init_fraction": policy.variant.alpha,
                         "threshold_scale": policy.variant.beta, "steps": policy.steps,
                         "exit_margin": policy.margin, **overall,
                         "mean_hardware_steps": overall["mean_steps"] + _latency(graph_out)},
              "selection": selection, "validation": validation, "rejected_by_validation": rejected,
              "epsilon": config.epsilon, "skipped_variants": skipped}
    changed = policy.variant != ORIGINAL
    return PassResult(graph_out if changed else graph, changed, report)


def check_config(graph: Graph, config: CompressionConfig) -> None:
    """A typed error for calibration data the search cannot use (names the field, limit and value)."""
    labels = np.asarray(config.labels)
    samples = len(labels)
    if samples < 2:
        raise _data_error("labels", "at least 2 samples (half choose a policy, half check it)", samples)
    classes = int(np.prod(graph.shapes[graph.outputs[0]]))
    if labels.ndim != 1 or labels.dtype.kind not in "iuf" or np.any(labels != np.round(labels)) \
            or labels.min() < 0 or labels.max() >= classes:
        shown = f"{labels.dtype} {labels.shape}" + (f" in [{labels.min()}, {labels.max()}]"
                                                    if labels.dtype.kind in "iuf" else "")
        raise _data_error("labels", f"one whole class index in [0, {classes}) per sample", shown)
    if config.spikes is None and (config.values is None or config.encode is None):
        raise _data_error("spikes", "spikes, or values and encode", "neither")
    if config.levels is not None and config.values is None:
        raise _data_error("values", "static values for the static-input variant (levels given)", "none")
    for name in ("values", "spikes"):
        data = getattr(config, name)
        if data is not None and len(data) != samples:
            raise _data_error(name, f"one sample per label ({samples})", len(data))
    if config.spikes is not None:
        if np.shape(config.spikes)[1] < config.steps:
            raise _data_error("spikes", f"at least steps = {config.steps} steps", np.shape(config.spikes)[1])
        check_calibration(graph, config.spikes)
    if not 0.0 <= config.epsilon < 1.0:
        raise _data_error("epsilon", "an accuracy fraction in [0, 1)", config.epsilon)
    for node in graph.nodes:
        if _spiking_loihi_neuron(node) and not model_of(node).recalibrates_threshold:
            raise UnsupportedError(node.name, "type", "Loihi LIF groups (timestep compression re-solves their vth "
                                   "and initial v)", model_of(node).name, "compile without --compress-timesteps")


def _data_error(name: str, limit: str, actual) -> SnncError:
    return SnncError(f"timestep compression calibration field '{name}': limit {limit}, got {actual}")


def _evaluate_variants(graph: Graph, config: CompressionConfig, spec):
    """Every variant's graph, accuracy at full length and cumulative output counts on all samples."""
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


def choose_policy(choices: dict, config: CompressionConfig, reference_ok: np.ndarray):
    """(policy, its outcome on the choosing half, on the checking half, policies the check rejected):
    the best-ranked policy within the budget on both halves (the original at full length always is)."""
    labels = np.asarray(config.labels)
    rows = np.arange(len(labels))
    choose, check = rows[0::2], rows[1::2]
    ranked = []
    for variant, (_graph, _accuracy, counts) in choices.items():
        for steps, margin in itertools.product(range(1, config.steps + 1), (None, *config.margins)):
            policy = Policy(variant, steps, margin)
            outcome = _outcome(counts, labels, reference_ok, policy, choose, config.confidence_z)
            if outcome["drop_upper_bound"] <= config.epsilon + 1e-12:
                key = (outcome["mean_steps"], -outcome["accuracy"], variant.simplicity, steps)
                ranked.append((key, policy, outcome))
    ranked.sort(key=lambda item: item[0])
    for rejected, (_key, policy, selection) in enumerate(ranked):
        validation = _outcome(choices[policy.variant][2], labels, reference_ok, policy, check,
                              config.confidence_z)
        if validation["drop_upper_bound"] <= config.epsilon + 1e-12:
            return policy, selection, validation, rejected
    raise AssertionError("the original graph at full length is always within the budget")


def _outcome(counts: np.ndarray, labels: np.ndarray, reference_ok: np.ndarray, policy: Policy,
             rows: np.ndarray, z: float) -> dict:
    """Accuracy, mean steps and the confident drop of ``policy`` on the samples ``rows``."""
    predictions, used = decide(counts[rows], policy.steps, policy.margin)
    ok, ref_ok = predictions == labels[rows], reference_ok[rows]
    bad, good = int(np.sum(ref_ok & ~ok)), int(np.sum(~ref_ok & ok))
    return {"samples": len(rows), "accuracy": float(np.mean(ok)), "mean_steps": float(used.mean()),
            "worse": bad, "better": good, "drop_upper_bound": (bad - good + z * math.sqrt(bad + good)) / len(rows)}


def _inputs(config: CompressionConfig, static: bool, steps: int) -> np.ndarray:
    if static:
        return np.repeat(np.asarray(config.values)[:, None], steps, axis=1)
    if config.spikes is not None:
        return np.asarray(config.spikes)[:, :steps]
    return config.encode(config.values, steps)


def _latency(graph: Graph) -> int:
    return max(graph.latency.values(), default=0)


# ------------------------------------------------------------------------------------------ variants

def variant_graph(graph: Graph, variant: Variant, levels: int | None, spec) -> Graph:
    """The graph with the variant's input kind, thresholds and initial voltages. With alpha = 0 and
    beta = 1 the neurons stay as lowered; any other (alpha, beta) re-solves every spiking group's
    ``v_init`` through its warm-up under the new threshold (a warm-up that would spike or leave v's
    range is a ``QuantizationError``)."""
    out = static_input_graph(graph, levels, spec) if variant.static else graph
    if variant.alpha == 0.0 and variant.beta == 1.0:
        return out
    nodes = [_recalibrated(n, variant, out.latency.get(n.name, 0)) if _spiking_loihi_neuron(n)
             else n for n in out.nodes]
    return out.replace_nodes(nodes)


def _spiking_loihi_neuron(node) -> bool:
    """A spiking neuron group of Loihi arithmetic (its model's nodes carry ``vth`` and ``v_init``)."""
    return node.ROLE == "neuron" and node.emits_spikes() and model_of(node).traits.arithmetic == "loihi"


def _recalibrated(node, variant: Variant, latency: int):
    vth = min(max(1, int(round(node.vth * variant.beta))), lq.VTH_MAX)
    node = dataclasses.replace(node, vth=vth)
    target = int(math.floor(variant.alpha * (vth << lq.THRESHOLD_SHIFT)))
    v_init = voltage_before(node, target, latency, "timestep compression's initial voltage")
    return dataclasses.replace(node, v_init=v_init)


def static_input_bits(levels: int) -> int:
    """Payload bits of a static input of values 0..levels (signed: one more bit than levels needs)."""
    return int(levels).bit_length() + 1


def static_input_levels(node: GradedInput) -> int:
    """The full scale a static input was compiled for (inverse of ``static_input_bits``)."""
    return 1 << (node.bits - 2)


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
        replaced[node.name] = GradedInput(node.name, tuple(node.shape), bits=static_input_bits(levels))
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


PASS = Pass("compress_timesteps", run, CompressTimestepsOptions,
            requires=Condition(timing=("hop_latency",), domain=("lowered-loihi",)))
