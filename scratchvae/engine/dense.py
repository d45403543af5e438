"""The dense layer and initialisation.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = dense_forward(x, W, b)
    dx, dW, db = dense_backward(dout, cache)

The activation ops (``relu_forward``, ``sigmoid_backward``, ...) live in
:mod:`scratchvae.engine.activations` and are re-exported here, so that
``scratchvae.engine.dense`` offers every op a network is made of. The modules that
wrap these pairs for building networks (:class:`~scratchvae.lecture.modules.Dense`,
:class:`~scratchvae.lecture.modules.MLP`, ...) are in :mod:`scratchvae.lecture.modules`.

Element-wise passes run in the Numba kernels of :mod:`scratchvae.engine.kernels`
(flat, contiguous arrays); the exponentials are NumPy ufuncs, which are faster
here; the matrix products are NumPy's (BLAS). The derivations are in
``docs/layers.md``.
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine.activations import (
    check_slope,
    leaky_relu_backward,
    leaky_relu_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
    softplus_backward,
    softplus_forward,
    tanh_backward,
    tanh_forward,
)
from scratchvae.engine.kernels import bias_leaky_relu, leaky_relu_grad_bias
from scratchvae.lecture.validate import as_float_array, check_no_overflow, check_out, check_shape

__all__ = [
    "dense_forward", "dense_backward", "dense_leaky_relu_forward", "dense_leaky_relu_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward",
    "he_normal", "glorot_uniform", "fan_in_uniform",
]


# --- Dense layer ------------------------------------------------------------


class DenseCache(NamedTuple):
    x: np.ndarray  # (B, D_in)
    W: np.ndarray  # (D_in, D_out)


def dense_forward(x, W, b):
    r"""The affine map :math:`\text{out} = x W + b`, one example per row.

    Parameters
    ----------
    x : ndarray, shape (B, D_in)
    W : ndarray, shape (D_in, D_out)
    b : ndarray, shape (D_out,), same dtype as ``W``

    Returns
    -------
    out : ndarray, shape (B, D_out)
        In NumPy's promotion of ``x`` and ``W`` (float32 only if both are).
    cache : DenseCache

    Raises
    ------
    ValueError
        On a shape or dtype mismatch, a non-finite input, or if ``x W + b``
        overflows the dtype.

    Examples
    --------
    >>> out, cache = dense_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))
    >>> out
    array([[3., 3., 3., 3.],
           [3., 3., 3., 3.]])

    Derivation: docs/layers.md#dense
    """
    x, W, b = _dense_args(x, W, b)
    # eq. (1): out[n, k] = sum_i x[n, i] W[i, k] + b[k]
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        out = x @ W  # (B, D_out)
        out += b  # in place: no second (B, D_out) array
    check_no_overflow("x @ W + b", out, x=x, W=W, b=b)
    return out, DenseCache(x, W)


def _dense_args(x, W, b):
    """Check a dense layer's arguments: shapes that fit, finite values, one dtype for W and b."""
    x = as_float_array("x", x, ndim=2)
    W = as_float_array("W", W, ndim=2)
    b = as_float_array("b", b, ndim=1)
    check_shape("x", x, (None, W.shape[0]))
    check_shape("b", b, (W.shape[1],))
    if b.dtype != W.dtype:
        raise ValueError(f"b: expected dtype {W.dtype} to match W, got {b.dtype}")
    return x, W, b


def dense_backward(dout, cache, input_grad=True, out=None):
    r"""Gradients of the dense layer.

    .. math:: dx = d\text{out}\, W^\top, \quad dW = x^\top d\text{out}, \quad
              db_k = \textstyle\sum_n d\text{out}_{nk}

    Parameters
    ----------
    dout : ndarray, shape (B, D_out)
    cache : DenseCache, from :func:`dense_forward`
    input_grad : bool
        False when ``x`` is data, not the output of another layer: then
        nobody needs ``dx``, and skipping it saves a matrix product.
    out : (ndarray, ndarray), optional
        Arrays shaped and typed like ``W`` and ``b`` to write ``dW`` and
        ``db`` into (a module's gradient buffers); returned as ``dW, db``.

    Returns
    -------
    dx : ndarray, shape (B, D_in), dtype of ``x``; None if not ``input_grad``
    dW : ndarray, shape (D_in, D_out), dtype of ``W``
    db : ndarray, shape (D_out,), dtype of ``W``

    Examples
    --------
    >>> out, cache = dense_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))
    >>> dx, dW, db = dense_backward(np.ones((2, 4)), cache)
    >>> db  # one contribution per example, summed
    array([2., 2., 2., 2.])

    Derivation: docs/layers.md#dense
    """
    x, W = cache
    dout = np.asarray(dout, dtype=np.result_type(x, W))
    check_shape("dout", dout, (x.shape[0], W.shape[1]))
    dW, db = _gradient_buffers(out, W)
    dx = _input_and_weight_grads(dout, x, W, input_grad, dW)
    # eq. (4): db[k] = sum_n dout[n, k]: b is shared by every example too
    np.sum(dout, axis=0, out=db)  # (D_out,)
    return dx, dW, db


def _gradient_buffers(out, W):
    """``(dW, db)``: the caller's ``out`` arrays, checked, or two new ones."""
    if out is None:
        return np.empty_like(W), np.empty(W.shape[1], W.dtype)  # (D_in, D_out), (D_out,)
    dW, db = out
    return check_out("out[0]", dW, W.shape, W.dtype), check_out("out[1]", db, W.shape[1:], W.dtype)


def _input_and_weight_grads(dout, x, W, input_grad, dW):
    """The two matrix products of a dense layer's backward, eqs. (2)-(3); ``dW`` is written in place."""
    # eq. (2): dx[n, i] = sum_k dout[n, k] W[i, k]
    dx = (dout @ W.T).astype(x.dtype, copy=False) if input_grad else None  # (B, D_in)
    # eq. (3): dW[i, k] = sum_n x[n, i] dout[n, k]: W is shared by every example
    np.matmul(x.T, dout, out=dW)  # (D_in, D_out)
    return dx


# --- Dense layer and (leaky) ReLU, fused ------------------------------------------


class DenseLeakyReluCache(NamedTuple):
    x: np.ndarray  # (B, D_in)
    W: np.ndarray  # (D_in, D_out)
    out: np.ndarray  # (B, D_out), the activation's output
    slope: float


def dense_leaky_relu_forward(x, W, b, slope=0.0):
    r"""``leaky_relu(x @ W + b)`` with the bias add and the activation in one pass.

    The same function as :func:`dense_forward` followed by
    :func:`~scratchvae.engine.activations.leaky_relu_forward` (slope 0: ReLU), and
    the same numbers; fused because a hidden layer's output is read and
    written once instead of three times (see docs/performance.md).

    Parameters
    ----------
    x : ndarray, shape (B, D_in)
    W : ndarray, shape (D_in, D_out)
    b : ndarray, shape (D_out,)
    slope : float in [0, 1)

    Returns
    -------
    out : ndarray, shape (B, D_out)
    cache : DenseLeakyReluCache

    Examples
    --------
    >>> W = np.array([[1.0, 1.0], [-3.0, 3.0]])
    >>> dense_leaky_relu_forward(np.ones((1, 2)), W, np.zeros(2), slope=0.1)[0]
    array([[-0.2,  4. ]])
    """
    x, W, b = _dense_args(x, W, b)
    slope = check_slope(slope)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        out = x @ W  # (B, D_out)
    # out = leaky_relu(out + b): the bias and the activation in one pass, in place
    bias_leaky_relu(out, b, out.dtype.type(slope), out)
    check_no_overflow("leaky_relu(x @ W + b)", out, x=x, W=W, b=b)
    return out, DenseLeakyReluCache(x, W, out, slope)


def dense_leaky_relu_backward(dout, cache, input_grad=True, out=None):
    r"""Gradients of ``leaky_relu(x @ W + b)``: the two backward passes, composed.

    With :math:`y` the output and :math:`f'` the activation's slope
    (1 where :math:`y > 0`, ``slope`` elsewhere), the gradient of the
    pre-activation is :math:`d\text{pre} = d\text{out} \odot f'`, and then
    :math:`dx = d\text{pre}\,W^\top`, :math:`dW = x^\top d\text{pre}`,
    :math:`db = \sum_n d\text{pre}_n`. One kernel pass computes
    :math:`d\text{pre}` and :math:`db` together. ``input_grad`` and ``out``
    are as in :func:`dense_backward`.

    Returns
    -------
    dx : ndarray, shape (B, D_in), or None if not ``input_grad``
    dW : ndarray, shape (D_in, D_out)
    db : ndarray, shape (D_out,)

    Derivation: docs/layers.md#dense-relu
    """
    x, W, y, slope = cache
    dout = np.ascontiguousarray(dout, dtype=y.dtype)
    check_shape("dout", dout, y.shape)
    dW, db = _gradient_buffers(out, W)
    dpre = np.empty_like(y)  # (B, D_out)
    leaky_relu_grad_bias(dout, y, y.dtype.type(slope), dpre, db)
    dx = _input_and_weight_grads(dpre, x, W, input_grad, dW)
    return dx, dW, db


# --- Initialisation -----------------------------------------------------------
# Both draw in float64 and round to ``dtype``: one seed, the same network in
# either precision.


def he_normal(fan_in, fan_out, rng, dtype=np.float32):
    r"""He (Kaiming) normal weights, :math:`W_{ik} \sim \mathcal{N}(0,\, 2/\text{fan\_in})`.

    For layers followed by a ReLU-family activation: the ReLU keeps half of
    its input's second moment, and the factor 2 gives that half back, so the
    activations keep their scale from layer to layer.

    Parameters
    ----------
    fan_in, fan_out : int
        The layer's D_in and D_out.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    W : ndarray, shape (fan_in, fan_out)

    Examples
    --------
    >>> W = he_normal(784, 400, np.random.default_rng(0))
    >>> round(float(W.std()), 3), round(float(np.sqrt(2 / 784)), 3)
    (0.051, 0.051)

    Derivation: docs/layers.md#initialisation
    """
    # std = sqrt(2 / fan_in)
    std = np.sqrt(2.0 / fan_in)
    return (std * rng.standard_normal((fan_in, fan_out))).astype(dtype)


def glorot_uniform(fan_in, fan_out, rng, dtype=np.float32):
    r"""Glorot (Xavier) uniform weights, :math:`W_{ik} \sim U(-a, a)`.

    With :math:`a = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`.

    For layers followed by tanh, sigmoid or nothing (roughly linear near 0):
    the variance :math:`a^2/3 = 2/(\text{fan\_in} + \text{fan\_out})` balances
    keeping the forward signal and the backward gradient at their scale.

    Parameters
    ----------
    fan_in, fan_out : int
        The layer's D_in and D_out.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    W : ndarray, shape (fan_in, fan_out)

    Examples
    --------
    >>> W = glorot_uniform(3, 3, np.random.default_rng(0))
    >>> bool(np.abs(W).max() <= 1.0)  # a = sqrt(6 / 6)
    True

    Derivation: docs/layers.md#initialisation
    """
    # limit a = sqrt(6 / (fan_in + fan_out)); Var = a^2 / 3
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def fan_in_uniform(fan_in, fan_out, rng, dtype=np.float32):
    r"""Uniform weights scaled by the fan-in alone, :math:`W_{ik} \sim U(-a, a)`, :math:`a = 1/\sqrt{\text{fan\_in}}`.

    PyTorch's default for ``nn.Linear`` (its ``kaiming_uniform_`` with
    ``a=sqrt(5)`` reduces to this). The variance :math:`1/(3\,\text{fan\_in})`
    is six times smaller than He's: a network starts closer to linear and
    its outputs closer to zero. :class:`scratchvae.lecture.vae.VAE` uses it, because
    it trained measurably better there (docs/layers.md#initialisation).

    Parameters
    ----------
    fan_in, fan_out : int
        The layer's D_in and D_out.
    rng : numpy.random.Generator
    dtype : float32 or float64

    Returns
    -------
    W : ndarray, shape (fan_in, fan_out)

    Examples
    --------
    >>> W = fan_in_uniform(100, 3, np.random.default_rng(0))
    >>> bool(np.abs(W).max() <= 0.1)  # a = 1 / sqrt(100)
    True

    Derivation: docs/layers.md#initialisation
    """
    # limit a = 1 / sqrt(fan_in); Var = a^2 / 3
    limit = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


INITIALISERS = {"he": he_normal, "glorot": glorot_uniform, "uniform": fan_in_uniform}
