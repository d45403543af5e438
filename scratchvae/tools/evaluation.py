"""The test set as a model is measured on it: prepared once, then its ELBO and log-likelihood.

:func:`prepare_test_set` binarises the test images once, with the fixed seed
:data:`EVAL_SEED`, so that every epoch and every run is measured on the same
images; :func:`evaluate_elbo` gives their mean ELBO (estimator L^B, fixed
noise) and :func:`evaluate_log_likelihood` the importance-weighted estimate of
log p(x) with its standard error. :func:`scratchvae.tools.train.fit` measures
the test ELBO after each epoch with them; ``scratchvae train`` and
``scratchvae evaluate`` add the log-likelihood.
Guide: docs/training.md
"""

from typing import NamedTuple

import numpy as np

from scratchvae.engine.estimators import importance_weighted_bound
from scratchvae.engine.training import binarize as binarize_dynamic
from scratchvae.lecture import estimators
from scratchvae.lecture.training import PIXELS, dequantize
from scratchvae.lecture.validate import as_float_array, check_unit_interval
from scratchvae.tools import data
from scratchvae.tools.progress import Progress

__all__ = [
    "EVAL_SEED",
    "LogLikelihood",
    "describe_test_set",
    "evaluate_elbo",
    "evaluate_log_likelihood",
    "prepare_test_set",
]

# The test set is binarised, and its ELBO sampled, with generators seeded by
# this constant: every epoch and every run sees the same test images and noise.
EVAL_SEED = 1234
# Rows per forward pass when evaluating the ELBO: large enough for BLAS, small
# enough that the caches of a 784-400-20 model stay around 20 MB.
EVAL_ROWS = 1000
# (Image, sample) pairs per call of the importance-weighted bound: the engine's chunk.
IWAE_PAIRS = 20000


def prepare_test_set(x, binarize):
    """The test images as the model sees them: binarised once, the same in every run.

    ``binarize`` is one of :data:`scratchvae.lecture.training.PIXELS`.
    ``"dynamic"``: one Bernoulli draw with the fixed seed :data:`EVAL_SEED` (so
    test ELBOs of different epochs and runs compare the same 0/1 images), by the
    engine's :func:`scratchvae.engine.training.binarize`, which training uses
    too: the published runs' test sets are its draws;
    ``"fixed"``: the 0.5 threshold of :func:`scratchvae.tools.data.binarize_fixed`;
    ``"dequantize"``: one dequantisation, its noise drawn with the seed :data:`EVAL_SEED`;
    ``"none"``: the grey levels as they are.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((3, 4))
    >>> np.array_equal(prepare_test_set(x, "dynamic"), prepare_test_set(x, "dynamic"))
    True
    """
    if binarize not in PIXELS:
        raise ValueError(f"binarize: expected one of {PIXELS}, got {binarize!r}")
    if binarize == "dynamic":
        # the engine's binarize does not scan the values: checked here, once
        x = check_unit_interval("x", as_float_array("x", x))
        return binarize_dynamic(x, np.random.default_rng(EVAL_SEED))
    if binarize == "fixed":
        return data.binarize_fixed(x)
    if binarize == "dequantize":
        return dequantize(x, np.random.default_rng(EVAL_SEED))
    return x


def evaluate_elbo(model, x, n_samples=1, seed=EVAL_SEED):
    """Mean ELBO per example over ``x``, in nats (estimator L^B, fixed noise).

    Parameters
    ----------
    model : VAE
    x : ndarray, shape (N, D)
        Already binarised as in training (see :func:`prepare_test_set`).
    n_samples : int
        Samples of z per example (the L of estimators (4)).
    seed : int
        Seeds the noise, so two calls on the same model give the same number.

    Returns
    -------
    float

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(16, hidden=(8,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((10, 16)).round()
    >>> evaluate_elbo(model, x) == evaluate_elbo(model, x)
    True
    """
    x = model.as_input(x)
    rng = np.random.default_rng(seed)
    elbo = estimators.elbo_lb(model, x, n_samples, rng, batch_rows=EVAL_ROWS)[0]  # (N,)
    return float(np.mean(elbo))


class LogLikelihood(NamedTuple):
    """The test set's log-likelihood estimate: the mean of the per-image bounds, in nats,
    and its Monte Carlo standard error, std / sqrt(N) over the N images."""

    mean: float
    standard_error: float


def evaluate_log_likelihood(model, x, k, seed=EVAL_SEED, progress=True):
    """Mean importance-weighted bound on log p(x) with ``k`` samples, and its standard error.

    The bound of each image is computed by the engine's
    :func:`scratchvae.engine.estimators.importance_weighted_bound`, whatever
    ops the model runs on (a handout's tools, which have no engine, use the
    lecture's: the numbers are the same with the same noise), a few images
    at a time, at most :data:`IWAE_PAIRS` image-sample pairs a call: all N k
    at once would be too many for a test set (10 000 images and k = 5000 are
    fifty million decoder rows). The noise is drawn image by image, so the
    calls give the numbers of one call on every image. The estimate is the mean of the bounds,
    and the standard error is that of a mean over the N images,
    std / sqrt(N) (it includes the spread between images, which dominates
    the Monte Carlo noise of each image's bound). This takes a while (k
    decoder passes per image), so it reports its progress on stderr
    (:class:`scratchvae.tools.progress.Progress`).

    Returns
    -------
    LogLikelihood
        ``(mean, standard_error)``, in nats.

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(16, hidden=(8,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((10, 16)).round()
    >>> estimate = evaluate_log_likelihood(model, x, k=50, progress=False)
    >>> estimate.mean > evaluate_elbo(model, x), estimate.standard_error > 0
    (True, True)
    """
    rng = np.random.default_rng(seed)
    rows = max(1, IWAE_PAIRS // k)  # images per call
    bound = np.empty(len(x))  # (N,)
    with Progress(len(x), f"log-likelihood estimate, k={k}", unit="image",
                  enabled=progress) as bar:
        for start in range(0, len(x), rows):
            bound[start:start + rows] = importance_weighted_bound(model, x[start:start + rows], k, rng)
            bar.advance_to(min(start + rows, len(x)))
    # standard error of the mean of the N per-image values (ddof=1); 0 for one image
    se = float(np.std(bound, ddof=1) / np.sqrt(len(bound))) if len(bound) > 1 else 0.0
    return LogLikelihood(float(np.mean(bound)), se)


def bits_per_dim(log_likelihood, dim, binarize):
    r"""A log-likelihood in nats per image as bits per pixel, or None where that means nothing.

    Binarised pixels (``"dynamic"``, ``"fixed"``): the code length of a 0/1
    pixel, :math:`-\log p(x) / (D \ln 2)`, at most 1 bit. Dequantised pixels
    (``"dequantize"``): a density p on the dequantised image y gives the 8-bit
    image a probability of at least :math:`p(y)\,256^{-D}` (docs/likelihoods.md#dequantisation),
    so :math:`-\log p(y) / (D \ln 2) + 8` bits per pixel bounds its code length,
    at most 8 bits. Grey levels taken as they are (``"none"``): a density on
    values that are really discrete has no code length, so None.

    Examples
    --------
    >>> round(bits_per_dim(-100.0, 784, "dynamic"), 4)
    0.184
    >>> round(bits_per_dim(2000.0, 784, "dequantize"), 3)
    4.32
    >>> bits_per_dim(2000.0, 784, "none") is None
    True
    """
    if binarize == "none":
        return None
    bits = -log_likelihood / (dim * np.log(2))
    return float(bits + 8 if binarize == "dequantize" else bits)


def describe_test_set(n, binarize):
    """How the N test images were prepared (:func:`prepare_test_set`), for printing.

    >>> describe_test_set(10000, "dynamic")
    'test set: 10000 images, binarised once with seed 1234'
    """
    how = {"dynamic": f"binarised once with seed {EVAL_SEED}",
           "fixed": "binarised at the fixed threshold 0.5",
           "dequantize": f"dequantised once with seed {EVAL_SEED}",
           "none": "grey levels, not binarised"}[binarize]
    return f"test set: {n} images, {how}"
