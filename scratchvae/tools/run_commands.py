"""The commands that make and read run folders: ``train``, ``evaluate``, ``sample``, ``plot``.

Each is one function ``<name>_command(args) -> exit code``, called by
:func:`scratchvae.tools.cli.main` with the parsed flags. A mistake the user
can fix raises :class:`CommandError` (one line on stderr, exit code 2); Ctrl-C
or SIGTERM inside a stage raises :class:`Interrupted`, whose message says
what the run folder holds and the exact command that finishes the job (exit
code 130). Numba, matplotlib and the model are imported inside the commands,
so that ``scratchvae --help`` answers at once.
Guide: docs/training.md#the-command
"""

import contextlib
import json
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from scratchvae import __version__
from scratchvae.tools.download import DATASETS

__all__ = ["CommandError", "Interrupted", "TRAIN_DEFAULTS", "TRAIN_IWAE_K", "command_line",
           "evaluate_command", "on_interrupt", "plot_command", "sample_command", "train_command",
           "write_figures"]

# `scratchvae train`'s settings and their defaults: a 784-400-20 VAE trained with
# Adam, as in PyTorch's VAE example, so the numbers can be set side by side.
# Flags left out take these, or, with --resume, the values the run began with.
TRAIN_DEFAULTS = {
    "dataset": "mnist", "epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
    "hidden": [400], "latent_dim": 20, "activation": "relu", "likelihood": "bernoulli",
    "binarize": None, "beta": 1.0, "kl_warmup": 0.0, "seed": 0, "limit": None,
}
TRAIN_IWAE_K = 500
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.npz"
MODEL_FILE = "model.npz"
FIGURE_SEED = 0
# metrics.json's log-likelihood entries before (or without: --iwae-k 0) the estimate.
NO_ESTIMATE = {"log_likelihood": None, "log_likelihood_se": None, "iwae_k": 0, "iwae_seconds": 0.0}
# Test images in the reconstruction figure: 4 rows of 8 pairs.
RECONSTRUCTION_ROWS, RECONSTRUCTION_COLUMNS = 4, 8

class CommandError(Exception):
    """A problem the user can fix; printed as one line without a traceback, exit code 2."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the message says what was saved and how to finish; exit code 130."""


@contextlib.contextmanager
def on_interrupt(message):
    """Turn Ctrl-C (or SIGTERM, see :func:`main`) inside the block into ``Interrupted(message)``.

    ``message`` is a string, or a function that makes it at the moment of the
    interruption (when it depends on what has been saved by then).
    """
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(message() if callable(message) else message) from None


def command_line(argv):
    """``scratchvae`` with the arguments ``argv``, quoted so that it can be pasted back."""
    return shlex.join(["scratchvae", *argv])


# --- train --------------------------------------------------------------------


def train_command(args):
    out, config = _train_config(args)
    x_train, x_test, y_test = _load_data(config["dataset"], args.data_dir, args.no_download,
                                         config["limit"])
    _start_run_folder(out, config)
    from scratchvae.lecture.optim import make_optimizer
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.npz_files import CheckpointError
    from scratchvae.tools.progress import notice_compiling
    from scratchvae.tools.train import TrainingDiverged, fit

    model = VAE(x_train.shape[1], hidden=config["hidden"], latent_dim=config["latent_dim"],
                activation=config["activation"], likelihood=config["likelihood"],
                beta=config["beta"], seed=config["seed"], dtype=np.float32)
    optimizer = make_optimizer(config["optimizer"], model, config["lr"])
    notice_compiling()
    try:
        with _writing_in(out), on_interrupt(lambda: _training_interrupted(args, out)):
            history = fit(model, x_train, config["epochs"], config["batch_size"], optimizer,
                          test=x_test, seed=config["seed"], binarize=_binarize(config),
                          kl_warmup_epochs=config["kl_warmup"],
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
        metrics = _run_metrics(history, config, _log_likelihood(model, test, args.iwae_k))
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


def _resume_command(args, out):
    """The command that continues (or finishes) the run in ``out`` with the same data and k."""
    argv = ["train", "--resume", "--out", str(out)]
    if args.iwae_k != TRAIN_IWAE_K:
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
        return out, {**config, **given}
    config = {**TRAIN_DEFAULTS, **given}
    config["binarize"] = _binarize(config) or "none"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or f"runs/{config['dataset']}-{stamp}")
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: a file of that name exists; --out names the run "
                           "folder to write: choose another name")
    if (out / CHECKPOINT_FILE).exists():
        raise CommandError(f"--out {out} already holds a run: add --resume to continue it, "
                           "or choose another --out")
    return out, config


def _start_run_folder(out, config):
    """Make the run folder and write its config.json.

    These are the first writes in the folder: a read-only or full one is found
    here, before anything trains.
    """
    with _writing_in(out):
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    print(f"run folder: {out}")


def _read_config(path):
    """The settings stored in a run's config.json, or a CommandError saying what is wrong."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CommandError(f"{path}: cannot be read as a run's settings ({err}); restore it "
                           "or start a new run") from None
    if not isinstance(config, dict):
        raise CommandError(f"{path}: expected the run's settings as a JSON object")
    return config


def _binarize(config):
    """The --binarize setting; by default dynamic for Bernoulli pixels, none for Gaussian."""
    value = config.get("binarize")
    if value is None:
        value = "dynamic" if config.get("likelihood", "bernoulli") == "bernoulli" else "none"
    return None if value == "none" else value


def _log_likelihood(model, test, k):
    """{'log_likelihood', 'log_likelihood_se', 'iwae_k', 'iwae_seconds'}: the IWAE bound
    (mean over the test images) and its standard error, or None when k == 0."""
    if k == 0:
        return NO_ESTIMATE
    from scratchvae.tools.evaluation import evaluate_log_likelihood

    start = time.perf_counter()
    mean, se = evaluate_log_likelihood(model, test, k)
    return {"log_likelihood": mean, "log_likelihood_se": se, "iwae_k": k,
            "iwae_seconds": time.perf_counter() - start}


def _log_likelihood_line(result, n_test):
    """'log p(x) >= -97.07 ± 0.45 nats (IWAE, k=5000, standard error over the 10000 images)'."""
    return (f"log p(x) >= {result['log_likelihood']:.2f} ± {result['log_likelihood_se']:.2f} nats "
            f"(IWAE, k={result['iwae_k']}, standard error over the {n_test} images)")


def _describe_test_set(test, config):
    """'test set: N images, binarised once with seed 1234' (or how else they were prepared)."""
    from scratchvae.tools.evaluation import describe_test_set

    return describe_test_set(len(test), _binarize(config))


# --- evaluate, sample, plot -----------------------------------------------------


def evaluate_command(args):
    from scratchvae.tools.evaluation import evaluate_elbo, prepare_test_set

    model = _load_model(args.checkpoint)
    config = _run_config(args.checkpoint)
    _, x_test, _ = _load_data(args.dataset or config.get("dataset", "mnist"), args.data_dir,
                              args.no_download, args.limit or config.get("limit"), train=False)
    test = prepare_test_set(x_test, _binarize({**config, "likelihood": model.likelihood}))
    result = {"checkpoint": str(args.checkpoint), "n_test": len(test),
              "samples": args.samples, "test_elbo": evaluate_elbo(model, test, args.samples)}
    print(f"test ELBO (L^B, {args.samples} sample(s) of z): {result['test_elbo']:.3f} nats")
    again = (f"nothing was written; the test ELBO is above. To finish: {command_line(args.argv)}"
             " (or a smaller --iwae-k: the time grows with k)")
    with on_interrupt(f"during the log-likelihood estimate: {again}"):
        result.update(_log_likelihood(model, test, args.iwae_k))
    if result["log_likelihood"] is not None:
        print(_describe_test_set(test, {**config, "likelihood": model.likelihood}))
        print(f"{_log_likelihood_line(result, len(test))}, {result['iwae_seconds']:.1f} s")
    if args.json:
        from scratchvae.tools.history import strict_json

        Path(args.json).write_text(strict_json(result) + "\n")
    return 0


def sample_command(args):
    from scratchvae.tools import plots

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CommandError(f"--out {out}: figures are written as PNG files; use a name ending "
                           f"in .png, e.g. {out.with_suffix('.png')}")
    model = _load_model(args.checkpoint)
    fig = plots.plot_samples(model, np.random.default_rng(args.seed), args.n)
    print(f"wrote {plots.save_figure(fig, out)}")
    return 0


def plot_command(args):
    from scratchvae.tools.evaluation import prepare_test_set

    model = _load_model(args.checkpoint)
    config = _run_config(args.checkpoint)
    _, x_test, y_test = _load_data(args.dataset or config.get("dataset", "mnist"), args.data_dir,
                                   args.no_download, config.get("limit"), train=False)
    test = prepare_test_set(x_test, _binarize({**config, "likelihood": model.likelihood}))
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    written = write_figures(model, test, y_test, _history(args.checkpoint), out)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def write_figures(model, x, y, history, out):
    """Write the run's figures to ``out``; return their paths.

    reconstructions, samples, kl_per_dimension, latent (scatter, latent_dim >= 2), interpolation,
    curves (when a history is given) and manifold (latent_dim == 2).
    """
    from scratchvae.tools import latent_plots, plots

    rng = np.random.default_rng(FIGURE_SEED)
    # Interpolate between the first image and the first one with another label.
    other = int(np.argmax(y != y[0]))
    n_reconstructions = min(RECONSTRUCTION_ROWS * RECONSTRUCTION_COLUMNS, len(x))
    figures = {
        "reconstructions.png": lambda: plots.plot_reconstructions(
            model, x, n_reconstructions, columns=RECONSTRUCTION_COLUMNS),
        "samples.png": lambda: plots.plot_samples(model, rng, 64),
        "interpolation.png": lambda: plots.plot_interpolation(model, x[0], x[other]),
    }
    figures["kl_per_dimension.png"] = lambda: latent_plots.plot_kl_per_dimension(model, x)
    if model.latent_dim >= 2:
        figures["latent.png"] = lambda: latent_plots.plot_latent_scatter(model, x, y)
    if model.latent_dim == 2:
        figures["manifold.png"] = lambda: latent_plots.plot_latent_manifold(model)
    if history is not None and len(history):
        figures["curves.png"] = lambda: plots.plot_training_curves(history)
    return [plots.save_figure(make(), Path(out) / name) for name, make in figures.items()]


def _load_model(path):
    """The model in ``path``; says so first if its kernels are about to be compiled."""
    from scratchvae.tools import checkpoints
    from scratchvae.tools.npz_files import CheckpointError
    from scratchvae.tools.progress import notice_compiling

    try:
        model = checkpoints.load_model(path)
    except CheckpointError as err:
        raise CommandError(str(err)) from None
    notice_compiling()
    return model


def _run_config(checkpoint):
    """The run's config.json beside ``checkpoint``, or {} for a file on its own."""
    path = Path(checkpoint).parent / CONFIG_FILE
    return _read_config(path) if path.is_file() else {}


def _history(checkpoint):
    """The training history stored in a checkpoint, or in history.json beside it; else None."""
    from scratchvae.tools.checkpoints import load_checkpoint
    from scratchvae.tools.history import History

    try:
        return History.from_json_string(str(load_checkpoint(checkpoint)["train/history"]))
    except ValueError:
        beside = Path(checkpoint).parent / "history.json"
        return History.from_json(beside) if beside.is_file() else None


def _load_data(dataset, data_dir, no_download, limit, train=True):
    """(x_train, x_test, y_test), each cut to its first ``limit`` rows; exit 2 without data.

    A ``--data-dir`` must hold the dataset: it is where the user said the
    data are, so it is never passed over for another place. Prints the folder used.
    """
    from scratchvae.tools import data

    if data_dir is not None:
        _check_data_dir(dataset, Path(data_dir).expanduser())
    try:
        loaded = data.load_mnist(dataset, data_dir=data_dir, download=not no_download)
        print(f"data: {data.find_data_dir(dataset, data_dir)}")
    except (FileNotFoundError, ValueError) as err:  # ValueError: a bad file or $SCRATCHVAE_MIRROR
        raise CommandError(str(err)) from None
    cut = slice(None) if limit is None else slice(limit)
    x_train = loaded.x_train[cut] if train else None
    return x_train, loaded.x_test[cut], loaded.y_test[cut]


def _check_data_dir(dataset, root):
    """Raise CommandError unless ``root/dataset`` holds the dataset's four files."""
    names = [spec.name for spec in DATASETS[dataset].files.values()]
    missing = [name for name in names if not (root / dataset / name).is_file()]
    if not missing:
        return
    lack = (f"it has no {dataset}/ folder" if not (root / dataset).is_dir()
            else f"{root / dataset} lacks {', '.join(missing)}")
    raise CommandError(f"--data-dir {root}: {lack}; --data-dir names the folder holding "
                       f"{dataset}/. Check the path, or leave --data-dir out to use "
                       "$SCRATCHVAE_DATA or the user cache (downloading into it if need be)")
