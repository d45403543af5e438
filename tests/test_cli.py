"""The ``scratchvae`` command, run through ``main([...])`` on a small slice of MNIST."""

import json
import shlex
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from scratchvae.tools.checkpoints import load_checkpoint, load_model
from scratchvae.tools.cli import main
from scratchvae.tools.history import History

RUN_FILES = {"checkpoint.npz", "model.npz", "config.json", "history.csv", "history.json",
             "metrics.json", "reconstructions.png", "samples.png", "latent.png", "curves.png",
             "kl_per_dimension.png",
             "interpolation.png", "manifold.png"}


@pytest.fixture(autouse=True)
def headless(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def run(mnist_root, tmp_path_factory):
    """A finished 2-epoch run on 600 images: (run folder, data root)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--limit", "600", "--epochs", "2", "--batch-size", "100",
                 "--hidden", "32", "--latent-dim", "2", "--iwae-k", "20", "--out", str(out),
                 "--data-dir", str(mnist_root), "--no-download"])
    assert code == 0
    return out, mnist_root


def test_train_writes_the_whole_run_folder(run):
    out, _ = run
    assert {p.name for p in out.iterdir()} == RUN_FILES
    metrics = json.loads((out / "metrics.json").read_text())
    history = History.from_json(out / "history.json")
    assert metrics["epochs"] == len(history) == 2
    assert metrics["test_elbo"] == history.records[-1]["test_elbo"]
    # log p(x) >= L_k >= ELBO in expectation; with k=20 the bound sits well above the ELBO
    assert metrics["log_likelihood"] > metrics["test_elbo"]
    assert metrics["iwae_k"] == 20 and metrics["config"]["hidden"] == [32]
    assert metrics["log_likelihood_se"] > 0
    assert metrics["scratchvae_version"] and metrics["seconds"] > metrics["train_seconds"] > 0
    model, final = load_model(out / "model.npz"), load_model(out / "checkpoint.npz")
    assert model.config["dtype"] == "float32"
    for name, value in model.params.items():
        assert np.array_equal(value, final.params[name])


def test_resume_continues_the_run_and_refuses_changed_settings(run, tmp_path, capsys):
    out, root = run
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("checkpoint.npz", "config.json"):
        (copy / name).write_bytes((out / name).read_bytes())
    common = ["--out", str(copy), "--data-dir", str(root), "--no-download", "--iwae-k", "0"]
    assert main(["train", "--epochs", "3", "--resume", *common]) == 0
    assert int(load_checkpoint(copy / "checkpoint.npz")["train/epoch"]) == 3
    printed = capsys.readouterr().out
    assert "resuming from" in printed and f"data: {root / 'mnist'}\n" in printed
    assert main(["train", "--resume", "--hidden", "64", *common]) == 2
    assert "--hidden [64] (the run has [32])" in capsys.readouterr().err
    assert main(["train", *common]) == 2  # a new run may not overwrite this one
    assert "already holds a run: add --resume" in capsys.readouterr().err
    (copy / "checkpoint.npz").unlink()  # as if stopped during the first epoch
    assert main(["train", "--resume", *common]) == 2
    assert "start it again without --resume" in capsys.readouterr().err


def test_evaluate_prints_and_writes_json(run, tmp_path, capsys):
    out, root = run
    report = tmp_path / "eval.json"
    code = main(["evaluate", str(out / "checkpoint.npz"), "--iwae-k", "10", "--samples", "2",
                 "--limit", "200", "--json", str(report), "--data-dir", str(root), "--no-download"])
    assert code == 0
    printed = capsys.readouterr().out
    result = json.loads(report.read_text())
    assert f"{result['test_elbo']:.3f}" in printed
    assert (f"log p(x) >= {result['log_likelihood']:.2f} ± {result['log_likelihood_se']:.2f} nats "
            "(IWAE, k=10, standard error over the 200 images)") in printed
    assert "test set: 200 images, binarised once with seed 1234" in printed
    assert result["log_likelihood_se"] > 0
    assert result["n_test"] == 200 and result["iwae_k"] == 10 and result["samples"] == 2


def test_sample_and_plot_accept_model_and_checkpoint(run, tmp_path):
    out, root = run
    assert main(["sample", str(out / "model.npz"), "--n", "16", "--out",
                 str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    for name in ("checkpoint.npz", "model.npz"):
        folder = tmp_path / name
        assert main(["plot", str(out / name), "--out", str(folder), "--data-dir", str(root),
                     "--no-download"]) == 0
        # curves.png from the checkpoint's history, or from history.json beside model.npz
        assert {p.name for p in folder.iterdir()} == {n for n in RUN_FILES if n.endswith(".png")}


def test_missing_data_offline_exits_2_lists_the_places_and_makes_no_run_folder(
        tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SCRATCHVAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["train", "--no-download", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "cache") in err and "SCRATCHVAE_DATA" in err and "Traceback" not in err
    assert "data_dir=" not in err and "download=False" not in err
    assert not (tmp_path / "run").exists()  # made only once the data are found


def test_a_data_dir_without_the_dataset_is_an_error_not_a_fall_back(mnist_root, tmp_path, capsys):
    # $SCRATCHVAE_DATA holds MNIST (mnist_root), yet the folder named on the line wins.
    (tmp_path / "empty").mkdir()
    code = main(["train", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "run")])
    assert code == 2
    assert capsys.readouterr().err == (
        f"scratchvae train: error: --data-dir {tmp_path / 'empty'}: it has no mnist/ folder; "
        "--data-dir names the folder holding mnist/. Check the path, or leave --data-dir out "
        "to use $SCRATCHVAE_DATA or the user cache (downloading into it if need be)\n")
    assert not (tmp_path / "run").exists()


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    bogus = tmp_path / "notes.npz"
    bogus.write_text("hello")
    assert main(["sample", str(bogus)]) == 2
    assert f"{bogus}: cannot be read as a scratchvae checkpoint" in capsys.readouterr().err
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    assert main(["sample", str(tmp_path / "arrays.npz")]) == 2
    assert "not a scratchvae checkpoint" in capsys.readouterr().err


def test_bad_flag_values_are_argparse_errors(capsys):
    for argv in (["train", "--epochs", "0"], ["train", "--likelihood", "poisson"],
                 ["train", "--lr", "-1"], ["evaluate"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "--epochs: expected an integer >= 1, got 0" in capsys.readouterr().err


def test_gradcheck_prints_the_table(capsys):
    assert main(["gradcheck"]) == 0
    printed = capsys.readouterr().out
    assert "max rel. error" in printed and "FAIL" not in printed


def test_classroom_writes_a_handout_and_check_marks_it(tmp_path, capsys):
    project = tmp_path / "week1"
    assert main(["classroom", "handout", str(project)]) == 0
    assert (project / "studentvae" / "activations.py").is_file()
    assert main(["check", str(project), "--only", "relu"]) == 1  # a stub: not attempted
    assert "0/3  not attempted: NotImplementedError: relu: see docs/layers.md#relu" in capsys.readouterr().out
    assert main(["classroom", "handout", str(project)]) == 2  # never over a student's work


# --- a newcomer's mistakes: one line in command-line words, exit code 2 ----------


def run_main(argv, capsys):
    """(exit code, stderr) of ``scratchvae argv``, argparse's exits included."""
    try:
        code = main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capsys.readouterr().err


def assert_one_line_error(err, start):
    assert err.startswith(start) and err.count("\n") == 1, err
    for python_words in ("Traceback", "=True", "python -m", "data_dir=", "[compare]"):
        assert python_words not in err


def test_mistakes_are_one_line_each_in_command_line_words(run, tmp_path, capsys, monkeypatch):
    out, _ = run
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.py").write_text("# mine\n")
    cases = [
        (["sample", str(out / "model.npz"), "--out", "s.jpg"],
         "scratchvae sample: error: --out s.jpg: figures are written as PNG files; use a name "
         "ending in .png, e.g. s.png"),
        (["train", "--out", "notes.py"],
         "scratchvae train: error: --out notes.py: a file of that name exists; --out names the "
         "run folder to write: choose another name"),
        (["train", "--epochs", "0"],
         "scratchvae train: error: argument --epochs: expected an integer >= 1, got 0 "
         "(see scratchvae train --help)"),
        (["evaluate", "missing.npz"],
         "scratchvae evaluate: error: missing.npz: no such file"),
    ]
    for argv, start in cases:
        code, err = run_main(argv, capsys)
        assert code == 2, argv
        assert_one_line_error(err, start)
    assert (tmp_path / "notes.py").read_text() == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.py"]  # nothing else written


def test_the_installed_command_exits_2_with_the_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "scratchvae", "sample", "x.npz", "--out",
                             "s.jpg"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "scratchvae sample: error: --out s.jpg")


def test_version_and_help_import_neither_numba_nor_matplotlib():
    code = ("import sys, scratchvae.tools.cli as cli\n"
            "cli.build_parser().format_help()\n"
            "print(sorted(m for m in ('numba', 'matplotlib', 'scratchvae.lecture.vae') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_parser_offers_what_the_library_accepts():
    from scratchvae.lecture.modules import ACTIVATIONS
    from scratchvae.lecture.optim import OPTIMIZERS
    from scratchvae.lecture.vae import LIKELIHOODS
    from scratchvae.tools import cli

    assert cli.ACTIVATION_CHOICES == tuple(a for a in ACTIVATIONS if a != "identity")
    assert cli.OPTIMIZER_CHOICES == tuple(OPTIMIZERS)
    assert cli.LIKELIHOOD_CHOICES == tuple(LIKELIHOODS)


# --- interruptions: what was saved, and the command that finishes the job ----------


def copy_of(run, tmp_path):
    out, root = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    return copy, root


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_interrupted_estimate_keeps_the_run_and_prints_the_command_that_finishes_it(
        run, tmp_path, capsys, monkeypatch):
    copy, root = copy_of(run, tmp_path)
    for name in ("metrics.json", "samples.png"):
        (copy / name).unlink()
    finish = ["train", "--resume", "--out", str(copy), "--iwae-k", "20", "--data-dir", str(root),
              "--no-download"]
    with monkeypatch.context() as patched:
        patched.setattr("scratchvae.tools.evaluation.evaluate_log_likelihood", interrupt)
        code, err = run_main(finish, capsys)
    assert code == 130
    assert err == (f"scratchvae train: interrupted during the log-likelihood estimate: {copy} "
                   "holds the trained model, its history and metrics.json (without log p(x)) "
                   f"and the figures; to add the estimate: {shlex.join(['scratchvae', *finish])}\n")
    # written before the slow estimate began
    assert json.loads((copy / "metrics.json").read_text())["log_likelihood"] is None
    assert (copy / "samples.png").is_file()
    command = shlex.split(err.rsplit("to add the estimate: ", 1)[1])
    assert command[0] == "scratchvae" and main(command[1:]) == 0
    assert json.loads((copy / "metrics.json").read_text())["log_likelihood"] is not None


def test_interrupted_figures_say_what_is_saved(run, tmp_path, capsys, monkeypatch):
    copy, root = copy_of(run, tmp_path)
    monkeypatch.setattr("scratchvae.tools.train_command.write_figures", interrupt)
    code, err = run_main(["train", "--resume", "--out", str(copy), "--data-dir", str(root)], capsys)
    assert code == 130
    assert err.startswith(f"scratchvae train: interrupted while drawing the figures: {copy} holds "
                          "the trained model, its history and metrics.json; "
                          f"to finish the run: scratchvae train --resume --out {copy} ")


def test_interrupted_training_says_how_to_continue_or_start_again(run, tmp_path, capsys,
                                                                  monkeypatch):
    copy, root = copy_of(run, tmp_path)
    monkeypatch.setattr("scratchvae.tools.train.fit", interrupt)
    code, err = run_main(["train", "--resume", "--epochs", "4", "--out", str(copy)], capsys)
    assert code == 130
    assert err == (f"scratchvae train: interrupted during training: {copy / 'checkpoint.npz'} "
                   f"holds epoch 2; to continue: scratchvae train --resume --out {copy}\n")
    fresh = ["train", "--limit", "600", "--out", str(tmp_path / "fresh")]
    code, err = run_main(fresh, capsys)
    assert code == 130
    assert err == ("scratchvae train: interrupted during the first epoch, before any checkpoint; "
                   f"start again: {shlex.join(['scratchvae', *fresh])}\n")


def test_interrupted_evaluate_says_nothing_was_written_and_how_to_finish(run, capsys, monkeypatch):
    out, root = run
    argv = ["evaluate", str(out / "model.npz"), "--limit", "100", "--data-dir", str(root)]
    monkeypatch.setattr("scratchvae.tools.evaluation.evaluate_log_likelihood", interrupt)
    code, err = run_main(argv, capsys)
    assert code == 130
    assert err == ("scratchvae evaluate: interrupted during the log-likelihood estimate: nothing "
                   "was written; the test ELBO is above. To finish: "
                   f"{shlex.join(['scratchvae', *argv])} (or a smaller --iwae-k: the time grows "
                   "with k)\n")


def test_sigterm_stops_the_estimate_like_ctrl_c(run):
    out, root = run
    command = [sys.executable, "-m", "scratchvae", "evaluate", str(out / "model.npz"),
               "--iwae-k", "1000000", "--data-dir", str(root)]
    with subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                          text=True) as process:
        # Off a terminal the estimate announces itself in one line as it starts
        # (after the compile notice, on a cold cache).
        lines = iter(process.stderr.readline, "")
        assert any(line.startswith("log-likelihood estimate, k=1000000: ") for line in lines)
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
    assert process.returncode == 130
    assert rest.startswith("scratchvae evaluate: interrupted during the log-likelihood estimate")


def test_bad_schedule_flags_are_argparse_errors(capsys):
    for argv, message in ((["train", "--lr-decay", "1.5"], "expected a number in (0, 1], got 1.5"),
                          (["train", "--lr-decay", "0"], "expected a number in (0, 1], got 0"),
                          (["train", "--iwae-every", "-2"], "expected an integer >= 0, got -2"),
                          (["train", "--preset", "fast"], "invalid choice: 'fast'")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_preset_hour_sets_the_recipe_and_given_flags_win(mnist_root, tmp_path):
    """The preset's model, schedule and tracked estimate, with --epochs and --iwae-k overridden."""
    from scratchvae.tools.train_command import PRESETS

    out = tmp_path / "hour"
    assert main(["train", "--preset", "hour", "--limit", "300", "--epochs", "25",
                 "--iwae-k", "5", "--out", str(out), "--data-dir", str(mnist_root),
                 "--no-download"]) == 0
    config = json.loads((out / "config.json").read_text())
    hour = PRESETS["hour"]
    assert config["preset"] == "hour" and config["epochs"] == 25
    assert {k: config[k] for k in hour if k != "epochs" and k != "iwae_k"} == {
        k: v for k, v in hour.items() if k not in ("epochs", "iwae_k")}
    assert load_model(out / "model.npz").config["hidden"] == [500, 500]
    history = History.from_json(out / "history.json").records
    # the rate decays epoch by epoch; the IWAE is tracked after epoch 25 (every 25)
    assert history[1]["lr"] == pytest.approx(1e-3 * hour["lr_decay"])
    assert [r["epoch"] for r in history if r["test_iwae"] is not None] == [25]
    assert json.loads((out / "metrics.json").read_text())["iwae_k"] == 5


def test_gaussian_run_dequantises_and_reports_bits_per_pixel(mnist_root, tmp_path, capsys):
    out = tmp_path / "gauss"
    assert main(["train", "--likelihood", "gaussian", "--limit", "300", "--epochs", "2",
                 "--hidden", "32", "--latent-dim", "2", "--iwae-k", "5", "--out", str(out),
                 "--data-dir", str(mnist_root), "--no-download"]) == 0
    printed = capsys.readouterr().out
    assert "dequantised once with seed 1234" in printed and "bits per pixel" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["binarize"] == "dequantize"
    # bits per 8-bit pixel: 8 - log p(y) / (D ln 2)
    assert metrics["bits_per_dim"] == pytest.approx(
        8 - metrics["log_likelihood"] / (784 * np.log(2)))
    assert (out / "decoder_sigma.png").is_file()
