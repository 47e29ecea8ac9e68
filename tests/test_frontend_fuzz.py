"""Fuzz the file frontends: mutated .onnx, .nir and .net files either load into a verified graph or raise a
typed ``SnncError``; anything else (an untyped exception) fails. 2,000 mutated inputs per format per run
(half byte-level mutations of a valid file, half field-level mutations of its parsed content), derandomized
so CI is reproducible."""
from __future__ import annotations

import io
import re
from pathlib import Path

import h5py
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from snnc.errors import SnncError
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, CubaLIF, Dense, Flatten, Input, SumPool2d

from conftest import time_limit

EXAMPLES_PER_KIND = 1000      # x 2 kinds (bytes, fields) = 2,000 mutated inputs per format
FUZZ = settings(max_examples=EXAMPLES_PER_KIND, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
# A catch-all that wraps one of these ("malformed (TypeError: ...)", "malformed value (KeyError: ...)") hides a
# frontend bug behind a typed error: the frontend must check the condition itself and name the field.
LEAKED_INTERNAL = re.compile(r"malformed[^(]*\((AttributeError|TypeError|IndexError|KeyError|AssertionError)")
OPTIONS = {".nir": {"dt_s": 1e-3, "reset": "zero"}, ".onnx": {}, ".net": {}}
# A hang is what this limit catches (a state output that copied its own input once made the ONNX import loop
# forever), so it only needs to be far above a normal load: a seed loads in milliseconds, but .nir/.net parse
# HDF5 in a child process whose start took over 2 s when other test runs loaded the 2 cores (load ~15).
LOAD_SECONDS = 10




def must_load_or_refuse(path: Path) -> None:
    """The contract under test: a Graph, or a typed SnncError naming the problem, within LOAD_SECONDS (a state
    output that copied its own input once made the ONNX import loop forever)."""
    try:
        with time_limit(LOAD_SECONDS, "the load"):
            result = load_model(path, **OPTIONS[path.suffix])
    except SnncError as exc:
        assert str(exc), "a typed error must carry a message"
        assert not LEAKED_INTERNAL.search(str(exc)), f"an internal exception leaked through a catch-all: {exc}"
        return
    assert isinstance(result, Graph)


# ------------------------------------------------------------------------------------ seed files

def float_graph() -> Graph:
    rng = np.random.default_rng(0)
    nodes = (Input("x", (2, 4, 4)),
             Conv2d("c", "x", rng.normal(size=(3, 2, 3, 3)), in_shape=(2, 4, 4), padding=(1, 1)),
             CubaLIF("a", ("c",), (3, 4, 4), current_decay=1.0, voltage_decay=0.2, threshold=0.5, reset="zero"),
             SumPool2d("p", "a", in_shape=(3, 4, 4), kernel=(2, 2), stride=(2, 2), scale=0.25),
             CubaLIF("b", ("p",), (3, 2, 2), current_decay=0.5, voltage_decay=0.1, threshold=0.3, reset="zero"),
             Flatten("f", "b"),
             Dense("d", "f", rng.normal(size=(5, 12)), rng.normal(size=5)),
             CubaLIF("o", ("d",), (5,), current_decay=1.0, voltage_decay=0.3, threshold=0.4, reset="subtract"))
    return Graph(nodes, ("o",), name="fuzz")


def pattern_step_model():
    """A hand-written snnTorch-like single step (Gemm, Leaky subtract reset) for the pattern recogniser."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["i"], transB=1),
             helper.make_node("Mul", ["beta", "mem"], ["decayed"]),
             helper.make_node("Add", ["decayed", "i"], ["pre"]),
             helper.make_node("Sub", ["mem", "thr"], ["shifted"]),
             helper.make_node("Greater", ["shifted", "zero"], ["fired"]),
             helper.make_node("Cast", ["fired"], ["reset"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["reset", "thr"], ["amount"]),
             helper.make_node("Sub", ["pre", "amount"], ["mem_out"]),
             helper.make_node("Sub", ["mem_out", "thr"], ["shifted2"]),
             helper.make_node("Greater", ["shifted2", "zero"], ["fired2"]),
             helper.make_node("Cast", ["fired2"], ["spk"], to=TensorProto.FLOAT)]
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(v.astype(np.float32), n) for n, v in
             (("w", rng.normal(size=(4, 6))), ("b", rng.normal(size=4)), ("beta", np.array(0.9)),
              ("thr", np.array(0.5)), ("zero", np.array(0.0)))]
    graph = helper.make_graph(nodes, "step", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6]),
                                              helper.make_tensor_value_info("mem", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("spk", TensorProto.FLOAT, ["batch", 4]),
                               helper.make_tensor_value_info("mem_out", TensorProto.FLOAT, ["batch", 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, list[bytes]]:
    from snnc.frontends.nir_export import save_nir
    from snnc.frontends.onnx_export import graph_to_onnx
    from onnx_step_models import leaky_time_loop
    from test_lava_dl_net import conv_dense_layers, write_net
    folder = tmp_path_factory.mktemp("seeds")
    write_net(folder / "seed.net", conv_dense_layers(0))
    save_nir(float_graph(), folder / "seed.nir")
    out = {".net": [(folder / "seed.net").read_bytes()], ".nir": [(folder / "seed.nir").read_bytes()],
           ".onnx": [graph_to_onnx(float_graph()).SerializeToString(), pattern_step_model().SerializeToString(),
                     leaky_time_loop("Loop").SerializeToString(), leaky_time_loop("Scan").SerializeToString()]}
    for suffix, blobs in out.items():     # the seeds themselves load
        for blob in blobs:
            path = folder / f"check{suffix}"
            path.write_bytes(blob)
            assert isinstance(load_model(path, **OPTIONS[suffix]), Graph)
    return out


# ------------------------------------------------------------------------------ byte mutations

BYTE_EDITS = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8)


def mutate_bytes(blob: bytes, edits, cut) -> bytes:
    data = bytearray(blob)
    for where, byte in edits:
        data[int(where * len(data))] = byte
    return bytes(data[: int(cut * len(data))] if cut is not None else data)


@pytest.mark.parametrize("suffix", [".onnx", ".nir", ".net"])
def test_byte_mutations_are_typed(seeds, tmp_path, suffix):
    path = tmp_path / f"mutant{suffix}"

    runs = []

    @FUZZ
    @given(seed=st.integers(0, 7), edits=BYTE_EDITS, cut=st.one_of(st.none(), st.floats(0, 1)))
    def check(seed, edits, cut):
        blobs = seeds[suffix]
        path.write_bytes(mutate_bytes(blobs[seed % len(blobs)], edits, cut))
        must_load_or_refuse(path)
        runs.append(1)

    check()
    assert len(runs) >= EXAMPLES_PER_KIND


# ------------------------------------------------------------------------------ field mutations

FIELD_VALUES = st.one_of(
    st.sampled_from([np.nan, np.inf, -np.inf, 0, -1, 1e30, 2 ** 40, -7.5]),
    st.lists(st.one_of(st.floats(-1e3, 1e3), st.just(np.nan)), min_size=0, max_size=6).map(np.asarray),
    st.lists(st.integers(-300, 300), min_size=1, max_size=12).map(lambda v: np.asarray(v).reshape(-1, 1)),
    st.sampled_from([b"CUBA", b"SDNN", b"dense", b"LIF", b"bogus", b""]),
)


def hdf5_datasets(blob: bytes) -> list[str]:
    names = []
    with h5py.File(io.BytesIO(blob), "r") as handle:
        handle.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
    return sorted(names)


def mutate_hdf5(blob: bytes, target: str, value, delete: bool) -> bytes:
    buffer = io.BytesIO(blob)
    with h5py.File(buffer, "r+") as handle:
        del handle[target]
        if not delete:
            handle.create_dataset(target, data=value)
    return buffer.getvalue()


@pytest.mark.parametrize("suffix", [".nir", ".net"])
def test_hdf5_field_mutations_are_typed(seeds, tmp_path, suffix):
    blob = seeds[suffix][0]
    names = hdf5_datasets(blob)
    path = tmp_path / f"mutant{suffix}"

    runs = []

    @FUZZ
    @given(index=st.integers(0, len(names) - 1), value=FIELD_VALUES, delete=st.booleans())
    def check(index, value, delete):
        path.write_bytes(mutate_hdf5(blob, names[index], value, delete and index % 3 == 0))
        must_load_or_refuse(path)
        runs.append(1)

    check()
    assert len(runs) >= EXAMPLES_PER_KIND


def mutate_onnx(model, choice: int, value, which: int):
    """One structured edit: an initializer's values or dims, an attribute, an op type or an edge."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    mutate_graph(model.graph, choice, value, which)
    return model


def mutate_graph(graph, choice: int, value, which: int) -> None:
    kind = choice % 4
    if kind == 0 and graph.initializer:
        tensor = graph.initializer[which % len(graph.initializer)]
        arr = numpy_helper.to_array(tensor)
        new = np.asarray(value, dtype=np.float64)
        if arr.dtype.kind == "f":
            new = np.resize(new, arr.shape) if new.size and which % 2 else new
            tensor.CopyFrom(numpy_helper.from_array(new.astype(arr.dtype), tensor.name))
    elif kind == 1:
        node = graph.node[which % len(graph.node)]
        if node.attribute:
            attr = node.attribute[which % len(node.attribute)]
            if attr.type == onnx.AttributeProto.INT:
                attr.i = int(np.nan_to_num(np.asarray(value, dtype=float).reshape(-1)[:1].sum(), posinf=9, neginf=-9)) % 7 - 2
            elif attr.type == onnx.AttributeProto.INTS:
                del attr.ints[:]
                attr.ints.extend([which % 5 - 1] * (which % 5))
    elif kind == 2:
        node = graph.node[which % len(graph.node)]
        node.op_type = ["Add", "Sigmoid", "Greater", "MatMul", "Where", "Conv", "LIF", "Relu"][which % 8]
    else:
        node = graph.node[which % len(graph.node)]
        names = [n for n2 in graph.node for n in n2.output] + [i.name for i in graph.input]
        if node.input:
            node.input[which % len(node.input)] = names[(which * 7) % len(names)]


def mutate_time_loop(model, choice: int, value, which: int):
    """One edit of a Scan/Loop model: kinds 0-3 are ``mutate_graph`` edits inside the body; 4 drops or adds a
    body or node input or output; 5 renames a body input or output (to '', a missing value, another input); 6
    replaces a node input's constant (trip count, condition, initial state) with ``value`` or retypes a body
    input; 7 drops a node attribute or sets ``num_scan_inputs``."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    node = next(n for n in model.graph.node if n.op_type in ("Scan", "Loop"))
    body = next(a.g for a in node.attribute if a.name == "body")
    kind, pick = choice % 8, which // 8
    if kind < 4:
        mutate_graph(body, kind, value, which)
    elif kind == 4:
        lists = (body.input, body.output, node.input, node.output)
        chosen = lists[which % 4]
        if which % 8 >= 4 and which % 4 >= 2:
            chosen.append(chosen[pick % len(chosen)] if chosen else "extra")
        elif which % 8 >= 4:
            chosen.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 1 + pick % 5]))
        elif chosen:
            del chosen[pick % len(chosen)]
    elif kind == 5:
        infos = (body.input, body.output)[which % 2]
        names = ["", "ghost"] + [i.name for i in body.input]
        if infos:
            infos[pick % len(infos)].name = names[which % len(names)]
    elif kind == 6 and which % 2:
        info = body.input[pick % len(body.input)] if body.input else None
        if info is not None:
            dims = np.asarray(value, dtype=float).reshape(-1)[:3]
            info.CopyFrom(helper.make_tensor_value_info(info.name, [TensorProto.FLOAT, TensorProto.INT64,
                                                                    TensorProto.BOOL][which % 3],
                                                        [int(np.nan_to_num(d, posinf=9, neginf=-9)) % 6 for d in dims]))
    elif kind == 6:
        name = node.input[pick % len(node.input)] if node.input else ""
        tensor = next((t for t in model.graph.initializer if t.name == name), None)
        if tensor is not None:
            dtype = [np.float32, np.int64, np.bool_][which % 3]
            array = np.clip(np.nan_to_num(np.asarray(value, dtype=float)), -1e6, 1e6).astype(dtype)
            tensor.CopyFrom(numpy_helper.from_array(array, name))
    else:
        kept = [a for a in node.attribute if a.name != "body"]
        if kept and which % 2:
            node.attribute.remove(kept[pick % len(kept)])
        elif node.op_type == "Scan":
            for attr in kept:
                if attr.name == "num_scan_inputs":
                    attr.i = pick % 4 - 1
    return model


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=["snn_domain", "pattern", "Loop", "Scan"])
def test_onnx_field_mutations_are_typed(seeds, tmp_path, seed):
    """Two single-step seeds get 500 graph edits each; the Loop and Scan seeds 250 edits each of their body and
    signature (their structure checks refuse most edits early, so a mutant costs little)."""
    model = onnx.ModelProto.FromString(seeds[".onnx"][seed])
    path = tmp_path / "mutant.onnx"
    loop = seed >= 2
    examples = EXAMPLES_PER_KIND // 4 if loop else EXAMPLES_PER_KIND // 2

    @settings(FUZZ, max_examples=examples)
    @given(choice=st.integers(0, 7 if loop else 3), value=FIELD_VALUES.filter(lambda v: not isinstance(v, bytes)),
           which=st.integers(0, 200))
    def check(choice, value, which):
        mutant = (mutate_time_loop if loop else mutate_onnx)(model, choice, value, which)
        path.write_bytes(mutant.SerializeToString())
        must_load_or_refuse(path)
        runs.append(1)

    runs = []
    check()
    assert len(runs) >= examples     # 1,000 single-step and 500 time-loop field mutations for ONNX
