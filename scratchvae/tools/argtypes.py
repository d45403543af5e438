"""The argparse types of every command's numeric flags: a bad value fails with what was expected.

``scratchvae``'s own commands (:mod:`scratchvae.tools.cli`) and the classroom's
(:mod:`scratchvae.classroom.commands`) use the same ones, so a flag says "expected an
integer >= 1, got 0" the same way wherever it is given.
"""

import argparse
import math

__all__ = ["COUNT", "FRACTION", "NON_NEGATIVE", "POSITIVE", "POSITIVE_INT"]


def _number(kind, minimum, strict=False, maximum=None):
    """An argparse type: a finite ``kind(text)`` at least ``minimum`` (above it, if ``strict``),
    and at most ``maximum`` if given."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (value is None or not math.isfinite(value)
                or not (value > minimum if strict else value >= minimum)
                or (maximum is not None and value > maximum)):
            what = "an integer" if kind is int else "a finite number"
            expected = (f"a number in ({minimum}, {maximum}]" if maximum is not None
                        else f"{what} {'>' if strict else '>='} {minimum}")
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    return parse


POSITIVE_INT, COUNT, POSITIVE, NON_NEGATIVE = (
    _number(int, 1), _number(int, 0), _number(float, 0, strict=True), _number(float, 0))
FRACTION = _number(float, 0, strict=True, maximum=1)  # a factor or a share, in (0, 1]
