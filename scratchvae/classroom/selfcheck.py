"""The student's self-check: a task's checks run on the student's code, in this process, right now.

    check("dense")                      # in a lesson, after writing studentvae/dense.py
    python -m coursetools.check         # every task, from the shell (a handout)
    python -m coursetools.check dense   # one task

:func:`check` runs the task's probe (:mod:`scratchvae.classroom.probes`) on the
student's package, ``studentvae``, reloaded first so that an edit is picked up in
a running notebook, or on ``functions``, and judges the report with the marker's
checks (:mod:`scratchvae.classroom.judge`) against the task's reference values:
one line per check, ok or what is wrong, and the classic bug when the report
shows one. Unless every check passes it raises :class:`TaskNotDone`, whose
one-line message names the task, so "Run all" stops there.

The reference values come from the sibling module ``reference``: in
scratchvae, :mod:`scratchvae.classroom.reference` computes them from the
lecture; in a handout, ``coursetools/reference/`` holds them as one ``.npz``
file per task, written when the handout was made (:func:`save_record`), and no
reference code. This file imports nothing but NumPy, the standard library and
its siblings, so it ships in the handout as it is.
Guide: docs/exercises.md#for-students
"""

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import judge, probes

__all__ = ["Exhibit", "Record", "StoredTask", "TaskNotDone", "check", "load_record", "main", "save_record"]

PACKAGE = "studentvae"  # the student's package, which check() runs unless given functions


class TaskNotDone(AssertionError):
    """A task whose checks do not all pass; the message names it in one line."""


class StoredTask(NamedTuple):
    """What a task's checks need to know of it (:class:`scratchvae.classroom.tasks.Task` without its draws)."""

    name: str
    title: str
    functions: tuple
    doc: str
    probe: str
    options: dict
    given_forward: bool


class Exhibit(NamedTuple):
    """A classic bug of the museum (:class:`scratchvae.classroom.museum.Bug`), by what it reports."""

    name: str
    message: str
    reread: str
    sections: tuple  # the sections it is recognised on (all if empty)
    report: dict  # the probe's sections with the bug put in


class Record(NamedTuple):
    """A task's reference values: the task, its case, the reference's report and the museum's exhibits."""

    task: StoredTask
    case: probes.Case
    reference: dict
    exhibits: list


# --- Storing a record --------------------------------------------------------------------


def save_record(path, record):
    """Write ``record`` as one ``.npz``: the arrays, and the rest as JSON text (nothing pickled)."""
    arrays = {}

    def keep(value):
        arrays[f"a{len(arrays)}"] = np.asarray(value)
        return f"a{len(arrays) - 1}"

    def index(sections):
        return {s: {n: keep(v) for n, v in outputs.items()} for s, outputs in sections.items()}

    task = StoredTask(*(getattr(record.task, field) for field in StoredTask._fields))
    text = {"task": task._asdict(),
            "case": {name: keep(v) for name, v in record.case.arrays.items()},
            "reference": index(record.reference),
            "exhibits": [{**e._asdict(), "report": index(e.report)} for e in record.exhibits]}
    np.savez_compressed(path, __record__=np.array(json.dumps(text)), **arrays)


def load_record(path):
    """Read a :class:`Record` written by :func:`save_record`."""
    with np.load(path, allow_pickle=False) as npz:
        text = json.loads(str(npz["__record__"]))

        def sections(index):
            return {s: {n: npz[key] for n, key in outputs.items()} for s, outputs in index.items()}

        task = StoredTask(**{**text["task"], "functions": tuple(text["task"]["functions"])})
        case = probes.Case({name: npz[key] for name, key in text["case"].items()}, task.options)
        exhibits = [Exhibit(**{**e, "sections": tuple(e["sections"]), "report": sections(e["report"])})
                    for e in text["exhibits"]]
        return Record(task, case, sections(text["reference"]), exhibits)


# --- Checking a task ---------------------------------------------------------------------


def _package(name):
    """``lookup`` for a package, and its files; the student's is imported afresh, every module of it."""
    if name == PACKAGE:
        for module in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[module]
        importlib.invalidate_caches()
    folder = Path(importlib.import_module(name).__file__).parent
    return probes.submission_lookup(name), {str(p) for p in folder.glob("*.py")}


def _lookup(functions, fallback):
    """``lookup`` that takes ``functions`` ("module.qualname" -> callable) first, then ``fallback``.

    A class a probe builds (``vae.VAE``) gets the given methods put in.
    """
    def lookup(name):
        if name in functions:
            return functions[name]
        found = fallback(name)
        methods = {key.rpartition(".")[2]: f for key, f in functions.items() if key.rpartition(".")[0] == name}
        return type(found.__name__, (found,), methods) if methods and isinstance(found, type) else found
    return lookup


def _not_written(task, outcomes):
    """The one line for a task not attempted throughout, or None."""
    if {o.status for o in outcomes} != {judge.NOT_ATTEMPTED}:
        return None
    message = outcomes[0].message
    stub = re.search(r"NotImplementedError: (\w+): see docs/(\S+)(?: \((\S+\.py), line)?", message)
    if not stub:
        return f"{task.name}: not written yet ({message}); see docs/{task.doc}"
    owner, doc, file = stub.groups()
    where = f"{PACKAGE}/{file or task.functions[0].split('.')[0] + '.py'} raises NotImplementedError"
    waits = f"waits for task {owner}, " if owner != task.name else ""
    return f"{task.name}: {waits}not written yet ({where}); see docs/{doc}"


def check(task, functions=None):
    """Run ``task``'s checks on the student's code and print what each found.

    Parameters
    ----------
    task : str
        The task's name (``python -m coursetools.check --help`` lists them).
    functions : dict, optional
        ``"module.qualname" -> callable`` to check instead of the student's
        package (the rest is taken from it); the reference edition of the
        lessons passes its worked answers.

    Raises
    ------
    TaskNotDone
        Unless every check passes; the message is one line naming the task.
    ValueError
        For a task that does not exist.
    """
    from . import reference  # here, not above: scratchvae's computes the records with this module's Record

    if task not in reference.TASKS:
        raise ValueError(f"task: expected one of {', '.join(reference.TASKS)}, got {task!r}")
    record = reference.record(task)
    fallback, files = _package(reference.PACKAGE)
    report = probes.run_probe(record.task.probe, _lookup(functions or {}, fallback), record.case, files)
    outcomes = judge.judge_task(record.task, record.case, report, "", record.reference)
    stub = _not_written(record.task, outcomes)
    if stub:
        raise TaskNotDone(stub)
    for o in outcomes:
        print(f"{task}, {o.check}: " + (f"ok ({o.message})" if o.status == judge.PASS else f"{o.status}: {o.message}"))
    failed = [o for o in outcomes if o.status != judge.PASS]
    if not failed:
        return
    clean = {s: v for s, v in report.items() if probes.ERROR not in v}
    for bug in record.exhibits:
        if judge.shows_bug(clean, record.reference, bug.report, bug.sections):
            print(f"Museum of classic bugs: {judge.exhibit_text(bug)}")
    raise TaskNotDone(f"{task}: {len(failed)} of {len(outcomes)} checks not passed "
                      f"({', '.join(o.check for o in failed)}); see docs/{record.task.doc}")


def main(argv=None, prog="python -m coursetools.check"):
    """Check tasks from the shell: 0 when every check of every task named passes, 1 if not, 2 for bad input."""
    from . import reference

    parser = argparse.ArgumentParser(prog=prog, description="Run the course's checks on your code.")
    parser.add_argument("tasks", nargs="*", metavar="TASK",
                        help=f"the tasks to check (default: all): {', '.join(reference.TASKS)}")
    args = parser.parse_args(argv)
    unknown = [task for task in args.tasks if task not in reference.TASKS]
    if unknown:
        parser.error(f"no task called {', '.join(map(repr, unknown))}; the tasks are {', '.join(reference.TASKS)}")
    not_done = 0
    for task in args.tasks or reference.TASKS:
        try:
            check(task)
        except TaskNotDone as err:
            print(err, flush=True)
            not_done += 1
    return 1 if not_done else 0
