"""``scratchvae bench --steps CHECKPOINT``: a trained model's training step beside a fresh one's.

Late in a long run a training step can slow down with no change to the code:
the backward's matrix products start producing subnormal numbers, which an x86
processor computes in microcode (docs/optim.md#subnormals). This times the
step of a saved model against the step of a freshly initialised model of the
same configuration, side by side in one process, alternating round by round so
that a change in the machine's speed falls on both. Each step is
:func:`scratchvae.lecture.training.train_step` on the engine's ops, as
``scratchvae train`` runs it; its forward and its backward are timed inside it.
Both models get a fresh Adam (learning rate 1e-3): the optimiser's state holds no
subnormal number (Adam flushes its moments), so the model's weights are what
differ. One batch's gradients are also searched for subnormal entries.

Run it twice to see what flush-to-zero does::

    scratchvae bench --steps runs/hour/checkpoint.npz
    scratchvae --ieee-subnormals bench --steps runs/hour/checkpoint.npz
"""

import time

import numpy as np

from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import train_step
from scratchvae.lecture.vae import VAE
from scratchvae.tools.bench_machine import machine_info
from scratchvae.tools.checkpoints import load_model
from scratchvae.tools.run_commands import engine_ops

__all__ = ["PARTS", "format_steps", "step_times", "subnormal_entries"]

PARTS = ("step", "forward", "backward")
LR = 1e-3
WARMUP_STEPS = 3


def subnormal_entries(arrays):
    """How many entries of ``arrays`` are subnormal: nonzero and below their type's smallest normal.

    Examples
    --------
    >>> tiny = np.finfo(np.float32).tiny
    >>> subnormal_entries([np.array([0.0, tiny, tiny / 4, -tiny / 1e3], dtype=np.float32)])
    2
    """
    count = 0
    for a in arrays:
        magnitude = np.abs(a)
        count += int(np.count_nonzero((magnitude > 0) & (magnitude < np.finfo(a.dtype).tiny)))
    return count


def _timed(model, times):
    """Make ``model``'s forward and backward add their seconds to ``times``; returns ``model``."""
    for part, name in (("forward", "negative_elbo_forward"), ("backward", "negative_elbo_backward")):
        method = getattr(model, name)

        def timed(*args, _method=method, _part=part, **kwargs):
            start = time.perf_counter()
            result = _method(*args, **kwargs)
            times[_part].append(time.perf_counter() - start)
            return result

        setattr(model, name, timed)  # on the instance: the class is untouched
    return model


def _contender(model, images, batch_size, seed):
    """``steps(n) -> None``, running n training steps of ``model`` and timing each, and its times."""
    optimizer = make_optimizer("adam", model, LR)
    rng = np.random.default_rng(seed)
    times = {part: [] for part in PARTS}
    _timed(model, times)

    def steps(n):
        for _ in range(n):
            rows = rng.integers(0, len(images), batch_size)
            start = time.perf_counter()
            train_step(model, optimizer, images, rows, rng)
            times["step"].append(time.perf_counter() - start)

    return steps, times


def step_times(checkpoint, images, rounds=4, steps=60, batch_size=128, seed=0):
    """Time training steps of the model in ``checkpoint`` and of a fresh model like it, alternating.

    Parameters
    ----------
    checkpoint : str or Path
        A ``model.npz`` or ``checkpoint.npz`` written by ``scratchvae train``.
    images : ndarray, shape (N, D), float32
        The training images the steps draw their minibatches from.
    rounds, steps : int
        ``rounds`` rounds, each running ``steps`` steps of the fresh model, then
        ``steps`` of the trained one.
    batch_size : int
    seed : int
        Seeds the fresh model's weights and both models' minibatches and noise.

    Returns
    -------
    dict
        ``config`` (the model's and the run's settings), ``machine``
        (:func:`machine_info`), ``times`` (for "fresh" and "trained", each
        part's seconds per step, warm-up steps left out), ``median`` (the same,
        medians in seconds), ``ratio`` (trained / fresh, of the medians) and
        ``subnormal_gradients`` (subnormal entries in the gradients of each
        model's first batch).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from scratchvae.tools.checkpoints import save_model
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> save_model(VAE(16, hidden=(8,), latent_dim=2, seed=3), path)
    >>> images = np.random.default_rng(0).random((64, 16), dtype=np.float32)
    >>> result = step_times(path, images, rounds=2, steps=2, batch_size=8)
    >>> len(result["times"]["trained"]["backward"]), sorted(result["ratio"])
    (4, ['backward', 'forward', 'step'])
    """
    ops = engine_ops()
    models = {"trained": load_model(checkpoint, ops=ops)}
    config = {**models["trained"].config, "seed": seed}
    models["fresh"] = VAE(**config, ops=ops)
    if images.shape[1] != config["input_dim"]:
        raise ValueError(f"images: expected {config['input_dim']} pixels per image (the model's "
                         f"input_dim), got {images.shape[1]}")
    images = np.asarray(images, dtype=config["dtype"])
    runs, subnormal = {}, {}
    for name in ("fresh", "trained"):
        run, times = _contender(models[name], images, batch_size, seed)
        run(1)
        subnormal[name] = subnormal_entries(models[name].grads.values())
        run(WARMUP_STEPS - 1)  # Numba's kernels compiled, BLAS's threads woken
        for part in PARTS:
            times[part].clear()
        runs[name] = (run, times)
    for _ in range(rounds):
        for name in ("fresh", "trained"):
            runs[name][0](steps)
    times = {name: runs[name][1] for name in runs}
    median = {name: {part: float(np.median(times[name][part])) for part in PARTS} for name in times}
    return {
        "config": {**config, "checkpoint": str(checkpoint), "rounds": rounds, "steps": steps,
                   "batch_size": batch_size, "lr": LR},
        "machine": machine_info(),
        "times": times,
        "median": median,
        "ratio": {part: median["trained"][part] / median["fresh"][part] for part in PARTS},
        "subnormal_gradients": subnormal,
    }


def format_steps(result):
    """The result of :func:`step_times` as a table, in milliseconds.

    Examples
    --------
    >>> result = {"config": {"checkpoint": "runs/hour/checkpoint.npz", "input_dim": 784,
    ...     "hidden": [500, 500], "latent_dim": 50, "rounds": 4, "steps": 60, "batch_size": 128},
    ...     "machine": {"cpu": "a CPU", "subnormals": "IEEE"},
    ...     "median": {"fresh": {"step": 8e-3, "forward": 2e-3, "backward": 4e-3},
    ...                "trained": {"step": 12e-3, "forward": 2e-3, "backward": 8e-3}},
    ...     "ratio": {"step": 1.5, "forward": 1.0, "backward": 2.0},
    ...     "subnormal_gradients": {"fresh": 0, "trained": 12}}
    >>> print(format_steps(result))  # doctest: +NORMALIZE_WHITESPACE
    Training steps of runs/hour/checkpoint.npz (784-500-500-50) beside a fresh model of the same
    shape: 4 rounds of 60 steps each, alternating, batch 128; medians in ms.
    machine: a CPU; subnormal numbers: IEEE (in every thread of BLAS, measured)
    <BLANKLINE>
    model        step  forward  backward  subnormal gradient entries (first batch)
    fresh        8.00     2.00      4.00  0
    trained     12.00     2.00      8.00  12
    <BLANKLINE>
    trained / fresh: step 1.50, forward 1.00, backward 2.00
    """
    c, m = result["config"], result["machine"]
    shape = "-".join(str(n) for n in (c["input_dim"], *c["hidden"], c["latent_dim"]))
    lines = [
        f"Training steps of {c['checkpoint']} ({shape}) beside a fresh model of the same shape: "
        f"{c['rounds']} rounds of {c['steps']} steps each, alternating, batch {c['batch_size']}; "
        "medians in ms.",
        f"machine: {m['cpu']}; subnormal numbers: {m['subnormals']} (in every thread of BLAS, measured)",
        "",
        f"{'model':<8} {'step':>8} {'forward':>8} {'backward':>9}  subnormal gradient entries (first batch)",
    ]
    for name in ("fresh", "trained"):
        ms = {part: 1e3 * result["median"][name][part] for part in PARTS}
        lines.append(f"{name:<8} {ms['step']:8.2f} {ms['forward']:8.2f} {ms['backward']:9.2f}  "
                     f"{result['subnormal_gradients'][name]}")
    r = result["ratio"]
    lines += ["", "trained / fresh: " + ", ".join(f"{part} {r[part]:.2f}" for part in PARTS)]
    return "\n".join(lines)
