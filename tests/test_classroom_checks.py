"""Checks that once passed wrong answers, or hinted wrongly: each wrong answer now fails, saying why.

Run in this process by the self-check (``selfcheck.check`` with the functions to check in place of
the lecture's), on the public draws. The lecture's answers pass every check
(``test_the_lecture_passes_every_new_check``); the museum's exhibits are named by the marker in
``tests/test_classroom.py::test_the_museum_names_each_classic_bug``.
"""

import numpy as np
import pytest

from scratchvae.classroom import judge, reference
from scratchvae.classroom.edition import worked_answer
from scratchvae.classroom.selfcheck import TaskNotDone, check
from scratchvae.classroom.tasks import TASKS, UNDERFLOW
from scratchvae.lecture import estimators, gradcheck
from scratchvae.lecture.activations import SigmoidCache, sigmoid_backward


def _checked(task, functions, capsys):
    """What the self-check printed for ``functions``, and its one-line verdict."""
    with pytest.raises(TaskNotDone) as verdict:
        check(task, functions)
    return capsys.readouterr().out, str(verdict.value)


@pytest.mark.parametrize("task", ["sigmoid", "numerical_gradient", "importance_weighted"])
def test_the_lecture_passes_every_new_check(task, capsys):
    check(task, worked_answer(task))
    printed = capsys.readouterr().out
    for title, _ in judge.checks_for(TASKS[task], TASKS[task].case()):
        assert f"{task}, {title}: ok (" in printed, printed


# --- The pattern of a wrong array -------------------------------------------------------


def test_a_factor_is_named_only_when_every_wrong_element_has_it():
    expected = np.array([0.0, 2.0, 0.0, 3.0])
    assert judge._difference("v", expected, np.array([1.0, 2.0, 1.0, 3.0])).endswith("(2 of 4 elements wrong)")
    assert judge._difference("v", expected, 2 * expected).endswith("; every element is 2 times the expected value")
    assert judge._difference("v", expected, -expected).endswith("; every element has the opposite sign")


def test_accumulate_not_passed_on_gets_no_false_factor(capsys):
    def backward(self, dout, accumulate=True):
        for module in reversed(self.modules):
            dout = module.backward(dout)  # accumulate left out: always True
        return dout

    printed, verdict = _checked("sequential", {"modules.Sequential.backward": backward}, capsys)
    assert "accumulate passed on: FAIL: calls, element (0, 1): expected 0, got 1 (3 of 6 elements wrong)\n" in printed
    assert "times the expected value" not in printed
    assert verdict.startswith("sequential: 1 of 2 checks not passed")


# --- The stable sigmoid ---------------------------------------------------------------------


def textbook_sigmoid_forward(x):
    """1 / (1 + e^{-x}): right values in float64, but e^{-x} overflows for x < -709."""
    out = 1 / (1 + np.exp(-x))
    return out, SigmoidCache(out)


def both_branches_sigmoid_forward(x):
    """The two branches in np.where, which computes both: e^{-x} and e^x overflow where they are not taken."""
    out = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))
    return out, SigmoidCache(out)


@pytest.mark.parametrize("forward", [textbook_sigmoid_forward, both_branches_sigmoid_forward])
def test_a_sigmoid_that_overflows_fails_the_extreme_inputs(forward, capsys):
    with np.errstate(over="ignore", invalid="ignore"):
        printed, verdict = _checked("sigmoid", {"activations.sigmoid_forward": forward,
                                                "activations.sigmoid_backward": sigmoid_backward}, capsys)
    assert ("sigmoid, extreme inputs: FAIL: raised FloatingPointError: overflow encountered in exp: the extreme "
            'inputs are run again with np.errstate(over="raise"), and a stable form never overflows') in printed
    assert "sigmoid, forward: values: ok" in printed
    assert verdict.startswith("sigmoid: 1 of 4 checks not passed (extreme inputs)")


# --- The importance-weighted bound ------------------------------------------------------------


def test_the_underflow_case_has_log_weights_below_exp_s_range():
    bound = reference.record("importance_weighted").reference["underflow"]["bound"]
    assert np.all(bound < -745) and np.all(bound > 7 * UNDERFLOW), bound  # exp(-745) rounds to 0


def naive_bound(model, x, k, rng):
    """log((1/k) sum_i exp(log w_i)) with the log-weights of the lecture's bound, one sample each."""
    log_w = estimators.importance_weighted_bound(model, np.repeat(x, k, axis=0), 1, rng).reshape(len(x), k)
    return np.log(np.mean(np.exp(log_w), axis=1))


def test_a_bound_without_log_sum_exp_fails_and_is_told_so(capsys):
    with np.errstate(divide="ignore"):
        printed, verdict = _checked("importance_weighted", {"estimators.importance_weighted_bound": naive_bound},
                                    capsys)
    assert "importance_weighted, all examples at once: ok" in printed  # right where nothing underflows
    assert "log-weights near -800: no underflow: FAIL: bound, element (0,): expected -8" in printed
    assert ", got -inf (2 of 2 elements wrong)" in printed
    assert "this is THE BOUND WITHOUT LOG-SUM-EXP. " in printed
    assert "Reread docs/estimators.md#importance-weighted." in printed
    assert verdict.startswith("importance_weighted: 1 of 3 checks not passed (log-weights near -800")


# --- The numerical gradient ---------------------------------------------------------------------


def numerical_gradient_with(slope=gradcheck.five_point_slope, restore=True, copy=True):
    """A numerical_gradient as a student writes it, with a classic slip: the two-point ``slope``, x put
    back only when f returns (``restore`` False), or f's output kept as it is (``copy`` False)."""
    steps = (-1, 1) if slope is not gradcheck.five_point_slope else (-2, -1, 1, 2)

    def numerical_gradient(f, x, dout=1.0, h=gradcheck.STEP):
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            original, values = x[i], {}
            try:
                for k in steps:
                    x[i] = original + k * h
                    values[k] = np.array(f(x), dtype=np.float64) if copy else f(x)
            finally:
                if restore:
                    x[i] = original
            x[i] = original  # without the finally, reached only when f returned
            grad[i] = np.sum(dout * slope(values, h))
        return grad
    return numerical_gradient


def two_point_slope(values, h):
    return (values[1] - values[-1]) / (2 * h)


@pytest.mark.parametrize("slip, title, message", [
    ({"slope": two_point_slope}, "sin(10 x): the five-point stencil's accuracy",
     "(12 of 12 elements wrong); every element is 0.999983 times the expected value"),
    ({"restore": False}, "x restored when f raises",
     "f raised an exception on its second call, and x was left moved: x after f raised, element (0, 0)"),
    ({"copy": False}, "f returning x itself: its outputs copied", "(12 of 12 elements wrong); every element is zero"),
])
def test_each_slip_of_the_numerical_gradient_fails_one_check(slip, title, message, capsys):
    printed, verdict = _checked("numerical_gradient", {"gradcheck.numerical_gradient": numerical_gradient_with(**slip)},
                                capsys)
    assert f"numerical_gradient, {title}: FAIL: " in printed and message in printed, printed
    assert verdict.startswith(f"numerical_gradient: 1 of 5 checks not passed ({title})")
    named = "this is THE TWO-POINT CENTRAL DIFFERENCE. " in printed
    assert named == ("slope" in slip)


def _dense_uncast(dout, cache, input_grad=True):
    """The dense backward without its casts: dx comes back in dout's dtype, float64 for float32 x."""
    x, W = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def test_a_dense_gradient_in_the_wrong_dtype_fails_its_check_and_names_no_exhibit(capsys):
    with pytest.raises(TaskNotDone) as verdict:
        check("dense", {**worked_answer("dense"), "dense.dense_backward": _dense_uncast})
    printed = capsys.readouterr().out
    assert str(verdict.value).startswith("dense: 1 of 4 checks not passed (each gradient in its input's dtype)")
    assert "your dx is float64; expected float32, the dtype of x" in printed
    assert "Museum of classic bugs" not in printed  # the values are right: no exhibit's bug
