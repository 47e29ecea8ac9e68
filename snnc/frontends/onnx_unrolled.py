"""Unrolled time loops: a forward that loops over time in Python (snnTorch tutorial 5, an ``init_hidden``
Sequential called once per step, SpikingJelly ``step_mode='m'``) exported by torch.onnx as one graph with a
copy of the step per time step, the input sliced per step (``x[t]``: Gather/Slice) and the per-step outputs
stacked (``torch.stack``: Concat of Unsqueeze).

The file is read back to one step with explicit state, the form ``onnx_step.single_step`` reads:

1. **Split into steps.** Layers applied to the whole sequence at once (SpikingJelly multi-step: MatMul of
   ``[T, B, N]``, Conv of the ``[T*B, C, H, W]`` flattening) are rewritten as one copy per step, so that
   every value depending on the input belongs to one time step.
2. **One step's nodes.** Step t's nodes are the ancestors of the outputs' t-th slices that no earlier slice
   needs. The last two steps must be copies of one another (same ops, same attributes, in the same order);
   the values the last step reads from the one before are its state, bound to the last step's copies of
   them. A state value computed from other state values alone (the previous spike recomputed from the
   previous membrane, ``mem - thr``) is recomputed in the step, not kept as state.
3. **Check.** The extracted step, repeated from a zero state with ONNX's reference evaluator, must
   reproduce every output of the whole file on a seeded probe input; otherwise the file is refused (an
   initial state that is not zero, a step that changes over time).
"""
from __future__ import annotations

import numpy as np

from snnc.frontends.onnx_step import OnnxError, Step, initializer_arrays, value_shape

MIN_STEPS = 3
MAX_STEPS = 512      # the file is split into one copy of every layer per step and run four times on probes
TIME_MAJOR = (f"[T, 1, ...] with {MIN_STEPS} <= T <= {MAX_STEPS} time steps first and batch 1 (x[t] per step, "
              "outputs stacked over time)")
EXPECTED_FORM = ("expected: a forward over time exported unrolled from x of shape [T >= 3, 1, ...] (x[t] per "
                 "step, torch.stack of per-step outputs), a single step with the state as explicit inputs and "
                 "outputs, or a Scan/Loop")
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Where", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Equal",
               "Cast", "Neg", "Identity", "Not", "Clip", "Relu", "Sum", "And", "Or", "Abs", "Sign", "Floor",
               "Ceil", "Round", "Pow", "Max", "Min"}
ROW_WISE = {"Gemm", "Conv", "AveragePool", "MaxPool", "BatchNormalization", "LpPool", "GlobalAveragePool"}


def is_unrolled(graph) -> bool:
    """True when a graph output is a Concat of Unsqueezed per-step values (torch.stack over time)."""
    producers = {o: n for n in graph.node for o in n.output}
    for out in graph.output:
        node = producers.get(out.name)
        if node is not None and node.op_type == "Concat" and len(node.input) >= 2 and \
                all(i in producers and producers[i].op_type == "Unsqueeze" for i in node.input):
            return True
    return False


class _Seq:
    """A value with a time axis: ``stacked`` ([T, B, ...], step t at index t) or ``merged`` ([T*B, ...], step t
    in rows t*B..), held as one value name per step."""

    def __init__(self, kind: str, steps: list[str]):
        self.kind, self.steps = kind, steps


class UnrolledReader:
    """Reads an unrolled-loop ONNX model into one ``Step`` (see the module docstring)."""

    def __init__(self, path: str, model):
        self.path, self.model, self.graph = path, model, model.graph
        self.inits = initializer_arrays(path, self.graph)
        self.new_inits: dict[str, np.ndarray] = {}
        self.nodes: list = []
        self.seqs: dict[str, _Seq] = {}

    def error(self, node: str, field: str, problem: str) -> OnnxError:
        """The typed ONNX error for ``field`` of ``node``."""
        return OnnxError(self.path, node, field, problem)

    # ----- entry
    def step(self) -> Step:
        """The last time step of the file, its state inputs bound to the state it hands on."""
        data = [i for i in self.graph.input if i.name not in self.inits]
        if not data:
            raise self.error("graph", "input", "at least one input sequence")
        self.steps_count, self.probe = self.data_probe(data)
        self.values = self.evaluate(self.graph, self.probe)
        self.split_sequences(data)
        results = {o.name: self.output_steps(o.name) for o in self.graph.output}
        split_model = self.split_model(results)
        split_values = self.evaluate(split_model.graph, self.probe)
        dependent = self.dependent_values({i.name for i in data})
        sets = self.step_sets(results, dependent)
        k = self.steps_count - 1
        counterpart = self.counterparts(sets[k - 1], sets[k])
        produced = {o: t for t, nodes in enumerate(sets) for n in nodes for o in n.output}
        cut = self.cut_values(sets[k], produced, k)
        derived, derivation = self.derivations(cut, sets[k - 1], data, k)
        roots = [c for c in cut if c not in derived]
        state = {root: counterpart[root] for root in roots}
        rename = {self.seqs[i.name].steps[k]: i.name for i in data}
        nodes = self.constant_nodes(dependent) + derivation + [self.renamed(n, rename) for n in sets[k]]
        body = self.step_graph(nodes, data, results, k, rename, state, split_values)
        self.check_probe(body, state, roots, split_model, data)
        arrays = {**self.inits, **{n: (v.astype(np.float64) if v.dtype.kind == "f" else v)
                                   for n, v in self.new_inits.items()}}
        return Step(body, state, [i.name for i in data], list(results),
                    {i.name: tuple(self.step_shape(i.name)[1:]) for i in data}, initializers=arrays,
                    state_shapes={r: tuple(np.shape(split_values[r])[1:]) for r in roots})

    def step_graph(self, nodes: list, data, results: dict, k: int, rename: dict, state: dict, values: dict):
        """The step as an ONNX graph: the sequence inputs' step k and the state as inputs, each output's step
        k (under the output's name) and the handed-on state as outputs."""
        from onnx import TensorProto, helper, numpy_helper
        nodes = nodes + [helper.make_node("Identity", [rename.get(steps[k], steps[k])], [name], name=f"{name}.step")
                         for name, steps in results.items()]
        inputs = [helper.make_tensor_value_info(i.name, i.type.tensor_type.elem_type or TensorProto.FLOAT,
                                                list(self.step_shape(i.name))) for i in data]
        inputs += [helper.make_tensor_value_info(r, TensorProto.FLOAT, list(np.shape(values[r]))) for r in state]
        outputs = [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                   for o in list(results) + list(state.values())]
        initializers = list(self.graph.initializer) + [numpy_helper.from_array(v, n) for n, v in self.new_inits.items()]
        return helper.make_graph(nodes, f"{self.graph.name or 'network'}_step", inputs, outputs, initializers)

    # ----- the probe and numeric values
    def data_probe(self, data) -> tuple[int, dict[str, np.ndarray]]:
        """(time steps, seeded random 0/1 probe per data input); each data input must be [T, 1, ...] with
        ``MIN_STEPS`` <= T <= ``MAX_STEPS``."""
        from onnx import helper
        rng = np.random.default_rng(12)
        probe, steps = {}, None
        for info in data:
            shape = value_shape(info)
            if len(shape) < 3 or any(d is None or d < 1 for d in shape) or not MIN_STEPS <= shape[0] <= MAX_STEPS \
                    or shape[1] != 1 \
                    or (steps is not None and shape[0] != steps):
                raise self.error(info.name, "shape", f"{TIME_MAJOR}, got {list(shape)}")
            steps = shape[0]
            dtype = helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
            probe[info.name] = (rng.random(shape) < 0.5).astype(dtype)
        return steps, probe

    def evaluate(self, graph, feeds) -> dict:
        """Every value of ``graph`` on ``feeds`` (see ``BoundedRunner``)."""
        return BoundedRunner(self.path, graph).run(feeds)

    def step_shape(self, name: str) -> tuple[int, ...]:
        """The shape of one time step of the data input ``name`` (without the time axis)."""
        return tuple(np.shape(self.probe[name])[1:])

    # ----- 1. split into steps
    def split_sequences(self, data) -> None:
        """Step 1: rewrite every node that reads a whole sequence (input-dependent values) as one copy per time step."""
        from onnx import helper
        self.input_dependent = {i.name for i in data}
        for node in self.graph.node:
            if any(i in self.input_dependent for i in node.input):
                self.input_dependent.update(node.output)
        for info in data:
            steps = []
            for t in range(self.steps_count):
                index = self.constant(f"{info.name}@index{t}", np.asarray(t, dtype=np.int64))
                steps.append(f"{info.name}@t{t}")
                self.nodes.append(helper.make_node("Gather", [info.name, index], [steps[-1]], axis=0,
                                                   name=f"{info.name}@t{t}"))
            self.seqs[info.name] = _Seq("stacked", steps)
        for node in self.graph.node:
            if not any(i in self.seqs for i in node.input):
                self.nodes.append(self.without_zero_product(node))
                self.stacked_outputs(node)
                continue
            self.split_node(node)

    def without_zero_product(self, node):
        """``node``, or for a Mul of a value by an all-zero constant its (zero) result as a constant: the
        product carries no dependency (snnTorch's Synaptic zero reset computes ``syn -= 0 * reset``, which
        would otherwise tie a step to the reset of the step before it)."""
        from onnx import helper
        if node.op_type != "Mul" or len(node.input) != 2 or node.output[0] not in self.values:
            return node
        constant = [i for i in node.input if i not in self.input_dependent and i in self.values]
        if len(constant) != 1 or np.any(np.asarray(self.values[constant[0]])):
            return node
        zeros = np.zeros_like(np.asarray(self.values[node.output[0]]))
        return helper.make_node("Identity", [self.constant(f"{node.output[0]}@zero", zeros)], [node.output[0]],
                                name=node.name or node.output[0])

    def stacked_outputs(self, node) -> None:
        """A Concat on axis 0 of Unsqueeze(v_t, 0) values is the sequence of the v_t."""
        if node.op_type != "Concat" or self.attr(node, "axis") != 0:
            return
        producers = {o: n for n in self.nodes for o in n.output}
        steps = []
        for name in node.input:
            unsqueeze = producers.get(name)
            if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or self.axes(unsqueeze) != [0]:
                return
            steps.append(unsqueeze.input[0])
        if len(steps) == self.steps_count:
            self.seqs[node.output[0]] = _Seq("stacked", steps)

    def split_node(self, node) -> None:
        """One node reading a sequence, split per step: a pick of step t (Gather/Slice on the time axis) or a
        per-step copy of the op."""
        seq = next(self.seqs[i] for i in node.input if i in self.seqs)
        op = node.op_type
        if op == "Gather" and node.input[0] in self.seqs and self.attr(node, "axis", 0) == 0 and seq.kind == "stacked":
            return self.pick(node, seq)
        if op == "Slice" and node.input[0] in self.seqs and seq.kind == "stacked":
            return self.pick(node, seq)
        if op in ("Reshape", "Flatten"):
            return self.per_step(node, self.step_target_shape(node, seq))
        if op in ELEMENTWISE:
            return self.per_step(node, None)
        if op == "MatMul" and node.input[0] in self.seqs and node.input[1] not in self.seqs and \
                np.ndim(self.values[node.input[1]]) == 2:
            return self.per_step(node, None)
        if op in ROW_WISE and seq.kind == "merged" and node.input[0] in self.seqs and \
                not any(i in self.seqs for i in node.input[1:]):
            return self.per_step(node, None)
        raise self.error(node.name or op, "inputs", f"ops on a whole time sequence that apply to every step "
                         f"alike (elementwise, MatMul; Conv/Gemm/pooling/BatchNormalization on the [T*B, ...] "
                         f"flattening) or that pick one step (Gather/Slice of x[t]), got {op} on "
                         f"'{next(i for i in node.input if i in self.seqs)}'; {EXPECTED_FORM}")

    def pick(self, node, seq: _Seq) -> None:
        """x[t] (Gather) or x[t:t+1] (Slice) with a constant t."""
        from onnx import helper
        full = np.shape(self.values[node.input[0]])
        index = np.arange(full[0]).reshape(-1, *([1] * (len(full) - 1))) * np.ones(full)
        picked = np.asarray(self.values[node.output[0]])
        probe = self.rerun(node, index)
        kind = "Identity" if np.shape(probe) == tuple(full[1:]) else "Unsqueeze"
        ok = np.shape(probe) in (tuple(full[1:]), (1, *full[1:])) and np.all(probe == probe.reshape(-1)[0])
        if not ok or picked.shape != np.shape(probe):
            raise self.error(node.name or node.op_type, "inputs", f"one whole time step x[t] (a constant index "
                             f"on axis 0), got a selection of shape {list(np.shape(probe))} from {list(full)}")
        t = int(probe.reshape(-1)[0])
        args = [seq.steps[t]] if kind == "Identity" else [seq.steps[t], self.constant(f"{node.output[0]}@axes",
                                                                                       np.asarray([0], np.int64))]
        self.nodes.append(helper.make_node(kind, args, [node.output[0]], name=f"{node.name}@t{t}"))

    def rerun(self, node, first: np.ndarray) -> np.ndarray:
        """The node's output with its first input replaced by ``first`` (the other inputs as on the probe)."""
        from onnx.reference import ReferenceEvaluator
        feeds = {n: self.values[n] for n in node.input[1:] if n}
        feeds[node.input[0]] = first.astype(np.asarray(self.values[node.input[0]]).dtype)
        try:
            return np.asarray(ReferenceEvaluator(node).run(None, feeds)[0])
        except Exception as exc:  # noqa: BLE001 - onnx.reference's reactions to a node it cannot run
            raise self.error(node.name or node.op_type, "inputs", f"a selection ONNX's reference evaluator runs, "
                             f"got {type(exc).__name__}: {str(exc)[:160]}") from None

    def step_target_shape(self, node, seq: _Seq):
        """(output kind, per-step shape) of a Reshape/Flatten of a sequence: flatten(0, 1) of [T, B, ...] to
        [T*B, ...] and its inverse view, or a reshape within one layout."""
        out = tuple(int(d) for d in np.shape(self.values[node.output[0]]))
        full = tuple(int(d) for d in np.shape(self.values[node.input[0]]))
        steps, batch = self.steps_count, 1
        if seq.kind == "stacked" and out == (steps * batch, *full[2:]):
            return "merged", (batch, *full[2:])
        if len(out) >= 2 and out[:2] == (steps, batch):
            return "stacked", out[1:]
        if seq.kind == "merged" and len(out) >= 1 and out[0] == steps * batch:
            return "merged", (batch, *out[1:])
        raise self.error(node.name or node.op_type, "shape", f"a reshape that keeps time first ([T, B, ...] or "
                         f"[T*B, ...]), got {list(out)} from {list(np.shape(self.values[node.input[0]]))}")

    def per_step(self, node, target) -> None:
        """One copy of the node per step, reading each step's value of its sequence inputs."""
        from onnx import helper
        kinds = {self.seqs[i].kind for i in node.input if i in self.seqs}
        if len(kinds) != 1:
            raise self.error(node.name or node.op_type, "inputs", "sequences of one layout (all [T, B, ...] or "
                             f"all [T*B, ...]), got {' and '.join(sorted(kinds))} sequences")
        kind = kinds.pop()
        if target is not None:
            kind = target[0]
        outputs = {o: [] for o in node.output}
        for t in range(self.steps_count):
            inputs = [self.seqs[i].steps[t] if i in self.seqs else self.step_constant(node, i, kind)
                      for i in node.input]
            if node.op_type == "Reshape":
                inputs[1] = self.constant(f"{node.output[0]}@shape", np.asarray(target[1], np.int64))
                copy = helper.make_node("Reshape", inputs, [f"{node.output[0]}@t{t}"], name=f"{node.name}@t{t}")
            elif node.op_type == "Flatten":
                copy = helper.make_node("Reshape", [inputs[0], self.constant(f"{node.output[0]}@shape", np.asarray(
                    target[1], np.int64))], [f"{node.output[0]}@t{t}"], name=f"{node.name}@t{t}")
            else:
                copy = helper.make_node(node.op_type, inputs, [f"{o}@t{t}" for o in node.output],
                                        name=f"{node.name}@t{t}", domain=node.domain)
                copy.attribute.extend(node.attribute)
            for o in node.output:
                outputs[o].append(f"{o}@t{t}")
            self.nodes.append(copy)
        for o, steps in outputs.items():
            self.seqs[o] = _Seq(kind, steps)

    def step_constant(self, node, name: str, kind: str) -> str:
        """A constant operand beside a sequence: unchanged when it does not reach the time axis, else without
        its leading 1 (stacked) - a constant that differs over time is refused."""
        if not name:
            return name
        if name not in self.values or name in self.input_dependent:
            raise self.error(node.name or node.op_type, "inputs", f"'{name}': a constant beside the sequence, got "
                             "a value that depends on the input but is not split by time step")
        value = np.asarray(self.values[name])
        rank = max(np.ndim(self.values[i]) for i in node.input if i in self.seqs)
        if node.op_type not in ELEMENTWISE or value.ndim < rank:
            return name
        if value.shape[0] != 1:
            raise self.error(node.name or node.op_type, "inputs", f"'{name}': a constant the same at every time "
                             f"step (size 1 on the time axis), got shape {list(value.shape)}")
        if kind == "merged":
            return name
        return self.constant(f"{name}@step", value.reshape(value.shape[1:]))

    def constant(self, name: str, value: np.ndarray) -> str:
        """Register a new initializer ``name`` with ``value``; its name."""
        self.new_inits[name] = np.asarray(value)
        return name

    def output_steps(self, name: str) -> list[str]:
        """The per-step values stacked into output ``name``; refused unless it is a stack over time."""
        seq = self.seqs.get(name)
        if seq is None or seq.kind != "stacked":
            raise self.error(name, "output", f"a per-step output stacked over time on axis 0 (torch.stack: Concat "
                             f"of Unsqueeze), got a value without a time axis; {EXPECTED_FORM}")
        return seq.steps

    def split_model(self, results: dict):
        """The split graph as a model whose outputs are every per-step value of the results."""
        from onnx import TensorProto, helper, numpy_helper
        outs = [helper.make_tensor_value_info(s, TensorProto.UNDEFINED, None) for steps in results.values()
                for s in steps]
        graph = helper.make_graph(self.nodes, "split", list(self.graph.input), outs,
                                  list(self.graph.initializer) +
                                  [numpy_helper.from_array(np.asarray(v), n) for n, v in self.new_inits.items()])
        return helper.make_model(graph, opset_imports=self.model.opset_import)

    # ----- 2. one step's nodes
    def dependent_values(self, inputs: set[str]) -> set[str]:
        """Every value computed (transitively) from ``inputs``."""
        dependent = set(inputs)
        for node in self.nodes:
            if any(i in dependent for i in node.input):
                dependent.update(node.output)
        return dependent

    def step_sets(self, results: dict, dependent: set[str]) -> list[list]:
        """Step 2: the nodes of each time step, in graph order: the ancestors of the outputs' t-th values that no
        earlier step needs."""
        producers = {o: n for n in self.nodes for o in n.output}
        order = {id(n): k for k, n in enumerate(self.nodes)}
        seen: set[int] = set()
        sets = []
        for t in range(self.steps_count):
            stack = [steps[t] for steps in results.values()]
            nodes = []
            while stack:
                name = stack.pop()
                node = producers.get(name)
                if node is None or name not in dependent or id(node) in seen or node.op_type == "Gather" and \
                        node.input[0] in {i.name for i in self.graph.input}:
                    continue
                seen.add(id(node))
                nodes.append(node)
                stack.extend(node.input)
            sets.append(sorted(nodes, key=lambda n: order[id(n)]))
        return sets

    def counterparts(self, before: list, last: list) -> dict[str, str]:
        """Output of step T-2 -> the same output of step T-1 (the two steps must be copies)."""
        if len(before) != len(last) or any(not _same_op(a, b) for a, b in zip(before, last)):
            ops = lambda nodes: [n.op_type for n in nodes][:12]  # noqa: E731
            raise self.error("graph", "nodes", f"time steps that repeat one step (the last two steps the same ops "
                             f"in the same order), got {ops(before)} and then {ops(last)}; {EXPECTED_FORM}")
        return {a: b for x, y in zip(before, last) for a, b in zip(x.output, y.output)}

    def cut_values(self, last: list, produced: dict, k: int) -> list[str]:
        """The values the last step (``last``, step ``k``) reads from earlier steps: its state."""
        cut = []
        for node in last:
            for name in node.input:
                t = produced.get(name)
                if t is None or t == k or name in cut:
                    continue
                if t != k - 1:
                    raise self.error(node.name or node.op_type, "inputs", f"state from the previous step only, got "
                                     f"'{name}' from {k - t} steps back")
                cut.append(name)
        return cut

    def derivations(self, cut: list[str], before: list, data, k: int) -> tuple[set[str], list]:
        """Cut values computed within step T-2 from other cut values only, and the nodes that compute them."""
        producers = {o: n for n in before for o in n.output}
        sequence_steps = {self.seqs[i.name].steps[k - 1] for i in data}
        derived, nodes = set(), {}
        dependent = self.dependent_values({i.name for i in data})
        for value in cut:
            stack, found, ok = [value], {}, True
            while stack and ok:
                name = stack.pop()
                if name != value and name in cut or name not in dependent:
                    continue
                if name in sequence_steps or name not in producers:
                    ok = False
                    break
                node = producers[name]
                found[id(node)] = node
                stack.extend(node.input)
            if ok:
                derived.add(value)
                nodes.update(found)
        order = {id(n): k for k, n in enumerate(self.nodes)}
        return derived, sorted(nodes.values(), key=lambda n: order[id(n)])

    def constant_nodes(self, dependent: set[str]) -> list:
        """The nodes that neither read nor produce an input-dependent value."""
        return [n for n in self.nodes if not any(i in dependent for i in n.input) and not
                any(o in dependent for o in n.output)]

    def renamed(self, node, rename: dict):
        """``node`` with its inputs renamed by ``rename`` (a copy; the node itself when none is renamed)."""
        if not any(i in rename for i in node.input):
            return node
        from onnx import NodeProto
        copy = NodeProto()
        copy.CopyFrom(node)
        for index, name in enumerate(copy.input):
            copy.input[index] = rename.get(name, name)
        return copy

    # ----- 3. check
    def check_probe(self, body, state: dict, roots: list[str], split_model, data) -> None:
        """The step repeated from a zero state reproduces the file's outputs at every step and its state at the
        step before the last, on the seeded probe and on an all-zero input (where a non-zero initial state
        persists, decaying, instead of being hidden by resets)."""
        step = BoundedRunner(self.path, body)
        for probe in (self.probe, {n: np.zeros_like(v) for n, v in self.probe.items()}):
            expected = self.evaluate(self.graph, probe)
            states = self.evaluate(split_model.graph, probe)
            current = {r: np.zeros(np.shape(states[r]), np.float32) for r in roots}
            for t in range(self.steps_count):
                feeds = {i.name: probe[i.name][t] for i in data}
                values = step.run({**feeds, **current})
                current = {r: np.asarray(values[state[r]], np.float32) for r in roots}
                for name in [o.name for o in self.graph.output]:
                    self.agree(name, values[name], np.asarray(expected[name])[t], t)
                if t == self.steps_count - 2:
                    for root in roots:
                        self.agree(root, current[root], states[root], t)

    def agree(self, name: str, ours, theirs: np.ndarray, t: int) -> None:
        """Step 3: refuse the file when the repeated step's value differs from the file's at time step ``t``."""
        if not np.allclose(np.asarray(ours, np.float64).reshape(theirs.shape), theirs, rtol=1e-5, atol=1e-6):
            raise self.error(name, "value", f"the unrolled loop to repeat its last step from a zero state, but that "
                             f"step, repeated, differs from the file at time step {t} on a probe input (a "
                             f"non-zero initial state, or a step that changes over time); {EXPECTED_FORM}")

    def attr(self, node, name: str, default=None):
        """The value of attribute ``name`` of ``node``, or ``default``."""
        from onnx import helper
        return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)

    def axes(self, node) -> list[int] | None:
        """The axes of a Squeeze/Unsqueeze/Reduce node (input or attribute); None when not constant."""
        if len(node.input) > 1:
            value = self.inits.get(node.input[1], self.new_inits.get(node.input[1]))
            if value is None and hasattr(self, "values"):
                value = self.values.get(node.input[1])
            return None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]
        axes = self.attr(node, "axes")
        return None if axes is None else [int(a) for a in axes]


class BoundedRunner:
    """Runs a graph node by node with ONNX's reference evaluator, refusing any value above
    ``OnnxLimits.max_elements`` before it is built (``ConstantOfShape``/``Expand``/``Tile``/``Range``) or
    once it is (the file is untrusted: its probe run must not become a memory bomb)."""

    def __init__(self, path: str, graph):
        from onnx import numpy_helper
        from onnx.reference import ReferenceEvaluator
        self.path, self.nodes = path, list(graph.node)
        self.initial = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        try:
            self.evaluators = [ReferenceEvaluator(node) for node in self.nodes]
        except Exception as exc:  # noqa: BLE001 - onnx.reference's reactions to a node it cannot build
            raise OnnxError(path, "graph", "nodes", f"nodes ONNX's reference evaluator runs, got "
                            f"{type(exc).__name__}: {str(exc)[:160]}") from None

    def run(self, feeds: dict) -> dict:
        """Every value of the graph on ``feeds``, node by node with ONNX's reference evaluator, each result at most
        ``OnnxLimits.max_elements`` elements (typed error otherwise)."""
        from snnc.frontends.onnx_limits import OnnxLimits, folded_elements
        limit = OnnxLimits().max_elements
        values = {**self.initial, **feeds}
        for node, evaluator in zip(self.nodes, self.evaluators):
            where = node.name or node.op_type
            try:
                inputs = {n: values[n] for n in node.input if n}
                produced = folded_elements(node, [values.get(n) for n in node.input])
                if produced is not None and produced > limit:
                    raise OnnxError(self.path, where, "output", f"at most {limit} elements (OnnxLimits), got "
                                    f"{produced}")
                outputs = evaluator.run(None, inputs)
            except OnnxError:
                raise
            except Exception as exc:  # noqa: BLE001 - onnx.reference's reactions to a value it cannot take
                raise OnnxError(self.path, where, "inputs", f"values ONNX's reference evaluator runs on a probe "
                                f"input, got {type(exc).__name__}: {str(exc)[:160]}") from None
            for name, value in zip(node.output, outputs):
                if np.size(value) > limit:
                    raise OnnxError(self.path, where, "output", f"at most {limit} elements (OnnxLimits), got "
                                    f"{np.size(value)}")
                values[name] = value
        return values


def _same_op(a, b) -> bool:
    return a.op_type == b.op_type and a.domain == b.domain and \
        sorted(x.SerializeToString() for x in a.attribute) == sorted(x.SerializeToString() for x in b.attribute)


def unrolled_step(path: str, model) -> Step:
    """One time step of an unrolled-loop export with its state explicit (module docstring)."""
    return UnrolledReader(path, model).step()
