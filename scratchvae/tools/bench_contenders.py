"""The two contenders of ``scratchvae bench`` that run in NumPy: scratchvae itself, and its floor.

* **scratchvae**: the real training loop, :func:`scratchvae.tools.train.fit`
  for one epoch (:func:`scratchvae_contender`);
* **floor**: only the 11 matrix products one step needs (:data:`FLOOR_PRODUCTS`),
  in NumPy, on preallocated float32 arrays (:func:`floor_contender`).

Both time the model :data:`STANDARD`. The third contender, PyTorch, is in
:mod:`scratchvae.tools.bench_torch`; :func:`scratchvae.tools.bench.run` times
the three side by side.
"""

import time

import numpy as np

from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.vae import VAE
from scratchvae.tools.run_commands import engine_ops
from scratchvae.tools.train import fit

__all__ = ["FLOOR_PRODUCTS", "STANDARD", "floor_contender", "floor_products", "scratchvae_contender"]

# The model of `scratchvae train`'s defaults, and of PyTorch's VAE example.
STANDARD = {"input_dim": 784, "hidden": 400, "latent_dim": 20, "batch_size": 128, "lr": 1e-3}

# The matrix products of one training step, as (output, left, right) with
# "a.T" for a transposed operand, in the order the step runs them. Forward:
# four layers. Backward: each layer's dW = input.T @ dout and, except the
# first (x is data), its dinput = dout @ W.T. Four plus seven: eleven.
FLOOR_PRODUCTS = (
    ("h1", "x", "W1"),  # encoder hidden (B, D) @ (D, H)
    ("stats", "h1", "W2"),  # [mu | log_var] (B, H) @ (H, 2 D_z)
    ("h2", "z", "W3"),  # decoder hidden (B, D_z) @ (D_z, H)
    ("logits", "h2", "W4"),  # (B, H) @ (H, D)
    ("dW4", "h2.T", "dlogits"),  # (H, B) @ (B, D)
    ("dh2", "dlogits", "W4.T"),  # (B, D) @ (D, H)
    ("dW3", "z.T", "dh2"),  # (D_z, B) @ (B, H)
    ("dz", "dh2", "W3.T"),  # (B, H) @ (H, D_z)
    ("dW2", "h1.T", "dstats"),  # (H, B) @ (B, 2 D_z)
    ("dh1", "dstats", "W2.T"),  # (B, 2 D_z) @ (2 D_z, H)
    ("dW1", "x.T", "dh1"),  # (D, B) @ (B, H)
)


# --- the contenders ------------------------------------------------------------
#
# Each is built once and returns ``epoch(start, stop) -> seconds``: one training
# epoch over images[start:stop], timed. The model keeps training from call to call.


def _scratchvae_epoch(model, optimizer, images, rng):
    """Seconds of one epoch of :func:`scratchvae.tools.train.fit` over ``images``.

    ``fit`` times its epoch loop itself (the record's ``seconds``), around
    exactly the steps a training run takes: minibatch order, dynamic
    binarisation, eps, forward and backward, the optimiser step.
    The argument checks before the loop are outside that time.
    """
    history = fit(model, images, epochs=1, batch_size=STANDARD["batch_size"],
                  optimizer=optimizer, rng=rng, progress=False, log=lambda line: None)
    return history.records[0]["seconds"]


def _standard_model(seed):
    """The 784-400-20 VAE in float32 and its Adam optimiser, the engine's, as in ``scratchvae train``."""
    model = VAE(STANDARD["input_dim"], hidden=(STANDARD["hidden"],),
                latent_dim=STANDARD["latent_dim"], seed=seed, dtype=np.float32, ops=engine_ops())
    return model, make_optimizer("adam", model, STANDARD["lr"])


def scratchvae_contender(images, seed=0):
    """``epoch(start, stop) -> seconds``: scratchvae's training loop over ``images[start:stop]``.

    Parameters
    ----------
    images : ndarray, shape (N, 784), float32
        Grey levels in [0, 1].
    seed : int
        Seeds the weights and the run's generator.

    Returns
    -------
    callable

    Examples
    --------
    >>> import numpy as np
    >>> epoch = scratchvae_contender(np.random.default_rng(0).random((256, 784), dtype=np.float32))
    >>> epoch(0, 128) > 0
    True
    """
    model, optimizer = _standard_model(seed)
    rng = np.random.default_rng(seed)
    return lambda start, stop: _scratchvae_epoch(model, optimizer, images[start:stop], rng)


def floor_products(rows, rng, input_dim=784, hidden=400, latent_dim=20):
    """The :data:`FLOOR_PRODUCTS` of one step as ``(left, right, out)`` arrays.

    Random float32 arrays with the shapes and memory layout of the real step:
    a transposed operand is a ``.T`` view, as in ``x.T @ dout``.

    Parameters
    ----------
    rows : int
        Examples in the minibatch (B).
    rng : numpy.random.Generator
    input_dim, hidden, latent_dim : int
        D, H and D_z.

    Returns
    -------
    list of (ndarray, ndarray, ndarray)
        ``np.matmul(left, right, out=out)`` computes one product.

    Examples
    --------
    >>> import numpy as np
    >>> products = floor_products(128, np.random.default_rng(0))
    >>> len(products), products[0][0].shape, products[0][1].shape
    (11, (128, 784), (784, 400))
    """
    B, D, H, Z = rows, input_dim, hidden, latent_dim
    # The inputs no product computes: data, weights, noise-driven z, and the
    # gradients the element-wise passes hand to the two heads.
    shapes = {"x": (B, D), "W1": (D, H), "W2": (H, 2 * Z), "z": (B, Z), "W3": (Z, H),
              "W4": (H, D), "dlogits": (B, D), "dstats": (B, 2 * Z)}
    arrays = {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}

    def operand(name):
        return arrays[name[:-2]].T if name.endswith(".T") else arrays[name]

    products = []
    for out, left, right in FLOOR_PRODUCTS:
        a, b = operand(left), operand(right)
        # Each output is written here and read by the products after it.
        arrays[out] = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
        products.append((a, b, arrays[out]))
    return products


def floor_contender(seed=0):
    """``epoch(start, stop) -> seconds``: the matrix products of an epoch over ``stop - start`` images, alone.

    The same minibatch sizes as a training epoch (the last one smaller when
    the batch size does not divide n), :func:`floor_products` for each step,
    nothing else.

    Examples
    --------
    >>> epoch = floor_contender()
    >>> epoch(0, 300) > 0
    True
    """
    rng = np.random.default_rng(seed)
    B = STANDARD["batch_size"]
    shape = {k: STANDARD[k] for k in ("input_dim", "hidden", "latent_dim")}
    full = floor_products(B, rng, **shape)
    last = {}  # rows -> products, for the smaller last minibatch

    def epoch(start, stop):
        n = stop - start
        steps = [full] * (n // B)
        if n % B:
            steps.append(last.setdefault(n % B, floor_products(n % B, rng, **shape)))
        start = time.perf_counter()
        for products in steps:
            for a, b, out in products:
                np.matmul(a, b, out=out)
        return time.perf_counter() - start

    return epoch
