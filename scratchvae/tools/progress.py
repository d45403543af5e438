"""Progress on stderr for every wait longer than a few seconds, in one place.

On a terminal, a stage shows a bar rewritten in place (drawn by tqdm): how far
it got, the rate, and the time left; the bar is erased when the stage ends.
Elsewhere (a log file, CI) a bar would fill the log with carriage returns, so a
stage writes one plain line as it starts instead, saying what it does and how
much of it there is.

:class:`Progress` is one stage: the steps of an epoch, the log-likelihood
estimate, a benchmark round, a download. The notice for Numba's cold cache is
:mod:`scratchvae.tools.compiling` (the engine's alone: this module ships in a
handout's tools, which have no engine).

Examples
--------
>>> with Progress(3, "counting", unit="step") as bar:
...     for _ in range(3):
...         bar.update()
"""

import sys

from tqdm import tqdm

__all__ = ["Progress"]

# Seconds between redraws: often enough to look alive, rarely enough to cost nothing.
REDRAW_SECONDS = 0.5


class Progress:
    """One stage of work, ``total`` units long, reported on stderr while it runs.

    Use it as a context manager, so the bar is erased however the stage ends
    (an interruption included). ``update`` is cheap (under a microsecond), so
    it can be called on every training step.

    Parameters
    ----------
    total : int
        Units of work in the stage.
    desc : str
        What the stage does, e.g. ``"epoch 3/10"``.
    unit : str
        What is counted, in the singular: ``"step"``, ``"image"``, ``"B"``.
    announce : bool
        Off a terminal, write the line ``"<desc>: <total> <unit>s..."`` as the
        stage starts. False for a stage whose caller prints its own line when
        it ends (an epoch).
    unit_scale : bool
        Show counts with k, M, G prefixes (for bytes).
    enabled : bool
        False: write nothing at all.
    stream : file, optional
        Where to write; default ``sys.stderr``.

    Examples
    --------
    >>> with Progress(10000, "log-likelihood estimate, k=500", unit="image") as bar:
    ...     bar.advance_to(2500)
    ...     bar.set_postfix("a quarter done")
    """

    def __init__(self, total, desc, unit="it", announce=True, unit_scale=False, enabled=True,
                 stream=None):
        stream = sys.stderr if stream is None else stream
        on_terminal = enabled and stream.isatty()
        if enabled and announce and not on_terminal:
            amount = (tqdm.format_sizeof(total, unit) if unit_scale
                      else f"{total} {unit}{'s' * (total != 1)}")
            print(f"{desc}: {amount}...", file=stream, flush=True)
        self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=stream,
                         disable=not on_terminal, leave=False, mininterval=REDRAW_SECONDS,
                         dynamic_ncols=True)

    def update(self, n=1):
        """Count ``n`` more units done."""
        self._bar.update(n)

    def advance_to(self, done):
        """Set the count of units done to ``done`` (for callers that report totals)."""
        self._bar.update(done - self._bar.n)

    def set_postfix(self, text):
        """Show ``text`` after the bar from its next redraw, e.g. the running loss."""
        self._bar.set_postfix_str(text, refresh=False)

    def close(self):
        """Erase the bar (on a terminal)."""
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
