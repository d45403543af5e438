"""Tests for scratchvae/likelihoods.py: gradients, the maths of the forward, extremes, errors."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scratchvae.lecture.gradcheck import assert_gradients_match
from scratchvae.lecture.likelihoods import (
    bernoulli_log_likelihood_backward,
    bernoulli_log_likelihood_forward,
    gaussian_log_likelihood_backward,
    gaussian_log_likelihood_forward,
)

EPS32 = float(np.finfo(np.float32).eps)
TINY32 = float(np.finfo(np.float32).tiny)
LOG_2PI = np.log(2 * np.pi)

shapes = st.tuples(st.integers(1, 4), st.integers(1, 8))  # (B, D)


def floats(shape, low, high, width=64):
    dtype = np.float32 if width == 32 else np.float64
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, width=width))


@st.composite
def pixels(draw, shape, width=64):
    """x of the given shape: all binary, or all grey levels in [0, 1]."""
    dtype = np.float32 if width == 32 else np.float64
    if draw(st.booleans()):
        return draw(hnp.arrays(dtype, shape, elements=st.sampled_from([0.0, 1.0])))
    return draw(floats(shape, 0.0, 1.0, width))


def sigmoid(logits):
    return 1 / (1 + np.exp(-logits))


def away_from_prediction(x, logits, gap=0.02):
    """Move any x_j closer than gap/2 to sigmoid(l_j) to gap away from it.

    Where x_j = sigmoid(l_j) the gradient x_j - sigmoid(l_j) is zero, and a
    relative-error check would compare the stencil's rounding noise with
    zero: the same trouble as a kink. With |l| <= 4, sigmoid(l) is in
    [0.018, 0.982], so the moved x stays in [0, 1].
    """
    p = sigmoid(logits)
    moved = np.where(p > 0.5, p - gap, p + gap)
    return np.where(np.abs(x - p) < gap / 2, moved, x)


# --- Bernoulli -------------------------------------------------------------


@given(data=st.data(), shape=shapes)
def test_bernoulli_gradcheck(data, shape):
    logits = data.draw(floats(shape, -4.0, 4.0))
    x = away_from_prediction(data.draw(pixels(shape)), logits)
    assert_gradients_match(
        bernoulli_log_likelihood_forward,
        bernoulli_log_likelihood_backward,
        {"x": x, "logits": logits},
        wrt=["logits"],
    )


@pytest.mark.parametrize("width", [32, 64])
@given(data=st.data(), shape=shapes)
def test_bernoulli_extreme_logits_stay_finite(width, data, shape):
    logits = data.draw(floats(shape, -1e4, 1e4, width))
    x = data.draw(pixels(shape, width))
    dll = data.draw(floats((shape[0],), -10.0, 10.0, width))
    ll, cache = bernoulli_log_likelihood_forward(x, logits)
    dlogits = bernoulli_log_likelihood_backward(dll, cache)
    assert ll.dtype == dlogits.dtype == logits.dtype
    assert np.all(np.isfinite(ll)) and np.all(ll <= 0)
    assert np.all(np.isfinite(dlogits))
    # |x - sigmoid(l)| <= 1 for x in [0, 1]: a pixel never pushes harder than dll
    assert np.all(np.abs(dlogits) <= np.abs(dll)[:, None])


def test_bernoulli_matches_textbook_formula(rng):
    x = np.concatenate([rng.random((3, 6)) < 0.5, rng.random((3, 6))])  # binary and grey
    logits = 3 * rng.standard_normal((6, 6))
    p = sigmoid(logits)
    textbook = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    ll, _ = bernoulli_log_likelihood_forward(x, logits)
    np.testing.assert_allclose(ll, textbook, rtol=1e-12)


def test_bernoulli_textbook_formula_fails_where_ours_does_not():
    # The textbook sum x log p + (1 - x) log(1 - p), in float32.
    def textbook(x, logits):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            p = 1 / (1 + np.exp(-logits))
            return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)

    # Saturation: sigmoid(100) rounds to 1 and sigmoid(-100) to ~0.
    x = np.array([[1, 0, 0, 1]], dtype=np.float32)
    logits = np.array([[100, -100, 100, -100]], dtype=np.float32)
    assert not np.isfinite(textbook(x, logits)[0])  # nan from 0 * log(0)
    ll, _ = bernoulli_log_likelihood_forward(x, logits)
    assert ll.dtype == np.float32 and ll[0] == pytest.approx(-200.0, rel=1e-7)

    # Cancellation: at l = 12, 1 - p keeps only ~2 correct digits in float32.
    x, logits = np.zeros((1, 1), np.float32), np.full((1, 1), 12.0, np.float32)
    exact = -np.logaddexp(0.0, 12.0)  # -softplus(12), in float64
    assert abs(textbook(x, logits)[0] - exact) > 1e-3
    ll, _ = bernoulli_log_likelihood_forward(x, logits)
    assert abs(ll[0] - exact) < 2 * EPS32 * abs(exact)


def test_bernoulli_is_maximised_where_sigmoid_equals_x(rng):
    x = rng.uniform(0.05, 0.95, size=(3, 5))  # grey levels
    best = np.log(x / (1 - x))  # sigmoid(best) = x
    ll_best, cache = bernoulli_log_likelihood_forward(x, best)
    # the derivative x - sigmoid(l) vanishes there ...
    np.testing.assert_allclose(bernoulli_log_likelihood_backward(np.ones(3), cache), 0, atol=1e-12)
    # ... and moving every logit away lowers ll (each term is concave in l)
    for shift in np.linspace(-2, 2, 41):
        if shift != 0:
            ll, _ = bernoulli_log_likelihood_forward(x, best + shift)
            assert np.all(ll < ll_best)


@pytest.mark.parametrize("D", [1, 2, 3, 6])
def test_bernoulli_sums_to_one_over_binary_images(D, rng):
    logits = 2 * rng.standard_normal((1, D))
    images = np.array(list(itertools.product([0.0, 1.0], repeat=D)))  # (2^D, D)
    ll, _ = bernoulli_log_likelihood_forward(images, np.repeat(logits, len(images), axis=0))
    assert np.exp(ll).sum() == pytest.approx(1.0, abs=1e-12)


@given(data=st.data(), shape=shapes)
def test_bernoulli_float32_agrees_with_float64(data, shape):
    logits32 = data.draw(floats(shape, -30.0, 30.0, width=32))
    x32 = data.draw(pixels(shape, width=32))
    dll32 = data.draw(floats((shape[0],), -10.0, 10.0, width=32))
    ll32, cache32 = bernoulli_log_likelihood_forward(x32, logits32)
    x64, logits64 = x32.astype(np.float64), logits32.astype(np.float64)  # the same numbers
    ll64, cache64 = bernoulli_log_likelihood_forward(x64, logits64)
    # rounding of each of the D terms, relative to their size
    scale = np.sum(np.abs(x64 * logits64) + np.logaddexp(0, logits64), axis=1)
    assert np.all(np.abs(ll32 - ll64) <= 4 * shape[1] * EPS32 * scale)
    d32 = bernoulli_log_likelihood_backward(dll32, cache32)
    d64 = bernoulli_log_likelihood_backward(dll32.astype(np.float64), cache64)
    # (plus TINY32: below it float32 is subnormal and has no relative precision)
    assert np.all(np.abs(d32 - d64) <= 4 * EPS32 * np.abs(dll32)[:, None] + TINY32)


@pytest.mark.parametrize(
    "x, logits, match",
    [
        ([[0.5, 1.5]], [[0.0, 0.0]], r"x: expected values in \[0, 1\], got 1.5 at index \(0, 1\)"),
        ([[-0.25, 0.5]], [[0.0, 0.0]], r"x: expected values in .* got -0.25 at index \(0, 0\)"),
        ([[0, 1, 0]], [[0.0, 0.0]], r"x: expected shape \(1, 2\) to match logits, got \(1, 3\)"),
        ([[0.0, 1.0]], [[0.0, np.nan]], r"logits: expected finite values, got nan"),
        ([[0.0, 1.0]], [[np.inf, 0.0]], r"logits: expected finite values, got inf"),
        ([[0.0, np.nan]], [[0.0, 0.0]], r"x: expected finite values"),
        ([0.0, 1.0], [[0.0, 0.0]], r"x: expected a 2-dimensional array"),
        ([[0.0, 1.0]], [0.0, 0.0], r"logits: expected a 2-dimensional array"),
    ],
)
def test_bernoulli_rejects_bad_input(x, logits, match):
    with pytest.raises(ValueError, match=match):
        bernoulli_log_likelihood_forward(np.array(x), np.array(logits))


def test_bernoulli_backward_rejects_wrong_dll_shape():
    _, cache = bernoulli_log_likelihood_forward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="dll"):
        bernoulli_log_likelihood_backward(np.ones(3), cache)


# --- Gaussian --------------------------------------------------------------


@st.composite
def gaussian_inputs(draw, shape):
    """(x, mean, log_var) with both gradients kept away from zero.

    dmean = (x - mean) e^{-log_var} vanishes at x = mean, and dlog_var
    vanishes at (x - mean)^2 = e^{log_var}; near either, a relative-error
    check would compare rounding noise with zero. So draw the residual
    r = x - mean with |r| >= 0.05, and log_var = log(r^2) + t with |t| >= 0.05.
    """
    mean = draw(floats(shape, -3.0, 3.0))
    r = draw(floats(shape, 0.05, 2.0)) * np.where(draw(hnp.arrays(bool, shape)), 1, -1)
    t = draw(floats(shape, 0.05, 2.0)) * np.where(draw(hnp.arrays(bool, shape)), 1, -1)
    return mean + r, mean, np.log(r**2) + t


@given(data=st.data(), shape=shapes)
def test_gaussian_gradcheck(data, shape):
    x, mean, log_var = data.draw(gaussian_inputs(shape))
    assert_gradients_match(
        gaussian_log_likelihood_forward,
        gaussian_log_likelihood_backward,
        {"x": x, "mean": mean, "log_var": log_var},
        wrt=["mean", "log_var"],
    )


@given(data=st.data(), shape=shapes)
def test_gaussian_extreme_log_var_stays_finite(data, shape):
    x = data.draw(floats(shape, -10.0, 10.0))
    mean = data.draw(floats(shape, -10.0, 10.0))
    log_var = data.draw(floats(shape, -50.0, 50.0))
    ll, cache = gaussian_log_likelihood_forward(x, mean, log_var)
    dmean, dlog_var = gaussian_log_likelihood_backward(np.ones(shape[0]), cache)
    assert np.all(np.isfinite(ll))
    assert np.all(np.isfinite(dmean)) and np.all(np.isfinite(dlog_var))


def test_gaussian_matches_product_of_normal_pdfs(rng):
    x, mean = rng.standard_normal((2, 4, 5))
    log_var = rng.uniform(-1, 1, size=(4, 5))
    sd = np.exp(log_var / 2)
    pdf = np.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))  # (4, 5)
    ll, _ = gaussian_log_likelihood_forward(x, mean, log_var)
    np.testing.assert_allclose(ll, np.log(np.prod(pdf, axis=1)), rtol=1e-12)


def test_gaussian_best_variance_is_squared_residual(rng):
    # At a fixed residual r = x - mean, ll(v) = -1/2 (log 2 pi + v + r^2 e^{-v})
    # per pixel is maximised at e^v = r^2, with value -1/2 (log 2 pi + log r^2 + 1).
    mean = rng.standard_normal((3, 4))
    r = rng.uniform(0.1, 2.0, size=(3, 4))
    best = np.log(r**2)
    ll_best, cache = gaussian_log_likelihood_forward(mean + r, mean, best)
    np.testing.assert_allclose(ll_best, -0.5 * np.sum(LOG_2PI + best + 1, axis=1), rtol=1e-12)
    _, dlog_var = gaussian_log_likelihood_backward(np.ones(3), cache)
    np.testing.assert_allclose(dlog_var, 0, atol=1e-12)
    for shift in (-1.0, -0.1, 0.1, 1.0):
        ll, _ = gaussian_log_likelihood_forward(mean + r, mean, best + shift)
        assert np.all(ll < ll_best)


def test_gaussian_is_unbounded_when_a_pixel_is_fit_exactly():
    # r = 0: ll = -1/2 (log 2 pi + v) grows without limit as v -> -infinity,
    # the runaway that docs/likelihoods.md#gaussian warns about.
    x = np.full((1, 1), 0.25)
    log_vars = (0, -10, -20, -40)
    lls = [gaussian_log_likelihood_forward(x, x, np.full((1, 1), v))[0][0] for v in log_vars]
    np.testing.assert_allclose(lls, [-0.5 * (LOG_2PI + v) for v in log_vars], rtol=1e-12)
    assert lls == sorted(lls)


def test_gaussian_float32_agrees_with_float64(rng):
    x, mean = rng.standard_normal((2, 4, 6)).astype(np.float32)
    log_var = rng.uniform(-2, 2, size=(4, 6)).astype(np.float32)
    ll32, cache32 = gaussian_log_likelihood_forward(x, mean, log_var)
    ll64, cache64 = gaussian_log_likelihood_forward(
        x.astype(np.float64), mean.astype(np.float64), log_var.astype(np.float64)
    )
    assert ll32.dtype == np.float32
    np.testing.assert_allclose(ll32, ll64, rtol=1e-5, atol=1e-5)
    grads32 = gaussian_log_likelihood_backward(np.ones(4, np.float32), cache32)
    grads64 = gaussian_log_likelihood_backward(np.ones(4), cache64)
    for g32, g64 in zip(grads32, grads64):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "x, mean, log_var, match",
    [
        ([[0.0, 1.0]], [[0.0, np.nan]], [[0.0, 0.0]], r"mean: expected finite values"),
        ([[0.0, 1.0]], [[0.0, 0.0]], [[np.inf, 0.0]], r"log_var: expected finite values"),
        ([[0.0, np.inf]], [[0.0, 0.0]], [[0.0, 0.0]], r"x: expected finite values"),
        ([[0.0, 1]], [[0.0, 0.0]], [[0.0] * 3], r"log_var: expected shape \(1, 2\) to match mean"),
        ([[0.0] * 3], [[0.0, 0.0]], [[0.0, 0.0]], r"x: expected shape \(1, 2\) to match mean"),
        ([0.0, 1.0], [[0.0, 0.0]], [[0.0, 0.0]], r"x: expected a 2-dimensional array"),
    ],
)
def test_gaussian_rejects_bad_input(x, mean, log_var, match):
    with pytest.raises(ValueError, match=match):
        gaussian_log_likelihood_forward(np.array(x), np.array(mean), np.array(log_var))
