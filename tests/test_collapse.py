"""The posterior-collapse meter: KL per dimension and active units (scratchvae/lecture/collapse.py)."""

import math

import numpy as np
import pytest

from scratchvae.lecture.collapse import active_units, encode_all, kl_per_dimension
from scratchvae.lecture.gaussian import kl_standard_normal_forward
from scratchvae.lecture.vae import VAE


@pytest.fixture
def model():
    return VAE(12, hidden=(8,), latent_dim=4, dtype=np.float64, seed=2)


@pytest.fixture
def x(rng):
    return (rng.random((40, 12)) < 0.5).astype(np.float64)


def test_kl_per_dimension_matches_the_formula_and_is_zero_at_the_prior(rng):
    mu, log_var = rng.standard_normal((50, 4)), rng.standard_normal((50, 4))
    expected = [np.mean([0.5 * (m**2 + math.exp(v) - 1 - v) for m, v in zip(mu[:, j], log_var[:, j])])
                for j in range(4)]
    np.testing.assert_allclose(kl_per_dimension(mu, log_var), expected, rtol=1e-12)
    assert np.all(kl_per_dimension(np.zeros((3, 2)), np.zeros((3, 2))) == 0)
    with pytest.raises(ValueError, match=r"^log_var: expected shape \(4, 3\)"):
        kl_per_dimension(np.ones((4, 3)), np.ones((4, 2)))


def test_kl_per_dimension_sums_to_the_average_kl_term(model, x):
    per_dim = kl_per_dimension(*encode_all(model, x, batch_rows=7))
    whole = kl_standard_normal_forward(*model.encode(x))[0].mean()
    assert per_dim.shape == (4,) and np.all(per_dim >= 0)
    np.testing.assert_allclose(per_dim.sum(), whole, rtol=1e-12)


def test_a_dimension_the_encoder_ignores_is_inactive_and_costs_no_kl(model, x):
    """Zero the encoder head's rows for dimension 1: mu_1 = 0 and log sigma_1^2 = 0 for every x."""
    head = model.encoder_head.params
    for j in (1, 1 + model.latent_dim):  # mu_1 and log_var_1
        head["W"][:, j] = 0.0
        head["b"][j] = 0.0
    mu, log_var = encode_all(model, x)
    count, activity = active_units(mu)
    assert activity[1] == 0.0 and kl_per_dimension(mu, log_var)[1] == 0.0
    assert count == int(np.sum(activity > 0.01)) and count <= 3


def test_activity_is_the_variance_of_the_posterior_means(model, x):
    count, activity = active_units(encode_all(model, x, batch_rows=9)[0], threshold=0.0)
    np.testing.assert_allclose(activity, model.encode(x)[0].var(axis=0), rtol=1e-12)
    assert count == int(np.sum(activity > 0))


def test_active_units_needs_two_examples():
    with pytest.raises(ValueError, match="mu's number of rows: expected an integer >= 2, got 1"):
        active_units(np.zeros((1, 12)))


def test_a_large_beta_switches_units_off():
    """Trained briefly on the same data, a beta = 8 model keeps fewer active units than beta = 1."""
    from scratchvae.lecture.optim import make_optimizer
    from scratchvae.lecture.training import train_step

    rng = np.random.default_rng(0)
    prototypes = rng.random((5, 30))  # five "digits"
    images = np.clip(prototypes[rng.integers(0, 5, 600)] + 0.1 * rng.standard_normal((600, 30)), 0, 1)
    counts = {}
    for beta in (1.0, 8.0):
        model = VAE(30, hidden=(32,), latent_dim=8, beta=beta, seed=0)
        optimizer = make_optimizer("adam", model, 3e-3)
        step_rng = np.random.default_rng(1)
        for step in range(300):
            train_step(model, optimizer, images, step_rng.integers(0, 600, 64), step_rng)
        counts[beta] = active_units(encode_all(model, images)[0])[0]
    assert counts[8.0] < counts[1.0], counts
