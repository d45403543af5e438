"""The activations: element-wise nonlinearities as forward/backward pairs.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)

Each works on arrays of any shape. The sigmoid and the softplus are written
in their stable forms: the literal formulas exponentiate ``-x`` or ``x`` and
overflow for large inputs; the stable ones only ever exponentiate
``-|x| <= 0``. The modules that wrap these ops for networks
(:class:`scratchvae.lecture.modules.ReLU`, ...) are in
:mod:`scratchvae.lecture.modules`.

Derivations: docs/layers.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_same_shape

__all__ = [
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward", "check_slope",
]


def check_slope(slope):
    """The leaky slope as a float in [0, 1), or a ValueError naming it."""
    try:
        value = float(slope)
    except (TypeError, ValueError):
        value = np.nan
    if not 0 <= value < 1:  # False for NaN too
        raise ValueError(f"slope: expected a number in [0, 1), got {slope!r}")
    return value


def check_dout(dout, x):
    """``dout`` as an array of ``x``'s shape and dtype, or a ValueError naming it."""
    dout = as_float_array("dout", dout)
    return check_same_shape("dout", dout, "the forward's output", x).astype(x.dtype, copy=False)


# --- ReLU and leaky ReLU ---------------------------------------------------------


class ReluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape


def relu_forward(x):
    r"""ReLU, :math:`\max(x, 0)`, element-wise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shape and dtype of ``x``
    cache : ReluCache

    Examples
    --------
    >>> relu_forward(np.array([-2.0, 0.0, 3.0]))[0]
    array([0., 0., 3.])

    Derivation: docs/layers.md#relu
    """
    x = as_float_array("x", x)
    # BEGIN SOLUTION
    # eq. (5): out = max(x, 0)
    out = np.maximum(x, 0)
    return out, ReluCache(x)
    # END SOLUTION


def relu_backward(dout, cache):
    r"""Gradient of ReLU: :math:`dx = d\text{out} \cdot [x > 0]`; 0 at exactly :math:`x = 0`.

    Parameters
    ----------
    dout : ndarray, shape of the forward's output
    cache : ReluCache, from :func:`relu_forward`

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
    (x,) = cache
    dout = check_dout(dout, x)
    # BEGIN SOLUTION
    # eq. (5): dx = dout * 1[x > 0]  (at x = 0 there is no derivative; we take 0)
    return dout * (x > 0)
    # END SOLUTION


class LeakyReluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape
    slope: float


def leaky_relu_forward(x, slope=0.01):
    r"""Leaky ReLU, :math:`x` where :math:`x > 0` and :math:`s\,x` elsewhere.

    Parameters
    ----------
    x : ndarray, any shape
    slope : float in [0, 1)
        The slope :math:`s` for negative inputs.

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
    # BEGIN SOLUTION
    # eq. (6): out = x if x > 0 else slope * x
    out = np.where(x > 0, x, slope * x).astype(x.dtype, copy=False)
    return out, LeakyReluCache(x, slope)
    # END SOLUTION


def leaky_relu_backward(dout, cache):
    r"""Gradient of leaky ReLU, :math:`dx = d\text{out} \cdot f'(x)`.

    :math:`f'(x) = 1` where :math:`x > 0` and :math:`s` elsewhere (at
    exactly :math:`x = 0`, where no derivative exists, :math:`s`).

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
    x, slope = cache
    dout = check_dout(dout, x)
    # BEGIN SOLUTION
    # eq. (6): dx = dout * (1 if x > 0 else slope)
    return np.where(x > 0, dout, slope * dout).astype(x.dtype, copy=False)
    # END SOLUTION


# --- tanh ----------------------------------------------------------------------


class TanhCache(NamedTuple):
    y: np.ndarray  # tanh(x): the derivative is written in terms of it


def tanh_forward(x):
    r"""Hyperbolic tangent, :math:`y = \tanh x`, element-wise.

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
    # BEGIN SOLUTION
    # eq. (7): y = (e^x - e^-x) / (e^x + e^-x); NumPy's tanh is stable for any x
    y = np.tanh(x)
    return y, TanhCache(y)
    # END SOLUTION


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
    (y,) = cache
    dout = check_dout(dout, y)
    # BEGIN SOLUTION
    # eq. (8): dx = dout * (1 - y^2)
    return dout * (1 - y**2)
    # END SOLUTION


# --- sigmoid -------------------------------------------------------------------


class SigmoidCache(NamedTuple):
    y: np.ndarray  # sigmoid(x): the derivative is written in terms of it


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
    # BEGIN SOLUTION
    # The literal 1 / (1 + exp(-x)) overflows in exp(-x) for x < -88 in float32
    # (-709 in float64). So work with e = exp(-|x|), which lies in (0, 1]:
    e = np.exp(-np.abs(x))
    # eq. (10): sigmoid(x) = 1 / (1 + e)  for x >= 0,   e / (1 + e)  for x < 0
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, SigmoidCache(y)
    # END SOLUTION


def sigmoid_backward(dout, cache):
    r"""Gradient of the sigmoid: :math:`dx = d\text{out}\, y (1 - y)`, with :math:`y = \operatorname{sigmoid}(x)`.

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
    (y,) = cache
    dout = check_dout(dout, y)
    # BEGIN SOLUTION
    # eq. (11): dx = dout * y * (1 - y)
    return dout * y * (1 - y)
    # END SOLUTION


# --- softplus ------------------------------------------------------------------


class SoftplusCache(NamedTuple):
    x: np.ndarray  # the forward's input: the derivative is sigmoid(x)


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
    # BEGIN SOLUTION
    # The literal log(1 + exp(x)) overflows in exp(x) for x > 88 in float32.
    # eq. (13): softplus(x) = max(x, 0) + log(1 + exp(-|x|)); log1p keeps the
    # digits of log(1 + e) when e = exp(-|x|) is tiny.
    out = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return out, SoftplusCache(x)
    # END SOLUTION


def softplus_backward(dout, cache):
    r"""Gradient of softplus: :math:`dx = d\text{out}\,\operatorname{sigmoid}(x)`.

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
    (x,) = cache
    dout = check_dout(dout, x)
    # BEGIN SOLUTION
    # eq. (14): dx = dout * sigmoid(x), the stable sigmoid above
    return dout * sigmoid_forward(x)[0]
    # END SOLUTION
