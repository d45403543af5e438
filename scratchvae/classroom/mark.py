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
from scratchvae.classroom.judge import (
    AGREEMENT,
    CRASHED,
    FAIL,
    PASS,
    Outcome,
    checks_for,
    explain_consistent_forward,
    judge_task,
)
from scratchvae.classroom.sandbox import Limits, Submission, printable, run_child
from scratchvae.classroom.tasks import TASKS

__all__ = ["Report", "find_submissions", "mark_submission", "mark_task", "write_csv", "reference_sections"]


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


def mark_task(submission, task, limits=Limits(), sandbox=True):
    """The outcomes of ``task``'s checks on ``submission``, and the museum's exhibits it matches.

    ``sandbox`` is :func:`scratchvae.classroom.sandbox.run_child`'s.
    """
    case = task.case()
    reference = reference_sections(task)
    child = run_child(submission, task.probe, case, limits, sandbox)
    outcomes = judge_task(task, case, child.sections, child.ending, reference)
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
        outcomes += explain_consistent_forward(marks)
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
