"""The numbers behind the figures of scratchvae/tools/plots.py: no matplotlib here.

* :func:`inverse_normal_cdf` -- the standard normal quantile, by bisection;
* :func:`equal_probability_grid` -- the latent manifold's grid, equal prior mass per tile.

Each is re-exported from :mod:`scratchvae.tools.plots`. Derivations: docs/figures.md.
"""

import math

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_int

__all__ = ["equal_probability_grid", "inverse_normal_cdf"]

# Bisection bracket for the normal quantile: Phi(-40) underflows to 0 in
# float64, so every probability in (0, 1) has its quantile inside it.
BRACKET = 40.0
# 80 / 2**64 ~ 4e-18: below float64 spacing for every quantile that matters.
BISECTION_STEPS = 64

# math.erfc applied element-wise (NumPy has no erf of its own).
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def inverse_normal_cdf(p):
    r"""The standard normal quantile :math:`\Phi^{-1}(p)`, by bisection.

    :math:`\Phi(z) = \tfrac12 \operatorname{erfc}(-z / \sqrt2)` is increasing,
    so the :math:`z` with :math:`\Phi(z) = p` is found by halving a bracket
    ``[lo, hi]`` with :math:`\Phi(lo) < p \le \Phi(hi)`, 64 times. (erfc
    rather than :math:`1 + \operatorname{erf}` keeps the lower tail accurate.)

    Parameters
    ----------
    p : array_like
        Probabilities, strictly between 0 and 1.

    Returns
    -------
    ndarray, float64, shape of ``p``
        The quantiles.

    Examples
    --------
    >>> round(float(inverse_normal_cdf(0.975)), 6)
    1.959964
    """
    p = as_float_array("p", p)
    if np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"p: expected probabilities strictly between 0 and 1, got {p}")
    lo = np.full(p.shape, -BRACKET)
    hi = np.full(p.shape, BRACKET)
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        # Phi(mid) < p: the quantile lies above mid.
        below = 0.5 * _erfc(-mid / math.sqrt(2.0)) < p
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def equal_probability_grid(n):
    r"""``n`` values that cut N(0, 1) into equal-probability slices.

    :math:`z_i = \Phi^{-1}\big((i + \tfrac12) / n\big)`, :math:`i = 0 \dots n-1`:
    the middle of each of n slices holding probability 1/n. A grid uniform
    in z would waste tiles in the tails, where the prior has little mass.
    Only the lower half is solved for; the upper half is its mirror image,
    :math:`\Phi^{-1}(1 - p) = -\Phi^{-1}(p)`, so the grid is exactly
    symmetric and an odd n has exactly 0 in the middle.

    Examples
    --------
    >>> equal_probability_grid(3).round(4).tolist()
    [-0.9674, 0.0, 0.9674]
    """
    n = check_int("n", n)
    lower = inverse_normal_cdf((np.arange(n // 2) + 0.5) / n)  # (n // 2,)
    middle = [0.0] if n % 2 else []
    return np.concatenate([lower, middle, -lower[::-1]])  # (n,)
