"""Binarisation, fast: 16 random bits a pixel, the minibatch's rows read in place, one kernel pass.

Same name and signature as :func:`scratchvae.lecture.training.binarize`, and
the same distribution to 2^-17, not the same bits; read the lecture for the
maths. Instead of a float64 uniform per pixel, each pixel gets 16 random bits,
four pixels to a raw 64-bit word of the generator (a third of the cost), and
compares them with x in :func:`scratchvae.engine.kernels.bernoulli_from_bits`,
so P(x_bin = 1) is 2^16 x rounded, over 2^16 (``tests/test_engine.py`` checks it
exactly). The kernel reads the rows of the training set in place instead of
copying them out, and compares in float32, which vectorises. ``x`` is checked
for shape and dtype, ``rows`` for bounds (O(B): the kernel does not check
them), but the values of ``x`` are not scanned: that would cost a pass over the
whole training set per minibatch. Check them once (``fit`` does).

Every published training run draws its pixels this way: changing which bits a
pixel uses would change them all (``tests/test_training.py`` pins it).
"""

import numpy as np

from scratchvae.engine.kernels import bernoulli_from_bits, random_bits
from scratchvae.lecture.training import check_rows
from scratchvae.lecture.validate import as_float_array, check_rng

__all__ = ["binarize"]


def binarize(x, rng, rows=None):
    """:func:`scratchvae.lecture.training.binarize`, from 16 random bits a pixel, as one kernel pass.

    Derivation: docs/data.md#dynamic-binarisation
    """
    check_rng(rng)
    x = np.ascontiguousarray(as_float_array("x", x, finite=False))
    if rows is None:
        # All of x as the one row of a table (a view when x is contiguous).
        table, rows = x.reshape(1, -1), np.zeros(1, dtype=np.intp)  # (1, x.size), (1,)
        shape = x.shape
    else:
        table, rows = x, check_rows(rows, x)  # (N, D), (B,)
        shape = (len(rows), x.shape[1])
    out = np.empty(shape, dtype=np.float32)
    bits = random_bits(rng, out.size)  # (ceil(B D / 4),) uint64
    bernoulli_from_bits(table, rows, bits, out.reshape(len(rows), table.shape[1]))
    return out
