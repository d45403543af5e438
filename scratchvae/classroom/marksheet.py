"""The marks of a class, ``marks.csv``: written row by row as marking goes, so that nothing done is lost.

The file starts with comment lines (``#``: read it with ``comment="#"`` in
pandas) saying how it was marked: which draws (the public ones, or a secret
seed's, by a fingerprint that does not show the seed) and whether in the
sandbox. Then the header, :func:`columns`, and one row per entry:

    student id, name, entry, <one column per task>, total, out of, note

``student id`` is the entry's name, or, with a roster (:func:`read_roster`),
the id the roster gives that folder, and ``name`` the student's name; ``note``
says what the teacher should know (where the work was found, why nothing was
marked). A roster's student with no entry gets a row of zeros saying so; an
entry the roster does not list gets a row without an id, saying so.

A :class:`Marksheet` appends each row and flushes it as soon as its entry is
marked, in whatever order the entries end; :meth:`Marksheet.finish` then
rewrites the file in the entries' order. ``--resume`` (or ``--student``)
reads the rows already there back, if the file was marked the same way.
Guide: docs/exercises.md#for-teachers
"""

import csv
import hashlib
import io
import os
import threading
from pathlib import Path
from typing import NamedTuple

__all__ = ["Student", "read_roster", "columns", "draws_comment", "row", "Marksheet", "MarksheetMismatch",
           "ROSTER_COLUMNS", "NO_ENTRY", "NOT_IN_ROSTER"]

ROSTER_COLUMNS = ("folder", "id", "name")
FINGERPRINT_ROUNDS = 200_000  # PBKDF2 rounds: a fingerprint costs 0.1 s to make, and as long to try a seed
NO_ENTRY = "in the roster, but no entry was found: nothing marked"
NOT_IN_ROSTER = "not in the roster: no student id"


class Student(NamedTuple):
    """A roster's row."""

    id: str
    name: str


class MarksheetMismatch(ValueError):
    """The CSV to resume was marked another way (other tasks, draws or sandboxing)."""


def read_roster(path):
    """``{folder: Student}`` from a CSV with the columns folder, id, name (extra columns are ignored).

    Raises
    ------
    ValueError
        Naming the file, the line and what is wrong: a missing column, an empty
        folder or id, a folder or id met twice, an id that cannot name a file.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ROSTER_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: the roster needs the columns {', '.join(ROSTER_COLUMNS)}; "
                             f"{', '.join(missing)} missing (its first line: {', '.join(reader.fieldnames or [])})")
        roster, ids = {}, set()
        for record in reader:
            line = reader.line_num
            folder, student = record["folder"].strip(), Student(record["id"].strip(), record["name"].strip())
            if not folder or not student.id:
                raise ValueError(f"{path}, line {line}: a folder and an id are needed, got {folder!r} and "
                                 f"{student.id!r}")
            if student.id in (".", "..") or "/" in student.id or "\0" in student.id:
                raise ValueError(f"{path}, line {line}: the id {student.id!r} cannot name a feedback file")
            if folder in roster or student.id in ids:
                twice = "folder " + folder if folder in roster else "id " + student.id
                raise ValueError(f"{path}, line {line}: the {twice} is already on an earlier line")
            roster[folder] = student
            ids.add(student.id)
    return roster


def columns(tasks):
    """The CSV's header for ``tasks``."""
    return ["student id", "name", "entry", *(t.name for t in tasks), "total", "out of", "note"]


def draws_comment(seed):
    """The comment line saying which draws the marks were made on; for a seed, a fingerprint of it
    (PBKDF2: the seed cannot be read back from it, unless it is short enough to try every one)."""
    if seed is None:
        return "draws: public (the inputs scratchvae check uses)"
    digest = hashlib.pbkdf2_hmac("sha256", str(seed).encode(), b"scratchvae classroom mark --seed", FINGERPRINT_ROUNDS)
    return f"draws: secret (mark --seed; fingerprint {digest.hex()[:16]})"


def _text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


class Marksheet:
    """``marks.csv`` being written: its comments, its header, and a row per entry as each is marked.

    Parameters
    ----------
    path : path-like
    header : list of str
        :func:`columns`.
    comments : list of str
        The lines (without ``#``) saying how the class was marked.
    resume : bool
        Keep the rows already in ``path`` (it must have the same comments and
        header, else :class:`MarksheetMismatch`); a missing file is a fresh start.
    """

    def __init__(self, path, header, comments, resume=False):
        self.path, self.header, self.comments = Path(path), list(header), list(comments)
        self.rows = self._read() if resume and self.path.exists() else {}
        self._lock = threading.Lock()
        self._write(self.rows.values())

    def _read(self):
        """The rows already in the file, by entry; rows cut short by an interruption are left out."""
        with open(self.path, newline="") as f:
            lines = f.read().splitlines(keepends=True)
        comments = [line[1:].strip() for line in lines if line.startswith("#")]
        table = list(csv.reader(line for line in lines if not line.startswith("#")))
        if comments != self.comments or not table or table[0] != self.header:
            said = "; ".join(comments) or "nothing"
            raise MarksheetMismatch(
                f"{self.path} was marked another way: its header says {said} and marks "
                f"{', '.join(table[0][3:-3]) if table else 'nothing'}; this run would say "
                f"{'; '.join(self.comments)} and marks {', '.join(self.header[3:-3])}. Mark into another --out, "
                "or leave out --resume and --student to mark the class again")
        entry = self.header.index("entry")
        return {values[entry]: values for values in table[1:] if len(values) == len(self.header) and values[entry]}

    def _write(self, rows, path=None):
        with open(path or self.path, "w", newline="") as f:
            f.write("".join(f"# {c}\n" for c in self.comments) + _text([self.header, *rows]))

    def add(self, entry, values):
        """Append ``values``, the row of ``entry``, and flush it to disk (from any thread)."""
        with self._lock:
            self.rows[entry] = values
            with open(self.path, "a", newline="") as f:
                f.write(_text([values]))

    def forget(self, entry):
        """Drop ``entry``'s row (it is being marked again); the file keeps it until :meth:`finish`."""
        self.rows.pop(entry, None)

    def finish(self, order, extra=()):
        """Rewrite the file (through a temporary file, atomically) with the rows of the entries in
        ``order`` that have one, in that order, then the ``extra`` rows."""
        rows = [self.rows[e] for e in order if e in self.rows] + list(extra)
        partial = self.path.with_name(self.path.name + ".partial")
        self._write(rows, partial)
        os.replace(partial, self.path)


def row(tasks, report, entry="", student=None, notes=()):
    """The CSV row of ``report``: ``student``'s id and name (without a roster, the entry's name is the
    id), the entry's name, the points of each task, the total, out of, and the ``notes``."""
    student = student or Student(entry, "")
    return [student.id, student.name, entry, *(report.points(t.name)[0] for t in tasks), report.score,
            report.total, "; ".join(notes)]
