"""Every hand-written backward against PyTorch's automatic differentiation, in float64.

An independent check of the derivations: the same functions written with torch's operators,
differentiated by torch.autograd, on the random inputs that `scratchvae gradcheck` uses.
Skipped when torch is not installed (it is only in the optional `compare` extra).
"""

import math

import numpy as np
import pytest

from scratchvae.lecture import ops as lecture_ops
from scratchvae.tools.gradcheck_report import op_checks

torch = pytest.importorskip("torch")

LOG_2PI = math.log(2 * math.pi)


def log_density(z, mu, log_var):
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 * torch.exp(-log_var)).sum(-1)


def kl_full(mu0, cov0, mu1, cov1):
    # eq. (11) of note 000, literally: trace, quadratic form, log-determinants
    inv1 = torch.linalg.inv(cov1)
    d = mu1 - mu0
    k = mu0.shape[-1]
    return 0.5 * (torch.trace(inv1 @ cov0) + d @ inv1 @ d - k
                  + torch.logdet(cov1) - torch.logdet(cov0))


# The same functions, in torch: name -> f(*inputs) -> output
TORCH = {
    "dense": lambda x, W, b: x @ W + b,
    "relu": torch.relu,
    "leaky_relu": lambda x: torch.nn.functional.leaky_relu(x, 0.1),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus,
    "reparameterize": lambda mu, log_var, eps: mu + torch.exp(0.5 * log_var) * eps,
    "kl_standard_normal": lambda mu, log_var: 0.5 * (torch.exp(log_var) + mu**2 - 1 - log_var).sum(-1),
    "kl_diagonal": lambda mu0, lv0, mu1, lv1: 0.5 * (
        torch.exp(lv0 - lv1) + (mu1 - mu0) ** 2 * torch.exp(-lv1) - 1 + lv1 - lv0).sum(-1),
    "kl_full_covariance": lambda mu0, c0, mu1, c1: kl_full(mu0, (c0 + c0.T) / 2, mu1, (c1 + c1.T) / 2),
    "gaussian_log_density": log_density,
    "bernoulli_log_likelihood": lambda x, l: -torch.nn.functional.binary_cross_entropy_with_logits(
        l, x, reduction="none").sum(-1),
    "gaussian_log_likelihood": log_density,
}


CHECKS = op_checks(np.random.default_rng(2026), lecture_ops)


def test_every_op_has_a_torch_twin():
    assert {name for name, *_ in CHECKS} == set(TORCH)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c[0])
def test_backward_matches_autograd(check):
    name, forward, backward, inputs, wrt = check
    wrt = list(inputs) if wrt is None else wrt
    out, cache = forward(*inputs.values())
    dout = np.random.default_rng(7).standard_normal(np.shape(out))
    ours = backward(dout, cache)
    ours = ours if isinstance(ours, tuple) else (ours,)

    tensors = {k: torch.tensor(v, dtype=torch.float64, requires_grad=k in wrt) for k, v in inputs.items()}
    theirs_out = TORCH[name](*tensors.values())
    np.testing.assert_allclose(theirs_out.detach().numpy(), out, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(theirs_out, [tensors[k] for k in wrt], torch.tensor(dout))
    for key, mine, auto in zip(wrt, ours, grads):
        np.testing.assert_allclose(mine, auto.numpy(), rtol=1e-10, atol=1e-12, err_msg=f"{name}: d{key}")
