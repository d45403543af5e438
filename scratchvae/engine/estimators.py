"""The importance-weighted bound, streamed and fast: what ``scratchvae evaluate --iwae-k 5000`` runs.

Same name and meaning as :func:`scratchvae.lecture.estimators.importance_weighted_bound`,
with the lecture's parameters and two keyword-only ones, ``batch_rows`` and
``progress``: the same noise, drawn from ``rng`` in the same example-major
order, so the same samples and the same values to the model's precision
(``tests/test_engine.py`` checks it). Read the lecture for the maths.

The lecture holds all B k (example, sample) pairs at once: 5000 samples of
each of 10 000 test images would be fifty million decoder rows. Here they go
through in chunks of at most ``batch_rows`` pairs, in the lecture's order
(several whole examples per chunk when k is small, one example's samples split
when it is large), and the log-sum-exp is kept online: per example, a running
maximum m of log w and a running s = sum_j exp(log w_j - m), in float64. When a
chunk raises the maximum to m', every old term exp(log w_j - m) becomes
exp(log w_j - m') = exp(log w_j - m) exp(m - m'), so s is rescaled by
exp(m - m') before the chunk's terms are added; at the end
L_k = m + log s - log k. What else differs, per chunk:

* the chunks are small enough for the decoder's output to stay in cache
  (:data:`CACHE_ROWS`), whatever ``batch_rows`` says (it stays an upper bound);
* z and log p(z) - log q(z|x) come from one kernel pass over the small (E S, D_z)
  noise, without repeating mu and log_var;
* for the Bernoulli likelihood, x is never repeated:
  :func:`scratchvae.engine.vmath.bernoulli_ll_repeated` reads each example's
  row in place for its S samples, and computes log p(x|z) in one vectorised
  pass (the head's bias, exp, log1p and the row sum fused) from the head's
  product h @ W, written into a buffer reused chunk to chunk; any other
  likelihood is the model's own, on the chunk's repeated rows;
* the online log-sum-exp is one kernel pass, in float64.

The encoder runs once over all of x, in blocks.
"""

import math

import numpy as np

from scratchvae.engine import vmath
from scratchvae.engine.kernels import jit
from scratchvae.lecture.estimators import _check_data
from scratchvae.lecture.validate import check_int

__all__ = ["importance_weighted_bound"]

# (example, sample) pairs decoded at once. Measured on the 2-core development
# machine (784-400-20 Bernoulli model, k = 5000): see docs/performance.md,
# "Evaluating with k = 5000".
CACHE_ROWS = 2500
# Examples encoded at once (the encoder does not draw noise, so any split will do).
ENCODE_ROWS = 1024


@jit
def latent_samples(mu, log_var, eps, n_samples, z, log_ratio):
    """z and log N(z; 0, I) - log q(z | x) for each (example, sample) pair.

    Row i of ``eps`` (E S, D_z) is sample i % S of example e = i // S, whose q
    has parameters ``mu[e]``, ``log_var[e]`` (E, D_z). z = mu + sigma eps with
    sigma = exp(log_var / 2), as the engine's reparameterisation computes it.
    The log 2 pi terms cancel, and (z - mu) / sigma = eps, so
    log_ratio[i] = 1/2 sum_d (eps^2 + log_var - z^2), summed in float64.
    """
    for i in range(eps.shape[0]):
        e = i // n_samples
        acc = 0.0
        for d in range(eps.shape[1]):
            # the reparameterisation, exactly as kernels.reparameterize
            sigma = np.exp(0.5 * log_var[e, d])
            zd = mu[e, d] + sigma * eps[i, d]
            z[i, d] = zd
            # log N(z; 0, 1) - log N(z; mu, sigma^2) for this coordinate
            acc += 0.5 * (np.float64(eps[i, d]) ** 2 + np.float64(log_var[e, d]) - np.float64(zd) ** 2)
        log_ratio[i] = acc


@jit
def logsumexp_update(log_lik, log_ratio, n_samples, running_max, running_sum):
    """Fold a chunk's log w = log_lik + log_ratio (E S,) into each example's (m, s).

    m is the largest log w so far and s = sum_j exp(log w_j - m), per example,
    float64 (E,). When m grows to m', the old s is rescaled by exp(m - m').
    """
    for e in range(running_max.size):
        base = e * n_samples
        # the new maximum
        m = running_max[e]
        for s in range(n_samples):
            m = max(m, np.float64(log_lik[base + s]) + log_ratio[base + s])
        # the chunk's terms, relative to it (vmath.exp: the loop vectorises)
        acc = 0.0
        for s in range(n_samples):
            acc += vmath.exp(np.float64(log_lik[base + s]) + log_ratio[base + s] - m)
        running_sum[e] = running_sum[e] * vmath.exp(running_max[e] - m) + acc
        running_max[e] = m


def _pieces(n_examples, k, rows):
    """(first, stop, size): ``stop - first`` examples, ``size`` samples of each, example-major.

    Several whole examples per piece when k <= rows; otherwise one example's k
    samples in near-equal pieces of at most ``rows`` (5000 = 2 x 2500), which
    avoids a small last piece.
    """
    if k <= rows:
        per = rows // k
        for first in range(0, n_examples, per):
            yield first, min(first + per, n_examples), k
        return
    n = -(-k // rows)
    sizes = [k // n + (1 if j < k % n else 0) for j in range(n)]
    for first in range(n_examples):
        for size in sizes:
            yield first, first + 1, size


def importance_weighted_bound(model, x, k, rng, *, batch_rows=20000, progress=None):
    """:func:`scratchvae.lecture.estimators.importance_weighted_bound`, streamed (module docstring).

    ``batch_rows``: at most this many (example, sample) pairs are decoded at
    once, so memory is O(batch_rows D) whatever k and B; the result does not
    depend on it. ``progress``: called after each chunk with the fraction of
    pairs done, in (0, 1].

    Derivation: docs/estimators.md#importance-weighted
    """
    x = np.ascontiguousarray(_check_data(model, x, rng))
    k = check_int("k", k)
    rows = min(check_int("batch_rows", batch_rows), CACHE_ROWS)
    B, dtype = x.shape[0], model.dtype
    # q(z | x) for every example, once
    mu = np.empty((B, model.latent_dim), dtype)  # (B, D_z)
    log_var = np.empty_like(mu)  # (B, D_z)
    for start in range(0, B, ENCODE_ROWS):
        m, v = model.encode(x[start:start + ENCODE_ROWS])
        mu[start:start + ENCODE_ROWS], log_var[start:start + ENCODE_ROWS] = m, v
    running_max = np.full(B, -np.inf)  # (B,) m: the largest log w so far
    running_sum = np.zeros(B)  # (B,) s = sum_j exp(log w_j - m)
    z = np.empty((rows, model.latent_dim), dtype)  # buffers for the largest chunk
    log_ratio, log_lik = np.empty(rows), np.empty(rows, dtype)
    bernoulli = model.likelihood == "bernoulli"
    head_W, head_b = model.decoder_head.params["W"], model.decoder_head.params["b"]  # (H, D), (D,)
    products = np.empty((rows, head_W.shape[1]) if bernoulli else (0, 0), dtype)  # (rows, D)
    done = 0
    for first, stop, size in _pieces(B, k, rows):
        n = (stop - first) * size
        # z ~ q(z | x), and log p(z) - log q(z | x); the lecture's noise, in its order
        eps = rng.standard_normal((n, model.latent_dim), dtype=dtype)  # (E S, D_z)
        latent_samples(mu[first:stop], log_var[first:stop], eps, size, z[:n], log_ratio[:n])
        if bernoulli:
            # log p(x | z): the decoder's hidden layers, its head's product h @ W
            # into a buffer, then its bias inside the Bernoulli pass, which reads
            # each example's row of x in place
            h = model.decoder.forward(z[:n])  # (E S, H)
            np.matmul(h, head_W, out=products[:n])  # (E S, D)
            vmath.bernoulli_ll_repeated(x[first:stop], size, products[:n], head_b, log_lik[:n])
        else:
            # log p(x | z): the model's own likelihood, on the chunk's rows of x repeated
            x_rep = np.repeat(x[first:stop], size, axis=0)  # (E S, D)
            log_lik[:n] = model.log_likelihood_forward(x_rep, model.decoder_output(z[:n]))[0]
        # log w = log p(x | z) + log p(z) - log q(z | x), into the online log-sum-exp
        logsumexp_update(log_lik[:n], log_ratio[:n], size, running_max[first:stop], running_sum[first:stop])
        done += n
        if progress is not None:
            progress(done / (B * k))
    # L_k = log((1/k) sum_j w_j) = m + log s - log k
    return running_max + np.log(running_sum) - math.log(k)
