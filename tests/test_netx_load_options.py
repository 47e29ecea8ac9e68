"""netx ``hdf5.Network`` load options ``sparse_fc_layer``, ``spike_exp`` and ``input_shape``: each file
loaded with the option equals netx on Lava fixed_pt (built with the same option) in every state at every
step, in both emulator engines and snnc's Lava backend; the values netx or Lava cannot take are refused."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snnc.backends.lava_loihi2.compat import import_lava
from snnc.backends.lava_loihi2.netx import neuron_names, run_netx
from snnc.backends.lava_loihi2.run import run_lava
from snnc.compiler.cli import main
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import NetFileError, load_net
from snnc.frontends.loader import load_model
from snnc.ir.nodes import LoihiConv, LoihiDelta, LoihiSigmaDelta
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi
from test_lava_dl_net import (
    assert_matches_netx, assert_round_trip_needs_option, assert_same_traces, conv_dense_layers, recurrent_layers,
    write_net,
)
from test_lava_dl_rf import slayer_rf_net, spikes_in
from test_lava_dl_sdnn import add_bias, assert_equal_to_netx, graded_input, slayer_sdnn_net


def netx_synapses(path, **options) -> list[str]:
    """The Lava synapse classes netx builds, layer by layer (without running anything)."""
    import_lava(dl=True)
    from lava.lib.dl import netx
    net = netx.hdf5.Network(net_config=str(path), **options)
    return [type(getattr(layer, name)).__name__ for layer in net.layers
            for name in ("synapse", "synapse_rec", "real_synapse", "imag_synapse") if hasattr(layer, name)]


@pytest.fixture(scope="module")
def sdnn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sdnn_opts") / "sdnn.net"
    slayer_sdnn_net(path, (6, 8, 5, 3), seed=0)
    add_bias(path, 2, np.array([40, -30, 0, 90, -5]))
    return path


@pytest.fixture
def net_file(tmp_path):
    path = tmp_path / "convnet.net"
    write_net(path, conv_dense_layers(0))
    return path


# ------------------------------------------------------------------------------ sparse_fc_layer

def test_sparse_fc_layer_loads_the_same_graph(net_file, sdnn_file):
    """Lava's Sparse computes what Dense computes: the option changes no node."""
    for path in (net_file, sdnn_file):
        assert format_graph(load_net(path, sparse_fc_layer=True)) == format_graph(load_net(path))


@pytest.mark.lava
def test_sparse_fc_layer_equals_netx_with_lava_sparse_synapses(net_file, sdnn_file):
    """netx with sparse_fc_layer=True (DelaySparse / Sparse for the dense layers, Conv for the conv one)
    equals snnc's emulator (both engines) and Lava backend in s, u, v (CUBA) and s, sigma, act, residue
    (SDNN) at every step."""
    import_lava(dl=True)
    graph = load_net(net_file, sparse_fc_layer=True)
    steps = 14
    x = (np.random.default_rng(1).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(net_file, x[0], sparse_fc_layer=True), steps)
    assert netx_synapses(net_file, sparse_fc_layer=True) == ["Conv", "DelaySparse", "Sparse"]
    assert all(emulated.spikes[n].sum() > 0 for n in ("lif_1", "lif_3", "lif_4"))

    graph = load_net(sdnn_file, sparse_fc_layer=True)
    x = graded_input(np.random.default_rng(2), 1, 12, 6)
    expected = run_netx(sdnn_file, x[0], sparse_fc_layer=True)
    assert netx_synapses(sdnn_file, sparse_fc_layer=True) == ["Sparse", "Sparse", "Sparse"]
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert np.count_nonzero(emulated.spikes["sigma_3"]) > 0


@pytest.mark.lava
def test_sparse_fc_layer_on_recurrent_and_resonator_layers_equals_netx(tmp_path):
    """netx hands sparse_fc_layer to RecurrentDense (both synapses) and ComplexDense (real and imag) too."""
    import_lava(dl=True)
    rec = tmp_path / "rec.net"
    write_net(rec, recurrent_layers(11))
    graph = load_net(rec, sparse_fc_layer=True)
    x = (np.random.default_rng(1).random((1, 16, 12)) < 0.5).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_matches_netx(graph, emulated, run_netx(rec, x[0], sparse_fc_layer=True), 16)
    assert netx_synapses(rec, sparse_fc_layer=True)[:2] == ["Sparse", "Sparse"]
    assert emulated.spikes["lif_1"].sum() > 0

    resonator = tmp_path / "rf.net"
    slayer_rf_net(resonator, "rf", (6, 8, 4), seed=0)
    graph = load_net(resonator, sparse_fc_layer=True)
    x = spikes_in(2, 1, 16, 6)
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, run_netx(resonator, x[0], sparse_fc_layer=True), emulated)
    assert set(netx_synapses(resonator, sparse_fc_layer=True)) == {"Sparse"}
    assert sum(emulated.spikes[n].sum() for n in neuron_names(graph)) > 0


# ------------------------------------------------------------------------------------ spike_exp

def test_spike_exp_reaches_every_delta_and_sigma_delta(sdnn_file):
    graph = load_net(sdnn_file, spike_exp=3)
    exps = [(type(n).__name__, n.spike_exp, n.state_exp) for n in graph.nodes
            if isinstance(n, (LoihiDelta, LoihiSigmaDelta))]
    assert exps == [("LoihiDelta", 3, 6), ("LoihiSigmaDelta", 3, 6), ("LoihiSigmaDelta", 3, 6)]
    assert graph.inputs[0].bits == 23      # |x| < 2^22: x << 9 fits int32


@pytest.mark.lava
@pytest.mark.parametrize("spike_exp", [0, 3])
def test_spike_exp_equals_netx_on_lava_fixed_pt(sdnn_file, spike_exp):
    """netx's spike_exp scales the Delta input, vth and bias by 2^(spike_exp + 6): snnc's emulator (both
    engines) and Lava backend equal netx built with the same spike_exp, in every state, and differ from
    the default (the option acts)."""
    import_lava(dl=True)
    graph = load_net(sdnn_file, spike_exp=spike_exp)
    x = graded_input(np.random.default_rng(3), 1, 12, 6)
    expected = run_netx(sdnn_file, x[0], spike_exp=spike_exp)
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    assert np.count_nonzero(emulated.spikes["sigma_3"]) > 0
    default = run_loihi(load_net(sdnn_file), x, engine="step")
    assert not np.array_equal(default.states["delta_0"]["act"], emulated.states["delta_0"]["act"])


@pytest.mark.parametrize("spike_exp, expected", [
    (8, "node 'netx options' field 'spike_exp': limit 0 to 7 (Lava's Delta and SigmaDelta hold spike_exp in a "
        "3-bit Var; a negative one fails in their 1 << (spike_exp + state_exp)), got 8"),
    (-1, "got -1"),
])
def test_spike_exp_outside_lavas_var_is_refused(sdnn_file, spike_exp, expected):
    with pytest.raises(UnsupportedError) as info:
        load_net(sdnn_file, spike_exp=spike_exp)
    assert str(info.value).endswith(expected)


def test_a_threshold_that_overflows_at_the_chosen_spike_exp_is_refused(tmp_path, sdnn_file):
    path = tmp_path / "big.net"
    path.write_bytes(sdnn_file.read_bytes())
    with h5py.File(path, "a") as handle:
        del handle["layer/1/neuron/vThMant"]
        handle["layer/1/neuron/vThMant"] = 1 << 18
    assert load_net(path, spike_exp=6).node("sigma_delta_1").vth == 1 << 18
    with pytest.raises(NetFileError) as info:
        load_net(path, spike_exp=7)
    assert "layer 1 field 'neuron/vThMant': expected an integer in [0, 262143] (vth << 13 must fit Lava's " \
           "int32), got 262144" in str(info.value)


def test_a_spike_exp_round_trips_with_the_load_option(sdnn_file, tmp_path):
    """A .net file does not store spike_exp: export takes the option that gives it back on loading."""
    graph = load_net(sdnn_file, spike_exp=3)
    assert_round_trip_needs_option(graph, tmp_path / "x.net", {"spike_exp": 3}, (
        "node 'delta_0' field 'spike_exp': limit 6 (what netx loads with spike_exp=6: a .net file does not store "
        "it; pass that load option), got 3"))


def test_cli_takes_spike_exp_and_sparse_fc_layer(sdnn_file, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(sdnn_file), "--target", "loihi2", "--spike-exp", "3", "--sparse-fc-layer",
                 "-o", str(out)]) == 0
    lowered = load_model(out / "lowered.snnc")
    assert {n.spike_exp for n in lowered.nodes if isinstance(n, (LoihiDelta, LoihiSigmaDelta))} == {3}


# ---------------------------------------------------------------------------------- input_shape

@pytest.fixture
def conv_first_file(tmp_path):
    """conv_dense_layers without its input layer: netx needs input_shape (x, y, f) = (5, 6, 2)."""
    path = tmp_path / "conv_first.net"
    write_net(path, conv_dense_layers(0)[1:])
    return path


def test_a_conv_first_file_needs_input_shape(conv_first_file, net_file):
    with pytest.raises(SnncError) as info:
        load_net(conv_first_file)
    assert "layer 0 field 'type': expected 'conv' after an input layer or layer of shape (C, H, W), or first " \
           "with the input_shape option (netx's hdf5.Network(input_shape=...)), got no (C, H, W) input shape" \
           in str(info.value)
    graph = load_net(conv_first_file, input_shape=(5, 6, 2))
    with_input_layer = load_net(net_file)
    assert graph.inputs[0].shape == (2, 6, 5)
    assert [type(n).__name__ for n in graph.nodes] == [type(n).__name__ for n in with_input_layer.nodes]


@pytest.mark.lava
def test_input_shape_equals_netx_on_a_conv_first_file(conv_first_file):
    """netx's input_shape for a file without input layer: the network input feeds the first conv; netx,
    both emulator engines and snnc's Lava backend equal in s, u, v at every step."""
    import_lava(dl=True)
    graph = load_net(conv_first_file, input_shape=(5, 6, 2))
    steps = 12
    x = (np.random.default_rng(4).random((1, steps, 2, 6, 5)) < 0.4).astype(np.uint8)
    emulated = run_loihi(graph, x)
    assert_same_traces(emulated, run_loihi(graph, x, engine="step"))
    assert_same_traces(emulated, run_lava(graph, x))
    assert_matches_netx(graph, emulated, run_netx(conv_first_file, x[0], input_shape=(5, 6, 2)), steps)
    assert all(emulated.spikes[n.name].sum() > 0 for n in graph.nodes if n.ROLE == "neuron")


@pytest.mark.parametrize("input_shape, expected", [
    ((6, 5, 2), "layer 0 field 'shape': expected (3, 3, 7) (computed from the input and kernel), got (3, 4, 6)"),
    ((5, 6), "node 'netx options' field 'input_shape': limit three positive sizes (x, y, f) = (W, H, C), the "
             "input of a first conv layer, got (5, 6)"),
])
def test_a_wrong_input_shape_is_refused(conv_first_file, input_shape, expected):
    with pytest.raises(SnncError) as info:
        load_net(conv_first_file, input_shape=input_shape)
    assert expected in str(info.value)


def test_an_input_shape_netx_would_ignore_is_refused(net_file):
    with pytest.raises(UnsupportedError) as info:
        load_net(net_file, input_shape=(5, 6, 2))
    assert str(info.value) == ("node 'netx options' field 'input_shape': limit only for a file whose first layer "
                               "is conv or pool (netx ignores it where an input layer or a dense layer gives the "
                               "input shape), got (5, 6, 2)")


def test_cli_takes_input_shape(conv_first_file, tmp_path):
    out = tmp_path / "out"
    assert main(["compile", str(conv_first_file), "--target", "loihi2", "--input-shape", "5,6,2",
                 "-o", str(out)]) == 0
    lowered = load_model(out / "lowered.snnc")
    assert lowered.inputs[0].shape == (2, 6, 5)
    assert any(isinstance(n, LoihiConv) for n in lowered.nodes)
    with pytest.raises(SystemExit) as info:      # argparse's usage error
        main(["compile", str(conv_first_file), "--target", "loihi2", "--input-shape", "5,6", "-o", str(out)])
    assert info.value.code == 2


# ------------------------------------------------------------------------------- export with options

def test_cli_export_writes_with_the_load_options_and_names_them(sdnn_file, tmp_path, capsys):
    """A .net file does not store spike_exp: `snnc export` (from the file with the flag, or from a folder
    compiled with it) writes with the option, and says the file must be loaded with it; reloaded so, the
    graph and the emulator's traces are the compiled ones."""
    out = tmp_path / "out"
    assert main(["compile", str(sdnn_file), "--target", "loihi2", "--spike-exp", "3", "-o", str(out)]) == 0
    capsys.readouterr()
    for source, flags, written in ((out, [], tmp_path / "from_folder.net"),
                                   (sdnn_file, ["--spike-exp", "3"], tmp_path / "from_file.net")):
        assert main(["export", str(source), "--format", "net", *flags, "-o", str(written)]) == 0
        assert capsys.readouterr().out == (f"exported {source} as net -> {written} (load it with --spike-exp 3: "
                                           "the file does not store them)\n")
    lowered = load_model(out / "lowered.snnc")
    x = graded_input(np.random.default_rng(2), 2, 12, 6)
    emulated = run_loihi(lowered, x)
    assert np.count_nonzero(emulated.spikes["sigma_3"]) > 0
    for written in (tmp_path / "from_folder.net", tmp_path / "from_file.net"):
        again = load_net(written, spike_exp=3)
        assert format_graph(again).splitlines()[1:] == format_graph(lowered).splitlines()[1:]
        assert_same_traces(run_loihi(again, x), emulated)
    assert main(["compile", str(tmp_path / "from_file.net"), "--target", "loihi2", "--spike-exp", "3",
                 "-o", str(tmp_path / "again")]) == 0
    recompiled = load_model(tmp_path / "again" / "lowered.snnc")
    assert format_graph(recompiled).splitlines()[1:] == format_graph(lowered).splitlines()[1:]


def test_cli_export_of_a_reset_net_and_of_a_skip_layers_net(net_file, tmp_path, capsys):
    """--reset-interval/--reset-offset are written back as load options; after --skip-layers dropped the input
    conv layer the file holds the kept layers (no skip_layers to load it); a graded input's width is named."""
    cases = [(["--reset-interval", "4", "--reset-offset", "1"], "--reset-interval 4 --reset-offset 1",
              dict(reset_interval=4, reset_offset=1)),
             (["--skip-layers", "2", "--reset-interval", "3"], "--reset-interval 3", dict(reset_interval=3)),
             (["--input-message-bits", "6"], "--input-message-bits 6", dict(input_message_bits=6))]
    for index, (flags, named, reload) in enumerate(cases):
        out, written = tmp_path / f"out{index}", tmp_path / f"back{index}.net"
        assert main(["compile", str(net_file), "--target", "loihi2", *flags, "-o", str(out)]) == 0
        capsys.readouterr()
        assert main(["export", str(out), "--format", "net", "-o", str(written)]) == 0
        assert capsys.readouterr().out == \
            f"exported {out} as net -> {written} (load it with {named}: the file does not store them)\n"
        lowered = load_model(out / "lowered.snnc")
        again = load_net(written, **reload)
        assert same_graph_but_layer_numbers(again, lowered)
        inp = lowered.inputs[0]
        rng = np.random.default_rng(index)
        x = rng.integers(-31, 32, (1, 12, *inp.shape)) if "input_message_bits" in reload \
            else (rng.random((1, 12, *inp.shape)) < 0.4).astype(np.uint8)
        expected, actual = run_loihi(lowered, x), run_loihi(again, x)
        for name, other in zip(neuron_names(lowered), neuron_names(again), strict=True):
            assert np.array_equal(actual.spikes[other], expected.spikes[name])
            assert actual.states[other].keys() == expected.states[name].keys()
            assert all(np.array_equal(actual.states[other][k], v) for k, v in expected.states[name].items())
        assert expected.spikes[lowered.outputs[0]].sum() > 0


def same_graph_but_layer_numbers(graph, other) -> bool:
    """The IR text equal once node names lose their layer numbers (the file after skip_layers counts from 0)."""
    import re
    strip = lambda g: [re.sub(r"_\d+\b", "_N", line) for line in format_graph(g).splitlines()[1:]]  # noqa: E731
    return strip(graph) == strip(other)


def test_cli_export_of_a_folder_refuses_load_flags(sdnn_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compile", str(sdnn_file), "--target", "loihi2", "--spike-exp", "3", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "--format", "net", "--spike-exp", "2", "-o", str(tmp_path / "x.net")]) == 2
    assert capsys.readouterr().err == (
        f"error: node '{out}' field 'spike_exp': limit none for a compiled folder (its graph was loaded with the "
        "options its compile recorded, which export uses; recompile to change them), got 2\n")
    assert not (tmp_path / "x.net").exists()
