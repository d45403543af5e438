"""The exercise checker marks the package's own functions right, each classic bug wrong.

A "perfect student" imports the package's implementations and must score full
marks; a student with one classic bug must lose exactly the checks that bug
breaks, with a message that names the problem; the starter file must score 0
without crashing the checker, whatever the student's code does.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchvae.classroom import marking
from scratchvae.lecture.tiny_vae import tiny_vae_backward
from scratchvae.classroom.exercises import (EXERCISES, check, main, template,
                                  tiny_vae_forward)
from scratchvae.lecture.gradcheck import assert_gradients_match

PERFECT = """
    from scratchvae.lecture.tiny_vae import tiny_vae_backward
    from scratchvae.lecture.gaussian import (
        kl_standard_normal_backward,
        kl_standard_normal_forward,
        reparameterize_backward,
        reparameterize_forward,
    )
    from scratchvae.lecture.activations import sigmoid_backward, sigmoid_forward
    from scratchvae.lecture.dense import dense_backward
    from scratchvae.lecture.likelihoods import (
        bernoulli_log_likelihood_backward,
        bernoulli_log_likelihood_forward,
    )
"""

# name: (exercise, the student's file, the checks it must fail, words the messages must contain)
BUGS = {
    "dW transposed": ("dense", """
        def dense_backward(dout, cache):
            x, W = cache
            return dout @ W.T, dout.T @ x, dout.sum(axis=0)
        """, {"backward: values", "gradient check"}, "(transposed?)"),
    "sigmoid derivative taken at x, not at the output": ("sigmoid", """
        import numpy as np

        def sigmoid_forward(x):
            return 1 / (1 + np.exp(-x)), x

        def sigmoid_backward(dout, cache):
            x = cache
            return dout * x * (1 - x)
        """, {"extreme inputs", "backward: values", "gradient check, your forward",
              "gradient check, reference forward"}, "not x (1 - x)"),
    "the variance as the scale of eps": ("reparameterize", """
        import numpy as np

        def reparameterize_forward(mu, log_var, eps):
            scale = np.exp(log_var)
            return mu + scale * eps, (eps, scale)

        def reparameterize_backward(dz, cache):
            eps, scale = cache
            return dz, dz * eps * scale
        """, {"forward: values", "forward: moments of z", "backward: values",
              "gradient check, reference forward"}, "it is exp(2 log_var)"),
    "KL without its 1/2, forward and backward": ("kl_standard_normal", """
        import numpy as np

        def kl_standard_normal_forward(mu, log_var):
            return np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1), (mu, log_var)

        def kl_standard_normal_backward(dkl, cache):
            mu, log_var = cache
            return dkl[:, None] * 2 * mu, dkl[:, None] * (np.exp(log_var) - 1)
        """, {"forward: values", "forward: Monte Carlo", "backward: values",
              "gradient check, reference forward"}, "every element is 2 times the expected value"),
    "KL backward without its 1/2": ("kl_standard_normal", """
        import numpy as np
        from scratchvae.lecture.gaussian import kl_standard_normal_forward

        def kl_standard_normal_backward(dkl, cache):
            mu, log_var = cache
            return dkl[:, None] * mu, dkl[:, None] * (np.exp(log_var) - 1)
        """, {"backward: values", "gradient check, your forward",
              "gradient check, reference forward"}, "every element is 2 times the expected value"),
    "naive Bernoulli log-likelihood": ("bernoulli_log_likelihood", """
        import numpy as np

        def bernoulli_log_likelihood_forward(x, logits):
            p = 1 / (1 + np.exp(-logits))
            return np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1), (x, p)

        def bernoulli_log_likelihood_backward(dll, cache):
            x, p = cache
            return dll[:, None] * (x - p)
        """, {"extreme inputs"}, "softplus"),
    "tiny VAE without the KL path into mu and log_var": ("tiny_vae", """
        import numpy as np
        from scratchvae.lecture import gaussian
        from scratchvae.lecture import dense as layers
        from scratchvae.lecture import likelihoods
        def tiny_vae_backward(dloss, cache):
            dreconstruction = np.full(cache.batch, -dloss / cache.batch)
            dlogits = likelihoods.bernoulli_log_likelihood_backward(dreconstruction,
                                                                    cache.likelihood)
            dz, dW_dec, db_dec = layers.dense_backward(dlogits, cache.decoder)
            dmu, dlog_var = gaussian.reparameterize_backward(dz, cache.reparameterize)
            _, dW_enc, db_enc = layers.dense_backward(np.hstack([dmu, dlog_var]), cache.encoder)
            return dW_enc, db_enc, dW_dec, db_dec
        """, {"backward: values", "gradient check"}, "two paths"),
}


def write(tmp_path, source, name="student.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def not_passed(report):
    return {o.check for o in report.outcomes if o.status != marking.PASS}


def test_perfect_student_scores_full_marks(tmp_path):
    report = check(write(tmp_path, PERFECT))
    assert report.passed, report.table()
    checks = sum(len(marking.checks_for(ex)) for ex in EXERCISES.values())
    assert report.score == report.total == checks == 24


@pytest.mark.parametrize("bug", BUGS)
def test_a_classic_bug_loses_exactly_its_checks(tmp_path, bug):
    exercise, source, failing, words = BUGS[bug]
    report = check(write(tmp_path, source), only=[exercise])
    assert not_passed(report) == failing, report.table()
    assert report.score == report.total - len(failing)
    assert {o.status for o in report.outcomes if o.check in failing} == {marking.FAIL}
    assert words in " ".join(o.message for o in report.outcomes), report.table()


@pytest.mark.parametrize("bug", ["the variance as the scale of eps",
                                 "KL without its 1/2, forward and backward"])
def test_a_consistent_wrong_pair_is_told_its_forward_is_wrong(tmp_path, bug):
    exercise, source, _, _ = BUGS[bug]
    outcome = {o.check: o for o in check(write(tmp_path, source), only=[exercise]).outcomes}
    assert outcome["gradient check, your forward"].status == marking.PASS
    assert "the forward is what is wrong" in outcome["gradient check, reference forward"].message


def test_template_scores_zero_without_crashing(tmp_path):
    path = template(tmp_path / "student.py")
    compile(path.read_text(), str(path), "exec")
    report = check(path)
    assert report.score == 0 and report.total > 0
    assert {o.status for o in report.outcomes} == {marking.NOT_ATTEMPTED}
    assert all("raises NotImplementedError" in o.message for o in report.outcomes)
    assert "not attempted: sigmoid_forward raises NotImplementedError" in report.table()


def test_template_never_overwrites_by_accident(tmp_path):
    path = write(tmp_path, "# my work\n")
    with pytest.raises(FileExistsError, match="exists already"):
        template(path)
    assert path.read_text() == "# my work\n"
    template(path, only=["dense"], overwrite=True)
    assert "def dense_backward(dout, cache):" in path.read_text()
    assert "def sigmoid_forward" not in path.read_text()


def test_half_done_exercise_marks_what_is_there(tmp_path):
    path = template(tmp_path / "student.py", only=["sigmoid"])
    path.write_text(path.read_text().replace(
        'raise NotImplementedError("sigmoid_forward: not written yet")',
        "return 1 / (1 + np.exp(-x)), x"))
    outcome = {o.check: o for o in check(path, only=["sigmoid"]).outcomes}
    assert outcome["forward: values"].status == marking.PASS
    assert outcome["backward: values"].status == marking.NOT_ATTEMPTED
    assert outcome["backward: values"].message == "sigmoid_backward raises NotImplementedError"


def test_missing_functions_are_not_attempted(tmp_path):
    report = check(write(tmp_path, "import numpy as np\n"), only=["dense", "sigmoid"])
    assert report.score == 0
    assert {o.message for o in report.outcomes} >= {"dense_backward is not defined",
                                                    "sigmoid_forward is not defined"}


def test_a_raising_or_malformed_student_is_summarised_not_a_crash(tmp_path):
    report = check(write(tmp_path, """
        import numpy as np

        def sigmoid_forward(x):
            return 1 / (1 + np.exp(-x))

        def dense_backward(dout, cache):
            return None

        def kl_standard_normal_forward(mu, log_var):
            return np.log(-1.0) + mu @ log_var, None

        def reparameterize_forward(mu, log_var, eps):
            raise SystemExit("a student's sys.exit must not end the marking")
        """), only=["dense", "sigmoid", "reparameterize", "kl_standard_normal"])
    messages = {(o.exercise, o.check): o.message for o in report.outcomes}
    assert messages["dense", "backward: values"] == (
        "dense_backward returned None, expected 3: dx, dW, db")
    assert messages["sigmoid", "forward: values"].startswith(
        "sigmoid_forward must return a pair (out, cache), got ndarray")
    kl = messages["kl_standard_normal", "forward: values"]
    assert kl.startswith("kl_standard_normal_forward raised ValueError: matmul")
    assert "(student.py, line 11: return np.log(-1.0) + mu @ log_var, None)" in kl
    assert "NumPy warned: invalid value encountered in log" in kl
    assert messages["reparameterize", "forward: values"].startswith(
        "reparameterize_forward raised SystemExit: a student's sys.exit must not end the marking")


def test_a_file_that_cannot_be_loaded_scores_zero(tmp_path):
    report = check(write(tmp_path, "def f(:\n"), only=["dense"])
    assert report.score == 0 and report.error.startswith("SyntaxError")
    assert "could not be loaded" in report.table()
    report = check(write(tmp_path, "raise RuntimeError('boom')\n", "boom.py"), only=["dense"])
    assert "RuntimeError: boom (boom.py, line 1" in report.error


def test_check_rejects_unknown_exercises_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match="no exercise called 'softmax'"):
        check(write(tmp_path, PERFECT), only=["softmax"])
    with pytest.raises(FileNotFoundError, match="--template"):
        check(tmp_path / "absent.py")


@pytest.mark.parametrize("seed", range(8))
def test_statistical_checks_pass_the_reference_for_any_seed(monkeypatch, seed):
    """The 5-standard-error thresholds are not tuned to one lucky seed."""
    monkeypatch.setattr(marking, "SEED", seed)
    from scratchvae.lecture import gaussian
    assert check(gaussian, only=["reparameterize", "kl_standard_normal"]).passed


def test_cli_exit_codes(tmp_path, capsys):
    perfect = write(tmp_path, PERFECT, "perfect.py")
    assert main([str(perfect)]) == 0
    assert "24 of 24 points" in capsys.readouterr().out
    buggy = write(tmp_path, BUGS["naive Bernoulli log-likelihood"][1], "buggy.py")
    assert main([str(buggy), "--only", "bernoulli_log_likelihood"]) == 1
    out = capsys.readouterr().out
    assert "4 of 5 points" in out and "What went wrong:" in out
    starter = tmp_path / "starter.py"
    assert main(["--template", str(starter)]) == 0
    assert main(["--template", str(starter)]) == 2
    assert main(["--template", str(starter), "--force"]) == 0
    assert main([str(starter)]) == 1
    assert main([str(tmp_path / "absent.py")]) == 2
    assert main(["--list"]) == 0
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_python_m_runs_the_checker(tmp_path):
    buggy = write(tmp_path, BUGS["dW transposed"][1])
    command = [sys.executable, "-m", "scratchvae.classroom.exercises", str(buggy), "--only", "dense"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "dW: expected shape (5, 3), got (3, 5) (transposed?)" in run.stdout


def tiny_vae_inputs(rng, B=5, D=6, D_z=2):
    return {"x": rng.random((B, D)).round(), "eps": rng.standard_normal((B, D_z)),
            "W_enc": 0.5 * rng.standard_normal((D, 2 * D_z)), "b_enc": rng.standard_normal(2 * D_z),
            "W_dec": rng.standard_normal((D_z, D)), "b_dec": rng.standard_normal(D), "beta": 0.7}


def test_tiny_vae_backward_gradcheck(rng):
    assert_gradients_match(tiny_vae_forward, tiny_vae_backward, tiny_vae_inputs(rng),
                           wrt=["W_enc", "b_enc", "W_dec", "b_dec"])


def test_tiny_vae_loss_is_the_negative_elbo_by_hand(rng):
    """loss = mean(beta * KL - log p(x | z)), each term computed here from its formula."""
    inputs = tiny_vae_inputs(rng)
    x, eps, W_enc, b_enc, W_dec, b_dec, beta = inputs.values()
    stats = x @ W_enc + b_enc
    mu, log_var = np.split(stats, 2, axis=1)
    logits = (mu + np.exp(log_var / 2) * eps) @ W_dec + b_dec
    p = 1 / (1 + np.exp(-logits))
    log_lik = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=1)
    kl = 0.5 * np.sum(np.exp(log_var) + mu**2 - 1 - log_var, axis=1)
    assert np.isclose(tiny_vae_forward(**inputs)[0], np.mean(beta * kl - log_lik), rtol=1e-12)


@given(B=st.integers(1, 6), D=st.integers(1, 8), D_z=st.integers(1, 3),
       scale=st.floats(0.01, 3.0), seed=st.integers(0, 2**32 - 1))
def test_tiny_vae_is_finite_for_any_shape(B, D, D_z, scale, seed):
    inputs = tiny_vae_inputs(np.random.default_rng(seed), B, D, D_z)
    inputs["W_enc"] *= scale
    loss, cache = tiny_vae_forward(**inputs)
    grads = tiny_vae_backward(1.0, cache)
    assert np.isfinite(loss)
    for name, grad in zip(["W_enc", "b_enc", "W_dec", "b_dec"], grads):
        assert grad.shape == inputs[name].shape and np.all(np.isfinite(grad))
