"""Gradescope: an autograder that marks each submission in its own container, as ``mark`` does.

    scratchvae classroom autograder --out autograder.zip [--seed S] [--only TASK ...]

writes the zip Gradescope's "Configure autograder" page takes. Gradescope
unzips it to ``/autograder/source``, runs ``setup.sh`` once to build an image,
then, for each submission, copies the student's upload to
``/autograder/submission``, runs ``/autograder/run_autograder`` and reads
``/autograder/results/results.json``. The zip holds

* ``setup.sh``: Python, pip and bubblewrap from apt; a virtual environment,
  ``/opt/scratchvae``, with scratchvae installed from the wheel in the zip
  (the very marker that wrote it: same tasks, same checks, same draws, with
  no package index to trust for it); then the marker's files and the seed are
  made readable by root only;
* ``run_autograder``: ``python -m scratchvae.classroom.autograder ROOT`` (ROOT:
  its argument, else ``$AUTOGRADER_ROOT``, else ``/autograder``), which marks
  ``ROOT/submission`` and writes ``ROOT/results/results.json``: one test per
  task (``name``, ``score``, ``max_score``, ``output``, ``visibility``), the
  total ``score``, an ``output`` saying how the code was isolated;
* ``config.json``: the tasks, the seed, the tests' visibility;
* ``scratchvae-<version>-py3-none-any.whl``.

The student's code runs in bubblewrap's sandbox if bubblewrap works in the
container; Gradescope's Docker containers usually forbid the namespaces it
needs, and then each child runs as ``nobody`` (the marker runs as root), which
can read neither the marker nor the seed, write neither ``results.json`` nor
anything of the marker's, nor signal it; whatever it left running is killed
before ``run_autograder`` returns. See :func:`choose_isolation`.
Guide: docs/exercises.md#gradescope
"""

import argparse
import base64
import hashlib
import importlib.metadata
import json
import os
import pwd
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import scratchvae
from scratchvae.classroom.judge import PASS, checks_for, exhibit_text
from scratchvae.classroom.mark import NOT_COPIED, find_submissions, mark_submission
from scratchvae.classroom.sandbox import AsUser, Limits, sandbox_problem
from scratchvae.classroom.tasks import select
from scratchvae.lecture.validate import check_int

__all__ = ["SANDBOXED", "UNPRIVILEGED", "UNISOLATED", "VISIBILITIES", "write_autograder", "build_wheel",
           "choose_isolation", "results_json", "run", "main"]

ROOT = "/autograder"  # Gradescope's layout: source/, submission/, results/
VENV = "/opt/scratchvae"
SANDBOXED, UNPRIVILEGED, UNISOLATED = "bubblewrap", "unprivileged user", "none"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")  # Gradescope's words
UPLOAD = ("upload the handout's studentvae folder (or the whole handout folder, or a zip of either)")
DATE = (1980, 1, 1, 0, 0, 0)  # every file's date in the zips: the same task list writes the same bytes

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, to build the autograder's image (Ubuntu).
set -euo pipefail
cd "$(dirname "$0")"
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv python3-pip bubblewrap
python3 -m venv {venv}
{venv}/bin/pip install --no-cache-dir ./{wheel}
# Readable by root only: the marker (whose lecture holds every reference) and the seed. Where
# bubblewrap cannot run, the submission runs as nobody, and must read neither.
chmod -R go-rwx "$PWD" "$({venv}/bin/python -c 'import os, scratchvae; print(os.path.dirname(scratchvae.__file__))')"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this, as root, once per submission: it marks ROOT/submission and writes
# ROOT/results/results.json. ROOT: the first argument, else $AUTOGRADER_ROOT, else /autograder;
# with $SCRATCHVAE_PYTHON, it runs on a local copy of the layout (docs/exercises.md#gradescope).
exec "${{SCRATCHVAE_PYTHON:-{venv}/bin/python}}" -m scratchvae.classroom.autograder \\
    "${{1:-${{AUTOGRADER_ROOT:-{root}}}}}"
"""


# --- Writing the zip ----------------------------------------------------------------


def _add(archive, name, data, mode=0o644):
    """Put ``data`` (bytes) in ``archive`` as ``name``, with a fixed date and Unix ``mode``."""
    info = zipfile.ZipInfo(name, DATE)
    info.external_attr = mode << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_wheel(folder):
    """Write a wheel of this scratchvae (every file of the package as it is here) to ``folder``.

    Returns
    -------
    Path
        The wheel, ``scratchvae-<version>-py3-none-any.whl``.
    """
    package = Path(scratchvae.__file__).parent
    name = f"scratchvae-{scratchvae.__version__}"
    info, records = f"{name}.dist-info", []
    try:
        requires = importlib.metadata.distribution("scratchvae").requires
    except importlib.metadata.PackageNotFoundError:
        requires = None
    if requires is None:
        raise FileNotFoundError("scratchvae's metadata (its dependencies) cannot be found: install it "
                                "(pip install -e . in its source folder) before writing an autograder")
    metadata = (f"Metadata-Version: 2.1\nName: scratchvae\nVersion: {scratchvae.__version__}\n"
                "Requires-Python: >=3.10\n" + "".join(f"Requires-Dist: {r}\n" for r in requires if "extra ==" not in r))
    files = [(f"scratchvae/{p.relative_to(package).as_posix()}", p.read_bytes()) for p in sorted(package.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts]
    files += [(f"{info}/METADATA", metadata.encode()),
              (f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: scratchvae\nRoot-Is-Purelib: true\n"
                                b"Tag: py3-none-any\n")]
    wheel = Path(folder) / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for arcname, data in files:
            _add(archive, arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arcname},sha256={digest},{len(data)}")
        _add(archive, f"{info}/RECORD", ("\n".join(records + [f"{info}/RECORD,,"]) + "\n").encode())
    return wheel


def write_autograder(out, tasks=None, seed=None, visibility="after_due_date"):
    """Write Gradescope's autograder zip to ``out`` for ``tasks`` (names; default all).

    ``seed``: the teacher's secret seed (None: the public draws, which a
    student can record with ``scratchvae check``); ``visibility``: when a
    student sees each task's score and feedback (one of :data:`VISIBILITIES`).
    The feedback quotes expected values: shown before the deadline, the values
    of the secret draws could be copied into a resubmission.

    Raises
    ------
    ValueError
        For an unknown task or visibility, or a seed that is not an integer >= 0.
    """
    names = [task.name for task in select(tasks)]
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility: expected one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    if seed is not None:
        seed = check_int("seed", seed, minimum=0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(out.parent)
    try:
        config = {"tasks": names, "seed": seed, "visibility": visibility}
        with zipfile.ZipFile(out, "w") as archive:
            _add(archive, "setup.sh", SETUP.format(venv=VENV, wheel=wheel.name).encode(), 0o755)
            _add(archive, "run_autograder", RUN.format(venv=VENV, root=ROOT).encode(), 0o755)
            _add(archive, "config.json", (json.dumps(config, indent=1) + "\n").encode())
            _add(archive, wheel.name, wheel.read_bytes())
    finally:
        wheel.unlink()
    return out


# --- Marking one submission in the container ----------------------------------------


def choose_isolation(problem, euid):
    """How the submission's code runs, given :func:`~scratchvae.classroom.sandbox.sandbox_problem`'s
    answer and the marker's effective uid: in bubblewrap's sandbox where it works; else as
    ``nobody``, if the marker is root (as in Gradescope's containers); else not isolated."""
    if problem is None:
        return SANDBOXED
    return UNPRIVILEGED if euid == 0 else UNISOLATED


def _nobody():
    entry = pwd.getpwnam("nobody")
    return AsUser(entry.pw_uid, entry.pw_gid)


def _end_everything_of(user):
    """Kill every process ``user`` runs (``kill(-1)`` as that user): nothing outlives the marking."""
    subprocess.run([sys.executable, "-I", "-S", "-c", "import os; os.kill(-1, 9)"], user=user.uid,
                   group=user.gid, extra_groups=[], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


def _task_output(report, task):
    """A task's feedback: each check's mark, what went wrong, the museum's findings."""
    lines = []
    for outcome in (o for o in report.outcomes if o.task == task.name):
        lines.append(f"{outcome.check}: {outcome.points}/1 {outcome.status}"
                     + (f": {outcome.message}" if outcome.status != PASS else ""))
    for bug in (b for b in report.bugs if b.task == task.name):
        lines.append(f"Museum of classic bugs: {exhibit_text(bug)}")
    return "\n".join(lines) + f"\nDerivation: docs/{task.doc}"


def results_json(report, tasks, visibility, header):
    """Gradescope's ``results.json`` (as a dict) for one report: a test per task, and ``header``."""
    tests = []
    for number, task in enumerate(tasks, start=1):
        score, out_of = report.points(task.name)
        tests.append({"name": f"{task.name}: {task.title}", "number": str(number), "score": score,
                      "max_score": out_of, "status": "passed" if score == out_of else "failed",
                      "output": _task_output(report, task), "visibility": visibility})
    notes = "".join(f"\n- {note}" for note in report.notes)
    output = header + ("\n" + NOT_COPIED + notes
                       if notes else "")
    return {"score": report.score, "output": output, "stdout_visibility": "hidden", "tests": tests}


def _nothing_to_mark(tasks, visibility, why):
    """``results.json`` for an upload holding no submission: every task at 0, and why."""
    tests = [{"name": f"{t.name}: {t.title}", "number": str(k), "score": 0,
              "max_score": len(checks_for(t, t.case())),
              "output": why, "visibility": visibility} for k, t in enumerate(tasks, start=1)]
    return {"score": 0, "output": why, "stdout_visibility": "hidden", "tests": tests}


def run(root=ROOT, isolation=None):
    """Mark ``root/submission`` with ``root/source/config.json``'s tasks and seed; write
    ``root/results/results.json``. ``isolation`` (default :func:`choose_isolation`'s) is one of
    SANDBOXED, UNPRIVILEGED (needs root) and UNISOLATED. Returns the results, as written."""
    start, root = time.monotonic(), Path(root)
    config = json.loads((root / "source" / "config.json").read_text())
    tasks, visibility = select(config["tasks"]), config["visibility"]
    isolation = isolation or choose_isolation(sandbox_problem(), os.geteuid())
    sandbox = _nobody() if isolation == UNPRIVILEGED else isolation == SANDBOXED
    found = find_submissions([root / "submission"])
    if len(found) != 1:
        what = "no studentvae folder and no .py file" if not found else f"{len(found)} separate .py files"
        results = _nothing_to_mark(tasks, visibility, f"Nothing was marked: the upload holds {what}; {UPLOAD}.")
    else:
        try:
            report = mark_submission(found[0], tasks, Limits(), sandbox, seed=config["seed"])
        finally:
            if isolation == UNPRIVILEGED:
                _end_everything_of(sandbox)
        how = {SANDBOXED: "Your code ran in bubblewrap's sandbox.",
               UNPRIVILEGED: "Your code ran as an unprivileged user (bubblewrap cannot run in this container).",
               UNISOLATED: "Your code ran NOT ISOLATED (no bubblewrap, and the marker is not root): "
                           "marks for practice, not for a grade."}[isolation]
        draws = "the teacher's secret draws" if config["seed"] is not None else "the public draws"
        header = f"{report.score} of {report.total} points. {how} Inputs: {draws}."
        results = results_json(report, tasks, visibility, header)
    results["execution_time"] = round(time.monotonic() - start)
    out = root / "results"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def main(argv=None):
    """``run_autograder``'s program: mark ``ROOT/submission`` (default /autograder) and write the results."""
    parser = argparse.ArgumentParser(prog="run_autograder", description=run.__doc__.split(".")[0] + ".")
    parser.add_argument("root", nargs="?", default=ROOT, help=f"Gradescope's folder (default {ROOT})")
    args = parser.parse_args(argv)
    results = run(args.root)
    print(f"{results['score']} points; wrote {Path(args.root) / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

