"""Branch-free exp, log, log1p, softplus and sigmoid that Numba loops can vectorise.

Why: the llvmlite wheels ship no vector maths library, so a Numba loop that
calls ``np.exp`` or ``np.log1p`` makes one scalar libm call per element and
is not vectorised (see :mod:`scratchvae.engine.kernels`). These functions are
written in plain arithmetic and bit tricks, every ``a if c else b`` a vector
select, so LLVM vectorises any loop that calls them, and a pass that needs
both exp and log1p (the Bernoulli log-likelihood) can be one fused loop.

What, in float32 and float64 (picked by the argument's dtype at compile time):
``exp``, ``expm1``, ``log``, ``log1p``, ``softplus``, ``sigmoid`` for scalars; the same
over C-contiguous arrays (``exp_array(x, out)``, ...); and the kernels the
engine runs: :func:`softplus_sigmoid_array` (the softplus activation),
:func:`bernoulli_ll_rows` (the Bernoulli log-likelihood in training) and
:func:`bernoulli_ll_repeated` (the same for the importance-weighted bound).

Accuracy: at most 3 ulp of the correctly rounded result everywhere, subnormals
included (no flush to zero); exp in float32 was checked on all 2^32 inputs,
the suite samples the range (``tests/test_vmath.py``). Method: Cephes and
fdlibm's argument reductions and polynomials, as Eigen's pexp/plog do.
Also runs as plain Python under ``NUMBA_DISABLE_JIT=1``, slowly.
"""
import math

import numpy as np
from numba import njit

# Compiler flags:
# * error_model="numpy": x/0 gives inf/nan instead of raising; the Python model
#   would add a zero test (a branch) before every division.
# * nogil=True: other Python threads run while a loop works, as with NumPy's ufuncs.
# * fastmath={"contract"} only: lets LLVM fuse a*b+c into one FMA instruction.
#   Never fastmath=True: "nnan"/"ninf" would delete the NaN/inf handling and
#   "reassoc" could simplify away (t + ROUND) - ROUND and x - (u - 1) below.
# * Leaves (exp_*, log*_*) are NOT inline="always": Numba's IR inliner would
#   compile their bodies with the *caller's* flags (e.g. "reassoc" in
#   bernoulli_ll_rows). LLVM inlines them anyway and keeps their own flags.
# * Glue (softplus_sigmoid_*, the generic exp/log/... wrappers) IS
#   inline="always": once exp and log1p are inlined into it, it is too big for
#   LLVM's inliner, and a loop that still contains a call is not vectorised.
_FLAGS = dict(cache=True, error_model="numpy", fastmath={"contract"}, nogil=True)
_GLUE = dict(_FLAGS, inline="always")
f32 = np.float32

# ---------------------------------------------------------------- constants
# exp: exp(x) = 2^k * exp(r), k = round(x / ln2), |r| <= ln2/2.
EXP32_HI, EXP32_LO = f32(89.0), f32(-104.0)   # e^88.73 > FLT_MAX, e^-103.98 < 2^-150
EXP64_HI, EXP64_LO = 710.0, -746.0            # e^709.79 > DBL_MAX, e^-745.14 < 2^-1075
LOG2E32, LOG2E64 = f32(1.4426950408889634), 1.4426950408889634
# Adding then subtracting 1.5*2^(mantissa bits) rounds to the nearest integer.
ROUND32, ROUND64 = f32(1.5 * 2**23), 1.5 * 2**52
# Cody-Waite: ln2 = HI + LO where HI has few significant bits, so k*HI is exact
# and x - k*HI loses nothing; LO restores the missing digits.
# float32 split from Cephes expf.c; float64 split from fdlibm e_exp.c/e_log.c.
LN2HI32, LN2LO32 = f32(0.693359375), f32(-2.12194440e-4)
LN2HI64, LN2LO64 = 6.93147180369123816490e-01, 1.90821492927058770002e-10
# exp(r) ~ 1 + r + r^2 * P(r).  float32: Cephes expf minimax coefficients
# (highest degree first, ~1 ulp).  float64: plain Taylor 1/n!, n = 13..2: the
# first dropped term r^14/14! < 5e-18 is far below half an ulp.
EXP32_P = tuple(f32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                  4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))
EXP64_P = tuple(1.0 / math.factorial(n) for n in range(13, 1, -1))

# log: log(2^k * m) = k*ln2 + log(m), m in [sqrt(2)/2, sqrt(2)); with f = m-1,
# s = f/(2+f):  log(m) = 2*atanh(s) = 2s + (2/3)s^3 + (2/5)s^5 + ...
#             = f - f^2/2 + s*(f^2/2 + R(s^2)),  R(z) = Lg1*z + Lg2*z^2 + ...
# Lg_i are the Remez-tuned versions of 2/(2i+1): from fdlibm e_logf.c
# (float32, |error| < 2^-34) and e_log.c (float64, |error| < 2^-58), highest first.
LG32 = tuple(f32(c) for c in (0xf89e26 * 2.0**-26, 0x91e9ee * 2.0**-25,
                              0xccce13 * 2.0**-25, 0xaaaaaa * 2.0**-24))
LG64 = (1.479819860511658591e-01, 1.531383769920937332e-01, 1.818357216161805012e-01,
        2.222219843214978396e-01, 2.857142874366239149e-01, 3.999999999940941908e-01,
        6.666666666666735130e-01)
LN2HI_LOG32, LN2LO_LOG32 = f32(6.9313812256e-01), f32(9.0580006145e-06)  # fdlibm logf
TINY32, TINY64 = f32(2.0**-126), 2.0**-1022   # smallest normal numbers
ZERO, HALF, ONE, TWO = f32(0), f32(0.5), f32(1), f32(2)
INF32, NAN32, INF64, NAN64 = f32(np.inf), f32(np.nan), np.inf, np.nan


# -------------------------------------------------------------------- exp
@njit(**_FLAGS)
def _pow2_f32(k):
    """2.0**k for -126 <= k <= 127: write k + 127 into the exponent field."""
    return np.int32((k + 127) << 23).view(np.float32)


@njit(**_FLAGS)
def _pow2_f64(k):
    """2.0**k for -1022 <= k <= 1023."""
    return np.int64((k + 1023) << 52).view(np.float64)


@njit(**_FLAGS)
def exp_f32(x):
    # 1. Clamp: out-of-range inputs still give inf / 0 below, and the integer
    #    k stays small. (NaN fails `x < HI` and becomes HI; fixed at the end.)
    xc = x if x < EXP32_HI else EXP32_HI
    xc = xc if xc > EXP32_LO else EXP32_LO
    # 2. k = nearest integer to x/ln2, then r = x - k*ln2 (Cody-Waite, 2 steps).
    kf = (xc * LOG2E32 + ROUND32) - ROUND32
    r = (xc - kf * LN2HI32) - kf * LN2LO32
    # 3. exp(r) = 1 + r + r^2 * P(r)  (Horner's rule).
    p = ZERO
    for c in EXP32_P:
        p = p * r + c
    p = (p * (r * r) + r) + ONE
    # 4. Multiply by 2^k in two halves (k = k1 + k2): each half is a normal
    #    float, so p*2^k over/underflows gracefully (inf, subnormal, 0).
    k = np.int32(kf)
    k1 = k >> 1
    y = (p * _pow2_f32(k1)) * _pow2_f32(k - k1)
    return y if x == x else x          # NaN in -> NaN out


@njit(**_FLAGS)
def exp_f64(x):
    # Same four steps as exp_f32, in float64.
    xc = x if x < EXP64_HI else EXP64_HI
    xc = xc if xc > EXP64_LO else EXP64_LO
    kf = (xc * LOG2E64 + ROUND64) - ROUND64
    r = (xc - kf * LN2HI64) - kf * LN2LO64
    p = 0.0
    for c in EXP64_P:
        p = p * r + c
    p = (p * (r * r) + r) + 1.0
    k = np.int64(kf)
    k1 = k >> 1
    y = (p * _pow2_f64(k1)) * _pow2_f64(k - k1)
    return y if x == x else x


# -------------------------------------------------------------- log, log1p
@njit(**_FLAGS)
def _log_core_f32(u, k0, corr):
    """log(u) + k0*ln2 + corr, for finite normal u > 0 and a tiny corr."""
    # 1. Split u = 2^k * m with m in [sqrt(2)/2, sqrt(2)) using the bits:
    #    adding (bits(1) - bits(sqrt(2)/2)) carries into the exponent field
    #    exactly when u's mantissa is >= sqrt(2)'s.
    #    (np.int32(...) keeps the integer work in 32-bit vector lanes.)
    ix = np.int32(np.float32(u).view(np.int32) + (0x3F800000 - 0x3F3504F3))
    k = (ix >> 23) - 127 + k0
    m = np.int32((ix & 0x007FFFFF) + 0x3F3504F3).view(np.float32)
    # 2. log(m) = f - f^2/2 + s*(f^2/2 + R(s^2)), f = m - 1, s = f/(2+f).
    f = m - ONE
    s = f / (TWO + f)
    z = s * s
    R = ZERO
    for c_i in LG32:
        R = R * z + c_i
    R = R * z
    hfsq = HALF * f * f
    # 3. Add k*ln2 in two pieces, smallest terms first.
    dk = np.float32(k)
    return ((s * (hfsq + R) + (dk * LN2LO_LOG32 + corr)) - hfsq + f) + dk * LN2HI_LOG32


@njit(**_FLAGS)
def _log_core_f64(u, k0, corr):
    ix = np.float64(u).view(np.int64) + (0x3FF0000000000000 - 0x3FE6A09E667F3BCD)
    k = (ix >> 52) - 1023 + k0
    m = np.int64((ix & 0x000FFFFFFFFFFFFF) + 0x3FE6A09E667F3BCD).view(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    R = 0.0
    for c_i in LG64:
        R = R * z + c_i
    R = R * z
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    return ((s * (hfsq + R) + (dk * LN2LO64 + corr)) - hfsq + f) + dk * LN2HI64


@njit(**_FLAGS)
def log_f32(x):
    # Subnormal x: scale by 2^25 so the bit tricks see a normal number.
    sub = x < TINY32
    y = _log_core_f32(x * f32(2.0**25) if sub else x, -25 if sub else 0, ZERO)
    # Special values, as selects: log(0) = -inf, log(<0) = log(NaN) = NaN, log(inf) = inf.
    y = y if x > ZERO else (-INF32 if x == ZERO else NAN32)
    return x if x == INF32 else y


@njit(**_FLAGS)
def log_f64(x):
    sub = x < TINY64
    y = _log_core_f64(x * 2.0**54 if sub else x, -54 if sub else 0, 0.0)
    y = y if x > 0.0 else (-INF64 if x == 0.0 else NAN64)
    return x if x == INF64 else y


@njit(**_FLAGS)
def log1p_f32(x):
    # u = 1 + x is rounded; c = (1 + x) - u is its exact rounding error
    # (Fast2Sum: subtract the larger operand first). log(1+x) ~ log(u) + c/u.
    u = ONE + x
    c = (ONE - (u - x)) if x >= ONE else (x - (u - ONE))
    y = _log_core_f32(u, 0, c / u)
    y = y if x > -ONE else (-INF32 if x == -ONE else NAN32)
    y = x if x == INF32 else y
    return x if x == ZERO else y       # keeps the sign of -0.0


@njit(**_FLAGS)
def log1p_f64(x):
    u = 1.0 + x
    c = (1.0 - (u - x)) if x >= 1.0 else (x - (u - 1.0))
    y = _log_core_f64(u, 0, c / u)
    y = y if x > -1.0 else (-INF64 if x == -1.0 else NAN64)
    y = x if x == INF64 else y
    return x if x == 0.0 else y


# ------------------------------------------------------------------ expm1
# expm1(x) = e^x - 1 without the cancellation of computing e^x - 1 near x = 0
# (Kahan's trick, Higham, "Accuracy and Stability of Numerical Algorithms",
# 2nd ed., section 1.14.1): with u = exp(x) rounded, (u - 1) * x / log(u) is
# accurate, because the rounding error of u cancels between u - 1 and log(u)
# (the product is formed as (u - 1) * (x / log(u)), so it cannot overflow).
# Where u rounds to 1 the answer is x itself; where u - 1 rounds to -1 it is -1.
@njit(**_GLUE)   # glue around two leaves, like softplus_sigmoid_f32
def expm1_f32(x):
    u = exp_f32(x)
    um1 = u - ONE
    y = um1 * (x / log_f32(u))
    y = x if um1 == ZERO else y
    y = -ONE if um1 == -ONE else y
    return u if u == INF32 else y


@njit(**_GLUE)
def expm1_f64(x):
    u = exp_f64(x)
    um1 = u - 1.0
    y = um1 * (x / log_f64(u))
    y = x if um1 == 0.0 else y
    y = -1.0 if um1 == -1.0 else y
    return u if u == INF64 else y


# ------------------------------------------------------ softplus, sigmoid
# softplus(x) = max(x, 0) + log1p(e), sigmoid(x) = 1/(1+e) if x >= 0 else e/(1+e)
# with e = exp(-|x|) in (0, 1], which never overflows. log1p(e) reuses the
# reciprocal r = 1/(1+e) of the sigmoid, so the pair costs one division less.
@njit(**_FLAGS)
def log1p_small_f32(e, r):
    """log1p(e) for 0 <= e <= 1, given r = 1/(1+e) (the softplus tail)."""
    u = ONE + e
    y = _log_core_f32(u, 0, (e - (u - ONE)) * r)   # Fast2Sum error of 1 + e, / u
    return y if e == e else e


@njit(**_FLAGS)
def log1p_small_f64(e, r):
    u = 1.0 + e
    y = _log_core_f64(u, 0, (e - (u - 1.0)) * r)
    return y if e == e else e


@njit(**_GLUE)
def softplus_sigmoid_f32(x):
    e = exp_f32(-abs(x))
    r = ONE / (ONE + e)
    softplus = (x if x > ZERO else ZERO) + log1p_small_f32(e, r)
    return softplus, (r if x >= ZERO else e * r)


@njit(**_GLUE)
def softplus_sigmoid_f64(x):
    e = exp_f64(-abs(x))
    r = 1.0 / (1.0 + e)
    softplus = (x if x > 0.0 else 0.0) + log1p_small_f64(e, r)
    return softplus, (r if x >= 0.0 else e * r)


# ------------------------------------- generic versions: pick by dtype
# isinstance() on a Numba type is decided at compile time, so each of these
# compiles to a direct call of the float32 or the float64 version.
@njit(**_GLUE)
def exp(x):
    return exp_f32(x) if isinstance(x, np.float32) else exp_f64(x)


@njit(**_GLUE)
def log(x):
    return log_f32(x) if isinstance(x, np.float32) else log_f64(x)


@njit(**_GLUE)
def expm1(x):
    return expm1_f32(x) if isinstance(x, np.float32) else expm1_f64(x)


@njit(**_GLUE)
def log1p(x):
    return log1p_f32(x) if isinstance(x, np.float32) else log1p_f64(x)


@njit(**_GLUE)
def softplus_sigmoid(x):
    """``(softplus(x), sigmoid(x))`` from one exp."""
    return softplus_sigmoid_f32(x) if isinstance(x, np.float32) else softplus_sigmoid_f64(x)


@njit(**_GLUE)
def softplus(x):   # LLVM deletes the unused sigmoid
    return softplus_sigmoid(x)[0]


@njit(**_GLUE)
def sigmoid(x):    # ... and here the unused log1p
    return softplus_sigmoid(x)[1]


# ----------------------------------------------------------- array kernels
# C-contiguous float32 or float64 arrays of any shape; each returns out. One
# loop, built once per scalar function, so that the tests (tests/test_vmath.py)
# can check every function over whole arrays, vectorised as the kernels run it.
def _array_kernel(f):
    """``kernel(x, out)``: ``out[i] = f(x[i])`` element by element; returns ``out``."""
    @njit(**_FLAGS)
    def kernel(x, out):
        xs, os = x.reshape(x.size), out.reshape(out.size)
        for i in range(xs.size):
            os[i] = f(xs[i])
        return out
    return kernel


exp_array = _array_kernel(exp)
expm1_array = _array_kernel(expm1)
log_array = _array_kernel(log)
log1p_array = _array_kernel(log1p)
softplus_array = _array_kernel(softplus)
sigmoid_array = _array_kernel(sigmoid)


@njit(**_FLAGS)
def softplus_sigmoid_array(x, softplus_out, sigmoid_out):
    """``softplus_out[i] = softplus(x[i])``, ``sigmoid_out[i] = sigmoid(x[i])``: one pass, one exp.

    The softplus activation's forward, which keeps the sigmoid (its
    derivative) for the backward. Flat, C-contiguous arrays of one dtype.
    """
    for i in range(x.size):
        softplus_out[i], sigmoid_out[i] = softplus_sigmoid(x[i])
    return softplus_out


# "reassoc" lets LLVM reorder the row sum into vector partial sums; it only
# touches this function and the inlined glue (softplus_sigmoid_f32), never the
# exp/log leaves, which keep their strict flags. The row sum is in the arrays'
# dtype: a float64 accumulator for float32 data makes LLVM vectorise only 4
# lanes wide (~2x slower, measured when this kernel was written); the float32
# partial sums cost ~1e-7 relative error.
@njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"}, nogil=True)
def bernoulli_ll_rows(x, logits, p, ll):
    """One pass over (B, D) arrays of one dtype: p = sigmoid(l) and
    ll[b] = sum_j x[b,j] l[b,j] - softplus(l[b,j]), with l = logits.

    This is the Bernoulli log-likelihood's forward in the engine
    (:func:`scratchvae.engine.likelihoods.bernoulli_log_likelihood_forward`);
    ``p`` is what its backward needs. A probability below the smallest normal
    number (a logit below about -87 in float32, which a trained decoder gives
    the empty border) is stored as 0: as a subnormal number it would reach the
    backward's matrix products, slow on many x86 CPUs (docs/optim.md#subnormals);
    the gradient changes by less than 1.2e-38.
    """
    zero, tiny = p.dtype.type(0), p.dtype.type(np.finfo(p.dtype).tiny)
    for b in range(logits.shape[0]):
        acc = zero
        for j in range(logits.shape[1]):
            l = logits[b, j]
            sp, sg = softplus_sigmoid(l)
            p[b, j] = sg if sg >= tiny else zero
            acc += x[b, j] * l - sp
        ll[b] = acc
    return ll


# Same flags as bernoulli_ll_rows, and the same float32-or-float64 row sum.
@njit(cache=True, error_model="numpy", fastmath={"contract", "reassoc"}, nogil=True)
def bernoulli_ll_repeated(x, n_samples, products, bias, ll):
    """ll[i] = sum_j x[i // S, j] l_ij - softplus(l_ij), l_ij = products[i, j] + bias[j].

    For the importance-weighted bound: ``products`` (B S, D) is the decoder
    head's h @ W and ``bias`` (D,) its b, so the logits are never written out.
    Row i is sample i % S of example i // S: each of x's rows (B, D) is read
    in place S times, instead of being copied S times by ``np.repeat``.
    All arrays in one dtype; ``ll`` (B S,).
    """
    for i in range(products.shape[0]):
        # x's row for this sample, read in place
        row = x[i // n_samples]
        acc = products.dtype.type(0)
        for j in range(products.shape[1]):
            l = products[i, j] + bias[j]
            acc += row[j] * l - softplus(l)
        ll[i] = acc
    return ll
