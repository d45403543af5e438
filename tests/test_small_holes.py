"""The smaller holes a probe with bad input found in the lecture (the reliability issue, part 4).

Each test feeds the input that used to give nonsense, a silent cast or a
confusing error, and asserts the clear error (or the right result) now.
"""

import numpy as np
import pytest

from scratchvae.engine import ops as engine_ops
from scratchvae.lecture import estimators
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.gaussian_full import kl_full_covariance_forward
from scratchvae.lecture.gradcheck import numerical_gradient
from scratchvae.lecture.likelihoods import bernoulli_log_likelihood_forward
from scratchvae.lecture.optim import SGD, Adagrad, Adam
from scratchvae.lecture.vae import VAE


def test_numerical_gradient_refuses_an_integer_x():
    """It used to return [583.3, 1750, 2916.7] for the gradient of x^2 at [1, 2, 3]."""
    with pytest.raises(ValueError, match=r"^x: expected a float64 array .* got int64 array"):
        numerical_gradient(lambda x: x**2, np.array([1, 2, 3]))
    np.testing.assert_allclose(numerical_gradient(lambda x: x**2, np.array([1.0, 2.0, 3.0])),
                               [2.0, 4.0, 6.0], rtol=1e-10)


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.array([1.0, 2.0])

    def f(x):
        if x[0] != 1.0:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_bernoulli_log_likelihood_overflow_comes_out_as_minus_inf():
    """The op does not check its result: a row sum that overflows is -inf, which the training step refuses."""
    logits = np.full((1, 4), -3e38, np.float32)
    with np.errstate(over="ignore"):
        ll, _ = bernoulli_log_likelihood_forward(np.ones((1, 4)), logits)
    assert ll.dtype == np.float32 and np.isneginf(ll).all()


@pytest.fixture
def model():
    return VAE(6, hidden=(4,), latent_dim=2, dtype=np.float64)


def test_negative_elbo_refuses_an_empty_batch(model):
    """It used to return NaN (the mean of nothing)."""
    with pytest.raises(ValueError, match=r"^x: expected at least one example"):
        model.negative_elbo_forward(np.zeros((0, 6)), np.zeros((0, 2)))


@pytest.mark.parametrize("beta", [np.nan, -1.0, np.inf, "a lot"])
def test_a_bad_beta_is_refused_per_call_and_in_the_config(model, beta):
    with pytest.raises(ValueError, match=r"^beta: expected a finite KL weight >= 0"):
        model.negative_elbo_forward(np.zeros((1, 6)), np.zeros((1, 2)), beta=beta)
    with pytest.raises(ValueError, match=r"^beta: expected a finite KL weight >= 0"):
        VAE(6, hidden=(4,), latent_dim=2, beta=beta)


@pytest.mark.parametrize("shape", [(0, 2), (3, 0), (0,)])
def test_kl_full_covariance_refuses_empty_batches_and_dimensions(shape):
    mu = np.zeros(shape)
    cov = np.zeros(shape + shape[-1:])
    with pytest.raises(ValueError, match=r"^mu0: expected at least one pair"):
        kl_full_covariance_forward(mu, cov, mu, cov)


def test_sample_refuses_a_fractional_count_and_a_missing_generator(model):
    """sample(2.7) used to draw 2; rng=None an AttributeError."""
    with pytest.raises(ValueError, match=r"^n: expected an integer >= 1, got 2.7"):
        model.sample(2.7, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"^rng: expected a numpy.random.Generator"):
        model.sample(2, None)


@pytest.mark.parametrize("estimate", [estimators.elbo_lb, estimators.elbo_la,
                                      estimators.importance_weighted_bound])
def test_estimators_refuse_a_missing_generator(model, estimate):
    with pytest.raises(ValueError, match=r"^rng: expected a numpy.random.Generator"):
        estimate(model, np.zeros((2, 6)), 3, None)


@pytest.mark.parametrize("ops", [lecture_ops, engine_ops], ids=["numpy", "numba"])
@pytest.mark.parametrize("bad", [np.ones((2, 3), complex), np.full((2, 3), "x")])
def test_a_complex_or_string_dout_is_refused_not_cast(ops, bad):
    _, cache = ops.dense_forward(np.ones((2, 4)), np.ones((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"^dout: expected a real-valued array"):
        ops.dense_backward(bad, cache)


def test_state_dict_is_a_snapshot_not_the_live_parameters(model):
    state = model.state_dict()
    before = state["param/decoder_head.W"].copy()
    model.params["decoder_head.W"] += 1.0
    np.testing.assert_array_equal(state["param/decoder_head.W"], before)


@pytest.mark.parametrize("make, key, value, message", [
    (lambda p: Adam(p), "adam.t", np.array(-5), r"adam.t'\]: expected a step count >= 0"),
    (lambda p: Adam(p), "adam.m.w", np.array([np.nan, 0.0]), r"adam.m.w'\]: expected finite values"),
    (lambda p: Adam(p), "adam.v.w", np.array([-1.0, 0.0]), r"adam.v.w'\]: expected finite values and >= 0"),
    (lambda p: Adagrad(p), "adagrad.s.w", np.array([-1.0, 0.0]), r"expected finite values and >= 0"),
    (lambda p: SGD(p, lr=0.1), "sgd.u.w", np.array([np.inf, 0.0]), r"sgd.u.w'\]: expected finite values"),
])
def test_optimiser_state_is_checked_before_it_is_loaded(make, key, value, message):
    opt = make([("w", np.zeros(2), np.zeros(2))])
    state = opt.state_dict()
    state[key] = value
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    assert opt.t == 0 and all(not a.any() for arrays in opt.state.values() for a in arrays)
