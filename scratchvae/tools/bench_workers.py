"""Would two workers pay? A training epoch on one Python thread against two, each on half a minibatch.

Not a test (timings do not belong in the suite): the measurement behind
docs/performance.md#two-workers. The engine runs a training step on one
Python thread; NumPy's BLAS spreads each matrix product over both cores, but
every element-wise pass (the Numba kernels, Adam) runs on one core. The
alternative measured here: two threads, each running the forward and backward
of half the minibatch with BLAS limited to one thread, then the optimiser
update split by halves of every parameter array. Matrix products and the
kernels release the GIL, so both cores would compute the element-wise passes
too, unless the Python between the ops, which holds the GIL, eats the gain.

Both contenders draw the same binarisation and noise from the same generator,
so they train the same model up to float32 summation order
(``tests/test_bench_workers.py`` checks three steps). In one process, epochs
alternate between them; medians over ``--rounds``. Needs threadpoolctl
(``pip install threadpoolctl``, or ``pip install -e ".[compare]"``)::

    SCRATCHVAE_DATA=/path/to/data python -m scratchvae.tools.bench_workers
"""

import argparse
import contextlib
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from scratchvae.engine.optim import view_1d
from scratchvae.lecture.vae import VAE
from scratchvae.tools.run_commands import engine_ops


def twin_of(model):
    """A second VAE like ``model`` whose parameters *are* ``model``'s arrays (shared, not copied).

    It has its own gradient buffers and its own caches, so it can run a
    forward and backward on other rows while ``model`` runs its own.
    """
    twin = VAE(**{**model.config, "dtype": model.dtype}, ops=model.ops)
    for name, module in model.modules.items():
        mine, theirs = module, twin.modules[name]
        for leaf, twin_leaf in zip(getattr(mine, "modules", [mine]), getattr(theirs, "modules", [theirs])):
            twin_leaf.params.update(leaf.params)
        if hasattr(theirs, "modules"):  # a Sequential's dict names its layers' arrays
            layers = [m for m in theirs.modules if m.params]
            for key in theirs.params:
                index, param = key.split(".", 1)
                theirs.params[key] = layers[int(index)].params[param]
    return twin


class TwoWorkers:
    """Training steps with the minibatch split between the calling thread and one more.

    ``optimizer`` must be the engine's (:func:`scratchvae.lecture.optim.make_optimizer`
    with the Numba engine): its kernel is called on halves of each parameter.
    """

    def __init__(self, model, optimizer):
        self.model, self.twin, self.optimizer = model, twin_of(model), optimizer
        self.pool = ThreadPoolExecutor(1)
        twin_grads = self.twin.grads
        self.halves = ([], [])  # per worker: (dtype, (param, g, *state), g of the twin) per array
        for k, (name, param, grad) in enumerate(optimizer.params):
            arrays = [param, grad, *(optimizer.state[s][k] for s in optimizer.state_names)]
            arrays = [view_1d(a) for a in arrays]
            other = view_1d(twin_grads[name])
            n = param.size // 2
            for worker, part in enumerate((slice(0, n), slice(n, None))):
                self.halves[worker].append((param.dtype.type, [a[part] for a in arrays], other[part]))

    def half_step(self, model, x, eps, weight):
        """Forward and backward on some rows; gradients scaled by their share of the minibatch."""
        loss, cache = model.negative_elbo_forward(x, eps)
        model.negative_elbo_backward(weight, cache, accumulate=False)
        return loss

    def update(self, worker, typed):
        """Sum the two workers' gradients and update one half of every parameter array.

        ``typed`` maps each dtype to the kernel's scalars cast to it.
        """
        for dtype, (param, grad, *state), other in self.halves[worker]:
            np.add(grad, other, out=grad)
            self.optimizer.kernel(param, grad, *state, *typed[dtype])

    def step(self, images, rows, rng, clock=None):
        """:func:`scratchvae.lecture.training.train_step` (dynamic binarisation), on two threads.

        ``clock``, if given, is a :class:`PhaseClock` that adds up the time of each phase.
        """
        clock = clock or PhaseClock()
        model = self.model
        x, eps = draw(model, images, rows, rng)  # (B, D), (B, D_z)
        clock.lap("data")
        B, h = len(x), len(x) // 2
        other = self.pool.submit(self.half_step, self.twin, x[h:], eps[h:], (B - h) / B)
        loss = self.half_step(model, x[:h], eps[:h], h / B) * h
        loss = (loss + other.result() * (B - h)) / B
        clock.lap("forward and backward")
        self.optimizer.t += 1
        typed = self.optimizer.typed_scalars()
        other = self.pool.submit(self.update, 1, typed)
        self.update(0, typed)
        other.result()
        clock.lap("update")
        return loss


def draw(model, images, rows, rng):
    """The minibatch's binarisation and noise: the same draws, in the same order, as train_step."""
    x = model.ops.binarize(images, rng, rows)  # (B, D)
    eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)  # (B, D_z)
    return x, eps


def one_worker_step(model, optimizer, images, rows, rng, clock):
    """:func:`scratchvae.lecture.training.train_step`'s steps, timed phase by phase."""
    x, eps = draw(model, images, rows, rng)  # (B, D), (B, D_z)
    clock.lap("data")
    loss, cache = model.negative_elbo_forward(x, eps)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    clock.lap("forward and backward")
    optimizer.step()
    clock.lap("update")
    return loss


class PhaseClock:
    """Seconds spent in each named phase, added up over many steps."""

    def __init__(self):
        self.seconds, self.last = {}, time.perf_counter()

    def lap(self, phase):
        """Charge the time since the last lap to ``phase``."""
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now


def products(model, rows):
    """The 11 matrix products of a training step on ``rows`` rows, with arrays made once."""
    rng = np.random.default_rng(0)
    (W1, W2), (W3, W4) = [[m.params["W"] for m in (mlp.modules[0], head)]
                          for mlp, head in ((model.encoder, model.encoder_head),
                                            (model.decoder, model.decoder_head))]
    x, h, stats, z, out = (rng.random((rows, n), dtype=np.float32)
                           for n in (W1.shape[0], W1.shape[1], W2.shape[1], W3.shape[0], W4.shape[1]))

    def run():
        x @ W1, h @ W2, z @ W3, h @ W4                        # forward
        out @ W4.T, h.T @ out, h.T @ stats, stats @ W2.T      # backward: decoder head, encoder head
        z.T @ h, h @ W3.T, x.T @ h                            # decoder layer, encoder layer (no dx)
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="epochs per contender (default 3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds: expected a positive number, got {args.rounds}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        parser.exit(2, "bench_workers needs threadpoolctl: pip install threadpoolctl\n")

    from scratchvae.tools import data

    try:
        images = data.load_mnist(download=False).x_train
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"bench_workers: {error}\n")
    steps, clocks = contenders(images)
    one_thread_blas = {"two workers", "products, 2 threads x 64 rows"}
    order = np.random.default_rng(1).permutation(len(images))

    def epoch(step, n):
        start = time.perf_counter()
        for first in range(0, n, 128):
            step(order[first : first + 128])
        return time.perf_counter() - start

    times = {name: [] for name in steps}
    for round_ in range(args.rounds + 1):  # round 0 compiles and warms up, on 1280 images
        n = 1280 if round_ == 0 else len(images)
        for clock in clocks.values():
            clock.seconds.clear()
        for name, step in steps.items():
            if name in clocks:
                clocks[name].last = time.perf_counter()
            blas = threadpool_limits(1, user_api="blas") if name in one_thread_blas else contextlib.nullcontext()
            with blas:
                seconds = epoch(step, n)
            if round_:
                times[name].append(seconds)
    print(f"{'contender':30s} {'median s':>9s}   every round (s)")
    for name, t in times.items():
        print(f"{name:30s} {statistics.median(t):9.3f}   {' '.join(f'{s:.3f}' for s in t)}")
    for a, b in (("one worker", "two workers"),
                 ("products, BLAS on 2 threads", "products, 2 threads x 64 rows")):
        ratio = statistics.median(y / x for x, y in zip(times[a], times[b]))
        print(f"{b} / {a}, median over the rounds: {ratio:.3f}")
    print("last round, by phase (s): " + "; ".join(
        f"{name}: " + ", ".join(f"{phase} {s:.3f}" for phase, s in clock.seconds.items())
        for name, clock in clocks.items()))

def contenders(images):
    """``{name: step(rows)}`` for the four contenders, and the phase clocks of the two trainers.

    Both trainers start from the same model and generator; the product-only
    contenders time the 11 matrix products of a step of 128 rows, once with
    BLAS's threads and once as two threads of 64 rows.
    """
    from scratchvae.lecture.optim import make_optimizer

    def trainer(name):
        model = VAE(784, seed=0, ops=engine_ops())
        optimizer = make_optimizer("adam", model, 1e-3)
        clock, rng = PhaseClock(), np.random.default_rng(0)
        if name == "one worker":
            return (lambda rows: one_worker_step(model, optimizer, images, rows, rng, clock)), clock
        workers = TwoWorkers(model, optimizer)
        return (lambda rows: workers.step(images, rows, rng, clock)), clock

    steps, clocks = {}, {}
    for name in ("one worker", "two workers"):
        steps[name], clocks[name] = trainer(name)
    model = VAE(784, seed=0, ops=engine_ops())
    whole, first_half, second_half = products(model, 128), products(model, 64), products(model, 64)
    pool = ThreadPoolExecutor(1)

    def both_halves(rows):
        other = pool.submit(second_half)
        first_half()
        other.result()

    steps["products, BLAS on 2 threads"] = lambda rows: whole()
    steps["products, 2 threads x 64 rows"] = both_halves
    return steps, clocks


if __name__ == "__main__":
    main()
