"""The decoder's log-likelihoods, log p(x | z), as forward/backward pairs.

The decoder network maps a latent sample z to the parameters of a
distribution over images; these ops score the data x under that
distribution, one number per example. Evaluated at one sample z ~ q(z | x),
this is the reconstruction term A of note 000 (5)-(6).

* Bernoulli (note 001): every pixel is a coin with probability
  p = sigmoid(logits). Computed from the logits, never from p, so that no
  finite logit can produce log(0).
* Gaussian (notes 003, 004): every pixel is N(mean, exp(log_var)). This is
  the Gaussian log-density of :mod:`scratchvae.lecture.gaussian_density` with x in
  the role of z; the ops here call it, they do not repeat it.

Derivations: docs/likelihoods.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture import gaussian_density, validate
from scratchvae.lecture.activations import sigmoid_forward, softplus_forward

__all__ = [
    "bernoulli_log_likelihood_backward",
    "bernoulli_log_likelihood_forward",
    "gaussian_log_likelihood_backward",
    "gaussian_log_likelihood_forward",
]


class BernoulliCache(NamedTuple):
    """What :func:`bernoulli_log_likelihood_backward` needs."""

    x: np.ndarray  # (B, D) the data, in the dtype of logits
    p: np.ndarray  # (B, D) sigmoid(logits), the predicted pixel probabilities


def bernoulli_log_likelihood_forward(x, logits):
    r"""Log-probability of the pixels ``x`` under independent Bernoullis.

    .. math:: \log p(x \mid l) = \sum_j x_j l_j - \operatorname{softplus}(l_j),
              \qquad p_j = \operatorname{sigmoid}(l_j)

    which is :math:`\sum_j x_j \log p_j + (1 - x_j) \log(1 - p_j)` rewritten
    so that it is finite for every finite logit.

    Parameters
    ----------
    x : array_like, shape (B, D)
        The data, in [0, 1]. Binary pixels give the Bernoulli pmf; grey levels
        in between are accepted too, the usual practice for MNIST intensities
        (the formula is then a cross-entropy, no longer normalised over x).
        Cast to the dtype of ``logits``.
    logits : ndarray, shape (B, D), float32 or float64
        The decoder's output, :math:`l = \log(p / (1 - p))`. Any finite value.

    Returns
    -------
    ll : ndarray, shape (B,)
        :math:`\log p(x_b \mid l_b)` for each example, in the dtype of
        ``logits``; always :math:`\le 0`.
    cache : BernoulliCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0]])
    >>> ll, _ = bernoulli_log_likelihood_forward(x, np.array([[0.0, 0.0]]))
    >>> bool(np.isclose(ll[0], 2 * np.log(0.5)))
    True
    >>> ll, _ = bernoulli_log_likelihood_forward(x, np.array([[-1e4, 1e4]]))  # p = 0 and 1
    >>> float(ll[0])  # the textbook formula gives log(0) = -inf here
    -20000.0
    """
    logits = validate.as_float_array("logits", logits, ndim=2)
    x = validate.as_float_array("x", x, ndim=2)
    validate.check_same_shape("x", x, "logits", logits)
    validate.check_unit_interval("x", x)
    x = x.astype(logits.dtype, copy=False)  # (B, D); exact for binary pixels

    # BEGIN SOLUTION
    # Why not the textbook  sum_j x_j log p_j + (1 - x_j) log(1 - p_j)?
    # * Saturation: in float32, 1 / (1 + exp(-l)) rounds to exactly 1 for
    #   l > ~16.7 (float64: ~36.8), and to 0 for l < ~-88 where exp(-l)
    #   overflows; then log(1 - p) or log p is log(0) = -inf, and where x_j
    #   (or 1 - x_j) is 0 the product 0 * -inf is nan.
    # * Cancellation: before that, 1 - p keeps few correct digits: at l = 12
    #   in float32, log(1 - p) comes out as -11.991 for -12.000006.
    # With p = sigmoid(l):  log p = l - softplus(l),  log(1 - p) = -softplus(l),
    # so the sum is  x l - softplus(l), and
    #   softplus(l) = log(1 + e^l) = max(l, 0) + log1p(exp(-|l|))
    # exponentiates only non-positive numbers: nothing overflows, log1p of a
    # number in (0, 1] is never log(0), and no 1 - p is ever formed.
    # eq. (4): log p(x | l) = sum_j x_j l_j - softplus(l_j), per row (softplus in its stable form)
    with np.errstate(over="ignore"):  # a sum that overflows is reported just below
        ll = np.sum(x * logits - softplus_forward(logits)[0], axis=1)  # (B,)
    validate.check_no_overflow("ll", ll, logits=logits)
    # p = sigmoid(l), the predicted pixel probabilities, for the backward
    p = sigmoid_forward(logits)[0]  # (B, D)
    return ll, BernoulliCache(x, p)
    # END SOLUTION


def bernoulli_log_likelihood_backward(dll, cache):
    r"""Gradient of the Bernoulli log-likelihood with respect to the logits.

    .. math:: \frac{\partial \log p(x \mid l)}{\partial l_j}
              = x_j - \operatorname{sigmoid}(l_j)

    data minus prediction, so :math:`|\partial / \partial l_j| \le 1`. No
    gradient for ``x``: it is data.

    Derivation: docs/likelihoods.md#bernoulli

    Parameters
    ----------
    dll : ndarray, shape (B,)
        Upstream gradient, dL/d(ll).
    cache : BernoulliCache
        From :func:`bernoulli_log_likelihood_forward`.

    Returns
    -------
    dlogits : ndarray, shape (B, D)
        ``dll[:, None] * (x - p)``, in the dtype of the logits.

    Examples
    --------
    >>> import numpy as np
    >>> ll, cache = bernoulli_log_likelihood_forward(np.array([[1.0, 0.0]]), np.zeros((1, 2)))
    >>> bernoulli_log_likelihood_backward(np.ones(1), cache)
    array([[ 0.5, -0.5]])
    """
    x, p = cache
    dll = validate.as_float_array("dll", dll)
    dll = validate.check_shape("dll", dll, (p.shape[0],)).astype(p.dtype, copy=False)
    # BEGIN SOLUTION
    # eq. (7): d/dl_bj = dll_b * (x_bj - p_bj): data minus prediction
    return dll[:, None] * (x - p)  # (B, D)
    # END SOLUTION


def gaussian_log_likelihood_forward(x, mean, log_var):
    r"""Log-density of the pixels ``x`` under independent Gaussians.

    .. math:: \log \mathcal{N}(x \mid \mu, \operatorname{diag} e^{v})
              = -\tfrac12 \sum_j \left[\log 2\pi + v_j + (x_j - \mu_j)^2 e^{-v_j}\right]

    with :math:`\mu` = ``mean`` and :math:`v` = ``log_var``, both outputs of
    the decoder (a per-pixel learned variance). The computation is
    :func:`scratchvae.lecture.gaussian_density.gaussian_log_density_forward` with
    ``x`` in the role of ``z``; only the point of view, and the names, differ.

    Parameters
    ----------
    x : array_like, shape (B, D)
        The data; any finite values.
    mean : ndarray, shape (B, D), float32 or float64
        The decoder's mean for each pixel.
    log_var : ndarray, shape (B, D)
        The decoder's log-variance for each pixel. Nothing stops it from
        running to minus infinity on pixels that are fit exactly; see
        docs/likelihoods.md#gaussian for the usual guards.

    Returns
    -------
    ll : ndarray, shape (B,)
        :math:`\log p(x_b \mid z_b)` for each example.
    cache : scratchvae.lecture.gaussian_density.LogDensityCache
        For the backward pass.

    Examples
    --------
    >>> import numpy as np
    >>> zero = np.zeros((1, 1))
    >>> ll, _ = gaussian_log_likelihood_forward(zero, zero, zero)  # one pixel, N(0; 0, 1)
    >>> bool(np.isclose(ll[0], -0.5 * np.log(2 * np.pi)))
    True
    """
    # Checked here, under this op's own names, so that an error says "mean"
    # or "x" where the density below would say "mu" or "z".
    mean = validate.as_float_array("mean", mean, ndim=2)
    log_var = validate.as_float_array("log_var", log_var, ndim=2)
    x = validate.as_float_array("x", x, ndim=2)
    validate.check_same_shape("log_var", log_var, "mean", mean)
    validate.check_same_shape("x", x, "mean", mean)
    # BEGIN SOLUTION
    # The same formula as q(z | x) in the encoder: x plays z, mean plays mu.
    ll, cache = gaussian_density.gaussian_log_density_forward(x, mean, log_var)  # (B,)
    return ll, cache
    # END SOLUTION


def gaussian_log_likelihood_backward(dll, cache):
    r"""Gradients of the Gaussian log-likelihood for the mean and log-variance.

    .. math:: \frac{\partial \log p}{\partial \mu_j} = (x_j - \mu_j)\, e^{-v_j},
              \qquad
              \frac{\partial \log p}{\partial v_j}
              = \tfrac12\left((x_j - \mu_j)^2 e^{-v_j} - 1\right)

    each times ``dll``. The density's gradient for ``x`` is dropped: ``x``
    is data.

    Derivation: docs/likelihoods.md#gaussian

    Parameters
    ----------
    dll : ndarray, shape (B,)
        Upstream gradient, dL/d(ll).
    cache : scratchvae.lecture.gaussian_density.LogDensityCache
        From :func:`gaussian_log_likelihood_forward`.

    Returns
    -------
    dmean, dlog_var : ndarray, shape (B, D)

    Examples
    --------
    >>> import numpy as np
    >>> x, mean, log_var = np.ones((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))
    >>> ll, cache = gaussian_log_likelihood_forward(x, mean, log_var)
    >>> dmean, dlog_var = gaussian_log_likelihood_backward(np.ones(1), cache)
    >>> float(dmean[0, 0]), float(dlog_var[0, 0])
    (1.0, 0.0)
    """
    # BEGIN SOLUTION
    _, dmean, dlog_var = gaussian_density.gaussian_log_density_backward(dll, cache)
    return dmean, dlog_var
    # END SOLUTION
