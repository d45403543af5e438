# %% [markdown]
# # Lesson 6: the KL term, three ways
#
# **What you will be able to do**
#
# * compute a KL divergence from its definition, by numerical integration, in one dimension;
# * see the diagonal KL as a sum of one-dimensional KLs, and the full-covariance KL through
#   Cholesky factors;
# * check a closed form against a Monte Carlo estimate, with its standard error;
# * say why $\mathrm{KL}(q \,\Vert\, p) \ne \mathrm{KL}(p \,\Vert\, q)$.
#
# Derivations used: [the full-covariance KL](../docs/gaussian.md#kl-full-covariance),
# [the diagonal KL](../docs/gaussian.md#kl-diagonal) and
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal).
#
# The KL term is the price the ELBO charges for moving the encoder's $q(z \mid x)$ away from
# the prior. By definition
#
# $$\mathrm{KL}(q \,\Vert\, p) = \int q(z) \log\frac{q(z)}{p(z)}\, dz
# = \mathbb{E}_q\!\left[\log q(z) - \log p(z)\right].$$
#
# For Gaussians the integral has a closed form ([gaussian (6)](../docs/gaussian.md#kl-full-covariance)).
# This lesson computes it three
# ways and makes them agree.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.gaussian import kl_standard_normal_forward
from scratchvae.lecture.gaussian_density import kl_diagonal_forward
from scratchvae.lecture.gaussian_full import kl_full_covariance_forward, solve_lower
from scratchvae.tools.plots import show

# fewer Monte Carlo samples
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("06_the_kl_term")  # where a script run saves its figures
np.set_printoptions(precision=5, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Your turn — task `kl_diagonal`: the KL divergence between diagonal Gaussians
# Write `kl_diagonal_forward` and `kl_diagonal_backward` in `studentvae/gaussian_density.py`: the
# docstring above each stub says what it takes and returns; [gaussian:
# kl-diagonal](../docs/gaussian.md#kl-diagonal) derives it. The cell below checks your code as the
# marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("kl_diagonal")  # the lecture's code for this task

# %%
check("kl_diagonal", answer)

# %% [markdown]
# ## 1. One dimension: integrate the definition
# Two Gaussians, $q = \mathcal{N}(\mu_0, \sigma_0^2)$ and $p = \mathcal{N}(\mu_1, \sigma_1^2)$. With the
# variance ratio $\rho = \sigma_0^2 / \sigma_1^2$ and $\delta = \mu_1 - \mu_0$, the closed form is
# ([gaussian (11)](../docs/gaussian.md#kl-diagonal))
#
# $$\mathrm{KL} = \tfrac12 \left(\rho - 1 - \log\rho + \frac{\delta^2}{\sigma_1^2}\right).$$
#
# Against it: the integral itself, by the trapezoidal rule on a fine grid that covers $q$
# (twelve standard deviations each side: beyond them $q$ is below $10^{-31}$).

# %%
mu0, log_var0 = 0.5, np.log(0.3)  # q
mu1, log_var1 = -1.0, np.log(2.0)  # p


def log_normal(z, mu, log_var):
    """log N(z; mu, exp(log_var)), one dimension."""
    return -0.5 * (np.log(2 * np.pi) + log_var + (z - mu) ** 2 / np.exp(log_var))


sigma0 = np.exp(0.5 * log_var0)
grid = np.linspace(mu0 - 12 * sigma0, mu0 + 12 * sigma0, 4001)  # (4001,)
integrand = np.exp(log_normal(grid, mu0, log_var0)) * (
    log_normal(grid, mu0, log_var0) - log_normal(grid, mu1, log_var1))
by_quadrature = np.trapezoid(integrand, grid)
rho, delta = np.exp(log_var0 - log_var1), mu1 - mu0
by_hand = 0.5 * (rho - 1 - np.log(rho) + delta**2 / np.exp(log_var1))
package = kl_diagonal_forward(
    *(np.array([[v]]) for v in (mu0, log_var0, mu1, log_var1)))[0][0]
print(f"1. 1-D KL: quadrature {by_quadrature:.10f}, closed form {by_hand:.10f}, "
      f"kl_diagonal_forward {package:.10f}")

# %% [markdown]
# ## 2. Diagonal covariances: a sum of one-dimensional KLs
# When both covariances are diagonal the coordinates are independent, the log-densities are
# sums over coordinates, and so is the KL:
# $\mathrm{KL} = \tfrac12 \sum_j (\rho_j - 1 - \log\rho_j + \delta_j^2 / \sigma_{1j}^2)$.
# Against the standard normal ($\mu_1 = 0$, $\sigma_1 = 1$) it is the VAE's KL term,
# [gaussian (12c)](../docs/gaussian.md#kl-standard-normal):
# $\tfrac12 \sum_j (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$.

# %%
mu = rng.standard_normal((1, 3))  # (1, D_z): one example, D_z = 3
log_var = 0.5 * rng.standard_normal((1, 3))  # (1, 3)
zero = np.zeros((1, 3))
per_coordinate = [
    kl_diagonal_forward(mu[:, [j]], log_var[:, [j]], zero[:, [j]], zero[:, [j]])[0][0]
    for j in range(3)]
print(f"2. three 1-D KLs {np.array(per_coordinate)} sum to {sum(per_coordinate):.10f}")
diagonal_kl = kl_diagonal_forward(mu, log_var, zero, zero)[0][0]
standard_normal_kl = kl_standard_normal_forward(mu, log_var)[0][0]
print(f"   kl_diagonal_forward against N(0, I):  {diagonal_kl:.10f}")
print(f"   kl_standard_normal_forward:           {standard_normal_kl:.10f}")

# %% [markdown]
# ## 3. Full covariances, through Cholesky factors
# For $q = \mathcal{N}(\mu_0, \Sigma_0)$ and $p = \mathcal{N}(\mu_1, \Sigma_1)$
# ([gaussian (6)](../docs/gaussian.md#kl-full-covariance)):
#
# $$\mathrm{KL} = \tfrac12 \left(\operatorname{Tr}(\Sigma_1^{-1}\Sigma_0) + \delta^\top \Sigma_1^{-1} \delta
# - D_z + \log\frac{\det\Sigma_1}{\det\Sigma_0}\right).$$
#
# `kl_full_covariance_forward` never inverts $\Sigma_1$: it factors $\Sigma = C C^\top$ (Cholesky,
# $C$ lower triangular) and solves triangular systems,
# [gaussian (8)](../docs/gaussian.md#kl-full-covariance). First, a sanity check: with diagonal
# covariances it must give part 2's number.

# %%
diagonal = kl_full_covariance_forward(mu[0], np.diag(np.exp(log_var[0])),
                                      np.zeros(3), np.eye(3))[0]
print("3. kl_full_covariance_forward with Sigma_0 = diag(sigma^2), Sigma_1 = I: "
      f"{float(diagonal):.10f}")

A0, A1 = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
cov0 = A0 @ A0.T + 0.5 * np.eye(3)  # (3, 3) symmetric positive-definite
cov1 = A1 @ A1.T + 0.5 * np.eye(3)
m0, m1 = rng.standard_normal(3), rng.standard_normal(3)
closed = float(kl_full_covariance_forward(m0, cov0, m1, cov1)[0])
# the formula above, with inverses: fine for a 3 x 3 check, never in the package
inv1 = np.linalg.inv(cov1)
d = m1 - m0
with_inverses = 0.5 * (np.trace(inv1 @ cov0) + d @ inv1 @ d - 3
                       + np.log(np.linalg.det(cov1) / np.linalg.det(cov0)))
print(f"   full covariances: Cholesky route {closed:.10f}, "
      f"with inverses {with_inverses:.10f}")

# %% [markdown]
# ## 4. Closed form against Monte Carlo
# The definition is an expectation, so an average over samples $z_i \sim q$ estimates it:
# $\widehat{\mathrm{KL}} = \frac1L \sum_{i=1}^L (\log q(z_i) - \log p(z_i))$, with standard error
# $s / \sqrt{L}$ ($s$ the samples' standard deviation). Sample $z = \mu_0 + C_0 \varepsilon$, and
# compute each log-density ([gaussian (5)](../docs/gaussian.md#kl-full-covariance)) with its
# Cholesky factor: $\log\det\Sigma = 2\sum_i \log C_{ii}$ and
# $(z - \mu)^\top \Sigma^{-1} (z - \mu) = |C^{-1}(z - \mu)|^2$.

# %%
L = 20_000 if QUICK else 1_000_000  # Monte Carlo samples
C0, C1 = np.linalg.cholesky(cov0), np.linalg.cholesky(cov1)  # (3, 3) lower triangular


def log_density(z, m, C):
    """log N(z; m, C C^T) for each row of z (L, D_z)."""
    a = solve_lower(C[None], (z - m).T[None])[0]  # (D_z, L): C a = z - m
    log_det = 2 * np.sum(np.log(np.diag(C)))  # log det(C C^T)
    return -0.5 * (len(m) * np.log(2 * np.pi) + log_det + np.sum(a**2, axis=0))


z = m0 + rng.standard_normal((L, 3)) @ C0.T  # (L, 3): rows ~ N(m0, cov0)
terms = log_density(z, m0, C0) - log_density(z, m1, C1)  # (L,)
estimate, standard_error = terms.mean(), terms.std() / np.sqrt(L)
print(f"4. Monte Carlo with L = {L}: {estimate:.4f} +- {standard_error:.4f} "
      f"(one standard error); closed form {closed:.4f}; "
      f"{abs(estimate - closed) / standard_error:.1f} standard errors apart")

# %% [markdown]
# How does the estimate settle as $L$ grows? The running mean, with a band of two standard
# errors: the band narrows like $1/\sqrt{L}$, and the closed form stays inside it for most $L$
# (the share is printed under the figure).

# %% mystnb={"figure": {"caption": "The running mean of the Monte Carlo KL against the number of samples $L$ (log axis), with a band of two standard errors narrowing like $1/\\sqrt{L}$ around the closed form (dashed)."}, "image": {"alt": "The Monte Carlo estimate of the KL settling onto the closed form as the number of samples grows"}}
counts = np.arange(1, L + 1)
running = np.cumsum(terms) / counts
running_se = terms.std() / np.sqrt(counts)
fig = Figure(figsize=(6.4, 3.6), layout="constrained")
ax = fig.subplots()
ax.semilogx(counts, running, lw=1, label="Monte Carlo, running mean")
ax.fill_between(counts, running - 2 * running_se, running + 2 * running_se, alpha=0.25,
                label="+- 2 standard errors")
ax.axhline(closed, color="k", ls="--", label="closed form")
ax.set_xlim(10, L)
ax.set_ylim(closed - 3, closed + 3)
ax.set_xlabel("number of samples L")
ax.set_ylabel("KL (nats)")
ax.legend()
show(fig, "kl_monte_carlo.png", OUT)
inside = np.abs(running - closed)[9:] <= 2 * running_se[9:]  # L = 10 on, as plotted
print(f"   the closed form is inside the band for {inside.mean():.0%} of L "
      f"from 10 to {L}")

# %% [markdown]
# ## Your turn
# The KL is not a distance: swap the two distributions of part 1. **Predict** first: is
# $\mathrm{KL}(p \,\Vert\, q)$ larger or smaller than $\mathrm{KL}(q \,\Vert\, p)$ = 1.1? (Here $q$ is narrow,
# $\sigma_0^2 = 0.3$, and $p$ wide, $\sigma_1^2 = 2$.) Then compute it, by quadrature or with
# `kl_diagonal_forward`. (The stub copies part 1.) You got it right when the cell after the
# answer prints your value equal to the closed form beside it; the stub stops there.

# %%
swapped = by_hand  # replace

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer. KL(p || q) weighs log(p / q) by the wide p, which puts mass where the
# narrow q is tiny, and log(p / q) is large there: the swapped KL is much larger.
swapped = kl_diagonal_forward(
    *(np.array([[v]]) for v in (mu1, log_var1, mu0, log_var0)))[0][0]

# %%
# part 1's closed form with q and p exchanged: rho -> 1 / rho, over q's variance
expected = 0.5 * (1 / rho - 1 + np.log(rho) + delta**2 / np.exp(log_var0))
print(f"KL(q || p) = {by_hand:.4f}, KL(p || q) = {swapped:.4f}; "
      f"right if KL(p || q) = {expected:.4f}")
assert abs(swapped - expected) < 1e-6, (
    f"KL(p || q) = {expected:.4f}, not {swapped:.4f}: swap both means and variances")

# %% [markdown]
# ## What to look at
# * Part 1: the integral, the formula and the package agree to about 10 digits.
# * Part 2: the diagonal KL is the sum of its coordinates' KLs; against $\mathcal{N}(0, I)$ it is
#   the VAE's KL term, with the same value from both ops.
# * Part 3: the Cholesky route and the textbook formula with inverses agree.
# * Part 4 and the figure: Monte Carlo lands within a few standard errors of the closed form;
#   to gain one digit it needs 100 times the samples. This is one reason the VAE usually takes
#   the KL term in closed form ($\mathcal{L}^B$); lesson 10 measures when that helps, and when not.

# %%
print("Look at: the three equal numbers in 1, the sum in 2, the two routes in 3, "
      "and in 4 the Monte Carlo estimate within a few standard errors of the closed "
      "form.")
