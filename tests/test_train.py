"""The training loop: resume bit for bit, the NaN guard, warm-up, binarisation, history, MNIST."""

import csv
import io
import time

import numpy as np
import pytest

from conftest import JIT_DISABLED
from scratchvae.engine import ops as engine_ops
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import kl_weight
from scratchvae.lecture.vae import VAE
from scratchvae.tools import checkpoints
from scratchvae.tools.checkpoints import load_checkpoint
from scratchvae.tools.data import load_mnist
from scratchvae.tools.evaluation import evaluate_elbo, prepare_test_set
from scratchvae.tools.history import History
from scratchvae.tools.train import TrainingDiverged, fit

D = 64


def tiny_model(seed=0, **kwargs):
    return VAE(D, hidden=(32,), latent_dim=2, seed=seed, **kwargs)


def optimizer_for(model, name="adam", lr=1e-3):
    return make_optimizer(name, model, lr)


def synthetic(n, seed=0):
    """Grey images with structure: each row a blurred mix of a few random prototypes."""
    rng = np.random.default_rng(seed)
    prototypes = rng.random((5, D))  # (5, D)
    weights = rng.dirichlet(np.ones(5), size=n)  # (n, 5)
    return (weights @ prototypes).astype(np.float32)  # (n, D) in [0, 1]


def quiet(**kwargs):
    return dict(progress=False, log=lambda line: None, **kwargs)


def without_times(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "eval_seconds")}
            for r in history.records]


@pytest.mark.parametrize("binarize, likelihood", [("dynamic", "bernoulli"),
                                                  ("fixed", "bernoulli"),
                                                  ("dequantize", "gaussian")])
def test_resume_is_bit_identical(tmp_path, binarize, likelihood):
    """3 epochs in one go == 1 epoch, a 'new process', then 2 more from the checkpoint.

    With a warm-up, a decaying learning rate and the tracked IWAE estimate:
    a resumed run continues all three schedules where they were.
    """
    x, x_test = synthetic(2000), synthetic(300, seed=1)
    settings = dict(epochs=3, batch_size=100, test=x_test, seed=5, binarize=binarize,
                    kl_warmup_epochs=2, lr_decay=0.5, iwae_every=2)

    def tiny_model(seed=0):
        return VAE(D, hidden=(32,), latent_dim=2, seed=seed, likelihood=likelihood)

    straight = tiny_model()
    history = fit(straight, x, optimizer=optimizer_for(straight), **settings,
                  **quiet(checkpoint=tmp_path / "straight.npz"))

    first = tiny_model()
    fit(first, x, optimizer=optimizer_for(first), **{**settings, "epochs": 1},
        **quiet(checkpoint=tmp_path / "ckpt.npz"))
    del first  # the process "stops"; nothing of it survives but the file
    # Fresh objects; a different initial-weights seed and run seed must not matter.
    resumed = tiny_model(seed=99)
    resumed_history = fit(resumed, x, optimizer=optimizer_for(resumed),
                          **{**settings, "seed": 123},
                          **quiet(checkpoint=tmp_path / "ckpt.npz", resume=True))

    for name, value in straight.params.items():
        assert np.array_equal(value, resumed.params[name]), name
    assert without_times(resumed_history) == without_times(history)
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    assert [r["lr"] for r in history.records] == [1e-3, 5e-4, 2.5e-4]
    # tracked after epoch 2 only (every 2)
    assert [r["test_iwae"] is None for r in history.records] == [True, False, True]


def test_lr_decay_leaves_the_optimizer_rate_as_given_and_steps_smaller():
    """The schedule changes the rate only while an epoch runs; a smaller rate moves less."""
    x = synthetic(500)
    moved = {}
    for decay in (1.0, 0.01):
        model = tiny_model()
        start = {k: v.copy() for k, v in model.params.items()}
        optimizer = optimizer_for(model)
        fit(model, x, 2, 100, optimizer, lr_decay=decay, **quiet())
        assert optimizer.lr == 1e-3
        moved[decay] = sum(float(np.abs(v - start[k]).sum()) for k, v in model.params.items())
    assert moved[0.01] < 0.7 * moved[1.0], moved


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr_decay=0.0), "lr_decay: expected a factor in"),
    (dict(lr_decay=1.5), "lr_decay: expected a factor in"),
    (dict(iwae_every=-1), "iwae_every: expected an integer >= 0"),
    (dict(binarize="dither"), "binarize: expected one of"),
])
def test_fit_names_the_bad_schedule_argument(kwargs, message):
    model = tiny_model()
    with pytest.raises(ValueError, match=message):
        fit(model, synthetic(100), 1, 50, optimizer_for(model), **kwargs, **quiet())


def test_resume_refuses_a_different_model_or_settings(tmp_path):
    x = synthetic(200)
    model = tiny_model()
    fit(model, x, 1, 50, optimizer_for(model), **quiet(checkpoint=tmp_path / "c.npz"))
    other = VAE(D, hidden=(16,), latent_dim=2)
    with pytest.raises(ValueError, match=r"differs from this one in hidden \(\[32\] there, \[16\] here\)"):
        fit(other, x, 2, 50, optimizer_for(other), **quiet(checkpoint=tmp_path / "c.npz", resume=True))
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, x, 2, 64, optimizer_for(model), **quiet(checkpoint=tmp_path / "c.npz", resume=True))
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fit(model, x, 2, 50, optimizer_for(model), **quiet(checkpoint=tmp_path / "no.npz", resume=True))


def test_model_file_is_not_a_training_checkpoint(tmp_path):
    model = tiny_model()
    checkpoints.save_model(model, tmp_path / "model.npz")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "model.npz")
    (tmp_path / "junk.npz").write_text("not a zip file")
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.npz")


def test_nan_guard_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """A NaN loss in epoch 2 stops training; the checkpoint of epoch 1 is left as it was."""
    x, path = synthetic(500), tmp_path / "ckpt.npz"
    model = tiny_model()
    optimizer = optimizer_for(model)
    fit(model, x, 1, 100, optimizer, **quiet(checkpoint=path))
    good = path.read_bytes()

    forward, calls = model.negative_elbo_forward, []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss, cache = forward(*args, **kwargs)
        return (float("nan") if len(calls) == 3 else loss), cache

    monkeypatch.setattr(model, "negative_elbo_forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 3/5: the loss is nan.*--lr"):
        fit(model, x, 3, 100, optimizer, **quiet(checkpoint=path, resume=True))
    assert path.read_bytes() == good
    assert int(load_checkpoint(path)["train/epoch"]) == 1


def test_a_huge_learning_rate_is_stopped_cleanly(tmp_path):
    """Real divergence, not an injected one: the run stops with TrainingDiverged."""
    x = synthetic(500)
    model = tiny_model()
    with pytest.raises(TrainingDiverged, match="diverged in epoch"):
        fit(model, x, 5, 50, optimizer_for(model, "sgd", 1e12), **quiet())


def test_interrupt_leaves_the_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch):
    x, path, lines = synthetic(300), tmp_path / "ckpt.npz", []
    model = tiny_model()
    optimizer = optimizer_for(model)
    fit(model, x, 1, 100, optimizer, **quiet(checkpoint=path))
    good = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(model, "negative_elbo_forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(model, x, 3, 100, optimizer, checkpoint=path, resume=True, progress=False,
            log=lines.append)
    assert path.read_bytes() == good
    assert lines[-1] == f"interrupted during epoch 2: {path} still holds epoch 1"


def test_history_round_trips_through_json_and_csv(tmp_path):
    records = [{"epoch": e, "train_elbo": -100.0 / e - 0.1, "train_reconstruction": -90.0 / 3,
                "train_kl": 10.0 / 7, "test_elbo": None if e == 1 else -101.25 / 3,
                "beta": 0.5 * e, "seconds": 1.0 / 3, "eval_seconds": 0.2}
               for e in (1, 2)]
    history = History(records)
    history.to_json(tmp_path / "h.json")
    assert History.from_json(tmp_path / "h.json") == history
    history.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(History.FIELDS)
    for row, record in zip(rows, records):
        for key, value in record.items():
            assert row[key] == ("" if value is None else str(value))
            if value is not None:
                assert float(row[key]) == value  # repr-exact floats


def test_kl_weight_ramps_linearly_then_stays():
    assert [kl_weight(s, 10, 2, 1.0) for s in (1, 5, 10, 15, 20, 21, 100)] == [
        0.05, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert kl_weight(1, 10, 0, 0.7) == 0.7  # no warm-up
    assert kl_weight(5, 10, 0.5, 2.0) == 2.0  # half an epoch: full weight after 5 steps


def test_fit_uses_the_warm_up_schedule(monkeypatch):
    """The beta of every step, as the model receives it, and the per-epoch record."""
    x = synthetic(250)
    model = tiny_model(beta=2.0)
    forward, betas = model.negative_elbo_forward, []

    def spy(x, eps, beta=None):
        betas.append(beta)
        return forward(x, eps, beta=beta)

    monkeypatch.setattr(model, "negative_elbo_forward", spy)
    history = fit(model, x, 3, 100, optimizer_for(model), kl_warmup_epochs=2, **quiet())
    # 3 steps per epoch, T = 6 warm-up steps
    assert betas == [2.0 * min(1.0, s / 6) for s in range(1, 10)]
    assert [r["beta"] for r in history.records] == [1.0, 2.0, 2.0]


def test_dynamic_binarisation_is_fresh_each_epoch_and_seeded(monkeypatch):
    x = np.full((100, D), 0.5, dtype=np.float32)  # every pixel a coin flip

    def batches_seen(seed, binarize="dynamic"):
        model = tiny_model()
        forward, seen = model.negative_elbo_forward, []

        def spy(x, eps, beta=None):
            seen.append(x.copy())
            return forward(x, eps, beta=beta)

        monkeypatch.setattr(model, "negative_elbo_forward", spy)
        fit(model, x, 2, 100, optimizer_for(model), seed=seed, binarize=binarize, **quiet())
        return seen

    first, second = batches_seen(seed=0)
    assert set(np.unique(first)) == {0.0, 1.0}
    assert not np.array_equal(first, second)  # a new draw in epoch 2
    for a, b in zip(batches_seen(seed=0), (first, second)):
        assert np.array_equal(a, b)  # the same seed, the same draws
    assert not np.array_equal(batches_seen(seed=1)[0], first)
    fixed = batches_seen(seed=0, binarize="fixed")
    assert np.array_equal(fixed[0], fixed[1])  # thresholded: the same every epoch


def test_test_set_is_binarised_the_same_every_time():
    x = synthetic(50)
    a, b = prepare_test_set(x, "dynamic"), prepare_test_set(x, "dynamic")
    assert np.array_equal(a, b) and set(np.unique(a)) == {0.0, 1.0}
    assert prepare_test_set(x, "none") is x


def test_epoch_line_reports_elbo_as_reconstruction_minus_kl():
    x, lines = synthetic(300), []
    model = tiny_model()
    history = fit(model, x, 2, 100, optimizer_for(model), test=synthetic(100, 1), kl_warmup_epochs=4,
                  progress=False, log=lines.append)
    assert len(lines) == 2
    r = history.records[0]
    assert r["train_elbo"] == pytest.approx(r["train_reconstruction"] - r["train_kl"], rel=1e-12)
    assert f"train ELBO {r['train_elbo']:8.2f}" in lines[0]
    assert f"test ELBO {r['test_elbo']:8.2f}" in lines[0]
    assert set(r) == {*History.FIELDS, "kl_per_dimension"} and r["seconds"] > 0 and r["eval_seconds"] > 0
    # the posterior-collapse meter, on the test images (docs/estimators.md#collapse)
    assert len(r["kl_per_dimension"]) == model.latent_dim
    assert f"active {r['active_units']}/{model.latent_dim}" in lines[0]


def test_progress_bar_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, shown in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr("sys.stderr", stream)
        model = tiny_model()
        fit(model, synthetic(200), 1, 50, optimizer_for(model), log=lambda line: None)
        # the epoch's own line says it all off a terminal: not even an announcement
        assert ("epoch 1/1" in stream.getvalue()) is shown
        if shown:  # the bar is erased at the end of the epoch
            assert stream.getvalue().endswith("\r")


def test_bad_arguments_are_named():
    model = tiny_model()
    with pytest.raises(ValueError, match="binarize: expected one of"):
        fit(model, synthetic(10), 1, 5, optimizer_for(model), binarize="yes", **quiet())
    with pytest.raises(ValueError, match=r"train: expected shape \(any, 64\)"):
        fit(model, np.zeros((10, 3)), 1, 5, optimizer_for(model), **quiet())
    with pytest.raises(ValueError, match="train: expected values in"):
        fit(model, np.full((10, D), 2.0), 1, 5, optimizer_for(model), **quiet())
    with pytest.raises(ValueError, match="resume=True needs checkpoint"):
        fit(model, synthetic(10), 1, 5, optimizer_for(model), resume=True, **quiet())


def subset(mnist_root, n_train, n_test):
    data = load_mnist("mnist", data_dir=mnist_root, download=False)
    return data.x_train[:n_train], data.x_test[:n_test]


def test_short_mnist_training_improves_the_test_elbo(mnist_root):
    x, x_test = subset(mnist_root, 3000, 1000)
    model = VAE(784, hidden=(64,), latent_dim=8, seed=0)
    before = evaluate_elbo(model, prepare_test_set(x_test, "dynamic"))
    history = fit(model, x, 2, 100, optimizer_for(model), test=x_test, **quiet())
    after = history.records[-1]["test_elbo"]
    assert after == evaluate_elbo(model, prepare_test_set(x_test, "dynamic"))
    assert after > before + 200, (before, after)  # ~ -545 nats -> ~ -200 nats


@pytest.mark.skipif(JIT_DISABLED, reason="two 3-epoch MNIST runs take many minutes without Numba")
def test_three_epochs_on_either_engine_reach_the_same_test_elbo(mnist_root):
    """The engine computes what the lecture computes, up to float32 rounding and summation order
    (its own exp and log1p, fused loops, BLAS products of other shapes): after 3 epochs of the
    standard model on 6000 images (binarised once, at 0.5: the two binarisations agree only in
    distribution), from one seed, the test ELBOs agree within 0.05 nats."""
    x, x_test = subset(mnist_root, 6000, 1000)
    elbos = {}
    for engine, ops in (("numpy", lecture_ops), ("numba", engine_ops)):
        model = VAE(784, hidden=(400,), latent_dim=20, seed=0, ops=ops)
        history = fit(model, x, 3, 128, optimizer_for(model), test=x_test, binarize="fixed", **quiet())
        elbos[engine] = history.records[-1]["test_elbo"]
    assert -200 < elbos["numpy"] < -120, elbos  # trained, not stuck near D log 2 = 543 nats
    assert elbos["numba"] == pytest.approx(elbos["numpy"], abs=0.05), elbos


@pytest.mark.slow
@pytest.mark.skipif(JIT_DISABLED, reason="the standard 10-epoch MNIST run takes hours without "
                    "Numba (NUMBA_DISABLE_JIT=1); it runs in the default configuration")
def test_standard_configuration_reaches_the_published_elbo(mnist_root):
    """784-400-20, ReLU, Bernoulli, Adam 1e-3, batch 128, dynamic binarisation, 10 epochs."""
    data = load_mnist("mnist", data_dir=mnist_root, download=False)
    model = VAE(784, hidden=(400,), latent_dim=20, seed=0)
    start = time.perf_counter()
    history = fit(model, data.x_train, 10, 128, optimizer_for(model), test=data.x_test, seed=0,
                  progress=False, log=print)
    print(f"standard configuration: {time.perf_counter() - start:.1f} s, "
          f"test ELBO {history.records[-1]['test_elbo']:.2f}")
    assert history.records[-1]["test_elbo"] >= -106.0  # the target is -103


@pytest.mark.slow
@pytest.mark.skipif(JIT_DISABLED, reason="a 10-epoch MNIST run takes hours without Numba")
def test_gaussian_decoder_on_dequantised_mnist_trains_ten_epochs(mnist_root):
    """784-400-20 with the Gaussian decoder on dequantised pixels: no divergence, a sane bound.

    On grey levels as they are, the learned variance collapses on always-black
    pixels and the ELBO runs off to infinity (docs/likelihoods.md#gaussian).
    Dequantised, a pixel's density is at most 256, so the ELBO per image is at
    most 784 log 256 = 4347 nats; measured after 10 epochs: about 1900.
    """
    data = load_mnist("mnist", data_dir=mnist_root, download=False)
    model = VAE(784, hidden=(400,), latent_dim=20, likelihood="gaussian", seed=0)
    history = fit(model, data.x_train, 10, 128, optimizer_for(model), test=data.x_test, seed=0,
                  binarize="dequantize", progress=False, log=print)
    elbos = [r["test_elbo"] for r in history.records]
    assert all(np.isfinite(elbos)), elbos
    assert 1000 < elbos[-1] < 784 * np.log(256), elbos
    assert elbos[-1] > elbos[0], elbos
