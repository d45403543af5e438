"""The handout runs without scratchvae; the self-check uses stored reference values; marks mean what they say.

A handout's Python runs here with ``python -S`` and ``PYTHONPATH`` = the handout
and site-packages: no ``.pth`` file is read, so the editable scratchvae is not
importable (a test checks that it is not).
"""

import ast
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from test_docs import FENCE, MD_LINK, anchors

import scratchvae
from scratchvae.classroom import commands, judge, toolkit
from scratchvae.classroom import handout as handout_module
from scratchvae.classroom.edition import taught
from scratchvae.classroom.handout import LECTURE, PACKAGE, cut, solution_lines, update_handout, write_handout
from scratchvae.classroom.mark import find_submissions, mark_submission
from scratchvae.classroom.sandbox import MB, Limits
from scratchvae.classroom.selfcheck import TaskNotDone, check
from scratchvae.classroom.tasks import TASKS, select
from scratchvae.lecture import gaussian, gradcheck, likelihoods

QUICK = Limits(wall=6.0, cpu=4, memory=768 * MB, output=1 * MB)


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    return write_handout(tmp_path_factory.mktemp("handout") / "course")


def run(project, *code, module=None):
    """Python in ``project`` that sees the handout and site-packages, and not scratchvae."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), sysconfig.get_paths()["purelib"]])}
    args = ["-m", module, *code] if module else ["-c", *code]
    return subprocess.run([sys.executable, "-S", *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def fill(project, *modules):
    """Write the lecture's bodies into these modules of a handout (a student who did those tasks)."""
    for module in modules:
        (project / PACKAGE / f"{module}.py").write_text(cut(module, (LECTURE / f"{module}.py").read_text(), ()))


def test_no_solution_line_is_anywhere_in_the_handout(handout):
    secret = solution_lines(set(TASKS))
    assert len(secret) > 100
    found = {}
    for path in handout.rglob("*"):
        if path.suffix == ".npz":  # the stored reference values: their text (messages) too
            with np.load(path) as npz:
                text = str(npz["__record__"])
        elif path.is_file() and path.suffix != ".png":  # the docs' figures are images
            text = path.read_text()
        else:
            continue
        for line in text.splitlines():
            if line.strip() in secret:
                found[str(path.relative_to(handout))] = line.strip()
    assert not found, found
    stubs = (handout / PACKAGE / "dense.py").read_text()
    assert stubs.count('raise NotImplementedError("dense: see docs/layers.md#dense")') == 2
    assert sum(path.read_text().count("NotImplementedError(") for path in (handout / PACKAGE).glob("*.py")) >= 18


def test_the_handout_installs_and_imports_without_scratchvae(handout):
    project = (handout / "pyproject.toml").read_text()
    assert "scratchvae" not in project.partition("[tool.setuptools]")[0].partition("dependencies")[2]
    for needed in ("numpy", "matplotlib", "tqdm", "jupyterlab", "jupytext", "ipykernel"):
        assert f'"{needed}' in project
    result = run(handout, "import studentvae, coursetools, coursetools.train, coursetools.evaluation, "
                          "coursetools.plots, coursetools.latent_plots, coursetools.selfcheck\n"
                          "try:\n    import scratchvae\nexcept ImportError:\n    print('no scratchvae')")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no scratchvae\n"
    assert not any("scratchvae." in line for path in (handout / toolkit.KIT).glob("*.py")
                   for line in path.read_text().splitlines() if line.lstrip().startswith(("import", "from")))


def test_the_check_stops_at_a_stub_and_passes_the_written_task(handout, tmp_path):
    stub = run(handout, "dense", module="coursetools.check")
    assert stub.returncode == 1, stub.stderr
    assert stub.stdout == ("dense: not written yet (studentvae/dense.py raises NotImplementedError); "
                           "see docs/layers.md#dense\n")
    student = shutil.copytree(handout, tmp_path / "student")
    fill(student, "dense")
    done = run(student, "dense", module="coursetools.check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"dense, {check}: ok" + rest.partition(": ok")[2]
                                        for check, rest in zip(("forward: values", "backward: values",
                                                                "gradient check", "each gradient in its input's dtype"),
                                                               done.stdout.splitlines(), strict=True)]
    waits = run(student, "tiny_vae", module="coursetools.check")
    assert waits.returncode == 1 and waits.stdout.startswith("tiny_vae: waits for task reparameterize, not written")
    assert run(handout, "nonsense", module="coursetools.check").returncode == 2


def test_the_handouts_tests_call_the_self_check(handout):
    tests = (handout / "tests" / "test_tasks.py").read_text()
    assert "from coursetools.selfcheck import check" in tests and "scratchvae" not in tests
    assert tests.count("@pytest.mark.") == len(TASKS)


def test_update_refreshes_the_course_and_keeps_every_student_file(handout, tmp_path):
    student = shutil.copytree(handout, tmp_path / "student")
    (student / PACKAGE / "dense.py").write_text("# my dense, half written\n")
    (student / PACKAGE / "notes.py").write_bytes(b"x = 1  # mine\n")
    before = {p: p.read_bytes() for p in (student / PACKAGE).rglob("*") if p.is_file()}
    (student / toolkit.KIT / "judge.py").unlink()
    (student / "README.md").write_text("stale")
    lesson = next((student / "lessons").glob("01_*.ipynb"))
    lesson.write_text(lesson.read_text().replace("zero_loss = None", "zero_loss = 11.09  # mine"))
    (student / "lessons" / "runs").mkdir()
    (student / "lessons" / "runs" / "my_vae.npz").write_bytes(b"my model")
    kept = update_handout(student)
    assert {p: p.read_bytes() for p in (student / PACKAGE).rglob("*") if p.is_file()} == before
    # the student's lessons are kept whole beside the new ones, and the trained model moves over
    assert kept.parent == student and kept.name.startswith("lessons-before-update-")
    assert "zero_loss = 11.09  # mine" in (kept / lesson.name).read_text()
    assert "# mine" not in (student / "lessons" / lesson.name).read_text()
    assert (student / "lessons" / "runs" / "my_vae.npz").read_bytes() == b"my model"
    assert (student / toolkit.KIT / "judge.py").is_file() and "your handout" in (student / "README.md").read_text()
    with pytest.raises(FileExistsError):
        write_handout(student)
    with pytest.raises(FileNotFoundError):
        update_handout(tmp_path / "nothing")


def test_the_update_command_says_where_the_old_lessons_are(handout, tmp_path, capsys):
    from scratchvae.classroom import commands

    student = shutil.copytree(handout, tmp_path / "student")
    assert commands.main(["handout", "--update", str(student)]) == 0
    printed = capsys.readouterr().out
    kept = re.search(r"your lessons as they were are in (\S+),", printed)[1]
    assert Path(kept).is_dir() and (student / "lessons").is_dir(), printed


# --- The handout as a student receives it (issue 21) ----------------------------------------------

ROOT = Path(scratchvae.__file__).resolve().parents[1]


def _third_party(paths):
    """The top-level modules outside the standard library and scratchvae that ``paths`` import."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"scratchvae"}


def test_a_plain_install_brings_what_the_classroom_imports():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    required = {re.match(r"[\w-]+", line)[0] for line in setup["options"]["install_requires"].split()}
    needed = _third_party((ROOT / "scratchvae" / "classroom").glob("*.py"))
    assert "jupytext" in needed and needed <= required, sorted(needed - required)


@pytest.mark.parametrize("existing", [False, True])
def test_a_failure_late_in_writing_leaves_the_folder_as_it_was(tmp_path, monkeypatch, existing):
    folder = tmp_path / "course"
    if existing:
        folder.mkdir()
    written = []

    def fail(order):  # the README comes last: by then the package, tools, docs and lessons are written
        written.extend(tmp_path.glob(f".course.partial-*/{PACKAGE}/*.py"))
        raise RuntimeError("disk full")

    monkeypatch.setattr(handout_module, "_readme", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_handout(folder)
    assert written
    assert [p.name for p in tmp_path.iterdir()] == (["course"] if existing else [])
    assert not existing or not any(folder.iterdir())


def test_without_jupytext_the_command_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jupytext", None)  # import jupytext now fails
    monkeypatch.delitem(sys.modules, "scratchvae.classroom.edition")
    assert commands.main(["handout", str(tmp_path / "course")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("scratchvae classroom handout: error: the handout writes the lessons as notebooks "
                            "with jupytext, which is not installed") and "Traceback" not in error
    assert not any(tmp_path.iterdir())


def test_the_readme_says_to_install_the_test_extra_before_pytest(handout):
    readme = (handout / "README.md").read_text()
    assert 'pip install -e ".[test]"' in readme and "pytest -m dense" in readme
    assert "pip install -e . " not in readme
    assert '"pytest"' in (handout / "pyproject.toml").read_text().partition("[project.optional-dependencies]")[2]


def test_the_readme_lists_the_tasks_in_the_order_the_lessons_set_them(handout):
    rows = re.findall(r"^\| (\d+) \| \[(\d+)\]\(lessons/(\w+)\.ipynb\) \| `(\w+)` \|",
                      (handout / "README.md").read_text(), re.M)
    checked = [(lesson.stem, task) for lesson in sorted((handout / "lessons").glob("*.py"))
               for task in re.findall(r'^check\("(\w+)"\)', lesson.read_text(), re.M)]
    assert [(stem, task) for _, _, stem, task in rows] == checked
    assert [int(k) for k, *_ in rows] == list(range(1, len(TASKS) + 1))
    assert all(int(number) == int(stem[:2]) for _, number, stem, _ in rows)
    assert [task for *_, task in rows] == list(taught())


def _links(project):
    """``(file, folder it is relative to, target)`` of each relative link a student can follow in a handout:
    the README's, the docs', the lessons' markdown cells' and the ``docs/...`` references in ``studentvae/``."""
    found = [(project / "README.md", project, t) for t in MD_LINK.findall(FENCE.sub("", (project / "README.md")
                                                                                     .read_text()))]
    for page in sorted((project / "docs").glob("*.md")):
        found += [(page, page.parent, t) for t in MD_LINK.findall(FENCE.sub("", page.read_text()))]
    for notebook in sorted((project / "lessons").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        text = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown")
        found += [(notebook, notebook.parent, t) for t in MD_LINK.findall(text)]
    for module in sorted((project / PACKAGE).glob("*.py")):
        found += [(module, project, t) for t in re.findall(r"\bdocs/[\w-]+\.md(?:#[\w-]+)?", module.read_text())]
    return [(where, base, target) for where, base, target in found if not re.match(r"\w+:", target)]


def test_every_link_in_the_handout_resolves_inside_it(handout):
    links = _links(handout)
    assert len(links) > 300
    assert "](performance.md" in (ROOT / "docs" / "README.md").read_text()  # a page the handout leaves out
    broken = []
    for where, base, target in links:
        path, _, anchor = target.partition("#")
        file = (base / path).resolve() if path else where
        if not file.is_relative_to(handout.resolve()) or not file.is_file():
            broken.append(f"{where.relative_to(handout)}: {target} is not in the handout")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{where.relative_to(handout)}: {target}: no such anchor")
    assert not broken, "\n".join(broken)


RESOLVE = """
import importlib, sys
for name in sys.argv[1:]:  # the module part, then attributes
    module, *attributes = name.split(".")
    obj = importlib.import_module(module)
    for part in attributes:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
"""


def test_the_docs_name_the_handouts_code_and_checks(handout):
    implemented, checked = [], []
    for page in sorted((handout / "docs").glob("*.md")):
        for line in page.read_text().splitlines():
            if line.startswith("Implemented by:"):
                implemented += re.findall(r"`([\w.]+)`", line)
            elif line.startswith("Checked by:"):
                checked += re.findall(r"`([^`]+)`", line)
    assert implemented and all(name.startswith((f"{PACKAGE}.", f"{toolkit.KIT}.")) for name in implemented)
    assert {"dense", "reparameterize", "adam", "train_step"} <= {c.rpartition(" ")[2] for c in checked} <= set(TASKS)
    assert all(c.startswith(f"python -m {toolkit.KIT}.check ") for c in checked)
    assert "Checked by: `python -m coursetools.check reparameterize`" in (handout / "docs" / "gaussian.md").read_text()
    result = run(handout, RESOLVE, *sorted(set(implemented)))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("source, why", [
    ("from scratchvae.engine import kernels\n", "imports scratchvae.engine"),
    ("def f():\n    import numba\n", "imports numba"),
    ("out = np.maximum(x, 0)\n", "holds a line of a lecture solution"),
])
def test_a_tool_that_would_leak_or_reach_the_engine_stops_the_handout(source, why, tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "bad.py").write_text(source)
    monkeypatch.setattr(toolkit, "TOOLS", tools)
    monkeypatch.setattr(toolkit, "NEEDED", ("bad",))
    monkeypatch.setattr(toolkit, "lesson_tools", lambda: set())
    with pytest.raises(toolkit.ToolkitError, match=why):
        toolkit.write_toolkit(tmp_path / "project", solution_lines(set(TASKS)))
    assert not (tmp_path / "project").exists()


def test_the_toolkit_follows_the_lessons_imports():
    assert {"data", "train", "plots", "evaluation", "latent_plots"} <= toolkit.lesson_tools() | set(toolkit.NEEDED)
    names = toolkit.closure({"train"})
    assert {"train", "data", "download", "evaluation", "progress", "checkpoints"} <= set(names)
    assert "cli" not in names and "run_commands" not in names


def test_the_judges_numbers_are_the_lectures():
    assert (judge.TOLERANCE, judge.FLOOR) == (gradcheck.TOLERANCE, gradcheck.FLOOR)
    values = {k: np.sin(1 + k * 1e-3) for k in (-2, -1, 1, 2)}
    assert judge.slope(np.array([values[k] for k in (-2, -1, 1, 2)]), 1e-3) == gradcheck.five_point_slope(values, 1e-3)


# --- The self-check agrees with the marker ----------------------------------------------------

BUGGY = {  # edits of a finished package: (file, right, wrong)
    "kl_standard_normal": ("gaussian.py", "kl = 0.5 * np.sum(np.expm1(log_var)",
                           "kl = -0.5 * np.sum(np.expm1(log_var)"),
    "dense": ("dense.py", "db = dout.sum(axis=0)", "db = dout"),
    "sigmoid": ("activations.py", "out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))",
                "out = np.exp(x) / (1 + np.exp(x))"),
}


def _statuses(stdout):
    """{(task, check): "ok" or the status} from the self-check's lines."""
    found = {}
    for line in stdout.splitlines():
        task, _, rest = line.partition(", ")
        check_name, _, verdict = rest.rpartition(": ok (") if ": ok (" in rest else rest.partition(": FAIL: ")
        if task in TASKS and check_name:
            found[task, check_name] = "ok" if ": ok (" in rest else judge.FAIL
    return found


def test_the_self_check_on_stored_values_agrees_with_the_marker(solved, tmp_path):
    student = shutil.copytree(solved, tmp_path / "student", ignore=shutil.ignore_patterns("lessons"))
    for file, right, wrong in BUGGY.values():
        path = student / PACKAGE / file
        assert right in path.read_text()
        path.write_text(path.read_text().replace(right, wrong))
    tasks = [*BUGGY, "relu"]
    selfcheck = run(student, *tasks, module="coursetools.check")
    assert selfcheck.returncode == 1
    ours = _statuses(selfcheck.stdout)
    (submission,) = find_submissions([student])
    report = mark_submission(submission, select(tasks), QUICK, None)
    marker = {(o.task, o.check): "ok" if o.status == judge.PASS else o.status for o in report.outcomes}
    assert ours == marker
    assert judge.FAIL in marker.values() and "ok" in marker.values()
    for bug in report.bugs:
        assert f"this is {bug.name.upper()}." in selfcheck.stdout


# --- Marks that mean what they say (issue 23, section 5) ----------------------------------------


def _lecture(name):
    module, _, qualname = name.partition(".")
    return getattr(__import__(f"scratchvae.lecture.{module}", fromlist=["x"]), qualname)


def _zeros(task):
    """An all-zeros submission of an op task: a forward of zeros, a backward of zeros."""
    forward, backward = task.options["forward"], task.options["backward"]

    def zero_forward(*args):
        return _lecture(forward)(*args)[0] * 0.0, args

    def zero_backward(dout, args):
        return tuple(np.zeros_like(np.asarray(args[task.options["inputs"].index(n)], dtype=float))
                     for n in task.options["wrt"])

    return {forward: zero_forward, backward: zero_backward}


OP_TASKS = [name for name, task in TASKS.items() if task.probe == "op" and not task.given_forward]


@pytest.mark.parametrize("name", OP_TASKS)
def test_an_all_zeros_submission_earns_nothing(name, capsys):
    with pytest.raises(TaskNotDone, match=f"^{name}: "):
        check(name, _zeros(TASKS[name]))
    printed = capsys.readouterr().out
    assert ": ok" not in printed and "-0 times" not in printed, printed


def test_an_all_zeros_forward_and_backward_are_called_that(capsys):
    with pytest.raises(TaskNotDone):
        check("relu", _zeros(TASKS["relu"]))
    printed = capsys.readouterr().out
    assert "relu, forward: values: FAIL: relu_forward's output, element" in printed
    assert "every element is zero" in printed
    assert "relu, gradient check: FAIL: your backward does match central differences of your own forward" in printed
    assert "faithful derivative" not in printed


def test_a_wrong_array_is_described_without_minus_zero():
    expected = np.array([-1.0, 2.0, -3.0])
    assert judge._difference("dx", expected, np.zeros(3)).endswith("; every element is zero")
    assert judge._difference("dx", expected, -expected).endswith("; every element has the opposite sign")
    assert judge._difference("dx", expected, 2 * expected).endswith("; every element is 2 times the expected value")


def test_x_restored_counts_only_with_right_values(capsys):
    def zero_gradient(f, x, dout, h=gradcheck.STEP):
        return np.zeros_like(x)

    with pytest.raises(TaskNotDone):
        check("numerical_gradient", {"gradcheck.numerical_gradient": zero_gradient})
    assert "numerical_gradient, x restored: FAIL: x is as it was, but this counts only when 'values' passes" in (
        capsys.readouterr().out)


def test_the_kl_sign_bug_is_named_only_when_the_forward_shows_it(capsys):
    def flipped_backward(dkl, cache):
        dmu, dlog_var = gaussian.kl_standard_normal_backward(dkl, cache)
        return -dmu, dlog_var

    with pytest.raises(TaskNotDone):
        check("kl_standard_normal", {"gaussian.kl_standard_normal_backward": flipped_backward})
    printed = capsys.readouterr().out
    assert "kl_standard_normal, forward: values: ok" in printed
    assert "opposite sign" in printed and "WRONG SIGN" not in printed


def test_an_overflowing_bernoulli_is_named_with_its_page(capsys):
    def naive_forward(x, logits):
        cache = likelihoods.bernoulli_log_likelihood_forward(x, logits)[1]
        return np.sum(x * logits - np.log(1 + np.exp(logits)), axis=1), cache

    with np.errstate(over="ignore"), pytest.raises(TaskNotDone):
        check("bernoulli_log_likelihood", {"likelihoods.bernoulli_log_likelihood_forward": naive_forward})
    printed = capsys.readouterr().out
    assert "this is THE SOFTPLUS AS LOG(1 + E^L)." in printed and "Reread docs/layers.md#softplus." in printed
    assert "validate.py" not in printed


def test_a_stored_record_reads_back_as_it_was(tmp_path):
    from scratchvae.classroom import reference
    from scratchvae.classroom.selfcheck import load_record, save_record

    record = reference.record("kl_standard_normal")
    save_record(tmp_path / "kl.npz", record)
    again = load_record(tmp_path / "kl.npz")
    assert again.task.name == "kl_standard_normal" and json.dumps(again.task.options) == json.dumps(record.task.options)
    assert [e.name for e in again.exhibits] == [e.name for e in record.exhibits]
    for section, outputs in record.reference.items():
        for name, value in outputs.items():
            np.testing.assert_array_equal(again.reference[section][name], value)
