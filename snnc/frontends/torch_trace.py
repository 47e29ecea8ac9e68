"""PyTorch frontend for models as users write them: trace one run of any ``nn.Module`` -> float IR.

``trace_module(model, example_input)`` runs the model once (eval mode, no grad) under a
``TorchFunctionMode`` and global forward hooks. Spiking neuron modules (snnTorch, SpikingJelly, Norse) and
childless modules (``nn.Linear``, ``nn.Conv2d``, BatchNorm, pooling, Dropout, ...) are leaves: one call is
recorded, not their insides; every tensor op between leaves (add, sub, mul by a constant, cat, view,
reshape, flatten, ``x[t]``) is recorded too. The recorded data flow is then translated, exactly:

* Time: if every neuron module is called k > 1 times in one run, ``forward`` loops over time and the
  first step (call 0 of each neuron) is the graph; ``x[t]`` on the example input is the per-step input,
  an input used whole is fed unchanged every step. k = 1: one call is one step (snnTorch
  ``init_hidden``, SpikingJelly single-step), or, for SpikingJelly ``step_mode='m'``, the input is
  ``[T, N, ...]`` and every op acts per step.
* Between spiking layers the model computes an affine function of spikes (``torch_trace_ops.Form``);
  at a neuron each term becomes a synapse: Linear -> ``Dense``, Conv2d (``padding='same'`` included) ->
  ``Conv2d``, AvgPool2d -> ``SumPool2d``, BatchNorm (running statistics) folded into the synapse before
  it; any other chain (Conv then AvgPool, Linear then Linear, ...) -> one ``Dense`` probed exactly in
  float64, the neuron keeping its (C, H, W) shape. Dropout and Identity vanish. A sum of spike tensors
  (SEW-ResNet ADD), a residual sum of currents or a concatenation gives several synapses into one neuron.
* ``MaxPool2d`` of spikes is an OR: ``SumPool2d`` (weight 1) into an integrate-and-fire group (current
  decay 1, voltage decay 0.5, threshold 0.5, reset zero). It has no memory: its input is a count of spikes,
  an integer >= 0, so v is 0 before every step (reset after a spike, and a count below 0.5 is 0), and
  v[t] = count[t] > 0.5 is the OR. The voltage decay only ever multiplies v = 0: 0.5 is a value every target
  holds (not 1, which Loihi's 12-bit dv cannot hold; not 0, which IF_curr_exp cannot: it needs a leak).
  In the zero-latency float IR a group reads its sources' spikes of the same step, so the OR unit adds
  no delay (lowering accounts for its hop like any other layer's).
* A lava-dl slayer network (a chain of ``slayer.block`` blocks on ``[N, C, T]`` tensors) is not translated
  here: its blocks are leaves and ``torch_trace_slayer`` builds the lowered graph netx runs from them.
* Refused with ``UnsupportedError`` (module path, what, why, hint): MaxPool of currents, products of
  spike tensors, ANN layers (ReLU, ...), membrane potentials used as values, unknown ops or neurons.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import snntorch.utils
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from snnc.errors import UnsupportedError
from snnc.frontends import torch_trace_neurons as neurons
from snnc.frontends.torch_trace_slayer import is_slayer_block, slayer_graph
from snnc.frontends.torch_trace_ops import (
    AvgPoolOp, ChannelAffineOp, ConvOp, EmbedOp, Form, LinearOp, ReshapeOp, ScaleOp, Term, linear_part,
    spikes, split_scale,
)
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields, safe_name
from snnc.frontends.torch_frontend import lif_group
from snnc.ir.nodes import Comparison, Conv2d, Dense, Flatten, Input, ResetKind, SumPool2d, conv_output_hw
from snnc.ir.verify import verify

PASSTHROUGH_OPS = ("contiguous", "clone", "detach", "float", "double", "to", "dropout", "identity")
RESHAPE_OPS = ("view", "reshape", "flatten", "unflatten")
ANN_HINT = ("an SNN passes information between layers as spikes; replace the activation by a spiking "
            "neuron (snnTorch Leaky, SpikingJelly LIFNode) and retrain")


@dataclass
class _Call:
    """One recorded leaf-module call or tensor op, with the module path it ran in."""

    target: object
    path: str
    args: tuple
    kwargs: dict
    outputs: list
    is_module: bool


@dataclass
class _Poison:
    """A value the IR cannot express; the error is raised only if a neuron of step 0 needs it."""

    error: UnsupportedError


RAW_INPUT = object()


def trace_module(model: nn.Module, example_input: torch.Tensor, dt_s: float = 1e-3,
                 name: str = "network") -> Graph:
    """Run ``model`` once on ``example_input`` ([N, ...] per step, or [T, N, ...] for a forward that
    loops over time or SpikingJelly multi-step) and translate one time step into a verified float IR."""
    calls = _record(model, example_input)
    if any(c.is_module and is_slayer_block(c.target) for c in calls):
        return slayer_graph(calls, example_input, name, type(model).__name__)
    return _Translator(calls, example_input, dt_s, name, type(model).__name__).graph()


# --- recording ----------------------------------------------------------------------------------------

def _is_leaf(module: nn.Module) -> bool:
    return neurons.is_neuron(module) or is_slayer_block(module) or not any(True for _ in module.children())


class _Recorder(TorchFunctionMode):
    """Records depth-0 tensor ops; leaf modules (depth 1) are recorded by the hooks."""

    def __init__(self, paths: dict[int, str]):
        super().__init__()
        self.paths, self.calls, self.depth, self.stack = paths, [], 0, []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            outputs = [t for t in tree_flatten(out)[0] if torch.is_tensor(t)]
            if outputs:
                path = self.stack[-1] if self.stack else "forward"
                self.calls.append(_Call(func, path, args, kwargs, outputs, False))
        return out

    def pre_hook(self, module, args):
        self.stack.append(self.paths.get(id(module), type(module).__name__))
        if _is_leaf(module):
            self.depth += 1

    def post_hook(self, module, args, output):
        path = self.stack.pop()
        if _is_leaf(module):
            self.depth -= 1
            if self.depth == 0:
                outputs = [t for t in tree_flatten(output)[0] if torch.is_tensor(t)]
                self.calls.append(_Call(module, path, tuple(args), {}, outputs, True))


def _record(model: nn.Module, example_input: torch.Tensor) -> list[_Call]:
    paths = {id(m): (p or type(model).__name__) for p, m in model.named_modules()}
    recorder = _Recorder(paths)
    was_training = model.training
    model.eval()
    _reset_states(model)
    pre = nn.modules.module.register_module_forward_pre_hook(recorder.pre_hook)
    post = nn.modules.module.register_module_forward_hook(recorder.post_hook)
    try:
        with torch.no_grad(), recorder:
            model(example_input)
    except Exception as exc:  # the user's forward failed on the example input: say so, in one line
        first_line = (str(exc).splitlines() or ["(no message)"])[0][:160]
        raise UnsupportedError(type(model).__name__, "example_input", "a tensor the model's forward accepts "
                               "([N, ...] per step, [T, N, ...] for a time loop or multi-step, "
                               "[N, C, T] for a lava-dl slayer network)",
                               f"{tuple(example_input.shape)}: {type(exc).__name__}: {first_line}") from None
    finally:
        pre.remove()
        post.remove()
        _reset_states(model)
        model.train(was_training)
    return recorder.calls


def _reset_states(model: nn.Module) -> None:
    """Fresh hidden state before and after the trace (snnTorch init_hidden, SpikingJelly memories)."""
    snntorch.utils.reset(model)
    for module in model.modules():
        if hasattr(module, "reset") and type(module).__module__.startswith("spikingjelly"):
            module.reset()


# --- translation --------------------------------------------------------------------------------------

@dataclass
class _Translator:
    """Evaluates the recorded calls in order over ``Form`` values (``env``: id of a tensor -> its value),
    appending IR nodes at each first-step neuron call."""

    calls: list
    example_input: torch.Tensor
    dt_s: float
    name: str
    model_name: str
    nodes: list = field(default_factory=list)
    shapes: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    seen: Counter = field(default_factory=Counter)
    input_name: str | None = None
    steps_in_forward: int = 1
    multi_step: bool = False

    def graph(self) -> Graph:
        neuron_calls = Counter(id(c.target) for c in self.calls if c.is_module and neurons.is_neuron(c.target))
        if not neuron_calls:
            raise UnsupportedError(self.model_name, "layers", "at least one spiking neuron module ("
                                   + ", ".join(neurons.SUPPORTED_NEURONS) + ")", "none called")
        counts = set(neuron_calls.values())
        if len(counts) != 1:
            raise UnsupportedError(self.model_name, "time loop", "every neuron module called once per step",
                                   f"call counts {sorted(counts)} in one forward")
        self.steps_in_forward = counts.pop()
        self.multi_step = self._multi_step()
        self.env[id(self.example_input)] = RAW_INPUT
        for call in self.calls:
            self._evaluate(call)
        return self._finish()

    def _multi_step(self) -> bool:
        modes = {neurons.is_multi_step(c.target) for c in self.calls if c.is_module and neurons.is_neuron(c.target)}
        if len(modes) > 1:
            raise UnsupportedError(self.model_name, "step_mode", "one step mode for every neuron", "'s' and 'm' mixed")
        return modes.pop()

    def _finish(self) -> Graph:
        """Outputs: the neuron groups no other group reads (recurrent synapses do not count)."""
        by_name = {n.name: n for n in self.nodes}
        groups = [n for n in self.nodes if n.ROLE == "neuron"]
        read = {_spike_source(by_name, syn) for n in groups for syn in n.inputs}
        read -= {n.name for n in groups if _reads_itself(by_name, n)}
        outputs = tuple(n.name for n in groups if n.name not in read)
        return verify(Graph(tuple(self.nodes), outputs=outputs, dt_s=self.dt_s, **graph_name_fields(self.name)))

    # one recorded call -> values of its outputs ----------------------------------------------------------

    def _evaluate(self, call: _Call) -> None:
        flat = [a for a in tree_flatten((call.args, call.kwargs))[0] if torch.is_tensor(a)]
        known = [self.env[id(a)] for a in flat if id(a) in self.env]
        if not known:
            return                                     # constants the model builds itself
        if call.is_module and neurons.is_neuron(call.target):
            values = self._module_call(call)            # step 0 needs its input: errors are raised here
        else:
            values = self._poisoned_on_error(call)
        for tensor, value in zip(call.outputs, values):
            self.env[id(tensor)] = value

    def _poisoned_on_error(self, call: _Call) -> list:
        try:
            return self._module_call(call) if call.is_module else self._tensor_op(call)
        except UnsupportedError as error:
            return [_Poison(error)] * len(call.outputs)

    def _value(self, tensor, call: _Call):
        """The form of a traced tensor argument (raising the poison's error, resolving the raw input)."""
        value = self.env.get(id(tensor)) if torch.is_tensor(tensor) else None
        if value is RAW_INPUT:
            return self._input_form(tensor.shape[2:] if self.multi_step else tensor.shape[1:],
                                    2 if self.multi_step else 1, call)
        if isinstance(value, _Poison):
            raise value.error
        return value

    def _input_form(self, feature, lead: int, call: _Call) -> Form:
        feature = tuple(int(d) for d in feature)
        if self.input_name is None:
            self.input_name = "input"
            self.nodes.append(Input("input", feature))
            self.shapes["input"] = feature
        elif self.shapes["input"] != feature:
            raise UnsupportedError(call.path, "input", f"one per-step input shape {self.shapes['input']}",
                                   f"the example input used as {feature} too")
        return spikes("input", feature, lead)

    # leaf modules ---------------------------------------------------------------------------------------

    def _module_call(self, call: _Call) -> list:
        module = call.target
        if not call.args:
            raise UnsupportedError(call.path, "arguments", "the input tensor passed positionally", "keywords only")
        if neurons.is_neuron(module):
            return self._neuron_call(call)
        form = self._value(call.args[0], call)
        if isinstance(module, nn.MaxPool2d):
            return [self._max_pool(call, form, module.kernel_size, module.stride, module.padding,
                                   module.dilation, module.ceil_mode)]
        return [form.then(op) if op is not None else form for op in [_module_op(call, form)]]

    def _neuron_call(self, call: _Call) -> list:
        index = self.seen[id(call.target)]
        self.seen[id(call.target)] += 1
        later = _Poison(UnsupportedError(call.path, "time step", "values of one time step (a neuron reads "
                                         "the step's input)", "a value from a later step's neuron call"))
        if index > 0:
            return [later] * len(call.outputs)
        form = self._value(call.args[0], call)
        if not form.terms:
            raise UnsupportedError(call.path, "input", "synaptic input from spikes", "a constant")
        layer = self._add_neuron(call, form)
        state = _Poison(UnsupportedError(call.path, "output", "spikes (output 0 of a neuron module; layers "
                                         "exchange only spikes)", "its membrane/synaptic state used as an input"))
        if not layer.node.emits_spikes():       # a readout (Norse LICell): its output is a membrane
            return [state] * len(call.outputs)
        return [spikes(layer.node.name, form.feature, form.lead)] + [state] * (len(call.outputs) - 1)

    def _add_neuron(self, call: _Call, form: Form):
        name = self._unique(_node_name("lif", call.path))
        synapse_names = [f"syn_{name[4:]}" if len(form.terms) == 1 else f"syn_{name[4:]}_{i}"
                         for i in range(len(form.terms))]
        layer = neurons.neuron_layer(call.path, call.target, name, tuple(synapse_names), form.feature)
        if layer.input_delay and torch.any(form.const != 0):
            raise UnsupportedError(call.path, "bias", "none (this neuron reads the previous step's current, so "
                                   "its first step sees no input; a constant bias would reach it: "
                                   "nn.Linear(bias=False))", "a constant input")
        for i, term in enumerate(form.terms):
            const = form.const if i == 0 else None
            synapses = _synapse_nodes(self, synapse_names[i], term, const, layer.input_scale, call.path)
            self.nodes += [dataclasses.replace(n, delay_steps=n.delay_steps + layer.input_delay)
                           if layer.input_delay and hasattr(n, "delay_steps") else n for n in synapses]
        self.nodes += layer.extra_synapses
        self.nodes.append(layer.node)
        self.shapes[name] = form.feature
        return layer

    def _max_pool(self, call: _Call, form: Form, kernel, stride, padding, dilation, ceil_mode) -> Form:
        source = form.spike_source()
        if source is None:
            raise UnsupportedError(call.path, "MaxPool2d input", "spikes of one neuron layer (a max of 0/1 "
                                   "spikes is an OR; the max of real-valued currents is computed exactly by no "
                                   "spiking unit: move MaxPool2d after the neuron layer, or use AvgPool2d)",
                                   "a synaptic current or a sum")
        kernel, stride = _pair(kernel), _pair(stride or kernel)
        if _pair(padding) != (0, 0) or _pair(dilation) != (1, 1) or ceil_mode:
            raise UnsupportedError(call.path, "padding/dilation/ceil_mode", "0/1/False",
                                   f"{padding}/{dilation}/{ceil_mode}")
        feature = form.feature
        if len(feature) != 3 or self.shapes[source] != feature:
            raise UnsupportedError(call.path, "input shape", "(C, H, W) spikes of one layer", feature)
        base = self._unique(_node_name("maxpool", call.path))
        out = (feature[0], *conv_output_hw(feature[1:], kernel, stride, (0, 0)))
        pool = SumPool2d(f"sum_{base}", source, in_shape=feature, kernel=kernel, stride=stride, scale=1.0)
        unit = lif_group(base, (pool.name,), out, voltage_decay=0.5, threshold=0.5, reset=ResetKind.ZERO,
                         comparison=Comparison.GT)
        self.nodes += [pool, unit]
        self.shapes[base] = out
        return spikes(base, out, form.lead)

    # tensor ops between leaves --------------------------------------------------------------------------

    def _tensor_op(self, call: _Call) -> list:
        op = _op_name(call.target)
        args = call.args
        if op == "getitem":
            return [self._getitem(call)]
        if op in PASSTHROUGH_OPS:
            if op == "dropout" and call.kwargs.get("training", args[2] if len(args) > 2 else True):
                raise UnsupportedError(call.path, "F.dropout training", "False (inference)", True)
            return [self._value(args[0], call)]
        if op in RESHAPE_OPS:
            return [self._reshape(call, self._value(args[0], call), call.outputs[0])]
        if op in ("add", "sub", "rsub"):
            return [self._add(call, op)]
        if op in ("mul", "div"):
            return [self._scale(call, op)]
        if op == "cat":
            return [self._cat(call)]
        if op in ("max_pool2d", "avg_pool2d"):
            return [self._functional_pool(call, op)]
        hint = ANN_HINT if op in ("relu", "sigmoid", "tanh", "gelu", "softmax", "leaky_relu") else \
            "snnc maps add, sub, mul by a constant, cat, view/reshape/flatten, x[t] and the supported modules"
        raise UnsupportedError(call.path, "op", f"an op with an exact spiking equivalent ({hint})", op)

    def _getitem(self, call: _Call) -> Form:
        tensor, index = call.args[0], call.args[1]
        if self.env.get(id(tensor)) is RAW_INPUT and isinstance(index, int) and self.steps_in_forward > 1:
            return self._input_form(tensor.shape[2:], 1, call)
        raise UnsupportedError(call.path, "indexing", "x[t] on the example input inside a time loop",
                               f"[{index!r}] on a {tuple(tensor.shape)} value")

    def _reshape(self, call: _Call, form: Form, output: torch.Tensor) -> Form:
        shape = tuple(output.shape)
        lead_dims = tuple(call.args[0].shape[:form.lead])
        merged = int(np.prod(lead_dims))
        # multi-step: [T, N, ...] <-> [T*N, ...] first (with N = 1 or C = 1 a merge also looks like a reshape
        # of the features that keeps the leading axes)
        time_batch = [lead for lead in (1, 2) if int(np.prod(shape[:lead])) == merged and shape[lead:] == form.feature]
        if self.multi_step and time_batch:
            return Form(form.terms, form.const, time_batch[0])
        if shape[:form.lead] == lead_dims:
            return form.then(ReshapeOp(shape[form.lead:])) if shape[form.lead:] != form.feature else form
        if time_batch:
            return Form(form.terms, form.const, time_batch[0])
        raise UnsupportedError(call.path, "reshape", "a view that keeps the time and batch axes",
                               f"{tuple(call.args[0].shape)} -> {shape}")

    def _add(self, call: _Call, op: str) -> Form:
        a, b = call.args[0], call.args[1] if len(call.args) > 1 else call.kwargs.get("other")
        alpha = call.kwargs.get("alpha", 1)
        forms = [self._operand(x, call) for x in (a, b)]
        sign = -1.0 if op in ("sub", "rsub") else 1.0
        if op == "rsub":
            forms.reverse()
        first, second = forms
        second = second.then(ScaleOp(sign * alpha)) if sign * alpha != 1 else second
        if first.feature != second.feature:
            raise UnsupportedError(call.path, op, "operands of one shape (no broadcasting)",
                                   f"{first.feature} and {second.feature}")
        return first.plus(second)

    def _operand(self, x, call: _Call) -> Form:
        if torch.is_tensor(x) and id(x) in self.env:
            return self._value(x, call)
        template = next(self._value(t, call) for t in call.args if torch.is_tensor(t) and id(t) in self.env)
        constant = torch.as_tensor(x, dtype=torch.float64)
        if constant.dim() > len(template.feature):
            raise UnsupportedError(call.path, "constant", "a scalar or a tensor over the features",
                                   tuple(constant.shape))
        const = (template.const * 0 + constant).reshape(1, *template.feature)
        return Form((), const, template.lead)

    def _scale(self, call: _Call, op: str) -> Form:
        traced = [x for x in call.args[:2] if torch.is_tensor(x) and id(x) in self.env]
        if len(traced) > 1:
            raise UnsupportedError(call.path, op, "a spike tensor times a constant (a product of two spike "
                                   "or current tensors, as in spiking self-attention, has no exact synaptic "
                                   "equivalent)", "a product of two traced tensors")
        form = self._value(traced[0], call)
        other = call.args[1] if call.args[0] is traced[0] else call.args[0]
        if op == "div" and call.args[0] is not traced[0]:
            raise UnsupportedError(call.path, op, "division by a constant", "a constant divided by a value")
        factor = torch.as_tensor(other, dtype=torch.float64)
        factor = 1.0 / factor if op == "div" else factor
        if factor.numel() == 1:
            return form.then(ScaleOp(float(factor)))
        if factor.dim() > len(form.feature):
            raise UnsupportedError(call.path, op, "a constant over the feature axes", tuple(factor.shape))
        return form.then(ScaleOp(factor))

    def _cat(self, call: _Call) -> Form:
        parts = call.args[0]
        dim = call.kwargs.get("dim", call.args[1] if len(call.args) > 1 else 0)
        forms = [self._operand(p, call) for p in parts]
        lead = forms[0].lead
        axis = dim - lead if dim >= 0 else len(forms[0].feature) + dim
        if axis < 0:
            raise UnsupportedError(call.path, "cat dim", "a feature axis", f"{dim} (a time or batch axis)")
        sizes = [f.feature[axis] for f in forms]
        result = None
        for i, f in enumerate(forms):
            part = f.then(EmbedOp(axis, sum(sizes[:i]), sum(sizes[i + 1:])))
            result = part if result is None else result.plus(part)
        return result

    def _functional_pool(self, call: _Call, op: str) -> Form:
        names = ("input", "kernel_size", "stride", "padding", "ceil_mode" if op == "avg_pool2d" else "dilation",
                 "count_include_pad" if op == "avg_pool2d" else "ceil_mode", "divisor_override")
        bound = dict(zip(names, call.args))
        bound.update(call.kwargs)
        form = self._value(bound["input"], call)
        if op == "max_pool2d":
            return self._max_pool(call, form, bound["kernel_size"], bound.get("stride"),
                                  bound.get("padding", 0), bound.get("dilation", 1), bound.get("ceil_mode", False))
        module = nn.AvgPool2d(bound["kernel_size"], bound.get("stride"), bound.get("padding", 0),
                              bound.get("ceil_mode", False), bound.get("count_include_pad", True),
                              bound.get("divisor_override"))
        return form.then(_avg_pool_op(call.path, module))

    def _unique(self, name: str) -> str:
        taken = {n.name for n in self.nodes}
        base, i = name, 1
        while name in taken:
            i += 1
            name = f"{base}_{i}"
        return name


# --- modules and synapses -----------------------------------------------------------------------------

def _module_op(call: _Call, form: Form):
    """The affine op of a non-neuron leaf module (None: identity at inference)."""
    module, path = call.target, call.path
    kind = type(module).__name__
    if isinstance(module, (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout1d)) or \
            (type(module).__module__.startswith("spikingjelly") and kind in ("Dropout", "Dropout2d")):
        return None
    if isinstance(module, nn.Linear):
        return LinearOp(_f64(module.weight), _f64_or_none(module.bias))
    if isinstance(module, nn.Conv2d):
        return _conv_op(path, module, form.feature)
    if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _batch_norm_op(path, module)
    if isinstance(module, nn.AvgPool2d):
        return _avg_pool_op(path, module)
    if isinstance(module, (nn.Flatten, nn.Unflatten)):
        feature = tuple(call.outputs[0].shape[form.lead:])
        return ReshapeOp(feature) if feature != form.feature else None
    hint = ANN_HINT if isinstance(module, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.LeakyReLU, nn.Softmax)) \
        else ("supported: nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d (of spikes), nn.BatchNorm1d/2d, "
              "nn.Flatten, nn.Dropout, nn.Identity and neurons " + ", ".join(neurons.SUPPORTED_NEURONS))
    raise UnsupportedError(path, "type", f"a module with an exact spiking equivalent ({hint})", kind)


def _conv_op(path: str, module: nn.Conv2d, feature) -> ConvOp:
    if len(feature) != 3:
        raise UnsupportedError(path, "input shape", "(C, H, W)", feature)
    if module.padding_mode != "zeros":
        raise UnsupportedError(path, "padding_mode", "'zeros'", module.padding_mode)
    if _pair(module.dilation) != (1, 1):
        raise UnsupportedError(path, "dilation", "(1, 1)", _pair(module.dilation))
    if module.padding == "same":
        pads = []
        for k in module.kernel_size:
            total = k - 1
            pads += [total // 2, total - total // 2]
    elif module.padding == "valid":
        pads = [0, 0, 0, 0]
    else:
        ph, pw = _pair(module.padding)
        pads = [ph, ph, pw, pw]
    return ConvOp(_f64(module.weight), _f64_or_none(module.bias), _pair(module.stride), tuple(pads),
                  module.groups)


def _batch_norm_op(path: str, module) -> ChannelAffineOp:
    if module.running_mean is None or module.running_var is None:
        raise UnsupportedError(path, "track_running_stats", "True (inference statistics)", False)
    std = torch.sqrt(_f64(module.running_var) + float(module.eps))
    weight = _f64(module.weight) if module.weight is not None else torch.ones_like(std)
    bias = _f64(module.bias) if module.bias is not None else torch.zeros_like(std)
    scale = weight / std
    return ChannelAffineOp(scale, bias - _f64(module.running_mean) * scale)


def _avg_pool_op(path: str, module: nn.AvgPool2d) -> AvgPoolOp:
    if _pair(module.padding) != (0, 0) or module.ceil_mode or module.divisor_override:
        raise UnsupportedError(path, "padding/ceil_mode/divisor_override", "0/False/None",
                               f"{module.padding}/{module.ceil_mode}/{module.divisor_override}")
    return AvgPoolOp(_pair(module.kernel_size), _pair(module.stride or module.kernel_size))


def _synapse_nodes(translator, name: str, term, const, scale, path: str) -> list:
    """IR nodes for one term into a neuron: the synapse (and a Flatten before a Dense of a 3-D source).
    ``const`` (the form's constant, for the first term only) becomes its bias; ``scale`` multiplies all
    (a float, or an array with one factor per target neuron: each output row or channel is scaled)."""
    if np.ndim(scale):
        nodes = _synapse_nodes(translator, name, term, const, 1.0, path)
        return nodes[:-1] + [_rows_scaled(nodes[-1], np.asarray(scale, np.float64), path)]
    source_shape = translator.shapes[term.source]
    if term.ops and isinstance(term.ops[0], ReshapeOp) and len(term.ops[0].shape) == 1 and len(source_shape) > 1:
        flat = _flatten_node(translator, term.source)
        return [flat] + _synapse_nodes(translator, name, Term(flat.name, term.ops[1:]), const, scale, path)
    factor, ops = split_scale(term.ops)
    factor *= scale
    bias = None if const is None or not torch.any(const != 0) else const[0] * scale
    node = _canonical_synapse(name, term.source, source_shape, ops, factor, bias)
    if node is not None:
        return [node]
    weight = linear_part(term, source_shape) * scale
    flat_bias = None if bias is None else bias.reshape(-1).numpy().copy()
    if len(source_shape) == 1:
        return [Dense(name, term.source, weight.numpy().copy(), flat_bias)]
    flat = _flatten_node(translator, term.source)
    return [flat, Dense(name, flat.name, weight.numpy().copy(), flat_bias)]


def _rows_scaled(node, scale: np.ndarray, path: str):
    """``node`` with its output for neuron i multiplied by ``scale[i]`` (``scale`` broadcastable to the
    target's shape): Dense rows, or Conv2d / SumPool2d output channels when the factor is one per channel."""
    if isinstance(node, Dense):
        rows = np.broadcast_to(scale, np.shape(scale)).reshape(-1)
        rows = np.broadcast_to(rows, (node.weight.shape[0],)) if rows.size == 1 else rows
        bias = None if node.bias is None else node.bias * rows
        return dataclasses.replace(node, weight=node.weight * rows[:, None], bias=bias)
    channels = node.weight.shape[0] if isinstance(node, Conv2d) else node.in_shape[0]
    per_channel = np.broadcast_to(scale, (channels, *np.shape(scale)[1:])).reshape(channels, -1)
    if np.any(per_channel != per_channel[:, :1]):
        raise UnsupportedError(path, "w", "one leak per output channel behind a convolution or pooling "
                               "(decay_input scales the input by the leak)", "leaks that differ within a channel")
    factor = per_channel[:, 0]
    if isinstance(node, SumPool2d):      # a per-channel pooling scale is a depthwise convolution
        weight = np.broadcast_to((node.scale * factor)[:, None, None, None], (channels, 1, *node.kernel)).copy()
        return Conv2d(node.name, node.source, weight, in_shape=tuple(node.in_shape), stride=tuple(node.stride),
                      groups=channels, delay_steps=node.delay_steps)
    bias = None if node.bias is None else node.bias * factor
    return dataclasses.replace(node, weight=node.weight * factor[:, None, None, None], bias=bias)


def _flatten_node(translator, source: str) -> Flatten:
    name = translator._unique(f"flat_{source}")
    translator.shapes[name] = (int(np.prod(translator.shapes[source])),)
    return Flatten(name, source)


def _canonical_synapse(name: str, source: str, source_shape, ops: tuple, factor: float, bias):
    """The one IR synapse that equals ``ops`` (times ``factor``, plus ``bias``), or None."""
    bn = ops[-1] if ops and isinstance(ops[-1], ChannelAffineOp) else None
    core = ops[:-1] if bn is not None else ops
    channel_scale = bn.scale if bn is not None else None
    if len(core) == 1 and isinstance(core[0], ConvOp) and core[0].symmetric_padding is not None:
        conv = core[0]
        weight = conv.weight * factor
        if channel_scale is not None:
            weight = weight * channel_scale.reshape(-1, 1, 1, 1)
        channel_bias = _per_channel(bias)
        if bias is not None and channel_bias is None:
            return None
        return Conv2d(name, source, weight.numpy().copy(), in_shape=tuple(source_shape), stride=conv.stride,
                      padding=conv.symmetric_padding, groups=conv.groups, bias=channel_bias)
    if len(core) == 1 and isinstance(core[0], LinearOp) and len(source_shape) == 1:
        weight = core[0].weight * factor
        if channel_scale is not None:
            weight = weight * channel_scale.reshape(-1, 1)
        return Dense(name, source, weight.numpy().copy(), None if bias is None else bias.numpy().copy())
    if len(ops) == 1 and isinstance(ops[0], AvgPoolOp) and bias is None:
        pool = ops[0]
        return SumPool2d(name, source, in_shape=tuple(source_shape), kernel=pool.kernel, stride=pool.stride,
                         scale=factor / (pool.kernel[0] * pool.kernel[1]))
    if not ops and len(source_shape) == 3:
        channels = source_shape[0]
        return Conv2d(name, source, np.full((channels, 1, 1, 1), factor), in_shape=tuple(source_shape),
                      groups=channels, bias=_per_channel(bias))
    return None


def _per_channel(bias):
    """A (C, H, W) constant that is one value per channel, as (C,); None if it is not."""
    if bias is None:
        return None
    flat = bias.reshape(bias.shape[0], -1)
    return flat[:, 0].numpy().copy() if torch.all(flat == flat[:, :1]) else None


def _spike_source(by_name: dict, synapse: str) -> str:
    """The spiking node a synapse reads (through a Flatten)."""
    source = by_name[synapse].source
    return by_name[source].source if isinstance(by_name[source], Flatten) else source


def _reads_itself(by_name: dict, neuron) -> bool:
    """True when every synapse reading ``neuron`` feeds ``neuron`` itself (a recurrent group)."""
    readers = [n for n in by_name.values() if n.ROLE == "neuron" and n is not neuron
               and any(_spike_source(by_name, s) == neuron.name for s in n.inputs)]
    return not readers


def _op_name(func) -> str:
    name = getattr(func, "__name__", type(func).__name__).strip("_")
    if name in ("iadd", "radd", "add_"):
        return "add"
    if name in ("isub", "sub_"):
        return "sub"
    if name in ("imul", "rmul", "mul_"):
        return "mul"
    if name in ("truediv", "itruediv", "div_"):
        return "div"
    return name


def _node_name(kind: str, path: str) -> str:
    return safe_name(f"{kind}_{path.replace('.', '_')}", kind)


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64).cpu().clone()


def _f64_or_none(t):
    return None if t is None else _f64(t)


def _pair(value) -> tuple[int, int]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value), int(value))
