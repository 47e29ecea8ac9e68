"""`snnc report` activity: SynOps, spikes per layer and step, neuron updates, messages and the energy
estimate, checked against counts made independently from emulator traces."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import lowered_networks as ln
from snnc.compiler.activity_report import ESTIMATE_LABEL, SynapseActivity, activity, measure
from snnc.compiler.cli import main
from snnc.compiler.pass_api import PassOptions
from snnc.compiler.passes import partition_fanin
from snnc.ir.graph import Graph
from snnc.ir.nodes import GradedInput, LoihiDense, LoihiLIF
from snnc.simulators.loihi_emulator import run_loihi
from snnc.targets.catalog import ENERGY, LOIHI2


def brute_force_dense_synops(graph: Graph, traces, synapse: str) -> int:
    """Every (step, spiking source neuron, non-zero weight) triple, counted in Python loops."""
    node = graph.node(synapse)
    spikes = traces.spikes[node.source]
    weight = np.asarray(getattr(node, "weight_mant", getattr(node, "weight_word", None)))
    total = 0
    for b in range(spikes.shape[0]):
        for t in range(spikes.shape[1]):
            for j in np.flatnonzero(spikes[b, t].reshape(-1)):
                total += int(np.count_nonzero(weight[:, j]))
    return total


def brute_force_conv_synops(node, spikes) -> int:
    """Every (spike, output channel, output position) whose kernel tap under the spike is non-zero."""
    c_in, h, w = node.in_shape
    out_c, _, kh, kw = node.weight_mant.shape
    ph, pw = node.padding
    sy, sx = node.stride
    oh, ow = (h + 2 * ph - kh) // sy + 1, (w + 2 * pw - kw) // sx + 1
    total = 0
    for b, t, c, y, x in np.argwhere(spikes.reshape(*spikes.shape[:2], c_in, h, w)):
        for o in range(out_c):
            for oy in range(oh):
                for ox in range(ow):
                    ky, kx = y + ph - oy * sy, x + pw - ox * sx
                    if 0 <= ky < kh and 0 <= kx < kw and node.weight_mant[o, c, ky, kx] != 0:
                        total += 1
    return total


def test_dense_and_conv_synops_equal_brute_force_counts():
    graph, x = ln.conv_network(7)
    counts = measure(graph, x)
    report = activity(graph, counts, "loihi2", None)
    traces = run_loihi(graph, x, record_state=False)   # the graph has no latency steps: no padding
    samples = x.shape[0]
    dense = brute_force_dense_synops(graph, traces, "d2")
    assert report.synapses["d2"].synops_per_sample * samples == dense
    conv = brute_force_conv_synops(graph.node("c1"), traces.spikes["x"])
    assert report.synapses["c1"].synops_per_sample * samples == conv
    assert report.layers["n1"].spikes_per_sample * samples == traces.spikes["n1"].sum()
    profile = np.asarray(report.layers["n2"].spikes_per_step_profile) * samples
    np.testing.assert_array_equal(profile, traces.spikes["n2"].sum(axis=(0, 2)))
    neurons = sum(int(np.prod(n.shape)) for n in graph.nodes if isinstance(n, LoihiLIF))
    assert report.totals.neuron_updates_per_sample == neurons * x.shape[1]


def test_partial_sums_count_graded_messages():
    graph, x = ln.mixed_sign_network(3)
    split = partition_fanin.run(graph, PassOptions(
        target=dataclasses.replace(LOIHI2, input_axons_per_core=5))).graph
    report = activity(split, measure(split, x), "loihi2", None)
    pad = max(split.latency.values())
    padded = np.concatenate([x, np.zeros((x.shape[0], pad, x.shape[2]), x.dtype)], axis=1)
    traces = run_loihi(split, padded, record_state=False)
    sources = split.node("d1").sources
    expected = sum(int(np.count_nonzero(traces.spikes[s])) for s in sources)
    assert report.synapses["d1"].synops_per_sample * x.shape[0] == expected
    assert report.layers["d1__psum0"].neurons == 12
    assert report.totals.neuron_updates_per_sample == (12 + 6 + 12 * 4 + 6 * 3) * (x.shape[1] + pad)


def test_static_graded_input_is_computed_once():
    rng = np.random.default_rng(0)
    weight = rng.integers(-100, 100, (5, 4)) * 2
    graph = Graph((GradedInput("x", (4,), bits=6), LoihiDense("d", "x", weight, weight_exp=-3),
                   LoihiLIF("n", ("d",), (5,), du=4095, dv=100, vth=20)), ("n",), timing="hop_latency")
    pixels = rng.integers(0, 17, (3, 1, 4))
    x = np.repeat(pixels, 10, axis=1)
    report = activity(graph, measure(graph, x), "loihi2", None)
    fanout = np.count_nonzero(weight, axis=0)
    expected = sum(float(np.dot(p.reshape(-1) != 0, fanout)) for p in pixels) / 3
    assert report.synapses["d"] == SynapseActivity(expected, computed_once=True)
    moving = x.copy()
    moving[:, 5] = 0
    assert not activity(graph, measure(graph, moving), "loihi2", None).synapses["d"].computed_once


def test_energy_estimate_is_labelled_and_adds_up():
    graph, x = ln.mixed_sign_network(2)
    report = activity(graph, measure(graph, x), "loihi2", None)
    energy = report.energy_estimate
    model = ENERGY["loihi2"]
    assert energy.label == ESTIMATE_LABEL and "ESTIMATE" in energy.label
    assert energy.synops_j == pytest.approx(report.totals.synops_per_sample * model.synop_j)
    assert energy.neuron_updates_j == pytest.approx(report.totals.neuron_updates_per_sample
                                                    * model.neuron_update_j)
    parts = report.as_json()["energy_estimate"]["per_sample_j"]
    assert parts["total_j"] == pytest.approx(sum(v for k, v in parts.items() if k != "total_j"))
    assert parts["synops_j"] == energy.synops_j and parts["total_j"] == energy.total_j


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from conftest import DIGITS_MODEL
    out = tmp_path_factory.mktemp("report")
    assert main(["compile", str(DIGITS_MODEL), "--target", "loihi2", "-o", str(out)]) == 0
    return out


def test_report_command_prints_activity_and_writes_plots(compiled, tmp_path, capsys):
    capsys.readouterr()
    assert main(["report", str(compiled), "--samples", "40", "--plot", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "activity over 40 sample(s) x 22 steps (emulator); accuracy" in out
    assert "placement: 1 core(s), lower bound 1" in out
    assert "energy per sample:" in out and ESTIMATE_LABEL in out
    for name in ("raster.png", "rates.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert main(["run", str(compiled), "--samples", "40"]) == 0
    run_accuracy = capsys.readouterr().out.split("accuracy: ")[1].split()[0]
    assert main(["report", str(compiled), "--samples", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    act = report["activity"]
    assert f"{act['accuracy']:.4f}" == run_accuracy
    messages = act["messages_per_step"]
    assert messages["inter_core"] == 0.0   # one core
    assert messages["intra_core"] == pytest.approx(act["layers"]["lif_1"]["spikes_per_step"])
    assert messages["from_host"] == pytest.approx(act["layers"]["input"]["spikes_per_step"])


def test_report_without_matching_default_input_explains(tmp_path, capsys):
    import snntorch as snn
    from torch import nn
    from snnc.frontends.torch_bundle import save_bundle
    model = nn.Sequential(nn.Linear(5, 3, bias=False),
                          snn.Leaky(beta=0.5, reset_mechanism="zero", init_hidden=True))
    save_bundle(model, (5,), tmp_path / "m.pt")
    assert main(["compile", str(tmp_path / "m.pt"), "-o", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.strip().endswith(
        "activity: pass --input (the default digits input has 64 values, 'input' takes 5)")


def test_spinnaker_report_counts_projection_synops_with_the_spinnaker_emulator(tmp_path, capsys):
    """`snnc report` on a SpiNNaker artifact measures with the s16.15 emulator: SynOps per projection equal
    a brute-force count over that emulator's spikes, and the energy uses the SpiNNaker constants."""
    from conftest import DIGITS_MODEL
    from snnc.datasets.digits import test_spikes
    from snnc.ir.nodes import SpinnakerProjection
    from snnc.ir.serialize import load_graph
    from snnc.simulators.spinnaker_emulator import run_spinnaker
    out = tmp_path / "spinn"
    assert main(["compile", str(DIGITS_MODEL), "--target", "spinnaker", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--samples", "6", "--json"]) == 0
    act = json.loads(capsys.readouterr().out)["activity"]
    graph = load_graph(out / "lowered.snnc")
    x, _ = test_spikes(20, 6)
    pad = max(graph.latency.values(), default=0)
    traces = run_spinnaker(graph, np.concatenate([x, np.zeros((6, pad, 64), x.dtype)], axis=1))
    projections = [n.name for n in graph.nodes if isinstance(n, SpinnakerProjection)]
    assert set(act["synapses"]) == set(projections)
    for name in projections:
        assert act["synapses"][name]["synops_per_sample"] * 6 == brute_force_dense_synops(graph, traces, name)
    assert act["totals"]["synops_per_sample"] > 0
    assert act["energy_estimate"]["constants_j"]["synop"] == ENERGY["spinnaker"].synop_j
