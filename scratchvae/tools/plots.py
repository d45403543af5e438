"""Pictures of what a VAE has learned, drawn with matplotlib.

Each ``plot_*`` function takes the model (or a training history) and returns
a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes one to a PNG.

* :func:`plot_reconstructions` -- rows of test images, each above its reconstructions;
* :func:`plot_samples` -- decoded draws from the prior z ~ N(0, I);
* :func:`plot_latent_scatter` -- where the encoder puts each digit;
* :func:`plot_latent_manifold` -- the decoder over a grid of a 2-D latent space;
* :func:`plot_interpolation` -- decoding the straight line between two codes;
* :func:`plot_training_curves` -- ELBO, reconstruction and KL per epoch.

Each figure carries a short caption under it saying what to look at; what
each figure shows and how to read it in full: docs/figures.md. The numbers
behind them (the KL per latent dimension, normal quantiles, the
equal-probability grid) are computed in scratchvae/tools/plot_maths.py and
re-exported here.

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

import math
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scratchvae.lecture.collapse import kl_per_dimension
from scratchvae.tools.plot_maths import equal_probability_grid, inverse_normal_cdf
from scratchvae.lecture.validate import as_float_array, check_int, check_rng, check_shape, check_unit_interval

__all__ = [
    "show",
    "plot_interpolation",
    "plot_latent_manifold",
    "plot_latent_scatter",
    "plot_reconstructions",
    "plot_samples",
    "plot_training_curves",
    "save_figure",
]

IMAGE_SHAPE = (28, 28)
# Pixels per inch of the PNG files: sharp on a projector and on a laptop screen.
DPI = 150
# Size of one image tile: 28 pixels at 150 dpi are drawn about 3x, sharp and
# readable; wide mosaics shrink their tiles to stay within MAX_WIDTH.
TILE_INCHES = 0.6
MAX_WIDTH_INCHES = 10.0
# Narrow figures still need room for a title or tick labels.
MIN_WIDTH_INCHES = 3.0
# One pixel of mid-grey between tiles, so black-background digits stay apart.
PAD = 1
SEPARATOR = 0.5
# A sample grid may be up to this many times wider than tall to hold n exactly.
MAX_GRID_ASPECT = 3
# Caption characters per inch of figure width, at the caption's font size.
CAPTION_CHARS_PER_INCH = 15
HISTORY_KEYS = ("epoch", "train_elbo", "train_reconstruction", "train_kl")


# --- checks ----------------------------------------------------------------


def _check_model(model, image_shape):
    """Return the pixel count H * W, checked against ``model.input_dim``."""
    try:
        height, width = image_shape
    except (TypeError, ValueError):
        raise ValueError(f"image_shape: expected (height, width), got {image_shape!r}") from None
    pixels = check_int("image_shape", height) * check_int("image_shape", width)
    if model.input_dim != pixels:
        raise ValueError(
            f"image_shape: expected {model.input_dim} pixels to match model.input_dim, "
            f"got {tuple(image_shape)} = {pixels} pixels"
        )
    return pixels


def _as_images(name, images, pixels, count=None, unit_interval=False):
    """``images`` as a finite float array of shape (count, pixels), or raise."""
    images = as_float_array(name, images, ndim=2)
    check_shape(name, images, (count, pixels))
    return check_unit_interval(name, images) if unit_interval else images


def _encode(model, x):
    """The means and log-variances of q(z|x), each checked to be (B, D_z)."""
    return tuple(
        check_shape(name, as_float_array(name, value, ndim=2), (len(x), model.latent_dim))
        for name, value in zip(("model.encode(x)[0]", "model.encode(x)[1]"), model.encode(x))
    )  # (B, D_z) each


# --- mosaics of images -----------------------------------------------------


def _tile(images, columns, image_shape):
    """Lay rows of pixels out as one greyscale mosaic, ``columns`` tiles wide.

    Tiles are framed by ``PAD`` grey pixels. A row of NaN, like the unused
    tiles of a last row, is a blank: NaN is drawn transparent, so it shows the
    figure's background, with no frame.
    """
    height, width = image_shape
    rows = -(-len(images) // columns)  # ceil(len / columns)
    mosaic = np.full(
        (rows * (height + PAD) - PAD, columns * (width + PAD) - PAD), np.nan
    )  # (rows (H + PAD) - PAD, columns (W + PAD) - PAD)
    for k, image in enumerate(images):
        if np.isnan(image).all():
            continue
        row, column = divmod(k, columns)
        top, left = row * (height + PAD), column * (width + PAD)
        mosaic[max(top - PAD, 0) : top + height + PAD, max(left - PAD, 0) : left + width + PAD] = (
            SEPARATOR
        )
        mosaic[top : top + height, left : left + width] = image.reshape(height, width)
    return mosaic


def _tile_centres(indices, size):
    """Mosaic coordinate of the centre of tiles ``indices`` of side ``size``."""
    return np.asarray(indices) * (size + PAD) + (size - 1) / 2


def _show(ax, mosaic):
    """Draw a mosaic in grey, black = 0 and white = 1 (values outside are clipped).

    No frame: the tiles frame themselves, and blank tiles stay blank.
    """
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)


def _mosaic_figure(rows, columns, extra_width=0.4, extra_height=1.1):
    """A Figure sized for ``rows`` x ``columns`` tiles plus margins for labels and caption."""
    tile = min(TILE_INCHES, MAX_WIDTH_INCHES / columns)
    width = max(tile * columns + extra_width, MIN_WIDTH_INCHES)
    return Figure(figsize=(width, tile * rows + extra_height), layout="constrained")


def _grid_shape(n):
    """(rows, columns) for n tiles: the squarest grid that n fills exactly, if not too wide.

    Otherwise ceil(sqrt(n)) columns, whose last row has blanks.

    Examples
    --------
    >>> [_grid_shape(n) for n in (64, 10, 12, 7)]
    [(8, 8), (2, 5), (3, 4), (3, 3)]
    """
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    if n // rows <= MAX_GRID_ASPECT * rows:
        return rows, n // rows
    columns = math.ceil(math.sqrt(n))
    return -(-n // columns), columns


def _caption(fig, text):
    """Write ``text``, what to look at, under the figure, wrapped to its width."""
    width = max(int(fig.get_figwidth() * CAPTION_CHARS_PER_INCH), 30)
    fig.supxlabel(textwrap.fill(text, width), fontsize="small", color="0.3")


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
    pixels = _check_model(model, image_shape)
    x = _as_images("x", x, pixels, unit_interval=True)
    n, columns = check_int("n", n), check_int("columns", columns)
    if n > len(x):
        raise ValueError(f"n: expected at most len(x) = {len(x)}, got {n}")
    columns = min(columns, n)
    rows = -(-n // columns)
    originals = x[:n]  # (n, H W)
    reconstructions = _as_images(
        "model.reconstruct(x)", model.reconstruct(originals), pixels, count=n
    )  # (n, H W)
    # Tile row 2r holds inputs r columns .. r columns + columns - 1, row 2r + 1 their
    # reconstructions; the missing end of a last row is blank (NaN).
    pairs = np.full((rows, 2, columns, pixels), np.nan)  # (rows, 2, columns, H W)
    for k, image in enumerate(zip(originals, reconstructions)):
        pairs[k // columns, :, k % columns] = image
    fig = _mosaic_figure(2 * rows, columns, extra_width=1.4)
    ax = fig.subplots()
    _show(ax, _tile(pairs.reshape(-1, pixels), columns, image_shape))
    ax.set_yticks(_tile_centres(np.arange(2 * rows), image_shape[0]),
                  ["input", "reconstruction"] * rows, fontsize="small")
    binary = bool(np.isin(originals, (0.0, 1.0)).all())
    _caption(fig, "Each input above its reconstruction. Input: "
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
    pixels = _check_model(model, image_shape)
    check_rng(rng)
    n = check_int("n", n)
    samples = _as_images("model.sample(n, rng)", model.sample(n, rng), pixels, count=n)
    rows, columns = _grid_shape(n)
    fig = _mosaic_figure(rows, columns)
    ax = fig.subplots()
    _show(ax, _tile(samples, columns, image_shape))
    ax.set_title("decoded from z ~ N(0, I)")
    _caption(fig, "New images: codes drawn from the prior, decoded to mean images (grey is a "
             "probability of ink). Look for digits; blends that are no digit show where the "
             "codes of real images leave holes in the prior.")
    return fig


def plot_interpolation(model, x_a, x_b, n=10, image_shape=IMAGE_SHAPE):
    r"""Decode the straight line between the latent means of two images.

    With :math:`\mu_a, \mu_b` the means of q(z|x_a) and q(z|x_b), decode
    :math:`z(t) = (1 - t)\,\mu_a + t\,\mu_b` at ``n`` evenly spaced
    :math:`t \in [0, 1]`; the two originals frame the strip.

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
    pixels = _check_model(model, image_shape)
    ends = np.concatenate(
        [
            _as_images(name, np.atleast_2d(end), pixels, count=1, unit_interval=True)
            for name, end in (("x_a", x_a), ("x_b", x_b))
        ]
    )  # (2, H W)
    n = check_int("n", n, minimum=2)
    mu = _encode(model, ends)[0]  # (2, D_z)
    t = np.linspace(0.0, 1.0, n)[:, None]  # (n, 1)
    # z(t) = (1 - t) mu_a + t mu_b
    z = (1.0 - t) * mu[0] + t * mu[1]  # (n, D_z)
    decoded = _as_images("model.decode(z)", model.decode(z), pixels, count=n)  # (n, H W)
    strip = np.concatenate([ends[:1], decoded, ends[1:]])  # (n + 2, H W)
    fig = _mosaic_figure(1, n + 2, extra_height=0.7)
    ax = fig.subplots()
    _show(ax, _tile(strip, n + 2, image_shape))
    ax.set_xticks(
        _tile_centres(np.arange(n + 2), image_shape[1]),
        ["$x_a$", *(f"{v:.2g}" for v in t[:, 0]), "$x_b$"],
        fontsize="small",
    )
    ax.set_xlabel(r"$t$ in $z = (1 - t)\,\mu_a + t\,\mu_b$")
    _caption(fig, "Two test images at the ends, and the decoder along the straight line "
             "between their codes. Look for a gradual change; a sudden jump marks a border "
             "between two digits' regions of the latent space.")
    return fig


# --- the latent space ------------------------------------------------------


def plot_latent_scatter(model, x, y, image_shape=IMAGE_SHAPE):
    """The means of q(z|x), one dot per image, coloured by its label.

    A 2-D latent space is drawn as it is. A larger one is drawn on the two
    dimensions with the largest average KL
    (:func:`scratchvae.lecture.collapse.kl_per_dimension`): the
    ones the code uses most, where the digits spread; the dimensions the
    model leaves unused sit at 0 in every image. The title and labels say so.

    Parameters
    ----------
    model : VAE-like
        Needs ``input_dim``, ``latent_dim`` (>= 2) and ``encode``.
    x : ndarray, shape (B, H * W)
        Images with pixels in [0, 1].
    y : array_like, shape (B,)
        Their labels (digits), used only for colour.
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
        The scatter and a colour bar with one colour per label.

    Examples
    --------
    >>> import numpy as np
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=5, seed=0)
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_latent_scatter(model, rng.random((50, 784)), rng.integers(0, 10, 50))
    >>> fig.axes[0].get_title().startswith("the 2 of 5 latent dimensions with the largest KL")
    True
    """
    pixels = _check_model(model, image_shape)
    x = _as_images("x", x, pixels, unit_interval=True)
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise ValueError(f"y: expected shape ({len(x)},) to match x, got {y.shape}")
    if model.latent_dim < 2:
        raise ValueError(
            f"model.latent_dim: expected at least 2 for a scatter plot, got {model.latent_dim}"
        )
    mu, log_var = _encode(model, x)  # (B, D_z) each
    kl = kl_per_dimension(mu, log_var)  # (D_z,)
    shown = np.sort(np.argsort(-kl, kind="stable")[:2])  # (2,) the two largest, in order
    classes, index = np.unique(y, return_inverse=True)  # (K,), (B,)
    k = len(classes)
    cmap = colormaps["tab10" if k <= 10 else "viridis"].resampled(k)
    fig = Figure(figsize=(6.4, 5.8), layout="constrained")
    ax = fig.subplots()
    # One scatter call in data order, so no class is always drawn on top.
    dots = ax.scatter(
        mu[:, shown[0]], mu[:, shown[1]], c=index, cmap=cmap,
        norm=BoundaryNorm(np.arange(k + 1) - 0.5, k), s=6, alpha=0.7, linewidths=0,
    )
    bar = fig.colorbar(dots, ax=ax, ticks=np.arange(k))
    bar.set_ticklabels([str(c) for c in classes])
    bar.set_label("label")
    bar.solids.set_alpha(1.0)
    ax.set_xlabel(f"$z_{{{shown[0] + 1}}}$ (mean of q), KL {kl[shown[0]]:.1f} nats")
    ax.set_ylabel(f"$z_{{{shown[1] + 1}}}$ (mean of q), KL {kl[shown[1]]:.1f} nats")
    ax.set_aspect("equal", adjustable="datalim")
    if model.latent_dim == 2:
        ax.set_title(f"Latent means of {len(x)} images")
        hidden = ""
    else:
        ax.set_title(f"the 2 of {model.latent_dim} latent dimensions with the largest KL",
                     fontsize="medium")
        hidden = (f" The other {model.latent_dim - 2} dimensions are not shown: digits that "
                  "overlap here may be apart in them.")
    _caption(fig, f"One dot per test image: the mean of its code q(z|x), coloured by its label, "
             f"which the model never saw.{hidden} Look for one cluster per digit, around 0 with "
             "a spread of about 1, like the prior; look-alike digits (4 and 9, 3 and 5) share "
             "borders.")
    return fig


def plot_latent_manifold(model, n=20, image_shape=IMAGE_SHAPE):
    """The decoder's mean image over an n x n grid of a 2-D latent space.

    Both axes run through :func:`equal_probability_grid`, so every tile
    stands for the same prior probability; z_2 grows upwards, as in a plot.

    Parameters
    ----------
    model : VAE-like
        Needs ``input_dim``, ``latent_dim == 2`` and ``decode``.
    n : int
        Tiles per side.
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, ticks marking z values.

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=2, seed=0)
    >>> fig = plot_latent_manifold(model, n=5)
    """
    pixels = _check_model(model, image_shape)
    if model.latent_dim != 2:
        raise ValueError(
            f"model.latent_dim: expected 2 for a manifold plot (one axis per latent "
            f"dimension), got {model.latent_dim}; plot_latent_scatter and plot_samples "
            f"work for any latent_dim"
        )
    values = equal_probability_grid(n)  # (n,)
    # Row r holds z_2 = values[n - 1 - r] (top row largest), column c holds z_1 = values[c].
    z1, z2 = np.meshgrid(values, values[::-1])  # (n, n) each
    z = np.stack([z1.ravel(), z2.ravel()], axis=1)  # (n n, 2)
    decoded = _as_images("model.decode(z)", model.decode(z), pixels, count=n * n)
    fig = _mosaic_figure(n, n, extra_width=0.9, extra_height=0.9)
    ax = fig.subplots()
    _show(ax, _tile(decoded, n, image_shape))
    # Label every tile up to n = 20, every step-th beyond; mirrored, like the grid.
    lower = np.arange(0, (n + 1) // 2, math.ceil(n / 20))
    ticks = np.union1d(lower, n - 1 - lower)
    for axis, size, z_values in (
        (ax.xaxis, image_shape[1], values),
        (ax.yaxis, image_shape[0], values[::-1]),
    ):
        labels = [f"{v:.2f}" for v in z_values[ticks]]
        axis.set_ticks(_tile_centres(ticks, size), labels, fontsize="small")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title("decoder mean on an equal-probability grid of N(0, I)")
    _caption(fig, "The decoder's mean image for each code on a grid; every tile stands for "
             "the same share of the prior's probability. Look for digits that morph smoothly "
             "into their neighbours: the whole 2-D latent space at a glance.")
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
        "train_reconstruction", "train_kl", and optionally "test_elbo"
        (missing or None when not measured) and "seconds".

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
    _caption(fig, "Look for the ELBO rising, then flattening, with the test ELBO close to the "
             "train ELBO (a widening gap is over-fitting); the KL rises as the code is put to "
             "use, the price of better reconstructions.")
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
    PNG and nothing is written; otherwise it is saved with :func:`save_figure`
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

        buffer = BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        display(Image(buffer.getvalue()))
        return None
    path = save_figure(fig, Path(folder) / name)
    print(f"figure written to {path}")
    return path
