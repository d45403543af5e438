"""What the teacher takes away: the summary and histogram, the similarity report, the Gradescope autograder.

The summary is checked on made-up reports (its numbers by hand); the
similarity report on small single-file submissions, read and never run; the
autograder by building its zip and running its ``run_autograder`` on a local
copy of Gradescope's layout, for a correct and a buggy submission of one task.
"""

import inspect
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scratchvae.classroom import autograder, similarity
from scratchvae.classroom.judge import FAIL, PASS, Outcome
from scratchvae.classroom.mark import Report, find_submissions
from scratchvae.classroom.summary import summarise, summary_text, write_summary
from scratchvae.classroom.tasks import select
from scratchvae.lecture.optim import Adam

# --- The summary --------------------------------------------------------------------


def _report(student, marks):
    """A made-up report: ``marks`` maps a task to its checks' passes (True) and failures (False)."""
    outcomes = tuple(Outcome(task, f"check {k}", PASS if ok else FAIL, "")
                     for task, checks in marks.items() for k, ok in enumerate(checks))
    return Report(student, outcomes, ())


CLASS = [_report("ann", {"dense": [True, True, True], "relu": [True, True, True, True]}),
         _report("bo", {"dense": [True, False, True], "relu": [True, True, True, True]}),
         _report("cy", {"dense": [False, False, False], "relu": [True, False, False, False]}),
         Report("dee", (), ())]  # an entry that could not be marked: no outcomes at all


def test_the_summary_counts_means_full_marks_and_totals():
    summary = summarise(CLASS, select(["dense", "relu"]))
    dense, relu = summary.tasks
    assert (dense.out_of, dense.mean, dense.full) == (3, (3 + 2 + 0 + 0) / 4, 1)
    assert (relu.out_of, relu.mean, relu.full) == (4, (4 + 4 + 1 + 0) / 4, 2)
    assert summary.totals == (7, 6, 1, 0) and summary.out_of == 7
    assert (summary.mean, summary.median, summary.full) == (3.5, 3.5, 1)
    text = summary_text(summary, notes=["marked in bubblewrap's sandbox"])
    assert "| dense | 3 | 1.25 | 1 of 4 |" in text and "| relu | 4 | 2.25 | 2 of 4 |" in text
    assert "| **total** | 7 | 3.50 | 1 of 4 |" in text
    assert "median 3.5, lowest 0, highest 7, out of 7" in text and "- marked in bubblewrap's sandbox" in text


def test_the_summary_and_histogram_are_written_beside_the_csv(tmp_path):
    text, picture = write_summary(CLASS, select(["dense", "relu"]), tmp_path, name="week1")
    assert text == tmp_path / "week1-summary.md" and "4 students" in text.read_text()
    assert picture == tmp_path / "week1-histogram.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty_text, _ = write_summary([], select(["dense"]), tmp_path, name="nobody")
    assert "0 students" in empty_text.read_text()


# --- The similarity report ----------------------------------------------------------

ALICE = """
    import numpy as np

    class Adam:
        def update(self, param, g, m, v):
            b1, b2 = self.betas
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            step = self.lr * (m / (1 - b1 ** self.t)) / (np.sqrt(v / (1 - b2 ** self.t)) + self.eps)
            param -= step
    """

BOB = """
    import numpy as np


    class Adam:
        def update(self, p, grad, first, second):
            '''Bob's own Adam, honest.'''
            beta_one, beta_two = self.betas   # the decay rates
            first *= beta_one
            first += (1 - beta_one) * grad
            second *= beta_two
            second += (1 - beta_two) * grad * grad
            # the step
            delta = (self.lr * (first / (1 - beta_one**self.t))
                     / (np.sqrt(second / (1 - beta_two**self.t)) + self.eps))
            p -= delta
    """

DAVE = """
    import numpy as np

    class Adam:
        def update(self, param, g, m, v):
            beta1, beta2 = self.betas
            m[:] = beta1 * m + (1.0 - beta1) * g
            v[:] = beta2 * v + (1.0 - beta2) * np.square(g)
            correction = np.sqrt(1.0 - beta2 ** self.t) / (1.0 - beta1 ** self.t)
            param -= self.lr * correction * m / (np.sqrt(v) + self.eps * np.sqrt(1.0 - beta2 ** self.t))
    """


def _lecture_copy():
    """Carol's: the lecture's Adam.update, its comments reworded and its variables renamed."""
    body = textwrap.dedent(inspect.getsource(Adam.update)).replace("m_hat", "corrected_m")
    body = body.replace("# optim", "# see the lecture,")
    return "import numpy as np\n\nclass Adam:\n" + textwrap.indent(body, "    ")


def _class_of(folder, **sources):
    folder.mkdir()
    for name, source in sources.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return find_submissions([folder])


def test_a_renamed_copy_and_the_lectures_body_are_flagged_and_an_independent_solution_is_not(tmp_path):
    submissions = _class_of(tmp_path / "class", alice=ALICE, bob=BOB, carol=_lecture_copy(), dave=DAVE)
    findings, problems = similarity.similarity(submissions, select(["adam"]))
    (adam,) = findings
    assert not problems and not adam.short
    assert set(adam.identical) == {("alice", "bob"), (similarity.LECTURE_NAME, "carol")}
    assert not any("dave" in group for group in adam.identical)


def test_close_pairs_are_listed_with_the_threshold(tmp_path):
    near = ALICE.replace("step = self.lr *", "step = 0.5 * 2 * self.lr *")
    submissions = _class_of(tmp_path / "class", alice=ALICE, erin=near)
    findings, problems = similarity.similarity(submissions, select(["adam"]), threshold=0.8)
    ((ratio, a, b),) = findings[0].close
    assert 0.8 <= ratio < 1 and {a, b} == {("alice",), ("erin",)}
    text = similarity.similarity_text(findings, problems, 2, threshold=0.8)
    assert "at least 0.80" in text and f"- close ({ratio:.2f}): alice ~ erin" in text


def test_the_report_survives_syntax_errors_huge_files_odd_names_and_stubs(tmp_path):
    folder = tmp_path / "class"
    submissions = _class_of(folder, alice=ALICE, broken="class Adam:\n    def update(self:\n",
                            stub="class Adam:\n    def update(self, param, g, m, v):\n"
                                 "        raise NotImplementedError('adam')\n")
    (folder / "huge.py").write_text(ALICE + "#" * (2 << 20))
    (folder / os.fsdecode(b"odd\xff name.py")).write_text(textwrap.dedent(ALICE))
    submissions = find_submissions([folder])
    out = tmp_path / "similarity.md"
    (adam,) = similarity.write_similarity(submissions, select(["adam"]), out)
    assert adam.identical == (("alice", "odd\\xff name"),)
    text = out.read_text()
    assert "- broken: broken.py: syntax error, line 2" in text
    assert "identical to each other: alice, odd\\xff name" in text


def test_the_solved_handout_is_the_lectures_solution_and_the_empty_one_is_not_compared(solved, tmp_path):
    from scratchvae.classroom.handout import write_handout

    empty = write_handout(tmp_path / "empty")
    tasks = select(["dense", "relu", "adam", "vae"])
    findings, problems = similarity.similarity(find_submissions([solved, empty]), tasks)
    assert not problems
    assert {f.task: f.identical for f in findings} == {
        "dense": ((similarity.LECTURE_NAME, "solved"),), "relu": (),
        "adam": ((similarity.LECTURE_NAME, "solved"),), "vae": ((similarity.LECTURE_NAME, "solved"),)}
    assert [f.task for f in findings if f.short] == ["relu"]


# --- The Gradescope autograder ------------------------------------------------------

BUGGY_DENSE = ("dW = (x.T @ dout)", "dW = (dout.T @ x)")  # the museum's transposed dW, as a student writes it


def test_the_isolation_is_the_sandbox_else_an_unprivileged_user_else_none():
    assert autograder.choose_isolation(None, 1000) == autograder.choose_isolation(None, 0) == autograder.SANDBOXED
    assert autograder.choose_isolation("bwrap cannot make a sandbox here", 0) == autograder.UNPRIVILEGED
    assert autograder.choose_isolation("bwrap is not installed", 1000) == autograder.UNISOLATED


def test_the_zip_holds_setup_run_autograder_the_config_and_an_installable_wheel(tmp_path):
    out = autograder.write_autograder(tmp_path / "gs" / "autograder.zip", ["dense"], seed=7, visibility="visible")
    with zipfile.ZipFile(out) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        config = json.loads(archive.read("config.json"))
        archive.extractall(tmp_path / "source")
    wheel = "scratchvae-0.1.0-py3-none-any.whl"
    assert modes == {"setup.sh": 0o755, "run_autograder": 0o755, "config.json": 0o644, wheel: 0o644}
    assert config == {"tasks": ["dense"], "seed": 7, "visibility": "visible"}
    assert sorted(p.name for p in (tmp_path / "gs").iterdir()) == ["autograder.zip"]  # the wheel went in
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", str(tmp_path / "source" / script)], check=True)
    assert f"pip install --no-cache-dir ./{wheel}" in (tmp_path / "source" / "setup.sh").read_text()
    target = tmp_path / "installed"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(tmp_path / "source" / wheel)], check=True, capture_output=True, timeout=300)
    probe = "import scratchvae.classroom.mark as m; print(m.__file__)"
    shown = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(target)},
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert shown.startswith(str(target))
    with pytest.raises(ValueError, match="visibility"):
        autograder.write_autograder(tmp_path / "x.zip", ["dense"], visibility="always")


def _gradescope(tmp_path, solved, name, seed=None, bug=None, extra=""):
    """A local copy of Gradescope's layout: ROOT/source (the zip, unzipped), ROOT/run_autograder,
    ROOT/submission/studentvae (the solved project's, with ``bug`` put in, ``extra`` appended to dense.py)."""
    root = tmp_path / name
    autograder.write_autograder(root / "autograder.zip", ["dense"], seed=seed)
    with zipfile.ZipFile(root / "autograder.zip") as archive:
        archive.extractall(root / "source")
    (root / "run_autograder").write_bytes((root / "source" / "run_autograder").read_bytes())
    (root / "run_autograder").chmod(0o755)
    package = root / "submission" / "studentvae"
    shutil.copytree(solved / "studentvae", package)
    dense = package / "dense.py"
    source = dense.read_text()
    if bug:
        assert bug[0] in source
        source = source.replace(*bug)
    dense.write_text(source + extra)
    return root


def _valid(results):
    """Check ``results`` against the fields Gradescope documents; return its tests by task."""
    assert isinstance(results["score"], (int, float)) and isinstance(results["output"], str)
    assert results["stdout_visibility"] in autograder.VISIBILITIES
    assert isinstance(results["execution_time"], (int, float))
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"] and test["visibility"] in autograder.VISIBILITIES
    assert results["score"] == sum(t["score"] for t in results["tests"])
    return {t["name"].split(":")[0]: t for t in results["tests"]}


@pytest.mark.parametrize("bug", [None, BUGGY_DENSE], ids=["correct", "buggy"])
def test_run_autograder_writes_results_gradescope_reads(solved, tmp_path, bug):
    root = _gradescope(tmp_path, solved, "autograder", seed=11, bug=bug)
    env = {**os.environ, "SCRATCHVAE_PYTHON": sys.executable}
    run = subprocess.run([str(root / "run_autograder"), str(root)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    dense = _valid(results)["dense"]
    assert dense["visibility"] == "after_due_date" and "secret draws" in results["output"]
    if bug is None:
        assert dense["score"] == dense["max_score"] >= 3
    else:
        assert 0 < dense["score"] < dense["max_score"]
        assert "TRANSPOSED DW" in dense["output"] and "Derivation: docs/layers.md#dense" in dense["output"]


def test_an_upload_without_a_submission_gets_zero_and_says_what_to_upload(solved, tmp_path):
    root = _gradescope(tmp_path, solved, "autograder")
    shutil.rmtree(root / "submission" / "studentvae")
    results = autograder.run(root)
    assert _valid(results)["dense"]["max_score"] >= 3 and results["score"] == 0
    assert "upload the handout's studentvae folder" in results["output"]


def _nobody_can_run_this_python():
    try:
        nobody = pwd.getpwnam("nobody")
        return subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path[:0] = sys.argv[1:]; "
                               "import numpy", str(Path(np.__file__).parents[1])], user=nobody.pw_uid,
                              group=nobody.pw_gid, extra_groups=[], capture_output=True, timeout=60).returncode == 0
    except (KeyError, PermissionError, OSError):
        return False


@pytest.mark.skipif(os.geteuid() != 0 or not _nobody_can_run_this_python(),
                    reason="needs root, and a Python with NumPy that nobody can run (as in the container)")
def test_as_an_unprivileged_user_the_code_cannot_write_results_read_the_seed_or_outlive_the_run(solved, tmp_path):
    base = Path(tempfile.mkdtemp(prefix="gradescope-"))  # 0755 from / down, as /autograder is
    base.chmod(0o755)
    try:
        root = base / "autograder"
        hostile = f'''
import os
try:
    open("{root}/results/results.json", "w").write('{{"score": 999}}')
except OSError:
    pass
if os.fork() == 0 and os.fork() == 0:
    os.setsid()
    import time
    time.sleep(600)
SEEN = ""
try:
    SEEN = open("{root}/source/config.json").read()
except OSError as err:
    SEEN = str(err)
'''
        root = _gradescope(base, solved, "autograder", seed=4321, extra=hostile)
        (root / "results").mkdir(mode=0o755)
        subprocess.run(["chmod", "-R", "go-rwx", str(root / "source")], check=True)
        results = autograder.run(root, isolation=autograder.UNPRIVILEGED)
        dense = _valid(results)["dense"]
        assert dense["score"] == dense["max_score"] and "unprivileged user" in results["output"]
        assert json.loads((root / "results" / "results.json").read_text()) == results
        left = subprocess.run(["pgrep", "-u", "nobody"], capture_output=True, text=True).stdout
        assert not left, left
    finally:
        shutil.rmtree(base)
