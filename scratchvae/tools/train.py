"""The training loop: minibatch steps, per-epoch evaluation, history and checkpoints.

One step, for a minibatch of B examples (docs/training.md#one-step)::

    x      = binarise(train[idx])           # (B, D), a fresh 0/1 draw (dynamic)
    eps    ~ N(0, I)                        # (B, D_z), from the run's generator
    loss   = negative ELBO with weight beta_s on the KL   (VAE.negative_elbo_forward)
    grads  = d loss / d params                            (VAE.negative_elbo_backward)
    params = optimizer update from grads                  (optimizer.step)

:func:`fit` repeats it over epochs, measures the test ELBO after each one, prints
one line per epoch, and writes a checkpoint from which a stopped run continues
bit for bit. Guide: docs/training.md

Examples
--------
>>> import numpy as np
>>> from scratchvae.lecture.vae import VAE
>>> from scratchvae.lecture.optim import make_optimizer
>>> x = np.random.default_rng(0).random((256, 64), dtype=np.float32)
>>> model = VAE(64, hidden=(16,), latent_dim=2, seed=0)
>>> history = fit(model, x, epochs=2, batch_size=32,
...               optimizer=make_optimizer("adam", model, 1e-3), log=lambda line: None)
>>> [r["epoch"] for r in history.records]
[1, 2]
"""

import csv
import json
import time
from pathlib import Path

import numpy as np

from scratchvae.tools import data
from scratchvae.tools.progress import Progress
from scratchvae.lecture import estimators
from scratchvae.lecture.validate import as_float_array, check_shape, check_unit_interval, skip_checks
from scratchvae.lecture.vae import atomic_savez

__all__ = [
    "BINARIZE",
    "EVAL_SEED",
    "History",
    "TrainingDiverged",
    "evaluate_elbo",
    "evaluate_log_likelihood",
    "fit",
    "kl_weight",
    "load_checkpoint",
    "prepare_test_set",
    "save_checkpoint",
]

BINARIZE = ("dynamic", "fixed", None)
# The test set is binarised, and its ELBO sampled, with generators seeded by
# this constant: every epoch and every run sees the same test images and noise.
EVAL_SEED = 1234
# Rows per forward pass when evaluating the ELBO: large enough for BLAS, small
# enough that the caches of a 784-400-20 model stay around 20 MB.
EVAL_ROWS = 1000
# Keys that the checkpoint adds to the model's state_dict.
OPTIM_PREFIX = "optim/"
TRAIN_KEYS = ("train/epoch", "train/rng_state", "train/history", "train/settings")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the parameters are no longer usable."""


# --- the record of a run ------------------------------------------------------


class History:
    """One dict per epoch, in order; written as CSV (for spreadsheets) or JSON.

    Keys of each record: ``epoch``, ``train_elbo``, ``train_reconstruction``,
    ``train_kl`` (means per example over the epoch's steps, in nats),
    ``test_elbo`` (None without a test set), ``beta`` (KL weight at the
    epoch's last step), ``seconds`` (training) and ``eval_seconds``.

    Examples
    --------
    >>> h = History([{"epoch": 1, "train_elbo": -120.5}])
    >>> History.from_json_string(h.to_json_string()) == h
    True
    """

    FIELDS = ("epoch", "train_elbo", "train_reconstruction", "train_kl", "test_elbo",
              "beta", "seconds", "eval_seconds")

    def __init__(self, records=None):
        self.records = [dict(r) for r in records or []]

    def __len__(self):
        return len(self.records)

    def __eq__(self, other):
        return isinstance(other, History) and self.records == other.records

    def append(self, record):
        self.records.append(dict(record))

    def to_json_string(self):
        return json.dumps({"records": self.records}, indent=1)

    @classmethod
    def from_json_string(cls, text):
        return cls(json.loads(text)["records"])

    def to_json(self, path):
        """Write the records to ``path`` as JSON (floats round-trip exactly)."""
        Path(path).write_text(self.to_json_string() + "\n")

    @classmethod
    def from_json(cls, path):
        """Read a History written by :meth:`to_json`."""
        return cls.from_json_string(Path(path).read_text())

    def to_csv(self, path):
        """Write one row per epoch to ``path``; a missing value is an empty cell."""
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS, restval="", extrasaction="ignore")
            writer.writeheader()
            for record in self.records:
                writer.writerow({k: "" if v is None else v for k, v in record.items()})


# --- the KL weight -------------------------------------------------------------


def kl_weight(step, steps_per_epoch, warmup_epochs, beta):
    r"""The KL weight for global step ``step`` (1, 2, ...) under a linear warm-up.

    .. math:: \beta_s = \beta \,\min\!\Big(1, \frac{s}{T}\Big),
              \qquad T = \text{warmup\_epochs} \times \text{steps\_per\_epoch}

    so the weight climbs from about 0 to ``beta`` over the first
    ``warmup_epochs`` epochs and stays there; ``warmup_epochs=0`` is no warm-up.
    Guide: docs/training.md#kl-warm-up

    Examples
    --------
    >>> [kl_weight(s, 10, 2, 1.0) for s in (1, 10, 20, 30)]
    [0.05, 0.5, 1.0, 1.0]
    """
    ramp_steps = warmup_epochs * steps_per_epoch
    if ramp_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, step / ramp_steps)


# --- evaluation ----------------------------------------------------------------


def prepare_test_set(x, binarize):
    """The test images as the model sees them: binarised once, the same in every run.

    ``"dynamic"``: one Bernoulli draw with the fixed seed :data:`EVAL_SEED` (so
    test ELBOs of different epochs and runs compare the same 0/1 images);
    ``"fixed"``: the 0.5 threshold of :func:`scratchvae.tools.data.binarize_fixed`;
    ``None``: the grey levels as they are.

    Examples
    --------
    >>> x = np.random.default_rng(0).random((3, 4))
    >>> np.array_equal(prepare_test_set(x, "dynamic"), prepare_test_set(x, "dynamic"))
    True
    """
    if binarize == "dynamic":
        return data.binarize(x, np.random.default_rng(EVAL_SEED))
    if binarize == "fixed":
        return data.binarize_fixed(x)
    return x


def evaluate_elbo(model, x, n_samples=1, seed=EVAL_SEED):
    """Mean ELBO per example over ``x``, in nats (estimator L^B, fixed noise).

    Parameters
    ----------
    model : VAE
    x : ndarray, shape (N, D)
        Already binarised as in training (see :func:`prepare_test_set`).
    n_samples : int
        Samples of z per example (note 004's L).
    seed : int
        Seeds the noise, so two calls on the same model give the same number.

    Returns
    -------
    float

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(16, hidden=(8,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((10, 16)).round()
    >>> evaluate_elbo(model, x) == evaluate_elbo(model, x)
    True
    """
    x = model.as_input(x)  # once here, so the ops need not check every chunk
    rng = np.random.default_rng(seed)
    with skip_checks():
        elbo = estimators.elbo_lb(model, x, n_samples, rng, batch_rows=EVAL_ROWS)[0]  # (N,)
    return float(np.mean(elbo))


def evaluate_log_likelihood(model, x, k, seed=EVAL_SEED, progress=True):
    """Mean importance-weighted bound on log p(x) with ``k`` samples, in nats.

    This takes a while (k decoder passes per image), so it reports its
    progress on stderr (:class:`scratchvae.tools.progress.Progress`).

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(16, hidden=(8,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((10, 16)).round()
    >>> evaluate_log_likelihood(model, x, k=50, progress=False) > evaluate_elbo(model, x)
    True
    """
    rng = np.random.default_rng(seed)
    with Progress(len(x), f"log-likelihood estimate, k={k}", unit="image",
                  enabled=progress) as bar:
        bound = estimators.importance_weighted_bound(  # (N,)
            model, x, k, rng, progress=lambda fraction: bar.advance_to(round(fraction * len(x))))
    return float(np.mean(bound))


# --- checkpoints ---------------------------------------------------------------


def save_checkpoint(path, model, optimizer, rng, epoch, history, settings):
    """Write everything needed to continue a run to ``path``, atomically.

    The file is an ``.npz`` that :meth:`VAE.load` also reads: the model's
    ``state_dict``, the optimizer's state under ``optim/``, and under
    ``train/`` the number of finished epochs, the generator's full state, the
    history and the settings of :func:`fit` that a resumed run must share.
    Guide: docs/training.md#checkpoints
    """
    state = dict(model.state_dict())
    state.update({OPTIM_PREFIX + k: np.asarray(v) for k, v in optimizer.state_dict().items()})
    # PCG64's state holds 128-bit integers: JSON keeps them exact, as text.
    state["train/rng_state"] = np.array(json.dumps(rng.bit_generator.state))
    state["train/epoch"] = np.array(int(epoch))
    state["train/history"] = np.array(history.to_json_string())
    state["train/settings"] = np.array(json.dumps(settings))
    atomic_savez(path, state)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint` into a dict of arrays.

    Raises
    ------
    ValueError
        If the file cannot be read or lacks the training keys, with the reason.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = dict(npz)
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read as a scratchvae checkpoint ({err})") from err
    missing = [k for k in ("config", *TRAIN_KEYS) if k not in state]
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {', '.join(missing)}); "
                         "a model file (model.npz) holds the weights but cannot resume training")
    return state


def _restore(path, model, optimizer, rng, settings):
    """Load ``path`` into model, optimizer and rng; return (epoch, history)."""
    state = load_checkpoint(path)
    saved = json.loads(str(state["config"]))
    # The initial-weights seed does not matter once the weights are loaded.
    differ = sorted(k for k in {*saved, *model.config} - {"seed"}
                    if saved.get(k) != model.config.get(k))
    if differ:
        raise ValueError(f"{path}: the checkpoint's model differs from this one in "
                         + ", ".join(f"{k} ({saved.get(k)!r} there, {model.config.get(k)!r} here)"
                                     for k in differ))
    saved_settings = json.loads(str(state["train/settings"]))
    if saved_settings != settings:
        raise ValueError(f"{path}: the checkpoint was trained with {saved_settings}, this call "
                         f"asks for {settings}; resume with the same settings to continue the run")
    model.load_state_dict(state)
    optimizer.load_state_dict({k[len(OPTIM_PREFIX):]: v for k, v in state.items()
                               if k.startswith(OPTIM_PREFIX)})
    rng.bit_generator.state = json.loads(str(state["train/rng_state"]))
    return int(state["train/epoch"]), History.from_json_string(str(state["train/history"]))


# --- the loop --------------------------------------------------------------------


def fit(model, train, epochs, batch_size=128, optimizer=None, test=None, seed=0, rng=None,
        binarize="dynamic", kl_warmup_epochs=0, checkpoint=None, resume=False, progress=True,
        log=print):
    """Train ``model`` by minibatch steps on the negative ELBO, for ``epochs`` epochs.

    Guide: docs/training.md

    Parameters
    ----------
    model : VAE
        Trained in place.
    train : ndarray, shape (N, D)
        Training images, grey levels in [0, 1]; binarised here (see ``binarize``).
    epochs : int
        The total number of epochs; a resumed run continues up to it.
    batch_size : int
        Examples per step (the last step of an epoch may have fewer).
    optimizer : optimizer from :mod:`scratchvae.lecture.optim`
        Built on ``model``'s parameters; ``step()`` applies one update.
    test : ndarray, shape (N_test, D), optional
        Test images in [0, 1]; the test ELBO is measured after each epoch.
    seed : int
        Seeds the run's generator (shuffling, binarisation, noise) unless ``rng`` is given.
    rng : numpy.random.Generator, optional
        The run's generator; on resume its state is overwritten by the checkpoint's.
    binarize : {"dynamic", "fixed", None}
        "dynamic": a fresh Bernoulli draw of each image every time it is used;
        "fixed": thresholded at 0.5, the same every epoch; None: use the grey
        levels (for the Gaussian likelihood).
    kl_warmup_epochs : float
        Epochs over which the KL weight climbs linearly from 0 to ``model.beta``.
    checkpoint : str or Path, optional
        Written after every epoch (atomically).
    resume : bool
        Continue from ``checkpoint`` instead of starting afresh.
    progress : bool
        While an epoch runs, show its steps, rate and time left on stderr
        (only on a terminal; :class:`scratchvae.tools.progress.Progress`).
    log : callable
        Receives one line of text per epoch.

    Returns
    -------
    History

    Raises
    ------
    TrainingDiverged
        If a step's loss is NaN or infinite. The checkpoint still holds the
        last good epoch.
    """
    train, test, train_x = _check_fit_args(model, train, test, epochs, batch_size, optimizer,
                                           binarize, kl_warmup_epochs, checkpoint, resume)
    rng = np.random.default_rng(seed) if rng is None else rng
    settings = {"batch_size": int(batch_size), "binarize": binarize,
                "kl_warmup_epochs": float(kl_warmup_epochs), "n_train": len(train)}
    done, history = 0, History()
    if resume:
        done, history = _restore(checkpoint, model, optimizer, rng, settings)
        log(f"resuming from {checkpoint} after epoch {done} of {epochs}")
    steps_per_epoch = -(-len(train) // batch_size)  # ceil(N / B)
    for epoch in range(done + 1, epochs + 1):
        try:
            sums, beta, seconds = _train_epoch(
                model, optimizer, train, train_x, rng, epoch, epochs, batch_size,
                binarize, kl_warmup_epochs, steps_per_epoch, progress)
        except KeyboardInterrupt:
            kept = (f"{checkpoint} still holds epoch {epoch - 1}" if checkpoint and epoch > 1
                    else "no checkpoint was written")
            log(f"interrupted during epoch {epoch}: {kept}")
            raise
        start = time.perf_counter()
        test_elbo = None if test is None else evaluate_elbo(model, test)
        record = {"epoch": epoch, "train_elbo": (sums[0] - sums[1]) / len(train),
                  "train_reconstruction": sums[0] / len(train), "train_kl": sums[1] / len(train),
                  "test_elbo": test_elbo, "beta": beta, "seconds": seconds,
                  "eval_seconds": time.perf_counter() - start}
        history.append(record)
        log(_epoch_line(record, epochs))
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, rng, epoch, history, settings)
    return history


def _train_epoch(model, optimizer, train, train_x, rng, epoch, epochs, batch_size, binarize,
                 kl_warmup_epochs, steps_per_epoch, progress):
    """One pass over ``train``; returns ((sum of log p(x|z), sum of KL), last beta, seconds)."""
    reconstruction_sum = kl_sum = 0.0
    start = time.perf_counter()
    # Off a terminal the epoch's own line, printed when it ends, is all there is.
    with Progress(steps_per_epoch, f"epoch {epoch}/{epochs}", unit="step", announce=False,
                  enabled=progress) as bar:
        for step, idx in enumerate(data.minibatches(len(train), batch_size, rng), start=1):
            global_step = (epoch - 1) * steps_per_epoch + step
            beta = kl_weight(global_step, steps_per_epoch, kl_warmup_epochs, model.beta)
            # The data were checked once, up front, so the ops need not check
            # every array again; if the parameters blow up, the overflow or
            # NaN reaches the loss, which is checked every step instead.
            with skip_checks(), np.errstate(over="ignore", invalid="ignore"):
                # A fresh 0/1 image per use (dynamic), or the pre-binarised rows.
                # (rows=idx reads the minibatch's rows in place: no copy of them first)
                x = data.binarize(train, rng, rows=idx) if binarize == "dynamic" else train_x[idx]  # (B, D)
                eps = rng.standard_normal((len(idx), model.latent_dim), dtype=model.dtype)  # (B, D_z)
                # loss = (1/B) sum_b [ -log p(x_b | z_b) + beta KL_b ]
                loss, cache = model.negative_elbo_forward(x, eps, beta=beta)
                if not np.isfinite(loss):
                    raise TrainingDiverged(
                        _diverged_message(model, epoch, step, steps_per_epoch, f"the loss is {loss}")
                    )
                # The gradients are written, not added: no zero_grad needed.
                model.negative_elbo_backward(1.0, cache, accumulate=False)
            optimizer.step()
            reconstruction_sum += float(np.sum(cache.reconstruction))
            kl_sum += float(np.sum(cache.kl))
            bar.set_postfix(f"loss {loss:.2f}")
            bar.update()
    return (reconstruction_sum, kl_sum), beta, time.perf_counter() - start


def _epoch_line(record, epochs):
    """The one line printed per epoch."""
    test = "" if record["test_elbo"] is None else f"  test ELBO {record['test_elbo']:8.2f}"
    return (f"epoch {record['epoch']:3d}/{epochs}  train ELBO {record['train_elbo']:8.2f} "
            f"(rec {record['train_reconstruction']:8.2f}, KL {record['train_kl']:6.2f}){test}  "
            f"beta {record['beta']:.3g}  {record['seconds']:.1f} s (+{record['eval_seconds']:.1f} s eval)")


def _diverged_message(model, epoch, step, steps_per_epoch, what):
    advice = ("lower the learning rate (--lr), warm the KL weight up (--kl-warmup 5), "
              "or try another optimizer")
    if model.likelihood == "gaussian":
        advice += ("; with the Gaussian likelihood the decoder's variance can collapse on "
                   "pixels that are always 0: use the Bernoulli likelihood or fewer epochs")
    return (f"training diverged in epoch {epoch}, step {step}/{steps_per_epoch}: {what}. "
            f"The checkpoint, if any, still holds the last good epoch. To fix: {advice}.")


def _check_fit_args(model, train, test, epochs, batch_size, optimizer, binarize,
                    kl_warmup_epochs, checkpoint, resume):
    """Validate fit's arguments; return (train, test as the model sees it, pre-binarised train)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if binarize not in BINARIZE:
        raise ValueError(f"binarize: expected one of {BINARIZE}, got {binarize!r}")
    if not kl_warmup_epochs >= 0:
        raise ValueError(f"kl_warmup_epochs: expected a number >= 0, got {kl_warmup_epochs!r}")
    if optimizer is None:
        raise ValueError("optimizer: expected an optimizer, e.g. "
                         "scratchvae.lecture.optim.make_optimizer('adam', model, 1e-3), got None")
    if resume and checkpoint is None:
        raise ValueError("resume: resume=True needs checkpoint=<path> to resume from")
    if resume and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint: {checkpoint} does not exist, nothing to resume")
    train = check_unit_interval("train", as_float_array("train", train, ndim=2))
    check_shape("train", train, (None, model.input_dim))
    if test is not None:
        test = check_unit_interval("test", as_float_array("test", test, ndim=2))
        check_shape("test", test, (None, model.input_dim))
        test = prepare_test_set(test, binarize)
    train_x = data.binarize_fixed(train) if binarize == "fixed" else train
    return train, test, train_x
