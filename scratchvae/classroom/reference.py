"""The reference values of the tasks, computed live from the lecture: what the self-check compares with.

:func:`record` runs a task's probe on ``scratchvae.lecture`` for the public
draws (:meth:`scratchvae.classroom.tasks.Task.case`), and on each of the
museum's exhibits for that task, exactly as the marker does
(:func:`scratchvae.classroom.mark.reference_sections`). The reference edition
of the lessons checks against it live; :func:`write_records` stores every task's
record in a handout's ``coursetools/reference/``, whose ``__init__.py`` (written
by :mod:`scratchvae.classroom.toolkit`) has the same ``TASKS``, ``PACKAGE`` and
``record`` and reads them back: the handout holds the values, and no reference code.
Guide: docs/exercises.md#for-students
"""

import functools

from scratchvae.classroom import museum
from scratchvae.classroom.mark import marking_case, reference_sections
from scratchvae.classroom.selfcheck import Exhibit, Record, save_record
from scratchvae.classroom.tasks import TASKS as _TASKS
from scratchvae.classroom.variants import VARIANTS

__all__ = ["PACKAGE", "TASKS", "record", "write_records"]

PACKAGE = "scratchvae.lecture"  # what the self-check runs when it is given no functions
TASKS = tuple(_TASKS)  # every task's name, in course order


@functools.cache
def record(name):
    """The :class:`~scratchvae.classroom.selfcheck.Record` of task (or variant task) ``name``, computed
    from the lecture (or the variants' reference) once per process, on the marker's public case."""
    task = {**_TASKS, **VARIANTS}[name]
    case, reference = marking_case(task)

    def run_reference(replace, arrays):
        return reference_sections(task, replace, arrays, case)

    exhibits = [Exhibit(bug.name, bug.message, bug.reread, bug.sections,
                        museum.exhibit_sections(bug, run_reference, case))
                for bug in museum.BUGS if bug.task == name]
    return Record(task, case, reference, exhibits)


def write_records(folder, variants=()):
    """Store every task's record, and the ``variants``', in ``folder`` as ``<task>.npz``; return the paths."""
    paths = []
    for name in TASKS + tuple(variants):
        paths.append(folder / f"{name}.npz")
        save_record(paths[-1], record(name))
    return paths
