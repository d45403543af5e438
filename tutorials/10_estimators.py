# %% [markdown]
# # Lesson 10: estimators, and their variances measured
#
# **What you will be able to do**
#
# * estimate one image's ELBO two ways, $\mathcal{L}^A$ (everything sampled) and $\mathcal{L}^B$
#   (the KL in closed form), and measure which is noisier;
# * estimate the whole dataset's ELBO from a minibatch, and check that it is unbiased;
# * estimate a gradient of an expectation by the score function and by reparameterisation,
#   and measure how far apart their variances are.
#
# Derivations used: [the estimators L^A and L^B](../docs/estimators.md#estimators-la-lb),
# [the minibatch estimator](../docs/estimators.md#minibatch) and
# [score function against reparameterisation](../docs/estimators.md#score-function).
#
# Everything in a VAE's objective is an expectation over $z \sim q(z \mid x)$, and training only
# ever sees estimates of it. Two unbiased estimators can differ enormously in variance: that is
# the difference between a model that trains and one that does not.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.estimators import (
    elbo_la,
    elbo_lb,
    minibatch_estimate,
    reparameterized_gradient,
    score_function_gradient,
)
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.training import binarize
from scratchvae.lecture.vae import VAE
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # a short training run
OUT = Path("10_estimators")  # where a script run saves its figures
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. $\mathcal{L}^A$ against $\mathcal{L}^B$
# With $L$ samples $z_i \sim q(z \mid x)$ ([estimators (3), (4)](../docs/estimators.md#estimators-la-lb)):
#
# $$\mathcal{L}^A = \frac1L \sum_i \big[\log p(x \mid z_i) + \log p(z_i) - \log q(z_i \mid x)\big], \qquad
# \mathcal{L}^B = -\mathrm{KL}(q \,\Vert\, p) + \frac1L \sum_i \log p(x \mid z_i).$$
#
# Both have the ELBO as their mean. $\mathcal{L}^B$ computes the KL part exactly, so one would
# expect it to be the less noisy. Measure it: on a small VAE (on the plain-NumPy ops of lessons 2-7, as
# in lesson 9), draw $R = 500$ independent one-sample estimates ($L = 1$) of each of twenty test
# images' ELBO with each estimator, and compare their variances.

# %%
mnist = load_mnist()
# (5000, 784) grey levels: a subset, binarised batch by batch
train = mnist.x_train[:5000]
# (20, 784): twenty test images
x_test = binarize(mnist.x_test[:20], np.random.default_rng(1))
D, B, D_z, R = 784, 64, 8, 500
model = VAE(D, hidden=(64,), latent_dim=D_z, seed=0)


def spreads(model):
    """R one-sample estimates of each test image's ELBO by L^A and by L^B.

    Two (20, R) arrays.
    """
    # (20 R, 784): image n is rows n R ... n R + R - 1
    x_rep = np.repeat(x_test, R, axis=0)
    la = elbo_la(model, x_rep, 1, np.random.default_rng(2))[0].reshape(20, R)
    lb = elbo_lb(model, x_rep, 1, np.random.default_rng(2))[0].reshape(20, R)
    return la, lb


def report(when, la, lb):
    ratio = la.var(axis=1) / lb.var(axis=1)  # (20,) one variance ratio per image
    # image 0's standard errors
    error_a, error_b = la[0].std() / np.sqrt(R), lb[0].std() / np.sqrt(R)
    print(f"   {when}: image 0's L^A {la[0].mean():.2f} +- {error_a:.2f}, "
          f"L^B {lb[0].mean():.2f} +- {error_b:.2f}; variance ratio "
          f"var(L^A) / var(L^B): median {np.median(ratio):.2f} over the 20 images")


print("1. one-sample estimates of the ELBO (mean of 500, +- one standard error):")
la0, lb0 = spreads(model)
report("untrained   ", la0, lb0)

# %% [markdown]
# Now train the model for a while and measure again.

# %%
steps = 150 if QUICK else 3000
optimizer = Adam(model, lr=1e-3)  # your Adam of lesson 9
for step in range(steps):
    # one step, as lesson 9 took it (lesson 12 makes it a function):
    # fresh 0/1 pixels, the noise, forward, backward, update
    x = binarize(train, rng, rng.integers(0, len(train), B))  # (B, 784)
    eps = rng.standard_normal((B, D_z), dtype=model.dtype)  # (B, D_z)
    model.zero_grad()
    model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps)[1])
    optimizer.step()
la, lb = spreads(model)
report(f"{steps} steps", la, lb)

# %% [markdown]
# Surprised? $\mathcal{L}^A - \mathcal{L}^B$ is a term of mean zero
# ([estimators (5)](../docs/estimators.md#estimators-la-lb)), so
#
# $$\mathrm{Var}\,\mathcal{L}^A = \mathrm{Var}\,\mathcal{L}^B + \mathrm{Var}(\mathcal{L}^A - \mathcal{L}^B)
# + 2\,\mathrm{Cov},$$
#
# and the covariance can be negative: a $z_i$ far out in $q$'s tail both reconstructs badly
# (lower $\log p(x \mid z_i)$) and has a low $\log q(z_i \mid x)$ (higher $-\log q$), and in
# $\mathcal{L}^A$ the two cancel. In the limit $q = p(z \mid x)$ every term of $\mathcal{L}^A$ is
# $\log p(x)$ exactly: zero variance. Removing noise by computing part of an estimate exactly
# helps only if that part was not cancelling noise elsewhere.

# %% [markdown]
# ## 2. The minibatch estimator
# The dataset's ELBO is a sum over its $N$ examples; a minibatch $\mathcal{B}$ of $B$ of them,
# drawn uniformly, estimates it without bias ([estimators (7)](../docs/estimators.md#minibatch)):
#
# $$\tilde{\mathcal{L}}^B = \frac{N}{B} \sum_{n \in \mathcal{B}} \mathcal{L}(x_n).$$
#
# Take $N = 2000$ images, their ELBOs once, and draw many minibatches of each size.

# %%
N = 2000
pool = binarize(train[:N], np.random.default_rng(3))  # (N, 784)
per_example = elbo_lb(model, pool, 1, np.random.default_rng(4))[0]  # (N,)
total = per_example.sum()
print(f"2. the sum over all N = {N}: {total:.0f}")
for size in (10, 100, 1000):
    draws = [minibatch_estimate(per_example[rng.choice(N, size, replace=False)], N)
             for _ in range(300)]
    print(f"   B = {size:>4}: mean of 300 minibatch estimates {np.mean(draws):.0f}, "
          f"their std {np.std(draws):.0f}")

# %% [markdown]
# ## 3. Two gradients of one expectation
# The encoder needs $\nabla_{\mu} \mathbb{E}_{z \sim q}[f(z)]$ for $q = \mathcal{N}(\mu, \sigma^2)$. Two
# unbiased estimators ([estimators (13), (15)](../docs/estimators.md#score-function)):
#
# * the **score function** (REINFORCE): $f(z)\, \nabla_\mu \log q(z) = f(z)\, (z - \mu) / \sigma^2$;
#   it only needs $f$'s values;
# * **reparameterisation**: $z = \mu + \sigma\varepsilon$, so $\nabla_\mu f(z) = f'(z)$; it needs $f$'s
#   derivative.
#
# Try $f(z) = z^2$ with $\mu = 1$, $\sigma = 1$: $\mathbb{E}[f] = \mu^2 + \sigma^2$, so the true
# gradient is $2\mu = 2$.

# %%
S = 10_000  # samples
mu, log_var = np.ones((S, 1)), np.zeros((S, 1))  # (S, 1): one q, repeated
eps = rng.standard_normal((S, 1))
score, _ = score_function_gradient(lambda z: z[:, 0] ** 2, mu, log_var, eps)  # (S, 1)
reparam, _ = reparameterized_gradient(lambda z: 2 * z, mu, log_var, eps)  # (S, 1)
for name, g in (("score function", score), ("reparameterisation", reparam)):
    print(f"3. {name:<19} mean {g.mean():.3f} +- {g.std() / np.sqrt(S):.3f}, "
          f"variance per sample {g.var():.2f}")
print("   variance ratio score / reparameterisation: "
      f"{score.var() / reparam.var():.1f}")

# %% [markdown]
# The two figures: on the left the spread of $\mathcal{L}^A$ and $\mathcal{L}^B$ for image 0 (trained), on
# the right the spread of the two gradient estimators, per sample. The right one counts on a
# **log scale**, over bins that hold every estimate. The score function's estimates
# $(1 + \varepsilon)^2 \varepsilon$ pile up near 0 (they vanish at $\varepsilon = 0$ and at
# $\varepsilon = -1$), and its variance sits in long tails that reach several times further out
# than any reparameterised estimate. On a linear scale, or with the tails cut off, the spike is
# all one sees, and the score function looks the *narrower* of the two.

# %% mystnb={"figure": {"caption": "Left: one-sample estimates of image 0's ELBO with the KL sampled ($\\mathcal{L}^A$) and exact ($\\mathcal{L}^B$). Right, on a log count scale: per-sample estimates of $\\partial\\,\\mathbb{E}[z^2]/\\partial\\mu$ by the reparameterisation and by the score function, around the true value 2 (dashed)."}, "image": {"alt": "Histograms of two ELBO estimators and of two gradient estimators"}}
fig = Figure(figsize=(11, 3.6), layout="constrained")
left, right = fig.subplots(1, 2)
bins = np.linspace(min(la[0].min(), lb[0].min()), max(la[0].max(), lb[0].max()), 50)
left.hist(la[0], bins=bins, alpha=0.6, label="L^A (KL sampled)")
left.hist(lb[0], bins=bins, alpha=0.6, label="L^B (KL exact)")
left.set_xlabel("one-sample estimate of image 0's ELBO (nats)")
left.legend()
both = np.concatenate([score[:, 0], reparam[:, 0]])
# every estimate of both estimators falls in a bin
bins = np.linspace(both.min(), both.max(), 120)
for name, g in (("score function", score), ("reparameterisation", reparam)):
    right.hist(g[:, 0], bins=bins, alpha=0.6, label=f"{name} (std {g.std():.1f})")
right.set_yscale("log")  # the tails, where the variance is, stay visible
right.axvline(2.0, color="k", ls="--", label="true gradient 2")
right.set_xlabel("per-sample estimate of d E[z^2] / d mu")
right.set_ylabel(f"count of {S}")
right.legend()
show(fig, "estimator_spreads.png", OUT)
held = [int(np.sum((g >= bins[0]) & (g <= bins[-1]))) for g in (score, reparam)]
print(f"   right panel: bins from {bins[0]:.1f} to {bins[-1]:.1f} "
      f"hold {held[0]} of {S} score-function estimates "
      f"and {held[1]} of {S} reparameterisation ones")

# %% [markdown]
# ## Your turn
# A constant, the *baseline* $f_0$, can be subtracted from $f$ in the score function without
# changing its mean, because $\mathbb{E}_q[\nabla \log q] = 0$. Which constant? With $\sigma = 1$
# the score $\partial \log q / \partial \mu = (z - \mu)/\sigma^2$ is $\varepsilon$, so the estimate
# $(f - f_0)\, \varepsilon$ has variance $\mathbb{E}[(f - f_0)^2 \varepsilon^2] - 2^2$, a parabola in
# $f_0$, smallest at ([estimators (15a)](../docs/estimators.md#score-function))
#
# $$f_0^\ast = \frac{\mathbb{E}[f\, \varepsilon^2]}{\mathbb{E}[\varepsilon^2]}.$$
#
# The obvious baseline $\mathbb{E}[f] = 2$ centres $f$, but it is not $f_0^\ast$: in the variance
# $f$ is weighted by $\varepsilon^2$, which favours the tails, where $f$ is large. Compute the
# score-function estimates with $f_0 = 2$ and with $f_0^\ast$ (estimated from the samples), and
# their variances. **Predict** first: how far does each baseline bring the variance down, and does
# either reach the reparameterised estimator's? (The stub uses no baseline.) You got it right
# when the cell after the answer prints three rows, each variance within a few standard errors
# of the exact one printed beside it; it stops while `baselines` has fewer than three.

# %%
z = mu + np.exp(log_var / 2) * eps  # (S, 1): the samples the estimates above used
baselines = {"none": 0.0}  # add "E[f] = 2" and f0*, estimated from z and eps

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer.
f0_star = np.mean(z**2 * eps**2) / np.mean(eps**2)  # the variance-minimising baseline
baselines = {"none": 0.0, "E[f] = 2": 2.0,
             f"f0* = E[f eps^2] / E[eps^2] = {f0_star:.2f}": f0_star}

# %%
# A sample variance is itself an estimate: its standard error is
# sqrt((m4 - var^2) / S), with m4 the fourth central moment.


def variance_and_se(g):
    d = g - g.mean()
    return np.mean(d**2), np.sqrt((np.mean(d**4) - np.mean(d**2) ** 2) / len(g))


def exact_variance(f0):
    """E[((1 + eps)^2 - f0)^2 eps^2] - 2^2, from E[eps^n] = (n - 1)!! (n even)."""
    # ((1 + eps)^2 - f0)^2
    terms = np.polynomial.polynomial.polypow([1.0 - f0, 2.0, 1.0], 2)
    moments = [0 if n % 2 else np.prod(np.arange(n - 1, 0, -2)) for n in range(2, 7)]
    return terms @ moments - 2**2  # the eps^2 shifts each power by two


assert len(baselines) == 3, "add the baselines E[f] = 2 and f0* to `baselines`"
for label, baseline in baselines.items():
    with_baseline = score_function_gradient(
        lambda z: z[:, 0] ** 2 - baseline, mu, log_var, eps)[0]
    var, se = variance_and_se(with_baseline)
    print(f"score function, baseline {label}: mean {with_baseline.mean():.3f}, "
          f"variance {var:.1f} +- {se:.1f} (exact: {exact_variance(baseline):.1f})")
var, se = variance_and_se(reparam)
print(f"reparameterisation: mean {reparam.mean():.3f}, variance {var:.1f} +- {se:.1f}")

# %% [markdown]
# ## What to look at
# * Part 1: $\mathcal{L}^A$ and $\mathcal{L}^B$ agree in the mean. Untrained, $q$ is almost the
#   prior, the KL almost 0, and so is the noise of sampling it: ratio 1. After training the
#   ratio falls below 1: $q$ has moved towards the posterior and the cancellation has set in.
#   "$\mathcal{L}^B$ has the lower variance" is a guess, not a rule: measure.
# * Part 2: the minibatch estimates centre on the full sum at every $B$; their spread falls like
#   $1/\sqrt{B}$ (roughly a factor 3 per tenfold $B$, a little more here because $B$ is half of
#   $N$ at 1000 and the draws are without replacement).
# * Part 3: both gradient estimators centre on 2, but the score function's variance is several
#   times larger even in one dimension with a smooth $f$; with $D_z$ dimensions and a decoder
#   behind $f$ it is hopeless, which is why VAEs reparameterise. In the figure its estimates
#   crowd near 0 and its tails run out several times further than the reparameterised ones.
# * Your turn: with $z = 1 + \varepsilon$ the moments of $\varepsilon$ ($\mathbb{E}\varepsilon^2 = 1$,
#   $\mathbb{E}\varepsilon^4 = 3$, $\mathbb{E}\varepsilon^6 = 15$) give the exact variances: 30 with no
#   baseline, 18 with $f_0 = \mathbb{E}[f] = 2$, 14 with $f_0^\ast = 4$, against 4 for
#   reparameterisation. The printed ones agree within a standard error or two. A baseline narrows
#   the gap; the best constant one does not close it.

# %%
print("Look at: the variance ratio falling as the model trains in 1, "
      "the minibatch means on the full sum in 2, "
      "and the score function's much larger variance in 3.")
