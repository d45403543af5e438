# %% [markdown]
# # Lesson 9: the whole chain, forward and backward by hand, on a real MNIST batch
#
# **What you will be able to do**
#
# * run the VAE's forward as five ops and name the shape of every intermediate;
# * run the backward as the same steps read upwards, and add the two paths by which
#   $\mu$ and $\log\sigma^2$ reach the loss;
# * check your hand-written chain against the model's own `negative_elbo_backward`, and take
#   one Adam step.
#
# Derivations used: [the forward](../docs/vae.md#forward), [the backward](../docs/vae.md#backward),
# [reparameterisation](../docs/gaussian.md#reparameterisation) and
# [one training step](../docs/training.md#one-step).
#
# MNIST is looked for in `$SCRATCHVAE_DATA/mnist/`, then in `~/.cache/scratchvae`, and
# downloaded there once if it is nowhere. Set `SCRATCHVAE_QUICK=1` for a smaller model and batch.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.classroom.selfcheck import check
from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.lecture.likelihoods import (
    bernoulli_log_likelihood_backward,
    bernoulli_log_likelihood_forward,
)
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.tiny_vae import tiny_vae_backward, tiny_vae_forward
from scratchvae.lecture.training import binarize
from scratchvae.lecture.vae import VAE
from scratchvae.tools import plots
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show

# a smaller model and batch
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
OUT = Path("09_the_whole_chain")  # where a script run saves its figures


B, hidden, D_z = (32, (64,), 2) if QUICK else (128, (400,), 20)
rng = np.random.default_rng(0)


def shape(name, array):
    print(f"   {name:<34} {str(array.shape):<12} {array.dtype}")


# %% [markdown]
# ## The batch and the model
# `binarize` draws each pixel 0 or 1, with its grey level as the probability of a 1, afresh at
# every call ([training: dynamic binarisation](../docs/training.md#dynamic-binarisation)).
# `VAE(784, ...)` runs on the plain-NumPy ops of lessons 2-7 (`scratchvae.lecture.ops`), the
# functions this lesson calls by name below, so every step here is a step the model takes.

# %%
mnist = load_mnist()  # x_train: (60000, 784) grey levels in [0, 1]
x = binarize(mnist.x_train[:B], rng)  # (B, 784): each pixel a fresh 0/1 draw
# float32, on the ops of lessons 2-7
model = VAE(784, hidden=hidden, latent_dim=D_z, seed=0)
eps = rng.standard_normal((B, D_z), dtype=np.float32)  # (B, D_z): the noise, drawn once
print(f"A {784}-{hidden[0]}-{D_z} VAE, a batch of B = {B} binarised MNIST digits.")

# %% [markdown]
# ## Your turn — task `tiny_vae`: the tiny VAE's backward
# Write `tiny_vae_backward` in `studentvae/tiny_vae.py`: the docstring above each stub says what
# it takes and returns; [vae: the tiny VAE](../docs/vae.md#tiny-vae) derives it. The cell below checks
# your code as the marker will: "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("tiny_vae")  # the lecture's code for this task

# %%
check("tiny_vae", answer)

# %% [markdown]
# ## Lesson 1's bars, trained with the tiny VAE's backward
# `tiny_vae_forward` is lesson 1's eight lines on the ops of lessons 2-7; `tiny_vae_backward`
# gets all 116 slopes that lesson 1 measured with 232 forwards, in one pass. From lesson 1's
# start (the same draws) its slope for `W_dec[0, 3]` should be the one lesson 1 measured,
# 0.12644147. Then repeat: a fresh batch, fresh noise, forward, backward, step (a larger learning
# rate, $\eta = 0.3$, to go faster). Nothing else is needed: that is training. (Try
# $\eta = 1.0$: you got it right when the loss climbs instead of falling, until the numbers
# overflow and a forward stops with a `NonFiniteError` naming the array that did.)

# %% mystnb={"figure": {"caption": "The tiny VAE's loss per step, trained with its hand-written backward, against $\\log 8$ (dashed), $-\\log p(x)$ of each of lesson 1's eight equally likely images: no loss can go below it."}, "image": {"alt": "The tiny VAE's loss falling towards log 8 over the training steps"}}
# (4, 16) each: one bar a row
rows, cols = np.repeat(np.eye(4), 4, axis=1), np.tile(np.eye(4), 4)
# lesson 1's eight images, in its order
bars = np.stack([rows, cols], axis=1).reshape(8, 16)
bar_rng = np.random.default_rng(0)  # lesson 1's draws, in lesson 1's order
x_bars = bars[bar_rng.integers(0, 8, size=32)]  # (32, 16)
tiny = [0.1 * bar_rng.standard_normal((16, 4)), np.zeros(4),
        0.1 * bar_rng.standard_normal((2, 16)), np.zeros(16)]
eps_bars = bar_rng.standard_normal((32, 2))
tiny_loss, tiny_cache = tiny_vae_forward(x_bars, eps_bars, *tiny)
print(f"Lesson 1's start: loss {tiny_loss:.6f}; "
      "d loss / d W_dec[0, 3] from tiny_vae_backward "
      f"{tiny_vae_backward(1.0, tiny_cache)[2][0, 3]:.8f}")
steps = 1000 if QUICK else 5000
losses = []
for step in range(steps):
    x_step = bars[bar_rng.integers(0, 8, size=32)]
    eps_step = bar_rng.standard_normal((32, 2))
    loss_step, cache_step = tiny_vae_forward(x_step, eps_step, *tiny)
    for param, grad in zip(tiny, tiny_vae_backward(1.0, cache_step)):
        param -= 0.3 * grad  # in place
    losses.append(loss_step)
print(f"{steps} steps: loss {np.mean(losses[:20]):.2f} (first 20) -> "
      f"{np.mean(losses[-20:]):.2f} (last 20); "
      f"no loss can go below log 8 = {np.log(8):.2f}")

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(losses, lw=0.7)
ax.axhline(np.log(8), color="k", ls="--",
           label="log 8 = -log p(x): no loss can go below")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats per image)")
ax.legend()
show(fig, "tiny_vae_loss_curve.png", OUT)

# %% [markdown]
# The loss falls from about 11 nats at lesson 1's start (fair coins, 16 log 2) to below 9, far
# above the floor: one dense layer each way cannot draw a bar from a 2-D code. The VAE below has
# a hidden layer each way.

# %% [markdown]
# ## Your turn — task `vae`: the VAE's backward
# Write `VAE.negative_elbo_backward` in `studentvae/vae.py`: the docstring above each stub says
# what it takes and returns; [vae: backward](../docs/vae.md#backward) derives it. The cell below
# checks your code as the marker will: "ok", or the first wrong element and the section to reread.
# After it, the lesson runs the same chain one op at a time, on a real batch, and compares the
# result with the model's backward.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("vae")  # the lecture's code for this task

# %%
check("vae", answer)

# %% [markdown]
# ## Forward: five steps

# %%
print("Forward:")
shape("x", x)
mu, log_var = model.encode(x)  # 1. encoder MLP, then one head split in two halves
shape("1. mu, log_var = encode(x)", mu)
# 2. z = mu + exp(log_var / 2) eps
z, reparameterize = reparameterize_forward(mu, log_var, eps)
shape("2. z = mu + sigma * eps", z)
logits = model.decoder_output(z)  # 3. decoder MLP and head: one logit per pixel
shape("3. logits = decoder(z)", logits)
reconstruction, likelihood = bernoulli_log_likelihood_forward(x, logits)  # log p(x | z)
shape("   reconstruction = log p(x | z)", reconstruction)
kl, kl_cache = kl_standard_normal_forward(mu, log_var)  # 4. KL(q(z | x) || N(0, I))
shape("4. kl", kl)
loss = float(np.mean(model.beta * kl - reconstruction))  # 5. mean of -rec + beta kl
print(f"5. loss = mean(-reconstruction + beta kl) = {loss:.4f} nats per image "
      f"(reconstruction {-reconstruction.mean():.2f} + KL {kl.mean():.2f})")

# %% [markdown]
# ## Backward: the same steps, read upwards
# The modules remember their last forward; their backward adds into `model.grads`.

# %%
print("Backward:")
model.zero_grad()
# (B,) step 5: d loss / d rec_b
dreconstruction = np.full(B, -1.0 / B, dtype=np.float32)
dkl = np.full(B, model.beta / B, dtype=np.float32)  # (B,)   d loss / d kl_b
dlogits = bernoulli_log_likelihood_backward(dreconstruction, likelihood)  # (B, 784)
shape("3. dlogits = drec * (x - sigmoid)", dlogits)
dz = model.decoder.backward(model.decoder_head.backward(dlogits))  # (B, D_z)
shape("   dz, through the decoder", dz)
# mu and log_var reach the loss along two paths:
dmu_z, dlog_var_z = reparameterize_backward(dz, reparameterize)  # 2. through z
# 4. through the KL term
dmu_kl, dlog_var_kl = kl_standard_normal_backward(dkl, kl_cache)
shape("2./4. dmu from each path", dmu_z)
paths = (("through z", dmu_z, dlog_var_z), ("through the KL", dmu_kl, dlog_var_kl))
for path, dmu, dlv in paths:
    print(f"   path {path:<15} |dmu| = {np.linalg.norm(dmu):.4f}   "
          f"|dlog_var| = {np.linalg.norm(dlv):.4f}")
# The chain rule adds the two paths (vae (6), docs/vae.md#backward); forgetting one
# is the classic bug.
# (B, 2 D_z)
dstats = np.concatenate([dmu_z + dmu_kl, dlog_var_z + dlog_var_kl], axis=1)
shape("1. d[mu | log_var], into the head", dstats)
model.encoder.backward(model.encoder_head.backward(dstats))
by_hand = {name: grad.copy() for name, grad in model.grads.items()}
print("   parameter gradients:")
for name, grad in by_hand.items():
    shape(f"   d{name}", grad)

# %% [markdown]
# ## The model does the same

# %%
model.zero_grad()
model_loss, cache = model.negative_elbo_forward(x, eps)
model.negative_elbo_backward(1.0, cache)
worst = max(float(np.max(np.abs(by_hand[k] - g)) / (float(np.max(np.abs(g))) + 1e-30))
            for k, g in model.grads.items())
print(f"The model's negative_elbo_forward: loss {model_loss:.4f}; "
      f"its backward differs from ours by at most {worst:.1e} "
      "(relative to each gradient's largest element).")

# %% [markdown]
# (Drawn after the backward: a forward on other inputs would replace the modules' caches.)
# Before any training the decoder knows nothing: its reconstructions are a grey blur.

# %% mystnb={"figure": {"caption": "Eight test digits (top row) and what the untrained VAE makes of them (bottom row): a grey blur, since the decoder knows nothing yet."}, "image": {"alt": "Test digits above an untrained VAE's reconstructions, a grey blur"}}
show(plots.plot_reconstructions(model, x, n=8), "reconstructions_untrained.png", OUT)

# %% [markdown]
# ## Your turn — task `adam`: an Adam step
# The step below is Adam's (lesson 11 sets it beside SGD and Adagrad). Write `Adam.update` in
# `studentvae/optim.py`: the docstring above each stub says what it takes and returns; [optim:
# adam](../docs/optim.md#adam) derives it. The cell below checks your code as the marker will:
# "ok", or the first wrong element and the section to reread.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("adam")  # the lecture's code for this task

# %%
check("adam", answer)

# %% [markdown]
# ## One Adam step
# `Adam` holds the model's parameters and gradients, and its `step()` applies the update you just
# wrote to each: one step that moves every parameter against its gradient, as lesson 1 did by
# hand, each coordinate scaled by its own running averages. Lesson 11 sets it beside plain
# gradient descent, momentum and Adagrad.

# %%
# holds model.params and model.grads, updates them in place
optimizer = Adam(model, lr=1e-3)
model.zero_grad()
model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps)[1])
optimizer.step()
after = model.negative_elbo_forward(x, eps)[0]
print("One Adam step (lr 1e-3): loss on the same batch and noise "
      f"{model_loss:.4f} -> {after:.4f}")

# %% [markdown]
# ## Your turn
# The classic bug: forget the KL path. Compute `dstats_one_path`, the gradient into the head
# from the path through $z$ only, and measure how far it is from the full `dstats` (a relative
# norm). Is the missing part small at initialisation? (The stub copies the full gradient.) You
# got it right when the cell after the answer finds that what you dropped is exactly the KL
# path's gradient; the stub stops there.

# %%
dstats_one_path = dstats.copy()  # replace: only the path through z

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer.
dstats_one_path = np.concatenate([dmu_z, dlog_var_z], axis=1)

# %%
gap = np.linalg.norm(dstats - dstats_one_path) / np.linalg.norm(dstats)
print(f"dropping the KL path changes the head's gradient by {gap:.1%}; right if "
      "what is dropped is exactly the KL path's gradient")
kl_path = np.concatenate([dmu_kl, dlog_var_kl], axis=1)  # (B, 2 D_z)
assert np.allclose(dstats - dstats_one_path, kl_path, atol=1e-7), (
    "dstats - dstats_one_path is not the KL path's gradient: "
    "keep only the path through z")

# %% [markdown]
# ## What to look at
# * The shapes: (B, 784) pixels → (B, D_z) twice → (B, D_z) → (B, 784) logits → (B,) per
#   example → one number. The backward retraces them in reverse.
# * Both paths reach $\mu$ and $\log\sigma^2$. The KL's path is $\mu$ and
#   $\tfrac12(\sigma^2 - 1)$ per example (lesson 4): zero at the prior, so at initialisation,
#   with $q$ close to the prior, it is the smaller (the printed norms), and it grows as training
#   moves $q$ away. The gradient is their sum: drop either and the model trains towards
#   something else.
# * Our hand-written chain and the model's agree to float32 rounding, and the Adam step lowers
#   the loss.

# %%
print("Look at: the shapes at each step, the two paths' sizes, "
      "and the loss going down.")
