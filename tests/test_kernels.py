"""Every Numba kernel agrees with its NumPy reference, in float32 and float64.

The table below says how to call each kernel: which inputs to draw and which
outputs it fills. A kernel added to ``scratchvae/kernels.py`` without an entry
here fails ``test_every_kernel_is_tested``, so none escapes.
"""

import inspect

import numpy as np
import pytest

from scratchvae.engine import kernels
B, D = 7, 13  # deliberately not multiples of any vector width


def normal(rng, dtype, shape=(B * D,), scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def unit(rng, dtype, shape=(B * D,)):
    return rng.random(shape).astype(dtype)


def exp_neg_abs(x):
    return np.exp(-np.abs(x))


# name -> (make inputs (rng, dtype) -> tuple, output shapes)
# Inputs are listed in the kernel's argument order; outputs follow them.
CASES = {
    "leaky_relu": (lambda r, t: (normal(r, t), t(0.1)), [(B * D,)]),
    "leaky_relu_grad": (lambda r, t: (normal(r, t), normal(r, t), t(0.1)), [(B * D,)]),
    "bias_leaky_relu": (
        lambda r, t: (normal(r, t, (B, D)), normal(r, t, (D,)), t(0.1)),
        [(B, D)],
    ),
    "leaky_relu_grad_bias": (
        lambda r, t: (normal(r, t, (B, D)), normal(r, t, (B, D)), t(0.1)),
        [(B, D), (D,)],
    ),
    "bernoulli_from_bits": (
        # B random rows of a table of 3B; with D = 13, the words of bits straddle rows.
        lambda r, t: (
            unit(r, t, (3 * B, D)),
            r.integers(0, 3 * B, size=B),
            r.integers(0, 2**64, size=(B * D + 3) // 4, dtype=np.uint64),
        ),
        [(B, D)],
    ),
    "tanh_grad": (lambda r, t: (normal(r, t), np.tanh(normal(r, t))), [(B * D,)]),
    "sigmoid_from_exp": (
        lambda r, t: (lambda x: (x, exp_neg_abs(x)))(normal(r, t, scale=30.0)),
        [(B * D,)],
    ),
    "sigmoid_grad": (lambda r, t: (normal(r, t), unit(r, t)), [(B * D,)]),
    "softplus_from_log1p": (
        lambda r, t: (lambda x: (x, np.log1p(exp_neg_abs(x))))(normal(r, t, scale=30.0)),
        [(B * D,)],
    ),
    "multiply": (lambda r, t: (normal(r, t), normal(r, t)), [(B * D,)]),
    "bernoulli_terms": (
        lambda r, t: (lambda x, l: (x, l, exp_neg_abs(l)))(
            (unit(r, t, (B, D)) < 0.5).astype(t), normal(r, t, (B, D), scale=30.0)
        ),
        [(B, D), (B,)],
    ),
    "bernoulli_grad": (
        lambda r, t: (normal(r, t, (B,)), unit(r, t, (B, D)), unit(r, t, (B, D))),
        [(B, D)],
    ),
    "reparameterize": (
        lambda r, t: (normal(r, t), normal(r, t), normal(r, t, scale=1.0)),
        [(B * D,), (B * D,)],
    ),
    "reparameterize_grad": (
        lambda r, t: (normal(r, t), normal(r, t), np.abs(normal(r, t))),
        [(B * D,), (B * D,)],
    ),
    "kl_standard_normal": (
        lambda r, t: (normal(r, t, (B, D)), normal(r, t, (B, D))),
        [(B,)],
    ),
    "kl_standard_normal_grad": (
        lambda r, t: (normal(r, t, (B,)), normal(r, t, (B, D)), normal(r, t, (B, D))),
        [(B, D), (B, D)],
    ),
}

# Kernels that update their arguments in place; tests/test_optim.py checks
# them against their references step by step.
IN_PLACE = {"sgd_update", "adagrad_update", "adam_update"}


def kernel_names():
    return sorted(
        name
        for name, obj in vars(kernels).items()
        if hasattr(kernels, name + "_reference") and callable(obj) and not name.startswith("_")
    )


def test_every_kernel_is_tested():
    untested = set(kernel_names()) - set(CASES) - IN_PLACE
    assert not untested, f"kernels with no entry in CASES: {sorted(untested)}"


def test_every_kernel_has_a_docstring():
    for name in kernel_names():
        assert inspect.getdoc(getattr(kernels, name)), f"kernels.{name} has no docstring"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_reference(name, dtype, rng):
    make_inputs, out_shapes = CASES[name]
    inputs = make_inputs(rng, dtype)
    outputs = [np.empty(shape, dtype=dtype) for shape in out_shapes]
    getattr(kernels, name)(*inputs, *outputs)
    expected = getattr(kernels, name + "_reference")(*inputs)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(expected) == len(outputs)
    # float32 kernels may accumulate in float64 where the reference does not.
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(outputs, expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_terms_store_no_subnormal_probability(dtype):
    """sigmoid(l) below the smallest normal number is stored as 0, so that no subnormal number
    reaches the backward's matrix products (docs/optim.md#subnormals); larger ones are exact."""
    tiny = np.finfo(dtype).tiny
    deep = np.log(tiny) - 5  # sigmoid(deep) ~ e^deep: subnormal (or below)
    logits = np.array([[deep, np.log(tiny) + 5, 0.0, -3.0]], dtype=dtype)
    x = np.zeros_like(logits)
    e = exp_neg_abs(logits)
    p, ll = np.empty_like(logits), np.empty(1, dtype=dtype)
    kernels.bernoulli_terms(x, logits, e, p, ll)
    assert p[0, 0] == 0 and p[0, 1] >= tiny
    np.testing.assert_allclose(p[0, 1:], 1 / (1 + np.exp(-logits[0, 1:])), rtol=1e-6)
