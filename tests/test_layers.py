"""The lecture's dense layer, activations and initialisation (scratchvae/lecture/dense.py, activations.py)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from scratchvae.lecture.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softplus_backward,
    softplus_forward,
    tanh_backward,
    tanh_forward,
)
from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.gradcheck import assert_gradients_match
from scratchvae.lecture.modules import Dense


def leaky_relu_02_forward(x):
    """Leaky ReLU at a slope large enough for a wrong one to show."""
    return leaky_relu_forward(x, slope=0.2)


# name -> (forward, backward)
PAIRS = {
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_02_forward, leaky_relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "softplus": (softplus_forward, softplus_backward),
}
KINKED = {"relu", "leaky_relu"}  # no derivative at 0
DTYPES = [np.float32, np.float64]

shapes = st.tuples(st.integers(1, 4), st.integers(1, 6))


def values(low=-3.0, high=3.0, away_from_zero=False, dtype=np.float64):
    """Floats in [low, high]; optionally at least 0.01 away from 0.

    Away from 0 keeps the +-2e-3 stencil off the ReLU kink, and keeps a dense
    layer's gradients (made of x and W) from being so small that the rounding
    error of the output they are read from (~1e-16 |out| / h) dominates them.
    """
    width = np.finfo(dtype).bits
    if away_from_zero:
        return st.floats(0.01, high, width=width) | st.floats(low, -0.01, width=width)
    return st.floats(low, high, width=width)


# --- Dense ----------------------------------------------------------------------


@given(data=st.data())
def test_dense_gradcheck(data):
    B, D_in, D_out = (data.draw(st.integers(1, n)) for n in (4, 6, 6))
    x = data.draw(arrays(np.float64, (B, D_in), elements=values(away_from_zero=True)))
    W = data.draw(arrays(np.float64, (D_in, D_out), elements=values(away_from_zero=True)))
    b = data.draw(arrays(np.float64, (D_out,), elements=values()))
    assert_gradients_match(dense_forward, dense_backward, {"x": x, "W": W, "b": b})


def test_dense_matches_explicit_loops(rng):
    x, W, b = rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)
    expected = np.zeros((3, 5))
    for n in range(3):
        for k in range(5):
            expected[n, k] = sum(x[n, i] * W[i, k] for i in range(4)) + b[k]
    np.testing.assert_allclose(dense_forward(x, W, b)[0], expected, rtol=1e-13)


def test_dense_bias_gradient_sums_over_the_batch(rng):
    """Each example adds its own dout row into db: B copies of one row give B times it."""
    x, W, b = rng.normal(size=(5, 2)), rng.normal(size=(2, 3)), np.zeros(3)
    _, cache = dense_forward(x, W, b)
    row = rng.normal(size=3)
    _, _, db = dense_backward(np.tile(row, (5, 1)), cache)
    np.testing.assert_allclose(db, 5 * row, rtol=1e-14)


def test_dense_keeps_float32(rng):
    x, W, b = (rng.normal(size=s).astype(np.float32) for s in [(3, 4), (4, 2), (2,)])
    out, cache = dense_forward(x, W, b)
    assert out.dtype == np.float32
    grads = dense_backward(np.ones((3, 2)), cache)  # float64 dout: grads still float32
    assert [g.dtype for g in grads] == [np.float32] * 3


def test_dense_rejects_bad_arguments(rng):
    x, W, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    with pytest.raises(ValueError, match=r"^x: expected shape \(any, 3\), got \(2, 5\)"):
        dense_forward(np.ones((2, 5)), W, b)
    with pytest.raises(ValueError, match=r"^b: expected shape \(4,?\), got \(3,\)"):
        dense_forward(x, W, np.zeros(3))
    with pytest.raises(ValueError, match=r"^W: expected a 2-dimensional array"):
        dense_forward(x, np.ones(3), b)
    with pytest.raises(ValueError, match=r"^b: expected dtype float64 to match W, got float32"):
        dense_forward(x, W, b.astype(np.float32))
    with pytest.raises(ValueError, match=r"^x: expected finite values, got nan"):
        dense_forward(np.array([[1.0, np.nan, 0.0]]), W, b)
    with pytest.raises(ValueError, match=r"^W: expected finite values, got inf"):
        dense_forward(x, np.full((3, 4), np.inf), b)
    with pytest.raises(ValueError, match=r"^dout: expected shape \(2, 4\), got \(2, 3\)"):
        dense_backward(np.ones((2, 3)), dense_forward(x, W, b)[1])


def test_dense_overflow_comes_out_as_inf():
    """The op does not check its result: an overflow is an inf, which the training step refuses."""
    big = np.finfo(np.float32).max
    with np.errstate(over="ignore"):
        out, _ = dense_forward(np.full((1, 2), big, np.float32), np.ones((2, 1), np.float32),
                               np.zeros(1, np.float32))
    assert out.dtype == np.float32 and np.isposinf(out).all()


# --- Activations -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAIRS))
@given(data=st.data())
def test_activation_gradcheck(name, data):
    x = data.draw(arrays(np.float64, shapes, elements=values(away_from_zero=name in KINKED)))
    forward, backward = PAIRS[name]
    assert_gradients_match(forward, backward, {"x": x})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(PAIRS))
@given(data=st.data())
def test_activation_finite_at_extremes(name, dtype, data):
    """|x| up to 1e4, or up to the dtype's largest value: outputs and gradients stay finite."""
    limit = data.draw(st.sampled_from([1e4, float(np.finfo(dtype).max)]))
    x = data.draw(arrays(dtype, shapes, elements=values(-limit, limit, dtype=dtype)))
    dout = data.draw(arrays(dtype, x.shape, elements=values(-10.0, 10.0, dtype=dtype)))
    forward, backward = PAIRS[name]
    out, cache = forward(x)
    dx = backward(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype
    assert out.shape == x.shape and dx.shape == x.shape
    assert np.isfinite(out).all() and np.isfinite(dx).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_softplus_at_the_extremes(dtype):
    big = np.finfo(dtype).max
    x = np.array([-big, -1e4, 0.0, 1e4, big], dtype)
    np.testing.assert_array_equal(sigmoid_forward(x)[0], [0, 0, 0.5, 1, 1])
    np.testing.assert_array_equal(softplus_forward(x)[0], [0, 0, np.log(dtype(2)), 1e4, big])


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_sigmoid_is_in_unit_interval_and_softplus_above_zero_and_x(dtype, data):
    big = float(np.finfo(dtype).max)
    x = data.draw(arrays(dtype, shapes, elements=values(-big, big, dtype=dtype)))
    y = sigmoid_forward(x)[0]
    assert ((0 <= y) & (y <= 1)).all()
    s = softplus_forward(x)[0]
    assert (s >= 0).all() and (s >= x).all()


@given(arrays(np.float64, shapes, elements=values(-30.0, 30.0)))
def test_stable_forms_match_the_naive_ones_where_those_are_safe(x):
    np.testing.assert_allclose(sigmoid_forward(x)[0], 1 / (1 + np.exp(-x)), rtol=1e-13)
    np.testing.assert_allclose(softplus_forward(x)[0] - np.log1p(np.exp(x)), 0, atol=1e-13)


@given(arrays(np.float64, shapes, elements=values(-50.0, 50.0)))
def test_sigmoid_symmetry_and_softplus_odd_part(x):
    # sigmoid(-x) = 1 - sigmoid(x);  softplus(x) - softplus(-x) = x
    np.testing.assert_allclose(sigmoid_forward(-x)[0], 1 - sigmoid_forward(x)[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(softplus_forward(x)[0] - softplus_forward(-x)[0], x, rtol=1e-13, atol=1e-14)


@given(arrays(np.float64, shapes, elements=values(-20.0, 20.0)))
def test_tanh_matches_numpy(x):
    np.testing.assert_array_equal(tanh_forward(x)[0], np.tanh(x))


def test_known_values():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    out, cache = relu_forward(x)
    np.testing.assert_array_equal(out, [0, 0, 0, 0.5, 2])
    # derivative at exactly 0 taken as 0 (the slope of the left piece)
    np.testing.assert_array_equal(relu_backward(np.ones(5), cache), [0, 0, 0, 1, 1])
    out, cache = leaky_relu_forward(x, slope=0.1)
    np.testing.assert_allclose(out, [-0.2, -0.05, 0, 0.5, 2], rtol=1e-15)
    np.testing.assert_allclose(leaky_relu_backward(np.ones(5), cache), [0.1, 0.1, 0.1, 1, 1], rtol=1e-15)
    assert sigmoid_forward(np.zeros(1))[0][0] == 0.5
    assert softplus_forward(np.zeros(1))[0][0] == np.log(2)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_activation_keeps_float32_and_shape(name, rng):
    x = rng.normal(size=(2, 3, 4)).astype(np.float32)
    forward, backward = PAIRS[name]
    out, cache = forward(x)
    dx = backward(rng.normal(size=x.shape), cache)  # float64 dout
    assert out.dtype == dx.dtype == np.float32
    assert out.shape == dx.shape == x.shape


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_activation_rejects_non_finite_input(name, bad):
    forward, _ = PAIRS[name]
    with pytest.raises(ValueError, match=r"^x: expected finite values"):
        forward(np.array([[0.5, bad]]))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_activation_backward_rejects_wrong_dout_shape(name):
    forward, backward = PAIRS[name]
    _, cache = forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^dout: expected shape \(2, 3\)"):
        backward(np.ones((3, 2)), cache)


@pytest.mark.parametrize("slope", [-0.1, 1.0, "a", np.nan])
def test_leaky_relu_rejects_bad_slope(slope):
    with pytest.raises(ValueError, match=r"^slope: expected a number in \[0, 1\)"):
        leaky_relu_forward(np.ones(2), slope)


# --- Dense + (leaky) ReLU, fused ---------------------------------------------------


# --- Initialisation ------------------------------------------------------------


@pytest.mark.parametrize("init", ["he", "glorot", "fan_in"])
def test_dense_init_statistics(init, rng):
    fan_in, fan_out = 400, 300
    layer = Dense(fan_in, fan_out, rng, init=init)
    W, b = layer.params["W"], layer.params["b"]
    assert W.dtype == b.dtype == np.float32 and W.shape == (fan_in, fan_out)
    np.testing.assert_array_equal(b, 0)
    if init == "he":
        std = np.sqrt(2 / fan_in)
    else:
        limit = np.sqrt(6 / (fan_in + fan_out)) if init == "glorot" else 1 / np.sqrt(fan_in)
        assert np.abs(W).max() <= limit
        std = limit / np.sqrt(3)  # the standard deviation of U(-a, a)
    # Standard errors with n draws: the mean's is std / sqrt(n); the sample
    # std's is std / sqrt(2n) for a normal (smaller for a uniform). Allow 5 of each.
    n = W.size
    assert abs(W.mean()) < 5 * std / np.sqrt(n)
    assert abs(W.std() - std) < 5 * std / np.sqrt(2 * n)
