"""The one-time notice for Numba's cold cache, whose first training step takes seconds.

* :func:`kernels_compiled` -- whether Numba's cache already holds the kernels;
* :func:`notice_compiling` -- the notice, written on stderr only for a cold cache.
"""

import sys

__all__ = ["COMPILE_NOTICE", "kernels_compiled", "notice_compiling"]

COMPILE_NOTICE = "compiling Numba kernels (first run only, ~5 s)..."


def kernels_compiled():
    """Whether Numba's cache holds compiled kernels of this scratchvae, fresh.

    Numba keeps one index file per kernel; it is stale once ``kernels.py`` or
    Numba changes. On a fresh install, after such a change, or with an empty
    ``NUMBA_CACHE_DIR``, no kernel has a fresh index and the first training
    step compiles them all (4-7 s). True when any kernel has one, and when
    Numba is off (``NUMBA_DISABLE_JIT=1``: nothing to compile).

    Returns
    -------
    bool

    Examples
    --------
    >>> kernels_compiled() in (True, False)
    True
    """
    from numba.core.registry import CPUDispatcher

    from scratchvae.engine import kernels

    dispatchers = [f for f in vars(kernels).values() if isinstance(f, CPUDispatcher)]
    try:
        # Numba's own test of a cache file: an empty index when absent or stale.
        return not dispatchers or any(f._cache._cache_file._load_index() for f in dispatchers)
    except (AttributeError, OSError):  # another Numba's internals: say nothing rather than guess
        return True


def notice_compiling(stream=None):
    """Write :data:`COMPILE_NOTICE` on a line of its own if the kernels must be compiled first.

    Returns
    -------
    bool
        Whether the notice was written.
    """
    if kernels_compiled():
        return False
    print(COMPILE_NOTICE, file=sys.stderr if stream is None else stream, flush=True)
    return True
