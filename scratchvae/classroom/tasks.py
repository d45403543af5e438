"""The tasks of the course, in order: what a student writes, where it is explained, what it is asked.

Each :class:`Task` names the lecture functions whose marked bodies the student
writes (``# BEGIN SOLUTION`` ... ``# END SOLUTION`` in ``scratchvae/lecture``),
the derivation to read, and the probe that marking runs on them, with the
inputs: :meth:`Task.case` draws them from a generator seeded by the task's
place in the course. Those are the *public draws*, the same in every run:
``scratchvae check``, the handout and the lessons use them. For marks that
count, ``mark --seed S`` draws every task's inputs from the teacher's secret
seed instead, the sizes (batch, widths) too, so that values recorded from the
public draws earn nothing.
Later tasks run on the student's earlier code, as in minitorch: the tiny VAE's
backward calls the student's dense, sampler, KL and likelihood backwards.
Guide: docs/exercises.md
"""

from typing import Callable, NamedTuple

import numpy as np

from scratchvae.classroom.judge import SAMPLES  # draws for the moment and Monte Carlo tests
from scratchvae.classroom.probes import Case
from scratchvae.lecture.gradcheck import STEP  # the central difference's h
from scratchvae.lecture.validate import check_int

__all__ = ["TASKS", "Task", "select"]

SEED = 20240601
SECRET = 1  # the word that sets a secret seed's draws apart: the public draws' entropy is padded with zeros


class Draws(NamedTuple):
    """Where a case's arrays come from: a generator, and whether the sizes are drawn from it too."""

    rng: np.random.Generator
    secret: bool  # a teacher's seed: sizes drawn; the public draws: sizes fixed

    def size(self, public, low, high):
        """``public`` for the public draws, else an integer drawn from ``low..high``."""
        return int(self.rng.integers(low, high + 1)) if self.secret else public


class Task(NamedTuple):
    """One task: the functions a student writes, the page that derives them, how they are probed."""

    name: str
    title: str
    functions: tuple  # "module.qualname" of each function whose marked body the student writes
    doc: str  # "page.md#anchor" under docs/
    probe: str  # a key of scratchvae.classroom.probes.PROBES
    arrays: Callable  # Draws -> the case's arrays
    options: dict  # the case's options
    given_forward: bool = False  # the forward is given, not written: its values are not marked

    def case(self, seed=None):
        """The probe's inputs: the public draws (``seed`` None), seeded by the task's place in the
        course, or the draws of the teacher's secret ``seed`` (an integer >= 0), sizes included."""
        place = self.place
        if seed is None:
            return Case(self.arrays(Draws(np.random.default_rng([SEED, place]), False)), self.options)
        seed = check_int("seed", seed, minimum=0)
        return Case(self.arrays(Draws(np.random.default_rng([SEED, place, SECRET, seed]), True)), self.options)

    @property
    def place(self):
        """The task's place in the course, which seeds its draws."""
        return list(TASKS).index(self.name)

    @property
    def modules(self):
        """The lecture modules that hold this task's functions."""
        return tuple(dict.fromkeys(f.split(".")[0] for f in self.functions))


def _op(name, title, module, inputs, arrays, doc, wrt=None, forward=None, no_overflow=False, dtypes=None,
        **extra):
    """A task on the forward/backward pair ``<name>_forward``, ``<name>_backward`` of ``module``;
    ``no_overflow``: its forward must not overflow at the extreme inputs; ``dtypes``: {input: dtype},
    inputs cast so that each gradient must come back in its own input's dtype (probes.op)."""
    forward = forward or f"{module}.{name}_forward"
    backward = f"{module}.{name}_backward"
    functions = (backward,) if extra.get("given_forward") else (forward, backward)
    options = {"forward": forward, "backward": backward, "inputs": list(inputs),
               "wrt": list(wrt or inputs), "h": STEP, **({"no_overflow": True} if no_overflow else {}),
               **({"dtypes": dtypes} if dtypes else {})}
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


def _shuffled(draws, arrays):
    """``arrays`` (of one width), their columns in a drawn order for a secret seed."""
    if not draws.secret:
        return arrays
    order = draws.rng.permutation(next(iter(arrays.values())).shape[1])
    return {k: v[:, order] for k, v in arrays.items()}


EXTREME_X = np.array([[-1e4, -1e3, -745.0, -40.0, -1e-8], [1e4, 1e3, 745.0, 40.0, 0.0]])


def _elementwise(draws, scale=3.0, extreme=False, away_from_zero=False):
    rng, shape = draws.rng, (draws.size(4, 2, 6), draws.size(5, 2, 7))
    x = _away_from_zero(rng, shape) if away_from_zero else scale * rng.standard_normal(shape)
    arrays = _with_dout({"x": x}, rng, shape)
    return {**arrays, **_extremes(_shuffled(draws, {"x": EXTREME_X}), EXTREME_X.shape, rng)} if extreme else arrays


def _dense(draws):
    rng, (B, n_in, n_out) = draws.rng, (draws.size(4, 2, 6), draws.size(5, 2, 6), draws.size(3, 1, 5))
    return _with_dout({"x": rng.standard_normal((B, n_in)), "W": rng.standard_normal((n_in, n_out)),
                       "b": rng.standard_normal(n_out)}, rng, (B, n_out))


def _leaky(draws):
    return {**_elementwise(draws, away_from_zero=True), "slope": np.array(0.1)}


def _rows(draws, names, shape=(4, 3)):
    """Standard normal arrays of one shape, (B, D): ``shape`` for the public draws, else drawn."""
    shape = (draws.size(shape[0], 2, 6), draws.size(shape[1], 1, 7))
    return {name: draws.rng.standard_normal(shape) for name in names}


def _rows_with_dout(names, shape=(4, 3)):
    """A case's arrays: ``names`` as rows, and an upstream gradient, one value per row."""
    def arrays(draws):
        rows = _rows(draws, names, shape)
        return _with_dout(rows, draws.rng, (len(rows[names[0]]),))
    return arrays


def _reparameterize(draws):
    rng, arrays = draws.rng, _rows(draws, ("mu", "log_var", "eps"))
    arrays = _with_dout(arrays, rng, arrays["mu"].shape)
    if draws.secret:  # the moment test's three coordinates (see judge.moments)
        mu, log_var = rng.uniform(-2.0, 2.0, 3), rng.uniform(-1.5, 1.5, 3)
    else:
        mu, log_var = np.array([0.5, -1.0, 2.0]), np.array([1.0, -1.5, 0.6])
    maths = {"mu": np.tile(mu, (SAMPLES, 1)), "log_var": np.tile(log_var, (SAMPLES, 1)),
             "eps": rng.standard_normal((SAMPLES, 3))}
    return {**arrays, **{f"maths/{k}": v for k, v in maths.items()}}


def _kl_standard_normal(draws):
    rng, arrays = draws.rng, _rows_with_dout(("mu", "log_var"))(draws)
    shape = (draws.size(3, 2, 4), draws.size(2, 1, 3))
    maths = {"mu": rng.standard_normal(shape),
             "log_var": rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 1.0, shape)}
    return {**arrays, **{f"maths/{k}": v for k, v in maths.items()}}


def _bernoulli(draws):
    rng, shape = draws.rng, (draws.size(4, 3, 6), draws.size(6, 2, 8))
    x = rng.random(shape)  # grey levels ...
    x[:2] = x[:2].round()  # ... and binary pixels
    arrays = _with_dout({"x": x, "logits": 3 * rng.standard_normal(shape)}, rng, shape[:1])
    logits = np.array([-1e4, 1e4, -1e3, 1e3, -50.0, 50.0])
    extreme = {"x": np.array([[1.0], [0.0], [0.5]]) * np.ones(6), "logits": np.tile(logits, (3, 1))}
    return {**arrays, **_extremes(_shuffled(draws, extreme), (3,), rng)}


def _tiny_vae(draws):
    rng = draws.rng
    B, D, D_z = draws.size(5, 3, 7), draws.size(6, 2, 7), draws.size(2, 1, 3)
    return {"x": rng.random((B, D)).round(), "eps": rng.standard_normal((B, D_z)),
            "W_enc": 0.5 * rng.standard_normal((D, 2 * D_z)), "b_enc": 0.1 * rng.standard_normal(2 * D_z),
            "W_dec": 0.5 * rng.standard_normal((D_z, D)), "b_dec": 0.1 * rng.standard_normal(D),
            "beta": np.array(0.5), "dout": np.array(1.3)}


MODEL = {"input_dim": 6, "hidden": [5], "latent_dim": 2}  # the VAE the last two tasks probe


def _model_arrays(draws, batch=4):
    """A small VAE's parameters (as the lecture initialises them, from the generator), data and noise."""
    from scratchvae.lecture.vae import VAE  # the reference's shapes and parameter names

    rng = draws.rng
    model = VAE(**MODEL, dtype=np.float64, seed=int(rng.integers(2**31)))
    arrays = {f"param/{name}": 3 * p for name, p in model.params.items()}  # larger than at the start
    arrays.update({f"direction/{name}": rng.standard_normal(p.shape) for name, p in model.params.items()})
    return {**arrays, "x": rng.random((batch, MODEL["input_dim"])).round(),
            "eps": rng.standard_normal((batch, MODEL["latent_dim"])), "beta": np.array(0.7)}


UNDERFLOW = -135.0  # the decoder's output bias moved by this: log-weights near -800, where exp(log w) is 0


def _bound_arrays(draws):
    """:func:`_model_arrays`, and under ``underflow/`` the same model with every logit about -135 lower,
    on two examples of all ones: log p(x | z) near 6 * -135, and every w_i = exp(log w_i) underflows to 0."""
    arrays = _model_arrays(draws, batch=draws.size(3, 2, 5))
    low = {f"underflow/{name}": p for name, p in arrays.items() if name.startswith("param/")}
    low["underflow/param/decoder_head.b"] = low["underflow/param/decoder_head.b"] + UNDERFLOW
    return {**arrays, **low, "underflow/x": np.ones((2, MODEL["input_dim"]))}


def _matrix_shape(draws, shape=(3, 4)):
    """A matrix's shape: ``shape`` for the public draws, else drawn."""
    return draws.size(shape[0], 1, 5), draws.size(shape[1], 1, 5)


def _gradient(draws):
    shape = _matrix_shape(draws)
    return {"x": draws.rng.standard_normal(shape), "dout": draws.rng.standard_normal(shape)}


def _chain(draws):
    """Three stand-in modules' matrices, (n0, n1), (n1, n2), (n2, n3), and an upstream gradient (B, n3)."""
    n = [draws.size(public, 1, 6) for public in (4, 5, 3, 2)]
    arrays = {f"A{k}": draws.rng.standard_normal((n[k], n[k + 1])) for k in range(3)}
    return {**arrays, "dout": draws.rng.standard_normal((draws.size(6, 1, 6), n[3]))}


def _adam(draws):
    shape = _matrix_shape(draws)
    return {"p": draws.rng.standard_normal(shape), **{f"g{t}": draws.rng.standard_normal(shape) for t in (1, 2, 3)}}


def _training_step(draws):
    """A training set (N, D) of grey levels, a minibatch of B of its rows, the latent size, the step's
    generator seed and KL weight, and the losses the stand-in forward returns: a finite one, and a
    non-finite one (NaN for the public draws; NaN, +inf or -inf for a secret seed)."""
    rng = draws.rng
    N, D, B, D_z = draws.size(7, 2, 9), draws.size(6, 2, 8), draws.size(4, 1, 6), draws.size(2, 1, 4)
    bad = rng.choice([np.nan, np.inf, -np.inf]) if draws.secret else np.nan
    return {"images": rng.random((N, D)), "rows": rng.integers(0, N, B), "latent_dim": np.array(D_z),
            "seed": np.array(rng.integers(2**31)), "beta": np.array(rng.uniform(0.1, 1.0)),
            "loss": np.array(rng.uniform(50.0, 200.0)), "bad_loss": np.array(bad)}


TASKS = {task.name: task for task in [
    Task("numerical_gradient", "the gradient by central differences",
         ("gradcheck.five_point_slope", "gradcheck._central_difference", "gradcheck.numerical_gradient"),
         "gradcheck.md#central-differences", "numerical_gradient", _gradient, {}),
    _op("dense", "the dense layer, forward and backward", "dense", ("x", "W", "b"), _dense,
        "layers.md#dense", dtypes={"x": "float32"}),  # out is float64 (NumPy's promotion); dx float32
    _op("relu", "ReLU", "activations", ("x",), lambda draws: _elementwise(draws, away_from_zero=True),
        "layers.md#relu"),
    _op("leaky_relu", "leaky ReLU", "activations", ("x", "slope"), _leaky, "layers.md#relu",
        wrt=("x",)),
    _op("tanh", "tanh", "activations", ("x",), lambda draws: _elementwise(draws, 1.0, extreme=True),
        "layers.md#tanh"),
    _op("sigmoid", "the stable sigmoid", "activations", ("x",),
        lambda draws: _elementwise(draws, extreme=True), "layers.md#sigmoid", no_overflow=True),
    _op("softplus", "the stable softplus", "activations", ("x",),
        lambda draws: _elementwise(draws, extreme=True), "layers.md#softplus"),
    _op("reparameterize", "the reparameterised sample z = mu + sigma * eps", "gaussian",
        ("mu", "log_var", "eps"), _reparameterize, "gaussian.md#reparameterisation",
        wrt=("mu", "log_var")),
    _op("kl_standard_normal", "the KL divergence to N(0, I)", "gaussian", ("mu", "log_var"),
        _kl_standard_normal, "gaussian.md#kl-standard-normal"),
    _op("kl_diagonal", "the KL divergence between diagonal Gaussians", "gaussian_density",
        ("mu0", "log_var0", "mu1", "log_var1"), _rows_with_dout(("mu0", "log_var0", "mu1", "log_var1")),
        "gaussian.md#kl-diagonal"),
    _op("gaussian_log_density", "the Gaussian log-density", "gaussian_density", ("z", "mu", "log_var"),
        _rows_with_dout(("z", "mu", "log_var")), "gaussian.md#log-density"),
    _op("bernoulli_log_likelihood", "the Bernoulli log-likelihood, from logits", "likelihoods",
        ("x", "logits"), _bernoulli, "likelihoods.md#bernoulli", wrt=("logits",)),
    _op("gaussian_log_likelihood", "the Gaussian log-likelihood", "likelihoods",
        ("x", "mean", "log_var"), _rows_with_dout(("x", "mean", "log_var"), (4, 6)),
        "likelihoods.md#gaussian", wrt=("mean", "log_var")),
    Task("sequential", "the MLP's backward: chaining modules", ("modules.Sequential.backward",),
         "layers.md#modules", "sequential", _chain, {}),
    _op("tiny_vae", "the tiny VAE's backward", "tiny_vae",
        ("x", "eps", "W_enc", "b_enc", "W_dec", "b_dec", "beta"), _tiny_vae, "vae.md#tiny-vae",
        wrt=("W_enc", "b_enc", "W_dec", "b_dec"), given_forward=True),
    Task("vae", "the VAE's backward", ("vae.VAE.negative_elbo_backward",), "vae.md#backward", "vae",
         lambda draws: _model_arrays(draws, batch=draws.size(4, 2, 6)), {**MODEL, "h": STEP}),
    Task("adam", "an Adam step", ("optim.Adam.update",), "optim.md#adam", "adam", _adam,
         {"hypers": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}}),
    Task("train_step", "the training step", ("training.train_step",), "training.md#one-step", "train_step",
         _training_step, {"dtype": "float32"}),  # float32, as training runs: eps must be drawn in it
    Task("importance_weighted", "the importance-weighted bound",
         ("estimators.importance_weighted_bound",), "estimators.md#importance-weighted",
         "importance_weighted", _bound_arrays,
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
