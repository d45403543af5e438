"""The engine's ops: the lecture's (:mod:`scratchvae.lecture.ops`), with the fast ones in their place.

A model built with ``VAE(784, ops=scratchvae.engine.ops)`` runs on these.
Every name is the lecture's; the imports below the first block replace the
ones the engine computes with Numba kernels, in-place buffers or fused
passes. What the engine takes from the lecture as it is (the KL between two
diagonal or full-covariance Gaussians, the Gaussian log-density and
log-likelihood) is not on the standard model's training path.
"""

from scratchvae.engine.activations import (
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
from scratchvae.engine.dense import dense_backward, dense_forward
from scratchvae.engine.estimators import importance_weighted_bound
from scratchvae.engine.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.engine.likelihoods import bernoulli_log_likelihood_backward, bernoulli_log_likelihood_forward
from scratchvae.engine.modules import MLP, Dense
from scratchvae.engine.optim import OPTIMIZERS
from scratchvae.engine.training import binarize
from scratchvae.lecture.ops import (
    __all__,
    gaussian_log_density_backward,
    gaussian_log_density_forward,
    gaussian_log_likelihood_backward,
    gaussian_log_likelihood_forward,
    kl_diagonal_backward,
    kl_diagonal_forward,
    kl_full_covariance_backward,
    kl_full_covariance_forward,
)
