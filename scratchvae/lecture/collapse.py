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

from scratchvae.lecture.validate import check_int

__all__ = ["ACTIVE_THRESHOLD", "kl_per_dimension", "active_units"]

ACTIVE_THRESHOLD = 0.01
"""Burda et al.'s threshold on Cov_x(E_q[z_u | x]) for a dimension to count as active."""


def kl_per_dimension(model, x, batch_rows=1000):
    r"""The KL term of each latent dimension, averaged over the examples ``x``.

    .. math:: \overline{\mathrm{KL}}_u = \frac1N \sum_n \tfrac12
              \left(\sigma_{nu}^2 + \mu_{nu}^2 - 1 - \log\sigma_{nu}^2\right)

    Their sum is the average KL term of the ELBO.

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
    x : ndarray, shape (N, D)
    batch_rows : int
        Examples encoded at once.

    Returns
    -------
    ndarray, shape (D_z,), float64

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(6, hidden=(4,), latent_dim=3)
    >>> kl_per_dimension(model, np.zeros((5, 6))).shape
    (3,)
    """
    total = np.zeros(model.latent_dim)
    for mu, log_var in _posteriors(model, x, batch_rows):
        # KL_u = 1/2 (sigma_u^2 + mu_u^2 - 1 - log sigma_u^2), expm1 for sigma^2 - 1 (see gaussian.py)
        total += 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=0, dtype=np.float64)
    return total / len(x)


def active_units(model, x, threshold=ACTIVE_THRESHOLD, batch_rows=1000):
    r"""How many latent dimensions are active, and each one's activity.

    .. math:: A_u = \operatorname{Cov}_x\!\left(\mathbb{E}_{q(z \mid x)}[z_u]\right)
              = \operatorname{Var}_n(\mu_{nu}), \qquad u \text{ active} \iff A_u > 0.01

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
    x : ndarray, shape (N, D), N >= 2
    threshold : float
    batch_rows : int

    Returns
    -------
    count : int
        The number of active dimensions.
    activity : ndarray, shape (D_z,), float64
        :math:`A_u` for each dimension.

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(6, hidden=(4,), latent_dim=3)
    >>> count, activity = active_units(model, np.random.default_rng(0).random((50, 6)))
    >>> activity.shape, 0 <= count <= 3
    ((3,), True)
    """
    check_int("N (the number of examples)", len(x), minimum=2)
    means = np.concatenate([mu for mu, _ in _posteriors(model, x, batch_rows)])  # (N, D_z)
    # A_u: the variance over the data of the posterior mean of z_u
    activity = np.var(means, axis=0, dtype=np.float64)  # (D_z,)
    return int(np.sum(activity > threshold)), activity


def _posteriors(model, x, batch_rows):
    """(mu, log_var) of q(z | x) for each chunk of ``batch_rows`` examples, in float64."""
    batch_rows = check_int("batch_rows", batch_rows)
    x = model.as_input(x)
    for start in range(0, len(x), batch_rows):
        mu, log_var = model.encode(x[start:start + batch_rows])  # (E, D_z) each
        yield mu.astype(np.float64), log_var.astype(np.float64)
