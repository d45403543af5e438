# %% [markdown]
# # Lesson 1: the whole idea, on eight tiny images
#
# **What you will be able to do**
#
# * name the five steps of a VAE's forward, from an image to one number, the loss;
# * compute that loss yourself, in eight lines of NumPy;
# * measure its gradient by nudging each parameter, take one step against it and watch the loss
#   go down.
#
# Derivations used: [the forward](../docs/vae.md#forward), [the backward](../docs/vae.md#backward),
# [reparameterisation](../docs/gaussian.md#reparameterisation) and
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal).
#
# The smallest VAE there is: one dense layer from the pixels to the encoder's outputs, one
# dense layer from the code back to the pixels. Every later lesson takes one of its steps and
# looks at it closely. Run it as a notebook, or from its folder as a script
# (`python 01_tiny_vae.py`, figures saved to `01_tiny_vae/`).

# %%
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from scratchvae.tools.plots import show

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
# Lesson 0 computed the same quantity exactly, on a grid; here the reconstruction term is
# estimated from the one sampled $z$ of step 2.

# %%
D, D_z = 16, 2
W_enc = 0.1 * rng.standard_normal((D, 2 * D_z))  # (16, 4)
b_enc = np.zeros(2 * D_z)  # (4,)
W_dec = 0.1 * rng.standard_normal((D_z, D))  # (2, 16)
b_dec = np.zeros(D)  # (16,)
eps = rng.standard_normal((len(x), D_z))  # (32, 2): the noise, drawn once


def negative_elbo(x, eps, W_enc, b_enc, W_dec, b_dec):
    """The five steps: the loss, and its two terms, each averaged over the batch."""
    stats = x @ W_enc + b_enc  # 1. (B, 4)
    mu, log_var = stats[:, :D_z], stats[:, D_z:]  # (B, 2) each
    z = mu + np.exp(0.5 * log_var) * eps  # 2. (B, 2)
    logits = z @ W_dec + b_dec  # 3. (B, 16)
    # pixel probabilities (fine here: the logits are small)
    p = 1 / (1 + np.exp(-logits))
    rec = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)  # 4. (B,)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)  # 5. (B,)
    return np.mean(-rec + kl), -rec.mean(), kl.mean()


params = [W_enc, b_enc, W_dec, b_dec]
loss, rec, kl = negative_elbo(x, eps, *params)
print(f"loss by hand: {loss:.6f} nats per image "
      f"(reconstruction {rec:.3f} + KL {kl:.4f})")

# %% [markdown]
# ## The gradient, measured
# Which way is downhill? Nudge one parameter by $\pm h$ and measure the slope,
# $(\text{loss}(w + h) - \text{loss}(w - h)) / 2h$ (lesson 4 says why this works and how to choose
# $h$), on the same batch and noise. Do it for each of the 116 numbers in the four parameters:
# that is the gradient, at the price of 232 forwards. The backward (lessons 2-9; you write the
# tiny VAE's in lesson 9) gets all 116 slopes from one pass, and lesson 9 trains this model with it.

# %%
def measured_gradient(params, h=1e-5):
    """d loss / d each parameter, one slope per number, by nudging it up and down."""
    grads = []
    for param in params:
        grad = np.zeros_like(param)
        for i in np.ndindex(param.shape):
            kept = param[i]
            param[i] = kept + h
            up = negative_elbo(x, eps, *params)[0]
            param[i] = kept - h
            down = negative_elbo(x, eps, *params)[0]
            param[i] = kept  # put it back
            grad[i] = (up - down) / (2 * h)
        grads.append(grad)
    return grads


grads = measured_gradient(params)
names = ("W_enc", "b_enc", "W_dec", "b_dec")
largest = ", ".join(f"{name} {np.abs(g).max():.4f}" for name, g in zip(names, grads))
print(f"d loss / d W_dec[0, 3] = {grads[2][0, 3]:.8f}; "
      f"the largest slope in each parameter: {largest}")

# %% [markdown]
# ## One gradient step, by hand
# Move every parameter a little against its gradient, $W \leftarrow W - \eta\, \partial\text{loss}/\partial W$,
# and compute the loss again on the same batch and noise. How far to go? The figure tries step
# sizes $\eta$ from 0 to 20 along the same direction: the loss falls, then rises again once the
# step overshoots. A small step, $\eta = 0.1$, is safely downhill.

# %% mystnb={"figure": {"caption": "The tiny VAE's loss on one batch after a step of size $\\eta$ against the gradient: it falls, then rises once the step overshoots. The dashed line is the step the lesson takes."}, "image": {"alt": "The loss of one batch against the step size taken along minus the gradient"}}
sizes = np.linspace(0, 20, 41)
along = []  # the loss after a step of each size along minus the gradient
for size in sizes:
    stepped = [w - size * g for w, g in zip(params, grads)]
    along.append(negative_elbo(x, eps, *stepped)[0])
lr = 0.1
for param, grad in zip(params, grads):
    param -= lr * grad  # in place
after = negative_elbo(x, eps, *params)[0]
print(f"after one step (lr {lr}): loss {loss:.4f} -> {after:.4f}; "
      f"along the same direction the lowest loss, {min(along):.4f}, "
      f"is at a step of {sizes[np.argmin(along)]:.1f}")

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
ax.plot(sizes, along, "o-", ms=3)
ax.axvline(lr, color="k", ls="--", label=f"the step taken, lr = {lr}")
ax.set_xlabel("step size along minus the gradient")
ax.set_ylabel("loss on this batch (nats per image)")
ax.legend()
show(fig, "loss_along_the_gradient.png", OUT)

# %% [markdown]
# ## Your turn
# Before computing anything, **predict** the loss when all four parameters are zero. (Hint:
# with zero logits every pixel is a fair coin; with $\mu = 0$ and $\log\sigma^2 = 0$, $q$ is
# the prior.) Then compute it with `negative_elbo`. You got it right when the cell after the
# answer prints your value equal to the one predicted from the hint.

# %%
zero_loss = None  # replace: negative_elbo(x, eps, <four arrays of zeros>)[0]

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer: every pixel costs log 2 and the KL is 0,
# so the loss is 16 log 2 = 11.09 nats.
zeros = np.zeros((D, 2 * D_z)), np.zeros(2 * D_z), np.zeros((D_z, D)), np.zeros(D)
zero_loss = negative_elbo(x, eps, *zeros)[0]

# %%
print(f"your loss at zero parameters: {zero_loss}; "
      f"right if it is 16 log 2 = {16 * np.log(2):.4f}")
assert zero_loss is not None and abs(zero_loss - 16 * np.log(2)) < 1e-9, (
    f"zero_loss is {zero_loss}, not 16 log 2: "
    "compute negative_elbo at four arrays of zeros")

# %% [markdown]
# ## What to look at
# * Eight lines of NumPy are the whole model: one number, the loss, about 11 nats here (fair
#   coins: 16 log 2 = 11.09, plus a small KL).
# * The measured gradient costs two forwards per number; the figure shows it points downhill:
#   small steps along it lower the loss, large ones overshoot. The lowest loss on the curve is on
#   *this* batch and noise only; training takes many small steps on fresh batches (lesson 9 runs
#   this model for a thousand, with the backward you write).
# * The floor: for eight equally likely images $-\log p(x) = \log 8 \approx 2.1$, and the loss is
#   $-\mathcal{L} \ge -\log p(x)$, so no model goes below it.
# * Every step had a name: lessons 2-7 take them one at a time (dense layer, activations,
#   gradient checks, the sample, the KL, the likelihood).

# %%
print("Look at: the loss near 16 log 2, the decoder's slopes the largest "
      "(its logits set the pixels directly), and the loss along the gradient "
      "falling, then rising once the step overshoots.")
