# %% [markdown]
# # Lesson 14: the latent space, what the KL weight beta does, and posterior collapse
#
# **What you will be able to do**
#
# * train models that differ only in the KL weight $\beta$;
# * read, from a table and a figure, how $\beta$ trades reconstruction against staying near the
#   prior;
# * explain why digits cluster although the KL never sees a label
#   (the question of [figures: why classes cluster](../docs/figures.md#why-classes-cluster));
# * walk the 2-D latent space: the decoder's manifold, and a straight line between two digits;
# * measure posterior collapse: the KL of each latent dimension, and the active units.
#
# Derivations used: [the VAE objective](../docs/elbo.md#vae-objective),
# [the KL to the standard normal](../docs/gaussian.md#kl-standard-normal),
# [the estimators L^A and L^B](../docs/estimators.md#estimators-la-lb) and
# [KL warm-up](../docs/training.md#kl-warm-up), [the manifold](../docs/figures.md#manifold),
# [interpolation](../docs/figures.md#interpolation) and
# [the posterior-collapse meter](../docs/estimators.md#collapse).
#
# Each example's KL pulls its own $q$ towards the prior; the reconstruction term pushes the
# other way. The loss weighs the two:
#
# $$\text{loss} = \text{mean over the batch of } \left[-\log p(x \mid z) + \beta\, \mathrm{KL}\right].$$
#
# Three models, 2-D latent space, $\beta$ = 0.2, 1 and 4, trained on the same 15 000 images for
# 8 epochs. `SCRATCHVAE_QUICK=1` trains each on 10 000 images for 3 epochs, in steps of 64 at
# twice the learning rate (about a minute): the same differences, column by column.

# %%
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from scratchvae.engine import ops as engine_ops
from scratchvae.lecture import estimators
from scratchvae.lecture.collapse import active_units, encode_all, kl_per_dimension
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.vae import VAE
from scratchvae.tools.checkpoints import load_model
from scratchvae.tools.data import load_mnist
from scratchvae.tools.evaluation import prepare_test_set
from scratchvae.tools.latent_plots import plot_latent_manifold
from scratchvae.tools.plots import plot_interpolation, show
from scratchvae.tools.train import fit

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # a subset, 3 epochs
OUT = Path("14_the_latent_space")  # where a script run saves its figures
MY_VAE = Path("runs", "my_vae.npz")  # the model lesson 12 trained and saved


EPOCHS = 3 if QUICK else 8  # epochs per model
n_train, n_test, hidden = (10000, 1000, 128) if QUICK else (15000, 2000, 400)
# quick: more steps per image, larger ones
batch_size, lr = (64, 2e-3) if QUICK else (128, 1e-3)
BETAS = (0.2, 1.0, 4.0)
if QUICK:
    print(f"Quick mode: {n_train} training images, {EPOCHS} epochs, "
          f"batches of {batch_size}, lr {lr:g}, {hidden} hidden units for each model; "
          "the full run: 15000 images, 8 epochs, batches of 128, lr 0.001, "
          "400 hidden units.")

# %% [markdown]
# ## Three models, one table
# The same seed for every model: only $\beta$ differs. Each is measured with the true ELBO
# (KL weight 1) and its two terms.

# %%
mnist = load_mnist()
x_test = prepare_test_set(mnist.x_test[:n_test], "dynamic")  # (n_test, 784), 0/1
y_test = mnist.y_test[:n_test]
models = {}
trained = {}  # beta -> the model


def train_model(model):
    """Fit model to the training images, silently: the same run for every model."""
    fit(model, mnist.x_train[:n_train], EPOCHS, batch_size=batch_size,
        optimizer=Adam(model, lr=lr), seed=0, progress=False, log=lambda line: None)


print(f"Three 784-{hidden}-2 VAEs, {n_train} training images, {EPOCHS} epoch(s) each; "
      f"measured on {n_test} test images (ELBO with weight 1, in nats):")
print(f"{'beta':>6}  {'ELBO':>8}  {'rec':>8}  {'KL':>6}  "
      "active   std of the means   mean sigma of q")
for beta in BETAS:
    model = VAE(784, hidden=(hidden,), latent_dim=2, beta=beta, seed=0, ops=engine_ops)
    train_model(model)
    # (n_test,)
    elbo, rec, kl = estimators.elbo_lb(model, x_test, 1, np.random.default_rng(0))
    mu, log_var = model.encode(x_test)  # (n_test, 2) each
    sigma = np.exp(0.5 * log_var)  # (n_test, 2)
    models[beta] = (mu, rec.mean(), kl.mean())
    trained[beta] = model
    std_of_means = np.array2string(mu.std(axis=0), precision=2)
    print(f"{beta:>6}  {elbo.mean():8.2f}  {rec.mean():8.2f}  {kl.mean():6.2f}  "
          f"{active_units(mu)[0]:>4}/2   {std_of_means:<17}  "
          f"{np.array2string(sigma.mean(axis=0), precision=2)}")

# %% [markdown]
# ## The latent spaces side by side
# The dashed circle is $|z| = 2$, which holds 86% of $\mathcal{N}(0, I)$ in two dimensions.

# %% mystnb={"figure": {"caption": "The mean codes of the test images under the three $\\beta$ models, each titled with its KL and reconstruction term; the dashed circle $|z| = 2$ holds 86% of the prior."}, "image": {"alt": "Three 2-D latent spaces side by side, one per beta, dots coloured by digit"}}
fig = Figure(figsize=(15, 5.2), layout="constrained")
axes = fig.subplots(1, len(BETAS), sharex=True, sharey=True)
for ax, (beta, (mu, rec, kl)) in zip(axes, models.items()):
    dots = ax.scatter(mu[:, 0], mu[:, 1], c=y_test, cmap="tab10", vmin=-0.5, vmax=9.5,
                      s=5, alpha=0.7)
    ax.add_patch(Circle((0, 0), 2.0, fill=False, linestyle="--", color="black"))
    ax.set_title(f"beta = {beta}: KL {kl:.1f}, reconstruction {rec:.1f}")
    ax.set_xlabel("$z_1$ (mean of q)")
    ax.set_aspect("equal", adjustable="box")
axes[0].set_ylabel("$z_2$ (mean of q)")
fig.colorbar(dots, ax=list(axes), ticks=range(10), label="digit", shrink=0.8)
show(fig, "beta_latents.png", OUT)

# %% [markdown]
# ## Walking the latent space
# Your model from lesson 12 (`runs/my_vae.npz`) when it is there and has a 2-D code, else the
# $\beta = 1$ model above: decode a grid of codes that covers the prior evenly
# ([figures (6)](../docs/figures.md#manifold): the grid's points are equally spaced in
# probability, $\Phi^{-1}$ of an even grid in $(0, 1)$), then decode the straight line between the
# codes of two test digits, $z(\lambda) = (1 - \lambda)\mu_a + \lambda \mu_b$
# ([figures (7)](../docs/figures.md#interpolation)).

# %% mystnb={"figure": {"caption": "The decoder's mean image over a grid equally spaced in probability under $\\mathcal{N}(0, I)$, for your lesson-12 model when it has a 2-D code, else the $\\beta = 1$ model. Look for digits that morph smoothly into their neighbours."}, "image": {"alt": "A grid of digits decoded from an even grid of the 2-D latent space"}}
walked = load_model(MY_VAE) if MY_VAE.exists() else None
if walked is None or walked.config["latent_dim"] != 2:
    print(f"No 2-D model from lesson 12 at {MY_VAE}: walking the beta = 1 model above.")
    walked = trained[1.0]
else:
    print(f"Walking your model from lesson 12, {MY_VAE}.")
show(plot_latent_manifold(walked, n=12 if QUICK else 20), "manifold.png", OUT)

# %% mystnb={"figure": {"caption": "The decoder's mean image along the straight line between the mean codes of the first test 1 and the first test 7. Look for a gradual change; a sudden jump marks a border between two digits' regions of the latent space."}, "image": {"alt": "A row of images morphing from a 1 into a 7"}}
first_one, first_seven = np.flatnonzero(y_test == 1)[0], np.flatnonzero(y_test == 7)[0]
show(plot_interpolation(walked, x_test[first_one], x_test[first_seven], n=10),
     "interpolation_1_to_7.png", OUT)

# %% [markdown]
# ## Posterior collapse: which dimensions does the model use?
# Two dimensions are all used (the table's "active" column, defined below). Give the model
# more, $D_z = 16$, and it may leave some unused.
# The KL term splits over the dimensions ([estimators (16)](../docs/estimators.md#collapse)),
#
# $$\overline{\mathrm{KL}}_u = \frac1N \sum_n \tfrac12\left(\sigma_{nu}^2 + \mu_{nu}^2 - 1 - \log\sigma_{nu}^2\right),$$
#
# and a dimension the encoder ignores ($\mu_u = 0$, $\sigma_u = 1$ for every image) costs nothing
# and carries nothing: it has **collapsed**. Burda et al. (2016) call dimension $u$ *active* when
# its posterior mean moves with the data, $A_u = \operatorname{Var}_n(\mu_{nu}) > 0.01$
# ([estimators (17)](../docs/estimators.md#collapse)). Train a 16-dimensional model with
# $\beta = 1$ and one with $\beta = 4$, and measure both.

# %%
wide = {}
for beta in (1.0, 4.0):
    model = VAE(784, hidden=(hidden,), latent_dim=16, beta=beta, seed=0, ops=engine_ops)
    train_model(model)
    # (N, 16) each: q(z | x) for every test image
    mu, log_var = encode_all(model, x_test)
    # (16,) nats, averaged over the test images
    per_dimension = kl_per_dimension(mu, log_var)
    count, activity = active_units(mu)
    wide[beta] = per_dimension
    carrying = int(np.sum(per_dimension > 0.1))  # dimensions above 0.1 nats
    print(f"D_z = 16, beta {beta}: {count} of 16 units active; "
          f"KL per dimension sums to {per_dimension.sum():.1f} nats, "
          f"the largest {per_dimension.max():.2f}, "
          f"the smallest {per_dimension.min():.2f}; "
          f"{carrying} dimensions carry more than 0.1 nats")

# %% mystnb={"figure": {"caption": "The average KL of each of the 16 latent dimensions, sorted, for $\\beta = 1$ and $\\beta = 4$: the dimensions with almost no KL are inactive (posterior collapse)."}, "image": {"alt": "Bars of the average KL of each of 16 latent dimensions, sorted, for beta 1 and beta 4"}}
fig = Figure(figsize=(10, 3.6), layout="constrained")
axes = fig.subplots(1, 2, sharey=True)
for ax, (beta, per_dimension) in zip(axes, wide.items()):
    ax.bar(range(1, 17), np.sort(per_dimension)[::-1])
    ax.set_title(f"beta = {beta}")
    ax.set_xlabel("latent dimension, sorted by its KL")
axes[0].set_ylabel("average KL of the dimension (nats)")
show(fig, "kl_per_dimension.png", OUT)

# %% [markdown]
# ## Your turn
# Write `fraction_inside(mu)`: the fraction of test codes (rows of `mu`) with $|z| < 2$. Under
# the prior it would be 0.86. Compute it for each $\beta$: which model fills the prior's
# region best? (The stub returns 0.) You got it right when the cell after the answer accepts
# three test codes, one inside the circle, and prints a fraction per model; the stub stops there.


# %%
def fraction_inside(mu):
    return 0.0  # replace


# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer.
def fraction_inside(mu):
    return float(np.mean(np.linalg.norm(mu, axis=1) < 2.0))


# %%
# three codes, (0, 0) inside, (3, 3) and (0, 2) outside: right if 1/3
probe = fraction_inside(np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 2.0]]))
assert abs(probe - 1 / 3) < 1e-9, (
    f"fraction_inside of (0, 0), (3, 3), (0, 2) is {probe}, not 1/3")
for beta, (mu, _, _) in models.items():
    print(f"beta {beta}: {fraction_inside(mu):.2f} of the codes inside |z| < 2 "
          f"(the prior: {1 - np.exp(-2):.2f})")

# %% [markdown]
# ## What to look at
# * $\beta$ = 0.2: the KL is cheap, so the codes spread far outside the circle (the fewest
#   inside $|z| < 2$) and each $q$ is narrow: nearly a plain auto-encoder. Reconstruction is the
#   best of the three (in the full run only just ahead of $\beta$ = 1), the KL the largest; but
#   much of what $z \sim \mathcal{N}(0, I)$ hits lies between clusters.
# * $\beta$ = 1: the ELBO itself. Clusters still separate, packed into the prior's region.
# * $\beta$ = 4: the KL dominates; the means crowd towards 0 and $\sigma$ grows towards 1, so the
#   $q$ of different images overlap more: the code carries less about $x$ (the average KL, an
#   upper bound on what it carries, is the smallest) and reconstructions blur (rec the worst).
# * The manifold: each tile is the decoder's mean image at one code; neighbouring codes decode
#   to similar images, and the digits morph into each other. The interpolation passes through
#   whatever lies between the two codes, sometimes a third digit.
# * KL per dimension: a larger $\beta$ makes information dearer. At $\beta$ = 4 the total KL
#   falls and gathers in fewer dimensions (fewer carry more than 0.1 nats); the weakest carry
#   hundredths of a nat, nearly collapsed. Burda's count still calls all 16 units active in both
#   models, in the full run too: the variance of a weak dimension's mean is still above 0.01.
# * The KL never sees a label: the clusters come from the reconstruction term, which makes
#   images that look alike cheap to encode near each other.

# %%
print("Look at: the std of the means shrinking and sigma growing as beta grows, the "
      "clusters spreading (beta 0.2) or crowding into the circle (beta 4), and at "
      "D_z = 16 the KL gathering in fewer dimensions at beta 4.")

# %% [markdown]
# ## Explore your model
# The pictures above are still. The explorer is the same model as a page that runs in your
# browser, offline: drag through the latent map and watch the digit change, move one latent
# dimension at a time, draw a digit and see where its $q(z \mid x)$ lands, walk between two
# test images ([the explorer](../docs/explorer.md)). The cell writes the page for the model
# walked above (yours from lesson 12 when there is one) beside it; open `index.html` from
# your file browser. In a notebook, `explore(walked)` in a cell of its own shows it right
# here instead.

# %%
# `explore` is for a cell of your own: explore(walked)
from scratchvae.tools.explore import explore, page_data, write_page  # noqa: F401

page = write_page(page_data(walked, x_test[:1000], y_test[:1000]),
                  Path("runs", "explorer"))
print(f"Explorer written: open {page} in a browser (no server, no network needed).")
