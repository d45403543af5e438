"""The ``scratchvae`` command, run through ``main([...])`` on a small slice of MNIST."""

import json

import numpy as np
import pytest

from scratchvae.tools.cli import main
from scratchvae.tools.train import History, load_checkpoint
from scratchvae.lecture.vae import VAE

RUN_FILES = {"checkpoint.npz", "model.npz", "config.json", "history.csv", "history.json",
             "metrics.json", "reconstructions.png", "samples.png", "latent.png", "curves.png",
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
    assert metrics["scratchvae_version"] and metrics["seconds"] > metrics["train_seconds"] > 0
    model, final = VAE.load(out / "model.npz"), VAE.load(out / "checkpoint.npz")
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
    assert "resuming from" in capsys.readouterr().out
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
    assert f"{result['test_elbo']:.3f}" in printed and f"{result['log_likelihood']:.3f}" in printed
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


def test_missing_data_offline_exits_2_and_lists_the_places(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SCRATCHVAE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code = main(["train", "--data-dir", str(tmp_path / "nowhere"), "--no-download",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(tmp_path / "nowhere" / "mnist") in err and str(tmp_path / "cache") in err
    assert "SCRATCHVAE_DATA" in err and "Traceback" not in err


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
    assert main(["classroom", "handout", str(project), "--only", "relu"]) == 0
    assert (project / "studentvae" / "activations.py").is_file()
    assert main(["check", str(project), "--only", "relu"]) == 1  # a stub: not attempted
    assert "0/3  not attempted: NotImplementedError: relu: see docs/layers.md#relu" in capsys.readouterr().out
    assert main(["classroom", "handout", str(project)]) == 2  # never over a student's work
