"""The variant tasks' reference: ops the lecture does not contain, kept on the marker's side.

Each variant is a forward/backward pair in the lecture's style (formula first,
shapes in comments, the marked body between ``# BEGIN SOLUTION`` and
``# END SOLUTION``). The marker looks ``variants.<name>`` up here
(:func:`scratchvae.classroom.mark.reference_lookup`); the handout never copies
this file: :func:`scratchvae.classroom.variants.stub_module` cuts the chosen
variants out of it, every marked body replaced by a raise, and writes that as
the student's ``studentvae/variants.py``. So the docstrings here are the
student's task: the forward's formula, what the backward returns, an example.
The backward's formula is the student's to derive. The public package holds
this file, so a determined student can read it: marks that count rest on
``mark --seed`` and the similarity report too.

Equations "variants (n)" are those of docs/variants.md, the teacher's page.

* ``elu``: the exponential linear unit, variants (1)-(2);
* ``swish``: x sigmoid(beta x), SiLU at beta = 1, variants (3)-(4);
* ``gelu``: the GELU, tanh approximation, variants (5)-(6);
* ``kl_gaussian_prior``: KL to a prior N(m, s^2), variants (7)-(8);
* ``softplus_reparameterize``: z = mu + softplus(rho) eps, variants (9)-(10);
* ``logistic_log_likelihood``: the logistic log-likelihood, variants (11)-(12).

Derivations: docs/variants.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.activations import sigmoid_forward, softplus_forward
from scratchvae.lecture.gaussian import check_gaussian_args
from scratchvae.lecture.validate import as_float_array, check_upstream

__all__ = [
    "check_number",
    "elu_forward", "elu_backward", "swish_forward", "swish_backward", "gelu_forward", "gelu_backward",
    "kl_gaussian_prior_forward", "kl_gaussian_prior_backward",
    "softplus_reparameterize_forward", "softplus_reparameterize_backward",
    "logistic_log_likelihood_forward", "logistic_log_likelihood_backward",
]

GELU_A = 0.044715  # the cubic term's weight in GELU's tanh approximation
GELU_K = 2 * np.sqrt(2 / np.pi)  # 1/2 (1 + tanh(y)) = sigmoid(2 y): the factor 2 folded in


def check_number(name, value, positive=False):
    """``value`` as a finite float (> 0 if ``positive``), or a ValueError naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = np.nan
    if not np.isfinite(number) or (positive and not number > 0):
        raise ValueError(f"{name}: expected a finite number{' > 0' if positive else ''}, got {value!r}")
    return number


# --- ELU ------------------------------------------------------------------------


class EluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape
    alpha: float


def elu_forward(x, alpha=1.0):
    r"""The exponential linear unit, element-wise, with the scale :math:`\alpha > 0` for :math:`x \le 0`.

    .. math:: \text{out} = x \text{ where } x > 0, \quad \alpha\,(e^x - 1) \text{ elsewhere}

    Parameters
    ----------
    x : ndarray, any shape
    alpha : float > 0

    Returns
    -------
    out : ndarray, shaped like x, > -alpha
    cache : EluCache

    Examples
    --------
    >>> elu_forward(np.array([-1e4, 0.0, 2.0]), alpha=1.5)[0]
    array([-1.5,  0. ,  2. ])

    Derivation: docs/variants.md#elu (the teacher's page, not in the handout)
    """
    x = as_float_array("x", x)
    alpha = check_number("alpha", alpha, positive=True)
    # BEGIN SOLUTION
    # variants (1), with expm1 (exact near 0) on min(x, 0): e^x of the unused branch would overflow
    out = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    return out, EluCache(x, alpha)
    # END SOLUTION


def elu_backward(dout, cache):
    r"""ELU's backward pass: the gradient of :math:`\sum \text{dout} \cdot \text{out}` with respect to x.

    At exactly :math:`x = 0`, take the left-hand derivative.

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : EluCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> elu_backward(np.ones(2), elu_forward(np.array([0.0, 2.0]), alpha=1.5)[1])
    array([1.5, 1. ])

    Derivation: docs/variants.md#elu (the teacher's page, not in the handout)
    """
    x, alpha = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    # variants (2): dx = dout where x > 0, dout * alpha e^x elsewhere
    return np.where(x > 0, dout, dout * alpha * np.exp(np.minimum(x, 0)))
    # END SOLUTION


# --- Swish (SiLU) ----------------------------------------------------------------


class SwishCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape
    beta: float
    s: np.ndarray  # sigmoid(beta x), shaped like x


def swish_forward(x, beta=1.0):
    r"""Swish, element-wise: x times the sigmoid of :math:`\beta x` (SiLU when :math:`\beta = 1`).

    .. math:: \text{out} = x\,\operatorname{sigmoid}(\beta x) = \frac{x}{1 + e^{-\beta x}}

    Parameters
    ----------
    x : ndarray, any shape
    beta : float > 0

    Returns
    -------
    out : ndarray, shaped like x
    cache : SwishCache

    Examples
    --------
    >>> swish_forward(np.array([-1e4, 0.0, 1e4]))[0].tolist()
    [-0.0, 0.0, 10000.0]

    Derivation: docs/variants.md#swish (the teacher's page, not in the handout)
    """
    x = as_float_array("x", x)
    beta = check_number("beta", beta, positive=True)
    # BEGIN SOLUTION
    s = sigmoid_forward(beta * x)[0]  # the stable sigmoid: e^{-beta x} would overflow for x << 0
    out = x * s  # variants (3)
    return out, SwishCache(x, beta, s)
    # END SOLUTION


def swish_backward(dout, cache):
    r"""Swish's backward pass: the gradient of :math:`\sum \text{dout} \cdot \text{out}` with respect to x.

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : SwishCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> swish_backward(np.ones(1), swish_forward(np.array([0.0]))[1])
    array([0.5])

    Derivation: docs/variants.md#swish (the teacher's page, not in the handout)
    """
    x, beta, s = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    # variants (4): dx = dout * (s + beta x s (1 - s)), with 1 - s = sigmoid(-beta x), exact when s ~ 1
    return dout * (s + beta * x * s * sigmoid_forward(-beta * x)[0])
    # END SOLUTION


# --- GELU (tanh approximation) ----------------------------------------------------


class GeluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape
    t: np.ndarray  # k (x + a x^3), the sigmoid's argument, shaped like x


def gelu_forward(x):
    r"""The GELU, element-wise, in its tanh approximation (Hendrycks and Gimpel; GPT-2, BERT).

    .. math:: \text{out} = \tfrac12 x \left(1 + \tanh\!\left(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\right)\right)

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shaped like x
    cache : GeluCache

    Examples
    --------
    >>> gelu_forward(np.array([-1e4, 0.0, 1.0, 1e4]))[0]
    array([-0.00000000e+00,  0.00000000e+00,  8.41191991e-01,  1.00000000e+04])

    Derivation: docs/variants.md#gelu (the teacher's page, not in the handout)
    """
    x = as_float_array("x", x)
    # BEGIN SOLUTION
    # variants (5): 1/2 (1 + tanh(y)) = sigmoid(2 y), so out = x sigmoid(t), t = 2 sqrt(2/pi) (x + a x^3);
    # 1 + tanh(y) would lose every digit for y << 0, where tanh(y) rounds to -1
    t = GELU_K * (x + GELU_A * x**3)
    out = x * sigmoid_forward(t)[0]
    return out, GeluCache(x, t)
    # END SOLUTION


def gelu_backward(dout, cache):
    r"""The GELU's backward pass: the gradient of :math:`\sum \text{dout} \cdot \text{out}` with respect to x.

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : GeluCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> gelu_backward(np.ones(1), gelu_forward(np.array([0.0]))[1])
    array([0.5])

    Derivation: docs/variants.md#gelu (the teacher's page, not in the handout)
    """
    x, t = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    s = sigmoid_forward(t)[0]
    # variants (6): dx = dout * (s + x s (1 - s) k (1 + 3 a x^2)), with 1 - s = sigmoid(-t)
    return dout * (s + x * s * sigmoid_forward(-t)[0] * GELU_K * (1 + 3 * GELU_A * x**2))
    # END SOLUTION


# --- KL(N(mu, diag(exp(log_var))) || N(m, s^2 I)) ---------------------------------


class KLGaussianPriorCache(NamedTuple):
    mu: np.ndarray  # (B, D_z)
    log_ratio: np.ndarray  # (B, D_z) log(sigma^2 / s^2)
    prior_mean: float
    prior_std: float


def kl_gaussian_prior_forward(mu, log_var, prior_mean=0.0, prior_std=1.0):
    r"""The KL divergence from each row's diagonal Gaussian to the prior :math:`\mathcal{N}(m, s^2 I)`.

    .. math:: \mathrm{KL} = \sum_j \mathrm{KL}\left(\mathcal{N}(\mu_j, \sigma_j^2) \,\|\, \mathcal{N}(m, s^2)\right),
              \qquad \sigma_j^2 = e^{\log\sigma_j^2}

    One number per row, :math:`\ge 0`, zero exactly when every :math:`\mu_j = m` and :math:`\sigma_j = s`.

    Parameters
    ----------
    mu, log_var : ndarray, shape (B, D_z)
    prior_mean : float, the prior's mean m (every coordinate)
    prior_std : float > 0, the prior's standard deviation s (every coordinate)

    Returns
    -------
    kl : ndarray, shape (B,), >= 0
    cache : KLGaussianPriorCache

    Examples
    --------
    >>> kl_gaussian_prior_forward([[1.0, 3.0]], np.log([[4.0, 4.0]]), prior_mean=1.0, prior_std=2.0)[0]
    array([0.5])

    Derivation: docs/variants.md#kl-gaussian-prior (the teacher's page, not in the handout)
    """
    mu, log_var = check_gaussian_args({"mu": mu, "log_var": log_var})
    prior_mean = check_number("prior_mean", prior_mean)
    prior_std = check_number("prior_std", prior_std, positive=True)
    # BEGIN SOLUTION
    # variants (7): KL_b = 1/2 sum_j (r_j - 1 - log r_j + (mu_j - m)^2 / s^2), r_j = sigma_j^2 / s^2;
    # expm1(log r) - log r, not r - 1 - log r, which loses every digit near r = 1 (q near p)
    log_ratio = log_var - 2 * np.log(prior_std)  # (B, D_z)
    kl = 0.5 * np.sum(np.expm1(log_ratio) - log_ratio + (mu - prior_mean) ** 2 / prior_std**2, axis=1)  # (B,)
    return kl, KLGaussianPriorCache(mu, log_ratio, prior_mean, prior_std)
    # END SOLUTION


def kl_gaussian_prior_backward(dkl, cache):
    r"""The backward pass of the KL to :math:`\mathcal{N}(m, s^2 I)`, for mu and log_var (not for m, s).

    Each row's gradients are scaled by that row's ``dkl``.

    Parameters
    ----------
    dkl : ndarray, shaped like kl
    cache : KLGaussianPriorCache

    Returns
    -------
    dmu, dlog_var : ndarray, shape (B, D_z)

    Examples
    --------
    >>> kl_gaussian_prior_backward([1.0], kl_gaussian_prior_forward([[3.0]], [[0.0]], 1.0, 1.0)[1])
    (array([[2.]]), array([[0.]]))

    Derivation: docs/variants.md#kl-gaussian-prior (the teacher's page, not in the handout)
    """
    mu, log_ratio, prior_mean, prior_std = cache
    dkl = check_upstream("dkl", dkl, mu.shape[:1], mu.dtype)[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    dmu = dkl * (mu - prior_mean) / prior_std**2  # variants (8): dKL/dmu_j = (mu_j - m) / s^2; (B, D_z)
    dlog_var = 0.5 * dkl * np.expm1(log_ratio)  # variants (8): dKL/dlog_var_j = (sigma_j^2 / s^2 - 1) / 2
    return dmu, dlog_var
    # END SOLUTION


# --- Reparameterisation with sigma = softplus(rho) ---------------------------------


class SoftplusReparameterizeCache(NamedTuple):
    eps: np.ndarray  # (B, D_z) the noise
    rho: np.ndarray  # (B, D_z) sigma's parameter


def softplus_reparameterize_forward(mu, rho, eps):
    r"""A sample of :math:`\mathcal{N}(\mu, \operatorname{diag}\sigma^2)` with sigma the softplus of rho.

    .. math:: z = \mu + \sigma \odot \varepsilon, \qquad \sigma = \log(1 + e^{\rho})

    Every real :math:`\rho` gives a valid :math:`\sigma > 0` (in exact arithmetic), as
    :math:`\log\sigma^2` does in the lecture; but :math:`\sigma` grows like :math:`\rho`, not like
    :math:`e^{\rho}`.

    Parameters
    ----------
    mu, rho : ndarray, shape (B, D_z)
    eps : ndarray, shape (B, D_z), standard normal noise drawn by the caller

    Returns
    -------
    z : ndarray, shape (B, D_z)
    cache : SoftplusReparameterizeCache

    Examples
    --------
    >>> softplus_reparameterize_forward([[1.0, 0.0]], [[1e4, 0.0]], [[1.0, 1.0]])[0]  # sigma 1e4, log 2
    array([[1.00010000e+04, 6.93147181e-01]])

    Derivation: docs/variants.md#softplus-reparameterize (the teacher's page, not in the handout)
    """
    mu, rho, eps = check_gaussian_args({"mu": mu, "rho": rho}, {"eps": eps})
    # BEGIN SOLUTION
    # variants (9): sigma = softplus(rho), the stable softplus: log(1 + e^rho) overflows for rho > 709
    sigma = softplus_forward(rho)[0]  # (B, D_z)
    z = mu + sigma * eps  # variants (9); (B, D_z)
    return z, SoftplusReparameterizeCache(eps, rho)
    # END SOLUTION


def softplus_reparameterize_backward(dz, cache):
    r"""The backward pass of :func:`softplus_reparameterize_forward`, for mu and rho (not for the noise).

    Parameters
    ----------
    dz : ndarray, shaped like z
    cache : SoftplusReparameterizeCache

    Returns
    -------
    dmu, drho : ndarray, shape (B, D_z)

    Examples
    --------
    >>> softplus_reparameterize_backward([[1.0]], softplus_reparameterize_forward([[0.0]], [[0.0]], [[2.0]])[1])
    (array([[1.]]), array([[1.]]))

    Derivation: docs/variants.md#softplus-reparameterize (the teacher's page, not in the handout)
    """
    eps, rho = cache
    dz = check_upstream("dz", dz, rho.shape, rho.dtype)
    # BEGIN SOLUTION
    dmu = dz.copy()  # variants (10): dz_j / dmu_j = 1; (B, D_z)
    # variants (10): dz_j / drho_j = eps_j softplus'(rho_j) = eps_j sigmoid(rho_j)
    drho = dz * eps * sigmoid_forward(rho)[0]  # (B, D_z)
    return dmu, drho
    # END SOLUTION


# --- The logistic log-likelihood --------------------------------------------------


class LogisticCache(NamedTuple):
    u: np.ndarray  # (B, D) (x - mean) / scale, the standardised residual
    log_scale: np.ndarray  # (B, D)


def logistic_log_likelihood_forward(x, mean, log_scale):
    r"""Log-density of ``x`` under independent logistic distributions, from location and log-scale.

    .. math:: \log p(x) = \sum_j \left[-u_j - \log s_j - 2 \log\left(1 + e^{-u_j}\right)\right],
              \qquad u_j = \frac{x_j - \mu_j}{s_j}, \quad s_j = e^{\log s_j}

    Parameters
    ----------
    x : ndarray, shape (B, D), cast to the dtype of mean and log_scale
    mean, log_scale : ndarray, shape (B, D)

    Returns
    -------
    ll : ndarray, shape (B,)
    cache : LogisticCache

    Examples
    --------
    >>> logistic_log_likelihood_forward([[0.0, 1e4]], [[0.0, 0.0]], [[0.0, 0.0]])[0]  # log(1/4) - 1e4
    array([-10001.38629436])

    Derivation: docs/variants.md#logistic-log-likelihood (the teacher's page, not in the handout)
    """
    mean, log_scale, x = check_gaussian_args({"mean": mean, "log_scale": log_scale}, {"x": x})
    # BEGIN SOLUTION
    # variants (11): u = (x - mu) / s, the standardised residual, with s = exp(log_scale)
    u = (x - mean) * np.exp(-log_scale)  # (B, D)
    # variants (11): the density is even in u, so -u - 2 log(1 + e^{-u}) = -|u| - 2 log(1 + e^{-|u|}):
    # e^{-|u|} <= 1 never overflows, as e^{-u} does for u < -709
    ll = -np.sum(np.abs(u) + 2 * np.log1p(np.exp(-np.abs(u))) + log_scale, axis=1)  # (B,)
    return ll, LogisticCache(u, log_scale)
    # END SOLUTION


def logistic_log_likelihood_backward(dll, cache):
    r"""The logistic log-likelihood's backward pass, for mean and log_scale (not for the data ``x``).

    Each row's gradients are scaled by that row's ``dll``.

    Parameters
    ----------
    dll : ndarray, shaped like ll
    cache : LogisticCache

    Returns
    -------
    dmean, dlog_scale : ndarray, shape (B, D)

    Examples
    --------
    >>> logistic_log_likelihood_backward([1.0], logistic_log_likelihood_forward([[0.0]], [[0.0]], [[0.0]])[1])
    (array([[0.]]), array([[-1.]]))

    Derivation: docs/variants.md#logistic-log-likelihood (the teacher's page, not in the handout)
    """
    u, log_scale = cache
    dll = check_upstream("dll", dll, u.shape[:1], u.dtype)[:, None]  # (B, 1), broadcast along each row
    # BEGIN SOLUTION
    g = np.tanh(u / 2)  # variants (12): d log p / du_j = -tanh(u_j / 2); (B, D)
    dmean = dll * g * np.exp(-log_scale)  # variants (12): du_j / dmean_j = -1 / s_j
    dlog_scale = dll * (u * g - 1)  # variants (12): du_j / dlog s_j = -u_j, and d(-log s_j) = -1
    return dmean, dlog_scale
    # END SOLUTION
