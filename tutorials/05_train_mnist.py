"""Tutorial 5: train a VAE on MNIST, look at what it learned, and measure it.

Run it:  python tutorials/05_train_mnist.py [--epochs 5] [--out tutorial05] [--quick]
(--quick: 2000 training images and one epoch, to see it run in seconds.)

Tutorial 4 took one step by hand; scratchvae.tools.train.fit repeats it over epochs
(docs/training.md). Then we draw what the model learned (docs/figures.md), and compare
two numbers for the test images: the ELBO, which training maximises, and the
importance-weighted bound L_k (docs/estimators.md#importance-weighted), which is closer
to the true log-likelihood log p(x).
"""

import argparse
from pathlib import Path

import numpy as np

from scratchvae.tools import data
from scratchvae.tools import plots
from scratchvae.lecture.optim import Adam
from scratchvae.tools.train import evaluate_elbo, evaluate_log_likelihood, fit, prepare_test_set
from scratchvae.lecture.vae import VAE

parser = argparse.ArgumentParser(description="Tutorial 5: train on MNIST and look.")
parser.add_argument("--epochs", type=int,
                    help="passes over the training set (default 5; 1 with --quick)")
parser.add_argument("--latent-dim", type=int, default=2, help="2 (default) can be drawn as it is")
parser.add_argument("--out", default="tutorial05",
                    help="folder for the figures (default tutorial05)")
parser.add_argument("--quick", action="store_true", help="a small subset and model, one epoch")
args = parser.parse_args()
epochs = args.epochs or (1 if args.quick else 5)
n_train, n_test, hidden = (2000, 500, 64) if args.quick else (60000, 10000, 400)
n_eval, k = (100, 20) if args.quick else (1000, 500)  # test images and samples for L_k

# --- Train -------------------------------------------------------------------------------
mnist = data.load_mnist()  # grey levels in [0, 1]; fit binarises each batch afresh
model = VAE(784, hidden=(hidden,), latent_dim=args.latent_dim, seed=0)
print(f"Training a 784-{hidden}-{args.latent_dim} VAE on {n_train} images for {epochs} epoch(s) "
      f"(one line per epoch; the ELBO is in nats per image, higher is better):")
history = fit(model, mnist.x_train[:n_train], epochs, batch_size=128,
              optimizer=Adam(model, lr=1e-3), test=mnist.x_test[:n_test], seed=0)
# What fit prints: "train ELBO" averages the epoch's steps; "rec" is E_q log p(x | z), the
# reconstruction term; "KL" the regulariser; "test ELBO" is measured after the epoch on the
# test images, binarised once with a fixed seed so that every epoch sees the same ones.

# --- Look --------------------------------------------------------------------------------
out = Path(args.out)
x_test = prepare_test_set(mnist.x_test[:n_test], "dynamic")  # (n_test, 784), 0/1, fixed seed
y_test = mnist.y_test[:n_test]
figures = {
    "reconstructions.png": plots.plot_reconstructions(model, x_test, n=10),
    "samples.png": plots.plot_samples(model, np.random.default_rng(0), n=64),
    "latent_scatter.png": plots.plot_latent_scatter(model, x_test, y_test),
    "training_curves.png": plots.plot_training_curves(history),
}
if args.latent_dim == 2:
    figures["latent_manifold.png"] = plots.plot_latent_manifold(model, n=15)
print(f"\nFigures written to {out.resolve()}/:")
for name, figure in figures.items():
    print(f"   {plots.save_figure(figure, out / name)}")
# What to look at in them (docs/figures.md):
# * reconstructions.png: test digits above what the model makes of them. With a 2-D code
#   they are blurry: two numbers cannot hold every stroke; try --latent-dim 20.
# * samples.png: z ~ N(0, I) decoded. Digits, because the KL term kept the codes where the
#   prior puts its mass.
# * latent_scatter.png: the mean of q(z | x) for each test image, coloured by its label.
#   Nobody told the model the labels, yet the digits form regions: similar images are
#   cheaper to reconstruct from nearby codes.
# * latent_manifold.png: the decoder over a grid of z: one digit morphing into the next.

# --- Measure -----------------------------------------------------------------------------
# For one image, log p(x) >= L_k >= L_1 = E_q[log p(x, z) - log q(z | x)], the ELBO; L_k
# grows with k towards log p(x). The gap ELBO -> log p(x) is KL(q || posterior)
# (tutorial 3): what the encoder's diagonal Gaussians miss of the true posterior.
elbo = evaluate_elbo(model, x_test[:n_eval])
bound = evaluate_log_likelihood(model, x_test[:n_eval], k=k)
print(f"\nOn {n_eval} test images: ELBO {elbo:.2f} nats, importance-weighted bound "
      f"L_{k} {bound:.2f} nats; the bound is higher by {bound - elbo:.2f} nats.")
print("Look at: the figures listed above, and L_k above the ELBO (both are lower bounds on "
      "log p(x); L_k is the tighter one).")
