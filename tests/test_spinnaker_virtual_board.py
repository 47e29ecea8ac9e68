"""Real sPyNNaker 7.4.1 on a virtual board: the cores it uses and the 16-bit words and ring-buffer shifts it
writes (read back from its placement report and data-spec database) are what the compiler predicted.
The HIL test runs the digits network on a real board when one is configured and compares spike for spike."""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("spynnaker")

from snnc.backends.spinnaker.mapping import predicted_blocks, read_placements, read_population_cores  # noqa: E402
from snnc.backends.spinnaker.spynnaker_run import board_from_environment, run_spynnaker          # noqa: E402
from snnc.compiler.pipeline import compile_graph                                                 # noqa: E402
from snnc.frontends.loader import load_model                                                     # noqa: E402
from snnc.ir.graph import Graph                                                                  # noqa: E402
from snnc.ir.nodes import CubaLIF, Dense, Input, SpinnakerPopulation                             # noqa: E402
from snnc.simulators.spinnaker_emulator import run_spinnaker                                     # noqa: E402
from snnc.targets.catalog import get_target                                                      # noqa: E402

from conftest import DIGITS_MODEL, random_spikes                                                 # noqa: E402


def _network(n_hidden=300, delay=0):
    rng = np.random.default_rng(5)
    w1 = rng.normal(0.1, 0.5, (n_hidden, 20))
    w1[rng.random(w1.shape) < 0.5] = 0.0
    nodes = (Input("in", (20,)), Dense("s1", "in", w1), CubaLIF("l1", ("s1",), (n_hidden,), 0.3, 0.1, 1.0, reset="zero"),
             Dense("s2", "l1", rng.normal(0.2, 0.6, (3, n_hidden))),
             Dense("skip", "in", rng.normal(0.1, 0.3, (3, 20)), delay_steps=delay),
             CubaLIF("l2", ("s2", "skip"), (3,), 1.0, 0.2, 1.0, reset="zero"))
    return Graph(nodes, outputs=("l2",))


def _mapped(graph, tmp_path):
    result = compile_graph(graph, "spinnaker")
    _, run_dir = run_spynnaker(result.graph, random_spikes(1, (1, 5, 20)), tmp_path)
    return result, run_dir


def test_cores_shifts_and_weight_words_are_as_predicted(tmp_path):
    result, run_dir = _mapped(_network(), tmp_path)
    lowered, spec = result.graph, get_target("spinnaker")
    placements = read_placements(run_dir)
    predicted_cores = result.reports["check_design_rules"]["cores"]
    assert {k: len(v) for k, v in placements.items() if k in predicted_cores} == predicted_cores
    assert predicted_cores == {"in": 1, "l1": 2, "l2": 1}               # 300 neurons: 256 + 44
    for node in (n for n in lowered.nodes if isinstance(n, SpinnakerPopulation)):
        cores = read_population_cores(run_dir, node.name, int(np.prod(node.shape)), spec.neurons_per_core)
        for core in cores:
            assert core.ring_buffer_shift == node.ring_buffer_shift
            predicted = predicted_blocks(lowered, node, *core.slice)
            assert sorted(map(_key, core.blocks)) == sorted(map(_key, predicted)), (node.name, core.slice)


def _key(block: dict) -> str:
    return repr(sorted(block.items()))


@pytest.mark.slow
def test_delay_extension_is_mapped_where_predicted(tmp_path):
    """41 ticks into a 256-neuron population exceed its 32 on-core slots: sPyNNaker adds a delay extension
    vertex on the delayed source, and the compiler predicted one extra core."""
    rng = np.random.default_rng(2)
    nodes = (Input("in", (20,)), Dense("s", "in", rng.normal(0.1, 0.4, (256, 20))),
             Dense("late", "in", rng.normal(0.1, 0.4, (256, 20)), delay_steps=40),
             CubaLIF("p", ("s", "late"), (256,), 1.0, 0.1, 1.0, reset="zero"))
    result, run_dir = _mapped(Graph(nodes, outputs=("p",)), tmp_path)
    assert result.reports["check_design_rules"]["cores"] == {"in": 1, "p": 1, "p.delay_extension": 1}
    placements = read_placements(run_dir)
    extensions = [label for label in placements if label not in ("in", "p")]
    assert len(extensions) == 1 and len(placements[extensions[0]]) == 1, placements


def test_hil_digits_on_a_real_board_equals_the_emulator(tmp_path):
    board = board_from_environment()
    if board is None:
        pytest.skip("no SpiNNaker board configured: set SNNC_SPINNAKER_MACHINE=<name or IP> (and "
                    "SNNC_SPINNAKER_VERSION) or SNNC_SPALLOC_SERVER=<url> to run the hardware-in-the-loop test")
    from snnc.datasets.digits import test_spikes
    lowered = compile_graph(load_model(DIGITS_MODEL), "spinnaker").graph
    x, _ = test_spikes(20, int(os.environ.get("SNNC_HIL_SAMPLES", "2")))
    x = np.concatenate([x, np.zeros((x.shape[0], 2, x.shape[2]), x.dtype)], axis=1)
    board_traces, _ = run_spynnaker(lowered, x, tmp_path, board)
    emulated = run_spinnaker(lowered, x, record_state=False)
    for name in ("lif_1", "lif_3"):
        assert np.array_equal(board_traces.spikes[name], emulated.spikes[name]), name
