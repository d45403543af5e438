"""Tutorial 6 (optional): what the KL weight beta does to the latent space.

Run it:  python tutorials/06_what_beta_does.py [--epochs 8] [--out tutorial06] [--quick]
(three models: a few minutes; --quick: seconds, too short to show the effect.)

Note 002 asks how the KL term, which knows nothing about digits, can shape where the
encoder puts them. Each example's KL(q(z | x) || N(0, I)) pulls its own q towards the
prior: means towards 0, standard deviations towards 1. The reconstruction term pushes the
other way: to be told apart, different digits need codes that do not overlap. The loss
weighs the two (docs/vae.md, eq. (2)):

    loss = mean over the batch of [ -log p(x | z) + beta * KL ]

Here three models with a 2-D latent space, beta = 0.2, 1 and 4, are trained on the same
subset, and the means of q(z | x) for the test digits are drawn side by side.
"""

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from scratchvae.tools import data
from scratchvae.lecture import estimators
from scratchvae.tools import plots
from scratchvae.lecture.optim import Adam
from scratchvae.tools.train import fit, prepare_test_set
from scratchvae.lecture.vae import VAE

parser = argparse.ArgumentParser(description="Tutorial 6: what beta does.")
parser.add_argument("--epochs", type=int, help="epochs per model (default 8; 1 with --quick)")
parser.add_argument("--out", default="tutorial06",
                    help="folder for the figure (default tutorial06)")
parser.add_argument("--quick", action="store_true", help="a small subset and model, one epoch")
args = parser.parse_args()
epochs = args.epochs or (1 if args.quick else 8)
n_train, n_test, hidden = (1000, 500, 64) if args.quick else (15000, 2000, 400)
BETAS = (0.2, 1.0, 4.0)

mnist = data.load_mnist()
x_test = prepare_test_set(mnist.x_test[:n_test], "dynamic")  # (n_test, 784), 0/1
y_test = mnist.y_test[:n_test]
fig = Figure(figsize=(15, 5.2), layout="constrained")
axes = fig.subplots(1, len(BETAS), sharex=True, sharey=True)
print(f"Three 784-{hidden}-2 VAEs, {n_train} training images, {epochs} epoch(s) each; "
      f"measured on {n_test} test images (ELBO with weight 1, in nats):")
print(f"{'beta':>6}  {'ELBO':>8}  {'rec':>8}  {'KL':>6}   std of the means   mean sigma of q")
for ax, beta in zip(axes, BETAS):
    # The same seed for every model: only beta differs.
    model = VAE(784, hidden=(hidden,), latent_dim=2, beta=beta, seed=0)
    fit(model, mnist.x_train[:n_train], epochs, optimizer=Adam(model, lr=1e-3), seed=0,
        progress=False, log=lambda line: None)
    # The true ELBO (KL weight 1) and its two terms, per test image (note 004's L^B).
    elbo, rec, kl = estimators.elbo_lb(model, x_test, 1, np.random.default_rng(0))  # (n_test,) each
    mu, log_var = model.encode(x_test)  # (n_test, 2) each
    sigma = np.exp(0.5 * log_var)  # (n_test, 2)
    print(f"{beta:>6}  {elbo.mean():8.2f}  {rec.mean():8.2f}  {kl.mean():6.2f}   "
          f"{np.array2string(mu.std(axis=0), precision=2):<17}  "
          f"{np.array2string(sigma.mean(axis=0), precision=2)}")
    dots = ax.scatter(mu[:, 0], mu[:, 1], c=y_test, cmap="tab10", vmin=-0.5, vmax=9.5, s=5,
                      alpha=0.7)
    # Where the prior lives: |z| < 2 holds 86% of N(0, I) in two dimensions.
    ax.add_patch(Circle((0, 0), 2.0, fill=False, linestyle="--", color="black"))
    ax.set_title(f"beta = {beta}: KL {kl.mean():.1f}, reconstruction {rec.mean():.1f}")
    ax.set_xlabel("$z_1$ (mean of q)")
    ax.set_aspect("equal", adjustable="box")
axes[0].set_ylabel("$z_2$ (mean of q)")
fig.colorbar(dots, ax=list(axes), ticks=range(10), label="digit", shrink=0.8)
path = plots.save_figure(fig, Path(args.out) / "beta_latents.png")
print(f"\nThe three latent scatters, side by side: {path.resolve()}")

# What to look at (in the table, then in the figure; the dashed circle is |z| = 2):
# * beta = 0.2: the KL is cheap, so the codes spread far outside the circle and each q is
#   narrow (small sigma): nearly a plain auto-encoder. Reconstruction is the best of the
#   three, the KL the largest; but the codes no longer fill the prior's region, so much of
#   what z ~ N(0, I) hits lies between clusters, or far from every code.
# * beta = 1: the ELBO itself. Clusters still separate, packed into the prior's region.
# * beta = 4: the KL dominates; the means crowd towards 0, sigma grows towards 1, and digits
#   overlap: the code carries less about x, and reconstructions blur.
# The KL never sees a label: the clusters come from the reconstruction term, which makes
# images that look alike cheap to encode near each other (note 002's answer).
print("Look at: the std of the means shrinking and sigma growing as beta grows, and in the "
      "figure the clusters spreading (beta 0.2) or crowding into the circle (beta 4).")
