"""Every Numba kernel agrees with its NumPy reference, in float32 and float64.

The table below says how to call each kernel: which inputs to draw and which
outputs it fills. A kernel added to ``scratchvae/engine/kernels.py`` without an entry
here fails ``test_every_kernel_is_tested``, so none escapes. The loops that
compute exp and log are in ``scratchvae/engine/vmath.py``, tested in
``tests/test_vmath.py``.
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
    "sigmoid_grad": (lambda r, t: (normal(r, t), unit(r, t)), [(B * D,)]),
    "multiply": (lambda r, t: (normal(r, t), normal(r, t)), [(B * D,)]),
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



def test_bernoulli_from_bits_reads_the_sixteen_bit_integers_of_its_reference(rng):
    """The kernel's uint16 view of the words is sixteen_bit_integers (the machine is little-endian)."""
    bits = kernels.random_bits(rng, 4 * 7 - 1)  # 27 pixels: 7 words, the last one partly used
    assert bits.shape == (7,) and bits.dtype == np.uint64
    k = kernels.sixteen_bit_integers(bits, 27)
    np.testing.assert_array_equal(k, bits.view(np.uint16)[:27])
    assert k[5] == (int(bits[1]) >> 16) & 0xFFFF
