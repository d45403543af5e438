"""Tutorial 1: one gradient by hand, checked by finite differences, then broken on purpose.

Run it:  python tutorials/01_gradients_by_hand.py

The op is the VAE's KL term (note 000, eq. (13); docs/gaussian.md#kl-standard-normal):
for each example (a row), with the encoder's mean mu and log-variance log_var,

    KL = 1/2 * sum_j ( exp(log_var_j) + mu_j^2 - 1 - log_var_j )

Every op in scratchvae is a pair of functions: the forward computes the value and
a cache; the backward takes dL/d(value) and returns dL/d(each input).
"""

import argparse

import numpy as np

from scratchvae.lecture.gaussian import kl_standard_normal_backward, kl_standard_normal_forward
from scratchvae.lecture.gradcheck import check_op, numerical_gradient

parser = argparse.ArgumentParser(description="Tutorial 1: a gradient by hand.")
parser.add_argument("--quick", action="store_true",
                    help="accepted by every tutorial; this one is quick anyway")
parser.parse_args()
np.set_printoptions(precision=6, suppress=True)
rng = np.random.default_rng(0)

# --- 1. The forward -------------------------------------------------------------------
# Two examples (rows), a latent space of three dimensions.
mu = rng.standard_normal((2, 3))  # (B, D_z) = (2, 3)
log_var = rng.standard_normal((2, 3))  # (2, 3)
kl, cache = kl_standard_normal_forward(mu, log_var)  # kl: (2,), one number per example
print("1. Forward: the KL of each example:", kl)
# The same number straight from the formula, for row 0:
row0 = 0.5 * np.sum(np.exp(log_var[0]) + mu[0] ** 2 - 1 - log_var[0])
print(f"   row 0 from the formula:         {row0:.6f}   <- the same\n")

# --- 2. The local derivative, by hand -------------------------------------------------
# Each term of the sum holds one mu_j and one log_var_j, so the partial derivatives are
#     dKL/dmu_j      = 1/2 * 2 mu_j            = mu_j
#     dKL/dlog_var_j = 1/2 * (exp(log_var_j) - 1)
# The backward receives dkl = dL/dKL, one number per example, and the chain rule
# multiplies: dL/dmu = dkl * mu, row by row.
dkl = np.array([1.0, -2.0])  # (2,) an upstream gradient, as if from a loss downstream
dmu, dlog_var = kl_standard_normal_backward(dkl, cache)  # (2, 3) each
print("2. Backward: dlog_var from the package:\n", dlog_var)
print("   dlog_var from the formula above:\n", dkl[:, None] * 0.5 * (np.exp(log_var) - 1), "\n")

# --- 3. Finite differences: the derivative measured, not derived -----------------------
# Nudge one input, log_var[0, 1], by +-h and see how KL[0] moves. The central difference
#     (KL(v + h) - KL(v - h)) / 2h
# has an error of order h^2 (docs/gradcheck.md#central-differences).
h = 1e-5
up, down = log_var.copy(), log_var.copy()
up[0, 1] += h
down[0, 1] -= h
slope = (kl_standard_normal_forward(mu, up)[0][0]
         - kl_standard_normal_forward(mu, down)[0][0]) / (2 * h)
print(f"3. dKL_0/dlog_var_01 measured by central difference: {slope:.10f}")
print(f"   derived by hand, (exp(log_var_01) - 1) / 2:        {0.5 * np.expm1(log_var[0, 1]):.10f}")
# numerical_gradient does this for every element (with a more accurate 4-point stencil),
# weighting the outputs by dout: it measures the gradient of L = sum(dkl * KL).
measured = numerical_gradient(lambda v: kl_standard_normal_forward(mu, v)[0], log_var.copy(),
                              dout=dkl)
print("   numerical_gradient for all of dlog_var:\n", measured, "\n")

# --- 4. check_op: backward against differences, for every input ------------------------
# It draws a random dout, runs forward and backward, measures every element, and reports
# the worst relative error |a - n| / (|a| + |n|) per input. A correct op stays below 1e-7.
print("4. check_op on the package's KL:")
for result in check_op(kl_standard_normal_forward, kl_standard_normal_backward,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())

# --- 5. Break it on purpose: drop the 1/2 ---------------------------------------------
# A classic slip: forget the 1/2 in front of the sum when differentiating. Here the
# backward doubles dlog_var, as if it computed exp(log_var) - 1 without the 1/2.


def backward_without_the_half(dkl, cache):
    dmu, dlog_var = kl_standard_normal_backward(dkl, cache)
    return dmu, 2 * dlog_var


print("\n5. check_op on a backward that dropped the 1/2 in dlog_var:")
for result in check_op(kl_standard_normal_forward, backward_without_the_half,
                       {"mu": mu, "log_var": log_var}, rng=rng):
    print("  ", result.message())

# What to look at:
# * In 2 and 3 the package, the formula and the measurement agree to about 10 digits.
# * In 4 the relative errors are around 1e-12 or less: "ok".
# * In 5, 'mu' still passes but 'log_var' FAILS, with relative error exactly 1/3:
#   |2a - a| / (|2a| + |a|) = 1/3. A factor of 2 always shows as 3.33e-01, a wrong sign as 1.
# * The check compares the backward with the forward. Had we dropped the 1/2 in the forward
#   too, both would be wrong in the same way and the check would pass. Tutorial 2 shows such
#   a bug, and the kind of test that catches it.
print("\nLook at: the 'ok' lines in 4, and in 5 the FAILED line for 'log_var' with relative error "
      "3.33e-01, the signature of a factor of 2.")
