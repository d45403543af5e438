"""Modules: the pieces a network is built from.

A module wraps the forward/backward op pairs of :mod:`scratchvae.lecture.dense` and
:mod:`scratchvae.lecture.activations` for use in a network. It holds its parameters
in ``params`` and their gradients in ``grads`` (dicts with the same keys),
keeps the cache of its last ``forward``, and its ``backward`` *adds* the
parameter gradients into ``grads``, so a module used twice accumulates both
contributions; ``backward(dout, accumulate=False)`` writes them instead.
:class:`Dense`, :class:`ReLU`, ... are single modules; :class:`Sequential`
and :class:`MLP` chain them.

Derivation: docs/layers.md#modules
"""

import numpy as np

from scratchvae.lecture.activations import (
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
from scratchvae.lecture.dense import INITIALIZERS, dense_backward, dense_forward
from scratchvae.lecture.validate import check_int, check_rng

__all__ = [
    "Module", "Dense", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softplus", "Identity",
    "ACTIVATIONS", "activation_module", "check_activation", "Sequential", "MLP",
]


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
        ``backward`` in one (the training step does this). Both dicts' arrays are updated in place, never
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
    init : {"he", "glorot", "fan_in"}
        :func:`~scratchvae.lecture.dense.he_normal` for a layer feeding a ReLU-family
        activation, :func:`~scratchvae.lecture.dense.glorot_uniform` for tanh, sigmoid or
        a linear output. The bias starts at zero: the random weights already make
        the units differ.
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
        if init not in INITIALIZERS:
            choices = ", ".join(map(repr, INITIALIZERS))
            raise ValueError(f"init: expected one of {choices}, got {init!r}")
        self.init, self.dtype = init, _check_dtype(dtype)
        self.params["W"] = INITIALIZERS[init](in_features, out_features, rng, self.dtype)
        self.params["b"] = np.zeros(out_features, self.dtype)
        self.grads = {name: np.zeros_like(param) for name, param in self.params.items()}
        # Set to False for a first layer, whose input is data: backward then
        # skips dx (and returns None), one matrix product saved.
        self.input_grad = True

    def forward(self, x):
        """``x @ W + b`` (:func:`dense_forward`); keeps the cache."""
        out, self.cache = dense_forward(x, self.params["W"], self.params["b"])
        return out

    def backward(self, dout, accumulate=True):
        """Add (or write) ``dW``, ``db`` into ``grads``; return ``dx`` (None if not ``input_grad``)."""
        # The cache holds W itself: step the optimiser after backward, not between.
        dx, dW, db = dense_backward(dout, self._last_cache(), self.input_grad)
        self.store_grads(accumulate, W=dW, b=db)
        return dx

    def store_grads(self, accumulate, **grads):
        """Add each gradient into ``self.grads`` (or write it there, if not ``accumulate``)."""
        for name, grad in grads.items():
            if accumulate:
                self.grads[name] += grad
            else:
                self.grads[name][...] = grad

    def __repr__(self):
        D_in, D_out = self.params["W"].shape
        return f"{type(self).__name__}({D_in}, {D_out}, init={self.init!r}, dtype={self.dtype})"


class Activation(Module):
    """A module with no parameters around one forward/backward pair.

    A subclass names its pair as ``forward_op`` and ``backward_op``; the
    engine's modules are the same classes with the engine's pair.
    ``init`` names the weight initialisation for a :class:`Dense` layer that
    feeds this activation (:class:`MLP` uses it).
    """

    init = "glorot"
    forward_op = backward_op = None

    def forward(self, x):
        out, self.cache = self.forward_op(x)
        return out

    def backward(self, dout, accumulate=True):
        return self.backward_op(dout, self._last_cache())


class ReLU(Activation):
    """:func:`relu_forward` / :func:`relu_backward` as a module.

    Derivation: docs/layers.md#relu
    """

    init = "he"
    forward_op, backward_op = staticmethod(relu_forward), staticmethod(relu_backward)


class LeakyReLU(Activation):
    """:func:`leaky_relu_forward` with a fixed ``slope``, as a module.

    Derivation: docs/layers.md#relu
    """

    init = "he"
    backward_op = staticmethod(leaky_relu_backward)

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = check_slope(slope)

    def forward_op(self, x):
        """:func:`leaky_relu_forward` with this module's ``slope``."""
        return leaky_relu_forward(x, self.slope)

    def __repr__(self):
        return f"{type(self).__name__}(slope={self.slope})"


class Tanh(Activation):
    """:func:`tanh_forward` / :func:`tanh_backward` as a module.

    Derivation: docs/layers.md#tanh
    """

    forward_op, backward_op = staticmethod(tanh_forward), staticmethod(tanh_backward)


class Sigmoid(Activation):
    """:func:`sigmoid_forward` / :func:`sigmoid_backward` as a module.

    Derivation: docs/layers.md#sigmoid
    """

    forward_op, backward_op = staticmethod(sigmoid_forward), staticmethod(sigmoid_backward)


class Softplus(Activation):
    """:func:`softplus_forward` / :func:`softplus_backward` as a module.

    Derivation: docs/layers.md#softplus
    """

    init = "he"  # a smooth ReLU
    forward_op, backward_op = staticmethod(softplus_forward), staticmethod(softplus_backward)


class Identity(Module):
    """out = x, dx = dout: a linear output, e.g. an MLP's ``final_activation="identity"``."""

    init = "glorot"

    def forward(self, x):
        """``x`` itself."""
        return x

    def backward(self, dout, accumulate=True):
        """``dout`` itself."""
        return dout


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "softplus": Softplus,
    "identity": Identity,
}
"""An activation's name (the ``activation=`` argument) -> its module class."""


def activation_module(activation, table=ACTIVATIONS, **kwargs):
    """A new activation module by name, e.g. for a model's ``activation=`` argument.

    Parameters
    ----------
    activation : str
        A key of ``table``: "relu", "leaky_relu", "tanh", "sigmoid",
        "softplus" or "identity".
    table : dict of str to class
        Where the classes come from: :data:`ACTIVATIONS`, or the engine's.
    **kwargs
        Passed to the class, e.g. ``slope=0.2`` for "leaky_relu".

    Examples
    --------
    >>> activation_module("leaky_relu", slope=0.2)
    LeakyReLU(slope=0.2)

    Derivation: docs/layers.md#modules
    """
    return table[check_activation(activation)](**kwargs)


def check_activation(activation, argname="activation"):
    """Return ``activation`` if it names one (a key of :data:`ACTIVATIONS`), else raise naming ``argname``."""
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        choices = ", ".join(map(repr, ACTIVATIONS))
        raise ValueError(f"{argname}: expected one of {choices}, got {activation!r}")
    return activation


class Sequential(Module):
    """Modules applied in order; backward runs them in reverse (the chain rule).

    ``params`` and ``grads`` are the children's own arrays under prefixed names,
    so an optimiser sees one flat dict. The prefix counts the modules that hold
    parameters (layers), not every module: ``"1.W"`` is the second layer's
    ``W``, whether an activation module stands between the two layers or an
    engine has fused it into the first.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> model = Sequential(Dense(4, 3, rng), ReLU(), Dense(3, 2, rng))
    >>> list(model.params)
    ['0.W', '0.b', '1.W', '1.b']

    Derivation: docs/layers.md#modules
    """

    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise ValueError(f"modules[{i}]: expected a Module, got {type(module).__name__}")
        layers = [module for module in modules if module.params]
        for k, layer in enumerate(layers):
            for name, param, grad in layer.parameters():
                self.params[f"{k}.{name}"] = param
                self.grads[f"{k}.{name}"] = grad
        self.modules = modules

    def forward(self, x):
        """Each module's forward, first to last."""
        for module in self.modules:
            x = module.forward(x)
        return x

    def backward(self, dout, accumulate=True):
        """Each module's backward, last to first; return ``dx``."""
        # BEGIN SOLUTION
        # dx = J_0^T J_1^T ... J_last^T dout: the last module's backward goes first
        for module in reversed(self.modules):
            dout = module.backward(dout, accumulate)
        return dout
        # END SOLUTION

    def __repr__(self):
        inner = "".join(f"\n  ({i}) {module!r}" for i, module in enumerate(self.modules))
        return f"{type(self).__name__}({inner}\n)"


class MLP(Sequential):
    """Dense layers, each followed by an activation: ``Dense, act, Dense, act, ...``.

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
    init : {"he", "glorot", "fan_in"}, optional
        Default: each layer's is chosen by the activation that follows it
        ("he" for relu, leaky_relu, softplus; "glorot" otherwise).

    Examples
    --------
    >>> MLP([784, 400], "relu", rng=np.random.default_rng(0))
    MLP(
      (0) Dense(784, 400, init='he', dtype=float32)
      (1) ReLU()
    )
    >>> decoder = MLP([20, 400, 784], "relu", rng=np.random.default_rng(0),
    ...               final_activation="identity")
    >>> [type(m).__name__ for m in decoder.modules], list(decoder.params)
    (['Dense', 'ReLU', 'Dense', 'Identity'], ['0.W', '0.b', '1.W', '1.b'])

    Derivation: docs/layers.md#modules
    """

    def __init__(self, sizes, activation="relu", rng=None, dtype=np.float32,
                 final_activation=None, init=None):
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes: expected at least two layer widths, got {sizes!r}")
        for i, size in enumerate(sizes):
            check_int(f"sizes[{i}]", size)
        check_activation(activation)
        last = activation if final_activation is None else check_activation(final_activation,
                                                                             "final_activation")
        n_layers = len(sizes) - 1
        modules = []
        for k in range(n_layers):
            act = last if k == n_layers - 1 else activation
            modules += self.layer(sizes[k], sizes[k + 1], rng, act, init, dtype)
        super().__init__(*modules)

    def layer(self, in_features, out_features, rng, activation, init, dtype):
        """Layer k's modules: ``[Dense, activation]`` (the engine's MLP fuses the two)."""
        act = activation_module(activation)
        return [Dense(in_features, out_features, rng, init or act.init, dtype), act]
