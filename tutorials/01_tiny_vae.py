# %% [markdown]
# # Lesson 1: the whole idea in sixty lines
#
# **What you will be able to do**
#
# * name the five steps of a VAE's forward, from an image to one number, the loss;
# * compute that loss yourself and get the same number as `scratchvae.lecture.tiny_vae`;
# * take one gradient step by hand and watch the loss go down.
#
# Derivations used: [the forward](../docs/vae.md#forward), [the backward](../docs/vae.md#backward),
# [reparameterisation](../docs/gaussian.md#reparameterisation),
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal) and
# [the tiny VAE exercise](../docs/exercises.md#tiny-vae).
#
# The smallest VAE there is: one dense layer from the pixels to the encoder's outputs, one
# dense layer from the code back to the pixels. Every later lesson takes one of its steps and
# looks at it closely. Run it as a script (`python tutorials/01_tiny_vae.py`, figures saved to
# `01_tiny_vae/`) or as a notebook.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.tiny_vae import tiny_vae_backward, tiny_vae_forward
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # fewer training steps
OUT = Path("01_tiny_vae")  # where a script run saves its figures
np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The data: 4 x 4 images of bars
# No MNIST yet. Each image is one horizontal or one vertical bar of ones on a 4 x 4 grid:
# eight possible images, $D = 16$ pixels each. A good code needs very little: which bar.

# %%
bars = []
for i in range(4):
    row, col = np.zeros((4, 4)), np.zeros((4, 4))
    row[i, :], col[:, i] = 1, 1
    bars += [row.ravel(), col.ravel()]
bars = np.array(bars)  # (8, 16): the eight possible images
x = bars[rng.integers(0, 8, size=32)]  # (B, D) = (32, 16): a batch of 32
print("one image, as a 4 x 4 grid:\n", x[0].reshape(4, 4))

# %% [markdown]
# ## The forward, five steps
# With a latent space of $D_z = 2$ dimensions:
#
# 1. the encoder, one dense layer: $[\mu \,|\, \log\sigma^2] = x W_{enc} + b_{enc}$, shape $(B, 2 D_z)$;
# 2. the sample: $z = \mu + \sigma \odot \varepsilon$ with $\sigma = \exp(\tfrac12 \log\sigma^2)$
#    and $\varepsilon \sim \mathcal{N}(0, I)$;
# 3. the decoder, one dense layer: the logits $l = z W_{dec} + b_{dec}$, one per pixel;
# 4. the reconstruction term, Bernoulli pixels with $p = \operatorname{sigmoid}(l)$:
#    $\text{rec} = \sum_j x_j \log p_j + (1 - x_j) \log(1 - p_j)$;
# 5. the KL term, $\mathrm{KL} = \tfrac12 \sum_j (\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2)$.
#
# The loss is the negative ELBO averaged over the batch, $\text{loss} = \frac1B \sum_n (-\text{rec}_n + \text{kl}_n)$.

# %%
D, D_z = 16, 2
W_enc = 0.1 * rng.standard_normal((D, 2 * D_z))  # (16, 4)
b_enc = np.zeros(2 * D_z)  # (4,)
W_dec = 0.1 * rng.standard_normal((D_z, D))  # (2, 16)
b_dec = np.zeros(D)  # (16,)
eps = rng.standard_normal((len(x), D_z))  # (32, 2): the noise, drawn once

stats = x @ W_enc + b_enc  # 1. (32, 4)
mu, log_var = stats[:, :D_z], stats[:, D_z:]  # (32, 2) each
z = mu + np.exp(0.5 * log_var) * eps  # 2. (32, 2)
logits = z @ W_dec + b_dec  # 3. (32, 16)
p = 1 / (1 + np.exp(-logits))  # pixel probabilities (fine here: the logits are small)
rec = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)  # 4. (32,)
kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)  # 5. (32,)
loss_by_hand = np.mean(-rec + kl)
loss, cache = tiny_vae_forward(x, eps, W_enc, b_enc, W_dec, b_dec)
print(f"loss by hand:              {loss_by_hand:.6f} nats per image "
      f"(reconstruction {-rec.mean():.3f} + KL {kl.mean():.4f})")
print(f"loss from tiny_vae_forward: {loss:.6f}")

# %% [markdown]
# ## The backward, and one check
# `tiny_vae_backward` runs the same five steps upwards and returns the gradient of the loss
# with respect to each of the four parameters (lesson 9 writes every step out). Is it right?
# Nudge one weight by $\pm h$ and measure the slope, $(\text{loss}(w + h) - \text{loss}(w - h)) / 2h$
# (lesson 4 says why this works and how to choose $h$).

# %%
dW_enc, db_enc, dW_dec, db_dec = tiny_vae_backward(1.0, cache)
h = 1e-5
up, down = W_dec.copy(), W_dec.copy()
up[0, 3] += h
down[0, 3] -= h
measured = (tiny_vae_forward(x, eps, W_enc, b_enc, up, b_dec)[0]
            - tiny_vae_forward(x, eps, W_enc, b_enc, down, b_dec)[0]) / (2 * h)
error = abs(measured - dW_dec[0, 3]) / (abs(measured) + abs(dW_dec[0, 3]))
print(f"d loss / d W_dec[0, 3]: backward {dW_dec[0, 3]:.8f}, measured {measured:.8f}, "
      f"relative error {error:.1e}")

# %% [markdown]
# ## One gradient step, by hand
# Move every parameter a little against its gradient, $W \leftarrow W - \eta\, \partial\text{loss}/\partial W$,
# with the learning rate $\eta = 0.1$, and compute the loss again on the same batch and noise.

# %%
lr = 0.1
params = [W_enc, b_enc, W_dec, b_dec]
for param, grad in zip(params, (dW_enc, db_enc, dW_dec, db_dec)):
    param -= lr * grad  # in place
after = tiny_vae_forward(x, eps, *params)[0]
print(f"after one step (lr {lr}): loss {loss:.4f} -> {after:.4f}")

# %% [markdown]
# ## Many steps: that is training
# Repeat: a fresh batch, fresh noise, forward, backward, step. Nothing else is needed. (A larger
# learning rate, $\eta = 0.3$, to go faster; try 1.0 and watch it blow up.)

# %%
steps = 1000 if QUICK else 5000
lr = 0.3
losses = []
for step in range(steps):
    xb = bars[rng.integers(0, 8, size=32)]
    eb = rng.standard_normal((32, D_z))
    loss_t, cache_t = tiny_vae_forward(xb, eb, *params)
    for param, grad in zip(params, tiny_vae_backward(1.0, cache_t)):
        param -= lr * grad
    losses.append(loss_t)
print(f"{steps} steps: loss {np.mean(losses[:20]):.2f} (first 20) -> {np.mean(losses[-20:]):.2f} "
      f"(last 20); no loss can go below log 8 = {np.log(8):.2f}")

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(losses, lw=0.7)
ax.axhline(np.log(8), color="k", ls="--", label="log 8 = -log p(x): no loss can go below")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats per image)")
ax.legend()
show(fig, "loss_curve.png", OUT)

# %% [markdown]
# ## Your turn
# Before computing anything, **predict** the loss when all four parameters are zero. (Hint:
# with zero logits every pixel is a fair coin; with $\mu = 0$ and $\log\sigma^2 = 0$, $q$ is
# the prior.) Then compute it with `tiny_vae_forward`. (The stub prints nothing useful.)

# %%
zero_loss = None  # replace: tiny_vae_forward(x, eps, <four arrays of zeros>)[0]

# %% tags=["hide-cell"]
# One answer: every pixel costs log 2 and the KL is 0, so the loss is 16 log 2 = 11.09 nats.
zeros = np.zeros((D, 2 * D_z)), np.zeros(2 * D_z), np.zeros((D_z, D)), np.zeros(D)
zero_loss = tiny_vae_forward(x, eps, *zeros)[0]
print(f"loss at zero parameters: {zero_loss:.4f} = 16 log 2 = {16 * np.log(2):.4f}")

# %% [markdown]
# ## What to look at
# * Your loss and the package's agree to every printed digit: the five steps are the whole
#   model. The backward agrees with a measured slope to about 1e-10.
# * One step lowers the loss a little; a thousand bring it from about 11 nats (fair coins) to
#   below 9. The dashed line, $\log 8 \approx 2.1$, is $-\log p(x)$ for eight equally likely
#   images: the loss is $-\mathcal{L} \ge -\log p(x)$, so no model can go below it. One dense layer
#   each way is far from it: a linear decoder cannot draw a bar from a 2-D code. Hidden layers
#   (lesson 2) close much of the gap.
# * Every step had a name: lessons 2-7 take them one at a time (dense layer, activations,
#   gradient checks, the sample, the KL, the likelihood).

# %%
print("Look at: the two equal losses, the relative error near 1e-10, and the loss curve "
      "falling from 16 log 2, above the floor log 8.")
