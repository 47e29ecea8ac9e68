"""The format registry: suffix lookup, option refusal, export names, and the CLI choices derived from it."""
from __future__ import annotations

import re

import numpy as np
import pytest

from snnc.compiler.cli import build_parser, main
from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.formats import FORMATS, export_format, export_names, exported_labels, readable_suffixes
from snnc.frontends.loader import load_model
from snnc.ir.graph import Graph
from snnc.ir.nodes import CubaLIF, Dense, Input
from snnc.ir.printer import format_graph


def tiny_graph() -> Graph:
    weight = np.array([[0.5, -0.25, 0.75], [0.125, 1.0, -0.5]])
    return Graph((Input("spikes_in", (3,)), Dense("fc", "spikes_in", weight),
                  CubaLIF("lif", ("fc",), (2,), current_decay=0.5, voltage_decay=0.25, threshold=0.75,
                          reset="zero")), ("lif",), dt_s=1e-3, name="tiny")


def test_unknown_suffix_lists_every_supported_suffix(tmp_path):
    odd = tmp_path / "model.XyZ"
    odd.write_text("hello")
    with pytest.raises(ModelFileError) as info:
        load_model(odd, reset="zero")
    assert str(info.value) == (
        f"file '{odd}': unsupported model format '.xyz'; supported: .pt (snnc torch bundle), .pth (snnc torch "
        "bundle), .snnc (snnc IR graph), .onnx (ONNX (single-step, Scan/Loop, snn domain)), .nir (NIR 1.0 "
        "(HDF5; needs --dt, --reset)), .net (lava-dl netx (HDF5))")


def test_options_a_format_stores_are_refused_naming_the_formats_that_take_them(tmp_path):
    path = tmp_path / "g.snnc"
    from snnc.ir.serialize import save_graph
    save_graph(tiny_graph(), path)
    with pytest.raises(ModelFileError) as info:
        load_model(path, dt_s=1e-4, comparison="ge")
    assert str(info.value) == (f"file '{path}': option(s) comparison, dt_s apply to ONNX and NIR files only; "
                               "'.snnc' files store them")
    with pytest.raises(ModelFileError) as info:
        load_model(path, tau=3)
    assert str(info.value) == f"file '{path}': unknown load option(s) tau"
    assert format_graph(load_model(path, dt_s=None)) == format_graph(tiny_graph())


@pytest.mark.parametrize("name", ["xyz", "pt", "snnc", ".nir", "NIR"])
def test_unknown_or_read_only_export_format_names_the_choices(name):
    with pytest.raises(SnncError) as info:
        export_format(name)
    assert str(info.value) == f"unknown export format '{name}': choose onnx, nir or net"


def test_cli_choices_and_help_come_from_the_registry():
    assert export_names() == ("onnx", "nir", "net")
    assert exported_labels() == "ONNX, NIR or lava-dl .net"
    assert readable_suffixes() == (".pt/.pth snnc torch bundle, .snnc snnc IR graph, .onnx ONNX, .nir NIR, "
                                   ".net lava-dl .net")
    export = build_parser()._subparsers._group_actions[0].choices["export"]
    fmt_action = next(a for a in export._actions if a.dest == "format")
    assert tuple(fmt_action.choices) == export_names()


def test_cli_export_refuses_a_read_only_format(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["export", "examples/digits/digits_snn.pt", "--format", "pt", "-o", str(tmp_path / "x")])
    assert "invalid choice: 'pt' (choose from 'onnx', 'nir', 'net')" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".onnx", ".nir"])
def test_each_float_exporter_reads_back_through_its_suffix(tmp_path, suffix):
    """Same nodes, weights and parameters (the ONNX frontend names a synapse after its neuron)."""
    path = tmp_path / f"tiny{suffix}"
    FORMATS[suffix].export(tiny_graph(), path)
    unnamed = lambda graph: [re.sub(r"%\w+", "%", line) for line in format_graph(graph).splitlines()[1:]]  # noqa: E731
    assert unnamed(load_model(path)) == unnamed(tiny_graph())


@pytest.mark.parametrize(("suffix", "label"), [(".onnx", "ONNX"), (".nir", "NIR")])
def test_float_exporters_refuse_a_neuron_family_they_cannot_write(tmp_path, suffix, label):
    """An Izhikevich group has no ONNX/NIR form here: a typed refusal, not an AttributeError/KeyError."""
    from test_spinnaker_izhikevich import izhikevich_graph
    with pytest.raises(UnsupportedError) as info:
        FORMATS[suffix].export(izhikevich_graph(), tmp_path / f"iz{suffix}")
    assert str(info.value) == (f"node 'iz' field 'type': limit one of Input, Flatten, Dense, Conv2d, SumPool2d, "
                               f"CubaLIF, LI ({label} export; keep the .snnc file for other neuron families), "
                               "got Izhikevich")
