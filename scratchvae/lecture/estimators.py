"""Estimators of the ELBO and of log p(x).

The ELBO of one example is an expectation over z ~ q(z | x) (estimators (1)),
so in practice it is estimated from samples of z:

* :func:`elbo_la` and :func:`elbo_lb`: the estimators L^A (estimators (3)) and
  L^B (estimators (4)) with L samples per example, both through :func:`elbo_estimate`;
* :func:`minibatch_estimate`: the dataset's ELBO from a minibatch (estimators (7));
* :func:`importance_weighted_bound`: L_k, a tighter lower bound on log p(x) that
  tends to log p(x) as k grows (estimators (9));
* :func:`score_function_gradient` and :func:`reparameterized_gradient`: the two
  estimators of the gradient of an expectation (estimators (13) and (15)).

:mod:`scratchvae.lecture.linear_gaussian` holds the exactly solvable model they are tested on.

Sampling layout, shared by every estimator here: the (example, sample) pairs
are taken example-major, all L samples of example 0, then all of example 1, ...
In a replicated batch ``np.repeat(x, L, axis=0)``, row ``n * L + i`` is sample
``i`` of example ``n``, and the noise is drawn from ``rng`` in that order, so the
results do not depend on how the pairs are split into chunks (or the examples
into calls).

B is the batch size, D the data dimension, D_z the latent one, L (or k) the
number of samples per example; a chunk of :func:`elbo_estimate` holds E
examples and S samples of each (and S is also the number of samples of a
gradient estimator).
Derivations: docs/estimators.md, docs/elbo.md
"""

import math

import numpy as np

from scratchvae.lecture.gaussian import reparameterize_backward, reparameterize_forward
from scratchvae.lecture.gaussian_density import gaussian_log_density_backward, gaussian_log_density_forward
from scratchvae.lecture.validate import as_float_array, check_int, check_rng, check_shape

__all__ = [
    "elbo_estimate",
    "elbo_la",
    "elbo_lb",
    "importance_weighted_bound",
    "minibatch_estimate",
    "reparameterized_gradient",
    "score_function_gradient",
]


# --- Sampling in chunks ----------------------------------------------------------


def _check_data(model, x, rng):
    """X as a non-empty (B, D) array in the model's dtype; ``rng`` a Generator."""
    check_rng(rng)
    x = check_shape("x", as_float_array("x", x, ndim=2), (None, model.input_dim))
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one example, got shape {x.shape}")
    return x.astype(model.dtype, copy=False)


def _chunks(n_examples, n_samples, batch_rows):
    """Split the (example, sample) pairs into pieces of at most ``batch_rows``, example-major.

    Yields ``(rows, sizes)``: a slice of examples, and the numbers of samples to
    draw for them in turn. Either several examples with all their samples at
    once (when ``n_samples <= batch_rows``), or one example with its samples
    split. Both keep the pairs in example-major order.
    """
    per_chunk = max(1, batch_rows // n_samples)
    sizes = [min(batch_rows, n_samples - s) for s in range(0, n_samples, batch_rows)]
    for start in range(0, n_examples, per_chunk):
        yield slice(start, min(start + per_chunk, n_examples)), sizes


def _noise(rng, n_examples, n_samples, model):
    """Eps (n_examples * n_samples, D_z): row e * n_samples + s is sample s of example e."""
    return rng.standard_normal((n_examples * n_samples, model.latent_dim), dtype=model.dtype)


# --- L^A and L^B (estimators (3), (4)) --------------------------------------


def elbo_estimate(model, x, n_samples, rng, kl_estimator="analytic", batch_rows=20000):
    r"""The ELBO of each example, estimated with ``n_samples`` = L samples of z.

    The model's own loss, evaluated on the replicated batch
    ``x_rep = np.repeat(x, L, axis=0)`` (row ``n L + i`` is sample ``i`` of
    example ``n``) with noise ``eps`` (B L, D_z) drawn from ``rng``; its per-row
    terms are then averaged over the L samples of each example:

    .. math:: \mathcal{L}^B_n = -\mathrm{KL}(q(z|x_n) \,\|\, p(z))
              + \frac1L \sum_i \log p(x_n | z_{ni}) \quad\text{(analytic)}, \qquad
              \mathcal{L}^A_n = \frac1L \sum_i \big[\log p(x_n, z_{ni}) - \log q(z_{ni}|x_n)\big]
              \quad\text{(monte_carlo)}

    (estimators (4) and (3)). Gradients come free: the loss on ``x_rep``
    is the mean over its B L rows, which is :math:`-\frac1B \sum_n \mathcal{L}_n`
    (for ``beta = 1``), so ``model.negative_elbo_backward`` after
    ``model.negative_elbo_forward(x_rep, eps, kl_estimator=...)`` is the
    gradient of the batch-mean estimate with L samples.
    Derivation: docs/estimators.md#estimators-la-lb

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
    x : ndarray, shape (B, D)
    n_samples : int
        L, the number of samples of z per example.
    rng : numpy.random.Generator
        Draws the noise, in the model's dtype.
    kl_estimator : {"analytic", "monte_carlo"}
        L^B or L^A.
    batch_rows : int
        At most this many (example, sample) rows go through the model at once;
        the result does not depend on it.

    Returns
    -------
    elbo, reconstruction, kl : ndarray, shape (B,), float64
        The estimate, and its two terms: ``elbo = reconstruction - kl``.

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(6, hidden=(4,), latent_dim=2, dtype=np.float64)
    >>> x = np.random.default_rng(0).random((3, 6)).round()
    >>> elbo, rec, kl = elbo_estimate(model, x, 10, np.random.default_rng(1))
    >>> elbo.shape, bool(np.allclose(elbo, rec - kl))
    ((3,), True)
    """
    x = _check_data(model, x, rng)
    n_samples = check_int("n_samples", n_samples)
    reconstruction = np.zeros(x.shape[0])  # (B,) float64 sums over the samples
    kl = np.zeros(x.shape[0])  # (B,)
    for rows, sizes in _chunks(x.shape[0], n_samples, check_int("batch_rows", batch_rows)):
        n_rows = rows.stop - rows.start
        for size in sizes:
            x_rep = np.repeat(x[rows], size, axis=0)  # (E S, D), example-major
            eps = _noise(rng, n_rows, size, model)  # (E S, D_z)
            cache = model.negative_elbo_forward(x_rep, eps, kl_estimator=kl_estimator)[1]
            # sum_l over each example's rows
            reconstruction[rows] += cache.reconstruction.reshape(n_rows, size).sum(1, dtype=np.float64)
            kl[rows] += cache.kl.reshape(n_rows, size).sum(1, dtype=np.float64)
    reconstruction /= n_samples
    kl /= n_samples
    return reconstruction - kl, reconstruction, kl


def elbo_la(model, x, n_samples, rng, batch_rows=20000):
    """L^A, estimators (3): :func:`elbo_estimate` with the KL sampled too."""
    return elbo_estimate(model, x, n_samples, rng, "monte_carlo", batch_rows)


def elbo_lb(model, x, n_samples, rng, batch_rows=20000):
    """L^B, estimators (4): :func:`elbo_estimate` with the KL in closed form."""
    return elbo_estimate(model, x, n_samples, rng, "analytic", batch_rows)


def minibatch_estimate(elbo_per_example, dataset_size):
    r"""The dataset's total ELBO from a minibatch of B examples out of N.

    .. math:: \mathcal{L}(X) \approx \frac{N}{B} \sum_{n \in \mathcal{B}} \mathcal{L}(x_n)

    (estimators (7)), unbiased when the batch is drawn uniformly (estimators (8)).
    Derivation: docs/estimators.md#minibatch

    Parameters
    ----------
    elbo_per_example : array_like, shape (B,)
        The ELBO (or its estimate) of each example of the batch.
    dataset_size : int
        N, at least B.

    Returns
    -------
    float

    Examples
    --------
    >>> minibatch_estimate([-100.0, -120.0], dataset_size=60000)
    -6600000.0
    """
    elbo = as_float_array("elbo_per_example", elbo_per_example, ndim=1)
    if elbo.size == 0:
        raise ValueError("elbo_per_example: expected at least one example, got none")
    N = check_int("dataset_size", dataset_size)
    if N < elbo.size:
        raise ValueError(f"dataset_size: expected at least the batch size {elbo.size}, got {N}")
    return float(N / elbo.size * np.sum(elbo, dtype=np.float64))  # estimators (7)


# --- The importance-weighted bound --------------------------------------------------


def importance_weighted_bound(model, x, k, rng):
    r"""L_k, the importance-weighted lower bound on log p(x), per example.

    .. math:: \mathcal{L}_k = \log \frac1k \sum_{i=1}^k w_i, \qquad
              \log w_i = \log p(x | z_i) + \log p(z_i) - \log q(z_i | x), \qquad z_i \sim q(z | x)

    :math:`\mathcal{L}_1` is L^A with one sample; :math:`E[\mathcal{L}_k]` grows
    with k towards log p(x). All B k samples go through the decoder at once, so
    memory grows as B k D: for a large k, call it on a few examples at a time.
    With one ``rng``, the calls give the same numbers as one call on all the
    examples, because the noise is drawn example-major.
    Derivation: docs/estimators.md#importance-weighted

    Parameters
    ----------
    model : scratchvae.lecture.vae.VAE
    x : ndarray, shape (B, D)
    k : int
        Samples per example (5000 is the usual test-set figure).
    rng : numpy.random.Generator
        Draws the noise, in the model's dtype.

    Returns
    -------
    ndarray, shape (B,), float64

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(6, hidden=(4,), latent_dim=2, dtype=np.float64)
    >>> x = np.random.default_rng(0).random((3, 6)).round()
    >>> bound = importance_weighted_bound(model, x, 100, np.random.default_rng(1))
    >>> bool(np.all(bound >= elbo_la(model, x, 100, np.random.default_rng(1))[0]))  # Jensen
    True
    """
    x = _check_data(model, x, rng)
    k = check_int("k", k)
    B = x.shape[0]
    mu, log_var = model.encode(x)  # (B, D_z) each
    # z ~ q(z | x) for each (example, sample) pair, example-major: row n k + i is sample i of x_n.
    # log w = log p(x | z) + log N(z; 0, I) - log q(z | x), summed in float64.
    # The w are too small to form (log w is between about -30 and -600 for MNIST), so L_k is a
    # log-sum-exp, shifted by log w* = max_i log w_i (estimators (11)): every exp(log w_i - log w*)
    # is <= 1 and the largest is 1, so nothing overflows and the sum is never 0:
    #     L_k = log((1/k) sum_i w_i) = log w* + log sum_i exp(log w_i - log w*) - log k
    # BEGIN SOLUTION
    mu_rep, log_var_rep = np.repeat(mu, k, axis=0), np.repeat(log_var, k, axis=0)  # (B k, D_z)
    z = model.ops.reparameterize_forward(mu_rep, log_var_rep, _noise(rng, B, k, model))[0]  # (B k, D_z)
    log_lik = model.log_likelihood_forward(np.repeat(x, k, axis=0), model.decoder_output(z))[0]  # (B k,)
    zero = np.zeros_like(z)
    log_prior = gaussian_log_density_forward(z, zero, zero)[0]  # (B k,)
    log_q = gaussian_log_density_forward(z, mu_rep, log_var_rep)[0]  # (B k,)
    log_w = (log_lik.astype(np.float64) + log_prior - log_q).reshape(B, k)  # (B, k)
    log_w_max = log_w.max(axis=1)  # (B,) log w*
    return log_w_max + np.log(np.sum(np.exp(log_w - log_w_max[:, None]), axis=1)) - math.log(k)
    # END SOLUTION


# --- Two estimators of a gradient of an expectation (estimators (13), (15)) ---------


def score_function_gradient(f, mu, log_var, eps):
    r"""Per-sample score-function estimates of :math:`\nabla_{\mu, \log\sigma^2} E_{z \sim q}[f(z)]`.

    .. math:: \nabla E_q[f(z)] = E_q[f(z)\, \nabla \log q(z)], \qquad
              q = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)

    (estimators (13), from :math:`\nabla q = q \nabla \log q`). The score :math:`\nabla \log q`
    is the log-density's gradient, so ``gaussian_log_density_backward`` with
    upstream gradient f(z) computes the estimate; f is never differentiated.
    Derivation: docs/estimators.md#score-function

    Parameters
    ----------
    f : callable
        ``f(z)`` for z of shape (S, D), returning shape (S,).
    mu, log_var : ndarray, shape (S, D)
        q's parameters, one row per sample (repeat a single q S times).
    eps : ndarray, shape (S, D)
        Standard normal noise: z = mu + exp(log_var / 2) * eps.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (S, D)
        One estimate per sample; their mean over S is the estimator.

    Examples
    --------
    >>> import numpy as np
    >>> eps = np.random.default_rng(0).standard_normal((100000, 1))
    >>> mu, log_var = np.ones((100000, 1)), np.zeros((100000, 1))
    >>> dmu, _ = score_function_gradient(lambda z: z[:, 0], mu, log_var, eps)
    >>> bool(abs(dmu.mean() - 1.0) < 0.05)  # d/dmu E[z] = 1
    True
    """
    z = reparameterize_forward(mu, log_var, eps)[0]  # (S, D)
    cache = gaussian_log_density_forward(z, mu, log_var)[1]
    # f(z_s) * d log q(z_s) / d(mu, log_var), with z_s held fixed
    _, dmu, dlog_var = gaussian_log_density_backward(f(z), cache)
    return dmu, dlog_var


def reparameterized_gradient(df, mu, log_var, eps):
    r"""Per-sample reparameterised estimates of :math:`\nabla_{\mu, \log\sigma^2} E_{z \sim q}[f(z)]`.

    .. math:: \nabla E_\varepsilon[f(\mu + \sigma \odot \varepsilon)]
              = E_\varepsilon[\nabla f(z)\, \partial z / \partial(\mu, \log\sigma^2)]

    the chain rule through z (estimators (15)).
    Derivation: docs/estimators.md#score-function

    Parameters
    ----------
    df : callable
        ``df(z)`` for z of shape (S, D), returning the gradient of f at each row, (S, D).
    mu, log_var, eps : ndarray, shape (S, D)
        As in :func:`score_function_gradient`.

    Returns
    -------
    dmu, dlog_var : ndarray, shape (S, D)

    Examples
    --------
    >>> import numpy as np
    >>> eps = np.random.default_rng(0).standard_normal((1000, 1))
    >>> dmu, _ = reparameterized_gradient(np.ones_like, np.ones((1000, 1)), np.zeros((1000, 1)), eps)
    >>> float(dmu.mean())  # d/dmu E[z] = 1, now without noise
    1.0
    """
    z, cache = reparameterize_forward(mu, log_var, eps)  # (S, D)
    return reparameterize_backward(df(z), cache)
