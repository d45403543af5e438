"""The classroom: a handout holds no solution, the marker cannot be broken, the museum names its bugs.

Marking runs real child processes (about half a second each on a loaded
machine), so each test marks only the tasks it needs. The full ten-epoch
payoff is ``@pytest.mark.slow``. The children run in bubblewrap's sandbox where
it works (``SANDBOX = None``), with the limits alone where it does not; what
only the sandbox guarantees is tested in ``tests/test_classroom_hostile.py``.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from scratchvae.classroom import museum
from scratchvae.classroom.handout import regions, solution_lines, write_handout
from scratchvae.classroom.judge import CRASHED, FAIL, NOT_ATTEMPTED, PASS, TIMED_OUT
from scratchvae.classroom.mark import find_submissions, mark_submission
from scratchvae.classroom.marksheet import row
from scratchvae.classroom.sandbox import MB, Limits, clean, copy_submission, run_child
from scratchvae.classroom.tasks import TASKS, select

QUICK = Limits(wall=6.0, cpu=4, memory=768 * MB, output=1 * MB)
SANDBOX = None  # bubblewrap's sandbox where it works, else the limits alone


def mark(path, tasks, limits=QUICK):
    (submission,) = find_submissions([path])
    return mark_submission(submission, select(tasks), limits, SANDBOX)


def statuses(report):
    return {(o.task, o.check): o.status for o in report.outcomes}


# --- The handout --------------------------------------------------------------------


def test_every_marked_region_belongs_to_a_task_and_every_task_has_one():
    lecture = Path(regions.__globals__["LECTURE"])
    owners = {task for path in lecture.glob("*.py") for *_, task in regions(path.stem, path.read_text())}
    assert owners == set(TASKS)


def test_the_handout_holds_no_solution(tmp_path):
    folder = write_handout(tmp_path / "class")
    handed_out = {line.strip() for path in folder.rglob("*") if path.is_file() and path.suffix not in (".npz", ".png")
                  for line in path.read_text().splitlines()}  # .npz: tests/test_handout.py; .png: the docs' figures
    secret = solution_lines(set(TASKS))
    assert len(secret) > 100
    assert not secret & handed_out, sorted(secret & handed_out)[:5]
    stubs = (folder / "studentvae" / "dense.py").read_text()
    assert stubs.count('raise NotImplementedError("dense: see docs/layers.md#dense")') == 2
    assert "scratchvae.lecture" not in stubs and "Derivation: docs/layers.md#dense" in stubs
    assert "dense: the dense layer" in (folder / "pyproject.toml").read_text()


def test_every_task_is_a_stub_and_a_handout_is_never_overwritten(tmp_path):
    folder = write_handout(tmp_path / "week")
    source = (folder / "studentvae" / "activations.py").read_text()
    assert source.count("NotImplementedError(") == 10 and "np.tanh(x)" not in source
    with pytest.raises(FileExistsError):
        write_handout(folder)


def test_the_empty_handout_is_not_attempted_in_every_task(tmp_path):
    report = mark(write_handout(tmp_path / "empty"), None)
    assert {o.status for o in report.outcomes} == {NOT_ATTEMPTED}
    assert report.total == sum(1 for o in report.outcomes) > 50
    vae = next(o for o in report.outcomes if o.task == "vae")
    assert vae.message.startswith("waits for task dense: NotImplementedError")


def test_the_solved_handout_passes_its_own_tests(solved):
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         cwd=solved, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{len(TASKS)} passed" in run.stdout


def _train(project, args, tmp_path):
    out = tmp_path / "elbo.json"
    env = {**os.environ, "PYTHONPATH": str(project)}
    subprocess.run([sys.executable, "-m", "studentvae.train", *args, "--json", str(out)],
                   env=env, check=True, capture_output=True, timeout=3600)
    return json.loads(out.read_text())["test_elbo"]


def _ours(mnist_root, engine, epochs, limit=None):
    from scratchvae.engine import ops as engine_ops
    from scratchvae.lecture import ops as lecture_ops
    from scratchvae.lecture.optim import make_optimizer
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.data import load_mnist
    from scratchvae.tools.train import fit

    data, cut = load_mnist("mnist", data_dir=mnist_root), slice(limit)
    model = VAE(784, hidden=(400,), latent_dim=20, seed=0,
                ops={"lecture": lecture_ops, "engine": engine_ops}[engine])
    history = fit(model, data.x_train[cut], epochs, 128, make_optimizer("adam", model, 1e-3),
                  test=data.x_test[cut], seed=0, log=lambda line: None)
    return history.records[-1]["test_elbo"]


def test_the_solved_handout_trains_like_the_lecture(solved, mnist_root, tmp_path):
    """One epoch on 3000 images: the student's package, on its own ops, against the lecture's."""
    theirs = _train(solved, ["--epochs", "1", "--limit", "3000", "--data-dir", str(mnist_root)], tmp_path)
    assert abs(theirs - _ours(mnist_root, "lecture", 1, 3000)) < 1.0


@pytest.mark.slow
def test_the_solved_handout_reaches_our_elbo_in_ten_epochs(solved, mnist_root, tmp_path):
    """The payoff: ten epochs of full MNIST on the student's ops, within a nat of the package's."""
    theirs = _train(solved, ["--epochs", "10", "--data-dir", str(mnist_root)], tmp_path)
    assert abs(theirs - _ours(mnist_root, "engine", 10)) < 1.0


# --- Marking that a class cannot break -------------------------------------------------

HOSTILE = '''
import os, sys
import numpy as np

def dense_forward(x, W, b):
    return x @ W + b, (x, W)

def dense_backward(dout, cache):
    x, W = cache
    return (dout @ W.T).astype(x.dtype), (x.T @ dout).astype(W.dtype), dout.sum(axis=0).astype(W.dtype)

def relu_forward(x):
    os._exit(0)

def leaky_relu_forward(x, slope):
    while True:
        print("x" * 100000)

def tanh_forward(x):
    raise KeyboardInterrupt

def sigmoid_forward(x):
    sys.exit(0)

def softplus_forward(x):
    while True:
        pass

def reparameterize_forward(mu, log_var, eps):
    return np.ones(10**10), None

np.abs = lambda x: np.zeros_like(x)          # a gradient check built on np.abs would pass anything
np.allclose = lambda *args, **kwargs: True

def kl_standard_normal_forward(mu, log_var):
    return 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1), (mu, log_var)

def kl_standard_normal_backward(dkl, cache):
    mu, log_var = cache
    return np.zeros_like(mu), np.zeros_like(log_var)
'''


def write(folder, name, text):
    path = Path(folder) / name
    path.write_text(textwrap.dedent(text))
    return path


def test_hostile_code_ends_as_a_result_per_check_and_keeps_every_other_mark(tmp_path):
    path = write(tmp_path, "hostile.py", HOSTILE)
    report = mark(path, ["dense", "relu", "leaky_relu", "tanh", "sigmoid", "softplus",
                         "reparameterize", "kl_standard_normal"])
    found = {(o.task, o.check): (o.status, o.message) for o in report.outcomes}
    assert report.points("dense") == (4, 4)
    assert found["relu", "forward: values"][0] == CRASHED and "os._exit" in found["relu", "forward: values"][1]
    assert found["leaky_relu", "forward: values"][0] == CRASHED
    assert found["leaky_relu", "forward: values"][1].startswith("wrote more output than the marker allows")
    assert found["tanh", "forward: values"] == (FAIL, "raised KeyboardInterrupt (student.py, line 20, in tanh_forward)")
    assert found["sigmoid", "forward: values"][1].startswith("raised SystemExit")
    assert found["softplus", "forward: values"][0] == TIMED_OUT
    assert "MemoryError" in found["reparameterize", "forward: values"][1]
    kl = statuses(report)
    assert kl["kl_standard_normal", "forward: values"] == PASS
    assert kl["kl_standard_normal", "backward: values"] == FAIL  # patching NumPy in the child changes nothing here
    assert kl["kl_standard_normal", "gradient check"] == FAIL


def test_the_answers_are_not_importable_while_marking(tmp_path):
    path = write(tmp_path, "copier.py", "from scratchvae.lecture.dense import dense_forward, dense_backward\n")
    report = mark(path, ["dense"])
    assert report.score == 0
    assert "No module named 'scratchvae'" in report.outcomes[0].message


def test_a_forged_report_earns_nothing(tmp_path):
    """The child's own reporter, replaced by one that claims zeros: the marks are made elsewhere."""
    path = write(tmp_path, "forger.py", """
        import sys
        import numpy as np
        sys.modules["probes"]._outcome = lambda thunk, files: {"out": np.zeros(3), "d0": np.zeros(3)}
        def relu_forward(x):
            return x, x
        def relu_backward(dout, cache):
            return dout
        """)
    assert mark(path, ["relu"]).score == 0


def test_a_hang_at_import_costs_one_wall_limit_and_no_other_student_anything(tmp_path):
    class_folder = tmp_path / "class"
    class_folder.mkdir()
    write(class_folder, "a_hang.py", "while True:\n    pass\n")
    write(class_folder, "b_deleter.py", """
        from pathlib import Path
        for path in Path(".").rglob("*.py"):
            path.unlink()
        import numpy as np
        def dense_forward(x, W, b):
            return x @ W + b, (x, W)
        def dense_backward(dout, cache):
            x, W = cache
            return (dout @ W.T).astype(x.dtype), (x.T @ dout).astype(W.dtype), dout.sum(axis=0).astype(W.dtype)
        """)
    reports = [mark_submission(s, select(["dense", "relu"]), QUICK, SANDBOX)
               for s in find_submissions([class_folder])]
    hang, deleter = reports
    assert {o.status for o in hang.outcomes} == {TIMED_OUT}
    # a busy loop meets the CPU-time limit or the wall-clock one first, depending on the machine's load
    assert hang.outcomes[0].message in ("while importing your code: still running after 6 s",
                                        "while importing your code: used its 4 s of CPU time")
    assert deleter.points("dense") == (4, 4) and (class_folder / "b_deleter.py").is_file()
    assert [row(select(["dense", "relu"]), r, r.student) for r in reports] == [
        ["a_hang", "", "a_hang", 0, 0, 0, 7, ""], ["b_deleter", "", "b_deleter", 4, 0, 4, 7, ""]]


def test_the_child_sees_only_numpy_and_the_submission(tmp_path):
    path = write(tmp_path, "spy.py", """
        import sys
        import numpy as np
        def relu_forward(x):
            return np.array([len(sys.path), "site-packages" in str(sys.path)], float), None
        """)
    (submission,) = find_submissions([path])
    case = TASKS["relu"].case()
    result = run_child(submission, "op", case, QUICK, SANDBOX)
    entries, site = result.sections["forward"]["out"]
    assert site == 0 and result.ending == ""


def _odd_project(tmp_path):
    """A project whose package holds every kind of entry a copy must not follow or open."""
    outside = write(tmp_path, "classmate.py", "def relu_forward(x):\n    return x, x\n")
    package = tmp_path / "odd" / "studentvae"
    (package / "sub").mkdir(parents=True)
    write(package, "__init__.py", "")
    write(package / "sub", "deep.py", "X = 1\n")
    write(package, "notes.txt", "not copied, not noted\n")
    (package / "link.py").symlink_to(outside)
    (package / "zero.py").symlink_to("/dev/zero")
    (package / "folder").symlink_to("/")
    os.mkfifo(package / "pipe.py")
    (package / "big.py").write_bytes(b"#" * (2 * MB))
    (package / os.fsdecode(b"caf\xe9.py")).write_bytes(b"Y = 2\n")  # a name that is not UTF-8
    return package.parent


def test_the_copy_takes_regular_py_files_only_and_follows_no_link(tmp_path):
    (submission,) = find_submissions([_odd_project(tmp_path)])
    root = tmp_path / "copy"
    root.mkdir()
    notes = copy_submission(submission, root)
    copied = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert copied == sorted(["studentvae/__init__.py", "studentvae/sub/deep.py", os.fsdecode(b"studentvae/caf\xe9.py")])
    assert not any(p.is_symlink() for p in root.rglob("*"))
    assert sorted(notes) == ["studentvae/big.py: larger than 1 MB",
                             "studentvae/folder: a symbolic link, not followed",
                             "studentvae/link.py: a symbolic link, not followed",
                             "studentvae/pipe.py: a FIFO",
                             "studentvae/zero.py: a symbolic link, not followed"]


def test_a_class_folder_lists_every_entry_and_names_them_printably(tmp_path):
    class_folder = tmp_path / "class"
    class_folder.mkdir()
    write(class_folder, "alice.py", "X = 1\n")
    (class_folder / "bob.py").symlink_to(class_folder / "alice.py")
    os.mkfifo(class_folder / "pipe.py")
    (class_folder / os.fsdecode(b"caf\xe9") / "studentvae").mkdir(parents=True)
    (class_folder / "mallory").symlink_to(_odd_project(tmp_path))
    write(class_folder, "readme.txt", "not a submission\n")
    found = find_submissions([class_folder])  # mallory, a link to a folder, is an entry with nothing to mark
    assert [s.name for s in found] == ["alice", "bob", "caf\\xe9", "pipe"]
    notes = {s.name: copy_submission(s, Path(tempfile.mkdtemp(dir=tmp_path))) for s in found}
    assert notes == {"alice": [], "bob": ["bob.py: a symbolic link, not followed"], "caf\\xe9": [],
                     "pipe": ["pipe.py: a FIFO"]}


def test_an_exception_text_keeps_no_path_outside_the_scratch_copy():
    text = ("FileNotFoundError: [Errno 2] No such file or directory: '/etc/passwd' (seen from "
            "/marking/work/studentvae/dense.py in /marking/work; x=/home/teacher/marks.csv:\n\x1b[31m)")
    assert clean(text, ["/marking/work"]) == (
        "FileNotFoundError: [Errno 2] No such file or directory: '<path>' (seen from "
        "studentvae/dense.py in .; x=<path>: \\x1b[31m)")
    assert clean("raise ValueError: 1/2 is not a / b", ["/marking/work"]) == "raise ValueError: 1/2 is not a / b"
    assert len(clean("x" * 10_000)) == 500


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scratchvae", "classroom", *map(str, args)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_mark_refuses_to_mark_without_bubblewrap_unless_told(tmp_path):
    path = write(tmp_path, "relu.py", "def relu_forward(x):\n    return x, x\n")
    run = _cli("mark", path, "--only", "relu", "--out", tmp_path / "marks.csv",
               env={**os.environ, "PATH": str(tmp_path / "nowhere")})
    assert run.returncode == 2 and run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith("scratchvae classroom mark: error: cannot sandbox the submissions: bwrap")
    for words in ("apt-get install bubblewrap", "Linux-only", "macOS or Windows", "--no-sandbox"):
        assert words in line
    assert not (tmp_path / "marks.csv").exists()


def test_no_sandbox_marks_and_says_so_in_the_summary_and_the_csv(tmp_path, capsys):
    from scratchvae.classroom.commands import main

    path = write(tmp_path, "relu.py", "def relu_forward(x):\n    return x, x\n")
    assert main(["mark", str(path), "--only", "relu", "--out", str(tmp_path / "marks.csv"), "--no-sandbox",
                 "--wall", "6", "--cpu", "4"]) == 0
    printed = capsys.readouterr()
    assert "not sandboxed" in printed.out.splitlines()[-1] and printed.err.startswith("not sandboxed (--no-sandbox): ")
    lines = (tmp_path / "marks.csv").read_text().splitlines()
    assert lines[0] == "# draws: public (the inputs scratchvae check uses)"
    assert lines[1].startswith("# not sandboxed (--no-sandbox): ") and "," not in lines[1]
    assert lines[2:] == ["student id,name,entry,relu,total,out of,note", "relu,,relu,0,0,3,"]


# --- The museum ---------------------------------------------------------------------------

# Each exhibit as a student writes it: edits of a finished handout, (file, what was right, the bug).
EXHIBITS = {
    "the two-point central difference": [
        ("gradcheck.py", "return (8 * (values[1] - values[-1]) - (values[2] - values[-2])) / (12 * h)",
         "return (values[1] - values[-1]) / (2 * h)")],
    "the variance used as the standard deviation": [
        ("gaussian.py", "sigma = np.exp(0.5 * log_var)  # (B, D_z)", "sigma = np.exp(log_var)"),
        ("gaussian.py", "dlog_var = dz * eps * sigma / 2", "dlog_var = dz * eps * sigma")],
    "the KL with the wrong sign": [
        ("gaussian.py", "kl = 0.5 * np.sum(np.expm1(log_var)", "kl = -0.5 * np.sum(np.expm1(log_var)")],
    "the KL without its -sigma^2 term": [
        ("gaussian.py", "kl = 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1)",
         "kl = -0.5 * np.sum(1 + log_var - mu**2, axis=1)")],
    "the KL averaged over the latent dimensions": [
        ("gaussian.py", "kl = 0.5 * np.sum(np.expm1(log_var) - log_var + mu**2, axis=1)",
         "kl = 0.5 * np.mean(np.expm1(log_var) - log_var + mu**2, axis=1)")],
    "the reconstruction averaged over pixels while the KL is summed": [
        ("likelihoods.py", "ll = np.sum(x * logits - softplus_forward(logits)[0], axis=1)",
         "ll = np.mean(x * logits - softplus_forward(logits)[0], axis=1)")],
    "the softplus as log(1 + e^l)": [
        ("likelihoods.py", "ll = np.sum(x * logits - softplus_forward(logits)[0], axis=1)",
         "ll = np.sum(x * logits - np.log(1 + np.exp(logits)), axis=1)")],
    "sigmoid, then log": [
        ("likelihoods.py", "ll = np.sum(x * logits - softplus_forward(logits)[0], axis=1)",
         "p = sigmoid_forward(logits)[0]; ll = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)")],
    "the unstable sigmoid e^x / (1 + e^x)": [
        ("activations.py", "out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))", "out = np.exp(x) / (1 + np.exp(x))")],
    "a transposed dW": [("dense.py", "dW = (x.T @ dout)", "dW = (dout.T @ x)")],
    "a bias gradient not summed over the batch": [("dense.py", "db = dout.sum(axis=0)", "db = dout")],
    "Adam without bias correction": [
        ("optim.py", "m_hat = m / (1 - beta1**self.t)", "m_hat = m"),
        ("optim.py", "v_hat = v / (1 - beta2**self.t)", "v_hat = v")],
    "Adam with only m bias-corrected": [("optim.py", "v_hat = v / (1 - beta2**self.t)", "v_hat = v")],
    "Adam with only v bias-corrected": [("optim.py", "m_hat = m / (1 - beta1**self.t)", "m_hat = m")],
    "eps drawn before the binarisation": [
        ("training.py", '    if pixels == "dynamic":\n',
         '    early = rng.standard_normal((len(rows), model.latent_dim), dtype=model.dtype)\n'
         '    if pixels == "dynamic":\n'),
        ("training.py", "eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)", "eps = early")],
    "gradients accumulated across steps (accumulate=True)": [
        ("training.py", "model.negative_elbo_backward(1.0, cache, accumulate=False)\n",
         "model.negative_elbo_backward(1.0, cache)\n")],
    "the update before the backward": [
        ("training.py", "    model.negative_elbo_backward(1.0, cache, accumulate=False)\n    optimizer.step()",
         "    optimizer.step()\n    model.negative_elbo_backward(1.0, cache, accumulate=False)")],
    "an update made on a NaN or infinite loss": [
        ("training.py", "    if not np.isfinite(loss):", "    if np.isnan(loss) and np.isinf(loss):")],  # never true
    "a forgotten path": [
        ("tiny_vae.py", "[dmu + dmu_kl, dlog_var + dlog_var_kl]", "[dmu, dlog_var]"),
        ("vae.py", "[dmu + dmu_kl, dlog_var + dlog_var_kl]", "[dmu, dlog_var]")],
    "a missing 1/B": [
        ("tiny_vae.py", "np.full(B, -dloss / B)", "np.full(B, -dloss)"),
        ("tiny_vae.py", "np.full(B, dloss * beta / B)", "np.full(B, dloss * beta)"),
        ("vae.py", "np.full(B, -dloss / B, dtype=dtype)", "np.full(B, -dloss, dtype=dtype)"),
        ("vae.py", "np.full(B, dloss * cache.beta / B, dtype=dtype)", "np.full(B, dloss * cache.beta, dtype=dtype)")],
    "the bound without log-sum-exp": [
        ("estimators.py", "return log_w_max + np.log(np.sum(np.exp(log_w - log_w_max[:, None]), axis=1)) - math.log(k)",
         "return np.log(np.mean(np.exp(log_w), axis=1))")],
}
# Other ways of writing an exhibit's bug, each named too.
SPELLINGS = [
    ("Adam without bias correction", [  # eps inside the square root
        ("optim.py", "m_hat = m / (1 - beta1**self.t)", "m_hat = m"),
        ("optim.py", "v_hat = v / (1 - beta2**self.t)", "v_hat = v"),
        ("optim.py", "m_hat / (np.sqrt(v_hat) + self.eps)", "m_hat / np.sqrt(v_hat + self.eps)")]),
]


def test_every_exhibit_has_a_test():
    assert set(EXHIBITS) == {bug.name for bug in museum.BUGS}


@pytest.mark.parametrize("name, edits", [*EXHIBITS.items(), *SPELLINGS])
def test_the_museum_names_each_classic_bug(name, edits, solved, tmp_path):
    student = shutil.copytree(solved / "studentvae", tmp_path / "student" / "studentvae").parent
    for file, right, wrong in edits:
        source = (student / "studentvae" / file).read_text()
        assert right in source, (file, right)
        (student / "studentvae" / file).write_text(source.replace(right, wrong))
    tasks = sorted({bug.task for bug in museum.BUGS if bug.name == name})
    report = mark(student, tasks)
    assert [bug.name for bug in report.bugs] == [name] * len(tasks)
    for bug in report.bugs:
        assert f"this is {name.upper()}. " in report.table()
        assert f"Reread docs/{bug.reread}." in report.table()
    assert FAIL in {o.status for o in report.outcomes}


def test_a_consistent_wrong_pair_is_told_its_forward_is_wrong(solved, tmp_path):
    """The variance as the scale, differentiated faithfully: told so, and no point for a gradient check of it."""
    student = shutil.copytree(solved / "studentvae", tmp_path / "s" / "studentvae").parent
    for file, right, wrong in EXHIBITS["the variance used as the standard deviation"]:
        path = student / "studentvae" / file
        path.write_text(path.read_text().replace(right, wrong))
    report = mark(student, ["reparameterize"])
    found = statuses(report)
    assert found["reparameterize", "gradient check"] == FAIL  # it counts only with a right forward
    assert found["reparameterize", "forward: moments of z"] == FAIL
    assert "your backward does match central differences of your own forward" in report.table()
