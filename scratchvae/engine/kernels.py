"""Numba kernels for the element-wise hot loops.

Each kernel is first an ordinary Python function of loops, easy to read and to
step through; ``jit`` then compiles that same function with Numba. The plain
Python stays reachable as ``kernel.py_func``, and with ``NUMBA_DISABLE_JIT=1``
everything runs uncompiled (slowly), which is how the test-suite checks that
the compiled and the readable versions are one and the same code.

Every kernel has a one-line NumPy reference, ``<kernel>_reference``, that says
what it computes; ``tests/test_kernels.py`` checks that the two agree, in
float32 and float64.

What is *not* here: exp, log and their kin. The llvmlite wheels come without a
vector math library, so a Numba loop that calls ``np.exp`` or ``np.log1p``
makes one scalar library call per element and is not vectorised (measured on
the 2-core development machine, float32, a 128 x 784 array, 469 calls = one
MNIST epoch: ``np.exp`` 0.022 s, Numba's ``exp`` 0.11 s; ``np.log1p`` 0.020 s,
Numba's ``log1p`` 0.50 s). :mod:`scratchvae.engine.vmath` writes them in plain
arithmetic that vectorises; the kernels below call ``vmath.exp`` and
``vmath.expm1``, and the loops that need softplus or log1p live there.

Conventions: element-wise kernels take flat (1-D, contiguous) arrays; kernels
that reduce over a row take (B, D) arrays, and so does ``bernoulli_from_bits``,
which reads a minibatch's rows in place through their indices. Outputs are passed in, so callers
can reuse buffers from step to step, and may alias inputs where noted.
"""

import numba
import numpy as np

from scratchvae.engine import vmath

# error_model="numpy": division follows IEEE rules instead of raising, which
# keeps the loops free of Python-style zero checks (and vectorisable).
# nogil=True: a kernel lets other Python threads run while it works, as NumPy's
# ufuncs and matrix products do.
jit = numba.njit(cache=True, error_model="numpy", nogil=True)


def flush_subnormal(x):
    """``x`` with every subnormal value (0 < |x| < the smallest normal number) set to 0.

    The references' version of what several kernels do when they store a
    result: arithmetic on subnormal numbers is many times slower on many x86
    CPUs, and the engine keeps them out of its state and of the matrix
    products (docs/optim.md#subnormals).
    """
    return np.where(np.abs(x) >= np.finfo(x.dtype).tiny, x, 0).astype(x.dtype)


# --- Activations (docs/layers.md) -----------------------------------------


@jit
def leaky_relu(x, slope, out):
    """out = x where x > 0, slope * x elsewhere (slope = 0 is ReLU). ``out`` may be ``x``."""
    for i in range(x.size):
        out[i] = x[i] if x[i] > 0 else slope * x[i]


def leaky_relu_reference(x, slope):
    return np.where(x > 0, x, slope * x)


@jit
def leaky_relu_grad(dout, x, slope, dx):
    """dx = dout * (1 if x > 0 else slope). ``x`` may be the output (same sign)."""
    for i in range(x.size):
        dx[i] = dout[i] if x[i] > 0 else slope * dout[i]


def leaky_relu_grad_reference(dout, x, slope):
    return dout * np.where(x > 0, 1.0, slope)


@jit
def bias_leaky_relu(a, b, slope, out):
    """out[n, k] = leaky_relu(a[n, k] + b[k]): a dense layer's bias and activation in one pass.

    ``a`` is the product x @ W (B, D); ``out`` may be ``a``.
    """
    for n in range(a.shape[0]):
        for k in range(a.shape[1]):
            pre = a[n, k] + b[k]
            out[n, k] = pre if pre > 0 else slope * pre


def bias_leaky_relu_reference(a, b, slope):
    return leaky_relu_reference(a + b, slope)


@jit
def leaky_relu_grad_bias(dout, y, slope, dpre, db):
    """dpre = dout * leaky_relu'(pre) (B, D) and db[k] = sum_n dpre[n, k], in one pass.

    ``y`` is the forward's output, which has the sign of the pre-activation.
    """
    db[:] = 0
    for n in range(dout.shape[0]):
        for k in range(dout.shape[1]):
            dpre[n, k] = dout[n, k] if y[n, k] > 0 else slope * dout[n, k]
            db[k] += dpre[n, k]


def leaky_relu_grad_bias_reference(dout, y, slope):
    dpre = leaky_relu_grad_reference(dout, y, slope)
    return dpre, dpre.sum(axis=0)


@jit
def tanh_grad(dout, y, dx):
    """dx = dout * (1 - y^2), with y = tanh(x) from the forward pass."""
    for i in range(y.size):
        dx[i] = dout[i] * (1 - y[i] * y[i])


def tanh_grad_reference(dout, y):
    return dout * (1 - y**2)


@jit
def sigmoid_grad(dout, y, dx):
    """dx = dout * y * (1 - y), with y = sigmoid(x) from the forward pass."""
    for i in range(y.size):
        dx[i] = dout[i] * y[i] * (1 - y[i])


def sigmoid_grad_reference(dout, y):
    return dout * y * (1 - y)


@jit
def multiply(a, b, out):
    """out = a * b (a chain-rule step: upstream gradient times local slope)."""
    for i in range(a.size):
        out[i] = a[i] * b[i]


def multiply_reference(a, b):
    return a * b


# --- Bernoulli log-likelihood (docs/likelihoods.md) -----------------------

@jit
def bernoulli_grad(dll, x, p, dlogits):
    """dlogits[b, j] = dll[b] * (x[b, j] - p[b, j]).  (The forward is ``vmath.bernoulli_ll_rows``.)

    d/dl [x l - softplus(l)] = x - sigmoid(l): the residual between the data
    and the predicted probability. Shapes: dll (B,); the rest (B, D).
    """
    for b in range(x.shape[0]):
        for j in range(x.shape[1]):
            dlogits[b, j] = dll[b] * (x[b, j] - p[b, j])


def bernoulli_grad_reference(dll, x, p):
    return dll[:, None] * (x - p)


# --- Dynamic binarisation (docs/data.md) ----------------------------------


@jit
def bernoulli_from_bits(x, rows, bits, out):
    """out[b, j] = 1 with probability x[rows[b], j] (else 0), from raw random bits.

    Reads the rows ``rows`` of ``x`` in place, so a minibatch is binarised
    straight from the training set without copying its rows out first
    (``rows`` may repeat). Each 64-bit word of ``bits`` holds four independent
    16-bit integers k in [0, 2^16) (:func:`sixteen_bit_integers`), and
    u = (k + 1/2) / 2^16 is uniform on a grid of 2^16 points inside (0, 1);
    out = (u < x). So P(out = 1) = ceil(2^16 x - 1/2) / 2^16 (2^16 x rounded,
    halves down), within 2^-17 of x, and exactly 0 and 1 at x = 0 and x = 1.
    Drawing 16 bits per pixel this way costs a third of a float draw
    (rng.random). Element i = b D + j of ``out`` (its number in C order) uses
    the i-th 16-bit integer.
    Shapes: x (N, D); rows (B,) indices in [0, N), not checked here;
    bits (ceil(B D / 4),) uint64; out (B, D).
    """
    # The words read as 16-bit integers, low half first, which on a
    # little-endian machine is sixteen_bit_integers(bits) (tests/test_kernels.py
    # checks the kernel against its reference, which uses it).
    # A view, not a copy, and the loop over it vectorises in float32, which
    # extracting each k with a shift and a mask did not. Measured per MNIST
    # epoch (469 x 128 rows): 0.006 s on rows in cache against 0.057 s with
    # shifts; 0.028 s reading the rows from the 60 000 training images,
    # where the memory traffic dominates.
    k = bits.view(np.uint16)  # (4 ceil(B D / 4),)
    n_cols = x.shape[1]
    for b in range(rows.size):
        r = rows[b]
        for j in range(n_cols):
            i = b * n_cols + j  # out[b, j]'s number in C order
            # u < x  <=>  k + 1/2 < 2^16 x, exact in float32 (both sides are);
            # without the cast, Numba adds uint16 + float32 in float64, at half speed
            out[b, j] = 1 if np.float32(k[i]) + np.float32(0.5) < x[r, j] * np.float32(65536) else 0


def random_bits(rng, n):
    """The raw random words for ``n`` pixels of :func:`bernoulli_from_bits`: 16 bits a pixel.

    ceil(n / 4) 64-bit words straight from ``rng``'s bit generator, (ceil(n / 4),) uint64.
    """
    return rng.bit_generator.random_raw((n + 3) // 4)


def sixteen_bit_integers(bits, n):
    """The first ``n`` 16-bit integers k in [0, 2^16) held by the 64-bit words ``bits``.

    Four from each word, low bits first: k[i] = (bits[i >> 2] >> 16 (i & 3)) & 0xFFFF,
    a (n,) int64 array. The one statement of which random bits pixel i of
    :func:`bernoulli_from_bits` uses; the kernel reads the same integers
    through a uint16 view of ``bits``.
    """
    shifts = np.array([0, 16, 32, 48], dtype=np.uint64)
    k = (bits[:, None] >> shifts) & np.uint64(0xFFFF)  # (len(bits), 4)
    return k.reshape(-1)[:n].astype(np.int64)


def bernoulli_from_bits_reference(x, rows, bits):
    picked = x[rows]  # (B, D)
    k = sixteen_bit_integers(bits, picked.size).reshape(picked.shape)  # (B, D)
    # u = (k + 1/2) / 2^16, uniform on a grid of 2^16 points inside (0, 1); out = (u < x)
    return ((k + 0.5) / 65536 < picked).astype(x.dtype)


# --- Gaussian latent layer (docs/gaussian.md) -----------------------------


@jit
def reparameterize(mu, log_var, eps, z, sigma):
    """sigma = exp(log_var / 2);  z = mu + sigma * eps.  Flat arrays, (B * D_z,)."""
    half = log_var.dtype.type(0.5)  # a Python 0.5 would make float32 work in float64
    for i in range(mu.size):
        sigma[i] = vmath.exp(half * log_var[i])
        z[i] = mu[i] + sigma[i] * eps[i]


def reparameterize_reference(mu, log_var, eps):
    sigma = np.exp(0.5 * log_var)
    return mu + sigma * eps, sigma


@jit
def reparameterize_grad(dz, eps, sigma, dmu, dlog_var):
    """dmu = dz;  dlog_var = dz * eps * sigma / 2  (since d sigma / d log_var = sigma / 2)."""
    for i in range(dz.size):
        dmu[i] = dz[i]
        dlog_var[i] = 0.5 * dz[i] * eps[i] * sigma[i]


def reparameterize_grad_reference(dz, eps, sigma):
    return dz.copy(), 0.5 * dz * eps * sigma


# fastmath "reassoc" (and nothing else: NaN and inf keep their IEEE meaning)
# lets LLVM add a row's terms in any order, hence in vector lanes; a strict
# left-to-right sum is one long chain of dependent additions, not vectorised.
jit_reassoc = numba.njit(cache=True, error_model="numpy", fastmath={"reassoc"}, nogil=True)


@jit_reassoc
def kl_standard_normal(mu, log_var, kl):
    """kl[b] = 1/2 sum_j (exp(log_var) - 1 - log_var + mu^2).  Shapes (B, D_z) -> (B,).

    exp(v) - 1 - v is computed as expm1(v) - v: near v = 0, exp(v) rounds to
    within 1e-16 of 1 and exp(v) - 1 - v (true value v^2 / 2) can come out
    negative; expm1(v) >= v holds in floating point too, so each term is >= 0.
    The row sum is in the arrays' dtype, in any order (a few D_z terms).
    """
    half = mu.dtype.type(0.5)  # a Python 0.5 would make float32 work in float64
    for b in range(mu.shape[0]):
        total = mu.dtype.type(0)
        for j in range(mu.shape[1]):
            total += vmath.expm1(log_var[b, j]) - log_var[b, j] + mu[b, j] * mu[b, j]
        kl[b] = half * total


def kl_standard_normal_reference(mu, log_var):
    return 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1)


@jit
def kl_standard_normal_grad(dkl, mu, log_var, dmu, dlog_var):
    """dmu = dkl * mu;  dlog_var = dkl * expm1(log_var) / 2.  dkl (B,), rest (B, D_z)."""
    half = mu.dtype.type(0.5)
    for b in range(mu.shape[0]):
        for j in range(mu.shape[1]):
            dmu[b, j] = dkl[b] * mu[b, j]
            dlog_var[b, j] = half * dkl[b] * vmath.expm1(log_var[b, j])


def kl_standard_normal_grad_reference(dkl, mu, log_var):
    return dkl[:, None] * mu, 0.5 * dkl[:, None] * np.expm1(log_var)


# --- Optimiser updates (docs/optim.md) ------------------------------------
#
# One fused pass per parameter array: read param, g and the optimiser's state,
# write param and the state, allocate nothing. Arrays are flat views of the
# parameters; the caller (scratchvae.engine.optim.KernelStep.step) passes every scalar already cast
# to the arrays' dtype, because a Python float would make Numba compute a
# float32 update in float64, and it folds Adam's bias corrections into two
# per-step scalars, so no element ever calls pow.
#
# Serial loops, not numba.prange: measured in the training loop on the 2-core
# development machine (one MNIST epoch, 469 steps), the parallel Adam took
# 4.1 s and the serial one 0.78 s. NumPy's BLAS keeps its own two threads
# spinning between matrix products, and Numba's worker threads then fight
# them for the same two cores. In isolation the parallel loop was faster
# (float32, one 784 x 400 array, 500 calls, median of 7, idle machine:
# Adam 0.134 s serial vs 0.027 s parallel, SGD 0.024 vs 0.017, Adagrad
# 0.045 vs 0.047; first call compiles in 0.13 s serial, 0.35 s parallel,
# and loads from the cache in 4 ms); inside the real loop it is not.
# The serial time depends on where the four arrays sit in memory: the same
# Adam call measured 90-300 us per array as allocation offsets changed.


@jit
def sgd_update(param, g, u, lr, momentum):
    """SGD with momentum, in place: u = momentum * u + g;  param = param - lr * u.

    The velocity is stored flushed to zero once it falls below the smallest
    normal number (see :func:`adam_update`).
    """
    tiny = np.finfo(param.dtype).tiny
    for i in range(param.size):
        ui = momentum * u[i] + g[i]
        u[i] = ui if abs(ui) >= tiny else 0
        param[i] -= lr * ui


def sgd_update_reference(param, g, u, lr, momentum):
    u = momentum * u + g
    return param - lr * u, flush_subnormal(u)



@jit
def adagrad_update(param, g, s, lr, eps):
    """Adagrad, in place: s = s + g^2;  param = param - lr * g / (sqrt(s) + eps)."""
    for i in range(param.size):
        s[i] += g[i] * g[i]
        param[i] -= lr * g[i] / (np.sqrt(s[i]) + eps)


def adagrad_update_reference(param, g, s, lr, eps):
    s = s + g * g
    return param - lr * g / (np.sqrt(s) + eps), s


@jit
def adam_update(param, g, m, v, one_minus_beta1, one_minus_beta2, step_size, eps_hat):
    """Adam, in place, with the bias corrections folded into two scalars.

    m = beta1 * m + (1 - beta1) * g, computed as m + (1 - beta1) * (g - m),
    which needs only the one constant (likewise v with g^2); then
    param = param - step_size * m / (sqrt(v) + eps_hat), where
    step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t) and
    eps_hat = eps * sqrt(1 - beta2^t) make this exactly
    param - lr * m_hat / (sqrt(v_hat) + eps)  (optim (9)-(11), docs/optim.md#adam).

    m and v are stored flushed to zero once they fall below the smallest
    normal number (1.2e-38 in float32): a parameter whose gradient has been 0
    for a few hundred steps (a ReLU unit that rarely fires) has an m decaying
    geometrically through the subnormal range, and on many x86 CPUs every
    arithmetic operation on a subnormal takes a slow microcode path (measured:
    this loop 30 times slower over subnormal m). The flushed values change
    the update by less than 1e-30 (docs/optim.md#subnormals).
    """
    tiny = np.finfo(param.dtype).tiny
    for i in range(param.size):
        mi = m[i] + one_minus_beta1 * (g[i] - m[i])
        vi = v[i] + one_minus_beta2 * (g[i] * g[i] - v[i])
        m[i] = mi if abs(mi) >= tiny else 0
        v[i] = vi if vi >= tiny else 0
        param[i] -= step_size * mi / (np.sqrt(vi) + eps_hat)


def adam_update_reference(param, g, m, v, one_minus_beta1, one_minus_beta2, step_size, eps_hat):
    m = m + one_minus_beta1 * (g - m)
    v = v + one_minus_beta2 * (g * g - v)
    return param - step_size * m / (np.sqrt(v) + eps_hat), flush_subnormal(m), flush_subnormal(v)
