"""Argument checks shared by every op.

Each check raises a ``ValueError`` that names the argument, says what was
expected and what was given, so a student who passes the wrong thing learns
*which* thing from the message alone::

    ValueError: logits: expected shape (128, 784) to match x, got (128, 783)

The ops call these at the top of every ``*_forward``; backward functions trust
their cache (it was made by a checked forward) and only check ``dout``'s shape.

Inside ``with skip_checks():`` the checks pass everything through unexamined.
The training loop uses that: it checks the data once, before the first step,
and the loss after every step, which any NaN or infinity reaching a forward
pass would make non-finite. Per step, the checks it skips would scan every
weight matrix and activation for NaN, about 0.25 s of a 3-s MNIST epoch.
"""

import contextlib
import contextvars

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
    "checks_enabled",
    "skip_checks",
]

_enabled = contextvars.ContextVar("scratchvae_checks", default=True)


def checks_enabled():
    """True unless inside :func:`skip_checks`."""
    return _enabled.get()


@contextlib.contextmanager
def skip_checks():
    """Let the ops trust their arguments for the duration of a ``with`` block.

    For loops whose inputs are known good (see the module docstring); errors
    that are not about argument values, such as a wrong number of arguments,
    still raise.
    """
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)


def as_float_array(name, x, ndim=None):
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

    Returns
    -------
    ndarray
        ``x`` as a float32 or float64 array (not copied when already one).
    """
    x = np.asarray(x)
    if not _enabled.get() and x.dtype in (np.float32, np.float64):
        return x
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
    return check_finite(name, x)


def check_finite(name, x):
    """Raise if ``x`` holds NaN or infinity; say where the first one is."""
    if not _enabled.get():
        return x
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
    if _enabled.get() and not np.isfinite(out).all():
        ranges = ", ".join(f"{n} in [{x.min():.4g}, {x.max():.4g}]" for n, x in inputs.items())
        raise ValueError(
            f"{out_name}: expected a finite result, got an overflow in {out.dtype} for "
            f"{ranges}; bring the inputs into range (or use float64)"
        )
    return out


def check_int(name, n, minimum=1):
    """Return ``n`` as an int, or raise unless it is an integer >= ``minimum``.

    Counts and sizes are checked always, even inside :func:`skip_checks`:
    they are single numbers, not arrays to scan.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {n!r}")
    return int(n)


def check_out(name, out, shape, dtype):
    """Raise unless ``out`` is a C-contiguous array of ``shape`` and ``dtype`` to write a result into.

    Checked always, even inside :func:`skip_checks`: it looks at the array's
    header, not its values, and a Numba kernel writing into a wrong-sized
    array would not stop at its end.
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
    if not _enabled.get():
        return x
    ok = x.ndim == len(shape) and all(
        want is None or want == got for want, got in zip(shape, x.shape)
    )
    if not ok:
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {x.shape}")
    return x


def check_same_shape(name, x, other_name, other):
    """Raise unless ``x`` has the same shape as ``other``."""
    if _enabled.get() and x.shape != other.shape:
        raise ValueError(
            f"{name}: expected shape {other.shape} to match {other_name}, got {x.shape}"
        )
    return x


def check_unit_interval(name, x):
    """Raise unless every value of ``x`` lies in [0, 1]."""
    if not _enabled.get():
        return x
    outside = (x < 0) | (x > 1)
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{name}: expected values in [0, 1], got {x[where]} at index {where}"
        )
    return x
