"""The whole idea in sixty lines: the smallest VAE, one dense layer each way. Start reading here.

The encoder is one dense layer from the pixels to the mean and log-variance of
q(z | x); a sample z = mu + sigma * eps goes through one dense layer to the
decoder's logits; the loss is the negative ELBO, reconstruction plus KL. Its
backward is the whole chain of docs/vae.md#backward in a few lines, with the
two paths into mu and log_var in plain sight. Every later module of the
lecture takes one of these steps and looks at it closely;
:class:`scratchvae.lecture.vae.VAE` is this model with hidden layers.
Derivation: docs/vae.md#forward
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.lecture.likelihoods import bernoulli_log_likelihood_backward, bernoulli_log_likelihood_forward

__all__ = ["TinyVAECache", "tiny_vae_backward", "tiny_vae_forward"]


class TinyVAECache(NamedTuple):
    """Each op's cache, in the order of the forward, and the loss's constants."""

    encoder: tuple  # dense_forward's: x -> [mu | log_var]
    reparameterize: tuple
    decoder: tuple  # dense_forward's: z -> logits
    likelihood: tuple
    kl: tuple
    beta: float
    batch: int


def tiny_vae_forward(x, eps, W_enc, b_enc, W_dec, b_dec, beta=1.0):
    r"""The negative ELBO of the smallest VAE: one dense layer each way, Bernoulli pixels.

    .. math:: [\mu \,|\, \log\sigma^2] = x W_{enc} + b_{enc}, \;
              z = \mu + e^{\log\sigma^2 / 2} \odot \varepsilon, \;
              \text{logits} = z W_{dec} + b_{dec}, \;
              \text{loss} = \frac1B \sum_n \big[-\log p(x_n | z_n) + \beta\,\mathrm{KL}_n\big]

    Parameters
    ----------
    x : ndarray, shape (B, D), binary pixels; eps : ndarray, shape (B, D_z), standard normal noise
    W_enc, b_enc, W_dec, b_dec : ndarray, shapes (D, 2 D_z), (2 D_z,), (D_z, D), (D,); beta : KL weight

    Returns
    -------
    loss : float; cache : TinyVAECache

    Examples
    --------
    >>> zeros = np.zeros((4, 2)), np.zeros(2), np.zeros((1, 4)), np.zeros(4)  # every pixel a fair coin:
    >>> round(float(tiny_vae_forward(np.eye(4)[:3], np.ones((3, 1)), *zeros)[0] / np.log(2)), 6)  # 4 bits
    4.0

    Derivation: docs/vae.md#forward
    """
    mu_log_var, encoder = dense_forward(x, W_enc, b_enc)  # (B, 2 D_z): [mu | log_var]
    D_z = mu_log_var.shape[1] // 2
    mu, log_var = mu_log_var[:, :D_z], mu_log_var[:, D_z:]  # (B, D_z) each
    z, reparameterize = reparameterize_forward(mu, log_var, eps)  # (B, D_z)
    logits, decoder = dense_forward(z, W_dec, b_dec)  # (B, D)
    reconstruction, likelihood = bernoulli_log_likelihood_forward(x, logits)  # (B,)
    kl, kl_cache = kl_standard_normal_forward(mu, log_var)  # (B,)
    beta = float(beta)
    # vae (2): loss = (1/B) sum_n [ -reconstruction_n + beta kl_n ]
    loss = float(np.mean(beta * kl - reconstruction))
    return loss, TinyVAECache(encoder, reparameterize, decoder, likelihood, kl_cache, beta, len(kl))


def tiny_vae_backward(dloss, cache):
    r"""Gradients of :func:`tiny_vae_forward`'s loss for its four parameters: the forward read upwards.

    .. math:: d\text{reconstruction}_n = -\frac{d\text{loss}}{B}, \qquad
              d\text{kl}_n = \frac{d\text{loss}\,\beta}{B}

    and :math:`\mu, \log\sigma^2` receive the sum of two paths, through z and through the KL term.

    Parameters
    ----------
    dloss : float; cache : TinyVAECache

    Returns
    -------
    dW_enc, db_enc, dW_dec, db_dec : ndarray, shaped like the parameters

    Examples
    --------
    >>> zeros = np.zeros((4, 2)), np.zeros(2), np.zeros((1, 4)), np.zeros(4)
    >>> [d.shape for d in tiny_vae_backward(1.0, tiny_vae_forward(np.eye(4), np.ones((4, 1)), *zeros)[1])]
    [(4, 2), (2,), (1, 4), (4,)]

    Derivation: docs/vae.md#tiny-vae
    """
    # BEGIN SOLUTION
    B, beta = cache.batch, cache.beta
    # vae (3): loss -> each example's reconstruction and KL term
    dreconstruction = np.full(B, -dloss / B)  # (B,)
    dkl = np.full(B, dloss * beta / B)  # (B,)
    # reconstruction -> logits -> z and the decoder's parameters
    dlogits = bernoulli_log_likelihood_backward(dreconstruction, cache.likelihood)  # (B, D)
    dz, dW_dec, db_dec = dense_backward(dlogits, cache.decoder)  # (B, D_z), ...
    # vae (5): z -> (mu, log_var), the path through the sample ...
    dmu, dlog_var = reparameterize_backward(dz, cache.reparameterize)  # (B, D_z) each
    # vae (4): ... and the path through the KL term; vae (6): the two add
    dmu_kl, dlog_var_kl = kl_standard_normal_backward(dkl, cache.kl)  # (B, D_z) each
    dmu_log_var = np.concatenate([dmu + dmu_kl, dlog_var + dlog_var_kl], axis=1)  # (B, 2 D_z)
    _, dW_enc, db_enc = dense_backward(dmu_log_var, cache.encoder)
    return dW_enc, db_enc, dW_dec, db_dec
    # END SOLUTION
