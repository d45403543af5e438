"""The commands that read run folders, ``evaluate``, ``sample`` and ``plot``, and what ``train`` shares.

Each is one function ``<name>_command(args) -> exit code``, called by
:func:`scratchvae.tools.cli.main` with the parsed flags; ``train``, which
makes run folders, is :mod:`scratchvae.tools.train_command`. A mistake the user
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
import time
import webbrowser
from pathlib import Path

import numpy as np

from scratchvae.tools.download import DATASETS

__all__ = ["CommandError", "Interrupted", "command_line", "evaluate_command", "explore_command", "on_interrupt",
           "plot_command", "sample_command", "write_figures"]

CONFIG_FILE = "config.json"
FIGURE_SEED = 0
# metrics.json's log-likelihood entries before (or without: --iwae-k 0) the estimate.
NO_ESTIMATE = {"log_likelihood": None, "log_likelihood_se": None, "bits_per_dim": None,
               "iwae_k": 0, "iwae_seconds": 0.0}
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


# --- what train shares: settings, the estimate ------------------------------


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
    """The --binarize setting; by default dynamic for Bernoulli pixels, dequantize for Gaussian."""
    value = config.get("binarize")
    if value is None:
        value = "dynamic" if config.get("likelihood", "bernoulli") == "bernoulli" else "dequantize"
    return value


def _log_likelihood(model, test, k, config):
    """{'log_likelihood', 'log_likelihood_se', 'bits_per_dim', 'iwae_k', 'iwae_seconds'}: the
    IWAE bound (mean over the test images), its standard error and the bound in bits per pixel;
    None when k == 0."""
    if k == 0:
        return NO_ESTIMATE
    from scratchvae.tools.evaluation import bits_per_dim, evaluate_log_likelihood

    start = time.perf_counter()
    mean, se = evaluate_log_likelihood(model, test, k)
    return {"log_likelihood": mean, "log_likelihood_se": se,
            "bits_per_dim": bits_per_dim(mean, model.input_dim, _binarize(config)), "iwae_k": k,
            "iwae_seconds": time.perf_counter() - start}


def _log_likelihood_line(result, n_test):
    """'log p(x) >= -97.07 ± 0.45 nats (IWAE, k=5000, standard error over the 10000 images)',
    with the bound in bits per pixel after it when it has that meaning."""
    bits = result.get("bits_per_dim")
    per_pixel = "" if bits is None else f" = {bits:.4f} bits per pixel"
    return (f"log p(x) >= {result['log_likelihood']:.2f} ± {result['log_likelihood_se']:.2f} nats "
            f"(IWAE, k={result['iwae_k']}, standard error over the {n_test} images){per_pixel}")


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
        result.update(_log_likelihood(model, test, args.iwae_k,
                                      {**config, "likelihood": model.likelihood}))
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
    curves (when a history is given), manifold (latent_dim == 2) and decoder_sigma (a Gaussian
    decoder).
    """
    from scratchvae.tools import decoder_plots, latent_plots, plots

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
    if model.likelihood == "gaussian":
        figures["decoder_sigma.png"] = lambda: decoder_plots.plot_decoder_sigma(model, rng)
    if history is not None and len(history):
        figures["curves.png"] = lambda: plots.plot_training_curves(history)
    return [plots.save_figure(make(), Path(out) / name) for name, make in figures.items()]


def explore_command(args):
    """``scratchvae explore``: write the browser explorer of a run folder or a model file (docs/explorer.md).

    The model runs on the lecture's ops: encoding a few thousand images needs no engine.
    """
    from scratchvae.tools.checkpoints import load_model
    from scratchvae.tools.evaluation import prepare_test_set
    from scratchvae.tools.explore import SCRIPTS, page_data, write_page
    from scratchvae.tools.npz_files import CheckpointError

    path = _model_file(Path(args.model))
    try:
        model = load_model(path)
    except CheckpointError as err:
        raise CommandError(str(err)) from None
    config = _run_config(path)
    _, x_test, y_test = _load_data(args.dataset or config.get("dataset", "mnist"), args.data_dir,
                                   args.no_download, args.images, train=False)
    x = prepare_test_set(x_test, _binarize({**config, "likelihood": model.likelihood}))
    try:
        data = page_data(model, x, y_test, thumbnails=x_test)
    except ValueError as err:
        raise CommandError(f"{path}: {err}") from None
    out = Path(args.out) if args.out else path.parent / "explore"
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out}: exists and is not a folder; name a folder for the page")
    index = write_page(data, out)
    size = sum((out / name).stat().st_size for name in ("index.html", *SCRIPTS))
    print(f"wrote {index} ({size / 1e6:.1f} MB with {len(x)} test images); open it in a browser, "
          "no server needed")
    if args.open:
        webbrowser.open(index.resolve().as_uri())
    return 0


def _model_file(path):
    """The model file named by a command's argument: the file itself, or a run folder's model."""
    if path.is_dir():
        for name in ("model.npz", "checkpoint.npz"):
            if (path / name).is_file():
                return path / name
        raise CommandError(f"{path}: a folder without model.npz or checkpoint.npz; name a run folder "
                           "written by scratchvae train, or a model file")
    if not path.is_file():
        raise CommandError(f"{path}: no such file or folder; name a run folder or a model file (.npz)")
    return path


def engine_ops():
    """The ops every model a command builds or loads runs on: the Numba engine's, for speed.

    The one place the tools choose them (``scratchvae train``, ``evaluate``,
    ``sample``, ``plot`` and ``bench`` all ask here). The lecture's ops give the
    same numbers to float32 rounding, several times slower. Imported when a
    command first needs a model, so that ``scratchvae --help`` does not load Numba.
    """
    from scratchvae.engine import ops

    return ops


def _load_model(path):
    """The model in ``path``, on the engine's ops; says so first if its kernels are about to be compiled."""
    from scratchvae.tools import checkpoints
    from scratchvae.tools.compiling import notice_compiling
    from scratchvae.tools.npz_files import CheckpointError

    try:
        model = checkpoints.load_model(path, engine_ops())
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
