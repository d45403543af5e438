"""Tutorial 3: the ELBO on a model whose log p(x) is known exactly.

Run it:  python tutorials/03_elbo_on_an_exact_model.py

A VAE can only estimate log p(x). Take instead a linear decoder with Gaussian noise
(probabilistic PCA; docs/elbo.md#exact-model):

    p(z) = N(0, I),    p(x | z) = N(x; z W + b, s^2 I)

Here log p(x), the true posterior p(z | x) = N(m, Sigma) and the ELBO of any diagonal
q = N(mu, diag exp(log_var)) are all in closed form, so note 000's identity

    log p(x) = ELBO(q) + KL(q || p(z | x))          (note 000, eqs. (1)-(3))

can be checked to the last digit: the ELBO is never above log p(x), the gap is exactly the
KL from q to the posterior, and the bound is tight when q is the posterior.
"""

import argparse

import numpy as np

from scratchvae.lecture.gaussian_full import kl_full_covariance_forward
from scratchvae.lecture.linear_gaussian import (linear_gaussian_elbo, linear_gaussian_log_marginal,
                                        linear_gaussian_posterior)

parser = argparse.ArgumentParser(description="Tutorial 3: the ELBO on an exact model.")
parser.add_argument("--quick", action="store_true",
                    help="accepted by every tutorial; this one is quick anyway")
parser.parse_args()
np.set_printoptions(precision=4, suppress=True)
rng = np.random.default_rng(3)

# --- 1. A model and one observation ------------------------------------------------
D_z, D, noise_var = 2, 5, 0.3
W = rng.standard_normal((D_z, D))  # (D_z, D): rows, as everywhere in scratchvae
b = rng.standard_normal(D)  # (D,)
z_true = rng.standard_normal((1, D_z))  # (1, D_z)
x = z_true @ W + b + np.sqrt(noise_var) * rng.standard_normal((1, D))  # (1, D), ancestral sampling
log_px = linear_gaussian_log_marginal(x, W, b, noise_var)[0]
m, Sigma = linear_gaussian_posterior(x, W, b, noise_var)  # (1, D_z), (D_z, D_z)
print(f"1. log p(x) = {log_px:.6f}, exactly.")
print(f"   the posterior p(z | x): mean {m[0]}, covariance\n{Sigma}")
print("   (not diagonal: the two latent coordinates are correlated given x)\n")

# --- 2. The ELBO of several q's, and the gap -------------------------------------------
# For each diagonal q = N(mu, diag exp(log_var)): its ELBO, the gap log p(x) - ELBO, and
# KL(q || posterior) from the full-covariance formula (note 000, eq. (11)).
precision = np.linalg.inv(Sigma)  # (D_z, D_z)
candidates = {
    "the prior N(0, I)": (np.zeros(D_z), np.zeros(D_z)),
    "posterior mean, variances 1": (m[0], np.zeros(D_z)),
    "posterior mean, variances diag(Sigma)": (m[0], np.log(np.diag(Sigma))),
    # The best diagonal q for KL(q || posterior) has variances 1 / diag(precision), which
    # are *smaller* than the marginal variances diag(Sigma): q(z) = q1(z1) q2(z2) cannot
    # hold the correlation, and KL(q || p) punishes mass where p has little.
    "posterior mean, variances 1/diag(P)": (m[0], -np.log(np.diag(precision))),
}
print(f"2. {'q':<40}  {'ELBO':>10}  {'log p(x) - ELBO':>15}  {'KL(q || posterior)':>18}")
for name, (mu, log_var) in candidates.items():
    elbo = linear_gaussian_elbo(x, W, b, noise_var, mu[None], log_var[None])[0]
    kl, _ = kl_full_covariance_forward(mu, np.diag(np.exp(log_var)), m[0], Sigma)
    print(f"   {name:<40}  {elbo:10.6f}  {log_px - elbo:15.10f}  {float(kl):18.10f}")

# --- 3. Tight at the posterior -----------------------------------------------------------
# With orthogonal rows of W, W W^T is diagonal, so the posterior precision I + W W^T / s^2
# is diagonal too (docs/elbo.md, eq. (14)). Then the diagonal family holds the posterior,
# and q = posterior closes the gap: note 000, eq. (3), the maximum over q is log p(x).
Q, _ = np.linalg.qr(rng.standard_normal((D, D_z)))  # (D, D_z), orthonormal columns
W_orth = (Q * np.array([2.0, 0.7])).T  # (D_z, D): orthogonal rows of different lengths
m_orth, Sigma_orth = linear_gaussian_posterior(x, W_orth, b, noise_var)
print(f"\n3. With orthogonal rows of W the posterior covariance is diagonal:\n{Sigma_orth}")
elbo = linear_gaussian_elbo(x, W_orth, b, noise_var, m_orth, np.log(np.diag(Sigma_orth))[None])[0]
log_px = linear_gaussian_log_marginal(x, W_orth, b, noise_var)[0]
print(f"   q = the posterior: ELBO {elbo:.10f}, log p(x) {log_px:.10f}, gap {log_px - elbo:.1e}")

# What to look at:
# * Part 2: every ELBO is below log p(x), and the two right-hand columns agree to ~10
#   digits: the gap *is* KL(q || posterior), note 000, eq. (1).
# * The ELBO climbs as q gets closer to the posterior; the best diagonal q uses variances
#   1 / diag(P), and even it leaves a gap, because no diagonal q equals a correlated posterior.
# * Part 3: when the family can hold the posterior, the gap is zero up to rounding (~1e-15).
print("\nLook at: the last two columns of part 2 (equal), and part 3's gap: zero, up to rounding.")
