"""scratchvae.engine.vmath against NumPy, in float32 and float64.

Errors are measured in ulps of the correctly rounded result: the float32
functions against a float64 reference, the float64 ones against long double
(x87 80-bit, 64-bit mantissa). The float32 range is sampled (random bit
patterns, every binade, subnormals, specials, dense samples where the
functions bend), not swept: the 2^32 sweep takes most of an hour. Also passes
under NUMBA_DISABLE_JIT=1, on fewer inputs.
"""
import platform
import re

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchvae.engine import vmath as V

JIT = not numba.config.DISABLE_JIT
N = 20_000 if JIT else 300          # per part; pure Python runs ~10^4 times slower
MAX_ULP = 4.0
DTYPES = [np.float32, np.float64]
HIGH = {np.float32: np.float64, np.float64: np.longdouble}


def ref_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def ref_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# name -> (array kernel, high-precision NumPy reference)
FUNCS = {"exp": (V.exp_array, np.exp), "expm1": (V.expm1_array, np.expm1), "log": (V.log_array, np.log),
         "log1p": (V.log1p_array, np.log1p), "softplus": (V.softplus_array, ref_softplus),
         "sigmoid": (V.sigmoid_array, ref_sigmoid)}


@pytest.fixture(autouse=True)
def _quiet():
    with np.errstate(all="ignore"):    # overflow/invalid in the references are expected
        yield


def ulp_error(y, ref, dt):
    """|y - ref| in ulps of ref's binade in dtype dt (subnormal spacing below
    the normal range; inf counts as 2^(emax+1), the float after max).
    Exact agreement (also inf == inf, NaN and NaN) counts 0; NaN vs number inf."""
    fi, hp = np.finfo(dt), ref.dtype.type
    big = np.ldexp(hp(1), fi.maxexp)
    rh, yh = np.clip(ref, -big, big), np.clip(y.astype(hp), -big, big)
    _, e = np.frexp(np.abs(rh))                       # |ref| = m * 2^e, m in [0.5, 1)
    ulp = np.ldexp(hp(1), np.maximum(e - 1, fi.minexp) - fi.nmant)
    err = np.abs(yh - rh) / ulp
    same = (y == ref.astype(dt)) | (np.isnan(y) & np.isnan(ref))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def specials(dt):
    """Edge inputs: +-0, +-inf, NaN, +-max, tiny, subnormal, and the
    over/underflow thresholds of exp (with their neighbours)."""
    fi = np.finfo(dt)
    v = [0.0, 1.0, 0.5, 2.0, 1e-3, fi.max, fi.tiny, fi.smallest_subnormal, fi.eps,
         np.inf, np.nan, np.log(fi.max), np.log(fi.tiny), np.log(fi.smallest_subnormal),
         88.72283, 88.72284, -103.97, -103.98, -87.3, 709.782712893384,
         709.7827128933841, -745.1332191019411, -745.1332191019412]
    v = np.array(v, dtype=dt)
    return np.concatenate([v, -v, np.nextafter(v, dt(np.inf)), np.nextafter(v, dt(-np.inf))])


def inputs(dt, n=N, seed=0):
    """Special values, random bit patterns (every binade, subnormals, NaN,
    inf), and dense uniform samples where the functions are interesting."""
    rng = np.random.default_rng(seed)
    it = np.uint32 if dt == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(it).max, n, dtype=it, endpoint=True).view(dt)
    hi = 90.0 if dt == np.float32 else 712.0
    lo = -106.0 if dt == np.float32 else -748.0
    parts = [specials(dt), bits, rng.uniform(lo, hi, n), rng.uniform(-30, 30, n),
             rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-45, 0, n),      # tiny values
             -1 + 10.0 ** rng.uniform(-16, 0, n)]                          # log1p near -1
    return np.concatenate([p.astype(dt) for p in parts])


def max_ulp(name, dt, x):
    kernel, ref = FUNCS[name]
    y = kernel(x, np.empty_like(x))
    with np.errstate(all="ignore"):
        err = ulp_error(y, ref(x.astype(HIGH[dt])), dt)
    i = int(np.argmax(err))
    return float(err[i]), x[i], y[i]


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(FUNCS))
def test_accuracy(name, dt):
    if dt == np.float64 and np.finfo(np.longdouble).nmant < 60:
        pytest.skip("no extended-precision long double for the float64 reference")
    err, x, y = max_ulp(name, dt, inputs(dt))
    print(f"{name} {dt.__name__}: max {err:.3f} ulp at x={x!r} (got {y!r})")
    assert err <= MAX_ULP


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_special_values_match_numpy(dt):
    """Exactly NumPy's answer (sign of zero included) wherever the input is
    special or the result is 0, +-inf or NaN, away from rounding boundaries."""
    fi = np.finfo(dt)
    x = np.array([0, -0.0, np.inf, -np.inf, np.nan, 1, -1, -2, 1e3, -1e3, 1e30, -1e30,
                  fi.max, -fi.max, fi.smallest_subnormal, -fi.smallest_subnormal], dt)
    for name, fn in [("exp", np.exp), ("log", np.log), ("log1p", np.log1p),
                     ("softplus", ref_softplus), ("sigmoid", ref_sigmoid)]:
        y, r = FUNCS[name][0](x, np.empty_like(x)), fn(x)
        edge = ~np.isfinite(r) | (r == 0) | ~np.isfinite(x) | (x == 0) | (r == 1)
        np.testing.assert_array_equal(y[edge], r[edge], err_msg=name)
        num = edge & ~np.isnan(r)                       # a NaN's sign bit means nothing
        np.testing.assert_array_equal(np.signbit(y[num]), np.signbit(r[num]), err_msg=name)


def test_scalar_generics_pick_dtype():
    pairs = [(V.exp, V.exp_f32, V.exp_f64), (V.log, V.log_f32, V.log_f64),
             (V.log1p, V.log1p_f32, V.log1p_f64),
             (V.softplus, lambda v: V.softplus_sigmoid_f32(v)[0], lambda v: V.softplus_sigmoid_f64(v)[0]),
             (V.sigmoid, lambda v: V.softplus_sigmoid_f32(v)[1], lambda v: V.softplus_sigmoid_f64(v)[1])]
    for generic, f32_fn, f64_fn in pairs:
        a, b = generic(np.float32(0.3)), generic(0.3)
        assert a == f32_fn(np.float32(0.3)) and b == f64_fn(0.3)
        assert float(np.float32(a)) == float(a) and a != b    # a really is a float32


def _ulp_one(name, dt, v):
    return max_ulp(name, dt, np.array([v], dtype=dt))[0]


@settings(max_examples=200 if JIT else 20, deadline=None)
@given(st.sampled_from(list(FUNCS)), st.floats(width=32))
def test_hypothesis_f32(name, v):
    assert _ulp_one(name, np.float32, v) <= MAX_ULP


@settings(max_examples=200 if JIT else 20, deadline=None)
@given(st.sampled_from(list(FUNCS)), st.floats())
def test_hypothesis_f64(name, v):
    assert _ulp_one(name, np.float64, v) <= MAX_ULP


def numpy_bernoulli(x, l):
    """float64 reference: sum_j x*l - softplus(l) per row, and sigmoid(l)."""
    l64 = l.astype(np.float64)
    return (x * l64 - ref_softplus(l64)).sum(axis=1), ref_sigmoid(l64)


@pytest.mark.parametrize("scale", [1.0, 10.0, 300.0])
def test_bernoulli_ll_rows(scale):
    B, D = (128, 784) if JIT else (3, 50)
    rng = np.random.default_rng(1)
    x = (rng.random((B, D)) < 0.3).astype(np.float32)
    logits = (rng.standard_normal((B, D)) * scale).astype(np.float32)
    p, ll = np.empty_like(logits), np.empty(B, np.float32)
    V.bernoulli_ll_rows(x, logits, p, ll)
    ll_ref, p_ref = numpy_bernoulli(x, logits)
    scale_of_sum = np.abs(x * logits).sum(1) + ref_softplus(logits.astype(np.float64)).sum(1)
    assert np.all(np.abs(ll - ll_ref) <= 1e-5 * scale_of_sum)
    tiny = np.finfo(np.float32).tiny
    assert ulp_error(p, np.where(p_ref >= tiny, p_ref, 0), np.float32).max() <= MAX_ULP
    # Same bits as the stand-alone kernel: "reassoc" did not leak into sigmoid.
    sigmoid = V.sigmoid_array(logits, np.empty_like(logits))
    np.testing.assert_array_equal(p, np.where(sigmoid >= tiny, sigmoid, 0))


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_bernoulli_ll_rows_in_both_dtypes(dt):
    B, D = (16, 784) if JIT else (2, 30)
    rng = np.random.default_rng(3)
    x = (rng.random((B, D)) < 0.3).astype(dt)
    logits = (rng.standard_normal((B, D)) * 10).astype(dt)
    p, ll = np.empty_like(logits), np.empty(B, dt)
    V.bernoulli_ll_rows(x, logits, p, ll)
    ll_ref, p_ref = numpy_bernoulli(x, logits)
    scale_of_sum = np.abs(x * logits).sum(1) + ref_softplus(logits.astype(np.float64)).sum(1)
    assert np.all(np.abs(ll - ll_ref) <= (1e-5 if dt == np.float32 else 1e-12) * scale_of_sum)
    np.testing.assert_allclose(p, p_ref, rtol=1e-6 if dt == np.float32 else 1e-14)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_bernoulli_ll_rows_stores_no_subnormal_probability(dt):
    """sigmoid(l) below the smallest normal number is stored as 0, so that no subnormal number
    reaches the backward's matrix products (docs/optim.md#subnormals); larger ones are kept."""
    tiny = np.finfo(dt).tiny
    deep = np.log(tiny) - 5  # sigmoid(deep) ~ e^deep: subnormal (or below)
    logits = np.array([[deep, np.log(tiny) + 5, 0.0, -3.0]], dtype=dt)
    p, ll = np.empty_like(logits), np.empty(1, dtype=dt)
    V.bernoulli_ll_rows(np.zeros_like(logits), logits, p, ll)
    assert p[0, 0] == 0 and p[0, 1] >= tiny
    np.testing.assert_allclose(p[0, 1:], 1 / (1 + np.exp(-logits[0, 1:])), rtol=1e-6)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_softplus_sigmoid_array_is_the_two_functions(dt):
    x = inputs(dt, n=N // 10)
    softplus, sigmoid = np.empty_like(x), np.empty_like(x)
    V.softplus_sigmoid_array(x, softplus, sigmoid)
    np.testing.assert_array_equal(softplus, V.softplus_array(x, np.empty_like(x)))
    np.testing.assert_array_equal(sigmoid, V.sigmoid_array(x, np.empty_like(x)))


def test_bernoulli_tail_survives_reassoc():
    # softplus(-20) = log1p(e^-20) ~ 2.06e-9 needs the Fast2Sum correction in
    # log1p: if "reassoc" had leaked into it, every term (and ll) would be 0.
    logits = np.full((2, 64), -20.0, np.float32)
    x, p, ll = np.zeros_like(logits), np.empty_like(logits), np.empty(2, np.float32)
    V.bernoulli_ll_rows(x, logits, p, ll)
    np.testing.assert_allclose(ll, -64 * np.log1p(np.exp(-20.0)), rtol=1e-5)


@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_bernoulli_ll_repeated_is_the_rows_kernel_on_repeated_x(dt):
    B, S, D = (3, 5, 784) if JIT else (2, 3, 20)
    rng = np.random.default_rng(2)
    x = (rng.random((B, D)) < 0.3).astype(dt)
    products = (rng.standard_normal((B * S, D)) * 5).astype(dt)
    bias = rng.standard_normal(D).astype(dt)
    ll = V.bernoulli_ll_repeated(x, S, products, bias, np.empty(B * S, dt))
    assert ll.dtype == dt
    logits = products + bias
    ll_ref = numpy_bernoulli(np.repeat(x, S, axis=0), logits)[0]
    scale_of_sum = np.abs(logits).sum(1) + ref_softplus(logits.astype(np.float64)).sum(1)
    assert np.all(np.abs(ll - ll_ref) <= (1e-5 if dt == np.float32 else 1e-12) * scale_of_sum)


@pytest.mark.skipif(not JIT, reason="no machine code under NUMBA_DISABLE_JIT")
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 assembly")
@pytest.mark.parametrize("dt", DTYPES, ids=["f32", "f64"])
def test_training_kernels_compile_to_vector_instructions(dt):
    """The loops training runs are vectorised: their machine code computes in packed
    registers (``vfmadd...ps %ymm``: 8 float32 at once), not one scalar per instruction
    (``...ss``), which is what a libm call per element would force."""
    suffix = "ps" if dt == np.float32 else "pd"
    x = np.ones((2, 16), dt)
    calls = {V.bernoulli_ll_rows: (x, x, np.empty_like(x), np.empty(2, dt)),
             V.softplus_sigmoid_array: (x.reshape(-1), np.empty(32, dt), np.empty(32, dt))}
    for kernel, args in calls.items():
        # A fresh compilation with the kernel's own flags: Numba cannot show
        # the assembly of code it loaded from its cache.
        fresh = numba.njit(**{k: v for k, v in kernel.targetoptions.items()
                              if k not in ("cache", "nopython")})(
            kernel.py_func)
        fresh(*args)
        asm = next(iter(fresh.inspect_asm().values()))
        packed = re.findall(rf"\bv\w+{suffix}\s+[^\n]*%[yz]mm", asm)
        # The same loop with np.exp and np.log1p compiles to 6 of them.
        assert len(packed) > 50, f"{kernel.__name__}({dt.__name__}): {len(packed)} packed instructions"
