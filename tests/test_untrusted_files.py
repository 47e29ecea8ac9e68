"""Model files cannot make snnc read other files or allocate without bound (issue 15, item 2).

Each hostile file is refused by name before any of its data is read: HDF5 (lava-dl .net and NIR)
external links, soft links and their cycles, hard-link cycles, external raw storage, virtual datasets and
declared sizes over the budget; ONNX external data and declared dims, and constant folding that would
produce a huge tensor.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import DIGITS_MODEL, time_limit
from snnc.compiler.commands import export_model
from snnc.errors import ModelFileError
from snnc.frontends.hdf5_guard import HDF5Limits, UnsafeHDF5Error, check_hdf5
from snnc.frontends.lava_dl_net import load_net
from snnc.frontends.loader import load_model
from snnc.frontends.nir_import import load_nir
from snnc.frontends.onnx_step import OnnxError
from test_lava_dl_net import conv_dense_layers, write_net

SECRET = b"secret key material that must never become weights"


@pytest.fixture
def net_path(tmp_path):
    path = tmp_path / "net.net"
    write_net(path, conv_dense_layers(0))
    return path


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.bin"
    path.write_bytes(SECRET * 64)
    return path


def refusal(path, **options) -> str:
    with time_limit(20, "loading a hostile file"), pytest.raises(ModelFileError) as caught:
        load_model(path, **options)
    return str(caught.value)


def test_the_fixture_itself_loads(net_path):
    assert load_net(net_path).nodes


def test_external_link_is_refused(net_path, tmp_path):
    other = tmp_path / "other.net"
    write_net(other, conv_dense_layers(1))
    with h5py.File(net_path, "a") as handle:
        del handle["layer/4/weight"]
        handle["layer/4/weight"] = h5py.ExternalLink(str(other), "/layer/4/weight")
    assert refusal(net_path) == (f"file '{net_path}': HDF5 object '/layer/4/weight': external link to "
                                 f"'{other}': snnc reads only the model file")


def test_external_raw_storage_is_refused_without_reading_it(net_path, secret):
    with h5py.File(net_path, "a") as handle:
        del handle["layer/4/weight"]
        handle.create_dataset("layer/4/weight", shape=(4, 10), dtype="u1", external=[(str(secret), 0, 40)])
    assert refusal(net_path).endswith(f"HDF5 object '/layer/4/weight': external raw storage in '{secret}': snnc "
                                      "reads only the model file")


def test_dev_zero_storage_is_refused(net_path):
    with h5py.File(net_path, "a") as handle:
        handle.create_dataset("layer/4/bias", shape=(1 << 27,), dtype="u8", external=[("/dev/zero", 0, 1 << 30)])
    assert "external raw storage in '/dev/zero'" in refusal(net_path)


@pytest.mark.parametrize("target", ["/layer", "/layer/0", "/nowhere"])
def test_soft_links_and_their_cycles_are_refused(net_path, target):
    with h5py.File(net_path, "a") as handle:
        handle["layer/3/loop"] = h5py.SoftLink(target)
    assert refusal(net_path).endswith("HDF5 object '/layer/3/loop': SoftLink (only hard links are read; a soft "
                                      "link can close a cycle)")


def test_hard_link_cycle_is_refused(net_path):
    with h5py.File(net_path, "a") as handle:
        handle["layer/2/up"] = handle["layer"]
    assert refusal(net_path).endswith("HDF5 object '/layer/2/up': reached a second time (hard-link cycle or alias)")


def test_virtual_dataset_is_refused(net_path, secret, tmp_path):
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as handle:
        handle["w"] = np.arange(40).reshape(4, 10)
    layout = h5py.VirtualLayout(shape=(4, 10), dtype="i8")
    layout[:] = h5py.VirtualSource(str(source), "w", shape=(4, 10))
    with h5py.File(net_path, "a") as handle:
        del handle["layer/4/weight"]
        handle.create_virtual_dataset("layer/4/weight", layout)
    assert refusal(net_path).endswith("HDF5 object '/layer/4/weight': virtual dataset (its data is mapped from "
                                      "other files)")


def test_declared_size_is_checked_before_reading(net_path):
    """2^34 float64 elements (128 GiB) declared in a chunked dataset with nothing written: a file of a
    few kB. The budget is 256 MiB for such a file (HDF5Limits' floor)."""
    with h5py.File(net_path, "a") as handle:
        del handle["layer/4/weight"]
        handle.create_dataset("layer/4/weight", shape=(1 << 17, 1 << 17), dtype="f8", chunks=(64, 64))
    message = refusal(net_path)
    assert "HDF5 object '/layer/4/weight': declares 137438953472 bytes (shape (131072, 131072), float64); " \
           "limit 268435456 bytes" in message


def test_sum_of_declared_sizes_is_bounded(net_path):
    limits = HDF5Limits(ratio=1, floor_bytes=1000, cap_bytes=1000)
    with pytest.raises(UnsafeHDF5Error, match=r"limit 1000 bytes for all data"):
        check_hdf5(net_path, limits)
    with pytest.raises(UnsafeHDF5Error):
        load_net(net_path, limits=limits)


def test_attribute_sizes_count(net_path):
    with h5py.File(net_path, "a") as handle:
        handle["layer/0"].attrs["big"] = np.zeros(2000)
    limits = HDF5Limits(ratio=0, floor_bytes=12_000, cap_bytes=12_000)
    with pytest.raises(UnsafeHDF5Error, match=r"HDF5 object '/layer/0@big': declares 16000 bytes \(shape "
                                              r"\(2000,\), float64\); limit 12000 bytes"):
        check_hdf5(net_path, limits)


@pytest.fixture
def nir_path(tmp_path):
    path = tmp_path / "digits.nir"
    export_model(DIGITS_MODEL, "nir", path)
    return path


def test_nir_external_link_and_size_are_refused(nir_path, tmp_path, secret):
    assert load_nir(nir_path).nodes
    with h5py.File(nir_path, "a") as handle:
        handle["node/nodes/stolen"] = h5py.ExternalLink(str(secret), "/")
    assert "HDF5 object '/node/nodes/stolen': external link" in refusal(nir_path)
    export_model(DIGITS_MODEL, "nir", nir_path)
    with h5py.File(nir_path, "a") as handle:
        handle.create_dataset("node/bomb", shape=(1 << 40,), dtype="u1", chunks=(1 << 16,))
    assert "HDF5 object '/node/bomb': declares 1099511627776 bytes" in refusal(nir_path)


# --------------------------------------------------------------------------------------------- ONNX

@pytest.fixture
def onnx_path(tmp_path):
    path = tmp_path / "digits.onnx"
    export_model(DIGITS_MODEL, "onnx", path)
    return path


def external_onnx(onnx_path, location: str):
    """The model with its weights in the external file ``location`` as the dynamo exporter writes them."""
    import onnx
    model = onnx.load(str(onnx_path))
    onnx.save(model, str(onnx_path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    model = onnx.load(str(onnx_path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(onnx_path))


def test_onnx_external_data_beside_the_model_is_read(onnx_path):
    from snnc.ir.printer import format_graph
    expected = format_graph(load_model(onnx_path))
    external_onnx(onnx_path, "weights.bin")
    assert format_graph(load_model(onnx_path)) == expected


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", ".hidden", "sub/weights.bin", "link.bin",
                                      "missing.bin"])
def test_onnx_external_data_elsewhere_is_refused(onnx_path, secret, location):
    (onnx_path.parent / "link.bin").symlink_to(secret)
    external_onnx(onnx_path, location)
    message = refusal(onnx_path)
    assert "field 'external_data.location': a regular file in the model's folder, named without a path, got " \
           f"{location!r}" in message


def test_onnx_external_data_range_is_checked(onnx_path):
    import onnx
    external_onnx(onnx_path, "weights.bin")
    model = onnx.load(str(onnx_path), load_external_data=False)
    tensor = model.graph.initializer[0]
    for entry in tensor.external_data:
        if entry.key == "offset":
            entry.value = str(1 << 40)
    onnx.save(model, str(onnx_path))
    assert "field 'external_data.offset/length': a range inside the" in refusal(onnx_path)


def test_onnx_declared_dims_are_bounded(onnx_path):
    import onnx
    model = onnx.load(str(onnx_path))
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1 << 31
    onnx.save(model, str(onnx_path))
    message = refusal(onnx_path)
    assert f"field 'shape': at most {1 << 24} elements (OnnxLimits), got 2147483648 from [2147483648]" \
        in message


def test_onnx_constant_folding_is_bounded(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    shape = helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("s", TensorProto.INT64, [2],
                                                                                  [1 << 20, 1 << 20]))
    big = helper.make_node("ConstantOfShape", ["shape"], ["big"], name="bomb")
    add = helper.make_node("Add", ["x", "big"], ["y"])
    graph = helper.make_graph([shape, big, add], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "fold.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with time_limit(20, "loading"), pytest.raises(OnnxError) as caught:
        load_model(path)
    assert f"a folded constant of at most {1 << 24} elements (OnnxLimits), got 1099511627776" in str(caught.value)


# ---------------------------------------------------------------------------------------- isolation

def test_a_parse_that_hangs_where_no_signal_reaches_is_stopped(tmp_path):
    """The child blocks SIGALRM (as HDF5's C code effectively does) and sleeps: the deadline still holds."""
    import signal
    import time

    from snnc.frontends.isolation import IsolationLimits, load_isolated

    def hang():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
    started = time.monotonic()
    with pytest.raises(ModelFileError, match=r"reading took longer than 1 s and was stopped \(a corrupt or "
                                             r"hostile file; IsolationLimits.seconds\)"):
        load_isolated(hang, tmp_path / "x.net", IsolationLimits(seconds=1))
    assert time.monotonic() - started < 10


def test_a_parse_that_allocates_too_much_is_stopped(tmp_path):
    from snnc.frontends.isolation import IsolationLimits, load_isolated

    def bomb():
        return np.ones(1 << 30)       # 8 GiB
    with pytest.raises(ModelFileError, match=r"reading needed more than 268435456 bytes of memory"):
        load_isolated(bomb, tmp_path / "x.nir", IsolationLimits(memory_bytes=256 << 20))


def test_typed_errors_cross_the_process_boundary_unchanged(net_path):
    from snnc.frontends.lava_dl_net import NetFileError
    with h5py.File(net_path, "a") as handle:
        del handle["layer/4/weight"]
        handle["layer/4/weight"] = np.zeros((4, 10)) + 0.5
    with pytest.raises(NetFileError) as isolated:
        load_net(net_path)
    with pytest.raises(NetFileError) as in_process:
        load_net(net_path, isolation=None)
    assert str(isolated.value) == str(in_process.value)
    assert (isolated.value.layer, isolated.value.field, isolated.value.path) == \
        (in_process.value.layer, in_process.value.field, in_process.value.path)


def test_a_bug_in_the_child_is_not_dressed_up_as_a_file_error(tmp_path):
    from snnc.frontends.isolation import load_isolated

    def bug():
        return {}["missing"]
    with pytest.raises(RuntimeError, match=r"failed in the parser process with exit code 4: KeyError: 'missing'"):
        load_isolated(bug, tmp_path / "x.net")


def test_a_reader_that_crashes_is_a_file_error(tmp_path):
    import os
    import signal

    from snnc.frontends.isolation import load_isolated
    with pytest.raises(ModelFileError, match=r"the file crashed its C reader \(SIGSEGV\); a corrupt or hostile file"):
        load_isolated(lambda: os.kill(os.getpid(), signal.SIGSEGV), tmp_path / "x.net")
