"""The exactly solvable model: a linear-Gaussian decoder (probabilistic PCA).

    p(z) = N(0, I),    p(x | z) = N(x; z W + b, sigma_n^2 I),    W of shape (D_z, D),

with the noise variance sigma_n^2 passed as ``noise_var`` (elbo (11)).

Everything the VAE can only estimate is known here in closed form: log p(x),
the true posterior p(z | x), and the ELBO of any diagonal Gaussian q. So the
identities of elbo (1)-(3), can be checked to rounding error:
ELBO(q) <= log p(x), with equality exactly when q is the posterior, and
log p(x) - ELBO(q) = KL(q || p(z | x)). The tests of the estimators use it
as ground truth.
Derivation: docs/elbo.md#exact-model
"""

import math

import numpy as np

from scratchvae.lecture.gaussian import kl_standard_normal_forward
from scratchvae.lecture.validate import as_float_array, check_same_shape, check_shape

__all__ = [
    "linear_gaussian_elbo",
    "linear_gaussian_expected_log_likelihood",
    "linear_gaussian_log_marginal",
    "linear_gaussian_posterior",
]

LOG_2PI = math.log(2 * math.pi)


def _linear_gaussian(x, W, b, noise_var):
    """Check the model's arrays; return them in float64 with the result dtype."""
    x = as_float_array("x", x, ndim=2)
    W = check_shape("W", as_float_array("W", W, ndim=2), (None, x.shape[1]))
    b = check_shape("b", as_float_array("b", b, ndim=1), (x.shape[1],))
    if not (np.ndim(noise_var) == 0 and np.isfinite(noise_var) and noise_var > 0):
        raise ValueError(f"noise_var: expected a positive finite number, got {noise_var!r}")
    dtype = np.result_type(x, W, b)
    return x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), float(noise_var), dtype


def linear_gaussian_log_marginal(x, W, b, noise_var):
    r"""Log p(x) of the linear-Gaussian model: :math:`\log \mathcal{N}(x;\, b,\, \Sigma_x)`, elbo (12)-(13).

    With rows, x = z W + b + noise, W of shape (D_z, D), and
    :math:`\Sigma_x = W^\top W + \sigma_n^2 I`. The covariance is factored by Cholesky,
    :math:`\Sigma_x = C C^\top`: :math:`\log\det \Sigma_x = 2\sum_i \log C_{ii}`, and the
    quadratic form is :math:`\|C^{-1}(x - b)^\top\|^2`.
    Derivation: docs/elbo.md#exact-model

    Parameters
    ----------
    x : ndarray, shape (B, D)
    W : ndarray, shape (D_z, D)
    b : ndarray, shape (D,)
    noise_var : float
        The noise variance :math:`\sigma_n^2 > 0`.

    Returns
    -------
    ndarray, shape (B,)

    Examples
    --------
    >>> import numpy as np
    >>> float(linear_gaussian_log_marginal(np.zeros((1, 1)), np.ones((1, 1)), np.zeros(1), 1.0)[0])
    -1.2655121234846454
    """
    x, W, b, noise_var, dtype = _linear_gaussian(x, W, b, noise_var)
    D = x.shape[1]
    chol = np.linalg.cholesky(W.T @ W + noise_var * np.eye(D))  # (D, D) C, with C C^T = Sigma_x
    r = np.linalg.solve(chol, (x - b).T)  # (D, B) C^{-1} (x - b)^T
    log_det = 2 * np.sum(np.log(np.diagonal(chol)))  # log det Sigma_x
    # elbo (13): log N(x; b, Sigma_x) = -1/2 [D log 2 pi + log det Sigma_x + (x - b) Sigma_x^{-1} (x - b)^T]
    return (-0.5 * (D * LOG_2PI + log_det + np.sum(r**2, axis=0))).astype(dtype)


def linear_gaussian_posterior(x, W, b, noise_var):
    r"""The exact posterior p(z | x) = N(mean, cov) of the linear-Gaussian model, elbo (14).

    .. math:: \Lambda = I + W W^\top / \sigma_n^2, \qquad \Sigma_{\text{post}} = \Lambda^{-1}, \qquad
              \mu_{\text{post}} = (x - b) W^\top \Sigma_{\text{post}} / \sigma_n^2

    One covariance for every x (it does not depend on x). Derivation: docs/elbo.md#exact-model

    Parameters
    ----------
    x, W, b, noise_var
        As in :func:`linear_gaussian_log_marginal`.

    Returns
    -------
    mean : ndarray, shape (B, D_z)
        :math:`\mu_{\text{post}}`, one row per example.
    cov : ndarray, shape (D_z, D_z)
        :math:`\Sigma_{\text{post}}`.

    Examples
    --------
    >>> import numpy as np
    >>> mean, cov = linear_gaussian_posterior(np.ones((1, 1)), np.ones((1, 1)), np.zeros(1), 1.0)
    >>> float(mean[0, 0]), float(cov[0, 0])  # precision 1 + 1 = 2
    (0.5, 0.5)
    """
    x, W, b, noise_var, dtype = _linear_gaussian(x, W, b, noise_var)
    precision = np.eye(W.shape[0]) + W @ W.T / noise_var  # (D_z, D_z) Lambda
    cov = np.linalg.inv(precision)  # (D_z, D_z) Sigma_post
    cov = 0.5 * (cov + cov.T)  # symmetric to the last bit, as a covariance must be
    mean = (x - b) @ W.T @ cov / noise_var  # (B, D_z) mu_post
    return mean.astype(dtype), cov.astype(dtype)


def linear_gaussian_expected_log_likelihood(x, W, b, noise_var, mu, log_var):
    r""":math:`E_{z \sim q}[\log p(x | z)]` for the linear-Gaussian decoder and q = N(mu, diag exp(log_var)).

    .. math:: -\tfrac12 \Big[D \log 2\pi \sigma_n^2 + \big(\|x - \mu W - b\|^2
              + \textstyle\sum_j \sigma_j^2 \|W_j\|^2\big) / \sigma_n^2\Big]

    (elbo (16)), with :math:`\sigma_j^2` = ``exp(log_var[:, j])`` and :math:`W_j` the j-th row
    of W. Derivation: docs/elbo.md#exact-model

    Parameters
    ----------
    x, W, b, noise_var
        As in :func:`linear_gaussian_log_marginal`.
    mu, log_var : ndarray, shape (B, D_z)
        q's parameters, one row per example.

    Returns
    -------
    ndarray, shape (B,)

    Examples
    --------
    >>> import numpy as np
    >>> one = np.ones((1, 1))
    >>> expected = linear_gaussian_expected_log_likelihood(one, one, np.zeros(1), 1.0, one,
    ...                                                    np.zeros((1, 1)))
    >>> bool(np.isclose(expected[0], -0.5 * (np.log(2 * np.pi) + 1)))  # residual 0, spread 1
    True
    """
    x, W, b, noise_var, dtype = _linear_gaussian(x, W, b, noise_var)
    mu = check_shape("mu", as_float_array("mu", mu, ndim=2), (x.shape[0], W.shape[0]))
    log_var = check_same_shape("log_var", as_float_array("log_var", log_var, ndim=2), "mu", mu)
    residual = x - mu @ W - b  # (B, D) x - E[z] W - b
    # sum_j sigma_j^2 |W_j|^2: the spread of z W around mu W
    spread = np.exp(log_var) @ np.sum(W**2, axis=1)  # (B,)
    D = x.shape[1]
    expected = -0.5 * (D * (LOG_2PI + math.log(noise_var))
                       + (np.sum(residual**2, axis=1) + spread) / noise_var)  # elbo (16)
    return expected.astype(dtype)


def linear_gaussian_elbo(x, W, b, noise_var, mu, log_var):
    r"""The ELBO of the linear-Gaussian model for q = N(mu, diag exp(log_var)), in closed form.

    .. math:: \mathrm{ELBO} = E_q[\log p(x | z)] - \mathrm{KL}(q \,\|\, \mathcal{N}(0, I))

    Never above :func:`linear_gaussian_log_marginal`; the gap is KL(q ‖ posterior).
    Derivation: docs/elbo.md#exact-model

    Parameters
    ----------
    x, W, b, noise_var, mu, log_var
        As in :func:`linear_gaussian_expected_log_likelihood`.

    Returns
    -------
    ndarray, shape (B,)

    Examples
    --------
    >>> import numpy as np
    >>> x, W, b = np.ones((1, 1)), np.ones((1, 1)), np.zeros(1)
    >>> mean, cov = linear_gaussian_posterior(x, W, b, 1.0)  # q = the exact posterior
    >>> elbo = linear_gaussian_elbo(x, W, b, 1.0, mean, np.log(cov))
    >>> bool(np.isclose(elbo[0], linear_gaussian_log_marginal(x, W, b, 1.0)[0]))
    True
    """
    expected_log_lik = linear_gaussian_expected_log_likelihood(x, W, b, noise_var, mu, log_var)  # (B,)
    return expected_log_lik - kl_standard_normal_forward(mu, log_var)[0]
