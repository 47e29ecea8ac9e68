"""Issue 12 acceptance: whole models written with the peer libraries' own APIs (snnTorch 1.0.0, SpikingJelly
2.0.0, Norse 1.1.0), each reached through every route its library offers - the torch module (snnc's tracer), ONNX (the
unrolled time-loop export, torch.onnx's legacy and dynamo exporters) and NIR (the library's own
``export_to_nir``) - and compiled for emulator, loihi2 and spinnaker. Backs the README table "Peer models
(issue 12)": one row per (model, route), each cell asserted here (``ROWS``;
``test_readme_table_is_the_asserted_rows`` checks the README holds exactly these lines).

Cells:
* float: snnc's float IR equals the library's own forward spike for spike (float64; torch route: every
  neuron layer, by module path; ONNX/NIR: the output layer) and no membrane lies within 1e-9 of its
  threshold (see ``test_torch_trace``); or the route's refusal, asserted by text; or "not exported" where
  the library's own exporter raises (asserted: the exception type).
* emulator / loihi2: the Loihi integer emulator of the compiled net vs the float IR, share of equal output
  spike slots (8-bit weights), asserted to 0.1 %; or the refusal.
* spinnaker: the s16.15 emulator of the sPyNNaker cells equals the float IR in every neuron layer; or the
  refusal, asserted by text naming what to change.
* Lava: the loihi2 net in real Lava fixed_pt equals the emulator (spikes, u and v at every step):
  ``-m "slow and lava"`` for every row, ``LAVA_DEFAULT`` in the default suite.

Models are small (8x8 inputs, 12 steps, 2 samples), seeded, with small non-negative biases: a negative
bias that reaches the threshold during a layer's input-free pipeline warm-up has no exact Loihi or
IF_curr_exp mapping (field 'v_init').
"""
from __future__ import annotations

import contextlib
import functools
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from conftest import random_spikes
from snnc.api import load
from snnc.compiler.pipeline import compile_graph
from snnc.errors import SnncError
from snnc.frontends.onnx_frontend import load_onnx
from snnc.frontends.torch_trace import trace_module
from snnc.ir.nodes import CubaLIF
from snnc.simulators.aligned import run_on_ir_grid
from snnc.simulators.float_reference import run_float
from snnc.simulators.spinnaker_emulator import run_spinnaker
from snnc.simulators.traces import first_divergence
from test_torch_trace import MARGIN, peer_spikes

warnings.filterwarnings("ignore")
README = Path(__file__).resolve().parents[1] / "README.md"
SCRATCH = Path(tempfile.mkdtemp(prefix="snnc-peer-models-"))
STEPS, SAMPLES, EXPORT_STEPS = 12, 2, 4
TARGETS = ("emulator", "loihi2", "spinnaker")


# ------------------------------------------------------------------------------------------------ models

def small_biases_and_batch_norm(model: nn.Module, seed: int) -> nn.Module:
    """Seeded BatchNorm running statistics and affine parameters, and small non-negative biases."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_((torch.rand(m.num_features, generator=gen) - 0.5) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) * 0.1)
            elif isinstance(m, (nn.Linear, nn.Conv2d)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.05)
    return model


def scaled(model: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(factor)
    return model


class Tutorial5(nn.Module):
    """snnTorch tutorial 5: explicit membranes, the forward loops over time, stacks spikes and membranes."""

    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(64, 16), snn.Leaky(beta=0.9, threshold=0.5)
        self.fc2, self.lif2 = nn.Linear(16, 10), snn.Leaky(beta=0.8, threshold=0.5)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def leaky(size: int, reset: str = "subtract", **extra) -> nn.Module:
    """snnTorch Leaky with per-neuron tensors (snnTorch's NIR exporter needs them to know the layer size)."""
    return snn.Leaky(beta=torch.full((size,), 0.9), threshold=torch.full((size,), 0.5), init_hidden=True,
                     reset_mechanism=reset, **extra)


def tutorial6_published() -> nn.Module:
    """snnTorch tutorial 6 as published: MaxPool2d of conv currents, then the neuron."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True),
                         nn.Flatten(), nn.Linear(4 * 3 * 3, 10),
                         snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=True))


def tutorial6_csnn() -> nn.Module:
    """Tutorial 6's CSNN with MaxPool2d after the neuron (pooling spikes), reset to zero."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True,
                                                       reset_mechanism="zero"), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 2), snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True,
                                                       reset_mechanism="zero"),
                         nn.Flatten(), nn.Linear(6 * 2 * 2, 10),
                         snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, output=True, reset_mechanism="zero"))


def leaky_mlp() -> nn.Module:
    """The init_hidden Leaky MLP of snnTorch's NIR export docs (per-neuron tensors), default subtract reset."""
    return nn.Sequential(nn.Linear(64, 16), leaky(16), nn.Linear(16, 10), leaky(10, output=True))


def init_hidden_mixed(reset: str = "subtract") -> nn.Module:
    """An init_hidden Sequential of Synaptic, RLeaky (all-to-all recurrence) and Leaky."""
    common = dict(threshold=0.5, init_hidden=True, reset_mechanism=reset)
    return nn.Sequential(
        nn.Linear(64, 16, bias=False), snn.Synaptic(alpha=0.7, beta=0.85, **common),
        nn.Linear(16, 12), snn.RLeaky(beta=0.8, linear_features=12, **common),
        nn.Linear(12, 10), snn.Leaky(beta=0.9, output=True, **common))


class Residual(nn.Module):
    """Conv (padding='same') + BatchNorm2d + Dropout, and a residual block whose 1x1-conv shortcut from the
    input is summed with the main path into one neuron group; reset to zero."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4)
        self.lif1, self.drop = snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, reset_mechanism="zero"), \
            nn.Dropout(0.5)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.shortcut = nn.Sequential(nn.Conv2d(1, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.lif2 = snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True, reset_mechanism="zero")
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.lif3 = snn.Leaky(beta=0.9, threshold=0.5, init_hidden=True, reset_mechanism="zero")

    def forward(self, x):
        spk1 = self.drop(self.lif1(self.bn1(self.conv1(x))))
        spk2 = self.lif2(self.bn2(self.conv2(spk1)) + self.shortcut(x))
        return self.lif3(self.fc(spk2.flatten(1)))


def batchnorm_mlp() -> nn.Module:
    """Linear + BatchNorm1d + Leaky twice, reset to zero."""
    return nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), leaky(16, "zero"),
                         nn.Linear(16, 10), nn.BatchNorm1d(10), leaky(10, "zero", output=True))


def sj_conv_bn_maxpool(step_mode: str) -> nn.Module:
    """SpikingJelly conv net: Conv2d + BatchNorm2d + LIFNode + MaxPool2d twice, then Linear + LIFNode."""
    net = nn.Sequential(
        layer.Conv2d(1, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.LIFNode(tau=2.0, v_threshold=0.5),
        layer.MaxPool2d(2),
        layer.Conv2d(4, 6, 3, padding=1), layer.BatchNorm2d(6), neuron.LIFNode(tau=2.0, v_threshold=0.5),
        layer.MaxPool2d(2), layer.Flatten(), layer.Linear(6 * 2 * 2, 10), neuron.LIFNode(tau=2.0, v_threshold=0.5))
    functional.set_step_mode(net, step_mode)
    return scaled(net, 3.0)


class SEWBlock(nn.Module):
    """SEW-ResNet basic block with ADD: sn2(bn2(conv2(sn1(bn1(conv1(x)))))) + x, x spikes."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                             nn.BatchNorm2d(channels))
        self.sn1 = neuron.IFNode(v_threshold=0.6, step_mode="m")
        self.conv2 = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                             nn.BatchNorm2d(channels))
        self.sn2 = neuron.IFNode(v_threshold=0.6, step_mode="m")

    def forward(self, x):
        return self.sn2(self.conv2(self.sn1(self.conv1(x)))) + x


def sew_resnet() -> nn.Module:
    """A small multi-step SEW-ResNet: stem, one ADD block, a strided conv, a linear readout layer."""
    return nn.Sequential(
        layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)),
        neuron.IFNode(v_threshold=0.6, step_mode="m"), SEWBlock(4),
        layer.SeqToANNContainer(nn.Conv2d(4, 4, 3, stride=2), nn.BatchNorm2d(4)),
        neuron.IFNode(v_threshold=0.6, step_mode="m"), layer.Flatten(step_mode="m"),
        layer.Linear(4 * 3 * 3, 10, step_mode="m"), neuron.IFNode(v_threshold=0.6, step_mode="m"))


def sj_mlp() -> nn.Module:
    """SpikingJelly multi-step MLP: LIFNode and IFNode, hard reset."""
    net = nn.Sequential(layer.Linear(64, 16), neuron.LIFNode(tau=2.0, v_threshold=0.5), layer.Linear(16, 10),
                        neuron.IFNode(v_threshold=0.5))
    functional.set_step_mode(net, "m")
    return net


def sj_plif_avgpool() -> nn.Module:
    """SpikingJelly single-step conv net with ParametricLIFNode and AvgPool2d (pooling before the neuron)."""
    net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.5),
                        layer.Conv2d(4, 6, 3, padding=1), layer.AvgPool2d(2),
                        neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.5),
                        layer.Flatten(), layer.Linear(6 * 4 * 4, 10), neuron.LIFNode(tau=2.0, v_threshold=0.5))
    return scaled(net, 8.0)


@dataclass(frozen=True)
class PeerModel:
    """How a model is built and run by its library: ``call`` as in ``test_torch_trace.peer_spikes``
    ("loop": forward over x[t]; "step": one call per step; "sequence": SpikingJelly multi-step)."""

    library: str
    what: str
    build: object
    call: str
    shape: tuple


MODELS = {
    "snntorch-tutorial5": PeerModel("snnTorch", "tutorial 5: custom module, time loop in forward, Leaky (subtract)",
                                    Tutorial5, "loop", (64,)),
    "snntorch-tutorial6-published": PeerModel("snnTorch", "tutorial 6 as published: Conv, MaxPool2d of currents, "
                                              "Leaky", tutorial6_published, "step", (1, 8, 8)),
    "snntorch-tutorial6-csnn": PeerModel("snnTorch", "tutorial 6 CSNN, MaxPool2d after the neuron, init_hidden, "
                                         "reset zero", tutorial6_csnn, "step", (1, 8, 8)),
    "snntorch-leaky-mlp": PeerModel("snnTorch", "init_hidden Sequential of Leaky (per-neuron tensors, subtract)",
                                    leaky_mlp, "step", (64,)),
    "snntorch-init-hidden-mixed": PeerModel("snnTorch", "init_hidden Sequential: Synaptic, RLeaky (all-to-all), "
                                            "Leaky (subtract)", init_hidden_mixed, "step", (64,)),
    "snntorch-init-hidden-zero": PeerModel("snnTorch", "the same Sequential with reset_mechanism='zero'",
                                           lambda: init_hidden_mixed("zero"), "step", (64,)),
    "snntorch-residual": PeerModel("snnTorch", "residual block (1x1 shortcut from the input), BatchNorm2d, Dropout, "
                                   "padding='same', reset zero", Residual, "step", (1, 8, 8)),
    "snntorch-batchnorm": PeerModel("snnTorch", "Linear + BatchNorm1d + Leaky x2, reset zero", batchnorm_mlp, "step",
                                    (64,)),
    "spikingjelly-conv-bn-maxpool-s": PeerModel("SpikingJelly", "Conv2d + BatchNorm2d + LIFNode + MaxPool2d x2, "
                                                "single-step", lambda: sj_conv_bn_maxpool("s"), "step", (1, 8, 8)),
    "spikingjelly-conv-bn-maxpool-m": PeerModel("SpikingJelly", "the same net, multi-step",
                                                lambda: sj_conv_bn_maxpool("m"), "sequence", (1, 8, 8)),
    "spikingjelly-sew-resnet": PeerModel("SpikingJelly", "SEW-ResNet (ADD block, IFNode), multi-step", sew_resnet,
                                         "sequence", (1, 8, 8)),
    "spikingjelly-mlp-m": PeerModel("SpikingJelly", "Linear + LIFNode + Linear + IFNode, multi-step", sj_mlp,
                                    "sequence", (64,)),
    "spikingjelly-plif-avgpool": PeerModel("SpikingJelly", "Conv2d + ParametricLIFNode, AvgPool2d, single-step",
                                           sj_plif_avgpool, "step", (1, 8, 8)),
    "norse-digits": PeerModel("Norse", "custom module, time loop over SequentialState(Linear, LIFCell, Linear, "
                              "LIFCell), fitted digits weights", lambda: norse_digits(), "loop", (64,)),
}


@functools.lru_cache(maxsize=None)
def _norse_digits_weights() -> dict:
    from test_norse_models import norse_digits_model
    return norse_digits_model()[0].state_dict()


def norse_digits() -> nn.Module:
    """Norse's digits network of tests/test_norse_models.py (no biases: a bias into a LIFCell current has no
    target form), built once and copied."""
    from test_norse_models import NorseDigitsNet
    model = NorseDigitsNet()
    model.load_state_dict(_norse_digits_weights())
    return model


def fresh(name: str) -> nn.Module:
    """Model ``name`` built from seed 0 (a fresh copy: the peer run converts it to float64)."""
    torch.manual_seed(0)
    return small_biases_and_batch_norm(MODELS[name].build(), 0).eval()


@functools.lru_cache(maxsize=None)
def inputs(name: str) -> np.ndarray:
    return random_spikes(1, (SAMPLES, STEPS, *MODELS[name].shape), 0.4)


@functools.lru_cache(maxsize=None)
def library_spikes(name: str) -> dict[str, np.ndarray]:
    """The library's own forward on ``inputs(name)``: every neuron module's spikes by module path."""
    return peer_spikes(fresh(name), inputs(name), MODELS[name].call)


# ------------------------------------------------------------------------------------------------ routes

class PerStep(nn.Module):
    """How an init_hidden / single-step model is exported over time: reset, one call per x[t], stacked."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        for m in self.net.modules():
            if hasattr(m, "reset_mem"):
                m.reset_mem()
        functional.reset_net(self.net)
        out = []
        for t in range(x.shape[0]):
            y = self.net(x[t])
            out.append(y[0] if isinstance(y, tuple) else y)
        return torch.stack(out, dim=0)


class ResetEachCall(nn.Module):
    """SpikingJelly multi-step forward from a reset state (functional.reset_net), as the export sees it."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        functional.reset_net(self.net)
        return self.net(x)


def exported_onnx(name: str, dynamo: bool) -> Path:
    """The model's forward over EXPORT_STEPS steps, exported unrolled by torch.onnx."""
    spec, model = MODELS[name], fresh(name)
    module = model if spec.call == "loop" else ResetEachCall(model) if spec.call == "sequence" else PerStep(model)
    path = SCRATCH / f"{name}-{'dynamo' if dynamo else 'legacy'}.onnx"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module.eval(), (torch.zeros(EXPORT_STEPS, 1, *spec.shape),), str(path), dynamo=dynamo,
                          opset_version=18 if dynamo else 17)
    return path


# NIR stores no reset kind: the user passes the one the library used (snnTorch subtract/zero, SpikingJelly
# hard reset = zero, its comparison >=; Norse's LIFCell resets to v_reset = 0), and the library's time step
# (snnTorch/SpikingJelly 1e-4; Norse's dt 1e-3, with --producer norse for its tau = dt / tau_inv convention).
NIR_OPTIONS = {"snnTorch": dict(dt_s=1e-4, reset="subtract"),
               "SpikingJelly": dict(dt_s=1e-4, reset="zero", comparison="ge"),
               "Norse": dict(dt_s=1e-3, reset="zero", producer="norse")}


def exported_nir(name: str) -> Path:
    """The library's own ``export_to_nir`` of the model (single-step form), written to a file."""
    import nir
    spec, model = MODELS[name], fresh(name)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if spec.library == "snnTorch":
            from snntorch.export_nir import export_to_nir
            graph = export_to_nir(model, torch.zeros(1, *spec.shape), ignore_dims=[0])
        elif spec.library == "Norse":
            import norse.torch as norse
            from test_norse_models import numpy_graph
            graph = numpy_graph(norse.to_nir(model.net, torch.zeros(1, *spec.shape)))
        else:
            from spikingjelly.activation_based.nir_exchange import export_to_nir
            functional.set_step_mode(model, "s")
            graph = export_to_nir(model, torch.zeros(1, *spec.shape))
    path = SCRATCH / f"{name}.nir"
    nir.write(path, graph)
    return path


@functools.lru_cache(maxsize=None)
def float_graph(name: str, route: str):
    """snnc's float IR of the model through ``route``; the export or import error is raised."""
    spec = MODELS[name]
    if route == "torch":
        lead = (STEPS, 1) if spec.call in ("loop", "sequence") else (1,)
        return trace_module(fresh(name), torch.zeros(*lead, *spec.shape))
    if route.startswith("onnx"):
        return load_onnx(exported_onnx(name, dynamo=route == "onnx-dynamo"))
    return load(exported_nir(name), **NIR_OPTIONS[spec.library])


@functools.lru_cache(maxsize=None)
def compiled(name: str, route: str, target: str):
    return compile_graph(float_graph(name, route), target).graph


# ------------------------------------------------------------------------------------------------ the table

@dataclass(frozen=True)
class Row:
    """One README row: the cells each test asserts (see the module docstring)."""

    model: str
    route: str
    float: str
    emulator: str
    loihi2: str
    spinnaker: str
    lava: str
    slow: bool = False


# A refusal cell "refused: KEY" prints REFUSALS[KEY][0] in the README; the test asserts REFUSALS[KEY][1] is in
# the error message. "not exported: TYPE" asserts the library's own exporter raises TYPE.
REFUSALS = {
    "maxpool-of-currents": ("MaxPool2d of currents has no exact spiking unit: move it after the neuron "
                            "(or use AvgPool2d)",
                            "limit spikes of one neuron layer (a max of 0/1 spikes is an OR; the max of real-valued "
                            "currents is computed exactly by no spiking unit: move MaxPool2d after the neuron layer, "
                            "or use AvgPool2d), got a synaptic current or a sum"),
    "subtract-reset": ("IF_curr_exp has no subtract reset: retrain with reset_mechanism='zero' (or use loihi2)",
                       "field 'reset': spinnaker neurons set v to v_reset when they spike (IF_curr_exp; "
                       "'zero_next' holds it there one refractory tick): retrain with snnTorch "
                       "reset_mechanism='zero' or SpikingJelly v_reset=0.0, or compile for loihi2 or emulator"),
    "no-leak": ("IFNode has no leak, IF_curr_exp needs one (use LIFNode, or loihi2)",
                "field 'voltage_decay': IF_curr_exp scales its input by (1 - exp(-dt/tau_m)): it cannot integrate "
                "without leak: limit > 0, got 0.0"),
}

EXACT, LAVA = "exact", "exact"
NONE = "-"


def refused(key: str) -> str:
    return f"refused: {key}"


SJ_SPINNAKER_NO_LEAK = refused("no-leak")
ROWS = [
    # snnTorch
    Row("snntorch-tutorial5", "torch", EXACT, "99.2 %", "99.2 %", refused("subtract-reset"), LAVA),
    Row("snntorch-tutorial5", "onnx-legacy", EXACT, "99.2 %", "99.2 %", refused("subtract-reset"), LAVA),
    Row("snntorch-tutorial5", "onnx-dynamo", EXACT, "99.2 %", "99.2 %", refused("subtract-reset"), LAVA, slow=True),
    Row("snntorch-tutorial5", "nir", "not exported: ValueError", NONE, NONE, NONE, NONE),
    Row("snntorch-tutorial6-published", "torch", refused("maxpool-of-currents"), NONE, NONE, NONE, NONE),
    Row("snntorch-tutorial6-published", "onnx-legacy", refused("maxpool-of-currents"), NONE, NONE, NONE, NONE),
    Row("snntorch-tutorial6-csnn", "torch", EXACT, "100.0 %", "100.0 %", EXACT, LAVA),
    Row("snntorch-tutorial6-csnn", "onnx-legacy", EXACT, "100.0 %", "100.0 %", EXACT, LAVA),
    Row("snntorch-tutorial6-csnn", "onnx-dynamo", EXACT, "100.0 %", "100.0 %", EXACT, LAVA, slow=True),
    Row("snntorch-tutorial6-csnn", "nir", "not exported: ValueError", NONE, NONE, NONE, NONE),
    Row("snntorch-leaky-mlp", "torch", EXACT, "97.9 %", "97.9 %", refused("subtract-reset"), LAVA),
    Row("snntorch-leaky-mlp", "onnx-legacy", EXACT, "97.9 %", "97.9 %", refused("subtract-reset"), LAVA),
    Row("snntorch-leaky-mlp", "nir", EXACT, "97.9 %", "97.9 %", refused("subtract-reset"), LAVA),
    Row("snntorch-init-hidden-mixed", "torch", EXACT, "89.6 %", "89.6 %", refused("subtract-reset"), LAVA),
    Row("snntorch-init-hidden-mixed", "onnx-legacy", EXACT, "89.6 %", "89.6 %", refused("subtract-reset"), LAVA),
    Row("snntorch-init-hidden-mixed", "onnx-dynamo", EXACT, "89.6 %", "89.6 %", refused("subtract-reset"), LAVA,
        slow=True),
    Row("snntorch-init-hidden-mixed", "nir", "not exported: ValueError", NONE, NONE, NONE, NONE),
    Row("snntorch-init-hidden-zero", "torch", EXACT, "100.0 %", "100.0 %", EXACT, LAVA),
    Row("snntorch-init-hidden-zero", "onnx-legacy", EXACT, "100.0 %", "100.0 %", EXACT, LAVA),
    Row("snntorch-init-hidden-zero", "onnx-dynamo", EXACT, "100.0 %", "100.0 %", EXACT, LAVA, slow=True),
    Row("snntorch-residual", "torch", EXACT, "99.2 %", "99.2 %", EXACT, LAVA),
    Row("snntorch-residual", "onnx-legacy", EXACT, "99.2 %", "99.2 %", EXACT, LAVA),
    Row("snntorch-residual", "onnx-dynamo", EXACT, "99.2 %", "99.2 %", EXACT, LAVA, slow=True),
    Row("snntorch-residual", "nir", "not exported: ValueError", NONE, NONE, NONE, NONE),
    Row("snntorch-batchnorm", "torch", EXACT, "99.2 %", "99.2 %", EXACT, LAVA),
    Row("snntorch-batchnorm", "onnx-legacy", EXACT, "99.2 %", "99.2 %", EXACT, LAVA),
    Row("snntorch-batchnorm", "onnx-dynamo", EXACT, "99.2 %", "99.2 %", EXACT, LAVA, slow=True),
    Row("snntorch-batchnorm", "nir", "not exported: AttributeError", NONE, NONE, NONE, NONE),
    # SpikingJelly (its neurons are a torch custom op the legacy exporter cannot export: dynamo only)
    Row("spikingjelly-conv-bn-maxpool-s", "torch", EXACT, "99.6 %", "99.6 %", EXACT, LAVA),
    Row("spikingjelly-conv-bn-maxpool-s", "onnx-dynamo", EXACT, "99.6 %", "99.6 %", EXACT, LAVA, slow=True),
    Row("spikingjelly-conv-bn-maxpool-s", "nir", "not exported: TraceError", NONE, NONE, NONE, NONE),
    Row("spikingjelly-conv-bn-maxpool-m", "torch", EXACT, "99.6 %", "99.6 %", EXACT, LAVA),
    Row("spikingjelly-conv-bn-maxpool-m", "onnx-dynamo", EXACT, "99.6 %", "99.6 %", EXACT, LAVA, slow=True),
    Row("spikingjelly-sew-resnet", "torch", EXACT, "96.7 %", "96.7 %", SJ_SPINNAKER_NO_LEAK, LAVA),
    Row("spikingjelly-sew-resnet", "onnx-dynamo", EXACT, "96.7 %", "96.7 %", SJ_SPINNAKER_NO_LEAK, LAVA, slow=True),
    Row("spikingjelly-mlp-m", "torch", EXACT, "100.0 %", "100.0 %", SJ_SPINNAKER_NO_LEAK, LAVA),
    Row("spikingjelly-mlp-m", "onnx-dynamo", EXACT, "100.0 %", "100.0 %", SJ_SPINNAKER_NO_LEAK, LAVA, slow=True),
    Row("spikingjelly-mlp-m", "nir", EXACT, "100.0 %", "100.0 %", SJ_SPINNAKER_NO_LEAK, LAVA),
    Row("spikingjelly-plif-avgpool", "torch", EXACT, "95.0 %", "95.0 %", EXACT, LAVA),
    Row("spikingjelly-plif-avgpool", "onnx-dynamo", EXACT, "95.0 %", "95.0 %", EXACT, LAVA, slow=True),
    Row("spikingjelly-plif-avgpool", "nir", EXACT, "95.0 %", "95.0 %", EXACT, LAVA),
    # Norse
    Row("norse-digits", "torch", EXACT, "98.3 %", "98.3 %", EXACT, LAVA),
    Row("norse-digits", "onnx-legacy", EXACT, "98.3 %", "98.3 %", EXACT, LAVA),
    Row("norse-digits", "onnx-dynamo", EXACT, "98.3 %", "98.3 %", EXACT, LAVA, slow=True),
    Row("norse-digits", "nir", EXACT, "98.3 %", "98.3 %", EXACT, LAVA),
]


def row_id(row: Row) -> str:
    return f"{row.model}/{row.route}"


def params(rows, slow_marks=(pytest.mark.slow,)):
    return [pytest.param(r, id=row_id(r), marks=slow_marks if r.slow else ()) for r in rows]


def assert_refused(error: Exception, cell: str) -> None:
    key = cell.removeprefix("refused: ")
    assert REFUSALS[key][1] in str(error), str(error)


# ------------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("row", params(ROWS))
def test_float_ir_equals_the_library_forward_or_the_route_refuses(row):
    if row.float.startswith("not exported: "):
        with pytest.raises(Exception) as info:
            float_graph(row.model, row.route)
        assert type(info.value).__name__ == row.float.removeprefix("not exported: ")
        assert not isinstance(info.value, SnncError)
        return
    if row.float.startswith("refused: "):
        with pytest.raises(SnncError) as info:
            float_graph(row.model, row.route)
        assert_refused(info.value, row.float)
        return
    graph, x, expected = float_graph(row.model, row.route), inputs(row.model), library_spikes(row.model)
    traces = run_float(graph, x)
    if row.route == "torch":
        for path, spikes in expected.items():
            assert np.array_equal(traces.spikes["lif_" + path.replace(".", "_")], spikes), path
    else:
        last = expected[list(expected)[-1]]
        ours = traces.spikes[graph.outputs[0]]
        np.testing.assert_array_equal(ours.reshape(last.shape), last)
    for node in graph.nodes:
        if isinstance(node, CubaLIF):
            gap = np.abs(traces.states[node.name]["v"] - np.asarray(node.threshold))
            assert gap.min() > MARGIN, f"{node.name}: a membrane within {MARGIN} of threshold"
    assert all(s.sum() > 0 for s in expected.values()), {p: int(s.sum()) for p, s in expected.items()}


def target_cell(row: Row, target: str) -> str:
    return getattr(row, target)


TARGET_CASES = [pytest.param(r, t, id=f"{row_id(r)}/{t}", marks=(pytest.mark.slow,) if r.slow else ())
                for r in ROWS if r.float == EXACT for t in TARGETS]


@pytest.mark.parametrize("row, target", TARGET_CASES)
def test_target_agreement_or_refusal(row, target):
    cell = target_cell(row, target)
    if cell.startswith("refused: "):
        with pytest.raises(SnncError) as info:
            compiled(row.model, row.route, target)
        assert_refused(info.value, cell)
        return
    graph, x = float_graph(row.model, row.route), inputs(row.model)
    reference = run_float(graph, x)
    lowered = compiled(row.model, row.route, target)
    if target == "spinnaker":
        emulated = run_on_ir_grid(lowered, x, lambda g, part, record_state: run_spinnaker(g, part, record_state))
        for node in graph.nodes:
            if isinstance(node, CubaLIF):
                np.testing.assert_array_equal(emulated.spikes[node.name], reference.spikes[node.name], node.name)
        assert cell == EXACT
        return
    emulated = run_on_ir_grid(lowered, x)
    out = graph.outputs[0]
    agreement = float(np.mean(emulated.spikes[out] == reference.spikes[out]))
    assert f"{100 * agreement:.1f} %" == cell, agreement
    assert emulated.spikes[out].sum() > 0


LAVA_DEFAULT = ("snntorch-residual/torch",)


def assert_lava_equals_emulator(row: Row) -> None:
    pytest.importorskip("lava.magma.core.run_configs")
    from snnc.backends.lava_loihi2.run import run_lava
    graph, x = compiled(row.model, row.route, "loihi2"), inputs(row.model)[:1]
    emulated = run_on_ir_grid(graph, x, record_state=True)
    divergence = first_divergence(emulated, run_on_ir_grid(graph, x, run_lava, record_state=True))
    assert divergence is None, str(divergence)
    assert row.lava == LAVA


LAVA_ROWS = [r for r in ROWS if r.lava == LAVA]


@pytest.mark.lava
@pytest.mark.parametrize("row", [r for r in LAVA_ROWS if row_id(r) in LAVA_DEFAULT], ids=row_id)
def test_lava_equals_emulator(row):
    assert_lava_equals_emulator(row)


@pytest.mark.slow
@pytest.mark.lava
@pytest.mark.parametrize("row", [r for r in LAVA_ROWS if row_id(r) not in LAVA_DEFAULT], ids=row_id)
def test_lava_equals_emulator_every_row(row):
    assert_lava_equals_emulator(row)


def test_the_table_has_twelve_models_and_every_route_a_library_offers():
    assert len({r.model for r in ROWS}) >= 12
    assert {r.route for r in ROWS} == {"torch", "onnx-legacy", "onnx-dynamo", "nir"}
    assert all(any(r.model == m and r.route == "torch" for r in ROWS) for m in MODELS)


# ------------------------------------------------------------------------------------------------ README

ROUTE_NAMES = {"torch": "torch module", "onnx-legacy": "ONNX (legacy exporter)", "onnx-dynamo": "ONNX (dynamo)",
               "nir": "NIR (library's export_to_nir)"}


def readme_cell(cell: str) -> str:
    if cell.startswith("refused: "):
        return "refused: " + REFUSALS[cell.removeprefix("refused: ")][0]
    if cell.startswith("not exported: "):
        return f"not exported (the library's exporter raises {cell.removeprefix('not exported: ')})"
    return cell


def readme_lines() -> list[str]:
    """The README table rows, one per ``ROWS`` entry."""
    lines = []
    for r in ROWS:
        spec = MODELS[r.model]
        cells = [f"{spec.library}: {spec.what}", ROUTE_NAMES[r.route], readme_cell(r.float), readme_cell(r.emulator),
                 readme_cell(r.loihi2), readme_cell(r.spinnaker), readme_cell(r.lava)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def test_readme_table_is_the_asserted_rows():
    text = README.read_text().splitlines()
    missing = [line for line in readme_lines() if line not in text]
    assert not missing, "README lacks (regenerate with `python tests/test_peer_models.py`):\n" + "\n".join(missing)


if __name__ == "__main__":
    print("\n".join(readme_lines()))


# ------------------------------------------------------------------------------------------------ what it took

def test_a_shortcut_convolution_reads_its_source_through_relays_on_loihi():
    """Loihi has no delayed convolution: the residual's 1x1 shortcut from the input (hop delay 1) reads the
    input through one relay group, which repeats the input's spikes one hop later; the float graph keeps no
    relay and the lowering reports it."""
    from snnc.compiler.pipeline import compile_graph as run_passes
    result = run_passes(float_graph("snntorch-residual", "torch"), "loihi2")
    lowered, report = result.graph, result.reports["lower_loihi"]
    assert report["relayed_convolutions"] == {"syn_lif2_1": 1}
    assert lowered.node("syn_lif2_1").source == "relay_syn_lif2_1_0"
    assert lowered.node("sum_relay_syn_lif2_1_0").source == "input"
    assert not any(n.name.startswith("relay_") for n in float_graph("snntorch-residual", "torch").nodes)
    x = inputs("snntorch-residual")
    np.testing.assert_array_equal(run_on_ir_grid(lowered, x).spikes["relay_syn_lif2_1_0"], x)


def test_norses_onnx_export_reads_to_the_torch_tracers_ir_bit_for_bit():
    onnx_graph, torch_graph = float_graph("norse-digits", "onnx-legacy"), float_graph("norse-digits", "torch")
    assert [type(n).__name__ for n in onnx_graph.nodes] == [type(n).__name__ for n in torch_graph.nodes]
    for ours, theirs in zip(onnx_graph.nodes, torch_graph.nodes):
        for field in ("weight", "bias", "current_decay", "voltage_decay", "threshold", "reset", "comparison"):
            if hasattr(theirs, field):
                assert np.array_equal(np.asarray(getattr(ours, field)), np.asarray(getattr(theirs, field))), \
                    (theirs.name, field)


class UnevenCurrentLoop(nn.Module):
    """Norse's LIFCell step written out, except that v adds the stored current at 0.1 and the new input at 0.05
    (not one factor times the current's update i + X): no CubaLIF computes it; the input's term is what is left
    once the current's share is taken out of v."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(8, 4, bias=False)

    def forward(self, x):
        i, v, out = torch.zeros(1, 4), torch.zeros(1, 4), []
        for t in range(x.shape[0]):
            drive = self.fc(x[t])
            current = i + drive
            v = 0.9 * v + 0.1 * (i + 0.5 * drive)
            z = (v > 0.3).float()
            v = (1 - z) * v
            i = 0.8 * current
            out.append(z)
        return torch.stack(out, dim=0)


def test_a_voltage_reading_a_current_at_two_different_factors_is_refused():
    path = SCRATCH / "uneven-current.onnx"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(UnevenCurrentLoop().eval(), (torch.zeros(EXPORT_STEPS, 1, 8),), str(path), dynamo=False,
                          opset_version=17)
    with pytest.raises(SnncError) as info:
        load_onnx(path)
    assert "field 'expression': beta*v + (current update) + bias; other terms found: [\"('syn', 0)\"]" in \
        str(info.value)
