"""The Gaussian latent layer: the sample z and its KL to the prior.

The encoder gives each example a diagonal Gaussian
q(z | x) = N(mu, diag(exp(log_var))) (note 000 (7)). These ops turn
(mu, log_var) into the pieces of the ELBO:

* ``reparameterize``: a sample z = mu + sigma * eps that gradients pass through;
* ``kl_standard_normal``: KL(q || N(0, I)) in closed form, the regulariser of L^B.

The KL between two diagonal Gaussians and the log-density log q(z) are the
next module, :mod:`scratchvae.lecture.gaussian_density`; the full-covariance
KL of note 000 (11) the one after, :mod:`scratchvae.lecture.gaussian_full`.

B is the batch size, D_z the latent dimension.
Derivations: docs/gaussian.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_no_overflow, check_same_shape, check_shape

__all__ = [
    "kl_standard_normal_backward",
    "kl_standard_normal_forward",
    "reparameterize_backward",
    "reparameterize_forward",
]


def _rows(params, data=None):
    """Check (B, D_z) arrays and return them, in order, in the parameters' precision.

    ``params`` and ``data`` map argument names to values. Each must be real,
    finite, 2-D and shaped like the first parameter. The dtype is the common
    one of the parameters; data (noise, observations) is cast to it, so that
    float32 parameters give float32 results however the data was made.
    """
    arrays = {n: as_float_array(n, x, ndim=2) for n, x in {**params, **(data or {})}.items()}
    first = next(iter(params))
    for name, x in arrays.items():
        check_same_shape(name, x, first, arrays[first])
    dtype = np.result_type(*(arrays[n] for n in params))
    return [np.ascontiguousarray(x, dtype=dtype) for x in arrays.values()]


def upstream(name, g, dtype, shape):
    """An upstream gradient, checked (real, finite, ``shape``) and cast to ``dtype``."""
    g = as_float_array(name, g)
    return check_shape(name, g, shape).astype(dtype, copy=False)


# --- Reparameterisation: z = mu + sigma * eps ---------------------------------


class ReparameterizeCache(NamedTuple):
    """What :func:`reparameterize_backward` needs."""

    eps: np.ndarray  # (B, D_z) the noise
    sigma: np.ndarray  # (B, D_z) exp(log_var / 2), the standard deviations


def reparameterize_forward(mu, log_var, eps):
    r"""Sample :math:`z \sim \mathcal{N}(\mu, \operatorname{diag} \sigma^2)` as a function of (mu, log_var).

    .. math:: z = \mu + \sigma \odot \varepsilon, \qquad \sigma = \exp(\tfrac12 \log\sigma^2)

    note 000 (8) with :math:`\Sigma^{1/2} = \operatorname{diag}(\sigma)`, and note 001.

    Parameters
    ----------
    mu : ndarray, shape (B, D_z)
        The means.
    log_var : ndarray, shape (B, D_z)
        The log-variances: the variance is ``exp(log_var)``, the standard
        deviation ``exp(log_var / 2)``.
    eps : ndarray, shape (B, D_z)
        Standard normal noise, drawn by the caller; cast to the dtype of ``mu``.

    Returns
    -------
    z : ndarray, shape (B, D_z)
        The sample.
    cache : ReparameterizeCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> mu, log_var = np.zeros((1, 2)), np.log(np.array([[4.0, 0.25]]))  # variances 4 and 1/4
    >>> z, cache = reparameterize_forward(mu, log_var, np.ones((1, 2)))
    >>> z  # the standard deviations, 2 and 1/2
    array([[2. , 0.5]])
    """
    mu, log_var, eps = _rows({"mu": mu, "log_var": log_var}, {"eps": eps})
    # BEGIN SOLUTION
    # Why the encoder outputs log_var, and not sigma or the variance: a dense
    # layer's output can be any real number, and every real log_var is a valid
    # variance exp(log_var) > 0, so no constraint or clipping is needed; equal
    # steps in log_var scale sigma by equal factors, whether sigma is 1e-3 or
    # 10; and the KL needs log det Sigma = sum(log_var) as it is. sigma is
    # exp(log_var / 2), not sqrt(exp(log_var)), which would overflow for half
    # the range of log_var.
    # sigma = exp(log_var / 2), the standard deviation
    sigma = np.exp(0.5 * log_var)  # (B, D_z)
    # note 000 (8): z = mu + sigma * eps
    z = mu + sigma * eps  # (B, D_z)
    check_no_overflow("z", z, mu=mu, log_var=log_var, eps=eps)
    return z, ReparameterizeCache(eps, sigma)
    # END SOLUTION


def reparameterize_backward(dz, cache):
    r"""Gradients of :math:`z = \mu + \exp(\tfrac12 \log\sigma^2) \odot \varepsilon` for mu and log_var.

    .. math:: \frac{\partial z_j}{\partial \mu_j} = 1, \qquad
              \frac{\partial z_j}{\partial \log\sigma_j^2} = \tfrac12 \varepsilon_j \sigma_j

    so ``dmu = dz`` and ``dlog_var = dz * eps * sigma / 2``. No gradient for
    ``eps``: it is noise, not a parameter.

    Derivation: docs/gaussian.md#reparameterisation

    Parameters
    ----------
    dz : ndarray, shape (B, D_z)
        Upstream gradient, dL/dz.
    cache : ReparameterizeCache
        From :func:`reparameterize_forward`.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> import numpy as np
    >>> z, cache = reparameterize_forward(np.zeros((1, 1)), np.zeros((1, 1)), np.full((1, 1), 2.0))
    >>> reparameterize_backward(np.ones((1, 1)), cache)
    (array([[1.]]), array([[1.]]))
    """
    eps, sigma = cache
    dz = upstream("dz", dz, sigma.dtype, sigma.shape)
    # BEGIN SOLUTION
    # dz_j / dmu_j = 1:  dmu = dz
    dmu = dz.copy()  # (B, D_z)
    # dz_j / dlog_var_j = eps_j * d sigma_j / d log_var_j = eps_j * sigma_j / 2
    dlog_var = dz * eps * sigma / 2  # (B, D_z)
    return dmu, dlog_var
    # END SOLUTION


# --- KL(N(mu, diag(exp(log_var))) || N(0, I)) --------------------------------


class KLStandardNormalCache(NamedTuple):
    """What :func:`kl_standard_normal_backward` needs."""

    mu: np.ndarray  # (B, D_z)
    log_var: np.ndarray  # (B, D_z)


def kl_standard_normal_forward(mu, log_var):
    r"""KL divergence from each row's diagonal Gaussian to the prior N(0, I).

    .. math:: \mathrm{KL} = \tfrac12 \sum_j \left(\sigma_j^2 - 1 - \log\sigma_j^2 + \mu_j^2\right)

    note 000 (13) with :math:`\Sigma = \operatorname{diag} \sigma^2`
    (trace :math:`\sum_j \sigma_j^2`, log-determinant :math:`\sum_j \log\sigma_j^2`).

    Parameters
    ----------
    mu, log_var : ndarray, shape (B, D_z)
        The means and log-variances of q.

    Returns
    -------
    kl : ndarray, shape (B,)
        One KL per example, always >= 0; zero exactly when mu = 0 and log_var = 0.
    cache : KLStandardNormalCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> kl, _ = kl_standard_normal_forward(np.array([[0.0, 1.0]]), np.zeros((1, 2)))
    >>> kl  # only the mean 1 differs from the prior: 1/2 * 1^2
    array([0.5])
    """
    mu, log_var = _rows({"mu": mu, "log_var": log_var})
    # BEGIN SOLUTION
    # note 000 (13): KL_b = 1/2 sum_j (exp(log_var_j) - 1 - log_var_j + mu_j^2).
    # exp(log_var) - 1 is written expm1(log_var): near log_var = 0, exp(lv) - 1 - lv
    # (true value lv^2/2) loses every digit and can even come out negative; expm1(lv) - lv
    # keeps them, and is >= 0 in floating point too.
    kl = 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1)  # (B,)
    check_no_overflow("kl", kl, mu=mu, log_var=log_var)
    return kl, KLStandardNormalCache(mu, log_var)
    # END SOLUTION


def kl_standard_normal_backward(dkl, cache):
    r"""Gradients of the KL to N(0, I) for mu and log_var.

    .. math:: \frac{\partial\,\mathrm{KL}}{\partial \mu_j} = \mu_j, \qquad
              \frac{\partial\,\mathrm{KL}}{\partial \log\sigma_j^2} = \tfrac12 \left(\sigma_j^2 - 1\right)

    each times ``dkl`` of the row.

    Derivation: docs/gaussian.md#kl-standard-normal

    Parameters
    ----------
    dkl : ndarray, shape (B,)
        Upstream gradient, dL/d(kl).
    cache : KLStandardNormalCache
        From :func:`kl_standard_normal_forward`.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> import numpy as np
    >>> kl, cache = kl_standard_normal_forward(np.array([[2.0]]), np.zeros((1, 1)))
    >>> kl_standard_normal_backward(np.ones(1), cache)
    (array([[2.]]), array([[0.]]))
    """
    mu, log_var = cache
    g = upstream("dkl", dkl, mu.dtype, (mu.shape[0],))[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    # dKL/dmu_j = mu_j
    dmu = g * mu  # (B, D_z)
    # dKL/dlog_var_j = (exp(log_var_j) - 1) / 2
    dlog_var = 0.5 * g * np.expm1(log_var)  # (B, D_z)
    return dmu, dlog_var
    # END SOLUTION
