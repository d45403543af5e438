"""The Bernoulli log-likelihood, fast: one exp, one log1p, two fused kernel passes.

Same names, signatures and results as :mod:`scratchvae.lecture.likelihoods`
(``tests/test_engine.py`` checks that); read the lecture for the maths. The
lecture computes softplus and sigmoid of the logits separately; here both come
from one e = exp(-|l|): a kernel pass writes the arithmetic half of each row's
sum, sum_j x_j l_j - max(l_j, 0), and sigmoid(l) over e, and NumPy's ``log1p``
gives the rest of the softplus. The Gaussian likelihood is not on the
Bernoulli model's training path: the engine uses the lecture's. Arguments are
checked for shape and dtype only; ``x`` is data, which the model checked once.
"""

import numpy as np

from scratchvae.engine import kernels
from scratchvae.engine.activations import exp_neg_abs
from scratchvae.lecture.likelihoods import BernoulliCache
from scratchvae.lecture.validate import as_float_array, check_same_shape, check_shape

__all__ = ["bernoulli_log_likelihood_forward", "bernoulli_log_likelihood_backward"]


def bernoulli_log_likelihood_forward(x, logits):
    """:func:`scratchvae.lecture.likelihoods.bernoulli_log_likelihood_forward`, fused."""
    logits = np.ascontiguousarray(as_float_array("logits", logits, ndim=2, finite=False))
    x = as_float_array("x", x, ndim=2, finite=False)
    x = np.ascontiguousarray(check_same_shape("x", x, "logits", logits), dtype=logits.dtype)
    e = exp_neg_abs(logits)  # (B, D) exp(-|l|), in (0, 1]
    p = np.empty_like(logits)  # (B, D)
    ll = np.empty(logits.shape[0], dtype=logits.dtype)  # (B,)
    # ll_b = sum_j x_bj l_bj - max(l_bj, 0);  p = sigmoid(l), from e
    kernels.bernoulli_terms(x, logits, e, p, ll)
    # ll_b -= sum_j log1p(exp(-|l_bj|)), the rest of softplus; e is reused
    ll -= np.log1p(e, out=e).sum(axis=1)  # (B,)
    return ll, BernoulliCache(x, p)


def bernoulli_log_likelihood_backward(dll, cache):
    """:func:`scratchvae.lecture.likelihoods.bernoulli_log_likelihood_backward`, one kernel pass.

    Derivation: docs/likelihoods.md#bernoulli
    """
    x, p = cache
    dll = as_float_array("dll", dll, finite=False)
    dll = np.ascontiguousarray(check_shape("dll", dll, (p.shape[0],)), dtype=p.dtype)
    dlogits = np.empty_like(p)  # (B, D)
    kernels.bernoulli_grad(dll, x, p, dlogits)
    return dlogits
