"""The decoder's log-likelihoods, log p(x | z), as forward/backward pairs.

The decoder network maps a latent sample z to the parameters of a
distribution over images; these ops score the data x under that
distribution, one number per example, ``ll``. Evaluated at one sample
z ~ q(z | x), this is the reconstruction term of the ELBO, elbo (6).

* Bernoulli, likelihoods (4): every pixel is a coin with probability
  p = sigmoid(logits). Computed from the logits, never from p, so that no
  finite logit can produce log(0); ``ll <= 0``. The data ``x`` must lie in
  [0, 1]: binary pixels give the Bernoulli pmf; grey levels in between are
  accepted too, the usual practice for MNIST intensities (the formula is then
  a cross-entropy, no longer normalised over x). The gradient is data minus
  prediction, bounded by 1 in size; ``x`` gets none: it is data.
* Gaussian, likelihoods (8): every pixel is N(mean, exp(log_var)), both
  outputs of the decoder (a per-pixel learned variance). This is the Gaussian
  log-density of :mod:`scratchvae.lecture.gaussian_density` with x in the
  role of z; the ops here call it, they do not repeat it, and drop its
  gradient for x. They check their arguments under their own names, so that
  an error says "mean" or "x" where the density would say "mu" or "z".
  Nothing stops log_var from running to minus infinity on pixels that are
  fit exactly; see docs/likelihoods.md#gaussian for the usual guards.

Why the Bernoulli term is not the textbook sum_j x_j log p_j + (1 - x_j) log(1 - p_j):

* Saturation: in float32, 1 / (1 + exp(-l)) rounds to exactly 1 for
  l > ~16.7 (float64: ~36.8), and to 0 for l < ~-88 where exp(-l)
  overflows; then log(1 - p) or log p is log(0) = -inf, and where x_j
  (or 1 - x_j) is 0 the product 0 * -inf is nan.
* Cancellation: before that, 1 - p keeps few correct digits: at l = 12
  in float32, log(1 - p) comes out as -11.991 for -12.000006.

With p = sigmoid(l):  log p = l - softplus(l),  log(1 - p) = -softplus(l),
so the sum is  x l - softplus(l), and
``softplus(l) = log(1 + e^l) = max(l, 0) + log1p(exp(-abs(l)))`` exponentiates
only non-positive numbers: nothing overflows, log1p of a number in (0, 1] is
never log(0), and no 1 - p is ever formed.

Derivations: docs/likelihoods.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture import gaussian_density
from scratchvae.lecture.activations import sigmoid_forward, softplus_forward
from scratchvae.lecture.gaussian import check_gaussian_args
from scratchvae.lecture.validate import as_float_array, check_same_shape, check_unit_interval, check_upstream

__all__ = [
    "bernoulli_log_likelihood_backward",
    "bernoulli_log_likelihood_forward",
    "check_bernoulli_args",
    "gaussian_log_likelihood_backward",
    "gaussian_log_likelihood_forward",
]


def check_bernoulli_args(x, logits, finite=True):
    """``(x, logits)``: 2-D arrays of one shape, C-contiguous, ``x`` cast to the dtype of ``logits``.

    If ``finite``, every value is also checked: finite, and ``x`` in [0, 1].
    The engine's twin (:mod:`scratchvae.engine.likelihoods`) calls it with
    ``finite=False``: ``x`` is data, which the model checked once.
    """
    logits = np.ascontiguousarray(as_float_array("logits", logits, ndim=2, finite=finite))
    x = check_same_shape("x", as_float_array("x", x, ndim=2, finite=finite), "logits", logits)
    if finite:
        check_unit_interval("x", x)
    return np.ascontiguousarray(x, dtype=logits.dtype), logits  # (B, D) each; exact for binary pixels


class BernoulliCache(NamedTuple):
    """What :func:`bernoulli_log_likelihood_backward` needs."""

    x: np.ndarray  # (B, D) the data, in the dtype of logits
    p: np.ndarray  # (B, D) sigmoid(logits), the predicted pixel probabilities


def bernoulli_log_likelihood_forward(x, logits):
    r"""Log-probability of the pixels ``x`` under independent Bernoullis, from the logits, stably.

    .. math:: \log p(x \mid l) = \sum_j x_j l_j - \operatorname{softplus}(l_j), \qquad p_j = \operatorname{sigmoid}(l_j)

    Parameters
    ----------
    x : ndarray, shape (B, D), in [0, 1]
    logits : ndarray, shape (B, D), :math:`l = \log(p / (1 - p))`, any finite value

    Returns
    -------
    ll : ndarray, shape (B,), <= 0
    cache : BernoulliCache

    Examples
    --------
    >>> bernoulli_log_likelihood_forward([[1.0, 0.0]], [[-1e4, 1e4]])[0]  # p = 0 and 1: the textbook's log 0
    array([-20000.])

    Derivation: docs/likelihoods.md#bernoulli
    """
    x, logits = check_bernoulli_args(x, logits)
    # Not the textbook sum_j x_j log p_j + (1 - x_j) log(1 - p_j): why, in the module docstring.
    # BEGIN SOLUTION
    ll = np.sum(x * logits - softplus_forward(logits)[0], axis=1)  # likelihoods (4), per row; (B,)
    # p = sigmoid(l), the predicted pixel probabilities, for the backward
    p = sigmoid_forward(logits)[0]  # (B, D)
    return ll, BernoulliCache(x, p)
    # END SOLUTION


def bernoulli_log_likelihood_backward(dll, cache):
    r"""The Bernoulli log-likelihood's backward pass, for the logits (not for the data ``x``).

    .. math:: \frac{\partial \log p(x \mid l)}{\partial l_j} = x_j - \operatorname{sigmoid}(l_j)

    Parameters
    ----------
    dll : ndarray, shaped like ll
    cache : BernoulliCache

    Returns
    -------
    dlogits : ndarray, shaped like logits

    Examples
    --------
    >>> bernoulli_log_likelihood_backward([1.0], bernoulli_log_likelihood_forward([[1.0, 0.0]], [[0.0, 0.0]])[1])
    array([[ 0.5, -0.5]])

    Derivation: docs/likelihoods.md#bernoulli
    """
    x, p = cache
    dll = check_upstream("dll", dll, p.shape[:1], p.dtype)
    # BEGIN SOLUTION
    # likelihoods (7): d/dl_bj = dll_b * (x_bj - p_bj): data minus prediction
    return dll[:, None] * (x - p)  # (B, D)
    # END SOLUTION


def gaussian_log_likelihood_forward(x, mean, log_var):
    r"""Log-density of the pixels ``x`` under independent Gaussians N(mean, exp(log_var)).

    .. math:: \log p(x \mid z) = -\tfrac12 \sum_j \left[\log 2\pi + \log\sigma_j^2 + (x_j - \mu_j)^2 / \sigma_j^2\right]

    Parameters
    ----------
    x : ndarray, shape (B, D), cast to the dtype of mean and log_var
    mean, log_var : ndarray, shape (B, D)

    Returns
    -------
    ll : ndarray, shape (B,)
    cache : scratchvae.lecture.gaussian_density.LogDensityCache

    Examples
    --------
    >>> gaussian_log_likelihood_forward([[0.0]], [[0.0]], [[0.0]])[0]  # one pixel, N(0; 0, 1): -log(2 pi) / 2
    array([-0.91893853])

    Derivation: docs/likelihoods.md#gaussian
    """
    mean, log_var, x = check_gaussian_args({"mean": mean, "log_var": log_var}, {"x": x})
    # BEGIN SOLUTION
    # The same formula as q(z | x) in the encoder: x plays z, mean plays mu.
    ll, cache = gaussian_density.gaussian_log_density_forward(x, mean, log_var)  # (B,)
    return ll, cache
    # END SOLUTION


def gaussian_log_likelihood_backward(dll, cache):
    r"""The Gaussian log-likelihood's backward pass, for mean and log_var (not for the data ``x``).

    .. math:: \frac{\partial \log p}{\partial \mu_j} = \frac{x_j - \mu_j}{\sigma_j^2}, \qquad
              \frac{\partial \log p}{\partial \log\sigma_j^2} =
              \tfrac12\left(\frac{(x_j - \mu_j)^2}{\sigma_j^2} - 1\right)

    Parameters
    ----------
    dll : ndarray, shaped like ll; cache : scratchvae.lecture.gaussian_density.LogDensityCache

    Returns
    -------
    dmean, dlog_var : ndarray, shape (B, D)

    Examples
    --------
    >>> gaussian_log_likelihood_backward([1.0], gaussian_log_likelihood_forward([[1.0]], [[0.0]], [[0.0]])[1])
    (array([[1.]]), array([[0.]]))

    Derivation: docs/likelihoods.md#gaussian
    """
    dll = check_upstream("dll", dll, cache.r_std.shape[:1], cache.r_std.dtype)
    # BEGIN SOLUTION
    # likelihoods (9): the density's backward, gaussian (17), with x in the role of z; x's gradient is dropped
    _, dmean, dlog_var = gaussian_density.gaussian_log_density_backward(dll, cache)
    return dmean, dlog_var
    # END SOLUTION
