"""The training-step task: the lecture's step passes, a stub stops in one line, and the feedback says what is wrong.

The step is probed on stand-ins for the model and the optimizer (``probes.train_step``), in this
process, by the self-check. Each classic bug of the museum is named by the marker in
``tests/test_classroom.py::test_the_museum_names_each_classic_bug``.
"""

import numpy as np
import pytest

from scratchvae.classroom import judge, probes
from scratchvae.classroom.edition import worked_answer
from scratchvae.classroom.mark import reference_lookup, reference_sections
from scratchvae.classroom.selfcheck import TaskNotDone, check
from scratchvae.classroom.tasks import TASKS

CHECKS = [title for title, _ in judge.checks_for(TASKS["train_step"], TASKS["train_step"].case())]


def _checked(step, capsys):
    """What the self-check printed for ``step``, and its one-line verdict."""
    with pytest.raises(TaskNotDone) as verdict:
        check("train_step", {"training.train_step": step})
    return capsys.readouterr().out, str(verdict.value)


def test_the_lecture_step_passes_every_check(capsys):
    check("train_step", worked_answer("train_step"))
    printed = capsys.readouterr().out
    assert len(CHECKS) == 5
    for title in CHECKS:
        assert f"train_step, {title}: ok (" in printed, printed


def test_an_unwritten_step_stops_in_one_line_naming_the_task():
    def stub(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
        raise NotImplementedError("train_step: see docs/training.md#one-step")

    with pytest.raises(TaskNotDone) as verdict:
        check("train_step", {"training.train_step": stub})
    assert str(verdict.value) == ("train_step: not written yet (studentvae/training.py raises "
                                  "NotImplementedError); see docs/training.md#one-step")


def _noise_cast(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
    """eps drawn in float64, then cast: the same distribution, other numbers."""
    x = model.ops.binarize(images, rng, rows)
    eps = rng.standard_normal((len(x), model.latent_dim)).astype(model.dtype)
    loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
    if not np.isfinite(loss):
        raise FloatingPointError(loss)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    optimizer.step()
    return loss, cache


def _no_beta_and_no_cache(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
    """The step's KL weight left out, and the loss alone returned."""
    x = model.ops.binarize(images, rng, rows)
    eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)
    loss, cache = model.negative_elbo_forward(x, eps)
    if not np.isfinite(loss):
        raise FloatingPointError(loss)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    optimizer.step()
    return loss


def _backward_twice(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
    """A second backward after the update, and no guard: on a NaN loss it goes on to both."""
    x = model.ops.binarize(images, rng, rows)
    eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)
    loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    optimizer.step()
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    return loss, cache


def test_the_feedback_names_the_first_wrong_thing(capsys):
    printed, verdict = _checked(_noise_cast, capsys)
    assert "train_step, x, then eps, drawn from rng: FAIL: eps, element (0, 0): expected" in printed
    assert verdict.startswith("train_step: 1 of 5 checks not passed (x, then eps, drawn from rng)")

    printed, verdict = _checked(_no_beta_and_no_cache, capsys)
    beta = float(TASKS["train_step"].case().arrays["beta"])
    assert f"the beta given to the forward: expected {beta:.10g}, got none" in printed
    assert "returns the loss and the cache: FAIL: raised TypeError: cannot unpack" in printed
    assert "2 of 5 checks not passed" in verdict

    printed, verdict = _checked(_backward_twice, capsys)
    assert ("FAIL: your step called binarize, forward, backward, update, backward; "
            "expected binarize, forward, backward, update, each once") in printed
    assert ("FAIL: the forward returned a loss of nan, and your step raised no FloatingPointError: it called "
            "binarize, forward, backward, update, backward") in printed
    assert "Museum of classic bugs" not in printed  # two faults at once are no one exhibit


def _nan_guard_only(model, optimizer, images, rows, rng, beta=None, pixels="dynamic"):
    """A guard against NaN that lets an infinite loss through."""
    x = model.ops.binarize(images, rng, rows)
    eps = rng.standard_normal((len(x), model.latent_dim), dtype=model.dtype)
    loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
    if np.isnan(loss):
        raise FloatingPointError(loss)
    model.negative_elbo_backward(1.0, cache, accumulate=False)
    optimizer.step()
    return loss, cache


def test_a_secret_seed_draws_the_sizes_and_an_infinite_loss_too():
    task = TASKS["train_step"]
    cases = [task.case(seed) for seed in range(12)]
    assert {case.arrays["images"].shape for case in cases} != {task.case().arrays["images"].shape}
    seed = next(s for s, case in enumerate(cases) if np.isinf(case.arrays["bad_loss"]))
    case = cases[seed]
    reference = reference_sections(task, case=case)
    student = probes.run_probe("train_step", reference_lookup({"training.train_step": _nan_guard_only}), case)
    outcomes = {o.check: o for o in judge.judge_task(task, case, student, "", reference)}
    assert [title for title, o in outcomes.items() if o.status != judge.PASS] == [CHECKS[-1]]
    assert f"a loss of {case.arrays['bad_loss']}, and your step raised no FloatingPointError" in (
        outcomes[CHECKS[-1]].message)
    assert TASKS["train_step"].place == list(TASKS).index("adam") + 1
