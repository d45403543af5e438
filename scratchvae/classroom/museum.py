"""A museum of the classic bugs: each one written out, so the marker can recognise it by name.

Every exhibit is a :class:`Bug`: a name, what code with that bug computes and
why it is wrong, the derivation to reread, and the bug itself, as code. The
marker runs the task's probe on the reference with the bug put in (the buggy
function in place of the reference's, or the reference on changed inputs, or
its gradients scaled) and compares: when everything a student got wrong is
exactly what the bug gets wrong, and its forward is wrong wherever the bug's
is, the feedback names the bug (:func:`recognise`, by
:func:`scratchvae.classroom.judge.shows_bug`). Nothing here looks at the
student's source: a bug is recognised by what it computes. A handout stores each
exhibit's report with its reference values (:mod:`scratchvae.classroom.reference`),
so the student's self-check names the bugs too. ``tests/test_classroom.py``
feeds each exhibit to the marker as a student would write it and asserts its
name in the feedback.
Guide: docs/exercises.md#museum
"""

from typing import NamedTuple

import numpy as np

from scratchvae.classroom.judge import shows_bug
from scratchvae.lecture import gaussian
from scratchvae.lecture.activations import SigmoidCache
from scratchvae.lecture.estimators import importance_weighted_bound
from scratchvae.lecture.gradcheck import STEP
from scratchvae.lecture.likelihoods import BernoulliCache

__all__ = ["BUGS", "Bug", "exhibit_sections", "recognise"]


class Bug(NamedTuple):
    """One exhibit of the museum."""

    name: str  # how the feedback names it
    task: str
    message: str  # what code with the bug computes, and why that is wrong
    reread: str  # the derivation to reread, "page.md#anchor" under docs/
    replace: dict = {}  # "module.qualname" -> the buggy function, used in place of the reference's
    arrays: dict = {}  # case arrays the bug changes (the reference on other inputs computes it)
    times_batch: tuple = ()  # sections whose every output the bug multiplies by the batch size
    sections: tuple = ()  # the sections it is recognised on (default: all)


# --- The exhibits, as code --------------------------------------------------------------


def variance_as_scale_forward(mu, log_var, eps):
    """z = mu + e^{log_var} eps: the noise scaled by the variance."""
    variance = np.exp(log_var)
    return mu + variance * eps, gaussian.ReparameterizeCache(eps, variance)


def variance_as_scale_gradients(dz, cache):
    """The faithful derivative of :func:`variance_as_scale_forward`: d z / d log_var = eps e^{log_var}."""
    eps, variance = cache
    return dz.copy(), dz * eps * variance


def _kl_pair(terms, terms_grad):
    """A KL forward/backward pair from its per-coordinate terms and their gradients."""
    def forward(mu, log_var):
        return terms(mu, log_var), gaussian.KLStandardNormalCache(mu, log_var)

    def backward(dkl, cache):
        return tuple(dkl[:, None] * g for g in terms_grad(*cache))
    return forward, backward


KL_WRONG_SIGN = _kl_pair(lambda mu, v: 0.5 * np.sum(1 + v - mu**2 - np.exp(v), axis=1),
                         lambda mu, v: (-mu, -0.5 * np.expm1(v)))
KL_WITHOUT_VARIANCE = _kl_pair(lambda mu, v: -0.5 * np.sum(1 + v - mu**2, axis=1),
                               lambda mu, v: (mu, -0.5 * np.ones_like(v)))
KL_AVERAGED = _kl_pair(lambda mu, v: -0.5 * np.mean(1 + v - mu**2 - np.exp(v), axis=1),
                       lambda mu, v: (mu / mu.shape[1], 0.5 * np.expm1(v) / v.shape[1]))


def unstable_sigmoid_forward(x):
    """The sigmoid as e^x / (1 + e^x): inf / inf = nan once e^x overflows."""
    e = np.exp(x)
    return e / (1 + e), SigmoidCache(e / (1 + e))


def log_of_sigmoid_forward(x, logits):
    """The textbook sum_j x_j log p_j + (1 - x_j) log(1 - p_j), with p = 1 / (1 + e^{-logits})."""
    p = 1 / (1 + np.exp(-logits))
    return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1), BernoulliCache(x, p)


def softplus_of_exp_forward(x, logits):
    """The textbook sum_j x_j l_j - log(1 + e^{l_j}): e^l overflows to inf for l > 709."""
    ll = np.sum(x * logits - np.log(1 + np.exp(logits)), axis=1)
    return ll, BernoulliCache(x, 1 / (1 + np.exp(-logits)))


def averaged_pixels_forward(x, logits):
    """The Bernoulli log-likelihood averaged over the D pixels instead of summed."""
    ll = np.mean(x * logits - np.logaddexp(0, logits), axis=1)
    return ll, BernoulliCache(x, 1 / (1 + np.exp(-logits)))


def averaged_pixels_gradients(dll, cache):
    x, p = cache
    return dll[:, None] * (x - p) / x.shape[1]


def transposed_dW_gradients(dout, cache, input_grad=True):
    """dW = dout^T x: the right numbers, in a (D_out, D_in) array."""
    x, W = cache
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)


def bias_not_summed_gradients(dout, cache, input_grad=True):
    """db = dout: one bias gradient per example, never summed."""
    x, W = cache
    return dout @ W.T, x.T @ dout, dout


def two_point_gradient(f, x, dout=1.0, h=STEP):
    """numerical_gradient by the two-point central difference (f(x + h) - f(x - h)) / 2h: off by h^2 f'''/6."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        original, values = x[i], {}
        try:
            for k in (-1, 1):
                x[i] = original + k * h
                values[k] = np.array(f(x), dtype=np.float64)
        finally:
            x[i] = original
        grad[i] = np.sum(dout * (values[1] - values[-1])) / (2 * h)
    return grad


def adam_corrected(m_hat=False, v_hat=False, eps_in_sqrt=False):
    """Adam's update with each average bias-corrected only if asked (``m_hat``, ``v_hat``), the
    others used as they are, biased towards their start at 0: p -= lr m / (sqrt(v) + eps), or
    p -= lr m / sqrt(v + eps) (``eps_in_sqrt``)."""
    def update(self, p, g, m, v):
        beta1, beta2 = self.betas
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g**2
        top = m / (1 - beta1**self.t) if m_hat else m
        square = v / (1 - beta2**self.t) if v_hat else v
        p -= self.lr * top / (np.sqrt(square + self.eps) if eps_in_sqrt else np.sqrt(square) + self.eps)
    return update


def bound_without_log_sum_exp(model, x, k, rng):
    """L_k as written, log((1/k) sum_i exp(log w_i)): exp(log w_i) underflows to 0 for log w_i < -745.

    Each log w_i is the bound with one sample, for the examples repeated k times (the same noise:
    it is drawn example-major)."""
    log_w = importance_weighted_bound(model, np.repeat(x, k, axis=0), 1, rng).reshape(len(x), k)
    return np.log(np.mean(np.exp(log_w), axis=1))


def train_step_with(eps_first=False, accumulate=False, update_first=False, guarded=True):
    """A training step (on dynamically binarised pixels) with one classic bug put in: eps drawn before the
    pixels, gradients accumulated, the update before the backward, or no guard against a non-finite loss."""
    def train_step(model, optimizer, images, rows, rng, beta=None):
        shape = (len(rows), model.latent_dim)
        early = rng.standard_normal(shape, dtype=model.dtype) if eps_first else None
        x = model.ops.binarize(images, rng, rows)
        eps = early if eps_first else rng.standard_normal(shape, dtype=model.dtype)
        loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
        if guarded and not np.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}")
        steps = [lambda: model.negative_elbo_backward(1.0, cache, accumulate=accumulate), optimizer.step]
        for run in reversed(steps) if update_first else steps:
            run()
        return loss, cache
    return train_step


# --- The museum ---------------------------------------------------------------------------

_FORGOTTEN_PATH = (
    "mu and log_var reach the loss along two paths, through the sample z and through the KL "
    "term; your gradients into them hold only the first, as if the KL weighed nothing. The "
    "decoder's gradients are right, the encoder's are not: add the KL's backward to the sampler's")
_MISSING_MEAN = (
    "your gradients are B times too large (B = the batch size): the loss is a mean over the "
    "batch, so each example's terms enter it with 1/B, and so must their gradients")
_COLLAPSE = (
    "your log-likelihood is the mean over the pixels, 1/D of the sum, while the KL is summed "
    "over the latent dimensions: the reconstruction then weighs 784 times too little against the "
    "KL, and the encoder learns to copy the prior (posterior collapse: blurry, identical samples)")

_NO_BIAS_CORRECTION = (
    "your step divides m by sqrt(v) as they are. Both averages start at 0 and stay biased "
    "towards it for the first steps, v far longer than m (beta2 = 0.999 against 0.9): the "
    "first step comes out (1 - beta1) / sqrt(1 - beta2) ~ 3.2 times too large. Divide m by "
    "1 - beta1^t and v by 1 - beta2^t")

BUGS = [
    Bug("the two-point central difference", "numerical_gradient",
        "your numerical gradient takes (f(x + h) - f(x - h)) / 2h, whose error is h^2 f''' / 6: "
        "1.7e-5 of the slope for sin(10 x) at h = 1e-3, where the check allows 1e-6. "
        "The five-point stencil (8 (f_1 - f_-1) - (f_2 - f_-2)) / 12h cancels the h^2 term",
        "gradcheck.md#central-differences", replace={"gradcheck.numerical_gradient": two_point_gradient}),
    Bug("the variance used as the standard deviation", "reparameterize",
        "your sampler computes z = mu + exp(log_var) * eps: the noise scaled by the variance, not "
        "by the standard deviation exp(log_var / 2). Differentiated faithfully it passes the "
        "gradient check, but z has variance exp(2 log_var): the moment test fails",
        "gaussian.md#reparameterisation",
        replace={"gaussian.reparameterize_forward": variance_as_scale_forward,
                 "gaussian.reparameterize_backward": variance_as_scale_gradients}),
    Bug("the KL with the wrong sign", "kl_standard_normal",
        "your KL is -1/2 sum_j (exp(log_var_j) - 1 - log_var_j + mu_j^2), the negative of the "
        "divergence: it is <= 0 where a KL is >= 0, and minimising the loss then pushes q away "
        "from the prior", "gaussian.md#kl-standard-normal",
        replace={"gaussian.kl_standard_normal_forward": KL_WRONG_SIGN[0],
                 "gaussian.kl_standard_normal_backward": KL_WRONG_SIGN[1]}),
    Bug("the KL without its -sigma^2 term", "kl_standard_normal",
        "your KL is -1/2 sum_j (1 + log_var_j - mu_j^2): the -exp(log_var_j) term is missing, so "
        "nothing stops the variance from growing without bound (the KL falls as log_var rises)",
        "gaussian.md#kl-standard-normal",
        replace={"gaussian.kl_standard_normal_forward": KL_WITHOUT_VARIANCE[0],
                 "gaussian.kl_standard_normal_backward": KL_WITHOUT_VARIANCE[1]}),
    Bug("the KL averaged over the latent dimensions", "kl_standard_normal",
        "your KL is the mean over the D_z latent coordinates, 1/D_z of the divergence: the KL of "
        "a diagonal Gaussian is the sum of the coordinates' KLs", "gaussian.md#kl-standard-normal",
        replace={"gaussian.kl_standard_normal_forward": KL_AVERAGED[0],
                 "gaussian.kl_standard_normal_backward": KL_AVERAGED[1]}),
    Bug("the reconstruction averaged over pixels while the KL is summed",
        "bernoulli_log_likelihood", _COLLAPSE, "likelihoods.md#bernoulli",
        replace={"likelihoods.bernoulli_log_likelihood_forward": averaged_pixels_forward,
                 "likelihoods.bernoulli_log_likelihood_backward": averaged_pixels_gradients}),
    Bug("sigmoid, then log", "bernoulli_log_likelihood",
        "your log-likelihood takes p = sigmoid(logits) and then log p and log(1 - p): right for "
        "moderate logits, but p rounds to exactly 0 or 1 once |logit| passes ~37 (float64), and "
        "log 0 = -inf (0 * -inf = nan). Work from the logits: x * l - softplus(l)",
        "likelihoods.md#bernoulli",
        replace={"likelihoods.bernoulli_log_likelihood_forward": log_of_sigmoid_forward}),
    Bug("the softplus as log(1 + e^l)", "bernoulli_log_likelihood",
        "your log-likelihood computes log(1 + exp(logits)) as written: exp overflows to inf once a "
        "logit passes ~709 (88 in float32), and the log-likelihood becomes -inf where it is finite. "
        "Write it with the stable softplus of layers (13), which exponentiates only -|l| <= 0",
        "layers.md#softplus",
        replace={"likelihoods.bernoulli_log_likelihood_forward": softplus_of_exp_forward}),
    Bug("the unstable sigmoid e^x / (1 + e^x)", "sigmoid",
        "your sigmoid computes exp(x) / (1 + exp(x)): exp(x) overflows to inf for x > 709 "
        "(88 in float32) and inf / inf is nan. Exponentiate only -|x| <= 0, in two branches",
        "layers.md#sigmoid", replace={"activations.sigmoid_forward": unstable_sigmoid_forward}),
    Bug("a forgotten path", "tiny_vae", _FORGOTTEN_PATH, "vae.md#backward", arrays={"beta": 0.0},
        sections=("backward",)),  # its forward, given, is right: beta = 0 only stands in for the backward
    Bug("a forgotten path", "vae", _FORGOTTEN_PATH, "vae.md#backward", arrays={"beta": 0.0},
        sections=("analytic",)),  # with the Monte Carlo KL, beta = 0 also drops z's third path
    Bug("a transposed dW", "dense",
        "your dW is dout^T x, of shape (D_out, D_in): the right numbers, transposed. W[i, k] "
        "meets x[:, i] and dout[:, k], so dW = x^T dout, shaped like W", "layers.md#dense",
        replace={"dense.dense_backward": transposed_dW_gradients}),
    Bug("a bias gradient not summed over the batch", "dense",
        "your db is dout itself, one row per example: b is shared by every example, so its "
        "gradient is the sum of their contributions, dout.sum(axis=0)", "layers.md#dense",
        replace={"dense.dense_backward": bias_not_summed_gradients}),
    Bug("a missing 1/B", "tiny_vae", _MISSING_MEAN, "vae.md#backward", times_batch=("backward",)),
    Bug("a missing 1/B", "vae", _MISSING_MEAN, "vae.md#backward",
        times_batch=("analytic", "monte_carlo")),
    *[Bug("Adam without bias correction", "adam", _NO_BIAS_CORRECTION, "optim.md#adam",
          replace={"optim.Adam.update": adam_corrected(eps_in_sqrt=eps_in_sqrt)})
      for eps_in_sqrt in (False, True)],  # eps added to sqrt(v), or inside it: both are met
    Bug("Adam with only m bias-corrected", "adam",
        "your step corrects m by 1 - beta1^t but uses v as it is, still near its start at 0: the first "
        "step divides by sqrt(1 - beta2) ~ 0.032 times |g| and comes out ~32 times too large. Divide "
        "v by 1 - beta2^t too", "optim.md#adam", replace={"optim.Adam.update": adam_corrected(m_hat=True)}),
    Bug("Adam with only v bias-corrected", "adam",
        "your step corrects v by 1 - beta2^t but uses m as it is, still near its start at 0: the first "
        "step is 1 - beta1 = 0.1 of what it should be, 10 times too small. Divide m by 1 - beta1^t too",
        "optim.md#adam", replace={"optim.Adam.update": adam_corrected(v_hat=True)}),
    Bug("eps drawn before the binarisation", "train_step",
        "your step draws eps from rng before the pixels are binarised. Each is still drawn from its own "
        "distribution, but not in the course's order: for the same seed every step's pixels and noise "
        "differ from the reference's, and a run cannot be compared with the course's number for number. "
        "Binarise first, then draw eps",
        "training.md#one-step", replace={"training.train_step": train_step_with(eps_first=True)}),
    Bug("gradients accumulated across steps (accumulate=True)", "train_step",
        "your backward adds this step's gradients to those already in model.grads (accumulate=True, the "
        "default): each update then follows the sum of every gradient so far, not this minibatch's. Call "
        "it with accumulate=False, which writes them", "training.md#one-step",
        replace={"training.train_step": train_step_with(accumulate=True)}),
    Bug("the update before the backward", "train_step",
        "your step calls optimizer.step() before the backward: the update follows the last step's "
        "gradients (zeros at the first step), one step behind the loss it just computed",
        "training.md#one-step", replace={"training.train_step": train_step_with(update_first=True)}),
    Bug("an update made on a NaN or infinite loss", "train_step",
        "your step goes on to the backward and the update when the loss is NaN or infinite: the gradients "
        "are then NaN too, and one update makes every parameter NaN for good. Check np.isfinite(loss) "
        "after the forward and raise FloatingPointError before anything changes",
        "training.md#one-step", replace={"training.train_step": train_step_with(guarded=False)}),
    Bug("the bound without log-sum-exp", "importance_weighted",
        "your bound computes log(mean(exp(log_w))) as written: exp(log w) underflows to 0 once log w is "
        "below about -745, and log 0 = -inf, where the bound is finite (MNIST's log-weights reach -600). "
        "Shift by the largest log-weight first: L_k = log w* + log sum_i exp(log w_i - log w*) - log k",
        "estimators.md#importance-weighted",
        replace={"estimators.importance_weighted_bound": bound_without_log_sum_exp}),
]
"""Every exhibit, in course order."""


def exhibit_sections(bug, run_reference, case):
    """The probe's report on ``bug``: the reference with the bug put in (``run_reference(replace, arrays)``),
    on ``case`` (whose batch a "missing 1/B" multiplies by)."""
    exhibit = run_reference(bug.replace, bug.arrays)
    batch = len(case.arrays["x"]) if bug.times_batch else None
    for section in bug.times_batch:
        exhibit[section] = {k: batch * v for k, v in exhibit[section].items()}
    return exhibit


def recognise(task, student, reference, run_reference, tolerance, case):
    """The exhibits of ``task`` whose every difference from the reference the student shares.

    Parameters
    ----------
    task : scratchvae.classroom.tasks.Task
    student, reference : dict
        The probe's sections, ``{section: {output: array}}``, from the student's
        code and from the reference.
    run_reference : callable
        ``run_reference(replace, arrays)``: the probe's sections from the
        reference with ``replace`` put in and the case's ``arrays`` changed.
    tolerance : float
        Relative agreement that counts as the same value.
    case : scratchvae.classroom.probes.Case
        The inputs the student's code was probed on.

    Returns
    -------
    list of Bug
    """
    return [bug for bug in BUGS if bug.task == task.name
            and shows_bug(student, reference, exhibit_sections(bug, run_reference, case), bug.sections,
                         tolerance)]
