"""IR: golden text, verifier messages (asymmetric values so a wrong field shows), serialization."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.errors import IRVerificationError, ModelFileError
from snnc.ir.graph import Graph, producer_behind_views
from snnc.ir.nodes import Conv2d, CubaLIF, Dense, Flatten, Input, Slice, SumPool2d
from snnc.ir.printer import format_graph
from snnc.ir.serialize import load_graph, save_graph
from snnc.ir.verify import verify


def small_graph() -> Graph:
    w1 = np.arange(12, dtype=float).reshape(4, 3) / 10 - 0.5
    w2 = np.array([[0.25, -0.5, 0.75, 1.0], [1.5, 0.0, -0.125, 0.5]])
    return Graph((
        Input("x", (3,)),
        Dense("fc1", "x", w1, bias=np.array([0.1, 0.2, 0.3, 0.4])),
        Dense("rec", "lif1", np.eye(4) * 0.5, delay_steps=1),
        CubaLIF("lif1", ("fc1", "rec"), (4,), current_decay=1.0, voltage_decay=0.25, threshold=1.5,
                reset="subtract"),
        Dense("fc2", "lif1", w2),
        CubaLIF("lif2", ("fc2",), (2,), current_decay=0.5, voltage_decay=0.125, threshold=0.75, reset="zero"),
    ), outputs=("lif2",), dt_s=0.001, name="small")


GOLDEN = """\
snnc.ir v1 graph "small" timing=zero_latency dt_s=0.001
  %x: Input<3> shape=(3,)
  %fc1: Dense<4> source=%x weight=f[4,3]{-0.5..0.6000000000000001 #28e135ed} bias=f[4]{0.1..0.4 #2c1abe48} delay_steps=0
  %rec: Dense<4> source=%lif1 weight=f[4,4]{0.0..0.5 #c462032e} bias=none delay_steps=1
  %lif1: CubaLIF<4> inputs=(%fc1, %rec) shape=(4,) current_decay=1.0 voltage_decay=0.25 threshold=1.5 bias=0.0 reset='subtract' comparison='gt'
  %fc2: Dense<2> source=%lif1 weight=f[2,4]{-0.5..1.5 #98a4fc5a} bias=none delay_steps=0
  %lif2: CubaLIF<2> inputs=(%fc2) shape=(2,) current_decay=0.5 voltage_decay=0.125 threshold=0.75 bias=0.0 reset='zero' comparison='gt'
  outputs %lif2
"""


def test_printed_ir_matches_golden_text():
    assert format_graph(verify(small_graph())) == GOLDEN


def test_printed_ir_changes_when_one_weight_changes():
    g = small_graph()
    w = g.node("fc2").weight.copy()
    w[1, 2] = -0.25
    changed = g.replace_nodes([dataclasses.replace(n, weight=w) if n.name == "fc2" else n for n in g.nodes])
    assert format_graph(changed) != GOLDEN


def _replace(graph: Graph, name: str, **changes) -> Graph:
    return graph.replace_nodes([dataclasses.replace(n, **changes) if n.name == name else n for n in graph.nodes])


def test_verifier_names_missing_source():
    bad = _replace(small_graph(), "fc2", source="lif9")
    with pytest.raises(IRVerificationError) as err:
        verify(bad)
    assert str(err.value) == ("1 IR verification error(s) in graph 'small':\n"
                              "  - node 'fc2' field 'source': limit an existing node, got 'lif9' (missing)")


def test_verifier_reports_every_violation_at_once():
    bad = _replace(small_graph(), "lif2", threshold=-0.75, voltage_decay=1.25)
    bad = _replace(bad, "fc1", weight=np.full((4, 3), np.nan))
    with pytest.raises(IRVerificationError) as err:
        verify(bad)
    text = str(err.value)
    assert text.startswith("3 IR verification error(s)")
    assert "node 'fc1' field 'weight': limit finite values, got NaN or inf" in text
    assert "node 'lif2' field 'voltage_decay': limit in [0, 1], got 1.25" in text
    assert "node 'lif2' field 'threshold': limit > 0, got -0.75" in text


def test_verifier_rejects_weight_shape_mismatch():
    bad = _replace(small_graph(), "fc2", weight=np.ones((2, 5)))
    with pytest.raises(IRVerificationError, match=r"node 'fc2' field 'weight.shape\[1\]': limit 4 "
                                                   r"\(size of 'lif1'\), got 5"):
        verify(bad)


def test_verifier_rejects_cycle_without_delay():
    bad = _replace(small_graph(), "rec", delay_steps=0)
    with pytest.raises(IRVerificationError, match="every cycle passes a synapse with delay_steps >= 1"):
        verify(bad)


def test_verifier_rejects_per_synapse_delays_in_the_float_ir():
    """Float IR delays are one integer per synapse (the float reference and latency alignment need that);
    an array used to pass the verifier and crash later with a TypeError."""
    bad = _replace(small_graph(), "fc2", delay_steps=np.array([[0, 1, 2, 0]] * 2))
    with pytest.raises(IRVerificationError) as err:
        verify(bad)
    assert "node 'fc2' field 'delay_steps': limit one integer per float-IR synapse (per-synapse delays exist " \
           "only in lowered graphs), got an array of shape (2, 4)" in str(err.value)


def test_verifier_rejects_spikes_into_neuron():
    bad = _replace(small_graph(), "lif2", inputs=("lif1",))
    with pytest.raises(IRVerificationError, match=r"node 'lif2' field 'inputs': limit synapse nodes "
                                                   r"\(currents\), got 'lif1' is CubaLIF"):
        verify(bad)


def test_conv_pool_flatten_shapes():
    g = verify(Graph((
        Input("img", (2, 7, 6)),
        Conv2d("conv", "img", np.ones((3, 2, 3, 3)), in_shape=(2, 7, 6), stride=(2, 1), padding=(1, 0)),
        CubaLIF("l1", ("conv",), (3, 4, 4), 1.0, 0.1, 1.0),
        SumPool2d("pool", "l1", in_shape=(3, 4, 4), kernel=(2, 2), stride=(2, 2), scale=0.25),
        CubaLIF("l2", ("pool",), (3, 2, 2), 1.0, 0.1, 1.0),
        Flatten("flat", "l2"),
        Dense("fc", "flat", np.ones((5, 12))),
        CubaLIF("out", ("fc",), (5,), 1.0, 0.1, 1.0),
    ), outputs=("out",)))
    assert g.shapes["conv"] == (3, 4, 4) and g.shapes["pool"] == (3, 2, 2) and g.shapes["flat"] == (12,)


def test_serialization_round_trip_keeps_printed_text(tmp_path):
    path = tmp_path / "g.snnc"
    save_graph(small_graph(), path)
    assert format_graph(load_graph(path)) == GOLDEN


def test_unknown_schema_version_is_a_typed_error(tmp_path):
    import json
    path = tmp_path / "g.snnc"
    save_graph(small_graph(), path)
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    header = json.loads(entries["__graph__"].tobytes())
    header["schema_version"] = 99
    entries["__graph__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    with open(path, "wb") as handle:
        np.savez(handle, **entries)
    with pytest.raises(ModelFileError, match="schema_version 99 unsupported"):
        load_graph(path)


def test_truncated_graph_file_is_a_typed_error(tmp_path):
    path = tmp_path / "g.snnc"
    save_graph(small_graph(), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ModelFileError, match="not a snnc graph file"):
        load_graph(path)


def test_producer_looks_through_flatten_and_slice_views_only():
    """The one implementation of "the node behind Flatten/Slice views" (Graph.producer)."""
    graph = Graph((
        Input("img", (2, 3)),
        Flatten("flat", "img"),
        Slice("part", "flat", 1, 5),
        Flatten("again", "part"),
        Dense("fc", "again", np.ones((2, 4))),
        CubaLIF("lif", ("fc",), (2,), 1.0, 0.5, 1.0),
        Flatten("lif_flat", "lif"),
    ), outputs=("lif",))
    assert graph.producer("again") is graph.node("img")
    assert graph.producer("part").name == "img"
    assert graph.producer("lif_flat").name == "lif"
    assert graph.producer("fc").name == "fc"          # a synapse is no view: its own producer
    assert graph.producer("img").name == "img"
    with pytest.raises(KeyError):
        graph.producer("nowhere")


def test_producer_behind_views_stops_at_a_view_with_a_missing_source():
    """Unverified graphs (the verifier's input) and partly built node maps (partition_fanin)."""
    nodes = {"flat": Flatten("flat", "gone"), "part": Slice("part", "flat", 0, 2)}
    assert producer_behind_views(nodes, "part").name == "flat"
    assert Graph(tuple(nodes.values()), outputs=()).producer("part").name == "flat"
