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

from scratchvae.lecture.gaussian import (
    kl_standard_normal_backward,
    kl_standard_normal_forward,
    reparameterize_backward,
    reparameterize_forward,
)
from scratchvae.lecture.likelihoods import bernoulli_log_likelihood_backward, bernoulli_log_likelihood_forward
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.training import binarize
from scratchvae.lecture.vae import VAE
from scratchvae.tools import plots
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # a smaller model and batch
OUT = Path("09_the_whole_chain")  # where a script run saves its figures


B, hidden, D_z = (32, (64,), 2) if QUICK else (128, (400,), 20)
rng = np.random.default_rng(0)


def shape(name, array):
    print(f"   {name:<34} {str(array.shape):<12} {array.dtype}")


# %% [markdown]
# ## The batch and the model
# `VAE(784, ...)` runs on the lecture's own ops (`scratchvae.lecture.ops`), the plain-NumPy
# functions this lesson calls by name below, so every step here is a step the model takes.

# %%
mnist = load_mnist()  # x_train: (60000, 784) grey levels in [0, 1]
x = binarize(mnist.x_train[:B], rng)  # (B, 784): each pixel a fresh 0/1 draw
model = VAE(784, hidden=hidden, latent_dim=D_z, seed=0)  # float32, on the lecture's ops
eps = rng.standard_normal((B, D_z), dtype=np.float32)  # (B, D_z): the noise, drawn once
print(f"A {784}-{hidden[0]}-{D_z} VAE, a batch of B = {B} binarised MNIST digits.")

# %% [markdown]
# ## Forward: five steps

# %%
print("Forward:")
shape("x", x)
mu, log_var = model.encode(x)  # 1. encoder MLP, then one head split in two halves
shape("1. mu, log_var = encode(x)", mu)
z, reparameterize = reparameterize_forward(mu, log_var, eps)  # 2. z = mu + exp(log_var / 2) eps
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
dreconstruction = np.full(B, -1.0 / B, dtype=np.float32)  # (B,) step 5: d loss / d rec_b
dkl = np.full(B, model.beta / B, dtype=np.float32)  # (B,)   d loss / d kl_b
dlogits = bernoulli_log_likelihood_backward(dreconstruction, likelihood)  # (B, 784)
shape("3. dlogits = drec * (x - sigmoid)", dlogits)
dz = model.decoder.backward(model.decoder_head.backward(dlogits))  # (B, D_z)
shape("   dz, through the decoder", dz)
# mu and log_var reach the loss along two paths:
dmu_z, dlog_var_z = reparameterize_backward(dz, reparameterize)  # 2. through z
dmu_kl, dlog_var_kl = kl_standard_normal_backward(dkl, kl_cache)  # 4. through the KL term
shape("2./4. dmu from each path", dmu_z)
for path, dmu, dlv in (("through z", dmu_z, dlog_var_z), ("through the KL", dmu_kl, dlog_var_kl)):
    print(f"   path {path:<15} |dmu| = {np.linalg.norm(dmu):.4f}   "
          f"|dlog_var| = {np.linalg.norm(dlv):.4f}")
# The chain rule adds the two paths (vae (6), docs/vae.md#backward); forgetting one is the classic bug.
dstats = np.concatenate([dmu_z + dmu_kl, dlog_var_z + dlog_var_kl], axis=1)  # (B, 2 D_z)
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
print(f"The model's negative_elbo_forward: loss {model_loss:.4f}; its backward differs from ours "
      f"by at most {worst:.1e} (relative to each gradient's largest element).")

# %% [markdown]
# (Drawn after the backward: a forward on other inputs would replace the modules' caches.)
# Before any training the decoder knows nothing: its reconstructions are a grey blur.

# %%
show(plots.plot_reconstructions(model, x, n=8), "reconstructions_untrained.png", OUT)

# %% [markdown]
# ## Your turn
# The classic bug: forget the KL path. Compute `dstats_one_path`, the gradient into the head
# from the path through $z$ only, and measure how far it is from the full `dstats` (a relative
# norm). Is the missing part small at initialisation? (The stub copies the full gradient.)

# %%
dstats_one_path = dstats.copy()  # replace: only the path through z

# %% tags=["hide-cell"]
# One answer.
dstats_one_path = np.concatenate([dmu_z, dlog_var_z], axis=1)
gap = np.linalg.norm(dstats - dstats_one_path) / np.linalg.norm(dstats)
print(f"dropping the KL path changes the head's gradient by {gap:.1%}")

# %% [markdown]
# ## One Adam step

# %%
optimizer = Adam(model, lr=1e-3)  # holds model.params and model.grads, updates them in place
model.zero_grad()
model.negative_elbo_backward(1.0, model.negative_elbo_forward(x, eps)[1])
optimizer.step()
after = model.negative_elbo_forward(x, eps)[0]
print(f"One Adam step (lr 1e-3): loss on the same batch and noise {model_loss:.4f} -> {after:.4f}")

# %% [markdown]
# ## What to look at
# * The shapes: (B, 784) pixels → (B, D_z) twice → (B, D_z) → (B, 784) logits → (B,) per
#   example → one number. The backward retraces them in reverse.
# * Both paths reach $\mu$ and $\log\sigma^2$. At initialisation $q$ is close to the prior, so
#   the KL's path is the smaller; training makes it grow until the two pull against each
#   other. The gradient is their sum: drop either and the model trains towards something else.
# * Our hand-written chain and the model's agree to float32 rounding, and the Adam step lowers
#   the loss.

# %%
print("Look at: the shapes at each step, the two paths' sizes, and the loss going down.")
