"""Marking: each task's probe run on the student's code in a sandbox, judged here against the reference.

For every task, :func:`mark_submission` runs the task's probe twice: on the
reference, in this process, and on the student's code, in a child of
:mod:`scratchvae.classroom.sandbox` (in bubblewrap's sandbox unless
``sandbox=False``). Every check then compares the child's
report with the reference's, here, so nothing the student's code does in its
process can change a mark: it can only change what it reports, and a report
earns a point only by holding the right numbers. Each check is one point and
ends *pass*, *FAIL*, *not attempted*, *timed out* or *crashed*, with a message;
a failed task is then shown to the museum (:mod:`scratchvae.classroom.museum`),
which names a classic bug when it sees one.
Guide: docs/exercises.md#how-marking-works
"""

import csv
import importlib
import itertools
import os
import stat
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scratchvae.classroom import museum, probes
from scratchvae.classroom.handout import PACKAGE
from scratchvae.classroom.sandbox import Limits, Submission, printable, run_child
from scratchvae.classroom.tasks import SAMPLES, TASKS
from scratchvae.lecture.gaussian import reparameterize_forward
from scratchvae.lecture.gaussian_density import gaussian_log_density_forward
from scratchvae.lecture.gradcheck import FLOOR, TOLERANCE, five_point_slope, relative_error

__all__ = ["Outcome", "Report", "find_submissions", "mark_submission", "write_csv",
           "reference_sections"]

AGREEMENT = 1e-6  # relative error to the reference that still passes a value
PASS, FAIL, NOT_ATTEMPTED, TIMED_OUT, CRASHED = "pass", "FAIL", "not attempted", "timed out", "crashed"
SIGMAS = 5  # standard errors a sample statistic may stray from its expectation


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
    shown = np.abs(expected) > FLOOR
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = got[shown] / expected[shown]
    if ratio.size > 1 and np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-6 * abs(ratio[0]):
        message += f"; every element is {ratio[0]:.6g} times the expected value"
    return message


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
    f = {k: perturbed[i] for i, k in enumerate(probes.STENCIL)}  # (size, *out.shape) each
    slopes = five_point_slope(f, task.options["h"])  # (size, *out.shape)
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
            raise CheckFailed(f"d{name}, element {where}: "
                              f"central differences of your forward give {numerical[j]:.10g}, "
                              f"your backward {grad.reshape(-1)[j]:.10g}")
        worst = max(worst, float(error.max(initial=0)))
    return f"largest relative error {worst:.1e}"


gradient_check.sections = ("gradcheck", "backward")


def moments(task, student, reference, case):
    """The sample mean and variance of z against mu and exp(log_var)."""
    z = student["maths"]["out"]
    mu, variance = case.arrays["maths/mu"][0], np.exp(case.arrays["maths/log_var"][0])
    if z.shape != (SAMPLES, 3):
        raise CheckFailed(f"z: expected shape {(SAMPLES, 3)}, got {z.shape}")
    off = np.abs(z.mean(axis=0) - mu) / np.sqrt(variance / SAMPLES)
    if not off.max() <= SIGMAS:
        j = int(np.nanargmax(off))
        raise CheckFailed(f"coordinate {j}: the mean of {SAMPLES} samples of z is "
                          f"{z[:, j].mean():.4f}, expected mu = {mu[j]}")
    sample_variance = z.var(axis=0, ddof=1)
    off = np.abs(sample_variance - variance) / (variance * np.sqrt(2 / (SAMPLES - 1)))
    if not off.max() <= SIGMAS:
        j = int(np.nanargmax(off))
        raise CheckFailed(f"coordinate {j}: the variance of {SAMPLES} samples of z is "
                          f"{sample_variance[j]:.4f}, expected exp(log_var) = {variance[j]:.4f}")
    return f"mean and variance of {SAMPLES} samples within {SIGMAS} standard errors"


moments.sections = ("maths",)


def monte_carlo(task, student, reference, case):
    """The closed-form KL against the mean of log q(z) - log p(z) over samples z ~ q."""
    kl = student["maths"]["out"]
    mu, log_var = case.arrays["maths/mu"], case.arrays["maths/log_var"]
    if kl.shape != (len(mu),):
        raise CheckFailed(f"kl: expected shape {(len(mu),)}, got {kl.shape}")
    mu_s, log_var_s = np.repeat(mu, SAMPLES, axis=0), np.repeat(log_var, SAMPLES, axis=0)
    z = reparameterize_forward(mu_s, log_var_s, np.random.default_rng(0).standard_normal(mu_s.shape))[0]
    zero = np.zeros_like(z)
    log_ratio = (gaussian_log_density_forward(z, mu_s, log_var_s)[0]
                 - gaussian_log_density_forward(z, zero, zero)[0]).reshape(len(mu), SAMPLES)
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


def directional(task, student, reference, case):
    """<u, grad> from the student's backward against the slope of the student's loss along u."""
    grads = student["analytic"]
    analytic = sum(float(np.sum(case.arrays["direction/" + n] * g)) for n, g in grads.items())
    f = dict(zip(probes.STENCIL, student["directional"]["losses"]))
    numerical = five_point_slope(f, task.options["h"])
    error = float(relative_error(analytic, numerical))
    if not error <= TOLERANCE:
        raise CheckFailed(f"along a random direction u, your gradients give <u, grad> = "
                          f"{analytic:.10g}, central differences of the loss {numerical:.10g}")
    return f"relative error {error:.1e}"


directional.sections = ("analytic", "directional")


def checks_for(task, case):
    """``[(title, judge)]``: the checks of ``task``, one point each, in marking order."""
    if task.probe == "op":
        checks = [] if task.given_forward else [("forward: values", values("forward"))]
        if "maths/mu" in case.arrays:
            checks.append(("forward: " + ("moments of z" if "maths/eps" in case.arrays
                                          else "Monte Carlo"),
                           moments if "maths/eps" in case.arrays else monte_carlo))
        if "extreme/dout" in case.arrays:
            checks.append(("extreme inputs", values("extreme_forward", "extreme_backward")))
        return checks + [("backward: values", values("backward")),
                         ("gradient check", gradient_check)]
    return {
        "numerical_gradient": [("values", values("gradient", tolerance=1e-5)),
                               ("x restored", restored)],
        "sequential": [("backward: dx", values("accumulate", "write", outputs=("dx",))),
                       ("each module once, last first, accumulate passed on",
                        values("accumulate", "write", outputs=("calls",)))],
        "adam": [("three steps: parameter and averages", values("steps"))],
        "vae": [("backward, analytic KL", values("analytic")),
                ("backward, Monte Carlo KL", values("monte_carlo")),
                ("directional gradient check", directional)],
        "importance_weighted": [("all examples at once", values("at_once")),
                                ("one example at a time", values("one_at_a_time"))],
    }[task.probe]


# --- Marking a task -----------------------------------------------------------------


def reference_lookup(replace=None):
    """``lookup`` for the reference, ``scratchvae.lecture``, with ``replace``'s functions put in."""
    def lookup(name):
        if replace and name in replace:
            return replace[name]
        module, *path = name.split(".")
        obj = importlib.import_module(f"scratchvae.lecture.{module}")
        for part in path:
            obj = getattr(obj, part)
        return obj
    return lookup


def reference_sections(task, replace=None, arrays=None):
    """The probe's report on the reference (with ``replace`` put in, on changed ``arrays``)."""
    case = task.case()
    case = case._replace(arrays={**case.arrays, **{k: np.asarray(v) for k, v in (arrays or {}).items()}})
    with np.errstate(all="ignore"):  # a museum exhibit overflows on purpose
        return probes.run_probe(task.probe, reference_lookup(replace), case)


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
                waits = f"waits for task {owner}: " if owner in TASKS and owner != task.name else ""
                return NOT_ATTEMPTED, waits + what
            return FAIL, f"raised {what}"
    return None


def mark_task(submission, task, limits=Limits(), sandbox=True):
    """The outcomes of ``task``'s checks on ``submission``, and the museum's exhibits it matches.

    ``sandbox`` is :func:`scratchvae.classroom.sandbox.run_child`'s.
    """
    case = task.case()
    reference = reference_sections(task)
    child = run_child(submission, task.probe, case, limits, sandbox)
    outcomes = []
    for title, judge in checks_for(task, case):
        unfinished = _unfinished(task, judge.sections, child.sections, child.ending)
        if unfinished:
            outcomes.append(Outcome(task.name, title, *unfinished))
            continue
        try:
            outcomes.append(Outcome(task.name, title, PASS, judge(task, child.sections, reference, case)))
        except CheckFailed as failure:
            outcomes.append(Outcome(task.name, title, FAIL, str(failure)))
        except (KeyError, IndexError, ValueError, TypeError) as err:  # a report not of the probe's making
            outcomes.append(Outcome(task.name, title, FAIL, f"the results could not be read ({err!r})"))
    bugs = []
    if any(o.status == FAIL for o in outcomes):
        clean = {s: v for s, v in child.sections.items() if s in reference}
        bugs = museum.recognise(task, clean, reference,
                                lambda replace, arrays: reference_sections(task, replace, arrays),
                                AGREEMENT)
    if child.output.strip():
        printed = f" (it printed: {child.output.strip()[-300:]})"
        outcomes = [o._replace(message=o.message + printed) if o.status == CRASHED else o
                    for o in outcomes]
    return outcomes, bugs


# --- Marking a submission -----------------------------------------------------------


class Report(NamedTuple):
    """Every check's outcome for one submission, and the museum's exhibits found in it."""

    student: str
    outcomes: tuple
    bugs: tuple  # museum.Bug
    notes: tuple = ()  # what of the submission was not copied for marking, and why

    @property
    def score(self):
        return sum(o.points for o in self.outcomes)

    @property
    def total(self):
        return len(self.outcomes)

    def points(self, task):
        """``(points, out of)`` for one task."""
        mine = [o for o in self.outcomes if o.task == task]
        return sum(o.points for o in mine), len(mine)

    def table(self):
        """The marks as text: one line per check, then what went wrong, then the museum's findings."""
        lines = [f"{self.student}: {self.score} of {self.total} points", ""]
        width = max(len(f"{o.task}  {o.check}") for o in self.outcomes)
        for task, group in itertools.groupby(self.outcomes, key=lambda o: o.task):
            group = list(group)
            if len({(o.status, o.message) for o in group}) == 1 and group[0].status != PASS:
                lines.append(f"{f'{task}  ({len(group)} checks)':<{width}}  0/{len(group)}  "
                             f"{group[0].status}: {group[0].message}")
                continue
            lines += [f"{f'{o.task}  {o.check}':<{width}}  {o.points}/1  {o.status}" for o in group]
        failed = [o for o in self.outcomes if o.status != PASS
                  and not all(p.message == o.message for p in self.outcomes if p.task == o.task)]
        if failed:
            lines += ["", "What went wrong:"]
            lines += [f"- {o.task}, {o.check}: {o.status}: {o.message}" for o in failed]
        for bug in self.bugs:
            lines += ["", f"Museum of classic bugs, {bug.task}: this is {bug.name.upper()}. "
                          f"{bug.message[0].upper()}{bug.message[1:]}. Reread docs/{bug.reread}."]
        if self.notes:
            lines += ["", "Not marked: only regular .py files are copied for marking, and no link is followed:"]
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def _explain_consistent_forward(outcomes):
    """A wrong forward whose backward is its faithful derivative: say that the forward is at fault."""
    by_check = {o.check: o for o in outcomes}
    forward, gradient = by_check.get("forward: values"), by_check.get("gradient check")
    if forward and gradient and forward.status == FAIL and gradient.status == PASS:
        message = (f"{forward.message}. Your backward does match your own forward: the forward "
                   "is what is wrong, and the backward is its faithful derivative")
        outcomes[outcomes.index(forward)] = forward._replace(message=message)
    return outcomes


def mark_submission(submission, tasks=None, limits=Limits(), sandbox=True):
    """Mark every task (or ``tasks``) of one submission, each in its own child.

    A first child imports the submission: if that hangs or crashes, every
    task gets its ending at once instead of waiting out the limit once per task.
    ``sandbox``: True, every child in bubblewrap's sandbox (or
    :class:`~scratchvae.classroom.sandbox.SandboxUnavailable`); False, with the
    limits only; None, in the sandbox where bubblewrap works.
    """
    tasks = list(TASKS.values()) if tasks is None else tasks
    modules = sorted({m for task in tasks for m in task.modules})
    trial = run_child(submission, "imports", probes.Case({}, {"modules": modules}), limits, sandbox)
    outcomes, bugs = [], []
    for task in tasks:
        if trial.ending:
            status, _, message = trial.ending.partition(": ")
            printed = f" (it printed: {trial.output.strip()[-300:]})" if trial.output.strip() else ""
            outcomes += [Outcome(task.name, title, status, f"while importing your code: {message}{printed}")
                         for title, _ in checks_for(task, task.case())]
            continue
        marks, found = mark_task(submission, task, limits, sandbox)
        outcomes += _explain_consistent_forward(marks)
        bugs += found
    return Report(submission.name, tuple(outcomes), tuple(bugs), trial.notes)


def find_submissions(paths):
    """The submissions in ``paths``: a handout project, a ``.py`` file, or a folder of them.

    A path given is followed wherever it leads (the teacher named it). In a
    folder, each ``.py`` entry and each folder holding a ``studentvae`` package
    is a submission, whatever it is: one that is a symbolic link, a FIFO or a
    device is still a row of the CSV, but nothing of it is copied for marking
    (:func:`scratchvae.classroom.sandbox.copy_submission`), and its feedback
    says so. Names are :func:`~scratchvae.classroom.sandbox.printable`: a name
    that is not UTF-8 shows its bytes as ``\\xNN``.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    """
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        path = path.resolve()
        if not path.is_dir():
            found.append(Submission(printable(path.stem), path))
        elif os.path.lexists(path / PACKAGE):
            found.append(Submission(printable(path.name), path, PACKAGE))
        else:
            found += _folder(path)
    return found


def _folder(folder):
    """The submissions in a folder of them, its entries looked at without following a link."""
    found = []
    for name in sorted(os.listdir(folder)):
        entry = folder / name
        mode = os.lstat(entry).st_mode
        if stat.S_ISDIR(mode) or (stat.S_ISLNK(mode) and entry.is_dir()):
            if os.path.lexists(entry / PACKAGE):
                found.append(Submission(printable(name), entry, PACKAGE))
        elif entry.suffix == ".py":
            found.append(Submission(printable(entry.stem), entry))
    return found


def write_csv(path, reports, tasks, comment=None):
    """One row per student: the points of each task, then the total; ``comment``, if given,
    goes first on a line of its own beginning with ``#`` (read it with ``comment="#"`` in pandas)."""
    with open(path, "w", newline="") as f:
        if comment:
            f.write(f"# {comment}\n")
        writer = csv.writer(f)
        writer.writerow(["student", *(t.name for t in tasks), "total", "out of"])
        for report in reports:
            writer.writerow([report.student, *(report.points(t.name)[0] for t in tasks),
                             report.score, report.total])
