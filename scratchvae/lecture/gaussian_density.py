"""The Gaussian latent layer, continued: the KL between two diagonal Gaussians, the log-density.

The same rows (mu, log_var) of diagonal Gaussians as in
:mod:`scratchvae.lecture.gaussian`, checked by its helpers:

* ``kl_diagonal``: KL between two diagonal Gaussians (note 000 (11));
* ``gaussian_log_density``: log q(z), which the estimator L^A needs.

The full-covariance KL of note 000 (11) is the next module,
:mod:`scratchvae.lecture.gaussian_full`.

B is the batch size, D_z the latent dimension.
Derivations: docs/gaussian.md
"""

import math
from typing import NamedTuple

import numpy as np

from scratchvae.lecture.gaussian import _rows, upstream
from scratchvae.lecture.validate import check_no_overflow

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

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(r_j - 1 - \log r_j
              + (\mu_{1j} - \mu_{0j})^2 / \sigma_{1j}^2\right), \qquad
              \rho_j = \frac{\sigma_{0j}^2}{\sigma_{1j}^2}

    note 000 (11) with both covariances diagonal.

    Parameters
    ----------
    mu0, log_var0 : ndarray, shape (B, D_z)
        Mean and log-variance of the first distribution (q).
    mu1, log_var1 : ndarray, shape (B, D_z)
        Mean and log-variance of the second (the reference, e.g. a learned prior).

    Returns
    -------
    kl : ndarray, shape (B,)
        Always >= 0; zero exactly when the two distributions are equal.
    cache : KLDiagonalCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> zero, one = np.zeros((1, 1)), np.ones((1, 1))
    >>> kl, _ = kl_diagonal_forward(zero, zero, one, zero)
    >>> kl  # unit variances, means 1 apart: 1/2 * 1^2
    array([0.5])
    """
    mu0, log_var0, mu1, log_var1 = _rows(
        {"mu0": mu0, "log_var0": log_var0, "mu1": mu1, "log_var1": log_var1}
    )
    # BEGIN SOLUTION
    # log rho = log(sigma0^2 / sigma1^2) = log_var0 - log_var1: the ratio is never
    # formed as exp(log_var0) / exp(log_var1), which overflows or gives 0/0.
    log_rho = log_var0 - log_var1  # (B, D_z)
    # rho - 1 - log rho = expm1(log rho) - log rho: >= 0 in floating point, accurate near rho = 1
    rho_minus_1 = np.expm1(log_rho)  # (B, D_z)
    inv_var1 = np.exp(-log_var1)  # (B, D_z)
    delta = mu1 - mu0  # (B, D_z)
    # KL = 1/2 sum_j [rho - 1 - log rho + delta^2 / sigma1^2]
    kl = 0.5 * np.sum(rho_minus_1 - log_rho + delta**2 * inv_var1, axis=1)  # (B,)
    check_no_overflow("kl", kl, mu0=mu0, log_var0=log_var0, mu1=mu1, log_var1=log_var1)
    return kl, KLDiagonalCache(delta, inv_var1, rho_minus_1)
    # END SOLUTION


def kl_diagonal_backward(dkl, cache):
    r"""Gradients of the diagonal KL for all four inputs.

    With :math:`\delta = \mu_1 - \mu_0` and :math:`\rho = \sigma_0^2 / \sigma_1^2`, per row and times ``dkl``:

    .. math:: \frac{\partial\,\mathrm{KL}}{\partial \mu_0} = -\delta / \sigma_1^2
              = -\frac{\partial\,\mathrm{KL}}{\partial \mu_1}, \qquad
              \frac{\partial\,\mathrm{KL}}{\partial \log\sigma_0^2} = \tfrac12 (\rho - 1), \qquad
              \frac{\partial\,\mathrm{KL}}{\partial \log\sigma_1^2} = -\tfrac12 (\rho - 1) - \tfrac12 \delta^2 / \sigma_1^2

    Derivation: docs/gaussian.md#kl-diagonal

    Parameters
    ----------
    dkl : ndarray, shape (B,)
        Upstream gradient, dL/d(kl).
    cache : KLDiagonalCache
        From :func:`kl_diagonal_forward`.

    Returns
    -------
    dmu0, dlog_var0, dmu1, dlog_var1 : ndarray, shape (B, D_z)

    Examples
    --------
    >>> import numpy as np
    >>> zero, one = np.zeros((1, 1)), np.ones((1, 1))
    >>> kl, cache = kl_diagonal_forward(zero, zero, one, zero)
    >>> [float(g[0, 0]) for g in kl_diagonal_backward(np.ones(1), cache)]
    [-1.0, 0.0, 1.0, -0.5]
    """
    delta, inv_var1, rho_minus_1 = cache
    g = upstream("dkl", dkl, delta.dtype, (delta.shape[0],))[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    # dKL/dmu1 = (mu1 - mu0) / sigma1^2 = -dKL/dmu0
    dmu1 = g * delta * inv_var1  # (B, D_z)
    # dKL/dlog_var0 = (r - 1) / 2
    dlog_var0 = 0.5 * g * rho_minus_1  # (B, D_z)
    # dKL/dlog_var1 = -(r - 1) / 2 - (mu1 - mu0)^2 / (2 sigma1^2)
    dlog_var1 = -dlog_var0 - 0.5 * g * delta**2 * inv_var1  # (B, D_z)
    return -dmu1, dlog_var0, dmu1, dlog_var1
    # END SOLUTION


# --- Log-density of a diagonal Gaussian --------------------------------------


class LogDensityCache(NamedTuple):
    """What :func:`gaussian_log_density_backward` needs."""

    r_std: np.ndarray  # (B, D_z) (z - mu) / sigma, the standardised residual
    inv_sigma: np.ndarray  # (B, D_z) exp(-log_var / 2) = 1 / sigma


def gaussian_log_density_forward(z, mu, log_var):
    r"""log N(z; mu, diag e^{log_var}), summed over the D_z coordinates of each row.

    .. math:: \log q(z) = -\tfrac12 \sum_j \left(\log 2\pi + \log\sigma_j^2 + r_j^2 / \sigma_j^2\right),
              \qquad r = z - \mu

    Parameters
    ----------
    z : ndarray, shape (B, D_z)
        The points; cast to the dtype of ``mu`` and ``log_var``.
    mu, log_var : ndarray, shape (B, D_z)
        Means and log-variances.

    Returns
    -------
    logq : ndarray, shape (B,)
        One log-density per row.
    cache : LogDensityCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> logq, _ = gaussian_log_density_forward(np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2)))
    >>> bool(np.isclose(logq[0], -np.log(2 * np.pi)))  # two coordinates of -log(2 pi) / 2
    True
    """
    mu, log_var, z = _rows({"mu": mu, "log_var": log_var}, {"z": z})
    # BEGIN SOLUTION
    # 1 / sigma = exp(-log_var / 2): dividing by sigma = exp(log_var / 2)
    # would overflow sigma first for large log_var
    inv_sigma = np.exp(-0.5 * log_var)  # (B, D_z)
    r_std = (z - mu) * inv_sigma  # (B, D_z) the residual r = z - mu, over sigma
    # log q = -1/2 sum_j [log 2 pi + log_var_j + u_j^2]
    # eq. (16): log q = -1/2 sum_j [log 2 pi + log_var_j + (r_j / sigma_j)^2]
    logq = -0.5 * np.sum(LOG_2PI + log_var + r_std**2, axis=1)  # (B,)
    check_no_overflow("logq", logq, z=z, mu=mu, log_var=log_var)
    return logq, LogDensityCache(r_std, inv_sigma)
    # END SOLUTION


def gaussian_log_density_backward(dlogq, cache):
    r"""Gradients of the diagonal Gaussian log-density for z, mu and log_var.

    With the residual :math:`r = z - \mu`, per coordinate and times ``dlogq``:

    .. math:: \frac{\partial \log q}{\partial z_j} = -r_j / \sigma_j^2
              = -\frac{\partial \log q}{\partial \mu_j}, \qquad
              \frac{\partial \log q}{\partial \log\sigma_j^2} = \tfrac12 (r_j^2 / \sigma_j^2 - 1)

    ``z`` gets a gradient: in the estimator L^A it is itself a function of
    the encoder's outputs, through the reparameterisation.

    Derivation: docs/gaussian.md#log-density

    Parameters
    ----------
    dlogq : ndarray, shape (B,)
        Upstream gradient, dL/d(logq).
    cache : LogDensityCache
        From :func:`gaussian_log_density_forward`.

    Returns
    -------
    dz, dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> import numpy as np
    >>> logq, cache = gaussian_log_density_forward(np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)))
    >>> gaussian_log_density_backward(np.ones(1), cache)
    (array([[-1.]]), array([[1.]]), array([[0.]]))
    """
    r_std, inv_sigma = cache
    g = upstream("dlogq", dlogq, r_std.dtype, (r_std.shape[0],))[:, None]  # (B, 1)
    # BEGIN SOLUTION
    # d log q / dz = -r / sigma^2 = -d log q / dmu
    dz = -g * r_std * inv_sigma  # (B, D_z)
    # d log q / dlog_var = (r^2 / sigma^2 - 1) / 2
    dlog_var = 0.5 * g * (r_std**2 - 1)  # (B, D_z)
    return dz, -dz, dlog_var
    # END SOLUTION
