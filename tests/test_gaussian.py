"""Tests for scratchvae.lecture.gaussian and gaussian_density: gradients, the forward maths, bad input.

Gradient checks (float64, relative error <= 1e-7) show that each backward is
the derivative of its forward. They cannot show that the forward is the right
formula, so the forward maths is tested separately: moments of samples, closed
forms against Monte Carlo, and special cases with known answers.

Zeros of a gradient play the role kinks play for ReLU. Where an element of the
gradient is nearly zero, the check compares the finite difference's rounding
error (~1e-12) with a value near zero, and the relative error means nothing.
So gradient checks keep the inputs at least 0.05 away from the points where
a gradient vanishes (mu = 0, log_var = 0, eps = 0, mu0 = mu1,
log_var0 = log_var1, |z - mu| = sigma, and where the two parts of the diagonal
KL's dlog_var1 cancel); random covariances, which have no such structure, are
filtered instead so that no gradient entry is below 1e-4.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scratchvae.lecture import gaussian as g
from scratchvae.lecture import gaussian_density as gd
from scratchvae.lecture import gaussian_full as gf
from scratchvae.lecture.gradcheck import assert_gradients_match

shapes = st.tuples(st.integers(1, 4), st.integers(1, 5))  # (B, D_z)


def signed(magnitudes):
    """Either sign of a strategy of non-negative floats."""
    return st.tuples(magnitudes, st.booleans()).map(lambda m: m[0] if m[1] else -m[0])


def arrays(shape, elements, dtype=np.float64):
    return hnp.arrays(dtype, shape, elements=elements)


def away_from_zero(high, low=0.05):
    return signed(st.floats(low, high))


# float64: |mu| up to 1e3 and |log_var| up to 50 (variances from 2e-22 to 5e21);
# float32: the same means, |log_var| up to 20 (exp(88) already overflows float32).
EXTREMES = {np.float64: (1e3, 50.0), np.float32: (1e3, 20.0)}


def extreme(dtype, bound):
    return st.floats(-bound, bound, width=32 if dtype == np.float32 else 64)


def all_finite(*arrays):
    return all(np.isfinite(a).all() for a in arrays)


# --- Reparameterisation -------------------------------------------------------


@given(st.data())
def test_reparameterize_gradcheck(data):
    shape = data.draw(shapes)
    inputs = {
        "mu": data.draw(arrays(shape, st.floats(-3, 3))),
        "log_var": data.draw(arrays(shape, st.floats(-3, 3))),
        "eps": data.draw(arrays(shape, away_from_zero(3))),  # dlog_var is 0 at eps = 0
    }
    assert_gradients_match(
        g.reparameterize_forward, g.reparameterize_backward, inputs, wrt=["mu", "log_var"]
    )


def moments_match(z, mean, var, n_se=5):
    """Per column: are the sample mean and variance of ``z`` within ``n_se`` standard errors?

    Standard errors for n independent draws: sigma / sqrt(n) for the mean, and
    sigma^2 sqrt(2 / (n - 1)) for the sample variance of a normal sample.
    """
    n = z.shape[0]
    mean_ok = np.abs(z.mean(axis=0) - mean) <= n_se * np.sqrt(var / n)
    var_ok = np.abs(z.var(axis=0, ddof=1) - var) <= n_se * var * np.sqrt(2 / (n - 1))
    return mean_ok & var_ok


def test_reparameterize_moments(rng):
    """z has mean mu and variance exp(log_var), not exp(log_var / 2).

    The classic bug, treating the standard deviation as the variance, passes
    every gradient check (the backward is then right for the wrong forward);
    only the distribution of the samples can show it. The log-variances are
    chosen so that exp(log_var) and exp(log_var / 2) differ clearly.
    """
    n = 200_000
    mu = np.array([0.5, -2.0, 3.0])  # (D_z,)
    log_var = np.array([np.log(4.0), -1.0, 2.0])  # variances 4, 0.37, 7.4; sigmas 2, 0.61, 2.7
    eps = rng.standard_normal((n, 3))  # (n, D_z)
    z, _ = g.reparameterize_forward(np.tile(mu, (n, 1)), np.tile(log_var, (n, 1)), eps)
    assert moments_match(z, mu, np.exp(log_var)).all()
    # The test has the power to see the bug: a sampler whose *variance* is
    # exp(log_var / 2) (so its sigma is exp(log_var / 4)) fails in every column.
    buggy = mu + np.exp(log_var / 4) * eps  # (n, D_z)
    assert not moments_match(buggy, mu, np.exp(log_var)).any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_reparameterize_extremes(dtype, data):
    shape = data.draw(shapes)
    mu_bound, log_var_bound = EXTREMES[dtype]
    mu = data.draw(arrays(shape, extreme(dtype, mu_bound), dtype))
    log_var = data.draw(arrays(shape, extreme(dtype, log_var_bound), dtype))
    eps = data.draw(arrays(shape, extreme(dtype, 10.0), dtype))
    z, cache = g.reparameterize_forward(mu, log_var, eps)
    grads = g.reparameterize_backward(np.ones(shape, dtype), cache)
    assert z.dtype == dtype and all(d.dtype == dtype for d in grads)
    assert all_finite(z, *grads)


# --- KL to the standard normal --------------------------------------------------


@given(st.data())
def test_kl_standard_normal_gradcheck(data):
    shape = data.draw(shapes)
    inputs = {
        "mu": data.draw(arrays(shape, away_from_zero(3))),  # dmu = mu
        "log_var": data.draw(arrays(shape, away_from_zero(3))),  # dlog_var = expm1(log_var) / 2
    }
    assert_gradients_match(g.kl_standard_normal_forward, g.kl_standard_normal_backward, inputs)


def monte_carlo(samples):
    """Mean of ``samples`` and its standard error."""
    return samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)


def test_kl_standard_normal_matches_monte_carlo(rng):
    """The closed form equals E_q[log q(z) - log p(z)] estimated from samples of q."""
    n = 200_000
    mu = np.tile([0.5, -1.0, 2.0], (n, 1))  # (n, D_z), one q repeated
    log_var = np.tile([0.3, -0.7, 1.2], (n, 1))
    z, _ = g.reparameterize_forward(mu, log_var, rng.standard_normal(mu.shape))
    log_q, _ = gd.gaussian_log_density_forward(z, mu, log_var)  # (n,)
    log_p, _ = gd.gaussian_log_density_forward(z, np.zeros_like(z), np.zeros_like(z))
    estimate, se = monte_carlo(log_q - log_p)
    kl, _ = g.kl_standard_normal_forward(mu[:1], log_var[:1])
    assert abs(estimate - kl[0]) <= 4 * se


def test_kl_standard_normal_1d_matches_notes():
    """The 1-D cases of notes 002 and 004, with their slips corrected.

    Note 002 gives KL(N(mu, sigma) || N(0, 1)) = (sigma + mu^2 - 1 - log sigma) / 2.
    That is right only when its sigma is read as the *variance* (N(mu, sigma)
    in the mean-variance convention); read as the standard deviation it is a
    different, wrong number. Note 004, step 4, writes -KL as
    sum (1 + log sigma^2 - mu^2) / 2 and drops the -sigma^2 term.
    """
    mu, var = 0.7, 2.5
    kl, _ = g.kl_standard_normal_forward(np.array([[mu]]), np.array([[np.log(var)]]))
    assert kl[0] == pytest.approx(0.5 * (var + mu**2 - 1 - np.log(var)), rel=1e-14)
    sd = np.sqrt(var)
    assert kl[0] != pytest.approx(0.5 * (sd + mu**2 - 1 - np.log(sd)), rel=1e-2)
    assert -kl[0] == pytest.approx(0.5 * (1 + np.log(var) - mu**2 - var), rel=1e-14)
    assert -kl[0] != pytest.approx(0.5 * (1 + np.log(var) - mu**2), rel=1e-2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_kl_standard_normal_extremes(dtype, data):
    """Finite, KL >= 0, and KL = 0 exactly at the prior, > 0 once q departs from it."""
    shape = data.draw(shapes)
    mu_bound, log_var_bound = EXTREMES[dtype]
    mu = data.draw(arrays(shape, extreme(dtype, mu_bound), dtype))
    log_var = data.draw(arrays(shape, extreme(dtype, log_var_bound), dtype))
    kl, cache = g.kl_standard_normal_forward(mu, log_var)
    grads = g.kl_standard_normal_backward(np.ones(shape[0], dtype), cache)
    assert kl.dtype == dtype and all_finite(kl, *grads)
    assert (kl >= 0).all()
    at_prior = ((mu == 0) & (log_var == 0)).all(axis=1)  # (B,)
    # "Departs" by at least 1e-6: a departure of 1e-200 gives a KL below the
    # smallest float, so "KL = 0 iff q is the prior" holds up to underflow.
    departs = (np.maximum(np.abs(mu), np.abs(log_var)) >= 1e-6).any(axis=1)
    assert (kl[at_prior] == 0).all() and (kl[departs] > 0).all()


# --- KL between diagonal Gaussians ----------------------------------------------


@st.composite
def diagonal_pairs(draw):
    """(mu0, log_var0, mu1, log_var1), the two distributions 0.05 apart in every coordinate."""
    shape = draw(shapes)
    mu0 = draw(arrays(shape, st.floats(-2, 2)))
    log_var0 = draw(arrays(shape, st.floats(-1.5, 1.5)))
    gap = draw(arrays(shape, away_from_zero(2)))  # dmu0 = -gap / sigma1^2
    t = draw(arrays(shape, away_from_zero(1.5)))  # dlog_var0 = expm1(t) / 2, t = log_var0 - log_var1
    log_var1 = log_var0 - t
    # dlog_var1 = -(expm1(t) + gap^2 / sigma1^2) / 2 vanishes where the two parts cancel (t < 0)
    assume(np.all(np.abs(np.expm1(t) + gap**2 * np.exp(-log_var1)) >= 0.05))
    return mu0, log_var0, mu0 + gap, log_var1


@given(diagonal_pairs())
def test_kl_diagonal_gradcheck(pair):
    inputs = dict(zip(["mu0", "log_var0", "mu1", "log_var1"], pair))
    assert_gradients_match(gd.kl_diagonal_forward, gd.kl_diagonal_backward, inputs)


def test_kl_diagonal_matches_monte_carlo(rng):
    """KL(q || p) for two diagonal Gaussians against E_q[log q(z) - log p(z)]."""
    n = 200_000
    mu0, log_var0 = np.tile([0.5, -1.0], (n, 1)), np.tile([0.3, -0.7], (n, 1))  # (n, D_z)
    mu1, log_var1 = np.tile([-0.5, 0.4], (n, 1)), np.tile([0.8, 0.1], (n, 1))
    z, _ = g.reparameterize_forward(mu0, log_var0, rng.standard_normal(mu0.shape))
    log_q, _ = gd.gaussian_log_density_forward(z, mu0, log_var0)
    log_p, _ = gd.gaussian_log_density_forward(z, mu1, log_var1)
    estimate, se = monte_carlo(log_q - log_p)
    kl, _ = gd.kl_diagonal_forward(mu0[:1], log_var0[:1], mu1[:1], log_var1[:1])
    assert abs(estimate - kl[0]) <= 4 * se


@given(st.data())
def test_kl_diagonal_to_standard_normal_is_kl_standard_normal(data):
    shape = data.draw(shapes)
    mu = data.draw(arrays(shape, st.floats(-1e3, 1e3)))
    log_var = data.draw(arrays(shape, st.floats(-50, 50)))
    zeros = np.zeros(shape)
    kl, cache = gd.kl_diagonal_forward(mu, log_var, zeros, zeros)
    kl_prior, cache_prior = g.kl_standard_normal_forward(mu, log_var)
    np.testing.assert_allclose(kl, kl_prior, rtol=1e-12)
    dkl = np.ones(shape[0])
    dmu0, dlog_var0, _, _ = gd.kl_diagonal_backward(dkl, cache)
    for got, want in zip((dmu0, dlog_var0), g.kl_standard_normal_backward(dkl, cache_prior)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_kl_diagonal_extremes(dtype, data):
    """Finite, KL >= 0, KL(p || p) = 0 exactly, and KL > 0 once the two differ."""
    shape = data.draw(shapes)
    mu_bound, log_var_bound = EXTREMES[dtype]
    mu0, mu1 = (data.draw(arrays(shape, extreme(dtype, mu_bound), dtype)) for _ in "01")
    log_var0, log_var1 = (data.draw(arrays(shape, extreme(dtype, log_var_bound), dtype)) for _ in "01")
    kl, cache = gd.kl_diagonal_forward(mu0, log_var0, mu1, log_var1)
    grads = gd.kl_diagonal_backward(np.ones(shape[0], dtype), cache)
    assert kl.dtype == dtype and all_finite(kl, *grads)
    assert (kl >= 0).all()
    differ = (np.maximum(np.abs(mu1 - mu0), np.abs(log_var1 - log_var0)) >= 1e-6).any(axis=1)
    assert (kl[differ] > 0).all()
    same, _ = gd.kl_diagonal_forward(mu0, log_var0, mu0, log_var0)
    assert (same == 0).all()


# --- KL between full-covariance Gaussians ----------------------------------------


def sym(a):
    """The symmetric part (A + A^T) / 2 of a (stack of) square matrices."""
    return (a + np.swapaxes(a, -1, -2)) / 2


def kl_full_covariance_of_sym(mu0, cov0, mu1, cov1):
    """The full-covariance KL of the symmetric parts of ``cov0`` and ``cov1``.

    The forward accepts only symmetric covariances, but a finite difference
    perturbs one entry [i, j] at a time, which breaks the symmetry. Through
    this wrapper the perturbation moves [i, j] and [j, i] by h/2 each, and by
    the chain rule the wrapper's gradient is sym(G) for the forward's gradient
    G; the backward's G is symmetric, so sym(G) = G and the same backward
    serves. (The gradient of the trace/log-det formula at a symmetric point is
    that symmetric G; a non-symmetric "gradient" would be wrong here.)
    """
    return gf.kl_full_covariance_forward(mu0, sym(cov0), mu1, sym(cov1))


def spd(rng, batch, k, scale=1.0):
    """Random symmetric positive-definite matrices, eigenvalues >= 0.5 * scale."""
    a = rng.standard_normal(batch + (k, k))
    return scale * (a @ np.swapaxes(a, -1, -2) / k + rng.uniform(0.5, 1.5) * np.eye(k))


@st.composite
def full_pairs(draw, mu_scale=1.0, cov_scales=(1.0, 1.0)):
    """(mu0, cov0, mu1, cov1), one pair (batch ()) or a batch; values from a drawn seed."""
    k = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (1,), (3,)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mu0 = mu_scale * rng.standard_normal(batch + (k,))
    mu1 = mu0 + mu_scale * rng.standard_normal(batch + (k,))
    return mu0, spd(rng, batch, k, cov_scales[0]), mu1, spd(rng, batch, k, cov_scales[1])


@given(full_pairs())
def test_kl_full_covariance_gradcheck(pair):
    _, cache = gf.kl_full_covariance_forward(*pair)
    grads = gf.kl_full_covariance_backward(np.ones(pair[0].shape[:-1]), cache)
    # Random matrices leave no structure to steer clear of, so keep every
    # gradient entry >= 1e-4 in size (see the module docstring) by filtering.
    # The sizes come from the backward under test; that is safe: a wrong
    # backward still fails the check on the examples that pass, and one that
    # returned zeros would filter out everything, which Hypothesis reports.
    assume(min(np.abs(d).min() for d in grads) >= 1e-4)
    inputs = dict(zip(["mu0", "cov0", "mu1", "cov1"], pair))
    assert_gradients_match(kl_full_covariance_of_sym, gf.kl_full_covariance_backward, inputs)
    for dcov in grads[1::2]:
        np.testing.assert_allclose(dcov, sym(dcov), rtol=1e-12, atol=1e-15)


def log_density_full(z, mu, cov):
    """log N(z; mu, cov) for rows z (n, k), straight from the textbook formula."""
    k = mu.size
    r = z - mu  # (n, k)
    quad = np.sum(r * np.linalg.solve(cov, r.T).T, axis=1)  # (n,) r^T cov^{-1} r
    return -0.5 * (k * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + quad)


def test_kl_full_covariance_matches_monte_carlo(rng):
    """Eq. (11) for a non-diagonal pair against E_q[log q - log p], z = mu0 + L0 eps."""
    n, k = 200_000, 3
    mu0, mu1 = rng.standard_normal(k), rng.standard_normal(k)
    cov0, cov1 = spd(rng, (), k), spd(rng, (), k)
    z = mu0 + rng.standard_normal((n, k)) @ np.linalg.cholesky(cov0).T  # (n, k), rows ~ q
    estimate, se = monte_carlo(log_density_full(z, mu0, cov0) - log_density_full(z, mu1, cov1))
    kl, _ = gf.kl_full_covariance_forward(mu0, cov0, mu1, cov1)
    assert abs(estimate - kl) <= 4 * se


@given(st.data())
def test_kl_diagonal_matches_full_covariance(data):
    """With diagonal matrices, eq. (11) is the diagonal KL, values and gradients.

    By the chain rule through Sigma_jj = exp(log_var_j):
    dKL/dlog_var_j = dKL/dSigma_jj * exp(log_var_j).
    """
    shape = data.draw(shapes)
    mu0, log_var0, mu1, log_var1 = (data.draw(arrays(shape, st.floats(-3, 3))) for _ in range(4))
    eye = np.eye(shape[1])  # (D_z, D_z)
    cov0, cov1 = eye * np.exp(log_var0)[:, None, :], eye * np.exp(log_var1)[:, None, :]  # (B, D_z, D_z)
    kl, cache = gd.kl_diagonal_forward(mu0, log_var0, mu1, log_var1)
    kl_full, cache_full = gf.kl_full_covariance_forward(mu0, cov0, mu1, cov1)
    np.testing.assert_allclose(kl_full, kl, rtol=1e-10, atol=1e-14)
    dkl = np.ones(shape[0])
    dmu0, dlog_var0, dmu1, dlog_var1 = gd.kl_diagonal_backward(dkl, cache)
    dmu0_f, dcov0, dmu1_f, dcov1 = gf.kl_full_covariance_backward(dkl, cache_full)
    np.testing.assert_allclose(dmu0_f, dmu0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dmu1_f, dmu1, rtol=1e-10, atol=1e-12)
    diag0, diag1 = np.diagonal(dcov0, 0, 1, 2), np.diagonal(dcov1, 0, 1, 2)  # (B, D_z)
    np.testing.assert_allclose(diag0 * np.exp(log_var0), dlog_var0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(diag1 * np.exp(log_var1), dlog_var1, rtol=1e-9, atol=1e-12)


def test_kl_of_a_distribution_to_itself_is_zero(rng):
    mu, log_var = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    zeros = np.zeros((4, 3))
    assert (g.kl_standard_normal_forward(zeros, zeros)[0] == 0).all()
    assert (gd.kl_diagonal_forward(mu, log_var, mu, log_var)[0] == 0).all()
    mu, cov = rng.standard_normal((4, 3)), spd(rng, (4,), 3)
    np.testing.assert_allclose(gf.kl_full_covariance_forward(mu, cov, mu, cov)[0], 0, atol=1e-14)


def test_kl_full_covariance_single_is_batch_of_one(rng):
    mu0, mu1 = rng.standard_normal(3), rng.standard_normal(3)
    cov0, cov1 = spd(rng, (), 3), spd(rng, (), 3)
    kl, cache = gf.kl_full_covariance_forward(mu0, cov0, mu1, cov1)
    batch, cache_batch = gf.kl_full_covariance_forward(mu0[None], cov0[None], mu1[None], cov1[None])
    assert isinstance(kl, np.ndarray) and kl.shape == () and batch.shape == (1,)
    assert kl == batch[0]
    grads = gf.kl_full_covariance_backward(np.ones(()), cache)
    for single, batched in zip(grads, gf.kl_full_covariance_backward(np.ones(1), cache_batch)):
        np.testing.assert_array_equal(single, batched[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(pair=full_pairs(mu_scale=1e3, cov_scales=(1e-3, 1e3)) | full_pairs(cov_scales=(1e3, 1e-3)))
def test_kl_full_covariance_extremes(dtype, pair):
    mu0, cov0, mu1, cov1 = (x.astype(dtype) for x in pair)
    kl, cache = gf.kl_full_covariance_forward(mu0, sym(cov0), mu1, sym(cov1))
    grads = gf.kl_full_covariance_backward(np.ones(kl.shape, dtype), cache)
    assert kl.dtype == dtype and all(d.dtype == dtype for d in grads)
    assert all_finite(kl, *grads) and (kl >= 0).all()


# --- Log-density ----------------------------------------------------------------


@given(st.data())
def test_gaussian_log_density_gradcheck(data):
    shape = data.draw(shapes)
    mu = data.draw(arrays(shape, st.floats(-3, 3)))
    log_var = data.draw(arrays(shape, st.floats(-3, 3)))
    # u = (z - mu) / sigma = eps; dz vanishes at u = 0 and dlog_var = (u^2 - 1) / 2 at |u| = 1
    eps = data.draw(arrays(shape, signed(st.floats(0.05, 0.95) | st.floats(1.05, 3))))
    z = mu + np.exp(log_var / 2) * eps
    inputs = {"z": z, "mu": mu, "log_var": log_var}
    assert_gradients_match(gd.gaussian_log_density_forward, gd.gaussian_log_density_backward, inputs)


def test_gaussian_log_density_is_a_product_of_normal_pdfs(rng):
    """log q(z) = log prod_j N(z_j; mu_j, sigma_j^2), each pdf written out; and it integrates to 1."""
    z, mu, log_var = rng.standard_normal((3, 5, 4))  # three (B, D_z) arrays
    var = np.exp(log_var)
    pdf = np.exp(-((z - mu) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)  # (B, D_z)
    logq, _ = gd.gaussian_log_density_forward(z, mu, log_var)
    np.testing.assert_allclose(logq, np.log(np.prod(pdf, axis=1)), rtol=1e-12)
    # In one dimension, on a fine grid over mu +- 12 sigma: the density integrates to 1.
    grid = np.linspace(-12, 12, 20_001)[:, None] * np.exp(0.3) + 0.7  # (n, 1), sigma = e^0.3
    logq, _ = gd.gaussian_log_density_forward(grid, np.full_like(grid, 0.7), np.full_like(grid, 0.6))
    assert np.trapezoid(np.exp(logq), grid[:, 0]) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(data=st.data())
def test_gaussian_log_density_extremes(dtype, data):
    shape = data.draw(shapes)
    mu_bound, log_var_bound = EXTREMES[dtype]
    z, mu = (data.draw(arrays(shape, extreme(dtype, mu_bound), dtype)) for _ in "zm")
    log_var = data.draw(arrays(shape, extreme(dtype, log_var_bound), dtype))
    logq, cache = gd.gaussian_log_density_forward(z, mu, log_var)
    grads = gd.gaussian_log_density_backward(np.ones(shape[0], dtype), cache)
    assert logq.dtype == dtype and all(d.dtype == dtype for d in grads)
    assert all_finite(logq, *grads)


# --- Bad input -------------------------------------------------------------------

M = np.zeros((2, 3))
M32 = M.astype(np.float32)  # exp(100) overflows float32
NAN = np.where(np.eye(2, 3) > 0, np.nan, 0.0)
INF = np.full((2, 3), np.inf)
NOT_SPD = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
ASYMMETRIC = np.array([[2.0, 0.5], [0.4, 1.0]])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: g.reparameterize_forward(M, np.zeros((2, 4)), M), r"^log_var: expected shape \(2, 3\)"),
        (lambda: g.reparameterize_forward(M, M, NAN), r"^eps: expected finite values, got nan"),
        (lambda: g.reparameterize_forward(np.zeros(3), np.zeros(3), np.zeros(3)), r"^mu: expected a 2-dim"),
        (lambda: g.kl_standard_normal_forward(INF, M), r"^mu: expected finite values, got inf"),
        (lambda: g.kl_standard_normal_forward(M, np.zeros((3, 3))), r"^log_var: expected shape"),
        (lambda: gd.kl_diagonal_forward(M, M, np.zeros((2, 2)), M), r"^mu1: expected shape"),
        (lambda: gd.kl_diagonal_forward(M, M, M, NAN), r"^log_var1: expected finite"),
        (lambda: gd.gaussian_log_density_forward(np.zeros((1, 3)), M, M), r"^z: expected shape"),
        (lambda: gd.gaussian_log_density_forward(M, M, INF), r"^log_var: expected finite"),
        (lambda: gf.kl_full_covariance_forward(np.zeros(2), NOT_SPD, np.zeros(2), np.eye(2)),
         r"^cov0: expected a symmetric positive-definite matrix, got smallest eigenvalue -1"),
        (lambda: gf.kl_full_covariance_forward(np.zeros(2), np.eye(2), np.zeros(2), ASYMMETRIC),
         r"^cov1: expected a symmetric positive-definite matrix, got \[0, 1\] = 0.5 but \[1, 0\] = 0.4"),
        (lambda: gf.kl_full_covariance_forward(np.zeros(2), np.eye(2), np.zeros(3), np.eye(2)),
         r"^mu1: expected shape \(2,\)"),
        (lambda: gf.kl_full_covariance_forward(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)),
         r"^cov0: expected shape \(2, 2\)"),
        (lambda: gf.kl_full_covariance_forward(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2) * np.nan),
         r"^cov1: expected finite values"),
        (lambda: g.kl_standard_normal_backward(np.ones(3), g.kl_standard_normal_forward(M, M)[1]),
         r"^dkl: expected shape \(2\)"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("call", [lambda: g.reparameterize_forward(M, M + 2000, M + 1),
                                  lambda: g.kl_standard_normal_forward(M32, M32 + 100)])
def test_an_overflow_comes_out_as_inf(call):
    """The ops do not check their results: an overflow is an inf, which the training step refuses."""
    with np.errstate(over="ignore"):
        out, _ = call()
    assert np.isposinf(out).all()
