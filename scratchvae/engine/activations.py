"""The activations: element-wise nonlinearities as forward/backward pairs.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)

Each works on arrays of any shape: the Numba kernels of
:mod:`scratchvae.engine.kernels` see flat, contiguous views. The exponentials are
NumPy ufuncs (vectorised, faster here than a Numba loop calling exp). The
modules that wrap these ops for networks (:class:`scratchvae.lecture.modules.ReLU`,
...) live in :mod:`scratchvae.lecture.modules`; :mod:`scratchvae.engine.dense` re-exports the ops.
Derivations: docs/layers.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine.kernels import (
    leaky_relu,
    leaky_relu_grad,
    multiply,
    sigmoid_from_exp,
    sigmoid_grad,
    softplus_from_log1p,
    tanh_grad,
)
from scratchvae.lecture.validate import as_float_array, check_same_shape

__all__ = [
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward", "exp_neg_abs", "check_slope",
]

def _flat(a, dtype=None):
    """A flat, contiguous view of ``a`` (a copy only if it has to be)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _apply_grad(kernel, dout, saved, *args):
    """dx = kernel(dout, saved, *args), element-wise; dx shaped like ``saved``.

    ``saved`` is what the forward cached (its output, or sigmoid(x)); ``dout``
    is taken in its dtype, so the gradient has the input's precision.
    """
    check_same_shape("dout", np.asarray(dout), "the forward's output", saved)
    dout = _flat(dout, saved.dtype)
    dx = np.empty_like(dout)
    kernel(dout, saved.reshape(-1), *args, dx)
    return dx.reshape(saved.shape)


def exp_neg_abs(x):
    """e = exp(-|x|) in (0, 1]: the one exponential the stable forms need."""
    e = np.abs(x)
    np.negative(e, out=e)
    np.exp(e, out=e)
    return e


def check_slope(slope):
    """The leaky slope as a float in [0, 1), or a ValueError naming it."""
    try:
        value = float(slope)
    except (TypeError, ValueError):
        value = np.nan
    if not 0 <= value < 1:  # False for NaN too
        raise ValueError(f"slope: expected a number in [0, 1), got {slope!r}")
    return value


class LeakyReluCache(NamedTuple):
    out: np.ndarray  # the forward's output: same sign as x (zero where x <= 0 for ReLU)
    slope: float


def leaky_relu_forward(x, slope=0.01):
    r"""Leaky ReLU, :math:`x` where :math:`x > 0` and :math:`s\,x` elsewhere.

    Parameters
    ----------
    x : ndarray, any shape
    slope : float in [0, 1)
        The slope :math:`s` for negative inputs; 0 gives the ReLU.

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : LeakyReluCache

    Examples
    --------
    >>> leaky_relu_forward(np.array([-2.0, 3.0]), slope=0.1)[0]
    array([-0.2,  3. ])

    Derivation: docs/layers.md#relu
    """
    x = as_float_array("x", x)
    slope = check_slope(slope)
    flat = _flat(x)
    # eq. (6): out = x if x > 0 else slope * x
    out = np.empty_like(flat)
    leaky_relu(flat, x.dtype.type(slope), out)
    out = out.reshape(x.shape)
    return out, LeakyReluCache(out, slope)


def leaky_relu_backward(dout, cache):
    r"""Gradient of leaky ReLU, :math:`dx = d\text{out} \cdot f'(x)`.

    :math:`f'(x) = 1` where :math:`x > 0` and :math:`s` elsewhere; at exactly
    :math:`x = 0`, where no derivative exists, that is :math:`s` (0 for ReLU).

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : LeakyReluCache, from :func:`leaky_relu_forward`

    Returns
    -------
    dx : ndarray, shape and dtype of the forward's ``x``

    Examples
    --------
    >>> out, cache = leaky_relu_forward(np.array([-2.0, 3.0]), slope=0.1)
    >>> leaky_relu_backward(np.ones(2), cache)
    array([0.1, 1. ])

    Derivation: docs/layers.md#relu
    """
    # eq. (6): dx = dout * (1 if x > 0 else slope); the output has the sign
    # of x, so the kernel tests "out > 0" for "x > 0"
    return _apply_grad(leaky_relu_grad, dout, cache.out, cache.out.dtype.type(cache.slope))


def relu_forward(x):
    r"""ReLU, :math:`\max(x, 0)`: leaky ReLU with slope 0.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : LeakyReluCache

    Examples
    --------
    >>> relu_forward(np.array([-2.0, 0.0, 3.0]))[0]  # -0. is 0 * -2.0: IEEE negative zero
    array([-0.,  0.,  3.])

    Derivation: docs/layers.md#relu
    """
    return leaky_relu_forward(x, slope=0.0)


def relu_backward(dout, cache):
    r"""Gradient of ReLU: :math:`dx = d\text{out} \cdot [x > 0]`; 0 at exactly :math:`x = 0`.

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : LeakyReluCache, from :func:`relu_forward`

    Returns
    -------
    dx : ndarray, shape and dtype of the forward's ``x``

    Examples
    --------
    >>> out, cache = relu_forward(np.array([-2.0, 0.0, 3.0]))
    >>> relu_backward(np.ones(3), cache)
    array([0., 0., 1.])

    Derivation: docs/layers.md#relu
    """
    return leaky_relu_backward(dout, cache)


class TanhCache(NamedTuple):
    y: np.ndarray  # tanh(x)


def tanh_forward(x):
    r"""Hyperbolic tangent, :math:`y = \tanh x`, element-wise (NumPy's ufunc).

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    y : ndarray, shape and dtype of ``x``, in [-1, 1]
    cache : TanhCache

    Examples
    --------
    >>> tanh_forward(np.array([0.0]))[0]
    array([0.])

    Derivation: docs/layers.md#tanh
    """
    x = as_float_array("x", x)
    y = np.tanh(x)  # eq. (7)
    return y, TanhCache(y)


def tanh_backward(dout, cache):
    r"""Gradient of tanh: :math:`dx = d\text{out}\,(1 - y^2)`, with :math:`y = \tanh x`.

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : TanhCache, from :func:`tanh_forward`

    Returns
    -------
    dx : ndarray, shape and dtype of the forward's ``x``

    Examples
    --------
    >>> y, cache = tanh_forward(np.array([0.0]))
    >>> tanh_backward(np.array([2.0]), cache)
    array([2.])

    Derivation: docs/layers.md#tanh
    """
    # eq. (8): dx = dout * (1 - y^2)
    return _apply_grad(tanh_grad, dout, cache.y)


class SigmoidCache(NamedTuple):
    y: np.ndarray  # sigmoid(x)


def sigmoid_forward(x):
    r"""Logistic sigmoid, :math:`y = 1 / (1 + e^{-x})`, stable for any finite ``x``.

    Computed from :math:`e = e^{-|x|} \in (0, 1]` as :math:`1/(1+e)` for
    :math:`x \ge 0` and :math:`e/(1+e)` for :math:`x < 0`: no exponential of
    a positive number, so nothing overflows.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    y : ndarray, shape and dtype of ``x``, in [0, 1]
    cache : SigmoidCache

    Examples
    --------
    >>> sigmoid_forward(np.array([-1e4, 0.0, 1e4]))[0]
    array([0. , 0.5, 1. ])

    Derivation: docs/layers.md#sigmoid
    """
    x = as_float_array("x", x)
    flat = _flat(x)  # (N,)
    e = exp_neg_abs(flat)  # (N,)
    # eq. (10): sigmoid(x) = 1 / (1 + e) if x >= 0 else e / (1 + e), written over e
    sigmoid_from_exp(flat, e, e)
    y = e.reshape(x.shape)
    return y, SigmoidCache(y)


def sigmoid_backward(dout, cache):
    r"""Gradient of the sigmoid: :math:`dx = d\text{out}\, y (1 - y)`, with :math:`y = \sigma(x)`.

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : SigmoidCache, from :func:`sigmoid_forward`

    Returns
    -------
    dx : ndarray, shape and dtype of the forward's ``x``

    Examples
    --------
    >>> y, cache = sigmoid_forward(np.array([0.0]))
    >>> sigmoid_backward(np.array([1.0]), cache)
    array([0.25])

    Derivation: docs/layers.md#sigmoid
    """
    # eq. (11): dx = dout * y * (1 - y)
    return _apply_grad(sigmoid_grad, dout, cache.y)


class SoftplusCache(NamedTuple):
    sigma: np.ndarray  # sigmoid(x), the derivative of softplus


def softplus_forward(x):
    r"""Softplus, :math:`\log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})`.

    The right-hand form never exponentiates a positive number, so it is finite
    for any finite ``x`` (and exactly ``max(x, 0)`` once :math:`e^{-|x|}` underflows).

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``, >= 0 and >= x
    cache : SoftplusCache

    Examples
    --------
    >>> softplus_forward(np.array([-1e4, 0.0, 1e4]))[0]
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+04])

    Derivation: docs/layers.md#softplus
    """
    x = as_float_array("x", x)
    flat = _flat(x)  # (N,)
    e = exp_neg_abs(flat)  # (N,)
    # eq. (14): softplus'(x) = sigmoid(x), from the same e (eq. (10)), for the backward
    sigma = np.empty_like(flat)
    sigmoid_from_exp(flat, e, sigma)
    # eq. (13): softplus(x) = max(x, 0) + log1p(e), both steps written over e
    np.log1p(e, out=e)
    softplus_from_log1p(flat, e, e)
    return e.reshape(x.shape), SoftplusCache(sigma.reshape(x.shape))


def softplus_backward(dout, cache):
    r"""Gradient of softplus: :math:`dx = d\text{out}\,\sigma(x)`, the sigmoid.

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : SoftplusCache, from :func:`softplus_forward`

    Returns
    -------
    dx : ndarray, shape and dtype of the forward's ``x``

    Examples
    --------
    >>> out, cache = softplus_forward(np.array([0.0]))
    >>> softplus_backward(np.array([1.0]), cache)
    array([0.5])

    Derivation: docs/layers.md#softplus
    """
    # eq. (14): dx = dout * sigmoid(x)
    return _apply_grad(multiply, dout, cache.sigma)
