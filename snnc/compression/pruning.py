"""Global one-shot pruning of a float graph's dense synapses: SBC, OBC or magnitude.

* ``sbc``: loss = error of the surrogate membrane potential (``snnc.compression.sbc``, kernel K from the
  group's decays); ``obc``: the same machinery with the input-current loss (K = I); ``magnitude``:
  smallest |w| / threshold first, no compensation, no data needed.
* Allocation: one global sparsity is spread over all rows of all layers by each method's cost curves,
  computed once on the unpruned graph. SBC/OBC costs are divided by the layer's signal energy
  (1/2 sum_rows w H w^T), i.e. a layer's share follows the fraction of its membrane signal it loses;
  magnitude compares |w| / threshold across layers.
* Removal (SBC/OBC), layer by layer in evaluation order: the layer's inputs are re-simulated through the
  already-pruned layers (X'), the weights are refitted to reproduce the *original* membrane from X'
  (``sbc.refit``), then each row drops its allocated count by greedy OBS with compensation. A neuron
  group fed by exactly this one synapse also gets its bias re-solved: the bias is an extra input that
  is always on (seen through the voltage filter only) and is never removed (bias correction). With a
  ``bias_floor`` (the target's ``pruning_bias_floor``) a corrected bias is kept >= -floor x threshold
  (re-solving the row with the bias fixed there): Loihi cancels a negative bias during pipeline fill with
  a positive initial voltage that must stay below threshold.
* Layers whose rows * inputs^3 exceed ``sbc.EXACT_MAX_WORK`` use the scalable variant: single-shot
  saliency curves for the allocation and SparseGPT for the removal.
The report gives, per layer, the sparsity and the relative membrane error of the final pruned graph on
the calibration data, sum ||K (X' w' + b') - K (X w + b)||^2 / sum ||K (X w + b)||^2, measured with the
SBC kernel for every method so that methods compare.
"""
from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from snnc.compression import calibration as cal
from snnc.compression import sbc
from snnc.errors import NodeError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Dense
from snnc.neurons import model_of

METHODS = ("sbc", "obc", "magnitude")


@dataclass(frozen=True)
class LayerPruning:
    """What pruning did to one dense synapse (``rel_membrane_error``: None without calibration data)."""

    synapse: str
    solver: str
    kept: int
    total: int
    sparsity: float
    rel_membrane_error: float | None
    bias_corrected: bool = False


@dataclass
class _Layer:
    """One dense synapse as a least-squares problem: augmented weights [W | b] and filtered inputs."""

    synapse: Dense
    neuron: object
    with_bias: bool
    weight: np.ndarray            # (rows, d [+ 1 bias column])
    reference: np.ndarray | None  # K [X | 1] of the unpruned graph, (samples * steps, d [+ 1])
    curves: sbc.RowCurves | None = None
    norm: np.ndarray | None = None
    exact: bool = True


def prunable_synapses(graph: Graph) -> list[tuple[Dense, object]]:
    """(dense synapse, its neuron group) for every Dense read by exactly one neuron group, in order."""
    out = []
    for node in graph.evaluation_order:
        consumers = graph.consumers(node.name)
        if isinstance(node, Dense) and len(consumers) == 1 and \
                (consumers[0].ROLE, consumers[0].DOMAIN) == ("neuron", "float"):
            out.append((node, consumers[0]))
    return out


def check_request(graph: Graph, sparsity: float, method: str, calibration) -> None:
    """Refuse a pruning request snnc cannot honour: sparsity outside [0, 1), an unknown method, sbc/obc without
    calibration data, a graph that is not float, sbc/obc into a group without a LIF membrane (its model's
    ``membrane_decays`` is None: Izhikevich, resonator, sigma-delta) (typed ``NodeError``)."""
    if not 0.0 <= sparsity < 1.0:
        raise NodeError(graph.name, "prune_sparsity", "a fraction in [0, 1)", sparsity)
    if method not in METHODS:
        raise NodeError(graph.name, "prune_method", "|".join(METHODS), method)
    if method != "magnitude" and calibration is None:
        raise NodeError(graph.name, "prune_method", "'magnitude' without calibration data "
                        f"('{method}' needs --calib)", method)
    if graph.timing != "zero_latency":
        raise NodeError(graph.name, "timing", "zero_latency (pruning runs on the float IR)", graph.timing)
    for syn, neuron in prunable_synapses(graph) if method != "magnitude" else ():
        if model_of(neuron).membrane_decays(neuron) is None:
            raise NodeError(syn.name, "prune_method", f"magnitude into a {type(neuron).__name__} group ('{neuron.name}'"
                            f"): sbc and obc weigh errors through a LIF membrane, which it has not", method)


def prune_graph(graph: Graph, sparsity: float, method: str, calibration=None, progress: bool = False,
                bias_floor: float | None = None) -> tuple[Graph, list[LayerPruning]]:
    """The graph with ``sparsity`` of all prunable dense weights set to 0, and a per-layer report;
    corrected biases stay >= -``bias_floor`` x threshold (None: unbounded)."""
    check_request(graph, sparsity, method, calibration)
    traces = cal.simulate(graph, calibration) if calibration is not None else None
    layers = [_layer_problem(graph, traces, syn, neuron, method)
              for syn, neuron in prunable_synapses(graph)]
    for layer in tqdm(layers, desc=f"prune {method}: costs", disable=not progress, leave=False):
        _cost_curves(layer, method)
    total = sum(layer.synapse.weight.size for layer in layers)
    counts = sbc.allocate_removals({l.synapse.name: l.curves for l in layers},
                                   {l.synapse.name: l.norm for l in layers}, int(round(sparsity * total)))
    pruned = graph
    for layer in tqdm(layers, desc=f"prune {method}: layers", disable=not progress, leave=False):
        pruned = _replace_layer(pruned, layer, _pruned_layer(pruned, layer, counts[layer.synapse.name],
                                                             method, calibration, bias_floor))
    return pruned, _reports(graph, pruned, layers, calibration)


def report_dict(method: str, target: float, layers: list[LayerPruning]) -> dict:
    """The prune pass's report: method, target and achieved sparsity (fraction of dense weights that are zero), and
    each layer's ``LayerPruning``."""
    kept = sum(r.kept for r in layers)
    total = sum(r.total for r in layers)
    return {"method": method, "target_sparsity": target, "sparsity": 1.0 - kept / total if total else 0.0,
            "layers": {r.synapse: asdict(r) for r in layers}}


def _kernels(neuron, steps: int, method: str):
    """(input kernel, bias kernel): SBC's membrane filters, or None (identity) for OBC."""
    if method != "sbc":
        return None, None
    cd, vd = model_of(neuron).membrane_decays(neuron)
    return (sbc.membrane_kernel(cd, vd, steps),
            sbc.membrane_kernel(1.0, vd, steps))


def _filtered(graph: Graph, traces, syn: Dense, neuron, method: str, with_bias: bool) -> np.ndarray:
    x = cal.synapse_inputs(graph, traces, syn.name)
    if x.shape[-1] > cal.HESSIAN_MAX_INPUTS:
        raise NodeError(syn.name, "in_features", f"<= {cal.HESSIAN_MAX_INPUTS} for {method} pruning",
                        x.shape[-1], "use --prune-method magnitude")
    k_in, k_bias = _kernels(neuron, x.shape[1], method)
    y = sbc.filtered_inputs(x, k_in)
    if not with_bias:
        return y
    ones = np.ones((x.shape[0], x.shape[1], 1))
    return np.concatenate([y, sbc.filtered_inputs(ones, k_bias)], axis=1)


def _layer_problem(graph: Graph, traces, syn: Dense, neuron, method: str) -> _Layer:
    with_bias = method != "magnitude" and len(neuron.inputs) == 1
    weight = np.asarray(syn.weight, np.float64)
    if with_bias:
        bias = np.broadcast_to(np.asarray(neuron.bias, np.float64).reshape(-1), (weight.shape[0],))
        weight = np.concatenate([weight, bias[:, None]], axis=1)
    reference = _filtered(graph, traces, syn, neuron, method, with_bias) if method != "magnitude" else None
    return _Layer(syn, neuron, with_bias, weight, reference)


def _cost_curves(layer: _Layer, method: str) -> None:
    rows = layer.weight.shape[0]
    if method == "magnitude":
        layer.curves, layer.norm, layer.exact = sbc.magnitude_curves(layer.weight, _thresholds(layer)), \
            np.ones(rows), False
        return
    hessian = 2.0 * layer.reference.T @ layer.reference
    inverse = np.linalg.inv(sbc.damped(hessian))
    prunable = _prunable_columns(layer)
    layer.exact = sbc.use_exact(*layer.weight.shape)
    curve = sbc.prune_order if layer.exact else sbc.saliency_curves
    layer.curves = curve(layer.weight, inverse, prunable)
    layer.norm = np.full(rows, max(sbc.layer_loss(np.zeros_like(layer.weight), layer.weight, hessian), 1e-300))


def _prunable_columns(layer: _Layer) -> np.ndarray:
    keep = np.ones(layer.weight.shape[1], bool)
    if layer.with_bias:
        keep[-1] = False
    return keep


def _thresholds(layer: _Layer) -> np.ndarray:
    rows = layer.weight.shape[0]
    if layer.neuron.emits_spikes():
        return np.broadcast_to(np.asarray(layer.neuron.threshold, np.float64).reshape(-1), (rows,)).copy()
    return np.ones(rows)   # a readout has no threshold: membrane units


def _pruned_layer(current: Graph, layer: _Layer, counts: np.ndarray, method: str, calibration,
                  bias_floor: float | None) -> np.ndarray:
    """Augmented weights of one layer after removal (refit on the already-pruned inputs first)."""
    if method == "magnitude":
        return np.where(sbc.removal_mask(layer.curves, counts), 0.0, layer.weight)
    traces = cal.simulate(current, calibration)
    syn, neuron = current.node(layer.synapse.name), current.node(layer.neuron.name)
    new_inputs = _filtered(current, traces, syn, neuron, method, layer.with_bias)
    start, regularized = sbc.refit(layer.weight, new_inputs, layer.reference)
    prunable = _prunable_columns(layer)
    inverse = np.linalg.inv(regularized)
    if layer.exact:
        mask = sbc.removal_mask(sbc.prune_order(start, inverse, prunable), counts, start.shape[1])
        pruned = sbc.reconstruct(start, inverse, mask)
    else:
        pruned = sbc.sparsegpt_prune(start, regularized, counts, prunable)
        mask = pruned == 0
    return _floor_bias(layer, start, inverse, mask, pruned, bias_floor)


def _floor_bias(layer: _Layer, start, inverse, mask, pruned, bias_floor: float | None) -> np.ndarray:
    """Rows whose corrected bias fell below the floor: re-solved with the bias fixed at the floor."""
    if not layer.with_bias or bias_floor is None:
        return pruned
    floor = np.minimum(-bias_floor * _thresholds(layer), layer.weight[:, -1])
    low = pruned[:, -1] < floor
    if not low.any():
        return pruned
    fixed = mask.copy()
    fixed[:, -1] = low
    targets = np.zeros_like(pruned)
    targets[:, -1] = floor
    return np.where(low[:, None], sbc.reconstruct(start, inverse, fixed & low[:, None], targets), pruned)


def _replace_layer(graph: Graph, layer: _Layer, augmented: np.ndarray) -> Graph:
    d = layer.synapse.weight.shape[1]
    changes = {layer.synapse.name: dataclasses.replace(graph.node(layer.synapse.name), weight=augmented[:, :d])}
    if layer.with_bias:
        neuron = graph.node(layer.neuron.name)
        changes[neuron.name] = dataclasses.replace(neuron, bias=augmented[:, d].reshape(neuron.shape).copy())
    return graph.replace_nodes([changes.get(n.name, n) for n in graph.nodes])


def _reports(original: Graph, pruned: Graph, layers: list[_Layer], calibration) -> list[LayerPruning]:
    traces = (cal.simulate(original, calibration), cal.simulate(pruned, calibration)) \
        if calibration is not None else None
    out = []
    for layer in layers:
        weight = pruned.node(layer.synapse.name).weight
        kept = int(np.count_nonzero(weight))
        error = _membrane_error(original, pruned, traces, layer) if traces else None
        solver = "magnitude" if layer.reference is None else ("exact OBS" if layer.exact else "SparseGPT")
        out.append(LayerPruning(layer.synapse.name, solver, kept, int(weight.size), 1.0 - kept / weight.size,
                                error, layer.with_bias))
    return out


def _membrane_error(original: Graph, pruned: Graph, traces, layer: _Layer) -> float:
    """SBC-kernel membrane error of the pruned graph's layer (its own inputs) vs the original's."""
    def membrane(graph, run):
        syn, neuron = graph.node(layer.synapse.name), graph.node(layer.neuron.name)
        y = _filtered(graph, run, syn, neuron, "sbc", True)
        bias = np.broadcast_to(np.asarray(neuron.bias, np.float64).reshape(-1), (syn.weight.shape[0],))
        return y @ np.concatenate([syn.weight, bias[:, None]], axis=1).T
    before, after = membrane(original, traces[0]), membrane(pruned, traces[1])
    signal = float(np.sum(before ** 2))
    return float(np.sum((after - before) ** 2)) / signal if signal > 0 else 0.0
