"""Passes declare what they need: a name, requires/ensures (timing, node domain) and their own options
dataclass; ``compile_graph`` checks the contract around each pass and names the failing pass and the
passes that ran before it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc.compiler.pass_api import Condition, GraphState, Pass, PassContractError, PassOptions, PassResult
from snnc.compiler.passes import compress_timesteps, lower_loihi, partition_fanin
from snnc.compiler.pipeline import PASSES, compile_graph
from snnc.errors import NodeError, QuantizationError, UnsupportedError
from snnc.ir.graph import Graph
from snnc.ir.nodes import Conv2d, CubaLIF, Dense, Input
from snnc.targets.catalog import LOIHI2, SPINNAKER


def float_graph() -> Graph:
    weight = np.array([[0.5, -0.25, 0.75], [0.125, 0.5, -0.5]])
    return Graph((Input("x", (3,)), Dense("d", "x", weight),
                  CubaLIF("n", ("d",), (2,), 1.0, 0.2, 1.0, reset="zero")), ("n",), name="tiny")


def test_every_pass_declares_a_name_options_and_contract():
    assert list(PASSES) == ["prune", "fold_synapse_bias", "check_target_semantics", "lower_loihi",
                            "lower_spinnaker", "compress_timesteps", "partition_fanin", "check_design_rules",
                            "place_cores"]
    for name, step in PASSES.items():
        assert step.name == name and dataclasses.is_dataclass(step.options)
        assert issubclass(step.options, PassOptions) and step.run.__doc__
        hints = {f.name: f.type for f in dataclasses.fields(step.options)}
        assert "Any" not in " ".join(str(t) for t in hints.values()), name
    assert {f.name for f in dataclasses.fields(lower_loihi.LowerLoihiOptions)} == {
        "target", "weight_bits", "weight_rounding", "calibration"}


def test_a_pass_run_on_the_wrong_timing_is_refused():
    with pytest.raises(PassContractError) as err:
        partition_fanin.PASS(float_graph(), PassOptions(LOIHI2))
    assert str(err.value) == ("node 'tiny' field 'timing': limit hop_latency (required by pass 'partition_fanin'), "
                              "got zero_latency")
    assert err.value.violation.field == "timing"


def test_a_pass_run_on_the_wrong_node_domain_is_refused():
    spinnaker_graph = compile_graph(float_graph(), "spinnaker").graph
    assert GraphState.of(spinnaker_graph) == GraphState("hop_latency", "lowered-spinnaker")
    options = compress_timesteps.CompressTimestepsOptions(LOIHI2)
    with pytest.raises(PassContractError) as err:
        compress_timesteps.PASS(spinnaker_graph, options)
    assert str(err.value) == ("node 'tiny' field 'node domain': limit lowered-loihi (required by pass "
                              "'compress_timesteps'), got lowered-spinnaker")


def test_a_pass_that_breaks_what_it_ensures_is_caught():
    claims_to_lower = Pass("lower_nothing", lambda graph, options: PassResult(graph, False),
                           ensures=Condition(timing=("hop_latency",)))
    with pytest.raises(PassContractError, match=r"^node 'tiny' field 'timing': limit hop_latency \(ensured by "
                                                r"pass 'lower_nothing'\), got zero_latency$"):
        claims_to_lower(float_graph(), PassOptions(SPINNAKER))
    preserves = Pass("keep", lambda graph, options: PassResult(compile_graph(graph, "loihi2").graph, True))
    with pytest.raises(PassContractError, match="field 'timing': limit zero_latency \\(ensured by pass 'keep'\\)"):
        preserves(float_graph(), PassOptions(LOIHI2))


def test_compile_graph_names_the_failing_pass_and_the_passes_before_it():
    with pytest.raises(QuantizationError) as err:
        compile_graph(float_graph(), "emulator", weight_bits=9)
    assert str(err.value) == ("in pass 'lower_loihi' (after prune, fold_synapse_bias, check_target_semantics): "
                              "node 'tiny' field 'weight_bits': limit 1..8, got 9")
    error = err.value
    assert (error.pass_name, error.passes_before) == ("lower_loihi", ("prune", "fold_synapse_bias",
                                                                      "check_target_semantics"))
    assert (error.violation.node, error.violation.field, error.violation.actual) == ("tiny", "weight_bits", "9")
    assert type(error.original) is QuantizationError and error.original.pass_name is None
    assert str(error.original) == "node 'tiny' field 'weight_bits': limit 1..8, got 9"
    assert error.__cause__ is error.original


def test_the_first_pass_is_named_without_an_after_list():
    with pytest.raises(NodeError) as err:
        compile_graph(float_graph(), "loihi2", prune_sparsity=0.5, prune_method="obc")
    assert str(err.value) == ("in pass 'prune': node 'tiny' field 'prune_method': limit 'magnitude' without "
                              "calibration data ('obc' needs --calib), got obc")


def test_compile_graph_refuses_a_choice_no_pass_takes():
    with pytest.raises(TypeError, match=r"unknown choices \['weight_bit'\]"):
        compile_graph(float_graph(), "loihi2", weight_bit=4)


def test_compile_graph_names_partition_fanin_for_a_kernel_window_it_cannot_split():
    """One input channel's 5x5 window (25 taps) over cores of 20 axons: input-channel partial sums cannot
    split it, and the error names the pass and the passes before it."""
    weight = np.full((2, 1, 5, 5), 0.1)
    graph = Graph((Input("x", (1, 6, 6)), Conv2d("c", "x", weight, in_shape=(1, 6, 6)),
                   CubaLIF("n", ("c",), (2, 2, 2), 1.0, 0.2, 1.0, reset="zero")), ("n",), name="wide")
    with pytest.raises(UnsupportedError) as err:
        compile_graph(graph, "loihi2", spec=dataclasses.replace(LOIHI2, input_axons_per_core=20))
    assert str(err.value) == ("in pass 'partition_fanin' (after prune, fold_synapse_bias, check_target_semantics, "
                              "lower_loihi, compress_timesteps): node 'c' field 'fan-in': limit 20 input axons per "
                              "neuron per core (input-channel partial sums cannot split one channel's kernel "
                              "window), got 25 taps of one input channel")
    assert err.value.pass_name == "partition_fanin"
