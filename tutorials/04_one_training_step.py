"""Tutorial 4: one training step of a VAE on a real MNIST batch, written out by hand.

Run it:  python tutorials/04_one_training_step.py [--quick]
MNIST is looked for in $SCRATCHVAE_DATA/mnist/ (the folder holding mnist/), then in
~/.cache/scratchvae, and downloaded there once if it is nowhere.

This follows docs/vae.md: the forward as five steps, each an op of the package; the
backward as the same steps read upwards; the two paths by which mu and log_var reach the
loss; and one Adam step. Then the model's own negative_elbo_forward/backward must give
the same numbers.
"""

import argparse

import numpy as np

from scratchvae.tools import data
from scratchvae.lecture.gaussian import (kl_standard_normal_backward, kl_standard_normal_forward,
                                 reparameterize_backward, reparameterize_forward)
from scratchvae.lecture.likelihoods import (bernoulli_log_likelihood_backward,
                                    bernoulli_log_likelihood_forward)
from scratchvae.lecture.optim import Adam
from scratchvae.lecture.training import binarize
from scratchvae.lecture.vae import VAE

parser = argparse.ArgumentParser(description="Tutorial 4: one training step by hand.")
parser.add_argument("--quick", action="store_true", help="a smaller model and batch")
args = parser.parse_args()
B, hidden, D_z = (32, (64,), 2) if args.quick else (128, (400,), 20)
rng = np.random.default_rng(0)


def show(name, array):
    print(f"   {name:<34} {str(array.shape):<12} {array.dtype}")


# --- The batch and the model -------------------------------------------------------
mnist = data.load_mnist()  # x_train: (60000, 784) grey levels in [0, 1]
x = binarize(mnist.x_train[:B], rng)  # (B, 784): each pixel a fresh 0/1 draw
model = VAE(784, hidden=hidden, latent_dim=D_z, seed=0)  # float32, as for training
eps = rng.standard_normal((B, D_z), dtype=np.float32)  # (B, D_z): the noise, drawn once
print(f"A {784}-{hidden[0]}-{D_z} VAE, a batch of B = {B} binarised MNIST digits.\n")

# --- Forward: five steps (docs/vae.md#forward) -------------------------------------
print("Forward:")
show("x", x)
mu, log_var = model.encode(x)  # 1. encoder MLP, then one head split in two halves
show("1. mu, log_var = encode(x)", mu)
z, reparameterize = reparameterize_forward(mu, log_var, eps)  # 2. z = mu + exp(log_var / 2) eps
show("2. z = mu + sigma * eps", z)
logits = model.decoder_output(z)  # 3. decoder MLP and head: one logit per pixel
show("3. logits = decoder(z)", logits)
reconstruction, likelihood = bernoulli_log_likelihood_forward(x, logits)  # log p(x | z)
show("   reconstruction = log p(x | z)", reconstruction)
kl, kl_cache = kl_standard_normal_forward(mu, log_var)  # 4. KL(q(z | x) || N(0, I))
show("4. kl", kl)
loss = float(np.mean(model.beta * kl - reconstruction))  # 5. mean of -rec + beta kl
print(f"5. loss = mean(-reconstruction + beta kl) = {loss:.4f} nats per image "
      f"(reconstruction {-reconstruction.mean():.2f} + KL {kl.mean():.2f})\n")

# --- Backward: the same steps, read upwards (docs/vae.md#backward) ------------------
print("Backward:")
model.zero_grad()
dreconstruction = np.full(B, -1.0 / B, dtype=np.float32)  # (B,) step 5: d loss / d rec_b
dkl = np.full(B, model.beta / B, dtype=np.float32)  # (B,)   d loss / d kl_b
dlogits = bernoulli_log_likelihood_backward(dreconstruction, likelihood)  # (B, 784)
show("3. dlogits = drec * (x - sigmoid)", dlogits)
# The modules remember their last forward; their backward adds into model.grads.
dz = model.decoder.backward(model.decoder_head.backward(dlogits))  # (B, D_z)
show("   dz, through the decoder", dz)
# mu and log_var reach the loss along two paths:
dmu_z, dlog_var_z = reparameterize_backward(dz, reparameterize)  # 2. through z
dmu_kl, dlog_var_kl = kl_standard_normal_backward(dkl, kl_cache)  # 4. through the KL term
show("2./4. dmu from each path", dmu_z)
for path, dmu, dlv in (("through z", dmu_z, dlog_var_z), ("through the KL", dmu_kl, dlog_var_kl)):
    print(f"   path {path:<15} |dmu| = {np.linalg.norm(dmu):.4f}   "
          f"|dlog_var| = {np.linalg.norm(dlv):.4f}")
# The chain rule adds the two paths (docs/vae.md, eq. (6)); forgetting one is the classic bug.
dstats = np.concatenate([dmu_z + dmu_kl, dlog_var_z + dlog_var_kl], axis=1)  # (B, 2 D_z)
show("1. d[mu | log_var], into the head", dstats)
model.encoder.backward(model.encoder_head.backward(dstats))
by_hand = {name: grad.copy() for name, grad in model.grads.items()}
print("   parameter gradients:")
for name, grad in by_hand.items():
    show(f"   d{name}", grad)

# --- The model does the same ---------------------------------------------------------
model.zero_grad()
model_loss, cache = model.negative_elbo_forward(x, eps)
model.negative_elbo_backward(1.0, cache)
worst = max(float(np.max(np.abs(by_hand[k] - g)) / (float(np.max(np.abs(g))) + 1e-30))
            for k, g in model.grads.items())
print(f"\nThe model's negative_elbo_forward: loss {model_loss:.4f}; its backward differs from ours "
      f"by at most {worst:.1e} (relative to each gradient's largest element).")

# --- One Adam step ---------------------------------------------------------------------
optimizer = Adam(model, lr=1e-3)  # holds model.params and model.grads, updates them in place
optimizer.step()
after = model.negative_elbo_forward(x, eps)[0]
print(f"One Adam step (lr 1e-3): loss on the same batch and noise {model_loss:.4f} -> {after:.4f}")

# What to look at:
# * The shapes: (B, 784) pixels -> (B, D_z) twice -> (B, D_z) -> (B, 784) logits -> (B,) per
#   example -> one number. The backward retraces them in reverse.
# * Both paths reach mu and log_var. At initialisation q is close to the prior, so the KL's
#   path is the smaller; training makes it grow until the two pull against each other
#   (reconstruct well vs stay near the prior). The gradient is their sum: drop either and
#   the model trains towards something else.
# * Our hand-written chain and the model's agree to float32 rounding, and the Adam step lowers
#   the loss.
print("\nLook at: the shapes at each step, the two paths' sizes, and the loss going down.")
