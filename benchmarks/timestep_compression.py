"""Timestep compression on the bundled digits SNN: mean steps and accuracy on the held-out test split.

The baseline is the uncompressed compile run for 20 steps of the rate code (`snnc run`'s default).
Each compressed row compiles with ``compress_timesteps`` calibrated on the *training* split (never the
test split; the pass chooses on its even samples and checks on its odd ones) and is then evaluated on
the test split with its early-exit policy. Every row keeps the default error budget (eps = 0) unless
it says otherwise:

* truncation         - fewest steps alone (no early exit, no state changes)
* early exit         - SNNCutoff-style output-margin exit (+ truncation)
* default            - ``CompressionConfig``'s defaults: also recalibrated initial voltage / threshold
                       and the static input as a constant current (first layer computed once)
* full, eps=0.005    - the same search with a 0.5 pp budget

Steps are on the float IR grid; "hw steps" adds the pipeline latency the chip needs to produce them.
SynOps and energy (an ESTIMATE from published per-event figures, see snnc report) count only the steps
each sample really runs. Goal from the issue: >= 2x fewer steps at <= 0.5 pp accuracy drop.

``--splits N`` also compiles the full search N times per budget (eps 0 and 0.005) with the training
split in N seeded random orders, i.e. N different choose/check halves, and prints each held-out drop:
how much the outcome depends on which samples happen to choose.

    PYTHONPATH=. python benchmarks/timestep_compression.py [--splits 12]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from snnc.compiler.activity_report import activity, measure
from snnc.compiler.passes.compress_timesteps import CompressionConfig
from snnc.compiler.pipeline import compile_graph
from snnc.datasets.digits import PIXEL_MAX, digits_split, rate_encode
from snnc.frontends.loader import load_model

MODEL = "examples/digits/digits_snn.pt"
STEPS = 20
ROWS = {
    "truncation": dict(v_init_fractions=(0.0,), threshold_scales=(1.0,), margins=()),
    "early exit": dict(v_init_fractions=(0.0,), threshold_scales=(1.0,)),
    "default (full search, eps=0)": dict(levels=PIXEL_MAX),
    "full, eps=0.005": dict(levels=PIXEL_MAX, epsilon=0.005),
}


def evaluate(graph, static: bool, steps: int, margin, x_test, y_test) -> dict:
    x = np.repeat(x_test[:, None], STEPS, axis=1) if static else rate_encode(x_test, STEPS)
    counts = measure(graph, x[:, :steps], y_test, exit_margin=margin)
    report = activity(graph, counts, "loihi2", None)
    latency = max(graph.latency.values(), default=0)
    mean_steps = counts.ir_steps / counts.samples
    return {"accuracy": report.accuracy, "mean_steps": mean_steps,
            "hw_steps": mean_steps + latency, "synops": report.totals.synops_per_sample,
            "energy_nj": report.energy_estimate.total_j * 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=0, help="random choose/check splits per budget")
    splits = parser.parse_args().splits
    x_train, x_test, y_train, y_test = digits_split()
    model = load_model(MODEL)
    baseline_graph = compile_graph(model, "loihi2").graph
    results = {"baseline (20 steps)": evaluate(baseline_graph, False, STEPS, None, x_test, y_test)}
    policies = {}
    for name, choices in ROWS.items():
        config = CompressionConfig(values=x_train, labels=y_train, encode=rate_encode, steps=STEPS,
                                   **choices)
        start = time.perf_counter()
        result = compile_graph(model, "loihi2", timestep_compression=config)
        seconds = time.perf_counter() - start
        report = result.reports["compress_timesteps"]
        chosen = report["chosen"]
        policies[name] = (report, seconds)
        results[name] = evaluate(result.graph, chosen["static_input"], chosen["steps"], chosen["exit_margin"],
                                 x_test, y_test)
    print_table(results, policies)
    if splits:
        print_split_robustness(model, (x_train, x_test, y_train, y_test), results["baseline (20 steps)"], splits)


def print_split_robustness(model, data, base: dict, splits: int) -> None:
    x_train, x_test, y_train, y_test = data
    orders = [np.random.default_rng(seed).permutation(len(y_train)) for seed in range(splits)]
    print(f"\nheld-out drop (pp) / mean steps of the full search over {splits} random choose/check splits:")
    for epsilon in (0.0, 0.005):
        outcomes = []
        for order in orders:
            config = CompressionConfig(values=x_train[order], labels=y_train[order], encode=rate_encode,
                                       steps=STEPS, levels=PIXEL_MAX, epsilon=epsilon)
            result = compile_graph(model, "loihi2", timestep_compression=config)
            chosen = result.reports["compress_timesteps"]["chosen"]
            r = evaluate(result.graph, chosen["static_input"], chosen["steps"], chosen["exit_margin"],
                         x_test, y_test)
            outcomes.append((100 * (base["accuracy"] - r["accuracy"]), r["mean_steps"]))
        over = sum(drop > 0.5 + 1e-9 for drop, _ in outcomes)
        print(f"  eps={epsilon}: drop > 0.5 pp in {over} of {splits}; "
              + ", ".join(f"{drop:.2f}/{steps:.2f}" for drop, steps in outcomes))


def print_table(results: dict, policies: dict) -> None:
    base = results["baseline (20 steps)"]
    print(f"digits test split ({STEPS}-step rate code baseline); calibration on the training split\n")
    print("| method | test accuracy | drop (pp) | mean steps | hw steps | fewer steps | SynOps/sample | "
          "energy/sample (estimate) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['accuracy']:.4f} | {100 * (base['accuracy'] - r['accuracy']):.2f} | "
              f"{r['mean_steps']:.2f} | {r['hw_steps']:.2f} | {base['mean_steps'] / r['mean_steps']:.2f}x "
              f"(hw {base['hw_steps'] / r['hw_steps']:.2f}x) | {r['synops']:.0f} | {r['energy_nj']:.1f} nJ |")
    print("\nchosen policies (training split: chosen on even samples, checked on odd samples):")
    for name, (report, seconds) in policies.items():
        chosen, check = report["chosen"], report["validation"]
        print(f"  {name}: static_input={chosen['static_input']} v_init_fraction={chosen['v_init_fraction']} "
              f"threshold_scale={chosen['threshold_scale']} steps={chosen['steps']} "
              f"exit_margin={chosen['exit_margin']} (calibration accuracy {chosen['accuracy']:.4f}, "
              f"{chosen['mean_steps']:.2f} steps; check half {check['worse']} worse / {check['better']} "
              f"better, {report['rejected_by_validation']} better-ranked policies rejected by the check; "
              f"compile {seconds:.1f} s)")


if __name__ == "__main__":
    main()
