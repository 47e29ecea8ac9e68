"""Recognition of neurons in the symbolic outputs of one ONNX step: state bindings left to structure, snn-domain
neurons, and ``CubaLIF``/``LI`` equations with their reset (subtract, zero, zero_next, none) matched in state
updates; the synapses feeding them are built by ``onnx_synapses.NetworkBuilder``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.ir_values import compact_parameter, ir_name
from snnc.frontends.onnx_interpreter import Interpreter
from snnc.frontends.onnx_step import Step
from snnc.frontends.onnx_symbolic import Cmp, Lin, close, same_lin
from snnc.frontends.onnx_synapses import NetworkBuilder
from snnc.ir.graph import Graph
from snnc.ir.names import graph_name_fields
from snnc.ir.nodes import LI, Comparison, CubaLIF, Input, ResetKind, SumPool2d
from snnc.ir.verify import verify

STATELESS = ("a membrane state as a graph input with its update as a graph output (snnTorch: pass mem to the neuron "
             "and return it), or the forward over time exported unrolled (x of shape [T >= 3, 1, ...], x[t] per "
             "step, per-step outputs stacked with torch.stack), or a Scan/Loop; got threshold comparisons but no "
             "state input: one step from a state frozen into constants (snnTorch init_hidden=True or SpikingJelly "
             "keep the state inside the module, and a one-step export loses its decay and reset)")
RESET_NAMES = {0: ResetKind.NONE, 1: ResetKind.ZERO, 2: ResetKind.ZERO_NEXT, 3: ResetKind.SUBTRACT}


@dataclass
class Neuron:
    """A neuron being recognised: its IR name, voltage state input, current state input (None: no current memory),
    the index of its spike indicator and, once built, the IR node (snn domain: the ONNX node, current and
    parameters)."""

    name: str
    v_in: str
    c_in: str | None = None
    spike: int | None = None          # spike indicator index of s[t]
    c_scale: object = None            # k where v adds k times the current update (Norse); None: k = 1
    node: object = None               # the IR neuron once built


class Recognizer(NetworkBuilder):
    """Turns the symbolic outputs of one step into IR neurons and synapses."""

    def __init__(self, path: str, step: Step, dt: float, name: str):
        super().__init__(path, step, Interpreter(path, step))
        self.dt, self.name = dt, name

    def build(self) -> Graph:
        """Evaluate the step symbolically and return the verified float IR graph: inputs, neurons (snn-domain nodes
        or recognised state equations), their synapses and the outputs."""
        env = self.ops.run()
        self.env = env
        out = {name: env[name] for name in list(self.step.state.values()) + self.step.results if name in env}
        for name in [n for n in self.step.state.values() if n] + self.step.results:
            if name not in env:
                raise self.error(name, "output", "computed by the graph")
        self.resolve_bindings(env)
        self.check_state_sizes(env)
        if not self.step.data:
            raise self.error("graph", "input", "at least one spike input besides the state inputs")
        for name in self.step.data:
            self.ir.append(Input(ir_name(name), self.step.data_shapes[name]))
            self.ir_shapes[ir_name(name)] = tuple(self.step.data_shapes[name])
        if not self.step.state and self.ops.spikes and not self.ops.snn_nodes:
            raise self.error("graph", "state inputs", STATELESS)
        if self.ops.snn_nodes:
            self.snn_neurons(env)
        else:
            self.pattern_neurons(env)
        outputs = tuple(dict.fromkeys(self.output_node(name, out[name]) for name in self.step.results))
        if not outputs:
            raise self.error("graph", "output", "at least one spike or membrane output")
        graph = Graph(tuple(self.ir), outputs, dt_s=self.dt, **graph_name_fields(self.name))
        try:
            return verify(graph)
        except SnncError as exc:
            raise ModelFileError(self.path, f"the recognised network is invalid: {exc}") from None

    # ----- bindings
    def resolve_bindings(self, env) -> None:
        """Bind each state input that metadata and names left open to the one free output that decays it; inputs no
        output decays become spike data."""
        state = self.step.state
        open_inputs = [i for i, o in state.items() if not o]
        if not open_inputs:
            return
        free = [o for o in self.graph_outputs() if o not in state.values()]
        while open_inputs:
            progress = False
            for name in list(open_inputs):
                owners = [o for o in free if self.decays(env[o], name, open_inputs)]
                if len(owners) == 1:
                    state[name] = owners[0]
                    free.remove(owners[0])
                    open_inputs.remove(name)
                    progress = True
            if not progress:
                break
        for name in open_inputs:
            del state[name]     # an input no output decays is spike data (history needs names/metadata)
        self.step.data = [i.name for i in self.step.graph.input
                          if i.name not in state and i.name not in self.step.initializers]
        self.step.results = [o for o in self.step.results if o not in state.values()]

    def check_state_sizes(self, env) -> None:
        """A state output holds as many values as the state input it feeds back into."""
        for v_in, v_out in self.step.state.items():
            shape, value = tuple(self.ops.state_shape(v_in)), env[v_out]
            if isinstance(value, Lin) and int(np.prod(value.shape)) != int(np.prod(shape)):
                raise self.error(v_out, "shape", f"as many values as state input '{v_in}' {[1, *shape]} "
                                 f"({int(np.prod(shape))}), got an update of shape {list(value.shape)} "
                                 f"({int(np.prod(value.shape))})")

    def graph_outputs(self) -> list[str]:
        """The names of the step graph's outputs."""
        return [o.name for o in self.step.graph.output]

    def decays(self, value, name: str, candidates: list[str]) -> bool:
        """True when ``value`` holds input ``name`` elementwise (directly or inside a gate) and no other
        still-unbound input."""
        if not isinstance(value, Lin):
            return False
        direct = set()
        for key in value.terms:
            if key[0] == "in":
                direct.add(key[1])
            elif key[0] == "gate":
                direct |= {k[1] for k in self.ops.gates[key[2]].terms if k[0] == "in"}
        return name in direct and not (direct & set(candidates) - {name})

    def copies_spike(self, value) -> bool:
        """Whether ``value`` is exactly one spike indicator (coefficient 1, no constant)."""
        return isinstance(value, Lin) and len(value.terms) == 1 and next(iter(value.terms))[0] == "spk" \
            and np.all(next(iter(value.terms.values())) == 1) and not np.any(value.const)

    # ----- snn domain
    def snn_neurons(self, env) -> None:
        """Build the neurons of snn-domain nodes (LIF, IF, LI): their state inputs must be bound to the node's
        outputs; spike history bound, then each neuron with its synapses."""
        inverse = {o: i for i, o in self.step.state.items()}
        for index, (node, current, states, params) in enumerate(self.ops.snn_nodes):
            name = self.snn_name(node)
            for k, state in enumerate(states):
                out_name = node.output[(0 if node.op_type == "LI" else 1) + k]
                key = next(iter(state.terms)) if len(state.terms) == 1 else ("", "")
                if key[0] != "in" or inverse.get(out_name) != key[1]:
                    raise self.error(node.name or node.op_type, f"inputs[{k + 1}]", "a state input bound to "
                                     f"the node's output '{out_name}'")
            spike = None if node.op_type == "LI" else next(i for i, s in enumerate(self.ops.spikes)
                                                            if ("snn", index) in s.expr.terms)
            if spike is not None:
                self.spike_owner[spike] = name
            self.neurons[name] = Neuron(name, "", spike=spike, node=(node, current, params))
            self.ir_shapes[name] = tuple(self.ops.state_shape(next(iter(states[-1].terms))[1]))
        for name in [n.name for n in self.step.graph.input if n.name in self.step.state]:
            self.bind_history(env, name)
        self.or_unit_neurons()
        for neuron in self.neurons.values():
            node, current, params = neuron.node
            inputs = self.synapses(neuron.name, current, bias_to_synapse=True)
            self.ir.append(self.snn_ir(node, neuron.name, inputs, current.shape[1:], params))

    def snn_name(self, node) -> str:
        """IR name of an snn-domain neuron: its spike output, or for ``LI`` (no spikes) the graph output that
        is an Identity of its membrane, else the membrane output less the exporter's ``.v_out`` suffix."""
        if node.op_type != "LI":
            return ir_name(node.output[0])
        membrane = node.output[-1]
        outputs = set(self.graph_outputs())
        for other in self.step.graph.node:
            if other.op_type == "Identity" and list(other.input) == [membrane] and other.output[0] in outputs:
                return ir_name(other.output[0])
        return ir_name(membrane[:-len(".v_out")] if membrane.endswith(".v_out") else membrane)

    def snn_ir(self, node, name: str, inputs, shape, params) -> object:
        """The CubaLIF (LIF, IF) or LI node of an snn-domain ONNX node, with its reset kind (attribute ``reset``) and
        comparison (``ge``)."""
        from onnx import helper
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        full = [np.broadcast_to(np.asarray(p, dtype=np.float64), (1, *shape))[0] for p in params]
        compact = [compact_parameter(p) for p in full]
        if node.op_type == "LI":
            return LI(name, inputs, tuple(shape), current_decay=compact[0], voltage_decay=compact[1], bias=compact[2])
        reset = RESET_NAMES.get(int(attrs.get("reset", 3)))
        comparison = Comparison.GE if int(attrs.get("ge", 0)) else Comparison.GT
        if reset is None:
            raise self.error(node.name or node.op_type, "reset", "0 (none), 1 (zero), 2 (zero_next), 3 (subtract)")
        if node.op_type == "IF":
            return CubaLIF(name, inputs, tuple(shape), current_decay=1.0, voltage_decay=0.0, threshold=compact[0],
                           reset=reset, comparison=comparison)
        return CubaLIF(name, inputs, tuple(shape), current_decay=compact[0], voltage_decay=compact[1],
                       threshold=compact[2], bias=compact[3], reset=reset, comparison=comparison)

    # ----- pattern recognition
    def pattern_neurons(self, env) -> None:
        """Recognise neurons in the state updates of plain ONNX ops: voltage and current states, each voltage's spike
        indicator, spike history, then one CubaLIF/LI per voltage."""
        state = self.step.state
        voltage = {}
        for v_in, v_out in state.items():
            value = env[v_out]
            if not isinstance(value, Lin):
                raise self.error(v_out, "output", "a state update linear in the inputs (got "
                                 f"{_kind(value)})")
            if self.copies_spike(value):
                continue
            voltage[v_in] = value
        currents = self.current_states(env, voltage)
        for v_in in voltage:
            if v_in in currents.values():
                continue
            c_in = currents.get(v_in)
            self.neurons[v_in] = Neuron(ir_name(v_in), v_in, c_in=c_in, c_scale=None if c_in is None else
                                        self.current_scale(voltage[v_in], voltage[c_in]))
            self.ir_shapes[ir_name(v_in)] = tuple(self.ops.state_shape(v_in))
        for v_in, neuron in self.neurons.items():
            neuron.spike = self.find_spike(neuron, env[state[v_in]])
            if neuron.spike is not None:
                self.spike_owner[neuron.spike] = neuron.name
        for name in list(state):
            self.bind_history(env, name)
        self.or_unit_neurons()
        for v_in, neuron in self.neurons.items():
            self.ir.append(self.pattern_ir(neuron, env))

    def or_unit_neurons(self) -> None:
        """The OR unit of every MaxPool of spikes (``Interpreter.op_MaxPool``): a weight-1 ``SumPool2d`` of its
        source neuron's spikes into a memoryless group with threshold 0.5 and reset to zero. Its input is a
        count of spikes, so v is 0 before every step and it fires in the same step as any spike in its window
        (voltage decay 0.5 is never applied to a nonzero v; it is a value every target holds)."""
        for spike, (source, kernel, stride, in_shape) in sorted(self.ops.or_units.items()):
            owner = self.spike_owner.get(source)
            if owner is None or self.ir_shapes.get(owner) != in_shape:
                raise self.error(f"maxpool of spike {source}", "input", f"the {list(in_shape)} spikes of one "
                                 "recognised neuron")
            name = self.unique(f"maxpool_{owner}")
            pool = SumPool2d(f"sum_{name}", owner, in_shape=in_shape, kernel=kernel, stride=stride, scale=1.0)
            shape = pool.output_shape({})
            self.ir += [pool, CubaLIF(name, (pool.name,), shape, current_decay=1.0, voltage_decay=0.5,
                                      threshold=0.5, reset=ResetKind.ZERO, comparison=Comparison.GT)]
            self.ir_shapes[name] = tuple(shape)
            self.spike_owner[spike] = name

    def current_states(self, env, voltage: dict) -> dict[str, str]:
        """voltage input -> current input, where the voltage update contains the current update."""
        out = {}
        for v_in, v_val in voltage.items():
            for c_in, c_val in voltage.items():
                if c_in == v_in or c_in in out.values() or not c_val.terms:
                    continue
                if ("in", c_in) in c_val.terms and ("in", v_in) not in c_val.terms and \
                        (self.contains(v_val, c_val) or self.current_scale(v_val, c_val) is not None) and \
                        not any(k[0] == "spk" for k in c_val.terms):
                    out[v_in] = c_in
        return out

    def current_scale(self, whole: Lin, part: Lin):
        """None when ``whole`` contains the current update ``part`` itself (snnTorch ``Synaptic``); else k > 0
        (per neuron) with every term of ``part`` in ``whole`` (or a gate of it) times k: Norse's LIF adds
        ``a * (i + X)`` to v and keeps i + X as its current (``norse_layer``: the synapses carry a); None
        also when there is no such k (the caller has checked ``contains``)."""
        if self.contains(whole, part):
            return None
        candidates = [whole] + [self.ops.gates[k[2]] for k in whole.terms if k[0] == "gate"]
        for candidate in candidates:
            k = _scale_within(candidate, part)
            if k is not None:
                return k
        return None

    def contains(self, whole: Lin, part: Lin) -> bool:
        """True when every term of ``part`` is in ``whole`` with the same coefficient (also inside a gate
        of ``whole``, as in ``(1 - s) * (beta*v + c')``)."""
        candidates = [whole] + [self.ops.gates[k[2]] for k in whole.terms if k[0] == "gate"]
        return any(all(k in c.terms and np.allclose(c.terms[k], part.terms[k], rtol=1e-12, atol=0)
                       for k in part.terms) for c in candidates)

    def find_spike(self, neuron: Neuron, value: Lin) -> int | None:
        """The spike indicator of s[t]: its expression is proportional to (pre-reset v) - threshold."""
        for index, spike in enumerate(self.ops.spikes):
            if self.is_prev_spike(index, neuron.v_in):
                continue
            for candidate in self.voltage_candidates(value, index):
                if _proportional(spike.expr, candidate) is not None:
                    return index
        return None

    def voltage_candidates(self, value: Lin, spike: int) -> list[Lin]:
        """Lins that may be the pre-reset voltage: the stored value itself, or the inner expression of a
        gate by ``spike`` (state stored after reset), or the value plus a subtracted spike term."""
        out = [value]
        for key in value.terms:
            if key[0] == "gate" and key[1] == spike:
                out.append(self.ops.gates[key[2]])
        if ("spk", spike) in value.terms:
            out.append(Lin(value.shape, {k: c for k, c in value.terms.items() if k != ("spk", spike)}, value.const))
        return out

    def delayed_spike(self, index: int) -> tuple[str, int] | None:
        """(neuron, 1) when spike indicator ``index`` recomputes a neuron's previous spike from its state input
        (an unrolled loop's recurrent synapse reads s[t-1] as the threshold test of the stored membrane)."""
        for v_in, neuron in self.neurons.items():
            if neuron.spike is None or not self.is_prev_spike(index, v_in) or \
                    self.ops.spikes[index].comparison != self.ops.spikes[neuron.spike].comparison:
                continue
            value = self.env[self.step.state[v_in]]
            expr = self.ops.spikes[neuron.spike].expr
            pre = next((c for c in self.voltage_candidates(value, neuron.spike) if _proportional(expr, c) is not None),
                       None)
            if pre is None:
                continue
            scale = _proportional(expr, pre)
            threshold = (np.broadcast_to(pre.const, pre.shape).reshape(-1) -
                         np.broadcast_to(expr.const, expr.shape).reshape(-1) / scale.reshape(-1)).reshape(pre.shape)
            if self.prev_spike(v_in, threshold) == index:
                return neuron.name, 1
        return None

    def is_prev_spike(self, index: int, v_in: str) -> bool:
        """Whether spike indicator ``index`` tests the stored voltage ``v_in`` itself (the previous step's spike)."""
        expr = self.ops.spikes[index].expr
        return set(expr.terms) == {("in", v_in)}

    def bind_history(self, env, name: str) -> None:
        """A state input whose output copies a spike (or another history input) is spike history."""
        out = self.step.state.get(name)
        if not out or not self.copies_spike(env[out]) and not self.copies_input(env[out]):
            return
        copied, value = [name], env[out]
        while self.copies_input(value):
            prev = next(iter(value.terms))[1]
            if prev in copied:
                raise self.error(out, "output", "spike history of a recognised neuron (state copies that end at a "
                                 f"spike), got copies in a cycle: {' <- '.join(copied + [prev])}")
            copied.append(prev)
            value = env[self.step.state[prev]]
        chain = len(copied)
        spike = next(iter(value.terms))[1]
        if spike not in self.spike_owner:
            raise self.error(out, "output", "spike history of a recognised neuron")
        self.history[name] = (self.spike_owner[spike], chain)

    def copies_input(self, value) -> bool:
        """Whether ``value`` is exactly one state input (coefficient 1, no constant): history of history."""
        return isinstance(value, Lin) and len(value.terms) == 1 and next(iter(value.terms))[0] == "in" \
            and next(iter(value.terms))[1] in self.step.state and np.all(next(iter(value.terms.values())) == 1) \
            and not np.any(value.const)

    def pattern_ir(self, neuron: Neuron, env):
        """The CubaLIF (or LI, without a spike) of a recognised voltage state: decays, bias, threshold, reset kind
        and comparison from its update, with its synapses."""
        state = self.step.state
        value = env[state[neuron.v_in]]
        spike = neuron.spike
        pre, reset, threshold, comparison = self.split_reset(neuron, value, spike)
        beta = pre.terms.get(("in", neuron.v_in))
        rest = Lin(pre.shape, {k: c for k, c in pre.terms.items() if k != ("in", neuron.v_in)}, pre.const)
        voltage_decay = 1.0 - (np.zeros(pre.shape) if beta is None else np.broadcast_to(beta, pre.shape))
        if neuron.c_in is not None:
            current = env[state[neuron.c_in]]
            alpha = current.terms.get(("in", neuron.c_in))
            drive = Lin(current.shape, {k: c for k, c in current.terms.items() if k != ("in", neuron.c_in)},
                        current.const)
            rest = self.ops.reshaped(rest, current.shape) if rest.shape != current.shape else rest
            if neuron.c_scale is None:
                rest = self.add_lin(rest, current, -1.0)
            else:
                drive, rest = self.scaled_current(rest, drive, neuron.c_in, neuron.c_scale)
            bias, current_decay = rest.const, 1.0 - np.broadcast_to(alpha, current.shape)
            if rest.terms:
                raise self.error(state[neuron.v_in], "expression", "beta*v + (current update) + bias; other "
                                 f"terms found: {sorted(str(k) for k in rest.terms)[:3]}")
            inputs = self.synapses(neuron.name, drive, bias_to_synapse=True)
        else:
            current_decay, bias = np.ones(pre.shape), rest.const
            inputs = self.synapses(neuron.name, Lin(rest.shape, rest.terms, np.zeros(rest.shape)),
                                   bias_to_synapse=False)
        shape = self.ir_shapes[neuron.name]
        per_neuron = lambda arr: compact_parameter(np.broadcast_to(arr, pre.shape).reshape(shape))  # noqa: E731
        common = dict(current_decay=per_neuron(current_decay), voltage_decay=per_neuron(voltage_decay),
                      bias=per_neuron(bias))
        if spike is None:
            return LI(neuron.name, inputs, shape, **common)
        return CubaLIF(neuron.name, inputs, shape, threshold=per_neuron(threshold), reset=reset,
                       comparison=comparison, **common)

    def scaled_current(self, rest: Lin, drive: Lin, c_in: str, scale) -> tuple[Lin, Lin]:
        """(drive into the current ``u = k c``, the voltage update less ``k c``) for a voltage that adds k times the
        current update (``current_scale``): the synapses take the voltage's own coefficients (k times the
        current's), its bias k times the current's constant."""
        scale = np.broadcast_to(scale, drive.shape)
        missing = sorted(str(key) for key in drive.terms if key not in rest.terms)
        if missing:
            raise self.error(c_in, "expression", f"a voltage update holding every term of its current's update, "
                             f"missing {missing[:3]}")
        terms = {key: np.broadcast_to(rest.terms[key], drive.shape) for key in drive.terms}
        scaled = Lin(drive.shape, terms, np.broadcast_to(drive.const, drive.shape) * scale)
        left = {key: c for key, c in rest.terms.items() if key not in drive.terms and key != ("in", c_in)}
        return scaled, Lin(rest.shape, left, np.broadcast_to(rest.const, rest.shape) - scaled.const)

    def add_lin(self, a: Lin, b: Lin, sign: float) -> Lin:
        """``a + sign * b`` of two affine expressions."""
        return self.ops.add(a, b, sign)

    def split_reset(self, neuron: Neuron, value: Lin, spike: int | None):
        """(pre-reset update without reset terms, reset kind, threshold, comparison)."""
        v_in = neuron.v_in
        if spike is None:
            self.no_spike_terms(neuron, value)
            return value, ResetKind.NONE, None, Comparison.GT
        expr = self.ops.spikes[spike]
        pre_candidates = self.voltage_candidates(value, spike)
        after = len(pre_candidates) > 1 and any(k[0] in ("gate", "spk") and k[1] == spike for k in value.terms)
        pre = next(c for c in pre_candidates if _proportional(expr.expr, c) is not None)
        scale = _proportional(expr.expr, pre)
        threshold = (np.broadcast_to(pre.const, pre.shape).reshape(-1) -
                     np.broadcast_to(expr.expr.const, expr.expr.shape).reshape(-1) / scale.reshape(-1)).reshape(pre.shape)
        if after:
            return self.after_reset(neuron, value, pre, spike, threshold, expr.comparison)
        prev = self.prev_spike(v_in, threshold)
        return self.before_reset(neuron, pre, prev, threshold, expr.comparison)

    def after_reset(self, neuron, value, pre, spike, threshold, comparison):
        """State stored after the reset of the same step (SpikingJelly): v = (1 - s) * v' or v' - thr*s."""
        rest = self.add_lin(value, pre, -1.0)
        gate_keys = [k for k in rest.terms if k[0] == "gate" and k[1] == spike]
        if gate_keys and set(rest.terms) == set(gate_keys) and np.allclose(rest.terms[gate_keys[0]], -1.0):
            return pre, ResetKind.ZERO, threshold, comparison
        if set(rest.terms) == {("spk", spike)} and close(np.broadcast_to(-rest.terms[("spk", spike)], rest.shape),
                                                           threshold, 1e-9):
            beta = pre.terms.get(("in", neuron.v_in))
            if beta is not None and np.allclose(beta, 1.0):
                return pre, ResetKind.SUBTRACT, threshold, comparison
            raise UnsupportedError(f"{self.path}: {self.step.state[neuron.v_in]}", "reset",
                                   "subtract-after-spike only without leak (voltage decay 0)",
                                   "a leaky neuron whose decay also scales the subtracted threshold")
        raise self.error(self.step.state[neuron.v_in], "expression", "a zero or subtract reset by the spike")

    def prev_spike(self, v_in: str, threshold) -> int | None:
        """The spike indicator that tests the stored ``v_in`` against ``threshold`` (the previous step's spike), or
        None."""
        for index, spike in enumerate(self.ops.spikes):
            if self.is_prev_spike(index, v_in):
                scale = np.broadcast_to(spike.expr.terms[("in", v_in)], spike.expr.shape)
                const = np.broadcast_to(spike.expr.const, spike.expr.shape)
                if np.all(scale > 0) and close(-const / scale, threshold, 1e-9):
                    return index
        return None

    def before_reset(self, neuron, pre: Lin, prev: int | None, threshold, comparison):
        """State stored before the reset (snnTorch): the reset of s[t-1] is inside the update."""
        v_in = neuron.v_in
        prev_terms = {k: c for k, c in pre.terms.items() if prev is not None and k[0] in ("spk", "gate")
                      and k[1] == prev}
        others = {k: c for k, c in pre.terms.items() if k not in prev_terms}
        plain = Lin(pre.shape, others, pre.const)
        if any(k[0] in ("spk", "gate") for k in others):
            raise self.error(self.step.state[v_in], "expression", "reset terms driven by this neuron's own "
                             "previous spike")
        if not prev_terms:
            return plain, ResetKind.NONE, threshold, comparison
        if set(prev_terms) == {("spk", prev)} and close(np.broadcast_to(-prev_terms[("spk", prev)], pre.shape),
                                                         threshold, 1e-9):
            return plain, ResetKind.SUBTRACT, threshold, comparison
        (key, coef), = prev_terms.items() if len(prev_terms) == 1 else ((None, None),)
        if key is not None and key[0] == "gate":
            inner = self.ops.gates[key[2]]
            beta = plain.terms.get(("in", v_in))
            if same_lin(inner, plain) and np.allclose(coef, -1.0):
                return plain, ResetKind.ZERO_NEXT, threshold, comparison
            if set(inner.terms) == {("in", v_in)} and not np.any(inner.const) and beta is not None and \
                    np.allclose(coef * inner.terms[("in", v_in)], -beta):
                return plain, ResetKind.ZERO, threshold, comparison
        raise self.error(self.step.state[v_in], "expression", "a subtract, zero or zero_next reset by the "
                         "previous spike")

    def no_spike_terms(self, neuron, value: Lin) -> None:
        """Refuse a voltage without a threshold whose update still has spike or gate terms (not a recognised neuron)."""
        if any(k[0] in ("spk", "gate") for k in value.terms):
            raise self.error(self.step.state[neuron.v_in], "expression", "a recognised neuron (no threshold "
                             "of this state was found)")

    def output_node(self, name: str, value) -> str:
        """The IR node a graph output is: the neuron owning its spike indicator, an snn-domain neuron's state, or a
        recognised neuron's voltage."""
        if self.copies_spike(value):
            spike = next(iter(value.terms))[1]
            if spike in self.spike_owner:
                return self.spike_owner[spike]
        if isinstance(value, Lin) and len(value.terms) == 1:
            (key, coef), = value.terms.items()
            if key[0] == "snnstate":
                return self.snn_name(self.ops.snn_nodes[key[1]][0])
            if key[0] == "in" and key[1] in self.neurons and self.neurons[key[1]].spike is None:
                return self.neurons[key[1]].name
        for v_in, neuron in self.neurons.items():
            if self.step.state.get(v_in) and isinstance(value, Lin) and same_lin(value, self.state_value(v_in)):
                return neuron.name      # a readout membrane, or a spiking neuron's recorded membrane (mem_rec)
        raise self.error(name, "output", "the spikes of a recognised neuron (Cast of a threshold comparison, "
                         "optionally times 1) or a readout membrane")

    def state_value(self, v_in: str):
        """The symbolic value of the output bound to state input ``v_in`` (None when unbound)."""
        return self.env.get(self.step.state[v_in])


def _proportional(expr: Lin, pre: Lin):
    """k > 0 (array) with expr.terms == k * pre.terms, or None."""
    if set(expr.terms) != set(pre.terms) or not expr.terms:
        return None
    if int(np.prod(expr.shape)) != int(np.prod(pre.shape)):
        return None
    flat = lambda lin, key: np.broadcast_to(lin.terms[key], lin.shape).reshape(-1)  # noqa: E731
    key = next(iter(expr.terms))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = flat(expr, key) / flat(pre, key)
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        return None
    for other in expr.terms:
        if not np.allclose(flat(expr, other), k * flat(pre, other), rtol=1e-9, atol=0):
            return None
    return k.reshape(pre.shape)


def _scale_within(whole: Lin, part: Lin):
    """k > 0 (array of ``part``'s shape) with every term of ``part`` in ``whole`` times k, or None."""
    if not part.terms or not set(part.terms) <= set(whole.terms) or whole.shape != part.shape:
        return None
    flat = lambda lin, key: np.broadcast_to(lin.terms[key], lin.shape).reshape(-1)  # noqa: E731
    key = next(iter(part.terms))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = flat(whole, key) / flat(part, key)
    if not np.all(np.isfinite(k)) or np.any(k <= 0):
        return None
    if not all(np.allclose(flat(whole, other), k * flat(part, other), rtol=1e-9, atol=0) for other in part.terms):
        return None
    return k.reshape(part.shape)


def _kind(value) -> str:
    if isinstance(value, Cmp):
        return "a threshold comparison; Cast it to float"
    return "a constant" if isinstance(value, np.ndarray) else type(value).__name__.lstrip("_")
