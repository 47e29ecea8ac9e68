"""lava-dl sigma-delta (SDNN) conv nets, PilotNet-shaped: slayer ``sigma_delta.Input -> Conv -> Conv ->
Flatten -> Dense -> Output`` exported with each block's own ``export_hdf5``, loaded by snnc and run in its
emulator (both engines) and its Lava backend, equal to lava-dl netx running the same file on Lava
fixed_pt: graded outputs and the sigma/act/residue state of every layer at every step; export round trip."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from snnc.backends.lava_loihi2.compat import import_lava
from snnc.backends.lava_loihi2.netx import run_netx
from snnc.backends.lava_loihi2.run import run_lava
from snnc.frontends.lava_dl_net import load_net, save_net
from snnc.ir.nodes import GradedInput, LoihiConv, LoihiDelta, LoihiSigma, LoihiSigmaDelta
from snnc.ir.printer import format_graph
from snnc.simulators.loihi_emulator import run_loihi
from slayer_chain import Chain
from test_lava_dl_sdnn import assert_equal_to_netx, graded_input

IN_SHAPE = (2, 7, 7)


def slayer_sdnn_conv_net(path, seed: int = 0, threshold: float = 0.1, in_shape=IN_SHAPE) -> None:
    """PilotNet SDNN's block kinds at toy size: Input, Conv (stride 2), Conv (padding 1), Flatten, Dense,
    Output, each exported with its own ``export_hdf5`` as lava-dl's PilotNet tutorial does."""
    import_lava(dl=True)
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    params = {"threshold": threshold, "activation": torch.nn.functional.relu}
    block = slayer.block.sigma_delta
    blocks = [block.Input(params),
              block.Conv(params, in_shape[0], 4, 3, stride=2, weight_scale=2),
              block.Conv(params, 4, 3, 3, padding=1, weight_scale=2),
              block.Flatten(),
              block.Dense(params, 27, 6, weight_scale=2),
              block.Output(params, 6, 3, weight_scale=2)]
    x = torch.rand(1, *in_shape, 4)
    for b in blocks:     # one forward pass sets the blocks' shapes, as training would
        x = b(x)
    Chain(blocks).export_hdf5(path)


def graded_images(rng, batch: int, steps: int, shape=IN_SHAPE) -> np.ndarray:
    """Integer pixel values (batch, steps, C, H, W) that drift and hold still."""
    return graded_input(rng, batch, steps, int(np.prod(shape))).reshape(batch, steps, *shape)


@pytest.fixture(scope="module")
def conv_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sdconv") / "sdnn_conv.net"
    slayer_sdnn_conv_net(path)
    with h5py.File(path, "a") as handle:    # a per-channel bias, the way netx reads it
        handle["layer/2"].create_dataset("bias", data=np.array([30, -20, 50]))
    return path


def test_slayer_sigma_delta_conv_blocks_load_as_conv_into_sigma_delta(conv_file):
    graph = load_net(conv_file)
    kinds = [type(n).__name__ for n in graph.nodes]
    assert kinds == ["GradedInput", "LoihiDelta", "LoihiConv", "LoihiSigmaDelta", "LoihiConv", "LoihiSigmaDelta",
                     "Flatten", "LoihiDense", "LoihiSigmaDelta", "LoihiDense", "LoihiSigma"]
    assert isinstance(graph.node("input"), GradedInput) and graph.node("input").shape == IN_SHAPE
    assert isinstance(graph.node("delta_0"), LoihiDelta) and graph.node("delta_0").shape == IN_SHAPE
    conv = graph.node("conv_1")
    assert isinstance(conv, LoihiConv) and conv.stride == (2, 2) and conv.source == "delta_0"
    assert graph.node("sigma_delta_1").shape == (4, 3, 3) and graph.node("sigma_delta_2").shape == (3, 3, 3)
    assert np.asarray(graph.node("sigma_delta_2").bias).reshape(3, 9)[:, 0].tolist() == [30, -20, 50]
    assert isinstance(graph.node("sigma_5"), LoihiSigma) and isinstance(graph.node("sigma_delta_4"), LoihiSigmaDelta)
    assert [graph.latency[n] for n in ("delta_0", "sigma_delta_1", "sigma_delta_2", "sigma_delta_4", "sigma_5")] \
        == [0, 1, 2, 3, 4]


@pytest.mark.lava
def test_emulator_and_lava_backend_equal_netx_on_a_sigma_delta_conv_net(conv_file):
    graph = load_net(conv_file)
    x = graded_images(np.random.default_rng(1), 1, 10)
    expected = run_netx(conv_file, x[0])
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    assert all(np.count_nonzero(emulated.spikes[n]) for n in ("sigma_delta_1", "sigma_delta_2", "sigma_5"))


def test_sigma_delta_conv_export_round_trip_is_exact(conv_file, tmp_path):
    graph = load_net(conv_file)
    save_net(graph, tmp_path / "again.net")
    again = load_net(tmp_path / "again.net")
    assert format_graph(again).splitlines()[1:] == format_graph(graph).splitlines()[1:]
    with h5py.File(tmp_path / "again.net") as handle:
        assert handle["layer/2/bias"][()].tolist() == [30, -20, 50]
        assert [handle[f"layer/{i}/type"][0] for i in range(6)] == [b"input", b"conv", b"conv", b"flatten",
                                                                    b"dense", b"dense"]
    x = graded_images(np.random.default_rng(2), 2, 8)
    a, b = run_loihi(graph, x), run_loihi(again, x)
    assert all(np.array_equal(a.spikes[n], b.spikes[n]) for n in a.spikes)


@pytest.mark.lava
@pytest.mark.slow
def test_netx_runs_the_exported_conv_file_as_snnc_does(conv_file, tmp_path):
    graph = load_net(conv_file)
    save_net(graph, tmp_path / "again.net")
    x = graded_images(np.random.default_rng(3), 1, 12)
    assert_equal_to_netx(graph, run_netx(tmp_path / "again.net", x[0]), run_loihi(graph, x))


@pytest.mark.lava
@pytest.mark.slow
def test_larger_sigma_delta_conv_net_equals_netx_over_many_steps(tmp_path):
    path = tmp_path / "larger.net"
    slayer_sdnn_conv_net(path, seed=5, threshold=0.05, in_shape=(3, 7, 7))
    graph = load_net(path)
    x = graded_images(np.random.default_rng(4), 2, 40, (3, 7, 7))
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    for sample in range(2):
        expected = run_netx(path, x[sample])
        assert_equal_to_netx(graph, expected, emulated, sample)
        assert_equal_to_netx(graph, expected, lava, sample)


@pytest.mark.lava
@pytest.mark.slow
def test_conv_sums_beyond_int32_become_what_lavas_cast_makes_of_them(conv_file):
    """Inputs at the limit: Delta sends up to 2^25 and conv_1's sums exceed int32; Lava's float64 sum is
    cast to int32 (-2^31 out of range) and wrapped to 24 bits: the emulator reproduces the states."""
    graph = load_net(conv_file)
    limit = (1 << 19) - 1
    x = np.where(np.random.default_rng(8).random((1, 12, *IN_SHAPE)) < 0.5, limit, -limit)
    emulated, lava = run_loihi(graph, x), run_lava(graph, x)
    assert np.any(np.abs(emulated.spikes["delta_0"]) >= 1 << 24)
    for name, states in emulated.states.items():
        assert np.array_equal(emulated.spikes[name], lava.spikes[name]), name
        for var, trace in states.items():
            assert np.array_equal(trace, lava.states[name][var]), (name, var)


def pilotnet_sdnn(path, seed: int = 0) -> None:
    """lava-dl's PilotNet SDNN tutorial network, block for block (Input, 4 Conv with MeanOnlyBatchNorm and
    weight norm, Flatten, 3 Dense, Output; 3 x 33 x 100 frames), its norm means set by training-mode
    forwards, exported with each block's export_hdf5 as the tutorial does."""
    import_lava(dl=True)
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    sdnn = {"threshold": 0.1, "tau_grad": 0.5, "scale_grad": 1, "requires_grad": True, "shared_param": True,
            "activation": torch.nn.functional.relu}
    cnn = {**sdnn, "norm": slayer.neuron.norm.MeanOnlyBatchNorm}
    dense = {**cnn, "dropout": slayer.neuron.Dropout(p=0.2)}
    b = slayer.block.sigma_delta
    blocks = [b.Input(sdnn),
              b.Conv(cnn, 3, 24, 3, padding=0, stride=2, weight_scale=2, weight_norm=True),
              b.Conv(cnn, 24, 36, 3, padding=0, stride=2, weight_scale=2, weight_norm=True),
              b.Conv(cnn, 36, 64, 3, padding=(1, 0), stride=(2, 1), weight_scale=2, weight_norm=True),
              b.Conv(cnn, 64, 64, 3, padding=0, stride=1, weight_scale=2, weight_norm=True),
              b.Flatten(),
              b.Dense(dense, 64 * 40, 100, weight_scale=2, weight_norm=True),
              b.Dense(dense, 100, 50, weight_scale=2, weight_norm=True),
              b.Dense(dense, 50, 10, weight_scale=2, weight_norm=True),
              b.Output(dense, 10, 1, weight_scale=2, weight_norm=True)]
    net = torch.nn.Sequential(*blocks)
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(2, 3, 33, 100, 4))
    net.eval()
    with h5py.File(path, "w") as handle:
        group = handle.create_group("layer")
        for index, block in enumerate(blocks):
            block.export_hdf5(group.create_group(str(index)))


@pytest.mark.lava
@pytest.mark.slow
def test_pilotnet_sdnn_equals_netx_on_lava_fixed_pt(tmp_path):
    path = tmp_path / "pilotnet_sdnn.net"
    pilotnet_sdnn(path)
    graph = load_net(path)
    assert [n.shape for n in graph.nodes if isinstance(n, LoihiSigmaDelta)][:4] == [
        (24, 16, 49), (36, 7, 24), (64, 4, 22), (64, 2, 20)]
    x = graded_images(np.random.default_rng(9), 1, 11, (3, 33, 100))   # 9 layers: output from step 9
    emulated = run_loihi(graph, x)
    assert_equal_to_netx(graph, run_netx(path, x[0]), emulated)
    assert np.count_nonzero(emulated.spikes["sigma_9"]) > 0


@pytest.mark.lava
def test_skip_layers_feeds_graded_messages_into_the_first_conv_as_netx_does(conv_file):
    """netx's skip_layers=1 (lava-dl's PilotNet SDNN deployment: the Delta encoder runs on the host): the
    input is the graded messages the dropped Delta would send, straight into the first Conv; emulator (both
    engines), snnc's Lava backend and netx equal in every state at every step."""
    graph = load_net(conv_file, skip_layers=1)
    assert [type(n).__name__ for n in graph.nodes[:3]] == ["GradedInput", "LoihiConv", "LoihiSigmaDelta"]
    assert graph.node("conv_1").source == "input" and graph.latency["sigma_delta_1"] == 1
    x = graded_images(np.random.default_rng(5), 1, 10) * 64    # messages at Delta's spike_exp scale
    expected = run_netx(conv_file, x[0], skip_layers=1)
    emulated = run_loihi(graph, x, engine="step")
    assert_equal_to_netx(graph, expected, emulated)
    assert_equal_to_netx(graph, expected, run_loihi(graph, x, engine="layerwise"))
    assert_equal_to_netx(graph, expected, run_lava(graph, x))
    assert all(np.count_nonzero(emulated.spikes[n]) for n in ("sigma_delta_1", "sigma_delta_2", "sigma_5"))
