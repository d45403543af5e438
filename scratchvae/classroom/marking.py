"""The checker: how a student's forward/backward pair is marked, check by check.

:class:`Exercise` says what to mark; the exercises themselves (the list, the
starter file, :func:`scratchvae.classroom.exercises.check` and the command) are in
scratchvae/classroom/exercises.py. Each check is worth one point:

* forward: values -- agrees with the reference on seeded random float64 inputs;
* forward: maths -- a property that needs no reference: the moments of a sample,
  a closed form against Monte Carlo;
* extreme inputs -- forward and backward stay finite and right (logits of +-1e4);
* backward: values -- on the student's own cache, agrees with the reference;
* gradient check, your forward -- the backward is the derivative of the
  student's forward (:func:`scratchvae.lecture.gradcheck.check_op`);
* gradient check, reference forward -- ... and of the reference forward.

A pair that is wrong in the same way twice (the variance used as the scale in
the forward and in its derivative) passes the first gradient check; the
values, the maths and the second gradient check catch it.
:func:`mark` runs the checks of one exercise on a student's module and gives
an :class:`Outcome` per check; :class:`Report` gathers them into a table.
Guide: docs/exercises.md
"""

import importlib.util
import itertools
import sys
import traceback
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from scratchvae.lecture.gaussian import gaussian_log_density_forward, reparameterize_forward
from scratchvae.lecture.gradcheck import FLOOR, check_op, relative_error

__all__ = ["CheckFailed", "Exercise", "Outcome", "Report", "checks_for", "kl_monte_carlo",
           "load", "mark", "reparameterize_moments"]

SEED = 20240601  # every check draws from its own generator, seeded by (SEED, exercise, check)
# A student's value passes if its relative error to the reference's is at most this:
# loose enough for any sound way of writing a formula, far too tight for a wrong one.
AGREEMENT = 1e-6
SAMPLES = 20000  # draws for the moment and Monte Carlo checks
SIGMAS = 5  # how many standard errors a sample statistic may stray from its expectation
PASS, FAIL, NOT_ATTEMPTED = "pass", "FAIL", "not attempted"


class CheckFailed(Exception):
    """A check's verdict, with a message saying where and what."""


# --- Checks -----------------------------------------------------------------------


class Exercise(NamedTuple):
    """One exercise: an op of the package, the functions the student writes, and how to mark them.

    ``inputs(rng)`` and ``extremes()`` return the forward's arguments by name
    (float64); ``hints`` maps an output or input name (and ``"extreme"``) to a
    sentence added when it is wrong; ``tasks`` maps each function the student
    writes to ``(argument list, task)`` for the starter file.
    """

    name: str
    title: str
    forward: str
    backward: str
    writes: tuple
    reference: tuple  # (forward, backward), the package's
    output: str  # the forward's output, e.g. "kl"
    inputs: Callable
    wrt: tuple  # the inputs the backward returns gradients for, in order
    tasks: dict
    hints: dict
    extremes: Optional[Callable] = None
    maths: Optional[tuple] = None  # (title, check function)


def _array(what, value, shape, hint=None):
    """``value`` as a float64 array of ``shape``, or CheckFailed saying what is wrong."""
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected an array, got {type(value).__name__}") from None
    if value.shape != tuple(shape):
        turned = " (transposed?)" if value.shape == tuple(shape)[::-1] else ""
        message = f"{what}: expected shape {tuple(shape)}, got {value.shape}{turned}"
        raise CheckFailed(_hinted(message, [hint]))
    return value


def _pair(ex, result):
    """The student's forward result as ``(out, cache)``, or CheckFailed."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{ex.forward} must return a pair (out, cache), "
                          f"got {type(result).__name__}")
    return result


def _gradients(ex, grads, inputs):
    """The student's backward result as a tuple of arrays shaped like the inputs in ``wrt``."""
    returned = grads
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) != len(ex.wrt) or returned is None:
        got = (f"{len(grads)} gradients" if isinstance(returned, (tuple, list))
               else "None" if returned is None else f"one {type(returned).__name__}")
        raise CheckFailed(f"{ex.backward} returned {got}, expected "
                          f"{len(ex.wrt)}: {', '.join('d' + n for n in ex.wrt)}")
    return tuple(_array(f"d{n}", g, inputs[n].shape, ex.hints.get(n))
                 for n, g in zip(ex.wrt, grads))


def _copies(inputs):
    return [np.array(v, dtype=np.float64) for v in inputs.values()]


def _difference(what, expected, got, inputs):
    """None if ``got`` agrees with ``expected``; else where and how it does not."""
    with np.errstate(invalid="ignore"):
        wrong = ~(relative_error(got, expected) <= AGREEMENT)  # NaN and inf count as wrong
    if not wrong.any():
        return None
    i = tuple(int(k) for k in np.argwhere(wrong)[0])
    message = f"{what}, element {i}: expected {expected[i]:.10g}, got {got[i]:.10g}"
    if wrong.size > 1:
        message += f" ({wrong.sum()} of {wrong.size} elements wrong)"
    shown = np.abs(expected) > FLOOR
    ratio = got[shown] / expected[shown]
    if ratio.size and np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-6 * abs(ratio[0]):
        message += f"; every element is {ratio[0]:.6g} times the expected value"
    where = [f"{n} = {v[i]:.6g}" for n, v in inputs.items() if v.shape == expected.shape and v.ndim]
    where += [f"row {i[0]} of {n} in [{v[i[0]].min():.6g}, {v[i[0]].max():.6g}]"
              for n, v in inputs.items() if expected.ndim == 1 and v.shape[:1] == expected.shape
              and v.ndim == 2]
    return message + (f" (where {', '.join(where)})" if where else "")


def _hinted(message, hints):
    """``message``, then each distinct hint once."""
    hints = list(dict.fromkeys(h for h in hints if h))
    return message + (f". Hint: {'; '.join(hints)}" if hints else "")


def _verdict(differences, hints):
    """Raise CheckFailed listing every difference, with the hints for the names that differ."""
    found = [(name, d) for name, d in differences if d is not None]
    if found:
        raise CheckFailed(_hinted("; ".join(d for _, d in found), [hints.get(n) for n, _ in found]))


def _forward_agrees(ex, forward, inputs, hints):
    expected = np.asarray(ex.reference[0](*_copies(inputs))[0], dtype=np.float64)
    got = _array(ex.output, _pair(ex, forward(*_copies(inputs)))[0], expected.shape,
                 hints.get(ex.output))
    _verdict([(ex.output, _difference(ex.output, expected, got, inputs))], hints)


def _backward_agrees(ex, forward, backward, inputs, rng, hints):
    out, cache = ex.reference[0](*_copies(inputs))
    dout = rng.standard_normal(np.shape(out))
    expected = ex.reference[1](dout, cache)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = _gradients(ex, backward(dout.copy(), _pair(ex, forward(*_copies(inputs)))[1]), inputs)
    _verdict([(n, _difference(f"d{n}", np.asarray(e, dtype=np.float64), g, inputs))
              for n, e, g in zip(ex.wrt, expected, got)], hints)


def _forward_values(ex, forward, backward, rng):
    _forward_agrees(ex, forward, ex.inputs(rng), ex.hints)
    return f"{ex.output} agrees with the reference"


def _backward_values(ex, forward, backward, rng):
    _backward_agrees(ex, forward, backward, ex.inputs(rng), rng, ex.hints)
    return "every gradient agrees with the reference"


def _extreme_inputs(ex, forward, backward, rng):
    extreme = {name: ex.hints["extreme"] for name in (ex.output, *ex.wrt)}
    for agrees in (partial(_forward_agrees, ex, forward),
                   partial(_backward_agrees, ex, forward, backward, rng=rng)):
        try:
            agrees(inputs=ex.extremes(), hints=extreme)
        except CheckFailed:
            try:  # wrong on ordinary inputs too? Then extremes are not the problem.
                agrees(inputs=ex.inputs(rng), hints=ex.hints)
            except CheckFailed as everywhere:
                raise CheckFailed(f"wrong on ordinary inputs too: {everywhere}") from None
            raise
    return "forward and backward finite and right at extreme inputs"


def _gradient_check(ex, forward, backward, rng, against_reference):
    """check_op on the student's backward, with the student's or the reference's forward values."""
    inputs = ex.inputs(rng)

    def combined(*args):
        out, cache = _pair(ex, forward(*args))
        return (ex.reference[0](*args)[0] if against_reference else out), cache

    def student_backward(dout, cache):
        return _gradients(ex, backward(dout, cache), inputs)

    results = check_op(combined, student_backward, inputs, wrt=ex.wrt, rng=rng)
    _verdict([(r.name, None if r.passed else r.message()) for r in results], ex.hints)
    return f"largest relative error {max(r.max_rel_error for r in results):.1e}"


def _gradient_check_reference(ex, forward, backward, rng):
    try:
        return _gradient_check(ex, forward, backward, rng, against_reference=True)
    except CheckFailed as failure:
        own = np.random.default_rng(rng.integers(2**32))
        try:
            _gradient_check(ex, forward, backward, own, against_reference=False)
        except CheckFailed:
            raise failure from None
        raise CheckFailed(f"{failure}. Your backward does match your own forward: the forward "
                          "is what is wrong, and the backward is its faithful derivative") from None


def reparameterize_moments(ex, forward, backward, rng):
    """Sample mean and variance of z = forward(mu, log_var, eps) against mu and exp(log_var)."""
    mu, log_var = np.array([0.5, -1.0, 2.0]), np.array([1.0, -1.5, 0.6])  # (3,) each
    eps = rng.standard_normal((SAMPLES, 3))
    z = _pair(ex, forward(np.tile(mu, (SAMPLES, 1)), np.tile(log_var, (SAMPLES, 1)), eps))[0]
    z = _array("z", z, (SAMPLES, 3))  # (S, 3)
    variance = np.exp(log_var)
    # standard errors: sigma / sqrt(S) for a mean, variance * sqrt(2 / (S - 1)) for a variance
    off = np.abs(z.mean(axis=0) - mu) / np.sqrt(variance / SAMPLES)
    if off.max() > SIGMAS:
        j = int(np.argmax(off))
        raise CheckFailed(f"coordinate {j}: the mean of {SAMPLES} samples of z is "
                          f"{z[:, j].mean():.4f}, expected mu = {mu[j]}")
    sample_variance = z.var(axis=0, ddof=1)
    spread = np.sqrt(2 / (SAMPLES - 1))
    off = np.abs(sample_variance - variance) / (variance * spread)
    if off.max() > SIGMAS:
        j = int(np.argmax(off))
        message = (f"coordinate {j}: the variance of {SAMPLES} samples of z is "
                   f"{sample_variance[j]:.4f}, expected exp(log_var) = {variance[j]:.4f}")
        if np.all(np.abs(sample_variance / variance**2 - 1) <= SIGMAS * spread):
            message += (", and it is exp(2 log_var): eps was scaled by the variance exp(log_var); "
                        "the scale is the standard deviation exp(log_var / 2)")
        raise CheckFailed(message)
    return f"mean and variance of {SAMPLES} samples within {SIGMAS} standard errors"


def kl_monte_carlo(ex, forward, backward, rng):
    """The closed form against the average of log q(z) - log p(z) over samples z ~ q."""
    mu = rng.standard_normal((3, 2))  # (3, 2)
    log_var = rng.choice([-1.0, 1.0], (3, 2)) * rng.uniform(0.3, 1.0, (3, 2))  # (3, 2)
    kl = _array("kl", _pair(ex, forward(mu.copy(), log_var.copy()))[0], (3,), ex.hints["kl"])
    mu_s = np.repeat(mu, SAMPLES, axis=0)  # (3 S, 2): row b repeated S times
    log_var_s = np.repeat(log_var, SAMPLES, axis=0)  # (3 S, 2)
    z = reparameterize_forward(mu_s, log_var_s, rng.standard_normal(mu_s.shape))[0]  # (3 S, 2)
    zero = np.zeros_like(z)
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated by the mean over S samples per row
    log_ratio = (gaussian_log_density_forward(z, mu_s, log_var_s)[0]
                 - gaussian_log_density_forward(z, zero, zero)[0]).reshape(3, SAMPLES)  # (3, S)
    estimate = log_ratio.mean(axis=1)  # (3,)
    error = log_ratio.std(axis=1, ddof=1) / np.sqrt(SAMPLES)  # (3,)
    off = np.abs(kl - estimate) / error
    if not off.max() <= SIGMAS:  # NaN fails too
        b = int(np.nanargmax(np.where(np.isnan(off), np.inf, off)))
        raise CheckFailed(f"row {b}: your KL is {kl[b]:.6g}, but the mean of log q(z) - log p(z) "
                          f"over {SAMPLES} samples z ~ q is {estimate[b]:.6g} +- {error[b]:.2g} "
                          f"(yours is {kl[b] / estimate[b]:.3g} times that). "
                          f"Hint: {ex.hints['kl']}")
    return f"within {SIGMAS} standard errors of a Monte Carlo estimate from {SAMPLES} samples"


# --- Marking ----------------------------------------------------------------------


class Outcome(NamedTuple):
    """One check's mark."""

    exercise: str
    check: str
    status: str  # "pass", "FAIL" or "not attempted"
    points: int  # 1 for a pass, else 0
    message: str


class Report(NamedTuple):
    """Every check's outcome, in order, for one student's file."""

    source: str
    outcomes: tuple
    error: str = ""  # why the file could not be loaded, if it could not

    @property
    def score(self):
        return sum(o.points for o in self.outcomes)

    @property
    def total(self):
        return len(self.outcomes)

    @property
    def passed(self):
        return self.score == self.total

    def table(self):
        """The marks as a text table, one line per check, the failures explained below it."""
        lines = [f"Marking {self.source}: {self.score} of {self.total} points"]
        if self.error:
            lines.append(f"The file could not be loaded: {self.error}")
        rows = []
        for name, group in itertools.groupby(self.outcomes, key=lambda o: o.exercise):
            group = list(group)
            if {(o.status, o.message) for o in group} == {(NOT_ATTEMPTED, group[0].message)}:
                rows.append((name, f"({len(group)} checks)", f"0/{len(group)}",
                             f"not attempted: {group[0].message}"))
                continue
            rows += [(name, o.check, f"{o.points}/1",
                      o.status + (f": {o.message}" if o.status == NOT_ATTEMPTED else ""))
                     for o in group]
        widths = [max(len(row[k]) for row in rows + [("exercise", "check")]) for k in (0, 1)]
        lines += ["", f"{'exercise':<{widths[0]}}  {'check':<{widths[1]}}  points  result"]
        lines += [f"{e:<{widths[0]}}  {c:<{widths[1]}}  {p:>6}  {r}" for e, c, p, r in rows]
        lines.append(f"{'total':<{widths[0] + widths[1] + 2}}  {f'{self.score}/{self.total}':>6}")
        failed = [o for o in self.outcomes if o.status == FAIL]
        if failed:
            lines += ["", "What went wrong:"]
            lines += [f"- {o.exercise}, {o.check}: {o.message}" for o in failed]
        return "\n".join(lines)


def checks_for(ex):
    """``(title, function, needs the backward)`` for each check of ``ex``, in marking order."""
    own_forward = ex.forward in ex.writes
    checks = [("forward: values", _forward_values, False)] if own_forward else []
    if ex.maths is not None:
        checks.append((f"forward: {ex.maths[0]}", ex.maths[1], False))
    if ex.extremes is not None:
        checks.append(("extreme inputs", _extreme_inputs, True))
    checks.append(("backward: values", _backward_values, True))
    if own_forward:
        checks += [("gradient check, your forward",
                    partial(_gradient_check, against_reference=False), True),
                   ("gradient check, reference forward", _gradient_check_reference, True)]
    else:
        checks.append(("gradient check", partial(_gradient_check, against_reference=False), True))
    return checks


def _student_frame(err, student_files):
    """The deepest frame of ``err``'s traceback in the student's code, or None."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename in student_files]
    return frames[-1] if frames else None


def _summary(err, student_files):
    """One line: what was raised, and where in the student's code if it came from there."""
    what = f"{type(err).__name__}: {str(err).strip()}"
    f = _student_frame(err, student_files)
    if f is None:
        return f"the checker could not use your result: {what}"
    return f"{f.name} raised {what} ({Path(f.filename).name}, line {f.lineno}: {f.line})"


def _run(ex, title, run, forward, backward, rng, student_files):
    """One check's Outcome; whatever the student's code raises becomes its message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return Outcome(ex.name, title, PASS, 1, run(ex, forward, backward, rng))
        except NotImplementedError as err:
            f = _student_frame(err, student_files)
            name = f.name if f else "a function"
            return Outcome(ex.name, title, NOT_ATTEMPTED, 0, f"{name} raises NotImplementedError")
        except CheckFailed as failure:
            message = str(failure)
        except (Exception, SystemExit) as err:  # the student's code raised: summarise
            message = _summary(err, student_files)
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    if warned:
        message += f" (NumPy warned: {'; '.join(warned[:2])})"
    return Outcome(ex.name, title, FAIL, 0, message)


def mark(ex, index, module):
    """The outcome of each check of ``ex`` on the functions of ``module``.

    ``index`` is the exercise's place in the course: check ``number`` of it
    draws from a generator seeded by ``(SEED, index, number)``, so marks repeat.
    """
    found = {name: getattr(module, name, None) for name in ex.writes}
    absent = {name: f"{name} is not defined" if f is None else f"{name} is not a function"
              for name, f in found.items() if not callable(f)}
    given = dict(zip((ex.forward, ex.backward), ex.reference))
    forward, backward = (found.get(n) or given[n] for n in (ex.forward, ex.backward))
    student_files = {getattr(module, "__file__", None)} | {
        f.__code__.co_filename for f in found.values() if hasattr(f, "__code__")}
    outcomes = []
    for number, (title, run, needs_backward) in enumerate(checks_for(ex)):
        needed = (ex.forward, ex.backward) if needs_backward else (ex.forward,)
        missing = [absent[n] for n in needed if n in absent]
        if missing:
            outcomes.append(Outcome(ex.name, title, NOT_ATTEMPTED, 0, missing[0]))
        else:
            rng = np.random.default_rng([SEED, index, number])
            outcomes.append(_run(ex, title, run, forward, backward, rng, student_files))
    return outcomes


def load(path):
    """Import the student's file as a fresh module: ``(module, "")``, or ``(None, why not)``."""
    name = f"scratchvae_student_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as an import would (a @dataclass looks itself up there).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        return None, f"SyntaxError: {err.msg} (line {err.lineno}: {(err.text or '').strip()})"
    except (Exception, SystemExit) as err:
        return None, _summary(err, {str(path)})
    finally:
        del sys.modules[name]
    return module, ""
