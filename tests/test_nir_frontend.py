"""NIR 1.0 import/export: explicit dt/reset, every supported node type, round trips, and spike-for-spike
agreement with snnTorch's and SpikingJelly's own simulation of the models they exported."""
from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import snntorch as snn
import torch

from snnc.compiler.cli import main
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.loader import load_model
from snnc.frontends.nir_export import ir_to_nir_graph, save_nir
from snnc.frontends.nir_import import load_nir, nir_graph_to_ir
from snnc.frontends.torch_frontend import from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, Conv2d, CubaLIF, Dense, Input, SumPool2d
from snnc.ir.printer import format_graph
from snnc.simulators.float_reference import run_float
from snntorch_runner import run_snntorch

warnings.filterwarnings("ignore")


def spikes(seed: int, shape, rate: float = 0.5) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.uint8)


def snntorch_net(reset: str, per_neuron_beta: bool = True) -> torch.nn.Sequential:
    """snnTorch's exporter needs per-neuron beta/threshold tensors to know layer sizes."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 6), snn.Leaky(beta=torch.full((6,), 0.8), threshold=torch.full((6,), 0.7),
                                         init_hidden=True, reset_mechanism=reset),
        torch.nn.Linear(6, 4), snn.Leaky(beta=torch.linspace(0.85, 0.95, 4) if per_neuron_beta else torch.full((4,), 0.9), threshold=torch.ones(4),
                                         init_hidden=True, output=True, reset_mechanism=reset))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[2].weight.mul_(3.0)
    return net


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_snntorch_export_matches_snntorch(reset):
    from snntorch.export_nir import export_to_nir
    net = snntorch_net(reset)
    graph = nir_graph_to_ir(export_to_nir(net, torch.zeros(1, 8), ignore_dims=[0]), dt_s=1e-4, reset=reset)
    x = spikes(1, (4, 40, 8))
    reference = run_snntorch(net, x)
    ours = run_float(graph, x)
    for path, name in (("1", "n1"), ("3", "n3")):
        assert reference[path].sum() > 10, path
        np.testing.assert_array_equal(ours.spikes[name], reference[path])


def test_spikingjelly_export_matches_spikingjelly():
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir
    torch.manual_seed(0)
    net = torch.nn.Sequential(layer.Conv2d(2, 3, 3, padding=1), neuron.IFNode(v_threshold=0.5), layer.AvgPool2d(2),
                              layer.Flatten(), layer.Linear(12, 5), neuron.LIFNode(tau=2.0, v_threshold=0.2))
    with torch.no_grad():
        net[4].weight.mul_(4.0)
    graph = nir_graph_to_ir(export_to_nir(net, torch.zeros(1, 2, 4, 4)), dt_s=1e-4, reset="zero", comparison="ge")
    x = spikes(2, (3, 30, 2, 4, 4))
    functional.reset_net(net)
    recorded = {1: [], 5: []}
    hooks = [net[i].register_forward_hook(lambda m, a, out, i=i: recorded[i].append(out.detach().numpy()))
             for i in recorded]
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(torch.as_tensor(x[:, t], dtype=torch.float32))
    for h in hooks:
        h.remove()
    ours = run_float(graph, x)
    for index, name in ((1, "_1"), (5, "_5")):
        theirs = np.stack(recorded[index], axis=1).astype(np.uint8)
        assert theirs.sum() > 10, index
        np.testing.assert_array_equal(ours.spikes[name].reshape(theirs.shape), theirs)


def test_dt_and_reset_are_never_guessed(tmp_path):
    from snntorch.export_nir import export_to_nir
    path = tmp_path / "net.nir"
    nir.write(path, export_to_nir(snntorch_net("zero", per_neuron_beta=False), torch.zeros(1, 8), ignore_dims=[0]))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert str(info.value) == (f"file '{path}': node 'graph' field 'dt': NIR stores no time step: pass --dt "
                               "SECONDS (snnTorch's and SpikingJelly's export_to_nir write parameters for 1e-4; "
                               "Norse's to_nir: --producer norse with the dt given to to_nir, default 1e-3; "
                               "another producer: the step its own simulation used)")
    with pytest.raises(ModelFileError) as info:
        load_model(path, dt_s=1e-4)
    assert str(info.value) == (f"file '{path}': node '1' field 'reset': NIR stores no reset kind: pass --reset "
                               "{zero,zero_next,subtract,none} (snnTorch: the module's reset_mechanism, default "
                               "subtract; its 'zero' is zero for Leaky, zero_next for Synaptic/RLeaky; SpikingJelly "
                               "hard reset: zero)")
    assert main(["compile", str(path), "--target", "loihi2", "--dt", "1e-4", "--reset", "zero",
                 "-o", str(tmp_path / "out")]) == 0


def torch_model() -> tuple[torch.nn.Module, tuple[int, ...]]:
    """Conv, pooling, flatten, Leaky (zero), Synaptic (zero_next), RLeaky (recurrent delay 1): every
    float IR node kind, with asymmetric shapes."""
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, (3, 2), padding=(1, 0)), snn.Leaky(beta=0.7, threshold=0.4, init_hidden=True,
                                                                 reset_mechanism="zero"),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(3 * 3 * 2, 7),
        snn.Synaptic(alpha=0.6, beta=0.85, threshold=0.3, init_hidden=True, reset_mechanism="zero"),
        torch.nn.Linear(7, 5, bias=False), snn.RLeaky(beta=0.9, linear_features=5, threshold=0.25, init_hidden=True))
    with torch.no_grad():
        for index in (0, 4, 6):
            model[index].weight.mul_(3.0)
    return model, (2, 6, 5)


def test_round_trip_writes_metadata_and_preserves_spikes(tmp_path):
    model, shape = torch_model()
    graph = from_torch(model, shape, dt_s=1e-3)
    path = tmp_path / "model.nir"
    save_nir(graph, path)
    written = nir.read(path, type_check=False)   # nir 1.0.8's type check assumes square kernels
    assert written.metadata["snnc.dt_s"] == 1e-3 and written.metadata["snnc.update_order"] == "current_then_voltage"
    assert {k: type(v).__name__ for k, v in written.nodes.items() if k.startswith("lif")} == \
        {"lif_1": "LIF", "lif_5": "CubaLIF", "lif_7": "LIF"}
    back = load_nir(path)                            # dt and reset from snnc's metadata
    resets = {n.name: n.reset for n in back.nodes if isinstance(n, CubaLIF)}
    assert resets == {"lif_1": "zero", "lif_5": "zero_next", "lif_7": "subtract"}
    assert back.node("rec_7").delay_steps == 1
    x = spikes(4, (3, 25, *shape))
    a, b = run_float(graph, x), run_float(back, x)
    for name in ("lif_1", "lif_5", "lif_7"):
        assert a.spikes[name].sum() > 5, name
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])
        # state agrees to float64 rounding of tau = dt / decay and back (a few ulp per step)
        np.testing.assert_allclose(a.states[name]["v"], b.states[name]["v"], rtol=0, atol=1e-9)


def test_every_node_type_imports_with_stated_equations():
    """Threshold, IF, LIF, CubaLIF, LI, CubaLI, I, Affine, Linear, Scale, Delay, Conv2d, SumPool2d,
    AvgPool2d, Flatten: one graph, golden IR text (dt = 0.5 ms makes every Euler factor visible; each
    value below is checked by hand in the assertions that follow)."""
    dt = 5e-4
    w = np.arange(12, dtype=float).reshape(3, 4) / 10
    nodes = {
        "x": nir.Input(input_type={"input": np.array([2, 4, 4])}),
        "conv": nir.Conv2d(input_shape=(4, 4), weight=np.ones((2, 2, 3, 3)) / 9, stride=1, padding=1, dilation=1,
                           groups=1, bias=np.array([0.1, -0.2])),
        "thr": nir.Threshold(threshold=np.full((2, 4, 4), 0.5)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "if": nir.IF(r=np.full((2, 2, 2), 1000.0), v_threshold=np.full((2, 2, 2), 1.0)),
        "avg": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([2, 1, 1])}, start_dim=0, end_dim=-1),
        "scale": nir.Scale(scale=np.array([2.0, 3.0])),
        "aff": nir.Affine(weight=w[:, :2], bias=np.array([0.0, 0.1, 0.2])),
        "lif": nir.LIF(tau=np.full(3, 2e-3), r=np.full(3, 4.0), v_leak=np.full(3, 0.5), v_threshold=np.full(3, 1.0)),
        "lin": nir.Linear(weight=w[:2, :3]),
        "delay": nir.Delay(delay=np.full(2, 1e-3)),
        "cuba": nir.CubaLIF(tau_syn=np.full(2, 1e-3), tau_mem=np.full(2, 4e-3), r=np.full(2, 2.0), v_leak=np.zeros(2),
                            v_threshold=np.full(2, 0.3), w_in=np.full(2, 3.0)),
        "li_w": nir.Linear(weight=np.ones((2, 2))), "li": nir.LI(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2)),
        "cli_w": nir.Linear(weight=np.ones((2, 2))),
        "cli": nir.CubaLI(tau_syn=np.full(2, 1e-3), tau_mem=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2)),
        "i_w": nir.Linear(weight=np.ones((2, 2))), "i": nir.I(r=np.full(2, 10.0)),
        "out": nir.Output(output_type={"output": np.array([2])}),
        "out_li": nir.Output(output_type={"output": np.array([2])}),
        "out_cli": nir.Output(output_type={"output": np.array([2])}),
        "out_i": nir.Output(output_type={"output": np.array([2])}),
    }
    edges = [("x", "conv"), ("conv", "thr"), ("thr", "pool"), ("pool", "if"), ("if", "avg"), ("avg", "flat"),
             ("flat", "scale"), ("scale", "aff"), ("aff", "lif"), ("lif", "lin"), ("lin", "delay"), ("delay", "cuba"),
             ("cuba", "out"), ("cuba", "li_w"), ("li_w", "li"), ("li", "out_li"), ("cuba", "cli_w"), ("cli_w", "cli"),
             ("cli", "out_cli"), ("cuba", "i_w"), ("i_w", "i"), ("i", "out_i")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=dt, reset="subtract",
                            name="all_nodes")
    assert format_graph(graph) == GOLDEN_ALL_NODES
    # the stated equations, spelled out: LIF voltage_decay = dt/tau, input factor dt*r/tau, bias dt*v_leak/tau
    lif = graph.node("lif")
    assert lif.voltage_decay == dt / 2e-3 and lif.bias == dt * 0.5 / 2e-3
    # AvgPool -> Flatten -> Scale -> Affine is one linear map: composed into one Dense (factor dt*r/tau = 1)
    np.testing.assert_allclose(graph.node("aff").weight, np.repeat(w[:, :2] * np.array([2.0, 3.0]) * 0.25, 4, axis=1))
    cuba = graph.node("cuba")
    assert (cuba.current_decay, cuba.voltage_decay) == (dt / 1e-3, dt / 4e-3)
    np.testing.assert_allclose(graph.node("lin").weight, w[:2, :3] * (dt * 3.0 / 1e-3) * (dt * 2.0 / 4e-3))
    assert graph.node("lin").delay_steps == 2
    assert isinstance(graph.node("li"), LI) and isinstance(graph.node("pool"), SumPool2d)
    assert graph.node("pool").scale == dt * 1000.0 and graph.node("thr").voltage_decay == 1.0
    run_float(graph, spikes(5, (2, 6, 2, 4, 4)))


GOLDEN_ALL_NODES = """\
snnc.ir v1 graph "all_nodes" timing=zero_latency dt_s=0.0005
  %x: Input<2x4x4> shape=(2, 4, 4)
  %conv: Conv2d<2x4x4> source=%x weight=f[2,2,3,3]{0.1111111111111111..0.1111111111111111 #e4f64398} in_shape=(2, 4, 4) stride=(1, 1) padding=(1, 1) groups=1 bias=f[2]{-0.2..0.1 #876e51b8} delay_steps=0
  %thr: CubaLIF<2x4x4> inputs=(%conv) shape=(2, 4, 4) current_decay=1.0 voltage_decay=1.0 threshold=0.5 bias=0.0 reset='none' comparison='gt'
  %pool: SumPool2d<2x2x2> source=%thr in_shape=(2, 4, 4) kernel=(2, 2) stride=(2, 2) scale=0.5 delay_steps=0
  %if: CubaLIF<2x2x2> inputs=(%pool) shape=(2, 2, 2) current_decay=1.0 voltage_decay=0.0 threshold=1.0 bias=0.0 reset='subtract' comparison='gt'
  %aff: Dense<3> source=%if weight=f[3,8]{0.0..0.675 #76867b85} bias=f[3]{0.0..0.2 #25ac53ed} delay_steps=0
  %lif: CubaLIF<3> inputs=(%aff) shape=(3,) current_decay=1.0 voltage_decay=0.25 threshold=1.0 bias=0.125 reset='subtract' comparison='gt'
  %lin: Dense<2> source=%lif weight=f[2,3]{0.0..0.22499999999999998 #83e0062b} bias=none delay_steps=2
  %cuba: CubaLIF<2> inputs=(%lin) shape=(2,) current_decay=0.5 voltage_decay=0.125 threshold=0.3 bias=0.0 reset='subtract' comparison='gt'
  %li_w: Dense<2> source=%cuba weight=f[2,2]{0.5..0.5 #920026b5} bias=none delay_steps=0
  %li: LI<2> inputs=(%li_w) shape=(2,) current_decay=1.0 voltage_decay=0.5 bias=0.0
  %cli_w: Dense<2> source=%cuba weight=f[2,2]{0.125..0.125 #9a4a0946} bias=none delay_steps=0
  %cli: LI<2> inputs=(%cli_w) shape=(2,) current_decay=0.5 voltage_decay=0.25 bias=0.0
  %i_w: Dense<2> source=%cuba weight=f[2,2]{0.005..0.005 #458901e9} bias=none delay_steps=0
  %i: LI<2> inputs=(%i_w) shape=(2,) current_decay=1.0 voltage_decay=0.0 bias=0.0
  outputs %cuba, %li, %cli, %i
"""


@pytest.mark.parametrize("node, field, expected", [
    (nir.LIF(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3),
             v_reset=np.array([0.0, -0.5, 0.0])), "v_reset",
     "export a model trained with a reset to 0 (snnTorch reset_mechanism='zero', SpikingJelly v_reset=0.0) or by "
     "subtraction: limit 0 (snnc neurons reset to 0), got values in [-0.5, 0.0]"),
    (nir.LIF(tau=np.full(3, 1e-4), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)), "tau",
     "limit >= dt = 0.001 s (forward Euler decay dt/tau in [0, 1]; a file from Norse's to_nir: --producer "
     "norse), got values in [0.0001, 0.0001]"),
])
def test_unrepresentable_neurons_are_refused(node, field, expected):
    nodes = {"x": nir.Input(input_type={"input": np.array([2])}), "w": nir.Linear(weight=np.ones((3, 2))),
             "n": node, "o": nir.Output(output_type={"output": np.array([3])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("x", "w"), ("w", "n"), ("n", "o")], type_check=False)
    with pytest.raises(UnsupportedError) as info:
        nir_graph_to_ir(graph, dt_s=1e-3, reset="zero", path="g.nir")
    assert str(info.value) == f"node 'g.nir: n' field '{field}': {expected}"


def test_unknown_node_type_is_named(tmp_path):
    nodes = {"x": nir.Input(input_type={"input": np.array([2, 5])}),
             "c": nir.Conv1d(input_shape=5, weight=np.ones((1, 2, 3)), stride=1, padding=0, dilation=1, groups=1,
                             bias=np.zeros(1)),
             "n": nir.IF(r=np.ones((1, 3)), v_threshold=np.ones((1, 3))),
             "o": nir.Output(output_type={"output": np.array([1, 3])})}
    path = tmp_path / "c1.nir"
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=[("x", "c"), ("c", "n"), ("n", "o")], type_check=False))
    with pytest.raises(SnncError) as info:
        load_nir(path, dt_s=1e-3, reset="zero")
    assert str(info.value).startswith(f"node '{path}: c' field 'type': limit a NIR node snnc represents (LIF, ")
    assert str(info.value).endswith("got Conv1d")


def test_export_refuses_lowered_graphs(tmp_path):
    from snnc.compiler.pipeline import compile_graph
    model = torch.nn.Sequential(torch.nn.Linear(4, 3, bias=False), snn.Leaky(beta=0.5, init_hidden=True,
                                                                             reset_mechanism="zero"))
    lowered = compile_graph(from_torch(model, (4,)), "emulator").graph
    with pytest.raises(UnsupportedError) as info:
        ir_to_nir_graph(lowered)
    assert str(info.value) == ("node 'network' field 'timing': limit zero_latency (NIR holds float models; export "
                               "the source graph, not the lowered one), got hop_latency")


def test_snntorch_rleaky_subgraph_is_inlined_with_recurrent_delay():
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5),
                              snn.RLeaky(beta=torch.full((5,), 0.9), V=torch.full((5,), 0.5), all_to_all=False,
                                         threshold=torch.full((5,), 0.5), init_hidden=True, reset_mechanism="zero"))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    try:
        exported = export_to_nir(net, torch.zeros(1, 6), ignore_dims=[0])
    except Exception as exc:  # pragma: no cover - depends on snnTorch/nirtorch versions
        pytest.skip(f"snnTorch cannot export RLeaky here: {exc}")
    graph = nir_graph_to_ir(exported, dt_s=1e-4, reset="zero_next")   # snnTorch RLeaky zeroes the next update
    recurrent = [n for n in graph.nodes if isinstance(n, Dense) and n.delay_steps == 1]
    assert len(recurrent) == 1
    x = spikes(6, (2, 30, 6))
    reference = run_snntorch(net, x)
    neuron = next(n.name for n in graph.nodes if isinstance(n, CubaLIF))
    ours = run_float(graph, x)
    assert reference["1"].sum() > 5
    np.testing.assert_array_equal(ours.spikes[neuron], reference["1"])


def test_loader_refuses_nir_options_for_other_formats(tmp_path, digits_model_path):
    with pytest.raises(ModelFileError) as info:
        load_model(digits_model_path, reset="zero")
    assert str(info.value) == (f"file '{digits_model_path}': option(s) reset apply to NIR files only; '.pt' files "
                               "store them")


def test_conv_input_factor_is_per_channel(tmp_path):
    """A neuron's input factor folds into the conv weights per output channel."""
    nodes = {"x": nir.Input(input_type={"input": np.array([1, 3, 3])}),
             "c": nir.Conv2d(input_shape=(3, 3), weight=np.ones((2, 1, 1, 1)), stride=1, padding=0, dilation=1,
                             groups=1, bias=np.zeros(2)),
             "n": nir.IF(r=np.concatenate([np.full((1, 3, 3), 100.0), np.full((1, 3, 3), 200.0)]),
                         v_threshold=np.ones((2, 3, 3))),
             "o": nir.Output(output_type={"output": np.array([2, 3, 3])})}
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=[("x", "c"), ("c", "n"), ("n", "o")], type_check=False),
                            dt_s=1e-3, reset="zero")
    conv = graph.node("c")
    assert isinstance(conv, Conv2d) and conv.weight.reshape(-1).tolist() == [0.1, 0.2]


def test_cycle_through_synapses_alone_and_nan_parameters_are_named():
    x = nir.Input(input_type={"input": np.array([2])})
    out = nir.Output(output_type={"output": np.array([2])})
    cycle = nir.NIRGraph(nodes={"x": x, "a": nir.Linear(weight=np.eye(2)), "b": nir.Linear(weight=np.eye(2)),
                                "n": nir.IF(r=np.ones(2), v_threshold=np.ones(2)), "o": out},
                         edges=[("x", "a"), ("a", "b"), ("b", "a"), ("b", "n"), ("n", "o")], type_check=False)
    with pytest.raises(ModelFileError) as info:
        nir_graph_to_ir(cycle, dt_s=1e-3, reset="zero", path="c.nir")
    assert str(info.value) == "file 'c.nir': node 'b' field 'edges': no cycle through synapses alone"
    nan = nir.NIRGraph(nodes={"x": x, "w": nir.Linear(weight=np.eye(2)),
                              "n": nir.LIF(tau=np.full(2, 2e-3), r=np.ones(2), v_leak=np.zeros(2),
                                           v_threshold=np.array([1.0, np.nan])), "o": out},
                       edges=[("x", "w"), ("w", "n"), ("n", "o")], type_check=False)
    with pytest.raises(ModelFileError) as info:
        nir_graph_to_ir(nan, dt_s=1e-3, reset="zero", path="nan.nir")
    assert str(info.value) == "file 'nan.nir': node 'n' field 'v_threshold': finite values, got NaN or inf"


# --------------------------------------------------------------------------- review regressions

def _if(size: int, threshold: float = 1e9) -> nir.IF:
    """IF with input factor r * dt = 1 at dt = 1 ms (a plain integrator of the synapse output)."""
    return nir.IF(r=np.full(size, 1000.0), v_threshold=np.full(size, threshold))


def _dense_into(graph, neuron: str) -> Dense:
    (source,) = graph.node(neuron).inputs
    node = graph.node(source)
    assert isinstance(node, Dense)
    return node


def test_composed_chain_keeps_conv_bias_and_weights():
    """Conv(w 2, bias 5) -> Flatten -> Linear(W) is one map: weight 2 W, bias 5 W 1 (probing it twice
    must not drop the conv bias on the second probe, which gave W (2 - 5) before)."""
    w = np.arange(18, dtype=np.float64).reshape(2, 9) - 4.0
    nodes = {"x": nir.Input(input_type={"input": np.array([1, 3, 3])}),
             "c": nir.Conv2d(input_shape=(3, 3), weight=np.full((1, 1, 1, 1), 2.0), stride=1, padding=0,
                             dilation=1, groups=1, bias=np.array([5.0])),
             "f": nir.Flatten(input_type={"input": np.array([1, 3, 3])}, start_dim=0, end_dim=-1),
             "a": nir.Linear(weight=w), "n": _if(2), "o": nir.Output(output_type={"output": np.array([2])})}
    edges = [("x", "c"), ("c", "f"), ("f", "a"), ("a", "n"), ("n", "o")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=1e-3, reset="zero")
    dense = _dense_into(graph, "n")
    np.testing.assert_array_equal(dense.weight, 2.0 * w)
    np.testing.assert_array_equal(dense.bias, 5.0 * w.sum(axis=1))


@pytest.mark.parametrize("order, expected", [("scale_after", [[10.0, 20.0], [300.0, 400.0]]),
                                             ("scale_before", [[10.0, 200.0], [30.0, 400.0]])])
def test_scale_multiplies_outputs_after_and_inputs_before_a_linear(order, expected):
    nodes = {"x": nir.Input(input_type={"input": np.array([2])}),
             "a": nir.Linear(weight=np.array([[1.0, 2.0], [3.0, 4.0]])), "s": nir.Scale(scale=np.array([10.0, 100.0])),
             "n": _if(2), "o": nir.Output(output_type={"output": np.array([2])})}
    chain = [("x", "a"), ("a", "s"), ("s", "n")] if order == "scale_after" else [("x", "s"), ("s", "a"), ("a", "n")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=chain + [("n", "o")], type_check=False),
                            dt_s=1e-3, reset="zero")
    assert _dense_into(graph, "n").weight.tolist() == expected


def test_affine_and_conv_bias_reach_every_fan_out_target_once():
    """One Affine feeding two neurons: both get its bias; two sources into one Affine: the bias once."""
    out = lambda: nir.Output(output_type={"output": np.array([2])})  # noqa: E731
    nodes = {"x": nir.Input(input_type={"input": np.array([2])}),
             "a": nir.Affine(weight=np.array([[1.0, 2.0], [3.0, 4.0]]), bias=np.array([0.5, 0.25])),
             "n1": _if(2), "n2": _if(2), "o1": out(), "o2": out()}
    edges = [("x", "a"), ("a", "n1"), ("a", "n2"), ("n1", "o1"), ("n2", "o2")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=1e-3, reset="zero")
    assert [_dense_into(graph, n).bias.tolist() for n in ("n1", "n2")] == [[0.5, 0.25], [0.5, 0.25]]
    nodes = {"x": nir.Input(input_type={"input": np.array([2])}), "y": nir.Input(input_type={"input": np.array([2])}),
             "a": nir.Affine(weight=np.eye(2), bias=np.array([0.5, 0.25])), "n": _if(2), "o": out()}
    edges = [("x", "a"), ("y", "a"), ("a", "n"), ("n", "o")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=1e-3, reset="zero")
    biases = [graph.node(s).bias for s in graph.node("n").inputs]
    assert sum(b for b in biases if b is not None).tolist() == [0.5, 0.25] and sum(b is None for b in biases) == 1
    shape = np.array([2, 2, 2])
    nodes = {"x": nir.Input(input_type={"input": np.array([1, 2, 2])}),
             "c": nir.Conv2d(input_shape=(2, 2), weight=np.array([1.0, 3.0]).reshape(2, 1, 1, 1), stride=1,
                             padding=0, dilation=1, groups=1, bias=np.array([7.0, -2.0])),
             "n1": _if(8), "n2": _if(8), "o1": nir.Output(output_type={"output": shape}),
             "o2": nir.Output(output_type={"output": shape})}
    for neuron in ("n1", "n2"):
        nodes[neuron] = nir.IF(r=np.full((2, 2, 2), 1000.0), v_threshold=np.full((2, 2, 2), 1e9))
    edges = [("x", "c"), ("c", "n1"), ("c", "n2"), ("n1", "o1"), ("n2", "o2")]
    graph = nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=1e-3, reset="zero")
    assert [graph.node(graph.node(n).inputs[0]).bias.tolist() for n in ("n1", "n2")] == [[7.0, -2.0]] * 2


def test_export_routes_synapse_delay_into_the_neuron():
    """Dense with delay 3 exports as x -> d -> d_delay -> n and comes back with delay 3, spike for spike."""
    ir = Graph((Input("x", (2,)), Dense("d", "x", np.array([[1.5, 0.0], [0.25, 1.0]]), None, delay_steps=3),
                CubaLIF("n", ("d",), (2,), 1.0, 0.5, 0.5, reset="zero")), ("n",), dt_s=1e-3)
    exported = ir_to_nir_graph(ir)
    assert sorted(exported.edges) == [("d", "d_delay"), ("d_delay", "n"), ("n", "output"), ("x", "d")]
    back = nir_graph_to_ir(exported, dt_s=1e-3, reset="zero")
    assert _dense_into(back, "n").delay_steps == 3
    x = spikes(11, (2, 30, 2), rate=0.6)
    a, b = run_float(ir, x), run_float(back, x)
    assert a.spikes["n"][:, :3].sum() == 0 and a.spikes["n"].sum() > 5
    np.testing.assert_array_equal(a.spikes["n"], b.spikes["n"])


def test_export_refuses_a_layer_mixing_zero_and_nonzero_voltage_decay():
    ir = Graph((Input("x", (2,)), Dense("d", "x", np.eye(2), None),
                CubaLIF("n", ("d",), (2,), 1.0, np.array([0.0, 0.5]), 0.5, reset="zero")), ("n",), dt_s=1e-3)
    with pytest.raises(UnsupportedError) as info:
        ir_to_nir_graph(ir)
    assert str(info.value) == ("node 'n' field 'voltage_decay': limit all 0 (NIR IF/I) or all > 0 (NIR LIF/LI/"
                               "CubaLIF) in one layer, got 0 for 1 of 2 neurons")


def test_graph_metadata_and_nodes_are_validated_explicitly():
    good = {"x": nir.Input(input_type={"input": np.array([2])}), "w": nir.Linear(weight=np.eye(2)), "n": _if(2),
            "o": nir.Output(output_type={"output": np.array([2])})}
    edges = [("x", "w"), ("w", "n"), ("n", "o")]
    graph = nir.NIRGraph(nodes=good, edges=edges, type_check=False)
    graph.metadata = ["not", "a", "mapping"]
    with pytest.raises(ModelFileError) as info:
        nir_graph_to_ir(graph, dt_s=1e-3, reset="zero", path="m.nir")
    assert str(info.value) == "file 'm.nir': node 'graph' field 'metadata': a mapping, got list"
    graph = nir.NIRGraph(nodes=good, edges=edges, type_check=False)
    graph.nodes = list(good.values())
    with pytest.raises(ModelFileError) as info:
        nir_graph_to_ir(graph, dt_s=1e-3, reset="zero", path="m.nir")
    assert str(info.value) == "file 'm.nir': node 'graph' field 'nodes': a mapping of names to nodes, got list"


def test_dt_errors_name_where_the_refused_value_came_from():
    nodes = {"x": nir.Input(input_type={"input": np.array([2])}), "w": nir.Linear(weight=np.eye(2)), "n": _if(2),
             "o": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("x", "w"), ("w", "n"), ("n", "o")], type_check=False)
    for stored, problem in (("soon", "expected seconds, got 'soon'"),
                            (np.array(-2e-3), "expected seconds in [1e-09, 1000.0], got -0.002")):   # as h5py reads a float
        graph.metadata = {"snnc.dt_s": stored}
        with pytest.raises(ModelFileError) as info:
            nir_graph_to_ir(graph, dt_s=None, reset="zero", path="m.nir")
        assert str(info.value) == f"file 'm.nir': node 'graph' field 'metadata['snnc.dt_s']': {problem}"
    with pytest.raises(ModelFileError) as info:
        nir_graph_to_ir(graph, dt_s=0.0, reset="zero", path="m.nir")
    assert str(info.value) == "file 'm.nir': node 'graph' field 'dt': expected seconds in [1e-09, 1000.0], got 0.0"
    assert nir_graph_to_ir(graph, dt_s=5e-4, reset="zero").dt_s == 5e-4      # the option wins over the file


def test_export_of_recurrent_delay_counts_nirs_implicit_step():
    """A self-recurrent synapse with delay 2: NIR's cycle edge reads the previous step, so the file holds a
    one-step Delay and the re-import has delay 2 again (3 would come back if the implicit step were
    ignored), spike for spike."""
    ir = Graph((Input("x", (2,)), Dense("d", "x", np.array([[1.5, 0.0], [0.25, 1.0]]), None),
                Dense("r", "n", np.array([[0.0, 0.75], [-0.5, 0.0]]), None, delay_steps=2),
                CubaLIF("n", ("d", "r"), (2,), 1.0, 0.5, 0.5, reset="zero")), ("n",), dt_s=1e-3)
    exported = ir_to_nir_graph(ir)
    assert exported.nodes["r_delay"].delay.tolist() == [1e-3, 1e-3]
    back = nir_graph_to_ir(exported, dt_s=1e-3, reset="zero")
    assert {n.name: n.delay_steps for n in back.nodes if isinstance(n, Dense)} == {"d": 0, "r": 2}
    x = spikes(12, (2, 30, 2), rate=0.6)
    a, b = run_float(ir, x), run_float(back, x)
    assert a.spikes["n"].sum() > 5
    np.testing.assert_array_equal(a.spikes["n"], b.spikes["n"])


def test_apply_chain_is_a_pure_evaluation_of_the_steps():
    """The composition evaluator on Flatten -> Scale -> Affine: the exact map, the same result twice, the input
    untouched (it replaced an importer probe that appended and popped IR nodes)."""
    from functools import partial

    from snnc.frontends.nir_import import ChainStep, apply_chain, apply_synapse
    weight, bias, scale = np.array([[1.0, -2.0, 0.5, 4.0]]), np.array([0.25]), np.array([3.0, 5.0, 7.0, 11.0])
    steps = [ChainStep(lambda x: x.reshape(x.shape[0], -1), (4,)),
             ChainStep(partial(np.multiply, scale), (4,)),
             ChainStep(partial(apply_synapse, Dense("d", "s", weight, bias)), (1,))]
    x = np.arange(8, dtype=np.float64).reshape(2, 2, 2)
    kept = x.copy()
    expected = (x.reshape(2, 4) * scale) @ weight.T + bias
    np.testing.assert_array_equal(apply_chain(steps, x), expected)
    np.testing.assert_array_equal(apply_chain(steps, x), expected)
    np.testing.assert_array_equal(x, kept)


def test_conv_fed_a_flat_vector_inside_a_composed_chain_is_named():
    nodes = {"x": nir.Input(input_type={"input": np.array([3])}),
             "a": nir.Linear(weight=np.ones((4, 3))),
             "c": nir.Conv2d(input_shape=(2, 2), weight=np.ones((1, 4, 1, 1)), stride=1, padding=0, dilation=1,
                             groups=1, bias=np.zeros(1)),
             "n": _if(1), "o": nir.Output(output_type={"output": np.array([1])})}
    edges = [("x", "a"), ("a", "c"), ("c", "n"), ("n", "o")]
    with pytest.raises(SnncError) as info:
        nir_graph_to_ir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), dt_s=1e-3, reset="zero")
    assert str(info.value) == "file '<nir graph>': node 'c' field 'input': (C, H, W) spikes, got shape (4,)"
