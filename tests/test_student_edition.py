"""The student's edition of the lessons (``DIR/lessons/`` of a handout): no answers, the student's code.

One handout is written per session. A lesson runs as a script in its own tmp folder, in
quick mode, with ``scratchvae`` blocked (a meta-path finder raises on importing it), on a
copy of the handout whose ``studentvae/`` is where a student stands at that lesson: the
tasks of earlier lessons done (the lecture's bodies), the rest stubs.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scratchvae.classroom.edition import TUTORIALS, taught
from scratchvae.classroom.handout import LECTURE, PACKAGE, cut, solution_lines, write_handout
from scratchvae.classroom.tasks import TASKS

LESSONS = sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py"))
TAUGHT = taught()  # task -> the lesson that checks it
WITH_TASKS = sorted(set(TAUGHT.values()))
TRAINING = "12_train_mnist.py"
# Lesson-level your-turns checked in the lesson itself: with the answer gone they stop the lesson there.
OWN_CHECK = {
    "00_the_objective.py": "negative_elbo returns None: fill in the cell above",
    "01_tiny_vae.py": "zero_loss is None, not 16 log 2",
    "03_activations_and_stability.py": "stable_log_sigmoid(-120) is -inf, not -120",
    "04_checking_a_gradient.py": "flip the sign of dmu",
    "05_reparameterisation.py": "moment_test passes buggy_forward",
    "06_the_kl_term.py": "swap both means and variances",
    "07_likelihoods.py": "best_log_var 0.000 is not within",
    "08_elbo_on_an_exact_model.py": "is not within 0.1 of -log diag(Lambda)",
    "09_the_whole_chain.py": "is not the KL path's gradient",
    "10_estimators.py": "add the baselines E[f] = 2 and f0*",
    "11_optimisers.py": "your adam loop and the Adam class take different steps",
    "12_train_mnist.py": "train_elbo is None, not within 10 nats",
    "13_evaluating_honestly.py": "compute twenty for each",
    "14_the_latent_space.py": "is 0.0, not 1/3",
}
MNIST = ("07_", "09_", "10_", "12_", "13_", "14_")
RUN = """
import runpy, sys
class NoScratchvae:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'scratchvae':
            raise ImportError('the student edition imported ' + name)
sys.meta_path.insert(0, NoScratchvae())
import builtins
try:
    runpy.run_path(sys.argv[1], run_name='__main__')
finally:  # counted up to a lesson's own check too
    print('samples drawn by your reparameterize_forward:', getattr(builtins, 'student_samples', 0), file=sys.stderr)
    print('steps taken by your train_step:', getattr(builtins, 'student_steps', 0), file=sys.stderr)
"""
# Appended to the student's gaussian.py: counts the rows their reparameterize_forward samples (in
# builtins, which the check cells' reloads leave alone), so that a test sees whose op trained the model.
COUNTER = """
import builtins as _builtins

_reparameterize_forward = reparameterize_forward


def reparameterize_forward(mu, log_var, eps):
    _builtins.student_samples = getattr(_builtins, "student_samples", 0) + len(mu)
    return _reparameterize_forward(mu, log_var, eps)
"""
# Appended to the student's training.py: counts the calls of their train_step, which the tool kit's fit
# imports from it, so that a test sees whose step trained the model.
STEP_COUNTER = """
import builtins as _builtins

_train_step = train_step


def train_step(*args, **kwargs):
    _builtins.student_steps = getattr(_builtins, "student_steps", 0) + 1
    return _train_step(*args, **kwargs)
"""


@pytest.fixture(scope="session")
def handout(tmp_path_factory):
    return write_handout(tmp_path_factory.mktemp("edition") / "handout")


def test_every_task_sits_in_one_lesson():
    assert sorted(TAUGHT) == sorted(TASKS)


def test_no_answer_anywhere_in_the_students_edition(handout):
    forbidden = solution_lines(set(TASKS))
    lessons = sorted((handout / "lessons").iterdir())
    assert {p.name for p in lessons} == {f"{Path(n).stem}{s}" for n in LESSONS for s in (".py", ".ipynb")}
    for path in lessons:
        text = path.read_text()  # cells, outputs and metadata alike
        lines = {line.strip().lstrip("#").strip() for line in text.replace("\\n", "\n").splitlines()}
        assert not forbidden & lines, (path.name, sorted(forbidden & lines)[:3])
        assert "worked_answer" not in text and '"answer"' not in text and "source_hidden" not in text
        assert not re.search(r"^(from|import) scratchvae\b", text, re.M), path.name
        assert '"outputs": [\n' not in text.replace('"outputs": []', "") or path.suffix == ".py"


def test_check_cells_run_on_the_students_code(handout):
    text = (handout / "lessons" / "02_dense_layer_and_the_mlp.py").read_text()
    assert 'check("dense")  # checks your code' in text and 'check("dense", answer)' not in text
    assert "from coursetools.selfcheck import check" in text
    assert "](../docs/layers.md#dense)" in text  # the handout's docs
    assert "docs/exercises.md" not in (handout / "lessons" / "01_tiny_vae.py").read_text()  # teachers' page


def _at(handout, tmp_path, lesson, stub_own):
    """A copy of the handout as a student at ``lesson`` has it; its own tasks stubs if ``stub_own``."""
    project = tmp_path / "project"
    shutil.copytree(handout, project)
    here = LESSONS.index(lesson)
    stubbed = [t for t in TASKS if LESSONS.index(TAUGHT[t]) > here
               or (stub_own and TAUGHT[t] == lesson)]
    for path in LECTURE.glob("*.py"):
        (project / PACKAGE / path.name).write_text(cut(path.stem, path.read_text(), stubbed))
    return project


def _run(project, lesson, tmp_path):
    """Run ``lesson`` of ``project``'s edition as a script, from ``tmp_path/work``, in quick mode."""
    env = {**os.environ, "SCRATCHVAE_QUICK": "1", "MPLBACKEND": "Agg", "PYTHONPATH": str(project),
           "OPENBLAS_NUM_THREADS": "1"}
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", RUN, str(project / "lessons" / lesson)], cwd=work,
                          env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("lesson", WITH_TASKS)
def test_an_unwritten_task_stops_its_lesson_at_its_check(handout, tmp_path, lesson):
    if lesson.startswith(MNIST) and not os.environ.get("SCRATCHVAE_DATA"):
        pytest.skip("needs MNIST: set SCRATCHVAE_DATA")
    first = next(t for t in TASKS if TAUGHT[t] == lesson)
    result = _run(_at(handout, tmp_path, lesson, stub_own=True), lesson, tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "TaskNotDone" in last and first in last, result.stderr[-2000:]


@pytest.mark.parametrize("lesson", [n for n in LESSONS if n != TRAINING])  # TRAINING: the test below
def test_a_lesson_runs_on_the_students_code_alone(handout, tmp_path, lesson):
    if lesson.startswith(MNIST) and not os.environ.get("SCRATCHVAE_DATA"):
        pytest.skip("needs MNIST: set SCRATCHVAE_DATA")
    result = _run(_at(handout, tmp_path, lesson, stub_own=False), lesson, tmp_path)
    assert "imported scratchvae" not in result.stderr
    _ran_to_its_own_check(result, lesson)


def _ran_to_its_own_check(result, lesson):
    """``lesson`` ran to its end, or to its own your-turn, which the student has not written."""
    if lesson in OWN_CHECK:
        assert result.returncode != 0 and OWN_CHECK[lesson] in result.stderr.strip().splitlines()[-1], (
            result.stderr[-3000:])
    else:
        assert result.returncode == 0, result.stderr[-3000:]


def test_the_training_lesson_trains_on_the_students_ops_and_the_next_lesson_evaluates_that_model(
        handout, tmp_path):
    if not os.environ.get("SCRATCHVAE_DATA"):
        pytest.skip("needs MNIST: set SCRATCHVAE_DATA")
    project = _at(handout, tmp_path, "13_evaluating_honestly.py", stub_own=False)
    for name, counter in (("gaussian.py", COUNTER), ("training.py", STEP_COUNTER)):
        with open(project / PACKAGE / name, "a") as module:
            module.write(counter)
    trained = _run(project, TRAINING, tmp_path)
    _ran_to_its_own_check(trained, TRAINING)
    # quick mode: 20000 images, 3 epochs, every image sampled once an epoch by the student's op ...
    samples = int(re.search(r"samples drawn by your reparameterize_forward: (\d+)", trained.stderr)[1])
    assert samples >= 3 * 20000, samples
    # ... in 3 epochs of ceil(20000 / 64) = 313 steps, each the student's train_step (and the check's runs)
    steps = int(re.search(r"steps taken by your train_step: (\d+)", trained.stderr)[1])
    assert steps >= 3 * 313, steps
    assert "Saved to runs/my_vae.npz" in trained.stdout and (tmp_path / "work" / "runs" / "my_vae.npz").is_file()
    evaluated = _run(project, "13_evaluating_honestly.py", tmp_path)
    _ran_to_its_own_check(evaluated, "13_evaluating_honestly.py")  # after loading the model
    assert "Your model from lesson 12, runs/my_vae.npz: A 784-256-2 VAE" in evaluated.stdout, evaluated.stdout
