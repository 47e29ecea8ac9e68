"""A model file that never executes code, read with ``torch.load(weights_only=True)``.

``save_bundle(model, input_shape, path)`` writes one of two versions:

* 1 (an ``nn.Sequential`` of the layers ``snnc.frontends.torch_frontend`` supports, as today):
  ``{"snnc_torch_bundle": 1, "input_shape": [...], "layers": [{"type": ..., <constructor args>}],
  "state_dict": {...}}``; ``load_bundle`` rebuilds the modules from that whitelist only, loads the weights
  strictly and returns the IR graph (every entry is checked by name first - types, ranges,
  each layer spec against the shapes of the tensors the file holds, so no spec can make a module allocate
  more than the file contains); ``load_bundle_module`` gives the modules back (training, QAT).
* 2 (any other model ``snnc.frontends.torch_trace`` accepts: custom modules with a time loop, residuals,
  BatchNorm, MaxPool, SpikingJelly): ``{"snnc_torch_bundle": 2, "graph": uint8 tensor}``, the traced float
  IR as ``snnc.ir.serialize`` bytes (weights and the graph, never code); ``load_bundle`` reads it with the
  schema-checked ``load_graph``.
"""
from __future__ import annotations

from pathlib import Path

import snntorch as snn
import torch
from torch import nn

from snnc.errors import ModelFileError, SnncError, UnsupportedError
from snnc.frontends.torch_frontend import SUPPORTED, _flatten_modules, from_torch
from snnc.frontends.torch_trace import trace_module
from snnc.ir.graph import Graph
from snnc.ir.nodes import ResetKind
from snnc.ir.serialize import graph_bytes, load_graph
from snnc.ir.schema import MAX_ELEMENTS

BUNDLE_VERSION = 1
GRAPH_BUNDLE_VERSION = 2
# Plain strings (.value): bundles are loaded with weights_only=True, which refuses enum objects.
RESETS = {"_base_sub": ResetKind.SUBTRACT.value, "_base_zero": ResetKind.ZERO.value, "_base_int": ResetKind.NONE.value}


def save_bundle(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, name: str = "network",
                dt_s: float = 1e-3, example_input: torch.Tensor | None = None) -> None:
    """Save ``model`` (one step takes a ``(batch, *input_shape)`` tensor) as a version-1 bundle when it is
    a whitelisted ``nn.Sequential``, else as the traced graph (version 2). ``example_input`` is what
    ``trace_module`` runs (needed for a forward that loops over time or a SpikingJelly multi-step model:
    ``[T, N, *input_shape]``); default one step of zeros."""
    if example_input is None and _is_v1_model(model, input_shape):
        _save_v1(model, input_shape, path, name, dt_s)
        return
    example = torch.zeros(1, *input_shape) if example_input is None else example_input
    graph = trace_module(model, example, dt_s=dt_s, name=name)
    data = torch.frombuffer(bytearray(graph_bytes(graph)), dtype=torch.uint8)
    torch.save({"snnc_torch_bundle": GRAPH_BUNDLE_VERSION, "graph": data}, path)


def _is_v1_model(model: nn.Module, input_shape) -> bool:
    """True when the layer-spec format (version 1) holds ``model`` and its frontend converts it."""
    try:
        for p, m in _flatten_modules(model, ""):
            _layer_spec(p, m)
        from_torch(model, tuple(input_shape))
        return True
    except UnsupportedError:
        return False


def _save_v1(model: nn.Module, input_shape, path, name: str, dt_s: float) -> None:
    layers = [_layer_spec(p, m) for p, m in _flatten_modules(model, "")]
    sequential = nn.Sequential(*[m for _, m in _flatten_modules(model, "")])
    torch.save({"snnc_torch_bundle": BUNDLE_VERSION, "name": name, "dt_s": dt_s,
                "input_shape": list(input_shape), "layers": layers,
                "state_dict": {k: v.detach().cpu() for k, v in sequential.state_dict().items()}}, path)


def load_bundle(path: str | Path) -> Graph:
    """The IR graph of a bundle of either version."""
    data = _read(path)
    if isinstance(data, dict) and data.get("snnc_torch_bundle") == GRAPH_BUNDLE_VERSION:
        graph = data.get("graph")
        if not torch.is_tensor(graph) or graph.dtype != torch.uint8 or graph.dim() != 1:
            raise ModelFileError(str(path), "malformed bundle: 'graph' must be a 1-D uint8 tensor")
        return load_graph(path, data=graph.numpy().tobytes())
    model, input_shape, name, dt_s = _module_from(path, data)
    return from_torch(model, input_shape, name=name, dt_s=dt_s)


def load_bundle_module(path: str | Path):
    """Rebuild the ``nn.Sequential`` (for training or snnTorch comparisons) without running file code."""
    data = _read(path)
    if isinstance(data, dict) and data.get("snnc_torch_bundle") == GRAPH_BUNDLE_VERSION:
        raise ModelFileError(str(path), "a version-2 bundle holds a traced graph, not modules: load it with "
                                        "load_bundle (or keep the model's own code to train it)")
    return _module_from(path, data)


def _read(path: str | Path):
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelFileError(str(path), "no such file") from None
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, zip errors ...
        first_line = (str(exc).splitlines() or ["(no message)"])[0][:160]
        raise ModelFileError(str(path), f"not loadable with weights_only=True: {type(exc).__name__}: {first_line}. "
                                        "snnc never unpickles code; save models with "
                                        "snnc.frontends.torch_bundle.save_bundle") from None
    return data


def _module_from(path, data):
    if not isinstance(data, dict) or data.get("snnc_torch_bundle") != BUNDLE_VERSION:
        raise ModelFileError(str(path), "not an snnc torch bundle (key 'snnc_torch_bundle' = "
                                        f"{BUNDLE_VERSION} missing); save with save_bundle")
    _check_bundle(_BundleCheck(str(path)), data)
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


class _BundleCheck:
    """Raises ``ModelFileError`` naming the bundle entry (``layers[2]['in']``, ``state_dict['0.weight']``)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> ModelFileError:
        return ModelFileError(self.path, f"bundle entry {field}: {problem}")

    def integer(self, value, field: str, low: int = 1, high: int = MAX_ELEMENTS) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(field, f"an integer in [{low}, {high}], got {_show(value)}")
        return value

    def pair(self, value, field: str, low: int = 1) -> tuple[int, int]:
        items = [value, value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, (list, tuple)) or len(items) != 2:
            raise self.fail(field, f"an integer or a pair of integers, got {_show(value)}")
        return tuple(self.integer(v, f"{field}[{i}]", low, 1 << 16) for i, v in enumerate(items))

    def flag(self, value, field: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(field, f"true or false, got {_show(value)}")
        return value


def _show(value) -> str:
    return f"{type(value).__name__} {str(value)[:60]}"


def _check_bundle(check: _BundleCheck, data: dict) -> None:
    """Every entry a module constructor or ``from_torch`` reads, checked before anything is built."""
    state = data.get("state_dict")
    if not isinstance(state, dict):
        raise check.fail("'state_dict'", f"a dict of tensors, got {_show(state)}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise check.fail(f"state_dict[{key!r}]", f"a tensor under a text key, got {_show(value)}")
        if value.is_complex() or value.dtype == torch.bool:
            raise check.fail(f"state_dict[{key!r}]", f"real numbers, got dtype {value.dtype}")
    shape = data.get("input_shape")
    if not isinstance(shape, (list, tuple)) or not shape:
        raise check.fail("'input_shape'", f"a non-empty list of sizes, got {_show(shape)}")
    size = 1
    for i, dim in enumerate(shape):
        size *= check.integer(dim, f"input_shape[{i}]")
    if size > MAX_ELEMENTS:
        raise check.fail("'input_shape'", f"at most {MAX_ELEMENTS} values, got {size} from {list(shape)}")
    if not isinstance(data.get("name"), str):
        raise check.fail("'name'", f"text, got {_show(data.get('name'))}")
    if isinstance(data.get("dt_s"), bool) or not isinstance(data.get("dt_s"), (int, float)):
        raise check.fail("'dt_s'", f"a number of seconds, got {_show(data.get('dt_s'))}")
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise check.fail("'layers'", f"a list of layer specs, got {_show(layers)}")
    for index, spec in enumerate(layers):
        field = f"layers[{index}]"
        if not isinstance(spec, dict) or spec.get("type") not in LAYER_TYPES:
            kind = spec.get("type") if isinstance(spec, dict) else spec
            raise check.fail(field, f"a spec whose 'type' is one of {', '.join(LAYER_TYPES)}, got {_show(kind)}")
        expected = _expected_parameters(check, spec, field)
        params = _layer_params(state, index)
        for name, wanted in expected.items():
            got = params.get(name)
            if got is None or (wanted is not None and tuple(got.shape) != wanted):
                found = "missing" if got is None else f"shape {tuple(got.shape)}"
                rule = "present" if wanted is None else f"shape {wanted}"
                raise check.fail(f"state_dict['{index}.{name}']", f"{rule} for {field} ({spec['type']}), "
                                 f"got {found}")


LAYER_TYPES = ("Linear", "Conv2d", "AvgPool2d", "Flatten", "Identity", "Dropout", "Leaky", "Synaptic", "RLeaky")


def _expected_parameters(check: _BundleCheck, spec: dict, field: str) -> dict[str, tuple]:
    """The tensors a layer spec builds, by name and shape (None: any shape; checked against the
    state_dict's before the module is constructed); raises for a spec entry of the wrong type or range."""
    kind = spec["type"]
    entry = lambda key: spec.get(key, None)   # noqa: E731 - a missing entry is reported as None
    if kind == "Linear":
        n_in, n_out = check.integer(entry("in"), f"{field}['in']"), check.integer(entry("out"), f"{field}['out']")
        bias = check.flag(entry("bias"), f"{field}['bias']")
        return {"weight": (n_out, n_in), **({"bias": (n_out,)} if bias else {})}
    if kind == "Conv2d":
        n_in, n_out = check.integer(entry("in"), f"{field}['in']"), check.integer(entry("out"), f"{field}['out']")
        groups = check.integer(entry("groups"), f"{field}['groups']")
        if n_in % groups or n_out % groups:
            raise check.fail(f"{field}['groups']", f"a divisor of in ({n_in}) and out ({n_out}), got {groups}")
        kernel = check.pair(entry("kernel"), f"{field}['kernel']")
        check.pair(entry("stride"), f"{field}['stride']")
        check.pair(entry("padding"), f"{field}['padding']", low=0)
        bias = check.flag(entry("bias"), f"{field}['bias']")
        return {"weight": (n_out, n_in // groups, *kernel), **({"bias": (n_out,)} if bias else {})}
    if kind == "AvgPool2d":
        check.pair(entry("kernel"), f"{field}['kernel']")
        if entry("stride") is not None:
            check.pair(entry("stride"), f"{field}['stride']")
        return {}
    if kind in ("Flatten", "Identity", "Dropout"):
        return {}
    return _neuron_parameters(check, spec, field)


def _neuron_parameters(check: _BundleCheck, spec: dict, field: str) -> dict[str, tuple]:
    if spec.get("reset") not in RESETS.values():
        raise check.fail(f"{field}['reset']", f"one of {', '.join(RESETS.values())}, got {_show(spec.get('reset'))}")
    check.flag(spec.get("reset_delay"), f"{field}['reset_delay']")
    params = {"beta": None, "threshold": None, **({"alpha": None} if spec["type"] == "Synaptic" else {})}
    if spec["type"] != "RLeaky":
        return params
    if not check.flag(spec.get("all_to_all"), f"{field}['all_to_all']"):
        return {**params, "V": None}
    features, channels = spec.get("linear_features"), spec.get("conv2d_channels")
    if features is not None and channels is None:
        size = check.integer(features, f"{field}['linear_features']", high=1 << 16)
        return {**params, "recurrent.weight": (size, size), "recurrent.bias": (size,)}
    if channels is None or features is not None:
        raise check.fail(f"{field}['linear_features']", "exactly one of linear_features and conv2d_channels "
                         f"for an all-to-all RLeaky, got {_show(features)} and {_show(channels)}")
    channels = check.integer(channels, f"{field}['conv2d_channels']", high=1 << 16)
    kernel = check.integer(spec.get("kernel_size"), f"{field}['kernel_size']", high=1 << 10)
    return {**params, "recurrent.weight": (channels, channels, kernel, kernel), "recurrent.bias": (channels,)}


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
