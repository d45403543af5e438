"""The posterior-collapse meter: which latent dimensions the model uses.

A latent dimension u that the encoder ignores has q(z_u | x) = N(0, 1) for
every x: it costs no KL and carries no information about x. Two measures show
such dimensions (docs/estimators.md#collapse):

* **KL per dimension**: the KL term splits over the coordinates of z,
  KL(q || N(0, I)) = sum_u KL_u, with KL_u = 1/2 (sigma_u^2 + mu_u^2 - 1 - log sigma_u^2);
  averaged over the data, a collapsed dimension has KL_u close to 0.
* **Active units** (Burda et al., 2016, section 5.2): dimension u is active when
  its posterior mean moves with the data, Cov_x(E_q[z_u | x]) > 0.01.

Derivation: docs/estimators.md#collapse
"""

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_int, check_shape

__all__ = ["ACTIVE_THRESHOLD", "kl_per_dimension", "active_units", "encode_all"]

ACTIVE_THRESHOLD = 0.01
"""Burda et al.'s threshold on Cov_x(E_q[z_u | x]) for a dimension to count as active."""


def kl_per_dimension(mu, log_var):
    r"""The KL term of each latent dimension, averaged over the rows (examples).

    .. math:: \overline{\mathrm{KL}}_u = \frac1N \sum_n \tfrac12
              \left(\sigma_{nu}^2 + \mu_{nu}^2 - 1 - \log\sigma_{nu}^2\right)

    Their sum is the average KL term of the ELBO.

    Parameters
    ----------
    mu, log_var : ndarray, shape (N, D_z)
        The means and log-variances of q(z | x), one row per example
        (``model.encode(x)``, or :func:`encode_all` for a whole dataset).

    Returns
    -------
    ndarray, shape (D_z,), float64

    Examples
    --------
    >>> kl_per_dimension(np.array([[0.0, 2.0], [0.0, -2.0]]), np.zeros((2, 2))).tolist()
    [0.0, 2.0]
    """
    mu = as_float_array("mu", mu, ndim=2).astype(np.float64)
    log_var = check_shape("log_var", as_float_array("log_var", log_var, ndim=2), mu.shape)
    # KL_u = 1/2 (sigma_u^2 - 1 - log sigma_u^2 + mu_u^2), with expm1 for sigma^2 - 1 (see gaussian.py)
    return 0.5 * np.mean(np.expm1(log_var) - log_var + mu**2, axis=0, dtype=np.float64)  # (D_z,)


def active_units(mu, threshold=ACTIVE_THRESHOLD):
    r"""How many latent dimensions are active, and each one's activity.

    .. math:: A_u = \operatorname{Cov}_x\!\left(\mathbb{E}_{q(z \mid x)}[z_u]\right)
              = \operatorname{Var}_n(\mu_{nu}), \qquad u \text{ active} \iff A_u > 0.01

    Parameters
    ----------
    mu : ndarray, shape (N, D_z), N >= 2
        The posterior means, one row per example.
    threshold : float

    Returns
    -------
    count : int
        The number of active dimensions.
    activity : ndarray, shape (D_z,), float64
        :math:`A_u` for each dimension.

    Examples
    --------
    >>> active_units(np.array([[0.0, 1.0], [0.0, -1.0]]))
    (1, array([0., 1.]))
    """
    mu = as_float_array("mu", mu, ndim=2)
    check_int("mu's number of rows", len(mu), minimum=2)
    # A_u: the variance over the data of the posterior mean of z_u
    activity = np.var(mu, axis=0, dtype=np.float64)  # (D_z,)
    return int(np.sum(activity > threshold)), activity


def encode_all(model, x, batch_rows=1000):
    """q(z | x)'s ``(mu, log_var)`` for every row of ``x``, encoded ``batch_rows`` at a time.

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
    x : ndarray, shape (N, D)
    batch_rows : int

    Returns
    -------
    mu, log_var : ndarray, shape (N, D_z) each, in the model's dtype
    """
    batch_rows = check_int("batch_rows", batch_rows)
    x = model.as_input(x)
    parts = [model.encode(x[start:start + batch_rows]) for start in range(0, len(x), batch_rows)]
    return np.concatenate([mu for mu, _ in parts]), np.concatenate([lv for _, lv in parts])
