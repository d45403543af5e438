"""The ``scratchvae`` command: train, evaluate, sample, plot, explore, gradcheck, bench, check, classroom.

Each subcommand is one function ``<name>_command(args) -> exit code``; the ones
that make and read run folders are in :mod:`scratchvae.tools.train_command`
(train) and :mod:`scratchvae.tools.run_commands` (evaluate, sample, plot), the
others here with the parser. Errors a user can act on (no data, a file that
is not a checkpoint, a diverged run) are printed as one message in
command-line words, without a traceback; the exit code is 2 for bad input and
1 for a failed run or check. Ctrl-C or SIGTERM prints what was saved and the
command that finishes the job (exit code 130).
Guide: docs/training.md#the-command

Examples
--------
>>> main(["train", "--epochs", "1", "--limit", "1000", "--out", "runs/try"])  # doctest: +SKIP
"""

import argparse
import json
import signal
import sys
from pathlib import Path

from scratchvae import __version__
from scratchvae.tools.argtypes import COUNT, FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_INT
from scratchvae.tools.download import DATASETS, ChecksumError
from scratchvae.tools.history import TRACK_IWAE_K
from scratchvae.tools.run_commands import (
    CommandError,
    Interrupted,
    command_line,
    evaluate_command,
    explore_command,
    plot_command,
    sample_command,
)
from scratchvae.tools.start import IEEE_FLAG, IEEE_VARIABLE
from scratchvae.tools.train_command import PRESETS, TRAIN_DEFAULTS, TRAIN_IWAE_K, train_command

# Numba, matplotlib and the model are imported inside the commands that use
# them, so that `scratchvae --version` and `--help` answer at once.

__all__ = ["main", "build_parser"]

# The choices of --activation, --optimizer and --likelihood, spelled out here so
# that building the parser imports no model code (the tests check them against
# scratchvae.lecture's ACTIVATIONS, OPTIMIZERS and LIKELIHOODS).
ACTIVATION_CHOICES = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")
OPTIMIZER_CHOICES = ("sgd", "adagrad", "adam")
LIKELIHOOD_CHOICES = ("bernoulli", "gaussian")
# scratchvae.tools.explore.MAP_IMAGES, the default of `explore --images` (tests/test_explore.py checks it).
MAP_IMAGES = 3000

# --- gradcheck ------------------------------------------------------------------


def gradcheck_command(args):
    """Every op's and the model's gradient check in float64, as a table; 1 if any fails."""
    from scratchvae.tools.gradcheck_report import format_table, run_all

    rows = run_all(seed=args.seed)
    print(format_table(rows))
    return 0 if all(r.passed for r in rows) else 1


# --- bench ----------------------------------------------------------------------


def bench_command(args):
    """Time one training epoch beside its matrix-product floor, PyTorch and JAX; print the table."""
    from scratchvae.tools import bench
    try:
        images, source = bench.load_images(args.data_dir, not args.no_download, args.quick)
    except (FileNotFoundError, ChecksumError) as err:
        raise CommandError(str(err)) from None
    if args.steps:
        from scratchvae.tools import bench_steps
        try:
            rounds = args.repeats or (bench.QUICK_REPEATS if args.quick else 4)
            result = bench_steps.step_times(args.steps, images, rounds=rounds,
                                            steps=bench.QUICK_STEPS if args.quick else 60)
        except ValueError as err:  # CheckpointError included
            raise CommandError(f"--steps: {err}") from None
        print(bench_steps.format_steps(result))
    else:
        result = bench.run(images, args.repeats or (bench.QUICK_REPEATS if args.quick else 5), source)
        print(bench.format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


# --- the parser -----------------------------------------------------------------




def _describe_preset(preset):
    """A preset's settings as the flags that would give them, for --help."""
    return " ".join(f"--{k.replace('_', '-')} "
                    + (" ".join(map(str, v)) if isinstance(v, list) else f"{v:.6g}")
                    for k, v in preset.items())


def _data_flags(parser, dataset=False):
    if dataset:
        parser.add_argument("--dataset", choices=DATASETS,
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


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, pointing at ``--help`` for the usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = _Parser(
        prog="scratchvae", description="A Variational Auto-Encoder written from scratch in NumPy.")
    parser.add_argument("--version", action="version", version=f"scratchvae {__version__}")
    parser.add_argument(IEEE_FLAG, action="store_true",
                        help="keep IEEE arithmetic for subnormal numbers (the command flushes them "
                             "to zero, for speed: docs/optim.md#subnormals); first, before "
                             f"the command; or set {IEEE_VARIABLE}=1")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = TRAIN_DEFAULTS

    train = commands.add_parser("train", help="train a VAE and write a run folder",
                                description="Train a VAE on MNIST or Fashion-MNIST and write a "
                                "run folder: checkpoint, model, history, metrics and figures.")
    train.add_argument("--dataset", choices=DATASETS, help=f"(default {d['dataset']})")
    train.add_argument("--epochs", type=POSITIVE_INT,
                       help=f"total epochs; with --resume, up to this many (default {d['epochs']})")
    train.add_argument("--batch-size", type=POSITIVE_INT, help=f"(default {d['batch_size']})")
    train.add_argument("--lr", type=POSITIVE, help=f"learning rate (default {d['lr']})")
    train.add_argument("--optimizer", choices=OPTIMIZER_CHOICES, help=f"(default {d['optimizer']})")
    train.add_argument("--hidden", type=POSITIVE_INT, nargs="+", metavar="H",
                       help="hidden layer sizes of the encoder; the decoder mirrors them "
                            f"(default {' '.join(map(str, d['hidden']))})")
    train.add_argument("--latent-dim", type=POSITIVE_INT, help=f"(default {d['latent_dim']})")
    train.add_argument("--activation", choices=ACTIVATION_CHOICES,
                       help=f"(default {d['activation']})")
    train.add_argument("--likelihood", choices=LIKELIHOOD_CHOICES, help=f"(default {d['likelihood']})")
    train.add_argument("--binarize", choices=("dynamic", "fixed", "dequantize", "none"),
                       help="what the model sees of the grey levels: 0/1 pixels drawn afresh "
                            "each time, 0/1 by a 0.5 threshold, the grey levels spread over "
                            "their 1/256 bins by fresh noise, or the grey levels as they are "
                            "(default dynamic for bernoulli, dequantize for gaussian)")
    train.add_argument("--beta", type=NON_NEGATIVE, help=f"KL weight (default {d['beta']})")
    train.add_argument("--kl-warmup", type=NON_NEGATIVE, metavar="EPOCHS",
                       help="epochs over which the KL weight rises from 0 to --beta (default 0)")
    train.add_argument("--lr-decay", type=FRACTION, metavar="GAMMA",
                       help="the learning rate is multiplied by GAMMA after every epoch "
                            "(default 1: constant)")
    train.add_argument("--iwae-every", type=COUNT, metavar="N",
                       help="after every N-th epoch also estimate the test "
                            f"log-likelihood with k={TRACK_IWAE_K} (IWAE) into the history "
                            "(default 0: only the final estimate)")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named set of settings instead of the defaults; flags "
                            "given still win. hour: " + _describe_preset(PRESETS["hour"]))
    train.add_argument("--seed", type=COUNT, help=f"seeds weights, shuffling and noise (default {d['seed']})")
    train.add_argument("--out", metavar="DIR",
                       help="run folder (default runs/<dataset>-<date>-<time>)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its last checkpoint")
    train.add_argument("--iwae-k", type=COUNT, metavar="K",
                       help="samples per test image for the final log-likelihood estimate, "
                            f"k decoder passes each; 0 skips it (default {TRAIN_IWAE_K}; "
                            "--preset hour: 5000)")
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
    sample.add_argument("--seed", type=COUNT, default=0, help="(default 0)")
    sample.add_argument("--out", default="samples.png", help="PNG file (default samples.png)")
    sample.set_defaults(func=sample_command)

    plot = commands.add_parser("plot", help="all figures of a model")
    plot.add_argument("checkpoint", help="checkpoint.npz or model.npz")
    plot.add_argument("--out", metavar="DIR", help="(default: the checkpoint's folder)")
    _data_flags(plot, dataset=True)
    plot.set_defaults(func=plot_command)

    explore = commands.add_parser("explore", help="write a page that runs the model in a browser, offline",
                                  description="Write a static page (index.html, explore.js, data.js) "
                                  "that runs the model in plain JavaScript: the latent map, a slider per "
                                  "dimension, a canvas to draw on, walks between codes. It opens from "
                                  "file:// with no server and no network. Guide: docs/explorer.md")
    explore.add_argument("model", metavar="RUN_FOLDER_OR_MODEL",
                         help="a run folder of scratchvae train, or a model.npz or checkpoint.npz")
    explore.add_argument("--out", metavar="DIR", help="(default: explore/ beside the model file)")
    explore.add_argument("--images", type=POSITIVE_INT, default=MAP_IMAGES, metavar="N",
                         help=f"test images on the map, the first N (default {MAP_IMAGES})")
    explore.add_argument("--open", action="store_true", help="open the page in the default browser")
    _data_flags(explore, dataset=True)
    explore.set_defaults(func=explore_command)

    gradcheck = commands.add_parser("gradcheck",
                                    help="check every hand-written gradient by finite differences")
    gradcheck.add_argument("--seed", type=COUNT, default=0, help="(default 0)")
    gradcheck.set_defaults(func=gradcheck_command)

    bench = commands.add_parser("bench", help="time a training epoch against its floor, PyTorch and JAX",
                                description="Time one epoch of the standard model four ways, "
                                "interleaved part by part: scratchvae's training loop, its matrix "
                                "products alone, PyTorch and JAX (each if installed); then Numba's "
                                "compile cost and the gradcheck's run time.")
    bench.add_argument("--repeats", type=POSITIVE_INT, metavar="N",
                       help="rounds, each timing one epoch of every contender (default 5)")
    bench.add_argument("--quick", action="store_true",
                       help="smoke test in seconds: a few steps per epoch, 2 rounds, random "
                            "images if MNIST is absent; the timings mean nothing")
    bench.add_argument("--steps", metavar="CHECKPOINT",
                       help="instead, time training steps of the model in CHECKPOINT beside a "
                            "fresh model of its shape, alternating (a long run's slowdown, "
                            "docs/performance.md#late-steps); --repeats rounds of 60 steps (default 4)")
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
    """Run the ``scratchvae`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit code.

    A mistake of the user's is one line on stderr and exit code 2; Ctrl-C, or
    SIGTERM, says what was saved and how to finish, with exit code 130.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == [IEEE_FLAG]:
        argv = argv[1:]  # acted on by scratchvae.tools.start, before NumPy was loaded
    if argv[:1] in (["check"], ["classroom"]):
        # Everything after "check" or "classroom" is that command's own line,
        # options included (argparse's REMAINDER would not pass on a leading option).
        command = argv[0]
        handler = check_command if command == "check" else classroom_command
        run = lambda: handler(argparse.Namespace(args=argv[1:]))  # noqa: E731
    else:
        args = build_parser().parse_args(argv)
        args.argv = argv
        command, run = args.command, lambda: args.func(args)
    previous = _stop_on_sigterm()
    try:
        return run()
    except CommandError as err:
        print(f"scratchvae {command}: error: {err}", file=sys.stderr)
        return 2
    except Interrupted as err:
        print(f"scratchvae {command}: interrupted {err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"scratchvae {command}: interrupted; to do it again: {command_line(argv)}",
              file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm():
    """Let SIGTERM (``kill``, a job scheduler) stop a command as Ctrl-C does; return the old handler.

    None, and nothing changed, outside the main thread, where Python cannot set handlers.
    """
    try:
        return signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:
        return None
