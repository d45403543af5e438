"""The probes: what a student's code is asked to compute while it is marked.

This file runs in two places. The marking process imports it and runs each
probe on the reference (and on the museum's bugs); the sandbox copies it into
a child process, where :func:`main` runs the same probe on the student's code
and writes what came back, section by section, one ``.npz`` file each; and the
student's self-check (:mod:`scratchvae.classroom.selfcheck`) runs it in the
student's own process. It
imports nothing but NumPy and the standard library, so the child needs nothing
else, and it computes no mark: it only reports. Marks are made by
:mod:`scratchvae.classroom.mark`, in the marking process, from these reports.

A probe is ``probe(lookup, case, record)``: ``lookup("dense.dense_backward")``
finds a function (or a method, ``"optim.Adam.update"``) in the code under
test, ``case`` holds the inputs (arrays and options, see :class:`Case`), and
``record(section, thunk)`` runs ``thunk`` and keeps what it returns, a dict of
arrays, or what it raised.
Guide: docs/exercises.md#how-marking-works
"""

import importlib
import json
import traceback
import types
from pathlib import Path
from typing import NamedTuple

import numpy as np

STENCIL = (-2, -1, 1, 2)  # the fourth-order central difference's points, in steps of h
ERROR = "__error__"  # the key under which a section that raised records what it raised
ERROR_TYPE = "__error_type__"


class Case(NamedTuple):
    """A probe's inputs: float64 ``arrays`` by name, and JSON-able ``options``."""

    arrays: dict
    options: dict


class Missing(Exception):
    """The code under test does not define a name a probe looks up."""


def save_case(path, case):
    """Write ``case`` as one ``.npz`` file (options as JSON text; nothing pickled)."""
    np.savez(path, __options__=np.array(json.dumps(case.options)), **case.arrays)


def load_case(path):
    """Read a :class:`Case` written by :func:`save_case`."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if k != "__options__"}
        return Case(arrays, json.loads(str(npz["__options__"])))


# --- The probes ---------------------------------------------------------------------


def _arrays(case, prefix=""):
    """Fresh float64 copies of the forward's inputs, in order (``prefix`` picks a set)."""
    return [np.array(case.arrays[prefix + name], dtype=np.float64) for name in case.options["inputs"]]


def _gradients(result):
    """A backward's result as ``{"d0": ..., "d1": ...}``, one entry per gradient returned."""
    grads = result if isinstance(result, (tuple, list)) else (result,)
    return {f"d{k}": g for k, g in enumerate(grads)}


def op(lookup, case, record):
    """A forward/backward pair: values, the backward on the student's own cache, and
    the forward at the points a central difference needs.

    Sections: ``forward`` {out}; ``backward`` {d0, d1, ...}; ``gradcheck`` {one
    array per input in ``wrt``, shape (4, its size, *out.shape): the forward's
    output at each element moved by -2h, -h, h, 2h}; and, when the case has
    them, ``extreme_forward``, ``extreme_backward`` (the same at extreme
    inputs), ``no_overflow`` (the forward at the extreme inputs again, under
    ``np.errstate(over="raise")``, when the options ask for it: an overflow
    there is a FloatingPointError), ``dtypes`` {itemsize: the bytes per element
    of each gradient} (the forward and backward with the inputs the options'
    ``dtypes`` names cast to their dtype, when it does) and ``maths`` (the
    forward on the inputs of a property test).
    """
    forward, backward = case.options["forward"], case.options["backward"]
    names, h = case.options["inputs"], case.options["h"]

    def values(prefix=""):
        return {"out": lookup(forward)(*_arrays(case, prefix))[0]}

    def gradients(prefix=""):
        cache = lookup(forward)(*_arrays(case, prefix))[1]
        return _gradients(lookup(backward)(np.array(case.arrays[prefix + "dout"]), cache))

    def without_overflow(prefix):
        with np.errstate(over="raise"):
            return values(prefix)

    def in_dtypes():
        cast = case.options["dtypes"]
        args = [a.astype(cast.get(name, np.float64)) for name, a in zip(names, _arrays(case))]
        out, cache = lookup(forward)(*args)
        grads = _gradients(lookup(backward)(np.ones_like(out), cache))
        return {"itemsize": np.array([np.asarray(g).dtype.itemsize for g in grads.values()], dtype=np.float64)}

    def perturbed():
        result = {}
        for name in case.options["wrt"]:
            i, size = names.index(name), case.arrays[name].size
            outputs = []
            for k in STENCIL:
                for j in range(size):
                    args = _arrays(case)
                    args[i].flat[j] += k * h
                    outputs.append(np.asarray(lookup(forward)(*args)[0], dtype=np.float64))
            result[name] = np.reshape(outputs, (len(STENCIL), size) + outputs[0].shape)
        return result

    record("forward", values)
    record("backward", gradients)
    record("gradcheck", perturbed)
    if "extreme/dout" in case.arrays:
        record("extreme_forward", lambda: values("extreme/"))
        record("extreme_backward", lambda: gradients("extreme/"))
        if case.options.get("no_overflow"):
            record("no_overflow", lambda: without_overflow("extreme/"))
    if case.options.get("dtypes"):
        record("dtypes", in_dtypes)
    if "maths/" + names[0] in case.arrays:
        record("maths", lambda: values("maths/"))


def smooth(x):
    """The function whose gradient the numerical_gradient task computes: sin(x) * sum(x^2)."""
    return np.sin(x) * np.sum(x**2)


def fast_sine(x):
    """sin(10 x), element-wise: its third derivative is -100 times its first, so a two-point central
    difference is off by h^2 f'''/6, 1.7e-5 of the slope at h = 1e-3, and the five-point one by 3e-10."""
    return np.sin(10 * x)


def itself(x):
    """x itself, no copy: a numerical gradient that keeps f's output without copying it sees it move with x."""
    return x


class Raised(Exception):
    """What ``f`` raises on its second call in the numerical_gradient probe's ``raising`` section."""


def numerical_gradient(lookup, case, record):
    """``numerical_gradient(f, x, dout)`` for several f.

    Sections: ``gradient`` {grad, x_after} for f = :func:`smooth`; ``stencil``
    {grad} for :func:`fast_sine`; ``aliased`` {grad} for :func:`itself`;
    ``raising`` {x_after, raised (1 if f's exception came through)} for an f
    that raises :class:`Raised` on its second call.
    """
    def run(f):
        x = case.arrays["x"].copy()
        grad = lookup("gradcheck.numerical_gradient")(f, x, case.arrays["dout"].copy())
        return {"grad": grad, "x_after": x}

    def raising():
        x, calls = case.arrays["x"].copy(), []

        def f(v):
            calls.append(len(calls))
            if len(calls) == 2:
                raise Raised("f raised on its second call")
            return smooth(v)

        try:
            lookup("gradcheck.numerical_gradient")(f, x, case.arrays["dout"].copy())
        except Raised:
            return {"x_after": x, "raised": 1.0}
        return {"x_after": x, "raised": 0.0}

    record("gradient", lambda: run(smooth))
    record("stencil", lambda: {"grad": run(fast_sine)["grad"]})
    record("aliased", lambda: {"grad": run(itself)["grad"]})
    record("raising", raising)


class _Linear:
    """A stand-in module, ``out = x @ A``, that notes each backward call: (its number, accumulate)."""

    def __init__(self, number, A, calls):
        self.number, self.A, self.calls = number, A, calls

    def backward(self, dout, accumulate=True):
        self.calls.append((self.number, float(accumulate)))
        return dout @ self.A.T


def sequential(lookup, case, record):
    """``Sequential.backward`` over three stand-in linear modules, accumulating and not.

    Sections ``accumulate`` and ``write``: {dx, calls (module number, accumulate flag) in call order}.
    """
    def run(accumulate):
        calls = []
        modules = tuple(_Linear(k, case.arrays[f"A{k}"], calls) for k in range(3))
        chain = types.SimpleNamespace(modules=modules)
        dx = lookup("modules.Sequential.backward")(chain, case.arrays["dout"].copy(), accumulate)
        return {"dx": dx, "calls": np.array(calls, dtype=np.float64)}

    record("accumulate", lambda: run(True))
    record("write", lambda: run(False))


def adam(lookup, case, record):
    """Three calls of ``Adam.update`` on one parameter: section ``steps`` {p1, m1, v1, ..., v3}."""
    def run():
        p = case.arrays["p"].copy()
        m, v = np.zeros_like(p), np.zeros_like(p)
        out = {}
        for t in (1, 2, 3):
            optimizer = types.SimpleNamespace(t=t, **case.options["hypers"])
            optimizer.betas = tuple(optimizer.betas)
            lookup("optim.Adam.update")(optimizer, p, case.arrays[f"g{t}"].copy(), m, v)
            out.update({f"p{t}": p.copy(), f"m{t}": m.copy(), f"v{t}": v.copy()})
        return out

    record("steps", run)


STEP_CALLS = ("binarize", "forward", "backward", "update")  # what a training step calls, in order


class _Training:
    """Stand-ins for a model and an optimizer that note what a training step asks of them.

    ``calls`` holds the :data:`STEP_CALLS` codes in call order; ``seen``, what the forward and the
    backward were given. The forward returns ``loss`` and :attr:`cache`, which the backward must get.
    """

    def __init__(self, case, loss):
        self.calls, self.seen, self.cache, self.loss = [], {}, types.SimpleNamespace(), loss
        self.dtype = np.dtype(case.options["dtype"])
        ops = types.SimpleNamespace(binarize=self.binarize)
        self.model = types.SimpleNamespace(latent_dim=int(case.arrays["latent_dim"]), dtype=self.dtype, beta=1.0,
                                           ops=ops, negative_elbo_forward=self.forward,
                                           negative_elbo_backward=self.backward)
        self.optimizer = types.SimpleNamespace(step=lambda: self.calls.append(STEP_CALLS.index("update")))

    def binarize(self, images, rng, rows):
        """A real dynamic binarisation of ``images[rows]``, in the model's dtype."""
        self.calls.append(STEP_CALLS.index("binarize"))
        return (rng.random((len(rows), images.shape[1])) < images[rows]).astype(self.dtype)

    def forward(self, x, eps, beta=None, kl_estimator="analytic"):
        self.calls.append(STEP_CALLS.index("forward"))
        self.seen.update(x=np.array(x), eps=np.array(eps), beta=np.nan if beta is None else beta)
        return self.loss, self.cache

    def backward(self, dloss, cache, accumulate=True):
        self.calls.append(STEP_CALLS.index("backward"))
        self.seen.update(dout=dloss, accumulate=float(accumulate), cache=float(cache is self.cache))


def train_step(lookup, case, record):
    """``train_step`` on stand-ins (:class:`_Training`), the forward's loss finite, then not.

    Sections: ``step`` {x, eps, beta: what the forward got; dout, accumulate, cache (1 if the
    forward's): what the backward got; calls: the :data:`STEP_CALLS` codes in order}; ``returned``
    {loss, cache (1 if the forward's)}; ``non_finite``, the forward's loss NaN or infinite
    {raised (1 for a FloatingPointError), calls}.
    """
    def run(stand_ins):
        rng = np.random.default_rng(int(case.arrays["seed"]))
        rows = np.asarray(case.arrays["rows"]).astype(np.intp)
        return lookup("training.train_step")(stand_ins.model, stand_ins.optimizer, case.arrays["images"].copy(),
                                             rows, rng, float(case.arrays["beta"]))

    def step():
        stand_ins = _Training(case, float(case.arrays["loss"]))
        run(stand_ins)
        return {**stand_ins.seen, "calls": np.array(stand_ins.calls, dtype=np.float64)}

    def returned():
        stand_ins = _Training(case, float(case.arrays["loss"]))
        loss, cache = run(stand_ins)
        return {"loss": loss, "cache": float(cache is stand_ins.cache)}

    def non_finite():
        stand_ins, raised = _Training(case, float(case.arrays["bad_loss"])), 0.0
        try:
            run(stand_ins)
        except FloatingPointError:
            raised = 1.0
        return {"raised": raised, "calls": np.array(stand_ins.calls, dtype=np.float64)}

    record("step", step)
    record("returned", returned)
    record("non_finite", non_finite)


def _model(lookup, case, shift=0.0, prefix=""):
    """The code under test's VAE, in float64 on its own NumPy ops, with the case's parameters.

    ``shift`` moves every parameter along the case's ``direction/`` arrays; ``prefix`` picks
    another set of parameters (``underflow/``).
    """
    o = case.options
    model = lookup("vae.VAE")(o["input_dim"], hidden=tuple(o["hidden"]), latent_dim=o["latent_dim"],
                              dtype=np.float64)
    for name, param in model.params.items():
        param[...] = case.arrays[prefix + "param/" + name] + shift * case.arrays.get("direction/" + name, 0)
    return model


def vae(lookup, case, record):
    """``VAE.negative_elbo_backward`` with either KL, and the loss along a direction.

    Sections ``analytic`` and ``monte_carlo`` {each parameter's gradient, by
    name}; ``directional`` {losses: the loss at theta + k h u for k in the stencil}.
    """
    x, eps, beta = case.arrays["x"], case.arrays["eps"], float(case.arrays["beta"])

    def gradients(kl_estimator):
        model = _model(lookup, case)
        cache = model.negative_elbo_forward(x, eps, beta, kl_estimator)[1]
        model.zero_grad()
        model.negative_elbo_backward(1.0, cache)
        return {name: grad.copy() for name, grad in model.grads.items()}

    def directional():
        h = case.options["h"]
        return {"losses": np.array([_model(lookup, case, k * h).negative_elbo_forward(x, eps, beta)[0]
                                    for k in STENCIL])}

    record("analytic", lambda: gradients("analytic"))
    record("monte_carlo", lambda: gradients("monte_carlo"))
    record("directional", directional)


def importance_weighted(lookup, case, record):
    """``importance_weighted_bound`` on all the examples at once, and on one example at a time
    with the same generator (the noise is drawn example-major, so the bounds agree):
    sections ``at_once``, ``one_at_a_time`` {bound}; and ``underflow`` {bound}, all at once on
    the case's ``underflow/`` parameters and examples, whose log-weights are so negative that
    their exponentials underflow to 0."""
    def run(split, prefix=""):
        bound, model = lookup("estimators.importance_weighted_bound"), _model(lookup, case, prefix=prefix)
        x, k, rng = case.arrays[prefix + "x"], case.options["k"], np.random.default_rng(case.options["seed"])
        pieces = [x[b:b + 1] for b in range(len(x))] if split else [x]
        return {"bound": np.concatenate([np.ravel(bound(model, piece, k, rng)) for piece in pieces])}

    record("at_once", lambda: run(split=False))
    record("one_at_a_time", lambda: run(split=True))
    record("underflow", lambda: run(split=False, prefix="underflow/"))


def imports(lookup, case, record):
    """Import every module named in the case's options: section ``import`` {}, or what it raised."""
    def run():
        for name in case.options["modules"]:
            lookup(name)
        return {}

    record("import", run)


PROBES = {"op": op, "numerical_gradient": numerical_gradient, "sequential": sequential, "adam": adam,
          "train_step": train_step, "vae": vae, "importance_weighted": importance_weighted, "imports": imports}


def run_probe(kind, lookup, case, student_files=()):
    """Run a probe in this process; return ``{section: {name: array}}``, an error as ``{ERROR: text}``
    (which names the line of ``student_files`` it came from)."""
    sections = {}

    def record(section, thunk):
        sections[section] = _outcome(thunk, student_files)

    PROBES[kind](lookup, case, record)
    return sections


# --- In the child -------------------------------------------------------------------


def _outcome(thunk, student_files):
    """What ``thunk`` returned, as float64 arrays, or what it raised, described."""
    try:
        return {name: np.asarray(value, dtype=np.float64) for name, value in thunk().items()}
    except BaseException as err:  # SystemExit and KeyboardInterrupt too: the code under test raised them
        return {ERROR: np.array(describe(err, student_files)), ERROR_TYPE: np.array(type(err).__name__)}


def describe(err, student_files):
    """One line: what was raised and, if it came from the student's files, where."""
    what = f"{type(err).__name__}: {str(err).strip()}".rstrip(": ")
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename in student_files]
    if not frames:
        return what
    f = frames[-1]
    return f"{what} ({Path(f.filename).name}, line {f.lineno}, in {f.name})"


def submission_lookup(package):
    """``lookup`` for the code under test: ``package.<module>`` of a project, or the single module ``student``."""
    def lookup(name):
        module_name, *path = name.split(".")
        module = importlib.import_module(f"{package}.{module_name}" if package else "student")
        obj = module
        for part in path:
            if not hasattr(obj, part):
                where = f"{package}/{module_name}.py" if package else Path(module.__file__).name
                raise Missing(f"{'.'.join(path)} is not defined in {where}")
            obj = getattr(obj, part)
        return obj
    return lookup


def main(spec_path):
    """Run one probe on the student's code, as the sandbox's child.

    The spec (JSON) names the probe, the case file, the folder for the results
    and the submission's copy (``root``). Each section's result is written as
    soon as it is known, so what was done before a hang or a crash is kept.
    """
    spec = json.loads(Path(spec_path).read_text())
    root, results = Path(spec["root"]), Path(spec["results"])
    student_files = {str(p) for p in root.rglob("*.py")}
    case = load_case(spec["case"])

    def record(section, thunk):
        np.savez(results / f"{section}.npz", **_outcome(thunk, student_files))

    PROBES[spec["probe"]](submission_lookup(spec["package"]), case, record)
