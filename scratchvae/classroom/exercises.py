"""Exercises for a class, and the checker that marks them.

A teacher hands out a starter file, :func:`template`; the student fills in its
functions; :func:`check` marks them against the package's own implementation.
From a shell::

    python -m scratchvae.classroom.exercises --template student.py   # the starter file
    python -m scratchvae.classroom.exercises student.py              # mark it: a table and a total

Each exercise is one op of the package, a forward/backward pair with the
package's signatures. The student writes both (their cache may hold whatever
their backward needs), or only the backward when the exercise gives the
forward. This file holds the exercises (:data:`EXERCISES`, in course order),
:func:`check`, :func:`template` and the command; the checks and the report are
in scratchvae/classroom/marking.py, the tiny VAE of the last exercise in
scratchvae/lecture/tiny_vae.py.
Guide: docs/exercises.md

Examples
--------
>>> from scratchvae.lecture import dense as layers    # the package's own functions score full marks
>>> report = check(layers, only=["dense"])
>>> report.score, report.total
(2, 2)
"""

import argparse
import sys
import textwrap
import types
from pathlib import Path

import numpy as np

from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.lecture.activations import sigmoid_backward, sigmoid_forward
from scratchvae.lecture.dense import dense_backward, dense_forward
from scratchvae.lecture.likelihoods import bernoulli_log_likelihood_backward, bernoulli_log_likelihood_forward
from scratchvae.classroom.marking import (  # the checker: scratchvae/classroom/marking.py
    NOT_ATTEMPTED,
    Exercise,
    Outcome,
    Report,
    checks_for,
    kl_monte_carlo,
    load,
    mark,
    reparameterize_moments,
)
from scratchvae.lecture.tiny_vae import tiny_vae_backward, tiny_vae_forward  # the last exercise's reference

__all__ = ["EXERCISES", "Exercise", "Outcome", "Report", "check", "main", "template"]


# --- The exercises, in course order -----------------------------------------------


def _bernoulli_inputs(rng):
    x = rng.random((4, 6))  # grey levels ...
    x[:2] = x[:2].round()  # ... and binary pixels
    return {"x": x, "logits": 3 * rng.standard_normal((4, 6))}


def _bernoulli_extremes():
    logits = np.array([-1e4, 1e4, -1e3, 1e3, -50.0, 50.0])
    return {"x": np.array([[1.0], [0.0], [0.5]]) * np.ones(6), "logits": np.tile(logits, (3, 1))}


def _tiny_vae_inputs(rng):
    return {"x": rng.random((5, 6)).round(), "eps": rng.standard_normal((5, 2)),
            "W_enc": 0.5 * rng.standard_normal((6, 4)), "b_enc": 0.1 * rng.standard_normal(4),
            "W_dec": 0.5 * rng.standard_normal((2, 6)), "b_dec": 0.1 * rng.standard_normal(6),
            "beta": np.array(0.5)}


_TWO_PATHS = ("mu and log_var reach the loss along two paths, through z and through the KL "
              "term: their gradients add (docs/vae.md#backward)")

EXERCISES = {ex.name: ex for ex in [
    Exercise(
        name="dense", title="the dense layer's backward",
        forward="dense_forward", backward="dense_backward", writes=("dense_backward",),
        reference=(dense_forward, dense_backward), output="out",
        inputs=lambda rng: {"x": rng.standard_normal((4, 5)), "W": rng.standard_normal((5, 3)),
                            "b": rng.standard_normal(3)},
        wrt=("x", "W", "b"),
        tasks={"dense_backward": ("dout, cache", """
            Gradients of out = x @ W + b for x, W and b, one example per row.

            The forward is given, dense.dense_forward(x, W, b); its cache is
            DenseCache(x, W) with x of shape (B, D_in) and W of shape (D_in, D_out).
            dout = dL/d(out) has shape (B, D_out). Return (dx, dW, db), shaped
            like x, W and b. Read: docs/layers.md#dense""")},
        hints={"x": "dx has the shape of x: it pairs dout with W's rows",
               "W": "W[i, k] meets x[:, i] and dout[:, k] in every example: sum over the batch, "
                    "and keep W's shape (D_in, D_out)",
               "b": "b is shared by every example: its gradient sums dout over the batch"}),
    Exercise(
        name="sigmoid", title="the logistic sigmoid, forward and backward",
        forward="sigmoid_forward", backward="sigmoid_backward",
        writes=("sigmoid_forward", "sigmoid_backward"),
        reference=(sigmoid_forward, sigmoid_backward), output="y",
        inputs=lambda rng: {"x": 3 * rng.standard_normal((4, 5))},
        extremes=lambda: {"x": np.array([[-1e4, -1e3, -745.0, -40.0, -1e-8],
                                         [1e4, 1e3, 745.0, 40.0, 0.0]])},
        wrt=("x",),
        tasks={"sigmoid_forward": ("x", """
            The logistic sigmoid y = 1 / (1 + exp(-x)), element-wise, on an array of any shape.

            Return (y, cache); the cache holds whatever your backward needs.
            Every finite x must give a finite, correct y, x = -1e4 and 1e4 included.
            Read: docs/layers.md#sigmoid"""),
               "sigmoid_backward": ("dout, cache", """
            dx = dL/dx, from dout = dL/dy (shaped like y) and your forward's cache.

            Read: docs/layers.md#sigmoid""")},
        hints={"y": "y = 1 / (1 + exp(-x))",
               "x": "the derivative is y (1 - y) with y = sigmoid(x), the forward's output, "
                    "not x (1 - x)",
               "extreme": "exp(-x) overflows for x = -1e4 (and exp(x) for x = 1e4): compute "
                          "from exp(-|x|), which never does (docs/layers.md#sigmoid)"}),
    Exercise(
        name="reparameterize", title="the reparameterisation z = mu + sigma * eps",
        forward="reparameterize_forward", backward="reparameterize_backward",
        writes=("reparameterize_forward", "reparameterize_backward"),
        reference=(reparameterize_forward, reparameterize_backward), output="z",
        inputs=lambda rng: {"mu": rng.standard_normal((4, 3)),
                            "log_var": rng.standard_normal((4, 3)),
                            "eps": rng.standard_normal((4, 3))},
        maths=("moments of z", reparameterize_moments),
        wrt=("mu", "log_var"),
        tasks={"reparameterize_forward": ("mu, log_var, eps", """
            A sample z ~ N(mu, diag(exp(log_var))), written as a function of mu and log_var.

            mu, log_var and eps have shape (B, D_z); log_var is the log of the
            variance; eps is standard normal noise drawn by the caller. Return
            (z, cache). Read: note 000 (8); docs/gaussian.md#reparameterisation"""),
               "reparameterize_backward": ("dz, cache", """
            (dmu, dlog_var) from dz = dL/dz. eps is noise, not a parameter: no gradient.

            Read: docs/gaussian.md#reparameterisation""")},
        hints={"z": "z = mu + sigma * eps, where sigma is the standard deviation: the square "
                    "root of the variance exp(log_var)",
               "mu": "z moves one for one with mu",
               "log_var": "sigma = exp(log_var / 2): the chain rule brings down a factor 1/2"}),
    Exercise(
        name="kl_standard_normal", title="the KL divergence to N(0, I)",
        forward="kl_standard_normal_forward", backward="kl_standard_normal_backward",
        writes=("kl_standard_normal_forward", "kl_standard_normal_backward"),
        reference=(kl_standard_normal_forward, kl_standard_normal_backward), output="kl",
        inputs=lambda rng: {"mu": rng.standard_normal((4, 3)),
                            "log_var": rng.standard_normal((4, 3))},
        maths=("Monte Carlo", kl_monte_carlo),
        wrt=("mu", "log_var"),
        tasks={"kl_standard_normal_forward": ("mu, log_var", """
            KL(N(mu, diag(exp(log_var))) || N(0, I)) for each row: shape (B,).

            mu and log_var have shape (B, D_z). Return (kl, cache).
            Read: note 000 (11)-(13); docs/gaussian.md#kl-standard-normal"""),
               "kl_standard_normal_backward": ("dkl, cache", """
            (dmu, dlog_var), each (B, D_z), from dkl = dL/d(kl) of shape (B,).

            Read: docs/gaussian.md#kl-standard-normal""")},
        hints={"kl": "KL = 1/2 sum_j (exp(log_var_j) + mu_j^2 - 1 - log_var_j), one number "
                     "per row (note 000 (13))",
               "mu": "differentiate 1/2 mu^2, and scale each row by its dkl",
               "log_var": "differentiate 1/2 (exp(log_var) - log_var), and scale each row by "
                          "its dkl"}),
    Exercise(
        name="bernoulli_log_likelihood", title="the Bernoulli log-likelihood on logits",
        forward="bernoulli_log_likelihood_forward", backward="bernoulli_log_likelihood_backward",
        writes=("bernoulli_log_likelihood_forward", "bernoulli_log_likelihood_backward"),
        reference=(bernoulli_log_likelihood_forward, bernoulli_log_likelihood_backward),
        output="ll", inputs=_bernoulli_inputs, extremes=_bernoulli_extremes, wrt=("logits",),
        tasks={"bernoulli_log_likelihood_forward": ("x, logits", """
            log p(x | logits) = sum_j x_j log p_j + (1 - x_j) log(1 - p_j) for each row.

            p = sigmoid(logits) is the probability that a pixel is 1.
            x (B, D) holds pixels in [0, 1]; logits (B, D) may be any finite number,
            -1e4 and 1e4 included, where p rounds to 0 or 1. Return (ll, cache)
            with ll of shape (B,). Read: docs/likelihoods.md#bernoulli"""),
               "bernoulli_log_likelihood_backward": ("dll, cache", """
            dlogits (B, D) from dll = dL/d(ll) of shape (B,). x is data: no gradient.

            Read: docs/likelihoods.md#bernoulli""")},
        hints={"ll": "one number per row: the sum over the pixels",
               "logits": "d log p / d logit = x - sigmoid(logit), scaled by the row's dll",
               "extreme": "sigmoid(-1e4) rounds to 0 and log(0) = -inf: write log p from the "
                          "logits, x * l - softplus(l), with a softplus that cannot overflow "
                          "(docs/likelihoods.md#bernoulli)"}),
    Exercise(
        name="tiny_vae", title="the negative ELBO of a tiny VAE, backward",
        forward="tiny_vae_forward", backward="tiny_vae_backward", writes=("tiny_vae_backward",),
        reference=(tiny_vae_forward, tiny_vae_backward), output="loss",
        inputs=_tiny_vae_inputs, wrt=("W_enc", "b_enc", "W_dec", "b_dec"),
        tasks={"tiny_vae_backward": ("dloss, cache", """
            (dW_enc, db_enc, dW_dec, db_dec): the gradients of the tiny VAE's loss.

            The forward is given: tiny_vae.tiny_vae_forward(x, eps, W_enc, b_enc,
            W_dec, b_dec, beta). Read it first: its cache holds each op's cache
            (encoder, reparameterize, decoder, likelihood, kl), beta and the batch
            size. Call the ops' backwards (dense.dense_backward,
            gaussian.reparameterize_backward, gaussian.kl_standard_normal_backward,
            likelihoods.bernoulli_log_likelihood_backward) in the right order.
            Read: docs/vae.md#backward""")},
        hints={"W_enc": _TWO_PATHS, "b_enc": _TWO_PATHS,
               "W_dec": "the reconstruction term enters the loss as -(1/B) sum_b",
               "b_dec": "the reconstruction term enters the loss as -(1/B) sum_b"}),
]}


def _select(only):
    """The exercises named in ``only`` (all if None), in course order."""
    unknown = sorted(set(only or ()) - set(EXERCISES))
    if unknown:
        raise ValueError(f"only: no exercise called {', '.join(map(repr, unknown))}; "
                         f"the exercises are {', '.join(EXERCISES)}")
    return [name for name in EXERCISES if only is None or name in only]


def check(path_or_module, only=None):
    """Mark a student's functions, exercise by exercise.

    Parameters
    ----------
    path_or_module : str, Path or module
        The student's file (or an imported module) defining some of the
        functions that :func:`template` stubs out.
    only : list of str, optional
        Names of the exercises to mark (keys of :data:`EXERCISES`); default all.

    Returns
    -------
    Report
        ``score``, ``total``, ``passed``, the ``outcomes`` and a printable ``table()``.
        A missing function, or one raising NotImplementedError, is "not
        attempted"; one raising anything else fails with its error summarised.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If ``only`` names an unknown exercise.

    Examples
    --------
    >>> from scratchvae.lecture import gaussian
    >>> report = check(gaussian, only=["reparameterize", "kl_standard_normal"])
    >>> report.score, report.total
    (10, 10)
    """
    names = _select(only)
    if isinstance(path_or_module, types.ModuleType):
        module, error = path_or_module, ""
        source = getattr(module, "__file__", None) or module.__name__
    else:
        source = str(path_or_module)
        if not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such file (write a starter file with "
                                    f"python -m scratchvae.classroom.exercises --template {source})")
        module, error = load(source)
    outcomes = []
    for index, (name, ex) in enumerate(EXERCISES.items()):
        if name not in names:
            continue
        if module is None:
            outcomes += [Outcome(name, title, NOT_ATTEMPTED, 0, "the file could not be loaded")
                         for title, _, _ in checks_for(ex)]
        else:
            outcomes += mark(ex, index, module)
    return Report(source, tuple(outcomes), error)


# --- The starter file and the command ---------------------------------------------

TEMPLATE_HEADER = '''"""Exercises from scratchvae: write each function below, then mark them with

    python -m scratchvae.classroom.exercises {name}

Each function has the signature of the package's own. The checker compares
yours with the package's on seeded random inputs (float64), checks your
backward by finite differences against your forward and against the
package's, and tests the maths of your forward. A function that still raises
NotImplementedError is marked "not attempted". You may call any of the
package's functions except the one you are writing.
How the marking works: docs/exercises.md
"""

import numpy as np

from scratchvae.lecture import activations, dense, gaussian, likelihoods, tiny_vae  # ops to call
'''


def template(path, only=None, overwrite=False):
    """Write a starter file: a stub, with its task as docstring, for each function to write.

    Parameters
    ----------
    path : str or Path
        The file to write (``.py``).
    only : list of str, optional
        Exercises to include (keys of :data:`EXERCISES`); default all.
    overwrite : bool
        Replace an existing file; without it, an existing file is an error,
        so a student's work is never overwritten by accident.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check(template(folder / "student.py")).score  # every stub: not attempted
    0
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists already; choose another name (or overwrite it: "
                              "--force, overwrite=True)")
    parts = [TEMPLATE_HEADER.format(name=path.name)]
    for name in _select(only):
        ex = EXERCISES[name]
        rule = "-" * max(3, 70 - len(name) - len(ex.title))
        parts.append(f"\n\n# --- {name}: {ex.title} {rule}\n")
        for function in ex.writes:
            arguments, task = ex.tasks[function]
            doc = textwrap.indent(textwrap.dedent(task).strip(), "    ").lstrip()
            parts.append(f'\n\ndef {function}({arguments}):\n    """{doc}\n    """\n'
                         f'    raise NotImplementedError("{function}: not written yet")\n')
    path.write_text("".join(parts))
    return path


def _listing():
    lines = []
    for name, ex in EXERCISES.items():
        lines.append(f"{name}: {ex.title} (you write {', '.join(ex.writes)})")
        lines += [f"    {title}" for title, _, _ in checks_for(ex)]
    return "\n".join(lines)


def main(argv=None, prog="python -m scratchvae.classroom.exercises"):
    """Mark a file, write a starter file, or list the exercises; return the exit code.

    0 if every check passed (or the starter file was written), 1 if any check
    did not pass, 2 for a usage error (no such file, a starter file that
    would overwrite one).

    Examples
    --------
    >>> main(["student.py"])  # doctest: +SKIP
    """
    parser = argparse.ArgumentParser(
        prog=prog, description="Mark a student's exercises, or write a starter file.")
    parser.add_argument("file", nargs="?", help="the student's file to mark")
    parser.add_argument("--template", metavar="FILE", help="write a starter file to FILE")
    parser.add_argument("--force", action="store_true", help="with --template: overwrite FILE")
    parser.add_argument("--only", nargs="+", metavar="EXERCISE", choices=list(EXERCISES),
                        help=f"only these exercises ({', '.join(EXERCISES)})")
    parser.add_argument("--list", action="store_true", help="list the exercises and their checks")
    args = parser.parse_args(argv)
    if args.list:
        print(_listing())
        return 0
    if args.template:
        try:
            path = template(args.template, args.only, overwrite=args.force)
        except FileExistsError as err:
            print(f"{prog}: error: {err}", file=sys.stderr)
            return 2
        print(f"wrote {path}; the student fills it in and marks it with: {prog} {path}")
        return 0
    if args.file is None:
        parser.error("give the FILE to mark, or --template FILE, or --list")
    try:
        report = check(args.file, args.only)
    except FileNotFoundError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    print(report.table())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
