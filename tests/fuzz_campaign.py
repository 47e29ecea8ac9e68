"""Seeded fuzz campaign over the five model-file kinds (.onnx, .nir, .net, .pt torch bundles, .snnc).

    PYTHONPATH=. python tests/fuzz_campaign.py --cases 10000 [--formats onnx,nir,net,pt,snnc] [--seed 0]
    PYTHONPATH=. python tests/fuzz_campaign.py --seed 0 --replay onnx:123     # one case, in this process

Every case is one mutated seed file (byte edits: flips, truncation, inserted, deleted and duplicated
chunks; structural edits per format: HDF5 links, external storage, virtual datasets, declared sizes,
dtypes and values; ONNX external data, dims and size bombs; torch-bundle specs, tensors and pickled
objects; .snnc header fields and npz members), loaded by ``snnc.frontends.loader.load_model`` in a
forked worker that

* limits its address space (``RLIMIT_AS``: what it maps already plus ``ADDRESS_SPACE_HEADROOM``),
* records, with ``sys.addaudithook``, every ``open`` of a file outside the case's own folder (the model
  and the siblings it may use) other than Python's own modules,
* measures the tracemalloc peak and the growth of its peak RSS,

and reports over a pipe. The parent kills a worker that runs past the per-case deadline (a hang). A graph
that is accepted must not contain the canary file's distinctive values (a read through C code, which the
audit hook cannot see). A case fails when the load raised anything but ``SnncError`` (untyped), hung,
crashed, allocated above the cap (``MemoryError`` or peak above ``cap_bytes``), or read outside the model.
The script prints a table per format and exits 1 when any case failed, listing reproducers.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import tracemalloc
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

FORMATS = ("onnx", "nir", "net", "pt", "snnc")
OPTIONS = {"nir": {"dt_s": 1e-3, "reset": "zero"}}
GiB = 1 << 30
CAP_BYTES = 1 * GiB                    # tracemalloc peak or RSS growth above this: an over-limit allocation
ADDRESS_SPACE_HEADROOM = 3 * GiB       # RLIMIT_AS above what the worker maps at the start
DEADLINE_S = 20.0                      # per case; a seed loads in well under a second
HDF5_FORMATS = ("net", "nir")


def loader_isolation(fmt: str):
    """The parse isolation a case runs under: HDF5 formats (.net, .nir) use the loader's own child process
    as users get it (deadline half the case's, address space the cap), so a hang or an allocation inside
    HDF5's C code ends as the typed error a user sees; the other formats parse in the worker itself, where
    the audit hook and tracemalloc see every open and allocation. Reads outside the file through HDF5
    are excluded by hdf5_guard before the child parses, and caught here by the canary values."""
    if fmt not in HDF5_FORMATS:
        return None
    from snnc.frontends.isolation import IsolationLimits
    return IsolationLimits(seconds=DEADLINE_S / 2, memory_bytes=CAP_BYTES)
CANARY_FLOAT = 1234.5678
CANARY_WORD = 0x3C6B        # not 0x5A5A: 'Z' is the byte torch pads its zip records with (a mutated offset
CANARY_DWORD = (CANARY_WORD << 16) | CANARY_WORD   # reading that padding inside the model is not a read outside it)
CANARY_RECORD = struct.pack("<d", CANARY_FLOAT) + struct.pack("<4H", *[CANARY_WORD] * 4)
CANARY_VALUES = (CANARY_FLOAT, float(np.float32(CANARY_FLOAT)), float(CANARY_WORD), float(CANARY_DWORD),
                 float(np.frombuffer(struct.pack("<I", CANARY_DWORD), "<f4")[0]),
                 float(np.frombuffer(CANARY_RECORD[8:], "<f8")[0]))
FAILURES = ("untyped", "hang", "crash", "over_limit", "outside_read", "fuzzer_error")
LIBRARY_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".pyi")


# ------------------------------------------------------------------------------------------ seeds

@dataclass(frozen=True)
class Seed:
    """A valid model file (``model``: bytes, written as ``model.<format>``) and the sibling files it reads."""

    name: str
    model: bytes
    siblings: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Context:
    """The campaign's fixed files: a canary (raw records and an HDF5 copy) outside every case folder."""

    root: Path
    canary: Path
    canary_h5: Path


def build_seeds(root: Path) -> dict[str, list[Seed]]:
    """Valid seed files per format; each is loaded once here (which also imports every frontend before
    the workers fork)."""
    import torch
    torch.set_num_threads(1)
    folder = root / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {"onnx": _onnx_seeds(folder), "nir": _nir_seeds(folder), "net": _net_seeds(folder),
             "pt": _pt_seeds(folder), "snnc": _snnc_seeds()}
    from snnc.frontends.loader import load_model
    for fmt, items in seeds.items():
        for seed in items:
            path = write_seed(seed, fmt, folder / f"check-{fmt}")
            load_model(path, isolation=None, **OPTIONS.get(fmt, {}))
    return seeds


def write_seed(seed: Seed, fmt: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in seed.siblings:
        (folder / name).write_bytes(blob)
    path = folder / f"model.{fmt}"
    path.write_bytes(seed.model)
    return path


def _onnx_seeds(folder: Path) -> list[Seed]:
    import onnx
    from onnx_step_models import leaky_time_loop
    from snnc.frontends.onnx_export import graph_to_onnx
    from test_frontend_fuzz import float_graph, pattern_step_model
    seeds = [Seed("snn_domain", graph_to_onnx(float_graph()).SerializeToString()),
             Seed("pattern_step", pattern_step_model().SerializeToString()),
             Seed("loop", leaky_time_loop("Loop").SerializeToString()),
             Seed("scan", leaky_time_loop("Scan").SerializeToString())]
    external = folder / "external"
    external.mkdir(exist_ok=True)
    onnx.save_model(pattern_step_model(), external / "model.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=0)
    seeds.append(Seed("external_data", (external / "model.onnx").read_bytes(),
                      (("model.onnx.data", (external / "model.onnx.data").read_bytes()),)))
    return seeds


def _nir_seeds(folder: Path) -> list[Seed]:
    from conftest import DIGITS_MODEL
    from snnc.compiler.commands import export_model
    from snnc.frontends.nir_export import save_nir
    from test_frontend_fuzz import float_graph
    save_nir(float_graph(), folder / "conv.nir")
    export_model(DIGITS_MODEL, "nir", folder / "digits.nir")
    return [Seed("conv", (folder / "conv.nir").read_bytes()), Seed("digits", (folder / "digits.nir").read_bytes())]


def _net_seeds(folder: Path) -> list[Seed]:
    from test_lava_dl_net import conv_dense_layers, write_net
    seeds = []
    for seed in (0, 1):
        write_net(folder / f"conv{seed}.net", conv_dense_layers(seed))
        seeds.append(Seed(f"conv_dense{seed}", (folder / f"conv{seed}.net").read_bytes()))
    return seeds


def _pt_seeds(folder: Path) -> list[Seed]:
    import snntorch as snn
    import torch
    from torch import nn
    from conftest import DIGITS_MODEL
    from snnc.frontends.torch_bundle import save_bundle
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), snn.Leaky(beta=0.9, init_hidden=True),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 6),
                          snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, reset_mechanism="zero"),
                          nn.Linear(6, 3), snn.RLeaky(beta=0.8, linear_features=3, init_hidden=True))
    save_bundle(model, (1, 4, 4), folder / "conv.pt", name="conv")
    return [Seed("digits", DIGITS_MODEL.read_bytes()), Seed("conv", (folder / "conv.pt").read_bytes())]


def _snnc_seeds() -> list[Seed]:
    from conftest import DIGITS_MODEL
    from lowered_networks import conv_network
    from snnc.compiler.pipeline import compile_graph
    from snnc.frontends.torch_bundle import load_bundle
    from snnc.ir.serialize import graph_bytes
    from test_float_resonator import resonator_graph
    from test_float_sigma_delta import sdnn
    from test_frontend_fuzz import float_graph
    graphs = (("source", float_graph()), ("digits_lowered", compile_graph(load_bundle(DIGITS_MODEL), "loihi2").graph),
              ("conv_lowered", conv_network(0)[0]), ("float_sigma_delta", sdnn()), ("float_resonator", resonator_graph()))
    seeds = []
    for name, graph in graphs:
        blob = graph_bytes(graph)
        seeds.append(Seed(name, blob))
        header, entries = unpack_snnc(blob)
        seeds.append(Seed(f"{name}_stored", pack_snnc(header, entries, compress=False)))
    return seeds


def make_context(root: Path) -> Context:
    import h5py
    canary = root / "canary.bin"
    canary.write_bytes(CANARY_RECORD * 4096)
    canary_h5 = root / "canary.h5"
    with h5py.File(canary_h5, "w") as handle:
        handle["w"] = np.full(64, CANARY_FLOAT)
        handle["i"] = np.full(64, CANARY_WORD, np.int16)
        handle.create_group("g")["weight"] = np.full((4, 4), CANARY_FLOAT)
    return Context(root, canary, canary_h5)


# --------------------------------------------------------------------------------- byte mutations

INTERESTING_WORDS = (0, 0xFF, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 31, 1 << 40,
                     0x7FFFFFFFFFFFFFFF)


def mutate_bytes(path: Path, rng: np.random.Generator) -> str:
    """One byte-level edit of the file at ``path``; returns its description."""
    data = bytearray(path.read_bytes())
    size = len(data)
    kind = str(rng.choice(["flip", "set", "truncate", "insert", "delete", "duplicate", "word"]))
    if size == 0:
        kind = "insert"
    at = int(rng.integers(0, max(size, 1)))
    span = int(rng.integers(1, 65))
    if kind == "flip":
        spots = rng.integers(0, size, int(rng.integers(1, 9)))
        for spot in spots:
            data[spot] ^= 1 << int(rng.integers(0, 8))
        text = f"flip bits at {sorted(int(s) for s in spots)}"
    elif kind == "set":
        spots = rng.integers(0, size, int(rng.integers(1, 9)))
        for spot in spots:
            data[spot] = int(rng.choice([0, 0xFF, 0x7F, 0x80, int(rng.integers(0, 256))]))
        text = f"set bytes at {sorted(int(s) for s in spots)}"
    elif kind == "truncate":
        data = data[:at]
        text = f"truncate to {at} of {size} bytes"
    elif kind == "insert":
        data[at:at] = rng.integers(0, 256, span, dtype=np.uint8).tobytes()
        text = f"insert {span} random bytes at {at}"
    elif kind == "delete":
        del data[at:at + span]
        text = f"delete {span} bytes at {at}"
    elif kind == "duplicate":
        chunk = data[at:at + span * 4]
        to = int(rng.integers(0, size))
        data[to:to] = chunk
        text = f"duplicate {len(chunk)} bytes from {at} to {to}"
    else:
        word = int(rng.choice(INTERESTING_WORDS))
        width = 8 if word > 0xFFFFFFFF else 4
        data[at:at + width] = word.to_bytes(width, "little")
        text = f"write word {word:#x} at {at}"
    path.write_bytes(bytes(data))
    return text


# ------------------------------------------------------------------------------ HDF5 (.net, .nir)

NODE_TYPES = ("LIF", "CubaLIF", "Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d", "Flatten", "Input",
              "Output", "IF", "LI", "Integrator", "Delay", "Threshold", "Scale", "Conv1d", "NIRGraph",
              "dense", "conv", "input", "pool", "cuba", "sdnn", "CUBA", "SDNN", "")
SPECIAL_VALUES = (np.nan, np.inf, -np.inf, 1e300, -1.0, 2.0 ** 62, 0.0, -2.0 ** 63, 1e-300, 2.0 ** 31)


def hdf5_objects(handle) -> tuple[list[str], list[str]]:
    """The file's dataset and group names (hard links only)."""
    import h5py
    datasets, groups = [], []
    handle.visititems(lambda name, obj: (datasets if isinstance(obj, h5py.Dataset) else groups).append(name))
    return sorted(datasets), sorted(groups)


def mutate_hdf5(path: Path, rng: np.random.Generator, ctx: Context) -> str:
    """One structural edit of an HDF5 model file; returns its description."""
    import h5py
    kind = str(rng.choice(list(HDF5_EDITS)))
    with h5py.File(path, "a", libver="latest") as handle:
        datasets, groups = hdf5_objects(handle)
        target = str(rng.choice(datasets))
        return f"{kind} at '{target}': " + HDF5_EDITS[kind](handle, target, groups, rng, ctx)


def _replace(handle, target: str, **create) -> None:
    del handle[target]
    handle.create_dataset(target, **create)


def _old(handle, target: str) -> np.ndarray:
    value = handle[target][()]
    return np.asarray(value)


def _h5_external_link(handle, target, groups, rng, ctx) -> str:
    inside = str(rng.choice(["/w", "/i", "/g", "/g/weight", "/missing"]))
    del handle[target]
    handle[target] = h5py_module().ExternalLink(str(ctx.canary_h5), inside)
    return f"external link to canary.h5:{inside}"


def _h5_soft_link(handle, target, groups, rng, ctx) -> str:
    parent = "/" + target.rsplit("/", 1)[0] if "/" in target else "/"
    to = str(rng.choice(["/" + target, parent, "/", "/missing", "/" + str(rng.choice(groups or ["x"]))]))
    del handle[target]
    handle[target] = h5py_module().SoftLink(to)
    return f"soft link to '{to}'"


def _h5_hard_link_ancestor(handle, target, groups, rng, ctx) -> str:
    parts = target.split("/")
    ancestor = "/" + "/".join(parts[: int(rng.integers(0, len(parts)))])
    del handle[target]
    handle[target] = handle[ancestor]
    return f"hard link to ancestor '{ancestor}'"


def _h5_external_storage(handle, target, groups, rng, ctx) -> str:
    old = _old(handle, target)
    if rng.random() < 0.5:
        dtype = old.dtype if old.dtype.kind in "fiub" else np.dtype("f8")
        shape = old.shape or (1,)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        _replace(handle, target, shape=shape, dtype=dtype, external=[(str(ctx.canary), 0, nbytes)])
        return f"external raw storage in the canary ({shape}, {dtype})"
    count = 1 << int(rng.integers(10, 28))
    _replace(handle, target, shape=(count,), dtype="u8", external=[("/dev/zero", 0, count * 8)])
    return f"external raw storage in /dev/zero ({count} u8)"


def _h5_virtual(handle, target, groups, rng, ctx) -> str:
    h5py = h5py_module()
    layout = h5py.VirtualLayout(shape=(64,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(ctx.canary_h5), "w", shape=(64,))
    del handle[target]
    handle.create_virtual_dataset(target, layout)
    return "virtual dataset sourcing canary.h5:/w"


def _h5_huge_chunked(handle, target, groups, rng, ctx) -> str:
    shape, chunks = [((1 << 34,), (1 << 12,)), ((1 << 17, 1 << 17), (64, 64)), ((1 << 31, 8), (256, 8)),
                     ((1 << 20, 1 << 20, 4), (16, 16, 4))][int(rng.integers(0, 4))]
    dtype = str(rng.choice(["f8", "u1", "i8"]))
    _replace(handle, target, shape=shape, dtype=dtype, chunks=chunks)
    return f"chunked dataset declaring {shape} {dtype}"


def _h5_vlen_strings(handle, target, groups, rng, ctx) -> str:
    h5py = h5py_module()
    texts = ["", "x" * int(rng.integers(1, 5000)), str(rng.choice(NODE_TYPES)), "\x01\x02", "é" * 10]
    count = int(rng.integers(0, 6))
    value = np.array(texts[:count] if count else texts[int(rng.integers(0, len(texts)))], dtype=object)
    _replace(handle, target, data=value, dtype=h5py.string_dtype())
    return f"vlen strings {value.shape}"


def _h5_wrong_dtype(handle, target, groups, rng, ctx) -> str:
    old = _old(handle, target)
    dtype = [np.int8, np.uint64, np.float16, np.complex64, np.bool_, "S10", np.int64, np.float32,
             np.dtype([("a", "f8"), ("b", "i4")])][int(rng.integers(0, 9))]
    numeric = old if old.dtype.kind in "fiub" else np.zeros(old.shape or (), np.float64)
    if isinstance(dtype, np.dtype) and dtype.names:
        value = np.zeros(numeric.shape, dtype)
    else:
        with np.errstate(all="ignore"):
            value = np.nan_to_num(numeric.astype(np.float64)).astype(dtype)
    _replace(handle, target, data=value)
    return f"dtype {np.dtype(dtype)}"


def _h5_special_values(handle, target, groups, rng, ctx) -> str:
    old = _old(handle, target)
    value = SPECIAL_VALUES[int(rng.integers(0, len(SPECIAL_VALUES)))]
    shape = old.shape if old.dtype.kind in "fiub" else ()
    if old.dtype.kind in "iu" and np.isfinite(value) and rng.random() < 0.5:
        data = np.full(shape, int(np.clip(value, -2 ** 63, 2 ** 63 - 1)), np.int64)
    else:
        data = np.full(shape, value)
        if shape and rng.random() < 0.5:
            data = np.asarray(old, np.float64).copy()
            data.reshape(-1)[int(rng.integers(0, data.size))] = value
    _replace(handle, target, data=data)
    return f"value {value}"


def _h5_delete(handle, target, groups, rng, ctx) -> str:
    if groups and rng.random() < 0.3:
        target = str(rng.choice(groups))
    del handle[target]
    return f"deleted '{target}'"


def _h5_shape(handle, target, groups, rng, ctx) -> str:
    old = _old(handle, target)
    how = str(rng.choice(["flat", "extra_axis", "transpose", "empty", "scalar", "tiled", "drop_last"]))
    value = {"flat": lambda: old.reshape(-1), "extra_axis": lambda: old[None, ...],
             "transpose": lambda: old.T, "empty": lambda: old.reshape(-1)[:0],
             "scalar": lambda: old.reshape(-1)[0] if old.size else old,
             "tiled": lambda: np.concatenate([old.reshape(-1)] * 2), "drop_last": lambda: old.reshape(-1)[:-1]}[how]()
    value = np.asarray(value)
    kwargs = {"dtype": h5py_module().string_dtype()} if value.dtype.kind == "O" else {}
    _replace(handle, target, data=value, **kwargs)
    return f"shape {how} {value.shape}"


def _h5_huge_attribute(handle, target, groups, rng, ctx) -> str:
    owner = str(rng.choice(["/", "/" + target, *["/" + g for g in groups]]))
    if rng.random() < 0.5:
        value = np.zeros(int(rng.integers(1000, 8000)))       # an object header holds at most 64 KiB
    else:
        value = "a" * int(rng.integers(30_000, 64_000))
    handle[owner].attrs[str(rng.choice(["big", "type", "shape", "version"]))] = value
    return f"attribute on '{owner}' of {np.asarray(value).nbytes if not isinstance(value, str) else len(value)} bytes"


def _h5_type_swap(handle, target, groups, rng, ctx) -> str:
    types = [n for n in hdf5_objects(handle)[0] if n.endswith("type")]
    target = str(rng.choice(types)) if types else target
    text = str(rng.choice(NODE_TYPES))
    old = handle[target]
    if old.dtype.kind == "S":
        _replace(handle, target, data=np.array([text.encode()], dtype="S10"))
    else:
        _replace(handle, target, data=text, dtype=h5py_module().string_dtype())
    return f"type '{target}' := {text!r}"


def _h5_copy_group(handle, target, groups, rng, ctx) -> str:
    if not groups:
        return "no groups"
    source = str(rng.choice(groups))
    parent = source.rsplit("/", 1)[0] if "/" in source else ""
    name = str(rng.choice(["99", "copy", str(len(handle[parent or "/"]))]))
    destination = f"{parent}/{name}" if parent else name
    if destination not in handle:
        handle.copy(handle[source], destination)
    return f"copied group '{source}' to '{destination}'"


def _h5_rename(handle, target, groups, rng, ctx) -> str:
    handle.move(target, target + str(rng.choice(["_x", "0", " "])))
    return "renamed"


def h5py_module():
    import h5py
    return h5py


HDF5_EDITS = {"external_link": _h5_external_link, "soft_link": _h5_soft_link,
              "hard_link_ancestor": _h5_hard_link_ancestor, "external_storage": _h5_external_storage,
              "virtual": _h5_virtual, "huge_chunked": _h5_huge_chunked, "vlen_strings": _h5_vlen_strings,
              "wrong_dtype": _h5_wrong_dtype, "special_values": _h5_special_values, "delete": _h5_delete,
              "shape": _h5_shape, "huge_attribute": _h5_huge_attribute, "type_swap": _h5_type_swap,
              "copy_group": _h5_copy_group, "rename": _h5_rename}


# ------------------------------------------------------------------------------------------- ONNX

def mutate_onnx_file(path: Path, rng: np.random.Generator, ctx: Context) -> str:
    """One structural edit of an ONNX model; external data stays beside it."""
    import onnx
    kind = str(rng.choice(list(ONNX_EDITS)))
    # Edits of tensor values read the external data in (the model is then saved with inline data).
    model = onnx.load_model(str(path), load_external_data=kind not in ("external_data", "dims"))
    text = ONNX_EDITS[kind](model, path, rng, ctx)
    path.write_bytes(model.SerializeToString())
    return f"{kind}: {text}"


def _tensor_to_external(tensor, location: str, offset, length) -> None:
    from onnx import TensorProto
    tensor.ClearField("raw_data")
    for name in ("float_data", "int64_data", "int32_data", "double_data"):
        tensor.ClearField(name)
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", offset), ("length", length)):
        if value is not None:
            entry = tensor.external_data.add()
            entry.key, entry.value = key, str(value)


def _onnx_external(model, path, rng, ctx) -> str:
    if not model.graph.initializer:
        return "no initializer"
    tensor = model.graph.initializer[int(rng.integers(0, len(model.graph.initializer)))]
    choice = int(rng.integers(0, 10))
    offset, length = 0, None
    if choice == 2:
        (path.parent / "canary_link").symlink_to(ctx.canary)
    location = ["../canary.bin", str(ctx.canary), "canary_link", "model.onnx.data", "model.onnx.data",
                "/dev/zero", "missing.data", "", ".hidden", "model.onnx"][choice]
    if choice == 3:
        offset = (1 << 40) if rng.random() < 0.5 else 1 << int(rng.integers(8, 20))
    elif choice == 4:
        offset, length = str(rng.choice(["-8", "abc", "0"])), str(rng.choice([1 << 40, -1, "x", 8]))
    _tensor_to_external(tensor, location, offset, length)
    return f"initializer '{tensor.name}' external at {location!r} offset {offset} length {length}"


def _onnx_dims(model, path, rng, ctx) -> str:
    huge = int(rng.choice([1 << 31, (1 << 31) - 1, 1 << 40, -1, 0, 1 << 62]))
    values = [*model.graph.input, *model.graph.output, *model.graph.value_info]
    if model.graph.initializer and rng.random() < 0.5:
        tensor = model.graph.initializer[int(rng.integers(0, len(model.graph.initializer)))]
        dims = list(tensor.dims) or [1]
        dims[int(rng.integers(0, len(dims)))] = huge
        del tensor.dims[:]
        tensor.dims.extend(dims)
        return f"initializer '{tensor.name}' dims {dims}"
    value = values[int(rng.integers(0, len(values)))]
    shape = value.type.tensor_type.shape
    if not shape.dim:
        shape.dim.add()
    dim = shape.dim[int(rng.integers(0, len(shape.dim)))]
    dim.dim_value = huge
    return f"value '{value.name}' dim {huge}"


def _onnx_bomb(model, path, rng, ctx) -> str:
    from onnx import helper, numpy_helper
    graph = model.graph
    names = {t.name for t in graph.initializer}
    consumers = [(n, i) for n in graph.node for i, name in enumerate(n.input) if name in names]
    op = str(rng.choice(["ConstantOfShape", "Expand", "Tile"]))
    size = [1 << 16, 1 << 31, 1 << 20, 1 << 40][int(rng.integers(0, 4))]
    if consumers:
        node, slot = consumers[int(rng.integers(0, len(consumers)))]
        source = node.input[slot]
    else:
        node, slot, source = None, 0, graph.initializer[0].name if graph.initializer else "x"
    rank = len(next((t.dims for t in graph.initializer if t.name == source), [1])) or 1
    if op == "ConstantOfShape":
        shape, inputs = [size, size], ["bomb_shape"]
    elif op == "Expand":
        shape, inputs = [size] + [1] * (rank - 1), [source, "bomb_shape"]
    else:
        shape, inputs = [size] * rank, [source, "bomb_shape"]
    graph.initializer.append(numpy_helper.from_array(np.array(shape, np.int64), "bomb_shape"))
    graph.node.insert(0, helper.make_node(op, inputs, ["bomb_out"]))
    if node is not None:
        node.input[slot] = "bomb_out"
    return f"{op} {shape} feeding '{node.name or node.op_type if node is not None else '-'}'"


FIELD_VALUES = (np.nan, np.inf, -np.inf, 0, -1, 1e30, 2 ** 40, -7.5)


def _field_value(rng):
    pick = int(rng.integers(0, 3))
    if pick == 0:
        return FIELD_VALUES[int(rng.integers(0, len(FIELD_VALUES)))]
    if pick == 1:
        return rng.normal(size=int(rng.integers(0, 7))) * 100
    return rng.integers(-300, 300, int(rng.integers(1, 13))).reshape(-1, 1)


def _onnx_field(model, path, rng, ctx) -> str:
    from test_frontend_fuzz import mutate_graph, mutate_time_loop
    choice, value, which = int(rng.integers(0, 8)), _field_value(rng), int(rng.integers(0, 201))
    if any(n.op_type in ("Scan", "Loop") for n in model.graph.node):
        model.CopyFrom(mutate_time_loop(model, choice, value, which))
    else:
        mutate_graph(model.graph, choice % 4, value, which)
    return f"field edit choice={choice} which={which} value={np.asarray(value).tolist()}"


def _onnx_tensor_type(model, path, rng, ctx) -> str:
    if not model.graph.initializer:
        return "no initializer"
    tensor = model.graph.initializer[int(rng.integers(0, len(model.graph.initializer)))]
    if rng.random() < 0.5:
        tensor.data_type = int(rng.choice([0, 2, 7, 8, 9, 10, 11, 14, 16, 17, 23, 99]))
        return f"'{tensor.name}' data_type {tensor.data_type}"
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        tensor.raw_data = raw[: int(rng.integers(0, len(raw) + 1))] if rng.random() < 0.5 else raw * 2
    return f"'{tensor.name}' raw_data resized to {len(tensor.raw_data)}"


def _onnx_nodes(model, path, rng, ctx) -> str:
    graph = model.graph
    index = int(rng.integers(0, len(graph.node)))
    how = str(rng.choice(["delete", "duplicate", "opset", "domain"]))
    if how == "delete":
        del graph.node[index]
    elif how == "duplicate":
        graph.node.append(graph.node[index])
    elif how == "opset":
        model.opset_import[0].version = int(rng.choice([1, 6, 99, -1]))
    else:
        graph.node[index].domain = str(rng.choice(["snn", "com.microsoft", "ai.onnx.ml", "evil"]))
    return f"node {index} {how}"


ONNX_EDITS = {"external_data": _onnx_external, "dims": _onnx_dims, "size_bomb": _onnx_bomb,
              "field": _onnx_field, "tensor_type": _onnx_tensor_type, "nodes": _onnx_nodes}


# ------------------------------------------------------------------------------------ torch bundle

class PickledCallable:
    """Pickles as a call of ``pathlib.Path.touch`` on a marker file; ``weights_only`` must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.PurePosixPath(self.marker),))


WRONG_VALUES = (2 ** 31, 2 ** 40, -1, 0, "3", 3.5, None, True, [2 ** 31, 2 ** 31], [], {"a": 1}, float("nan"),
                2 ** 62, "Linear", [3, 3, 3])


def mutate_bundle(path: Path, rng: np.random.Generator, ctx: Context) -> str:
    """One structural edit of a torch bundle's content, saved again with torch.save."""
    import torch
    data = torch.load(path, map_location="cpu", weights_only=True)
    kind = str(rng.choice(list(BUNDLE_EDITS)))
    text = BUNDLE_EDITS[kind](data, path, rng, ctx)
    torch.save(data, path)
    return f"{kind}: {text}"


def _pick(rng, items):
    items = list(items)
    return items[int(rng.integers(0, len(items)))]


def _bundle_tensor(data, path, rng, ctx) -> str:
    import torch
    state = data["state_dict"]
    key = _pick(rng, state)
    tensor = state[key]
    how = int(rng.integers(0, 12))
    state[key] = [lambda: tensor.to(torch.int64), lambda: tensor.to(torch.bool), lambda: tensor.to(torch.float16),
                  lambda: tensor.to(torch.complex64), lambda: tensor.reshape(-1)[:0],
                  lambda: tensor.reshape(-1).unsqueeze(0), lambda: tensor.T if tensor.dim() == 2 else tensor[None],
                  lambda: tensor.reshape(-1)[0] if tensor.numel() else tensor,
                  lambda: torch.full(tuple(tensor.shape), float(_pick(rng, [np.nan, np.inf, -np.inf, 1e30]))),
                  lambda: _pick(rng, [[1.0, 2.0], "x", None, 3, {"a": torch.zeros(1)}, 0.5]),
                  lambda: torch.zeros((2,) * 6), lambda: tensor.to(torch.uint8)][how]()
    return f"state_dict['{key}'] variant {how}"


def _bundle_state_dict(data, path, rng, ctx) -> str:
    import torch
    state = data["state_dict"]
    how = int(rng.integers(0, 6))
    if how == 0:
        data["state_dict"] = _pick(rng, [[], None, torch.zeros(3), {}, {1: torch.zeros(1)}, "state"])
    elif how == 1:
        del state[_pick(rng, state)]
    elif how == 2:
        state[_pick(rng, ["9.weight", "0.bias", "0.extra", "x"])] = torch.zeros(3)
    elif how == 3:
        key = _pick(rng, state)
        state[key + "_renamed"] = state.pop(key)
    elif how == 4:
        key = _pick(rng, state)
        state[key] = torch.zeros((int(rng.integers(1, 300)), int(rng.integers(1, 300))))
    else:
        for key in list(state):
            if key.endswith("weight"):
                state[key] = torch.zeros((0,) * state[key].dim())
    return f"state_dict edit {how}"


def _bundle_layer_field(data, path, rng, ctx) -> str:
    layers = data["layers"]
    index = int(rng.integers(0, len(layers)))
    spec = layers[index]
    key = _pick(rng, [*spec, "in", "out", "kernel", "stride", "padding", "groups", "bias", "reset",
                      "all_to_all", "linear_features", "kernel_size", "reset_delay", "conv2d_channels"])
    if rng.random() < 0.15:
        spec.pop(key, None)
        return f"layers[{index}] deleted '{key}'"
    spec[key] = _pick(rng, WRONG_VALUES)
    return f"layers[{index}]['{key}'] = {spec[key]!r}"


def _bundle_layers(data, path, rng, ctx) -> str:
    layers = data["layers"]
    how = int(rng.integers(0, 7))
    if how == 0:
        data["layers"] = _pick(rng, [None, {}, "Linear", (), [[]], [None], [5]])
    elif how == 1:
        layers.insert(int(rng.integers(0, len(layers) + 1)), {"type": "Linear", "in": 2 ** 31, "out": 2 ** 31,
                                                               "bias": True})
    elif how == 2:
        del layers[int(rng.integers(0, len(layers)))]
    elif how == 3:
        layers.append(dict(layers[int(rng.integers(0, len(layers)))]))
    elif how == 4:
        layers[int(rng.integers(0, len(layers)))]["type"] = _pick(
            rng, ["Linear", "Conv2d", "AvgPool2d", "Flatten", "Leaky", "Synaptic", "RLeaky", "Dropout",
                  "Identity", "LSTM", "os.system", 5, None])
    elif how == 5:
        layers.insert(0, {"type": "Conv2d", "in": 2 ** 16, "out": 2 ** 16, "kernel": [2 ** 10, 2 ** 10],
                          "stride": [1, 1], "padding": [0, 0], "groups": 1, "bias": True})
    else:
        layers.insert(0, {"type": "AvgPool2d", "kernel": _pick(rng, [0, -1, 2 ** 31, "2", None]),
                          "stride": _pick(rng, [0, 1, None, 2 ** 31])})
    return f"layers edit {how}"


def _bundle_top(data, path, rng, ctx) -> str:
    key = _pick(rng, ["input_shape", "input_shape", "name", "dt_s", "snnc_torch_bundle", "extra"])
    values = {"input_shape": [[2 ** 31, 2 ** 31], [2 ** 62], [-1], ["64"], [], [[64]], None, 64, [0],
                              [64, 2 ** 31], [1, 2 ** 20, 2 ** 20], [2.5]],
              "name": [5, None, ["a"], "x" * 100_000, 'a"""\nimport os', {"n": 1}],
              "dt_s": ["1e-3", None, -1, 0, float("nan"), float("inf"), 1e300, [1e-3], True, 1e-300],
              "snnc_torch_bundle": [2, "1", True, 1.0, None], "extra": [object]}[key]
    if key == "extra" or rng.random() < 0.1:
        data.pop(key, None)
        return f"deleted '{key}'"
    data[key] = _pick(rng, values)
    return f"{key} = {data[key]!r}"[:200]


def _bundle_pickled(data, path, rng, ctx) -> str:
    import collections
    import torch
    marker = ctx.root / f"executed-{path.parent.name}"
    obj = _pick(rng, [PickledCallable(marker), collections.Counter("ab"), np.zeros(3), {1, 2},
                      torch.nn.Linear(2, 2), PickledCallable(marker)])
    where = _pick(rng, ["top", "state", "layer"])
    if where == "top":
        data["payload"] = obj
    elif where == "state":
        data["state_dict"][_pick(rng, data["state_dict"])] = obj
    else:
        data["layers"][0]["in"] = obj
    return f"pickled {type(obj).__name__} in {where}"


BUNDLE_EDITS = {"tensor": _bundle_tensor, "state_dict": _bundle_state_dict, "layer_field": _bundle_layer_field,
                "layers": _bundle_layers, "top": _bundle_top, "pickled": _bundle_pickled}


# ----------------------------------------------------------------------------------------- .snnc

def unpack_snnc(blob: bytes) -> tuple[dict, dict]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        entries = {k: archive[k] for k in archive.files}
    return json.loads(entries.pop("__graph__").tobytes().decode()), entries


def pack_snnc(header, entries: dict, compress: bool = True, raw: dict | None = None) -> bytes:
    """An npz of ``entries`` (arrays) plus ``raw`` members (``name.npy`` bytes written as given)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    members = {**entries, "__graph__": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for key, array in members.items():
            if raw and key in raw:
                continue
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(f"{key}.npy", member.getvalue())
        for key, blob in (raw or {}).items():
            archive.writestr(f"{key}.npy", blob)
    return buffer.getvalue()


def npy_declaring(shape, descr: str = "<f8", payload: bytes = b"\0" * 64) -> bytes:
    """``.npy`` bytes whose header declares ``shape`` but whose data is only ``payload``."""
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


SNNC_VALUES = (None, True, -1, 0, 2 ** 31, 2 ** 64, 1e308, float("nan"), float("inf"), "x", [], {}, [1, 2],
               {"array": "missing"}, {"array": 5}, {"tuple": "x"}, {"tuple": [2 ** 31, 2 ** 31]}, [2 ** 31] * 4,
               {"tuple": []}, -1e-300, "zero", {"array": "__graph__"})


def mutate_snnc(path: Path, rng: np.random.Generator, ctx: Context) -> str:
    """One structural edit of a .snnc file's JSON header or npz members."""
    header, entries = unpack_snnc(path.read_bytes())
    kind = str(rng.choice(list(SNNC_EDITS)))
    raw: dict[str, bytes] = {}
    text = SNNC_EDITS[kind](header, entries, raw, rng)
    path.write_bytes(pack_snnc(header, entries, compress=bool(rng.random() < 0.5), raw=raw))
    return f"{kind}: {text}"


def _json_slots(value, where=""):
    """Every (container, key, where) in a JSON tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key, f"{where}.{key}"
            yield from _json_slots(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index, f"{where}[{index}]"
            yield from _json_slots(item, f"{where}[{index}]")


def _snnc_header_field(header, entries, raw, rng) -> str:
    slots = list(_json_slots(header))
    container, key, where = slots[int(rng.integers(0, len(slots)))]
    if isinstance(container, dict) and rng.random() < 0.15:
        del container[key]
        return f"deleted {where}"
    container[key] = _pick(rng, SNNC_VALUES)
    return f"{where} = {container[key]!r}"


def _snnc_shape(header, entries, raw, rng) -> str:
    slots = [(c, k, w) for c, k, w in _json_slots(header)
             if isinstance(k, str) and ("shape" in k or k in ("kernel", "stride", "padding", "start", "stop"))]
    if not slots:
        return "no shape field"
    container, key, where = slots[int(rng.integers(0, len(slots)))]
    size = int(rng.choice([1 << 31, 1 << 20, 1 << 40, -1, 0]))
    container[key] = {"tuple": [size] * int(rng.integers(1, 4))}
    return f"{where} = {container[key]}"


def _snnc_reference(header, entries, raw, rng) -> str:
    nodes = header["nodes"]
    names = [n["fields"].get("name") for n in nodes]
    how = int(rng.integers(0, 5))
    if how == 0:
        header["outputs"] = _pick(rng, [["ghost"], [], [names[0]], names * 2, [5]])
        return f"outputs = {header['outputs']}"
    node = nodes[int(rng.integers(0, len(nodes)))]["fields"]
    if how == 1:
        refs = [k for k, v in node.items() if isinstance(v, str) and v in names and k != "name"]
        if refs:
            node[refs[0]] = _pick(rng, ["ghost", node["name"], names[-1]])
            return f"{node['name']}.{refs[0]} = {node[refs[0]]}"
        return "no reference"
    if how == 2:
        node["name"] = _pick(rng, [n for n in names if n != node["name"]] or ["x"])
        return f"duplicate name {node['name']}"
    if how == 3:
        if "sources" in node:
            node["sources"] = {"tuple": _pick(rng, [[], ["ghost"], [node["name"]], names])}
            return f"{node['name']}.sources = {node['sources']}"
        return "no sources"
    nodes.reverse()
    return "nodes reversed"


def _snnc_member(header, entries, raw, rng) -> str:
    keys = list(entries)
    if not keys:
        return "no members"
    key = _pick(rng, keys)
    array = entries[key]
    how = int(rng.integers(0, 9))
    if how == 0:
        shape = _pick(rng, [(1 << 20, 1 << 20), (1 << 40,), (1 << 31, 2), (1 << 16,) * 4])
        raw[key] = npy_declaring(shape, _pick(rng, ["<f8", "|u1", "<i8"]))
        return f"member '{key}' declares {shape}"
    if how == 1:
        raw[key] = npy_declaring(array.shape, "|O")
        return f"member '{key}' object dtype"
    if how == 2:
        del entries[key]
        return f"member '{key}' deleted"
    variants = [lambda: array.astype(np.complex64), lambda: np.array(["a"] * max(array.size, 1)),
                lambda: array.astype(np.float16), lambda: np.asarray(array.reshape(-1)[:1].reshape(())),
                lambda: np.full(array.shape, np.nan), lambda: np.full(array.shape, 2 ** 62, np.int64)]
    entries[key] = variants[how - 3]()
    return f"member '{key}' variant {how}"


def _snnc_version(header, entries, raw, rng) -> str:
    header["schema_version"] = _pick(rng, [0, 99, "1", None, 1.5])
    return f"schema_version = {header['schema_version']!r}"


SNNC_EDITS = {"header_field": _snnc_header_field, "shape": _snnc_shape, "reference": _snnc_reference,
              "member": _snnc_member, "version": _snnc_version}

STRUCTURAL = {"onnx": mutate_onnx_file, "nir": mutate_hdf5, "net": mutate_hdf5, "pt": mutate_bundle,
              "snnc": mutate_snnc}


# ---------------------------------------------------------------------------------------------- cases

def case_rng(seed: int, fmt: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, FORMATS.index(fmt), index])


def make_case(fmt: str, seeds: dict[str, list[Seed]], ctx: Context, seed: int, index: int, folder: Path) -> tuple[Path, str]:
    """Write case ``index`` of format ``fmt`` into ``folder``: a seed, one structural edit (65%) and/or byte
    edits. The same (seed, format, index) always gives the same file."""
    rng = case_rng(seed, fmt, index)
    chosen = seeds[fmt][int(rng.integers(0, len(seeds[fmt])))]
    path = write_seed(chosen, fmt, folder)
    steps = [chosen.name]
    if rng.random() < 0.65:
        steps.append(STRUCTURAL[fmt](path, rng, ctx))
        if rng.random() < 0.15:
            steps.append(mutate_bytes(path, rng))
    else:
        for _ in range(int(rng.integers(1, 4))):
            steps.append(mutate_bytes(path, rng))
    return path, "; ".join(steps)


# --------------------------------------------------------------------------------------- the worker

class OutsideOpens:
    """An audit hook recording ``open`` of files outside ``folder`` (the case's own folder, where the
    model, its siblings and temporary files live), other than Python's own modules and /proc, /sys."""

    def __init__(self, folder: Path) -> None:
        self.folder = os.path.realpath(folder) + os.sep
        self.libraries = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                                                        *[q for q in sys.path if q])})
        self.active = False
        self.seen: list[str] = []

    def __call__(self, event: str, args) -> None:
        if not self.active or event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        self.active = False            # the checks below may open nothing, but never recurse
        try:
            name = os.fsdecode(args[0])
            real = os.path.realpath(name)
            if not self.allowed(real, args[1] if len(args) > 1 else "r"):
                self.seen.append(f"{name} -> {real}" if real != name else name)
        finally:
            self.active = True

    def allowed(self, real: str, mode) -> bool:
        if real.startswith(self.folder) or real in ("/dev/null",):
            return True
        if real.startswith(("/proc/", "/sys/")):
            return True
        reading = mode is None or (isinstance(mode, str) and not set(mode) & set("wax+"))
        return reading and real.endswith(LIBRARY_SUFFIXES) and real.startswith(self.libraries)


def canary_hits(graph) -> list[str]:
    """Fields of an accepted graph holding a value of the canary file (read from outside the model)."""
    import dataclasses
    hits = []
    targets = np.array(CANARY_VALUES)
    for node in graph.nodes:
        for spec in dataclasses.fields(node):
            value = getattr(node, spec.name)
            for item in (value if isinstance(value, tuple) else (value,)):
                try:
                    array = np.asarray(item, dtype=np.float64).reshape(-1)
                except (TypeError, ValueError):
                    continue
                array = array[np.isfinite(array)]
                if array.size and np.isclose(array[:, None], targets[None, :], rtol=1e-6, atol=0).any():
                    hits.append(f"{node.name}.{spec.name}")
    return hits


def peak_rss_bytes() -> int:
    from snnc.frontends.isolation import process_memory_bytes
    return process_memory_bytes("VmHWM")


def mapped_bytes() -> int:
    from snnc.frontends.isolation import process_memory_bytes
    return process_memory_bytes("VmSize")


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def load_case(path: Path, fmt: str, ctx: Context) -> dict:
    """Load ``path`` with every measurement on; the report the worker sends to the parent."""
    from snnc.errors import SnncError
    from snnc.frontends import loader
    audit = OutsideOpens(path.parent)
    sys.addaudithook(audit)
    reset_peak_rss()
    rss_before = peak_rss_bytes()
    report = {"outcome": "accepted", "detail": "", "outside": [], "canary": []}
    tracemalloc.start()
    audit.active = True
    try:
        graph = loader.load_model(path, isolation=loader_isolation(fmt), **OPTIONS.get(fmt, {}))
        audit.active = False
        report["canary"] = canary_hits(graph)
    except SnncError as exc:
        report.update(outcome="typed", detail=str(exc)[:300])
    except MemoryError as exc:
        report.update(outcome="memory", detail=f"MemoryError: {str(exc)[:200]}")
    except Exception as exc:  # noqa: BLE001 - an untyped exception is exactly what the campaign looks for
        report.update(outcome="untyped", detail=f"{type(exc).__name__}: {str(exc)[:240]} at {_where(exc)}")
    finally:
        audit.active = False
        report["peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    report["rss_growth"] = max(0, peak_rss_bytes() - rss_before)
    report["outside"] = audit.seen[:5]
    marker = ctx.root / f"executed-{path.parent.name}"
    if marker.exists():
        report["outside"].append(f"code from the file ran: {marker} created")
    return report


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _child(write_fd: int, fmt: str, seeds, ctx: Context, seed: int, index: int, folder: Path) -> None:
    report = {"outcome": "fuzzer_error", "detail": ""}
    try:
        try:
            import torch
            torch.set_num_threads(1)
            path, report["description"] = make_case(fmt, seeds, ctx, seed, index, folder)
        except Exception as exc:  # noqa: BLE001 - a mutator bug, reported as such
            report["detail"] = f"mutator: {type(exc).__name__}: {str(exc)[:200]} at {_where(exc)}"
        else:
            tempfile.tempdir = str(folder)
            os.environ["TMPDIR"] = str(folder)
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = mapped_bytes() + ADDRESS_SPACE_HEADROOM
            resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
            report.update(load_case(path, fmt, ctx))
    except BaseException as exc:  # noqa: BLE001
        report["detail"] = f"worker: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        try:
            blob = json.dumps(report, default=str).encode()
            view = memoryview(blob)
            while view:
                view = view[os.write(write_fd, view):]
        finally:
            os._exit(0)


# ---------------------------------------------------------------------------------------- the parent

@dataclass
class CaseResult:
    fmt: str
    index: int
    outcome: str                       # accepted, typed, untyped, memory, hang, crash, fuzzer_error
    description: str = ""
    detail: str = ""
    peak_bytes: int = 0
    rss_growth: int = 0
    outside: list = field(default_factory=list)

    def failures(self, cap_bytes: int) -> list[str]:
        found = []
        if self.outcome in ("untyped", "hang", "crash", "fuzzer_error"):
            found.append(self.outcome)
        if self.outcome == "memory" or max(self.peak_bytes, self.rss_growth) > cap_bytes:
            found.append("over_limit")
        if self.outside:
            found.append("outside_read")
        return found


@dataclass
class Campaign:
    """Counts per format and every failing case."""

    seed: int
    cap_bytes: int
    counts: dict = field(default_factory=dict)
    failed: list = field(default_factory=list)
    max_peak: dict = field(default_factory=dict)

    def add(self, result: CaseResult) -> None:
        counts = self.counts.setdefault(result.fmt, Counter())
        counts["cases"] += 1
        if result.outcome in ("accepted", "typed"):
            counts[result.outcome] += 1
        problems = result.failures(self.cap_bytes)
        for problem in problems:
            counts[problem] += 1
        if problems:
            self.failed.append((result, problems))
        self.max_peak[result.fmt] = max(self.max_peak.get(result.fmt, 0), result.peak_bytes, result.rss_growth)

    def failure_count(self) -> int:
        return sum(c[p] for c in self.counts.values() for p in FAILURES)

    def table(self) -> str:
        columns = ("cases", "accepted", "typed", *FAILURES)
        heads = ("format", *columns, "max_peak_MiB")
        rows = [heads] + [(fmt, *(str(counts[c]) for c in columns), f"{self.max_peak.get(fmt, 0) / (1 << 20):.0f}")
                          for fmt, counts in self.counts.items()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(heads))]
        return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows)

    def reproducers(self, limit: int = 10) -> str:
        lines = []
        for result, problems in self.failed[:limit]:
            lines.append(f"{'/'.join(problems)}: {result.fmt} case {result.index} ({result.description}): "
                         f"{result.detail} {result.outside or ''}\n    replay: PYTHONPATH=. python "
                         f"tests/fuzz_campaign.py --seed {self.seed} --replay {result.fmt}:{result.index}")
        return "\n".join(lines)


def run_campaign(formats=FORMATS, cases: int = 100, seed: int = 0, jobs: int = 2, deadline_s: float = DEADLINE_S,
                 cap_bytes: int = CAP_BYTES, root: Path | None = None, seeds=None, progress=None,
                 indices=None) -> Campaign:
    """Run ``cases`` mutated files per format (case numbers ``indices``, default 0 .. cases - 1) in forked
    workers, ``jobs`` at a time. ``root``: a folder for the canary and case files (default: a temporary
    one); ``seeds``: ``build_seeds(root)``'s result, to reuse."""
    own = root is None
    root = Path(tempfile.mkdtemp(prefix="snnc-fuzz-")) if own else Path(root)
    try:
        ctx = make_context(root)
        seeds = seeds if seeds is not None else build_seeds(root)
        campaign = Campaign(seed, cap_bytes)
        todo = [(fmt, index) for fmt in formats for index in (range(cases) if indices is None else indices)]
        _schedule(todo, seeds, ctx, seed, max(1, jobs), deadline_s, campaign, progress)
        return campaign
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


@dataclass
class _Running:
    fmt: str
    index: int
    pid: int
    fd: int
    folder: Path
    started: float
    data: bytearray = field(default_factory=bytearray)


def _schedule(todo, seeds, ctx: Context, seed: int, jobs: int, deadline_s: float, campaign: Campaign, progress) -> None:
    running: dict[int, _Running] = {}
    todo = list(reversed(todo))
    done = 0
    while todo or running:
        while todo and len(running) < jobs:
            fmt, index = todo.pop()
            job = _start(fmt, index, seeds, ctx, seed)
            running[job.fd] = job
        now = time.monotonic()
        wait = max(0.0, min(job.started + deadline_s for job in running.values()) - now)
        ready = select.select(list(running), [], [], wait)[0]
        for fd in ready:
            job = running[fd]
            chunk = os.read(fd, 1 << 16)
            if chunk:
                job.data += chunk
                continue
            del running[fd]
            campaign.add(_finish(job))
            done += 1
        now = time.monotonic()
        for fd, job in list(running.items()):
            if now - job.started > deadline_s:
                del running[fd]
                os.kill(job.pid, signal.SIGKILL)
                os.waitpid(job.pid, 0)
                os.close(fd)
                shutil.rmtree(job.folder, ignore_errors=True)
                campaign.add(CaseResult(job.fmt, job.index, "hang", _describe(seeds, ctx, seed, job),
                                        f"no result within {deadline_s:g} s (killed)"))
                done += 1
        if progress and ready:
            progress(done)


def _start(fmt: str, index: int, seeds, ctx: Context, seed: int) -> _Running:
    folder = ctx.root / f"case-{fmt}-{index}"
    folder.mkdir()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(write_fd, fmt, seeds, ctx, seed, index, folder)
    os.close(write_fd)
    return _Running(fmt, index, pid, read_fd, folder, time.monotonic())


def _finish(job: _Running) -> CaseResult:
    os.close(job.fd)
    status = os.waitpid(job.pid, 0)[1]
    shutil.rmtree(job.folder, ignore_errors=True)
    try:
        report = json.loads(job.data.decode())
    except ValueError:
        code = os.waitstatus_to_exitcode(status)
        return CaseResult(job.fmt, job.index, "crash", "", f"worker died (exit {code}) without a report")
    return CaseResult(job.fmt, job.index, report.get("outcome", "crash"), report.get("description", ""),
                      report.get("detail", ""), int(report.get("peak_bytes", 0)), int(report.get("rss_growth", 0)),
                      list(report.get("outside", [])) + [f"canary value in {h}" for h in report.get("canary", [])])


def _describe(seeds, ctx: Context, seed: int, job: _Running) -> str:
    """The description of a killed case, regenerated in a scratch folder."""
    scratch = Path(tempfile.mkdtemp(prefix="describe-", dir=ctx.root))
    try:
        return make_case(job.fmt, seeds, ctx, seed, job.index, scratch)[1]
    except Exception as exc:  # noqa: BLE001
        return f"(description unavailable: {type(exc).__name__})"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ----------------------------------------------------------------------------------------------- CLI

def replay(fmt: str, index: int, seed: int, keep: Path | None) -> int:
    """Rebuild one case and load it in this process, printing its description and any traceback."""
    root = Path(tempfile.mkdtemp(prefix="snnc-fuzz-replay-")) if keep is None else keep
    root.mkdir(parents=True, exist_ok=True)
    ctx = make_context(root)
    seeds = build_seeds(root)
    folder = root / f"case-{fmt}-{index}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path, description = make_case(fmt, seeds, ctx, seed, index, folder)
    print(f"{fmt} case {index} (seed {seed}): {description}\nfile: {path}")
    from snnc.errors import SnncError
    from snnc.frontends.loader import load_model
    try:
        graph = load_model(path, isolation=loader_isolation(fmt), **OPTIONS.get(fmt, {}))
        print(f"accepted: {len(graph.nodes)} nodes; canary hits: {canary_hits(graph)}")
    except SnncError as exc:
        print(f"typed error: {exc}")
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="mutated files per format")
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma-separated subset of " + ",".join(FORMATS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="workers at a time")
    parser.add_argument("--deadline", type=float, default=DEADLINE_S, help="seconds per case before it counts as a hang")
    parser.add_argument("--cap-mib", type=int, default=CAP_BYTES >> 20, help="allocation cap per case (MiB)")
    parser.add_argument("--show", type=int, default=10, help="failing cases to list")
    parser.add_argument("--replay", help="FORMAT:INDEX: rebuild one case and load it in this process")
    parser.add_argument("--keep", type=Path, help="with --replay: folder to write the case into")
    args = parser.parse_args(argv)
    if args.replay:
        fmt, index = args.replay.split(":")
        return replay(fmt, int(index), args.seed, args.keep)
    formats = [f.strip().lstrip(".") for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"unknown format(s) {unknown}; choose from {', '.join(FORMATS)}")
    started = time.monotonic()
    total = args.cases * len(formats)

    shown = [0]

    def progress(done: int) -> None:
        if done >= shown[0] + 1000:
            shown[0] = done
            print(f"  {done}/{total} cases, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)

    campaign = run_campaign(formats, args.cases, args.seed, args.jobs, args.deadline, args.cap_mib << 20,
                            progress=progress)
    print(f"fuzz campaign: seed {args.seed}, {args.cases} cases per format, {args.jobs} workers, deadline "
          f"{args.deadline:g} s, cap {args.cap_mib} MiB, {time.monotonic() - started:.0f} s")
    print(campaign.table())
    if campaign.failure_count():
        print(f"\n{campaign.failure_count()} failure(s); first cases:\n{campaign.reproducers(args.show)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
