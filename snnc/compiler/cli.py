"""`snnc` command line: compile, run, verify, inspect, passes, report.

Every SnncError is printed as one ``error: ...`` message with exit status 2; verification mismatches
exit with status 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from snnc.errors import SnncError
from snnc.compiler import commands

TARGET_CHOICES = ("loihi2", "emulator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snnc", description="Neuromorphic deployment compiler")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a model for a target")
    p.add_argument("model", help="model file (.pt snnc torch bundle, .snnc IR graph)")
    p.add_argument("--target", choices=TARGET_CHOICES, default="loihi2")
    p.add_argument("-o", "--out", required=True, help="output directory")

    for name, text in (("run", "run a compiled network"), ("verify", "emulator vs Lava vs float reference")):
        p = sub.add_parser(name, help=text)
        p.add_argument("compiled", help="directory written by `snnc compile`")
        _add_input_options(p)
        p.add_argument("--batch-size", type=int, default=64)
    sub.choices["run"].add_argument("--backend", choices=("emulator", "lava", "float"), default="emulator")
    sub.choices["verify"].add_argument("--no-lava", action="store_true", help="skip the Lava comparison")

    p = sub.add_parser("inspect", help="print the IR of a model file or compiled directory")
    p.add_argument("path")
    p.add_argument("--source", action="store_true", help="for a compiled directory: the float IR")

    p = sub.add_parser("passes", help="list the passes of a target, in order")
    p.add_argument("--target", choices=TARGET_CHOICES, default="loihi2")

    p = sub.add_parser("report", help="print the compile report of a compiled directory")
    p.add_argument("compiled")
    p.add_argument("--json", action="store_true")
    return parser


def _add_input_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--input", help=".npz with x: (batch, steps, *shape) 0/1 spikes and optional y labels")
    group.add_argument("--digits", action="store_true",
                       help="held-out scikit-learn digits, rate coded (the default when no --input)")
    p.add_argument("--samples", type=int, default=None, help="use the first N samples")
    p.add_argument("--steps", type=int, default=20, help="time steps for --digits")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except SnncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "compile":
        summary = commands.compile_model(Path(args.model), args.target, Path(args.out))
        print(summary)
        return 0
    if args.command == "passes":
        print("\n".join(commands.pass_list(args.target)))
        return 0
    if args.command == "inspect":
        print(commands.inspect(Path(args.path), args.source), end="")
        return 0
    if args.command == "report":
        report = commands.load_report(Path(args.compiled))
        print(json.dumps(report, indent=2) if args.json else commands.format_report(report))
        return 0
    x, y = _load_inputs(args)
    if args.command == "run":
        print(commands.run_compiled(Path(args.compiled), x, y, args.backend, args.batch_size))
        return 0
    ok, text = commands.verify_compiled(Path(args.compiled), x, y, not args.no_lava, args.batch_size)
    print(text)
    return 0 if ok else 1


def _load_inputs(args) -> tuple[np.ndarray, np.ndarray | None]:
    if args.input:
        return commands.load_input_file(Path(args.input), args.samples)
    from snnc.datasets.digits import test_spikes
    return test_spikes(args.steps, args.samples)


if __name__ == "__main__":
    sys.exit(main())
