"""Argument checks shared by every op.

Each check raises a ``ValueError`` that names the argument, says what was
expected and what was given, so a student who passes the wrong thing learns
*which* thing from the message alone::

    ValueError: logits: expected shape (128, 784) to match x, got (128, 783)

Every lecture op calls these at its own entry, one call per argument check:
a forward checks its arguments, a backward its upstream gradient (its cache
was made by a checked forward). An op's result is not checked: an overflow
shows as an infinite loss, which the training step refuses, every step
(:func:`scratchvae.lecture.training.train_step`). The engine's ops
(:mod:`scratchvae.engine`) call the same checks with ``finite=False``, which
look at shapes and dtypes, never at every value: a kernel must not read or
write past the end of an array, whatever it is given, but scanning each
activation for NaN would cost a tenth of a training step; the model checks
its data once at its entry instead.
"""

import numpy as np

__all__ = [
    "NonFiniteError",
    "as_float_array",
    "check_finite",
    "check_int",
    "check_rng",
    "check_same_shape",
    "check_shape",
    "check_unit_interval",
    "check_upstream",
]


def as_float_array(name, x, ndim=None, finite=True):
    """Return ``x`` as a float32 or float64 array, or raise a clear error.

    Integer and boolean input is converted to float64; float32 and float64 are
    kept as they are (the ops run in either precision).

    Parameters
    ----------
    name : str
        The argument's name, used in the error message.
    x : array_like
        The value to check.
    ndim : int or tuple of int, optional
        Allowed number(s) of dimensions.
    finite : bool
        Also check that every value is finite (a pass over the array; the
        engine's ops skip it).

    Returns
    -------
    ndarray
        ``x`` as a float32 or float64 array (not copied when already one).
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected a real-valued array, got dtype {x.dtype}")
        x = x.astype(np.float64)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(
                f"{name}: expected a {want}-dimensional array, got shape {x.shape}"
            )
    return check_finite(name, x) if finite else x


class NonFiniteError(ValueError):
    """A NaN or an infinity where a finite value was expected (training catches it: a divergence)."""


def check_finite(name, x):
    """Raise :class:`NonFiniteError` if ``x`` holds NaN or infinity; say where the first one is."""
    finite = np.isfinite(x)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise NonFiniteError(
            f"{name}: expected finite values, got {x[where]} at index {where} "
            f"({int((~finite).sum())} non-finite of {x.size})"
        )
    return x


def check_int(name, n, minimum=1):
    """Return ``n`` as an int, or raise unless it is an integer >= ``minimum``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n!r}")
    return int(n)


def check_rng(rng, name="rng"):
    """Raise unless ``rng`` is a ``numpy.random.Generator``: randomness is always passed in."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"{name}: expected a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_shape(name, x, shape):
    """Raise unless ``x.shape`` matches ``shape`` (``None`` matches any size)."""
    ok = x.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, x.shape)
    )
    if not ok:
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {x.shape}")
    return x


def check_same_shape(name, x, other_name, other):
    """Raise unless ``x`` has the same shape as ``other``."""
    if x.shape != other.shape:
        raise ValueError(
            f"{name}: expected shape {other.shape} to match {other_name}, got {x.shape}"
        )
    return x


def check_unit_interval(name, x):
    """Raise unless every value of ``x`` lies in [0, 1]."""
    outside = (x < 0) | (x > 1)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{name}: expected values in [0, 1], got {x[where]} at index {where}"
        )
    return x


def check_upstream(name, d, shape, dtype, finite=True):
    """An upstream gradient ``d`` of ``shape``, as a C-contiguous ``dtype`` array, or a clear error.

    Real-valued, of exactly ``shape`` and (unless not ``finite``) finite; cast
    to ``dtype``, the precision of the forward's output.
    """
    d = check_shape(name, as_float_array(name, d, finite=finite), shape)
    return np.ascontiguousarray(d, dtype=dtype)
