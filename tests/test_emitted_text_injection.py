"""Names from model files never become code or forged lines in what snnc writes (issue 15, item 1).

A hostile name holds quotes, a triple quote, newlines, backslashes, braces and a terminal escape. It is fed
through every frontend that reads a name (torch bundle, ONNX, NIR, lava-dl .net: graph names and node
names) into every emitter (run_spinnaker.py, run_on_lava.py, ir.txt, report.json). Each emitted script
must compile and have exactly the AST of the same model compiled under a benign name, up to constants.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import py_compile

import numpy as np
import pytest

from conftest import DIGITS_MODEL
from snnc.backends.lava_loihi2.script import SCRIPT_NAME as LAVA_SCRIPT
from snnc.backends.spinnaker.script import SCRIPT_FILE as SPINNAKER_SCRIPT
from snnc.compiler.commands import IR_TEXT_FILE, REPORT_FILE, SOURCE_FILE, compile_model, export_model
from snnc.errors import IRVerificationError
from snnc.frontends.torch_bundle import load_bundle_module, save_bundle
from snnc.ir.names import is_safe_name, safe_name
from snnc.ir.serialize import load_graph, save_graph

PAYLOAD = 'x"""\nimport os; os.system("touch PWNED")  # \'\\{}\x1b[2J\n"""'
FILE_STEM = 'evil"""{}\\\'\nimport os'


class Normalize(ast.NodeTransformer):
    """Replace every constant by a placeholder: what remains is the module's code."""

    def visit_Constant(self, node):
        return ast.copy_location(ast.Constant(value="<constant>"), node)


def code_shape(path) -> str:
    py_compile.compile(str(path), doraise=True)
    return ast.dump(Normalize().visit(ast.parse(path.read_text())))


def assert_same_code(benign_dir, hostile_dir, script: str) -> None:
    assert code_shape(hostile_dir / script) == code_shape(benign_dir / script)


def assert_text_clean(out) -> None:
    """No emitted text carries the payload's line breaks, quotes or escape into its own structure."""
    text = (out / IR_TEXT_FILE).read_text()
    assert 'system("' not in text and '"""' not in text and "\x1b" not in text
    for line in text.splitlines()[1:-1]:
        assert line.startswith("  %"), line
    json.loads((out / REPORT_FILE).read_text())


@pytest.fixture(scope="module")
def digits():
    return load_bundle_module(DIGITS_MODEL)


def bundle_named(digits, folder, name: str):
    model, shape, _, dt = digits
    path = folder / "model.pt"
    save_bundle(model, shape, path, name=name, dt_s=dt)
    return path


@pytest.mark.parametrize("target,script", [("spinnaker", SPINNAKER_SCRIPT), ("loihi2", LAVA_SCRIPT)])
def test_hostile_bundle_name_leaves_scripts_unchanged(digits, tmp_path, target, script):
    benign, hostile = tmp_path / "benign", tmp_path / "hostile"
    benign.mkdir(), hostile.mkdir()
    compile_model(bundle_named(digits, benign, "digits"), target, benign / "out")
    compile_model(bundle_named(digits, hostile, PAYLOAD), target, hostile / "out")
    assert_same_code(benign / "out", hostile / "out", script)
    assert_text_clean(hostile / "out")
    graph = load_graph(hostile / "out" / SOURCE_FILE)
    assert graph.name == safe_name(PAYLOAD) == 'x____import_os__os.system__touch_PWNED____________2J____'
    assert graph.source_names == (("", PAYLOAD),)


def test_lava_script_is_the_template_for_any_model(digits, tmp_path):
    compile_model(bundle_named(digits, tmp_path, PAYLOAD), "loihi2", tmp_path / "out")
    from snnc.backends.lava_loihi2.script import _TEMPLATE
    assert (tmp_path / "out" / LAVA_SCRIPT).read_text() == _TEMPLATE.format(script=LAVA_SCRIPT)


def rename_onnx_values(model, prefix: str) -> None:
    """Prefix every value name of an ONNX graph (inputs, outputs, node outputs) with ``prefix``."""
    graph = model.graph
    names = {v.name for v in (*graph.input, *graph.output)} | {o for n in graph.node for o in n.output}
    names -= {i.name for i in graph.initializer}
    for value in (*graph.input, *graph.output):
        value.name = prefix + value.name
    for node in graph.node:
        node.name = prefix + node.name
        node.input[:] = [prefix + i if i in names else i for i in node.input]
        node.output[:] = [prefix + o for o in node.output]


def hostile_onnx(tmp_path):
    import onnx
    path = tmp_path / f"{FILE_STEM}.onnx"
    export_model(DIGITS_MODEL, "onnx", path)
    model = onnx.load(str(path))
    rename_onnx_values(model, PAYLOAD)
    for prop in model.metadata_props:
        if prop.key == "snnc.state_bindings":
            prop.value = ",".join(PAYLOAD + pair.replace("=", "=" + PAYLOAD) for pair in prop.value.split(","))
    onnx.save(model, str(path))
    return path


def hostile_nir(tmp_path):
    import nir
    path = tmp_path / f"{FILE_STEM}.nir"
    export_model(DIGITS_MODEL, "nir", path)
    graph = nir.read(path)
    nodes = {PAYLOAD + key: node for key, node in graph.nodes.items()}
    edges = [(PAYLOAD + a, PAYLOAD + b) for a, b in graph.edges]
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata))
    return path


def hostile_net(tmp_path):
    from test_lava_dl_net import conv_dense_layers, write_net
    path = tmp_path / f"{FILE_STEM}.net"
    write_net(path, conv_dense_layers(0))
    return path


@pytest.mark.parametrize("make_model", [hostile_onnx, hostile_nir, hostile_net])
def test_hostile_names_in_model_files_reach_no_emitter(tmp_path, make_model):
    path = make_model(tmp_path)
    for target, script in (("spinnaker", SPINNAKER_SCRIPT), ("loihi2", LAVA_SCRIPT)):
        if path.suffix == ".net" and target == "spinnaker":
            continue   # a .net graph is already Loihi-integer: not a SpiNNaker source
        out = tmp_path / f"out_{target}"
        compile_model(path, target, out)
        py_compile.compile(str(out / script), doraise=True)
        assert_text_clean(out)
        graph = load_graph(out / SOURCE_FILE)
        assert all(is_safe_name(n.name) for n in graph.nodes) and is_safe_name(graph.name)
        assert dict(graph.source_names)[""] == path.stem


def test_edited_artifact_with_a_hostile_name_is_refused(tmp_path):
    compile_model(DIGITS_MODEL, "emulator", tmp_path / "out")
    graph = load_graph(tmp_path / "out" / SOURCE_FILE)
    first = graph.nodes[0]
    hostile = dataclasses.replace(graph, name=PAYLOAD)
    save_graph(hostile, tmp_path / "hostile.snnc")
    with pytest.raises(IRVerificationError) as caught:
        load_graph(tmp_path / "hostile.snnc")
    message = str(caught.value)
    assert "\x1b" not in message and "\nimport" not in message
    assert "field 'name': limit ASCII letters, digits, '_', '.', '-'; 1 to 128 characters" in message
    renamed = graph.replace_nodes([dataclasses.replace(first, name="in put")] + list(graph.nodes[1:]))
    save_graph(renamed, tmp_path / "node.snnc")
    with pytest.raises(IRVerificationError, match=r"node 'in put'.*field 'name'|'in put'"):
        load_graph(tmp_path / "node.snnc")


def test_safe_name_rules():
    assert safe_name("digits_snn") == "digits_snn"
    assert safe_name("my-model.v2") == "my-model.v2"
    assert safe_name("ñet") == "_et"
    assert safe_name("") == "network" and safe_name('"""') == "network"
    assert len(safe_name("a" * 500)) == 128
    assert not is_safe_name("a b") and not is_safe_name("") and not is_safe_name(3)
    assert np.all([is_safe_name(c) for c in "aZ09_.-"])
