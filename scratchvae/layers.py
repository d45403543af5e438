"""The dense layer, initialisation, and the modules that build networks.

Every op is a pair of pure functions, the backward right under its forward::

    out, cache = dense_forward(x, W, b)
    dx, dW, db = dense_backward(dout, cache)

The activation ops (``relu_forward``, ``sigmoid_backward``, ...) live in
:mod:`scratchvae.activations` and are re-exported here, so that
``scratchvae.layers`` offers every building block of a network. The modules (:class:`Dense`, :class:`ReLU`, ...,
:class:`Sequential`, :class:`MLP`) wrap the pairs for building networks: they
hold parameters, remember the cache of their last forward, and *add* their
parameter gradients into ``grads``.

Element-wise passes run in the Numba kernels of :mod:`scratchvae.kernels`
(flat, contiguous arrays); the exponentials are NumPy ufuncs, which are faster
here; the matrix products are NumPy's (BLAS). The derivations are in
``docs/layers.md``.
"""

import functools
from typing import NamedTuple

import numpy as np

from scratchvae.activations import (
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
from scratchvae.kernels import bias_leaky_relu, leaky_relu_grad_bias
from scratchvae.validate import (
    as_float_array, check_int, check_no_overflow, check_out, check_rng, check_shape,
)

__all__ = [
    "dense_forward", "dense_backward", "dense_leaky_relu_forward", "dense_leaky_relu_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward",
    "he_normal", "glorot_uniform", "fan_in_uniform",
    "Module", "Dense", "DenseLeakyReLU", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softplus", "Identity",
    "ACTIVATIONS", "activation_module", "Sequential", "MLP",
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
    :func:`~scratchvae.activations.leaky_relu_forward` (slope 0: ReLU), and
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
    its outputs closer to zero. :class:`scratchvae.vae.VAE` uses it, because
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


# --- Modules --------------------------------------------------------------------


def _check_dtype(dtype):
    if dtype not in (np.float32, np.float64, np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype!r}")
    return np.dtype(dtype)


class Module:
    """A piece of a network: parameters, their gradients, forward and backward.

    Attributes
    ----------
    params : dict of str to ndarray
        The parameters, by name.
    grads : dict of str to ndarray
        Same keys and shapes as ``params``. ``backward`` *adds* into them
        (``+=``); ``zero_grad`` resets them. ``backward(dout,
        accumulate=False)`` writes them instead, which is ``zero_grad`` and
        ``backward`` in one (the training loop does this: it saves a pass over
        every gradient, twice). Both dicts' arrays are updated in place, never
        replaced, so an optimiser or a parent :class:`Sequential` can hold on
        to them.
    cache : NamedTuple or None
        The cache of the last ``forward``. Only the last one is kept: to use
        one module twice (shared weights), run forward then backward for each
        use in turn; the backward calls add up, as the chain rule says.

    Examples
    --------
    >>> layer = Dense(3, 2, np.random.default_rng(0), dtype=np.float64)
    >>> out = layer.forward(np.ones((4, 3)))
    >>> dx = layer.backward(np.ones((4, 2)))
    >>> [(name, param.shape, grad.shape) for name, param, grad in layer.parameters()]
    [('W', (3, 2), (3, 2)), ('b', (2,), (2,))]

    Derivation: docs/layers.md#modules
    """

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.cache = None

    def forward(self, x):
        """Return the output for input ``x`` and keep the cache."""
        raise NotImplementedError

    def backward(self, dout, accumulate=True):
        """Add the parameter gradients into ``grads`` (write them, if not ``accumulate``); return ``dx``."""
        raise NotImplementedError

    def zero_grad(self):
        """Set every gradient to zero, in place."""
        for grad in self.grads.values():
            grad.fill(0)

    def parameters(self):
        """Yield ``(name, param, grad)`` for every parameter."""
        for name, param in self.params.items():
            yield name, param, self.grads[name]

    def _last_cache(self):
        if self.cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self.cache

    def __repr__(self):
        return f"{type(self).__name__}()"


class Dense(Module):
    """A dense layer, ``x @ W + b``, with parameters ``"W"`` (D_in, D_out) and ``"b"`` (D_out,).

    Parameters
    ----------
    in_features, out_features : int
        D_in and D_out.
    rng : numpy.random.Generator
        Draws the initial weights.
    init : {"he", "glorot", "uniform"}
        :func:`he_normal` for a layer feeding a ReLU-family activation,
        :func:`glorot_uniform` for tanh, sigmoid or a linear output. The bias
        starts at zero: the random weights already make the units differ.
    dtype : float32 or float64

    Examples
    --------
    >>> layer = Dense(784, 400, np.random.default_rng(0))
    >>> layer.forward(np.zeros((128, 784), np.float32)).shape
    (128, 400)

    Derivation: docs/layers.md#modules
    """

    def __init__(self, in_features, out_features, rng, init="he", dtype=np.float32):
        super().__init__()
        in_features = check_int("in_features", in_features)
        out_features = check_int("out_features", out_features)
        check_rng(rng)
        if init not in INITIALISERS:
            choices = ", ".join(map(repr, INITIALISERS))
            raise ValueError(f"init: expected one of {choices}, got {init!r}")
        self.init, self.dtype = init, _check_dtype(dtype)
        self.params["W"] = INITIALISERS[init](in_features, out_features, rng, self.dtype)
        self.params["b"] = np.zeros(out_features, self.dtype)
        self.grads = {name: np.zeros_like(param) for name, param in self.params.items()}
        # Set to False for a first layer, whose input is data: backward then
        # skips dx (and returns None), one matrix product saved.
        self.input_grad = True

    def forward(self, x):
        out, self.cache = self._forward_op(x, self.params["W"], self.params["b"])
        return out

    def backward(self, dout, accumulate=True):
        # The cache holds W itself: step the optimiser after backward, not between.
        if not accumulate:
            # The matrix product writes dW straight into the gradient buffer.
            return self._backward_op(dout, self._last_cache(), self.input_grad,
                                     (self.grads["W"], self.grads["b"]))[0]
        dx, dW, db = self._backward_op(dout, self._last_cache(), self.input_grad, None)
        self.grads["W"] += dW
        self.grads["b"] += db
        return dx

    def _forward_op(self, x, W, b):
        return dense_forward(x, W, b)

    def _backward_op(self, dout, cache, input_grad, out):
        return dense_backward(dout, cache, input_grad, out)

    def __repr__(self):
        D_in, D_out = self.params["W"].shape
        return f"{type(self).__name__}({D_in}, {D_out}, init={self.init!r}, dtype={self.dtype})"


class DenseLeakyReLU(Dense):
    """:class:`Dense` then :class:`LeakyReLU` (``slope=0``: :class:`ReLU`), fused into one module.

    Computes exactly what the two modules compute, with the bias add and the
    activation in one pass (:func:`dense_leaky_relu_forward`). :class:`MLP`
    builds these for ReLU-family layers.

    Derivation: docs/layers.md#dense-relu
    """

    def __init__(self, in_features, out_features, rng, slope=0.0, init="he", dtype=np.float32):
        super().__init__(in_features, out_features, rng, init, dtype)
        self.slope = check_slope(slope)

    def _forward_op(self, x, W, b):
        return dense_leaky_relu_forward(x, W, b, self.slope)

    def _backward_op(self, dout, cache, input_grad, out):
        return dense_leaky_relu_backward(dout, cache, input_grad, out)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, slope={self.slope})"


class Activation(Module):
    """A module with no parameters around one forward/backward pair.

    ``init`` names the weight initialisation for a :class:`Dense` layer that
    feeds this activation (:class:`MLP` uses it).
    """

    init = "glorot"

    def __init__(self, forward, backward):
        super().__init__()
        self._forward, self._backward = forward, backward

    def forward(self, x):
        out, self.cache = self._forward(x)
        return out

    def backward(self, dout, accumulate=True):
        return self._backward(dout, self._last_cache())


class ReLU(Activation):
    """:func:`relu_forward` / :func:`relu_backward` as a module.

    Derivation: docs/layers.md#relu
    """

    init = "he"

    def __init__(self):
        super().__init__(relu_forward, relu_backward)


class LeakyReLU(Activation):
    """:func:`leaky_relu_forward` with a fixed ``slope``, as a module.

    Derivation: docs/layers.md#relu
    """

    init = "he"

    def __init__(self, slope=0.01):
        self.slope = check_slope(slope)
        forward = functools.partial(leaky_relu_forward, slope=self.slope)
        super().__init__(forward, leaky_relu_backward)

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope})"


class Tanh(Activation):
    """:func:`tanh_forward` / :func:`tanh_backward` as a module.

    Derivation: docs/layers.md#tanh
    """

    def __init__(self):
        super().__init__(tanh_forward, tanh_backward)


class Sigmoid(Activation):
    """:func:`sigmoid_forward` / :func:`sigmoid_backward` as a module.

    Derivation: docs/layers.md#sigmoid
    """

    def __init__(self):
        super().__init__(sigmoid_forward, sigmoid_backward)


class Softplus(Activation):
    """:func:`softplus_forward` / :func:`softplus_backward` as a module.

    Derivation: docs/layers.md#softplus
    """

    init = "he"  # a smooth ReLU

    def __init__(self):
        super().__init__(softplus_forward, softplus_backward)


class Identity(Module):
    """out = x, dx = dout: a linear output, e.g. an MLP's ``final_activation="identity"``."""

    init = "glorot"

    def forward(self, x):
        return x

    def backward(self, dout, accumulate=True):
        return dout


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
    "identity": Identity,
}


def _activation_class(argname, name):
    """``ACTIVATIONS[name]``, or a ValueError naming ``argname`` and the choices."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        choices = ", ".join(map(repr, ACTIVATIONS))
        raise ValueError(f"{argname}: expected one of {choices}, got {name!r}")
    return ACTIVATIONS[name]


def activation_module(activation, **kwargs):
    """A new activation module by name, e.g. for a model's ``activation=`` argument.

    Parameters
    ----------
    activation : str
        A key of :data:`ACTIVATIONS`: "relu", "leaky_relu", "tanh", "sigmoid",
        "softplus" or "identity".
    **kwargs
        Passed to the class, e.g. ``slope=0.2`` for "leaky_relu".

    Examples
    --------
    >>> activation_module("leaky_relu", slope=0.2)
    LeakyReLU(slope=0.2)

    Derivation: docs/layers.md#modules
    """
    return _activation_class("activation", activation)(**kwargs)


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse (the chain rule).

    ``params`` and ``grads`` are the children's own arrays under prefixed names
    (``"0.W"`` is the first module's ``W``), so an optimiser sees one flat dict.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Dense(4, 3, rng), ReLU(), Dense(3, 2, rng))
    >>> list(model.params)
    ['0.W', '0.b', '2.W', '2.b']

    Derivation: docs/layers.md#modules
    """

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise ValueError(f"modules[{i}]: expected a Module, got {type(module).__name__}")
            for name, param, grad in module.parameters():
                self.params[f"{i}.{name}"] = param
                self.grads[f"{i}.{name}"] = grad
        self.modules = modules

    def forward(self, x):
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, dout, accumulate=True):
        # dx = J_0^T J_1^T ... J_last^T dout: the last module's backward goes first
        for module in reversed(self.modules):
            dout = module.backward(dout, accumulate)
        return dout

    def __repr__(self):
        inner = "".join(f"\n  ({i}) {module!r}" for i, module in enumerate(self.modules))
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """Dense layers, each followed by an activation: ``Dense, act, Dense, act, ...``.

    A ReLU or leaky ReLU after a Dense layer is fused with it into one
    :class:`DenseLeakyReLU` module (same numbers, fewer passes over memory).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``[784, 400]`` is one Dense(784, 400).
    activation : str
        The activation after every Dense layer (a key of :data:`ACTIVATIONS`).
    rng : numpy.random.Generator
        Draws the initial weights.
    dtype : float32 or float64
    final_activation : str, optional
        Replaces ``activation`` after the *last* Dense layer; ``"identity"``
        for a linear output (e.g. logits). Default: ``activation`` there too.
    init : {"he", "glorot", "uniform"}, optional
        Default: each layer's is chosen by the activation that follows it
        ("he" for relu, leaky_relu, softplus; "glorot" otherwise).

    Examples
    --------
    >>> MLP([784, 400], "relu", rng=np.random.default_rng(0))  # fused: one module
    MLP(
      (0) DenseLeakyReLU(784, 400, init='he', dtype=float32, slope=0.0)
    )
    >>> MLP([2, 3], "tanh", rng=np.random.default_rng(0))
    MLP(
      (0) Dense(2, 3, init='glorot', dtype=float32)
      (1) Tanh()
    )
    >>> decoder = MLP([20, 400, 784], "relu", rng=np.random.default_rng(0),
    ...               final_activation="identity")
    >>> [type(m).__name__ for m in decoder.modules]
    ['DenseLeakyReLU', 'Dense', 'Identity']

    Derivation: docs/layers.md#modules
    """

    def __init__(self, sizes, activation="relu", rng=None, dtype=np.float32,
                 final_activation=None, init=None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least two layer widths, got {sizes!r}")
        for i, size in enumerate(sizes):
            check_int(f"sizes[{i}]", size)
        hidden = _activation_class("activation", activation)
        last = hidden
        if final_activation is not None:
            last = _activation_class("final_activation", final_activation)
        modules = []
        n_layers = len(sizes) - 1
        for k in range(n_layers):
            act = last if k == n_layers - 1 else hidden
            args = (sizes[k], sizes[k + 1], rng)
            if act in (ReLU, LeakyReLU):
                # One fused module: the bias add and the activation in one pass.
                slope = act().slope if act is LeakyReLU else 0.0
                modules.append(DenseLeakyReLU(*args, slope, init or act.init, dtype))
            else:
                modules += [Dense(*args, init or act.init, dtype), act()]
        super().__init__(*modules)
