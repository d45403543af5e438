"""Variant tasks: ops whose answers the lecture does not contain, for marks that count.

The lecture is public, so its 19 tasks are answered in the package a student
installs. A variant is a task like them (a forward/backward pair, the same
probe and checks) on an op the lecture does not have: the teacher picks some
(``scratchvae classroom handout DIR --variant elu gelu``; ``mark --variant``).
Each is a :class:`Variant`: its reference is
:mod:`scratchvae.classroom.variant_reference`, on the marker's side (the
marker looks ``variants.<name>_forward`` up there); the student gets
:func:`stub_module`'s cut of it as ``studentvae/variants.py``: the docstrings,
the argument checks and a raise where each body was. The teacher's
derivations are in docs/variants.md, a teacher page (not in the handout).

Besides forward values, backward values, the gradient check and extreme
inputs, a variant may bring checks of its forward's maths
(:mod:`scratchvae.classroom.variant_checks`, named by the task's option
``maths``): the softplus-sigma sampler's moments, the KL to N(m, s^2) against
Monte Carlo, the logistic likelihood's mean against the entropy.
Guide: docs/variants.md
"""

import ast
import re
from pathlib import Path

import numpy as np

from scratchvae.classroom import variant_reference
from scratchvae.classroom.tasks import EXTREME_X, SAMPLES, Task, _away_from_zero, _extremes, _op, _shuffled
from scratchvae.classroom.variant_checks import MATHS

__all__ = ["MODULE", "REFERENCE", "VARIANTS", "Variant", "handed_out", "select_variants", "stub_module"]

MODULE = "variants"  # the student's module, studentvae/variants.py; the marker's is variant_reference
REFERENCE = Path(variant_reference.__file__)  # the reference's source, marked like the lecture's
STREAM = 1000  # variants' draws: a stream of their own, apart from the course's tasks
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


class Variant(Task):
    """A variant task: a :class:`~scratchvae.classroom.tasks.Task` with a stream of draws of its own."""

    __slots__ = ()

    @property
    def place(self):
        """Where the variant's draws come from: a stream of their own, after the course's tasks."""
        return STREAM + list(VARIANTS).index(self.name)


def _variant(name, title, inputs, arrays, wrt=None):
    """A variant on ``variants.<name>_forward`` and ``_backward``, derived at docs/variants.md#<name>;
    the option ``maths`` names its forward's maths checks, if it has some (:data:`MATHS`)."""
    task = _op(name, title, MODULE, inputs, arrays, f"variants.md#{name.replace('_', '-')}", wrt)
    maths = {"maths": name} if name in MATHS else {}
    return Variant(*task._replace(options={**task.options, **maths}))


# --- The draws: public (fixed sizes) or a secret seed's (sizes drawn too) ----------------


def _extreme(draws, arrays, out_shape, scalars=None):
    """The extreme inputs under ``extreme/`` (columns shuffled for a secret seed), the ``scalars``
    (0-d inputs, name -> value) beside them, and their upstream gradient."""
    arrays = _extremes(_shuffled(draws, arrays), out_shape, draws.rng)
    return {**arrays, **{f"extreme/{k}": v for k, v in (scalars or {}).items()}}


def _shape(draws, public=(4, 5)):
    return draws.size(public[0], 2, 6), draws.size(public[1], 1, 6)


def _activation(draws, extra=None, away_from_zero=False):
    """x (and the activation's parameter ``extra``: name -> value), dout, and the extreme x."""
    rng, shape = draws.rng, _shape(draws)
    x = _away_from_zero(rng, shape) if away_from_zero else 3 * rng.standard_normal(shape)
    params = {name: np.array(value) for name, value in (extra or {}).items()}
    return {"x": x, **params, "dout": rng.standard_normal(shape),
            **_extreme(draws, {"x": EXTREME_X}, EXTREME_X.shape, params)}


def _elu(draws):
    return _activation(draws, {"alpha": draws.rng.uniform(0.5, 2.0)}, away_from_zero=True)


def _swish(draws):
    return _activation(draws, {"beta": draws.rng.uniform(0.5, 2.0)})


def _kl_gaussian_prior(draws):
    rng, shape, rows = draws.rng, _shape(draws, (4, 3)), draws.size(3, 2, 4)
    prior = {"prior_mean": np.array(rng.uniform(-1, 1)), "prior_std": np.array(rng.uniform(0.5, 2.0))}
    maths = {"mu": rng.standard_normal((rows, 2)),
             "log_var": rng.choice([-1.0, 1.0], (rows, 2)) * rng.uniform(0.3, 1.0, (rows, 2)), **prior}
    at_prior = 2 * np.log(prior["prior_std"]) + 1e-8  # q a hair's breadth from p: expm1's digits
    extreme = {"mu": np.array([[-1e4, 0.0, 3.0], [1e4, 1.0, -3.0]]),
               "log_var": np.array([[-700.0, at_prior, 40.0], [700.0, -40.0, 0.0]])}
    return {"mu": rng.standard_normal(shape), "log_var": rng.standard_normal(shape), **prior,
            "dout": rng.standard_normal(shape[0]), **_extreme(draws, extreme, (2,), prior),
            **{f"maths/{k}": v for k, v in maths.items()}}


def _softplus_reparameterize(draws):
    rng, shape = draws.rng, _shape(draws, (4, 3))
    arrays = {name: rng.standard_normal(shape) for name in ("mu", "rho", "eps")}
    mu, rho = rng.standard_normal(3), rng.uniform(-2.0, 2.0, 3)
    maths = {"mu": np.tile(mu, (SAMPLES, 1)), "rho": np.tile(rho, (SAMPLES, 1)),
             "eps": rng.standard_normal((SAMPLES, 3))}
    extreme = {"mu": rng.standard_normal(EXTREME_X.shape), "rho": EXTREME_X,
               "eps": rng.standard_normal(EXTREME_X.shape)}
    return {**arrays, "dout": rng.standard_normal(shape), **_extreme(draws, extreme, EXTREME_X.shape),
            **{f"maths/{k}": v for k, v in maths.items()}}


def _logistic(draws):
    rng, shape = draws.rng, _shape(draws, (4, 6))
    arrays = {name: rng.standard_normal(shape) for name in ("x", "mean", "log_scale")}
    mean, log_scale = rng.standard_normal(3), rng.uniform(-1.0, 1.0, 3)
    u = rng.uniform(size=(SAMPLES, 3))
    maths = {"x": mean + np.exp(log_scale) * np.log(u / (1 - u)),  # logistic samples, by the inverse CDF
             "mean": np.tile(mean, (SAMPLES, 1)), "log_scale": np.tile(log_scale, (SAMPLES, 1))}
    extreme = {"x": np.array([[1.0, -1.0, 0.5, 1e4, -1e4], [-0.5, 0.0, 1e3, 2.0, 0.0]]),
               "mean": np.zeros((2, 5)),
               "log_scale": np.array([[-700.0, -40.0, 0.0, 40.0, 700.0], [-700.0, -300.0, -1e-8, 300.0, 700.0]])}
    return {**arrays, "dout": rng.standard_normal(shape[0]), **_extreme(draws, extreme, (2,)),
            **{f"maths/{k}": v for k, v in maths.items()}}


VARIANTS = {variant.name: variant for variant in [
    _variant("elu", "ELU, the exponential linear unit", ("x", "alpha"), _elu, wrt=("x",)),
    _variant("swish", "Swish, x sigmoid(beta x) (SiLU at beta = 1)", ("x", "beta"), _swish, wrt=("x",)),
    _variant("gelu", "GELU, in its tanh approximation", ("x",), _activation),
    _variant("kl_gaussian_prior", "the KL divergence to a prior N(m, s^2 I)",
             ("mu", "log_var", "prior_mean", "prior_std"), _kl_gaussian_prior, wrt=("mu", "log_var")),
    _variant("softplus_reparameterize", "the reparameterised sample with sigma = softplus(rho)",
             ("mu", "rho", "eps"), _softplus_reparameterize, wrt=("mu", "rho")),
    _variant("logistic_log_likelihood", "the logistic log-likelihood, from location and log-scale",
             ("x", "mean", "log_scale"), _logistic, wrt=("mean", "log_scale")),
]}
"""Every variant task, by name."""


def select_variants(names):
    """The variants named, in :data:`VARIANTS`' order, or a ValueError naming the unknown."""
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"no variant called {', '.join(map(repr, unknown))}; "
                         f"the variants are {', '.join(VARIANTS)}")
    return [variant for name, variant in VARIANTS.items() if name in names]


def handed_out(package):
    """The variants whose stubs a handout's ``package`` folder holds in its ``variants.py``, in order.

    Read from the text (a line ``def <name>_forward(``), so a student's syntax error does not hide them.
    """
    path = Path(package) / f"{MODULE}.py"
    defined = set(re.findall(r"^def (\w+)_forward\(", path.read_text(), flags=re.M)) if path.is_file() else set()
    return [name for name in VARIANTS if name in defined]


# --- The student's module ---------------------------------------------------------------

STUDENT_DOCSTRING = '''"""Variant tasks: ops the lecture does not derive. The docstring above each stub is the task.

Write each body between the argument checks (given) and the return: the
forward's formula is in its docstring; the backward's you derive (the
gradient of sum(dout * out) with respect to each input it returns). Mind the
extreme inputs: the marker tries arguments such as +-1e4 and expects finite,
accurate values wherever the exact answer is finite.
"""
'''


def _names(node):
    """Every name a node of the syntax tree uses."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _defined(node):
    """The name a top-level statement defines, or None."""
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def stub_module(names, package="studentvae"):
    """The student's ``variants.py`` for the variants ``names``: the reference, every marked body a raise.

    Kept: the imports (``scratchvae.lecture`` becomes ``package``), and of the
    rest only what the chosen variants' functions use (their caches,
    constants, argument checks), each marked body replaced by
    ``raise NotImplementedError("<variant>: ...")``.
    """
    source = REFERENCE.read_text()
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    by_name = {_defined(node): node for node in tree.body if _defined(node)}
    wanted = {f"{name}_{part}" for name in (v.name for v in select_variants(names))
              for part in ("forward", "backward")}
    used = set().union(*(_names(by_name[f]) for f in wanted)) & set(by_name)
    kept = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
            or _defined(node) in wanted | used]
    pieces = [STUDENT_DOCSTRING]
    for node in kept:
        piece = lines[node.lineno - 1:node.end_lineno]
        owner = _defined(node) or ""
        pieces.append("\n\n" if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else "")
        pieces.append("".join(_cut(piece, owner.rsplit("_", 1)[0])))
    return "".join(pieces).replace("scratchvae.lecture", package)


def _cut(lines, variant):
    """``lines`` with each BEGIN ... END region replaced by one raise, indented like the markers."""
    out, inside = [], False
    for line in lines:
        if line.strip() == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{variant}: not written yet; '
                       'its docstring says what to compute")\n')
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return out
