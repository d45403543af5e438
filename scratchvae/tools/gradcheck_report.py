"""``scratchvae gradcheck``: every op and three whole models, checked by finite differences.

Runs :func:`scratchvae.lecture.gradcheck.check_op` on each op, under both
sets of ops (the lecture's NumPy and the Numba engine's), and a
directional check of three small VAEs; prints one row per input.
Guide: docs/gradcheck.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine import ops as engine_ops
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.gradcheck import STEP, TOLERANCE, check_op, directional_check
from scratchvae.lecture.vae import VAE

__all__ = ["ENGINES", "MODEL_CHECKS", "Row", "format_table", "model_check", "op_checks", "run_all"]

# The two sets of ops, as the table labels them.
ENGINES = (("numpy", lecture_ops), ("numba", engine_ops))


class Row(NamedTuple):
    """One line of the `scratchvae gradcheck` table."""

    engine: str
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


def op_checks(rng, ops):
    """``(name, forward, backward, inputs, wrt)`` for every op of ``ops``, in course order.

    ``ops`` is :mod:`scratchvae.lecture.ops` or :mod:`scratchvae.engine.ops`.
    Inputs are float64, drawn from ``rng``, and kept clear of kinks.
    """
    B, D, K = 3, 5, 4
    normal = lambda *shape: rng.standard_normal(shape)  # noqa: E731
    return [
        ("dense", ops.dense_forward, ops.dense_backward,
         {"x": normal(B, D), "W": normal(D, K), "b": normal(K)}, None),
        ("relu", ops.relu_forward, ops.relu_backward, {"x": _away_from_zero(rng, (B, D))}, None),
        ("leaky_relu", lambda x: ops.leaky_relu_forward(x, 0.1), ops.leaky_relu_backward,
         {"x": _away_from_zero(rng, (B, D))}, None),
        ("tanh", ops.tanh_forward, ops.tanh_backward, {"x": normal(B, D)}, None),
        ("sigmoid", ops.sigmoid_forward, ops.sigmoid_backward, {"x": 3 * normal(B, D)}, None),
        ("softplus", ops.softplus_forward, ops.softplus_backward, {"x": 3 * normal(B, D)}, None),
        ("reparameterize", ops.reparameterize_forward, ops.reparameterize_backward,
         {"mu": normal(B, K), "log_var": normal(B, K), "eps": normal(B, K)}, ["mu", "log_var"]),
        ("kl_standard_normal", ops.kl_standard_normal_forward, ops.kl_standard_normal_backward,
         {"mu": normal(B, K), "log_var": normal(B, K)}, None),
        ("kl_diagonal", ops.kl_diagonal_forward, ops.kl_diagonal_backward,
         {"mu0": normal(B, K), "log_var0": normal(B, K),
          "mu1": normal(B, K), "log_var1": normal(B, K)}, None),
        ("kl_full_covariance", _symmetrised(ops.kl_full_covariance_forward),
         ops.kl_full_covariance_backward,
         {"mu0": normal(K), "cov0": _spd(rng, K), "mu1": normal(K), "cov1": _spd(rng, K)}, None),
        ("gaussian_log_density", ops.gaussian_log_density_forward, ops.gaussian_log_density_backward,
         {"z": normal(B, K), "mu": normal(B, K), "log_var": normal(B, K)}, None),
        ("bernoulli_log_likelihood", ops.bernoulli_log_likelihood_forward,
         ops.bernoulli_log_likelihood_backward,
         {"x": rng.random((B, D)), "logits": 3 * normal(B, D)}, ["logits"]),
        ("gaussian_log_likelihood", ops.gaussian_log_likelihood_forward,
         ops.gaussian_log_likelihood_backward,
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


def model_check(activation, likelihood, kl_estimator, h, rng, ops=engine_ops):
    """Directional check of a small float64 VAE's negative ELBO and its backward, on ``ops``."""
    model = VAE(12, hidden=(8,), latent_dim=3, activation=activation, likelihood=likelihood,
                seed=int(rng.integers(2**31)), dtype=np.float64, ops=ops)
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


def run_all(seed=0, tol=TOLERANCE, engines=ENGINES):
    """Check every op and the whole model in float64, under each engine; return the table's rows."""
    rows = []
    for engine, ops in engines:
        rng = np.random.default_rng(seed)
        for name, forward, backward, inputs, wrt in op_checks(rng, ops):
            for r in check_op(forward, backward, inputs, wrt=wrt, rng=rng, tol=tol):
                rows.append(Row(engine, name, r.name, r.max_rel_error, r.passed, r.message()))
        for activation, likelihood, kl_estimator, h in MODEL_CHECKS:
            r = model_check(activation, likelihood, kl_estimator, h, rng, ops)
            rows.append(Row(engine, f"VAE ({activation}, {likelihood}, {kl_estimator} KL)",
                            "all params", r.rel_error, r.rel_error <= tol,
                            f"<u, grad> = {r.analytic:.10g}, central difference {r.numerical:.10g}"))
    return rows


def format_table(rows, tol=TOLERANCE):
    """The rows as an aligned text table, failures explained underneath."""
    width = max(len(r.op) for r in rows)
    lines = [f"{'engine':<6}  {'op':<{width}}  {'input':<10}  {'max rel. error':>14}  result",
             f"{'-' * 6}  {'-' * width}  {'-' * 10}  {'-' * 14}  ------"]
    for r in rows:
        lines.append(f"{r.engine:<6}  {r.op:<{width}}  {r.input:<10}  {r.max_rel_error:>14.2e}  "
                     f"{'pass' if r.passed else 'FAIL'}")
    failed = [r for r in rows if not r.passed]
    lines.append(f"\n{len(rows) - len(failed)} of {len(rows)} checks pass "
                 f"(threshold: relative error <= {tol:g}, float64).")
    lines += [f"FAIL {r.engine} {r.op}: {r.detail}" for r in failed]
    return "\n".join(lines)
