"""The Gaussian latent layer: the sample z and its KL to the prior.

The encoder gives each example a diagonal Gaussian
q(z | x) = N(mu, diag(exp(log_var))). These ops turn (mu, log_var) into the
pieces of the ELBO:

* ``reparameterize``: a sample z = mu + sigma * eps that gradients pass
  through, gaussian (2); the noise ``eps`` is drawn by the caller and gets no
  gradient: it is noise, not a parameter;
* ``kl_standard_normal``: KL(q || N(0, I)) in closed form, the regulariser of
  L^B, gaussian (14); one KL per row, always >= 0, zero exactly when mu = 0
  and log_var = 0.

Why the encoder outputs log_var, and not sigma or the variance: a dense
layer's output can be any real number, and every real log_var is a valid
variance exp(log_var) > 0, so no constraint or clipping is needed; equal
steps in log_var scale sigma by equal factors, whether sigma is 1e-3 or 10;
and the KL needs log det Sigma = sum(log_var) as it is. sigma is
exp(log_var / 2), not sqrt(exp(log_var)), which would overflow for half the
range of log_var.

The KL between two diagonal Gaussians and the log-density log q(z) are the
next module, :mod:`scratchvae.lecture.gaussian_density`; the full-covariance
KL, gaussian (6), the one after, :mod:`scratchvae.lecture.gaussian_full`.

Every op takes (B, D_z) rows, checked by :func:`check_gaussian_args`, and
computes in the parameters' precision. B is the batch size, D_z the latent
dimension.

Derivations: docs/gaussian.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_same_shape, check_upstream

__all__ = [
    "check_gaussian_args",
    "kl_standard_normal_backward",
    "kl_standard_normal_forward",
    "reparameterize_backward",
    "reparameterize_forward",
]


def check_gaussian_args(params, data=None, finite=True):
    """Check (B, D_z) arrays and return them, in order, C-contiguous, in the parameters' precision.

    ``params`` and ``data`` map argument names to values. Each must be real,
    2-D, shaped like the first parameter and (if ``finite``) finite. The dtype
    is the common one of the parameters; data (noise, observations) is cast to
    it, so that float32 parameters give float32 results however the data was
    made. The engine's twins (:mod:`scratchvae.engine.gaussian`) call it with
    ``finite=False``.
    """
    arrays = {n: as_float_array(n, x, ndim=2, finite=finite) for n, x in {**params, **(data or {})}.items()}
    first = next(iter(params))
    for name, x in arrays.items():
        check_same_shape(name, x, first, arrays[first])
    dtype = np.result_type(*(arrays[n] for n in params))
    return [np.ascontiguousarray(x, dtype=dtype) for x in arrays.values()]


# --- Reparameterisation: z = mu + sigma * eps ---------------------------------


class ReparameterizeCache(NamedTuple):
    """What :func:`reparameterize_backward` needs."""

    eps: np.ndarray  # (B, D_z) the noise
    sigma: np.ndarray  # (B, D_z) exp(log_var / 2), the standard deviations


def reparameterize_forward(mu, log_var, eps):
    r"""A sample of :math:`\mathcal{N}(\mu, \operatorname{diag}\sigma^2)` that gradients pass through.

    .. math:: z = \mu + \sigma \odot \varepsilon, \qquad \sigma = \exp(\tfrac12 \log\sigma^2)

    Parameters
    ----------
    mu, log_var : ndarray, shape (B, D_z)
    eps : ndarray, shape (B, D_z), standard normal noise drawn by the caller

    Returns
    -------
    z : ndarray, shape (B, D_z)
    cache : ReparameterizeCache

    Examples
    --------
    >>> reparameterize_forward([[0.0, 0.0]], np.log([[4.0, 0.25]]), [[1.0, 1.0]])[0]  # sigma 2, 1/2
    array([[2. , 0.5]])

    Derivation: docs/gaussian.md#reparameterisation
    """
    mu, log_var, eps = check_gaussian_args({"mu": mu, "log_var": log_var}, {"eps": eps})
    # BEGIN SOLUTION
    # gaussian (2): sigma = exp(log_var / 2), the standard deviation
    sigma = np.exp(0.5 * log_var)  # (B, D_z)
    # gaussian (2): z = mu + sigma * eps
    z = mu + sigma * eps  # (B, D_z)
    return z, ReparameterizeCache(eps, sigma)
    # END SOLUTION


def reparameterize_backward(dz, cache):
    r"""The reparameterisation's backward pass, for mu and log_var (not for the noise).

    .. math:: \frac{\partial z_j}{\partial \mu_j} = 1, \qquad
              \frac{\partial z_j}{\partial \log\sigma_j^2} = \tfrac12 \varepsilon_j \sigma_j

    Parameters
    ----------
    dz : ndarray, shaped like z
    cache : ReparameterizeCache

    Returns
    -------
    dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> reparameterize_backward([[1.0]], reparameterize_forward([[0.0]], [[0.0]], [[2.0]])[1])
    (array([[1.]]), array([[1.]]))

    Derivation: docs/gaussian.md#reparameterisation
    """
    eps, sigma = cache
    dz = check_upstream("dz", dz, sigma.shape, sigma.dtype)
    # BEGIN SOLUTION
    dmu = dz.copy()  # gaussian (4): dz_j / dmu_j = 1, so dmu = dz; (B, D_z)
    # gaussian (4): dz_j / dlog_var_j = eps_j * d sigma_j / d log_var_j = eps_j * sigma_j / 2
    dlog_var = dz * eps * sigma / 2  # (B, D_z)
    return dmu, dlog_var
    # END SOLUTION


# --- KL(N(mu, diag(exp(log_var))) || N(0, I)) --------------------------------


class KLStandardNormalCache(NamedTuple):
    """What :func:`kl_standard_normal_backward` needs."""

    mu: np.ndarray  # (B, D_z)
    log_var: np.ndarray  # (B, D_z)


def kl_standard_normal_forward(mu, log_var):
    r"""The KL divergence from each row's diagonal Gaussian to the prior N(0, I).

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(\sigma_j^2 - 1 - \log\sigma_j^2 + \mu_j^2\right)

    Parameters
    ----------
    mu, log_var : ndarray, shape (B, D_z)

    Returns
    -------
    kl : ndarray, shape (B,), >= 0
    cache : KLStandardNormalCache

    Examples
    --------
    >>> kl_standard_normal_forward([[0.0, 1.0]], [[0.0, 0.0]])[0]  # only the mean 1 differs: 1/2 * 1^2
    array([0.5])

    Derivation: docs/gaussian.md#kl-standard-normal
    """
    mu, log_var = check_gaussian_args({"mu": mu, "log_var": log_var})
    # expm1(lv) - lv, not exp(lv) - 1 - lv, which loses every digit near lv = 0 (and can go negative)
    # BEGIN SOLUTION
    # gaussian (14): KL_b = 1/2 sum_j (exp(log_var_j) - 1 - log_var_j + mu_j^2)
    kl = 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1)  # (B,)
    return kl, KLStandardNormalCache(mu, log_var)
    # END SOLUTION


def kl_standard_normal_backward(dkl, cache):
    r"""The backward pass of the KL to N(0, I), for mu and log_var, each times the row's ``dkl``.

    .. math:: \frac{\partial\,\mathrm{KL}}{\partial \mu_j} = \mu_j, \qquad
              \frac{\partial\,\mathrm{KL}}{\partial \log\sigma_j^2} = \tfrac12 \left(\sigma_j^2 - 1\right)

    Parameters
    ----------
    dkl : ndarray, shaped like kl
    cache : KLStandardNormalCache

    Returns
    -------
    dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> kl_standard_normal_backward([1.0], kl_standard_normal_forward([[2.0]], [[0.0]])[1])
    (array([[2.]]), array([[0.]]))

    Derivation: docs/gaussian.md#kl-standard-normal
    """
    mu, log_var = cache
    dkl = check_upstream("dkl", dkl, mu.shape[:1], mu.dtype)[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    dmu = dkl * mu  # gaussian (15): dKL/dmu_j = mu_j; (B, D_z)
    # gaussian (15): dKL/dlog_var_j = (exp(log_var_j) - 1) / 2
    dlog_var = 0.5 * dkl * np.expm1(log_var)  # (B, D_z)
    return dmu, dlog_var
    # END SOLUTION
