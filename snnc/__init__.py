"""snnc: spiking networks from PyTorch, ONNX, NIR and lava-dl to Loihi 2 and SpiNNaker, bit-exact.

The Python API (``snnc.compile``, ``snnc.load``, ``snnc.run``, ``snnc.verify``; see ``snnc.api``) is resolved
on first use: importing ``snnc`` or one of its subpackages loads nothing else.
"""

API_NAMES = ("compile", "load", "run", "verify", "CompileResult", "RunResult", "VerifyResult")


def __getattr__(name: str):
    if name in API_NAMES:
        from snnc import api
        return getattr(api, name)
    raise AttributeError(f"module 'snnc' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(API_NAMES))
