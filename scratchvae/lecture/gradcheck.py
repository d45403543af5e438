"""Finite-difference gradient checks: does a backward match its forward?

A hand-written backward is a claim about the derivative of its forward. This
module tests that claim numerically, the way every derivation in ``docs/``
is verified. Derivation: docs/gradcheck.md#central-differences

Three tools:

* :func:`numerical_gradient` -- the derivative of ``sum(dout * f(x))`` with
  respect to every element of ``x``, by central differences;
* :func:`check_op` -- runs an op's forward and backward on given inputs and
  reports, per input, the largest relative error between the two;
* :func:`directional_check` -- for a whole model with many parameters: compare
  the analytic ``<u, grad L>`` with a central difference along one random
  direction ``u``.

Examples
--------
>>> import numpy as np
>>> from scratchvae.engine.dense import tanh_forward, tanh_backward
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
    "numerical_gradient",
    "relative_error",
]

# Default step and tolerance, for float64 inputs of order one.
# The fourth-order stencil's truncation error is ~h^4 = 1e-12 and its
# rounding error ~eps/h = 1e-13, so 1e-7 leaves five orders of margin.
STEP = 1e-3
TOLERANCE = 1e-7
# Gradients smaller than this are compared in absolute terms (see relative_error).
FLOOR = 1e-8


def _central_difference(f, x, i, h):
    """d f(x) / d x[i], by the fourth-order central difference.

    With ``f_k = f(x + k h e_i)`` the two-point formula
    ``(f_1 - f_-1) / 2h`` has error O(h^2). Combining it with the same
    formula at step 2h cancels the h^2 term (Richardson extrapolation):

        f'(x) = (8 (f_1 - f_-1) - (f_2 - f_-2)) / 12h + O(h^4)

    ``f`` returns an array; the differences are taken element-wise before
    the caller sums them, so rounding error scales with the outputs that
    ``x[i]`` touches, not with the whole output.
    """
    original = x[i]
    values = {}
    for k in (-2, -1, 1, 2):
        x[i] = original + k * h
        values[k] = np.array(f(x), dtype=np.float64, copy=True)
    x[i] = original
    return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * h)


def numerical_gradient(f, x, dout=1.0, h=STEP):
    """Gradient of ``sum(dout * f(x))`` with respect to ``x``, numerically.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array (or a scalar).
    x : ndarray, float64
        The point. It is perturbed in place, one element at a time, and
        restored before returning.
    dout : float or ndarray
        Weights for ``f``'s outputs (the upstream gradient); shape of ``f(x)``.
    h : float
        Step size.

    Returns
    -------
    ndarray, shape of ``x``
        The numerical gradient.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        grad[i] = np.sum(dout * _central_difference(f, x, i, h))
    return grad


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

    the right side by the same fourth-order central difference in ``t``.
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


# --- Every op of the package, for `scratchvae gradcheck` -----------------


class Row(NamedTuple):
    """One line of the `scratchvae gradcheck` table."""

    op: str
    input: str
    max_rel_error: float
    passed: bool
    detail: str


def _away_from_zero(rng, shape, low=0.1):
    """Values with |x| in [low, 2): clear of the kink that ReLU has at 0."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, 2.0, size=shape)


def _spd(rng, k):
    """A random symmetric positive-definite k x k matrix, well conditioned."""
    A = rng.standard_normal((k, k))
    return A @ A.T / k + 0.5 * np.eye(k)


def _symmetrised(forward):
    """Wrap a forward taking covariances so it reads only their symmetric part.

    kl_full_covariance needs symmetric matrices, but a finite difference moves
    one entry at a time. Feeding (A + A^T)/2 makes d/dA_ij = (G_ij + G_ji)/2,
    which is G_ij when the analytic gradient G is symmetric, as it is here.
    """

    def wrapped(mu0, cov0, mu1, cov1):
        return forward(mu0, (cov0 + cov0.T) / 2, mu1, (cov1 + cov1.T) / 2)

    wrapped.__name__ = forward.__name__
    return wrapped


def op_checks(rng):
    """``(name, forward, backward, inputs, wrt)`` for every op, in course order.

    Inputs are float64, drawn from ``rng``, and kept clear of kinks.
    """
    from scratchvae.lecture import gaussian as g
    from scratchvae.engine import dense as ly
    from scratchvae.lecture import likelihoods as lk
    B, D, K = 3, 5, 4
    normal = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    return [
        ("dense", ly.dense_forward, ly.dense_backward,
         {"x": normal(B, D), "W": normal(D, K), "b": normal(K)}, None),
        ("relu", ly.relu_forward, ly.relu_backward, {"x": _away_from_zero(rng, (B, D))}, None),
        ("leaky_relu", lambda x: ly.leaky_relu_forward(x, 0.1), ly.leaky_relu_backward,
         {"x": _away_from_zero(rng, (B, D))}, None),
        ("tanh", ly.tanh_forward, ly.tanh_backward, {"x": normal(B, D)}, None),
        ("sigmoid", ly.sigmoid_forward, ly.sigmoid_backward, {"x": 3 * normal(B, D)}, None),
        ("softplus", ly.softplus_forward, ly.softplus_backward, {"x": 3 * normal(B, D)}, None),
        ("reparameterize", g.reparameterize_forward, g.reparameterize_backward,
         {"mu": normal(B, K), "log_var": normal(B, K), "eps": normal(B, K)}, ["mu", "log_var"]),
        ("kl_standard_normal", g.kl_standard_normal_forward, g.kl_standard_normal_backward,
         {"mu": normal(B, K), "log_var": normal(B, K)}, None),
        ("kl_diagonal", g.kl_diagonal_forward, g.kl_diagonal_backward,
         {"mu0": normal(B, K), "log_var0": normal(B, K),
          "mu1": normal(B, K), "log_var1": normal(B, K)}, None),
        ("kl_full_covariance", _symmetrised(g.kl_full_covariance_forward),
         g.kl_full_covariance_backward,
         {"mu0": normal(K), "cov0": _spd(rng, K), "mu1": normal(K), "cov1": _spd(rng, K)}, None),
        ("gaussian_log_density", g.gaussian_log_density_forward, g.gaussian_log_density_backward,
         {"z": normal(B, K), "mu": normal(B, K), "log_var": normal(B, K)}, None),
        ("bernoulli_log_likelihood", lk.bernoulli_log_likelihood_forward,
         lk.bernoulli_log_likelihood_backward,
         {"x": rng.random((B, D)), "logits": 3 * normal(B, D)}, ["logits"]),
        ("gaussian_log_likelihood", lk.gaussian_log_likelihood_forward,
         lk.gaussian_log_likelihood_backward,
         {"x": rng.random((B, D)), "mean": normal(B, D), "log_var": normal(B, D)},
         ["mean", "log_var"]),
    ]


# Whole-model checks: (activation, likelihood, kl_estimator, step h).
# ReLU models use a smaller step: the stencil spans 4h along u, and a
# pre-activation crossing 0 inside it would spoil the difference.
MODEL_CHECKS = [
    ("tanh", "bernoulli", "analytic", STEP),
    ("tanh", "gaussian", "monte_carlo", STEP),
    ("relu", "bernoulli", "analytic", 1e-4),
]


def model_check(activation, likelihood, kl_estimator, h, rng):
    """Directional check of a small float64 VAE's negative ELBO and its backward."""
    from scratchvae.lecture.vae import VAE

    model = VAE(12, hidden=(8,), latent_dim=3, activation=activation,
                likelihood=likelihood, seed=int(rng.integers(2**31)), dtype=np.float64)
    x = (rng.random((4, 12)) < 0.5).astype(np.float64)
    eps = rng.standard_normal((4, 3))  # fixed noise: the loss is deterministic

    def loss():
        return model.negative_elbo_forward(x, eps, kl_estimator=kl_estimator)[0]

    model.zero_grad()
    model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps, kl_estimator=kl_estimator)[1])
    names = sorted(model.params)
    return directional_check(
        loss, [model.params[n] for n in names], [model.grads[n] for n in names], rng, h=h
    )


def run_all(seed=0, tol=TOLERANCE):
    """Check every op and the whole model in float64; return the table's rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, forward, backward, inputs, wrt in op_checks(rng):
        for r in check_op(forward, backward, inputs, wrt=wrt, rng=rng, tol=tol):
            rows.append(Row(name, r.name, r.max_rel_error, r.passed, r.message()))
    for activation, likelihood, kl_estimator, h in MODEL_CHECKS:
        r = model_check(activation, likelihood, kl_estimator, h, rng)
        rows.append(Row(f"VAE ({activation}, {likelihood}, {kl_estimator} KL)", "all params",
                        r.rel_error, r.rel_error <= tol,
                        f"<u, grad> = {r.analytic:.10g}, central difference {r.numerical:.10g}"))
    return rows


def format_table(rows, tol=TOLERANCE):
    """The rows as an aligned text table, failures explained underneath."""
    width = max(len(r.op) for r in rows)
    lines = [f"{'op':<{width}}  {'input':<10}  {'max rel. error':>14}  result",
             f"{'-' * width}  {'-' * 10}  {'-' * 14}  ------"]
    for r in rows:
        lines.append(f"{r.op:<{width}}  {r.input:<10}  {r.max_rel_error:>14.2e}  "
                     f"{'pass' if r.passed else 'FAIL'}")
    failed = [r for r in rows if not r.passed]
    lines.append(f"\n{len(rows) - len(failed)} of {len(rows)} checks pass "
                 f"(threshold: relative error <= {tol:g}, float64).")
    lines += [f"FAIL {r.op}: {r.detail}" for r in failed]
    return "\n".join(lines)
