"""The tiny VAE of the lecture's first module: its backward is the derivative of its loss."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scratchvae.lecture.gradcheck import assert_gradients_match
from scratchvae.lecture.tiny_vae import tiny_vae_backward, tiny_vae_forward


def tiny_vae_inputs(rng, B=5, D=6, D_z=2):
    return {"x": rng.random((B, D)).round(), "eps": rng.standard_normal((B, D_z)),
            "W_enc": 0.5 * rng.standard_normal((D, 2 * D_z)), "b_enc": rng.standard_normal(2 * D_z),
            "W_dec": rng.standard_normal((D_z, D)), "b_dec": rng.standard_normal(D), "beta": 0.7}


def test_tiny_vae_backward_gradcheck(rng):
    assert_gradients_match(tiny_vae_forward, tiny_vae_backward, tiny_vae_inputs(rng),
                           wrt=["W_enc", "b_enc", "W_dec", "b_dec"])


def test_tiny_vae_loss_is_the_negative_elbo_by_hand(rng):
    """loss = mean(beta * KL - log p(x | z)), each term computed here from its formula."""
    inputs = tiny_vae_inputs(rng)
    x, eps, W_enc, b_enc, W_dec, b_dec, beta = inputs.values()
    stats = x @ W_enc + b_enc
    mu, log_var = np.split(stats, 2, axis=1)
    logits = (mu + np.exp(log_var / 2) * eps) @ W_dec + b_dec
    p = 1 / (1 + np.exp(-logits))
    log_lik = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)
    assert np.isclose(tiny_vae_forward(**inputs)[0], np.mean(beta * kl - log_lik), rtol=1e-12)


@given(B=st.integers(1, 6), D=st.integers(1, 8), D_z=st.integers(1, 3),
       scale=st.floats(0.01, 3.0), seed=st.integers(0, 2**32 - 1))
def test_tiny_vae_is_finite_for_any_shape(B, D, D_z, scale, seed):
    inputs = tiny_vae_inputs(np.random.default_rng(seed), B, D, D_z)
    inputs["W_enc"] *= scale
    loss, cache = tiny_vae_forward(**inputs)
    grads = tiny_vae_backward(1.0, cache)
    assert np.isfinite(loss)
    for name, grad in zip(["W_enc", "b_enc", "W_dec", "b_dec"], grads):
        assert grad.shape == inputs[name].shape and np.all(np.isfinite(grad))
