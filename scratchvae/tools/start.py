"""The ``scratchvae`` command's entry point: set the floating-point mode, then run the command.

An x86 processor computes with a subnormal number (a float32 below 1.2e-38 in
magnitude) in microcode, tens of times slower than with a normal one. As a
long run goes on, the decoder's output gradient x - p holds tiny values for
the pixels that are always empty, and their products inside BLAS's backward
fall into the subnormal range: the epoch of the one-hour recipe grew from
3.4 s to 5.7 s (docs/optim.md#subnormals). Two bits of the MXCSR
register remove that: flush-to-zero (FTZ, a subnormal result becomes 0) and
denormals-are-zero (DAZ, a subnormal input is read as 0). Each thread has its
own MXCSR, and a new thread copies its creator's; BLAS starts its threads
when NumPy is imported. So the bits are set here, in the main thread, before
anything imports NumPy (this module imports only the standard library until
the command runs), and every thread of BLAS inherits them.

This is the one place the mode is set. ``scratchvae --ieee-subnormals ...``,
or ``SCRATCHVAE_IEEE_SUBNORMALS=1``, keeps IEEE behaviour. Importing
scratchvae as a library (the lessons, the tests, ``cli.main()`` called in a
process) changes nothing: the lecture, its gradient checks and the tests of
extreme values keep IEEE arithmetic. On a processor that is not x86-64, or
without glibc's ``fesetenv``, nothing is changed and nothing breaks.
"""

import os
import platform
import sys

__all__ = ["IEEE_FLAG", "IEEE_VARIABLE", "main", "set_flush_to_zero", "subnormals"]

IEEE_FLAG = "--ieee-subnormals"
IEEE_VARIABLE = "SCRATCHVAE_IEEE_SUBNORMALS"
FTZ, DAZ = 1 << 15, 1 << 6  # MXCSR bits 15 and 6
DEFAULT_MXCSR = 0x1F80  # every exception masked, round to nearest, FTZ and DAZ off


def set_flush_to_zero():
    """Set FTZ and DAZ in this thread's MXCSR, through glibc's fegetenv and fesetenv.

    Returns
    -------
    bool
        True if the bits are now set; False (and nothing changed) where the
        processor is not x86-64, libm cannot be loaded, or the environment
        does not look like glibc's x86-64 ``fenv_t``.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    import ctypes

    try:
        libm = ctypes.CDLL("libm.so.6")
    except OSError:
        return False
    # glibc's x86-64 fenv_t is 32 bytes: the x87 environment (28 bytes), then the MXCSR.
    env = (ctypes.c_uint32 * 8)()
    if libm.fegetenv(env) != 0 or env[7] & ~0xFFFF or env[7] & 0x3F80 != DEFAULT_MXCSR & 0x3F80:
        return False  # not the layout (or not the state) this code expects: leave it alone
    env[7] |= FTZ | DAZ
    return libm.fesetenv(env) == 0


def main(argv=None):
    """``scratchvae``: flush-to-zero on (unless ``--ieee-subnormals`` comes first), then the command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not (argv[:1] == [IEEE_FLAG] or os.environ.get(IEEE_VARIABLE) == "1"):
        set_flush_to_zero()
    from scratchvae.tools.cli import main as command  # imports NumPy: after the mode is set

    return command(argv)


if __name__ == "__main__":
    sys.exit(main())


def subnormals():
    """How this process's arithmetic treats subnormal results, measured inside BLAS.

    A float32 product whose every term and every sum is subnormal (256 terms of
    1e-22 x 1e-22, a sum near 2.5e-42), on a matrix large enough for BLAS to
    share it among its threads: with FTZ set in every thread each element
    comes back 0, in IEEE arithmetic none does.

    Returns
    -------
    str
        "flush-to-zero", "IEEE", or "mixed" (some of BLAS's threads flush and some do not).
    """
    import numpy as np

    a = np.full((512, 256), 1e-22, dtype=np.float32)
    product = a @ a.T  # (512, 512), each element a sum of 256 subnormal terms
    if not product.any():
        return "flush-to-zero"
    return "IEEE" if product.all() else "mixed"
