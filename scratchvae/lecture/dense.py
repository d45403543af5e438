"""The dense (fully connected) layer, and how to initialise its weights.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = dense_forward(x, W, b)
    dx, dW, db = dense_backward(dout, cache)

Examples are rows: a batch ``x`` of B examples with D_in features each is a
(B, D_in) array, and the layer computes ``x @ W + b``. ``W`` and ``b`` share a
dtype; ``out`` is in NumPy's promotion of ``x`` and ``W`` (float32 only if both
are), and each gradient comes back in its own input's dtype. The forward
refuses non-finite inputs; a product that overflows comes out as ``inf``, and
the training step, which checks the loss, stops there.

``dense_backward(dout, cache, input_grad=False)`` skips ``dx`` (returned as
None) when ``x`` is data, not the output of another layer: nobody needs it,
and skipping it saves a matrix product.

Derivations: docs/layers.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_shape, check_upstream

__all__ = ["dense_forward", "dense_backward", "check_dense_args", "he_normal", "glorot_uniform",
           "fan_in_uniform", "INITIALIZERS"]


class DenseCache(NamedTuple):
    x: np.ndarray  # (B, D_in) the layer's input
    W: np.ndarray  # (D_in, D_out) the weights it was multiplied by


def dense_forward(x, W, b):
    r"""The dense layer: an affine map, one example per row.

    .. math:: \text{out}_{nk} = \textstyle\sum_i x_{ni} W_{ik} + b_k, \qquad \text{out} = x W + b

    Parameters
    ----------
    x : ndarray, shape (B, D_in)
    W : ndarray, shape (D_in, D_out)
    b : ndarray, shape (D_out,), the dtype of ``W``

    Returns
    -------
    out : ndarray, shape (B, D_out)
    cache : DenseCache

    Examples
    --------
    >>> dense_forward(np.ones((1, 2)), np.ones((2, 3)), np.zeros(3))[0]
    array([[2., 2., 2.]])

    Derivation: docs/layers.md#dense
    """
    x, W, b = check_dense_args(x, W, b)
    # BEGIN SOLUTION
    out = x @ W + b  # layers (1); (B, D_out)
    return out, DenseCache(x, W)
    # END SOLUTION


def dense_backward(dout, cache, input_grad=True):
    r"""The dense layer's backward pass.

    .. math:: dx = d\text{out}\, W^\top, \quad dW = x^\top d\text{out}, \quad db_k = \textstyle\sum_n d\text{out}_{nk}

    Parameters
    ----------
    dout : ndarray, shaped like out
    cache : DenseCache
    input_grad : bool, False to skip dx when x is data

    Returns
    -------
    dx, dW, db : ndarray, shaped like x, W, b and in their dtypes (dx None if not ``input_grad``)

    Examples
    --------
    >>> dense_backward(np.ones((2, 3)), dense_forward(np.ones((2, 4)), np.ones((4, 3)), np.zeros(3))[1])[2]
    array([2., 2., 2.])

    Derivation: docs/layers.md#dense
    """
    x, W = cache
    dout = check_upstream("dout", dout, (x.shape[0], W.shape[1]), np.result_type(x, W))
    # BEGIN SOLUTION
    dx = (dout @ W.T).astype(x.dtype, copy=False) if input_grad else None  # layers (2); (B, D_in)
    # layers (3): dW[i, k] = sum_n x[n, i] dout[n, k]: W is shared by every example
    dW = (x.T @ dout).astype(W.dtype, copy=False)  # (D_in, D_out)
    # layers (4): db[k] = sum_n dout[n, k]: b is shared by every example too
    db = dout.sum(axis=0).astype(W.dtype, copy=False)  # (D_out,)
    return dx, dW, db
    # END SOLUTION


def check_dense_args(x, W, b, finite=True):
    """A dense layer's arguments: shapes that fit, one dtype for W and b, finite values (if ``finite``).

    The engine's twin (:mod:`scratchvae.engine.dense`) calls it with ``finite=False``.
    """
    x = as_float_array("x", x, ndim=2, finite=finite)
    W = as_float_array("W", W, ndim=2, finite=finite)
    b = as_float_array("b", b, ndim=1, finite=finite)
    check_shape("x", x, (None, W.shape[0]))
    check_shape("b", b, (W.shape[1],))
    if b.dtype != W.dtype:
        raise ValueError(f"b: expected dtype {W.dtype} to match W, got {b.dtype}")
    return x, W, b


# --- Initialisation -----------------------------------------------------------
# Each draws in float64 and rounds to ``dtype``: one seed, the same network in
# either precision.


def he_normal(fan_in, fan_out, rng, dtype=np.float32):
    r"""He (Kaiming) normal weights, :math:`W_{ik} \sim \mathcal{N}(0,\, 2/\text{fan_in})`.

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

    With :math:`a = \sqrt{6 / (\text{fan_in} + \text{fan_out})}`.

    For layers followed by tanh, sigmoid or nothing (roughly linear near 0):
    the variance :math:`a^2/3 = 2/(\text{fan_in} + \text{fan_out})` balances
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
    r"""Uniform weights scaled by the fan-in alone, :math:`W_{ik} \sim U(-a, a)`, :math:`a = 1/\sqrt{\text{fan_in}}`.

    PyTorch's default for ``nn.Linear`` (its ``kaiming_uniform_`` with
    ``a=sqrt(5)`` reduces to this). The variance :math:`1/(3\,\text{fan_in})`
    is six times smaller than He's: a network starts closer to linear and
    its outputs closer to zero. :class:`scratchvae.lecture.vae.VAE` uses it,
    because it trained measurably better there (docs/layers.md#initialisation).

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


INITIALIZERS = {"he": he_normal, "glorot": glorot_uniform, "fan_in": fan_in_uniform}
