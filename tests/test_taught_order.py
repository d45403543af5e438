"""Nothing used before it is taught: the lessons against the table in tutorials/README.md.

The table ("Which lesson teaches which name") gives, for every name a lesson imports from the
package, the lesson that teaches it. Each lesson is read as Python (a percent script is one):
its imports from ``scratchvae.*`` and every later use of what they bind, ``VAE(...)`` as well as
``plots.plot_samples(...)`` (a module's attribute is the name used). A name used in a lesson
before the one that teaches it needs, in the cell of its first use or the cell just above, a
line naming it in backquotes with "taken on trust until lesson N", N as in the table.
``scratchvae.classroom`` (the check cells' ``check``, the answer cells' ``worked_answer``) is
the course's machinery and is not walked.
"""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
LESSONS = sorted(TUTORIALS.glob("[0-9][0-9]_*.py"))
TRUST = re.compile(r"taken on trust until lesson (\d+)", re.IGNORECASE)
MACHINERY = "scratchvae.classroom"


def number(lesson):
    return int(lesson.name[:2])


def taught_table(readme=TUTORIALS / "README.md"):
    """{(module, name): lesson} from the README's table; a name listed twice is an error."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## Which lesson teaches which name", 1)[1].split("\n## ", 1)[0]
    table = {}
    for lesson, module, names in re.findall(r"^\| *(\d+) *\| *`([\w.]+)` *\| *(.+?) *\|$", section, re.M):
        for name in re.findall(r"`(\w+)`", names):
            assert (module, name) not in table, f"{module}.{name} is in the table twice"
            table[module, name] = int(lesson)
    return table


def is_module(dotted):
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def package_names_used(source):
    """{(module, name): line of first use} for what ``source`` takes from ``scratchvae``.

    The first use is the first line, after the import, that names it; a name imported and
    never used counts from its import.
    """
    tree = ast.parse(source)
    bound = {}  # local name -> (module, name), or the dotted path of a module
    imported = {}  # local name -> the line of its import
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scratchvae"):
            if node.module.startswith(MACHINERY):
                continue
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                bound[alias.asname or alias.name] = dotted if is_module(dotted) else (node.module, alias.name)
                imported[alias.asname or alias.name] = node.lineno
        elif isinstance(node, ast.Import):
            assert not any(a.name.startswith("scratchvae") for a in node.names), (
                f"line {node.lineno}: import names from scratchvae (from ... import ...), as the lessons do")
    uses, used = {}, set()
    through_module = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and isinstance(bound.get(node.value.id), str)):
            through_module.add(id(node.value))
            _record(uses, (bound[node.value.id], node.attr), node.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in bound:
            used.add(node.id)
            if id(node) not in through_module:
                _record(uses, _key(bound[node.id]), node.lineno)
    for local, line in imported.items():
        if local not in used:
            _record(uses, _key(bound[local]), line)
    return uses


def _key(target):
    return tuple(target.rsplit(".", 1)) if isinstance(target, str) else target


def _record(uses, key, line):
    uses[key] = min(line, uses.get(key, line))


def cell_of(lines, line):
    """The (first, last) line numbers of the percent-script cell holding ``line`` (1-based)."""
    starts = [i + 1 for i, text in enumerate(lines) if text.startswith("# %%")] + [len(lines) + 1]
    index = max(i for i, start in enumerate(starts) if start <= line) if line >= starts[0] else -1
    return index, starts


def trust_lines(lines, line):
    """The lines of the cell holding ``line`` and of the cell just above it."""
    index, starts = cell_of(lines, line)
    first = starts[max(index - 1, 0)] if index >= 0 else 1
    last = starts[index + 1] - 1 if index >= 0 else starts[0] - 1
    return lines[first - 1:last]


def trusted(lines, line, name, lesson):
    for text in trust_lines(lines, line):
        found = TRUST.search(text)
        if found and f"`{name}`" in text and int(found.group(1)) == lesson:
            return True
    return False


def test_the_table_names_real_things_taught_where_it_says():
    table = taught_table()
    assert len(table) > 40
    lessons = {number(path): path.read_text(encoding="utf-8") for path in LESSONS}
    problems = []
    for (module, name), lesson in sorted(table.items()):
        if not is_module(f"{module}.{name}") and not hasattr(importlib.import_module(module), name):
            problems.append(f"{module} has no {name}")
        elif lesson not in lessons:
            problems.append(f"{module}.{name}: the table says lesson {lesson}, which does not exist")
        elif not re.search(rf"\b{name}\b", lessons[lesson]):
            problems.append(f"lesson {lesson} is to teach {name} but never names it")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.name)
def test_nothing_is_used_before_it_is_taught(lesson):
    table = taught_table()
    source = lesson.read_text(encoding="utf-8")
    lines = source.splitlines()
    problems = []
    for (module, name), line in sorted(package_names_used(source).items(), key=lambda item: item[1]):
        if (module, name) not in table:
            problems.append(f"line {line}: {module}.{name} is not in the table of tutorials/README.md")
        elif table[module, name] > number(lesson) and not trusted(lines, line, name, table[module, name]):
            problems.append(f"line {line}: `{name}` is taught in lesson {table[module, name]}; add near its "
                            f"first use: \"`{name}`: taken on trust until lesson {table[module, name]}\"")
    assert not problems, f"{lesson.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.name)
def test_every_trust_line_agrees_with_the_table(lesson):
    """A "taken on trust until lesson N" line names its names, each taught in lesson N, after this one."""
    by_name = {}
    for (_, name), taught in taught_table().items():
        by_name.setdefault(name, set()).add(taught)
    for line, text in enumerate(lesson.read_text(encoding="utf-8").splitlines(), 1):
        found = TRUST.search(text)
        if not found:
            continue
        names = [name for name in re.findall(r"`(\w+)`", text) if name in by_name]
        assert names, f"{lesson.name}:{line}: a trust line names no name of the table in backquotes"
        for name in names:
            assert by_name[name] == {int(found.group(1))}, (
                f"{lesson.name}:{line}: `{name}` is taught in lesson {sorted(by_name[name])}, "
                f"not {found.group(1)}")
            assert int(found.group(1)) > number(lesson), f"{lesson.name}:{line}: `{name}` is taught already"


def test_the_walk_sees_names_modules_and_late_uses():
    source = (
        "from scratchvae.lecture.vae import VAE\n"
        "from scratchvae.tools import plots\n"
        "from scratchvae.lecture.optim import Adam\n"
        "x = 1\n"
        "model = VAE(784)\n"
        "plots.plot_samples(model)\n"
    )
    assert package_names_used(source) == {
        ("scratchvae.lecture.vae", "VAE"): 5,
        ("scratchvae.tools.plots", "plot_samples"): 6,
        ("scratchvae.lecture.optim", "Adam"): 3,  # imported, never used: counts from the import
    }
    lines = ["# %% [markdown]", "# `VAE`: taken on trust until lesson 9", "", "# %%", "model = VAE(784)"]
    assert trusted(lines, 5, "VAE", 9)
    assert not trusted(lines, 5, "VAE", 11)
    assert not trusted(lines, 5, "Adam", 9)
    assert not trusted(["# %%", "# `VAE`: taken on trust until lesson 9", "# %%", "y = 2", "# %%", "VAE(1)"],
                       6, "VAE", 9)
