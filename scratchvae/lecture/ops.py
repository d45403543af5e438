"""The ops table: which function, module class and optimiser a model uses for each lecture op.

A model is built from ops: the dense layer, the activations, the Gaussian
latent layer, the likelihoods, binarisation, the importance-weighted bound
(what evaluation spends its time on), the modules and the optimisers.
The lecture writes each in plain NumPy; an engine provides a faster version of
some of them under the same names and signatures. A model names its engine::

    VAE(784, engine="numpy")   # the lecture's ops, to read and step through
    VAE(784, engine="numba")   # the Numba engine's, to train fast (the default)

and finds its ops with :func:`get_ops`. The lecture imports nothing from an
engine: an engine registers itself here (:func:`register_engine`), and the
package's ``__init__`` registers the Numba engine, lazily, so that it is
imported only when a model first asks for it. ``tests/test_engine.py`` walks
:data:`OP_NAMES` and checks that each engine's version has the lecture's
signature and agrees with it.
"""

from types import SimpleNamespace

from scratchvae.lecture import (activations, dense, estimators, gaussian, gaussian_density, gaussian_full,
                                likelihoods, optim, training)
from scratchvae.lecture.modules import LECTURE_MODULES

__all__ = ["OP_NAMES", "LECTURE_OPS", "register_engine", "get_ops", "engines"]

OP_NAMES = (
    "dense_forward", "dense_backward",
    "relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
    "tanh_forward", "tanh_backward", "sigmoid_forward", "sigmoid_backward",
    "softplus_forward", "softplus_backward",
    "reparameterize_forward", "reparameterize_backward",
    "kl_standard_normal_forward", "kl_standard_normal_backward",
    "kl_diagonal_forward", "kl_diagonal_backward",
    "gaussian_log_density_forward", "gaussian_log_density_backward",
    "kl_full_covariance_forward", "kl_full_covariance_backward",
    "bernoulli_log_likelihood_forward", "bernoulli_log_likelihood_backward",
    "gaussian_log_likelihood_forward", "gaussian_log_likelihood_backward",
    "binarize",
    "importance_weighted_bound",
)
"""Every lecture op a model may call, in course order."""


def _lecture_op(name):
    for module in (dense, activations, gaussian, gaussian_density, gaussian_full, likelihoods, training,
                   estimators):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)


LECTURE_OPS = SimpleNamespace(
    name="numpy",
    **{name: _lecture_op(name) for name in OP_NAMES},
    modules=LECTURE_MODULES,
    optimizers=optim.OPTIMIZERS,
)
"""The lecture's ops: plain NumPy, one formula per line."""

_ENGINES = {"numpy": lambda: LECTURE_OPS}


def register_engine(name, load):
    """Make ``engine=name`` available; ``load()`` returns its ops when first asked for."""
    _ENGINES[name] = load


def engines():
    """The names a model's ``engine=`` accepts."""
    return tuple(_ENGINES)


def get_ops(engine):
    """The ops of the engine called ``engine`` ("numpy" or "numba"), or a ValueError naming it."""
    if engine not in _ENGINES:
        raise ValueError(f"engine: expected one of {', '.join(map(repr, _ENGINES))}, got {engine!r}")
    return _ENGINES[engine]()
