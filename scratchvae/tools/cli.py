"""The ``scratchvae`` command: train, evaluate, sample, plot, gradcheck, bench, check, classroom.

Each subcommand is one function ``<name>_command(args) -> exit code``. Errors a
user can act on (no data, a file that is not a checkpoint, a diverged run) are
printed as one message without a traceback; the exit code is 2 for bad input
and 1 for a failed run or check. Guide: docs/training.md#the-command

Examples
--------
>>> main(["train", "--epochs", "1", "--limit", "1000", "--out", "runs/try"])  # doctest: +SKIP
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from scratchvae import __version__
from scratchvae.tools import data
from scratchvae.tools import plots
from scratchvae.lecture.modules import ACTIVATIONS
from scratchvae.lecture.optim import OPTIMIZERS, make_optimizer
from scratchvae.tools.train import (
    TrainingDiverged,
    evaluate_elbo,
    evaluate_log_likelihood,
    fit,
    History,
    load_checkpoint,
    prepare_test_set,
)
from scratchvae.lecture.vae import LIKELIHOODS, VAE

__all__ = ["main", "write_figures"]

# `scratchvae train`'s settings and their defaults: a 784-400-20 VAE trained with
# Adam, as in PyTorch's VAE example, so the numbers can be set side by side.
# Flags left out take these, or, with --resume, the values the run began with.
TRAIN_DEFAULTS = {
    "dataset": "mnist", "epochs": 10, "batch_size": 128, "lr": 1e-3, "optimizer": "adam",
    "hidden": [400], "latent_dim": 20, "activation": "relu", "likelihood": "bernoulli",
    "binarize": None, "beta": 1.0, "kl_warmup": 0.0, "seed": 0, "limit": None,
}
CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.npz"
FIGURE_SEED = 0


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 2."""


# --- train --------------------------------------------------------------------


def train_command(args):
    out, config = _train_config(args)
    print(f"run folder: {out}")
    x_train, x_test, y_test = _load_data(config["dataset"], args.data_dir, args.no_download,
                                         config["limit"])
    model = VAE(x_train.shape[1], hidden=config["hidden"], latent_dim=config["latent_dim"],
                activation=config["activation"], likelihood=config["likelihood"],
                beta=config["beta"], seed=config["seed"], dtype=np.float32)
    optimizer = make_optimizer(config["optimizer"], model, config["lr"])
    try:
        history = fit(model, x_train, config["epochs"], config["batch_size"], optimizer,
                      test=x_test, seed=config["seed"], binarize=_binarize(config),
                      kl_warmup_epochs=config["kl_warmup"], checkpoint=out / CHECKPOINT_FILE,
                      resume=args.resume)
    except TrainingDiverged as err:
        print(f"scratchvae: {err}", file=sys.stderr)
        return 1
    model.save(out / "model.npz")
    history.to_csv(out / "history.csv")
    history.to_json(out / "history.json")
    test = prepare_test_set(x_test, _binarize(config))
    metrics = {"test_elbo": history.records[-1]["test_elbo"],
               "train_elbo": history.records[-1]["train_elbo"], "epochs": len(history),
               "train_seconds": sum(r["seconds"] for r in history.records)}
    metrics.update(_log_likelihood(model, test, args.iwae_k))
    metrics["seconds"] = (metrics["train_seconds"] + metrics["iwae_seconds"]
                          + sum(r["eval_seconds"] for r in history.records))
    metrics.update(config=config, scratchvae_version=__version__)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    written = write_figures(model, test, y_test, history, out)
    print(f"test ELBO {metrics['test_elbo']:.2f} nats"
          + ("" if metrics["log_likelihood"] is None else
             f", log p(x) >= {metrics['log_likelihood']:.2f} nats (IWAE, k={args.iwae_k})"))
    print(f"wrote {out}: model.npz, {CHECKPOINT_FILE}, history.csv, history.json, metrics.json, "
          + ", ".join(p.name for p in written))
    return 0


def _train_config(args):
    """The run folder and the run's settings: flags over defaults, or over the saved run."""
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
        try:
            load_checkpoint(out / CHECKPOINT_FILE)
        except ValueError as err:
            raise CommandError(str(err)) from None
        config = json.loads((out / CONFIG_FILE).read_text())
        # Everything but the number of epochs must stay as the run began.
        clash = [f"--{k.replace('_', '-')} {v} (the run has {config.get(k)})"
                 for k, v in given.items() if k != "epochs" and v != config.get(k)]
        if clash:
            raise CommandError(f"--resume: {', '.join(clash)}: the settings of a run cannot "
                               f"change when it resumes (see {out / CONFIG_FILE}); leave them out")
        config.update(given)
    else:
        config = {**TRAIN_DEFAULTS, **given}
        config["binarize"] = _binarize(config) or "none"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out or f"runs/{config['dataset']}-{stamp}")
        if (out / CHECKPOINT_FILE).exists():
            raise CommandError(f"{out} already holds a run: add --resume to continue it, "
                               "or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
    return out, config


def _binarize(config):
    """The --binarize setting; by default dynamic for Bernoulli pixels, none for Gaussian."""
    value = config.get("binarize")
    if value is None:
        value = "dynamic" if config.get("likelihood", "bernoulli") == "bernoulli" else "none"
    return None if value == "none" else value


def _log_likelihood(model, test, k):
    """{'log_likelihood', 'iwae_k', 'iwae_seconds'}: the IWAE bound, or None when k == 0."""
    if k == 0:
        return {"log_likelihood": None, "iwae_k": 0, "iwae_seconds": 0.0}
    start = time.perf_counter()
    value = evaluate_log_likelihood(model, test, k)
    return {"log_likelihood": value, "iwae_k": k, "iwae_seconds": time.perf_counter() - start}


# --- evaluate, sample, plot -----------------------------------------------------


def evaluate_command(args):
    model = _load_model(args.checkpoint)
    config = _run_config(args.checkpoint)
    _, x_test, _ = _load_data(args.dataset or config.get("dataset", "mnist"), args.data_dir,
                              args.no_download, args.limit or config.get("limit"), train=False)
    test = prepare_test_set(x_test, _binarize({**config, "likelihood": model.likelihood}))
    result = {"checkpoint": str(args.checkpoint), "n_test": len(test),
              "samples": args.samples, "test_elbo": evaluate_elbo(model, test, args.samples)}
    print(f"test ELBO (L^B, {args.samples} sample(s) of z): {result['test_elbo']:.3f} nats")
    result.update(_log_likelihood(model, test, args.iwae_k))
    if result["log_likelihood"] is not None:
        print(f"log p(x) >= {result['log_likelihood']:.3f} nats "
              f"(importance-weighted bound, k={args.iwae_k}, {result['iwae_seconds']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


def sample_command(args):
    model = _load_model(args.checkpoint)
    fig = plots.plot_samples(model, np.random.default_rng(args.seed), args.n)
    print(f"wrote {plots.save_figure(fig, args.out)}")
    return 0


def plot_command(args):
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

    reconstructions, samples, latent (scatter, latent_dim >= 2), interpolation,
    curves (when a history is given) and manifold (latent_dim == 2).
    """
    rng = np.random.default_rng(FIGURE_SEED)
    # Interpolate between the first image and the first one with another label.
    other = int(np.argmax(y != y[0]))
    figures = {
        "reconstructions.png": lambda: plots.plot_reconstructions(model, x, min(10, len(x))),
        "samples.png": lambda: plots.plot_samples(model, rng, 64),
        "interpolation.png": lambda: plots.plot_interpolation(model, x[0], x[other]),
    }
    if model.latent_dim >= 2:
        figures["latent.png"] = lambda: plots.plot_latent_scatter(model, x, y)
    if model.latent_dim == 2:
        figures["manifold.png"] = lambda: plots.plot_latent_manifold(model)
    if history is not None and len(history):
        figures["curves.png"] = lambda: plots.plot_training_curves(history)
    return [plots.save_figure(make(), Path(out) / name) for name, make in figures.items()]


def _load_model(path):
    try:
        return VAE.load(path)
    except ValueError as err:
        raise CommandError(str(err)) from None


def _run_config(checkpoint):
    """The run's config.json beside ``checkpoint``, or {} for a file on its own."""
    path = Path(checkpoint).parent / CONFIG_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _history(checkpoint):
    """The training history stored in a checkpoint, or in history.json beside it; else None."""
    try:
        return History.from_json_string(str(load_checkpoint(checkpoint)["train/history"]))
    except ValueError:
        beside = Path(checkpoint).parent / "history.json"
        return History.from_json(beside) if beside.is_file() else None


def _load_data(dataset, data_dir, no_download, limit, train=True):
    """(x_train, x_test, y_test), each cut to its first ``limit`` rows; exit 2 without data."""
    try:
        loaded = data.load_mnist(dataset, data_dir=data_dir, download=not no_download)
    except (FileNotFoundError, data.ChecksumError) as err:
        raise CommandError(str(err)) from None
    cut = slice(None) if limit is None else slice(limit)
    x_train = loaded.x_train[cut] if train else None
    return x_train, loaded.x_test[cut], loaded.y_test[cut]


# --- gradcheck ------------------------------------------------------------------


def gradcheck_command(args):
    """Every op's and the model's gradient check in float64, as a table; 1 if any fails."""
    from scratchvae.tools.gradcheck_report import format_table, run_all

    rows = run_all(seed=args.seed)
    print(format_table(rows))
    return 0 if all(r.passed for r in rows) else 1


# --- bench ----------------------------------------------------------------------


def bench_command(args):
    """Time one training epoch beside its matrix-product floor and PyTorch; print the table."""
    from scratchvae.tools import bench
    repeats = args.repeats or (bench.QUICK_REPEATS if args.quick else 5)
    try:
        images, source = bench.load_images(args.data_dir, not args.no_download, args.quick)
    except (FileNotFoundError, data.ChecksumError) as err:
        raise CommandError(str(err)) from None
    result = bench.run(images, repeats, source)
    print(bench.format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


# --- the parser -----------------------------------------------------------------


def _number(kind, minimum, strict=False):
    """An argparse type: ``kind(text)`` at least ``minimum`` (above it, if ``strict``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (value > minimum if strict else value >= minimum):
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(
                f"expected {what} {'>' if strict else '>='} {minimum}, got {text}")
        return value
    return parse


POSITIVE_INT, COUNT, POSITIVE, NON_NEGATIVE = (
    _number(int, 1), _number(int, 0), _number(float, 0, strict=True), _number(float, 0))


def _data_flags(parser, dataset=False):
    if dataset:
        parser.add_argument("--dataset", choices=data.DATASETS,
                            help="(default: the run's, from config.json beside the file, "
                                 "else mnist)")
    parser.add_argument("--data-dir", metavar="PATH",
                        help="folder holding mnist/ or fashion-mnist/ (looked in first; "
                             "then $SCRATCHVAE_DATA, then ~/.cache/scratchvae)")
    parser.add_argument("--no-download", action="store_true",
                        help="never download; fail with the list of places looked in")


# --- check ----------------------------------------------------------------------


def check_command(args):
    """Mark a student's handout project (or file), isolated; see docs/exercises.md."""
    from scratchvae.classroom import check
    return check.main(args.args, prog="scratchvae check")


def classroom_command(args):
    """Write a handout or mark a class; see docs/exercises.md."""
    from scratchvae.classroom import commands
    return commands.main(args.args, prog="scratchvae classroom")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="scratchvae", description="A Variational Auto-Encoder written from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"scratchvae {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = TRAIN_DEFAULTS

    train = commands.add_parser("train", help="train a VAE and write a run folder",
                                description="Train a VAE on MNIST or Fashion-MNIST and write a "
                                "run folder: checkpoint, model, history, metrics and figures.")
    train.add_argument("--dataset", choices=data.DATASETS, help=f"(default {d['dataset']})")
    train.add_argument("--epochs", type=POSITIVE_INT,
                       help=f"total epochs; with --resume, up to this many (default {d['epochs']})")
    train.add_argument("--batch-size", type=POSITIVE_INT, help=f"(default {d['batch_size']})")
    train.add_argument("--lr", type=POSITIVE, help=f"learning rate (default {d['lr']})")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d['optimizer']})")
    train.add_argument("--hidden", type=POSITIVE_INT, nargs="+", metavar="H",
                       help="hidden layer sizes of the encoder; the decoder mirrors them "
                            f"(default {' '.join(map(str, d['hidden']))})")
    train.add_argument("--latent-dim", type=POSITIVE_INT, help=f"(default {d['latent_dim']})")
    train.add_argument("--activation", choices=[a for a in ACTIVATIONS if a != "identity"],
                       help=f"(default {d['activation']})")
    train.add_argument("--likelihood", choices=LIKELIHOODS, help=f"(default {d['likelihood']})")
    train.add_argument("--binarize", choices=("dynamic", "fixed", "none"),
                       help="pixels as 0/1: a fresh draw each epoch, a 0.5 threshold, or grey "
                            "levels (default dynamic for bernoulli, none for gaussian)")
    train.add_argument("--beta", type=NON_NEGATIVE, help=f"KL weight (default {d['beta']})")
    train.add_argument("--kl-warmup", type=NON_NEGATIVE, metavar="EPOCHS",
                       help="epochs over which the KL weight rises from 0 to --beta (default 0)")
    train.add_argument("--seed", type=int, help=f"seeds weights, shuffling and noise (default {d['seed']})")
    train.add_argument("--out", metavar="DIR",
                       help="run folder (default runs/<dataset>-<date>-<time>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
    train.add_argument("--iwae-k", type=COUNT, default=500, metavar="K",
                       help="samples per test image for the final log-likelihood estimate, "
                            "k decoder passes each; 0 skips it (default 500)")
    train.add_argument("--limit", type=POSITIVE_INT, metavar="N",
                       help="use only the first N training and N test images (quick tries, tests)")
    _data_flags(train)
    train.set_defaults(func=train_command)

    evaluate = commands.add_parser("evaluate", help="test ELBO and log-likelihood of a model")
    evaluate.add_argument("checkpoint", help="checkpoint.npz or model.npz")
    evaluate.add_argument("--iwae-k", type=COUNT, default=5000, metavar="K",
                          help="importance samples per image; 0 skips it (default 5000)")
    evaluate.add_argument("--samples", type=POSITIVE_INT, default=1,
                          help="samples of z for the ELBO (default 1)")
    evaluate.add_argument("--limit", type=POSITIVE_INT, metavar="N",
                          help="use only the first N test images (default: as the run did)")
    evaluate.add_argument("--json", metavar="PATH", help="also write the numbers to PATH")
    _data_flags(evaluate, dataset=True)
    evaluate.set_defaults(func=evaluate_command)

    sample = commands.add_parser("sample", help="a grid of images decoded from z ~ N(0, I)")
    sample.add_argument("checkpoint", help="checkpoint.npz or model.npz")
    sample.add_argument("--n", type=POSITIVE_INT, default=64, help="how many (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="(default 0)")
    sample.add_argument("--out", default="samples.png", help="PNG file (default samples.png)")
    sample.set_defaults(func=sample_command)

    plot = commands.add_parser("plot", help="all figures of a model")
    plot.add_argument("checkpoint", help="checkpoint.npz or model.npz")
    plot.add_argument("--out", metavar="DIR", help="(default: the checkpoint's folder)")
    _data_flags(plot, dataset=True)
    plot.set_defaults(func=plot_command)

    gradcheck = commands.add_parser("gradcheck",
                                    help="check every hand-written gradient by finite differences")
    gradcheck.add_argument("--seed", type=int, default=0, help="(default 0)")
    gradcheck.set_defaults(func=gradcheck_command)

    bench = commands.add_parser("bench", help="time a training epoch against its floor and PyTorch",
                                description="Time one epoch of the standard model three ways, "
                                "interleaved part by part: scratchvae's training loop, its matrix "
                                "products alone, and PyTorch (if installed); then Numba's "
                                "compile cost and the gradcheck's run time.")
    bench.add_argument("--repeats", type=POSITIVE_INT, metavar="N",
                       help="rounds, each timing one epoch of every contender (default 5)")
    bench.add_argument("--quick", action="store_true",
                       help="smoke test in seconds: a few steps per epoch, 2 rounds, random "
                            "images if MNIST is absent; the timings mean nothing")
    bench.add_argument("--json", metavar="PATH", help="also write every timing to PATH")
    _data_flags(bench)
    bench.set_defaults(func=bench_command)

    # The classroom's commands parse their own arguments (docs/exercises.md).
    check = commands.add_parser("check", add_help=False,
                                help="mark your handout project: scratchvae check DIR")
    check.set_defaults(func=check_command)  # main() hands it the rest of the line
    classroom = commands.add_parser("classroom", add_help=False,
                                    help="hand out tasks and mark a class: scratchvae classroom "
                                         "handout DIR, scratchvae classroom mark SUBMISSIONS...")
    classroom.set_defaults(func=classroom_command)
    return parser


def main(argv=None):
    """Run the ``scratchvae`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["check"], ["classroom"]):
        # Everything after "check" or "classroom" is that command's own line,
        # options included (argparse's REMAINDER would not pass on a leading option).
        run = check_command if argv[0] == "check" else classroom_command
        return run(argparse.Namespace(args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as err:
        print(f"scratchvae {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
