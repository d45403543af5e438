"""The Gaussian latent layer, continued: the KL between two diagonal Gaussians, the log-density.

The same rows (mu, log_var) of diagonal Gaussians as in
:mod:`scratchvae.lecture.gaussian`, checked by its
:func:`~scratchvae.lecture.gaussian.check_gaussian_args`:

* ``kl_diagonal``: KL between two diagonal Gaussians, gaussian (11): from the
  first distribution (q) to the second (the reference, e.g. a learned prior);
  always >= 0, zero exactly when the two are equal. The variance ratio rho is
  never formed as exp(log_var0) / exp(log_var1), which overflows or gives
  0/0 long before the ratio itself is extreme: its log is log_var0 - log_var1,
  and rho - 1 - log rho is computed as expm1(log rho) - log rho, >= 0 in
  floating point and accurate near rho = 1.
* ``gaussian_log_density``: log q(z), gaussian (16), which the estimator L^A
  needs. The residual is standardised as (z - mu) * exp(-log_var / 2), never
  divided by sigma = exp(log_var / 2), which overflows first for a large
  log-variance. The backward returns a gradient for z too: in L^A, z is
  itself a function of the encoder's outputs, through the reparameterisation.

The full-covariance KL, gaussian (6), is the next module,
:mod:`scratchvae.lecture.gaussian_full`.

B is the batch size, D_z the latent dimension.
Derivations: docs/gaussian.md
"""

import math
from typing import NamedTuple

import numpy as np

from scratchvae.lecture.gaussian import check_gaussian_args
from scratchvae.lecture.validate import check_upstream

__all__ = [
    "gaussian_log_density_backward",
    "gaussian_log_density_forward",
    "kl_diagonal_backward",
    "kl_diagonal_forward",
]

LOG_2PI = math.log(2 * math.pi)  # a Python float, so float32 arrays stay float32


# --- KL between two diagonal Gaussians ----------------------------------------


class KLDiagonalCache(NamedTuple):
    """What :func:`kl_diagonal_backward` needs."""

    delta: np.ndarray  # (B, D_z) mu1 - mu0
    inv_var1: np.ndarray  # (B, D_z) exp(-log_var1) = 1 / sigma1^2
    rho_minus_1: np.ndarray  # (B, D_z) rho - 1 = sigma0^2 / sigma1^2 - 1


def kl_diagonal_forward(mu0, log_var0, mu1, log_var1):
    r"""KL(N(mu0, diag e^{log_var0}) || N(mu1, diag e^{log_var1})), row by row.

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(\rho_j - 1 - \log \rho_j + \delta_j^2 / \sigma_{1j}^2\right),
              \qquad \rho_j = \sigma_{0j}^2 / \sigma_{1j}^2, \quad \delta = \mu_1 - \mu_0

    Parameters
    ----------
    mu0, log_var0, mu1, log_var1 : ndarray, shape (B, D_z)

    Returns
    -------
    kl : ndarray, shape (B,), >= 0
    cache : KLDiagonalCache

    Examples
    --------
    >>> kl_diagonal_forward([[0.0]], [[0.0]], [[1.0]], [[0.0]])[0]  # means 1 apart: 1/2 * 1^2
    array([0.5])

    Derivation: docs/gaussian.md#kl-diagonal
    """
    mu0, log_var0, mu1, log_var1 = check_gaussian_args(
        {"mu0": mu0, "log_var0": log_var0, "mu1": mu1, "log_var1": log_var1})
    # BEGIN SOLUTION
    log_rho = log_var0 - log_var1  # (B, D_z) log(sigma0^2 / sigma1^2), gaussian (11), not a ratio of exps
    # rho - 1 - log rho = expm1(log rho) - log rho: >= 0 in floating point, accurate near rho = 1
    rho_minus_1 = np.expm1(log_rho)  # (B, D_z)
    inv_var1 = np.exp(-log_var1)  # (B, D_z)
    delta = mu1 - mu0  # (B, D_z)
    # gaussian (11): KL = 1/2 sum_j [rho - 1 - log rho + delta^2 / sigma1^2]
    kl = 0.5 * np.sum(rho_minus_1 - log_rho + delta**2 * inv_var1, axis=1)  # (B,)
    return kl, KLDiagonalCache(delta, inv_var1, rho_minus_1)
    # END SOLUTION


def kl_diagonal_backward(dkl, cache):
    r"""The diagonal KL's backward pass: its derivatives :math:`\partial`, each times the row's ``dkl``.

    .. math:: \partial_{\mu_1} = -\partial_{\mu_0} = \delta / \sigma_1^2, \qquad
              \partial_{\log\sigma_0^2} = \tfrac12 (\rho - 1),
              \qquad \partial_{\log\sigma_1^2} = -\tfrac12 (\rho - 1 + \delta^2 / \sigma_1^2)

    Parameters
    ----------
    dkl : ndarray, shaped like kl; cache : KLDiagonalCache

    Returns
    -------
    dmu0, dlog_var0, dmu1, dlog_var1 : ndarray, shape (B, D_z)

    Examples
    --------
    >>> kl_diagonal_backward([1.0], kl_diagonal_forward([[0.0]], [[0.0]], [[1.0]], [[0.0]])[1])
    (array([[-1.]]), array([[0.]]), array([[1.]]), array([[-0.5]]))

    Derivation: docs/gaussian.md#kl-diagonal
    """
    delta, inv_var1, rho_minus_1 = cache
    dkl = check_upstream("dkl", dkl, delta.shape[:1], delta.dtype)[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    dmu1 = dkl * delta * inv_var1  # gaussian (12): dKL/dmu1 = (mu1 - mu0) / sigma1^2 = -dKL/dmu0; (B, D_z)
    # gaussian (12): dKL/dlog_var0 = (rho - 1) / 2
    dlog_var0 = 0.5 * dkl * rho_minus_1  # (B, D_z)
    # gaussian (12): dKL/dlog_var1 = -(rho - 1) / 2 - (mu1 - mu0)^2 / (2 sigma1^2)
    dlog_var1 = -dlog_var0 - 0.5 * dkl * delta**2 * inv_var1  # (B, D_z)
    return -dmu1, dlog_var0, dmu1, dlog_var1
    # END SOLUTION


# --- Log-density of a diagonal Gaussian --------------------------------------


class LogDensityCache(NamedTuple):
    """What :func:`gaussian_log_density_backward` needs."""

    r_std: np.ndarray  # (B, D_z) (z - mu) / sigma, the standardised residual
    inv_sigma: np.ndarray  # (B, D_z) exp(-log_var / 2) = 1 / sigma


def gaussian_log_density_forward(z, mu, log_var):
    r"""Log N(z; mu, diag e^{log_var}), summed over the D_z coordinates of each row.

    .. math:: \log q(z) = -\tfrac12 \sum_j \left(\log 2\pi + \log\sigma_j^2 + r_j^2 / \sigma_j^2\right),
              \qquad r = z - \mu

    Parameters
    ----------
    z : ndarray, shape (B, D_z), cast to the dtype of mu and log_var
    mu, log_var : ndarray, shape (B, D_z)

    Returns
    -------
    logq : ndarray, shape (B,)
    cache : LogDensityCache

    Examples
    --------
    >>> gaussian_log_density_forward([[0.0]], [[0.0]], [[0.0]])[0]  # -log(2 pi) / 2
    array([-0.91893853])

    Derivation: docs/gaussian.md#log-density
    """
    mu, log_var, z = check_gaussian_args({"mu": mu, "log_var": log_var}, {"z": z})
    # BEGIN SOLUTION
    inv_sigma = np.exp(-0.5 * log_var)  # (B, D_z) 1 / sigma, without forming sigma (it overflows first)
    r_std = (z - mu) * inv_sigma  # (B, D_z) the residual r = z - mu, over sigma
    # gaussian (16): log q = -1/2 sum_j [log 2 pi + log_var_j + (r_j / sigma_j)^2]
    logq = -0.5 * np.sum(LOG_2PI + log_var + r_std**2, axis=1)  # (B,)
    return logq, LogDensityCache(r_std, inv_sigma)
    # END SOLUTION


def gaussian_log_density_backward(dlogq, cache):
    r"""The log-density's backward pass, for z, mu and log_var, each times the row's ``dlogq``.

    .. math:: \frac{\partial \log q}{\partial z_j} = -\frac{r_j}{\sigma_j^2} = -\frac{\partial \log q}{\partial \mu_j},
              \qquad \frac{\partial \log q}{\partial \log\sigma_j^2} = \tfrac12 (r_j^2 / \sigma_j^2 - 1)

    Parameters
    ----------
    dlogq : ndarray, shaped like logq
    cache : LogDensityCache

    Returns
    -------
    dz, dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> gaussian_log_density_backward([1.0], gaussian_log_density_forward([[1.0]], [[0.0]], [[0.0]])[1])
    (array([[-1.]]), array([[1.]]), array([[0.]]))

    Derivation: docs/gaussian.md#log-density
    """
    r_std, inv_sigma = cache
    dlogq = check_upstream("dlogq", dlogq, r_std.shape[:1], r_std.dtype)[:, None]  # (B, 1)
    # BEGIN SOLUTION
    dz = -dlogq * r_std * inv_sigma  # gaussian (17): d log q / dz = -r / sigma^2 = -d log q / dmu; (B, D_z)
    # gaussian (17): d log q / dlog_var = (r^2 / sigma^2 - 1) / 2
    dlog_var = 0.5 * dlogq * (r_std**2 - 1)  # (B, D_z)
    return dz, -dz, dlog_var
    # END SOLUTION
