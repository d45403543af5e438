"""The handout: a student project cut from the lecture, every marked body a stub, that runs without scratchvae.

The lecture marks the bodies a student writes with ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines, indented like the body. :func:`write_handout` copies
every lecture module into a package, ``studentvae/``, its imports pointed at
the package itself; in each marked region (every task's, always) it puts one
line, ``raise NotImplementedError("<task>: see docs/<page>.md#<anchor>")``,
and keeps the docstring above, which states the task. Beside the package go
the course's tools and the self-check with the reference values
(``coursetools/``, :mod:`scratchvae.classroom.toolkit`), the student's edition
of the lessons (``lessons/``, :mod:`scratchvae.classroom.edition`), the tests
the student may run (one pytest marker per task), the derivation pages, a
README and a ``pyproject.toml`` that does not name scratchvae. Training uses
the tool kit and the student's package: ``python -m studentvae.train``.
:func:`update_handout` brings all but ``studentvae/`` to the current course.
A handout is written whole or not at all: into a folder beside ``DIR``, renamed
to ``DIR`` at the end, after checking that the lessons' writer (jupytext) imports.
Guide: docs/exercises.md#for-teachers
"""

import ast
import importlib
import keyword
import os
import re
import shutil
import textwrap
import time
from pathlib import Path

import scratchvae.lecture
from scratchvae.classroom.pages import student_reference, write_pages
from scratchvae.classroom.tasks import TASKS
from scratchvae.classroom.toolkit import KIT, write_toolkit
from scratchvae.classroom.variants import MODULE, VARIANTS, handed_out, stub_module

__all__ = ["PACKAGE", "regions", "cut", "solution_lines", "write_handout", "update_handout"]

PACKAGE = "studentvae"  # the package a handout project holds, and marking looks for
LECTURE = Path(scratchvae.lecture.__file__).parent
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
OWNER = {function: task.name for task in (*TASKS.values(), *VARIANTS.values()) for function in task.functions}


def _functions(tree):
    """``(first line, last line, qualified name)`` of every function in a module's syntax tree."""
    found = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if isinstance(child, ast.FunctionDef):
                    found.append((child.lineno, child.end_lineno, name))
                visit(child, name + ".")
    visit(tree, "")
    return found


def regions(module, source):
    """``(begin, end, task)`` for each marked region of a lecture module: 0-based line numbers.

    Raises
    ------
    ValueError
        For a marker outside a function of a task, or markers that do not pair up.
    """
    lines = source.splitlines()
    functions = _functions(ast.parse(source))
    markers = [(i, line.strip()) for i, line in enumerate(lines) if line.strip() in (BEGIN, END)]
    if [m for _, m in markers] != [BEGIN, END] * (len(markers) // 2):
        raise ValueError(f"{module}.py: the solution markers do not pair up")
    found = []
    for (begin, _), (end, _) in zip(markers[::2], markers[1::2]):
        inner = [f for f in functions if f[0] <= begin + 1 <= f[1]]
        name = f"{module}.{max(inner)[2]}" if inner else None
        if name not in OWNER:
            raise ValueError(f"{module}.py, line {begin + 1}: a solution region in {name}, "
                             "which no task names")
        found.append((begin, end, OWNER[name]))
    return found


def cut(module, source, stubbed):
    """The handout's copy of a lecture module: ``stubbed`` tasks' regions replaced by a raise.

    Every marker line goes; the other regions keep their bodies; imports of
    ``scratchvae.lecture`` become imports of the student's package.
    """
    lines = source.splitlines(keepends=True)
    for begin, end, task in reversed(regions(module, source)):
        indent = lines[begin][: len(lines[begin]) - len(lines[begin].lstrip())]
        body = ([f'{indent}raise NotImplementedError("{task}: see docs/{TASKS[task].doc}")\n']
                if task in stubbed else lines[begin + 1 : end])
        lines[begin : end + 1] = body
    return "".join(lines).replace("scratchvae.lecture", PACKAGE)


def _telling(line):
    """Whether a line says more than Python's syntax: ``finally:`` and ``)`` do not."""
    return any(not keyword.iskeyword(word) for word in re.findall(r"[A-Za-z_]\w*", line))


def solution_lines(stubbed):
    """The lines a handout of ``stubbed`` tasks must not hold: each line of their regions that
    says more than syntax and appears nowhere else in the lecture (``return dout`` is given elsewhere)."""
    inside, outside = set(), set()
    for path in sorted(LECTURE.glob("*.py")):
        lines = [line.strip() for line in path.read_text().splitlines()]
        marked = set()
        for begin, end, task in regions(path.stem, path.read_text()):
            marked.update(range(begin, end + 1))
            if task in stubbed:
                inside.update(line for line in lines[begin + 1 : end] if _telling(line))
        outside.update(line for i, line in enumerate(lines) if i not in marked)
    return inside - outside


def _edition():
    """The lessons' writer, :mod:`scratchvae.classroom.edition` (it imports this module, so it is
    imported here), or a ModuleNotFoundError that says what to install."""
    try:
        return importlib.import_module("scratchvae.classroom.edition")
    except ModuleNotFoundError as err:
        if err.name != "jupytext":
            raise
        raise ModuleNotFoundError("the handout writes the lessons as notebooks with jupytext, which is not "
                                  "installed: pip install jupytext (or reinstall scratchvae, which "
                                  "requires it)", name=err.name) from None


def write_handout(folder, variants=()):
    """Write a student project to ``folder``: every task a stub, the tools, lessons, docs and tests;
    and the ``variants`` named (:mod:`scratchvae.classroom.variants`) as stubs in ``studentvae/variants.py``.

    The project is written into a folder beside ``folder`` and renamed at the end: a failure
    leaves ``folder`` as it was.

    Returns
    -------
    Path
        The project folder.

    Raises
    ------
    FileExistsError
        If ``folder`` exists and is not empty: a student's work is never overwritten.
    ModuleNotFoundError
        If jupytext, which writes the lessons, is not installed.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new folder "
                              "(or --update it, which keeps studentvae/)")
    _edition()
    folder.parent.mkdir(parents=True, exist_ok=True)
    draft = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    try:
        package = draft / PACKAGE
        package.mkdir(parents=True)
        for path in sorted(LECTURE.glob("*.py")):
            (package / path.name).write_text(student_reference(cut(path.stem, path.read_text(), TASKS)))
        (package / "train.py").write_text(TRAIN)
        if variants:
            (package / f"{MODULE}.py").write_text(stub_module(variants, PACKAGE))
        update_handout(draft)
        if folder.exists():
            folder.rmdir()  # empty, as checked above
        draft.rename(folder)
    finally:
        if draft.exists():
            shutil.rmtree(draft)
    return folder


def update_handout(folder):
    """Bring a handout's tools, lessons, docs, tests and README to the current course; keep ``studentvae/``.

    The student's lessons hold their own work too (the your-turn cells, outputs, and in
    ``lessons/runs/`` the model lesson 12 trained): the old ``lessons/`` is kept whole, renamed
    ``lessons-before-update-<date>-<time>/``, and its ``runs/`` moves into the new ``lessons/``.

    Returns
    -------
    pathlib.Path or None
        Where the old lessons are kept, or None if the handout had none.

    Raises
    ------
    FileNotFoundError
        If ``folder`` holds no ``studentvae/``: it is not a handout.
    ModuleNotFoundError
        If jupytext, which writes the lessons, is not installed.
    """
    folder = Path(folder)
    if not (folder / PACKAGE).is_dir():
        raise FileNotFoundError(f"{folder}: not a handout (no {PACKAGE}/ in it)")
    edition = _edition()
    order = edition.taught()
    variants = handed_out(folder / PACKAGE)  # those whose stubs studentvae/variants.py holds
    tools = write_toolkit(folder, solution_lines(set(TASKS)), variants)
    for name in ("tests", "docs"):
        if (folder / name).exists():
            shutil.rmtree(folder / name)
    kept = None
    if (folder / "lessons").exists():
        kept = folder / f"lessons-before-update-{time.strftime('%Y%m%d-%H%M%S')}"
        (folder / "lessons").rename(kept)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_tasks.py").write_text(_tests(variants))
    write_pages(folder, tools)
    edition.write_lessons(folder)
    if kept is not None and (kept / "runs").is_dir():
        (kept / "runs").rename(folder / "lessons" / "runs")  # the model lesson 12 saved, for lessons 13 and 14
    (folder / "pyproject.toml").write_text(_pyproject())
    (folder / "README.md").write_text(_readme(order))
    return kept


def _tests(variants):
    tests = [f'''

@pytest.mark.{name}
def test_{name}():
    """{task.title}: docs/{task.doc}"""
    check("{name}")
''' for name, task in {**TASKS, **{v: VARIANTS[v] for v in variants}}.items()]
    return textwrap.dedent(f'''\
        """One test per task, each with its marker: ``pytest -m dense`` runs the dense task's.

        Each runs the course's checks on your package, as the lessons' check cells
        do: the marker's checks, against the reference values stored in
        {KIT}/reference/. A failure names the task, the check and, when it
        recognises one, the classic bug.
        """

        import pytest

        from {KIT}.selfcheck import check
        ''') + "".join(tests)


def _pyproject():
    markers = "".join(f'    "{name}: {task.title}",\n' for name, task in TASKS.items())
    return f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{PACKAGE}"
version = "0.1.0"
description = "A VAE from scratch in NumPy: my answers to the scratchvae course"
requires-python = ">=3.10"
# The maths is {PACKAGE}'s, the tools {KIT}'s (both in this folder); Jupyter opens the lessons.
dependencies = ["numpy>=1.24", "matplotlib>=3.7", "tqdm>=4.60", "jupyterlab", "jupytext", "ipykernel"]

[project.optional-dependencies]
test = ["pytest"]

[tool.setuptools]
packages = ["{PACKAGE}", "{KIT}", "{KIT}.reference"]

[tool.setuptools.package-data]
"{KIT}" = ["explorer/*"]
"{KIT}.reference" = ["*.npz"]

[tool.pytest.ini_options]
testpaths = ["tests"]
markers = [
{markers}]
'''


COMMANDS = (  # the README's commands, each with what it does
    ('pip install -e ".[test]"', "once, in a fresh virtual environment (the [test] extra: pytest)"),
    ("jupyter lab lessons/00_*.ipynb", "start here; lesson by lesson, task by task"),
    (f"python -m {KIT}.check", f"every task's checks (python -m {KIT}.check dense: one)"),
    ("pytest -m dense", "the same checks as tests (pytest: all of them)"),
    (f"python -m {PACKAGE}.train --epochs 10", "the payoff: your ops train the VAE on MNIST"),
)


def _commands():
    width = max(len(command) for command, _ in COMMANDS) + 2
    return "\n".join(f"{command:<{width}}# {what}" for command, what in COMMANDS)


def _readme(order):
    """The handout's README; ``order``: ``{task: "NN_name.py"}``, the lesson that sets each task, in lesson order."""
    rows = "".join(f"| {k} | [{int(lesson[:2])}](lessons/{Path(lesson).stem}.ipynb) | `{name}` | "
                   f"{TASKS[name].title} | {', '.join(f'`{f}`' for f in TASKS[name].functions)} | "
                   f"[docs/{TASKS[name].doc}](docs/{TASKS[name].doc}) |\n"
                   for k, (name, lesson) in enumerate(order.items(), start=1))
    return f"""# A VAE from scratch: your handout

This is the course, to take in order: the lessons in `lessons/` teach the maths, and at each
task send you to `{PACKAGE}/`, the course's VAE in plain NumPy with the bodies of the functions
below taken out (each raises `NotImplementedError` and names the page that derives it; the
docstring above it is the task). Write the body, one formula per line, and run the check cell
under it: it runs the course's checks on your code and says ok, or what is wrong and which
section to reread. Then move on. Nothing here needs scratchvae: `{KIT}/` holds the tools
(MNIST, the training loop, the figures) and the checks, with reference values stored when this
handout was made.

```bash
{_commands()}
```

Later tasks run on your earlier code: the tiny VAE's backward calls your dense layer's, the
VAE's calls everything. Do the tasks in order: the order the lessons set them.

| # | lesson | task | what | you write | read |
|---|---|---|---|---|---|
{rows}
When every check passes, `python -m {PACKAGE}.train --epochs 10` trains the standard VAE
(784-400-20, Adam, batches of 128, dynamically binarised MNIST) with your own ops, modules and
optimiser, and prints its test ELBO. Your teacher may mark your `{PACKAGE}/` with other inputs
than the check's: code that computes the maths passes both.
"""


TRAIN = '''"""The payoff: train the standard VAE on MNIST with your own ops.

    python -m studentvae.train --epochs 10

Your VAE class, on your ops (its default ``ops`` is your package's ``ops``
module: every function of this package), with your Adam; the course lends the
tools only: MNIST, and the training loop of ``coursetools.train.fit``.
"""

import argparse
import json

from coursetools.data import load_mnist
from coursetools.train import fit
from studentvae.optim import make_optimizer
from studentvae.vae import VAE


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m studentvae.train",
                                     description="Train the standard VAE on MNIST with your ops.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, help="only the first N training and test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="folder holding mnist/ (default: $SCRATCHVAE_DATA)")
    parser.add_argument("--json", help="also write the test ELBO to this file")
    args = parser.parse_args(argv)
    data = load_mnist("mnist", data_dir=args.data_dir)
    cut = slice(args.limit)
    model = VAE(784, hidden=(400,), latent_dim=20, seed=args.seed)  # on your ops
    history = fit(model, data.x_train[cut], args.epochs, 128, make_optimizer("adam", model, 1e-3),
                  test=data.x_test[cut], seed=args.seed)
    test_elbo = history.records[-1]["test_elbo"]
    print(f"test ELBO {test_elbo:.2f} nats after {args.epochs} epochs, on your own ops")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"test_elbo": test_elbo, "epochs": args.epochs}, f)


if __name__ == "__main__":
    main()
'''
