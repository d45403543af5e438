"""How fast is one training epoch? scratchvae beside its floor and beside PyTorch.

``scratchvae bench`` times one epoch of the standard model (784-400-20, ReLU,
Bernoulli pixels, Adam with lr 1e-3, batch 128, float32, the 60000 MNIST
training images: 469 steps) three ways:

* **scratchvae**: the real training loop, :func:`scratchvae.tools.train.fit` for one epoch;
* **floor**: only the 11 matrix products one step needs (:data:`FLOOR_PRODUCTS`),
  in NumPy, on preallocated float32 arrays: what an epoch would cost if every
  element-wise pass, every allocation and all of Python were free. Code that
  leaves these products to the same BLAS cannot go below it;
* **pytorch** (if installed): the same model written the ordinary way in
  PyTorch eager mode on the CPU, with as many threads as NumPy's BLAS
  (:func:`scratchvae.tools.bench_torch.pytorch_contender`, re-exported here).

Timings on a shared machine drift, so the contenders are not timed one after
the other. Each round times one epoch of every contender, interleaved: the
epoch's images are cut into :data:`PARTS` consecutive parts, and each part is
run by every contender in turn, in an order that rotates from round to round,
before the next part. A burst of load from another tenant, which lasts
seconds, then falls on all contenders alike instead of on one whole epoch.
The report gives the median and the minimum over rounds of each contender's
epoch, and each ratio as the median over rounds of that round's ratio (a
paired comparison). Everything is warmed up first (Numba compiles, caches
fill).

Two start-up costs are measured in fresh processes: the first training step
against the second (Numba compiling, or loading its cache), and the whole
``scratchvae gradcheck``.

On the command line: ``scratchvae bench [--repeats N] [--quick] [--json PATH]``;
in Python, :func:`run` then :func:`format_report`.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from scratchvae.tools import data
from scratchvae.tools.bench_torch import pytorch_contender, torch_version  # the PyTorch twin: bench_torch.py
from scratchvae.lecture.optim import Adam
from scratchvae.tools.progress import Progress
from scratchvae.tools.train import fit
from scratchvae.lecture.vae import VAE

__all__ = [
    "CONTENDERS",
    "FLOOR_PRODUCTS",
    "PARTS",
    "QUICK_STEPS",
    "STANDARD",
    "TORCH_MISSING",
    "blas_threads",
    "compile_cost",
    "floor_contender",
    "floor_products",
    "format_report",
    "gradcheck_cost",
    "load_images",
    "machine_info",
    "pytorch_contender",
    "run",
    "scratchvae_contender",
]

# The model of `scratchvae train`'s defaults, and of PyTorch's VAE example.
STANDARD = {"input_dim": 784, "hidden": 400, "latent_dim": 20, "batch_size": 128, "lr": 1e-3}
CONTENDERS = ("scratchvae", "floor", "pytorch")
# --quick: epochs of this many steps, on synthetic images when MNIST is absent.
QUICK_STEPS = 2
QUICK_REPEATS = 2
# Steps of the warm-up run of each contender (compiles the Numba kernels).
WARMUP_STEPS = 2
# An epoch is timed in this many interleaved parts (59 steps each on MNIST).
PARTS = 8
TORCH_MISSING = 'not installed (pip install torch; in a checkout, pip install -e ".[compare]")'

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


def _log(line):
    """Progress goes to stderr, so stdout holds only the report."""
    print(line, file=sys.stderr, flush=True)


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
    """The 784-400-20 VAE in float32 and its Adam optimiser."""
    model = VAE(STANDARD["input_dim"], hidden=(STANDARD["hidden"],),
                latent_dim=STANDARD["latent_dim"], seed=seed, dtype=np.float32)
    return model, Adam(model, lr=STANDARD["lr"])


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


# --- the machine -------------------------------------------------------------------


def blas_threads():
    """``(threads, how it was found)`` for NumPy's BLAS.

    Asks threadpoolctl when it is installed; otherwise the environment
    variables the BLAS libraries read; otherwise ``os.cpu_count()``, which
    is what OpenBLAS and MKL use by default.

    Examples
    --------
    >>> n, how = blas_threads()
    >>> n >= 1
    True
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        for pool in threadpool_info():
            if pool["user_api"] == "blas":
                return int(pool["num_threads"]), "threadpoolctl"
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value), f"${var}"
    return os.cpu_count() or 1, "os.cpu_count()"


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_name():
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # older NumPy: show_config has no mode; the name is a nicety
        return "unknown"


def machine_info():
    """CPU, cores, library versions and BLAS threads, as a JSON-ready dict.

    Examples
    --------
    >>> sorted(machine_info())[:3]
    ['blas', 'blas_threads', 'blas_threads_from']
    """
    threads, how = blas_threads()
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_jit": not numba.config.DISABLE_JIT,
        "torch": torch_version(),
        "blas": _blas_name(),
        "blas_threads": threads,
        "blas_threads_from": how,
    }


# --- start-up costs, in fresh processes -----------------------------------------


def _fresh_python(args, env=None):
    """Run ``python <args>`` in a new process that imports this scratchvae; (seconds, result)."""
    env = {**os.environ, **(env or {})}
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    return time.perf_counter() - start, result


# Run in the fresh process: import, then two one-step epochs of the standard model.
_FIRST_STEPS = ("import time; start = time.perf_counter(); from scratchvae.tools import bench; "
                "bench._print_first_steps(time.perf_counter() - start)")


def _print_first_steps(import_seconds):
    """Time the first and the second training step of a new model; print them as JSON."""
    model, optimizer = _standard_model(seed=0)
    rng = np.random.default_rng(0)
    images = rng.random((STANDARD["batch_size"], STANDARD["input_dim"]), dtype=np.float32)
    first, second = (_scratchvae_epoch(model, optimizer, images, rng) for _ in range(2))
    print(json.dumps({"import_seconds": import_seconds, "first_step_seconds": first,
                      "second_step_seconds": second}))


def _first_steps(env=None):
    seconds, result = _fresh_python(["-c", _FIRST_STEPS], env)
    if result.returncode != 0:
        raise RuntimeError(f"the fresh process failed:\n{result.stderr}")
    timings = json.loads(result.stdout.splitlines()[-1])
    # Compiling (or loading the cache) is what the first step does on top of the second.
    timings["compile_seconds"] = timings["first_step_seconds"] - timings["second_step_seconds"]
    timings["process_seconds"] = seconds
    return timings


def compile_cost():
    """Numba's first-call cost of a training step, in fresh processes: cold and warm.

    Cold: an empty ``NUMBA_CACHE_DIR``, so every kernel the step calls is
    compiled. Warm: the default cache, in a second process (the first may
    have had to write it), so the kernels are loaded from disk. The cost is
    the first step's time minus the second's.

    Returns
    -------
    dict
        ``{"cold": {...}, "warm": {...}}``, each with ``compile_seconds``,
        ``first_step_seconds``, ``second_step_seconds``, ``import_seconds``
        and ``process_seconds``.

    Examples
    --------
    >>> cost = compile_cost()  # doctest: +SKIP
    >>> print(f"cold {cost['cold']['compile_seconds']:.2f} s")  # doctest: +SKIP
    cold 1.22 s
    """
    with tempfile.TemporaryDirectory() as empty:
        cold = _first_steps({"NUMBA_CACHE_DIR": empty})
    _first_steps()  # writes the cache if it was stale
    return {"cold": cold, "warm": _first_steps()}


def gradcheck_cost(seed=0):
    """Seconds of ``scratchvae gradcheck``: in this process, and as a fresh command.

    Returns
    -------
    dict
        ``checks``, ``passed``, ``in_process_seconds``, ``fresh_process_seconds``
        and ``fresh_process_exit_code``.

    Examples
    --------
    >>> cost = gradcheck_cost()  # doctest: +SKIP
    >>> cost["passed"] == cost["checks"]  # doctest: +SKIP
    True
    """
    from scratchvae.tools.gradcheck_report import run_all

    start = time.perf_counter()
    rows = run_all(seed=seed)
    in_process = time.perf_counter() - start
    fresh, result = _fresh_python(["-m", "scratchvae", "gradcheck", "--seed", str(seed)])
    return {"checks": len(rows), "passed": sum(r.passed for r in rows),
            "in_process_seconds": in_process, "fresh_process_seconds": fresh,
            "fresh_process_exit_code": result.returncode}


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

    pairs = (("scratchvae", "floor"), ("scratchvae", "pytorch"), ("pytorch", "floor"))
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
        Also measure :func:`compile_cost` and :func:`gradcheck_cost`.
    log : callable
        Receives one line per stage: each warm-up, each round's timings, the start-up costs.
        (Within a round, a terminal shows how far it got: :mod:`scratchvae.tools.progress`.)

    Returns
    -------
    dict
        JSON-ready: ``config``, ``machine``, ``load_average`` (1, 5 and 15
        minutes at the start and end; the 1-minute figure after each round),
        ``timings`` (seconds per round, by contender; None for PyTorch when
        it is not installed), ``order`` (per round), ``summary``, ``ratios``,
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
              "pytorch": pytorch_contender(images, machine["blas_threads"], STANDARD)}
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
        One row per contender; a missing PyTorch says how to install it.
        Example: see :func:`run`.
    """
    c, m, s, r = result["config"], result["machine"], result["summary"], result["ratios"]
    loads = result["load_average"]
    torch_text = m["torch"] or "not installed"
    lines = [
        f"One training epoch of the {c['input_dim']}-{c['hidden']}-{c['latent_dim']} VAE "
        f"(ReLU, Bernoulli, Adam lr {c['lr']:g}, batch {c['batch_size']}, {c['dtype']}) "
        f"on {c['n_images']} {c['source'] or 'images'}: {c['steps_per_epoch']} steps; "
        f"{c['repeats']} round(s), contenders interleaved in {c['parts']} parts per epoch.",
        f"machine: {m['cpu']}, {m['cpu_count']} logical CPUs; Python {m['python']}, "
        f"NumPy {m['numpy']} (BLAS {m['blas']}, {m['blas_threads']} threads, from "
        f"{m['blas_threads_from']}), Numba {m['numba']}"
        f"{'' if m['numba_jit'] else ' (JIT DISABLED)'}, torch {torch_text}",
        f"load average (1/5/15 min): start {_numbers(loads['start'])}, end "
        f"{_numbers(loads['end'])}; 1 min after each round: "
        f"{_numbers(loads['after_each_round'])}",
        "",
        f"{'contender':<11} {'median s':>9} {'min s':>9}   every round (s)",
        f"{'-' * 11} {'-' * 9} {'-' * 9}   {'-' * 15}",
    ]
    for name in CONTENDERS:
        if s[name] is None:
            lines.append(f"{name:<11} {TORCH_MISSING}")
            continue
        every = _numbers(result["timings"][name], 3)
        lines.append(f"{name:<11} {s[name]['median']:>9.3f} {s[name]['min']:>9.3f}   {every}")
    lines += [
        "",
        "ratios (median over the rounds of each round's ratio): "
        + ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in r.items()),
        f"scratchvae: scratchvae.tools.train.fit, one epoch; floor: the {len(FLOOR_PRODUCTS)} matrix "
        "products per step alone (NumPy, out=); pytorch: eager mode, torch.bernoulli, "
        f"torch.randn, torch.optim.Adam, {m['blas_threads']} threads.",
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
