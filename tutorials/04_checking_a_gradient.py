# %% [markdown]
# # Lesson 4: checking a gradient by finite differences
#
# **What you will be able to do**
#
# * write the forward and the backward of one op, the VAE's KL term, as a pair of functions;
# * measure a derivative by central differences and compare it with the one derived by hand;
# * read `check_op`'s relative error, and recognise the signature of a dropped factor of 2.
#
# Derivations used: [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal),
# [central differences](../docs/gradcheck.md#central-differences) and
# [the relative error](../docs/gradcheck.md#relative-error).
#
# The op is the KL term (note 000 (13)): for each example (a row), with the encoder's
# mean $\mu$ and log-variance $\log \sigma^2$,
#
# $$\mathrm{KL} = \tfrac12 \sum_j \left(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\right), \qquad \sigma_j^2 = \exp(\log\sigma_j^2).$$
#
# Every op in scratchvae is a pair of functions: the forward computes the value and a cache;
# the backward takes dL/d(value) and returns dL/d(each input).
#
# Run it as a script (`python tutorials/04_checking_a_gradient.py`, figures saved to
# `04_checking_a_gradient/`) or as a notebook (`jupytext --to ipynb tutorials/*.py`).

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.gaussian import kl_standard_normal_backward, kl_standard_normal_forward
from scratchvae.lecture.gradcheck import check_op, numerical_gradient
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # this lesson is quick anyway
OUT = Path("04_checking_a_gradient")  # where a script run saves its figures



np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The forward
# Two examples (rows), a latent space of three dimensions.

# %%
mu = rng.standard_normal((2, 3))  # (B, D_z) = (2, 3)
log_var = rng.standard_normal((2, 3))  # (2, 3)
kl, cache = kl_standard_normal_forward(mu, log_var)  # kl: (2,), one number per example
print("1. Forward: the KL of each example:", kl)
# The same number straight from the formula, for row 0:
row0 = 0.5 * np.sum(np.exp(log_var[0]) + mu[0] ** 2 - 1 - log_var[0])
print(f"   row 0 from the formula:         {row0:.6f}   <- the same")

# %% [markdown]
# ## 2. The local derivative, by hand
# Each term of the sum holds one $\mu_j$ and one $\log\sigma_j^2$, so
# $\partial \mathrm{KL} / \partial \mu_j = \mu_j$ and
# $\partial \mathrm{KL} / \partial \log\sigma_j^2 = \tfrac12 (\sigma_j^2 - 1)$.
# The backward receives `dkl` = dL/dKL, one number per example, and the chain rule
# multiplies: dL/dmu = dkl * mu, row by row.

# %%
dkl = np.array([1.0, -2.0])  # (2,) an upstream gradient, as if from a loss downstream
dmu, dlog_var = kl_standard_normal_backward(dkl, cache)  # (2, 3) each
print("2. Backward: dlog_var from the package:\n", dlog_var)
print("   dlog_var from the formula above:\n", dkl[:, None] * 0.5 * (np.exp(log_var) - 1))

# %% [markdown]
# ## 3. Finite differences: the derivative measured, not derived
# Nudge one input, `log_var[0, 1]`, by $\pm h$ and see how KL[0] moves. The central difference
# $(\mathrm{KL}(\log\sigma^2 + h) - \mathrm{KL}(\log\sigma^2 - h)) / 2h$ has an error of order $h^2$.


# %%
def central_difference(h):
    up, down = log_var.copy(), log_var.copy()
    up[0, 1] += h
    down[0, 1] -= h
    return (kl_standard_normal_forward(mu, up)[0][0]
            - kl_standard_normal_forward(mu, down)[0][0]) / (2 * h)


exact = 0.5 * np.expm1(log_var[0, 1])
print(f"3. dKL_0/dlog_var_01 measured by central difference: {central_difference(1e-5):.10f}")
print(f"   derived by hand, (exp(log_var_01) - 1) / 2:        {exact:.10f}")
# numerical_gradient does this for every element (with a more accurate 4-point stencil),
# weighting the outputs by dout: it measures the gradient of L = sum(dkl * KL).
measured = numerical_gradient(lambda lv: kl_standard_normal_forward(mu, lv)[0], log_var.copy(),
                              dout=dkl)
print("   numerical_gradient for all of dlog_var:\n", measured)

# %% [markdown]
# How small should $h$ be? Too large and the $h^2$ truncation error dominates; too small and
# the rounding error of the two forwards, about $10^{-16} / h$, takes over. The error is
# smallest near $h \approx 10^{-5}$.

# %%
hs = np.logspace(-12, -1, 45)
errors = [abs(central_difference(h) - exact) for h in hs]
fig = Figure(figsize=(6, 3.6), layout="constrained")
ax = fig.subplots()
ax.loglog(hs, errors, "o-", markersize=3)
ax.set_xlabel("step h")
ax.set_ylabel("|central difference - derivative|")
ax.set_title("truncation error ~ h^2 (right), rounding ~ 1/h (left)")
show(fig, "error_against_h.png", OUT)

# %% [markdown]
# ## 4. `check_op`: backward against differences, for every input
# It draws a random `dout`, runs forward and backward, measures every element, and reports
# the worst relative error $|a - n| / (|a| + |n|)$ per input. A correct op stays below 1e-7.

# %%
print("4. check_op on the package's KL:")
for result in check_op(kl_standard_normal_forward, kl_standard_normal_backward,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())

# %% [markdown]
# ## 5. Break it on purpose: drop the 1/2
# A classic slip: forget the 1/2 in front of the sum when differentiating. Here the backward
# doubles `dlog_var`.


# %%
def backward_without_the_half(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return dmu, 2 * dlog_var


print("5. check_op on a backward that dropped the 1/2 in dlog_var:")
for result in check_op(kl_standard_normal_forward, backward_without_the_half,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())

# %% [markdown]
# ## Your turn
# Write `backward_wrong_sign`, a backward that gets the sign of `dmu` wrong. **Before you
# run it, predict** the relative error `check_op` will report for `mu`. (The cell below runs
# as it is, with the correct backward; change it.)


# %%
def backward_wrong_sign(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return dmu, dlog_var  # change one sign here


# %% tags=["hide-cell"]
# One answer: flip dmu. |(-a) - a| / (|-a| + |a|) = 1: a wrong sign always shows as 1.
def backward_wrong_sign(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return -dmu, dlog_var


for result in check_op(kl_standard_normal_forward, backward_wrong_sign,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())

# %% [markdown]
# ## What to look at
# * In 2 and 3 the package, the formula and the measurement agree to about 10 digits; the
#   figure shows why $h \approx 10^{-5}$ is the sweet spot.
# * In 4 the relative errors are around 1e-12 or less: "ok".
# * In 5, `mu` still passes but `log_var` FAILS, with relative error exactly 1/3:
#   $|2a - a| / (|2a| + |a|) = 1/3$. A factor of 2 always shows as 3.33e-01, a wrong sign as 1.
# * The check compares the backward with the forward. Had we dropped the 1/2 in the forward
#   too, both would be wrong in the same way and the check would pass. Lesson 5 shows such
#   a bug, and the kind of test that catches it.

# %%
print("Look at: the 'ok' lines in 4, and in 5 the FAILED line for 'log_var' with relative error "
      "3.33e-01, the signature of a factor of 2.")
