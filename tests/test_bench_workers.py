"""The two-worker step that ``scratchvae.tools.bench_workers`` times is the training step.

Its timings are only worth reading if it computes what ``train_step`` computes:
the same loss, gradients and updated parameters, up to float32 summation order.
"""
import numpy as np
import pytest

from scratchvae.engine import ops as engine_ops
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import train_step
from scratchvae.lecture.vae import VAE
from scratchvae.tools.bench_workers import TwoWorkers, twin_of


def test_the_twin_shares_the_parameters_and_not_the_gradients():
    model = VAE(20, hidden=(8,), latent_dim=3, seed=1)
    twin = twin_of(model)
    assert model.params.keys() == twin.params.keys()
    for name in model.params:
        assert twin.params[name] is model.params[name], name
        assert twin.grads[name] is not model.grads[name], name
    model.params["decoder_head.b"][0] += 1.0  # seen by the twin's forward
    z = np.zeros((1, 3), np.float32)
    np.testing.assert_array_equal(twin.decoder_output(z), model.decoder_output(z))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_two_workers_take_the_step_train_step_takes(optimizer):
    images = np.random.default_rng(0).random((64, 30)).astype(np.float32)
    rows = np.arange(5, 50)  # 45 rows: halves of 22 and 23
    one = VAE(30, hidden=(16,), latent_dim=4, seed=3, ops=engine_ops)
    two = VAE(30, hidden=(16,), latent_dim=4, seed=3, ops=engine_ops)
    opt_one, opt_two = make_optimizer(optimizer, one, 1e-2), make_optimizer(optimizer, two, 1e-2)
    workers = TwoWorkers(two, opt_two)
    for _ in range(3):
        loss_one, _ = train_step(one, opt_one, images, rows, np.random.default_rng(5))
        loss_two = workers.step(images, rows, np.random.default_rng(5))
        assert loss_two == pytest.approx(loss_one, rel=1e-5)
    for name, param in one.params.items():
        np.testing.assert_allclose(two.params[name], param, rtol=1e-5, atol=1e-6, err_msg=name)
