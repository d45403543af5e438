"""What ``scratchvae bench`` measures beside the epochs: the machine, and two start-up costs.

The machine: CPU, its vector extensions, cores, library versions and the
threads of NumPy's BLAS (:func:`machine_info`, :func:`vector_extensions`,
:func:`numpy_simd`, :func:`blas_threads`). The start-up costs, measured in
fresh processes: the first training step against the second (Numba
compiling, or loading its cache; :func:`compile_cost`), and the whole
``scratchvae gradcheck`` (:func:`gradcheck_cost`).
:func:`scratchvae.tools.bench.run` calls them for its report.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from scratchvae.tools.bench_contenders import STANDARD, _scratchvae_epoch, _standard_model
from scratchvae.tools.bench_jax import jax_threads, jax_version
from scratchvae.tools.bench_torch import torch_version
from scratchvae.tools.start import subnormals

__all__ = ["blas_threads", "compile_cost", "gradcheck_cost", "machine_info", "numpy_simd",
           "vector_extensions"]

# The x86 vector extensions below AVX-512 that the report names, oldest first.
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma")


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


def vector_extensions(cpuinfo=None):
    r"""The CPU's vector extensions, from the ``flags`` of Linux's /proc/cpuinfo; None elsewhere.

    The widest one first: "AVX-512 (avx512f, ...)" with every AVX-512 subset
    the CPU has, or "AVX2 (no AVX-512)", and so on down; then which of
    :data:`VECTOR_FLAGS` it has.

    Parameters
    ----------
    cpuinfo : str, optional
        The text of /proc/cpuinfo; read from the file when omitted.

    Returns
    -------
    str or None
        None without /proc/cpuinfo (not Linux) or without a ``flags`` line (not x86).

    Examples
    --------
    >>> vector_extensions("flags\t\t: fpu sse4_2 avx avx2 fma\n")
    'AVX2 (no AVX-512); sse4_2, avx, avx2, fma'
    >>> vector_extensions("processor : 0\n") is None
    True
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    line = next((line for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "flags"),
                None)
    if line is None:
        return None
    flags = set(line.split(":", 1)[1].split())
    avx512 = sorted((f for f in flags if f.startswith("avx512")), key=lambda f: (f != "avx512f", f))
    if avx512:
        widest = f"AVX-512 ({', '.join(avx512)})"
    elif "avx2" in flags:
        widest = "AVX2 (no AVX-512)"
    elif "avx" in flags:
        widest = "AVX (no AVX2, no AVX-512)"
    elif "sse4_2" in flags:
        widest = "SSE4.2 (no AVX)"
    else:
        widest = "none of SSE4.2, AVX, AVX2, AVX-512"
    has = [f for f in VECTOR_FLAGS if f in flags]
    return f"{widest}; {', '.join(has) if has else 'no ' + ', '.join(VECTOR_FLAGS)}"


def numpy_simd():
    """NumPy's own view: its compiled-in baseline, and the dispatch targets this CPU runs; or None.

    Examples
    --------
    >>> view = numpy_simd()
    >>> view is None or view.startswith("baseline ")
    True
    """
    try:  # NumPy 2 moved numpy.core to numpy._core
        from numpy._core import _multiarray_umath as umath
    except ImportError:
        try:
            from numpy.core import _multiarray_umath as umath
        except ImportError:
            return None
    try:
        features = umath.__cpu_features__
        used = [t for t in umath.__cpu_dispatch__ if features.get(t)]
        baseline = " ".join(umath.__cpu_baseline__) or "none"
        return f"baseline {baseline}, dispatched {' '.join(used) or 'none'}"
    except AttributeError:
        return None


def machine_info():
    """CPU, cores, library versions and BLAS threads, as a JSON-ready dict.

    Examples
    --------
    >>> sorted(machine_info())[:3]
    ['blas', 'blas_threads', 'blas_threads_from']
    >>> {"vector_extensions", "numpy_simd", "jax", "jax_threads", "subnormals"} <= set(machine_info())
    True
    """
    threads, how = blas_threads()
    return {
        "cpu": _cpu_model(),
        "vector_extensions": vector_extensions(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_simd": numpy_simd(),
        "numba": numba.__version__,
        "numba_jit": not numba.config.DISABLE_JIT,
        "torch": torch_version(),
        "jax": jax_version(),
        "jax_threads": jax_threads(),
        "blas": _blas_name(),
        "blas_threads": threads,
        "blas_threads_from": how,
        "subnormals": subnormals(),
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
_FIRST_STEPS = ("import time; start = time.perf_counter(); from scratchvae.tools import bench_machine; "
                "bench_machine._print_first_steps(time.perf_counter() - start)")


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
