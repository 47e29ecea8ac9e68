"""Loihi arithmetic: rounding primitives, Lava's own weight utilities, the compiled twin of lif_step."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from snnc.arith import loihi as lq
from snnc.arith import loihi_kernels
from snnc.backends.lava_loihi2.compat import import_lava
from snnc.arith.rounding import (
    shift_by_exponent, shift_round_toward_zero, wrap_like_lava, wrap_twos_complement,
)

ints = st.integers(-(1 << 40), 1 << 40)


@given(ints, st.integers(0, 20))
def test_round_toward_zero_shift_matches_truncating_division(x, bits):
    # |x| < 2^41: x / 2^bits is exact in float64, and int() truncates toward zero
    assert int(shift_round_toward_zero(x, bits)) == int(x / (1 << bits))


@given(ints, st.integers(-12, 12))
def test_shift_by_exponent_is_floor_scaling(x, e):
    expected = x << e if e > 0 else x >> -e   # Python's >> floors, as numpy's does
    assert int(shift_by_exponent(x, e)) == expected


@given(st.integers(-(1 << 30), 1 << 30))
def test_lava_wrap_is_one_pass(x):
    got = int(wrap_like_lava(x, 24))
    if -(1 << 23) < x <= (1 << 23):
        assert got == x
    elif x > (1 << 23):
        assert got == x - (1 << 24)
    else:
        assert got == x + (1 << 24)


@given(st.integers(-(1 << 40), 1 << 40))
def test_twos_complement_wrap_matches_int32_cast(x):
    assert int(wrap_twos_complement(x, 32)) == int(np.array(x, np.int64).astype(np.int32))


@settings(max_examples=200, deadline=None)
@given(arrays(np.int64, (5, 7), elements=st.integers(-400, 400)),
       st.sampled_from(["mixed", "excitatory", "inhibitory"]), st.integers(1, 8))
def test_weight_words_equal_lavas_own_clip_and_truncate(weights, mode, bits):
    import_lava()
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    sign = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY}[mode]
    expected = truncate_weights(clip_weights(weights, sign, num_bits=8), sign, bits)
    assert np.array_equal(lq.lava_weight_words(weights, mode, bits), expected)


@settings(max_examples=100, deadline=None)
@given(arrays(np.int64, (6, 9), elements=st.integers(-256, 255)), st.integers(-8, 7),
       arrays(np.uint8, (4, 9), elements=st.integers(0, 1)))
def test_dense_activation_fast_path_equals_exact_int_path(weights, exp, spikes):
    exact = wrap_twos_complement(shift_by_exponent(wrap_twos_complement(spikes.astype(np.int64) @ weights.T, 32),
                                                   exp), 32)
    assert np.array_equal(lq.dense_activation(spikes, weights, exp), exact)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4095), st.integers(0, 4095), st.integers(-(1 << 19), 1 << 19), st.integers(0, (1 << 17) - 1),
       arrays(np.int64, (2, 12, 3), elements=st.integers(-(1 << 24), 1 << 24)),
       st.integers(-(1 << 23) + 1, (1 << 23) - 1))
def test_compiled_lif_scan_equals_numpy_lif_step(du, dv, bias, vth, activation, v0):
    """Activations up to 2^24 (far past the 24-bit u range) exercise the int32 and 24-bit wraps."""
    size = activation.shape[2]
    spikes = np.zeros(activation.shape, np.uint8)
    u_out, v_out = np.zeros_like(activation), np.zeros_like(activation)
    biases, v_init = np.full(size, bias, np.int64), np.full(size, v0, np.int64)
    loihi_kernels.lif_scan(activation, np.full(size, du), np.full(size, dv), biases, vth, v_init, spikes, u_out,
                           v_out, True)
    u, v = np.zeros((2, size), np.int64), np.tile(v_init, (2, 1))
    for t in range(activation.shape[1]):
        u, v, fired = lq.lif_step(u, v, activation[:, t], du, dv, biases, vth)
        assert np.array_equal(fired, spikes[:, t].astype(bool))
        assert np.array_equal(u, u_out[:, t]) and np.array_equal(v, v_out[:, t])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4095), st.integers(0, 4095), st.integers(0, (1 << 17) - 1), st.integers(-8, 7),
       st.integers(1, 4), arrays(np.float32, (2, 10, 3), elements=st.integers(-5000, 5000).map(float)))
def test_fused_dense_lif_scan_equals_numpy_lif_step(du, dv, vth, exp, lag, products):
    """The fused kernel turns exact float sums into shifted int activations arriving ``lag`` steps late."""
    batch, kept, size = products.shape
    steps = kept + lag
    spikes = np.zeros((batch, steps, size), np.uint8)
    u_out, v_out = np.zeros((batch, steps, size), np.int64), np.zeros((batch, steps, size), np.int64)
    biases, v_init = np.full(size, 7, np.int64), np.full(size, -3, np.int64)
    loihi_kernels.lif_scan_products(products, exp, lag, np.full(size, du), np.full(size, dv), biases, vth, v_init,
                                    spikes, u_out, v_out, True)
    u, v = np.zeros((batch, size), np.int64), np.tile(v_init, (batch, 1))
    for t in range(steps):
        a = shift_by_exponent(products[:, t - lag].astype(np.int64), exp) if t >= lag else 0
        u, v, fired = lq.lif_step(u, v, a, du, dv, biases, vth)
        assert np.array_equal(fired, spikes[:, t].astype(bool))
        assert np.array_equal(u, u_out[:, t]) and np.array_equal(v, v_out[:, t])


@given(st.integers(-(1 << 22), 1 << 22), st.integers(0, 4095))
def test_decay_preimage_inverts_the_decay(y, dv):
    v = int(lq.decay_preimage(y, dv))
    assert int(shift_round_toward_zero(v * (4096 - dv), 12)) == y


@settings(deadline=None)
@given(st.integers(-5000, 5000), st.integers(0, 4095), st.integers(0, 6))
def test_warmup_trajectory_lands_on_zero_or_says_it_cannot(bias, dv, steps):
    trajectory = lq.warmup_trajectory(np.array([bias]), dv, steps)
    if len(trajectory) <= steps:   # stopped: the start would lie outside v's 24-bit range
        assert abs(int(trajectory[-1][0])) > lq.V_LIMIT
        return
    v = trajectory[-1]
    for expected in reversed(trajectory[:-1]):
        v = shift_round_toward_zero(v * (4096 - dv), 12) + bias
        assert int(v[0]) == int(expected[0])
    assert int(v[0]) == 0


def test_split_bias_is_exact_when_representable_and_saturates_otherwise():
    mant, exp = lq.split_bias(np.array([4095, -4096, 4096 * 3, 123 << 7, 10 ** 9]))
    restored = lq.effective_bias(mant, exp)
    assert restored[:4].tolist() == [4095, -4096, 4096 * 3, 123 << 7]
    assert mant.tolist()[4] == 4095 and exp.tolist()[4] == 7
