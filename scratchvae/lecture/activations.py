"""The activations: element-wise nonlinearities as forward/backward pairs.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = relu_forward(x)
    dx = relu_backward(dout, cache)

Each works on arrays of any shape; ``out`` and ``dx`` have the shape and
dtype of ``x``. The sigmoid and the softplus are written in their stable
forms: the literal formulas exponentiate ``-x`` or ``x`` and overflow for
large inputs (``exp(-x)`` for x < -88 in float32, -709 in float64); the stable
ones only ever exponentiate ``-|x| <= 0``, so they are finite for any finite
``x``. ReLU has no derivative at exactly 0: its backward takes 0 there, leaky
ReLU's takes the slope. The modules that wrap these ops for networks
(:class:`scratchvae.lecture.modules.ReLU`, ...) are in
:mod:`scratchvae.lecture.modules`.

Derivations: docs/layers.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_upstream

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


# --- ReLU and leaky ReLU ---------------------------------------------------------


class ReluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape


def relu_forward(x):
    r"""ReLU, element-wise.

    .. math:: \text{out} = \max(x, 0)

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shaped like x
    cache : ReluCache

    Examples
    --------
    >>> relu_forward(np.array([-2.0, 0.0, 3.0]))[0]
    array([0., 0., 3.])

    Derivation: docs/layers.md#relu
    """
    x = as_float_array("x", x)
    # BEGIN SOLUTION
    # layers (5): out = max(x, 0)
    out = np.maximum(x, 0)
    return out, ReluCache(x)
    # END SOLUTION


def relu_backward(dout, cache):
    r"""ReLU's backward pass (0 at exactly :math:`x = 0`).

    .. math:: dx = d\text{out} \cdot [x > 0]

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : ReluCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> relu_backward(np.ones(3), relu_forward(np.array([-2.0, 0.0, 3.0]))[1])
    array([0., 0., 1.])

    Derivation: docs/layers.md#relu
    """
    (x,) = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    # layers (5): dx = dout * 1[x > 0]
    return dout * (x > 0)
    # END SOLUTION


class LeakyReluCache(NamedTuple):
    x: np.ndarray  # the forward's input, any shape
    slope: float


def leaky_relu_forward(x, slope=0.01):
    r"""Leaky ReLU, element-wise, with the slope :math:`s` for :math:`x \le 0`.

    .. math:: \text{out} = x \text{ where } x > 0, \quad s\,x \text{ elsewhere}

    Parameters
    ----------
    x : ndarray, any shape
    slope : float in [0, 1)

    Returns
    -------
    out : ndarray, shaped like x
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
    out = np.where(x > 0, x, slope * x).astype(x.dtype, copy=False)  # layers (6)
    return out, LeakyReluCache(x, slope)
    # END SOLUTION


def leaky_relu_backward(dout, cache):
    r"""Leaky ReLU's backward pass (the slope :math:`s` at exactly :math:`x = 0`).

    .. math:: dx = d\text{out} \text{ where } x > 0, \quad s\,d\text{out} \text{ elsewhere}

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : LeakyReluCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> leaky_relu_backward(np.ones(2), leaky_relu_forward(np.array([-2.0, 3.0]), slope=0.1)[1])
    array([0.1, 1. ])

    Derivation: docs/layers.md#relu
    """
    x, slope = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    # layers (6): dx = dout * (1 if x > 0 else slope)
    return np.where(x > 0, dout, slope * dout).astype(x.dtype, copy=False)
    # END SOLUTION


# --- tanh ----------------------------------------------------------------------


class TanhCache(NamedTuple):
    y: np.ndarray  # the forward's out, y = tanh(x): the derivative is written in terms of it


def tanh_forward(x):
    r"""The hyperbolic tangent, element-wise.

    .. math:: \text{out} = \tanh x = \frac{e^x - e^{-x}}{e^x + e^{-x}}

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shaped like x, in [-1, 1]
    cache : TanhCache

    Examples
    --------
    >>> tanh_forward(np.array([0.0]))[0]
    array([0.])

    Derivation: docs/layers.md#tanh
    """
    x = as_float_array("x", x)
    # BEGIN SOLUTION
    # layers (7), with NumPy's tanh, which is stable for any x
    out = np.tanh(x)
    return out, TanhCache(out)
    # END SOLUTION


def tanh_backward(dout, cache):
    r"""The backward pass of tanh, written with its output :math:`y = \tanh x`.

    .. math:: dx = d\text{out}\,(1 - y^2)

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : TanhCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> tanh_backward(np.array([2.0]), tanh_forward(np.array([0.0]))[1])
    array([2.])

    Derivation: docs/layers.md#tanh
    """
    (y,) = cache
    dout = check_upstream("dout", dout, y.shape, y.dtype)
    # BEGIN SOLUTION
    # layers (8): dx = dout * (1 - y^2)
    return dout * (1 - y**2)
    # END SOLUTION


# --- sigmoid -------------------------------------------------------------------


class SigmoidCache(NamedTuple):
    y: np.ndarray  # the forward's out, y = sigmoid(x): the derivative is written in terms of it


def sigmoid_forward(x):
    r"""The logistic sigmoid, element-wise, in its stable form.

    .. math:: \text{out} = \frac{1}{1 + e^{-x}}
              = \frac{1}{1 + e} \text{ for } x \ge 0, \quad \frac{e}{1 + e} \text{ for } x < 0, \qquad e = e^{-|x|}

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shaped like x, in [0, 1]
    cache : SigmoidCache

    Examples
    --------
    >>> sigmoid_forward(np.array([-1e4, 0.0, 1e4]))[0]
    array([0. , 0.5, 1. ])

    Derivation: docs/layers.md#sigmoid
    """
    x = as_float_array("x", x)
    # Not the literal 1 / (1 + exp(-x)), whose exp(-x) overflows for x < -88 in float32.
    # BEGIN SOLUTION
    e = np.exp(-np.abs(x))  # in (0, 1]: nothing overflows
    # layers (10): sigmoid(x) = 1 / (1 + e)  for x >= 0,   e / (1 + e)  for x < 0
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out, SigmoidCache(out)
    # END SOLUTION


def sigmoid_backward(dout, cache):
    r"""The sigmoid's backward pass, written with its output :math:`y = \operatorname{sigmoid}(x)`.

    .. math:: dx = d\text{out}\, y (1 - y)

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : SigmoidCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> sigmoid_backward(np.array([1.0]), sigmoid_forward(np.array([0.0]))[1])
    array([0.25])

    Derivation: docs/layers.md#sigmoid
    """
    (y,) = cache
    dout = check_upstream("dout", dout, y.shape, y.dtype)
    # BEGIN SOLUTION
    # layers (11): dx = dout * y * (1 - y)
    return dout * y * (1 - y)
    # END SOLUTION


# --- softplus ------------------------------------------------------------------


class SoftplusCache(NamedTuple):
    x: np.ndarray  # the forward's input: the derivative is sigmoid(x)


def softplus_forward(x):
    r"""Softplus, element-wise, in its stable form.

    .. math:: \text{out} = \log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    out : ndarray, shaped like x, >= 0 and >= x
    cache : SoftplusCache

    Examples
    --------
    >>> softplus_forward(np.array([-1e4, 0.0, 1e4]))[0]
    array([0.00000000e+00, 6.93147181e-01, 1.00000000e+04])

    Derivation: docs/layers.md#softplus
    """
    x = as_float_array("x", x)
    # Not the literal log(1 + exp(x)), whose exp(x) overflows for x > 88 in float32; log1p
    # keeps the digits of log(1 + e) when e = exp(-|x|) is tiny (then out is exactly max(x, 0)).
    # BEGIN SOLUTION
    out = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))  # layers (13)
    return out, SoftplusCache(x)
    # END SOLUTION


def softplus_backward(dout, cache):
    r"""Softplus's backward pass.

    .. math:: dx = d\text{out}\,\operatorname{sigmoid}(x)

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : SoftplusCache

    Returns
    -------
    dx : ndarray, shaped like x

    Examples
    --------
    >>> softplus_backward(np.array([1.0]), softplus_forward(np.array([0.0]))[1])
    array([0.5])

    Derivation: docs/layers.md#softplus
    """
    (x,) = cache
    dout = check_upstream("dout", dout, x.shape, x.dtype)
    # BEGIN SOLUTION
    # layers (14): dx = dout * sigmoid(x), the stable sigmoid above
    return dout * sigmoid_forward(x)[0]
    # END SOLUTION
