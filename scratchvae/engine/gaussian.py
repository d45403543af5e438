"""The Gaussian latent layer, fast: reparameterisation and the KL to N(0, I) as Numba kernels.

Same names, signatures and results as :mod:`scratchvae.lecture.gaussian`
(``tests/test_engine.py`` checks that); read the lecture for the maths. The
(B, D_z) arrays here are small, so a scalar ``exp`` per element costs
nothing, and one fused kernel pass replaces four or five NumPy passes and
their temporaries. The KL between two diagonal Gaussians and the
log-density are not on the training path: the engine uses the lecture's.
Arguments are checked by the lecture's own checks with ``finite=False``: for
shape and dtype only.
"""

import numpy as np

from scratchvae.engine import kernels
from scratchvae.lecture.gaussian import KLStandardNormalCache, ReparameterizeCache, check_gaussian_args
from scratchvae.lecture.validate import check_upstream

__all__ = ["reparameterize_forward", "reparameterize_backward",
           "kl_standard_normal_forward", "kl_standard_normal_backward"]


def reparameterize_forward(mu, log_var, eps):
    """:func:`scratchvae.lecture.gaussian.reparameterize_forward`, one kernel pass."""
    mu, log_var, eps = check_gaussian_args({"mu": mu, "log_var": log_var}, {"eps": eps}, finite=False)
    z, sigma = np.empty_like(mu), np.empty_like(mu)  # (B, D_z) each
    # sigma = exp(log_var / 2);  z = mu + sigma * eps   (flat views)
    kernels.reparameterize(mu.ravel(), log_var.ravel(), eps.ravel(), z.ravel(), sigma.ravel())
    return z, ReparameterizeCache(eps, sigma)


def reparameterize_backward(dz, cache):
    """:func:`scratchvae.lecture.gaussian.reparameterize_backward`, one kernel pass.

    Derivation: docs/gaussian.md#reparameterisation
    """
    eps, sigma = cache
    dz = check_upstream("dz", dz, sigma.shape, sigma.dtype, finite=False)
    dmu, dlog_var = np.empty_like(sigma), np.empty_like(sigma)  # (B, D_z) each
    kernels.reparameterize_grad(dz.ravel(), eps.ravel(), sigma.ravel(), dmu.ravel(), dlog_var.ravel())
    return dmu, dlog_var


def kl_standard_normal_forward(mu, log_var):
    """:func:`scratchvae.lecture.gaussian.kl_standard_normal_forward`, one kernel pass per row."""
    mu, log_var = check_gaussian_args({"mu": mu, "log_var": log_var}, finite=False)
    kl = np.empty(mu.shape[0], dtype=mu.dtype)  # (B,)
    kernels.kl_standard_normal(mu, log_var, kl)
    return kl, KLStandardNormalCache(mu, log_var)


def kl_standard_normal_backward(dkl, cache):
    """:func:`scratchvae.lecture.gaussian.kl_standard_normal_backward`, one kernel pass.

    Derivation: docs/gaussian.md#kl-standard-normal
    """
    mu, log_var = cache
    dkl = check_upstream("dkl", dkl, mu.shape[:1], mu.dtype, finite=False)
    dmu, dlog_var = np.empty_like(mu), np.empty_like(mu)  # (B, D_z) each
    kernels.kl_standard_normal_grad(dkl, mu, log_var, dmu, dlog_var)
    return dmu, dlog_var
