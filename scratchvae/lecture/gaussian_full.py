"""KL divergence between two full-covariance Gaussians, gaussian (6).

The reference the diagonal KLs of :mod:`scratchvae.lecture.gaussian` and
:mod:`scratchvae.lecture.gaussian_density` are tested against, and the KL of
an exact posterior (a linear-Gaussian model) that is not diagonal. Each
covariance is factorised, Sigma = C C^T (Cholesky), which also checks that it
is symmetric positive-definite, and every product with Sigma^{-1} is computed
by triangular solves with C (:func:`solve_lower`): Sigma itself is never
inverted. The forward computes gaussian (8), whose terms are all >= 0, so the
KL is never negative; it works in float64 whatever the inputs' precision (a
k x k factorisation is cheap, and (6) subtracts numbers of similar size:
trace, k, log-dets) and returns the inputs' precision.

The backward's gradients, gaussian (10), are symmetric matrices: the gradient
of the trace and log-det formula at a symmetric point. Check them through a
symmetrising wrapper, f(sym(A)) with sym(A) = (A + A^T) / 2, since the
forward accepts only symmetric covariances (docs/gaussian.md#kl-full-covariance).

No classroom task hands these ops out, so they have no solution region.
k is the dimension; B the number of pairs in a batch.

Derivation: docs/gaussian.md#kl-full-covariance
"""

from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_same_shape, check_shape, check_upstream

__all__ = ["kl_full_covariance_backward", "kl_full_covariance_forward", "solve_lower"]


class KLFullCovarianceCache(NamedTuple):
    """What :func:`kl_full_covariance_backward` needs (float64, batched)."""

    C0: np.ndarray  # (B, k, k) Cholesky factor of Sigma0 = C0 C0^T
    C1: np.ndarray  # (B, k, k) Cholesky factor of Sigma1 = C1 C1^T
    a: np.ndarray  # (B, k) C1^{-1} (mu1 - mu0)
    dtype: np.dtype  # the inputs' precision, for the gradients
    single: bool  # True if one distribution was given, not a batch


def check_gaussian_pair_args(mu0, cov0, mu1, cov1):
    """Check two (batches of) Gaussians: ``(mu0, C0, mu1, C1, dtype, single)``.

    The means as float64 batches (B, k), the covariances as their lower
    Cholesky factors (B, k, k), which exist only for symmetric
    positive-definite matrices; the inputs' dtype; and ``single``, True if one
    pair was given rather than a batch.
    """
    mu0 = as_float_array("mu0", mu0, ndim=(1, 2))
    mu1 = check_same_shape("mu1", as_float_array("mu1", mu1), "mu0", mu0)
    shape = mu0.shape + mu0.shape[-1:]  # (k, k) or (B, k, k)
    cov0 = check_shape("cov0", as_float_array("cov0", cov0), shape)
    cov1 = check_shape("cov1", as_float_array("cov1", cov1), shape)
    if 0 in mu0.shape:
        raise ValueError(f"mu0: expected at least one pair of at least one dimension, got shape {mu0.shape}")
    dtype = np.result_type(mu0, cov0, mu1, cov1)
    single = mu0.ndim == 1
    # Work in float64 whatever the inputs: a k x k factorisation is cheap, and
    # gaussian (6) subtracts numbers of similar size (trace, k, log-dets).
    # A single pair becomes a batch of one (ndmin adds the leading axis).
    mu0, cov0, mu1, cov1 = [np.array(x, dtype=np.float64, ndmin=x.ndim + single)
                            for x in (mu0, cov0, mu1, cov1)]
    return mu0, _cholesky("cov0", cov0, dtype), mu1, _cholesky("cov1", cov1, dtype), dtype, single


def _cholesky(name, cov, dtype):
    """Lower Cholesky factors C, ``cov = C C^T``, of a stack (B, k, k); or a ValueError naming ``name``.

    Symmetric means to 1e-10 of the largest entry, or 100 rounding units of
    ``dtype`` if that is coarser (a float32 product A @ A.T is not exactly symmetric).
    """
    asym = np.abs(cov - cov.swapaxes(1, 2))  # (B, k, k)
    rel = max(1e-10, 100 * float(np.finfo(dtype).eps))
    tol = rel * max(float(np.abs(cov).max()), np.finfo(np.float64).tiny)
    b, i, j = np.unravel_index(np.argmax(asym), asym.shape)
    if asym[b, i, j] > tol:
        raise ValueError(
            f"{name}: expected a symmetric positive-definite matrix, got [{i}, {j}] = "
            f"{cov[b, i, j]:.10g} but [{j}, {i}] = {cov[b, j, i]:.10g} (matrix {b} of the batch)"
        )
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        smallest = np.linalg.eigvalsh(cov).min(axis=1)  # (B,)
        b = int(np.argmin(smallest))
        raise ValueError(
            f"{name}: expected a symmetric positive-definite matrix, got smallest eigenvalue "
            f"{smallest[b]:.4g} (Cholesky failed; matrix {b} of the batch)"
        ) from None


def kl_full_covariance_forward(mu0, cov0, mu1, cov1):
    r"""KL(N(mu0, cov0) || N(mu1, cov1)) between k-dimensional Gaussians, from Cholesky factors.

    .. math:: \mathrm{KL} = \tfrac12 \left(\operatorname{Tr}(\Sigma_1^{-1}\Sigma_0)
              + \delta^\top \Sigma_1^{-1} \delta - k
              + \log\frac{\det \Sigma_1}{\det \Sigma_0}\right), \qquad \delta = \mu_1 - \mu_0

    Parameters
    ----------
    mu0, mu1 : ndarray, shape (k,) or (B, k)
    cov0, cov1 : ndarray, shape (k, k) or (B, k, k), symmetric positive-definite

    Returns
    -------
    kl : ndarray, shape () for one pair or (B,), >= 0; cache : KLFullCovarianceCache

    Examples
    --------
    >>> kl_full_covariance_forward([0.0], [[4.0]], [0.0], [[1.0]])[0]  # gaussian (12b): (4 - 1 - log 4) / 2
    array(0.80685282)

    Derivation: docs/gaussian.md#kl-full-covariance
    """
    mu0, C0, mu1, C1, dtype, single = check_gaussian_pair_args(mu0, cov0, mu1, cov1)  # C: (B, k, k)
    # gaussian (7): M = C1^{-1} C0, so that Tr(Sigma1^{-1} Sigma0) = Tr(M M^T) = sum_ij M_ij^2
    m = solve_lower(C1, C0)  # (B, k, k), lower triangular
    # gaussian (7): a = C1^{-1} delta, so that delta^T Sigma1^{-1} delta = |a|^2
    a = solve_lower(C1, (mu1 - mu0)[..., None])[..., 0]  # (B, k)
    # log det Sigma = 2 sum_i log C_ii, so with s_i = 2 log(C0_ii / C1_ii):
    # log(det Sigma1 / det Sigma0) = -sum_i s_i
    diag0, diag1 = np.diagonal(C0, axis1=1, axis2=2), np.diagonal(C1, axis1=1, axis2=2)  # (B, k)
    s = 2 * (np.log(diag0) - np.log(diag1))  # (B, k)
    # M is lower triangular with M_ii^2 = exp(s_i). Grouping each exp(s_i) with
    # a -1 and a -s_i leaves terms that are all >= 0:
    # gaussian (8): KL = 1/2 [sum_i (expm1(s_i) - s_i) + sum_{i > j} M_ij^2 + |a|^2]
    below = np.sum(np.tril(m, -1) ** 2, axis=(1, 2))  # (B,)
    kl = 0.5 * (np.sum(np.expm1(s) - s, axis=1) + below + np.sum(a**2, axis=1))  # (B,)
    kl = kl.astype(dtype).reshape(()) if single else kl.astype(dtype)  # () or (B,)
    return kl, KLFullCovarianceCache(C0, C1, a, dtype, single)


def solve_lower(C, B):
    r"""X with :math:`C X = B`, for lower-triangular :math:`C`: forward substitution.

    Row i of :math:`C X = B` reads :math:`\sum_{j \le i} C_{ij} X_j = B_i`, and
    rows above i are solved already, so :math:`X_i = (B_i - \sum_{j < i}
    C_{ij} X_j) / C_{ii}`: k steps, no pivoting, no inverse.

    Parameters
    ----------
    C : ndarray, shape (N, k, k)
        Lower triangular, non-zero diagonal (a Cholesky factor).
    B : ndarray, shape (N, k, m)

    Returns
    -------
    X : ndarray, shape (N, k, m)

    Examples
    --------
    >>> C = np.array([[[2.0, 0.0], [1.0, 1.0]]])
    >>> solve_lower(C, np.array([[[2.0], [3.0]]]))[0, :, 0]  # 2 x0 = 2; x0 + x1 = 3
    array([1., 2.])
    """
    X = np.zeros(np.broadcast_shapes(C.shape[:-1], B.shape[:-1]) + B.shape[-1:])  # (N, k, m)
    for i in range(C.shape[-1]):
        # X_i = (B_i - sum_{j < i} C_ij X_j) / C_ii
        X[:, i] = (B[:, i] - np.einsum("nj,njm->nm", C[:, i, :i], X[:, :i])) / C[:, i, i, None]
    return X


def kl_full_covariance_backward(dkl, cache):
    r"""The full-covariance KL's backward pass: its derivatives :math:`\partial`, each times ``dkl``.

    .. math:: \partial_{\mu_1} = \Sigma_1^{-1}\delta = -\partial_{\mu_0}, \qquad
              \partial_{\Sigma_0} = \tfrac12 (\Sigma_1^{-1} - \Sigma_0^{-1}), \qquad
              \partial_{\Sigma_1} = \tfrac12 \left(\Sigma_1^{-1}
              - \Sigma_1^{-1} (\Sigma_0 + \delta\delta^\top) \Sigma_1^{-1}\right)

    Parameters
    ----------
    dkl : ndarray, shaped like kl; cache : KLFullCovarianceCache

    Returns
    -------
    dmu0, dcov0, dmu1, dcov1 : ndarray, shaped like mu0, cov0, mu1, cov1; dcov0 and dcov1 symmetric

    Examples
    --------
    >>> kl_full_covariance_backward(1.0, kl_full_covariance_forward([0.0], [[1.0]], [1.0], [[4.0]])[1])
    (array([-0.25]), array([[-0.375]]), array([0.25]), array([[0.0625]]))

    Derivation: docs/gaussian.md#kl-full-covariance
    """
    C0, C1, a, dtype, single = cache
    dkl = check_upstream("dkl", dkl, () if single else a.shape[:1], np.float64).reshape(-1)  # (B,)
    eye = np.broadcast_to(np.eye(a.shape[-1]), C0.shape)  # (B, k, k)
    # gaussian (10) needs Sigma^{-1} itself: Sigma^{-1} = C^{-T} C^{-1}, with C^{-1} = solve_lower(C, I)
    inv_C1, inv_C0 = solve_lower(C1, eye), solve_lower(C0, eye)  # (B, k, k) each
    prec1 = inv_C1.swapaxes(1, 2) @ inv_C1  # (B, k, k)
    prec0 = inv_C0.swapaxes(1, 2) @ inv_C0  # (B, k, k)
    # Sigma1^{-1} delta = C1^{-T} a
    w = (inv_C1.swapaxes(1, 2) @ a[..., None])[..., 0]  # (B, k)
    # Sigma1^{-1} Sigma0 Sigma1^{-1} = N N^T with N = Sigma1^{-1} C0
    n = prec1 @ C0  # (B, k, k)
    # gaussian (10), each times the pair's dkl
    dmu1 = dkl[:, None] * w  # (B, k)
    dcov0 = 0.5 * dkl[:, None, None] * (prec1 - prec0)  # (B, k, k)
    dcov1 = 0.5 * dkl[:, None, None] * (prec1 - n @ n.swapaxes(1, 2) - w[:, :, None] * w[:, None, :])  # (B, k, k)
    grads = (-dmu1, dcov0, dmu1, dcov1)
    return tuple((x[0] if single else x).astype(dtype) for x in grads)
