"""A reader opening a lecture op meets the formula right after the docstring.

For every public ``*_forward`` / ``*_backward`` function defined in a module of
``scratchvae/lecture/`` (module-level functions; methods are not walked):

* its body has a ``# BEGIN SOLUTION`` marker (the region the handout cuts out);
* the first statement after the marker, "the formula line", is at most the 4th
  statement of the body, counting the docstring as the 1st: at most three
  statements (argument checks of one call each, unpacking the cache) between
  the docstring and the maths;
* the formula line is within 25 lines of the ``def`` line, so a compact
  docstring and the first line of maths fit on one screen together;
* the docstring's last non-empty line is its ``Derivation: docs/<page>.md#<anchor>``.

Design: DESIGN.md, "Layout" (a reader opening a lecture op meets the formula
right after the docstring) and "The op contract".
"""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import scratchvae.lecture

BEGIN = "# BEGIN SOLUTION"
MAX_STATEMENT = 4  # the docstring is the 1st; at most three statements between it and the formula
MAX_LINES = 25  # from the def line to the formula line

# Ops that no classroom task hands out have no solution region: the handout refuses a
# region that no task names (scratchvae/classroom/handout.py). For these the number of
# statements before the maths (argument checks, unpacking the cache) is stated here, and
# the statement after them stands in for the formula line.
NOT_HANDED_OUT = {  # op: (statements before the formula, why there is no region)
    "gaussian_full.kl_full_covariance_forward": (1, "no task names it (scratchvae/classroom/tasks.py)"),
    "gaussian_full.kl_full_covariance_backward": (2, "no task names it (scratchvae/classroom/tasks.py)"),
    "tiny_vae.tiny_vae_forward": (0, "the tiny_vae task gives the forward and hands out the backward"),
}


def lecture_ops():
    """``(module name, function name, path, FunctionDef node, source lines)`` for every public op."""
    found = []
    for info in pkgutil.iter_modules(scratchvae.lecture.__path__):
        module = importlib.import_module(f"scratchvae.lecture.{info.name}")
        path = Path(inspect.getsourcefile(module))
        source = path.read_text()
        for node in ast.parse(source).body:
            if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
                continue
            if not node.name.endswith(("_forward", "_backward")):
                continue
            fn = getattr(module, node.name, None)
            if inspect.isfunction(fn) and fn.__module__ == module.__name__:
                found.append((info.name, node.name, path, node, source.splitlines()))
    return found


OPS = lecture_ops()


def test_the_walk_finds_the_ops():
    names = {f"{module}.{name}" for module, name, *_ in OPS}
    assert {"dense.dense_forward", "dense.dense_backward", "activations.relu_backward",
            "gaussian.reparameterize_forward", "likelihoods.bernoulli_log_likelihood_backward"} <= names
    assert set(NOT_HANDED_OUT) <= names, "an exemption names an op that no longer exists"


def formula_statement(node, lines):
    """``(index, statement, marker line)``: the first statement after the marker, 1-based index."""
    marker = next((i for i in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                   if lines[i - 1].strip() == BEGIN), None)
    if marker is None:
        return None, None, None
    for index, statement in enumerate(node.body, start=1):
        if statement.lineno > marker:
            return index, statement, marker
    return None, None, marker


@pytest.mark.parametrize("module, name, path, node, lines", OPS,
                         ids=[f"{module}.{name}" for module, name, *_ in OPS])
def test_the_formula_comes_first(module, name, path, node, lines):
    where = f"{module}.{name} ({path.relative_to(path.parents[2])}:{node.lineno})"
    has_docstring = ast.get_docstring(node) is not None
    assert has_docstring, f"{where}: no docstring"
    index, statement, marker = formula_statement(node, lines)
    if marker is None:
        assert f"{module}.{name}" in NOT_HANDED_OUT, (
            f"{where}: no '{BEGIN}' marker in its body (if no task hands it out, list it in "
            "NOT_HANDED_OUT with the number of statements before its formula and the reason)")
        checks, _ = NOT_HANDED_OUT[f"{module}.{name}"]
        index = checks + 2  # after the docstring and the checks
        statement = node.body[index - 1] if index <= len(node.body) else None
    assert statement is not None, f"{where}: no statement after '{BEGIN}' (line {marker})"
    between = index - 2  # statements between the docstring and the formula
    assert index <= MAX_STATEMENT, (
        f"{where}: the formula line {path.name}:{statement.lineno} is statement {index} of the body "
        f"({between} statements between the docstring and it; at most {MAX_STATEMENT - 2} allowed: "
        "argument checks of one call each, or unpacking the cache)")
    distance = statement.lineno - node.lineno
    assert distance <= MAX_LINES, (
        f"{where}: the formula line {path.name}:{statement.lineno} is {distance} lines after the def "
        f"(at most {MAX_LINES}); make the docstring compact, move long explanations above "
        f"'{BEGIN}' or into the module docstring")


@pytest.mark.parametrize("module, name, path, node, lines", OPS,
                         ids=[f"{module}.{name}" for module, name, *_ in OPS])
def test_the_derivation_link_is_the_docstring_last_line(module, name, path, node, lines):
    where = f"{module}.{name} ({path.relative_to(path.parents[2])}:{node.lineno})"
    docstring = ast.get_docstring(node) or ""
    filled = [line for line in docstring.splitlines() if line.strip()]
    last = filled[-1].strip() if filled else ""
    assert last.startswith("Derivation:"), (
        f"{where}: the docstring's last non-empty line (of {len(filled)}) should be "
        f"'Derivation: docs/<page>.md#<anchor>', got {last!r}")
