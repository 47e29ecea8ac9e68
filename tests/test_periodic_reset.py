"""Periodic reset (netx ``reset_interval``/``reset_offset``, Lava ``LIFReset``) in the float IR.

``CubaLIF.reset_interval``/``reset_phase``: the float reference restarts a group at every step t with
t % I == phase, exactly as LIFReset zeroes u and v before the update of Lava time step t + 1; lowering
keeps the reset on the same steps of the float grid (lowered phase = phase + latency, netx's offset + k);
fan-in partitioning moves it with the latency it adds. The float model, the emulator and Lava are then
compared on the same resets; a .net loaded with netx's reset options agrees with its float twin.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import lowered_networks as ln
from conftest import random_spikes
from snnc.compiler.cli import main
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import partition_fanin
from snnc.compiler.pipeline import compile_graph
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import load_net
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input, LoihiLIF
from snnc.ir.serialize import save_graph
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.traces import first_divergence
from snnc.targets.catalog import LOIHI2
from test_lava_dl_net import write_net

INTERVAL, PHASE = 5, 2


def float_net(interval: int = INTERVAL, phase: int = PHASE, bias: float = 0.0, seed: int = 0,
              reset: str = "zero") -> Graph:
    """10 -> 8 -> 4 CUBA LIF, every group reset every ``interval`` steps at ``phase``."""
    rng = np.random.default_rng(seed)
    lif = dict(voltage_decay=0.1, threshold=1.0, reset=reset, reset_interval=interval, reset_phase=phase)
    return Graph((Input("x", (10,)), Dense("d1", "x", rng.normal(0.3, 0.4, (8, 10))),
                  CubaLIF("a", ("d1",), (8,), current_decay=0.3, bias=bias, **lif),
                  Dense("d2", "a", rng.normal(0.4, 0.5, (4, 8))),
                  CubaLIF("b", ("d2",), (4,), current_decay=0.3, **lif)), ("b",), name="periodic")


def without_reset(graph: Graph) -> Graph:
    return graph.replace_nodes([dataclasses.replace(n, reset_interval=0, reset_phase=0) if isinstance(n, CubaLIF)
                                else n for n in graph.nodes])


def spikes(seed: int, samples: int = 3, steps: int = 30) -> np.ndarray:
    return random_spikes(seed, (samples, steps, 10), 0.4)


def test_the_float_model_restarts_every_interval_as_a_fresh_run():
    """Between two resets the whole (undelayed) network is a fresh run of that window's input: u, v and
    spikes of steps r..r+I-1 equal a run started at step r."""
    graph, x = float_net(), spikes(0)
    whole = run_float(graph, x)
    plain = without_reset(graph)
    for start in range(PHASE, 30, INTERVAL):
        window = run_float(plain, x[:, start:start + INTERVAL])
        for name in ("a", "b"):
            assert np.array_equal(whole.spikes[name][:, start:start + INTERVAL], window.spikes[name]), (name, start)
            for var in ("u", "v"):
                np.testing.assert_array_equal(whole.states[name][var][:, start:start + INTERVAL],
                                              window.states[name][var])
    assert not np.array_equal(whole.spikes["b"], run_float(plain, x).spikes["b"]), "the reset acts"


def test_lowering_moves_the_phase_by_the_latency_and_the_emulator_follows_the_float_model():
    graph, x = float_net(), spikes(1)
    lowered = compile_graph(graph, "loihi2").graph
    assert [(n.name, n.reset_interval, n.reset_phase) for n in lowered.nodes if isinstance(n, LoihiLIF)] == \
        [("a", 5, 3), ("b", 5, 4)]            # latency 1 and 2: float step t is lowered step t + L
    emulated = run_on_ir_grid(lowered, x, record_state=True)
    reference, unreset = run_float(graph, x), run_float(without_reset(graph), x)
    for name in ("a", "b"):
        agree = np.mean(reference.spikes[name] == emulated.spikes[name])
        assert agree > 0.99 and agree > np.mean(unreset.spikes[name] == emulated.spikes[name]) + 0.05, name
        resets = [t for t in range(30) if t % INTERVAL == PHASE]
        # at a reset step both start from u = 0: u is the step's input current alone (in each one's units)
        u_float, u_int = reference.states[name]["u"][:, resets], emulated.states[name]["u"][:, resets]
        assert np.array_equal(u_float == 0, u_int == 0)


def test_biased_groups_keep_their_warm_up_and_a_reset_inside_the_pipeline_fill_is_refused():
    lowered = compile_graph(float_net(phase=0, bias=0.3), "loihi2").graph
    first = lowered.node("a")
    assert first.reset_phase == 1 and np.all(np.asarray(first.v_init) < 0)     # bias warm-up kept
    x = spikes(2)
    agree = np.mean(run_float(float_net(phase=0, bias=0.3), x).spikes["b"] == run_on_ir_grid(lowered, x).spikes["b"])
    assert agree > 0.99
    with pytest.raises(UnsupportedError) as err:
        compile_graph(float_net(phase=4, bias=0.3), "loihi2")
    assert str(err.value) == (
        "in pass 'lower_loihi' (after prune, fold_synapse_bias, check_target_semantics): node 'a' field "
        "'reset_phase': lowering to a pipeline latency of 1 steps: limit no periodic reset within the first 1 "
        "steps of a group with a bias or an initial voltage (the reset restarts its warm-up), got a reset at step "
        "0 mod 5")


def test_targets_refuse_what_they_cannot_reset_periodically():
    with pytest.raises(SnncError) as err:
        compile_graph(float_net(), "spinnaker")
    assert "node 'a' field 'reset_interval': run it on loihi2 or the emulator (Lava LIFReset): limit 0 " \
           "(IF_curr_exp has no periodic reset), got 5" in str(err.value)
    with pytest.raises(SnncError) as err:
        compile_graph(float_net(reset="subtract"), "loihi2")
    assert "node 'a' field 'reset_interval': limit a periodic reset only with reset 'zero' and comparison 'gt' " \
           "(Lava LIFReset), got reset subtract, comparison gt" in str(err.value)


def test_exports_without_a_periodic_reset_refuse_it(tmp_path):
    from snnc.frontends.nir_export import save_nir
    from snnc.frontends.onnx_export import save_onnx
    for save, limit in ((save_nir, "0 (NIR has no periodic reset)"),
                        (save_onnx, "0 (snnc's ONNX neuron ops have no periodic reset)")):
        with pytest.raises(UnsupportedError) as err:
            save(float_net(), tmp_path / "x")
        assert str(err.value) == f"node 'a' field 'reset_interval': limit {limit}, got 5"


def test_a_bad_phase_is_a_verification_error():
    with pytest.raises(SnncError) as err:
        compile_graph(float_net(interval=3, phase=3), "emulator")
    assert "node 'a' field 'reset_interval/reset_phase': limit interval >= 0 and 0 <= phase < interval " \
           "(interval 0: no periodic reset), got 3/3" in str(err.value)


def test_fan_in_partitioning_moves_the_reset_with_the_latency():
    """A 16-input group with a periodic reset split over cores of 10 axons: its latency grows by one, its
    reset phase too, and every spike, u and v stays the same on the IR grid."""
    graph, x = ln.mixed_sign_network(3)
    graph = graph.replace_nodes([dataclasses.replace(n, reset_interval=4, reset_phase=1, du=int(np.ravel(n.du)[0]),
                                                     dv=int(np.ravel(n.dv)[0]), bias_mant=np.zeros(1, np.int64),
                                                     v_init=np.zeros(1, np.int64))
                                 if isinstance(n, LoihiLIF) else n for n in graph.nodes])
    small = dataclasses.replace(LOIHI2, input_axons_per_core=10, synapses_per_core=1000)
    split = partition_fanin.run(graph, PassOptions(small)).graph
    shifted = {n.name: n.reset_phase for n in split.nodes if isinstance(n, LoihiLIF)}
    added = {n: split.latency.get(n, 0) - graph.latency.get(n, 0) for n in shifted}
    assert any(added.values())
    assert shifted == {n: (1 + added[n]) % 4 for n in shifted}
    expected, actual = run_on_ir_grid(graph, x, record_state=True), run_on_ir_grid(split, x, record_state=True)
    assert sum(expected.spikes[n].sum() for n in shifted) > 0
    assert first_divergence(expected, actual, names=list(expected.spikes)) is None


def test_snnc_verify_compares_the_float_model_with_its_reset(tmp_path, capsys):
    save_graph(float_net(), tmp_path / "periodic.snnc")
    np.savez(tmp_path / "x.npz", x=spikes(3, samples=4))
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "periodic.snnc"), "--target", "loihi2", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--no-lava"]) == 0
    text = capsys.readouterr().out
    assert "emulator vs float reference, 'b':" in text and "spike-count error vs float" in text


# --------------------------------------------------------------- a .net with netx's reset options

NET_DECAYS = (1024, 410)     # iDecay, vDecay (Loihi 12-bit units)


def net_layers(seed: int = 4) -> list[dict]:
    rng = np.random.default_rng(seed)

    def neuron(vth):
        return {"type": "CUBA", "iDecay": NET_DECAYS[0], "vDecay": NET_DECAYS[1], "vThMant": vth,
                "refDelay": 1, "gradedSpike": False}
    return [{"type": "input", "shape": np.array([10])},
            {"type": "dense", "shape": np.array([8]), "weight": rng.integers(-30, 90, (8, 10)), "neuron": neuron(120)},
            {"type": "dense", "shape": np.array([4]), "weight": rng.integers(-20, 80, (4, 8)), "neuron": neuron(90)}]


def float_twin(layers: list[dict], interval: int, offset: int) -> Graph:
    """The .net's network in float: a = W s enters u as a << 6 (weights x 64), thresholds vth << 6, decays
    iDecay / 4096 and vDecay / 4096 (Lava rounds each product toward zero: the only difference). netx
    resets layer k (latency k + 1) at Lava time step offset + 1 + k, i.e. float step offset - 1 (mod I)."""
    nodes, source = [Input("x", (10,))], "x"
    for index, layer in enumerate(layers[1:], start=1):
        cuba = layer["neuron"]
        nodes.append(Dense(f"dense_{index}", source, 64.0 * layer["weight"]))
        nodes.append(CubaLIF(f"lif_{index}", (f"dense_{index}",), tuple(layer["shape"]),
                             current_decay=cuba["iDecay"] / 4096, voltage_decay=cuba["vDecay"] / 4096,
                             threshold=64.0 * cuba["vThMant"], reset="zero", reset_interval=interval,
                             reset_phase=(offset - 1) % interval))
        source = f"lif_{index}"
    return Graph(tuple(nodes), (source,), name="twin")


def test_a_net_loaded_with_netx_reset_options_agrees_with_its_float_twin(tmp_path):
    """The .net as netx loads it (reset_interval=4, reset_offset=2; bit-exact with netx in
    tests/test_lava_dl_net.py) against the same network in float with the same periodic reset: the
    float model follows the emulator; without its reset it does not."""
    write_net(tmp_path / "r.net", net_layers())
    graph = load_net(tmp_path / "r.net", reset_interval=4, reset_offset=2)
    assert [(n.name, n.reset_phase) for n in graph.nodes if isinstance(n, LoihiLIF)] == [("lif_1", 2), ("lif_2", 3)]
    twin = float_twin(net_layers(), 4, 2)
    x = spikes(5, samples=4, steps=40)
    emulated, reference = run_on_ir_grid(graph, x, record_state=True), run_float(twin, x)
    unreset = run_float(without_reset(twin), x)
    for name in ("lif_1", "lif_2"):
        assert emulated.spikes[name].sum() > 0
        agree = np.mean(reference.spikes[name] == emulated.spikes[name])
        assert agree > 0.98 and agree > np.mean(unreset.spikes[name] == emulated.spikes[name]) + 0.03, name
    # both restart on the same steps: u is zero in the same slots
    assert np.array_equal(reference.states["lif_1"]["u"] == 0, emulated.states["lif_1"]["u"] == 0)


@pytest.mark.lava
def test_float_emulator_and_lava_on_the_compiled_float_model():
    """The compiled float model in real Lava (stock LIFReset with reset_offset = phase + 1) equals the
    emulator at every step, u and v included."""
    from snnc.backends.lava_loihi2.compat import import_lava
    from snnc.errors import BackendUnavailableError
    try:
        import_lava()
    except BackendUnavailableError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    from snnc.backends.lava_loihi2.run import run_lava
    from snnc.simulators.loihi_emulator import run_loihi
    lowered = compile_graph(float_net(phase=0, bias=0.3), "loihi2").graph
    x = spikes(6, samples=1, steps=25)
    assert first_divergence(run_loihi(lowered, x, record_state=True), run_lava(lowered, x, record_state=True)) is None


# ------------------------------------------------------- netx's reset options on a float model file

def save_torch_chain(path) -> None:
    """12 -> 8 -> 4 snnTorch Leaky chain (zero reset), saved as an snnc torch bundle."""
    import snntorch as snn
    import torch
    from torch import nn
    from snnc.frontends.torch_bundle import save_bundle
    torch.manual_seed(0)
    leaky = dict(beta=0.85, threshold=1.0, init_hidden=True, reset_mechanism="zero")
    model = nn.Sequential(nn.Linear(12, 8, bias=False), snn.Leaky(**leaky), nn.Linear(8, 4, bias=False),
                          snn.Leaky(**leaky))
    with torch.no_grad():
        model[0].weight.copy_(torch.rand(8, 12) * 0.9 - 0.2)
        model[2].weight.copy_(torch.rand(4, 8) * 1.2 - 0.2)
    save_bundle(model, (12,), path, name="chain")


def test_cli_reset_options_give_a_float_model_netx_s_resets(tmp_path, capsys):
    """``--reset-interval 4 --reset-offset 2`` on a torch model: the compiled layers reset where netx resets
    a .net chain loaded with the same options (layer k at offset + k), and verify compares the float
    model with the emulator on those resets."""
    save_torch_chain(tmp_path / "chain.pt")
    out = tmp_path / "out"
    assert main(["compile", str(tmp_path / "chain.pt"), "--target", "loihi2", "--reset-interval", "4",
                 "--reset-offset", "2", "-o", str(out)]) == 0
    from snnc.frontends.loader import load_model
    lowered = load_model(out / "lowered.snnc")
    assert [(n.reset_interval, n.reset_phase) for n in lowered.nodes if isinstance(n, LoihiLIF)] == [(4, 2), (4, 3)]
    source = load_model(out / "source.snnc")
    assert {(n.reset_interval, n.reset_phase) for n in source.nodes if isinstance(n, CubaLIF)} == {(4, 1)}
    np.savez(tmp_path / "x.npz", x=random_spikes(7, (4, 24, 12), 0.4))
    capsys.readouterr()
    assert main(["verify", str(out), "--input", str(tmp_path / "x.npz"), "--no-lava"]) == 0
    text = capsys.readouterr().out
    assert "emulator vs float reference, 'lif_3':" in text and "spike-count error vs float" in text


@pytest.mark.parametrize("options, expected", [
    (dict(reset_offset=1), "node 'chain' field 'reset_offset': limit only with reset_interval, got 1"),
    (dict(reset_interval=0), "node 'chain' field 'reset_interval/reset_offset': limit interval >= 1 and offset "
                             ">= 0, got 0/0"),
])
def test_reset_options_netx_would_not_take_are_refused_for_float_models(tmp_path, options, expected):
    from snnc.frontends.loader import load_model
    save_torch_chain(tmp_path / "chain.pt")
    with pytest.raises(UnsupportedError) as err:
        load_model(tmp_path / "chain.pt", **options)
    assert str(err.value) == expected
