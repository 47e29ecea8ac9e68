"""`snnc` command line: compile, run, verify, inspect, passes, report.

Every SnncError is printed as one ``error: ...`` message with exit status 2; verification mismatches
exit with status 1; any other exception is a bug in snnc: one line ``internal error in <command>: <type>;
details in <file>; please report`` with exit status 3, the traceback written to that temporary file.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from pathlib import Path

from snnc.backends.registry import EMULATE, RUN_BACKENDS
from snnc.errors import ModelFileError, SnncError
from snnc.ir.nodes import Comparison, ResetKind
from snnc.compiler import commands
from snnc.compiler.artifacts import check_compiled_target
from snnc.compiler.input_files import InputChoice, InputData, load_input_file
from snnc.frontends.formats import export_names, exported_labels, readable_suffixes
from snnc.targets.catalog import TARGET_NAMES

TARGET_CHOICES = TARGET_NAMES   # the target registry's names, in registration order


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse prints the message and exits with status 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def netx_input_shape(text: str) -> tuple[int, int, int]:
    """argparse type: ``X,Y,F``, three integers >= 1 (netx's input_shape order: width, height, channels)."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y,F (three integers >= 1), got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected X,Y,F (three integers >= 1), got {text!r}")
    return shape


def seconds_per_step(text: str) -> float:
    """argparse type: a time step in seconds within the IR's physically meaningful range (``DT_RANGE_S``)."""
    from snnc.ir.graph import dt_in_range, dt_range_text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds in {dt_range_text()}, got {text!r}") from None
    if not dt_in_range(value):
        raise argparse.ArgumentTypeError(f"expected seconds in {dt_range_text()}, got {value!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every ``snnc`` command and its options (target choices from the target registry)."""
    parser = argparse.ArgumentParser(prog="snnc", description="Neuromorphic deployment compiler")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a model for a target")
    p.add_argument("model", help=f"model file ({readable_suffixes()})")
    p.add_argument("--target", choices=TARGET_CHOICES, default="loihi2")
    p.add_argument("-o", "--out", required=True, help="output directory")
    _add_load_options(p)
    _add_compression_options(p)

    p = sub.add_parser("export", help=f"write a model as {exported_labels()}")
    p.add_argument("model", help="model file or a directory written by `snnc compile`")
    p.add_argument("--format", choices=export_names(), required=True)
    p.add_argument("-o", "--out", required=True, help="output file")
    _add_load_options(p)

    for name, text in (("run", "run a compiled network"), ("verify", "emulator vs Lava vs float reference")):
        p = sub.add_parser(name, help=text)
        p.add_argument("compiled", help="directory written by `snnc compile`")
        _add_input_options(p)
        p.add_argument("--batch-size", type=positive_int, default=64)
    sub.choices["run"].add_argument("--backend", choices=RUN_BACKENDS, default=EMULATE,
                                    help=f"{EMULATE}: the target's bit-exact emulator; float: the float "
                                    "reference; nest: the emitted PyNN network on NEST (spinnaker targets)")
    sub.choices["verify"].add_argument("--no-lava", action="store_true",
                                       help="skip the reference comparison (Lava; NEST for spinnaker)")
    sub.choices["verify"].add_argument("--target", choices=TARGET_CHOICES, default=None,
                                       help="check that the directory was compiled for this target")
    sub.choices["verify"].add_argument("--reference", choices=("netx",), default=None,
                                       help="also compare with netx: lava-dl netx's own network built from the "
                                       ".net file the directory was compiled from (with the netx load options "
                                       "the compile was given: --num-layers, --reset-interval, ...), run on "
                                       "Lava fixed_pt")

    p = sub.add_parser("inspect", help="print the IR of a model file or compiled directory")
    p.add_argument("path")
    p.add_argument("--source", action="store_true", help="for a compiled directory: the float IR")

    p = sub.add_parser("passes", help="list the passes of a target, in order")
    p.add_argument("--target", choices=TARGET_CHOICES, default="loihi2")

    p = sub.add_parser("report", help="compile report + SynOps/spikes/energy estimate from an emulator run")
    p.add_argument("compiled")
    p.add_argument("--json", action="store_true")
    _add_input_options(p)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--no-activity", action="store_true", help="only the compile report (no emulator run)")
    p.add_argument("--plot", metavar="DIR", help="also write raster.png and rates.png to DIR")
    return parser


def _add_load_options(p: argparse.ArgumentParser) -> None:
    """What some model formats do not store (NIR: dt and reset are required)."""
    p.add_argument("--dt", type=seconds_per_step, default=None, dest="dt_s", help="seconds per time step (NIR, ONNX)")
    p.add_argument("--reset", choices=[k.value for k in ResetKind], default=None,
                   help="reset kind of every spiking node (NIR)")
    p.add_argument("--comparison", choices=[c.value for c in Comparison], default=None,
                   help="threshold test (NIR; default: NIR's v > threshold)")
    p.add_argument("--producer", choices=["nir", "norse"], default=None,
                   help="whose parameter convention a NIR file follows (norse: Norse's to_nir; default nir)")
    p.add_argument("--num-layers", type=int, default=None, dest="num_layers",
                   help="load only the first N layers of the file, as netx's num_layers (.net)")
    p.add_argument("--skip-layers", type=int, default=None, dest="skip_layers",
                   help="drop the file's first N layers, the input then feeding layer N, as netx's skip_layers "
                   "(.net)")
    p.add_argument("--input-message-bits", type=int, default=None, dest="input_message_bits",
                   help="graded integer input of this width into the first synapse, as netx's "
                   "input_message_bits (.net; default 0: spikes)")
    p.add_argument("--spike-exp", type=int, default=None, dest="spike_exp",
                   help="graded-spike exponent of sigma-delta layers, as netx's spike_exp (.net; default 6)")
    p.add_argument("--input-shape", type=netx_input_shape, default=None, dest="input_shape", metavar="X,Y,F",
                   help="input shape of a file that starts with a conv layer and has no input layer, in netx's "
                   "(x, y, f) = (width, height, channels) order, as netx's input_shape (.net)")
    p.add_argument("--sparse-fc-layer", action="store_true", default=None, dest="sparse_fc_layer",
                   help="netx's sparse_fc_layer: Lava Sparse instead of Dense synapses for dense layers, the "
                   "same arithmetic (.net; accepted, changes nothing in the emulator)")
    p.add_argument("--reset-interval", type=int, default=None, dest="reset_interval",
                   help="periodic reset of every neuron layer, as netx's reset_interval (.net; a float "
                   "model's CUBA LIF groups reset on the steps netx would reset them)")
    p.add_argument("--reset-offset", type=int, default=None, dest="reset_offset",
                   help="phase of that reset, as netx's reset_offset (default 0)")


def _add_compression_options(p: argparse.ArgumentParser) -> None:
    """Pruning and quantization choices (defaults: no pruning, 8-bit words, worst-case scaling)."""
    p.add_argument("--calib", help=".npz with x: (samples, steps, *shape) 0/1 calibration spikes: "
                   "PTQ (scales from observed ranges) and the data sbc/obc pruning needs")
    p.add_argument("--prune", type=float, default=0.0, metavar="FRACTION",
                   help="global fraction of dense weights to remove, e.g. 0.9")
    p.add_argument("--prune-method", choices=("sbc", "obc", "magnitude"), default="sbc")
    p.add_argument("--weight-bits", type=int, default=8, help="weight word bits (Lava num_weight_bits)")
    p.add_argument("--weight-rounding", choices=("nearest", "sbc"), default="nearest",
                   help="sbc: Hessian-compensated rounding (needs --calib)")
    p.add_argument("--compress-timesteps", action="store_true",
                   help="choose fewer steps, early exit, initial voltage/threshold and (when --calib has "
                   "'values' (samples, *shape) static inputs and 'levels', their rate code's full scale) a "
                   "static input current on --calib, which then needs labels 'y'")
    p.add_argument("--error-budget", type=accuracy_fraction, default=None, metavar="EPS",
                   help="accuracy drop --compress-timesteps may spend, as a fraction (0.005 = 0.5 pp; "
                   "default 0: none measurable on the calibration data)")


def accuracy_fraction(text: str) -> float:
    """argparse type: a fraction in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value}")
    return value


def _compression_options(args) -> dict:
    data = load_input_file(Path(args.calib), None) if args.calib else None
    return {"calibration": None if data is None else data.x, "prune_sparsity": args.prune,
            "prune_method": args.prune_method, "weight_bits": args.weight_bits,
            "weight_rounding": args.weight_rounding, "progress": True,
            "timestep_compression": _timestep_compression(args, data)}


def _timestep_compression(args, data: InputData | None):
    """The ``CompressionConfig`` of --compress-timesteps (None without it), from --calib's arrays."""
    from snnc.compiler.passes.compress_timesteps import CompressionConfig
    from snnc.compiler.pipeline import pass_names
    if not args.compress_timesteps:
        if args.error_budget is not None:
            raise SnncError("--error-budget applies only with --compress-timesteps")
        return None
    if "compress_timesteps" not in pass_names(args.target):
        raise SnncError(f"--compress-timesteps: target '{args.target}' has no compress_timesteps pass "
                        f"(`snnc passes --target {args.target}`)")
    if data is None:
        raise SnncError("--compress-timesteps needs --calib: an .npz with x (samples, steps, *shape) 0/1 "
                        "spikes and y labels")
    if data.y is None:
        raise ModelFileError(args.calib, "--compress-timesteps needs labels 'y' (one per sample of 'x')")
    budget = {} if args.error_budget is None else {"epsilon": args.error_budget}
    return CompressionConfig(labels=data.y, spikes=data.x, values=data.values, levels=data.levels,
                             steps=data.x.shape[1], **budget)


def _load_options(args) -> dict:
    return {"dt_s": args.dt_s, "reset": args.reset, "comparison": args.comparison, "producer": args.producer,
            "num_layers": args.num_layers, "skip_layers": args.skip_layers,
            "input_message_bits": args.input_message_bits, "spike_exp": args.spike_exp,
            "input_shape": args.input_shape, "sparse_fc_layer": args.sparse_fc_layer,
            "reset_interval": args.reset_interval, "reset_offset": args.reset_offset}


def _add_input_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--input", help=".npz with x: (batch, steps, *shape) 0/1 spikes (integer values for a "
                       "sigma-delta .net: what reaches its Delta input) and optional y labels")
    group.add_argument("--digits", action="store_true",
                       help="held-out scikit-learn digits, rate coded (the default when no --input)")
    p.add_argument("--samples", type=positive_int, default=None, help="use the first N samples")
    p.add_argument("--steps", type=positive_int, default=20, help="time steps for --digits")


def main(argv: list[str] | None = None) -> int:
    """Run one ``snnc`` command line; the exit status: 0 done, 1 verification mismatch, 2 a typed error (printed as
    one line), 3 a bug (traceback written to a file)."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SnncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:   # output directories and files the user named (exists, missing, read-only)
        print(f"error: file '{exc.filename}': {exc.strerror}", file=sys.stderr)
        return 2
    except Exception as exc:   # a bug in snnc: one line for the user, the traceback in a file
        print(f"internal error in {args.command}: {type(exc).__name__}; details in "
              f"{_write_traceback(args.command, argv)}; please report", file=sys.stderr)
        return 3


def _write_traceback(command: str, argv: list[str] | None) -> str:
    """Write the exception being handled, with the command line, to a new temporary file; its path."""
    handle, path = tempfile.mkstemp(prefix=f"snnc-internal-error-{command}-", suffix=".txt")
    words = sys.argv[1:] if argv is None else argv
    with os.fdopen(handle, "w") as out:
        out.write(f"snnc {' '.join(map(repr, words))}\n\n{traceback.format_exc()}")
    return path


def _dispatch(args) -> int:
    if args.command == "compile":
        summary = commands.compile_model(Path(args.model), args.target, Path(args.out),
                                         compression=_compression_options(args), **_load_options(args))
        print(summary)
        return 0
    if args.command == "export":
        print(commands.export_model(Path(args.model), args.format, Path(args.out), **_load_options(args)))
        return 0
    if args.command == "passes":
        print("\n".join(commands.pass_list(args.target)))
        return 0
    if args.command == "inspect":
        print(commands.inspect(Path(args.path), args.source), end="")
        return 0
    if args.command == "report":
        inputs = None if args.no_activity else _input_choice(args)
        print(commands.report(Path(args.compiled), inputs, args.batch_size,
                              Path(args.plot) if args.plot else None, args.json))
        return 0
    data = _input_choice(args).load()
    if args.command == "run":
        print(commands.run_compiled(Path(args.compiled), data, args.backend, args.batch_size))
        return 0
    if args.target is not None:
        check_compiled_target(Path(args.compiled), args.target)
    ok, text = commands.verify_compiled(Path(args.compiled), data, not args.no_lava, args.batch_size,
                                        netx=args.reference == "netx")
    print(text)
    return 0 if ok else 1


def _input_choice(args) -> InputChoice:
    """The samples --input/--digits/--samples/--steps name."""
    return InputChoice(Path(args.input) if args.input else None, args.samples, args.steps,
                       bool(args.input or args.digits))


if __name__ == "__main__":
    sys.exit(main())
