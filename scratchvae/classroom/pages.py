"""The handout's derivation pages, ``docs/``: the course's pages as a student reads them.

A handout ships the derivation pages but not the teachers' (:data:`TEACHER_PAGES`),
and it has no ``scratchvae`` and no ``tests/`` of the course. :func:`student_page`
rewrites a page for it:

- a link to a page the handout does not ship becomes plain text (``the course's
  performance page`` where the link's text is the page's name); a parenthesised
  link alone, ``([performance](performance.md))``, goes, and so does a table row
  that lists such a page;
- ``Implemented by:`` names the handout's modules (``studentvae.gaussian.…``,
  ``coursetools.data.…``) and leaves out the engine and what the handout does not have;
- ``Checked by:`` names the command that checks the section's task,
  ``python -m coursetools.check TASK``, and goes where no task checks the section.

:func:`student_reference` points a stub's ``docs/<teacher page>.md#<anchor>`` at the
page of the task that section implements. :func:`write_pages` copies the pages and the
images they show.
Guide: docs/exercises.md#for-teachers
"""

import re
import shutil
from pathlib import Path

import scratchvae
from scratchvae.classroom.tasks import TASKS
from scratchvae.classroom.toolkit import KIT, RENAMES, rewrite

__all__ = ["DOCS", "TEACHER_PAGES", "shipped", "unshipped_link", "student_page", "student_reference",
           "write_pages"]

DOCS = Path(scratchvae.__file__).resolve().parents[1] / "docs"
TEACHER_PAGES = ("exercises.md", "performance.md", "variants.md")  # not for the handout
_LINK = re.compile(r"\[([^\]]*)\]\(([\w-]+\.md)(#[\w-]+)?\)")  # a link to a page beside this one
_ALONE = re.compile(r" ?\(\[[^\]]*\]\(([\w-]+\.md)(#[\w-]+)?\)\)")  # "([text](page.md))", alone in brackets
_LISTED = re.compile(r", \[[^\]]*\]\(([\w-]+\.md)(#[\w-]+)?\)")  # ", [text](page.md)" in a list of links
_IMAGE = re.compile(r"!\[[^\]]*\]\((images/[\w.-]+)\)")
_NAME = re.compile(r"`([\w.]+)`")
_REFERENCE = re.compile(r"docs/([\w-]+\.md)#([\w-]+)")


def shipped(page):
    """Whether a handout's ``docs/`` holds ``page`` (a file name such as ``"gaussian.md"``)."""
    return page not in TEACHER_PAGES and (DOCS / page).is_file()


def unshipped_link(text, target):
    """What a link with ``text`` to ``target``, which the handout does not ship, becomes: plain text."""
    path = Path(target.partition("#")[0])
    return f"the course's {text} page" if path.suffix == ".md" and text == path.stem else text


def _link(match):
    text, page, _ = match.groups()
    return match.group(0) if shipped(page) else unshipped_link(text, page)


def _row_links_unshipped(line):
    """Whether a table row's first cell links a page the handout does not ship."""
    cells = line.split("|")
    return line.startswith("|") and any(not shipped(page) for _, page, _ in _LINK.findall(cells[1]))


def _implemented_by(names, tools):
    """The handout's names among ``scratchvae`` ``names``: the lecture's, and those of the ``tools`` it ships."""
    return [rewrite(name, RENAMES) for name in names
            if name.startswith("scratchvae.lecture.")
            or (name.startswith("scratchvae.tools.") and name.split(".")[2] in tools)]


def _tasks(names):
    """The tasks that ask for any of the lecture's ``names`` (``optim.Adam`` holds Adam's ``update``), in
    course order."""
    asked = [name.removeprefix("scratchvae.lecture.") for name in names if name.startswith("scratchvae.lecture.")]
    return [task for task, spec in TASKS.items()
            if any(f == name or f.startswith(f"{name}.") for f in spec.functions for name in asked)]


def student_page(text, tools):
    """A derivation page's ``text`` as a handout that ships ``tools`` (names of ``scratchvae.tools``
    modules, now in ``coursetools``) has it: see the module's docstring."""
    lines, tasks = [], []
    for line in text.splitlines(keepends=True):
        if _row_links_unshipped(line):
            continue
        if line.startswith("Implemented by:"):
            names = _NAME.findall(line)
            tasks = _tasks(names)
            ours = _implemented_by(names, tools)
            if ours:
                lines.append("Implemented by: " + ", ".join(f"`{name}`" for name in ours) + "\n")
            continue
        if line.startswith("Checked by:"):
            if tasks:
                lines.append("Checked by: " + ", ".join(f"`python -m {KIT}.check {t}`" for t in tasks) + "\n")
            continue
        line = _ALONE.sub(lambda m: m.group(0) if shipped(m.group(1)) else "", line)
        line = _LISTED.sub(lambda m: m.group(0) if shipped(m.group(1)) else "", line)
        lines.append(_LINK.sub(_link, line))
    return "".join(lines)


def _redirects():
    """``(page, anchor)`` -> the page of the task a teachers' section implements, ``"vae.md#backward"``."""
    found = {}
    for page in TEACHER_PAGES:
        path = DOCS / page
        parts = re.split(r'<a id="([\w-]+)"></a>', path.read_text()) if path.is_file() else []
        for anchor, section in zip(parts[1::2], parts[2::2]):
            names = [n for line in section.splitlines() if line.startswith("Implemented by:")
                     for n in _NAME.findall(line)]
            tasks = _tasks(names)
            if tasks:
                found[page, anchor] = TASKS[tasks[0]].doc
    return found


def student_reference(source):
    """``source`` (a stub module) with each ``docs/<page>.md#<anchor>`` of a teachers' page pointed at
    the page of the task that section implements, and the others left as they are."""
    redirects = _redirects()

    def point(match):
        page, anchor = match.groups()
        if shipped(page) or (page, anchor) not in redirects:
            return match.group(0)
        return f"docs/{redirects[page, anchor]}"

    return _REFERENCE.sub(point, source)


def write_pages(folder, tools):
    """Write the student's edition of every shipped page, and the images they show, into ``folder/docs/``;
    ``tools``: the names of the tools the handout ships (:func:`scratchvae.classroom.toolkit.write_toolkit`).

    Returns
    -------
    list of Path
        The pages written.
    """
    docs = Path(folder) / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    written = []
    for page in sorted(DOCS.glob("*.md")):
        if shipped(page.name):
            text = student_page(page.read_text(), tools)
            for image in _IMAGE.findall(text):
                (docs / image).parent.mkdir(exist_ok=True)
                shutil.copyfile(DOCS / image, docs / image)
            (docs / page.name).write_text(text)
            written.append(docs / page.name)
    return written
