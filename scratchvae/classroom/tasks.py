"""The tasks of the course, in order: what a student writes, where it is explained, what it is asked.

Each :class:`Task` names the lecture functions whose marked bodies the student
writes (``# BEGIN SOLUTION`` ... ``# END SOLUTION`` in ``scratchvae/lecture``),
the derivation to read, and the probe that marking runs on them, with the
inputs: :meth:`Task.case` draws them from a generator seeded by the task's
place in the course, so every run of the marker asks the same questions.
Later tasks run on the student's earlier code, as in minitorch: the tiny VAE's
backward calls the student's dense, sampler, KL and likelihood backwards.
Guide: docs/exercises.md
"""

from typing import Callable, NamedTuple

import numpy as np

from scratchvae.classroom.probes import Case
from scratchvae.lecture.gradcheck import STEP  # the central difference's h

__all__ = ["TASKS", "Task", "select"]

SEED = 20240601
SAMPLES = 20000  # draws for the moment and Monte Carlo tests


class Task(NamedTuple):
    """One task: the functions a student writes, the page that derives them, how they are probed."""

    name: str
    title: str
    functions: tuple  # "module.qualname" of each function whose marked body the student writes
    doc: str  # "page.md#anchor" under docs/
    probe: str  # a key of scratchvae.classroom.probes.PROBES
    arrays: Callable  # rng -> the case's arrays
    options: dict  # the case's options
    given_forward: bool = False  # the forward is given, not written: its values are not marked

    def case(self):
        """The probe's inputs, drawn from a generator seeded by the task's place in the course."""
        return Case(self.arrays(np.random.default_rng([SEED, list(TASKS).index(self.name)])),
                    self.options)

    @property
    def modules(self):
        """The lecture modules that hold this task's functions."""
        return tuple(dict.fromkeys(f.split(".")[0] for f in self.functions))


def _op(name, title, module, inputs, arrays, doc, wrt=None, forward=None, **extra):
    """A task on the forward/backward pair ``<name>_forward``, ``<name>_backward`` of ``module``."""
    forward = forward or f"{module}.{name}_forward"
    backward = f"{module}.{name}_backward"
    functions = (backward,) if extra.get("given_forward") else (forward, backward)
    options = {"forward": forward, "backward": backward, "inputs": list(inputs),
               "wrt": list(wrt or inputs), "h": STEP}
    return Task(name, title, functions, doc, "op", arrays, options, **extra)


def _away_from_zero(rng, shape):
    """Values in +-[0.1, 2]: a kink at 0 stays out of the central difference's reach."""
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 2.0, shape)


def _with_dout(arrays, rng, out_shape, prefix=""):
    return {**arrays, prefix + "dout": rng.standard_normal(out_shape)}


def _extremes(arrays, out_shape, rng):
    """The extreme inputs under ``extreme/``, with their upstream gradient."""
    return {**{f"extreme/{k}": v for k, v in arrays.items()},
            "extreme/dout": rng.standard_normal(out_shape)}


EXTREME_X = np.array([[-1e4, -1e3, -745.0, -40.0, -1e-8], [1e4, 1e3, 745.0, 40.0, 0.0]])


def _elementwise(rng, scale=3.0, extreme=False, away_from_zero=False):
    x = _away_from_zero(rng, (4, 5)) if away_from_zero else scale * rng.standard_normal((4, 5))
    arrays = _with_dout({"x": x}, rng, (4, 5))
    return {**arrays, **_extremes({"x": EXTREME_X}, EXTREME_X.shape, rng)} if extreme else arrays


def _dense(rng):
    return _with_dout({"x": rng.standard_normal((4, 5)), "W": rng.standard_normal((5, 3)),
                       "b": rng.standard_normal(3)}, rng, (4, 3))


def _leaky(rng):
    return {**_elementwise(rng, away_from_zero=True), "slope": np.array(0.1)}


def _rows(rng, names, shape=(4, 3)):
    return {name: rng.standard_normal(shape) for name in names}


def _reparameterize(rng):
    arrays = _with_dout(_rows(rng, ("mu", "log_var", "eps")), rng, (4, 3))
    mu, log_var = np.array([0.5, -1.0, 2.0]), np.array([1.0, -1.5, 0.6])
    maths = {"mu": np.tile(mu, (SAMPLES, 1)), "log_var": np.tile(log_var, (SAMPLES, 1)),
             "eps": rng.standard_normal((SAMPLES, 3))}
    return {**arrays, **{f"maths/{k}": v for k, v in maths.items()}}


def _kl_standard_normal(rng):
    arrays = _with_dout(_rows(rng, ("mu", "log_var")), rng, (4,))
    maths = {"mu": rng.standard_normal((3, 2)),
             "log_var": rng.choice([-1.0, 1.0], (3, 2)) * rng.uniform(0.3, 1.0, (3, 2))}
    return {**arrays, **{f"maths/{k}": v for k, v in maths.items()}}


def _bernoulli(rng):
    x = rng.random((4, 6))  # grey levels ...
    x[:2] = x[:2].round()  # ... and binary pixels
    arrays = _with_dout({"x": x, "logits": 3 * rng.standard_normal((4, 6))}, rng, (4,))
    logits = np.array([-1e4, 1e4, -1e3, 1e3, -50.0, 50.0])
    extreme = {"x": np.array([[1.0], [0.0], [0.5]]) * np.ones(6), "logits": np.tile(logits, (3, 1))}
    return {**arrays, **_extremes(extreme, (3,), rng)}


def _tiny_vae(rng):
    return {"x": rng.random((5, 6)).round(), "eps": rng.standard_normal((5, 2)),
            "W_enc": 0.5 * rng.standard_normal((6, 4)), "b_enc": 0.1 * rng.standard_normal(4),
            "W_dec": 0.5 * rng.standard_normal((2, 6)), "b_dec": 0.1 * rng.standard_normal(6),
            "beta": np.array(0.5), "dout": np.array(1.3)}


MODEL = {"input_dim": 6, "hidden": [5], "latent_dim": 2}  # the VAE the last two tasks probe


def _model_arrays(rng, batch=4):
    """A small VAE's parameters (as the lecture initialises them, from the generator), data and noise."""
    from scratchvae.lecture.vae import VAE  # the reference's shapes and parameter names

    model = VAE(**MODEL, dtype=np.float64, seed=int(rng.integers(2**31)))
    arrays = {f"param/{name}": 3 * p for name, p in model.params.items()}  # larger than at the start
    arrays.update({f"direction/{name}": rng.standard_normal(p.shape) for name, p in model.params.items()})
    return {**arrays, "x": rng.random((batch, MODEL["input_dim"])).round(),
            "eps": rng.standard_normal((batch, MODEL["latent_dim"])), "beta": np.array(0.7)}


TASKS = {task.name: task for task in [
    Task("numerical_gradient", "the gradient by central differences",
         ("gradcheck.five_point_slope", "gradcheck._central_difference", "gradcheck.numerical_gradient"),
         "gradcheck.md#central-differences", "numerical_gradient",
         lambda rng: {"x": rng.standard_normal((3, 4)), "dout": rng.standard_normal((3, 4))}, {}),
    _op("dense", "the dense layer, forward and backward", "dense", ("x", "W", "b"), _dense,
        "layers.md#dense"),
    _op("relu", "ReLU", "activations", ("x",), lambda rng: _elementwise(rng, away_from_zero=True),
        "layers.md#relu"),
    _op("leaky_relu", "leaky ReLU", "activations", ("x", "slope"), _leaky, "layers.md#relu",
        wrt=("x",)),
    _op("tanh", "tanh", "activations", ("x",), lambda rng: _elementwise(rng, 1.0, extreme=True),
        "layers.md#tanh"),
    _op("sigmoid", "the stable sigmoid", "activations", ("x",),
        lambda rng: _elementwise(rng, extreme=True), "layers.md#sigmoid"),
    _op("softplus", "the stable softplus", "activations", ("x",),
        lambda rng: _elementwise(rng, extreme=True), "layers.md#softplus"),
    _op("reparameterize", "the reparameterised sample z = mu + sigma * eps", "gaussian",
        ("mu", "log_var", "eps"), _reparameterize, "gaussian.md#reparameterisation",
        wrt=("mu", "log_var")),
    _op("kl_standard_normal", "the KL divergence to N(0, I)", "gaussian", ("mu", "log_var"),
        _kl_standard_normal, "gaussian.md#kl-standard-normal"),
    _op("kl_diagonal", "the KL divergence between diagonal Gaussians", "gaussian_density",
        ("mu0", "log_var0", "mu1", "log_var1"),
        lambda rng: _with_dout(_rows(rng, ("mu0", "log_var0", "mu1", "log_var1")), rng, (4,)),
        "gaussian.md#kl-diagonal"),
    _op("gaussian_log_density", "the Gaussian log-density", "gaussian_density", ("z", "mu", "log_var"),
        lambda rng: _with_dout(_rows(rng, ("z", "mu", "log_var")), rng, (4,)),
        "gaussian.md#log-density"),
    _op("bernoulli_log_likelihood", "the Bernoulli log-likelihood, from logits", "likelihoods",
        ("x", "logits"), _bernoulli, "likelihoods.md#bernoulli", wrt=("logits",)),
    _op("gaussian_log_likelihood", "the Gaussian log-likelihood", "likelihoods",
        ("x", "mean", "log_var"),
        lambda rng: _with_dout(_rows(rng, ("x", "mean", "log_var"), (4, 6)), rng, (4,)),
        "likelihoods.md#gaussian", wrt=("mean", "log_var")),
    Task("sequential", "the MLP's backward: chaining modules", ("modules.Sequential.backward",),
         "layers.md#modules", "sequential",
         lambda rng: {"A0": rng.standard_normal((4, 5)), "A1": rng.standard_normal((5, 3)),
                      "A2": rng.standard_normal((3, 2)), "dout": rng.standard_normal((6, 2))}, {}),
    _op("tiny_vae", "the tiny VAE's backward", "tiny_vae",
        ("x", "eps", "W_enc", "b_enc", "W_dec", "b_dec", "beta"), _tiny_vae, "vae.md#backward",
        wrt=("W_enc", "b_enc", "W_dec", "b_dec"), given_forward=True),
    Task("vae", "the VAE's backward", ("vae.VAE.negative_elbo_backward",), "vae.md#backward", "vae",
         _model_arrays, {**MODEL, "h": STEP}),
    Task("adam", "an Adam step", ("optim.Adam.update",), "optim.md#adam", "adam",
         lambda rng: {"p": rng.standard_normal((3, 4)),
                      **{f"g{t}": rng.standard_normal((3, 4)) for t in (1, 2, 3)}},
         {"hypers": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}}),
    Task("importance_weighted", "the importance-weighted bound",
         ("estimators.importance_weighted_bound",), "estimators.md#importance-weighted",
         "importance_weighted", lambda rng: _model_arrays(rng, batch=3),
         {**MODEL, "k": 7, "seed": 0}),
]}
"""Every task, in course order."""


def select(only=None):
    """The tasks named in ``only`` (all if None), in course order, or a ValueError naming the unknown."""
    unknown = sorted(set(only or ()) - set(TASKS))
    if unknown:
        raise ValueError(f"no task called {', '.join(map(repr, unknown))}; "
                         f"the tasks are {', '.join(TASKS)}")
    return [task for name, task in TASKS.items() if only is None or name in only]
