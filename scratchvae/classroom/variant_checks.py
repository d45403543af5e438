"""The variant tasks' checks of their forward's maths: moments and Monte Carlo, beyond the values.

A variant task (:mod:`scratchvae.classroom.variants`) whose option ``maths``
names an entry of :data:`MATHS` gets those checks after its forward's values
(:func:`scratchvae.classroom.judge.checks_for`). Like the judge, this file
imports nothing but NumPy and its siblings, so it ships in the handout, where
the student's self-check runs the same checks on stored reference values.
Derivations: docs/variants.md
"""

import numpy as np

from .judge import SAMPLES, SIGMAS, CheckFailed

__all__ = ["MATHS", "logistic_entropy", "prior_monte_carlo", "softplus_moments"]


def _within(what, got, expected, error, unit):
    """Raise CheckFailed unless each of ``got`` is within SIGMAS standard ``error``s of ``expected``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.abs(got - expected) / error
    if not np.all(off <= SIGMAS):  # NaN fails too
        j = int(np.nanargmax(np.where(np.isnan(off), np.inf, off)))
        raise CheckFailed(f"{unit} {j}: {what} is {got[j]:.6g}, expected {expected[j]:.6g} "
                          f"(+- {error[j]:.2g}, one standard error)")


def _out(student, shape):
    out = student["maths"]["out"]
    if out.shape != shape:
        raise CheckFailed(f"the output on {SAMPLES} samples: expected shape {shape}, got {out.shape}")
    return out


def softplus_moments(task, student, reference, case):
    """The sample mean and variance of z against mu and softplus(rho)^2."""
    z = _out(student, case.arrays["maths/eps"].shape)
    mu, sigma = case.arrays["maths/mu"][0], np.logaddexp(0, case.arrays["maths/rho"][0])
    _within(f"the mean of {SAMPLES} samples of z", z.mean(axis=0), mu, sigma / np.sqrt(SAMPLES), "coordinate")
    _within(f"the variance of {SAMPLES} samples of z", z.var(axis=0, ddof=1), sigma**2,
            sigma**2 * np.sqrt(2 / (SAMPLES - 1)), "coordinate")
    return f"mean mu and variance softplus(rho)^2 over {SAMPLES} samples, within {SIGMAS} standard errors"


softplus_moments.sections = ("maths",)


def prior_monte_carlo(task, student, reference, case):
    """The closed-form KL against the mean of log q(z) - log p(z) over samples z ~ q, p = N(m, s^2 I)."""
    mu, log_var = case.arrays["maths/mu"], case.arrays["maths/log_var"]
    m, s = float(case.arrays["maths/prior_mean"]), float(case.arrays["maths/prior_std"])
    kl = _out(student, (len(mu),))
    eps = np.random.default_rng(0).standard_normal((len(mu), SAMPLES, mu.shape[1]))
    z = mu[:, None] + np.exp(log_var[:, None] / 2) * eps  # (B, SAMPLES, D_z), z ~ q
    # log q(z) - log p(z), coordinate by coordinate: the log 2 pi terms cancel
    log_ratio = np.sum(-0.5 * log_var[:, None] - eps**2 / 2 + np.log(s) + ((z - m) / s) ** 2 / 2, axis=2)
    _within(f"your KL, against the mean of log q(z) - log p(z) over {SAMPLES} samples z ~ q,",
            kl, log_ratio.mean(axis=1), log_ratio.std(axis=1, ddof=1) / np.sqrt(SAMPLES), "row")
    return f"within {SIGMAS} standard errors of a Monte Carlo estimate"


prior_monte_carlo.sections = ("maths",)


def logistic_entropy(task, student, reference, case):
    """The mean log-likelihood of logistic samples against minus the entropy, -sum_j (log s_j + 2)."""
    ll = _out(student, (SAMPLES,))
    expected = -np.sum(case.arrays["maths/log_scale"][0] + 2)
    error = reference["maths"]["out"].std(ddof=1) / np.sqrt(SAMPLES)
    _within(f"the mean log-likelihood of {SAMPLES} samples", np.array([ll.mean()]), np.array([expected]),
            np.array([error]), "sum")
    return f"the mean over {SAMPLES} samples is minus the entropy, within {SIGMAS} standard errors"


logistic_entropy.sections = ("maths",)


MATHS = {"kl_gaussian_prior": [("forward: Monte Carlo", prior_monte_carlo)],
         "softplus_reparameterize": [("forward: moments of z", softplus_moments)],
         "logistic_log_likelihood": [("forward: mean against the entropy", logistic_entropy)]}
"""The checks of a variant's forward beyond its values, by the variant's name."""
