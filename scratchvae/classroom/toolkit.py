"""The handout's tool kit, ``coursetools/``: the course's tools, and none of the lecture's answers.

A handout runs without scratchvae. What the student needs of the course
besides their own package (MNIST, checksum-verified; the training loop; the
figures; progress; the self-check) is copied here from ``scratchvae/tools``
by :func:`write_toolkit`, its imports rewritten (:data:`RENAMES`):
``scratchvae.tools`` becomes ``coursetools`` and ``scratchvae.lecture`` the
student's ``studentvae``; an engine module becomes its lecture twin, the op the
engine speeds up, so the tools run on the student's ops. The modules copied
are the transitive closure (:func:`closure`) of those the lessons import
(``tutorials/*.py``) and the student's ``train.py`` uses: a lesson that starts
using another tool pulls it in. A module that would still reach scratchvae or
Numba, or that holds a line of a lecture solution, stops the handout with a
:class:`ToolkitError`. The self-check ships beside them with the marker's
judging and probes (they import only NumPy and each other), and the reference
values, computed now (:func:`scratchvae.classroom.reference.write_records`).
Guide: docs/exercises.md#for-teachers
"""

import ast
import re
import shutil
from pathlib import Path

import scratchvae
import scratchvae.tools

__all__ = ["KIT", "RENAMES", "TUTORIALS", "ToolkitError", "closure", "rewrite", "write_toolkit"]

KIT = "coursetools"  # the tool kit's package in a handout
TOOLS = Path(scratchvae.tools.__file__).parent
CLASSROOM = Path(__file__).parent
TUTORIALS = Path(scratchvae.__file__).resolve().parents[1] / "tutorials"
SHIPPED = ("selfcheck", "judge", "probes", "variant_checks")  # the classroom modules the self-check needs, as they are
NEEDED = ("data", "train")  # what the student's train.py uses, besides what the lessons import
RENAMES = {  # module prefixes, longest first: what each import of the course becomes in a handout
    "scratchvae.engine.estimators": "studentvae.estimators",  # the engine's fast twin -> the lecture's op
    "scratchvae.engine.training": "studentvae.training",
    "scratchvae.lecture": "studentvae",
    "scratchvae.tools": KIT,
    "from scratchvae import": f"from {KIT} import",  # the version, for the downloader's User-Agent
}
INIT = '''"""The course's tools for your VAE: data, training, figures, and the self-check."""

__version__ = "{version}"  # the course's
'''
CHECK = f'''"""Check your tasks from the shell: ``python -m {KIT}.check [TASK ...]`` (default: every task)."""

from {KIT}.selfcheck import main

raise SystemExit(main())
'''
RECORDS = '''"""The reference values of every task, computed from the course's reference when this handout was made.

One ``<task>.npz`` per task: the inputs (the public draws), what the reference
returned on them and what the museum's classic bugs return. No reference code.
"""

from pathlib import Path

__all__ = ["PACKAGE", "TASKS", "record"]

PACKAGE = "studentvae"  # the self-check runs your package
TASKS = {tasks!r}  # in course order


def record(name):
    """The stored record of task ``name``."""
    from ..selfcheck import load_record

    return load_record(Path(__file__).with_name(f"{{name}}.npz"))
'''


class ToolkitError(ValueError):
    """A tool the handout needs cannot ship without scratchvae, Numba or a solution."""


def _imports(source):
    """Every module a source imports, at any depth (``from a import b`` gives ``a`` and ``a.b``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _tools(modules):
    """The ``scratchvae.tools`` modules among ``modules``, by their short name."""
    prefix = "scratchvae.tools."
    return {m[len(prefix):].split(".")[0] for m in modules if m.startswith(prefix)}


def closure(roots):
    """The tools ``roots`` need: their names, and those of every tool they import, transitively."""
    needed, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo += _tools(_imports((TOOLS / f"{name}.py").read_text()))
    return sorted(needed)


def lesson_tools():
    """The tools the lessons import."""
    return set().union(*(_tools(_imports(path.read_text())) for path in sorted(TUTORIALS.glob("[0-9]*.py"))))


def rewrite(source, renames=RENAMES):
    """``source`` with the course's imports pointed at the handout's packages (``renames``, longest first)."""
    pattern = "|".join(re.escape(prefix) for prefix in renames)  # longest first: dict order
    return re.sub(rf"\b({pattern})\b", lambda m: renames[m.group(1)], source)


def _refusal(name, source, secret):
    """Why tool ``name`` (rewritten ``source``) cannot ship, or None."""
    for module in sorted(_imports(source)):
        if module.split(".")[0] in ("scratchvae", "numba"):
            return f"{name}.py imports {module}, which a handout does not have"
    held = sorted(line.strip() for line in source.splitlines() if line.strip() in secret)
    if held or "# BEGIN SOLUTION" in source:
        return f"{name}.py holds a line of a lecture solution ({(held or ['# BEGIN SOLUTION'])[0]!r})"
    return None


def write_toolkit(project, secret, variants=()):
    """Write ``project/coursetools/``; ``secret``: the solution lines it must not hold; ``variants``:
    the variant tasks handed out, whose reference values it stores too.

    Returns
    -------
    list of str
        The tools copied.

    Raises
    ------
    ToolkitError
        For a tool that reaches scratchvae or Numba, or holds a solution line.
    """
    from scratchvae.classroom import reference  # here: it imports the marker, which imports the handout

    names = closure(lesson_tools() | set(NEEDED))
    sources = {name: rewrite((TOOLS / f"{name}.py").read_text()) for name in names}
    shipped = {name: (CLASSROOM / f"{name}.py").read_text() for name in SHIPPED}
    for name, source in {**sources, **shipped}.items():
        why = _refusal(name, source, secret)
        if why:
            raise ToolkitError(f"cannot write the handout's {KIT}/: {why}")
    kit = Path(project) / KIT
    if kit.exists():
        shutil.rmtree(kit)
    (kit / "reference").mkdir(parents=True)
    (kit / "__init__.py").write_text(INIT.format(version=scratchvae.__version__))
    for name, source in {**sources, **shipped}.items():
        (kit / f"{name}.py").write_text(source)
    if "explore" in names:  # the explorer's page and script, which it reads as package data
        shutil.copytree(TOOLS / "explorer", kit / "explorer")
    (kit / "check.py").write_text(CHECK)
    (kit / "reference" / "__init__.py").write_text(RECORDS.format(tasks=reference.TASKS + tuple(variants)))
    reference.write_records(kit / "reference", variants)
    return names
