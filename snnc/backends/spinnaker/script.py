"""Emit a standalone PyNN script (+ an .npz of connection lists) that runs the compiled network on
sPyNNaker (``python run_spinnaker.py``) or NEST (``python run_spinnaker.py --simulator nest``) without snnc.

The script contains the exact text of ``build.spike_times`` / ``build.build_pynn`` (so it builds what the
in-process backend builds), the population parameters as JSON and loads the connection lists with
``allow_pickle=False``.
"""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np

from snnc.backends.spinnaker import build as build_module
from snnc.backends.spinnaker.network import TIME_OFFSET_STEPS, PyNNNetwork, describe
from snnc.errors import UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.names import NAME_RULE, is_safe_name, shown_name

SCRIPT_FILE, DATA_FILE = "run_spinnaker.py", "spinnaker_network.npz"

_MAIN = '''

def load_network(simulator):
    data = np.load(Path(__file__).with_name(DATA_FILE), allow_pickle=False)
    key = "nest" if simulator == "nest" else "spinnaker"
    if simulator == "nest" and any(p["cell"] != "IF_curr_exp" for p in NETWORK["populations"]):
        raise SystemExit("this network runs on sPyNNaker only: NEST's izhikevich has delta synapses and an Euler step")
    projections = [Spec(label=p["label"], pre=p["pre"], post=p["post"], receptor=p["receptor"],
                        connections=data[f"{key}/{p['label']}"]) for p in NETWORK["projections"]]
    populations = [Spec(label=p["label"], size=p["size"], max_expected_summed_weight=p["max_expected_summed_weight"],
                        n_synapse_cores=p["n_synapse_cores"], v_start=_array_or_float(p["v_start"]),
                        cell=p["cell"], initial={k: _array_or_float(v) for k, v in p["initial"].items()},
                        parameters={k: (np.asarray(v) if isinstance(v, list) else v) for k, v in p["parameters"].items()})
                   for p in NETWORK["populations"]]
    return Spec(dt_ms=NETWORK["dt_ms"], inputs=NETWORK["inputs"], populations=populations, projections=projections,
                sliced_inputs=NETWORK["sliced_inputs"], source_neurons_per_core=NETWORK["source_neurons_per_core"])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulator", choices=("spinnaker", "nest"), default="spinnaker")
    parser.add_argument("--input", help=".npz with x: (steps, n_input) 0/1 spikes for each input population")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="spikes.npz")
    args = parser.parse_args()
    if args.simulator == "nest":
        import pyNN.nest as sim
        sim.setup(timestep=NETWORK["dt_ms"], min_delay=NETWORK["dt_ms"], spike_precision="on_grid")
    else:
        import pyNN.spiNNaker as sim
        sim.setup(timestep=NETWORK["dt_ms"])
    net = load_network(args.simulator)
    rng = np.random.default_rng(0)
    sources = {}
    for label, size in net.inputs.items():
        x = np.load(args.input)[label] if args.input else (rng.random((args.steps, size)) < 0.2)
        sources[label] = spike_times(x, net.dt_ms)
        steps = x.shape[0]
    made = build_pynn(sim, net, sources, args.simulator == "spinnaker")
    sim.run((steps + TIME_OFFSET_STEPS + len(net.populations) + 1) * net.dt_ms)
    spikes = {}
    for spec in net.populations:
        trains = made[spec.label].get_data("spikes").segments[0].spiketrains
        spikes[spec.label] = np.array([[i, t] for i, tr in enumerate(trains) for t in tr.magnitude]).reshape(-1, 2)
    sim.end()
    np.savez(args.out, **spikes)
    print({k: len(v) for k, v in spikes.items()}, "spikes ->", args.out)


def _array_or_float(value):
    return np.asarray(value) if isinstance(value, list) else value


class Spec:
    def __init__(self, **fields):
        self.__dict__.update(fields)


if __name__ == "__main__":
    main()
'''


def emit_script(graph: Graph, out_dir: Path) -> list[Path]:
    """Write ``run_spinnaker.py`` and ``spinnaker_network.npz`` into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chip = describe(graph)
    arrays = {f"spinnaker/{p.label}": p.connections for p in chip.projections}
    try:
        nest = describe(graph, for_nest=True)
        arrays.update({f"nest/{p.label}": p.connections for p in nest.projections})
    except UnsupportedError:      # a network NEST's models cannot express: the script runs on sPyNNaker only
        pass
    np.savez_compressed(out_dir / DATA_FILE, **arrays)
    (out_dir / SCRIPT_FILE).write_text(script_text(chip))
    return [out_dir / SCRIPT_FILE, out_dir / DATA_FILE]


def script_text(net: PyNNNetwork) -> str:
    """The script's text. The only model string outside the JSON literal is the network name in the
    docstring, and only as a validated ``snnc.ir.names`` name (no quote, backslash or newline can occur);
    labels and parameters travel inside ``NETWORK``, a JSON document quoted as a Python string literal."""
    if not is_safe_name(net.name):
        raise UnsupportedError(shown_name(net.name), "name", f"{NAME_RULE} (written into {SCRIPT_FILE})",
                               ascii(net.name))
    header = (f'"""{net.name}: compiled by snnc for sPyNNaker 7.4.1 (IF_curr_exp); also runs on NEST 3.10.\n\n'
              'Connections (pre, post, weight nA, delay ms) are in spinnaker_network.npz; NEST gets its own\n'
              'weights (see snnc.backends.spinnaker.network). Tick t of the compiled network is PyNN time\n'
              f'(t + {TIME_OFFSET_STEPS}) * dt.\n"""\n')
    imports = "from __future__ import annotations\n\nimport argparse\nimport json\nfrom pathlib import Path\n\nimport numpy as np\n\n"
    constants = (f"DATA_FILE = {DATA_FILE!r}\nTIME_OFFSET_STEPS = {TIME_OFFSET_STEPS}\n"
                 f"NETWORK = json.loads({json.dumps(json.dumps(_network_json(net)))})\n\n\n")
    functions = inspect.getsource(build_module.spike_times) + "\n\n" + inspect.getsource(build_module.build_pynn)
    return header + imports + constants + functions + _MAIN


def _network_json(net: PyNNNetwork) -> dict:
    def plain(value):
        return value.tolist() if isinstance(value, np.ndarray) else value
    return {
        "dt_ms": net.dt_ms, "inputs": net.inputs, "sliced_inputs": list(net.sliced_inputs),
        "source_neurons_per_core": net.source_neurons_per_core,
        "populations": [{"label": p.label, "size": p.size, "max_expected_summed_weight": list(p.max_expected_summed_weight),
                         "n_synapse_cores": p.n_synapse_cores, "v_start": plain(p.v_start), "cell": p.cell,
                         "initial": {k: plain(v) for k, v in (p.initial or {}).items()},
                         "parameters": {k: plain(v) for k, v in p.parameters.items()}} for p in net.populations],
        "projections": [{"label": p.label, "pre": p.pre, "post": p.post, "receptor": p.receptor}
                        for p in net.projections],
    }
