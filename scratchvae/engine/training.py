"""Binarisation, fast: the minibatch's rows read in place, random bits compared in one kernel pass.

Same name, signature and result as :func:`scratchvae.lecture.training.binarize`,
bit for bit (``tests/test_engine.py``); read the lecture for the maths. The
kernel reads the rows of the training set in place instead of copying them
out, and compares the 16-bit integers in float32, which vectorises. ``x`` is
checked for shape and dtype, ``rows`` for bounds (O(B): the kernel does not
check them), but the values of ``x`` are not scanned: that would cost a pass
over the whole training set per minibatch. Check them once (``fit`` does).
"""

import numpy as np

from scratchvae.engine.kernels import bernoulli_from_bits
from scratchvae.lecture.training import check_rows
from scratchvae.lecture.validate import as_float_array, check_rng

__all__ = ["binarize"]


def binarize(x, rng, rows=None):
    """:func:`scratchvae.lecture.training.binarize`, as one kernel pass.

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
    bits = rng.bit_generator.random_raw((out.size + 3) // 4)  # (ceil(B D / 4),) uint64
    bernoulli_from_bits(table, rows, bits, out.reshape(len(rows), table.shape[1]))
    return out
