# %% [markdown]
# # Lesson 3: activations, and numbers that overflow
#
# **What you will be able to do**
#
# * check the backward of tanh, sigmoid and softplus with `check_op`;
# * see where the textbook formulas $1/(1 + e^{-x})$ and $\log(1 + e^{x})$ overflow in float32,
#   and how the stable versions (the ones you write) avoid it;
# * explain why the decoder's log-likelihood is computed from logits, never from
#   probabilities;
# * average numbers you only have as logarithms, with the log-sum-exp trick.
#
# Derivations used: [tanh](../docs/layers.md#tanh), [sigmoid](../docs/layers.md#sigmoid),
# [softplus](../docs/layers.md#softplus) and
# [the Bernoulli likelihood from logits](../docs/likelihoods.md#bernoulli) and
# [log-sum-exp](../docs/estimators.md#importance-weighted).
#
# The stable forms never exponentiate a positive number:
#
# $$\operatorname{sigmoid}(x) = \begin{cases} 1/(1 + e^{-|x|}) & x \ge 0 \\
# e^{-|x|}/(1 + e^{-|x|}) & x < 0 \end{cases}, \qquad
# \log(1 + e^{x}) = \max(x, 0) + \log(1 + e^{-|x|}).$$

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.activations import (
    sigmoid_backward,
    sigmoid_forward,
    softplus_backward,
    softplus_forward,
    tanh_backward,
    tanh_forward,
)
from scratchvae.lecture.gradcheck import check_op
from scratchvae.tools.plots import show

# this lesson is quick anyway
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("03_activations_and_stability")  # where a script run saves its figures


np.set_printoptions(precision=4, suppress=False)
rng = np.random.default_rng(3)

# %% [markdown]
# ## Your turn — task `tanh`: tanh
# Write `tanh_forward` and `tanh_backward` in `studentvae/activations.py`: the docstring above
# each stub says what it takes and returns; [layers: tanh](../docs/layers.md#tanh) derives it. The
# cell below checks your code as the marker will: "ok", or the first wrong element and the section
# to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("tanh")  # the lecture's code for this task

# %%
check("tanh", answer)

# %% [markdown]
# ## Your turn — task `sigmoid`: the stable sigmoid
# Write `sigmoid_forward` and `sigmoid_backward` in `studentvae/activations.py`: the docstring
# above each stub says what it takes and returns; [layers: sigmoid](../docs/layers.md#sigmoid)
# derives it. The cell below checks your code as the marker will: "ok", or the first wrong element
# and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("sigmoid")  # the lecture's code for this task

# %%
check("sigmoid", answer)

# %% [markdown]
# ## Your turn — task `softplus`: the stable softplus
# Write `softplus_forward` and `softplus_backward` in `studentvae/activations.py`: the docstring
# above each stub says what it takes and returns; [layers: softplus](../docs/layers.md#softplus)
# derives it. The cell below checks your code as the marker will: "ok", or the first wrong element
# and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("softplus")  # the lecture's code for this task

# %%
check("softplus", answer)

# %% [markdown]
# ## 1. Three activations under `check_op`
# `check_op`: taken on trust until lesson 4. It compares each backward with central differences
# of its forward and says "ok" when they agree.

# %%
x = rng.standard_normal((4, 3))
print("1. check_op on each activation:")
for name, forward, backward in (("tanh", tanh_forward, tanh_backward),
                                ("sigmoid", sigmoid_forward, sigmoid_backward),
                                ("softplus", softplus_forward, softplus_backward)):
    for result in check_op(forward, backward, {"x": x}, rng=rng):
        print(f"   {name:<8}", result.message())

# %% [markdown]
# ## 2. Where the textbook formulas break
# In float32, $e^{x}$ overflows to `inf` above $x \approx 88.7$.

# %%
big = np.array([-200.0, -90.0, 0.0, 90.0, 200.0], dtype=np.float32)
with np.errstate(over="ignore"):
    naive_sigmoid = 1 / (1 + np.exp(-big))
    naive_softplus = np.log(1 + np.exp(big))
print("2. x:                ", big)
print("   1/(1+exp(-x)):    ", naive_sigmoid,
      "  <- exp(-x) overflowed to inf: 0 at x = -90")
print("   sigmoid_forward:  ", sigmoid_forward(big)[0])
print("   log(1+exp(x)):    ", naive_softplus, "  <- inf")
print("   softplus_forward: ", softplus_forward(big)[0])

# %% [markdown]
# ## 3. Why the likelihood takes logits
# $\log p(x{=}1 \mid z) = \log \operatorname{sigmoid}(l)$. Computed as `log(sigmoid(l))` it becomes
# $\log 0 = -\infty$ once $\operatorname{sigmoid}(l) \approx e^{l}$ rounds to 0, which in float32 is
# below half its smallest positive number $2^{-149}$: from $l = -150 \log 2 \approx -104$ down.
# Computed from the logit, $\log\operatorname{sigmoid}(l) = -\operatorname{softplus}(-l)$, it stays finite.

# %% mystnb={"figure": {"caption": "$\\log p(x{=}1 \\mid z)$ in float32 computed from the logit, $-\\operatorname{softplus}(-l)$, and as $\\log(\\operatorname{sigmoid}(l))$, which becomes $-\\infty$ left of the dotted line where $\\operatorname{sigmoid}(l)$ rounds to 0."}, "image": {"alt": "log sigmoid of a logit computed two ways: one stays finite, the other drops to minus infinity"}}
logits = np.linspace(-120, 0, 241, dtype=np.float32)
with np.errstate(divide="ignore"):
    via_probability = np.log(sigmoid_forward(logits)[0])
# log p(x = 1 | z), the Bernoulli term at x = 1
from_logits = -softplus_forward(-logits)[0]
first_inf = logits[np.isinf(via_probability)].max()
print(f"3. log(sigmoid(l)) is -inf from l = {first_inf:.1f} down; "
      f"from the logits, at l = -120: {from_logits[0]:.1f}")
fig = Figure(figsize=(6, 3.6), layout="constrained")
ax = fig.subplots()
ax.plot(logits, from_logits, label="from the logit: -softplus(-l)")
shown = np.where(np.isinf(via_probability), np.nan, via_probability)
ax.plot(logits, shown, "--", label="log(sigmoid(l)): -inf on the left")
ax.axvline(first_inf, color="grey", linestyle=":")
ax.set_xlabel("logit l")
ax.set_ylabel("log p(x = 1 | z), float32")
ax.legend()
show(fig, "log_sigmoid.png", OUT)

# %% [markdown]
# ## 4. Log-sum-exp: averaging numbers you only have as logarithms
# Lesson 13 averages importance weights $w_i$ that exist only as logarithms: on MNIST
# $\log w_i$ is hundreds of nats below zero, near $-784 \log 2 \approx -543$ for an untrained
# model whose every pixel is a fair coin, closer to zero once trained
# ([estimators](../docs/estimators.md#importance-weighted); lesson 13 prints how many of its
# weights are 0 in float32). In float32, whose smallest positive number is
# $2^{-149} \approx e^{-103.3}$, such weights are 0; float64 (down to $2^{-1074} \approx e^{-744.4}$)
# holds them only by a margin that a worse model or a larger image uses up. Below, weights near
# $e^{-800}$: under even float64's smallest number, so $\log \frac1k \sum_i e^{\log w_i}$ computed
# as written is $\log 0 = -\infty$. Take out the largest,
# $\log w^\ast = \max_i \log w_i$ ([estimators (11)](../docs/estimators.md#importance-weighted)):
#
# $$\log \frac1k \sum_i w_i = \log w^\ast + \log \sum_i e^{\log w_i - \log w^\ast} - \log k.$$
#
# Every exponent is now $\le 0$ and the largest term is exactly 1: no overflow, no $\log 0$.

# %%
log_w = -800 + rng.standard_normal(1000)  # (k,) = (1000,) log-weights, in float64
with np.errstate(divide="ignore"):
    naive = np.log(np.mean(np.exp(log_w)))
top = log_w.max()
stable = top + np.log(np.sum(np.exp(log_w - top))) - np.log(len(log_w))
print(f"4. log of the average of 1000 weights near exp(-800): naive {naive}, "
      f"log-sum-exp {stable:.4f}")
# The same shifted by +800 is an ordinary average, and must agree to the last digits:
shifted = np.log(np.mean(np.exp(log_w + 800))) - 800
print(f"   check: log(mean(exp(log_w + 800))) - 800 = {shifted:.4f}")

# %% [markdown]
# ## Your turn
# Write `stable_log_sigmoid(l)`, $\log \operatorname{sigmoid}(l)$ without ever exponentiating a positive
# number, and compare it with `via_probability` at $l = -120$. (The stub is the unstable
# one.) You got it right when the cell after the answer prints -120.0 and finds no
# disagreement with $\log \operatorname{sigmoid}(l)$ on $-8 \dots 8$; the stub stops there.


# %%
def stable_log_sigmoid(l):
    with np.errstate(divide="ignore"):
        return np.log(sigmoid_forward(l)[0])  # replace


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer: log sigmoid(l) = -softplus(-l) = min(l, 0) - log(1 + exp(-|l|)).
def stable_log_sigmoid(l):
    return np.minimum(l, 0) - np.log1p(np.exp(-np.abs(l)))


# %%
at_minus_120 = stable_log_sigmoid(np.float32(-120.0))
print("stable_log_sigmoid(-120) =", at_minus_120,
      "; right if -120.0: for very negative l, log sigmoid(l) = l")
assert np.isfinite(at_minus_120) and abs(at_minus_120 + 120) < 1e-3, (
    f"stable_log_sigmoid(-120) is {at_minus_120}, not -120: "
    "exponentiate no positive number")
moderate = np.linspace(-8, 8, 17)
unstable = np.log(sigmoid_forward(moderate)[0])  # finite on -8..8
assert np.allclose(stable_log_sigmoid(moderate), unstable), (
    "stable_log_sigmoid disagrees with log(sigmoid(l)) on -8..8, where both are finite")

# %% [markdown]
# ## What to look at
# * Part 1: every activation's backward matches its forward ("ok").
# * Part 2: the textbook softplus is `inf` at $x = 90$ in float32; the stable `softplus_forward` is exactly $x$.
# * Part 3 and the figure: a log-probability through a probability dies at $-\infty$ (and its
#   gradient with it); from the logit it is a straight line, $l$ itself.
# * Part 4: the average of a thousand weights near $e^{-800}$ is 0 in float64, its log $-\infty$;
#   shifted by the largest log-weight first, the same average is exact.

# %%
print("Look at: the inf in part 2's textbook softplus, in part 3 where "
      "log(sigmoid(l)) becomes -inf while the logit form stays finite, and in "
      "part 4 the -inf of the naive average against log-sum-exp.")
