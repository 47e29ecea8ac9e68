"""Quantization-aware training whose forward pass IS the compiled network (Loihi 2 arithmetic).

``QatNetwork`` holds the dense weights of a float IR graph as torch parameters. Before each forward it
compiles the current weights with the real pipeline (``snnc.compiler.pipeline.compile_graph``, same
target and choices as ``snnc compile``: weight bits, rounding, calibration), so every integer parameter
(weight words, exponents, vth, du, dv, bias) is the compiler's own. The forward then runs the lowered
network in zero-latency timing with the emulator's arithmetic from ``snnc.arith.loihi`` on torch
int64 tensors (``lif_current``, ``lif_voltage``, ``lif_fire``, ``shift_activation``: the same functions
the emulator calls on numpy arrays). The aligned emulator run of the compiled graph therefore equals
the QAT forward bit for bit (tests/test_quantize_properties.py, tests/test_qat.py).

Gradients are straight-through: each integer result r of an operation whose real-valued counterpart is
f (weights w * S / 2^e, the exponent shift, the u and v updates) enters the graph as
``r + (f - f.detach())``, exactly r in the forward pass (adding 0.0 to an integer-valued float64 is
exact) and f's gradient in the backward pass. Masks stop gradients where the hardware saturates
(QuEST-style trust masking): weights outside the word range (clipped) and v at its 24-bit limit. A
spike's gradient is the fast-sigmoid surrogate 1 / (1 + k |x|)^2 with x = (v - theta) / theta.
Pruned (zero) weights stay zero when ``keep_zeros`` is set.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import snntorch.functional as SF
import torch
from torch import nn
from tqdm import tqdm

from snnc.arith import loihi as lq
from snnc.compiler.pipeline import compile_graph
from snnc.errors import UnsupportedError
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import Comparison, Dense, Flatten, Input, LoihiLIF, ResetKind
from snnc.neurons import float_models_lowering_to, model_of
from snnc.simulators.traces import as_input_dict
from snnc.targets.catalog import TARGETS, registered_target

SURROGATE_SLOPE = 10.0
# The float neuron models QAT trains: those with a Loihi lowering (their lowered groups must be the LoihiLIF
# QAT's forward computes; ``_neuron_params`` refuses any other).
QAT_NEURON_TYPES = tuple(m.node_type for m in float_models_lowering_to("loihi") if m.qat_trainable)


@dataclass(frozen=True)
class _Synapse:
    """One compiled dense synapse: exact weight words and the scale that maps float weights to them."""

    source: str
    delay: int
    mant: torch.Tensor        # (out, in) float64, integer-valued
    exp: int
    scale: torch.Tensor       # (out, 1): S_i / 2^exp, float weight -> word units
    trusted: torch.Tensor     # (out, in) bool: not clipped


@dataclass(frozen=True)
class _Neuron:
    du: int
    dv: int
    vth: int
    bias: torch.Tensor        # int64, effective bias per neuron
    spiking: bool


class QatNetwork(nn.Module):
    """A float IR graph (dense synapses + neuron groups of ``QAT_NEURON_TYPES``) trained through its
    compiled integer form.

    ``parameters``: name -> torch Parameter of each Dense node's weight (out, in); by default float64
    copies of the graph's weights (``from_model`` shares a torch model's own ``nn.Linear`` weights)."""

    def __init__(self, graph: Graph, target: str = "loihi2", parameters: dict[str, nn.Parameter] | None = None,
                 keep_zeros: bool = True, **choices):
        super().__init__()
        _check_supported(graph)
        _check_loihi_arithmetic(graph, target)
        self.graph, self.target, self.choices = graph, target, choices
        params = parameters or {n.name: nn.Parameter(torch.tensor(n.weight, dtype=torch.float64))
                                for n in graph.nodes if isinstance(n, Dense)}
        self.weights = nn.ParameterList(list(params.values()))
        self.names = list(params)
        self.frozen = {name: (p.detach() == 0) if keep_zeros else None for name, p in params.items()}
        self.compiled = None
        self.replan()

    @classmethod
    def from_model(cls, model: nn.Module, input_shape: tuple[int, ...], target: str = "loihi2", **kwargs):
        """Share ``model``'s ``nn.Linear`` weights: training updates the model itself (any dtype); the
        compiled plan is built from exactly the float64 values ``snnc compile`` reads from its bundle."""
        graph = from_torch(model, input_shape)
        return cls(graph, target, parameters=_linear_parameters(model, graph), **kwargs)

    def param(self, name: str) -> nn.Parameter:
        """The trained weight parameter of the Dense node ``name``."""
        return self.weights[self.names.index(name)]

    def to_graph(self) -> Graph:
        """The float IR with the current weights (what ``snnc compile`` would be given)."""
        nodes = [_with_weight(n, self.param(n.name)) if n.name in self.names else n for n in self.graph.nodes]
        return self.graph.replace_nodes(nodes)

    def replan(self) -> None:
        """Compile the current weights; the forward pass uses exactly that compiled network."""
        self.compiled = compile_graph(self.to_graph(), self.target, **self.choices)

    def forward(self, x) -> dict[str, torch.Tensor]:
        """Spikes (spiking groups) or v (readouts) of every neuron group, (batch, steps, *shape) float64
        tensors with integer values, in zero-latency timing (the float graph's step grid)."""
        inputs = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in as_input_dict(self.graph, _np(x)).items()}
        batch, steps = next(iter(inputs.values())).shape[:2]
        run = _Run(inputs, batch, *self._compiled_parts())
        run.state = {name: (torch.zeros(batch, _size(self.graph, name), dtype=torch.float64),) * 2
                     for name in run.neurons}
        run.history = {n.name: [] for n in self.graph.nodes}
        for t in range(steps):
            for node in self.graph.evaluation_order:
                run.history[node.name].append(self._node_output(node, t, run))
        return {name: torch.stack(run.history[name], dim=1).reshape(batch, steps, *self.graph.node(name).shape)
                for name in run.neurons}

    def _node_output(self, node, t: int, run: "_Run") -> torch.Tensor:
        if isinstance(node, Input):
            return run.inputs[node.name][:, t].reshape(run.batch, -1)
        if isinstance(node, Flatten):
            return run.history[node.source][t]
        if isinstance(node, Dense):
            return self._activation(node.name, t, run)
        total = sum(run.history[name][t] for name in node.inputs)
        u, v = run.state[node.name]
        u, v, out = _lif_step(u, v, total, run.neurons[node.name])
        run.state[node.name] = (u, v)
        return out

    def _activation(self, name: str, t: int, run: "_Run") -> torch.Tensor:
        syn = run.synapses[name]
        if t >= syn.delay:
            spikes = run.history[syn.source][t - syn.delay]
        else:   # before the first delayed spike; the source may not have run yet (recurrence)
            spikes = torch.zeros(run.batch, _size(self.graph, syn.source), dtype=torch.float64)
        weight = self.param(name).to(torch.float64)
        mask = syn.trusted if self.frozen[name] is None else syn.trusted & ~self.frozen[name]
        words = _exact(syn.mant, weight * syn.scale * mask)
        total = spikes @ words.T                      # exact: integer words, 0/1 spikes, sums < 2^53
        shifted = lq.shift_activation(total.detach().to(torch.int64), syn.exp)
        return _exact(shifted, total * 2.0 ** syn.exp)

    def _compiled_parts(self):
        lowered = self.compiled.graph
        neurons = {n.name: _neuron_params(lowered.node(n.name)) for n in self.graph.nodes
                   if n.ROLE == "neuron"}
        synapses = {name: _synapse_params(self.graph, lowered, name, self.param(name)) for name in self.names}
        return synapses, neurons


@dataclass
class _Run:
    """One forward pass: inputs, compiled parameters, per-node outputs by step, neuron states (u, v)."""

    inputs: dict[str, torch.Tensor]
    batch: int
    synapses: dict[str, _Synapse]
    neurons: dict[str, _Neuron]
    history: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    state: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


def _exact(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass (exactly: value + 0.0), ``surrogate``'s gradient backward."""
    return value.to(torch.float64) + (surrogate - surrogate.detach())


def _lif_step(u, v, activation, p: _Neuron):
    """One LIF update with the emulator's integer arithmetic and straight-through gradients."""
    a_int = activation.detach().to(torch.int64)
    u_int = lq.lif_current(u.detach().to(torch.int64), a_int, p.du)
    v_int = lq.lif_voltage(v.detach().to(torch.int64), u_int, p.dv, p.bias)
    v_after, fired = lq.lif_fire(v_int, p.vth)
    u_new = _exact(u_int, u * (1.0 - (p.du + 1) / lq.DECAY_UNITY) + activation * (1 << lq.ACTIVATION_SHIFT))
    unsaturated = (v_int.abs() < lq.V_LIMIT).to(torch.float64)
    v_pre = _exact(v_int, (v * (1.0 - p.dv / lq.DECAY_UNITY) + u_new) * unsaturated)
    theta = float(max(p.vth, 1) << lq.THRESHOLD_SHIFT)
    x = (v_pre - theta) / theta
    spikes = _exact(fired, x / (1.0 + SURROGATE_SLOPE * x.abs()))
    v_new = _exact(v_after, v_pre * (1.0 - fired.to(torch.float64)))
    return u_new, v_new, spikes if p.spiking else v_new


def _neuron_params(node: LoihiLIF) -> _Neuron:
    """du, dv, vth, per-neuron effective bias and output kind of a lowered group, for QAT's forward."""
    if not isinstance(node, LoihiLIF):
        raise UnsupportedError(node.name, "type", "a group lowered to LoihiLIF (what QAT's forward computes)",
                               type(node).__name__)
    if node.reset != ResetKind.ZERO or node.comparison != Comparison.GT:
        raise UnsupportedError(node.name, "reset", "zero reset with '>' (what QAT's forward computes)",
                               f"reset {node.reset}, comparison {node.comparison}",
                               "retrain the float model with reset_mechanism='zero' for QAT, or compile it "
                               "without QAT")
    if node.reset_interval:
        raise UnsupportedError(node.name, "reset_interval", "0 (QAT's forward has no periodic reset)",
                               node.reset_interval)
    size = int(np.prod(node.shape))
    bias = np.broadcast_to(lq.effective_bias(node.bias_mant, node.bias_exp).reshape(-1), (size,))
    return _Neuron(_decay_words(node.du, size), _decay_words(node.dv, size), node.vth,
                   torch.as_tensor(np.array(bias), dtype=torch.int64), node.spiking)


def _decay_words(value, size: int):
    """One decay per group (an int) or per neuron (an int64 tensor)."""
    if np.ndim(value) == 0:
        return int(value)
    return torch.as_tensor(np.broadcast_to(np.asarray(value, np.int64).reshape(-1), (size,)).copy())


def _synapse_params(graph: Graph, lowered: Graph, name: str, weight: torch.Tensor) -> _Synapse:
    float_node, low = graph.node(name), lowered.node(name)
    scale = _word_scale(graph.consumers(name)[0], lowered, low, float_node.weight)
    lo, hi = lq.weight_limits(low.sign_mode, low.num_weight_bits)
    half = lq.weight_step(low.sign_mode, low.num_weight_bits) / 2
    value = weight.detach().to(torch.float64) * torch.as_tensor(scale[:, None])
    return _Synapse(float_node.source, int(float_node.delay_steps),
                    torch.as_tensor(np.asarray(low.weight_mant), dtype=torch.float64), int(low.weight_exp),
                    torch.as_tensor(scale[:, None]), (value >= lo - half) & (value <= hi + half))


def _word_scale(neuron, lowered: Graph, synapse, weight: np.ndarray) -> np.ndarray:
    """Per row, float weight -> weight word: vth / threshold / 2^exp for spiking groups (the lowering's
    scale); for readouts (scaled by a range bound instead) the least-squares ratio of words to weights."""
    rows = synapse.weight_mant.shape[0]
    if model_of(neuron).traits.output == "spikes":
        thr = np.broadcast_to(np.asarray(neuron.threshold, np.float64).reshape(-1), (rows,))
        return lowered.node(neuron.name).vth / thr / 2.0 ** synapse.weight_exp
    norm = np.maximum(np.sum(weight * weight, axis=1), 1e-300)
    return np.sum(np.asarray(synapse.weight_mant, np.float64) * weight, axis=1) / norm


def _supported_names() -> str:
    """The node types QAT trains, as text ("Input, Flatten, Dense, <neuron types> or <last one>")."""
    names = ["Input", "Flatten", "Dense"] + [t.__name__ for t in QAT_NEURON_TYPES]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _check_supported(graph: Graph) -> None:
    for node in graph.nodes:
        if not isinstance(node, (Input, Flatten, Dense)) and type(node) not in QAT_NEURON_TYPES:
            raise UnsupportedError(node.name, "type", f"{_supported_names()} for QAT", type(node).__name__)
        if isinstance(node, Dense) and node.bias is not None:
            raise UnsupportedError(node.name, "bias", "none for QAT (bias_in_synapse is not trained)", "a bias")


def _linear_parameters(model: nn.Module, graph: Graph) -> dict[str, nn.Parameter]:
    """Each Dense node's nn.Linear weight, found by snnc's node naming and checked value for value."""
    linears = {f"syn_{p.replace('.', '_')}": m for p, m in model.named_modules() if isinstance(m, nn.Linear)}
    linears.update({f"rec_{p.replace('.', '_')}": m.recurrent for p, m in model.named_modules()
                    if isinstance(getattr(m, "recurrent", None), nn.Linear)})
    out = {}
    for node in graph.nodes:
        if not isinstance(node, Dense):
            continue
        module = linears.get(node.name)
        if module is None or not np.array_equal(module.weight.detach().double().cpu().numpy(), node.weight):
            raise UnsupportedError(node.name, "weight", "one nn.Linear per synapse for QAT",
                                   "composed or implicit weights")
        out[node.name] = module.weight
    return out


def _with_weight(node: Dense, param: torch.Tensor) -> Dense:
    return Dense(node.name, node.source, param.detach().double().cpu().numpy().copy(), node.bias, node.delay_steps)


def _size(graph: Graph, name: str) -> int:
    return int(np.prod(graph.node(name).shape))


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# -------------------------------------------------------------------------------------------- training

@dataclass
class QatResult:
    """The trained model (the given kind: ``nn.Module`` copy or IR ``Graph``), its network and history."""

    model: object
    network: QatNetwork
    history: list[dict] = field(default_factory=list)


def qat(model, data, target: str = "loihi2", *, epochs: int = 3, lr: float = 5e-4, batch_size: int = 64,
        seed: int = 0, validation=None, keep_zeros: bool = True, progress: bool = False, **choices) -> QatResult:
    """Fine-tune ``model`` (snnTorch ``nn.Sequential`` or float IR ``Graph``; not modified) so that the
    network ``snnc compile`` makes of it classifies ``data`` = (x spikes (n, steps, *shape), y labels)
    by output spike count; ``choices`` are the compile options (weight_bits, weight_rounding,
    calibration) the result must later be compiled with. The returned model compiles to exactly the
    network trained here. With ``validation`` = (x, y), the weights of the epoch (0 = the start) with
    the best validation accuracy of the compiled network are kept."""
    x, y = np.asarray(data[0]), np.asarray(data[1])
    trained, network = _trainable(model, tuple(x.shape[2:]), target, keep_zeros, choices)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = [{"epoch": 0, **_validation(network, validation)}]
    best = (history[0].get("validation_accuracy", 0.0), _snapshot(network))
    for epoch in range(1, epochs + 1):
        batches = np.array_split(rng.permutation(len(x)), max(len(x) // batch_size, 1))
        bar = tqdm(batches, desc=f"qat epoch {epoch}/{epochs}", disable=not progress, leave=False)
        losses = [_train_step(network, optimizer, x[batch], y[batch]) for batch in bar]
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), **_validation(network, validation)})
        if validation is None or history[-1]["validation_accuracy"] > best[0]:
            best = (history[-1].get("validation_accuracy", 0.0), _snapshot(network))
    _restore(network, best[1])
    return QatResult(network.to_graph() if isinstance(model, Graph) else trained, network, history)


def _trainable(model, input_shape, target: str, keep_zeros: bool, choices: dict):
    """(the model that will be returned, its QatNetwork); a torch model is deep-copied first."""
    if isinstance(model, Graph):
        return model, QatNetwork(model, target, keep_zeros=keep_zeros, **choices)
    trained = copy.deepcopy(model)
    return trained, QatNetwork.from_model(trained, input_shape, target, keep_zeros=keep_zeros, **choices)


def _train_step(network: QatNetwork, optimizer, x, y) -> float:
    network.replan()
    loss = count_loss(network(x)[network.graph.outputs[0]], torch.as_tensor(y))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _validation(network: QatNetwork, validation) -> dict:
    if validation is None:
        return {}
    network.replan()
    return {"validation_accuracy": float(np.mean(predict(network, validation[0])[1] == np.asarray(validation[1])))}


def _snapshot(network: QatNetwork) -> list[torch.Tensor]:
    return [p.detach().clone() for p in network.weights]


def _restore(network: QatNetwork, weights: list[torch.Tensor]) -> None:
    """Put ``weights`` back and compile them: the network then is exactly what the model compiles to."""
    with torch.no_grad():
        for param, value in zip(network.weights, weights):
            param.copy_(value)
    network.replan()


def count_loss(spikes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """snnTorch's ``ce_count_loss`` (cross entropy of per-class spike counts); spikes (batch, steps, C)."""
    return SF.ce_count_loss()(spikes.transpose(0, 1), labels.long())


def predict(network: QatNetwork, x, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(output spikes (n, steps, C) uint8, predicted classes) of the QAT forward pass, no gradients."""
    output = network.graph.outputs[0]
    parts = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            parts.append(network(np.asarray(x[start:start + batch_size]))[output].numpy())
    spikes = np.concatenate(parts).astype(np.uint8)
    return spikes, spikes.reshape(len(spikes), spikes.shape[1], -1).sum(axis=1).argmax(axis=1)


def _check_loihi_arithmetic(graph: Graph, target: str) -> None:
    """The fake-quant forward mirrors Loihi arithmetic only: the target must compute with it."""
    if registered_target(target).arithmetic != "loihi":
        loihi = ", ".join(name for name, entry in TARGETS.items() if entry.arithmetic == "loihi")
        raise UnsupportedError(graph.name, "target", f"a target lowered with Loihi arithmetic ({loihi})", target)
