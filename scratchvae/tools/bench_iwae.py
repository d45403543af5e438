"""Time the importance-weighted bound at k = 5000, lecture path against engine path.

Not a test (timings do not belong in the suite): a measurement for
docs/performance.md, "Evaluating with k = 5000". In one process, in
alternating order, medians of ``--repeats``:

* floor: the decoder's two matrix products (and the ReLU) alone, for the same
  (example, sample) rows, in chunks of the engine's size;
* lecture: :func:`scratchvae.lecture.estimators.importance_weighted_bound` on
  the Numba-engine model (what ``scratchvae evaluate`` ran before the engine had its own);
* engine: :func:`scratchvae.engine.estimators.importance_weighted_bound`;

then the engine at several chunk sizes. Run::

    SCRATCHVAE_DATA=/path/to/data python -m scratchvae.tools.bench_iwae /tmp/iw/model.npz
"""

import argparse
import statistics
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("-k", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", default="1000,1500,2500,5000")
    args = parser.parse_args(argv)

    from scratchvae.engine import estimators as engine
    from scratchvae.lecture import estimators as lecture
    from scratchvae.tools import checkpoints, data
    from scratchvae.tools.evaluation import prepare_test_set

    model = checkpoints.load_model(args.checkpoint)
    x = prepare_test_set(data.load_mnist(download=False).x_test, "dynamic")[: args.images]
    x = x.astype(model.dtype)
    n_rows = args.images * args.k
    dec = model.decoder.modules[0], model.decoder_head
    W1, W2 = dec[0].params["W"], dec[1].params["W"]

    def floor():
        rows = engine.CACHE_ROWS
        z = np.random.default_rng(0).standard_normal((rows, model.latent_dim), dtype=model.dtype)
        h = np.empty((rows, W1.shape[1]), model.dtype)
        out = np.empty((rows, W2.shape[1]), model.dtype)
        for _ in range(n_rows // rows):
            np.matmul(z, W1, out=h)
            np.maximum(h, 0, out=h)
            np.matmul(h, W2, out=out)

    def run(estimate):
        return lambda: estimate(model, x, args.k, np.random.default_rng(0))

    methods = {"floor (decoder products)": floor,
               "lecture": run(lecture.importance_weighted_bound),
               "engine": run(engine.importance_weighted_bound)}
    # compile first, and check that both paths give the same numbers
    small = x[:2]
    a = lecture.importance_weighted_bound(model, small, 100, np.random.default_rng(1))
    b = engine.importance_weighted_bound(model, small, 100, np.random.default_rng(1))
    print(f"lecture vs engine on 2 images, k=100: max relative difference {np.max(np.abs(a - b) / np.abs(a)):.1e}")
    report(methods, args.repeats, args.images)

    chunk_methods = {}
    for rows in map(int, args.chunks.split(",")):
        def at(rows=rows):
            engine.CACHE_ROWS, saved = rows, engine.CACHE_ROWS
            try:
                engine.importance_weighted_bound(model, x, args.k, np.random.default_rng(0))
            finally:
                engine.CACHE_ROWS = saved
        chunk_methods[f"engine, chunks of {rows} rows"] = at
    report(chunk_methods, args.repeats, args.images)


def report(methods, repeats, images):
    times = {name: [] for name in methods}
    for _ in range(repeats):  # round robin, so the machine's load falls on all alike
        for name, f in methods.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    floor = statistics.median(next(iter(times.values())))
    print(f"{'method':34s} {'median s':>9s} {'min s':>7s} {'ms/image':>9s} {'x floor':>8s} {'10k images, min':>16s}")
    for name, t in times.items():
        med = statistics.median(t)
        print(f"{name:34s} {med:9.2f} {min(t):7.2f} {1000 * med / images:9.1f} {med / floor:8.1f} "
              f"{med / images * 10000 / 60:16.1f}")


if __name__ == "__main__":
    main()
