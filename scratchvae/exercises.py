"""Exercises for a class, and the checker that marks them.

A teacher hands out a starter file, :func:`template`; the student fills in its
functions; :func:`check` marks them against the package's own implementation.
From a shell::

    python -m scratchvae.exercises --template student.py   # the starter file
    python -m scratchvae.exercises student.py              # mark it: a table and a total

Each exercise is one op of the package, a forward/backward pair with the
package's signatures. The student writes both (their cache may hold whatever
their backward needs), or only the backward when the exercise gives the
forward. Each check is worth one point:

* forward: values -- agrees with the reference on seeded random float64 inputs;
* forward: maths -- a property that needs no reference: the moments of a sample,
  a closed form against Monte Carlo;
* extreme inputs -- forward and backward stay finite and right (logits of +-1e4);
* backward: values -- on the student's own cache, agrees with the reference;
* gradient check, your forward -- the backward is the derivative of the
  student's forward (:func:`scratchvae.gradcheck.check_op`);
* gradient check, reference forward -- ... and of the reference forward.

A pair that is wrong in the same way twice (the variance used as the scale in
the forward and in its derivative) passes the first gradient check; the
values, the maths and the second gradient check catch it.
Guide: docs/exercises.md

Examples
--------
>>> from scratchvae import layers    # the package's own functions score full marks
>>> report = check(layers, only=["dense"])
>>> report.score, report.total
(2, 2)
"""

import argparse
import importlib.util
import itertools
import sys
import textwrap
import traceback
import types
import warnings
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from .gaussian import (
    gaussian_log_density_forward,
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from .gradcheck import FLOOR, check_op, relative_error
from .layers import dense_backward, dense_forward, sigmoid_backward, sigmoid_forward
from .likelihoods import bernoulli_log_likelihood_backward, bernoulli_log_likelihood_forward

__all__ = ["EXERCISES", "Exercise", "Outcome", "Report", "check", "main", "template",
           "tiny_vae_backward", "tiny_vae_forward"]

SEED = 20240601  # every check draws from its own generator, seeded by (SEED, exercise, check)
# A student's value passes if its relative error to the reference's is at most this:
# loose enough for any sound way of writing a formula, far too tight for a wrong one.
AGREEMENT = 1e-6
SAMPLES = 20000  # draws for the moment and Monte Carlo checks
SIGMAS = 5  # how many standard errors a sample statistic may stray from its expectation
PASS, FAIL, NOT_ATTEMPTED = "pass", "FAIL", "not attempted"


class CheckFailed(Exception):
    """A check's verdict, with a message saying where and what."""


# --- The smallest VAE, for the last exercise --------------------------------------


class TinyVAECache(NamedTuple):
    """Each op's cache, in the order of the forward, and the loss's constants."""

    encoder: tuple  # dense_forward's: x -> [mu | log_var]
    reparameterize: tuple
    decoder: tuple  # dense_forward's: z -> logits
    likelihood: tuple
    kl: tuple
    beta: float
    batch: int


def tiny_vae_forward(x, eps, W_enc, b_enc, W_dec, b_dec, beta=1.0):
    r"""The negative ELBO of the smallest VAE: one dense layer each way, Bernoulli pixels.

    .. math:: [\mu \,|\, \log\sigma^2] = x W_{enc} + b_{enc}, \quad
              z = \mu + e^{\log\sigma^2 / 2} \odot \varepsilon, \quad
              \ell = z W_{dec} + b_{dec}, \quad
              \text{loss} = \frac1B \sum_b \big[-\log p(x_b | \ell_b) + \beta\,\mathrm{KL}_b\big]

    :class:`scratchvae.vae.VAE` with its hidden layers taken out (docs/vae.md#forward).

    Parameters
    ----------
    x : ndarray, shape (B, D)
        Binary pixels.
    eps : ndarray, shape (B, D_z)
        Standard normal noise.
    W_enc, b_enc : ndarray, shapes (D, 2 D_z) and (2 D_z,)
    W_dec, b_dec : ndarray, shapes (D_z, D) and (D,)
    beta : float
        The KL weight.

    Returns
    -------
    loss : float
    cache : TinyVAECache

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, eps = rng.random((3, 4)).round(), rng.standard_normal((3, 1))
    >>> params = np.zeros((4, 2)), np.zeros(2), np.zeros((1, 4)), np.zeros(4)  # all zero
    >>> loss, cache = tiny_vae_forward(x, eps, *params)
    >>> round(float(loss / np.log(2)), 6)  # every pixel a fair coin, q equal to the prior: 4 bits
    4.0
    """
    stats, encoder = dense_forward(x, W_enc, b_enc)  # (B, 2 D_z)
    d_z = stats.shape[1] // 2
    mu, log_var = stats[:, :d_z], stats[:, d_z:]  # (B, D_z) each
    z, reparameterize = reparameterize_forward(mu, log_var, eps)  # (B, D_z)
    logits, decoder = dense_forward(z, W_dec, b_dec)  # (B, D)
    reconstruction, likelihood = bernoulli_log_likelihood_forward(x, logits)  # (B,)
    kl, kl_cache = kl_standard_normal_forward(mu, log_var)  # (B,)
    beta = float(beta)
    # loss = (1/B) sum_b [ -reconstruction_b + beta kl_b ]
    loss = float(np.mean(beta * kl - reconstruction))
    return loss, TinyVAECache(encoder, reparameterize, decoder, likelihood, kl_cache, beta, len(kl))


def tiny_vae_backward(dloss, cache):
    r"""Gradients of :func:`tiny_vae_forward`'s loss for its four parameters.

    The forward's steps read upwards, as in docs/vae.md#backward: each term of
    the loss gets :math:`-g/B` (reconstruction) or :math:`g\beta/B` (KL), and
    :math:`\mu, \log\sigma^2` receive the sum of two paths, through z and
    through the KL term.

    Derivation: docs/exercises.md#tiny-vae

    Parameters
    ----------
    dloss : float
        Upstream gradient, dL/d(loss).
    cache : TinyVAECache

    Returns
    -------
    dW_enc, db_enc, dW_dec, db_dec : ndarray
        Shaped like the parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, eps = rng.random((3, 4)).round(), rng.standard_normal((3, 1))
    >>> params = np.zeros((4, 2)), np.zeros(2), np.zeros((1, 4)), np.zeros(4)
    >>> [g.shape for g in tiny_vae_backward(1.0, tiny_vae_forward(x, eps, *params)[1])]
    [(4, 2), (2,), (1, 4), (4,)]
    """
    B, beta = cache.batch, cache.beta
    # loss -> each example's reconstruction and KL term
    dreconstruction = np.full(B, -dloss / B)  # (B,)
    dkl = np.full(B, dloss * beta / B)  # (B,)
    # reconstruction -> logits -> z and the decoder's parameters
    dlogits = bernoulli_log_likelihood_backward(dreconstruction, cache.likelihood)  # (B, D)
    dz, dW_dec, db_dec = dense_backward(dlogits, cache.decoder)  # (B, D_z), ...
    # z -> (mu, log_var): the path through the sample ...
    dmu, dlog_var = reparameterize_backward(dz, cache.reparameterize)  # (B, D_z) each
    # ... and the path through the KL term; the two add
    dmu_kl, dlog_var_kl = kl_standard_normal_backward(dkl, cache.kl)  # (B, D_z) each
    dstats = np.concatenate([dmu + dmu_kl, dlog_var + dlog_var_kl], axis=1)  # (B, 2 D_z)
    _, dW_enc, db_enc = dense_backward(dstats, cache.encoder)
    return dW_enc, db_enc, dW_dec, db_dec


# --- Checks -----------------------------------------------------------------------


class Exercise(NamedTuple):
    """One exercise: an op of the package, the functions the student writes, and how to mark them.

    ``inputs(rng)`` and ``extremes()`` return the forward's arguments by name
    (float64); ``hints`` maps an output or input name (and ``"extreme"``) to a
    sentence added when it is wrong; ``tasks`` maps each function the student
    writes to ``(argument list, task)`` for the starter file.
    """

    name: str
    title: str
    forward: str
    backward: str
    writes: tuple
    reference: tuple  # (forward, backward), the package's
    output: str  # the forward's output, e.g. "kl"
    inputs: Callable
    wrt: tuple  # the inputs the backward returns gradients for, in order
    tasks: dict
    hints: dict
    extremes: Optional[Callable] = None
    maths: Optional[tuple] = None  # (title, check function)


def _array(what, value, shape, hint=None):
    """``value`` as a float64 array of ``shape``, or CheckFailed saying what is wrong."""
    try:
        value = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected an array, got {type(value).__name__}") from None
    if value.shape != tuple(shape):
        turned = " (transposed?)" if value.shape == tuple(shape)[::-1] else ""
        message = f"{what}: expected shape {tuple(shape)}, got {value.shape}{turned}"
        raise CheckFailed(_hinted(message, [hint]))
    return value


def _pair(ex, result):
    """The student's forward result as ``(out, cache)``, or CheckFailed."""
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{ex.forward} must return a pair (out, cache), "
                          f"got {type(result).__name__}")
    return result


def _gradients(ex, grads, inputs):
    """The student's backward result as a tuple of arrays shaped like the inputs in ``wrt``."""
    returned = grads
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    if len(grads) != len(ex.wrt) or returned is None:
        got = (f"{len(grads)} gradients" if isinstance(returned, (tuple, list))
               else "None" if returned is None else f"one {type(returned).__name__}")
        raise CheckFailed(f"{ex.backward} returned {got}, expected "
                          f"{len(ex.wrt)}: {', '.join('d' + n for n in ex.wrt)}")
    return tuple(_array(f"d{n}", g, inputs[n].shape, ex.hints.get(n))
                 for n, g in zip(ex.wrt, grads))


def _copies(inputs):
    return [np.array(v, dtype=np.float64) for v in inputs.values()]


def _difference(what, expected, got, inputs):
    """None if ``got`` agrees with ``expected``; else where and how it does not."""
    with np.errstate(invalid="ignore"):
        wrong = ~(relative_error(got, expected) <= AGREEMENT)  # NaN and inf count as wrong
    if not wrong.any():
        return None
    i = tuple(int(k) for k in np.argwhere(wrong)[0])
    message = f"{what}, element {i}: expected {expected[i]:.10g}, got {got[i]:.10g}"
    if wrong.size > 1:
        message += f" ({wrong.sum()} of {wrong.size} elements wrong)"
    shown = np.abs(expected) > FLOOR
    ratio = got[shown] / expected[shown]
    if ratio.size and np.all(np.isfinite(ratio)) and np.ptp(ratio) <= 1e-6 * abs(ratio[0]):
        message += f"; every element is {ratio[0]:.6g} times the expected value"
    where = [f"{n} = {v[i]:.6g}" for n, v in inputs.items() if v.shape == expected.shape and v.ndim]
    where += [f"row {i[0]} of {n} in [{v[i[0]].min():.6g}, {v[i[0]].max():.6g}]"
              for n, v in inputs.items() if expected.ndim == 1 and v.shape[:1] == expected.shape
              and v.ndim == 2]
    return message + (f" (where {', '.join(where)})" if where else "")


def _hinted(message, hints):
    """``message``, then each distinct hint once."""
    hints = list(dict.fromkeys(h for h in hints if h))
    return message + (f". Hint: {'; '.join(hints)}" if hints else "")


def _verdict(differences, hints):
    """Raise CheckFailed listing every difference, with the hints for the names that differ."""
    found = [(name, d) for name, d in differences if d is not None]
    if found:
        raise CheckFailed(_hinted("; ".join(d for _, d in found), [hints.get(n) for n, _ in found]))


def _forward_agrees(ex, forward, inputs, hints):
    expected = np.asarray(ex.reference[0](*_copies(inputs))[0], dtype=np.float64)
    got = _array(ex.output, _pair(ex, forward(*_copies(inputs)))[0], expected.shape,
                 hints.get(ex.output))
    _verdict([(ex.output, _difference(ex.output, expected, got, inputs))], hints)


def _backward_agrees(ex, forward, backward, inputs, rng, hints):
    out, cache = ex.reference[0](*_copies(inputs))
    dout = rng.standard_normal(np.shape(out))
    expected = ex.reference[1](dout, cache)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = _gradients(ex, backward(dout.copy(), _pair(ex, forward(*_copies(inputs)))[1]), inputs)
    _verdict([(n, _difference(f"d{n}", np.asarray(e, dtype=np.float64), g, inputs))
              for n, e, g in zip(ex.wrt, expected, got)], hints)


def _forward_values(ex, forward, backward, rng):
    _forward_agrees(ex, forward, ex.inputs(rng), ex.hints)
    return f"{ex.output} agrees with the reference"


def _backward_values(ex, forward, backward, rng):
    _backward_agrees(ex, forward, backward, ex.inputs(rng), rng, ex.hints)
    return "every gradient agrees with the reference"


def _extreme_inputs(ex, forward, backward, rng):
    extreme = {name: ex.hints["extreme"] for name in (ex.output, *ex.wrt)}
    for agrees in (partial(_forward_agrees, ex, forward),
                   partial(_backward_agrees, ex, forward, backward, rng=rng)):
        try:
            agrees(inputs=ex.extremes(), hints=extreme)
        except CheckFailed:
            try:  # wrong on ordinary inputs too? Then extremes are not the problem.
                agrees(inputs=ex.inputs(rng), hints=ex.hints)
            except CheckFailed as everywhere:
                raise CheckFailed(f"wrong on ordinary inputs too: {everywhere}") from None
            raise
    return "forward and backward finite and right at extreme inputs"


def _gradient_check(ex, forward, backward, rng, against_reference):
    """check_op on the student's backward, with the student's or the reference's forward values."""
    inputs = ex.inputs(rng)

    def combined(*args):
        out, cache = _pair(ex, forward(*args))
        return (ex.reference[0](*args)[0] if against_reference else out), cache

    def student_backward(dout, cache):
        return _gradients(ex, backward(dout, cache), inputs)

    results = check_op(combined, student_backward, inputs, wrt=ex.wrt, rng=rng)
    _verdict([(r.name, None if r.passed else r.message()) for r in results], ex.hints)
    return f"largest relative error {max(r.max_rel_error for r in results):.1e}"


def _gradient_check_reference(ex, forward, backward, rng):
    try:
        return _gradient_check(ex, forward, backward, rng, against_reference=True)
    except CheckFailed as failure:
        own = np.random.default_rng(rng.integers(2**32))
        try:
            _gradient_check(ex, forward, backward, own, against_reference=False)
        except CheckFailed:
            raise failure from None
        raise CheckFailed(f"{failure}. Your backward does match your own forward: the forward "
                          "is what is wrong, and the backward is its faithful derivative") from None


def _reparameterize_moments(ex, forward, backward, rng):
    """Sample mean and variance of z = forward(mu, log_var, eps) against mu and exp(log_var)."""
    mu, log_var = np.array([0.5, -1.0, 2.0]), np.array([1.0, -1.5, 0.6])  # (3,) each
    eps = rng.standard_normal((SAMPLES, 3))
    z = _pair(ex, forward(np.tile(mu, (SAMPLES, 1)), np.tile(log_var, (SAMPLES, 1)), eps))[0]
    z = _array("z", z, (SAMPLES, 3))  # (S, 3)
    variance = np.exp(log_var)
    # standard errors: sigma / sqrt(S) for a mean, variance * sqrt(2 / (S - 1)) for a variance
    off = np.abs(z.mean(axis=0) - mu) / np.sqrt(variance / SAMPLES)
    if off.max() > SIGMAS:
        j = int(np.argmax(off))
        raise CheckFailed(f"coordinate {j}: the mean of {SAMPLES} samples of z is "
                          f"{z[:, j].mean():.4f}, expected mu = {mu[j]}")
    sample_variance = z.var(axis=0, ddof=1)
    spread = np.sqrt(2 / (SAMPLES - 1))
    off = np.abs(sample_variance - variance) / (variance * spread)
    if off.max() > SIGMAS:
        j = int(np.argmax(off))
        message = (f"coordinate {j}: the variance of {SAMPLES} samples of z is "
                   f"{sample_variance[j]:.4f}, expected exp(log_var) = {variance[j]:.4f}")
        if np.all(np.abs(sample_variance / variance**2 - 1) <= SIGMAS * spread):
            message += (", and it is exp(2 log_var): eps was scaled by the variance exp(log_var); "
                        "the scale is the standard deviation exp(log_var / 2)")
        raise CheckFailed(message)
    return f"mean and variance of {SAMPLES} samples within {SIGMAS} standard errors"


def _kl_monte_carlo(ex, forward, backward, rng):
    """The closed form against the average of log q(z) - log p(z) over samples z ~ q."""
    mu = rng.standard_normal((3, 2))  # (3, 2)
    log_var = rng.choice([-1.0, 1.0], (3, 2)) * rng.uniform(0.3, 1.0, (3, 2))  # (3, 2)
    kl = _array("kl", _pair(ex, forward(mu.copy(), log_var.copy()))[0], (3,), ex.hints["kl"])
    mu_s = np.repeat(mu, SAMPLES, axis=0)  # (3 S, 2): row b repeated S times
    log_var_s = np.repeat(log_var, SAMPLES, axis=0)  # (3 S, 2)
    z = reparameterize_forward(mu_s, log_var_s, rng.standard_normal(mu_s.shape))[0]  # (3 S, 2)
    zero = np.zeros_like(z)
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated by the mean over S samples per row
    log_ratio = (gaussian_log_density_forward(z, mu_s, log_var_s)[0]
                 - gaussian_log_density_forward(z, zero, zero)[0]).reshape(3, SAMPLES)  # (3, S)
    estimate = log_ratio.mean(axis=1)  # (3,)
    error = log_ratio.std(axis=1, ddof=1) / np.sqrt(SAMPLES)  # (3,)
    off = np.abs(kl - estimate) / error
    if not off.max() <= SIGMAS:  # NaN fails too
        b = int(np.nanargmax(np.where(np.isnan(off), np.inf, off)))
        raise CheckFailed(f"row {b}: your KL is {kl[b]:.6g}, but the mean of log q(z) - log p(z) "
                          f"over {SAMPLES} samples z ~ q is {estimate[b]:.6g} +- {error[b]:.2g} "
                          f"(yours is {kl[b] / estimate[b]:.3g} times that). "
                          f"Hint: {ex.hints['kl']}")
    return f"within {SIGMAS} standard errors of a Monte Carlo estimate from {SAMPLES} samples"


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

            The forward is given, layers.dense_forward(x, W, b); its cache is
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
        maths=("moments of z", _reparameterize_moments),
        wrt=("mu", "log_var"),
        tasks={"reparameterize_forward": ("mu, log_var, eps", """
            A sample z ~ N(mu, diag(exp(log_var))), written as a function of mu and log_var.

            mu, log_var and eps have shape (B, D_z); log_var is the log of the
            variance; eps is standard normal noise drawn by the caller. Return
            (z, cache). Read: note 000, eq. (8); docs/gaussian.md#reparameterisation"""),
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
        maths=("Monte Carlo", _kl_monte_carlo),
        wrt=("mu", "log_var"),
        tasks={"kl_standard_normal_forward": ("mu, log_var", """
            KL(N(mu, diag(exp(log_var))) || N(0, I)) for each row: shape (B,).

            mu and log_var have shape (B, D_z). Return (kl, cache).
            Read: note 000, eqs. (11)-(13); docs/gaussian.md#kl-standard-normal"""),
               "kl_standard_normal_backward": ("dkl, cache", """
            (dmu, dlog_var), each (B, D_z), from dkl = dL/d(kl) of shape (B,).

            Read: docs/gaussian.md#kl-standard-normal""")},
        hints={"kl": "KL = 1/2 sum_j (exp(log_var_j) + mu_j^2 - 1 - log_var_j), one number "
                     "per row (note 000, eq. (13))",
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

            The forward is given: exercises.tiny_vae_forward(x, eps, W_enc, b_enc,
            W_dec, b_dec, beta). Read it first: its cache holds each op's cache
            (encoder, reparameterize, decoder, likelihood, kl), beta and the batch
            size. Call the ops' backwards (layers.dense_backward,
            gaussian.reparameterize_backward, gaussian.kl_standard_normal_backward,
            likelihoods.bernoulli_log_likelihood_backward) in the right order.
            Read: docs/vae.md#backward""")},
        hints={"W_enc": _TWO_PATHS, "b_enc": _TWO_PATHS,
               "W_dec": "the reconstruction term enters the loss as -(1/B) sum_b",
               "b_dec": "the reconstruction term enters the loss as -(1/B) sum_b"}),
]}


# --- Marking ----------------------------------------------------------------------


class Outcome(NamedTuple):
    """One check's mark."""

    exercise: str
    check: str
    status: str  # "pass", "FAIL" or "not attempted"
    points: int  # 1 for a pass, else 0
    message: str


class Report(NamedTuple):
    """Every check's outcome, in order, for one student's file."""

    source: str
    outcomes: tuple
    error: str = ""  # why the file could not be loaded, if it could not

    @property
    def score(self):
        return sum(o.points for o in self.outcomes)

    @property
    def total(self):
        return len(self.outcomes)

    @property
    def passed(self):
        return self.score == self.total

    def table(self):
        """The marks as a text table, one line per check, the failures explained below it."""
        lines = [f"Marking {self.source}: {self.score} of {self.total} points"]
        if self.error:
            lines.append(f"The file could not be loaded: {self.error}")
        rows = []
        for name, group in itertools.groupby(self.outcomes, key=lambda o: o.exercise):
            group = list(group)
            if {(o.status, o.message) for o in group} == {(NOT_ATTEMPTED, group[0].message)}:
                rows.append((name, f"({len(group)} checks)", f"0/{len(group)}",
                             f"not attempted: {group[0].message}"))
                continue
            rows += [(name, o.check, f"{o.points}/1",
                      o.status + (f": {o.message}" if o.status == NOT_ATTEMPTED else ""))
                     for o in group]
        widths = [max(len(row[k]) for row in rows + [("exercise", "check")]) for k in (0, 1)]
        lines += ["", f"{'exercise':<{widths[0]}}  {'check':<{widths[1]}}  points  result"]
        lines += [f"{e:<{widths[0]}}  {c:<{widths[1]}}  {p:>6}  {r}" for e, c, p, r in rows]
        lines.append(f"{'total':<{widths[0] + widths[1] + 2}}  {f'{self.score}/{self.total}':>6}")
        failed = [o for o in self.outcomes if o.status == FAIL]
        if failed:
            lines += ["", "What went wrong:"]
            lines += [f"- {o.exercise}, {o.check}: {o.message}" for o in failed]
        return "\n".join(lines)


def _checks(ex):
    """``(title, function, needs the backward)`` for each check of ``ex``, in marking order."""
    own_forward = ex.forward in ex.writes
    checks = [("forward: values", _forward_values, False)] if own_forward else []
    if ex.maths is not None:
        checks.append((f"forward: {ex.maths[0]}", ex.maths[1], False))
    if ex.extremes is not None:
        checks.append(("extreme inputs", _extreme_inputs, True))
    checks.append(("backward: values", _backward_values, True))
    if own_forward:
        checks += [("gradient check, your forward",
                    partial(_gradient_check, against_reference=False), True),
                   ("gradient check, reference forward", _gradient_check_reference, True)]
    else:
        checks.append(("gradient check", partial(_gradient_check, against_reference=False), True))
    return checks


def _student_frame(err, student_files):
    """The deepest frame of ``err``'s traceback in the student's code, or None."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename in student_files]
    return frames[-1] if frames else None


def _summary(err, student_files):
    """One line: what was raised, and where in the student's code if it came from there."""
    what = f"{type(err).__name__}: {str(err).strip()}"
    f = _student_frame(err, student_files)
    if f is None:
        return f"the checker could not use your result: {what}"
    return f"{f.name} raised {what} ({Path(f.filename).name}, line {f.lineno}: {f.line})"


def _run(ex, title, run, forward, backward, rng, student_files):
    """One check's Outcome; whatever the student's code raises becomes its message."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return Outcome(ex.name, title, PASS, 1, run(ex, forward, backward, rng))
        except NotImplementedError as err:
            f = _student_frame(err, student_files)
            name = f.name if f else "a function"
            return Outcome(ex.name, title, NOT_ATTEMPTED, 0, f"{name} raises NotImplementedError")
        except CheckFailed as failure:
            message = str(failure)
        except (Exception, SystemExit) as err:  # the student's code raised: summarise
            message = _summary(err, student_files)
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    if warned:
        message += f" (NumPy warned: {'; '.join(warned[:2])})"
    return Outcome(ex.name, title, FAIL, 0, message)


def _mark(ex, index, module):
    """The outcome of each check of ``ex`` on the functions of ``module``."""
    found = {name: getattr(module, name, None) for name in ex.writes}
    absent = {name: f"{name} is not defined" if f is None else f"{name} is not a function"
              for name, f in found.items() if not callable(f)}
    given = dict(zip((ex.forward, ex.backward), ex.reference))
    forward, backward = (found.get(n) or given[n] for n in (ex.forward, ex.backward))
    student_files = {getattr(module, "__file__", None)} | {
        f.__code__.co_filename for f in found.values() if hasattr(f, "__code__")}
    outcomes = []
    for number, (title, run, needs_backward) in enumerate(_checks(ex)):
        needed = (ex.forward, ex.backward) if needs_backward else (ex.forward,)
        missing = [absent[n] for n in needed if n in absent]
        if missing:
            outcomes.append(Outcome(ex.name, title, NOT_ATTEMPTED, 0, missing[0]))
        else:
            rng = np.random.default_rng([SEED, index, number])
            outcomes.append(_run(ex, title, run, forward, backward, rng, student_files))
    return outcomes


def _select(only):
    """The exercises named in ``only`` (all if None), in course order."""
    unknown = sorted(set(only or ()) - set(EXERCISES))
    if unknown:
        raise ValueError(f"only: no exercise called {', '.join(map(repr, unknown))}; "
                         f"the exercises are {', '.join(EXERCISES)}")
    return [name for name in EXERCISES if only is None or name in only]


def _load(path):
    """Import the student's file as a fresh module: ``(module, "")``, or ``(None, why not)``."""
    name = f"scratchvae_student_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs, as an import would (a @dataclass looks itself up there).
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        return None, f"SyntaxError: {err.msg} (line {err.lineno}: {(err.text or '').strip()})"
    except (Exception, SystemExit) as err:
        return None, _summary(err, {str(path)})
    finally:
        del sys.modules[name]
    return module, ""


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
    >>> from scratchvae import gaussian
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
                                    f"python -m scratchvae.exercises --template {source})")
        module, error = _load(source)
    outcomes = []
    for index, (name, ex) in enumerate(EXERCISES.items()):
        if name not in names:
            continue
        if module is None:
            outcomes += [Outcome(name, title, NOT_ATTEMPTED, 0, "the file could not be loaded")
                         for title, _, _ in _checks(ex)]
        else:
            outcomes += _mark(ex, index, module)
    return Report(source, tuple(outcomes), error)


# --- The starter file and the command ---------------------------------------------

TEMPLATE_HEADER = '''"""Exercises from scratchvae: write each function below, then mark them with

    python -m scratchvae.exercises {name}

Each function has the signature of the package's own. The checker compares
yours with the package's on seeded random inputs (float64), checks your
backward by finite differences against your forward and against the
package's, and tests the maths of your forward. A function that still raises
NotImplementedError is marked "not attempted". You may call any of the
package's functions except the one you are writing.
How the marking works: docs/exercises.md
"""

import numpy as np

from scratchvae import exercises, gaussian, layers, likelihoods  # given forwards, ops to call
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
        lines += [f"    {title}" for title, _, _ in _checks(ex)]
    return "\n".join(lines)


def main(argv=None, prog="python -m scratchvae.exercises"):
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
