"""The lecture's ops: every function, module class and optimiser a model runs on, in course order.

A model takes its ops as a module, this one or one like it, and calls
``ops.dense_forward``, ``ops.MLP``, ``ops.OPTIMIZERS``, ...::

    from scratchvae.engine import ops as engine_ops
    VAE(784)                  # this module: the lecture's plain NumPy, to read and step through
    VAE(784, ops=engine_ops)  # the Numba engine's: the same names, faster (what the tools use)

Each name below is a plain import, so "go to definition" on ``ops.<name>``
lands here, and once more on the name lands on the formula.
:mod:`scratchvae.engine.ops` imports this module's names and replaces the
ones the engine makes faster; ``tests/test_engine.py`` walks :data:`__all__`
and checks that each engine twin has the lecture's signature and numbers.
"""

from scratchvae.lecture.activations import (
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softplus_backward,
    softplus_forward,
    tanh_backward,
    tanh_forward,
)
from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.estimators import importance_weighted_bound
from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.lecture.gaussian_density import (
    gaussian_log_density_backward,
    gaussian_log_density_forward,
    kl_diagonal_backward,
    kl_diagonal_forward,
)
from scratchvae.lecture.gaussian_full import kl_full_covariance_backward, kl_full_covariance_forward
from scratchvae.lecture.likelihoods import (
    bernoulli_log_likelihood_backward,
    bernoulli_log_likelihood_forward,
    gaussian_log_likelihood_backward,
    gaussian_log_likelihood_forward,
)
from scratchvae.lecture.modules import MLP, Dense
from scratchvae.lecture.optim import OPTIMIZERS
from scratchvae.lecture.training import binarize

__all__ = [
    "dense_forward", "dense_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward",
    "reparameterize_forward", "reparameterize_backward",
    "kl_standard_normal_forward", "kl_standard_normal_backward",
    "kl_diagonal_forward", "kl_diagonal_backward",
    "gaussian_log_density_forward", "gaussian_log_density_backward",
    "kl_full_covariance_forward", "kl_full_covariance_backward",
    "bernoulli_log_likelihood_forward", "bernoulli_log_likelihood_backward",
    "gaussian_log_likelihood_forward", "gaussian_log_likelihood_backward",
    "binarize",
    "importance_weighted_bound",
    "Dense", "MLP",
    "OPTIMIZERS",
]
