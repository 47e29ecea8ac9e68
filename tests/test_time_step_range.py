"""Time steps outside [1 ns, 1000 s] are refused with the range, from the CLI, every frontend and the IR."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from snnc.compiler.cli import main
from snnc.errors import IRVerificationError, ModelFileError
from snnc.frontends.onnx_export import graph_to_onnx
from snnc.frontends.onnx_frontend import onnx_model_to_ir
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.ir.verify import verify


def small_graph(dt_s: float) -> Graph:
    return Graph((Input("x", (2,)), Dense("w", "x", np.eye(2)),
                  CubaLIF("n", ("w",), (2,), 1.0, 0.5, 1.0)), ("n",), dt_s=dt_s, name="tiny")


@pytest.mark.parametrize("dt", ["1e-300", "1e300", "0", "nan"])
def test_cli_dt_outside_the_range_is_refused_with_the_range(dt, tmp_path, capsys, digits_model_path):
    with pytest.raises(SystemExit) as info:
        main(["compile", str(digits_model_path), "-o", str(tmp_path / "out"), "--dt", dt])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"snnc compile: error: argument --dt: expected seconds in [1e-09, 1000.0], got {float(dt)!r}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("dt", [1e-300, 1e300, 1e-10, 1001.0])
def test_onnx_stored_and_option_dt_outside_the_range_are_refused(dt):
    model = graph_to_onnx(small_graph(1e-3))
    helper.set_model_props(model, {"snnc.dt_s": repr(dt)})
    with pytest.raises(ModelFileError) as info:
        onnx_model_to_ir(model, path="m.onnx")
    assert str(info.value) == (f"file 'm.onnx': node 'model' field 'metadata_props['snnc.dt_s']': expected seconds "
                               f"in [1e-09, 1000.0], got {dt!r}")
    with pytest.raises(ModelFileError) as info:
        onnx_model_to_ir(graph_to_onnx(small_graph(1e-3)), dt_s=dt, path="m.onnx")
    assert str(info.value) == f"file 'm.onnx': node 'model' field 'dt': expected seconds in [1e-09, 1000.0], got {dt!r}"


def test_range_ends_are_accepted():
    for dt in (1e-9, 1e3):
        assert verify(small_graph(dt)).dt_s == dt
        assert onnx_model_to_ir(graph_to_onnx(small_graph(1e-3)), dt_s=dt, path="m.onnx").dt_s == dt


@pytest.mark.parametrize("dt", [1e-300, 1e300, float("nan"), "1e-3", True])
def test_ir_verification_refuses_dt_outside_the_range(dt):
    with pytest.raises(IRVerificationError) as info:
        verify(small_graph(dt))
    assert str(info.value) == ("1 IR verification error(s) in graph 'tiny':\n"
                               f"  - node 'tiny' field 'dt_s': limit seconds in [1e-09, 1000.0], got {dt!r}")
