"""Tutorial 2: the reparameterisation z = mu + sigma * eps, and a bug a gradient check cannot see.

Run it:  python tutorials/02_reparameterisation.py [--quick]

The encoder gives each example a Gaussian q(z | x) = N(mu, diag(sigma^2)), as the pair
(mu, log_var) with log_var = log(sigma^2). To sample z so that gradients flow into mu and
log_var, draw the noise eps ~ N(0, I) first and move it (note 000, eq. (8)):

    z = mu + sigma * eps,    sigma = exp(log_var / 2)

Derivation: docs/gaussian.md#reparameterisation
"""

import argparse

import numpy as np

from scratchvae.lecture.gaussian import (gaussian_log_density_forward, kl_standard_normal_forward,
                                 reparameterize_forward)
from scratchvae.lecture.gradcheck import check_op

parser = argparse.ArgumentParser(description="Tutorial 2: the reparameterisation.")
parser.add_argument("--quick", action="store_true", help="fewer samples (a few seconds)")
args = parser.parse_args()
N = 5_000 if args.quick else 200_000  # samples of z
rng = np.random.default_rng(0)

# --- 1. Sample, and check the moments --------------------------------------------------
# One q with three latent dimensions, repeated N times: N samples of the same distribution.
mu = np.array([0.5, -1.0, 2.0])  # (D_z,)
log_var = np.array([1.0, -1.5, 0.6])  # (D_z,): variances e^1 = 2.72, e^-1.5 = 0.22, e^0.6 = 1.82
eps = rng.standard_normal((N, 3))  # (N, D_z)
z, _ = reparameterize_forward(np.tile(mu, (N, 1)), np.tile(log_var, (N, 1)), eps)  # (N, D_z)
print(f"1. {N} samples of z ~ N(mu, diag exp(log_var)):")
print("   coordinate      mu   mean of z   exp(log_var)   variance of z")
for j in range(3):
    print(f"   {j:>10}  {mu[j]:6.2f}  {z[:, j].mean():10.4f}  {np.exp(log_var[j]):13.4f}  "
          f"{z[:, j].var():14.4f}")
# The sample mean has standard error sigma / sqrt(N): a few hundredths here, less for more N.

# --- 2. The std-versus-variance bug ----------------------------------------------------
# Easy to write: scale eps by exp(log_var), the variance, instead of exp(log_var / 2).
# Differentiate *that* correctly and forward and backward agree with each other:
#     z = mu + exp(v) * eps,   dz/dmu = 1,   dz/dv = exp(v) * eps


def buggy_forward(mu, log_var, eps):
    scale = np.exp(log_var)  # the variance: should be exp(log_var / 2)
    return mu + scale * eps, (eps, scale)


def buggy_backward(dz, cache):
    eps, scale = cache
    return dz, dz * eps * scale  # the true derivative of buggy_forward


inputs = {"mu": rng.standard_normal((4, 3)), "log_var": rng.standard_normal((4, 3)),
          "eps": rng.standard_normal((4, 3))}
print("\n2. The buggy pair (eps scaled by the variance) under check_op:")
for result in check_op(buggy_forward, buggy_backward, inputs, wrt=["mu", "log_var"], rng=rng):
    print("  ", result.message())
# It passes: a gradient check proves the backward matches the forward, nothing more.
# A moment test looks at the forward itself, and catches it at once:
z_bug, _ = buggy_forward(np.tile(mu, (N, 1)), np.tile(log_var, (N, 1)), eps)
print("   ...but the moments of its samples:")
print("   coordinate   exp(log_var)   variance of z   exp(2 log_var)")
for j in range(3):
    print(f"   {j:>10}  {np.exp(log_var[j]):13.4f}  {z_bug[:, j].var():14.4f}  "
          f"{np.exp(2 * log_var[j]):15.4f}")

# --- 3. The KL in closed form against Monte Carlo ---------------------------------------
# KL(q || p) = E_q[log q(z) - log p(z)] with p = N(0, I). The closed form (note 000,
# eq. (13)) should equal the average of log q(z) - log p(z) over the samples of part 1.
rows = np.tile(mu, (N, 1)), np.tile(log_var, (N, 1))  # (N, D_z) each
zero = np.zeros_like(z)
log_q = gaussian_log_density_forward(z, *rows)[0]  # (N,) log q(z)
log_p = gaussian_log_density_forward(z, zero, zero)[0]  # (N,) log N(z; 0, I)
log_ratio = log_q - log_p  # (N,)
closed, _ = kl_standard_normal_forward(mu[None], log_var[None])  # (1,)
error = log_ratio.std() / np.sqrt(N)
print(f"\n3. KL(q || N(0, I)): closed form {closed[0]:.4f}, "
      f"Monte Carlo {log_ratio.mean():.4f} +- {error:.4f}")

# Note 002 writes the 1-D case as 1/2 (sigma + mu^2 - 1 - log sigma). That is right only
# if its "sigma" is read as the *variance* sigma^2 (docs/gaussian.md#kl-standard-normal):
m, variance = 0.5, 2.0
as_variance = 0.5 * (variance + m**2 - 1 - np.log(variance))
as_std = 0.5 * (np.sqrt(variance) + m**2 - 1 - np.log(np.sqrt(variance)))
exact = kl_standard_normal_forward(np.array([[m]]), np.log(np.array([[variance]])))[0][0]
print(f"   note 002's 1-D formula with mu = {m}, variance {variance}: sigma read as the variance "
      f"{as_variance:.4f}, as the std {as_std:.4f}; closed form {exact:.4f}")

# What to look at:
# * Part 1: the mean of z matches mu and its variance matches exp(log_var), to within the
#   sampling error.
# * Part 2: check_op says "ok" to the buggy pair; its variances are exp(2 log_var), not
#   exp(log_var). Only a test of the forward's maths catches a consistently wrong pair.
# * Part 3: the closed form sits inside the Monte Carlo error bar; reading note 002's sigma
#   as a standard deviation gives a different, wrong number.
print("\nLook at: part 2's 'ok' lines beside its wrong variances (they are exp(2 log_var)), "
      "and part 3's closed form inside the Monte Carlo error bar.")
