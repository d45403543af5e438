"""Run one probe on a student's code in a child process that cannot reach the references.

The child is ``python -I -S -c BOOT``: isolated mode (no ``PYTHON*``
variables, no user site, not the current folder) and no site-packages at all,
so neither ``scratchvae`` nor anything else installed is importable. ``BOOT``
puts three folders before the standard library on its path, and nothing more:
the probes (:mod:`scratchvae.classroom.probes`, copied), a folder that links to
NumPy, and the scratch copy of the submission. It runs in a fresh scratch copy
of the submission (its ``.py`` files), in a new session, with

* a wall-clock limit (the parent kills the whole process group),
* a CPU-time limit (``RLIMIT_CPU``: the kernel stops it),
* a memory limit (``RLIMIT_AS``: NumPy raises ``MemoryError``, or the child dies),
* an output limit (``RLIMIT_FSIZE`` on every file it writes, its stdout and
  stderr included, which go to files, never to a pipe the parent must drain).

It reports what the student's code computed, section by section
(:mod:`scratchvae.classroom.probes`); the parent reads those reports as plain
arrays (no pickles, size-checked) and never runs any code from them. This
protects the marking from accidents and from a student testing the marker;
it is not a security sandbox: the child runs as the marker's user, can read
and write what that user can outside its folder, and can open sockets.
Guide: docs/exercises.md#limits
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scratchvae.classroom import probes

__all__ = ["Limits", "ChildResult", "run_child", "Submission"]

MB = 1 << 20
BOOT = "import sys; sys.path[:0] = sys.argv[2:5]; import probes; probes.main(sys.argv[1])"


class Limits(NamedTuple):
    """What one child may use. The defaults fit the probes many times over."""

    wall: float = 20.0  # seconds of wall-clock time
    cpu: int = 10  # seconds of CPU time
    memory: int = 1024 * MB  # bytes of address space
    output: int = 8 * MB  # bytes per file written, stdout and stderr included


class Submission(NamedTuple):
    """A student's work: a handout project (a folder holding ``package``), or one ``.py`` file."""

    name: str
    path: Path
    package: str = None  # "studentvae" for a project; None for a single file


class ChildResult(NamedTuple):
    """What came back: each finished section's arrays, and how the child ended (``""`` if normally)."""

    sections: dict
    ending: str
    output: str  # the start of what it printed, for the feedback


def _copy(submission, root):
    """The submission's ``.py`` files, copied under ``root``, where the child runs."""
    if submission.package is None:
        shutil.copyfile(submission.path, root / "student.py")
        return
    shutil.copytree(submission.path / submission.package, root / submission.package,
                    ignore=lambda folder, names: [n for n in names if not n.endswith(".py")
                                                  and not (Path(folder) / n).is_dir()])


def _numpy_folder(where):
    """A folder holding links to NumPy (and its bundled libraries): the child's only import beyond its own."""
    site = Path(np.__file__).resolve().parents[1]
    where.mkdir()
    for name in ("numpy", "numpy.libs"):
        if (site / name).exists():
            (where / name).symlink_to(site / name)
    return where


def _limiter(limits):
    """The function the child runs before Python starts: its resource limits."""
    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output, limits.output))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _ending(code, limits):
    """How a child that returned ``code`` ended, in words; "" for a normal exit."""
    if code == 0:
        return ""
    if code == -signal.SIGXCPU:
        return f"timed out: used its {limits.cpu} s of CPU time"
    if code == -signal.SIGXFSZ:
        return f"crashed: wrote more than the {limits.output // MB} MB allowed per file"
    if code < 0:
        return f"crashed: killed by {signal.Signals(-code).name}"
    return f"crashed: the process exited with status {code}"


def _read(path, limit):
    """A section's report as arrays, or None if it is not a plain .npz of a sensible size."""
    if path.stat().st_size > limit:
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def run_child(submission, probe, case, limits=Limits()):
    """Run ``probe`` on ``case`` with the student's code, isolated and limited.

    Parameters
    ----------
    submission : Submission
    probe : str
        A key of :data:`scratchvae.classroom.probes.PROBES`.
    case : scratchvae.classroom.probes.Case
    limits : Limits

    Returns
    -------
    ChildResult
        The sections the child finished (a section it could not report is
        absent), and ``ending``: "" for a normal exit, else "timed out: ..."
        or "crashed: ...".
    """
    with tempfile.TemporaryDirectory(prefix="scratchvae-mark-") as scratch:
        scratch = Path(scratch)
        root, results, harness = scratch / "work", scratch / "results", scratch / "harness"
        for folder in (root, results, harness):
            folder.mkdir()
        _copy(submission, root)
        shutil.copyfile(probes.__file__, harness / "probes.py")
        probes.save_case(scratch / "case.npz", case)
        spec = {"probe": probe, "case": str(scratch / "case.npz"), "results": str(results),
                "root": str(root), "package": submission.package}
        (scratch / "spec.json").write_text(json.dumps(spec))
        env = {"PATH": os.defpath, "HOME": str(root), "TMPDIR": str(root), "OPENBLAS_NUM_THREADS": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"}
        with open(scratch / "output.txt", "wb") as output:
            child = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", BOOT, str(scratch / "spec.json"), str(harness),
                 str(_numpy_folder(scratch / "lib")), str(root)],
                cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                preexec_fn=_limiter(limits), start_new_session=True)
            try:
                ending = _ending(child.wait(timeout=limits.wall), limits)
            except subprocess.TimeoutExpired:
                ending = f"timed out: still running after {limits.wall:g} s"
            finally:
                _kill_group(child)
        sections = {path.stem: _read(path, limits.output) for path in results.glob("*.npz")}
        with open(scratch / "output.txt", "rb") as output:
            printed = output.read(2000).decode("utf-8", "replace")
    return ChildResult({k: v for k, v in sections.items() if v is not None}, ending, printed)


def _kill_group(child):
    """Kill the child and anything it started (its session), and reap it."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
