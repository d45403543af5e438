"""Tests for scratchvae/estimators.py: L^A and L^B, the importance-weighted bound, the two
gradient estimators, the minibatch estimator, and whole-model gradients."""

import itertools

import numpy as np
import pytest

from scratchvae.lecture import estimators as est
from scratchvae.lecture.gradcheck import directional_check
from scratchvae.lecture.vae import VAE

# --- A small float64 VAE --------------------------------------------------------


def small_vae(likelihood="bernoulli", activation="tanh", latent_dim=3, seed=0):
    return VAE(12, hidden=(8,), latent_dim=latent_dim, activation=activation,
               likelihood=likelihood, seed=seed, dtype=np.float64)


def narrow_posterior(model):
    """Set the encoder head's bias so that q(z|x) is narrow and away from N(0, I), as after
    training. A fresh network's q is close to the prior (small initial weights), where the
    estimators below differ too little for a test to tell them apart."""
    model.encoder_head.params["b"][...] = [1.0, -0.5, 0.8, -2.0, -2.5, -1.5]  # mu | log_var
    return model


def data(likelihood="bernoulli", B=4, seed=0):
    rng = np.random.default_rng(seed)
    if likelihood == "bernoulli":
        return (rng.random((B, 12)) < 0.5).astype(np.float64)
    return rng.normal(size=(B, 12))


def per_sample_terms(model, x, eps, kl_estimator):
    """log p(x | z_l) - KL-term for each of L samples per example: (B, L), from the model's loss."""
    L = eps.shape[0] // x.shape[0]
    cache = model.negative_elbo_forward(np.repeat(x, L, axis=0), eps, kl_estimator=kl_estimator)[1]
    return (cache.reconstruction - cache.kl).reshape(x.shape[0], L)


def test_la_and_lb_estimate_the_same_elbo_and_lb_varies_less():
    """Estimators (3)-(4): equal means, and on a narrowed posterior L^B varies less.

    L^B's advantage is that it does not sample the KL term, so it shows where
    that term varies: where q(z|x) is far from the prior (and no closer to the
    posterior, where the two would cancel). Near the prior, log q - log p is
    nearly constant and the two variances nearly equal. docs/estimators.md
    quotes the variances measured here, beside lesson 10's ratios on MNIST.
    """
    model, x, L = narrow_posterior(small_vae()), data(), 20000
    eps = np.random.default_rng(1).standard_normal((x.shape[0] * L, 3))
    a = per_sample_terms(model, x, eps, "monte_carlo")  # (B, L)
    b = per_sample_terms(model, x, eps, "analytic")  # (B, L)
    # Same eps for both, so compare per-sample differences: their mean is
    # E[log p(z) - log q(z|x)] + KL = 0 exactly, and their SE is smaller
    # (the two estimates are strongly correlated) than the independent-sample one.
    d = a - b
    np.testing.assert_array_less(np.abs(d.mean(axis=1)), 4 * d.std(axis=1) / np.sqrt(L))
    assert np.all(b.var(axis=1) < a.var(axis=1))
    # The numbers docs/estimators.md quotes: per-sample variances 1.4-1.6 (L^A), 0.01-0.03 (L^B).
    assert np.all((1.35 < a.var(axis=1)) & (a.var(axis=1) < 1.65)), a.var(axis=1)
    assert np.all((0.005 < b.var(axis=1)) & (b.var(axis=1) < 0.035)), b.var(axis=1)
    # elbo_estimate is that average, over the same noise in the same layout.
    for name, terms in (("monte_carlo", a), ("analytic", b)):
        elbo = est.elbo_estimate(model, x, L, np.random.default_rng(1), kl_estimator=name)[0]
        np.testing.assert_allclose(elbo, terms.mean(axis=1), rtol=1e-12)


def test_elbo_estimate_returns_its_terms_in_float64():
    model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=np.float32)
    elbo, rec, kl = est.elbo_lb(model, data(), 50, np.random.default_rng(0))
    assert elbo.dtype == rec.dtype == kl.dtype == np.float64
    np.testing.assert_array_equal(elbo, rec - kl)
    assert np.all(kl > 0) and np.all(np.isfinite(elbo))


@pytest.mark.parametrize("kl_estimator", ["analytic", "monte_carlo"])
def test_elbo_estimate_gradient_is_the_replicated_batch_gradient(kl_estimator):
    """d/dtheta of -mean_b L_b (L samples) = the model's backward on np.repeat(x, L, axis=0)."""
    model, x, L = small_vae(), data(), 5
    eps = np.random.default_rng(7).standard_normal((x.shape[0] * L, 3))
    model.zero_grad()
    cache = model.negative_elbo_forward(np.repeat(x, L, axis=0), eps, kl_estimator=kl_estimator)[1]
    model.negative_elbo_backward(1.0, cache)

    def loss():  # the same noise on every call: a fresh generator with the same seed
        return -np.mean(est.elbo_estimate(model, x, L, np.random.default_rng(7), kl_estimator)[0])

    params, grads = list(model.params.values()), list(model.grads.values())
    result = directional_check(loss, params, grads, np.random.default_rng(0))
    assert result.passed, result


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("kl_estimator", ["analytic", "monte_carlo"])
def test_negative_elbo_directional_gradcheck(likelihood, kl_estimator):
    model, x = small_vae(likelihood), data(likelihood, B=5)
    eps = np.random.default_rng(3).standard_normal((5, 3))
    model.zero_grad()
    cache = model.negative_elbo_forward(x, eps, kl_estimator=kl_estimator)[1]
    model.negative_elbo_backward(1.0, cache)
    params, grads = list(model.params.values()), list(model.grads.values())
    loss = lambda: model.negative_elbo_forward(x, eps, kl_estimator=kl_estimator)[0]  # noqa: E731
    for seed in range(3):
        result = directional_check(loss, params, grads, np.random.default_rng(seed))
        assert result.passed, result


def test_negative_elbo_directional_gradcheck_relu():
    """ReLU's loss is only piecewise smooth. The stencil moves the parameters by up to 2h along
    a unit direction, so with h = 1e-4 (not 1e-3) every pre-activation moves by a few 1e-4 at
    most and, for this seeded model, none crosses 0; truncation (h^4 ~ 1e-16) and rounding
    (eps / h ~ 2e-12) both stay far below the 1e-7 tolerance."""
    model, x = small_vae(activation="relu"), data(B=5)
    eps = np.random.default_rng(3).standard_normal((5, 3))
    model.zero_grad()
    model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps)[1])
    params, grads = list(model.params.values()), list(model.grads.values())
    result = directional_check(lambda: model.negative_elbo_forward(x, eps)[0], params, grads,
                               np.random.default_rng(0), h=1e-4)
    assert result.passed, result


def test_average_elbo_is_minus_joint_kl_minus_data_entropy():
    """The third view, elbo (9): E_D ELBO = -KL(q(x, z) || p(x, z)) - H(D), with D the empirical
    distribution of a small binary dataset (one example repeated, so D is not uniform) and the
    joint KL by quadrature over a 1-D latent; the ELBO side is elbo_lb's Monte Carlo estimate."""
    model = small_vae(latent_dim=1)
    examples, counts = data(B=3), np.array([1, 3, 2])
    weights = counts / counts.sum()  # D(x) for the three distinct examples
    z = np.linspace(-12, 12, 24001)[:, None]  # (n, 1)
    log_prior = -0.5 * (z[:, 0] ** 2 + np.log(2 * np.pi))  # (n,)
    out = model.decoder_output(z)
    mu, log_var = model.encode(examples)  # (3, 1) each
    joint_kl = 0.0
    for row, weight, mean, lv in zip(examples, weights, mu[:, 0], log_var[:, 0]):  # lv: log sigma^2
        log_q = -0.5 * ((z[:, 0] - mean) ** 2 / np.exp(lv) + lv + np.log(2 * np.pi))  # (n,)
        log_lik = model.log_likelihood_forward(np.broadcast_to(row, (len(z), 12)), out)[0]
        integrand = np.exp(log_q) * (np.log(weight) + log_q - log_lik - log_prior)
        joint_kl += weight * np.sum(integrand) * (z[1, 0] - z[0, 0])
    entropy = -np.sum(weights * np.log(weights))
    dataset = np.repeat(examples, counts, axis=0)  # the six examples D is made of
    average_elbo = np.mean(est.elbo_lb(model, dataset, 20000, np.random.default_rng(0))[0])
    assert average_elbo == pytest.approx(-joint_kl - entropy, abs=0.01)  # MC standard error 0.0015


# --- The importance-weighted bound ----------------------------------------------------


def test_an_untrained_mnist_sized_models_log_weights_are_near_minus_784_log_2():
    """docs/estimators.md (log-sum-exp) and lesson 3: log w on MNIST lies between about -30 and
    -600, near -784 log 2 = -543 for an untrained model, whose decoder gives every pixel about
    1/2 whatever z is (the trained end needs a trained model and MNIST). Such weights are 0 in
    float32 and tiny but representable in float64."""
    x = (np.random.default_rng(0).random((20, 784)) < 0.13).astype(np.float32)  # MNIST-like ink
    for hidden, latent_dim in (((64,), 8), ((400,), 20)):  # lesson 10's model; the standard one
        model = VAE(784, hidden=hidden, latent_dim=latent_dim, seed=0)
        log_w = est.elbo_la(model, np.repeat(x, 50, axis=0), 1, np.random.default_rng(1))[0]
        assert np.all((-600 < log_w) & (log_w < -500)), (log_w.min(), log_w.max())
        assert abs(np.median(log_w) + 784 * np.log(2)) < 15
        assert np.all(np.exp(log_w.astype(np.float32)) == 0)
        assert np.all(np.exp(log_w) > 0)


def test_importance_weighted_with_one_sample_is_la():
    """L_1 = log w_1 = L^A with one sample: the same numbers for the same noise."""
    model, x = small_vae(), data()
    iw = est.importance_weighted_bound(model, x, 1, np.random.default_rng(5))
    np.testing.assert_allclose(iw, est.elbo_la(model, x, 1, np.random.default_rng(5))[0], rtol=1e-12)


def test_importance_weighted_grows_with_k_on_nested_samples():
    """On the same 100 samples per example: L_100 >= mean of the ten L_10 of its blocks >=
    mean of the hundred L_1 = L^A (Jensen: log of a mean >= mean of logs). Taking expectations,
    E L_1 <= E L_10 <= E L_100. np.repeat(x, m) with k = 100 / m visits the same noise in blocks."""
    model, x = narrow_posterior(small_vae()), data()
    bound = {
        k: est.importance_weighted_bound(model, np.repeat(x, 100 // k, axis=0), k, np.random.default_rng(9))
        .reshape(x.shape[0], 100 // k)
        .mean(axis=1)
        for k in (1, 10, 100)
    }
    la = est.elbo_la(model, x, 100, np.random.default_rng(9))[0]
    np.testing.assert_allclose(bound[1], la, rtol=1e-12)
    assert np.all(bound[10] >= bound[1] - 1e-12) and np.all(bound[100] >= bound[10] - 1e-12)
    assert np.all(bound[100] > la + 0.1)  # not a tie: this q is far from the posterior


def test_importance_weighted_approaches_log_marginal():
    """With a 1-D latent, log p(x) = log integral p(x|z) N(z; 0, 1) dz by quadrature. L_k with
    k = 5000 comes within 0.1 of it (observed <= 0.05; the hardest example, whose q sits 2-3
    posterior widths off, has the heaviest-tailed weights), a small fraction of the ELBO's gap."""
    for likelihood in ("bernoulli", "gaussian"):
        model, x = small_vae(likelihood, latent_dim=1), data()
        z = np.linspace(-12, 12, 24001)[:, None]  # (n, 1): the integrand is negligible beyond
        out = model.decoder_output(z)
        log_joint = np.stack([
            model.log_likelihood_forward(np.broadcast_to(row, (len(z), 12)), out)[0] for row in x
        ]) - 0.5 * (z[:, 0] ** 2 + np.log(2 * np.pi))  # (B, n)
        top = log_joint.max(axis=1)
        log_p = top + np.log(np.sum(np.exp(log_joint - top[:, None]), axis=1) * (z[1, 0] - z[0, 0]))
        iw_error = np.abs(est.importance_weighted_bound(model, x, 5000, np.random.default_rng(2)) - log_p)
        elbo_gap = log_p - est.elbo_lb(model, x, 5000, np.random.default_rng(3))[0]
        np.testing.assert_array_less(iw_error, 0.1)
        assert np.all(elbo_gap > 0.02) and iw_error.mean() < 0.2 * elbo_gap.mean()


@pytest.mark.parametrize("k", [3, 100])
def test_importance_weighted_does_not_depend_on_how_the_examples_are_split(k):
    """One example per call, with one generator, against one call on all five: the noise is
    drawn example-major, so the same samples, the same bound. (Streamed in chunks of pairs, as
    evaluation needs for a test set: the engine's, tests/test_engine.py.)"""
    model, x = small_vae(), data(B=5)
    rng = np.random.default_rng(4)
    one_by_one = np.concatenate([est.importance_weighted_bound(model, x[b:b + 1], k, rng) for b in range(5)])
    at_once = est.importance_weighted_bound(model, x, k, np.random.default_rng(4))
    np.testing.assert_allclose(one_by_one, at_once, rtol=1e-12, atol=0)


@pytest.mark.parametrize("k", [3, 100])
def test_elbo_estimate_does_not_depend_on_batch_rows(k):
    """Chunks of 7 pairs (several examples per chunk for k = 3, one example split for k = 100)
    against one chunk: the same noise in the same order, the same estimate."""
    model, x = small_vae(), data(B=5)
    elbo_small = est.elbo_la(model, x, k, np.random.default_rng(4), batch_rows=7)[0]
    np.testing.assert_allclose(elbo_small, est.elbo_la(model, x, k, np.random.default_rng(4))[0], rtol=1e-12)


def test_importance_weighted_accumulates_float32_models_in_float64():
    model = VAE(12, hidden=(8,), latent_dim=3, seed=0, dtype=np.float32)
    bound = est.importance_weighted_bound(model, data(), 200, np.random.default_rng(0))
    assert bound.dtype == np.float64 and np.all(np.isfinite(bound))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: est.importance_weighted_bound(m, data(), 0, np.random.default_rng(0)), "k: expected"),
        (lambda m: est.elbo_lb(m, data(), 5, np.random.default_rng(0), 0), "batch_rows"),
        (lambda m: est.elbo_lb(m, data(), 2.5, np.random.default_rng(0)), "n_samples: expected"),
        (lambda m: est.elbo_lb(m, np.ones((2, 11)), 1, np.random.default_rng(0)), "x: expected shape"),
        (lambda m: est.elbo_lb(m, np.ones((0, 12)), 1, np.random.default_rng(0)), "at least one"),
        (lambda m: est.elbo_estimate(m, data(), 1, np.random.default_rng(0), "exact"), "kl_estimator"),
    ],
)
def test_estimators_reject_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(small_vae())


# --- Score function against reparameterisation (estimators (13), (15)) -----------------


def test_score_function_and_reparameterized_gradients_are_unbiased():
    """f(z) = sum_j z_j^2: E f = sum_j (mu_j^2 + sigma_j^2), so d/dmu = 2 mu and
    d/dlog sigma^2 = sigma^2."""
    S = 100000
    mu0, log_var0 = np.array([0.5, -1.0, 2.0]), np.array([0.0, -1.0, 0.5])
    mu, log_var = np.tile(mu0, (S, 1)), np.tile(log_var0, (S, 1))  # (S, 3)
    eps = np.random.default_rng(3).standard_normal((S, 3))
    score = est.score_function_gradient(lambda z: np.sum(z**2, axis=1), mu, log_var, eps)
    reparam = est.reparameterized_gradient(lambda z: 2 * z, mu, log_var, eps)
    for estimator in (score, reparam):
        for estimate, truth in zip(estimator, (2 * mu0, np.exp(log_var0))):
            se = estimate.std(axis=0) / np.sqrt(S)
            np.testing.assert_array_less(np.abs(estimate.mean(axis=0) - truth), 4 * se)
    # Measured: the score function's per-sample variance is 19-220 times the reparameterised
    # one for dmu and 15-110 times for dlog_var (docs/estimators.md quotes these). f(z)
    # multiplies the score whole, so every coordinate's estimate carries the noise of all three
    # z_j and grows with f's size.
    for s, r, low, high in zip(score, reparam, (19, 15), (220, 110)):  # to the digits quoted
        ratio = s.var(axis=0) / r.var(axis=0)  # (3,)
        assert 0.95 * low < ratio.min() and ratio.max() < 1.05 * high, ratio


def test_the_variance_minimising_baseline():
    """Estimators (15a) and lesson 10: for f(z) = z^2, q = N(1, 1), the score-function estimate
    (f - f0) eps has variance E[(f - f0)^2 eps^2] - 2^2: 30 at f0 = 0, 18 at f0 = E f = 2, and
    its least, 14, at f0* = E[f eps^2] / E[eps^2] = 4. Exact by Gauss-Hermite quadrature (exact
    for these polynomials); then the package's estimator on samples agrees."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()  # E[g(eps)] = sum(weights * g(nodes)) for eps ~ N(0, 1)
    f = (1 + nodes) ** 2

    def variance(f0):
        g = (f - f0) * nodes
        return np.sum(weights * g**2) - np.sum(weights * g) ** 2

    f0_star = np.sum(weights * f * nodes**2) / np.sum(weights * nodes**2)
    assert f0_star == pytest.approx(4.0, rel=1e-12)
    for f0, exact in ((0.0, 30.0), (2.0, 18.0), (f0_star, 14.0)):
        assert variance(f0) == pytest.approx(exact, rel=1e-12)
    assert variance(f0_star) < min(variance(f0_star - 0.1), variance(f0_star + 0.1))
    assert np.sum(weights * (2 * (1 + nodes) - 2) ** 2) == pytest.approx(4.0)  # reparameterised

    S = 200_000
    eps = np.random.default_rng(5).standard_normal((S, 1))
    mu, log_var = np.ones((S, 1)), np.zeros((S, 1))
    for f0, exact in ((0.0, 30.0), (2.0, 18.0), (4.0, 14.0)):
        g = est.score_function_gradient(lambda z: z[:, 0] ** 2 - f0, mu, log_var, eps)[0][:, 0]
        d = g - g.mean()
        se = np.sqrt((np.mean(d**4) - np.mean(d**2) ** 2) / S)  # of the sample variance
        assert abs(g.mean() - 2.0) < 4 * g.std() / np.sqrt(S)
        assert abs(g.var() - exact) < 4 * se, (f0, g.var(), se)


# --- The minibatch estimator (estimators (7)) -----------------------------------------


def test_minibatch_estimate_of_the_whole_dataset_is_its_sum(rng):
    elbo = rng.normal(-100, 10, size=12)
    assert est.minibatch_estimate(elbo, 12) == pytest.approx(elbo.sum(), rel=1e-14)


def test_minibatch_estimate_is_unbiased(rng):
    """Averaged over every minibatch of M = 3 out of N = 8 (uniform sampling), the estimate is
    the total; so is the average over the minibatches of a partition (M = 4)."""
    elbo = rng.normal(-100, 10, size=8)
    subsets = [est.minibatch_estimate(elbo[list(s)], 8) for s in itertools.combinations(range(8), 3)]
    assert np.mean(subsets) == pytest.approx(elbo.sum(), rel=1e-13)
    partition = [est.minibatch_estimate(part, 8) for part in elbo.reshape(2, 4)]
    assert np.mean(partition) == pytest.approx(elbo.sum(), rel=1e-13)


@pytest.mark.parametrize(
    "elbo, n, match",
    [([], 5, "at least one"), ([1.0, 2.0], 1, "dataset_size: expected at least"),
     ([1.0], 2.5, "dataset_size: expected an integer >= 1"), ([[1.0]], 3, "elbo_per_example")],
)
def test_minibatch_estimate_rejects_bad_arguments(elbo, n, match):
    with pytest.raises(ValueError, match=match):
        est.minibatch_estimate(elbo, n)
