"""The dense layer, fast: in-place gradients, and the dense layer fused with its ReLU.

Same names, signatures and results as :mod:`scratchvae.lecture.dense`
(``tests/test_engine.py`` checks that); read the lecture for the maths. The
matrix products are NumPy's (BLAS) in both. What the engine adds:

* ``dense_backward(..., out=(dW, db))`` writes the weight gradient straight
  into a module's gradient buffer (``np.matmul(..., out=)``), so a training
  step neither allocates it nor copies it over;
* ``dense_relu_forward`` / ``dense_relu_backward``: ``leaky_relu(x @ W + b)``
  with the bias add and the activation in one kernel pass, and its backward
  with the activation's slope and the bias gradient in another. A hidden
  layer's output is then read and written once instead of three times
  (docs/performance.md).

Arguments are checked by the lecture's own checks with ``finite=False``: for
shape and dtype only, never scanned for NaN. Output buffers handed in with
``out=`` are checked by :func:`check_out`, which exists only for the engine.
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine.kernels import bias_leaky_relu, leaky_relu_grad_bias
from scratchvae.lecture.activations import check_slope
from scratchvae.lecture.dense import DenseCache, check_dense_args
from scratchvae.lecture.validate import check_upstream

__all__ = ["dense_forward", "dense_backward", "dense_relu_forward", "dense_relu_backward"]


def dense_forward(x, W, b):
    """:func:`scratchvae.lecture.dense.dense_forward`, adding the bias in place."""
    x, W, b = check_dense_args(x, W, b, finite=False)
    out = x @ W  # (B, D_out)
    out += b  # in place: no second (B, D_out) array
    return out, DenseCache(x, W)


def dense_backward(dout, cache, input_grad=True, *, out=None):
    """:func:`scratchvae.lecture.dense.dense_backward`, optionally writing into ``out``.

    Parameters
    ----------
    dout, cache, input_grad
        As in the lecture.
    out : (ndarray, ndarray), optional
        C-contiguous arrays shaped and typed like ``W`` and ``b`` to write
        ``dW`` and ``db`` into (a module's gradient buffers); returned as
        ``dW, db``.

    Derivation: docs/layers.md#dense
    """
    x, W = cache
    dout = check_upstream("dout", dout, (x.shape[0], W.shape[1]), np.result_type(x, W), finite=False)
    dW, db = gradient_buffers(out, W)
    dx = input_and_weight_grads(dout, x, W, input_grad, dW)
    np.sum(dout, axis=0, out=db)  # (D_out,)
    return dx, dW, db


def gradient_buffers(out, W):
    """``(dW, db)``: the caller's ``out`` arrays, checked, or two new ones."""
    if out is None:
        return np.empty_like(W), np.empty(W.shape[1], W.dtype)  # (D_in, D_out), (D_out,)
    dW, db = out
    return check_out("out[0]", dW, W.shape, W.dtype), check_out("out[1]", db, W.shape[1:], W.dtype)


def check_out(name, out, shape, dtype):
    """Raise unless ``out`` is a C-contiguous array of ``shape`` and ``dtype`` to write a result into.

    A Numba kernel writing into a wrong-sized array would not stop at its
    end, so the engine checks every output array it is handed.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    ok = (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
          and out.flags.c_contiguous)
    if not ok:
        got = (f"{out.dtype} array of shape {out.shape}" + ("" if out.flags.c_contiguous else
                                                             ", not C-contiguous")
               if isinstance(out, np.ndarray) else type(out).__name__)
        raise ValueError(f"{name}: expected a C-contiguous {dtype} array of shape {shape}, got {got}")
    return out


def input_and_weight_grads(dout, x, W, input_grad, dW):
    """dx = dout W^T (if wanted) and dW = x^T dout, the latter written into ``dW``."""
    dx = (dout @ W.T).astype(x.dtype, copy=False) if input_grad else None  # (B, D_in)
    np.matmul(x.T, dout, out=dW)  # (D_in, D_out)
    return dx


# --- Dense layer and (leaky) ReLU, fused ------------------------------------------


class DenseReluCache(NamedTuple):
    x: np.ndarray  # (B, D_in)
    W: np.ndarray  # (D_in, D_out)
    out: np.ndarray  # (B, D_out), the activation's output
    slope: float


def dense_relu_forward(x, W, b, slope=0.0):
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
    cache : DenseReluCache

    Examples
    --------
    >>> W = np.array([[1.0, 1.0], [-3.0, 3.0]])
    >>> dense_relu_forward(np.ones((1, 2)), W, np.zeros(2), slope=0.1)[0]
    array([[-0.2,  4. ]])
    """
    x, W, b = check_dense_args(x, W, b, finite=False)
    slope = check_slope(slope)
    out = x @ W  # (B, D_out)
    # out = leaky_relu(out + b): the bias and the activation in one pass, in place
    bias_leaky_relu(out, b, out.dtype.type(slope), out)
    return out, DenseReluCache(x, W, out, slope)


def dense_relu_backward(dout, cache, input_grad=True, *, out=None):
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
    dout = check_upstream("dout", dout, y.shape, y.dtype, finite=False)
    dW, db = gradient_buffers(out, W)
    dpre = np.empty_like(y)  # (B, D_out)
    leaky_relu_grad_bias(dout, y, y.dtype.type(slope), dpre, db)
    dx = input_and_weight_grads(dpre, x, W, input_grad, dW)
    return dx, dW, db
