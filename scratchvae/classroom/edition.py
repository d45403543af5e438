"""The student's edition of the lessons: ``tutorials/`` without the answers, run on the student's code.

The lessons in ``tutorials/`` are the reference edition. At each task a lesson has
three cells: a "Your turn — task ``name``" cell naming the file to write in, an
answer cell, and a check cell::

    # %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
    from scratchvae.classroom.edition import worked_answer

    answer = worked_answer("dense")  # prints the lecture's bodies; returns the functions

    # %%
    check("dense", answer)

The tag ``hide-cell`` collapses the answer on the site, ``jupyter.source_hidden``
hides it in a downloaded notebook, and the check runs on the answer's functions,
so a reference answer that breaks fails the lessons' tests. :func:`write_lessons`
turns each lesson into the student's edition by four rewrites, nothing by hand:

1. every cell tagged ``answer`` goes;
2. ``check("dense", answer)`` becomes ``check("dense")``, which checks the
   student's package (the check reloads it), followed by the lesson's imports
   from ``studentvae`` again, so the names below the check are the fresh code;
3. imports point at the handout: ``scratchvae.lecture`` and ``scratchvae.engine``
   at ``studentvae`` (the student's ops are the only ops), ``scratchvae.tools``
   at ``coursetools``, ``scratchvae.classroom.selfcheck`` at ``coursetools.selfcheck``;
4. links stay only where the handout has their target: ``../docs/<page>.md#<anchor>``
   (the handout's ``docs/``, but not the teachers' pages) and the other lessons; the
   others become plain text (:func:`scratchvae.classroom.pages.unshipped_link`).

:func:`taught` reads which lesson sets each task: the one whose check cell names it.

Guide: docs/exercises.md#for-teachers
"""

import ast
import importlib
import inspect
import re
import textwrap
from pathlib import Path

import jupytext

from scratchvae.classroom.handout import PACKAGE
from scratchvae.classroom.pages import shipped, unshipped_link
from scratchvae.classroom.tasks import TASKS
from scratchvae.classroom.toolkit import KIT, RENAMES, TUTORIALS, rewrite

__all__ = ["TUTORIALS", "IMPORTS", "worked_answer", "taught", "student_edition", "write_lessons"]

ANSWER = "answer"  # the tag of an answer cell
# The reference edition's modules -> the handout's: the tools' renames, plus the self-check and the
# engine's ops, which a lesson imports as `from scratchvae.engine import ops` (the handout's are the
# student's own). Longest first: the engine's two modules with twins come before the engine.
IMPORTS = {"scratchvae.classroom.selfcheck": f"{KIT}.selfcheck", **RENAMES, "scratchvae.engine": PACKAGE}
_CHECK = re.compile(r'^check\("(\w+)", answer\)$', re.M)
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


def worked_answer(task):
    """Print the lecture's worked answer to ``task`` and return its functions, for ``check``.

    Parameters
    ----------
    task : str
        A task's name, e.g. ``"dense"``.

    Returns
    -------
    dict
        ``"module.qualname"`` -> the lecture's function, for each function the task asks for.

    Examples
    --------
    >>> sorted(worked_answer("relu"))  # doctest: +ELLIPSIS
    # scratchvae/lecture/activations.py, relu_forward ...
    ['activations.relu_backward', 'activations.relu_forward']
    """
    if task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}; got {task!r}")
    functions = {}
    for name in TASKS[task].functions:
        module, qualname = name.split(".", 1)
        function = importlib.import_module(f"scratchvae.lecture.{module}")
        for part in qualname.split("."):
            function = getattr(function, part)
        print(f"# scratchvae/lecture/{module}.py, {qualname}\n{_without_docstring(function)}\n")
        functions[name] = function
    return functions


def taught(tutorials=TUTORIALS):
    """Which lesson sets each task: ``{task: "NN_name.py"}``, in the order the lessons set them.

    A lesson sets a task where its check cell says ``check("TASK", answer)``.

    Raises
    ------
    ValueError
        If a task is set by no lesson or by two, or a check cell names no task.
    """
    found = {}
    for script in sorted(Path(tutorials).glob("[0-9][0-9]_*.py")):
        for task in _CHECK.findall(script.read_text()):
            if task in found or task not in TASKS:
                raise ValueError(f"{script.name}: check(\"{task}\", answer) names " + (
                    f"a task that {found[task]} checks already" if task in found else "no task"))
            found[task] = script.name
    missing = [task for task in TASKS if task not in found]
    if missing:
        raise ValueError(f"no lesson sets the tasks {', '.join(missing)} (no check(\"TASK\", answer) cell "
                         f"in {tutorials})")
    return found


def _without_docstring(function):
    """``function``'s source, dedented, without its docstring."""
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    lines = source.splitlines()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        del lines[first.lineno - 1 : first.end_lineno]
    return "\n".join(lines)


def _student_imports(cells):
    """The lesson's ``from studentvae... import ...`` statements, one line each."""
    found = []
    for cell in cells:
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
                    found.append(ast.unparse(node))
    return found


def _rewrite_link(match):
    text, target = match.groups()
    if target.startswith(("http://", "https://", "#")):
        return match.group(0)
    page = re.fullmatch(r"\.\./docs/([\w-]+\.md)(#[\w-]+)?", target)
    if page and shipped(page.group(1)):
        return match.group(0)
    lesson = re.fullmatch(r"(\d\d_\w+)\.py", target)
    if lesson:
        return f"[{text}]({lesson.group(1)}.ipynb)"
    return unshipped_link(text, target)  # a teachers' page, or a repository path the handout does not have


def student_edition(script):
    """The student's edition of one lesson (a percent script) as a notebook, unexecuted.

    Raises
    ------
    ValueError
        If a code cell still imports ``scratchvae`` after the rewrites, or a check cell
        has no answer above it.
    """
    notebook = jupytext.read(script, fmt="py:percent")
    cells = [cell for cell in notebook.cells if ANSWER not in cell.metadata.get("tags", ())]
    for cell in cells:
        cell.source = rewrite(cell.source, IMPORTS)
        if cell.cell_type == "markdown":
            cell.source = _LINK.sub(_rewrite_link, cell.source)
    again = _student_imports(cells)
    for cell in cells:
        if cell.cell_type == "code" and _CHECK.search(cell.source):
            cell.source = _CHECK.sub(lambda m: "\n".join(
                [f'check("{m.group(1)}")  # checks your code, reloaded; then the names again:', *again]),
                cell.source)
        if cell.cell_type == "code" and re.search(r"^\s*(from|import) scratchvae\b", cell.source, re.M):
            raise ValueError(f"{Path(script).name}: a cell still imports scratchvae in the student's "
                             f"edition:\n{cell.source}")
        if cell.cell_type == "code" and re.search(r"\banswer\b", cell.source):
            raise ValueError(f"{Path(script).name}: a cell uses `answer` outside an answer cell and its "
                             f"check:\n{cell.source}")
    notebook.cells = cells
    notebook.metadata = {"kernelspec": _KERNEL, "jupytext": {"formats": "ipynb,py:percent"}}
    return notebook


def write_lessons(project, tutorials=TUTORIALS):
    """Write the student's edition of every lesson into ``project/lessons/``.

    For each ``tutorials/NN_name.py``: ``NN_name.ipynb`` (unexecuted: no outputs)
    and the percent script ``NN_name.py``, made by :func:`student_edition`.

    Parameters
    ----------
    project : str or Path
        The handout folder (it holds ``studentvae/``, ``coursetools/`` and ``docs/``).
    tutorials : Path
        The reference edition's folder.

    Returns
    -------
    list of Path
        The notebooks written, in course order.
    """
    folder = Path(project) / "lessons"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for script in sorted(Path(tutorials).glob("[0-9][0-9]_*.py")):
        notebook = student_edition(script)
        jupytext.write(notebook, folder / f"{script.stem}.py", fmt="py:percent")
        jupytext.write(notebook, folder / f"{script.stem}.ipynb", fmt="ipynb")
        written.append(folder / f"{script.stem}.ipynb")
    return written
