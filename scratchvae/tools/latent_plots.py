"""Figures of the latent space: where the encoder puts each digit, and what the decoder draws there.

* :func:`plot_latent_scatter` -- the posterior means of test images, coloured by digit, on the
  two latent dimensions with the largest KL;
* :func:`plot_latent_manifold` -- the decoder over a grid of a 2-D latent space, equal prior mass
  per tile;
* :func:`plot_kl_per_dimension` -- what each latent dimension costs in the KL term, sorted: the
  posterior-collapse meter.

Same conventions as :mod:`scratchvae.tools.plots` (a duck-typed model, a Figure returned, a
caption under it). How to read them: docs/figures.md.
"""

import math

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from scratchvae.lecture.collapse import active_units, kl_per_dimension
from scratchvae.tools.mosaic import (
    IMAGE_SHAPE,
    add_caption,
    as_images,
    check_model,
    draw_mosaic,
    encode_checked,
    mosaic_figure,
    tile,
    tile_centres,
)
from scratchvae.tools.plot_maths import equal_probability_grid

__all__ = ["plot_latent_scatter", "plot_latent_manifold", "plot_kl_per_dimension"]


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
    pixels = check_model(model, image_shape)
    x = as_images("x", x, pixels, unit_interval=True)
    y = np.asarray(y)
    if y.shape != (len(x),):
        raise ValueError(f"y: expected shape ({len(x)},) to match x, got {y.shape}")
    if model.latent_dim < 2:
        raise ValueError(
            f"model.latent_dim: expected at least 2 for a scatter plot, got {model.latent_dim}"
        )
    mu, log_var = encode_checked(model, x)  # (B, D_z) each
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
    add_caption(fig, f"One dot per test image: the mean of its code q(z|x), coloured by its label, "
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
    pixels = check_model(model, image_shape)
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
    decoded = as_images("model.decode(z)", model.decode(z), pixels, count=n * n)
    fig = mosaic_figure(n, n, extra_width=0.9, extra_height=0.9)
    ax = fig.subplots()
    draw_mosaic(ax, tile(decoded, n, image_shape))
    # Label every tile up to n = 20, every step-th beyond; mirrored, like the grid.
    lower = np.arange(0, (n + 1) // 2, math.ceil(n / 20))
    ticks = np.union1d(lower, n - 1 - lower)
    for axis, size, z_values in (
        (ax.xaxis, image_shape[1], values),
        (ax.yaxis, image_shape[0], values[::-1]),
    ):
        labels = [f"{v:.2f}" for v in z_values[ticks]]
        axis.set_ticks(tile_centres(ticks, size), labels, fontsize="small")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title("decoder mean on an equal-probability grid of N(0, I)")
    add_caption(fig, "The decoder's mean image for each code on a grid; every tile stands for "
             "the same share of the prior's probability. Look for digits that morph smoothly "
             "into their neighbours: the whole 2-D latent space at a glance.")
    return fig


def plot_kl_per_dimension(model, x, image_shape=IMAGE_SHAPE):
    """The KL term of each latent dimension, averaged over ``x``, sorted: which dimensions are used.

    Bars in decreasing order, each dimension labelled by its index; the
    title counts the active units (Burda et al.'s Cov_x(E_q[z_u]) > 0.01).
    A collapsed dimension has a bar at zero. Derivation: docs/estimators.md#collapse

    Examples
    --------
    >>> from scratchvae.lecture.vae import VAE
    >>> model = VAE(784, hidden=(16,), latent_dim=5, seed=0)
    >>> fig = plot_kl_per_dimension(model, np.random.default_rng(0).random((50, 784)))
    >>> fig.axes[0].get_title().endswith("of 5 dimensions active")
    True
    """
    pixels = check_model(model, image_shape)
    x = as_images("x", x, pixels, unit_interval=True)
    mu, log_var = encode_checked(model, x)  # (B, D_z) each
    kl = kl_per_dimension(mu, log_var)  # (D_z,)
    active = active_units(mu)[0] if len(mu) > 1 else 0
    order = np.argsort(-kl, kind="stable")  # the dimensions, largest KL first
    fig = Figure(figsize=(max(4.0, 0.35 * len(kl) + 1.5), 3.6), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(len(kl)), kl[order], color="tab:blue")
    ax.set_xticks(np.arange(len(kl)), [str(u) for u in order], fontsize="small")
    ax.set_xlabel("latent dimension u, by decreasing KL")
    ax.set_ylabel("average KL_u (nats)")
    ax.set_title(f"KL per latent dimension: {active} of {len(kl)} dimensions active")
    add_caption(fig, "Each bar is what one latent dimension costs in the KL term, averaged over "
                     "the images. Bars near zero are dimensions the encoder ignores (posterior "
                     "collapse): the model could drop them. A larger KL weight beta switches "
                     "more of them off.")
    return fig
