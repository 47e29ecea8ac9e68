"""Crafted `.snnc` files: every field of a real saved graph mutated (wrong types, lists for arrays, object dtype,
zero/negative strides, NaN, huge ints, 3-D weights, missing and unknown fields). load_graph and the emulator on
whatever loads raise only typed SnncErrors."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from snnc.compiler.pipeline import compile_graph
from snnc.errors import ModelFieldError, SnncError
from snnc.ir.serialize import graph_bytes, load_graph
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.float_reference import run_float
from lowered_networks import conv_network, delay_network

MUTATIONS = ("str", "list", "object", "zero", "negative", "nan", "huge", "3d", "missing", "unknown", "float")


def saved_graphs():
    conv, _ = conv_network(0)
    delay, _ = delay_network(1)
    from snnc.frontends.torch_bundle import load_bundle
    from conftest import DIGITS_MODEL
    source = load_bundle(DIGITS_MODEL)
    return {"conv": conv, "delay": delay, "digits_source": source,
            "digits_lowered": compile_graph(source, "loihi2").graph}


def unpack(data: bytes):
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    return json.loads(entries.pop("__graph__").tobytes().decode()), entries


def pack(header, entries) -> bytes:
    arrays = {**entries, "__graph__": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def mutated(header, entries, index: int, field: str, how: str):
    header, entries = json.loads(json.dumps(header)), dict(entries)
    fields = header["nodes"][index]["fields"]
    value = fields.get(field)
    array_key = value["array"] if isinstance(value, dict) and "array" in value else None
    if how == "missing":
        del fields[field]
    elif how == "unknown":
        fields[field + "_x"] = 1
    elif array_key is not None:
        arr = entries[array_key]
        entries[array_key] = {"str": np.array(["a"] * max(arr.size, 1)), "list": arr, "object": arr.astype(bool),
                              "zero": np.zeros((0,) * max(arr.ndim, 1)), "negative": -np.abs(arr) - 1,
                              "nan": np.full(arr.shape, np.nan), "huge": np.full(arr.shape, 2 ** 62, np.int64),
                              "3d": arr.reshape(1, 1, *arr.shape), "float": arr.astype(np.float32) + 0.5}[how]
        if how == "list":
            fields[field] = arr.tolist()
    else:
        fields[field] = {"str": "7", "list": [1, 2], "object": {"a": 1}, "zero": 0, "negative": -3,
                         "nan": float("nan"), "huge": 10 ** 30, "3d": [[[1]]], "float": 2.5,
                         }[how] if not isinstance(value, dict) else \
            {"str": {"tuple": ["a", "b"]}, "list": [1, 2], "object": {"tuple": [{"x": 1}]},
             "zero": {"tuple": [0, 0]}, "negative": {"tuple": [-1, -1]}, "nan": {"tuple": [float("nan")]},
             "huge": {"tuple": [10 ** 30, 1]}, "3d": {"tuple": [[1]]}, "float": {"tuple": [1.5, 2.5]}}[how]
    return pack(header, entries)


def run_what_loads(graph) -> None:
    x = np.ones((1, 3, *graph.inputs[0].shape), np.uint8)
    if graph.timing == "zero_latency":
        run_float(graph, x)
    else:
        run_on_ir_grid(graph, x)


@pytest.mark.parametrize("name", ["conv", "delay", "digits_source", "digits_lowered"])
def test_every_mutated_field_is_a_typed_error_or_runs(name):
    graph = saved_graphs()[name]
    header, entries = unpack(graph_bytes(graph))
    outcomes = {"typed": 0, "accepted": 0}
    for index, node in enumerate(header["nodes"]):
        for field in node["fields"]:
            for how in MUTATIONS:
                data = mutated(header, entries, index, field, how)
                try:
                    loaded = load_graph("m.snnc", data)
                    run_what_loads(loaded)
                    outcomes["accepted"] += 1
                except SnncError:
                    outcomes["typed"] += 1
                # anything else propagates and fails the test with its traceback
    assert outcomes["typed"] > outcomes["accepted"] > 0, outcomes


def test_errors_name_node_and_field():
    graph, _ = conv_network(0)
    header, entries = unpack(graph_bytes(graph))
    index = next(i for i, n in enumerate(header["nodes"]) if n["type"] == "LoihiConv")
    name = header["nodes"][index]["fields"]["name"]
    for how, problem in (("zero", "field 'stride[0]': expected an integer in [1, 65536], got 0"),
                         ("str", "field 'stride[0]': expected an integer, got str 'a'"),
                         ("huge", "field 'stride[0]': expected an integer in [1, 65536], got "
                                  "1000000000000000000000000000000"),
                         ("unknown", "field 'stride_x': node type LoihiConv has no such field")):
        with pytest.raises(ModelFieldError) as info:
            load_graph("m.snnc", mutated(header, entries, index, "stride", how))
        assert str(info.value) == f"file 'm.snnc': node '#{index} {name}' {problem}"
    with pytest.raises(ModelFieldError) as info:
        load_graph("m.snnc", mutated(header, entries, index, "weight_mant", "missing"))
    assert str(info.value) == f"file 'm.snnc': node '#{index} {name}' field 'weight_mant': missing"
    with pytest.raises(ModelFieldError) as info:
        load_graph("m.snnc", mutated(header, entries, index, "weight_mant", "3d"))
    assert str(info.value) == (f"file 'm.snnc': node '#{index} {name}' field 'weight_mant': expected 0 to 4 "
                               "dimensions, got shape (1, 1, 4, 2, 3, 3)")
    with pytest.raises(ModelFieldError) as info:
        load_graph("m.snnc", mutated(header, entries, index, "weight_mant", "zero"))
    assert str(info.value) == (f"file 'm.snnc': node '#{index} {name}' field 'weight_mant': expected a non-empty "
                               "4-D array, got shape (0, 0, 0, 0)")
