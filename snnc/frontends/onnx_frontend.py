"""ONNX import: single-step graphs with explicit state, Scan/Loop time loops, and snnc's ``snn`` domain.

Three shapes of file land in the same float IR (zero-latency timing):

1. **Single step** (``torch.onnx.export``, legacy or dynamo, of an snnTorch/SpikingJelly step with the
   membrane state as explicit inputs and outputs). The graph is evaluated *symbolically*: every tensor
   is an affine expression over graph inputs, spike indicators (``Cast(Greater/GreaterOrEqual/Less(..))``)
   and gated terms (spike x expression, from ``(1 - s) * v``, ``v - s * v`` or ``Where``); constants are
   folded with ONNX's reference evaluator. Recognition therefore does not depend on node names, on how
   constants were folded, or on the order of commutative operands. Each state output is then matched
   against the CUBA LIF family's equations (``snnc.neurons.cuba_lif``):
   ``v' = beta*v + I + b`` (pre-reset), with ``I`` a sum of synapse terms or another state's update
   ``c' = alpha*c + W s + b0`` (current memory), and one of the resets: subtract (``- thr*s_prev``),
   zero (``beta*(1 - s_prev)*v``, or the state stored after ``(1 - s)*v'``), zero_next
   (``(1 - s_prev)*v'``), none. ``s_prev`` is the spike recomputed from the state input.
   State inputs are bound to state outputs by ``metadata_props['snnc.state_bindings']`` ("in=out,...")
   when present, else by output names (``<in>_out``, ``<in>_new``, ``new_<in>``, ``next_<in>``), else
   structurally (the output whose update is the only one to decay that input); an ambiguity is an error,
   never a guess. Graph inputs not bound to an output are spike inputs; the first dimension is batch.
2. **Time loops**: a ``Scan`` whose body is such a step (state variables = Scan state, bound by position,
   initial values must be zero) or a ``Loop`` whose body reads the sequence with ``Gather(x, iter)``.
3. **snn domain** (``snnc export --format onnx``, see ``snnc.frontends.onnx_export``): ``snn.LIF``,
   ``snn.IF``, ``snn.LI`` nodes are read with their documented semantics.

Everything else raises ``UnsupportedError``/``ModelFileError`` naming the file, the ONNX node and the
field. ``dt_s`` is taken from the option, else ``metadata_props['snnc.dt_s']``, else 1e-3 (ONNX step
graphs hold per-step parameters; dt only labels the IR).
"""
from __future__ import annotations

from pathlib import Path

from snnc.errors import ModelFileError, SnncError
from snnc.frontends.ir_values import time_step_seconds
from snnc.frontends.onnx_limits import OnnxLimits, check_onnx
from snnc.frontends.onnx_neurons import Recognizer
from snnc.frontends.onnx_loops import loop_step
from snnc.frontends.onnx_step import OnnxError, single_step
from snnc.frontends.onnx_unrolled import is_unrolled, unrolled_step
from snnc.ir.graph import Graph

__all__ = ["DEFAULT_DT_S", "OnnxError", "load_onnx", "onnx_model_to_ir"]

DEFAULT_DT_S = 1e-3


# --------------------------------------------------------------------------------------- entry points


def load_onnx(path: str | Path, dt_s: float | None = None) -> Graph:
    """Read an ONNX file into a verified float IR graph."""
    path = Path(path)
    model = _read_model(path)
    return _translate(model, dt_s, path.stem or "network", str(path))


def onnx_model_to_ir(model, dt_s: float | None = None, name: str = "network", path: str = "<onnx>",
                     limits: OnnxLimits = OnnxLimits()) -> Graph:
    """Translate an in-memory ``onnx.ModelProto``; ``limits`` bound its declared sizes (``onnx_limits``)."""
    check_onnx(path, model, limits)
    return _translate(model, dt_s, name, path)


def _translate(model, dt_s: float | None, name: str, path: str) -> Graph:
    meta = _metadata(path, model)
    dt = _dt(path, dt_s, meta)
    graph = model.graph
    loops = [n for n in graph.node if n.op_type in ("Scan", "Loop")]
    try:
        if loops:
            step = loop_step(path, graph, loops)
        elif is_unrolled(graph):
            step = unrolled_step(path, model)
        else:
            step = single_step(path, graph, meta)
        return Recognizer(path, step, dt, name).build()
    except SnncError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError) as exc:
        raise OnnxError(path, "graph", "structure", f"malformed ({type(exc).__name__}: {str(exc)[:200]})") from None


def _read_model(path: Path):
    import onnx
    try:
        model = onnx.load(str(path), load_external_data=False)   # external data: checked first
    except Exception as exc:  # noqa: BLE001 - protobuf/IO errors of the third-party reader
        raise ModelFileError(str(path), f"not a readable ONNX file ({type(exc).__name__}: {str(exc)[:160]})") \
            from None
    check_onnx(str(path), model, folder=path.parent)   # before any external data is touched
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as exc:
        raise ModelFileError(str(path), f"external data unreadable ({type(exc).__name__}: {str(exc)[:160]})") \
            from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - onnx.checker.ValidationError and friends
        raise ModelFileError(str(path), f"onnx.checker rejects the model: {str(exc).splitlines()[0][:200]}") \
            from None
    return model


def _dt(path: str, dt_s, meta: dict) -> float:
    return time_step_seconds(dt_s, meta.get("snnc.dt_s", DEFAULT_DT_S), "metadata_props['snnc.dt_s']",
                             lambda field, problem: OnnxError(path, "model", field, problem))


def _metadata(path: str, model) -> dict[str, str]:
    """``metadata_props`` as text; protobuf hands back bytes for a value that is not valid UTF-8."""
    meta = {}
    for prop in model.metadata_props:
        if not isinstance(prop.key, str) or not isinstance(prop.value, str):
            raise OnnxError(path, "model", "metadata_props", f"UTF-8 text, got {prop.key!r}={prop.value!r}"[:200])
        meta[prop.key] = prop.value
    return meta
