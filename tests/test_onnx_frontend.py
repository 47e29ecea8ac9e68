"""ONNX import (single-step torch.onnx exports, Scan/Loop time loops, the snn domain) and export: every file
passes onnx.checker, runs in onnxruntime, and the imported IR in the float reference agrees spike for spike."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import snntorch as snn
import torch
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.cli import main
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.onnx_export import graph_to_onnx
from snnc.frontends.onnx_frontend import load_onnx, onnx_model_to_ir
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF
from snnc.ir.printer import format_graph
from snnc.simulators.float_reference import run_float

from conftest import time_limit
from onnx_step_models import leaky_step, leaky_time_loop, value, wrap_loop, wrap_scan

warnings.filterwarnings("ignore")
STATES = {"mem1": "mem1_out", "syn2": "syn2_out", "mem2": "mem2_out"}


class SnnTorchStep(torch.nn.Module):
    """One step of Linear -> Leaky -> Linear -> Synaptic with the membrane state explicit."""

    def __init__(self, reset: str):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = torch.nn.Linear(8, 6), torch.nn.Linear(6, 4)
        self.lif1 = snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism=reset)
        self.lif2 = snn.Synaptic(alpha=0.6, beta=0.9, threshold=0.5, reset_mechanism=reset)
        with torch.no_grad():
            self.fc1.weight.mul_(3.0)
            self.fc2.weight.mul_(3.0)

    def forward(self, x, mem1, syn2, mem2):
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
        return spk2, mem1, syn2, mem2


def export(module, args, path, names_in, names_out, dynamo: bool) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module.eval(), args, str(path), dynamo=dynamo, input_names=names_in,
                          output_names=names_out, opset_version=18 if dynamo else 17)


def snntorch_step_file(tmp_path, reset: str, dynamo: bool):
    path = tmp_path / f"step_{reset}_{'dynamo' if dynamo else 'legacy'}.onnx"
    args = (torch.zeros(1, 8), torch.zeros(1, 6), torch.zeros(1, 4), torch.zeros(1, 4))
    export(SnnTorchStep(reset), args, path, ["x", *STATES], ["spk2", *STATES.values()], dynamo)
    return path


def run_step_model(path, x: np.ndarray, bindings: dict, data: str, result: str) -> np.ndarray:
    """Run a single-step ONNX model in onnxruntime over time, states starting at zero."""
    session = ort.InferenceSession(str(path))
    shapes = {i.name: i.shape for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    state = {name: np.zeros((x.shape[0], *shapes[name][1:]), np.float32) for name in bindings}
    out = []
    for t in range(x.shape[1]):
        values = dict(zip(names, session.run(None, {data: x[:, t].astype(np.float32), **state})))
        state = {name: values[bound] for name, bound in bindings.items()}
        out.append(values[result])
    return np.stack(out, axis=1)


def assert_agrees(path, x, bindings, data, result):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    theirs = run_step_model(path, x, bindings, data, result)
    graph = load_onnx(path)
    ours = run_float(graph, x.astype(np.uint8)).spikes[graph.outputs[0]]
    assert theirs.sum() > 10
    np.testing.assert_array_equal(ours.reshape(theirs.shape), theirs)
    return graph


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("reset, kinds", [("subtract", ("subtract", "subtract")), ("zero", ("zero", "zero_next")),
                                          ("none", ("none", "none"))])
def test_snntorch_single_step_matches_onnxruntime(tmp_path, reset, kinds, dynamo):
    path = snntorch_step_file(tmp_path, reset, dynamo)
    x = (np.random.default_rng(0).random((1, 40, 8)) < 0.5).astype(np.uint8)
    graph = assert_agrees(path, x, STATES, "x", "spk2")
    neurons = {n.name: n for n in graph.nodes if isinstance(n, CubaLIF)}
    assert (neurons["mem1"].reset, neurons["mem2"].reset) == kinds
    assert neurons["mem1"].current_decay == 1.0 and neurons["mem2"].current_decay == pytest.approx(0.4)


def test_recognition_ignores_names_and_operand_order(tmp_path):
    """Renaming every node and intermediate value and swapping commutative operands changes nothing."""
    path = snntorch_step_file(tmp_path, "zero", dynamo=False)
    model = onnx.load(str(path))
    keep = {i.name for i in model.graph.input} | {o.name for o in model.graph.output} | \
        {t.name for t in model.graph.initializer}
    rename = {}
    for index, node in enumerate(model.graph.node):
        node.name = f"n{index * 7919 % 1000}"
        for k, name in enumerate(node.output):
            if name not in keep:
                rename[name] = f"v{(index * 31 + k) % 997}_{index}"
    for node in model.graph.node:
        for field in (node.input, node.output):
            for k, name in enumerate(field):
                field[k] = rename.get(name, name)
        if node.op_type in ("Add", "Mul"):
            node.input[0], node.input[1] = node.input[1], node.input[0]
    shuffled = tmp_path / "shuffled.onnx"
    onnx.save(model, str(shuffled))
    assert format_graph(load_onnx(shuffled)).splitlines()[1:] == format_graph(load_onnx(path)).splitlines()[1:]


def test_bindings_by_structure_when_names_say_nothing(tmp_path):
    path = tmp_path / "anon.onnx"
    args = (torch.zeros(1, 8), torch.zeros(1, 6), torch.zeros(1, 4), torch.zeros(1, 4))
    export(SnnTorchStep("subtract"), args, path, ["a", "b", "c", "d"], ["e", "f", "g", "h"], dynamo=False)
    x = (np.random.default_rng(1).random((1, 30, 8)) < 0.5).astype(np.uint8)
    graph = assert_agrees(path, x, {"b": "f", "c": "g", "d": "h"}, "a", "e")
    assert [n.name for n in graph.inputs] == ["a"]


class SpikingJellyStep(torch.nn.Module):
    """Conv -> LIF -> AvgPool -> Linear -> IF, SpikingJelly neurons, state v explicit."""

    def __init__(self, soft: bool):
        super().__init__()
        from spikingjelly.activation_based import neuron
        torch.manual_seed(0)
        self.conv, self.fc = torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Linear(18, 5)
        self.n1 = neuron.LIFNode(tau=2.0, v_threshold=0.5, v_reset=None if soft else 0.0)
        self.n2 = neuron.IFNode(v_threshold=0.4, v_reset=None if soft else 0.0)
        self.pool = torch.nn.AvgPool2d(2)
        with torch.no_grad():
            self.conv.weight.mul_(3.0)
            self.fc.weight.mul_(3.0)

    def forward(self, x, v1, v2):
        self.n1.v, self.n2.v = v1, v2
        s1 = self.n1(self.conv(x))
        s2 = self.n2(self.fc(torch.flatten(self.pool(s1), 1)))
        return s2, self.n1.v, self.n2.v


def spikingjelly_file(tmp_path, soft: bool):
    """SpikingJelly 2.0 neurons are custom torch ops the legacy exporter cannot export; dynamo can."""
    path = tmp_path / f"sj_{soft}.onnx"
    args = (torch.zeros(1, 1, 6, 6), torch.zeros(1, 2, 6, 6), torch.zeros(1, 5))
    export(SpikingJellyStep(soft), args, path, ["x", "v1", "v2"], ["s2", "v1_out", "v2_out"], dynamo=True)
    return path


def test_spikingjelly_hard_reset_step_matches_onnxruntime(tmp_path):
    path = spikingjelly_file(tmp_path, soft=False)
    x = (np.random.default_rng(0).random((1, 30, 1, 6, 6)) < 0.5).astype(np.uint8)
    graph = assert_agrees(path, x, {"v1": "v1_out", "v2": "v2_out"}, "x", "s2")
    neurons = [(n.name, n.reset, n.comparison, n.voltage_decay) for n in graph.nodes if isinstance(n, CubaLIF)]
    assert neurons == [("v1", "zero", "ge", 0.5), ("v2", "zero", "ge", 0.0)]


def test_spikingjelly_soft_reset_of_a_leaky_neuron_is_refused(tmp_path):
    path = spikingjelly_file(tmp_path, soft=True)
    with pytest.raises(UnsupportedError) as info:
        load_onnx(path)
    assert str(info.value) == (f"node '{path}: v1_out' field 'reset': limit subtract-after-spike only without "
                               "leak (voltage decay 0), got a leaky neuron whose decay also scales the subtracted "
                               "threshold")


class FlatInputConvStep(torch.nn.Module):
    """A 1x1 Conv reading a flat input through a Reshape: x (N, C*H*W) -> (N, C, H, W) -> Conv -> Leaky."""

    def __init__(self, chw: tuple[int, int, int]):
        super().__init__()
        torch.manual_seed(2)
        self.chw = chw
        self.conv = torch.nn.Conv2d(chw[0], 4, 1)
        self.lif = snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism="subtract")
        with torch.no_grad():
            self.conv.weight.mul_(3.0)

    def forward(self, x, mem):
        return self.lif(self.conv(x.reshape(x.shape[0], *self.chw)), mem)


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("chw", [(4, 1, 1), (1, 1, 4), (2, 3, 3)])
def test_1x1_conv_reading_a_flat_input_through_a_reshape_matches_onnxruntime(tmp_path, chw, dynamo):
    """Regression: when the Reshape only adds unit dimensions ((4, 1, 1), (1, 1, 4)) the conv became a Conv2d
    whose in_shape was the flat input's, and IR verification refused the import. The IR has no reshape node a
    Conv2d could read, so the conv is one Dense composed from the chain, as for (2, 3, 3)."""
    path = tmp_path / "flat_conv.onnx"
    size = int(np.prod(chw))
    export(FlatInputConvStep(chw), (torch.zeros(1, size), torch.zeros(1, 4, *chw[1:])), path, ["x", "mem"],
           ["spk", "mem_out"], dynamo)
    x = (np.random.default_rng(5).random((1, 40, size)) < 0.5).astype(np.uint8)
    graph = assert_agrees(path, x, {"mem": "mem_out"}, "x", "spk")
    assert [(type(n).__name__, n.name) for n in graph.nodes] == [("Input", "x"), ("Dense", "mem_syn"),
                                                                  ("CubaLIF", "mem")]


# ------------------------------------------------------------------------------------ time loops

@pytest.mark.parametrize("wrap", [wrap_scan, wrap_loop], ids=["Scan", "Loop"])
def test_time_loops_match_onnxruntime(tmp_path, wrap):
    step = onnx.load(str(snntorch_step_file(tmp_path, "zero", dynamo=False)))
    steps = 30
    path = tmp_path / "loop.onnx"
    onnx.save(wrap(step, STATES, "x", "spk2", steps, 1), str(path))
    x = (np.random.default_rng(2).random((1, steps, 8)) < 0.5).astype(np.float32)
    theirs = ort.InferenceSession(str(path)).run(["spk_seq"], {"x_seq": np.moveaxis(x, 1, 0)})[0]
    graph = load_onnx(path)
    ours = run_float(graph, x.astype(np.uint8)).spikes[graph.outputs[0]]
    assert theirs.sum() > 10
    np.testing.assert_array_equal(ours, np.moveaxis(theirs, 0, 1))


def test_scan_with_nonzero_initial_state_is_refused(tmp_path):
    step = onnx.load(str(snntorch_step_file(tmp_path, "zero", dynamo=False)))
    model = wrap_scan(step, STATES, "x", "spk2", 5, 1)
    model.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.full((1, 6), 0.25, np.float32), "mem1_init"))
    with pytest.raises(UnsupportedError) as info:
        onnx_model_to_ir(model, path="m.onnx")
    assert str(info.value) == ("node 'm.onnx: Scan' field 'initial state 'mem1_init'': limit a constant zero tensor "
                               "(snnc neurons start at rest), got non-zero values")


# ----------------------------------------------------------------------------------- snn domain

def varied_torch_model():
    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), snn.Leaky(beta=0.8, threshold=0.3, init_hidden=True, reset_mechanism="zero"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(27, 8),
        snn.Synaptic(alpha=0.7, beta=0.9, threshold=0.3, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(8, 6), snn.Leaky(beta=1.0, threshold=0.4, init_hidden=True, reset_mechanism="subtract"),
        torch.nn.Linear(6, 5), snn.RLeaky(beta=0.9, linear_features=5, threshold=0.2, init_hidden=True))
    return from_torch(model, (1, 6, 6))


def test_snn_domain_export_runs_in_onnxruntime_and_reimports(tmp_path):
    graph = varied_torch_model()
    model = graph_to_onnx(graph)
    ops = sorted({(n.domain, n.op_type) for n in model.graph.node if n.domain == "snn"})
    assert ops == [("snn", "IF"), ("snn", "LIF")]
    path = tmp_path / "exported.onnx"
    onnx.save(model, str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    bindings = dict(pair.split("=") for pair in meta["snnc.state_bindings"].split(","))
    assert "lif_9.s_prev1" in bindings     # the recurrent synapse's spike history is explicit state
    x = (np.random.default_rng(3).random((3, 25, 1, 6, 6)) < 0.5).astype(np.uint8)
    reimported = assert_agrees(path, x, bindings, "input", graph.outputs[0])
    reference = run_float(graph, x)
    for name in ("lif_1", "lif_5", "lif_7", "lif_9"):
        assert reference.spikes[name].sum() > 5, name
    np.testing.assert_array_equal(run_float(reimported, x).spikes["lif_9"], reference.spikes["lif_9"])
    assert [(n.name, n.reset) for n in reimported.nodes if isinstance(n, CubaLIF)] == \
        [("lif_1", "zero"), ("lif_5", "zero_next"), ("lif_7", "subtract"), ("lif_9", "subtract")]


def loihi_ready_step(tmp_path) -> tuple:
    """A Leaky zero-reset step (the only reset Loihi has) in all three ONNX shapes."""
    class Step(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.fc1, self.fc2 = torch.nn.Linear(8, 6, bias=False), torch.nn.Linear(6, 4, bias=False)
            self.lif1 = snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism="zero")
            self.lif2 = snn.Leaky(beta=0.9, threshold=0.5, reset_mechanism="zero")

        def forward(self, x, mem1, mem2):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            return spk2, mem1, mem2
    single = tmp_path / "single.onnx"
    export(Step(), (torch.zeros(1, 8), torch.zeros(1, 6), torch.zeros(1, 4)), single, ["x", "mem1", "mem2"],
           ["spk2", "mem1_out", "mem2_out"], dynamo=False)
    scan = tmp_path / "scan.onnx"
    onnx.save(wrap_scan(onnx.load(str(single)), {"mem1": "mem1_out", "mem2": "mem2_out"}, "x", "spk2", 10, 1),
              str(scan))
    exported = tmp_path / "snn.onnx"
    assert main(["export", str(single), "--format", "onnx", "-o", str(exported)]) == 0
    return single, scan, exported


def test_cli_compiles_all_three_onnx_shapes_for_loihi2(tmp_path, capsys):
    for path in loihi_ready_step(tmp_path):
        out = tmp_path / f"out_{path.stem}"
        assert main(["compile", str(path), "--target", "loihi2", "-o", str(out)]) == 0, capsys.readouterr().err
        assert (out / "lowered.snnc").exists()


# ---------------------------------------------------------------------------------------- errors

def test_unsupported_op_on_state_is_named(tmp_path):
    x, v = value("x", ["batch", 3]), value("v", ["batch", 3])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["i"], name="syn"),
             helper.make_node("Sigmoid", ["v"], ["sv"], name="squash"),
             helper.make_node("Add", ["sv", "i"], ["v_out"], name="update")]
    graph = helper.make_graph(nodes, "g", [x, v], [value("v_out", ["batch", 3])],
                              [numpy_helper.from_array(np.eye(3, dtype=np.float32), "w")])
    path = tmp_path / "sigmoid.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UnsupportedError) as info:
        load_onnx(path)
    assert str(info.value).startswith(f"node '{path}: squash' field 'op_type': limit an op snnc can follow")
    assert str(info.value).endswith("got Sigmoid")


def test_truncated_and_bad_metadata(tmp_path):
    path = snntorch_step_file(tmp_path, "zero", dynamo=False)
    data = path.read_bytes()
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError) as info:
        load_onnx(truncated)
    assert str(info.value).startswith(f"file '{truncated}': ")
    model = onnx.load(str(path))
    helper.set_model_props(model, {"snnc.state_bindings": "mem1=nothing"})
    with pytest.raises(SnncError) as info:
        onnx_model_to_ir(model, path="m.onnx")
    assert str(info.value) == ("file 'm.onnx': node 'model' field 'metadata_props['snnc.state_bindings']': "
                               "'input=output' pairs of graph inputs and outputs, got 'mem1=nothing'")


def test_dt_errors_name_where_the_refused_value_came_from():
    model = leaky_step()
    helper.set_model_props(model, {"snnc.dt_s": "soon"})
    assert refusal(model) == ("file 'm.onnx': node 'model' field 'metadata_props['snnc.dt_s']': expected seconds, "
                              "got 'soon'")
    helper.set_model_props(model, {"snnc.dt_s": "-2e-3"})
    assert refusal(model) == ("file 'm.onnx': node 'model' field 'metadata_props['snnc.dt_s']': expected "
                              "seconds in [1e-09, 1000.0], got -0.002")
    with pytest.raises(SnncError) as info:
        onnx_model_to_ir(model, dt_s=float("inf"), path="m.onnx")
    assert str(info.value) == "file 'm.onnx': node 'model' field 'dt': expected seconds in [1e-09, 1000.0], got inf"
    assert onnx_model_to_ir(model, dt_s=5e-4, path="m.onnx").dt_s == 5e-4      # the option wins over the file


# ------------------------------------------------------------------------- refused silent changes

def refusal(model, kind=SnncError) -> str:
    with pytest.raises(kind) as info:
        onnx_model_to_ir(model, path="m.onnx")
    return str(info.value)


def test_hand_built_leaky_step_loads():
    graph = onnx_model_to_ir(leaky_step(), path="m.onnx")
    assert [(type(n).__name__, n.name) for n in graph.nodes] == [("Input", "x"), ("Dense", "mem_syn"),
                                                                  ("CubaLIF", "mem")]


def test_time_reversed_scan_is_refused(tmp_path):
    step = onnx.load(str(snntorch_step_file(tmp_path, "zero", dynamo=False)))
    for key in ("scan_input_directions", "scan_output_directions"):
        model = wrap_scan(step, STATES, "x", "spk2", 5, 1)
        model.graph.node[0].attribute.append(helper.make_attribute(key, [1]))
        assert refusal(model, UnsupportedError) == \
            f"node 'm.onnx: Scan' field '{key}': limit 0 (forward in time), got [1]"


def test_cast_of_the_membrane_to_an_integer_is_refused():
    truncate = [helper.make_node("Cast", ["mem_raw"], ["mem_i"], name="trunc", to=TensorProto.INT32),
                helper.make_node("Cast", ["mem_i"], ["mem_out"], to=TensorProto.FLOAT)]
    assert refusal(leaky_step(truncate), UnsupportedError) == (
        "node 'm.onnx: trunc' field 'to': limit FLOAT or DOUBLE for a state-dependent value (another type would "
        "round or truncate it), got INT32")
    exact = [helper.make_node("Cast", ["mem_raw"], ["mem_d"], to=TensorProto.DOUBLE),
             helper.make_node("Cast", ["mem_d"], ["mem_out"], to=TensorProto.FLOAT)]
    assert format_graph(onnx_model_to_ir(leaky_step(exact), path="m.onnx")) == \
        format_graph(onnx_model_to_ir(leaky_step(), path="m.onnx"))


def test_loop_that_exits_early_is_refused(tmp_path):
    step = onnx.load(str(snntorch_step_file(tmp_path, "zero", dynamo=False)))
    model = wrap_loop(step, STATES, "x", "spk2", 5, 1)
    body = model.graph.node[0].attribute[0].g
    body.node[1].CopyFrom(helper.make_node("Not", ["cond_in"], ["cond_out"]))   # stops after one iteration
    path = tmp_path / "early.onnx"
    onnx.save(model, str(path))
    x = np.zeros((5, 1, 8), np.float32)
    assert ort.InferenceSession(str(path)).run(["spk_seq"], {"x_seq": x})[0].shape[0] == 1
    assert refusal(model, UnsupportedError) == (
        "node 'm.onnx: Loop' field 'body.output[0] (cond_out)': limit Identity(cond_in) or a constant true (no "
        "early exit: snnc runs every time step), got 'cond_out' computed by the body")
    model.graph.initializer[-1].CopyFrom(numpy_helper.from_array(np.asarray(False), "cond"))
    assert refusal(model, UnsupportedError) == ("node 'm.onnx: Loop' field 'inputs[1] (cond)': limit absent or a "
                                                "constant true condition, got false values")


def test_li_readout_name_survives_export_and_reimport():
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import LI, Dense, Input
    rng = np.random.default_rng(4)
    graph = Graph((Input("x", (3,)), Dense("d1", "x", rng.normal(size=(4, 3)), None),
                   CubaLIF("lif", ("d1",), (4,), 0.5, 0.25, 0.5, reset="zero"),
                   Dense("d2", "lif", rng.normal(size=(2, 4)), None), LI("ro", ("d2",), (2,), 0.5, 0.25)),
                  ("ro",), dt_s=1e-3)
    model = graph_to_onnx(graph)
    back = onnx_model_to_ir(model, path="m.onnx")
    assert back.outputs == ("ro",)
    neurons = [(type(n).__name__, n.name, n.inputs) for n in back.nodes if isinstance(n, (CubaLIF, LI))]
    assert neurons == [("CubaLIF", "lif", ("lif_syn",)), ("LI", "ro", ("ro_syn",))]   # synapses are renamed
    names = [o.name for o in model.graph.output]
    assert names == ["ro", "lif.u_out", "lif.v_out", "ro.u_out", "ro.v_out"]     # result, then states
    assert [o.name for o in graph_to_onnx(back).graph.output] == names


def test_snn_state_that_is_not_a_state_input_is_refused():
    from snnc.ir.graph import Graph
    from snnc.ir.nodes import Dense, Input
    model = graph_to_onnx(Graph((Input("x", (2,)), Dense("d", "x", np.eye(2), None),
                                 CubaLIF("n", ("d",), (2,), 1.0, 0.5, 0.5, reset="zero")), ("n",), dt_s=1e-3))
    lif = next(n for n in model.graph.node if n.domain == "snn")
    model.graph.node.insert(0, helper.make_node("Sub", [lif.input[2], lif.input[2]], ["zero"]))
    lif.input[2] = "zero"                                       # v - v: a state with no terms at all
    assert refusal(model) == ("file 'm.onnx': node 'LIF' field 'inputs[2]': a state input bound to the node's "
                              "output 'n.v_out'")


def test_unknown_input_is_named_before_it_is_read():
    model = leaky_step()
    model.graph.node[2].input[1] = "nowhere"
    assert refusal(model) == "file 'm.onnx': node 'Add' field 'input': 'nowhere' is not computed before this node"


def test_conv_pads_of_the_wrong_length_are_named():
    assert refusal(leaky_step(conv_pads=[0, 0]), UnsupportedError) == (
        "node 'm.onnx: conv' field 'pads': limit 4 non-negative values, symmetric [h, w, h, w], got [0, 0]")


def test_comparison_stored_as_state_is_named():
    stored = [helper.make_node("Greater", ["mem_raw", "thr"], ["mem_out"])]
    assert refusal(leaky_step(stored)) == ("file 'm.onnx': node 'mem_out' field 'output': a state update linear "
                                           "in the inputs (got a threshold comparison; Cast it to float)")


def test_state_dependent_gemm_bias_is_named():
    model = leaky_step()
    model.graph.node[0].input.append("mem")
    assert refusal(model, UnsupportedError) == ("node 'm.onnx: Gemm' field 'inputs[2]': limit a constant bias C, "
                                                "got state-dependent")


# ------------------------------------------------------------------------------------ malformed time loops
# Each edit below once escaped as an internal exception wrapped in "malformed (...)" (or, for a state that copies
# itself, an endless loop) or was accepted though ONNX forbids it; each is now refused naming the node, the field,
# the limit and the value. The step has 3 inputs and 4 neurons, so a message naming the wrong tensor shows.

MALFORMED_BASES = {"Loop": lambda: leaky_time_loop("Loop"), "Scan": lambda: leaky_time_loop("Scan"),
                   "step": lambda: leaky_step(n_in=3), "conv step": lambda: leaky_step(conv_pads=[0, 0, 0, 0])}


def body_of(model):
    return next(a.g for a in model.graph.node[0].attribute if a.name == "body")


def node_of(graph, op_type: str):
    return next(n for n in graph.node if n.op_type == op_type)


def set_attribute(node, name: str, value) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept + ([helper.make_attribute(name, value)] if value is not None else []))


def set_initializer(graph, name: str, array) -> None:
    tensor = next(t for t in graph.initializer if t.name == name)
    tensor.CopyFrom(numpy_helper.from_array(np.asarray(array), name))


def without_body(m):
    set_attribute(m.graph.node[0], "body", None)


def integer_body(m):
    set_attribute(m.graph.node[0], "body", 3)


def without_num_scan_inputs(m):
    set_attribute(m.graph.node[0], "num_scan_inputs", None)


def three_scan_inputs_of_two(m):
    set_attribute(m.graph.node[0], "num_scan_inputs", 3)


def float_scan_input_axes(m):
    set_attribute(m.graph.node[0], "scan_input_axes", [0.0])


def extra_body_input(m):
    body_of(m).input.append(value("extra", [1, 5]))


def body_without_its_sequence_input(m):
    del body_of(m).input[1]


def node_without_final_state(m):
    del m.graph.node[0].output[0]


def unnamed_state_output(m):
    body_of(m).output[1].name = ""


def state_input_named_like_the_counter(m):
    body_of(m).input[2].name = "iter"


def initial_state_nothing_defines(m):
    m.graph.node[0].input[2] = "ghost"


def float_trip_count(m):
    set_initializer(m.graph, "trip", np.float32(5.0))


def zero_trip_count(m):
    set_initializer(m.graph, "trip", np.int64(0))


def integer_condition(m):
    set_initializer(m.graph, "cond", np.int64(1))


def float_body_condition(m):
    identity = node_of(body_of(m), "Identity")
    identity.CopyFrom(helper.make_node("Constant", [], ["cond_out"], value=numpy_helper.from_array(np.float32(1))))


def float_iteration_input(m):
    body_of(m).input[0].CopyFrom(value("iter", []))


def sequence_condition_input(m):
    body_of(m).input[1].CopyFrom(helper.make_tensor_sequence_value_info("cond_in", TensorProto.BOOL, []))


def rank_one_initial_state(m):
    set_initializer(m.graph, "mem_init", np.zeros(4, np.float32))


def initial_state_of_the_input_size(m):
    set_initializer(m.graph, "mem_init", np.zeros((1, 3), np.float32))


def wider_sequence_than_the_body(m):
    m.graph.input[0].CopyFrom(value("x_seq", [5, 1, 5]))


def state_output_that_is_its_input(m):
    body_of(m).output[1].name = "mem"


def membrane_plus_input_sequence_step(m):
    node_of(body_of(m), "Add").input[1] = "x"


def comparison_with_one_input(m):
    del node_of(body_of(m), "Greater").input[1]


def iteration_counter_times_membrane(m):
    node_of(body_of(m), "Mul").input[0] = "iter"


def gemm_bias_of_five(m):
    node_of(body_of(m), "Gemm").input.append("b5")
    body_of(m).initializer.append(numpy_helper.from_array(np.ones(5, np.float32), "b5"))


def decay_of_two_rows(m):
    set_initializer(body_of(m), "beta", np.full((2, 1), 0.9, np.float32))


def trip_count_of_unknown_type(m):
    next(t for t in m.graph.initializer if t.name == "trip").data_type = 51


def membrane_stored_unchanged(m):
    node_of(m.graph, "Identity").input[0] = "mem"


def conv_of_three_groups(m):
    set_attribute(node_of(m.graph, "Conv"), "group", 3)


def pool_window_larger_than_input(m):
    conv = node_of(m.graph, "Conv")
    conv.CopyFrom(helper.make_node("AveragePool", ["x4"], ["c4"], name="pool", kernel_shape=[2, 2]))


MALFORMED = [
    ("Loop", without_body,
     "file 'm.onnx': node 'Loop' field 'body': one GRAPH attribute (the time step), got 0 attributes"),
    ("Scan", integer_body,
     "file 'm.onnx': node 'Scan' field 'body': one GRAPH attribute (the time step), got INT"),
    ("Scan", without_num_scan_inputs,
     "file 'm.onnx': node 'Scan' field 'num_scan_inputs': an INT attribute from 1 to 2 (the node's inputs), got none"),
    ("Scan", three_scan_inputs_of_two,
     "file 'm.onnx': node 'Scan' field 'num_scan_inputs': an INT attribute from 1 to 2 (the node's inputs), got 3"),
    ("Scan", float_scan_input_axes,
     "file 'm.onnx': node 'Scan' field 'scan_input_axes': an INTS attribute, got FLOATS"),
    ("Loop", extra_body_input,
     "file 'm.onnx': node 'Loop' field 'body.input': 3 (iteration, condition, then 1 loop-carried state(s), as the "
     "node has), got 4"),
    ("Scan", body_without_its_sequence_input,
     "file 'm.onnx': node 'Scan' field 'body.input': 2 (1 state(s) then 1 sequence(s), as the node has), got 1"),
    ("Loop", node_without_final_state,
     "file 'm.onnx': node 'Loop' field 'body.output': 2 (condition, then one per node output), got 3"),
    ("Loop", unnamed_state_output,
     "file 'm.onnx': node 'Loop' field 'body.output[1]': a named value, got ''"),
    ("Loop", state_input_named_like_the_counter,
     "file 'm.onnx': node 'Loop' field 'body.input[2]': a name no other body input has, got 'iter' twice"),
    ("Loop", initial_state_nothing_defines,
     "file 'm.onnx': node 'Loop' field 'inputs[2]': a graph input, initializer or node output, got 'ghost', which "
     "nothing in the graph defines"),
    ("Loop", float_trip_count,
     "file 'm.onnx': node 'Loop' field 'inputs[0] (trip count)': one integer >= 1, got a float tensor of shape [] = "
     "5.0"),
    ("Loop", zero_trip_count,
     "file 'm.onnx': node 'Loop' field 'inputs[0] (trip count)': one integer >= 1, got an integer tensor of shape [] "
     "= 0"),
    ("Loop", integer_condition,
     "file 'm.onnx': node 'Loop' field 'inputs[1] (cond)': one boolean, got an integer tensor of shape [] = 1"),
    ("Loop", float_body_condition,
     "file 'm.onnx': node 'Loop' field 'body.output[0] (cond_out)': one boolean, got a float tensor of shape [] = 1.0"),
    ("Loop", float_iteration_input,
     "file 'm.onnx': node 'Loop' field 'body.input[0] (iteration)': a scalar INT64 tensor, got FLOAT of shape []"),
    ("Loop", sequence_condition_input,
     "file 'm.onnx': node 'Loop' field 'body.input[1] (condition)': a scalar BOOL tensor, got a sequence"),
    ("Loop", rank_one_initial_state,
     "file 'm.onnx': node 'Loop' field 'inputs[2] (initial state 'mem_init')': shape [batch, *sizes] with sizes >= "
     "1, got [4]"),
    ("Loop", initial_state_of_the_input_size,
     "file 'm.onnx': node 'Loop' field 'inputs[2] (initial state 'mem_init')': the shape body input 'mem' declares, "
     "[1, 4] (batch not compared), got [1, 3]"),
    ("Scan", wider_sequence_than_the_body,
     "file 'm.onnx': node 'Scan' field 'inputs[1] (sequence 'x_seq')': the shape body input 'x' declares, [1, 3] "
     "(batch not compared), got [1, 5]"),
    ("Loop", state_output_that_is_its_input,
     "file 'm.onnx': node 'mem' field 'output': spike history of a recognised neuron (state copies that end at a "
     "spike), got copies in a cycle: mem <- mem"),
    ("step", membrane_stored_unchanged,
     "file 'm.onnx': node 'mem_out' field 'output': spike history of a recognised neuron (state copies that end at a "
     "spike), got copies in a cycle: mem <- mem"),
    ("Loop", membrane_plus_input_sequence_step,
     "file 'm.onnx': node 'Add' field 'inputs': shapes that broadcast together (ONNX multidirectional broadcasting), "
     "got [1, 4] and [1, 3]"),
    ("Loop", comparison_with_one_input,
     "file 'm.onnx': node 'Greater' field 'inputs': 2 inputs (ONNX Greater), got 1"),
    ("Loop", iteration_counter_times_membrane,
     "node 'm.onnx: Mul' field 'inputs': limit the Loop's sequence and iteration counter only in Gather(sequence, "
     "iteration), got the iteration counter 'iter' into Mul"),
    ("Scan", gemm_bias_of_five,
     "file 'm.onnx': node 'Gemm' field 'inputs[2]': a bias C that broadcasts to the output shape [1, 4], got shape "
     "[5]"),
    ("Scan", decay_of_two_rows,
     "file 'm.onnx': node 'mem_out' field 'shape': as many values as state input 'mem' [1, 4] (4), got an update of "
     "shape [2, 4] (8)"),
    ("Loop", trip_count_of_unknown_type,
     "file 'm.onnx': node 'trip' field 'initializer.data_type': an ONNX element type (TensorProto.DataType), got 51"),
    ("conv step", conv_of_three_groups,
     "file 'm.onnx': node 'conv' field 'inputs/attributes': input channels = kernel channels x group and output "
     "channels divisible by group, got input [1, 4, 1, 1], kernel [4, 4, 1, 1], group 3"),
    ("conv step", pool_window_larger_than_input,
     "file 'm.onnx': node 'pool' field 'inputs/attributes': kernel_shape of sizes >= 1 within the input's [1, 1] and "
     "2 strides >= 1, got kernel [2, 2], strides [2, 2]"),
]




@pytest.mark.parametrize("base, edit, message", MALFORMED, ids=[f"{b}-{e.__name__}" for b, e, _ in MALFORMED])
def test_malformed_time_loop_is_named(base, edit, message):
    model = MALFORMED_BASES[base]()
    assert isinstance(onnx_model_to_ir(model, path="m.onnx"), Graph)      # the unedited model loads
    edit(model)
    with time_limit(10):
        assert refusal(model) == message
