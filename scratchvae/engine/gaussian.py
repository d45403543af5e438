"""The Gaussian latent layer, fast: reparameterisation and the KL to N(0, I) as Numba kernels.

Same names, signatures and results as :mod:`scratchvae.lecture.gaussian`
(``tests/test_engine.py`` checks that); read the lecture for the maths. The
(B, D_z) arrays here are small, so a scalar ``exp`` per element costs
nothing, and one fused kernel pass replaces four or five NumPy passes and
their temporaries. The KL between two diagonal Gaussians and the
log-density are not on the training path: the engine uses the lecture's.
Arguments are checked for shape and dtype only.
"""

import numpy as np

from scratchvae.engine import kernels
from scratchvae.lecture.gaussian import KLStandardNormalCache, ReparameterizeCache
from scratchvae.lecture.validate import as_float_array, check_same_shape, check_shape

__all__ = ["reparameterize_forward", "reparameterize_backward",
           "kl_standard_normal_forward", "kl_standard_normal_backward"]


def rows(first_name, first, **others):
    """(B, D_z) arrays of ``first``'s shape, contiguous, in ``first``'s precision."""
    first = as_float_array(first_name, first, ndim=2, finite=False)
    out = [np.ascontiguousarray(first)]
    for name, x in others.items():
        x = as_float_array(name, x, ndim=2, finite=False)
        out.append(np.ascontiguousarray(check_same_shape(name, x, first_name, first), dtype=first.dtype))
    return out


def upstream(name, g, dtype, shape):
    """An upstream gradient as a contiguous array of ``shape`` (checked) and ``dtype``."""
    g = as_float_array(name, g, finite=False)
    return np.ascontiguousarray(check_shape(name, g, shape), dtype=dtype)


def reparameterize_forward(mu, log_var, eps):
    """:func:`scratchvae.lecture.gaussian.reparameterize_forward`, one kernel pass."""
    mu, log_var, eps = rows("mu", mu, log_var=log_var, eps=eps)
    z, sigma = np.empty_like(mu), np.empty_like(mu)  # (B, D_z) each
    # sigma = exp(log_var / 2);  z = mu + sigma * eps   (flat views)
    kernels.reparameterize(mu.ravel(), log_var.ravel(), eps.ravel(), z.ravel(), sigma.ravel())
    return z, ReparameterizeCache(eps, sigma)


def reparameterize_backward(dz, cache):
    """:func:`scratchvae.lecture.gaussian.reparameterize_backward`, one kernel pass.

    Derivation: docs/gaussian.md#reparameterisation
    """
    eps, sigma = cache
    dz = upstream("dz", dz, sigma.dtype, sigma.shape)
    dmu, dlog_var = np.empty_like(sigma), np.empty_like(sigma)  # (B, D_z) each
    kernels.reparameterize_grad(dz.ravel(), eps.ravel(), sigma.ravel(), dmu.ravel(), dlog_var.ravel())
    return dmu, dlog_var


def kl_standard_normal_forward(mu, log_var):
    """:func:`scratchvae.lecture.gaussian.kl_standard_normal_forward`, one kernel pass per row."""
    mu, log_var = rows("mu", mu, log_var=log_var)
    kl = np.empty(mu.shape[0], dtype=mu.dtype)  # (B,)
    kernels.kl_standard_normal(mu, log_var, kl)
    return kl, KLStandardNormalCache(mu, log_var)


def kl_standard_normal_backward(dkl, cache):
    """:func:`scratchvae.lecture.gaussian.kl_standard_normal_backward`, one kernel pass.

    Derivation: docs/gaussian.md#kl-standard-normal
    """
    mu, log_var = cache
    dkl = upstream("dkl", dkl, mu.dtype, (mu.shape[0],))
    dmu, dlog_var = np.empty_like(mu), np.empty_like(mu)  # (B, D_z) each
    kernels.kl_standard_normal_grad(dkl, mu, log_var, dmu, dlog_var)
    return dmu, dlog_var
