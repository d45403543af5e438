# %% [markdown]
# # Lesson 12: train a VAE on MNIST, look at what it learned, and measure it
#
# **What you will be able to do**
#
# * train a VAE with `scratchvae.tools.train.fit` and read the line it prints after each epoch;
# * read its reconstructions, samples, latent scatter and latent manifold;
# * measure its test ELBO, and save it for lessons 13 and 14.
#
# Derivations used: [the epoch line](../docs/training.md#the-epoch-line),
# [dynamic binarisation](../docs/training.md#dynamic-binarisation),
# [the figures](../docs/figures.md#reconstructions) and
# [checkpoints](../docs/training.md#checkpoints).
#
# Lesson 9 took one step by hand; `fit` repeats it over epochs. The full run trains on all 60 000
# images for 5 epochs (2345 steps of 128 images); `SCRATCHVAE_QUICK=1` on 20 000 for 3 epochs in
# steps of 64 at twice the learning rate (939 steps, under a minute): digits and
# clusters, 5 nats short of the full run's ELBO. Change `EPOCHS` and `LATENT_DIM` below.

# %%
import os
from pathlib import Path

import numpy as np

from scratchvae.classroom.selfcheck import check
from scratchvae.engine import ops as engine_ops
from scratchvae.lecture.collapse import encode_all
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.vae import VAE
from scratchvae.tools import latent_plots, plots
from scratchvae.tools.checkpoints import save_model
from scratchvae.tools.data import load_mnist
from scratchvae.tools.evaluation import evaluate_elbo, prepare_test_set
from scratchvae.tools.plots import show

QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")  # a subset, 3 epochs
OUT = Path("12_train_mnist")  # where a script run saves its figures
# where the trained model is saved, for lessons 13 and 14
MY_VAE = Path("runs", "my_vae.npz")


EPOCHS = 3 if QUICK else 5  # passes over the training set
LATENT_DIM = 2  # 2 can be drawn as it is; try 20 for sharper reconstructions
n_train, n_test, hidden = (20000, 1000, 256) if QUICK else (60000, 10000, 400)
# quick: more steps per image, larger ones
batch_size, lr = (64, 2e-3) if QUICK else (128, 1e-3)
n_eval = 200 if QUICK else 1000  # images for the ELBO below
if QUICK:
    print(f"Quick mode: {n_train} training images, {EPOCHS} epochs, "
          f"batches of {batch_size}, lr {lr:g}, {hidden} hidden units. "
          "The full run (60000 images, 5 epochs, batches of 128, lr 0.001, "
          "400 hidden units) ends at a test ELBO of -161.3 nats, 5 nats higher, "
          "with the same picture.")

# %% [markdown]
# ## Your turn — task `train_step`: the training step
# Write `train_step` in `studentvae/training.py`, the step lesson 9 took by hand: after the given
# binarisation, draw $\varepsilon$, forward, backward, update, and stop on a NaN or infinite loss.
# The docstring above the stub says what it takes, returns and raises;
# [training: one step](../docs/training.md#one-step) derives it. The cell below checks your code as
# the marker will: "ok", or the first wrong element and the section to reread. `fit` below then
# trains on your step.

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
from scratchvae.classroom.edition import worked_answer

answer = worked_answer("train_step")  # the lecture's code for this task

# %%
check("train_step", answer)

# %% [markdown]
# ## Train
# `fit` runs the epochs: each visits the training images once, in a fresh random order, and for
# each batch calls `train_step(model, optimizer, images, rows, rng)`: binarise the batch, draw
# $\varepsilon$, forward, backward, one optimiser step ([training: one step](../docs/training.md#one-step)),
# the step lesson 9 took by hand. After each epoch it measures the test ELBO.
# `ops=engine_ops` hands the model a module of ops. In the course's reference edition it is the
# Numba engine's: the same names and the same numbers as the plain-NumPy ops of lessons 2-7, to
# float32 rounding, about 2.4 times faster
# ([performance](../docs/performance.md#the-lecture-and-the-engine)). In the handout's edition it
# is your own package's `ops` module: the model trains on the code you wrote.
# One line per epoch; the ELBO is in nats per image, higher is better. (Long runs belong to the
# `scratchvae train` command, which also sets the processor to flush subnormal numbers to zero
# before NumPy loads, so that late epochs do not slow down; a notebook cannot, because NumPy is
# loaded before its first cell runs: [optim: subnormals](../docs/optim.md#subnormals).)

# %%
# imported after the check: in the handout, fit's train_step is then
# the one you just wrote
from scratchvae.tools.train import fit

mnist = load_mnist()  # grey levels in [0, 1]; fit binarises each batch afresh
model = VAE(784, hidden=(hidden,), latent_dim=LATENT_DIM, seed=0, ops=engine_ops)
print(f"Training a 784-{hidden}-{LATENT_DIM} VAE on {n_train} images "
      f"for {EPOCHS} epoch(s):")
history = fit(model, mnist.x_train[:n_train], EPOCHS, batch_size=batch_size,
              optimizer=Adam(model, lr=lr), test=mnist.x_test[:n_test],
              seed=0, progress=False)
# "train ELBO" averages the epoch's steps; "rec" is E_q log p(x | z), the
# reconstruction term; "KL" the regulariser; "test ELBO" is measured after the epoch
# on test images binarised once.

# %% [markdown]
# ## Look
# Test digits above what the model makes of them; with a 2-D code they are blurry.

# %% mystnb={"figure": {"caption": "Test digits (top) and their reconstructions by the model just trained (bottom): the decoder's mean image for the mean code of each. The inputs are 0/1 draws from the grey images, hence the speckle. Look for the right strokes with soft edges; a wrong digit means the code mixes two classes up."}, "image": {"alt": "Eight test digits above their reconstructions by the trained model"}}
# (n_test, 784), 0/1, fixed seed
x_test = prepare_test_set(mnist.x_test[:n_test], "dynamic")
y_test = mnist.y_test[:n_test]
show(plots.plot_reconstructions(model, x_test, n=8), "reconstructions.png", OUT)

# %% [markdown]
# $z \sim \mathcal{N}(0, I)$ decoded: digits, because the KL term kept the codes where the
# prior puts its mass.

# %% mystnb={"figure": {"caption": "64 codes $z \\sim \\mathcal{N}(0, I)$ decoded by the trained model: each tile is the decoder's mean image (grey is a probability of ink). Look for digits; blends that are no digit show where the codes of real images leave holes in the prior."}, "image": {"alt": "A grid of 64 digits decoded from codes drawn from the prior"}}
show(plots.plot_samples(model, np.random.default_rng(0), n=64), "samples.png", OUT)

# %% [markdown]
# The mean of $q(z \mid x)$ for each test image, coloured by its label. Nobody told the model
# the labels, yet the digits form regions around 0. The lesson measures both: the codes' mean
# (within 1 of 0) and spread (about 1), like the prior's; most of them inside $|z| < 2$, which
# holds 86.5% of the prior; and how often the nearest of the ten digits' mean codes is the
# image's own digit (well above chance, 1 in 10).

# %% mystnb={"figure": {"caption": "The mean of $q(z \\mid x)$ of each test image, coloured by its label, which the model never saw. Look for one region per digit, around 0 with a spread of about 1, like the prior; look-alike digits (4 and 9, 3 and 5) share borders."}, "image": {"alt": "The test images' codes in the 2-D latent space, one dot per image coloured by its digit"}}
show(latent_plots.plot_latent_scatter(model, x_test, y_test), "latent_scatter.png", OUT)
mu, _ = encode_all(model, x_test)  # (n_test, LATENT_DIM): the means of q(z | x)
# (10, LATENT_DIM)
digit_means = np.stack([mu[y_test == d].mean(axis=0) for d in range(10)])
# (n_test,)
nearest = np.argmin(((mu[:, None, :] - digit_means) ** 2).sum(axis=2), axis=1)
print(f"The {n_test} test codes: mean {np.array2string(mu.mean(axis=0), precision=2)}, "
      f"std {np.array2string(mu.std(axis=0), precision=2)}; "
      "the nearest digit mean is the image's own digit for "
      f"{np.mean(nearest == y_test):.1%} of them (chance 10%).")
if LATENT_DIM == 2:
    # under N(0, I) in 2-D, |z|^2 is exponential with mean 2: P(|z| < 2) = 1 - exp(-2)
    inside = np.mean(np.linalg.norm(mu, axis=1) < 2)  # the share of codes with |z| < 2
    print(f"{inside:.1%} of the codes lie inside |z| < 2, "
          f"where the prior puts {1 - np.exp(-2):.1%}.")

# %% mystnb={"figure": {"caption": "The decoder's mean image at each point of a grid equally spaced in probability under $\\mathcal{N}(0, I)$, so that every tile stands for the same share of the prior. Look for digits that morph smoothly into their neighbours: the whole 2-D latent space at a glance."}, "image": {"alt": "A 15 by 15 grid of digits decoded from an even grid of the 2-D latent space"}}
if LATENT_DIM == 2:
    show(latent_plots.plot_latent_manifold(model, n=15), "latent_manifold.png", OUT)

# %% mystnb={"figure": {"caption": "Per epoch: the train and test ELBO, the reconstruction term $\\mathbb{E}_q \\log p(x \\mid z)$ and the KL term. Look for the ELBO rising, then flattening, with the test ELBO close to the train ELBO (a widening gap is over-fitting)."}, "image": {"alt": "Training curves: the ELBO, the reconstruction term and the KL per epoch"}}
show(plots.plot_training_curves(history), "training_curves.png", OUT)

# %% [markdown]
# ## Measure, and keep
# The ELBO on `n_eval` test images (lesson 13 computes a tighter bound on $\log p(x)$, and what
# to report). Then the model goes to `runs/my_vae.npz`, beside the lesson: lessons 13 and 14
# evaluate and explore *this* model.

# %%
elbo = evaluate_elbo(model, x_test[:n_eval])
print(f"On {n_eval} test images: ELBO {elbo:.2f} nats")
MY_VAE.parent.mkdir(exist_ok=True)
save_model(model, MY_VAE)
print(f"Saved to {MY_VAE}: lessons 13 and 14 evaluate and explore it.")

# %% [markdown]
# ## Your turn
# Has the model learned digits, or memorised its training images? Compute `train_elbo`, the ELBO
# on the first `n_eval` *training* images, binarised once as the test images are
# (`prepare_test_set`), and compare it with the test ELBO. Predict first: higher or lower, and
# by how much? You got it right when the cell after the answer prints a number within a few
# nats of the test ELBO (a mean over `n_eval` images, each ELBO spread over tens of nats, moves
# by a few nats from one set of images to another): after a few epochs this model has not
# memorised its training images. (The stub leaves it None, and the check stops there.)

# %%
# replace: evaluate_elbo on the first n_eval training images, binarised once
train_elbo = None

# %% tags=["answer", "hide-cell"] jupyter={"source_hidden": true}
# One answer.
train_elbo = evaluate_elbo(model, prepare_test_set(mnist.x_train[:n_eval], "dynamic"))

# %%
print(f"ELBO on {n_eval} training images: {train_elbo}; "
      f"on {n_eval} test images: {elbo:.2f} nats")
assert train_elbo is not None and abs(train_elbo - elbo) < 10, (
    f"train_elbo is {train_elbo}, not within 10 nats of the test ELBO {elbo:.2f}: "
    "evaluate_elbo on the first n_eval training images, binarised by prepare_test_set")

# %% [markdown]
# ## What to look at
# * The reconstructions: blurry with a 2-D code, since two numbers cannot hold every stroke.
# * The samples: digits, mostly; the latent scatter: regions per digit, found without labels.
# * The ELBO on training and test images alike: the model generalises; it has not memorised.

# %%
print("Look at: the figures above, and the ELBO, about the same on training and "
      f"test images; your model is in {MY_VAE}.")
