# %% [markdown]
# # Lesson 4: checking a gradient by finite differences
#
# **What you will be able to do**
#
# * write the forward and the backward of one op, the VAE's KL term, as a pair of functions;
# * measure a derivative by central differences and compare it with the one derived by hand;
# * choose the step $h$: see truncation error win for large $h$ and round-off for small $h$;
# * read `check_op`'s relative error, and recognise the signature of a dropped factor of 2;
# * say why a passing gradient check does not prove the op right.
#
# Derivations used: [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal),
# [central differences](../docs/gradcheck.md#central-differences) and
# [the relative error](../docs/gradcheck.md#relative-error).
#
# The op is the KL term ([gaussian (14)](../docs/gaussian.md#kl-standard-normal)):
# for each example (a row), with the encoder's
# mean $\mu$ and log-variance $\log \sigma^2$,
#
# $$\mathrm{KL} = \tfrac12 \sum_j \left(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\right),
# \qquad \sigma_j^2 = \exp(\log\sigma_j^2).$$
#
# Every op in scratchvae is a pair of functions: the forward computes the value and a cache;
# the backward takes dL/d(value) and returns dL/d(each input).
#
# Run it as a notebook, or from its folder as a script (`python 04_checking_a_gradient.py`,
# figures saved to `04_checking_a_gradient/`).

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
)
from scratchvae.lecture.gradcheck import check_op, numerical_gradient
from scratchvae.tools.plots import show

# this lesson is quick anyway
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("04_checking_a_gradient")  # where a script run saves its figures


np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Your turn — task `kl_standard_normal`: the KL divergence to N(0, I)
# Write `kl_standard_normal_forward` and `kl_standard_normal_backward` in
# `studentvae/gaussian.py`: the docstring above each stub says what it takes and returns;
# [gaussian: kl-standard-normal](../docs/gaussian.md#kl-standard-normal) derives it. The cell
# below checks your code as the marker will: "ok", or the first wrong element and the section to
# reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("kl_standard_normal")  # the lecture's code for this task

# %%
check("kl_standard_normal", answer)

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
dlog_var_by_formula = dkl[:, None] * 0.5 * (np.exp(log_var) - 1)
print("   dlog_var from the formula above:\n", dlog_var_by_formula)

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
print("3. dKL_0/dlog_var_01 measured by central difference: "
      f"{central_difference(1e-5):.10f}")
print(f"   derived by hand, (exp(log_var_01) - 1) / 2:        {exact:.10f}")
# numerical_gradient does this for every element (with a more accurate 4-point stencil),
# weighting the outputs by dout: it measures the gradient of L = sum(dkl * KL).
measured = numerical_gradient(lambda lv: kl_standard_normal_forward(mu, lv)[0],
                              log_var.copy(), dout=dkl)
print("   numerical_gradient for all of dlog_var:\n", measured)

# %% [markdown]
# How small should $h$ be? Two errors pull in opposite directions
# ([gradcheck (2)](../docs/gradcheck.md#central-differences)):
#
# * **truncation**: $\Delta_h = \partial f + \tfrac{h^2}{6} \partial^3 f + O(h^4)$, an error that
#   shrinks like $h^2$;
# * **round-off**: each forward is exact only to about $\epsilon_{\text{mach}} |f|$, with
#   $\epsilon_{\text{mach}} \approx 2.2 \times 10^{-16}$ in float64, and dividing by $2h$ blows that
#   up to about $\epsilon_{\text{mach}} |f| / h$.
#
# Their sum is smallest where the two meet, $h \approx \epsilon_{\text{mach}}^{1/3} \approx 6 \times 10^{-6}$.
# Sweep $h$ over eleven decades and plot both sides on log-log axes, with the two predictions.

# %% mystnb={"figure": {"caption": "The error of the central difference against the step $h$: truncation ($h^2 f'''/6$) dominates for large $h$, round-off ($\\epsilon_\\text{mach}|f|/h$) for small $h$; the measured error follows the larger of the two."}, "image": {"alt": "The central difference's error against the step h on log axes, a V between two dashed lines"}}
hs = np.logspace(-12, -1, 45)
errors = [abs(central_difference(h) - exact) for h in hs]
fig = Figure(figsize=(6, 3.6), layout="constrained")
ax = fig.subplots()
ax.loglog(hs, errors, "o-", markersize=3, label="measured error")
third = 0.5 * np.exp(log_var[0, 1])  # d^3 KL / d log_var^3 = exp(log_var) / 2
f_value = kl_standard_normal_forward(mu, log_var)[0][0]
ax.loglog(hs, hs**2 / 6 * third, "--", label="truncation, h^2/6 f'''")
ax.loglog(hs, np.finfo(float).eps * f_value / hs, ":",
          label="round-off, eps_mach |f| / h")
ax.set_ylim(1e-17, 1)
ax.set_xlabel("step h")
ax.set_ylabel("|central difference - derivative|")
ax.legend()
show(fig, "error_against_h.png", OUT)
best = hs[int(np.argmin(errors))]
print(f"   the smallest error, {min(errors):.1e}, is at h = {best:.0e}; "
      f"at h = 1e-1 it is {errors[-1]:.1e} (truncation predicts "
      f"{hs[-1]**2 / 6 * third:.1e}), at h = 1e-12 {errors[0]:.1e} (round-off "
      f"predicts {np.finfo(float).eps * f_value / hs[0]:.1e})")

# %% [markdown]
# ## 4. `check_op`: backward against differences, for every input
# It draws a random `dout`, runs forward and backward, measures every element, and reports
# the worst relative error $|a - n| / (|a| + |n|)$ (`relative_error`) per input. A correct op stays below 1e-7.

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
# ## 6. Why a gradient check is not enough
# `check_op` compares the backward with the **forward**. It cannot know what the forward should
# compute. Drop the 1/2 in both, consistently: the backward is now the exact derivative of a
# wrong function, and the check passes.


# %%
def kl_without_the_half(mu, log_var):
    kl, cache = kl_standard_normal_forward(mu, log_var)
    return 2 * kl, cache


def kl_without_the_half_backward(dkl, cache):
    return kl_standard_normal_backward(2 * dkl, cache)


print("6. check_op on a KL without its 1/2, in the forward and the backward alike:")
for result in check_op(kl_without_the_half, kl_without_the_half_backward,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())
# A test of the value against something independent catches it: one coordinate with
# mu = 0, log_var = 0 is q = N(0, 1) = the prior, and KL(q || q) = 0; mu = 1 adds 1/2.
one = np.array([[1.0]]), np.array([[0.0]])
print("   KL(N(1, 1) || N(0, 1)) should be 0.5: "
      f"package {kl_standard_normal_forward(*one)[0][0]}, "
      f"without the half {kl_without_the_half(*one)[0][0]}")

# %% [markdown]
# ## Your turn
# Write `backward_wrong_sign`, a backward that gets the sign of `dmu` wrong. **Before you
# run it, predict** the relative error `check_op` will report for `mu`. (The cell below runs
# as it is, with the correct backward; change it.) You got it right when the cell after the
# answer prints a relative error of 1.00 for `mu`; the stub stops there.


# %%
def backward_wrong_sign(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return dmu, dlog_var  # change one sign here


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer: flip dmu. |(-a) - a| / (|-a| + |a|) = 1: a wrong sign always shows as 1.
def backward_wrong_sign(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return -dmu, dlog_var


# %%
results = check_op(kl_standard_normal_forward, backward_wrong_sign,
                   {"mu": mu, "log_var": log_var}, rng=rng)
for result in results:
    print("  ", result.message())
error_mu = next(r.max_rel_error for r in results if r.name == "mu")
print(f"relative error for mu: {error_mu:.2f}; right if 1.00, "
      "since |(-a) - a| / (|-a| + |a|) = 1")
assert abs(error_mu - 1) < 1e-6, (
    f"the relative error for mu is {error_mu:.2e}, not 1: flip the sign of dmu")

# %% [markdown]
# ## What to look at
# * In 2 and 3 the package, the formula and the measurement agree to about 10 digits; the
#   figure shows why $h$ near $\epsilon_{\text{mach}}^{1/3}$ is the sweet spot (the smallest error
#   is printed under it): right of it the error follows the $h^2$ line, left of it the $1/h$
#   line, ragged because round-off is (the two ends, printed beside their predictions).
# * In 4 the relative errors are around 1e-12 or less: "ok".
# * In 5, `mu` still passes but `log_var` FAILS, with relative error exactly 1/3:
#   $|2a - a| / (|2a| + |a|) = 1/3$. A factor of 2 always shows as 3.33e-01, a wrong sign as 1.
# * In 6 the check passes on a KL twice too large: the check compares the backward with the
#   forward, so a forward and backward wrong in the same way pass it. Only a test of the value
#   against something known (a closed form, a special case, a Monte Carlo estimate) catches it.
#   Lesson 5 shows such a bug in the sampler, and the moment test that catches it.

# %%
print("Look at: the V of the error against h, bottom near h = eps_mach^(1/3); the "
      "'ok' lines in 4; in 5 the FAILED line for 'log_var' at 3.33e-01, a factor of 2; "
      "in 6 a wrong KL passing the check.")
