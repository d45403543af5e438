"""The exactly solvable model (docs/elbo.md#exact-model): the identities of note 000,
eqs. (1)-(3), checked to rounding error where everything is known in closed form."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvae.lecture import linear_gaussian as lg
from scratchvae.lecture.gaussian_density import gaussian_log_density_forward
from scratchvae.lecture.gaussian_full import kl_full_covariance_forward


def linear_gaussian_problem(rng, B, D_z, D):
    """Random x, W, b, s^2 and an arbitrary diagonal q."""
    W = rng.normal(scale=rng.uniform(0.2, 2.0), size=(D_z, D))
    b = rng.normal(size=D)
    noise_var = float(np.exp(rng.uniform(-2, 2)))
    x = rng.normal(scale=2.0, size=(B, D))
    mu = rng.normal(scale=2.0, size=(B, D_z))
    log_var = rng.uniform(-3, 2, size=(B, D_z))
    return x, W, b, noise_var, mu, log_var


def orthogonal_rows(rng, D_z, D):
    """W (D_z, D) with orthogonal rows of different lengths: W W^T is diagonal."""
    q = np.linalg.qr(rng.normal(size=(D, D)))[0]  # (D, D) orthogonal
    return rng.uniform(0.3, 2.0, size=(D_z, 1)) * q[:D_z]


@given(seed=st.integers(0, 2**32 - 1), D_z=st.integers(1, 4), D=st.integers(1, 6))
def test_linear_gaussian_gap_is_kl_to_posterior(seed, D_z, D):
    """Note 000, eqs. (1)-(3): ELBO <= log p(x), and the gap is KL(q || p(z | x)), for any q."""
    x, W, b, noise_var, mu, log_var = linear_gaussian_problem(np.random.default_rng(seed), 3, D_z, D)
    log_p = lg.linear_gaussian_log_marginal(x, W, b, noise_var)
    elbo = lg.linear_gaussian_elbo(x, W, b, noise_var, mu, log_var)
    mean, cov = lg.linear_gaussian_posterior(x, W, b, noise_var)
    q_cov = np.stack([np.diag(v) for v in np.exp(log_var)])  # (B, D_z, D_z)
    kl = kl_full_covariance_forward(mu, q_cov, mean, np.broadcast_to(cov, q_cov.shape))[0]
    scale = 1 + np.abs(elbo)  # rounding grows with the size of the terms
    assert np.all(elbo <= log_p + 1e-12 * scale)
    np.testing.assert_array_less(np.abs(log_p - elbo - kl), 1e-10 * scale)


def test_linear_gaussian_bound_is_tight_at_the_posterior(rng):
    """With W's rows orthogonal the posterior is diagonal, q can equal it, and ELBO = log p(x)."""
    W, b, noise_var = orthogonal_rows(rng, 3, 5), rng.normal(size=5), 0.7
    x = rng.normal(size=(4, 5))
    mean, cov = lg.linear_gaussian_posterior(x, W, b, noise_var)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-14  # diagonal, up to rounding
    log_var = np.broadcast_to(np.log(np.diag(cov)), mean.shape)  # (B, D_z)
    elbo = lg.linear_gaussian_elbo(x, W, b, noise_var, mean, log_var)
    np.testing.assert_allclose(elbo, lg.linear_gaussian_log_marginal(x, W, b, noise_var), rtol=0, atol=1e-10)


def test_linear_gaussian_bayes_rule_at_any_z(rng):
    """log p(x) = log p(x | z) + log p(z) - log p(z | x) for every z: an independent check of
    the marginal against the posterior (diagonal here, so the diagonal log-density applies)."""
    D_z, D, B = 2, 4, 5
    W, b, noise_var = orthogonal_rows(rng, D_z, D), rng.normal(size=D), 1.3
    x, z = rng.normal(size=(B, D)), rng.normal(scale=3.0, size=(B, D_z))
    mean, cov = lg.linear_gaussian_posterior(x, W, b, noise_var)
    log_lik = gaussian_log_density_forward(x, z @ W + b, np.full((B, D), np.log(noise_var)))[0]
    log_prior = gaussian_log_density_forward(z, np.zeros_like(z), np.zeros_like(z))[0]
    log_post = gaussian_log_density_forward(z, mean, np.broadcast_to(np.log(np.diag(cov)), z.shape))[0]
    np.testing.assert_allclose(
        log_lik + log_prior - log_post, lg.linear_gaussian_log_marginal(x, W, b, noise_var), rtol=1e-12
    )


def test_linear_gaussian_best_diagonal_q_has_the_posterior_precision_diagonal(rng):
    """Over diagonal q, the ELBO is largest at mean = posterior mean, variances 1 / P_jj (P the
    posterior precision), and the gap left is (sum_j log P_jj - log det P) / 2 >= 0."""
    x, W, b, noise_var, _, _ = linear_gaussian_problem(rng, 2, 3, 5)
    mean, cov = lg.linear_gaussian_posterior(x, W, b, noise_var)
    precision = np.linalg.inv(cov)  # (D_z, D_z)
    log_var = np.broadcast_to(-np.log(np.diag(precision)), mean.shape)  # (B, D_z)
    best = lg.linear_gaussian_elbo(x, W, b, noise_var, mean, log_var)
    gap = 0.5 * (np.sum(np.log(np.diag(precision))) - np.linalg.slogdet(precision)[1])
    np.testing.assert_allclose(lg.linear_gaussian_log_marginal(x, W, b, noise_var) - best, gap, rtol=1e-9)
    for _ in range(20):
        dmu, dlog_var = rng.normal(scale=0.1, size=(2, *mean.shape))
        assert np.all(lg.linear_gaussian_elbo(x, W, b, noise_var, mean + dmu, log_var + dlog_var) < best)


def test_linear_gaussian_expected_log_likelihood_matches_monte_carlo(rng):
    """The closed form of E_q log p(x | z) against an average over 20000 samples of z."""
    x, W, b, noise_var, mu, log_var = linear_gaussian_problem(rng, 3, 2, 5)
    n = 20000
    sigma = np.exp(0.5 * np.repeat(log_var, n, axis=0))  # (3 n, D_z)
    z = np.repeat(mu, n, axis=0) + sigma * rng.standard_normal((3 * n, 2))
    x_rep = np.repeat(x, n, axis=0)  # (3 n, D), row b n + l is sample l of example b
    samples = gaussian_log_density_forward(x_rep, z @ W + b, np.full(x_rep.shape, np.log(noise_var)))[0]
    samples = samples.reshape(3, n)
    se = samples.std(axis=1) / np.sqrt(n)
    closed = lg.linear_gaussian_expected_log_likelihood(x, W, b, noise_var, mu, log_var)
    np.testing.assert_array_less(np.abs(samples.mean(axis=1) - closed), 4 * se)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"W": np.ones((2, 4))}, "W: expected shape"),
        ({"b": np.ones(4)}, "b: expected shape"),
        ({"noise_var": 0.0}, "noise_var: expected a positive"),
        ({"mu": np.ones((3, 3))}, "mu: expected shape"),
        ({"log_var": np.ones((3, 1))}, "log_var: expected shape"),
    ],
)
def test_linear_gaussian_rejects_bad_arguments(change, match):
    args = {"x": np.ones((3, 5)), "W": np.ones((2, 5)), "b": np.ones(5), "noise_var": 1.0}
    args |= {"mu": np.ones((3, 2)), "log_var": np.zeros((3, 2))}
    with pytest.raises(ValueError, match=match):
        lg.linear_gaussian_elbo(**(args | change))
