"""The activations, fast: the lecture's ops on Numba kernels.

Same names, signatures and results as :mod:`scratchvae.lecture.activations`
(``tests/test_engine.py`` checks that); read the lecture for the maths. What
differs is how the passes are made: each array is seen as a flat, contiguous
view; the sigmoid and the softplus are one loop each, with the engine's own
vectorised exp and log1p (:mod:`scratchvae.engine.vmath`) and the arithmetic
around them fused in; tanh is NumPy's ufunc; buffers are reused instead of
allocated. Arguments are
checked by the lecture's own checks with ``finite=False``: for shape and dtype
only (a kernel must never run past an array's end), not scanned for NaN: the
model checks its data once at its entry.
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine.kernels import leaky_relu, leaky_relu_grad, multiply, sigmoid_grad, tanh_grad
from scratchvae.engine.vmath import sigmoid_array, softplus_sigmoid_array
from scratchvae.lecture.activations import SigmoidCache, TanhCache, check_slope
from scratchvae.lecture.validate import as_float_array, check_upstream

__all__ = [
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward",
]


def contiguous_1d(a, dtype=None):
    """A flat, contiguous view of ``a`` (a copy only if it has to be)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def apply_grad(kernel, dout, saved, *args):
    """dx = kernel(dout, saved, *args), element-wise; dx shaped like ``saved``.

    ``saved`` is what the forward cached; ``dout`` is taken in its dtype, so
    the gradient has the input's precision. The shape check keeps the kernel
    inside both arrays.
    """
    dout = check_upstream("dout", dout, saved.shape, saved.dtype, finite=False).reshape(-1)
    dx = np.empty_like(dout)
    kernel(dout, saved.reshape(-1), *args, dx)
    return dx.reshape(saved.shape)


class LeakyReluCache(NamedTuple):
    out: np.ndarray  # the forward's output: it has the sign of x, all the backward needs
    slope: float


class SoftplusCache(NamedTuple):
    sigmoid_x: np.ndarray  # sigmoid(x), the derivative, from the forward's own exp


def leaky_relu_forward(x, slope=0.01):
    """:func:`scratchvae.lecture.activations.leaky_relu_forward`, one kernel pass."""
    x = as_float_array("x", x, finite=False)
    slope = check_slope(slope)
    out = np.empty(x.size, x.dtype)
    leaky_relu(contiguous_1d(x), x.dtype.type(slope), out)
    out = out.reshape(x.shape)
    return out, LeakyReluCache(out, slope)


def leaky_relu_backward(dout, cache):
    """:func:`scratchvae.lecture.activations.leaky_relu_backward`, one kernel pass.

    Derivation: docs/layers.md#relu
    """
    out, slope = cache
    return apply_grad(leaky_relu_grad, dout, out, out.dtype.type(slope))


def relu_forward(x):
    """:func:`scratchvae.lecture.activations.relu_forward`: the leaky kernel with slope 0.

    Negative inputs give ``-0.0`` (0 times a negative number), which equals 0.
    """
    return leaky_relu_forward(x, slope=0.0)


def relu_backward(dout, cache):
    """:func:`scratchvae.lecture.activations.relu_backward`, one kernel pass.

    Derivation: docs/layers.md#relu
    """
    return leaky_relu_backward(dout, cache)


def tanh_forward(x):
    """:func:`scratchvae.lecture.activations.tanh_forward` (NumPy's ufunc: nothing to gain)."""
    out = np.tanh(as_float_array("x", x, finite=False))
    return out, TanhCache(out)


def tanh_backward(dout, cache):
    """:func:`scratchvae.lecture.activations.tanh_backward`, one kernel pass.

    Derivation: docs/layers.md#tanh
    """
    return apply_grad(tanh_grad, dout, cache.y)


def sigmoid_forward(x):
    """:func:`scratchvae.lecture.activations.sigmoid_forward`: one kernel pass."""
    x = as_float_array("x", x, finite=False)
    out = sigmoid_array(contiguous_1d(x), np.empty(x.size, x.dtype)).reshape(x.shape)
    return out, SigmoidCache(out)


def sigmoid_backward(dout, cache):
    """:func:`scratchvae.lecture.activations.sigmoid_backward`, one kernel pass.

    Derivation: docs/layers.md#sigmoid
    """
    return apply_grad(sigmoid_grad, dout, cache.y)


def softplus_forward(x):
    """:func:`scratchvae.lecture.activations.softplus_forward`, sharing one exp with the sigmoid.

    The cache holds sigmoid(x), the derivative, computed in the same pass
    from the same e = exp(-abs(x)) as the softplus itself.
    """
    x = as_float_array("x", x, finite=False)
    out, sigmoid_x = np.empty(x.size, x.dtype), np.empty(x.size, x.dtype)  # (N,) each
    softplus_sigmoid_array(contiguous_1d(x), out, sigmoid_x)
    return out.reshape(x.shape), SoftplusCache(sigmoid_x.reshape(x.shape))


def softplus_backward(dout, cache):
    """:func:`scratchvae.lecture.activations.softplus_backward`: dout times the cached sigmoid.

    Derivation: docs/layers.md#softplus
    """
    return apply_grad(multiply, dout, cache.sigmoid_x)
