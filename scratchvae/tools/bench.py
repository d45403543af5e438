"""How fast is one training epoch? scratchvae beside its floor, PyTorch and JAX.

``scratchvae bench`` times one epoch of the standard model (784-400-20, ReLU,
Bernoulli pixels, Adam with lr 1e-3, batch 128, float32, the 60000 MNIST
training images: 469 steps) four ways:

* **scratchvae**: the real training loop, :func:`scratchvae.tools.train.fit` for one epoch;
* **floor**: only the 11 matrix products one step needs
  (:data:`scratchvae.tools.bench_contenders.FLOOR_PRODUCTS`),
  in NumPy, on preallocated float32 arrays: what an epoch would cost if every
  element-wise pass, every allocation and all of Python were free. Code that
  leaves these products to the same BLAS cannot go below it;
* **pytorch** (if installed): the same model written the ordinary way in
  PyTorch eager mode on the CPU, with as many threads as NumPy's BLAS
  (:func:`scratchvae.tools.bench_torch.pytorch_contender`);
* **jax** (if installed): the same model as a JAX user writes it for speed, the
  training step and each part of the epoch compiled by XLA as one
  ``lax.scan`` (:func:`scratchvae.tools.bench_jax.jax_contender`).

The first two are in :mod:`scratchvae.tools.bench_contenders`.

Timings on a shared machine drift, so the contenders are not timed one after
the other. Each round times one epoch of every contender, interleaved: the
epoch's images are cut into :data:`PARTS` consecutive parts, and each part is
run by every contender in turn, in an order that rotates from round to round,
before the next part. A burst of load from another tenant, which lasts
seconds, then falls on all contenders alike instead of on one whole epoch.
The report gives the median and the minimum over rounds of each contender's
epoch, and each ratio as the median over rounds of that round's ratio (a
paired comparison). Everything is warmed up first (Numba compiles, caches
fill); JAX compiles each part length, untimed, when it first meets it.

Two start-up costs are measured in fresh processes: the first training step
against the second (Numba compiling, or loading its cache), and the whole
``scratchvae gradcheck``; they and the description of the machine are in
:mod:`scratchvae.tools.bench_machine`.

On the command line: ``scratchvae bench [--repeats N] [--quick] [--json PATH]``;
in Python, :func:`run` then :func:`format_report`.
"""

import os
import statistics
import sys

import numpy as np

from scratchvae.tools import data
from scratchvae.tools.bench_contenders import (
    FLOOR_PRODUCTS,
    STANDARD,
    floor_contender,
    scratchvae_contender,
)
from scratchvae.tools.bench_jax import jax_contender  # the JAX twin: bench_jax.py
from scratchvae.tools.bench_machine import compile_cost, gradcheck_cost, machine_info
from scratchvae.tools.bench_torch import pytorch_contender  # the PyTorch twin: bench_torch.py
from scratchvae.tools.progress import Progress

__all__ = [
    "CONTENDERS",
    "JAX_MISSING",
    "PARTS",
    "QUICK_STEPS",
    "TORCH_MISSING",
    "format_report",
    "load_images",
    "run",
]

CONTENDERS = ("scratchvae", "floor", "pytorch", "jax")
# --quick: epochs of this many steps, on synthetic images when MNIST is absent.
QUICK_STEPS = 2
QUICK_REPEATS = 2
# Steps of the warm-up run of each contender (compiles the Numba kernels).
WARMUP_STEPS = 2
# An epoch is timed in this many interleaved parts (59 steps each on MNIST).
PARTS = 8
TORCH_MISSING = 'not installed (pip install torch; in a checkout, pip install -e ".[compare]")'
JAX_MISSING = 'not installed (pip install jax; in a checkout, pip install -e ".[compare]")'
MISSING = {"pytorch": TORCH_MISSING, "jax": JAX_MISSING}


def _log(line):
    """Progress goes to stderr, so stdout holds only the report."""
    print(line, file=sys.stderr, flush=True)


# --- the benchmark -----------------------------------------------------------------


def load_images(data_dir=None, download=True, quick=False):
    """The training images and where they came from: ``(images, source)``.

    MNIST's 60000 training images, found as :func:`scratchvae.tools.data.load_mnist`
    finds them. With ``quick``, only the first ``QUICK_STEPS`` minibatches,
    nothing is downloaded, and random grey levels stand in when MNIST is absent.

    Parameters
    ----------
    data_dir : str or Path, optional
        Looked in first, as by :func:`scratchvae.tools.data.find_data_dir`.
    download : bool
        Fetch MNIST when it is nowhere to be found (never with ``quick``).
    quick : bool
        The few images of ``--quick``.

    Returns
    -------
    images : ndarray, shape (N, 784), float32
    source : str
        For the report, e.g. "MNIST training images".

    Raises
    ------
    FileNotFoundError, scratchvae.tools.data.ChecksumError
        Without ``quick``, if MNIST cannot be found or fetched.

    Examples
    --------
    >>> images, source = load_images(quick=True)
    >>> images.shape == (QUICK_STEPS * STANDARD["batch_size"], 784)
    True
    """
    rows = QUICK_STEPS * STANDARD["batch_size"]
    try:
        found = data.load_mnist("mnist", data_dir=data_dir, download=download and not quick)
        images = found.x_train
        source = "MNIST training images"
    except FileNotFoundError:
        if not quick:
            raise
        images = np.random.default_rng(0).random((rows, STANDARD["input_dim"]), dtype=np.float32)
        source = "random images (MNIST not found)"
    return (images[:rows] if quick else images), source


def _summary(timings):
    """Median and min per contender, and each ratio's median over the rounds (paired)."""
    summary = {name: None if t is None else {"median": statistics.median(t), "min": min(t)}
               for name, t in timings.items()}

    def ratio(a, b):
        if timings[a] is None or timings[b] is None:
            return None
        return statistics.median(ta / tb for ta, tb in zip(timings[a], timings[b]))

    pairs = (("scratchvae", "floor"), ("scratchvae", "pytorch"), ("pytorch", "floor"),
             ("scratchvae", "jax"), ("jax", "floor"))
    ratios = {f"{a}/{b}": ratio(a, b) for a, b in pairs}
    return summary, ratios


def _parts(n, batch_size, count=PARTS):
    """``count`` (or fewer) consecutive ``(start, stop)`` ranges covering ``range(n)``.

    Every part but the last holds a whole number of minibatches, so the parts
    together take exactly the steps of one epoch.

    Examples
    --------
    >>> _parts(60000, 128)[:2], _parts(60000, 128)[-1]
    ([(0, 7552), (7552, 15104)], (52864, 60000))
    >>> _parts(256, 128)
    [(0, 128), (128, 256)]
    """
    steps = -(-n // batch_size)
    per_part = -(-steps // count) * batch_size  # images
    return [(start, min(start + per_part, n)) for start in range(0, n, per_part)]


def run(images, repeats=5, source="", startup=True, log=_log):
    """Time every contender for ``repeats`` rounds; return all timings and the summary.

    Parameters
    ----------
    images : ndarray, shape (N, 784), float32
        One epoch is one pass over these, in minibatches of 128.
    repeats : int
        Rounds; each times one epoch of every contender, in rotating order.
    source : str
        Where the images came from, for the report.
    startup : bool
        Also measure :func:`scratchvae.tools.bench_machine.compile_cost` and
        :func:`scratchvae.tools.bench_machine.gradcheck_cost`.
    log : callable
        Receives one line per stage: each warm-up, each round's timings, the start-up costs.
        (Within a round, a terminal shows how far it got: :mod:`scratchvae.tools.progress`.)

    Returns
    -------
    dict
        JSON-ready: ``config``, ``machine``, ``load_average`` (1, 5 and 15
        minutes at the start and end; the 1-minute figure after each round),
        ``timings`` (seconds per round, by contender; None for PyTorch or
        JAX when it is not installed), ``order`` (per round), ``summary``, ``ratios``,
        ``compile`` and ``gradcheck`` (None without ``startup``).

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.default_rng(0).random((256, 784), dtype=np.float32)
    >>> result = run(images, repeats=1, startup=False, log=lambda line: None)
    >>> result["config"]["steps_per_epoch"], result["timings"]["floor"][0] > 0
    (2, True)
    >>> print(format_report(result))  # doctest: +SKIP
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats: expected an integer >= 1, got {repeats!r}")
    load_start = os.getloadavg()
    machine = machine_info()
    n, B = len(images), STANDARD["batch_size"]
    epochs = {"scratchvae": scratchvae_contender(images), "floor": floor_contender(),
              "pytorch": pytorch_contender(images, machine["blas_threads"], STANDARD),
              "jax": jax_contender(images, machine["blas_threads"], STANDARD)}
    present = [name for name in CONTENDERS if epochs[name] is not None]
    for name in present:
        log(f"warming up {name} ({WARMUP_STEPS} steps)")
        epochs[name](0, min(n, WARMUP_STEPS * B))
    timings = {name: [] if name in present else None for name in CONTENDERS}
    order, round_loads = [], []
    for r in range(repeats):
        rotated = present[r % len(present):] + present[: r % len(present)]
        order.append(rotated)
        seconds = dict.fromkeys(rotated, 0.0)
        # One epoch each, interleaved part by part (see the module docstring).
        parts = _parts(n, B)
        with Progress(len(parts) * len(rotated), f"round {r + 1}/{repeats}", unit="part",
                      announce=False) as bar:
            for start, stop in parts:
                for name in rotated:
                    seconds[name] += epochs[name](start, stop)
                    bar.update()
        for name in rotated:
            timings[name].append(seconds[name])
        log(f"round {r + 1}/{repeats}: " + ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items()))
        round_loads.append(os.getloadavg()[0])
    summary, ratios = _summary(timings)
    compile_seconds = gradcheck = None
    if startup:
        log("timing Numba's first calls in fresh processes (cold cache, then warm)")
        compile_seconds = compile_cost()
        log("timing scratchvae gradcheck")
        gradcheck = gradcheck_cost()
    return {
        "config": {**STANDARD, "n_images": n, "steps_per_epoch": -(-n // B), "repeats": repeats,
                   "parts": len(_parts(n, B)), "source": source, "dtype": "float32"},
        "machine": machine,
        "load_average": {"start": list(load_start), "end": list(os.getloadavg()),
                         "after_each_round": round_loads},
        "timings": timings,
        "order": order,
        "summary": summary,
        "ratios": ratios,
        "compile": compile_seconds,
        "gradcheck": gradcheck,
    }


def _numbers(values, digits=2):
    return " ".join(f"{x:.{digits}f}" for x in values)


def format_report(result):
    """The result of :func:`run` as text: setting, machine, table, ratios, start-up costs.

    Parameters
    ----------
    result : dict
        As returned by :func:`run` (or read back from its JSON).

    Returns
    -------
    str
        One row per contender; a missing PyTorch or JAX says how to install it.
        Example: see :func:`run`.
    """
    c, m, s, r = result["config"], result["machine"], result["summary"], result["ratios"]
    loads = result["load_average"]
    torch_text, jax_text = m["torch"] or "not installed", m.get("jax") or "not installed"
    lines = [
        f"One training epoch of the {c['input_dim']}-{c['hidden']}-{c['latent_dim']} VAE "
        f"(ReLU, Bernoulli, Adam lr {c['lr']:g}, batch {c['batch_size']}, {c['dtype']}) "
        f"on {c['n_images']} {c['source'] or 'images'}: {c['steps_per_epoch']} steps; "
        f"{c['repeats']} round(s), contenders interleaved in {c['parts']} parts per epoch.",
        f"machine: {m['cpu']}, {m['cpu_count']} logical CPUs; Python {m['python']}, "
        f"NumPy {m['numpy']} (BLAS {m['blas']}, {m['blas_threads']} threads, from "
        f"{m['blas_threads_from']}), Numba {m['numba']}"
        f"{'' if m['numba_jit'] else ' (JIT DISABLED)'}, torch {torch_text}, jax {jax_text}",
        f"vector extensions: {m.get('vector_extensions') or 'unknown (no /proc/cpuinfo flags)'}; "
        f"NumPy's SIMD: {m.get('numpy_simd') or 'unknown'}; subnormal numbers: "
        f"{m.get('subnormals', 'unknown')} (in every thread of BLAS, measured)",
        f"load average (1/5/15 min): start {_numbers(loads['start'])}, end "
        f"{_numbers(loads['end'])}; 1 min after each round: "
        f"{_numbers(loads['after_each_round'])}",
        "",
        f"{'contender':<11} {'median s':>9} {'min s':>9}   every round (s)",
        f"{'-' * 11} {'-' * 9} {'-' * 9}   {'-' * 15}",
    ]
    for name in CONTENDERS:
        if s[name] is None:
            lines.append(f"{name:<11} {MISSING[name]}")
            continue
        every = _numbers(result["timings"][name], 3)
        lines.append(f"{name:<11} {s[name]['median']:>9.3f} {s[name]['min']:>9.3f}   {every}")
    lines += [
        "",
        "ratios (median over the rounds of each round's ratio): "
        + ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in r.items()),
        f"scratchvae: scratchvae.tools.train.fit, one epoch; floor: the {len(FLOOR_PRODUCTS)} matrix "
        "products per step alone (NumPy, out=); pytorch: eager mode, torch.bernoulli, "
        f"torch.randn, torch.optim.Adam, {m['blas_threads']} threads; jax: jit-compiled step "
        "(value_and_grad, Adam by hand), each part one lax.scan, compiled before timing, "
        f"XLA's CPU thread pool ({m.get('jax_threads', '?')} threads).",
    ]
    if result["compile"] is not None:
        cold, warm = result["compile"]["cold"], result["compile"]["warm"]
        lines.append(f"compile: cold {cold['compile_seconds']:.2f} s, warm "
                     f"{warm['compile_seconds']:.2f} s (first training step minus the second, "
                     f"fresh process; import scratchvae {warm['import_seconds']:.2f} s)")
    g = result["gradcheck"]
    if g is not None:
        lines.append(f"gradcheck: {g['passed']} of {g['checks']} checks pass; "
                     f"{g['in_process_seconds']:.2f} s in-process, "
                     f"{g['fresh_process_seconds']:.2f} s as a fresh `scratchvae gradcheck` "
                     f"(exit code {g['fresh_process_exit_code']})")
    return "\n".join(lines)
