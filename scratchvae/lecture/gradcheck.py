"""Finite-difference gradient checks: does a backward match its forward.

A hand-written backward is a claim about the derivative of its forward. This
module tests that claim numerically, the way every derivation in ``docs/``
is verified. Derivation: docs/gradcheck.md#central-differences

Three tools:

* :func:`numerical_gradient` -- the derivative of ``sum(dout * f(x))`` with
  respect to every element of ``x``, by central differences
  (:func:`five_point_slope`);
* :func:`check_op` -- runs an op's forward and backward on given inputs and
  reports, per input, the largest relative error between the two;
* :func:`directional_check` -- for a whole model with many parameters: compare
  the analytic ``<u, grad L>`` with a central difference along one random
  direction ``u``.

Examples
--------
>>> import numpy as np
>>> from scratchvae.lecture.activations import tanh_forward, tanh_backward
>>> rng = np.random.default_rng(0)
>>> results = check_op(tanh_forward, tanh_backward, {"x": rng.normal(size=(3, 4))}, rng=rng)
>>> results[0].passed
True
"""

from typing import NamedTuple

import numpy as np

__all__ = [
    "CheckResult",
    "DirectionalResult",
    "assert_gradients_match",
    "check_op",
    "directional_check",
    "five_point_slope",
    "numerical_gradient",
    "relative_error",
]

# Default step and tolerance, for float64 inputs of order one.
# The fourth-order stencil's truncation error is h^4 |f'''''| / 30, at most
# ~h^4 = 1e-12 for fifth derivatives up to 30, and its rounding error
# ~eps/h = 2.2e-16 / 1e-3 = 2.2e-13, so 1e-7 leaves five orders of margin
# (docs/gradcheck.md#central-differences).
STEP = 1e-3
TOLERANCE = 1e-7
# Gradients smaller than this are compared in absolute terms (see relative_error).
FLOOR = 1e-8


def five_point_slope(values, h):
    """f'(x) from f at x - 2h, x - h, x + h and x + 2h: the fourth-order central difference.

    ``values[k]`` is f(x + k h) for k in -2, -1, 1, 2 (floats, or arrays
    taken element-wise). The two-point formula ``(f_1 - f_-1) / 2h`` has error
    O(h^2); combining it with the same formula at step 2h cancels the h^2 term
    (Richardson extrapolation).

    Examples
    --------
    >>> slope = five_point_slope({k: (1 + k * 0.1) ** 3 for k in (-2, -1, 1, 2)}, 0.1)
    >>> round(slope, 10)  # d x^3 / dx = 3 at x = 1, exact for a cubic but for rounding
    3.0

    Derivation: docs/gradcheck.md#central-differences
    """
    # f'(x) = (8 (f_1 - f_-1) - (f_2 - f_-2)) / 12h + O(h^4)
    # BEGIN SOLUTION
    return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * h)
    # END SOLUTION


def _central_difference(f, x, i, h):
    """D f(x) / d x[i]: :func:`five_point_slope` of f at x[i] - 2h, x[i] - h, x[i] + h, x[i] + 2h.

    ``f`` returns an array; the differences are taken element-wise before
    the caller sums them, so rounding error scales with the outputs that
    ``x[i]`` touches, not with the whole output.
    """
    # Perturb x[i] in place, and put it back even if f raises.
    # BEGIN SOLUTION
    original = x[i]
    values = {}
    try:
        for k in (-2, -1, 1, 2):
            x[i] = original + k * h
            values[k] = np.array(f(x), dtype=np.float64, copy=True)
    finally:
        x[i] = original
    return five_point_slope(values, h)
    # END SOLUTION


def numerical_gradient(f, x, dout=1.0, h=STEP):
    """Gradient of ``sum(dout * f(x))`` with respect to ``x``, numerically.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array (or a scalar).
    x : ndarray, float64
        The point. It is perturbed in place, one element at a time, and
        restored before returning (also if ``f`` raises). It must be a
        float64 array: a step of h = 1e-3 rounds to nothing in an integer
        array, and to a large relative error in float32.
    dout : float or ndarray
        Weights for ``f``'s outputs (the upstream gradient); shape of ``f(x)``.
    h : float
        Step size.

    Returns
    -------
    ndarray, shape of ``x``
        The numerical gradient.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = f"{x.dtype} array" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x: expected a float64 array (perturbed in place), got {got}; "
                         "pass x.astype(np.float64)")
    # BEGIN SOLUTION
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        grad[i] = np.sum(dout * _central_difference(f, x, i, h))
    return grad
    # END SOLUTION


def relative_error(analytic, numerical, floor=FLOOR):
    r"""Element-wise :math:`|a - n| / \max(|a| + |n|, \text{floor})`.

    Scale-free where the gradient is large; where both values are below
    ``floor`` the comparison becomes absolute, so a true zero gradient is
    not failed for a rounding-sized numerical value.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    numerical = np.asarray(numerical, dtype=np.float64)
    return np.abs(analytic - numerical) / np.maximum(
        np.abs(analytic) + np.abs(numerical), floor
    )


class CheckResult(NamedTuple):
    """One input's verdict from :func:`check_op`."""

    name: str
    max_rel_error: float
    index: tuple  # element where the error is largest
    analytic: float  # the backward's value at that element
    numerical: float  # the central difference at that element
    passed: bool

    def message(self):
        """A sentence a student can act on."""
        verdict = "ok" if self.passed else "FAILED"
        return (
            f"input {self.name!r}, element {self.index}: expected {self.numerical:.10g} "
            f"from central difference, got {self.analytic:.10g} "
            f"(relative error {self.max_rel_error:.2e}, {verdict})"
        )


def check_op(forward, backward, inputs, wrt=None, rng=None, h=STEP, tol=TOLERANCE):
    """Compare an op's backward with central differences of its forward.

    The scalar being differentiated is ``L = sum(dout * out)`` for a random
    ``dout`` (so every output element matters), where
    ``out, cache = forward(*inputs.values())``; the analytic gradient is
    ``backward(dout, cache)``.

    Parameters
    ----------
    forward : callable
        ``forward(*inputs) -> (out, cache)``.
    backward : callable
        ``backward(dout, cache) -> grad`` or a tuple of gradients.
    inputs : dict of str to ndarray
        The forward's positional arguments, by name, in order. Use float64.
    wrt : sequence of str, optional
        Names of the inputs that ``backward`` returns gradients for, in the
        order it returns them. Default: every input.
    rng : numpy.random.Generator, optional
        Draws ``dout``. Default: ``np.random.default_rng(0)``.
    h, tol : float
        Step size and the largest relative error that passes.

    Returns
    -------
    list of CheckResult
        One per name in ``wrt``.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    names = list(inputs)
    wrt = names if wrt is None else list(wrt)
    args = [np.array(v, dtype=np.float64) for v in inputs.values()]
    out, cache = forward(*args)
    dout = rng.standard_normal(np.shape(out))
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(wrt):
        raise ValueError(
            f"backward returned {len(grads)} gradients, expected {len(wrt)} for {wrt}"
        )
    results = []
    for name, analytic in zip(wrt, grads):
        position = names.index(name)

        def f(x, position=position):
            trial = list(args)
            trial[position] = x
            return forward(*trial)[0]

        numerical = numerical_gradient(f, args[position].copy(), dout, h)
        err = relative_error(analytic, numerical)
        worst = np.unravel_index(np.argmax(err), err.shape) if err.size else ()
        worst_err = float(err[worst]) if err.size else 0.0
        results.append(
            CheckResult(
                name=name,
                max_rel_error=worst_err,
                index=tuple(int(i) for i in worst),
                analytic=float(np.asarray(analytic)[worst]) if err.size else 0.0,
                numerical=float(numerical[worst]) if err.size else 0.0,
                passed=worst_err <= tol,
            )
        )
    return results


def assert_gradients_match(forward, backward, inputs, wrt=None, rng=None, h=STEP, tol=TOLERANCE):
    """:func:`check_op`, raising ``AssertionError`` with every failing input."""
    results = check_op(forward, backward, inputs, wrt=wrt, rng=rng, h=h, tol=tol)
    failed = [r.message() for r in results if not r.passed]
    if failed:
        raise AssertionError(f"{forward.__name__} vs {backward.__name__}:\n" + "\n".join(failed))
    return results


class DirectionalResult(NamedTuple):
    """Verdict of :func:`directional_check`."""

    analytic: float  # <u, grad L>
    numerical: float  # central difference of L along u
    rel_error: float
    passed: bool


def directional_check(loss, params, grads, rng, h=STEP, tol=TOLERANCE):
    r"""Check a whole model's gradient along one random direction.

    Checking every one of a model's parameters by differences would take one
    pair of forward passes each; instead draw a random unit direction ``u``
    over all parameters at once and compare

    .. math:: \langle u, \nabla L \rangle \approx \frac{d}{dt} L(\theta + t u) \Big|_{t=0}

    the right side by the same fourth-order central difference in ``t``
    (:func:`five_point_slope`).
    A wrong gradient anywhere shows up here with probability one.

    Parameters
    ----------
    loss : callable
        ``loss() -> float``, evaluated at the current values of ``params``.
        It must be deterministic (fix its noise, e.g. a fixed ``eps``).
    params : list of ndarray
        The parameters; perturbed in place and restored.
    grads : list of ndarray
        The analytic gradient of ``loss`` with respect to each of ``params``.
    rng : numpy.random.Generator
        Draws ``u``.
    h, tol : float
        Step along ``u`` and the largest relative error that passes.

    Returns
    -------
    DirectionalResult
    """
    directions = [rng.standard_normal(p.shape) for p in params]
    norm = np.sqrt(sum(float(np.sum(u * u)) for u in directions))
    directions = [u / norm for u in directions]
    analytic = sum(float(np.sum(u * g)) for u, g in zip(directions, grads))
    originals = [p.copy() for p in params]

    def loss_at(t):
        for p, p0, u in zip(params, originals, directions):
            p[...] = p0 + t * u
        return float(loss())

    t0 = np.zeros(1)
    numerical = float(
        numerical_gradient(lambda t: loss_at(t[0]), t0, 1.0, h)[0]
    )
    for p, p0 in zip(params, originals):
        p[...] = p0
    err = float(relative_error(analytic, numerical))
    return DirectionalResult(analytic, numerical, err, err <= tol)
