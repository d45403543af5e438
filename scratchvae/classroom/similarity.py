"""The similarity report: code to look at twice, task by task. Flagged, never penalised.

For each task, the code a submission wrote (its functions' bodies, less the
docstring and less the lines the handout gives around the solution region,
see :func:`scratchvae.classroom.handout.regions`) is normalised from its
syntax tree: comments and docstrings go, every argument and local variable
is renamed ``v0``, ``v1``... in order of first appearance, and the layout is
``ast.unparse``'s. Then

* bodies whose normalised trees are equal (``ast.dump``) are *identical*: to
  the lecture's solution, or to each other;
* other pairs whose normalised token streams have a sequence ratio
  (:class:`difflib.SequenceMatcher`) of at least ``threshold`` are *close*.

Code of fewer than :data:`MIN_TOKENS` tokens is not compared: there are few
ways to write ``np.maximum(x, 0)``. The submissions are only read, never
imported or run, from the same safe copy marking makes
(:func:`scratchvae.classroom.sandbox.copy_submission`: regular files of at
most 1 MB, no link followed); a file that does not parse is named in the
report and its tasks are left out.
Guide: docs/exercises.md#similarity
"""

import ast
import difflib
import io
import itertools
import tempfile
import tokenize
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from scratchvae.classroom.entries import open_entry
from scratchvae.classroom.handout import LECTURE, regions
from scratchvae.classroom.sandbox import copy_submission, printable
from scratchvae.classroom.variants import MODULE, REFERENCE

__all__ = ["LECTURE_NAME", "MIN_TOKENS", "THRESHOLD", "Code", "Findings", "normalise", "task_code",
           "read_submission", "compare", "similarity", "similarity_text", "write_similarity", "write_class_similarity"]

THRESHOLD = 0.9  # the sequence ratio from which a pair is listed as close
MIN_TOKENS = 30  # a task's code shorter than this is not compared
LECTURE_NAME = "(the lecture's solution)"
SHOWN = 20  # close pairs listed per task, at most
PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


class Code(NamedTuple):
    """A task's code, normalised: its tree (as ``ast.dump`` text) and its tokens."""

    dump: str
    tokens: tuple


class Findings(NamedTuple):
    """One task's findings: groups of identical code (each a tuple of names, the lecture's
    solution first if it is in the group), close pairs ``(ratio, a, b)``, and whether the
    lecture's solution was too short to compare."""

    task: str
    identical: tuple
    close: tuple
    short: bool  # the lecture's solution has fewer than MIN_TOKENS tokens: not compared


# --- Normalising a function ---------------------------------------------------------


class _Renamer(ast.NodeTransformer):
    """Rename ``names`` to ``v0``, ``v1``... in order of first appearance."""

    def __init__(self, names):
        self.names, self.canonical = names, {}

    def _new(self, name):
        if name in self.names:
            return self.canonical.setdefault(name, f"v{len(self.canonical)}")
        return name

    def visit_Name(self, node):
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node):
        node.arg, node.annotation = self._new(node.arg), None
        return node


def _locals(function):
    """The names a function binds: its arguments and every name it stores, less its globals."""
    bound = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    declared = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
    return bound - declared


def _is_docstring(statement):
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def normalise(function):
    """The statements of ``function`` (an ``ast.FunctionDef``), docstring dropped, locals renamed."""
    renamed = _Renamer(_locals(function)).visit(function)
    return [s for k, s in enumerate(renamed.body) if not (k == 0 and _is_docstring(s))]


def _dumps(statements):
    return [ast.dump(s) for s in statements]


def _written(statements, given):
    """The statements a student wrote: those left when the handout's own statements before the
    region (``given[0]``, dumps) and after it (``given[1]``) are taken off both ends."""
    (before, after), dumps = given, _dumps(statements)
    start = 0
    while start < min(len(before), len(dumps)) and dumps[start] == before[start]:
        start += 1
    stop = len(dumps)
    while len(dumps) - stop < len(after) and stop > start and dumps[stop - 1] == after[stop - len(dumps) - 1]:
        stop -= 1
    return statements[start:stop]


def _stub(statements):
    """Whether the statements are the handout's stub, or nothing: no attempt."""
    return all(isinstance(s, (ast.Pass, ast.Raise)) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
               for s in statements)


def _tokens(statements):
    """The tokens of the statements as ``ast.unparse`` writes them (so formatting cannot differ)."""
    text = ast.unparse(ast.Module(body=statements, type_ignores=[]))
    skip = {tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT}
    return tuple(t.string or tokenize.tok_name[t.type] for t in tokenize.generate_tokens(io.StringIO(text).readline)
                 if t.type not in skip)


def _find(tree, qualname):
    """The function ``qualname`` (``"Adam.update"``) defined at the top of ``tree``, or in a class
    there; the last definition wins, as when Python runs the module. None if there is none."""
    found, scope = None, tree.body
    for k, part in enumerate(qualname.split(".")):
        kind = ast.ClassDef if k < qualname.count(".") else (ast.FunctionDef, ast.AsyncFunctionDef)
        found = next((node for node in reversed(scope) if isinstance(node, kind) and node.name == part), None)
        if found is None:
            return None
        scope = found.body
    return found


# --- A task's code -----------------------------------------------------------------


def _lecture(tasks):
    """``{function: (given, solution)}`` for the functions of ``tasks``: the dumps of the statements
    the handout gives before and after the solution region, and the region's statements."""
    modules, found = {}, {}
    for name in (f for task in tasks for f in task.functions):
        module, qualname = name.split(".", 1)
        if module not in modules:
            source = (REFERENCE if module == MODULE else LECTURE / f"{module}.py").read_text()
            modules[module] = ast.parse(source), regions(module, source)
        tree, marked = modules[module]
        function = _find(tree, qualname)
        inside = [(b + 1, e + 1) for b, e, _ in marked if function.lineno <= b + 1 <= function.end_lineno]
        begin, end = inside[0][0], inside[-1][1]  # the marker lines, 1-based
        statements = normalise(function)
        before = [s for s in statements if s.end_lineno < begin]
        after = [s for s in statements if s.lineno > end]
        found[name] = (_dumps(before), _dumps(after)), statements[len(before):len(statements) - len(after)]
    return found


def _code(parts):
    """The :class:`Code` of a task's functions' statements (None for a function not written)."""
    dump = "\n".join(ast.dump(ast.Module(body=p, type_ignores=[])) if p else "-" for p in parts)
    tokens = tuple(itertools.chain.from_iterable((*_tokens(p or []), "<next function>") for p in parts))
    return Code(dump, tokens)


def task_code(trees, task, lecture):
    """The :class:`Code` a submission wrote for ``task``, or None where it wrote none of it.

    ``trees``: the submission's modules' syntax trees by module name (``None``:
    a single file, which holds every function); ``lecture``: :func:`_lecture`'s.
    """
    parts = []
    for name in task.functions:
        module, qualname = name.split(".", 1)
        tree = trees.get(module, trees.get(None))
        function = _find(tree, qualname) if tree else None
        try:
            written = _written(normalise(function), lecture[name][0]) if function else []
        except RecursionError:  # a body nested too deep to walk: not compared
            written = []
        parts.append(None if _stub(written) else written)
    return None if all(p is None for p in parts) else _code(parts)


def read_submission(submission):
    """The syntax trees of a submission's modules (``{module: tree}``; ``{None: tree}`` for a
    single file), read from a safe copy, and a note for each file that does not parse."""
    trees, problems = {}, []
    with tempfile.TemporaryDirectory(prefix="scratchvae-similarity-") as scratch:
        scratch = Path(scratch)
        copy_submission(submission, scratch)
        if submission.package is None:
            files = {None: scratch / "student.py"}
        else:
            files = {path.stem: path for path in sorted((scratch / submission.package).glob("*.py"))}
        for module, path in files.items():
            if not path.is_file():
                continue
            shown = path.relative_to(scratch) if module else Path(submission.path).name
            try:
                trees[module] = ast.parse(path.read_bytes())
            except SyntaxError as err:
                problems.append(f"{printable(str(shown))}: syntax error, line {err.lineno}")
            except PARSE_ERRORS as err:
                problems.append(f"{printable(str(shown))}: cannot be parsed ({type(err).__name__})")
    return trees, problems


# --- Comparing ----------------------------------------------------------------------


def compare(codes, threshold=THRESHOLD):
    """Identical groups and close pairs among ``codes`` (``{name: Code}``, in the order to report).

    Returns
    -------
    identical : tuple of tuple of str
        The names of each group of two or more with the same normalised tree.
    close : tuple of (float, tuple of str, tuple of str)
        Each pair of groups (a group may be one name) whose token streams have a
        sequence ratio of at least ``threshold``, most similar first.
    """
    groups = defaultdict(list)
    for name, code in codes.items():
        groups[code].append(name)
    identical = tuple(tuple(names) for names in groups.values() if len(names) > 1)
    distinct, close = list(groups.items()), []
    matcher = difflib.SequenceMatcher(autojunk=False)
    for j, (code_b, names_b) in enumerate(distinct):
        matcher.set_seq2(code_b.tokens)
        for code_a, names_a in distinct[:j]:
            matcher.set_seq1(code_a.tokens)
            if matcher.real_quick_ratio() >= threshold and matcher.quick_ratio() >= threshold:
                ratio = matcher.ratio()
                if ratio >= threshold:
                    close.append((ratio, tuple(names_a), tuple(names_b)))
    return identical, tuple(sorted(close, key=lambda c: -c[0]))


def similarity(submissions, tasks, threshold=THRESHOLD):
    """Every task's :class:`Findings`, and the files that could not be read (``{student: notes}``)."""
    lecture = _lecture(tasks)
    read = {s.name: read_submission(s) for s in submissions}
    findings = []
    for task in tasks:
        solution = _code([lecture[name][1] for name in task.functions])
        if len(solution.tokens) < MIN_TOKENS + len(task.functions):
            findings.append(Findings(task.name, (), (), True))
            continue
        codes = {LECTURE_NAME: solution}
        for name, (trees, _) in read.items():
            code = task_code(trees, task, lecture)
            if code is not None and len(code.tokens) >= MIN_TOKENS + len(task.functions):
                codes[name] = code
        findings.append(Findings(task.name, *compare(codes, threshold), False))
    return findings, {name: problems for name, (_, problems) in read.items() if problems}


def similarity_text(findings, problems, students, threshold=THRESHOLD):
    """The report, in markdown: the method and threshold, then each task's findings."""
    lines = ["# Similarity: code to look at twice", "",
             f"{students} submissions, compared task by task on the code each wrote (the solution regions "
             "of the handout), after normalising it: comments and docstrings dropped, arguments and local "
             "variables renamed v0, v1... in order of appearance, the layout of `ast.unparse`. "
             "*Identical*: the same normalised code. "
             f"*Close*: a sequence ratio (Python's difflib) of the normalised tokens of at least {threshold:.2f}. "
             f"Code of fewer than {MIN_TOKENS} tokens is not compared. These are for the teacher to read "
             "side by side; nothing here changes a mark, and a short task done the obvious way is often "
             "identical by chance.", ""]
    for found in (f for f in findings if not f.short):
        lines += [f"## {found.task}", ""]
        for group in found.identical:
            if group[0] == LECTURE_NAME:
                lines.append(f"- identical to the lecture's solution: {', '.join(group[1:])}")
            else:
                lines.append(f"- identical to each other: {', '.join(group)}")
        for ratio, a, b in found.close[:SHOWN]:
            lines.append(f"- close ({ratio:.2f}): {' = '.join(a)} ~ {' = '.join(b)}")
        if len(found.close) > SHOWN:
            lines.append(f"- and {len(found.close) - SHOWN} more close pairs")
        if not found.identical and not found.close:
            lines.append("- nothing identical, nothing close")
        lines.append("")
    short = [f.task for f in findings if f.short]
    if short:
        lines += [f"Not compared, the lecture's solution being shorter than {MIN_TOKENS} tokens: "
                  f"{', '.join(short)}.", ""]
    if problems:
        lines += ["## Files that could not be read (their tasks are left out)", ""]
        lines += [f"- {name}: {note}" for name, notes in problems.items() for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def write_similarity(submissions, tasks, path, threshold=THRESHOLD):
    """Write the similarity report of ``submissions`` on ``tasks`` to ``path``; return the findings."""
    findings, problems = similarity(submissions, tasks, threshold)
    Path(path).write_text(similarity_text(findings, problems, len(submissions), threshold))
    return findings


def write_class_similarity(entries, tasks, path, threshold=THRESHOLD):
    """:func:`write_similarity` for the entries of a class (:func:`scratchvae.classroom.entries.find_entries`'s):
    a zip is extracted for the time of the comparison, an entry with nothing to mark is left out."""
    with tempfile.TemporaryDirectory(prefix="scratchvae-similarity-") as scratch:
        submissions = []
        for k, entry in enumerate(entries):
            (Path(scratch) / str(k)).mkdir()
            submission, _ = open_entry(entry, Path(scratch) / str(k))
            submissions += [submission] if submission else []
        return write_similarity(submissions, tasks, path, threshold)
