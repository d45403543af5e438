# %% [markdown]
# # Lesson 8: the ELBO on a model whose log p(x) is known exactly
#
# **What you will be able to do**
#
# * compute the ELBO of any diagonal $q$ on a model where $\log p(x)$ is known in closed form;
# * check the identity $\log p(x) = \mathcal{L}(q) + \mathrm{KL}(q \,\|\, p(z \mid x))$
#   to the last digit;
# * explain why a diagonal $q$ leaves a gap when the posterior is correlated, and none when it
#   is not.
#
# Derivations used: [the KL to the posterior](../docs/elbo.md#kl-to-posterior),
# [the exactly solvable model](../docs/elbo.md#exact-model) and
# [the KL between full-covariance Gaussians](../docs/gaussian.md#kl-full-covariance).
#
# A VAE can only estimate $\log p(x)$. Take instead a linear decoder with Gaussian noise
# (probabilistic PCA):
#
# $$p(z) = \mathcal{N}(0, I), \qquad p(x \mid z) = \mathcal{N}(x;\, z W + b,\, \sigma_n^2 I)$$
#
# ([elbo (11)](../docs/elbo.md#exact-model); the noise variance $\sigma_n^2$ is `noise_var`). Here
# $\log p(x)$, the true posterior $p(z \mid x) = \mathcal{N}(\mu_{\text{post}}, \Sigma_{\text{post}})$ with
# precision $\Lambda = \Sigma_{\text{post}}^{-1}$ ([elbo (14)](../docs/elbo.md#exact-model)), and the
# ELBO of any diagonal $q$ are all in closed form.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.gaussian_full import kl_full_covariance_forward
from scratchvae.lecture.linear_gaussian import (
    linear_gaussian_elbo,
    linear_gaussian_log_marginal,
    linear_gaussian_posterior,
)
from scratchvae.tools.plots import show

# this lesson is quick anyway
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("08_elbo_on_an_exact_model")  # where a script run saves its figures


np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(3)

# %% [markdown]
# ## 1. A model and one observation

# %%
D_z, D, noise_var = 2, 5, 0.3
W = rng.standard_normal((D_z, D))  # (D_z, D): rows, as everywhere in scratchvae
b = rng.standard_normal(D)  # (D,)
z_true = rng.standard_normal((1, D_z))  # (1, D_z)
# (1, D), ancestral sampling
x = z_true @ W + b + np.sqrt(noise_var) * rng.standard_normal((1, D))
log_px = linear_gaussian_log_marginal(x, W, b, noise_var)[0]
# (1, D_z), (D_z, D_z)
mu_post, Sigma_post = linear_gaussian_posterior(x, W, b, noise_var)
print(f"1. log p(x) = {log_px:.6f}, exactly.")
print(f"   the posterior p(z | x): mean {mu_post[0]}, covariance\n{Sigma_post}")
print("   (not diagonal: the two latent coordinates are correlated given x)")

# %% [markdown]
# ## 2. The ELBO of several q's, and the gap
# For each diagonal $q = \mathcal{N}(\mu, \mathrm{diag}\, \sigma^2)$: its ELBO, the gap
# $\log p(x) - \mathcal{L}(q)$, and $\mathrm{KL}(q \,\|\, \text{posterior})$ from the
# full-covariance formula ([gaussian (6)](../docs/gaussian.md#kl-full-covariance)).

# %%
Lambda = np.linalg.inv(Sigma_post)  # (D_z, D_z): the posterior precision
candidates = {
    "the prior N(0, I)": (np.zeros(D_z), np.zeros(D_z)),
    "posterior mean, variances 1": (mu_post[0], np.zeros(D_z)),
    "posterior mean, variances diag(Sigma_post)":
        (mu_post[0], np.log(np.diag(Sigma_post))),
    # The best diagonal q for KL(q || posterior) has variances 1 / diag(Lambda), which
    # are *smaller* than the marginal variances diag(Sigma_post): q(z) = q1(z1) q2(z2)
    # cannot hold the correlation, and KL(q || p) punishes mass where p has little.
    "posterior mean, variances 1/diag(Lambda)": (mu_post[0], -np.log(np.diag(Lambda))),
}
elbos = {}
print(f"2. {'q':<42}  {'ELBO':>10}  "
      f"{'log p(x) - ELBO':>15}  {'KL(q || posterior)':>18}")
for name, (mu, log_var) in candidates.items():
    elbo = linear_gaussian_elbo(x, W, b, noise_var, mu[None], log_var[None])[0]
    kl, _ = kl_full_covariance_forward(mu, np.diag(np.exp(log_var)),
                                       mu_post[0], Sigma_post)
    elbos[name] = elbo
    print(f"   {name:<42}  {elbo:10.6f}  {log_px - elbo:15.10f}  {float(kl):18.10f}")

# %% mystnb={"figure": {"caption": "The ELBO of each candidate $q$ on the exactly solvable model, against the exact $\\log p(x)$ (dashed): every ELBO is below it, by $\\mathrm{KL}(q \\,\\|\\, p(z \\mid x))$."}, "image": {"alt": "Bars of the ELBO of several q, all below log p(x)"}}
fig = Figure(figsize=(7, 3.2), layout="constrained")
ax = fig.subplots()
ax.barh(list(elbos), list(elbos.values()), color="tab:blue")
ax.axvline(log_px, color="black", linestyle="--", label="log p(x)")
ax.set_xlim(min(elbos.values()) - 1, log_px + 0.5)
ax.invert_yaxis()
ax.set_xlabel("nats")
ax.set_title("every ELBO is below log p(x); the gap is KL(q || posterior)")
ax.legend(loc="lower right")
show(fig, "elbo_gaps.png", OUT)

# %% [markdown]
# ## 3. Tight at the posterior
# With orthogonal rows of $W$, $W W^\top$ is diagonal, so the posterior precision
# $\Lambda = I + W W^\top / \sigma_n^2$ is diagonal too. Then the diagonal family holds the posterior, and
# $q$ = posterior closes the gap: [elbo (5)](../docs/elbo.md#kl-to-posterior), the maximum over $q$ is $\log p(x)$.

# %%
Q, _ = np.linalg.qr(rng.standard_normal((D, D_z)))  # (D, D_z), orthonormal columns
W_orth = (Q * np.array([2.0, 0.7])).T  # (D_z, D): orthogonal rows of different lengths
mu_post_orth, Sigma_post_orth = linear_gaussian_posterior(x, W_orth, b, noise_var)
print("3. With orthogonal rows of W the posterior covariance is diagonal:\n"
      f"{Sigma_post_orth}")
elbo = linear_gaussian_elbo(x, W_orth, b, noise_var, mu_post_orth,
                            np.log(np.diag(Sigma_post_orth))[None])[0]
log_px_orth = linear_gaussian_log_marginal(x, W_orth, b, noise_var)[0]
print(f"   q = the posterior: ELBO {elbo:.10f}, log p(x) {log_px_orth:.10f}, "
      f"gap {log_px_orth - elbo:.1e}")

# %% [markdown]
# ## Your turn
# Find the best diagonal $q$ *numerically*: scan the two log-variances of $q$ (mean fixed at
# the posterior mean $\mu_{\text{post}}$) over a grid and keep the pair with the highest ELBO. Does
# it land on $-\log \mathrm{diag}(\Lambda)$, part 2's answer? (The stub scans nothing.) You got
# it right when the cell after the answer prints your pair within 0.1 of
# $-\log \mathrm{diag}(\Lambda)$ (a grid of spacing 0.1 or finer finds it); the stub stops there.

# %%
best_log_var = np.zeros(D_z)  # replace with your grid search

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer: a 61 x 61 grid around the answer of part 2.
grid = np.linspace(-6, 0, 61)
scores = np.array([  # lv: a log-variance of q
    [linear_gaussian_elbo(x, W, b, noise_var, mu_post, np.array([[lv1, lv2]]))[0]
     for lv2 in grid]
    for lv1 in grid])
i, j = np.unravel_index(np.argmax(scores), scores.shape)
best_log_var = np.array([grid[i], grid[j]])

# %%
target = -np.log(np.diag(Lambda))  # part 2's result
print(f"your best log-variances {best_log_var}; -log diag(Lambda) = {target}: "
      "right if each is within 0.1")
assert np.all(np.abs(best_log_var - target) < 0.1), (
    f"best_log_var {best_log_var} is not within 0.1 of -log diag(Lambda) = {target}: "
    "scan the ELBO over a grid of log-variances")

# %% [markdown]
# ## What to look at
# * Part 2: every ELBO is below $\log p(x)$, and the two right-hand columns agree to ~10
#   digits: the gap *is* $\mathrm{KL}(q \,\|\, \text{posterior})$, [elbo (3)](../docs/elbo.md#kl-to-posterior).
# * The ELBO climbs as $q$ gets closer to the posterior; the best diagonal $q$ uses variances
#   $1 / \mathrm{diag}(\Lambda)$, and even it leaves a gap, because no diagonal $q$ equals a
#   correlated posterior.
# * Part 3: when the family can hold the posterior, the gap is zero up to rounding (~1e-15).

# %%
print("Look at: the last two columns of part 2 (equal), "
      "and part 3's gap: zero, up to rounding.")
