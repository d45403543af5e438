"""The optimisers, fast: one fused Numba kernel pass per parameter array.

Each class is the lecture's (:mod:`scratchvae.lecture.optim`) with ``step``
replaced: instead of the textbook's NumPy lines, which make several passes
over each array and allocate temporaries, one kernel reads ``p``, ``g`` and
the state once and writes them back, allocating nothing. The kernels work on
flat views made once, and get every scalar already cast to the arrays' dtype
(a Python float would make Numba compute a float32 update in float64).
Adam's bias corrections are folded into two per-step scalars, so no element
calls ``pow``: optim (9)-(11), docs/optim.md#adam.
"""

import math

import numpy as np

from scratchvae.engine import kernels
from scratchvae.lecture import optim as lecture

__all__ = ["SGD", "Adagrad", "Adam", "OPTIMIZERS"]


class KernelStep:
    """Mixin: ``step`` as one kernel call per parameter; a subclass names ``kernel`` and ``scalars``."""

    kernel = None  # kernels.<name>_update(p, g, *state, *scalars), in place

    def step(self):
        """Update every parameter in place from its current gradient."""
        if not hasattr(self, "_calls"):
            # The kernel's array arguments (p, g, *state) for each parameter,
            # as flat views made once, so that a step allocates no arrays.
            self._calls = []
            for k, (_, p, g) in enumerate(self.params):
                state = [self.state[s][k] for s in self.state_names]
                self._calls.append((p.dtype.type, [view_1d(a) for a in (p, g, *state)]))
        self.t += 1
        typed = self.typed_scalars()
        for dtype, arrays in self._calls:
            self.kernel(*arrays, *typed[dtype])

    def typed_scalars(self):
        """:meth:`scalars`, cast once to each parameter dtype: ``{dtype: [scalar, ...]}``."""
        scalars = self.scalars()
        return {dtype: [dtype(s) for s in scalars] for dtype in {p.dtype.type for _, p, _ in self.params}}

    def scalars(self):
        """The kernel's scalar arguments at step ``self.t``, as Python floats."""
        raise NotImplementedError


class SGD(KernelStep, lecture.SGD):
    kernel = staticmethod(kernels.sgd_update)

    def scalars(self):
        return self.lr, self.momentum


class Adagrad(KernelStep, lecture.Adagrad):
    kernel = staticmethod(kernels.adagrad_update)

    def scalars(self):
        return self.lr, self.eps


class Adam(KernelStep, lecture.Adam):
    kernel = staticmethod(kernels.adam_update)

    def scalars(self):
        beta1, beta2 = self.betas
        # optim (10): the bias corrections, folded (docs/optim.md#adam):
        # alpha_t = lr sqrt(1 - beta2^t) / (1 - beta1^t),  eps_hat_t = eps sqrt(1 - beta2^t)
        root = math.sqrt(1 - beta2**self.t)
        alpha_t, eps_hat_t = self.lr * root / (1 - beta1**self.t), self.eps * root
        # The kernel's moving averages use only 1 - beta: m += (1 - beta1) (g - m).
        return 1 - beta1, 1 - beta2, alpha_t, eps_hat_t


def view_1d(a):
    """A 1-D view of the C-contiguous array ``a`` (the kernels write through it)."""
    view = a.reshape(-1)
    if not np.shares_memory(view, a):
        raise ValueError("expected a C-contiguous array: reshape(-1) made a copy")
    return view


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}
