"""The class at a glance: per-task means and full marks, the totals' mean and median, their histogram.

``scratchvae classroom mark`` writes, beside ``marks.csv``, ``marks-summary.md``
(a table a teacher reads in any editor or pastes into a report) and
``marks-histogram.png`` (the totals, one bar per possible total, so a
bimodal class, or a task nobody could do, shows at once). The figure is a
matplotlib ``Figure`` saved directly, with no pyplot state: marking can run
in any thread or process.
Guide: docs/exercises.md#exports
"""

from pathlib import Path
from typing import NamedTuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scratchvae.classroom.marksheet import columns

__all__ = ["Marks", "marks_from_rows", "TaskSummary", "Summary", "summarise", "summary_text", "histogram",
           "write_summary"]


class Marks(NamedTuple):
    """One student's points as a row of the CSV holds them: what :func:`summarise` needs of a report,
    for rows kept from an earlier run (``mark --resume``, ``--student``)."""

    by_task: dict  # task name -> points
    out_of: dict  # task name -> its checks

    def points(self, task):
        """``(points, out of)`` for one task, as ``Report.points``."""
        return self.by_task.get(task, 0), self.out_of.get(task, 0)


def marks_from_rows(rows, tasks, out_of):
    """The :class:`Marks` of each row of the CSV (laid out as ``marksheet.columns(tasks)``);
    ``out_of``: each task's number of checks, by name."""
    header = columns(tasks)
    return [Marks({t.name: int(row[header.index(t.name)]) for t in tasks}, out_of) for row in rows]


class TaskSummary(NamedTuple):
    """One task across the class."""

    name: str
    out_of: int  # its checks, one point each
    mean: float  # points, over every student
    full: int  # students with every point of it


class Summary(NamedTuple):
    """The class across the tasks."""

    students: int
    tasks: tuple  # TaskSummary, in course order
    totals: tuple  # each student's total, in the reports' order
    out_of: int

    @property
    def mean(self):
        return float(np.mean(self.totals)) if self.totals else float("nan")

    @property
    def median(self):
        return float(np.median(self.totals)) if self.totals else float("nan")

    @property
    def full(self):
        """Students with every point of every task."""
        return sum(total == self.out_of for total in self.totals)


def summarise(reports, tasks):
    """The :class:`Summary` of ``reports`` (one per student, each a ``Report`` or :class:`Marks`) on ``tasks``.

    A task is out of the most checks any report has for it, so that a report
    without outcomes (an entry that could not be marked) counts as zero
    points rather than as a task out of nothing.
    """
    rows = []
    for task in tasks:
        points = [report.points(task.name) for report in reports]
        out_of = max((n for _, n in points), default=0)
        rows.append(TaskSummary(task.name, out_of, float(np.mean([p for p, _ in points])) if points else float("nan"),
                                sum(p == out_of for p, _ in points)))
    totals = tuple(sum(report.points(task.name)[0] for task in tasks) for report in reports)
    return Summary(len(reports), tuple(rows), totals, sum(row.out_of for row in rows))


def summary_text(summary, notes=()):
    """The summary as markdown: ``notes`` (how the class was marked) first, then one row per task."""
    n = summary.students
    lines = ["# Marks: the class at a glance", ""]
    lines += [f"- {note}" for note in notes]
    lines += [f"- {n} students; totals: mean {summary.mean:.1f}, median {summary.median:g}, "
              f"lowest {min(summary.totals, default=0)}, highest {max(summary.totals, default=0)}, "
              f"out of {summary.out_of}", "",
              "| task | out of | mean | full marks |", "|---|---:|---:|---:|"]
    lines += [f"| {t.name} | {t.out_of} | {t.mean:.2f} | {t.full} of {n} |" for t in summary.tasks]
    lines += [f"| **total** | {summary.out_of} | {summary.mean:.2f} | {summary.full} of {n} |"]
    return "\n".join(lines) + "\n"


def histogram(summary):
    """A ``Figure``: how many students have each total, from 0 to the most there is."""
    figure = Figure(figsize=(7, 3.5), layout="constrained")
    ax = figure.add_subplot()
    ax.hist(summary.totals, bins=np.arange(summary.out_of + 2) - 0.5, color="tab:blue", edgecolor="white")
    if summary.totals:
        ax.axvline(summary.median, color="black", linestyle="--", label=f"median {summary.median:g}")
        ax.legend(loc="upper left")
    ax.set_xlim(-0.5, summary.out_of + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"total points (out of {summary.out_of})")
    ax.set_ylabel("students")
    ax.set_title(f"Totals of {summary.students} students")
    return figure


def write_summary(reports, tasks, folder, name="marks", notes=()):
    """Write ``<name>-summary.md`` and ``<name>-histogram.png`` to ``folder``; return their paths.

    ``notes``: lines on how the class was marked (sandboxed or not, which
    draws), put first in the summary.
    """
    folder = Path(folder)
    summary = summarise(reports, tasks)
    text, picture = folder / f"{name}-summary.md", folder / f"{name}-histogram.png"
    text.write_text(summary_text(summary, notes))
    histogram(summary).savefig(picture, dpi=100)
    return text, picture
