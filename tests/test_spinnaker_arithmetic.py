"""SpiNNaker fixed point (snnc.arith.spinnaker) and the integer emulator, against exact arithmetic."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.arith import rounding
from snnc.arith import spinnaker as sq
from snnc.ir.graph import Graph
from snnc.ir.nodes import Input, SpinnakerPopulation, SpinnakerProjection
from snnc.simulators.spinnaker_emulator import run_spinnaker


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(0, (1 << 32) - 1))
def test_multiply_u032_is_the_exact_64_bit_floor(x, fraction):
    assert int(sq.multiply_u032(x, fraction)) == (x * fraction) >> 32


@settings(max_examples=300, deadline=None)
@given(st.integers(-(1 << 31), (1 << 31) - 1), st.integers(-(1 << 31), (1 << 31) - 1))
def test_accum_multiply_floors_and_wraps_like_mulsa3(a, b):
    bits = ((a * b) >> 15) & 0xFFFFFFFF
    assert int(sq.accum_multiply(a, b)) == (bits - (1 << 32) if bits >= 1 << 31 else bits)


@pytest.mark.parametrize("x_bits", [1, 327, 1638, 3452, 6553, 32768, 100000, 340695])
def test_chip_exponentials_are_within_their_precision_of_exp(x_bits):
    # The chip's e^x (table + quadratic) is good to 1.5e-6 relative (measured: max 1.46e-6 over these
    # arguments); expk then truncates to s16.15, so it is below e^-x by less than 2 LSB.
    exact = math.exp(-x_bits / sq.ONE)
    assert 0 <= exact - sq.expk(-x_bits) / sq.ONE < 2 * 2.0 ** -15
    assert abs(sq.expulr(-x_bits) / 2.0 ** 32 - exact) < 2e-6 * exact


def test_exponential_edges_as_on_the_chip():
    assert sq.expk(0) == sq.ONE                      # e^0 from the table
    assert sq.expulr(0) == 0                         # 2^32 does not fit u0.32: the low word is 0
    assert sq.expulr(-340696) == 0 and sq.expk(-340696) == 0   # below the range: exactly 0
    assert sq.synapse_constants(3072) == (0, 402653183)        # tau_syn 0.09375 ms: no memory, init 0.09375


def test_ring_buffer_shift_follows_spynnaker():
    # ceil(log2 w) and one more when 2^shift <= w (PopulationVertex.get_ring_buffer_shifts)
    assert [sq.ring_buffer_shift(w) for w in (0.0, 0.5, 0.75, 1.0, 1.5, 2.0, 16383.9, 16384.0)] == \
        [0, 0, 0, 1, 1, 2, 14, 15]
    assert sq.weight_scale(1) == 16384.0
    assert sq.weight_words([1.5, -0.7], 1).tolist() == [24576, 11469]     # rint(|w| * 2^14)


def _passes(value: Fraction, threshold: Fraction, comparison: str) -> bool:
    return value >= threshold if comparison == "ge" else value > threshold


@settings(max_examples=500, deadline=None)
@given(st.floats(2.0 ** -10, 2.0 ** 14, allow_nan=False), st.sampled_from(["ge", "gt"]))
def test_threshold_word_is_the_first_word_passing_the_float_comparison(threshold, comparison):
    # Exact rationals: the word w must pass the float test and w - 1 must not, so that the chip's
    # V >= w fires on exactly the voltage words whose real value V / 2^15 passes it.
    word = int(sq.encode_threshold_s1615(threshold, comparison))
    assert _passes(Fraction(word, sq.ONE), Fraction(threshold), comparison)
    assert not _passes(Fraction(word - 1, sq.ONE), Fraction(threshold), comparison)


K = 1_677_722                                    # an even word: round-half-even keeps k at k + 0.5


@pytest.mark.parametrize("scaled, ge_word, gt_word", [
    (K, K, K + 1),                               # on a word: 'ge' fires at it, 'gt' at the next
    (np.nextafter(K, np.inf), K + 1, K + 1),     # just above a word: both need the next word
    (np.nextafter(K, -np.inf), K, K),            # just below: the word itself passes both
    (K + 0.5, K + 1, K + 1),                     # a tie: rint would give K for 'ge', which fires early
    (K + 0.25, K + 1, K + 1),
    (K + 0.75, K + 1, K + 1),                    # rint + 1 would give K + 2 for 'gt', one word late
])
def test_threshold_words_on_just_above_and_just_below_a_word(scaled, ge_word, gt_word):
    threshold = scaled / sq.ONE                  # a power-of-two scaling: exact, so threshold * 2^15 == scaled
    assert int(sq.encode_threshold_s1615(threshold, "ge")) == ge_word
    assert int(sq.encode_threshold_s1615(threshold, "gt")) == gt_word
    assert sq.encode_threshold_s1615([threshold, threshold], "gt").tolist() == [gt_word, gt_word]


def test_threshold_word_names_an_unknown_comparison():
    with pytest.raises(ValueError, match="comparison is 'gt' or 'ge', got 'lt'"):
        sq.encode_threshold_s1615(1.0, "lt")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-2.0 ** 40, 2.0 ** 40, allow_nan=False), min_size=1, max_size=8))
def test_floor_and_ceiling_are_exact_on_numpy_and_torch(values):
    x = np.array(values)
    for fn, exact in ((rounding.round_floor, math.floor), (rounding.round_ceiling, math.ceil)):
        expected = [exact(v) for v in values]
        assert fn(x).dtype == np.int64 and fn(x).tolist() == expected
        assert fn(torch.as_tensor(x)).dtype == torch.int64 and fn(torch.as_tensor(x)).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=8), st.integers(1, 32))
def test_wrap_unsigned_keeps_the_low_bits(values, bits):
    expected = [v % (1 << bits) for v in values]
    assert rounding.wrap_unsigned(np.array(values), bits).tolist() == expected
    assert rounding.wrap_unsigned(torch.tensor(values), bits).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2 * 0xFFFF), min_size=1, max_size=16), st.integers(0, 15),
       st.sampled_from([0.0, 0.25, 0.5, 0.75]))
def test_weight_words_are_spynnakers_rint_bit_for_bit(halves, shift, offset):
    # Values on and between half-integer multiples of one weight step, so every tie is exercised.
    weights = (np.array(halves) / 2 + offset) / sq.weight_scale(shift)
    spynnaker = np.rint(np.abs(weights) * sq.weight_scale(shift)).astype(np.uint32) & 0xFFFF  # SynapseDynamicsStatic
    assert sq.weight_words(weights, shift).tolist() == spynnaker.tolist()
    assert sq.weight_words(-weights, shift).tolist() == spynnaker.tolist()


def _one_neuron(words_exc, words_inh, shifts, v_thresh, tau_syn=3 * 32768, tau_refrac=0):
    tau_m = 20 * sq.ONE
    nodes = (Input("in", (2,)),
             SpinnakerProjection("e", "in", np.array([words_exc]), "excitatory"),
             SpinnakerProjection("i", "in", np.array([words_inh]), "inhibitory"),
             SpinnakerPopulation("p", ("e", "i"), (1,), tau_m=tau_m, cm=sq.ONE, tau_syn_e=tau_syn,
                                 tau_syn_i=tau_syn, v_thresh=v_thresh, tau_refrac=tau_refrac,
                                 ring_buffer_shift=shifts))
    return Graph(nodes, outputs=("p",), timing="hop_latency")


def test_emulator_matches_the_per_tick_equations_written_out():
    """Spell the IF_curr_exp tick out with Python integers (SEMANTICS.md) and compare every state."""
    graph = _one_neuron([30000, 0], [0, 20000], (3, 2), v_thresh=200 * sq.ONE)
    x = np.array([[[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 0]]], np.uint8)
    traces = run_spinnaker(graph, x)
    c = sq.lif_constants(20 * sq.ONE, sq.ONE, 0, 3 * sq.ONE, 3 * sq.ONE)
    v = ie = ii = 0
    for t in range(x.shape[1]):
        if t >= 1:
            ie += ((30000 * int(x[0, t - 1, 0])) << 3) * c.init_exc >> 32
            ii += ((20000 * int(x[0, t - 1, 1])) << 2) * c.init_inh >> 32
        alpha = ((ie - ii) * c.r_membrane >> 15)
        v = alpha - (c.exp_tc * (alpha - v) >> 15)
        assert traces.states["p"]["v"][0, t, 0] == v and traces.states["p"]["isyn_exc"][0, t, 0] == ie
        assert traces.states["p"]["isyn_inh"][0, t, 0] == ii
        ie, ii = ie * c.decay_exc >> 32, ii * c.decay_inh >> 32
    assert traces.spikes["p"].sum() == 0


def test_ring_buffer_saturates_at_0xffff_and_threshold_is_inclusive():
    graph = _one_neuron([0xFFFF, 0xFFFF], [0, 0], (0, 0), v_thresh=0x7FFF_FFFF)
    traces = run_spinnaker(graph, np.ones((1, 3, 2), np.uint8))
    c = sq.lif_constants(20 * sq.ONE, sq.ONE, 0, 3 * sq.ONE, 3 * sq.ONE)
    assert traces.states["p"]["isyn_exc"][0, 1, 0] == (0xFFFF * c.init_exc) >> 32      # not 2 * 0xFFFF
    v_pre = int(traces.states["p"]["v_pre"][0, 2, 0])
    exact = _one_neuron([0xFFFF, 0xFFFF], [0, 0], (0, 0), v_thresh=v_pre)           # V >= V_thresh fires
    assert run_spinnaker(exact, np.ones((1, 3, 2), np.uint8)).spikes["p"][0, :, 0].tolist() == [0, 0, 1]


def test_refractory_ticks_hold_v_while_the_current_keeps_integrating():
    graph = _one_neuron([0xFFFF, 0], [0, 0], (6, 0), v_thresh=sq.ONE, tau_refrac=2 * sq.ONE)
    traces = run_spinnaker(graph, np.array([[[1, 0]] * 6], np.uint8))
    assert traces.spikes["p"][0, :, 0].tolist() == [0, 1, 0, 0, 1, 0]     # T_refract = ceil(2 ms / 1 ms)
    assert traces.states["p"]["v"][0, 2:4, 0].tolist() == [0, 0]
