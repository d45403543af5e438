"""Pictures of what a VAE has learned, drawn with matplotlib.

Each ``plot_*`` function takes the model (or a training history) and returns
a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes one to a PNG.

* :func:`plot_reconstructions` -- rows of test images, each above its reconstructions;
* :func:`plot_samples` -- decoded draws from the prior z ~ N(0, I);
* :func:`plot_interpolation` -- decoding the straight line between two codes;
* :func:`plot_training_curves` -- ELBO, reconstruction and KL per epoch.

Each figure carries a short caption under it saying what to look at; what
each figure shows and how to read it in full: docs/figures.md. The figures of
the latent space are in :mod:`scratchvae.tools.latent_plots`; the mosaics and
captions all figures share, in :mod:`scratchvae.tools.mosaic`.

The model is duck-typed: anything with ``input_dim``, ``latent_dim``,
``encode(x) -> (mu, log_var)``, ``decode(z) -> mean image``,
``sample(n, rng)`` and ``reconstruct(x)`` will do. Images are rows of
``H * W`` pixels in [0, 1]; ``image_shape=(H, W)`` says how to fold them.

Figures are built with ``Figure()`` directly, never through ``pyplot``: no
global figure registry and no GUI backend, so these functions run headless
and leave no figure open behind the caller's back. Each call builds its own
figure, the most matplotlib asks of threaded use (it promises no more).

Examples
--------
>>> import numpy as np
>>> from scratchvae.lecture.vae import VAE
>>> model = VAE(784, hidden=(16,), latent_dim=2, seed=0)
>>> fig = plot_samples(model, np.random.default_rng(0), n=16)
>>> len(fig.axes)
1
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scratchvae.lecture.validate import check_int, check_rng
from scratchvae.tools.mosaic import (
    CAPTION_GID,
    DPI,
    IMAGE_SHAPE,
    add_caption,
    as_images,
    check_model,
    draw_mosaic,
    encode_checked,
    grid_shape,
    mosaic_figure,
    tile,
    tile_centres,
)

__all__ = [
    "show",
    "plot_interpolation",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "save_figure",
]

HISTORY_KEYS = ("epoch", "train_elbo", "train_reconstruction", "train_kl")
# Set (to 1) by the course site's build (docs/conf.py): the lessons' figure cells carry their
# captions as HTML, so show() leaves out the one drawn into the PNG.
HTML_CAPTIONS = "SCRATCHVAE_HTML_CAPTIONS"


# --- figures of images -----------------------------------------------------


def plot_reconstructions(model, x, n=32, columns=8, image_shape=IMAGE_SHAPE):
    """The first ``n`` images of ``x``, in rows of ``columns``, each row above its reconstructions.

    Parameters
    ----------
    model : VAE-like
        Needs ``input_dim`` and ``reconstruct(x)``.
    x : ndarray, shape (B, H * W)
        Images with pixels in [0, 1], B >= n.
    n : int
        How many to show.
    columns : int
        Images per row; ``ceil(n / columns)`` pairs of rows.
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: rows of inputs alternating with rows of reconstructions,
        labelled on the left; the caption says whether the inputs are 0/1 draws.

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((5, 784))
    >>> len(plot_reconstructions(model, x, n=5).axes)
    1
    """
    pixels = check_model(model, image_shape)
    x = as_images("x", x, pixels, unit_interval=True)
    n, columns = check_int("n", n), check_int("columns", columns)
    if n > len(x):
        raise ValueError(f"n: expected at most len(x) = {len(x)}, got {n}")
    columns = min(columns, n)
    rows = -(-n // columns)
    originals = x[:n]  # (n, H W)
    reconstructions = as_images(
        "model.reconstruct(x)", model.reconstruct(originals), pixels, count=n
    )  # (n, H W)
    # Tile row 2r holds inputs r columns .. r columns + columns - 1, row 2r + 1 their
    # reconstructions; the missing end of a last row is blank (NaN).
    pairs = np.full((rows, 2, columns, pixels), np.nan)  # (rows, 2, columns, H W)
    for k, image in enumerate(zip(originals, reconstructions)):
        pairs[k // columns, :, k % columns] = image
    fig = mosaic_figure(2 * rows, columns, extra_width=1.4)
    ax = fig.subplots()
    draw_mosaic(ax, tile(pairs.reshape(-1, pixels), columns, image_shape))
    ax.set_yticks(tile_centres(np.arange(2 * rows), image_shape[0]),
                  ["input", "reconstruction"] * rows, fontsize="small")
    binary = bool(np.isin(originals, (0.0, 1.0)).all())
    add_caption(fig, "Each input above its reconstruction. Input: "
             + ("the binarised test image (a random 0/1 draw from the grey image, hence the "
                "speckle). " if binary else "the test image. ")
             + "Reconstruction: the decoder's mean image at the centre of q(z|x). Look for the "
             "right strokes with soft edges; a wrong digit means the code mixes two classes up.")
    return fig


def plot_samples(model, rng, n=64, image_shape=IMAGE_SHAPE):
    """A grid of ``n`` images decoded from z ~ N(0, I).

    Parameters
    ----------
    model : VAE-like
        Needs ``input_dim`` and ``sample(n, rng)`` returning mean images.
    rng : numpy.random.Generator
        Draws the latent codes; the same seed gives the same picture.
    n : int
        How many samples.
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
        One axes holding the grid: the squarest one that n fills, else
        ceil(sqrt(n)) tiles wide with a blank end (:func:`_grid_shape`).

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=2, seed=0)
    >>> fig = plot_samples(model, np.random.default_rng(0), n=16)
    """
    pixels = check_model(model, image_shape)
    check_rng(rng)
    n = check_int("n", n)
    samples = as_images("model.sample(n, rng)", model.sample(n, rng), pixels, count=n)
    rows, columns = grid_shape(n)
    fig = mosaic_figure(rows, columns)
    ax = fig.subplots()
    draw_mosaic(ax, tile(samples, columns, image_shape))
    ax.set_title("decoded from z ~ N(0, I)")
    add_caption(fig, "New images: codes drawn from the prior, decoded to mean images (grey is a "
             "probability of ink). Look for digits; blends that are no digit show where the "
             "codes of real images leave holes in the prior.")
    return fig


def plot_interpolation(model, x_a, x_b, n=10, image_shape=IMAGE_SHAPE):
    r"""Decode the straight line between the latent means of two images.

    With :math:`\mu_a, \mu_b` the means of q(z|x_a) and q(z|x_b), decode
    :math:`z(\lambda) = (1 - \lambda)\,\mu_a + \lambda\,\mu_b` at ``n`` evenly spaced
    :math:`\lambda \in [0, 1]` (docs/figures.md, (7)); the two originals frame the strip.

    Parameters
    ----------
    model : VAE-like
        Needs ``input_dim``, ``latent_dim``, ``encode`` and ``decode``.
    x_a, x_b : ndarray, shape (H * W,) or (1, H * W)
        The two end images, pixels in [0, 1].
    n : int
        Points on the line, ends included (at least 2).
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: x_a, the n decoded images, x_b.

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=2, seed=0)
    >>> x = np.random.default_rng(0).random((2, 784))
    >>> fig = plot_interpolation(model, x[0], x[1], n=8)
    """
    pixels = check_model(model, image_shape)
    ends = np.concatenate(
        [
            as_images(name, np.atleast_2d(end), pixels, count=1, unit_interval=True)
            for name, end in (("x_a", x_a), ("x_b", x_b))
        ]
    )  # (2, H W)
    n = check_int("n", n, minimum=2)
    mu = encode_checked(model, ends)[0]  # (2, D_z)
    lam = np.linspace(0.0, 1.0, n)[:, None]  # (n, 1) the lambda of figures (7)
    # z(lambda) = (1 - lambda) mu_a + lambda mu_b
    z = (1.0 - lam) * mu[0] + lam * mu[1]  # (n, D_z)
    decoded = as_images("model.decode(z)", model.decode(z), pixels, count=n)  # (n, H W)
    strip = np.concatenate([ends[:1], decoded, ends[1:]])  # (n + 2, H W)
    fig = mosaic_figure(1, n + 2, extra_height=0.7)
    ax = fig.subplots()
    draw_mosaic(ax, tile(strip, n + 2, image_shape))
    ax.set_xticks(
        tile_centres(np.arange(n + 2), image_shape[1]),
        ["$x_a$", *(f"{v:.2g}" for v in lam[:, 0]), "$x_b$"],
        fontsize="small",
    )
    ax.set_xlabel(r"$\lambda$ in $z = (1 - \lambda)\,\mu_a + \lambda\,\mu_b$")
    add_caption(fig, "Two test images at the ends, and the decoder along the straight line "
             "between their codes. Look for a gradual change; a sudden jump marks a border "
             "between two digits' regions of the latent space.")
    return fig


# --- training --------------------------------------------------------------


def _records(history):
    """The list of per-epoch dicts in ``history`` (a list, or an object with ``.records``)."""
    records = list(getattr(history, "records", history))
    if not records:
        raise ValueError("history: expected at least one epoch, got none")
    for i, record in enumerate(records):
        missing = [k for k in HISTORY_KEYS if not isinstance(record, Mapping) or k not in record]
        if missing:
            raise ValueError(f"history: expected record {i} to have keys {missing}, got {record!r}")
    return records


def _column(records, key):
    """One key across the epochs as floats, NaN where missing or None."""
    return np.array([np.nan if r.get(key) is None else r[key] for r in records], dtype=np.float64)


def plot_training_curves(history):
    r"""ELBO (train and test), reconstruction term and KL term, per epoch.

    Three panels, in nats per image. The ELBO is
    :math:`\mathbb{E}_q \log p(x|z) - \mathrm{KL}(q(z|x) \| p(z))`: the
    second and third panels are its two parts on the training set.

    Parameters
    ----------
    history : list of dict, or an object with ``.records``
        One dict per epoch with keys "epoch", "train_elbo",
        "train_reconstruction", "train_kl", and optionally "test_elbo" and
        "test_iwae" (missing or None when not measured) and "seconds".

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: ELBO, reconstruction, KL.

    Examples
    --------
    >>> history = [
    ...     {"epoch": e, "train_elbo": -200 + 10 * e, "train_reconstruction": -180 + 12 * e,
    ...      "train_kl": 20 + 2 * e, "test_elbo": None, "seconds": 1.5}
    ...     for e in range(1, 6)
    ... ]
    >>> len(plot_training_curves(history).axes)
    3
    """
    records = _records(history)
    epoch = _column(records, "epoch")
    fig = Figure(figsize=(11.0, 3.4), layout="constrained")
    elbo_ax, reconstruction_ax, kl_ax = fig.subplots(1, 3, sharex=True)
    elbo_ax.plot(epoch, _column(records, "train_elbo"), "o-", ms=3, label="train")
    test = _column(records, "test_elbo")
    if not np.isnan(test).all():
        elbo_ax.plot(epoch, test, "s--", ms=3, label="test")
    iwae = _column(records, "test_iwae")
    if not np.isnan(iwae).all():
        elbo_ax.plot(epoch, iwae, "D", ms=4, label="test log p(x), IWAE")
    elbo_ax.legend()
    elbo_ax.set_title("ELBO (higher is better)")
    reconstruction_ax.plot(epoch, _column(records, "train_reconstruction"), "o-", ms=3)
    reconstruction_ax.set_title(r"reconstruction $\mathbb{E}_q \log p(x|z)$")
    kl_ax.plot(epoch, _column(records, "train_kl"), "o-", ms=3)
    kl_ax.set_title(r"$\mathrm{KL}(q(z|x)\,\|\,p(z))$")
    for ax in (elbo_ax, reconstruction_ax, kl_ax):
        ax.set_xlabel("epoch")
        # Half an epoch of margin: a single epoch gets one tick, not a range around it.
        ax.set_xlim(np.nanmin(epoch) - 0.5, np.nanmax(epoch) + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_ylabel("nats per image")
        ax.grid(alpha=0.3)
    seconds = _column(records, "seconds")
    if not np.isnan(seconds).any():
        epochs = len(records)
        fig.suptitle(f"{epochs} epoch{'s' * (epochs != 1)}, {seconds.sum():.1f} s of training")
    beta = _column(records, "beta")
    if np.nanmin(beta, initial=1.0) < 1:  # a KL warm-up: beta grew from below 1
        kl = ("the KL falls as the warm-up's weight beta reaches 1 and the model switches the "
              "latent dimensions it does not need off")
    else:
        kl = "the KL rises as the code is put to use, the price of better reconstructions"
    add_caption(fig, "Look for the ELBO rising, then flattening, with the test ELBO close to the "
             f"train ELBO (a widening gap is over-fitting); {kl}.")
    return fig


# --- output ----------------------------------------------------------------


def save_figure(fig, path, dpi=DPI):
    """Write ``fig`` to a PNG file (creating its folder) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure, e.g. from one of the ``plot_*`` functions.
    path : str or pathlib.Path
        Where to write; must end in ``.png``.
    dpi : int
        Pixels per inch (150: sharp on a projector).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> history = [{"epoch": 1, "train_elbo": -120.0, "train_reconstruction": -100.0,
    ...             "train_kl": 20.0}]
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = save_figure(plot_training_curves(history), pathlib.Path(folder) / "curves.png")
    ...     path.stat().st_size > 0
    True
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"path: expected a file name ending in .png, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    # Figures made here are unknown to pyplot and are freed with their last
    # reference; one made through pyplot stays in its registry until closed.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
    return path


def show(fig, name, folder):
    """Show a lesson's figure: inline in a notebook, saved as ``folder/name`` from a script.

    The lessons in ``tutorials/`` run both ways with the same code. Under a
    Jupyter kernel (``ipykernel`` imported) the figure is drawn inline as a
    PNG and nothing is written (without the caption drawn into it when
    ``$SCRATCHVAE_HTML_CAPTIONS`` is set, as the site's build sets it: the
    page carries the caption); otherwise it is saved with :func:`save_figure`
    and the path is printed.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to show.
    name : str
        File name, ending in ``.png``, e.g. ``"error_against_h.png"``.
    folder : str or pathlib.Path
        Where a script run saves it (created if missing), usually the lesson's name.

    Returns
    -------
    pathlib.Path or None
        The file written, or None when the figure was drawn inline.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from matplotlib.figure import Figure
    >>> with tempfile.TemporaryDirectory() as root:
    ...     path = show(Figure(), "empty.png", pathlib.Path(root) / "lesson")  # doctest: +ELLIPSIS
    ...     path.name
    figure written to .../lesson/empty.png
    'empty.png'
    """
    if "ipykernel" in sys.modules:
        from io import BytesIO

        from IPython.display import Image, display

        if os.environ.get(HTML_CAPTIONS, "0") not in ("", "0"):
            # the site's build: the page captions the figure in HTML, readable at any width;
            # the small grey caption drawn into the PNG would say it twice
            for caption in (text for text in fig.texts if text.get_gid() == CAPTION_GID):
                caption.set_visible(False)
                caption.set_in_layout(False)
        buffer = BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        display(Image(buffer.getvalue()))
        return None
    path = save_figure(fig, Path(folder) / name)
    print(f"figure written to {path}")
    return path
