# %% [markdown]
# # Lesson 14: the latent space, what the KL weight beta does, and posterior collapse
#
# **What you will be able to do**
#
# * train models that differ only in the KL weight $\beta$;
# * read, from a table and a figure, how $\beta$ trades reconstruction against staying near the
#   prior;
# * explain why digits cluster although the KL never sees a label (note 002's question).
#
# Derivations used: [the VAE objective](../docs/elbo.md#vae-objective),
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal),
# [the estimators L^A and L^B](../docs/estimators.md#estimators-la-lb) and
# [KL warm-up](../docs/training.md#kl-warm-up).
#
# Each example's KL pulls its own $q$ towards the prior; the reconstruction term pushes the
# other way. The loss weighs the two:
#
# $$\text{loss} = \text{mean over the batch of } \left[-\log p(x \mid z) + \beta\, \mathrm{KL}\right].$$
#
# Three models, 2-D latent space, $\beta$ = 0.2, 1 and 4, trained on the same subset (a few
# minutes; `SCRATCHVAE_QUICK=1`: seconds, too short to show the effect).

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from scratchvae.lecture import estimators
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.vae import VAE
from scratchvae.tools.data import load_mnist
from scratchvae.tools.plots import show
from scratchvae.tools.train import fit, prepare_test_set

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # a small subset, one epoch
OUT = Path("14_the_latent_space")  # where a script run saves its figures



EPOCHS = 1 if QUICK else 8  # epochs per model
n_train, n_test, hidden = (1000, 500, 64) if QUICK else (15000, 2000, 400)
BETAS = (0.2, 1.0, 4.0)

# %% [markdown]
# ## Three models, one table
# The same seed for every model: only $\beta$ differs. Each is measured with the true ELBO
# (KL weight 1) and its two terms.

# %%
mnist = load_mnist()
x_test = prepare_test_set(mnist.x_test[:n_test], "dynamic")  # (n_test, 784), 0/1
y_test = mnist.y_test[:n_test]
models = {}
print(f"Three 784-{hidden}-2 VAEs, {n_train} training images, {EPOCHS} epoch(s) each; "
      f"measured on {n_test} test images (ELBO with weight 1, in nats):")
print(f"{'beta':>6}  {'ELBO':>8}  {'rec':>8}  {'KL':>6}   std of the means   mean sigma of q")
for beta in BETAS:
    model = VAE(784, hidden=(hidden,), latent_dim=2, beta=beta, seed=0, engine="numba")
    fit(model, mnist.x_train[:n_train], EPOCHS, optimizer=Adam(model, lr=1e-3), seed=0,
        progress=False, log=lambda line: None)
    elbo, rec, kl = estimators.elbo_lb(model, x_test, 1, np.random.default_rng(0))  # (n_test,)
    mu, log_var = model.encode(x_test)  # (n_test, 2) each
    sigma = np.exp(0.5 * log_var)  # (n_test, 2)
    models[beta] = (mu, rec.mean(), kl.mean())
    print(f"{beta:>6}  {elbo.mean():8.2f}  {rec.mean():8.2f}  {kl.mean():6.2f}   "
          f"{np.array2string(mu.std(axis=0), precision=2):<17}  "
          f"{np.array2string(sigma.mean(axis=0), precision=2)}")

# %% [markdown]
# ## The latent spaces side by side
# The dashed circle is $|z| = 2$, which holds 86% of $\mathcal{N}(0, I)$ in two dimensions.

# %%
fig = Figure(figsize=(15, 5.2), layout="constrained")
axes = fig.subplots(1, len(BETAS), sharex=True, sharey=True)
for ax, (beta, (mu, rec, kl)) in zip(axes, models.items()):
    dots = ax.scatter(mu[:, 0], mu[:, 1], c=y_test, cmap="tab10", vmin=-0.5, vmax=9.5, s=5,
                      alpha=0.7)
    ax.add_patch(Circle((0, 0), 2.0, fill=False, linestyle="--", color="black"))
    ax.set_title(f"beta = {beta}: KL {kl:.1f}, reconstruction {rec:.1f}")
    ax.set_xlabel("$z_1$ (mean of q)")
    ax.set_aspect("equal", adjustable="box")
axes[0].set_ylabel("$z_2$ (mean of q)")
fig.colorbar(dots, ax=list(axes), ticks=range(10), label="digit", shrink=0.8)
show(fig, "beta_latents.png", OUT)

# %% [markdown]
# ## Your turn
# Write `fraction_inside(mu)`: the fraction of test codes (rows of `mu`) with $|z| < 2$. Under
# the prior it would be 0.86. Compute it for each $\beta$: which model fills the prior's
# region best? (The stub returns 0.)


# %%
def fraction_inside(mu):
    return 0.0  # replace


# %% tags=["hide-cell"]
# One answer.
def fraction_inside(mu):
    return float(np.mean(np.linalg.norm(mu, axis=1) < 2.0))


for beta, (mu, _, _) in models.items():
    print(f"beta {beta}: {fraction_inside(mu):.2f} of the codes inside |z| < 2")

# %% [markdown]
# ## What to look at
# * $\beta$ = 0.2: the KL is cheap, so the codes spread far outside the circle and each $q$ is
#   narrow: nearly a plain auto-encoder. Reconstruction is the best of the three, the KL the
#   largest; but much of what $z \sim \mathcal{N}(0, I)$ hits lies between clusters.
# * $\beta$ = 1: the ELBO itself. Clusters still separate, packed into the prior's region.
# * $\beta$ = 4: the KL dominates; the means crowd towards 0, $\sigma$ grows towards 1, and
#   digits overlap: the code carries less about $x$, and reconstructions blur.
# * The KL never sees a label: the clusters come from the reconstruction term, which makes
#   images that look alike cheap to encode near each other (note 002's answer).

# %%
print("Look at: the std of the means shrinking and sigma growing as beta grows, and in the "
      "figure the clusters spreading (beta 0.2) or crowding into the circle (beta 4).")
