"""Argument checks shared by every op.

Each check raises a ``ValueError`` that names the argument, says what was
expected and what was given, so a student who passes the wrong thing learns
*which* thing from the message alone::

    ValueError: logits: expected shape (128, 784) to match x, got (128, 783)

Every lecture op calls these at its own entry: a forward checks its
arguments, a backward checks ``dout`` (its cache was made by a checked
forward). The engine's ops (:mod:`scratchvae.engine`) call only the cheap
ones, which look at shapes and dtypes, never at every value: a kernel must
not read or write past the end of an array, whatever it is given, but
scanning each activation for NaN would cost a tenth of a training step; the
model checks its data once at its entry instead, and training checks the loss.
"""

import numpy as np

__all__ = [
    "as_float_array",
    "check_finite",
    "check_int",
    "check_no_overflow",
    "check_out",
    "check_rng",
    "check_same_shape",
    "check_shape",
    "check_unit_interval",
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


def check_finite(name, x):
    """Raise if ``x`` holds NaN or infinity; say where the first one is."""
    finite = np.isfinite(x)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name}: expected finite values, got {x[where]} at index {where} "
            f"({int((~finite).sum())} non-finite of {x.size})"
        )
    return x


def check_no_overflow(out_name, out, **inputs):
    """Raise if finite inputs overflowed to inf or NaN in ``out``, giving the inputs' ranges."""
    if not np.isfinite(out).all():
        ranges = ", ".join(f"{n} in [{x.min():.4g}, {x.max():.4g}]" for n, x in inputs.items())
        raise ValueError(
            f"{out_name}: expected a finite result, got an overflow in {out.dtype} for "
            f"{ranges}; bring the inputs into range (or use float64)"
        )
    return out


def check_int(name, n, minimum=1):
    """Return ``n`` as an int, or raise unless it is an integer >= ``minimum``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n!r}")
    return int(n)


def check_out(name, out, shape, dtype):
    """Raise unless ``out`` is a C-contiguous array of ``shape`` and ``dtype`` to write a result into.

    A Numba kernel writing into a wrong-sized array would not stop at its
    end, so the engine checks every output array it is handed.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    ok = (isinstance(out, np.ndarray) and out.shape == shape and out.dtype == dtype
          and out.flags.c_contiguous)
    if not ok:
        got = (f"{out.dtype} array of shape {out.shape}" + ("" if out.flags.c_contiguous else
                                                             ", not C-contiguous")
               if isinstance(out, np.ndarray) else type(out).__name__)
        raise ValueError(f"{name}: expected a C-contiguous {dtype} array of shape {shape}, got {got}")
    return out


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
