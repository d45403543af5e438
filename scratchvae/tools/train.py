"""The training loop: minibatch steps, per-epoch evaluation, history and checkpoints.

One step, for a minibatch of B examples (docs/training.md#one-step)::

    x      = binarise(train[idx])           # (B, D), a fresh 0/1 draw (dynamic)
    eps    ~ N(0, I)                        # (B, D_z), from the run's generator
    loss   = negative ELBO with weight beta_s on the KL   (VAE.negative_elbo_forward)
    grads  = d loss / d params                            (VAE.negative_elbo_backward)
    params = optimizer update from grads                  (optimizer.step)

:func:`fit` repeats it over epochs, measures the test ELBO after each one, prints
one line per epoch, and writes a checkpoint from which a stopped run continues
bit for bit. The test set and its ELBO are in :mod:`scratchvae.tools.evaluation`,
the per-epoch records in :mod:`scratchvae.tools.history`. Guide: docs/training.md

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

import time
from pathlib import Path

import numpy as np

from scratchvae.lecture.collapse import active_units, encode_all, kl_per_dimension
from scratchvae.lecture.training import PIXELS, kl_weight, learning_rate, train_step
from scratchvae.lecture.validate import NonFiniteError, as_float_array, check_shape, check_unit_interval
from scratchvae.tools import checkpoints, data
from scratchvae.tools.checkpoints import save_checkpoint
from scratchvae.tools.evaluation import EVAL_ROWS, evaluate_elbo, evaluate_log_likelihood, prepare_test_set
from scratchvae.tools.history import TRACK_IWAE_K, History
from scratchvae.tools.npz_files import check_writable
from scratchvae.tools.progress import Progress

__all__ = ["TrainingDiverged", "fit"]

# An ELBO (nats per image) beyond this, either way, means the run has blown up: a
# model that knew nothing would spend log 2 = 0.69 nats on each of MNIST's 784 pixels.
ABSURD_NATS = 1e6


class TrainingDiverged(RuntimeError):
    """The loss, the parameters or an epoch's ELBO became NaN, infinite or absurd."""


# --- checkpoints ---------------------------------------------------------------


def _restore(path, model, optimizer, rng, settings, log):
    """Load ``path`` into model, optimizer and rng; log any warning; return (epoch, history)."""
    epoch, records, warnings = checkpoints.restore(path, model, optimizer, rng, settings)
    for warning in warnings:
        log(warning)
    return epoch, History(records)


# --- the loop --------------------------------------------------------------------


def fit(model, train, epochs, batch_size=128, optimizer=None, test=None, seed=0, rng=None,
        binarize="dynamic", kl_warmup_epochs=0, lr_decay=1.0, iwae_every=0, checkpoint=None,
        resume=False, progress=True, log=print):
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
    binarize : {"dynamic", "fixed", "dequantize", "none"}
        The words of ``scratchvae train --binarize`` and of ``train_step``'s
        ``pixels`` (:data:`scratchvae.lecture.training.PIXELS`).
        "dynamic": a fresh Bernoulli draw of each image every time it is used;
        "fixed": thresholded at 0.5 once, here, the same every epoch; "dequantize": the
        grey levels spread over their bins of width 1/256 with fresh uniform
        noise each time (for the Gaussian likelihood,
        :func:`scratchvae.lecture.training.dequantize`); "none": the grey levels
        as they are.
    kl_warmup_epochs : float
        Epochs over which the KL weight climbs linearly from 0 to ``model.beta``.
    lr_decay : float
        Per-epoch factor of the learning rate: epoch e runs at
        ``optimizer.lr * lr_decay ** (e - 1)``
        (:func:`scratchvae.lecture.training.learning_rate`); 1 keeps it constant.
        ``optimizer.lr`` itself is left as given (and saved so).
    iwae_every : int
        After epochs ``iwae_every``, ``2 iwae_every``, ..., also estimate the
        test log-likelihood (importance-weighted, k = :data:`TRACK_IWAE_K`)
        into the record's ``"test_iwae"``; 0 (the default) never. Needs ``test``.
    checkpoint : str or Path, optional
        Written after every epoch (atomically), once the epoch has passed the
        divergence checks; before the first epoch a trial write proves the
        folder can take it (and removes a stale ``.tmp``).
    resume : bool
        Continue from ``checkpoint`` instead of starting afresh. The model,
        optimizer, settings and training data must be the checkpoint's.
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
        If a step's loss, the parameters after an epoch, or an epoch's train or
        test ELBO are NaN, infinite or beyond :data:`ABSURD_NATS`. The
        checkpoint still holds the last good epoch.
    scratchvae.tools.npz_files.CheckpointError
        On resume, if the checkpoint is damaged or its model, optimizer,
        settings or training data differ from this call's.
    OSError
        If the checkpoint's folder cannot take a checkpoint (found before the first epoch).
    """
    train, test, train_x = _check_fit_args(model, train, test, epochs, batch_size, optimizer,
                                           binarize, kl_warmup_epochs, lr_decay, iwae_every,
                                           checkpoint, resume)
    rng = np.random.default_rng(seed) if rng is None else rng
    settings = {"batch_size": int(batch_size), "binarize": binarize,
                "kl_warmup_epochs": float(kl_warmup_epochs), "n_train": len(train),
                **({} if lr_decay == 1 else {"lr_decay": float(lr_decay)}),
                "train_data": checkpoints.fingerprint(train)}
    done, history = 0, History()
    if resume:
        done, history = _restore(checkpoint, model, optimizer, rng, settings, log)
        log(f"resuming from {checkpoint} after epoch {done} of {epochs}")
    if checkpoint is not None:
        check_writable(checkpoint, checkpoints.checkpoint_arrays(
            model, optimizer, rng, done, history, settings))
    steps_per_epoch = -(-len(train) // batch_size)  # ceil(N / B)
    saved = done  # the epoch the checkpoint holds
    base_lr = optimizer.lr
    for epoch in range(done + 1, epochs + 1):
        try:
            # This epoch's rate; the optimizer keeps (and the checkpoint saves) the first one.
            optimizer.lr = lr = learning_rate(epoch, base_lr, lr_decay)
            try:
                sums, beta, seconds = _train_epoch(
                    model, optimizer, train, train_x, rng, epoch, epochs, batch_size,
                    binarize, kl_warmup_epochs, steps_per_epoch, progress)
            finally:
                optimizer.lr = base_lr
            # Nothing broken reaches the checkpoint: the parameters after the
            # epoch's last update, then its ELBOs, are checked first.
            _check_parameters(model, epoch)
            start = time.perf_counter()
            test_elbo = None if test is None else evaluate_elbo(model, test)
            track = test is not None and iwae_every and epoch % iwae_every == 0
            test_iwae = (evaluate_log_likelihood(model, test, TRACK_IWAE_K, progress=progress).mean
                         if track else None)
            record = {"epoch": epoch, "train_elbo": (sums[0] - sums[1]) / len(train),
                      "train_reconstruction": sums[0] / len(train),
                      "train_kl": sums[1] / len(train), "test_elbo": test_elbo,
                      "test_iwae": test_iwae,
                      **_collapse_meter(model, train if test is None else test), "beta": beta,
                      "lr": lr, "seconds": seconds, "eval_seconds": time.perf_counter() - start}
            _check_elbos(model, record)
            history.append(record)
            log(_epoch_line(record, epochs))
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, rng, epoch, history, settings)
                saved = epoch
        except KeyboardInterrupt:
            kept = (f"{checkpoint} still holds epoch {saved}" if checkpoint and saved
                    else "no checkpoint was written")
            log(f"interrupted during epoch {epoch}: {kept}")
            raise
    return history


def _check_parameters(model, epoch):
    """Raise TrainingDiverged if a parameter holds NaN or an infinity."""
    for name, value in model.params.items():
        if not np.isfinite(value).all():
            raise TrainingDiverged(_diverged_message(
                model, epoch, None, None, f"{name} holds NaN or infinite values after the "
                "epoch's last update"))


def _check_elbos(model, record):
    """Raise TrainingDiverged if the epoch's train or test ELBO is NaN, infinite or absurd."""
    for key in ("train_elbo", "test_elbo", "test_iwae"):
        value = record[key]
        if value is not None and not abs(value) <= ABSURD_NATS:
            raise TrainingDiverged(_diverged_message(
                model, record["epoch"], None, None, f"the {key.replace('_', ' ')} is "
                f"{value:.3g} nats, beyond {ABSURD_NATS:.0e} either way"))


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
            # The data were checked once, up front; an overflow or NaN from the
            # parameters reaches the loss, which train_step checks every step.
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    loss, cache = train_step(model, optimizer, train_x, idx, rng, beta,
                                             pixels=binarize)
            except (FloatingPointError, NonFiniteError) as err:
                # The data were checked, so a non-finite value inside a step (the lecture's
                # ops check every input) comes from the parameters: a divergence.
                raise TrainingDiverged(
                    _diverged_message(model, epoch, step, steps_per_epoch, str(err))) from None
            reconstruction_sum += float(np.sum(cache.reconstruction))
            kl_sum += float(np.sum(cache.kl))
            bar.set_postfix(f"loss {loss:.2f}")
            bar.update()
    return (reconstruction_sum, kl_sum), beta, time.perf_counter() - start


def _collapse_meter(model, x, rows=EVAL_ROWS * 10):
    """{'active_units', 'kl_per_dimension'} of the model on (the first ``rows`` of) ``x``.

    Burda et al.'s active units and the KL of each latent dimension
    (docs/estimators.md#collapse), from one pass of the encoder.
    """
    mu, log_var = encode_all(model, x[:rows])
    return {"active_units": active_units(mu)[0] if len(mu) > 1 else None,
            "kl_per_dimension": kl_per_dimension(mu, log_var).tolist()}


def _epoch_line(record, epochs):
    """The one line printed per epoch."""
    test = "" if record["test_elbo"] is None else f"  test ELBO {record['test_elbo']:8.2f}"
    if record.get("test_iwae") is not None:
        test += f" (IWAE-{TRACK_IWAE_K} {record['test_iwae']:.2f})"
    active = record.get("active_units")
    units = "" if active is None else f"  active {active}/{len(record['kl_per_dimension'])}"
    return (f"epoch {record['epoch']:3d}/{epochs}  train ELBO {record['train_elbo']:8.2f} "
            f"(rec {record['train_reconstruction']:8.2f}, KL {record['train_kl']:6.2f}){test}"
            f"{units}  beta {record['beta']:.3g}  {record['seconds']:.1f} s "
            f"(+{record['eval_seconds']:.1f} s eval)")


def _diverged_message(model, epoch, step, steps_per_epoch, what):
    """The message of TrainingDiverged; ``step=None`` for a check after the epoch's last step."""
    where = f"epoch {epoch}" + ("" if step is None else f", step {step}/{steps_per_epoch}")
    advice = ("lower the learning rate (--lr), warm the KL weight up (--kl-warmup 5), "
              "or try another optimizer")
    if model.likelihood == "gaussian":
        advice += ("; with the Gaussian likelihood the decoder's variance can collapse on "
                   "pixels that are always 0: use the Bernoulli likelihood or fewer epochs")
    return (f"training diverged in {where}: {what}. "
            f"The checkpoint, if any, still holds the last good epoch. To fix: {advice}.")


def _check_fit_args(model, train, test, epochs, batch_size, optimizer, binarize,
                    kl_warmup_epochs, lr_decay, iwae_every, checkpoint, resume):
    """Validate fit's arguments; return (train, test as the model sees it, pre-binarised train)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if binarize not in PIXELS:
        raise ValueError(f"binarize: expected one of {PIXELS}, got {binarize!r}")
    if not kl_warmup_epochs >= 0:
        raise ValueError(f"kl_warmup_epochs: expected a number >= 0, got {kl_warmup_epochs!r}")
    if isinstance(iwae_every, bool) or not isinstance(iwae_every, (int, np.integer)) or iwae_every < 0:
        raise ValueError(f"iwae_every: expected an integer >= 0, got {iwae_every!r}")
    if not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay: expected a factor in (0, 1], got {lr_decay!r}")
    if optimizer is None:
        raise ValueError("optimizer: expected an optimizer, e.g. "
                         "scratchvae.lecture.optim.make_optimizer('adam', model, 1e-3), got None")
    if resume and checkpoint is None:
        raise ValueError("resume: resume=True needs checkpoint=<path> to resume from")
    if resume and not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint: {checkpoint} does not exist, nothing to resume")
    if not np.isfinite(model.beta):
        raise ValueError(f"model.beta: expected a finite KL weight, got {model.beta}")
    train = check_unit_interval("train", as_float_array("train", train, ndim=2))
    if len(train) == 0:
        raise ValueError("train: expected at least one training image, got 0 rows")
    check_shape("train", train, (None, model.input_dim))
    if test is not None:
        test = check_unit_interval("test", as_float_array("test", test, ndim=2))
        check_shape("test", test, (None, model.input_dim))
        test = prepare_test_set(test, binarize)
    train_x = data.binarize_fixed(train) if binarize == "fixed" else train
    return train, test, train_x
