"""A model file that never executes code: layer specs (JSON-able) + state_dict, read with
``torch.load(weights_only=True)``.

``save_bundle(model, input_shape, path)`` writes ``{"snnc_torch_bundle": 1, "input_shape": [...],
"layers": [{"type": ..., <constructor args>}], "state_dict": {...}}`` for an ``nn.Sequential`` of the
layers ``snnc.frontends.torch_frontend`` supports; ``load_bundle`` rebuilds the modules from that
whitelist only, loads the weights strictly, and returns the IR graph.
"""
from __future__ import annotations

from pathlib import Path

import snntorch as snn
import torch
from torch import nn

from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.torch_frontend import SUPPORTED, _flatten_modules, from_torch
from snnc.ir.graph import Graph
from snnc.ir.nodes import ResetKind

BUNDLE_VERSION = 1
# Plain strings (.value): bundles are loaded with weights_only=True, which refuses enum objects.
RESETS = {"_base_sub": ResetKind.SUBTRACT.value, "_base_zero": ResetKind.ZERO.value, "_base_int": ResetKind.NONE.value}


def save_bundle(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, name: str = "network",
                dt_s: float = 1e-3) -> None:
    layers = [_layer_spec(p, m) for p, m in _flatten_modules(model, "")]
    sequential = nn.Sequential(*[m for _, m in _flatten_modules(model, "")])
    torch.save({"snnc_torch_bundle": BUNDLE_VERSION, "name": name, "dt_s": dt_s,
                "input_shape": list(input_shape), "layers": layers,
                "state_dict": {k: v.detach().cpu() for k, v in sequential.state_dict().items()}}, path)


def load_bundle(path: str | Path) -> Graph:
    model, input_shape, name, dt_s = load_bundle_module(path)
    return from_torch(model, input_shape, name=name, dt_s=dt_s)


def load_bundle_module(path: str | Path):
    """Rebuild the ``nn.Sequential`` (for training or snnTorch comparisons) without running file code."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(str(path), "no such file") from None
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, zip errors ...
        raise ModelFileError(str(path), f"not loadable with weights_only=True: {type(exc).__name__}: "
                                        f"{(str(exc).splitlines() or ['(no message)'])[0][:160]}. snnc never unpickles code; "
                                        "save models with snnc.frontends.torch_bundle.save_bundle") from None
    if not isinstance(data, dict) or data.get("snnc_torch_bundle") != BUNDLE_VERSION:
        raise ModelFileError(str(path), "not an snnc torch bundle (key 'snnc_torch_bundle' = "
                                        f"{BUNDLE_VERSION} missing); save with save_bundle")
    try:
        state = data["state_dict"]
        model = nn.Sequential(*[_build_layer(spec, _layer_params(state, i))
                                for i, spec in enumerate(data["layers"])])
        model.load_state_dict(data["state_dict"], strict=True)
        return model, tuple(int(d) for d in data["input_shape"]), str(data["name"]), float(data["dt_s"])
    except SnncError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(str(path), f"malformed bundle: {type(exc).__name__}: "
                                        f"{str(exc).splitlines()[0][:200]}") from None


def _layer_spec(path: str, module: nn.Module) -> dict:
    kind = type(module).__name__
    if isinstance(module, nn.Linear):
        return {"type": kind, "in": module.in_features, "out": module.out_features, "bias": module.bias is not None}
    if isinstance(module, nn.Conv2d):
        return {"type": kind, "in": module.in_channels, "out": module.out_channels,
                "kernel": list(module.kernel_size), "stride": list(module.stride),
                "padding": list(module.padding), "groups": module.groups, "bias": module.bias is not None}
    if isinstance(module, nn.AvgPool2d):
        return {"type": kind, "kernel": module.kernel_size, "stride": module.stride}
    if isinstance(module, (nn.Flatten, nn.Identity, nn.Dropout)):
        return {"type": kind}
    if kind in ("Leaky", "Synaptic", "RLeaky"):
        return _neuron_spec(module, kind)
    raise UnsupportedError(path, "type", "one of " + ", ".join(SUPPORTED), kind)


def _neuron_spec(module, kind: str) -> dict:
    spec = {"type": kind, "reset": RESETS[module.state_function.__name__],
            "reset_delay": bool(module.reset_delay)}
    if kind == "RLeaky":
        spec.update(all_to_all=bool(module.all_to_all), linear_features=module.linear_features,
                    conv2d_channels=module.conv2d_channels, kernel_size=module.kernel_size)
    return spec


def _layer_params(state: dict, index: int) -> dict:
    prefix = f"{index}."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _build_layer(spec: dict, params: dict) -> nn.Module:
    kind = spec["type"]
    if kind == "Linear":
        return nn.Linear(spec["in"], spec["out"], bias=spec["bias"])
    if kind == "Conv2d":
        return nn.Conv2d(spec["in"], spec["out"], tuple(spec["kernel"]), stride=tuple(spec["stride"]),
                         padding=tuple(spec["padding"]), groups=spec["groups"], bias=spec["bias"])
    if kind == "AvgPool2d":
        return nn.AvgPool2d(spec["kernel"], stride=spec["stride"])
    if kind in ("Flatten", "Identity", "Dropout"):
        return {"Flatten": nn.Flatten, "Identity": nn.Identity, "Dropout": nn.Identity}[kind]()
    # Tensors shaped like the saved ones, so that strict load_state_dict accepts per-neuron values.
    common = dict(beta=params["beta"].clone(), threshold=params["threshold"].clone(), init_hidden=True,
                  reset_mechanism=spec["reset"], reset_delay=spec["reset_delay"])
    if kind == "Leaky":
        return snn.Leaky(**common)
    if kind == "Synaptic":
        return snn.Synaptic(alpha=params["alpha"].clone(), **common)
    if kind == "RLeaky":
        extra = {} if spec["all_to_all"] else {"V": params["V"].clone()}
        return snn.RLeaky(all_to_all=spec["all_to_all"], linear_features=spec["linear_features"],
                          conv2d_channels=spec["conv2d_channels"], kernel_size=spec["kernel_size"],
                          **extra, **common)
    raise UnsupportedError(f"layer spec '{kind}'", "type", "one of " + ", ".join(SUPPORTED), kind)
