"""Judging: a task's checks, each comparing a child's report with the reference's.

Nothing here runs a student's code: :mod:`scratchvae.classroom.probes` ran it
and reported, section by section. A check (``judge(task, student, reference,
case)``) reads those reports and either returns a message or raises
:class:`CheckFailed`; :func:`judge_task` turns a task's checks into
:class:`Outcome` rows, one point each, and :func:`shows_bug` says whether a
report shows a classic bug of the museum. A ``task`` here is anything with a
``name``, a ``probe``, ``options`` and ``given_forward``
(:class:`scratchvae.classroom.tasks.Task`, or the one stored with a handout's
reference values). Used by the marker (:mod:`scratchvae.classroom.mark`) and by
the student's self-check (:mod:`scratchvae.classroom.selfcheck`): this file
imports nothing but NumPy and its sibling probes, so it ships in the handout.
Guide: docs/exercises.md#how-marking-works
"""

from typing import NamedTuple

import numpy as np

from . import probes

__all__ = ["AGREEMENT", "PASS", "FAIL", "NOT_ATTEMPTED", "TIMED_OUT", "CRASHED", "CheckFailed", "Outcome",
           "checks_for", "judge_task", "shows_bug", "exhibit_text", "relative_error", "slope"]

AGREEMENT = 1e-6  # relative error to the reference that still passes a value
PASS, FAIL, NOT_ATTEMPTED, TIMED_OUT, CRASHED = "pass", "FAIL", "not attempted", "timed out", "crashed"
SIGMAS = 5  # standard errors a sample statistic may stray from its expectation
SAMPLES = 20000  # draws for a moment test or a Monte Carlo estimate (tasks.py draws its own with it)
# The gradient check's numbers, scratchvae.lecture.gradcheck's (a test holds them equal):
TOLERANCE = 1e-7  # relative error between a backward and central differences that passes
FLOOR = 1e-8  # gradients smaller than this are compared in absolute terms
FORWARD_SECTIONS = ("forward", "extreme_forward", "maths")  # what an op's forward reports
# Sections that report how the code stores its numbers, not the maths: no museum exhibit is
# recognised on them (a transposed dW is named whether or not its gradients are cast).
NOT_MATHS = ("dtypes",)


def relative_error(analytic, numerical):
    """Element-wise |a - n| / max(|a| + |n|, FLOOR): absolute where both are below FLOOR."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    return np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), FLOOR)


def slope(values, h):
    """The fourth-order central difference from f at x - 2h, x - h, x + h, x + 2h, stacked on axis 0
    (probes.STENCIL): differences first, so an output the step does not move has slope exactly 0."""
    outer, inner = values[3] - values[0], values[2] - values[1]
    return (8 * inner - outer) / (12 * h)


class CheckFailed(Exception):
    """A check's verdict, with a message saying where and what."""


class Outcome(NamedTuple):
    """One check's mark."""

    task: str
    check: str
    status: str  # PASS, FAIL, NOT_ATTEMPTED, TIMED_OUT or CRASHED
    message: str

    @property
    def points(self):
        return int(self.status == PASS)


# --- Comparing reports --------------------------------------------------------------


def _difference(what, expected, got, tolerance=AGREEMENT):
    """None if ``got`` agrees with ``expected``; else where and how it does not."""
    if got.shape != expected.shape:
        turned = " (transposed?)" if got.shape == expected.shape[::-1] else ""
        return f"{what}: expected shape {expected.shape}, got {got.shape}{turned}"
    with np.errstate(invalid="ignore"):
        wrong = ~(relative_error(got, expected) <= tolerance)  # NaN and inf count as wrong
    if not wrong.any():
        return None
    i = tuple(int(k) for k in np.argwhere(wrong)[0])
    message = f"{what}, element {i}: expected {expected[i]:.10g}, got {got[i]:.10g}"
    if wrong.size > 1:
        message += f" ({wrong.sum()} of {wrong.size} elements wrong)"
    return message + _pattern(expected, got, wrong)


def _pattern(expected, got, wrong):
    """What a wrong array has in common throughout: all zeros, the opposite sign, a constant factor.

    A factor is named only when every ``wrong`` element's expected value is above FLOOR: a wrong
    element expected to be zero is no multiple of it, and would be left out of the ratios.
    """
    if got.size > 1 and not np.any(got):
        return "; every element is zero"
    if np.any(np.abs(expected[wrong]) <= FLOOR):
        return ""
    shown = np.abs(expected) > FLOOR
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = got[shown] / expected[shown]
    if ratio.size < 2 or not np.all(np.isfinite(ratio)) or np.ptp(ratio) > 1e-6 * abs(ratio[0]):
        return ""
    if abs(ratio[0] + 1) <= 1e-6:
        return "; every element has the opposite sign"
    return f"; every element is {ratio[0]:.6g} times the expected value"


def _verdict(differences):
    """Raise CheckFailed listing every difference found."""
    found = [d for d in differences if d is not None]
    if found:
        raise CheckFailed("; ".join(found))


def _label(task, section, name):
    """What a reported output is called in a message: ``dlog_var``, ``z``, ``dx``..."""
    if task.probe != "op":
        return name
    if name == "out":
        return f"{task.options['forward'].split('.')[-1]}'s output"
    return "d" + task.options["wrt"][int(name[1:])]


def values(*sections, tolerance=AGREEMENT, outputs=None):
    """A check: the sections' outputs (or only ``outputs``) agree with the reference's."""
    def judge(task, student, reference, case):
        _verdict(_difference(_label(task, s, n), reference[s][n], student[s][n], tolerance)
                 if n in student[s] else f"{_label(task, s, n)} is missing"
                 for s in sections for n in reference[s] if outputs is None or n in outputs)
        return "agrees with the reference"
    judge.sections = sections
    return judge


def _numerical(task, perturbed, dout):
    """d sum(dout * forward) / d input, from the forward at x - 2h, x - h, x + h, x + 2h."""
    slopes = slope(perturbed, task.options["h"])  # (size, *out.shape)
    return np.sum(slopes * dout, axis=tuple(range(1, slopes.ndim)))


def gradient_check(task, student, reference, case):
    """The student's backward against central differences of the student's own forward."""
    worst = 0.0
    for k, name in enumerate(task.options["wrt"]):
        perturbed, grad = student["gradcheck"][name], student["backward"][f"d{k}"]
        numerical = _numerical(task, perturbed, case.arrays["dout"])
        if grad.size != numerical.size:
            raise CheckFailed(f"d{name}: expected {numerical.size} elements, like {name}, "
                              f"got shape {grad.shape}")
        error = relative_error(grad.reshape(-1), numerical)
        if not np.all(error <= TOLERANCE):
            j = int(np.nanargmax(np.where(np.isnan(error), np.inf, error)))
            where = tuple(int(i) for i in np.unravel_index(j, case.arrays[name].shape))
            zeros = "every element of your backward is zero; " if grad.size > 1 and not np.any(grad) else ""
            raise CheckFailed(f"d{name}, element {where}: {zeros}"
                              f"central differences of your forward give {numerical[j]:.10g}, "
                              f"your backward {grad.reshape(-1)[j]:.10g}")
        worst = max(worst, float(error.max(initial=0)))
    if not any(np.any(student["gradcheck"][name]) for name in task.options["wrt"]):
        return "your forward is zero wherever it is moved, and so is your backward"
    return f"largest relative error {worst:.1e}"


gradient_check.sections = ("gradcheck", "backward")


def moments(task, student, reference, case):
    """The sample mean and variance of z against mu and exp(log_var)."""
    z, shape = student["maths"]["out"], case.arrays["maths/eps"].shape
    n, mu, variance = shape[0], case.arrays["maths/mu"][0], np.exp(case.arrays["maths/log_var"][0])
    if z.shape != shape:
        raise CheckFailed(f"z: expected shape {shape}, got {z.shape}")
    off = np.abs(z.mean(axis=0) - mu) / np.sqrt(variance / n)
    if not off.max() <= SIGMAS:
        j = int(np.nanargmax(off))
        raise CheckFailed(f"coordinate {j}: the mean of {n} samples of z is "
                          f"{z[:, j].mean():.4f}, expected mu = {mu[j]}")
    sample_variance = z.var(axis=0, ddof=1)
    off = np.abs(sample_variance - variance) / (variance * np.sqrt(2 / (n - 1)))
    if not off.max() <= SIGMAS:
        j = int(np.nanargmax(off))
        raise CheckFailed(f"coordinate {j}: the variance of {n} samples of z is "
                          f"{sample_variance[j]:.4f}, expected exp(log_var) = {variance[j]:.4f}")
    return f"mean and variance of {n} samples within {SIGMAS} standard errors"


moments.sections = ("maths",)


def monte_carlo(task, student, reference, case):
    """The closed-form KL against the mean of log q(z) - log p(z) over samples z ~ q."""
    kl = student["maths"]["out"]
    mu, log_var = case.arrays["maths/mu"], case.arrays["maths/log_var"]
    if kl.shape != (len(mu),):
        raise CheckFailed(f"kl: expected shape {(len(mu),)}, got {kl.shape}")
    eps = np.random.default_rng(0).standard_normal((len(mu), SAMPLES, mu.shape[1]))  # z = mu + sigma eps ~ q
    z = mu[:, None] + np.exp(log_var[:, None] / 2) * eps
    # log q(z) - log p(z) for diagonal Gaussians: the 2 pi terms cancel
    log_ratio = 0.5 * np.sum(z**2 - eps**2 - log_var[:, None], axis=2)  # (B, samples)
    estimate, error = log_ratio.mean(axis=1), log_ratio.std(axis=1, ddof=1) / np.sqrt(SAMPLES)
    off = np.abs(kl - estimate) / error
    if not off.max() <= SIGMAS:
        b = int(np.nanargmax(np.where(np.isnan(off), np.inf, off)))
        raise CheckFailed(f"row {b}: your KL is {kl[b]:.6g}, but the mean of log q(z) - log p(z) "
                          f"over {SAMPLES} samples z ~ q is {estimate[b]:.6g} +- {error[b]:.2g}")
    return f"within {SIGMAS} standard errors of a Monte Carlo estimate"


monte_carlo.sections = ("maths",)


def restored(task, student, reference, case):
    """numerical_gradient puts every element of x back as it found it."""
    _verdict([_difference("x after the call", case.arrays["x"], student["gradient"]["x_after"], 0)])
    return "x is as it was"


restored.sections = ("gradient",)


def restored_after_raising(task, student, reference, case):
    """numerical_gradient lets f's exception through, and puts x back first."""
    if float(student["raising"]["raised"]) != 1.0:
        raise CheckFailed("f raised an exception on its second call, and your numerical_gradient returned "
                          "instead of letting it through")
    difference = _difference("x after f raised", case.arrays["x"], student["raising"]["x_after"], 0)
    if difference:
        raise CheckFailed(f"f raised an exception on its second call, and x was left moved: {difference}; "
                          "put x[i] back in a finally: block")
    return "x is as it was, and f's exception went through"


restored_after_raising.sections = ("raising",)


def own_dtypes(task, student, reference, case):
    """Each gradient in its own input's dtype, with some inputs cast (the task's ``dtypes`` option)."""
    names, cast = case.options["inputs"], case.options["dtypes"]
    given = ", ".join(f"{name} in {cast.get(name, 'float64')}" for name in names)
    floats = {4: "float32", 8: "float64"}
    for name, got, expected in zip(names, student["dtypes"]["itemsize"], reference["dtypes"]["itemsize"]):
        if got != expected:
            shown = floats.get(int(got), f"{int(got)}-byte numbers")
            raise CheckFailed(f"with {given}, your d{name} is {shown}; expected {floats[int(expected)]}, "
                              f"the dtype of {name}: each gradient comes back in its own input's dtype")
    return f"with {given}, each gradient in its input's dtype"


own_dtypes.sections = ("dtypes",)


def directional(task, student, reference, case):
    """<u, grad> from the student's backward against the slope of the student's loss along u."""
    grads = student["analytic"]
    analytic = sum(float(np.sum(case.arrays["direction/" + n] * g)) for n, g in grads.items())
    numerical = float(slope(student["directional"]["losses"], task.options["h"]))
    error = float(relative_error(analytic, numerical))
    if not error <= TOLERANCE:
        raise CheckFailed(f"along a random direction u, your gradients give <u, grad> = "
                          f"{analytic:.10g}, central differences of the loss {numerical:.10g}")
    return f"relative error {error:.1e}"


directional.sections = ("analytic", "directional")


# What each value the train_step probe reports is, in a message; the flags (0 or 1) are shown as False or True.
STEP_VALUES = {("step", "beta"): "the beta given to the forward", ("step", "dout"): "the dloss given to the backward",
               ("step", "accumulate"): "the backward's accumulate",
               ("step", "cache"): "the backward given the forward's cache",
               ("returned", "loss"): "the loss returned", ("returned", "cache"): "the forward's cache returned"}
FLAGS = ("accumulate", "cache")


def _calls(codes):
    """A training step's calls by name (probes.STEP_CALLS), in order: "binarize, forward, ..."."""
    return ", ".join(probes.STEP_CALLS[int(code)] for code in codes) or "nothing"


def _shown(name, value):
    """A reported scalar in a message: "none" for NaN (no beta given), a flag as True or False."""
    if np.size(value) != 1:
        return f"an array of shape {np.shape(value)}"
    if np.isnan(value):
        return "none"
    return str(bool(value)) if name in FLAGS else f"{float(value):.10g}"


def step_values(section):
    """A check: the values of :data:`STEP_VALUES` in ``section`` agree with the reference's."""
    def judge(task, student, reference, case):
        for (s, name), what in STEP_VALUES.items():
            if s != section:
                continue
            if name not in student[s]:
                raise CheckFailed(f"{what}: missing (was it called?)")
            expected, got = reference[s][name], student[s][name]
            if got.shape != expected.shape or not relative_error(got, expected) <= AGREEMENT:  # NaN: wrong
                raise CheckFailed(f"{what}: expected {_shown(name, expected)}, got {_shown(name, got)}")
        return "agrees with the reference"
    judge.sections = (section,)
    return judge


def step_order(task, student, reference, case):
    """The stand-ins were called once each, in the reference's order."""
    got, expected = student["step"]["calls"], reference["step"]["calls"]
    if not np.array_equal(got, expected):
        raise CheckFailed(f"your step called {_calls(got)}; expected {_calls(expected)}, each once")
    return _calls(expected)


step_order.sections = ("step",)


def non_finite(task, student, reference, case):
    """On a NaN or infinite loss: FloatingPointError, after the forward and before any backward or update."""
    got, expected, loss = student["non_finite"], reference["non_finite"], float(case.arrays["bad_loss"])
    if float(got["raised"]) != 1.0:
        raise CheckFailed(f"the forward returned a loss of {loss}, and your step raised no FloatingPointError: "
                          f"it called {_calls(got['calls'])}")
    if not np.array_equal(got["calls"], expected["calls"]):
        raise CheckFailed(f"the forward returned a loss of {loss}, and your step called {_calls(got['calls'])} "
                          f"before raising FloatingPointError; expected {_calls(expected['calls'])} only")
    return f"FloatingPointError on a loss of {loss}, after {_calls(expected['calls'])} only"


non_finite.sections = ("non_finite",)


def checks_for(task, case):
    """``[(title, judge)]``: the checks of ``task``, one point each, in marking order."""
    if task.probe == "op":
        checks = [] if task.given_forward else [("forward: values", values("forward"))]
        if "maths" in task.options:  # a variant task's own (scratchvae.classroom.variants)
            from .variant_checks import MATHS  # here: it imports this module

            checks += MATHS[task.options["maths"]]
        elif "maths/mu" in case.arrays:
            checks.append(("forward: " + ("moments of z" if "maths/eps" in case.arrays
                                          else "Monte Carlo"),
                           moments if "maths/eps" in case.arrays else monte_carlo))
        if "extreme/dout" in case.arrays:
            overflow = ("no_overflow",) if task.options.get("no_overflow") else ()
            checks.append(("extreme inputs", values("extreme_forward", "extreme_backward", *overflow)))
        checks += [("backward: values", values("backward")), ("gradient check", gradient_check)]
        if task.options.get("dtypes"):
            checks.append(("each gradient in its input's dtype", own_dtypes))
        return checks
    return {
        "numerical_gradient": [("values", values("gradient", tolerance=1e-5)),
                               ("x restored", restored),
                               ("sin(10 x): the five-point stencil's accuracy", values("stencil")),
                               ("x restored when f raises", restored_after_raising),
                               ("f returning x itself: its outputs copied", values("aliased"))],
        "sequential": [("backward: dx", values("accumulate", "write", outputs=("dx",))),
                       ("each module once, last first, accumulate passed on",
                        values("accumulate", "write", outputs=("calls",)))],
        "adam": [("three steps: parameter and averages", values("steps"))],
        "train_step": [("x, then eps, drawn from rng", values("step", outputs=("x", "eps"))),
                       ("binarize, forward, backward, update, once each", step_order),
                       ("the forward's beta; the backward's dloss, accumulate and cache", step_values("step")),
                       ("returns the loss and the cache", step_values("returned")),
                       ("a NaN or infinite loss: FloatingPointError, no backward, no update", non_finite)],
        "vae": [("backward, analytic KL", values("analytic")),
                ("backward, Monte Carlo KL", values("monte_carlo")),
                ("directional gradient check", directional)],
        "importance_weighted": [("all examples at once", values("at_once")),
                                ("one example at a time", values("one_at_a_time")),
                                ("log-weights near -800: no underflow", values("underflow"))],
    }[task.probe]


# --- Judging a task ---------------------------------------------------------------


# What an exception raised in a section means, where the probe provokes it (probes.op's no_overflow).
RAISED = {"no_overflow": (": the extreme inputs are run again with np.errstate(over=\"raise\"), and a stable form "
                          "never overflows. Exponentiate only -|x| <= 0 (np.where computes both its branches)")}


def _unfinished(task, sections, student, ending):
    """The status and message for a check whose ``sections`` did not all come back clean, or None."""
    missing = [s for s in sections if s not in student]
    if missing:
        if ending:
            status, _, message = ending.partition(": ")
            return status, message
        return CRASHED, ("the process ended before reporting this, with exit status 0: "
                         "does your code call os._exit or end the interpreter?")
    for s in sections:
        if probes.ERROR in student[s]:
            what, kind = str(student[s][probes.ERROR]), str(student[s][probes.ERROR_TYPE])
            if kind == "Missing":
                return NOT_ATTEMPTED, what.partition(": ")[2]
            if "File too large" in what:  # Python ignores SIGXFSZ: the write past the limit fails
                return CRASHED, f"wrote more output than the marker allows ({what})"
            if kind == "NotImplementedError":
                owner = what.partition(": ")[2].partition(":")[0]
                stub = owner.isidentifier() and what.partition(": ")[2].startswith(f"{owner}: see docs/")
                waits = f"waits for task {owner}: " if stub and owner != task.name else ""
                return NOT_ATTEMPTED, waits + what
            return FAIL, f"raised {what}" + RAISED.get(s, "")
    return None


# A check that counts only when another check of its task passed: a gradient check of a wrong
# forward, the extremes of a wrong forward, an x put back by a wrong gradient earn nothing.
NEEDS = {"gradient check": "forward: values", "extreme inputs": "forward: values", "x restored": "values",
         "x restored when f raises": "values"}


def _counted(outcomes):
    """The outcomes with each passed check whose prerequisite (:data:`NEEDS`) did not pass made a FAIL."""
    status = {o.check: o.status for o in outcomes}
    counted = []
    for o in outcomes:
        needed = NEEDS.get(o.check)
        if o.status == PASS and needed in status and status[needed] != PASS:
            if o.check == "gradient check":
                message = (f"your backward does match central differences of your own forward ({o.message}): "
                           "your forward is what is wrong, and a gradient check counts only with a right forward")
            else:
                message = f"{o.message}, but this counts only when '{needed}' passes"
            o = o._replace(status=FAIL, message=message)
        counted.append(o)
    return counted


def judge_task(task, case, student, ending, reference):
    """The outcomes of ``task``'s checks on a child's report ``student`` (with its ``ending``)."""
    outcomes = []
    for title, judge in checks_for(task, case):
        unfinished = _unfinished(task, judge.sections, student, ending)
        if unfinished:
            outcomes.append(Outcome(task.name, title, *unfinished))
            continue
        try:
            outcomes.append(Outcome(task.name, title, PASS, judge(task, student, reference, case)))
        except CheckFailed as failure:
            outcomes.append(Outcome(task.name, title, FAIL, str(failure)))
        except (KeyError, IndexError, ValueError, TypeError) as err:  # a report not of the probe's making
            outcomes.append(Outcome(task.name, title, FAIL, f"the results could not be read ({err!r})"))
    return _counted(outcomes)


# --- Naming a classic bug -----------------------------------------------------------


def _agree(a, b, tolerance):
    """Same shape and the same values, NaN matching NaN and each infinity itself."""
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isclose(a, b, rtol=tolerance, atol=1e-12, equal_nan=True)))


def _wrong(report, reference, tolerance, sections):
    """The (section, output) pairs of ``sections`` where ``report`` differs from ``reference``."""
    wrong = set()
    for section in sections:
        got, expected = report.get(section, {}), reference[section]
        for name in set(got) | set(expected):
            if name not in got or name not in expected or not _agree(got[name], expected[name], tolerance):
                wrong.add((section, name))
    return wrong


def exhibit_text(bug):
    """What the feedback says of a museum exhibit found in the code (``bug``: its name, message and
    the section to reread, ``bug.reread``), e.g. "this is A TRANSPOSED DW. Your dW is ... Reread
    docs/layers.md#dense."."""
    return f"this is {bug.name.upper()}. {bug.message[0].upper()}{bug.message[1:]}. Reread docs/{bug.reread}."


def shows_bug(student, reference, exhibit, sections=(), tolerance=AGREEMENT):
    """Whether the ``student``'s report shows the bug whose report is ``exhibit``.

    It does when the student got something wrong, everything the student got
    wrong (in ``sections``; default all) is exactly what the exhibit gets
    wrong, and the student's forward is wrong wherever the exhibit's is: a
    bug of the forward is named only when the forward shows it. A section in
    which the student's code raised is left out: what it raised is no value;
    so are :data:`NOT_MATHS`.
    """
    sections = [s for s in (sections or student) if s in student and s in reference
                and s not in NOT_MATHS and probes.ERROR not in student[s]]
    wrong = _wrong(student, reference, tolerance, sections)
    if not wrong:
        return False
    forward = {(s, n) for s, n in _wrong(exhibit, reference, tolerance, sections) if s in FORWARD_SECTIONS}
    return forward <= wrong and all(name in exhibit.get(section, {}) and name in student[section]
                                    and _agree(student[section][name], exhibit[section][name], tolerance)
                                    for section, name in wrong)
