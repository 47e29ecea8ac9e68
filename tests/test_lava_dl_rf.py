"""lava-dl resonate-and-fire ``.net`` files (``RF_PHASE``, ``RF_IZHIKEVICH``): made with slayer's own
``rf.Dense`` / ``rf_iz.Dense`` blocks and their ``export_hdf5``, loaded by snnc and run in its emulator (both
engines) and its Lava backend (stock ``lava.proc.rf`` / ``lava.proc.rf_iz`` processes), equal to lava-dl netx
running the same file on Lava fixed_pt: spikes and the real / imag state of every layer at every step;
exact export round trip; typed refusals (netx's own limits, SpiNNaker)."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from snnc.arith import resonator
from snnc.compiler.slayer_agreement import layer_agreement
from snnc.backends.lava_loihi2.compat import import_lava
from snnc.backends.lava_loihi2.netx import neuron_names, run_netx
from snnc.backends.lava_loihi2.run import run_lava
from snnc.compiler.cli import main
from snnc.errors import SnncError, UnsupportedError
from snnc.frontends.lava_dl_net import load_net, save_net
from snnc.frontends.torch_trace import trace_module
from snnc.ir.graph import Graph
from snnc.ir.nodes import Input, LoihiDense, LoihiRF, LoihiRFIzhikevich
from snnc.ir.printer import format_graph
from snnc.ir.verify import verify
from snnc.simulators.loihi_emulator import run_loihi
from test_lava_dl_sdnn import assert_equal_to_netx

RF_PARAMS = ({"threshold": 0.4, "period": 7, "decay": 0.1}, {"threshold": 0.4, "period": 11, "decay": 0.05})


def slayer_rf_net(path, family: str, sizes: tuple[int, ...], seed: int, params=RF_PARAMS,
                  weight_gain: float = 1.0) -> None:
    """An input layer and slayer ``<family>.Dense`` blocks (family ``rf`` or ``rf_iz``), each exported with
    its own ``export_hdf5``, the way lava-dl's tutorials write a ``.net`` file; ``weight_gain`` != 1: the first
    block's real weights made non-negative, its imag weights non-positive, both scaled by it (a strong drive
    that does not cancel out; export clamps them to 8 bits)."""
    import_lava(dl=True)
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    block = getattr(slayer.block, family)
    blocks = [block.Dense(params[i % len(params)], n_in, n_out, weight_scale=2)
              for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
    if weight_gain != 1.0:
        with torch.no_grad():
            blocks[0].synapse.real.weight.abs_().mul_(weight_gain)
            blocks[0].synapse.imag.weight.abs_().mul_(-weight_gain).clamp_(min=-250 / 64)   # -256: Lava clips
    x = (torch.rand(1, sizes[0], 4) > 0.5).float()
    for b in blocks:     # one forward pass sets the blocks' shapes, as training would
        x = b(x)
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        group.create_dataset("0/type", (1,), "S10", [b"input"])
        group.create_dataset("0/shape", data=np.array([sizes[0]]))
        for index, b in enumerate(blocks):
            b.export_hdf5(group.create_group(str(index + 1)))


def spikes_in(seed: int, batch: int, steps: int, size: int, rate: float = 0.4) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, steps, size)) < rate).astype(np.uint8)


@pytest.fixture(scope="module")
def rf_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rf") / "rf.net"
    slayer_rf_net(path, "rf", (6, 8, 4), seed=0)
    return path


@pytest.fixture(scope="module")
def rf_iz_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rf_iz") / "rf_iz.net"
    slayer_rf_net(path, "rf_iz", (6, 8, 4), seed=0)
    return path


def test_slayer_rf_blocks_load_as_two_dense_synapses_into_a_resonator(rf_file, rf_iz_file):
    graph = load_net(rf_file)
    assert [type(n) for n in graph.nodes] == [Input, LoihiDense, LoihiDense, LoihiRF, LoihiDense, LoihiDense, LoihiRF]
    rf = graph.node("rf_1")
    assert rf.inputs == ("dense_1_real", "dense_1_imag")
    assert (rf.sin_decay, rf.cos_decay, rf.vth, rf.state_exp, rf.decay_bits) == (2882, 2298, 25, 6, 12)
    assert [graph.latency[n] for n in ("input", "rf_1", "rf_2")] == [0, 1, 2]
    # netx's float round trip of the words (period, alpha, then Lava's int32 truncation) loses one here
    assert resonator.lava_decay_words(2882, 2298) == (2881, 2298)
    assert [type(n) for n in load_net(rf_iz_file).nodes if n.ROLE == "neuron"] == [LoihiRFIzhikevich] * 2


def test_both_emulator_engines_agree_and_the_resonator_fires(rf_file, rf_iz_file):
    for path in (rf_file, rf_iz_file):
        graph = load_net(path)
        x = spikes_in(1, 2, 30, 6)
        step, layerwise = run_loihi(graph, x, engine="step"), run_loihi(graph, x, engine="layerwise")
        for name in neuron_names(graph):
            assert np.array_equal(step.spikes[name], layerwise.spikes[name]), name
            for var in ("real", "imag"):
                assert np.array_equal(step.states[name][var], layerwise.states[name][var]), (name, var)
            assert step.spikes[name].sum() > 0, name


def test_one_resonator_step_by_hand():
    """sin 2881, cos 2298, a_real = 3 at step 0 then nothing: the state rotates and decays (rtz shifts)."""
    real, imag = resonator.resonator_step(np.array([0]), np.array([0]), np.array([3]), np.array([-1]), 2881, 2298, 6, 12)
    assert (real[0], imag[0]) == (192, -64)
    real2, imag2 = resonator.resonator_step(real, imag, np.array([0]), np.array([0]), 2881, 2298, 6, 12)
    # re = rtz(2298*192 >> 12) - rtz(2881*-64 >> 12) = 107 + 45; im = rtz(2881*192 >> 12) + rtz(2298*-64 >> 12) = 135 - 35
    assert (real2[0], imag2[0]) == (152, 100)
    assert resonator.phase_spikes(real2, imag2, imag, 150).tolist() == [True]
    spikes, real3, imag3 = resonator.izhikevich_reset(real2, imag2, 100)
    assert spikes.tolist() == [True] and (real3[0], imag3[0]) == (0, 99)


@pytest.mark.lava
@pytest.mark.parametrize("which", ["rf", pytest.param("rf_iz", marks=pytest.mark.slow)])   # ~3.5 s each
def test_emulator_and_lava_backend_equal_netx_on_lava_fixed_pt(rf_file, rf_iz_file, which):
    path = rf_file if which == "rf" else rf_iz_file
    graph = load_net(path)
    x = spikes_in(1, 1, 20, 6)
    expected = run_netx(path, x[0])
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="step"))
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    assert sum(int(layer["s_out"].sum()) for layer in expected) > 0


SATURATING = ({"threshold": 0.3, "period": 2000, "decay": 0.001}, {"threshold": 0.6, "period": 13, "decay": 0.2})
SPIKING = ({"threshold": 0.3, "period": 5, "decay": 0.005}, {"threshold": 0.6, "period": 13, "decay": 0.2})


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("family", ["rf", "rf_iz"])
@pytest.mark.parametrize("regime", ["saturating", "spiking"])
def test_larger_resonator_nets_equal_netx(tmp_path, family, regime):
    """Several samples, many steps; "saturating": a slow, barely decaying resonator under a strong one-signed
    drive reaches Lava's 24-bit clip; "spiking": every layer fires."""
    path = tmp_path / f"{family}.net"
    saturating = regime == "saturating"
    inputs = 64 if saturating else 24
    slayer_rf_net(path, family, (inputs, 16, 6), seed=3, params=SATURATING if saturating else SPIKING,
                  weight_gain=16.0 if saturating else 1.0)
    graph = load_net(path)
    x = spikes_in(4, 2, 50, inputs, rate=0.9 if saturating else 0.7)
    emulated, stepped, lava = run_loihi(graph, x), run_loihi(graph, x, engine="step"), run_lava(graph, x)
    for sample in range(2):
        expected = run_netx(path, x[sample])
        for traces in (emulated, stepped, lava):
            assert_equal_to_netx(graph, expected, traces, sample)
    first = emulated.states[neuron_names(graph)[0]]
    if saturating:
        assert max(np.abs(first["real"]).max(), np.abs(first["imag"]).max()) == resonator.VOLTAGE_LIMIT
    else:
        assert all(emulated.spikes[name].sum() > 0 for name in neuron_names(graph))


def net_datasets(path) -> dict[str, list]:
    values = {}
    with h5py.File(path) as handle:
        def keep(name, item):
            if isinstance(item, h5py.Dataset):
                value = item[()]
                values[name] = value.tolist() if hasattr(value, "tolist") else value
        handle.visititems(keep)
    return values


def test_export_round_trip_is_exact(rf_file, rf_iz_file, tmp_path):
    for path in (rf_file, rf_iz_file):
        again = tmp_path / f"again_{path.name}"
        save_net(load_net(path), again)
        assert net_datasets(again) == net_datasets(path)     # every dataset slayer wrote, values equal
        assert format_graph(load_net(again)).splitlines()[1:] == format_graph(load_net(path)).splitlines()[1:]


def test_export_refuses_a_delayed_resonator_synapse(rf_file, tmp_path):
    graph = load_net(rf_file)
    nodes = tuple(dataclasses.replace(n, delay_steps=2) if n.name == "dense_1_imag" else n for n in graph.nodes)
    delayed = Graph(nodes, graph.outputs, timing=graph.timing, name=graph.name)
    with pytest.raises(UnsupportedError) as info:
        save_net(delayed, tmp_path / "x.net")
    assert str(info.value) == ("node 'dense_1_imag' field 'type': limit an undelayed LoihiDense (netx's "
                               "ComplexDense has no delays), got LoihiDense")


def test_cli_compiles_and_runs_a_resonator_net_and_spinnaker_refuses_it(rf_file, tmp_path, capsys):
    x = spikes_in(5, 2, 12, 6)
    np.savez(tmp_path / "x.npz", x=x)
    assert main(["compile", str(rf_file), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    assert main(["run", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz")]) == 0
    assert "output 'rf_2' spike counts" in capsys.readouterr().out
    assert main(["compile", str(rf_file), "--target", "spinnaker", "-o", str(tmp_path / "sp")]) != 0
    assert ("node 'rf_1' field 'type': sPyNNaker 7.4.1 has no resonate-and-fire cell (its neurons integrate one real "
            "current; none keeps the complex real/imag state of lava-dl's RF and RF_IZ): compile it with --target "
            "loihi2 (Lava RF / RF_IZ) or --target emulator: limit CubaLIF or Izhikevich (spiking), got LoihiRF"
            ) in capsys.readouterr().err


def _edit(source, path, layer: int, key: str, value) -> None:
    path.write_bytes(source.read_bytes())
    with h5py.File(path, "a") as handle:
        group = handle[f"layer/{layer}"]
        if key in group:
            del group[key]
        if value is not None:
            group.create_dataset(key, data=value)


UNSUPPORTED = "node '{path}: layer "
MALFORMED = "file '{path}': layer "


@pytest.mark.parametrize("layer, key, value, expected", [
    (1, "neuron/type", "ADRF_PHASE", UNSUPPORTED + "1' field 'neuron/type': netx 0.6 loads an ADRF neuron as a plain "
     "Lava RF/RF_IZ ('RF' in its type), dropping the adaptive threshold and refractory state slayer trained it with: "
     "limit RF_PHASE or RF_IZHIKEVICH, got ADRF_PHASE"),
    (1, "neuron/gradedSpike", True, UNSUPPORTED + "1' field 'neuron/gradedSpike': slayer's graded RF spike carries the "
     "real state, but netx 0.6 ignores gradedSpike and runs Lava's binary RF (train with binary spikes, or set "
     "gradedSpike False to deploy netx's binary RF): limit False (binary spikes), got True"),
    (1, "bias", np.zeros(8), UNSUPPORTED + "1' field 'bias': limit none on a resonator layer (netx 0.6's ComplexDense "
     "ignores it), got present"),
    (1, "delay", np.ones(8), UNSUPPORTED + "1' field 'delay': limit none on a resonator layer (netx 0.6's ComplexDense "
     "ignores it), got present"),
    (1, "neuron/sinDecay", 0, MALFORMED + "1 field 'neuron/sinDecay': expected an integer in [1, 4095], got 0"),
    (2, "neuron/cosDecay", 4096, MALFORMED + "2 field 'neuron/cosDecay': expected an integer in [0, 4095], got 4096"),
    (2, "neuron/vThMant", 1 << 17, MALFORMED + "2 field 'neuron/vThMant': expected an integer in [0, 131071], got 131072"),
    (1, "neuron/sinDecay", np.arange(1, 9), MALFORMED + "1 field 'neuron/sinDecay': expected one value per layer "
     "(Lava's RF holds one decay pair and threshold per process; slayer's shared_param=False is not loadable), "
     "got shape (8,)"),
    (1, "weight/imag", np.zeros((8, 6)), UNSUPPORTED + "1' field 'weight/imag': limit at least one non-zero weight "
     "(netx cannot load an all-zero matrix), got all zero"),
    (2, "weight/imag", np.ones((4, 7)), MALFORMED + "2 field 'weight/imag': expected shape (4, 8) (as weight/real), "
     "got (4, 7)"),
])
def test_what_netx_cannot_run_exactly_is_refused_by_field(rf_file, tmp_path, layer, key, value, expected):
    path = tmp_path / "edited.net"
    _edit(rf_file, path, layer, key, value)
    with pytest.raises(SnncError) as info:
        load_net(path)
    assert str(info.value) == expected.format(path=path)


def test_a_periodic_reset_is_refused_on_resonator_layers(rf_file):
    with pytest.raises(UnsupportedError) as info:
        load_net(rf_file, reset_interval=4)
    assert str(info.value) == (f"node '{rf_file}: layer 1' field 'reset_interval': limit none with resonator layers "
                               "(netx 0.6 silently skips the periodic reset on RF layers: Lava's RF and RF_IZ have no "
                               "reset), got 4")


@pytest.mark.parametrize("layer, key, value, block", [
    (2, "type", np.array([b"conv"], "S10"), "Conv"), (2, "type", np.array([b"dense_rec"], "S10"), "RecurrentDense"),
    (0, "neuron/type", "RF_PHASE", "Input")])
def test_a_resonator_outside_a_dense_layer_is_refused_naming_netx_block(rf_file, tmp_path, layer, key, value, block):
    path = tmp_path / "edited.net"
    _edit(rf_file, path, layer, key, value)
    with pytest.raises(UnsupportedError) as info:
        load_net(path)
    assert str(info.value) == (f"node '{path}: layer {layer}' field 'neuron/type': limit a resonator (RF) neuron on a dense "
                               "layer with weight/real and weight/imag only (netx 0.6 builds RF in ComplexDense "
                               f"blocks; its {block} block connects the neuron's a_in, which Lava's RF has not), "
                               "got RF_PHASE")


@pytest.mark.lava
@pytest.mark.slow
def test_cli_verify_compares_real_and_imag_with_lava(rf_iz_file, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", x=spikes_in(6, 2, 12, 6))
    assert main(["compile", str(rf_iz_file), "--target", "loihi2", "-o", str(tmp_path / "out")]) == 0
    assert main(["verify", str(tmp_path / "out"), "--input", str(tmp_path / "x.npz")]) == 0
    assert ("emulator vs Lava fixed_pt: identical spikes, real and imag at every step for every node"
            in capsys.readouterr().out)


# ------------------------------------------------------------------ slayer modules in the torch frontend

LOSSLESS = ({"threshold": 0.375, "period": 8, "decay": 0.1}, {"threshold": 0.375, "period": 16, "decay": 0.05})


def slayer_module(family: str, params, sizes=(12, 10, 6)):
    """A lava-dl style network: a ModuleList of ``<family>.Dense`` blocks looped over in forward; one forward
    pass sets the blocks' shapes."""
    import_lava(dl=True)
    import torch
    from lava.lib.dl import slayer

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.blocks = torch.nn.ModuleList([getattr(slayer.block, family).Dense(params[i], n_in, n_out, weight_scale=2)
                                               for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))])

        def forward(self, spike):
            for block in self.blocks:
                spike = block(spike)
            return spike

    net = Net().eval()
    example = torch.as_tensor(spikes_in(0, 1, 24, sizes[0]).transpose(0, 2, 1), dtype=torch.float32)
    net(example)
    return net, example


def test_a_slayer_rf_module_traces_to_the_graph_netx_builds_and_matches_its_forward(tmp_path):
    net, example = slayer_module("rf", LOSSLESS)
    graph = trace_module(net, example)
    exported = tmp_path / "rf.net"
    with h5py.File(exported, "w") as handle:
        handle.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        handle.create_dataset("layer/0/shape", data=np.array([12]))
        for index, block in enumerate(net.blocks):
            block.export_hdf5(handle.create_group(f"layer/{index + 1}"))
    assert format_graph(graph).splitlines()[1:] == format_graph(load_net(exported)).splitlines()[1:]
    ok, lines = layer_agreement(net, graph, spikes_in(3, 2, 24, 12))
    assert ok, lines
    assert lines[1:] == ["  blocks.0 (rf_1): equal (42 spikes)", "  blocks.1 (rf_2): equal (9 spikes)"]


def test_agreement_report_names_netx_decay_round_trip_where_slayer_and_deployment_differ():
    """slayer's forward computes with the exported decay words; netx hands Lava 2606 for the exported 2607
    (RF_IZ, period 8): the first block drifts and the report says why."""
    net, example = slayer_module("rf_iz", LOSSLESS)
    graph = trace_module(net, example)
    ok, lines = layer_agreement(net, graph, spikes_in(3, 2, 24, 12))
    assert not ok
    assert lines[1] == ("  blocks.0 (rf_iz_1): 2 of 480 spike values differ (99.6% agree), first at step 15; slayer "
                        "169 spikes, emulator 169 (netx deploys sin/cos decay words 2606/2607 for the exported "
                        "2607/2607: its float period/decay round trip truncates)")


def test_a_resonator_block_other_than_dense_is_refused_by_path():
    import torch
    from lava.lib.dl import slayer

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([slayer.block.rf.Conv(LOSSLESS[0], 1, 2, 3)])

        def forward(self, spike):
            for block in self.blocks:
                spike = block(spike)
            return spike

    with pytest.raises(UnsupportedError) as info:
        trace_module(Net(), torch.zeros(1, 1, 6, 6, 4))
    assert str(info.value) == ("node 'blocks.0' field 'type': limit Dense for resonator blocks (netx 0.6 builds RF "
                               "neurons only in ComplexDense layers), got slayer.block.rf.Conv")


def test_the_verifier_refuses_a_resonator_without_its_two_inputs(rf_file):
    graph = load_net(rf_file)
    nodes = tuple(dataclasses.replace(n, inputs=n.inputs[:1], sin_decay=0) if n.name == "rf_1" else n
                  for n in graph.nodes)
    with pytest.raises(SnncError) as info:
        verify(Graph(nodes, graph.outputs, timing=graph.timing, name=graph.name))
    message = str(info.value)
    assert "node 'rf_1' field 'inputs': limit two synapses (real, imag), got 1" in message
    assert "node 'rf_1' field 'sin_decay': limit an integer in [1, 4095], got 0" in message
