# %% [markdown]
# # Lesson 7: likelihoods, and a variance that runs away
#
# **What you will be able to do**
#
# * write the Bernoulli log-likelihood from logits, and check its gradient $x - p$;
# * write the Gaussian log-likelihood with a learned variance, and find the variance that
#   maximises it;
# * explain, and watch happen on MNIST, why that variance collapses on always-black pixels.
#
# Derivations used: [the Bernoulli likelihood](../docs/likelihoods.md#bernoulli),
# [the Gaussian likelihood](../docs/likelihoods.md#gaussian) and
# [the Gaussian log-density](../docs/gaussian.md#log-density).
#
# The decoder turns a code $z$ into a distribution over images, $p(x \mid z)$; the reconstruction
# term of the ELBO is its log, $\log p(x \mid z)$, summed over the $D$ pixels. Which distribution
# is a modelling choice. This lesson compares the two the package offers.

# %%
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.gradcheck import check_op
from scratchvae.lecture.likelihoods import (
    bernoulli_log_likelihood_backward,
    bernoulli_log_likelihood_forward,
    gaussian_log_likelihood_backward,
    gaussian_log_likelihood_forward,
)
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show

OUT = Path("07_likelihoods")  # where a script run saves its figures
np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## Your turn — task `bernoulli_log_likelihood`: the Bernoulli log-likelihood, from logits
# Write `bernoulli_log_likelihood_forward` and `bernoulli_log_likelihood_backward` in
# `studentvae/likelihoods.py`: the docstring above each stub says what it takes and returns;
# [likelihoods: bernoulli](../docs/likelihoods.md#bernoulli) derives it. The cell below checks
# your code as the marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("bernoulli_log_likelihood")  # the lecture's code for this task

# %%
check("bernoulli_log_likelihood", answer)

# %% [markdown]
# ## 1. Bernoulli pixels, from logits
# Each pixel is 1 with probability $p_j = \operatorname{sigmoid}(l_j)$, where $l$ are the decoder's
# logits. Written with probabilities, $\log p(x \mid z) = \sum_j x_j \log p_j + (1 - x_j)\log(1 - p_j)$;
# with $\log p_j = l_j - \operatorname{softplus}(l_j)$ and $\log(1 - p_j) = -\operatorname{softplus}(l_j)$
# it becomes ([likelihoods](../docs/likelihoods.md#bernoulli))
#
# $$\log p(x \mid z) = \sum_j \big(x_j l_j - \operatorname{softplus}(l_j)\big),$$
#
# finite for every finite logit (lesson 3).

# %%
x = np.array([[1.0, 0.0, 1.0, 0.0]], dtype=np.float32)  # (1, 4)
# the last two: badly wrong
logits = np.array([[2.0, -1.0, -40.0, 40.0]], dtype=np.float32)
p = 1 / (1 + np.exp(-logits))
with np.errstate(divide="ignore"):
    via_probabilities = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
ll, cache = bernoulli_log_likelihood_forward(x, logits)
print(f"1. log p(x | z) through the probabilities: {via_probabilities}; "
      f"from the logits: {ll[0]:.4f}")

# %% [markdown]
# Its gradient is one of the nicest in the course: $\partial \log p / \partial l_j = x_j - p_j$, the
# data minus the prediction. `check_op` agrees (in float64: a gradient check needs the digits).

# %%
x64 = rng.random((3, 5)).round()  # (3, 5) pixels 0 or 1
l64 = 2 * rng.standard_normal((3, 5))
for result in check_op(lambda lg: bernoulli_log_likelihood_forward(x64, lg),
                       lambda dll, c: (bernoulli_log_likelihood_backward(dll, c),),
                       {"logits": l64}, rng=rng):
    print("  ", result.message())

# %% [markdown]
# ## Your turn — task `gaussian_log_likelihood`: the Gaussian log-likelihood
# Write `gaussian_log_likelihood_forward` and `gaussian_log_likelihood_backward` in
# `studentvae/likelihoods.py`: the docstring above each stub says what it takes and returns;
# [likelihoods: gaussian](../docs/likelihoods.md#gaussian) derives it. The cell below checks your
# code as the marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("gaussian_log_likelihood")  # the lecture's code for this task

# %%
check("gaussian_log_likelihood", answer)

# %% [markdown]
# ## 2. Gaussian pixels, with a learned variance
# The other choice: each pixel Gaussian, with a mean $\mu_j$ and a log-variance $\log\sigma_j^2$,
# both outputs of the decoder ([likelihoods (8)](../docs/likelihoods.md#gaussian)):
#
# $$\log p(x \mid z) = -\frac12 \sum_j \left[\log 2\pi + \log\sigma_j^2 + \frac{(x_j - \mu_j)^2}{\sigma_j^2}\right].$$
#
# Hold the mean fixed and look at one pixel as a function of its log-variance. With the residual
# $r_j = x_j - \mu_j$, the derivative is $\tfrac12 (r_j^2 / \sigma_j^2 - 1)$
# ([likelihoods (9)](../docs/likelihoods.md#gaussian)): zero at $\sigma_j^2 = r_j^2$, where the term is
# $-\tfrac12(\log 2\pi + \log r_j^2 + 1)$. The smaller the residual, the higher that peak, and a
# density, unlike a probability, has no ceiling: at $r_j = 0$ there is no peak at all.

# %% mystnb={"figure": {"caption": "$\\log p(x_j \\mid z)$ of one pixel as a function of $\\log\\sigma_j^2$, one curve per residual $r = x_j - \\mu_j$: each peaks at $\\log\\sigma^2 = \\log r^2$, and for $r = 0$ it grows without bound as $\\sigma^2 \\to 0$."}, "image": {"alt": "One pixel's Gaussian log-likelihood against its log-variance, for several residuals"}}
log_vars = np.linspace(-12, 2, 200)  # (200,) candidate log-variances for one pixel
fig = Figure(figsize=(6.4, 3.6), layout="constrained")
ax = fig.subplots()
for r in (0.3, 0.1, 0.01, 0.0):
    terms = gaussian_log_likelihood_forward(np.full((200, 1), r), np.zeros((200, 1)),
                                            log_vars[:, None])[0]  # (200,)
    ax.plot(log_vars, terms, label=f"residual r = {r}")
ax.set_xlabel("log sigma^2 of one pixel")
ax.set_ylabel("log p(x_j | z)")
ax.legend()
show(fig, "gaussian_term_against_log_var.png", OUT)

# %% [markdown]
# ## 3. On MNIST: the variance runs away on always-black pixels
# Many MNIST pixels, along the border, are 0 in every image (the count is printed below). A
# decoder learns $\mu_j = 0$ there quickly; then $r_j = 0$, the gradient of the loss on
# $\log\sigma_j^2$ stays at $+\tfrac12$, and $\log\sigma_j^2$ runs down without end. Watch it
# without a network: give every
# image the same decoder output, the mean fixed at each pixel's average grey level (what a
# decoder learns first) and a log-variance per pixel, and take plain gradient steps on the
# log-variances, on batches of the grey levels (not binarised), with
# `gaussian_log_likelihood_backward`.

# %%
# `load_mnist`: MNIST as arrays, grey levels in [0, 1] (docs/data.md)
mnist = load_mnist()
images = mnist.x_train[:5000]  # (5000, 784) grey levels in [0, 1]
black = np.flatnonzero(images.max(axis=0) == 0)  # pixels 0 in all 5000 images
ink = np.flatnonzero(images.mean(axis=0) > 0.3)  # pixels usually inked
print(f"3. {len(black)} of 784 pixels are 0 in all 5000 images; "
      f"{len(ink)} are inked on average > 0.3")
B, steps, lr = 100, 200, 0.1
# (B, 784): every image gets the pixels' average
mean = np.tile(images.mean(axis=0), (B, 1))
log_var = np.zeros(784)  # (784,) the one parameter per pixel
history = []  # (step, loss, mean log sigma^2 on black pixels, on inked pixels)
for step in range(steps):
    xb = images[rng.integers(0, len(images), B)]  # (B, 784)
    # (B,)
    ll, cache = gaussian_log_likelihood_forward(xb, mean, np.tile(log_var, (B, 1)))
    # loss = -mean(ll)
    _, dlog_var = gaussian_log_likelihood_backward(np.full(B, -1.0 / B), cache)
    # (784,): each pixel's gradient, summed over the batch
    log_var -= lr * dlog_var.sum(axis=0)
    history.append((step, -ll.mean(), log_var[black].mean(), log_var[ink].mean()))
history = np.array(history)
print(f"   after {steps} steps: mean log sigma^2 on the black pixels "
      f"{history[-1, 2]:.2f}, on the inked pixels {history[-1, 3]:.2f}; "
      f"the loss is {history[-1, 1]:.0f} nats, below zero")

# %% mystnb={"figure": {"caption": "Training a Gaussian decoder on MNIST: left, the mean $\\log\\sigma^2$ of the always-black pixels falls without bound while the inked pixels' stays put; right, the loss ($-$ELBO) goes below 0 as those pixels' density grows."}, "image": {"alt": "A Gaussian decoder's log-variance on always-black pixels diving while the loss goes negative"}}
fig = Figure(figsize=(10, 3.6), layout="constrained")
left, right = fig.subplots(1, 2)
left.plot(history[:, 0], history[:, 2], label="always-black pixels")
left.plot(history[:, 0], history[:, 3], label="inked pixels")
left.set_xlabel("step")
left.set_ylabel("decoder's mean log sigma^2")
left.legend()
right.plot(history[:, 0], history[:, 1])
right.axhline(0, color="k", lw=0.5)
right.set_xlabel("step")
right.set_ylabel("loss = -ELBO (nats per image)")
show(fig, "gaussian_decoder_collapse.png", OUT)

# %% [markdown]
# ## Your turn
# Part 2 claims the best variance for a pixel is the squared residual. Check it numerically:
# for $r = 0.2$, find the log-variance in `log_vars` that maximises the Gaussian term, and compare
# it with $\log r^2$. (The stub returns 0.) You got it right when the cell after the answer
# prints the two within the grid's spacing; the stub stops there.

# %%
r = 0.2  # the residual, x - mean
best_log_var = 0.0  # replace

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer.
terms = gaussian_log_likelihood_forward(
    np.full((200, 1), r), np.zeros((200, 1)), log_vars[:, None])[0]
best_log_var = log_vars[np.argmax(terms)]

# %%
spacing = log_vars[1] - log_vars[0]
print(f"best log sigma^2 on the grid {best_log_var:.3f}; log r^2 = {np.log(r**2):.3f} "
      f"(the grid's spacing is {spacing:.3f}): right if they differ by less than it")
assert abs(best_log_var - np.log(r**2)) < spacing, (
    f"best_log_var {best_log_var:.3f} is not within {spacing:.3f} of log r^2")

# %% [markdown]
# ## What to look at
# * Part 1: through the probabilities, a confident wrong pixel ($l = \pm 40$ in float32) makes the
#   log-likelihood $-\infty$; from the logits it is a large, finite, honest penalty.
# * The figure of part 2: each curve peaks at $\log\sigma^2 = \log r^2$, higher as $r$ shrinks; the
#   $r = 0$ curve climbs forever to the left.
# * Part 3: $\log\sigma^2$ on the always-black pixels keeps falling, far below the inked pixels'
#   (both printed), and the loss goes below zero: a density can exceed 1. Nothing stops the fall:
#   a pixel inked in a few images only has a tiny variance by the time the ink comes, and then
#   its gradient $-\tfrac12 (r_j^2 / \sigma_j^2 - 1)$ is of the size of $r_j^2 / \sigma_j^2$, huge;
#   a decoder's mean, with gradient $r_j / \sigma_j^2$, is thrown the same way.
# The ELBO is then a statement about how
#   sure the decoder is of zeros, not about digits. The cures (a floor on the variance, a fixed
#   variance, or a discrete decoder) are in [likelihoods](../docs/likelihoods.md#gaussian); this
#   course uses the Bernoulli decoder on binarised pixels.

# %%
print("Look at: -inf against a finite value in 1, the peaks at log r^2 in the first "
      "figure, and log sigma^2 on the black pixels running down in the second.")
