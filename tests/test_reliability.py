"""What survives divergence, damage, signals and full disks (docs/training.md#what-is-guaranteed).

Each test reproduces one failure of the issue "reliability": the Python API in
process, the ``scratchvae`` command as a subprocess (its exit status and the
first line of its stderr). No test measures time.
"""

import io
import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy
from test_train import optimizer_for, quiet, synthetic, tiny_model, without_times

from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.vae import VAE
from scratchvae.tools import checkpoints
from scratchvae.tools.checkpoints import load_checkpoint, load_model, save_model
from scratchvae.tools.cli import main
from scratchvae.tools.history import History, strict_json
from scratchvae.tools.npz_files import CheckpointError
from scratchvae.tools.train import TrainingDiverged, fit

SCRATCHVAE = shutil.which("scratchvae", path=Path(sys.executable).parent) or "scratchvae"
# The small run of the issue's examples: 100 MNIST images, a 784-64-8 model.
SMALL = ["--limit", "100", "--hidden", "64", "--latent-dim", "8", "--iwae-k", "0",
         "--no-download"]


def scratchvae(*args, timeout=120, **kwargs):
    """Run the command; return (exit status, first line of stderr, stdout)."""
    # IEEE arithmetic, as in the in-process runs whose folders these tests resume (resuming under
    # the other mode adds a warning line, tests/test_subnormals.py)
    env = {**os.environ, "MPLBACKEND": "Agg", "SCRATCHVAE_IEEE_SUBNORMALS": "1"}
    done = subprocess.run([SCRATCHVAE, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)
    return done.returncode, (done.stderr.splitlines() or [""])[0], done.stdout


def strict_loads(text):
    """json.loads that refuses the non-JSON tokens NaN, Infinity and -Infinity."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def rewrite(path, changes, out=None):
    """Copy the .npz ``path`` to ``out`` (default: over itself) with keys replaced or deleted (None)."""
    with np.load(path, allow_pickle=False) as npz:
        state = dict(npz)
    for key, value in changes.items():
        if value is None:
            del state[key]
        else:
            state[key] = np.asarray(value)
    np.savez(out or path, **state)
    return Path(out or path)


def trained(tmp_path, epochs=1, **kwargs):
    """(model, optimizer, data, checkpoint path) after ``epochs`` epochs on synthetic data."""
    x, path = synthetic(300), tmp_path / "ckpt.npz"
    model = tiny_model()
    optimizer = optimizer_for(model)
    fit(model, x, epochs, 100, optimizer, **quiet(checkpoint=path, **kwargs))
    return model, optimizer, x, path


@pytest.fixture(scope="module")
def run_folder(mnist_root, tmp_path_factory):
    """A finished one-epoch CLI run on 100 images, made in process (only for its files)."""
    out = tmp_path_factory.mktemp("reliability") / "run"
    assert main(["train", "--epochs", "1", *SMALL, "--hidden", "16", "--out", str(out),
                 "--data-dir", str(mnist_root)]) == 0
    return out


def copy_run(run_folder, tmp_path):
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("checkpoint.npz", "config.json", "model.npz"):
        shutil.copy(run_folder / name, copy / name)
    return copy


# --- 1. divergence is caught before it is saved ------------------------------------


def test_nan_parameters_after_the_last_step_keep_the_previous_checkpoint(tmp_path):
    """The loss of every step was finite, the update after the last one was not."""
    model, optimizer, x, path = trained(tmp_path)
    good = path.read_bytes()
    step, calls = optimizer.step, []

    def last_update_blows_up():
        step()
        calls.append(1)
        if len(calls) == 3:  # the last of 3 steps in epoch 2
            model.params["decoder_head.b"][0] = np.inf

    optimizer.step = last_update_blows_up
    with pytest.raises(TrainingDiverged, match=r"epoch 2: decoder_head.b holds NaN or infinite"):
        fit(model, x, 3, 100, optimizer, **quiet(checkpoint=path, resume=True))
    assert path.read_bytes() == good


def test_an_absurd_test_elbo_stops_training_before_the_checkpoint(tmp_path, monkeypatch):
    model, optimizer, x, path = trained(tmp_path, test=synthetic(50, 1))
    good = path.read_bytes()
    monkeypatch.setattr("scratchvae.tools.train.evaluate_elbo", lambda model, test: -8.4e23)
    with pytest.raises(TrainingDiverged, match=r"epoch 2: the test elbo is -8.4e\+23 nats"):
        fit(model, x, 3, 100, optimizer, test=synthetic(50, 1),
            **quiet(checkpoint=path, resume=True))
    assert path.read_bytes() == good


@pytest.mark.parametrize("lr", ["30", "1000"])
def test_a_diverging_run_exits_1_and_saves_nothing(mnist_root, tmp_path, lr):
    """The issue's command: test ELBO -6.6e8 after epoch 1 (lr 30) or a NaN loss (lr 1000)."""
    out = tmp_path / "run"
    code, first, _ = scratchvae("train", "--epochs", "3", "--optimizer", "sgd", "--lr", lr,
                                *SMALL, "--out", out, "--data-dir", mnist_root)
    assert code == 1
    assert first.startswith("scratchvae train: training diverged in epoch 1")
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # no NaN checkpoint


def test_history_and_metrics_are_strict_json():
    history = History([{"epoch": 1, "train_elbo": float("nan"), "test_elbo": float("-inf")}])
    assert strict_loads(history.to_json_string())["records"][0]["train_elbo"] is None
    assert strict_loads(strict_json({"test_elbo": float("inf")})) == {"test_elbo": None}


def test_metrics_of_a_run_are_strict_json(run_folder):
    metrics = strict_loads((run_folder / "metrics.json").read_text())
    assert np.isfinite(metrics["test_elbo"])
    strict_loads((run_folder / "history.json").read_text())


def test_evaluate_refuses_non_finite_weights(run_folder, tmp_path):
    bad = rewrite(run_folder / "model.npz",
                  {"param/decoder_head.b": np.full(784, np.nan, dtype=np.float32)},
                  tmp_path / "nan.npz")
    code, first, out = scratchvae("evaluate", bad, "--iwae-k", "0", "--no-download")
    assert code == 2 and out == ""
    assert first == (f"scratchvae evaluate: error: {bad}: parameter decoder_head.b holds NaN or "
                     "infinite values: the run that wrote it had diverged; use an earlier "
                     "checkpoint or train again with a lower --lr")


# --- 2. damaged checkpoints get a one-line error -----------------------------------


def flip_byte(blob, where):
    return blob[:where] + bytes([blob[where] ^ 0xFF]) + blob[where + 1:]


def truncated(path):
    path.write_bytes(path.read_bytes()[:-1000])


def flipped(path):
    path.write_bytes(flip_byte(path.read_bytes(), 5000))


def emptied(path):
    path.write_bytes(b"")


def garbage(path):
    path.write_text("garbage\n")


def huge_header(path):
    """decoder_head.W's .npy header claims a 1 TiB array; the rest of the file is as it was."""
    with zipfile.ZipFile(path) as src:
        members = {info.filename: src.read(info) for info in src.infolist()}
    blob = io.BytesIO(members["param/decoder_head.W.npy"])
    npy.read_magic(blob)
    npy.read_array_header_1_0(blob)  # skip the true header; the data follow
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                        "shape": (2**38,)})
    members["param/decoder_head.W.npy"] = header.getvalue() + blob.read()
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)


DAMAGE = {
    truncated: "not a zip (.npz) archive (File is not a zip file)",
    flipped: "damaged (BadZipFile: Bad CRC-32",
    emptied: "not a zip (.npz) archive",
    garbage: "not a zip (.npz) archive",
    huge_header: "member 'param/decoder_head.W.npy' claims shape (274877906944,) of float32 "
                 "(1099511627776 bytes)",
}


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_evaluate_on_a_damaged_file_is_one_line(run_folder, tmp_path, damage):
    path = Path(shutil.copy(run_folder / "checkpoint.npz", tmp_path / "t.npz"))
    damage(path)
    code, first, _ = scratchvae("evaluate", path, "--iwae-k", "0", "--no-download")
    assert code == 2
    assert first.startswith(f"scratchvae evaluate: error: {path}: ")
    assert DAMAGE[damage] in first and "pickle" not in first


def test_every_flipped_byte_is_refused_or_harmless(tmp_path):
    """No single damaged byte gives anything but CheckpointError or the very same model."""
    model = VAE(6, hidden=(3,), latent_dim=1, seed=0)
    save_model(model, tmp_path / "m.npz")
    blob, damaged = (tmp_path / "m.npz").read_bytes(), tmp_path / "damaged.npz"
    for where in range(len(blob)):
        damaged.write_bytes(flip_byte(blob, where))
        try:
            loaded = load_model(damaged)
        except CheckpointError as err:
            assert str(err).startswith(f"{damaged}: ")
        else:
            for name, value in model.params.items():
                assert np.array_equal(loaded.params[name], value), (where, name)


def test_a_config_larger_than_the_file_is_refused_before_building(tmp_path):
    path = tmp_path / "m.npz"
    save_model(tiny_model(), path)
    config = dict(tiny_model().config, hidden=[10**9])
    rewrite(path, {"config": json.dumps(config)})
    with pytest.raises(CheckpointError, match="describes .* parameters, more than the file holds"):
        load_model(path)


def test_the_parameter_count_follows_the_model():
    for kwargs in (dict(hidden=(7,)), dict(hidden=(5, 3), likelihood="gaussian")):
        model = VAE(11, latent_dim=2, **kwargs)
        count = sum(p.size for p in model.params.values())
        assert checkpoints._parameter_count(model.config) == count


CHECKPOINT_DAMAGE = {
    "bad-json-config": ({"config": "{'hidden': [32]"}, "config is not valid JSON"),
    "unknown-config-key": ({"config": json.dumps({**tiny_model().config, "depth": 3})},
                           "its config has keys"),
    "foreign-rng-state": ({"train/rng_state": json.dumps(
        np.random.Philox(0).state, default=np.ndarray.tolist)}, "generator state does not fit"),
    "format-version-7": ({"format_version": 7}, "format version 7, this scratchvae reads"),
    "no-format-version": ({"format_version": None}, "not a scratchvae checkpoint"),
    "bad-history": ({"train/history": "[]"}, "train/epoch and train/history disagree"),
    "no-threads": ({"train/threads": None}, r"not a training checkpoint \(missing train/threads\)"),
    "extra-parameter": ({"param/decoder.9.W": np.zeros(3, np.float32)},
                        "param/decoder.9.W is float32 of shape .3,. in the file, but its config "
                        "implies no such array"),
}


@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_resume_refuses_a_damaged_checkpoint_and_changes_nothing(tmp_path, damage):
    changes, message = CHECKPOINT_DAMAGE[damage]
    model, optimizer, x, path = trained(tmp_path)
    rewrite(path, changes)
    fresh = tiny_model(seed=7)
    before = {k: v.copy() for k, v in fresh.params.items()}
    with pytest.raises(CheckpointError, match=message):
        fit(fresh, x, 2, 100, optimizer_for(fresh), **quiet(checkpoint=path, resume=True))
    assert all(np.array_equal(v, fresh.params[k]) for k, v in before.items())


@pytest.mark.parametrize("damage", ["bad-json-config", "foreign-rng-state", "format-version-7"])
def test_resume_on_the_command_line_is_one_line(mnist_root, run_folder, tmp_path, damage):
    copy = copy_run(run_folder, tmp_path)
    rewrite(copy / "checkpoint.npz", CHECKPOINT_DAMAGE[damage][0])
    code, first, _ = scratchvae("train", "--resume", "--out", copy, "--epochs", "2",
                                "--iwae-k", "0", "--data-dir", mnist_root, "--no-download")
    assert code == 2
    assert first.startswith(f"scratchvae train: error: {copy / 'checkpoint.npz'}: ")


def test_resume_with_another_model_on_the_command_line_is_one_line(mnist_root, run_folder,
                                                                   tmp_path):
    """config.json and the checkpoint disagree (e.g. a checkpoint copied from another run)."""
    copy = copy_run(run_folder, tmp_path)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "hidden": [32]}))
    code, first, _ = scratchvae("train", "--resume", "--out", copy, "--epochs", "2",
                                "--iwae-k", "0", "--data-dir", mnist_root, "--no-download")
    assert code == 2
    assert "model differs from this one in hidden ([16] there, [32] here)" in first


@pytest.mark.parametrize("other, message", [
    (lambda model: make_optimizer("adam", model, 0.5), r"lr \(0.001 there, 0.5 here\)"),
    (lambda model: make_optimizer("sgd", model, 1e-3), r"optimizer \('adam' there, 'sgd' here\)"),
])
def test_resume_refuses_another_optimizer(tmp_path, other, message):
    model, _, x, path = trained(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        fit(model, x, 2, 100, other(model), **quiet(checkpoint=path, resume=True))


def test_resume_refuses_other_data_of_the_same_size(tmp_path):
    model, optimizer, x, path = trained(tmp_path)
    with pytest.raises(CheckpointError, match="training settings differs .* train_data"):
        fit(model, synthetic(300, seed=9), 2, 100, optimizer,
            **quiet(checkpoint=path, resume=True))


def test_a_stale_temporary_file_is_removed_on_the_next_start(tmp_path):
    model, optimizer, x, path = trained(tmp_path)
    stale = path.with_name(path.name + ".tmp")
    stale.write_bytes(b"half a checkpoint")  # a write killed mid-way
    fit(model, x, 2, 100, optimizer, **quiet(checkpoint=path, resume=True))
    assert not stale.exists()
    assert int(load_checkpoint(path)["train/epoch"]) == 2


def test_sigterm_says_which_epoch_is_kept_and_the_exact_command(mnist_root, tmp_path):
    out = tmp_path / "run"
    command = [SCRATCHVAE, "train", "--epochs", "1000", *SMALL, "--out", str(out),
               "--data-dir", str(mnist_root)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg"}) as process:
        for line in process.stdout:
            if line.startswith("epoch   2/1000"):
                break
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    first = stderr.splitlines()[0]
    assert first.startswith(f"scratchvae train: interrupted during training: "
                            f"{out / 'checkpoint.npz'} holds epoch ")
    epoch = int(first.split("holds epoch ")[1].split(";")[0])
    # Epoch 2's line is printed just before its checkpoint is written.
    assert epoch in (1, 2) and epoch == int(load_checkpoint(out / "checkpoint.npz")["train/epoch"])
    resume = shlex.split(first.split("to continue: ")[1])
    assert resume[:3] == ["scratchvae", "train", "--resume"]
    code, _, stdout = scratchvae(*resume[1:], "--epochs", str(epoch + 1))
    assert code == 0 and f"resuming from {out / 'checkpoint.npz'} after epoch {epoch}" in stdout


def test_a_file_size_limit_is_found_before_the_first_epoch(mnist_root, tmp_path):
    """ulimit -f: config.json fits, a checkpoint would not; nothing trains."""
    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "run"
    code, first, stdout = scratchvae("train", "--epochs", "1", *SMALL, "--out", out,
                                     "--data-dir", mnist_root, preexec_fn=limit_file_size)
    assert code == 2 and "epoch" not in stdout
    assert first.startswith(f"scratchvae train: error: cannot write in {out} ([Errno 27] File "
                            "too large")
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_found_before_the_first_epoch(mnist_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o555)
    code, first, stdout = scratchvae("train", "--epochs", "1", *SMALL, "--out", out,
                                     "--data-dir", mnist_root)
    assert code == 2 and "epoch" not in stdout
    assert first.startswith(f"scratchvae train: error: cannot write in {out} ([Errno 13]")


# --- 4. smaller holes --------------------------------------------------------------------


def test_fit_refuses_an_empty_training_set():
    model = tiny_model()
    with pytest.raises(ValueError, match="train: expected at least one training image, got 0"):
        fit(model, np.zeros((0, 64), dtype=np.float32), 1, 10, optimizer_for(model), **quiet())


@pytest.mark.parametrize("flag, value, message", [
    ("--seed", "-1", "argument --seed: expected an integer >= 0, got -1"),
    ("--beta", "inf", "argument --beta: expected a finite number >= 0, got inf"),
])
def test_bad_numbers_are_refused_up_front(flag, value, message):
    code, first, _ = scratchvae("train", flag, value)
    assert code == 2
    assert first == f"scratchvae train: error: {message} (see scratchvae train --help)"


def test_resume_warns_when_the_blas_threads_differ(tmp_path, monkeypatch):
    model, optimizer, x, path = trained(tmp_path)
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1" if threads != "1" else "2")
    lines = []
    fit(model, x, 2, 100, optimizer, checkpoint=path, resume=True, progress=False,
        log=lines.append)
    assert lines[0].startswith(f"warning: {path} was written with OPENBLAS_NUM_THREADS={threads}")
    assert "in the last bits" in lines[0]


# --- kill -9 at random moments --------------------------------------------------------

# A run of fit in a process of its own, continued from its checkpoint if there is one;
# it prints a line per epoch, so the test can kill it at a moment tied to its progress.
DRIVER = """
import sys
from pathlib import Path
from test_train import optimizer_for, synthetic, tiny_model
from scratchvae.tools.checkpoints import save_model
from scratchvae.tools.train import fit

path, epochs = Path(sys.argv[1]), int(sys.argv[2])
model = tiny_model()
fit(model, synthetic(1000), epochs, 50, optimizer_for(model), checkpoint=path,
    resume=path.is_file(), progress=False, log=lambda line: print(line, flush=True))
save_model(model, path.with_name("final.npz"))
"""
KILL_EPOCHS = 12


def test_kill_9_at_random_moments_then_resume_is_bit_identical(tmp_path):
    """Three SIGKILLs, each a random moment after the 1st-3rd epoch line of a run (often in
    the checkpoint's write, which follows the line); every checkpoint stays loadable, no
    temporary file survives, and the finished run equals one never interrupted."""
    path, rng = tmp_path / "ckpt.npz", np.random.default_rng(2024)
    command = [sys.executable, "-c", DRIVER, str(path), str(KILL_EPOCHS)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    held = []
    for _ in range(3):
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
            lines = int(rng.integers(1, 4))
            for _, line in zip(range(lines), process.stdout):
                assert line.startswith("epoch") or line.startswith("resuming"), line
            time.sleep(rng.uniform(0, 0.02))  # where in the epoch (or its write) it lands
            process.kill()
        assert process.wait() == -signal.SIGKILL
        if path.exists():  # killed before its first checkpoint, a run starts afresh
            held.append(int(load_checkpoint(path)["train/epoch"]))
    assert held and held == sorted(held) and held[-1] < KILL_EPOCHS
    assert subprocess.run(command, env=env, capture_output=True).returncode == 0

    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.npz", "final.npz"]
    straight = tiny_model()
    history = fit(straight, synthetic(1000), KILL_EPOCHS, 50, optimizer_for(straight),
                  **quiet())
    resumed = load_model(tmp_path / "final.npz")
    for name, value in straight.params.items():
        assert np.array_equal(value, resumed.params[name]), name
    stored = History.from_json_string(str(load_checkpoint(path)["train/history"]))
    assert without_times(stored) == without_times(history)

