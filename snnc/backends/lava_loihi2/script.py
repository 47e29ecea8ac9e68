"""The runnable script `snnc compile --target loihi2` writes next to the compiled graph.

It rebuilds the real Lava processes from ``lowered.snnc`` and runs them on Lava's CPU simulation
(``Loihi2SimCfg(select_tag='fixed_pt')``) or, with ``--hw``, on a Loihi 2 chip through ``Loihi2HwCfg``
(needs Intel's lava-loihi; otherwise it stops with a clear message).
"""
from __future__ import annotations

from pathlib import Path

SCRIPT_NAME = "run_on_lava.py"

_TEMPLATE = '''"""Run the network compiled by snnc on Lava.

    python {script} --input spikes.npz [--hw]     # x: (batch, steps, *input_shape) 0/1, optional y
    python {script} --digits --samples 10 [--hw]  # the held-out scikit-learn digits

Without --hw: Lava's bit-accurate CPU simulation, Loihi2SimCfg(select_tag="fixed_pt").
With --hw: Loihi2HwCfg on a Loihi 2 chip (requires Intel's lava-loihi).
Outputs lag the float model by the latencies stored in lowered.snnc; results are shifted back.
"""
import argparse
import sys
from pathlib import Path

from snnc.backends.lava_loihi2.run import hardware_run_config, run_lava
from snnc.compiler.commands import (LOWERED_FILE, compiled_policy, digits_input, load_compiled_graph,
                                    load_input_file, outcome_lines, policy_input)
from snnc.errors import SnncError
from snnc.simulators.aligned import predicted_classes, run_on_ir_grid

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hw", action="store_true", help="run on Loihi 2 hardware (Loihi2HwCfg)")
    parser.add_argument("--input")
    parser.add_argument("--digits", action="store_true")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    try:
        graph = load_compiled_graph(HERE, LOWERED_FILE)     # refused if it is not the file snnc wrote
        run_cfg = hardware_run_config() if args.hw else None
        data = load_input_file(Path(args.input), args.samples) if args.input else \
            digits_input(args.steps, args.samples)
        policy = compiled_policy(HERE)       # --compress-timesteps: steps and early exit
        x = policy_input(data, graph, policy)
        runner = lambda g, part, record_state: run_lava(g, part, record_state, run_cfg=run_cfg)
        traces = run_on_ir_grid(graph, x, runner)
    except SnncError as exc:
        print(f"error: {{exc}}", file=sys.stderr)
        return 2
    print("predicted classes:", predicted_classes(traces, graph.outputs[0]).tolist())
    print("\\n".join(outcome_lines(traces, graph.outputs[0], data.y, policy)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def write_lava_script(out_dir: Path) -> Path:
    """Write ``run_on_lava.py`` (runs the compiled folder on Lava's CPU simulation or, with --hw, a Loihi 2 chip)
    into ``out_dir``; its path."""
    path = out_dir / SCRIPT_NAME
    path.write_text(_TEMPLATE.format(script=SCRIPT_NAME))
    return path
