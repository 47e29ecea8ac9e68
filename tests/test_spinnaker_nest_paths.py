"""NEST comparison for any graph the SpiNNaker target accepts (issue 14, item 3): skip paths and delayed
recurrence. NEST applies an arriving spike one tick later than the chip, so a population's NEST trace lags
by one tick per layer of its deepest feed-forward path, and every projection gets the NEST delay that lands
its spikes on the chip's tick once both traces are shifted (``nest_extra_delays``). A recurrent projection
without a spare delay tick cannot be followed (NEST's delays are >= 1 tick): NEST replays the emulator's
spikes of its source on it (``nest_replays``), and a closed-loop run without them is refused by name."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyNN.nest")

from conftest import random_spikes                                                   # noqa: E402
from snnc.backends.spinnaker.compare import compare_with_nest                        # noqa: E402
from snnc.backends.spinnaker.nest_run import run_nest                                # noqa: E402
from snnc.backends.spinnaker.network import nest_extra_delays, nest_replays, nest_shift_steps  # noqa: E402
from snnc.compiler.pipeline import compile_graph                                     # noqa: E402
from snnc.errors import UnsupportedError                                             # noqa: E402
from snnc.ir.graph import Graph                                                      # noqa: E402
from snnc.ir.nodes import CubaLIF, Dense, Input                                      # noqa: E402
from snnc.simulators.spinnaker_emulator import run_spinnaker                         # noqa: E402


def graph_with(skip: bool, recurrent_delay: int | None) -> Graph:
    rng = np.random.default_rng(5)
    nodes = [Input("in", (10,)), Dense("ia", "in", rng.normal(0.2, 0.5, (14, 10))),
             CubaLIF("a", ("ia",), (14,), 1.0, 0.15, 1.0, reset="zero"),
             Dense("ab", "a", rng.normal(0.15, 0.5, (6, 14)))]
    inputs = ["ab"]
    if skip:
        nodes.append(Dense("ib", "in", rng.normal(0.1, 0.4, (6, 10))))
        inputs.append("ib")
    if recurrent_delay is not None:
        nodes.append(Dense("bb", "b", rng.normal(0.0, 0.4, (6, 6)), delay_steps=recurrent_delay))
        inputs.append("bb")
    nodes.append(CubaLIF("b", tuple(inputs), (6,), 1.0, 0.1, 0.8, reset="zero"))
    return Graph(tuple(nodes), outputs=("b",))


@pytest.mark.parametrize("skip,recurrent_delay", [(True, None), (False, 2), (True, 3), (False, 1), (True, 1)])
def test_nest_follows_skips_and_delayed_recurrence(skip, recurrent_delay):
    lowered = compile_graph(graph_with(skip, recurrent_delay), "spinnaker").graph
    shifts = nest_shift_steps(lowered)
    assert (shifts["a"], shifts["b"]) == (1, 2)
    extra = nest_extra_delays(lowered, shifts)
    assert extra["ab_exc"] == 0 and (not skip or extra["ib_exc"] == 1)
    assert recurrent_delay is None or extra["bb_exc"] == -1
    assert nest_replays(lowered, shifts) == ({"bb_exc": 1, "bb_inh": 1} if recurrent_delay == 1 else {})
    x = random_spikes(4, (3, 40, 10), rate=0.35)
    emulated = run_spinnaker(lowered, x)
    agreement = compare_with_nest(lowered, emulated, run_nest(lowered, x, replayed=emulated))
    assert all(p.ok for p in agreement), "\n".join(p.line() for p in agreement)
    assert emulated.spikes["b"].sum() > 20
    assert all(p.identical_fraction > 0.999 for p in agreement), "\n".join(p.line() for p in agreement)


def test_recurrence_without_a_spare_tick_needs_the_emulator_spikes():
    lowered = compile_graph(graph_with(False, 1), "spinnaker").graph
    with pytest.raises(UnsupportedError, match=r"node 'bb_exc' field 'delay_steps': limit >= 1 on a recurrent "
                                               r"projection for a closed-loop NEST run .* got 0"):
        run_nest(lowered, random_spikes(4, (1, 5, 10)))


def test_shifts_pass_through_flatten_views():
    """A conv population read through a Flatten: the view takes its producer's shift."""
    from snnc.ir.nodes import Conv2d, Flatten
    rng = np.random.default_rng(2)
    nodes = (Input("in", (2, 5, 5)), Conv2d("c", "in", rng.normal(0.3, 0.4, (3, 2, 3, 3)), in_shape=(2, 5, 5)),
             CubaLIF("a", ("c",), (3, 3, 3), 1.0, 0.2, 1.0, reset="zero"), Flatten("f", "a"),
             Dense("d", "f", rng.normal(0.1, 0.4, (4, 27))), CubaLIF("b", ("d",), (4,), 1.0, 0.1, 0.8, reset="zero"))
    lowered = compile_graph(Graph(nodes, outputs=("b",)), "spinnaker").graph
    assert nest_shift_steps(lowered) == {"in": 0, "a": 1, "f": 1, "b": 2}
