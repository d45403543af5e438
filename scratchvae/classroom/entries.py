"""What a class hands back: one :class:`Entry` per thing in the class folder, and where its work is.

Every entry of the folder ``mark`` is given becomes a row of the CSV, marked
or not, and when it is not, the row says why: an empty folder, a file that is
neither a ``.py`` file nor a ``.zip``, a folder without the handout, a zip
that cannot be read. The work is looked for where students put it:

* a handout project (a folder holding ``studentvae/``), or one a level down
  (``alice/week1/studentvae/``): used, and the row says so;
* a single ``.py`` file, or a folder (or zip) holding exactly one;
* a ``.zip`` of either, extracted (:func:`extract_zip`) into a scratch folder
  when it is marked: only its regular ``.py`` files, never outside that folder
  (no absolute path, no ``..``, no link), each at most ``MAX_FILE`` bytes, at
  most ``MAX_FILES`` members and ``ZIP_BYTES`` bytes in all.

Names are :func:`~scratchvae.classroom.sandbox.printable` (a name that is not
UTF-8 shows its bytes as ``\\xNN``, and the row says so); two entries with one
name (``alice.py`` and ``alice/``) are told apart as ``alice`` and
``alice-2``, and the row says so. Names starting with ``.`` (``.DS_Store``)
are not entries. Nothing here runs a student's code, follows a link inside an
entry, or opens anything that is not a regular file.
Guide: docs/exercises.md#for-teachers
"""

import os
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from scratchvae.classroom.handout import PACKAGE
from scratchvae.classroom.sandbox import MAX_FILE, MAX_FILES, MB, Submission, printable

__all__ = ["Entry", "find_entries", "open_entry", "extract_zip", "ZIP_BYTES", "PROJECT", "FILE", "ZIP"]

ZIP_BYTES = 16 * MB  # what a zip's extracted .py files may hold in all
ZIP_FILE = 64 * MB  # a larger zip is not opened (its index alone could fill the marker's memory)
PROJECT, FILE, ZIP = "project", "file", "zip"


class Entry(NamedTuple):
    """One thing handed in, and where its work is."""

    name: str  # unique in the class, printable: the CSV's "entry" column
    path: Path  # the project folder (maybe a level down), the .py file or the .zip; the entry itself if no work
    kind: str  # PROJECT, FILE, ZIP, or "" when there is nothing to mark
    notes: tuple = ()  # for the teacher and the student: where the work was found, a new name, why nothing is marked


def _mode(path):
    return os.lstat(path).st_mode


def _visible(folder):
    """The names in ``folder``, sorted, without hidden ones (``.DS_Store``) and macOS's ``__MACOSX``."""
    return sorted(n for n in os.listdir(folder) if not n.startswith(".") and n != "__MACOSX")


def _locate(folder, label):
    """``(kind, path, notes)``: where in ``folder`` (a real folder) the work is, or ``("", folder, (why,))``."""
    names = _visible(folder)
    if os.path.lexists(folder / PACKAGE):
        return PROJECT, folder, ()
    inner = [n for n in names if stat.S_ISDIR(_mode(folder / n)) and os.path.lexists(folder / n / PACKAGE)]
    if len(inner) == 1:
        return PROJECT, folder / inner[0], (f"the handout was found one level down, in {printable(inner[0])}/",)
    if inner:
        return "", folder, (f"{len(inner)} handouts in it ({', '.join(map(printable, inner))}): hand in one",)
    scripts = [n for n in names if n.endswith(".py") and stat.S_ISREG(_mode(folder / n))]
    if len(scripts) == 1:
        return FILE, folder / scripts[0], (f"its one .py file, {printable(scripts[0])}, marked as a single file",)
    if not names:
        return "", folder, (f"{label} is empty: nothing to mark",)
    return "", folder, (f"no {PACKAGE}/ package in {label} (nor one level down) and not one .py file: "
                        f"nothing to mark ({len(names)} entries in it)",)


def _entry(path, name):
    """The entry at ``path`` (looked at without following a link), named ``name``."""
    try:
        return _look(path, name)
    except OSError as err:  # a folder the marker may not read, say
        return Entry(name, path, "", (f"could not be read ({err.strerror}): nothing to mark",))


def _look(path, name):
    mode = _mode(path)
    if stat.S_ISLNK(mode) and path.suffix != ".py":
        return Entry(name, path, "", ("a symbolic link, not followed: nothing to mark",))
    if stat.S_ISDIR(mode):
        kind, where, notes = _locate(path, "the folder")
        return Entry(name, where, kind, notes)
    if path.suffix == ".py":
        return Entry(name, path, FILE)  # a link, a FIFO or a device is copied as nothing, and the feedback says so
    if path.suffix.lower() == ".zip" and stat.S_ISREG(mode):
        return Entry(name, path, ZIP)
    return Entry(name, path, "", ("not a folder, a .py file or a .zip: nothing to mark",))


def _named(path):
    """An entry's name: a file's without its .py or .zip, printable; and a note if it had to be escaped."""
    raw = path.stem if path.suffix.lower() in (".py", ".zip") else path.name
    name = printable(raw)
    return name, ((f"its name is not plain UTF-8 text: shown as {name}",) if name != raw else ())


def find_entries(paths, skip=()):
    """The entries in ``paths``: each a handout project, a ``.py`` file, a ``.zip``, or a folder of them.

    A path given is followed wherever it leads (the teacher named it): a project
    or a file is one entry; a folder that is neither is a class, each visible
    name in it one entry, in sorted order. ``skip``: paths that are not entries
    (the marker's own CSV and feedback folder, if they are in the class folder).

    Raises
    ------
    FileNotFoundError
        For a path that does not exist.
    """
    skip = {Path(p).resolve() for p in skip}
    found = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or folder")
        path = path.resolve()
        if path.is_dir() and not os.path.lexists(path / PACKAGE):
            found += [(path / n, *_named(path / n)) for n in _visible(path) if (path / n) not in skip]
        else:
            found.append((path, *_named(path)))
    entries = [_entry(path, name) for path, name, _ in found]
    return _unique([entry._replace(notes=notes + entry.notes) for entry, (_, _, notes) in zip(entries, found)])


def _unique(entries):
    """The entries, a name met again made unique (``alice-2``), with a note saying so."""
    taken, unique = {e.name for e in entries}, []
    seen = set()
    for entry in entries:
        if entry.name in seen:
            k = 2
            while f"{entry.name}-{k}" in taken:
                k += 1
            note = f"renamed {entry.name}-{k}: another entry is also called {entry.name}"
            entry = entry._replace(name=f"{entry.name}-{k}", notes=(note, *entry.notes))
            taken.add(entry.name)
        seen.add(entry.name)
        unique.append(entry)
    return unique


def open_entry(entry, scratch):
    """``(submission, notes)``: the entry's work as a :class:`Submission` (a zip is extracted under
    ``scratch``, a folder that lives while it is marked), or None; and the notes on it, the last
    saying why when there is no submission."""
    if entry.kind in (PROJECT, FILE):
        return Submission(entry.name, entry.path, PACKAGE if entry.kind == PROJECT else None), entry.notes
    if entry.kind != ZIP:
        return None, entry.notes
    try:
        left_out = extract_zip(entry.path, scratch)
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        return None, (*entry.notes, f"a zip that cannot be read ({printable(str(err))}): nothing to mark")
    notes = (*entry.notes, "a zip: its .py files extracted and marked", *left_out)
    kind, path, found = _locate(scratch, "the zip")
    if not kind:
        return None, notes + found
    return Submission(entry.name, path, PACKAGE if kind == PROJECT else None), notes + found


def _member_path(name):
    """A zip member's path under the extraction folder, or None if it would land outside it."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or ":" in parts[0]:
        return None
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        return None
    return Path(*parts)


def extract_zip(path, target):
    """Extract the regular ``.py`` files of the zip at ``path`` under ``target``; return notes on what was
    left out (a member whose path is absolute or climbs out with ``..``, a link, a file over ``MAX_FILE``
    bytes, members past ``MAX_FILES`` or past ``ZIP_BYTES`` bytes in all). A zip over ``ZIP_FILE`` bytes
    is not opened (OSError)."""
    notes, total = [], 0
    if os.path.getsize(path) > ZIP_FILE:
        raise OSError(f"larger than {ZIP_FILE // MB} MB")
    with zipfile.ZipFile(path) as packed:
        for k, info in enumerate(packed.infolist()):
            where = _member_path(info.filename)
            shown = printable(info.filename)
            if k >= MAX_FILES:
                notes.append(f"{shown} and what follows: the zip holds more than {MAX_FILES} entries")
                break
            if info.is_dir() or not info.filename.endswith(".py"):
                continue
            if where is None:
                notes.append(f"{shown}: a path outside the zip's folder, not extracted")
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                notes.append(f"{shown}: a symbolic link, not followed")
                continue
            with packed.open(info) as member:
                data = member.read(MAX_FILE + 1)
            if len(data) > MAX_FILE:
                notes.append(f"{shown}: larger than {MAX_FILE // MB} MB")
                continue
            total += len(data)
            if total > ZIP_BYTES:
                notes.append(f"{shown} and what follows: more than {ZIP_BYTES // MB} MB of .py files")
                break
            try:
                (target / where).parent.mkdir(parents=True, exist_ok=True)
                (target / where).write_bytes(data)
            except OSError as err:  # a path met twice, as a file and as a folder
                notes.append(f"{shown}: not extracted ({err.strerror})")
    return notes
