"""``scratchvae train``: make a run folder (or resume one), train in it, and finish the run.

:func:`train_command` is called by :func:`scratchvae.tools.cli.main` with the
parsed flags. It writes the folder's config.json first, then trains with a
checkpoint after every epoch (:func:`scratchvae.tools.train.fit`); the
finished run gets model.npz, its history, metrics.json, the figures and, last,
the slow log-likelihood estimate. An interruption at any stage says what the
folder holds and the command that finishes the run. What it shares with the
commands that read run folders (the errors, loading the data, the figures,
the estimate) is in :mod:`scratchvae.tools.run_commands`.
Guide: docs/training.md#the-command
"""

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from scratchvae import __version__
from scratchvae.tools.run_commands import (
    CONFIG_FILE,
    NO_ESTIMATE,
    CommandError,
    _binarize,
    _describe_test_set,
    _load_data,
    _log_likelihood,
    _log_likelihood_line,
    _read_config,
    command_line,
    engine_ops,
    on_interrupt,
    write_figures,
)
from scratchvae.tools.start import IEEE_FLAG, subnormals

__all__ = ["PRESETS", "TRAIN_DEFAULTS", "TRAIN_IWAE_K", "train_command"]

# `scratchvae train`'s settings and their defaults: a 784-400-20 VAE trained with
# Adam, as in PyTorch's VAE example, so the numbers can be set side by side.
# Flags left out take these, or, with --resume, the values the run began with.
TRAIN_DEFAULTS = {
    "dataset": "mnist", "epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
    "hidden": [400], "latent_dim": 20, "activation": "relu", "likelihood": "bernoulli",
    "binarize": None, "beta": 1.0, "kl_warmup": 0.0, "lr_decay": 1.0, "iwae_every": 0, "seed": 0,
    "limit": None,
    "preset": None,
}
TRAIN_IWAE_K = 500
# --preset NAME: settings that replace the defaults (flags given still win).
# "hour": the one-hour recipe to a published-quality log-likelihood on MNIST,
# each choice measured in docs/results.md#the-one-hour-recipe.
PRESETS = {
    "hour": {"hidden": [500, 500], "latent_dim": 50, "epochs": 300, "kl_warmup": 10.0,
             "lr_decay": 0.1 ** (1 / 300), "iwae_every": 25, "iwae_k": 5000},
}
CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"


def train_command(args):
    out, config = _train_config(args)
    x_train, x_test, y_test = _load_data(config["dataset"], args.data_dir, args.no_download,
                                         config["limit"])
    _start_run_folder(out, config)
    from scratchvae.lecture.optim import make_optimizer
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.compiling import notice_compiling
    from scratchvae.tools.npz_files import CheckpointError
    from scratchvae.tools.train import TrainingDiverged, fit

    model = VAE(x_train.shape[1], hidden=config["hidden"], latent_dim=config["latent_dim"],
                activation=config["activation"], likelihood=config["likelihood"],
                beta=config["beta"], seed=config["seed"], dtype=np.float32, ops=engine_ops())
    optimizer = make_optimizer(config["optimizer"], model, config["lr"])
    notice_compiling()
    try:
        with _writing_in(out), on_interrupt(lambda: _training_interrupted(args, out)):
            history = fit(model, x_train, config["epochs"], config["batch_size"], optimizer,
                          test=x_test, seed=config["seed"], binarize=_binarize(config),
                          kl_warmup_epochs=config["kl_warmup"],
                          lr_decay=config.get("lr_decay", 1.0),
                          iwae_every=config.get("iwae_every", 0),
                          checkpoint=out / CHECKPOINT_FILE, resume=args.resume)
    except TrainingDiverged as err:
        print(f"scratchvae train: {err}", file=sys.stderr)
        return 1
    except CheckpointError as err:  # a damaged checkpoint on --resume
        raise CommandError(str(err)) from None
    _finish_run(args, out, config, model, history, x_test, y_test)
    return 0


def _finish_run(args, out, config, model, history, x_test, y_test):
    """Save the model, history, metrics.json and figures; then run the slow estimate.

    Everything but the importance-weighted estimate is written first, so an
    interruption during the estimate loses only the estimate; an interruption
    at any stage says what the run folder holds and how to finish the run.
    """
    from scratchvae.tools import checkpoints
    from scratchvae.tools.evaluation import prepare_test_set

    finish = _resume_command(args, out)
    with on_interrupt(f"while saving the run: {out} holds the trained model "
                       f"({CHECKPOINT_FILE}); to finish the run: {finish}"), _writing_in(out):
        checkpoints.save_model(model, out / MODEL_FILE)
        history.to_csv(out / "history.csv")
        history.to_json(out / "history.json")
        _write_metrics(out, _run_metrics(history, config, NO_ESTIMATE))
    test = prepare_test_set(x_test, _binarize(config))
    held = f"{out} holds the trained model, its history and metrics.json"
    with on_interrupt(f"while drawing the figures: {held}; to finish the run: {finish}"), \
            _writing_in(out):
        written = write_figures(model, test, y_test, history, out)
    print(f"wrote {out}: {MODEL_FILE}, {CHECKPOINT_FILE}, history.csv, history.json, metrics.json, "
          + ", ".join(p.name for p in written))
    with on_interrupt(f"during the log-likelihood estimate: {held} (without log p(x)) and the "
                       f"figures; to add the estimate: {finish}"):
        metrics = _run_metrics(history, config,
                               _log_likelihood(model, test, _iwae_k(args, config), config))
    with _writing_in(out):
        _write_metrics(out, metrics)
    print(f"test ELBO {metrics['test_elbo']:.2f} nats")
    if metrics["log_likelihood"] is not None:
        print(_describe_test_set(test, config))
        print(_log_likelihood_line(metrics, len(test)))


def _write_metrics(out, metrics):
    """metrics.json, as strict JSON (a NaN or an infinity would be written as null)."""
    from scratchvae.tools.history import strict_json

    (out / "metrics.json").write_text(strict_json(metrics) + "\n")


def _run_metrics(history, config, estimate):
    """metrics.json: the last epoch's ELBOs, the times, the estimate and the settings."""
    last = history.records[-1]
    train_seconds = sum(r["seconds"] for r in history.records)
    eval_seconds = sum(r["eval_seconds"] for r in history.records)
    return {"test_elbo": last["test_elbo"], "train_elbo": last["train_elbo"],
            "epochs": len(history), "train_seconds": train_seconds, **estimate,
            "seconds": train_seconds + eval_seconds + estimate["iwae_seconds"],
            "config": config, "scratchvae_version": __version__}


def _iwae_k(args, config):
    """k for the final estimate: --iwae-k if given, else the preset's, else TRAIN_IWAE_K."""
    if args.iwae_k is not None:
        return args.iwae_k
    return PRESETS.get(config.get("preset"), {}).get("iwae_k", TRAIN_IWAE_K)


def _resume_command(args, out):
    """The command that continues (or finishes) the run in ``out`` with the same data and k."""
    argv = ["train", "--resume", "--out", str(out)]
    if args.iwae_k is not None:
        argv += ["--iwae-k", str(args.iwae_k)]
    if args.data_dir is not None:
        argv += ["--data-dir", args.data_dir]
    if args.no_download:
        argv.append("--no-download")
    return command_line(argv)


def _training_interrupted(args, out):
    """What to do after an interrupted epoch: resume if a checkpoint was saved, else start again."""
    if (out / CHECKPOINT_FILE).is_file():
        from scratchvae.tools.checkpoints import load_checkpoint

        epoch = int(load_checkpoint(out / CHECKPOINT_FILE)["train/epoch"])
        return (f"during training: {out / CHECKPOINT_FILE} holds epoch {epoch}; "
                f"to continue: {_resume_command(args, out)}")
    return f"during the first epoch, before any checkpoint; start again: {command_line(args.argv)}"


@contextmanager
def _writing_in(out):
    """Turn a failed write in the run folder (read-only, full, too large) into a CommandError."""
    try:
        yield
    except OSError as err:
        raise CommandError(f"cannot write in {out} ({err}); make the folder writable, free "
                           "some space, or choose another --out") from None


def _train_config(args):
    """The run folder and the run's settings: flags over defaults, or over the saved run.

    Only checks: the folder is made by :func:`_start_run_folder`, once the data are found.
    """
    given = {k: getattr(args, k) for k in TRAIN_DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        if args.out is None:
            raise CommandError("--resume needs --out DIR, the run folder to continue")
        out = Path(args.out)
        if not (out / CONFIG_FILE).is_file():
            raise CommandError(f"--resume: {out / CONFIG_FILE} not found; is {out} a run folder?")
        if not (out / CHECKPOINT_FILE).is_file():
            raise CommandError(f"--resume: {out} has no {CHECKPOINT_FILE}: the run stopped "
                               "before its first epoch ended; start it again without --resume")
        from scratchvae.tools.checkpoints import load_checkpoint
        try:
            load_checkpoint(out / CHECKPOINT_FILE)
        except ValueError as err:  # a CheckpointError
            raise CommandError(str(err)) from None
        config = _read_config(out / CONFIG_FILE)
        # Everything but the number of epochs must stay as the run began.
        clash = [f"--{k.replace('_', '-')} {v} (the run has {config.get(k)})"
                 for k, v in given.items() if k != "epochs" and v != config.get(k)]
        if clash:
            raise CommandError(f"--resume: {', '.join(clash)}: the settings of a run cannot "
                               f"change when it resumes (see {out / CONFIG_FILE}); leave them out")
        _warn_of_another_floating_point_mode(config.get("subnormals"), subnormals())
        return out, {**config, **given}
    preset = {k: v for k, v in PRESETS.get(given.get("preset"), {}).items() if k != "iwae_k"}
    config = {**TRAIN_DEFAULTS, **preset, **given}
    config["binarize"] = _binarize(config)
    # Recorded, not chosen here: the `scratchvae` command sets it before NumPy loads (tools/start.py).
    config["subnormals"] = subnormals()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/{config['dataset']}-{stamp}")
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: a file of that name exists; --out names the run "
                           "folder to write: choose another name")
    if (out / CHECKPOINT_FILE).exists():
        raise CommandError(f"--out {out} already holds a run: add --resume to continue it, "
                           "or choose another --out")
    return out, config


def _warn_of_another_floating_point_mode(saved, current):
    """One line on stderr if the run was trained with subnormals treated otherwise than now."""
    if saved is not None and saved != current:
        print(f"warning: the run was trained with subnormal numbers {_MODES.get(saved, saved)}, this "
              f"process has them {_MODES.get(current, current)}: the resumed run will not be "
              f"bit-identical to an uninterrupted one (scratchvae {IEEE_FLAG} ... keeps IEEE "
              "arithmetic; the default flushes them to zero)", file=sys.stderr)


_MODES = {"flush-to-zero": "flushed to zero", "IEEE": "kept (IEEE)",
          "mixed": "flushed in some threads only"}


def _start_run_folder(out, config):
    """Make the run folder and write its config.json.

    These are the first writes in the folder: a read-only or full one is found
    here, before anything trains.
    """
    with _writing_in(out):
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    print(f"run folder: {out}")
