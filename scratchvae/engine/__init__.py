"""The Numba engine: fast versions of the lecture's ops, under the same names and signatures.

The lecture (:mod:`scratchvae.lecture`) is what to read; this is what training
runs on. Each module here mirrors the lecture module of the same name and
says what it does differently. Kernels (:mod:`scratchvae.engine.kernels`) are
plain Python loops compiled by Numba, each with a NumPy reference. The engine
imports the lecture, never the other way round; ``tests/test_engine.py``
checks that every op here has the lecture's signature and gives the lecture's
numbers (float64 to 1e-12, float32 to 1e-5).

:data:`NUMBA_OPS` is the ops table a model gets with ``engine="numba"``: the
lecture's, with the engine's versions in place where it has one. The ops it
takes from the lecture as they are (the KL between two diagonal or
full-covariance Gaussians, the Gaussian log-density and log-likelihood) are
not on the standard model's training path.
"""

from types import SimpleNamespace

from scratchvae.engine import activations, dense, estimators, gaussian, likelihoods, training
from scratchvae.engine.modules import ENGINE_MODULES
from scratchvae.engine.optim import ENGINE_OPTIMIZERS
from scratchvae.lecture.ops import LECTURE_OPS, OP_NAMES

__all__ = ["NUMBA_OPS"]


def _engine_op(name):
    """The engine's version of lecture op ``name``, or the lecture's if the engine has none."""
    for module in (dense, activations, gaussian, likelihoods, training, estimators):
        if name in module.__all__:
            return getattr(module, name)
    return getattr(LECTURE_OPS, name)


NUMBA_OPS = SimpleNamespace(
    name="numba",
    **{name: _engine_op(name) for name in OP_NAMES},
    modules=ENGINE_MODULES,
    optimizers=ENGINE_OPTIMIZERS,
)
"""The Numba engine's ops table."""
