"""The gradient checker itself: exact on known derivatives, and it catches wrong ones."""

from typing import NamedTuple

import numpy as np
import pytest

from scratchvae.lecture.gradcheck import (
    assert_gradients_match,
    check_op,
    directional_check,
    five_point_slope,
    numerical_gradient,
    relative_error,
)


class Cache(NamedTuple):
    y: np.ndarray


def square_forward(x):
    return x**2, Cache(x)


def square_backward(dout, cache):
    return 2 * cache.y * dout


def wrong_square_backward(dout, cache):
    # The kind of slip a check must catch: a dropped factor of 2.
    return cache.y * dout


def test_numerical_gradient_of_known_functions(rng):
    x = rng.normal(size=(3, 4))
    np.testing.assert_allclose(numerical_gradient(np.sin, x.copy()), np.cos(x), rtol=1e-11)
    dout = rng.normal(size=x.shape)
    np.testing.assert_allclose(
        numerical_gradient(np.exp, x.copy(), dout), dout * np.exp(x), rtol=1e-10
    )


def test_numerical_gradient_restores_its_input(rng):
    x = rng.normal(size=5)
    before = x.copy()
    numerical_gradient(np.sin, x)
    np.testing.assert_array_equal(x, before)


def test_stencil_error_is_fourth_order():
    """Halving h divides the error by about 2^4 = 16: the h^2 term really cancels."""
    x = np.array([0.3])
    errors = [abs(numerical_gradient(np.exp, x.copy(), h=h)[0] - np.exp(0.3)) for h in (0.1, 0.05)]
    assert 12 < errors[0] / errors[1] < 20


def test_five_point_slope_is_exact_up_to_quartics_and_works_element_wise():
    """The stencil's error is h^4 f^(5) / 30: zero for a polynomial of degree 4."""
    h = 0.25
    quartic = {k: (0.5 + k * h) ** 4 - 2 * (0.5 + k * h) for k in (-2, -1, 1, 2)}
    assert five_point_slope(quartic, h) == pytest.approx(4 * 0.5**3 - 2, abs=1e-12)
    arrays = {k: np.array([k * h, (k * h) ** 2, 3.0]) for k in (-2, -1, 1, 2)}
    np.testing.assert_allclose(five_point_slope(arrays, h), [1.0, 0.0, 0.0], atol=1e-12)


def test_relative_error_is_scale_free_and_floored():
    assert relative_error(1.0, 1.0 + 1e-9) == pytest.approx(5e-10, rel=1e-6)
    assert relative_error(1e6, 1e6 * (1 + 1e-9)) == pytest.approx(5e-10, rel=1e-6)
    # Both below the floor: compared absolutely, so rounding noise on a zero passes.
    assert relative_error(0.0, 1e-17) < 1e-7
    assert relative_error(0.0, 0.0) == 0.0


def test_check_op_passes_a_correct_backward(rng):
    (result,) = assert_gradients_match(square_forward, square_backward, {"x": rng.normal(size=(2, 3))})
    assert result.passed and result.max_rel_error < 1e-10


def test_check_op_catches_a_wrong_backward_and_says_where(rng):
    x = rng.normal(size=(2, 3)) + 2.0
    (result,) = check_op(square_forward, wrong_square_backward, {"x": x})
    assert not result.passed
    # Off by a factor of 2 everywhere: |a - n| / (|a| + |n|) = 1/3.
    assert result.max_rel_error == pytest.approx(1 / 3, rel=1e-6)
    with pytest.raises(AssertionError,
                       match=r"input 'x', element \(\d, \d\): expected .* from central difference, got"):
        assert_gradients_match(square_forward, wrong_square_backward, {"x": x})


def test_check_op_with_wrt_skips_data_inputs(rng):
    def forward(x, w):
        return x * w, (x, w)

    def backward(dout, cache):
        return dout * cache[0]  # gradient for w only

    (result,) = assert_gradients_match(
        forward, backward, {"x": rng.normal(size=3), "w": rng.normal(size=3)}, wrt=["w"]
    )
    assert result.name == "w"


def test_check_op_rejects_a_gradient_count_mismatch(rng):
    def forward(x, y):
        return x * y, (x, y)

    def backward(dout, cache):
        return dout * cache[1]  # only dx, but both inputs are asked for

    with pytest.raises(ValueError, match="backward returned 1 gradients, expected 2"):
        check_op(forward, backward, {"x": np.ones(2), "y": np.ones(2)})


def quadratic_model(rng):
    """L(A, b) = sum(tanh(X A + b)^2): small, smooth, with a known gradient."""
    X = rng.normal(size=(4, 3))
    A = rng.normal(size=(3, 2))
    b = rng.normal(size=2)

    def loss():
        return np.sum(np.tanh(X @ A + b) ** 2)

    def grads():
        y = np.tanh(X @ A + b)
        dpre = 2 * y * (1 - y**2)
        return [X.T @ dpre, dpre.sum(axis=0)]

    return loss, [A, b], grads


def test_directional_check_passes_a_correct_gradient(rng):
    loss, params, grads = quadratic_model(rng)
    before = [p.copy() for p in params]
    result = directional_check(loss, params, grads(), rng)
    assert result.passed, result
    for p, p0 in zip(params, before):
        np.testing.assert_array_equal(p, p0)


def test_directional_check_catches_a_wrong_gradient(rng):
    loss, params, grads = quadratic_model(rng)
    wrong = grads()
    wrong[1] = wrong[1] * 1.01  # a 1% error in the bias gradient only
    assert not directional_check(loss, params, wrong, rng).passed


def test_central_difference_error_is_h_squared_over_6_times_f3():
    """gradcheck (2): the two-point difference is off by h^2 f'''/6 (the 1/6 included), and the
    minimum of h^2 |f'''| / 6 + eps |f| / h sits at h = (3 eps)^(1/3), about 1e-5, where the two
    terms are 1.3e-11 and 2.5e-11 for |f| = |f'''| = 1, as docs/gradcheck.md says."""
    x, h = 0.7, 1e-2
    central = (np.sin(x + h) - np.sin(x - h)) / (2 * h)
    assert (central - np.cos(x)) / (h**2 * -np.cos(x) / 6) == pytest.approx(1.0, abs=1e-3)
    eps = np.finfo(np.float64).eps
    best = (3 * eps) ** (1 / 3)
    assert 0.8e-5 < best < 0.9e-5
    assert best**2 / 6 == pytest.approx(1.3e-11, rel=0.05)
    assert eps / best == pytest.approx(2.5e-11, rel=0.05)


def test_default_step_leaves_five_orders_of_margin():
    """gradcheck.py's comment and gradcheck (3): at h = 1e-3, rounding eps / h = 2.2e-13 and
    truncation h^4 = 1e-12 are both at least five orders of magnitude below the 1e-7 tolerance;
    and the stencil's leading error really is h^4 f^(5) / 30."""
    from scratchvae.lecture import gradcheck

    eps = np.finfo(np.float64).eps
    assert eps / gradcheck.STEP == pytest.approx(2.2e-13, rel=0.01)
    assert gradcheck.STEP**4 == pytest.approx(1e-12)
    assert max(eps / gradcheck.STEP, gradcheck.STEP**4) <= gradcheck.TOLERANCE / 1e5 * (1 + 1e-9)
    h, x = 0.05, 0.3  # large enough h for truncation to dwarf rounding
    values = {k: np.exp(x + k * h) for k in (-2, -1, 1, 2)}
    assert (five_point_slope(values, h) - np.exp(x)) / (-(h**4) * np.exp(x) / 30) == pytest.approx(
        1.0, abs=0.01)
