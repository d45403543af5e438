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
which names a classic bug when it sees one. Every submission is asked the same
questions: the public draws, or those of the teacher's secret seed
(:meth:`scratchvae.classroom.tasks.Task.case`), and the reference answers them
once (:func:`marking_case`). :func:`mark_class` marks the entries of a class
(:mod:`scratchvae.classroom.entries`), several at once.
Guide: docs/exercises.md#how-marking-works
"""

import importlib
import itertools
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scratchvae.classroom import museum, probes
from scratchvae.classroom.entries import FILE, PROJECT, find_entries, open_entry
from scratchvae.classroom.judge import (
    AGREEMENT,
    CRASHED,
    FAIL,
    NOT_ATTEMPTED,
    PASS,
    Outcome,
    checks_for,
    exhibit_text,
    judge_task,
)
from scratchvae.classroom.sandbox import (
    Limits,
    SandboxUnavailable,
    Stopped,
    allow_children,
    printable,
    run_child,
    stop_children,
)
from scratchvae.classroom.tasks import TASKS

__all__ = ["NOT_COPIED", "Report", "mark_submission", "mark_task", "find_submissions", "mark_entry", "mark_class",
           "marking_case", "unmarked", "reference_sections"]

# Heads the list of a submission's files left out of marking (Report.notes), in every feedback.
NOT_COPIED = "Not marked: only regular .py files are copied for marking, and no link is followed:"


# --- Marking a task -----------------------------------------------------------------

REFERENCE = {"variants": "scratchvae.classroom.variant_reference"}  # references outside the lecture


def reference_lookup(replace=None):
    """``lookup`` for the reference, ``scratchvae.lecture``, with ``replace``'s functions put in."""
    def lookup(name):
        if replace and name in replace:
            return replace[name]
        module, *path = name.split(".")
        obj = importlib.import_module(REFERENCE.get(module, f"scratchvae.lecture.{module}"))
        for part in path:
            obj = getattr(obj, part)
        return obj
    return lookup


def reference_sections(task, replace=None, arrays=None, case=None):
    """The probe's report on the reference (with ``replace`` put in, on changed ``arrays``) on ``case``
    (by default the task's public draws)."""
    case = task.case() if case is None else case
    case = case._replace(arrays={**case.arrays, **{k: np.asarray(v) for k, v in (arrays or {}).items()}})
    with np.errstate(all="ignore"):  # a museum exhibit overflows on purpose
        return probes.run_probe(task.probe, reference_lookup(replace), case)


_MARKING = {}  # (task name, seed) -> (case, the reference's report on it): the same for every submission


def marking_case(task, seed=None):
    """``task``'s case (the public draws, or those of the secret ``seed``) and the reference's report
    on it, computed once per process and shared by every submission."""
    key = (task.name, seed)
    if key not in _MARKING:
        case = task.case(seed)
        _MARKING[key] = case, reference_sections(task, case=case)
    return _MARKING[key]


def mark_task(submission, task, limits=Limits(), sandbox=True, seed=None):
    """The outcomes of ``task``'s checks on ``submission``, and the museum's exhibits it matches.

    ``sandbox`` is :func:`scratchvae.classroom.sandbox.run_child`'s; ``seed``, the teacher's
    secret seed (None: the public draws).
    """
    case, reference = marking_case(task, seed)
    child = run_child(submission, task.probe, case, limits, sandbox)
    outcomes = judge_task(task, case, child.sections, child.ending, reference)
    bugs = []
    if any(o.status == FAIL for o in outcomes):
        clean = {s: v for s, v in child.sections.items() if s in reference}
        bugs = museum.recognise(task, clean, reference,
                                lambda replace, arrays: reference_sections(task, replace, arrays, case),
                                AGREEMENT, case)
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
            lines += ["", f"Museum of classic bugs, {bug.task}: {exhibit_text(bug)}"]
        if self.notes:
            lines += ["", NOT_COPIED]
            lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def unmarked(tasks, status, message, seed=None):
    """Every check of ``tasks`` ending as ``status`` with ``message``: for work that could not be run."""
    return [Outcome(task.name, title, status, message)
            for task in tasks for title, _ in checks_for(task, marking_case(task, seed)[0])]


def mark_submission(submission, tasks=None, limits=Limits(), sandbox=True, seed=None):
    """Mark every task (or ``tasks``) of one submission, each in its own child.

    A first child imports the submission: if that hangs or crashes, every
    task gets its ending at once instead of waiting out the limit once per task.
    (An import that raises, a syntax error say, costs only the tasks whose
    modules are, or import, that file: each task's child imports its own.)
    ``sandbox``: True, every child in bubblewrap's sandbox (or
    :class:`~scratchvae.classroom.sandbox.SandboxUnavailable`); False, with the
    limits only; None, in the sandbox where bubblewrap works. ``seed``: the
    teacher's secret seed, or None for the public draws.
    """
    tasks = list(TASKS.values()) if tasks is None else tasks
    modules = sorted({m for task in tasks for m in task.modules})
    trial = run_child(submission, "imports", probes.Case({}, {"modules": modules}), limits, sandbox)
    if trial.ending:
        status, _, message = trial.ending.partition(": ")
        printed = f" (it printed: {trial.output.strip()[-300:]})" if trial.output.strip() else ""
        outcomes = unmarked(tasks, status, f"while importing your code: {message}{printed}", seed)
        return Report(submission.name, tuple(outcomes), (), trial.notes)
    outcomes, bugs = [], []
    for task in tasks:
        marks, found = mark_task(submission, task, limits, sandbox, seed)
        outcomes += marks
        bugs += found
    return Report(submission.name, tuple(outcomes), tuple(bugs), trial.notes)


# --- Marking a class ----------------------------------------------------------------


def find_submissions(paths):
    """The submissions among the entries in ``paths`` (:func:`~scratchvae.classroom.entries.find_entries`):
    each handout project and ``.py`` file, wherever it was found; not a zip's, nor an entry with nothing
    to mark."""
    return [open_entry(e, None)[0] for e in find_entries(paths) if e.kind in (PROJECT, FILE)]


def mark_entry(entry, tasks, limits=Limits(), sandbox=True, seed=None):
    """``(report, notes)`` for one entry of a class (:mod:`scratchvae.classroom.entries`): its work marked,
    or every check *not attempted* with the reason when it holds nothing to mark; and the entry's notes."""
    with tempfile.TemporaryDirectory(prefix="scratchvae-entry-") as scratch:
        submission, notes = open_entry(entry, Path(scratch))
        if submission is None:
            return Report(entry.name, tuple(unmarked(tasks, NOT_ATTEMPTED, notes[-1], seed)), ()), notes
        return mark_submission(submission, tasks, limits, sandbox, seed), notes


def _mark_entry_or_say_why(entry, tasks, limits, sandbox, seed):
    """:func:`mark_entry`, with a failure of the marker itself on this entry (a file that vanished
    while it was read, say) costing this entry its marks, not the class its run."""
    try:
        return mark_entry(entry, tasks, limits, sandbox, seed)
    except Exception as err:
        if isinstance(err, (Stopped, SandboxUnavailable)):
            raise
        why = f"the marker could not mark it ({type(err).__name__}: {printable(str(err))[:300]})"
        return Report(entry.name, tuple(unmarked(tasks, CRASHED, why, seed)), ()), (*entry.notes, why)


def mark_class(entries, tasks, finished, limits=Limits(), sandbox=True, seed=None, jobs=1):
    """Mark ``entries``, ``jobs`` at a time, each in threads of this process driving its own children;
    call ``finished(entry, report, notes)`` here, in this thread, as each one ends (in any order).

    An interruption (Ctrl-C) stops every child under way at once, waits for the
    threads to give up, and is raised again: what ``finished`` was given is kept.
    """
    if not entries:
        return
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="marking")
    try:
        futures = {pool.submit(_mark_entry_or_say_why, e, tasks, limits, sandbox, seed): e for e in entries}
        for future in as_completed(futures):
            finished(futures[future], *future.result())
    except BaseException:
        stop_children()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        allow_children()
