"""One arithmetic, three users: lowering, emulator (numpy) and QAT (torch) agree bit for bit.

The rounding/shift/wrap/saturate primitives and the Loihi LIF step run on numpy arrays in the emulator
and on torch int64 tensors in QAT; hypothesis checks they return identical integers over the full
ranges the hardware registers can hold. The last property is end to end: the QAT forward pass of a
random float network equals the bit-accurate emulator running what ``compile_graph`` made of it.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from snnc.arith import loihi as lq
from snnc.arith import rounding as r
from snnc.compiler.pipeline import compile_graph
from snnc.ir.graph import Graph
from snnc.ir.nodes import LI, CubaLIF, Dense, Input
from snnc.simulators.aligned import run_on_ir_grid
from snnc.training.qat import QatNetwork

INT40 = st.integers(-(1 << 40), 1 << 40)
SETTINGS = settings(max_examples=150, deadline=None)


def both(fn, *args):
    """fn on numpy arrays and on torch tensors (arrays only; ints/strings passed through)."""
    expected = np.asarray(fn(*args))
    got = fn(*(torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args))
    assert isinstance(got, torch.Tensor)
    return expected, got.numpy()


def assert_same(fn, *args):
    expected, got = both(fn, *args)
    assert expected.dtype == got.dtype == np.int64 or expected.dtype == got.dtype == np.bool_
    assert np.array_equal(expected, got)


@SETTINGS
@given(arrays(np.int64, 16, elements=INT40), st.integers(0, 20),
       arrays(np.int64, 16, elements=st.integers(-12, 12)))
def test_shift_and_wrap_primitives_agree(x, bits, exponents):
    assert_same(r.shift_round_toward_zero, x, bits)
    assert_same(r.shift_by_exponent, x, exponents)
    assert_same(r.wrap_like_lava, x >> 10, 24)
    assert_same(r.wrap_twos_complement, x, 32)
    assert_same(r.saturate, x, -(1 << 23) + 1, (1 << 23) - 1)
    assert_same(r.truncate_low_bits, x, bits % 9)
    assert_same(r.select, x > 0, x, -x)


@SETTINGS
@given(arrays(np.float64, 16, elements=st.floats(-1e6, 1e6, allow_nan=False)), st.integers(-4, 4))
def test_float_rounding_agrees_including_ties(x, k):
    ties = np.round(x) + 0.5 * np.sign(k or 1)          # exact .5 ties: the case rounding modes differ on
    for values in (x, ties):
        assert_same(r.round_half_away, values)
        assert_same(r.round_half_even, values)


@SETTINGS
@given(arrays(np.float64, (4, 6), elements=st.floats(-3000, 3000, allow_nan=False)),
       st.sampled_from(lq.SIGN_MODES), st.integers(-3, 7), st.integers(1, 8))
def test_weight_words_agree_and_are_kept_by_lava(scaled, mode, exp, bits):
    expected, got = both(lambda s: lq.weight_mantissa(s, mode, exp, bits), scaled)
    assert np.array_equal(expected, got)
    # the words are exactly what Lava's Dense keeps for this sign mode and num_weight_bits
    assert np.array_equal(lq.lava_weight_words(expected, mode, bits), expected)


@SETTINGS
@given(arrays(np.int64, (3, 8), elements=st.integers(0, 1)),
       arrays(np.int64, (5, 8), elements=st.integers(-256, 254)), st.integers(-8, 7))
def test_shifted_activation_equals_the_emulators_dense_activation(spikes, weights, exp):
    weights = weights & ~1                                  # mixed-sign words are even
    total = torch.as_tensor(spikes, dtype=torch.float64) @ torch.as_tensor(weights, dtype=torch.float64).T
    got = lq.shift_activation(total.to(torch.int64), exp)
    assert np.array_equal(got.numpy(), lq.dense_activation(spikes, weights, exp))


@SETTINGS
@given(arrays(np.int64, 12, elements=st.integers(-(1 << 23), 1 << 23)),
       arrays(np.int64, 12, elements=st.integers(-(1 << 23) + 1, (1 << 23) - 1)),
       arrays(np.int64, 12, elements=st.integers(-(1 << 31), (1 << 31) - 1)),
       arrays(np.int64, 12, elements=st.integers(-(1 << 20), 1 << 20)),
       st.integers(0, 4095), st.integers(0, 4095), st.integers(0, lq.VTH_MAX))
def test_lif_step_agrees_over_the_registers_full_range(u, v, activation, bias, du, dv, vth):
    """Covers u wrap, v saturation, int32 wrap of the activation and threshold crossing."""
    expected = lq.lif_step(u, v, activation, du, dv, bias, vth)
    got = lq.lif_step(*(torch.as_tensor(a) for a in (u, v, activation)), du, dv, torch.as_tensor(bias), vth)
    for e, g in zip(expected, got):
        assert np.array_equal(e, g.numpy())


def random_float_network(seed: int, hidden: int, readout: bool, current_decay: float, bias: float,
                         recurrent: bool = False) -> Graph:
    rng = np.random.default_rng(seed)
    loop = (Dense("r", "h", rng.normal(0, 0.3, (hidden, hidden)), delay_steps=1),) if recurrent else ()
    lif = dict(voltage_decay=float(rng.uniform(0.02, 0.3)), reset="zero")
    second = (LI("out", ("d2",), (4,), current_decay=1.0, voltage_decay=0.2) if readout else
              CubaLIF("out", ("d2",), (4,), current_decay=1.0, threshold=float(rng.uniform(0.5, 2)), **lif))
    return Graph((
        Input("x", (10,)),
        Dense("d1", "x", rng.normal(0.1, 0.5, (hidden, 10))),
        *loop,
        CubaLIF("h", ("d1",) + ("r",) * recurrent, (hidden,), current_decay=current_decay,
                threshold=float(rng.uniform(0.5, 2)), bias=rng.normal(0, bias, hidden), **lif),
        Dense("d2", "h", rng.normal(0.1, 0.6, (4, hidden))),
        second,
    ), outputs=("out",), name="random")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(st.integers(0, 10_000), st.integers(3, 12), st.booleans(), st.sampled_from([1.0, 0.5, 0.2]),
       st.sampled_from([0.0, 0.05]), st.sampled_from([8, 4, 2]), st.booleans(),
       st.sampled_from(["nearest", "sbc"]), st.booleans())
def test_qat_forward_equals_the_emulator_on_the_compiled_network(seed, hidden, readout, current_decay, bias,
                                                                 bits, calibrated, rounding, recurrent):
    """Whatever the choices (bits, calibration, rounding, current memory, bias, readout, a recurrent
    synapse), the QAT forward reproduces the aligned emulator run of the compiled graph exactly: spikes,
    and v of a readout."""
    assume(calibrated or rounding == "nearest")
    graph = random_float_network(seed, hidden, readout, current_decay, bias, recurrent)
    rng = np.random.default_rng(seed + 1)
    x = (rng.random((3, 25, 10)) < 0.4).astype(np.uint8)
    choices = dict(weight_bits=bits, weight_rounding=rounding,
                   calibration=(rng.random((8, 25, 10)) < 0.4).astype(np.uint8) if calibrated else None)
    network = QatNetwork(graph, "emulator", **choices)
    with torch.no_grad():
        out = network(x)
    emulated = run_on_ir_grid(compile_graph(graph, "emulator", **choices).graph, x, record_state=True)
    assert np.array_equal(out["h"].numpy().astype(np.uint8), emulated.spikes["h"])
    assume(emulated.spikes["h"].sum() > 0)
    if readout:
        assert np.array_equal(out["out"].numpy().astype(np.int64), emulated.states["out"]["v"])
    else:
        assert np.array_equal(out["out"].numpy().astype(np.uint8), emulated.spikes["out"])
