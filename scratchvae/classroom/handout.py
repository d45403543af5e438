"""The handout: a student project cut from the lecture, every marked body a stub.

The lecture marks the bodies a student writes with ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines, indented like the body. :func:`write_handout` copies
every lecture module into a package, ``studentvae/``, its imports pointed at
the package itself; in each marked region of a task handed out it puts one
line, ``raise NotImplementedError("<task>: see docs/<page>.md#<anchor>")``,
and keeps the docstring above, which states the task. The regions of tasks
not handed out keep the lecture's bodies, so the project always runs. Beside
the package go the tests the student may run (one pytest marker per task), the
derivation pages, a README and a ``pyproject.toml``. Training uses
``scratchvae``'s tools (data, training loop) and the student's package for the
maths: ``python -m studentvae.train``.
Guide: docs/exercises.md#for-teachers
"""

import ast
import shutil
import textwrap
from pathlib import Path

import scratchvae.lecture
from scratchvae.classroom.tasks import TASKS

__all__ = ["PACKAGE", "regions", "cut", "solution_lines", "write_handout"]

PACKAGE = "studentvae"  # the package a handout project holds, and marking looks for
LECTURE = Path(scratchvae.lecture.__file__).parent
DOCS = Path(scratchvae.__file__).resolve().parents[1] / "docs"
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
TEACHER_PAGES = ("exercises.md", "performance.md")  # not for the handout
OWNER = {function: task.name for task in TASKS.values() for function in task.functions}


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


def solution_lines(stubbed):
    """The lines a handout of ``stubbed`` tasks must not hold: each non-blank line of their
    regions that appears nowhere else in the lecture (``return dout`` is given elsewhere)."""
    inside, outside = set(), set()
    for path in sorted(LECTURE.glob("*.py")):
        lines = [line.strip() for line in path.read_text().splitlines()]
        marked = set()
        for begin, end, task in regions(path.stem, path.read_text()):
            marked.update(range(begin, end + 1))
            if task in stubbed:
                inside.update(line for line in lines[begin + 1 : end] if line)
        outside.update(line for i, line in enumerate(lines) if i not in marked)
    return inside - outside


def write_handout(folder, tasks=None):
    """Write a student project to ``folder``, with ``tasks`` (names; default all) as stubs.

    Returns
    -------
    Path
        The project folder.

    Raises
    ------
    FileExistsError
        If ``folder`` exists and is not empty: a student's work is never overwritten.
    """
    folder = Path(folder)
    stubbed = list(TASKS) if tasks is None else list(tasks)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} exists and is not empty; choose a new folder")
    package = folder / PACKAGE
    package.mkdir(parents=True)
    for path in sorted(LECTURE.glob("*.py")):
        (package / path.name).write_text(cut(path.stem, path.read_text(), stubbed))
    (package / "train.py").write_text(TRAIN)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_tasks.py").write_text(_tests(stubbed))
    (folder / "docs").mkdir()
    for page in sorted(DOCS.glob("*.md")):
        if page.name not in TEACHER_PAGES:
            shutil.copyfile(page, folder / "docs" / page.name)
    (folder / "pyproject.toml").write_text(_pyproject(stubbed))
    (folder / "README.md").write_text(_readme(stubbed))
    return folder


def _tests(stubbed):
    tests = [f'''

@pytest.mark.{name}
def test_{name}():
    """{TASKS[name].title}: docs/{TASKS[name].doc}"""
    assert_task(PROJECT, "{name}")
''' for name in stubbed]
    return textwrap.dedent('''\
        """One test per task, each with its marker: ``pytest -m dense`` runs the dense task's.

        Each test marks your code as your teacher's marker will: in a separate
        process, on fixed inputs, against the course's reference. A failure shows
        every check's message; a classic bug is named.
        """

        from pathlib import Path

        import pytest

        from scratchvae.classroom.check import assert_task

        PROJECT = Path(__file__).resolve().parents[1]
        ''') + "".join(tests)


def _pyproject(stubbed):
    markers = "".join(f'    "{name}: {TASKS[name].title}",\n' for name in stubbed)
    return f'''[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{PACKAGE}"
version = "0.1.0"
description = "A VAE from scratch in NumPy: my answers to the scratchvae course"
requires-python = ">=3.10"
# scratchvae for the tools only: data, the training loop, the marker. The maths is {PACKAGE}'s.
dependencies = ["numpy>=1.24", "scratchvae"]

[tool.setuptools]
packages = ["{PACKAGE}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
markers = [
{markers}]
'''


def _readme(stubbed):
    rows = "".join(f"| {k} | `{name}` | {TASKS[name].title} | "
                   f"{', '.join(f'`{f}`' for f in TASKS[name].functions)} | "
                   f"[docs/{TASKS[name].doc}](docs/{TASKS[name].doc}) |\n"
                   for k, name in enumerate(stubbed, start=1))
    return f"""# A VAE from scratch: your handout

`{PACKAGE}/` is the course's VAE in plain NumPy, with the bodies of the functions below taken
out: each raises `NotImplementedError` and names the page that derives it. The docstring above
each stub is the task: what it takes, what it returns, an example. Write the body, one formula
per line, and run its test.

```bash
pip install -e .                     # once, in the environment that has scratchvae
pytest -m dense                      # one task's test (pytest: all of them)
scratchvae check .                   # every task's marks, as your teacher's marker gives them
python -m {PACKAGE}.train --epochs 10  # the payoff: your ops train the VAE on MNIST
```

Later tasks run on your earlier code: the tiny VAE's backward calls your dense layer's, the
VAE's calls everything. Do the tasks in order.

| # | marker | task | you write | read |
|---|---|---|---|---|
{rows}
When every test passes, `python -m {PACKAGE}.train --epochs 10` trains the standard VAE
(784-400-20, Adam, batches of 128, dynamically binarised MNIST) with your own ops, modules and
optimiser, and prints its test ELBO: within a nat of the course's own after the same epochs.
"""


TRAIN = '''"""The payoff: train the standard VAE on MNIST with your own ops.

    python -m studentvae.train --epochs 10

Your VAE class, on your ops (its default ``ops`` is your package's ``ops``
module: every function of this package), with your Adam; scratchvae lends the
tools only: MNIST, and the training loop of ``scratchvae.tools.train.fit``.
The package's own models can run on your ops too:
``scratchvae.lecture.vae.VAE(784, ops=studentvae.ops)``.
"""

import argparse
import json

from scratchvae.tools.data import load_mnist
from scratchvae.tools.train import fit
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
