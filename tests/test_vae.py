"""The VAE: its forward maths, its gradient as a whole, sampling, saving and loading."""

import re

import numpy as np
import pytest

from scratchvae.lecture.gaussian import kl_standard_normal_forward
from scratchvae.lecture.gradcheck import numerical_gradient, relative_error
from scratchvae.lecture.vae import FORMAT_VERSION, VAE
from scratchvae.tools import checkpoints, npz_files
from scratchvae.tools.gradcheck_report import MODEL_CHECKS, model_check


def tiny(dtype=np.float64, **kwargs):
    config = dict(hidden=(6,), latent_dim=2, activation="tanh", seed=3, dtype=dtype)
    config.update(kwargs)
    return VAE(10, **config)


def batch(rng, B=4, D=10):
    x = (rng.random((B, D)) < 0.5).astype(np.float64)
    return x, rng.standard_normal((B, 2))


def test_forward_matches_the_terms_computed_by_hand(rng):
    """Recompute every step with plain NumPy from the parameters, and compare."""
    model = tiny()
    x, eps = batch(rng)
    loss, cache = model.negative_elbo_forward(x, eps)
    p = model.params
    h = np.tanh(x @ p["encoder.0.W"] + p["encoder.0.b"])  # (B, H)
    stats = h @ p["encoder_head.W"] + p["encoder_head.b"]  # (B, 2 D_z)
    mu, log_var = stats[:, :2], stats[:, 2:]
    z = mu + np.exp(0.5 * log_var) * eps
    logits = np.tanh(z @ p["decoder.0.W"] + p["decoder.0.b"]) @ p["decoder_head.W"] + p["decoder_head.b"]
    prob = 1 / (1 + np.exp(-logits))
    rec = np.sum(x * np.log(prob) + (1 - x) * np.log(1 - prob), axis=1)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(cache.reconstruction, rec, rtol=1e-12)
    np.testing.assert_allclose(cache.kl, kl, rtol=1e-12)
    assert loss == pytest.approx(np.mean(kl - rec), rel=1e-12)


def test_beta_scales_only_the_kl_term(rng):
    model = tiny()
    x, eps = batch(rng)
    loss1, c1 = model.negative_elbo_forward(x, eps, beta=1.0)
    loss3, c3 = model.negative_elbo_forward(x, eps, beta=3.0)
    np.testing.assert_array_equal(c1.reconstruction, c3.reconstruction)
    assert loss3 - loss1 == pytest.approx(2 * np.mean(c1.kl), rel=1e-12)


@pytest.mark.parametrize("check", MODEL_CHECKS, ids=lambda c: "-".join(map(str, c[:3])))
def test_directional_gradient_check(check, rng):
    """The whole chain, <u, grad> against a central difference: relative error <= 1e-7."""
    result = model_check(*check, rng)
    assert result.passed, result


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_parameter_of_a_tiny_model(likelihood, rng):
    """Element by element, every weight and bias of a tiny model against central differences."""
    model = tiny(likelihood=likelihood)
    x, eps = batch(rng)
    model.zero_grad()
    model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps)[1])
    for name, param in model.params.items():
        def loss(value, param=param):
            saved = param.copy()
            param[...] = value
            result = model.negative_elbo_forward(x, eps)[0]
            param[...] = saved
            return result

        numerical = numerical_gradient(loss, param.copy())
        error = relative_error(model.grads[name], numerical).max()
        assert error <= 1e-7, f"{name}: relative error {error:.2e}"


def test_gradients_accumulate_until_zero_grad(rng):
    model = tiny()
    x, eps = batch(rng)
    cache = model.negative_elbo_forward(x, eps)[1]
    model.zero_grad()
    model.negative_elbo_backward(1.0, cache)
    once = {k: v.copy() for k, v in model.grads.items()}
    model.negative_elbo_backward(1.0, cache)
    for k, v in model.grads.items():
        np.testing.assert_allclose(v, 2 * once[k], rtol=1e-12)
    model.zero_grad()
    assert all(not v.any() for v in model.grads.values())


def test_backward_without_accumulate_is_zero_grad_then_backward(rng):
    model = tiny()
    x, eps = batch(rng)
    cache = model.negative_elbo_forward(x, eps)[1]
    model.zero_grad()
    model.negative_elbo_backward(1.0, cache)
    expected = {k: v.copy() for k, v in model.grads.items()}
    model.negative_elbo_backward(1.0, cache)  # stale: twice the gradient
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    for k, v in model.grads.items():
        np.testing.assert_array_equal(v, expected[k])


def test_float32_model_agrees_with_float64(rng):
    x, eps = batch(rng)
    loss64 = tiny(np.float64).negative_elbo_forward(x, eps)[0]
    loss32 = tiny(np.float32).negative_elbo_forward(x.astype(np.float32), eps.astype(np.float32))[0]
    assert loss32 == pytest.approx(loss64, rel=1e-5)


def test_shapes_of_encode_decode_sample_reconstruct(rng):
    model = VAE(10, hidden=(6, 5), latent_dim=3, seed=0)
    x, _ = batch(rng)
    mu, log_var = model.encode(x)
    assert mu.shape == log_var.shape == (4, 3) and mu.dtype == np.float32
    assert model.decode(mu).shape == (4, 10)
    assert model.reconstruct(x).shape == (4, 10)
    means = model.sample(7, rng)
    assert means.shape == (7, 10) and ((means >= 0) & (means <= 1)).all()
    draws = model.sample(7, rng, mean=False)
    assert set(np.unique(draws)) <= {0.0, 1.0}


def test_reconstruct_decodes_the_posterior_mean(rng):
    model = tiny()
    x, _ = batch(rng)
    np.testing.assert_array_equal(model.reconstruct(x), model.decode(model.encode(x)[0]))


def test_kl_term_is_the_closed_form_of_the_encoder_output(rng):
    model = tiny()
    x, eps = batch(rng)
    cache = model.negative_elbo_forward(x, eps)[1]
    # exactly the model's own op (its engine's) on the encoder's output ...
    np.testing.assert_array_equal(cache.kl, model.ops.kl_standard_normal_forward(*model.encode(x))[0])
    # ... and the lecture's closed form to rounding (the engine has its own expm1)
    np.testing.assert_allclose(cache.kl, kl_standard_normal_forward(*model.encode(x))[0], rtol=1e-12)


def test_save_and_load_round_trip(tmp_path, rng):
    model = VAE(10, hidden=(6,), latent_dim=2, likelihood="gaussian", beta=0.5, seed=1)
    path = tmp_path / "model.npz"
    checkpoints.save_model(model, path)
    loaded = checkpoints.load_model(path)
    assert loaded.config == model.config
    for name, value in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)
    x, eps = batch(rng)
    assert loaded.negative_elbo_forward(x, eps)[0] == model.negative_elbo_forward(x, eps)[0]
    assert not list(tmp_path.glob("*.tmp")), "the atomic write left a temporary file"


def test_load_rejects_what_is_not_a_checkpoint(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not an npz file")
    with pytest.raises(npz_files.CheckpointError, match=r"^" + re.escape(str(text))):
        checkpoints.load_model(text)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(npz_files.CheckpointError, match=r"^" + re.escape(str(other))):
        checkpoints.load_model(other)


def test_load_rejects_another_format_version(tmp_path):
    state = tiny().state_dict()
    state["format_version"] = np.array(FORMAT_VERSION + 1)
    path = tmp_path / "future.npz"
    np.savez(path, **state)
    with pytest.raises(ValueError, match=f"format version {FORMAT_VERSION + 1}"):
        checkpoints.load_model(path)


def test_load_state_dict_rejects_a_mismatched_model():
    state = VAE(10, hidden=(6,), latent_dim=2).state_dict()
    with pytest.raises(ValueError, match="has shape"):
        VAE(10, hidden=(7,), latent_dim=2).load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_dim=0), "input_dim"),
        (dict(input_dim=10, latent_dim=2.5), "latent_dim"),
        (dict(input_dim=10, hidden=(0,)), "hidden"),
        (dict(input_dim=10, hidden=()), "hidden"),
        (dict(input_dim=10, likelihood="poisson"), "likelihood"),
        (dict(input_dim=10, beta=-1), "beta"),
        (dict(input_dim=10, activation="swish"), "activation"),
    ],
)
def test_bad_configuration_is_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)


def test_bad_batch_is_named(rng):
    model = tiny()
    x, eps = batch(rng)
    with pytest.raises(ValueError, match="x: expected shape"):
        model.negative_elbo_forward(x[:, :9], eps)
    with pytest.raises(ValueError, match="eps: expected shape"):
        model.negative_elbo_forward(x, eps[:3])
    with pytest.raises(ValueError, match="kl_estimator"):
        model.negative_elbo_forward(x, eps, kl_estimator="exact")
    with pytest.raises(ValueError, match="x: expected values in"):
        model.negative_elbo_forward(x + 2, eps)
