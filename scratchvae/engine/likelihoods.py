"""The Bernoulli log-likelihood, fast: the forward and the backward one kernel pass each.

Same names, signatures and results as :mod:`scratchvae.lecture.likelihoods`
(``tests/test_engine.py`` checks that); read the lecture for the maths. The
lecture computes softplus and sigmoid of the logits separately, with NumPy's
``exp`` and ``log1p``; here one loop (:func:`scratchvae.engine.vmath.bernoulli_ll_rows`)
computes both from one e = exp(-abs(l)), adds up each row and writes sigmoid(l)
for the backward, reading the logits once. Its exp and log1p are the engine's
own (:mod:`scratchvae.engine.vmath`): NumPy's cannot be called inside a
compiled loop, and the library function Numba would call instead is scalar.
The Gaussian likelihood is not on the Bernoulli model's training path: the
engine uses the lecture's. Arguments are checked by the lecture's own checks
with ``finite=False``: for shape and dtype only; ``x`` is data, which the
model checked once.
"""

import numpy as np

from scratchvae.engine import kernels, vmath
from scratchvae.lecture.likelihoods import BernoulliCache, check_bernoulli_args
from scratchvae.lecture.validate import check_upstream

__all__ = ["bernoulli_log_likelihood_forward", "bernoulli_log_likelihood_backward"]


def bernoulli_log_likelihood_forward(x, logits):
    """:func:`scratchvae.lecture.likelihoods.bernoulli_log_likelihood_forward`, one kernel pass."""
    x, logits = check_bernoulli_args(x, logits, finite=False)
    p = np.empty_like(logits)  # (B, D)
    ll = np.empty(logits.shape[0], dtype=logits.dtype)  # (B,)
    # ll_b = sum_j x_bj l_bj - softplus(l_bj);  p = sigmoid(l)
    vmath.bernoulli_ll_rows(x, logits, p, ll)
    return ll, BernoulliCache(x, p)


def bernoulli_log_likelihood_backward(dll, cache):
    """:func:`scratchvae.lecture.likelihoods.bernoulli_log_likelihood_backward`, one kernel pass.

    Derivation: docs/likelihoods.md#bernoulli
    """
    x, p = cache
    dll = check_upstream("dll", dll, p.shape[:1], p.dtype, finite=False)
    dlogits = np.empty_like(p)  # (B, D)
    kernels.bernoulli_grad(dll, x, p, dlogits)
    return dlogits
