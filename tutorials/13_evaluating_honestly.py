# %% [markdown]
# # Lesson 13: evaluating honestly, the importance-weighted bound
#
# **What you will be able to do**
#
# * compute the importance-weighted bound $\mathcal{L}_k$ on $\log p(x)$ for test images, for $k$
#   from 1 to thousands;
# * see $\mathcal{L} \le \mathcal{L}_k$ grow with $k$, and report each number with its standard error;
# * say which number to report for a VAE, and what it still does not tell you.
#
# Derivations used: [the importance-weighted bound](../docs/estimators.md#importance-weighted),
# [the estimators L^A and L^B](../docs/estimators.md#estimators-la-lb) and
# [the ELBO's gap](../docs/elbo.md#kl-to-posterior).
#
# The ELBO is a lower bound on $\log p(x)$, below it by $\mathrm{KL}(q \,\Vert\, p(z \mid x))$ (lesson 8).
# Comparing two models by their ELBOs compares their bounds, not their likelihoods: one model's
# encoder may simply fit its posterior better. Burda et al. (2016) give a tighter bound that tends
# to $\log p(x)$, and it is the number VAE papers report on MNIST, with $k = 5000$.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.estimators import elbo_lb, importance_weighted_bound
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.training import binarize, train_step
from scratchvae.lecture.vae import VAE
from scratchvae.tools.checkpoints import load_model
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # small k, few images
OUT = Path("13_evaluating_honestly")  # where a script run saves its figures
MY_VAE = Path("runs", "my_vae.npz")  # the model lesson 12 trained and saved
rng = np.random.default_rng(0)

# %% [markdown]
# ## A model to evaluate
# Yours: the model lesson 12 trained and saved in `runs/my_vae.npz`, when it is there. Otherwise
# (lesson 12 not run in this folder) a small VAE trained here briefly on the plain-NumPy ops of
# lessons 2-7 (`SCRATCHVAE_QUICK=1`: a few seconds), and the lesson says so. The test images are binarised
# once, with a fixed seed, so that every number below is about the same 0/1 images.

# %%
mnist = load_mnist()
n_images = 10 if QUICK else 200
KS = (1, 10, 100, 1000) if QUICK else (1, 10, 100, 1000, 5000)
if MY_VAE.exists():
    model = load_model(MY_VAE)
    print(f"Your model from lesson 12, {MY_VAE}:", end=" ")
else:
    train = mnist.x_train[:10000]  # (10000, 784) grey levels
    D, B, D_z = 784, 64, 8
    steps = 200 if QUICK else 5000
    model = VAE(D, hidden=(64,) if QUICK else (200,), latent_dim=D_z, seed=0)
    optimizer = Adam(model, lr=1e-3)
    for step in range(steps):
        # one training step: binarise, draw eps, forward, backward, update
        train_step(model, optimizer, train, rng.integers(0, len(train), B), rng)
    print(f"No model from lesson 12 at {MY_VAE}: trained one here for {steps} steps.",
          end=" ")
x_test = binarize(mnist.x_test[:n_images], np.random.default_rng(1))  # (n_images, 784)
hidden, D_z = model.config["hidden"][0], model.config["latent_dim"]
print(f"A 784-{hidden}-{D_z} VAE; {n_images} test images")

# %% [markdown]
# ## Your turn — task `importance_weighted`: the importance-weighted bound
# Write `importance_weighted_bound` in `studentvae/estimators.py`: the docstring above each stub
# says what it takes and returns; [estimators:
# importance-weighted](../docs/estimators.md#importance-weighted) derives it. The cell below
# checks your code as the marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("importance_weighted")  # the lecture's code for this task

# %%
check("importance_weighted", answer)

# %% [markdown]
# ## 1. The bound
# Draw $k$ codes $z_1, \dots, z_k \sim q(z \mid x)$ and weigh each by how much more the model likes
# it than the encoder does ([estimators (9)](../docs/estimators.md#importance-weighted)):
#
# $$w_i = \frac{p(x \mid z_i)\, p(z_i)}{q(z_i \mid x)},
# \qquad \mathcal{L}_k = \mathbb{E}\left[\log \frac1k \sum_{i=1}^k w_i\right].$$
#
# The average of the $w_i$ is an unbiased estimate of $p(x)$; its log is, by Jensen's inequality,
# biased low, less so as $k$ grows: $\mathcal{L} = \mathcal{L}_1 \le \mathcal{L}_k \le \mathcal{L}_{k'} \le \log p(x)$
# for $k \le k'$. The weights are known only as logarithms, hundreds of nats below zero (the
# $\mathcal{L}_1$ row below is one log-weight per image: its range is printed), so the average is
# a log-sum-exp (lesson 3). `importance_weighted_bound` returns one draw of
# $\log \frac1k \sum_i w_i$ per image.

# %%
# (n_images,) the ELBO, L = 1000
elbo = elbo_lb(model, x_test, 1000, np.random.default_rng(2))[0]
# One image at a time: importance_weighted_bound holds all k samples of its
# images at once
# (k = 5000 samples of 784 pixels is 31 MB per image); one generator per k, so the
# numbers are those of one call.
bounds = {}  # k -> (n_images,)
for k in KS:
    rng_k = np.random.default_rng(3 + k)
    bounds[k] = np.concatenate([
        importance_weighted_bound(model, x_test[i:i + 1], k, rng_k)
        for i in range(len(x_test))])


def mean_and_se(values):
    return values.mean(), values.std(ddof=1) / np.sqrt(len(values))


print("1. mean over the test images, +- one standard error; "
      "the gain over the ELBO is paired, image by image:")
m, se = mean_and_se(elbo)
print(f"   ELBO (L^B, L = 1000)   {m:9.2f} +- {se:.2f}")
gains = {}
for k, bound in bounds.items():
    m, se = mean_and_se(bound)
    gains[k] = mean_and_se(bound - elbo)
    print(f"   L_{k:<5}                {m:9.2f} +- {se:.2f}    gain over the ELBO "
          f"{gains[k][0]:6.2f} +- {gains[k][1]:.2f}")
# exp() of a number below -150 log 2 rounds to 0 in float32 (lesson 3)
zero_in_float32 = int(np.sum(bounds[1] < -150 * np.log(2)))
print(f"   the log-weights of L_1 run from {bounds[1].min():.1f} to "
      f"{bounds[1].max():.1f}; as weights, {zero_in_float32} of {n_images} are 0 "
      "in float32")

# %% [markdown]
# Two kinds of error bar, and they differ by a factor of ten or more. Across images the
# log-likelihood varies by tens of nats (a "1" is cheaper than an "8"), so the standard error of
# each mean is large. But the gain $\mathcal{L}_k - \mathcal{L}$ is measured on the **same** images:
# its standard error is small, and the ordering is certain. Compare models on the same test images,
# and report the paired differences.

# %% mystnb={"figure": {"caption": "The mean gain $\\mathcal{L}_k - \\mathcal{L}$ over the ELBO on the same test images, with two paired standard errors, against the number of importance samples $k$."}, "image": {"alt": "The importance-weighted bound's gain over the ELBO growing with k, with error bars"}}
ks = np.array(KS)
means = np.array([gains[k][0] for k in KS])
errors = np.array([gains[k][1] for k in KS])
fig = Figure(figsize=(6.4, 3.8), layout="constrained")
ax = fig.subplots()
ax.errorbar(ks, means, yerr=2 * errors, fmt="o-", capsize=3,
            label="mean of L_k - ELBO, +- 2 SE")
ax.axhline(0, color="k", lw=0.5)
ax.set_xscale("log")
ax.set_xlabel("number of importance samples k")
ax.set_ylabel("gain over the ELBO (nats)")
ax.legend()
show(fig, "bound_against_k.png", OUT)

# %% [markdown]
# ## Your turn
# $\mathcal{L}_k$ is computed from random samples, so the number for one image is itself noisy.
# Compute $\log \frac1k \sum_i w_i$ for image 0 twenty times (twenty seeds) with $k = 10$ and with
# $k = 100$. **Predict** first: the average of $k$ independent numbers has a spread falling like
# $1/\sqrt{k}$, by $\sqrt{10} \approx 3.2$ from $k = 10$ to $k = 100$. Does $\mathcal{L}_k$'s? (The
# stub has no repeats.) You got it right when the cell after the answer prints both spreads, their
# ratio beside 3.2, and the gain from 10 to 100; it stops while a list holds fewer than twenty
# values.

# %%
repeats = {10: [], 100: []}  # fill: k -> twenty values for image 0

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer: twenty seeds for each k, the same seeds for both.
repeats = {}
for k in (10, 100):
    seeds = [np.random.default_rng(s) for s in range(20)]
    repeats[k] = [importance_weighted_bound(model, x_test[:1], k, rng)[0]
                  for rng in seeds]

# %%
assert all(len(repeats[k]) == 20 for k in (10, 100)), (
    f"repeats holds {[len(repeats[k]) for k in (10, 100)]} values for k = 10, 100: "
    "compute twenty for each")
for k, values in repeats.items():
    values = np.asarray(values)
    print(f"image 0, k = {k:>3}: mean {values.mean():.2f}, "
          f"std over 20 seeds {values.std(ddof=1):.2f}")
spreads = {k: np.std(values, ddof=1) for k, values in repeats.items()}
gain = np.mean(repeats[100]) - np.mean(repeats[10])
print(f"the spread: {spreads[10]:.2f} at k = 10, {spreads[100]:.2f} at k = 100, "
      f"{spreads[10] / spreads[100]:.2f} times smaller (an average of independent "
      f"numbers: {np.sqrt(10):.2f}); the gain from 10 to 100 is {gain:.2f}")

# %% [markdown]
# The spread falls by less than $\sqrt{10}$, and for a well-trained model it may not fall at
# all. $\mathcal{L}_k$ is the log of an average of weights $w_i = p(x, z_i) / q(z_i \mid x)$
# whose distribution is heavy-tailed: most $z_i$ from $q$ land where $p(x, z)$ is small, and a rare
# one, in a part of the posterior that $q$ covers thinly, brings a large weight. Those few large
# weights decide the average, and more samples make meeting them likelier; the $1/\sqrt{k}$ of
# independent averages sets in only once $k$ is large enough to sample them routinely. So one
# image's $\mathcal{L}_k$ is noisy at any $k$ you can afford, and the rising mean is the other
# reason to report a large $k$.

# %% [markdown]
# ## What to look at
# * $\mathcal{L}_1$ is one-sample $\mathcal{L}^A$: its expectation is the ELBO, and its mean
#   lands within three paired standard errors of it (one sample per image is noisy). A larger
#   $k$ gives a higher bound in expectation: the gain grows roughly with $\log k$ and flattens as
#   $\mathcal{L}_k$ approaches $\log p(x)$. Once it has flattened, two neighbouring $k$ can come
#   out in either order on a few images (their gains then differ by less than a paired standard
#   error).
# * What to report: $\mathcal{L}_{5000}$ on the test set, the $k$ used, and the standard error; the
#   ELBO beside it. Their difference is an estimate (from below) of the encoder's gap, the
#   average $\mathrm{KL}(q \,\Vert\, p(z \mid x))$.
# * What it does not tell you: $\mathcal{L}_k$ is still a lower bound. A model whose posterior is hard
#   for $q$ to cover needs a larger $k$ before its bound is near its $\log p(x)$.

# %%
print("Look at: L_1 beside the ELBO, the gains growing with k with their small paired "
      "standard errors, and the figure's curve flattening.")
