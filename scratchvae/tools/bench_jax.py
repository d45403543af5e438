"""The JAX twin of the benchmark's standard model: scratchvae's contender in JAX.

The same model, loss, optimiser and minibatches as the ``scratchvae`` and
``pytorch`` contenders (scratchvae/tools/bench_contenders.py,
scratchvae/tools/bench_torch.py), written as a JAX user would write it for
speed: the parameters and Adam's moments are one pytree, the training step is
``jax.value_and_grad`` of the loss plus Adam in a few lines, and a whole part
of an epoch is **one** ``jax.jit``-compiled ``jax.lax.scan`` over its
minibatches, with the dynamic binarisation and eps drawn inside the scan from
per-step keys split off a carried key. Python runs once per part, not once per
step. scratchvae/tools/bench.py times it beside the others.

JAX is optional (``pip install jax``): it is imported only inside these
functions, and without it they return None, so importing this module never
needs it.

Compiling is never timed. The scan's length is part of the compiled program,
so each distinct part length ``stop - start`` is compiled ahead of time
(``jit(...).lower(...).compile()``) the first time :func:`jax_contender`'s
epoch meets it, before its clock starts; the benchmark's 8 parts of an MNIST
epoch have two lengths (7 of 7552 images, 59 full minibatches, and a last
one of 7136: 55 full minibatches and one of 96), so two programs are
compiled, and both are kept. Nothing is padded: every contender takes the
same steps on minibatches of the same sizes.

Threads: XLA's CPU backend runs on its own thread pool, one thread per
logical CPU, fixed when the backend starts (``XLA_FLAGS`` is read then, so it
cannot be changed from inside a function once anything has used JAX). The
contender leaves it at that default; on the benchmark machine that equals the
threads of NumPy's BLAS and of the PyTorch contender.
"""

import os
import time

import numpy as np

__all__ = ["jax_contender", "jax_threads", "jax_version"]


def jax_version():
    """JAX's version string, or None when it is not installed.

    Examples
    --------
    >>> version = jax_version()
    >>> version is None or isinstance(version, str)
    True
    """
    try:
        import jax
    except ImportError:
        return None
    return jax.__version__


def jax_threads():
    """The threads XLA's CPU backend uses: one per logical CPU (see the module docstring)."""
    return os.cpu_count() or 1


def _init_params(standard, seed):
    """PyTorch's ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as float32 arrays."""
    D, H, Z = (standard[k] for k in ("input_dim", "hidden", "latent_dim"))
    rng = np.random.default_rng(seed)
    params = {}
    for name, (fan_in, fan_out) in {"enc": (D, H), "head": (H, 2 * Z), "dec": (Z, H),
                                    "out": (H, D)}.items():
        bound = 1.0 / np.sqrt(fan_in)
        params[name] = {"W": rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                        "b": rng.uniform(-bound, bound, fan_out).astype(np.float32)}
    return params


def jax_contender(images, threads, standard, seed=0):
    """``epoch(start, stop) -> seconds``: the same model in JAX, over ``images[start:stop]``; None without JAX.

    Each call shuffles the part's images, then trains on them in minibatches
    of ``standard["batch_size"]`` (the last one smaller if need be) inside one
    compiled ``lax.scan``, and returns the seconds until the new parameters
    are ready (``block_until_ready``). A new part length is compiled first,
    untimed. After each call, ``epoch.losses`` ends with that part's mean loss
    (the negative ELBO per image, in nats), ``epoch.params()`` gives the
    current parameters as NumPy arrays and ``epoch.steps()`` the minibatches
    trained on so far.

    Parameters
    ----------
    images : ndarray, shape (N, 784), float32
        Grey levels in [0, 1]; copied once to JAX's device (the CPU).
    threads : int
        Not applied: XLA's CPU thread pool is fixed when JAX starts
        (:func:`jax_threads`); accepted so that every contender is built alike.
    standard : dict
        The model and batch sizes, :data:`scratchvae.tools.bench_contenders.STANDARD`.
    seed : int

    Returns
    -------
    callable or None

    Examples
    --------
    >>> import numpy as np
    >>> sizes = {"input_dim": 784, "hidden": 400, "latent_dim": 20, "batch_size": 128, "lr": 1e-3}
    >>> epoch = jax_contender(np.zeros((256, 784), dtype=np.float32), 1, sizes)
    >>> epoch is None or epoch(0, 128) > 0
    True
    """
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    del threads  # see the docstring
    Z, B, lr = standard["latent_dim"], standard["batch_size"], standard["lr"]
    beta1, beta2, adam_eps = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults

    def loss_of(params, x, eps):
        # loss = (1/B) sum_b [ -log p(x_b | z_b) + KL(q(z | x_b) || N(0, I)) ]
        h1 = jax.nn.relu(x @ params["enc"]["W"] + params["enc"]["b"])  # (B, H)
        stats = h1 @ params["head"]["W"] + params["head"]["b"]  # (B, 2 D_z)
        mu, log_var = stats[:, :Z], stats[:, Z:]
        z = mu + jnp.exp(0.5 * log_var) * eps  # (B, D_z)
        h2 = jax.nn.relu(z @ params["dec"]["W"] + params["dec"]["b"])  # (B, H)
        logits = h2 @ params["out"]["W"] + params["out"]["b"]  # (B, D)
        reconstruction = (jax.nn.softplus(logits) - x * logits).sum(1)  # BCE with logits
        kl = -0.5 * (1 + log_var - mu**2 - jnp.exp(log_var)).sum(1)  # (B,)
        return (reconstruction + kl).mean()

    def step(state, x_gray, key):
        """One minibatch: binarise, draw eps, gradient, Adam. ``state`` = (params, m, v, t)."""
        params, m, v, t = state
        k_bin, k_eps = jax.random.split(key)
        x = (jax.random.uniform(k_bin, x_gray.shape) < x_gray).astype(jnp.float32)
        eps = jax.random.normal(k_eps, (x_gray.shape[0], Z), jnp.float32)
        loss, grads = jax.value_and_grad(loss_of)(params, x, eps)
        t = t + 1
        m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, m, grads)
        v = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, v, grads)
        bias1, bias2 = 1 - beta1**t, 1 - beta2**t  # m / bias1 and v / bias2 are unbiased
        params = jax.tree.map(lambda p, m, v: p - lr * (m / bias1) / (jnp.sqrt(v / bias2) + adam_eps),
                              params, m, v)
        return (params, m, v, t), loss

    def run_part(state, key, x_all, start, n):
        """Train on x_all[start:start + n] once, in shuffled minibatches: one scan, one compiled program."""
        key, k_perm, k_steps = jax.random.split(key, 3)
        order = start + jax.random.permutation(k_perm, n)  # (n,) image indices
        full = n // B

        def body(carry, idx):
            state, key = carry
            key, k_step = jax.random.split(key)
            state, loss = step(state, x_all[idx], k_step)
            return (state, key), loss

        (state, k_steps), losses = jax.lax.scan(body, (state, k_steps), order[:full * B].reshape(full, B))
        if n % B:  # the last, smaller minibatch: the same step on its own shapes
            state, last = step(state, x_all[order[full * B:]], k_steps)
            losses = jnp.concatenate([losses, last[None]])
        return state, key, losses.mean()

    # The state's buffers are donated: Adam updates them in place.
    compiled_run = jax.jit(run_part, static_argnums=4, donate_argnums=0)
    params = jax.tree.map(jnp.asarray, _init_params(standard, seed))
    zeros = jax.tree.map(jnp.zeros_like, params)
    carried = {"state": (params, zeros, jax.tree.map(jnp.zeros_like, params), jnp.float32(0)),
               "key": jax.random.key(seed)}
    x_all = jax.device_put(np.asarray(images, dtype=np.float32))  # (N, D), on the device once
    programs = {}  # part length -> compiled scan

    def epoch(start, stop):
        n = stop - start
        if n not in programs:  # compile, untimed, on the first part of this length
            programs[n] = compiled_run.lower(carried["state"], carried["key"], x_all,
                                             np.int32(start), n).compile()
        began = time.perf_counter()
        state, key, loss = programs[n](carried["state"], carried["key"], x_all, np.int32(start))
        jax.block_until_ready(state)
        seconds = time.perf_counter() - began
        carried["state"], carried["key"] = state, key
        epoch.losses.append(float(loss))
        return seconds

    epoch.losses = []
    epoch.params = lambda: jax.tree.map(np.asarray, carried["state"][0])
    epoch.steps = lambda: int(carried["state"][3])  # Adam's step count: minibatches trained on
    return epoch
