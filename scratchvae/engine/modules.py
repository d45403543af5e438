"""The modules, fast: the lecture's classes, calling the engine's ops.

Each class here is the lecture's (:mod:`scratchvae.lecture.modules`) with the
engine's forward/backward pair in place of the lecture's; what a module is
and does is read there. Two things are new:

* :class:`Dense` writes ``backward(dout, accumulate=False)``'s weight
  gradient straight into its gradient buffer (``dense_backward(..., out=)``),
  instead of computing a new array and copying it over: a pass over every
  weight saved per step;
* :class:`DenseReLU`, a Dense layer and its (leaky) ReLU fused into one
  module. The engine's :class:`MLP` builds one wherever the lecture's builds
  ``Dense`` then ``ReLU``; same numbers and the same parameter names, one
  pass over the hidden layer instead of three.
"""

import numpy as np

from scratchvae.engine import activations as fast
from scratchvae.engine.dense import dense_backward, dense_forward, dense_relu_backward, dense_relu_forward
from scratchvae.lecture import modules as lecture
from scratchvae.lecture.activations import check_slope

__all__ = ["Dense", "DenseReLU", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Softplus", "ACTIVATIONS",
           "MLP"]


class Dense(lecture.Dense):
    """:class:`scratchvae.lecture.modules.Dense` on the engine's ops, writing gradients in place."""

    forward_op, backward_op = staticmethod(dense_forward), staticmethod(dense_backward)

    def forward(self, x):
        out, self.cache = self.forward_op(x, self.params["W"], self.params["b"])
        return out

    def backward(self, dout, accumulate=True):
        cache = self._last_cache()
        if accumulate:
            dx, dW, db = self.backward_op(dout, cache, self.input_grad)
            self.store_grads(True, W=dW, b=db)
            return dx
        # The matrix product writes dW straight into the gradient buffer.
        out = (self.grads["W"], self.grads["b"])
        return self.backward_op(dout, cache, self.input_grad, out=out)[0]


class DenseReLU(Dense):
    """A :class:`Dense` layer then a (leaky) ReLU, fused: ``leaky_relu(x @ W + b)``.

    Computes exactly what ``Dense`` then ``LeakyReLU(slope)`` compute (slope
    0: ``ReLU``), with the bias add and the activation in one pass
    (:func:`~scratchvae.engine.dense.dense_relu_forward`).

    Derivation: docs/layers.md#dense-relu
    """

    def __init__(self, in_features, out_features, rng, slope=0.0, init="he", dtype=np.float32):
        super().__init__(in_features, out_features, rng, init, dtype)
        self.slope = check_slope(slope)

    def forward_op(self, x, W, b):
        return dense_relu_forward(x, W, b, self.slope)

    backward_op = staticmethod(dense_relu_backward)

    def __repr__(self):
        return f"{super().__repr__()[:-1]}, slope={self.slope})"


class ReLU(lecture.ReLU):
    forward_op, backward_op = staticmethod(fast.relu_forward), staticmethod(fast.relu_backward)


class LeakyReLU(lecture.LeakyReLU):
    backward_op = staticmethod(fast.leaky_relu_backward)

    def forward_op(self, x):
        return fast.leaky_relu_forward(x, self.slope)


class Tanh(lecture.Tanh):
    forward_op, backward_op = staticmethod(fast.tanh_forward), staticmethod(fast.tanh_backward)


class Sigmoid(lecture.Sigmoid):
    forward_op, backward_op = staticmethod(fast.sigmoid_forward), staticmethod(fast.sigmoid_backward)


class Softplus(lecture.Softplus):
    forward_op, backward_op = staticmethod(fast.softplus_forward), staticmethod(fast.softplus_backward)


ACTIVATIONS = {**lecture.ACTIVATIONS, "relu": ReLU, "leaky_relu": LeakyReLU, "tanh": Tanh,
               "sigmoid": Sigmoid, "softplus": Softplus}
"""The engine's activation classes, by name (the lecture's :data:`~scratchvae.lecture.modules.ACTIVATIONS`)."""


class MLP(lecture.MLP):
    """:class:`scratchvae.lecture.modules.MLP` on the engine's modules, each Dense + (leaky) ReLU fused.

    Examples
    --------
    >>> mlp = MLP([20, 400, 784], "relu", rng=np.random.default_rng(0))
    >>> [type(m).__name__ for m in mlp.modules], list(mlp.params)
    (['DenseReLU', 'DenseReLU'], ['0.W', '0.b', '1.W', '1.b'])
    """

    def layer(self, in_features, out_features, rng, activation, init, dtype):
        act = lecture.activation_module(activation, ACTIVATIONS)
        init = init or act.init
        if activation in ("relu", "leaky_relu"):
            # The bias add and the activation in one pass.
            return [DenseReLU(in_features, out_features, rng, getattr(act, "slope", 0.0), init, dtype)]
        return [Dense(in_features, out_features, rng, init, dtype), act]
