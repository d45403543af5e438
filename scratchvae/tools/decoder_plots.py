"""What a Gaussian decoder believes: its mean image and its standard deviation σ(z), side by side.

A Gaussian decoder gives every pixel a mean μ_j(z) and a standard deviation
σ_j(z) = exp(log σ²_j(z) / 2). The samples figure shows only the means; this
one shows how sure the decoder is of each pixel. On dequantised pixels
(docs/likelihoods.md#dequantisation) no honest σ falls far below the width
of one grey level's bin, 1/256 (a uniform on the bin has σ = 1/(256 √12));
the colour scale is in those units. What to look for: docs/figures.md#decoder-sigma.

Examples
--------
>>> import numpy as np
>>> from scratchvae.lecture.vae import VAE
>>> model = VAE(784, hidden=(16,), latent_dim=2, likelihood="gaussian", seed=0)
>>> fig = plot_decoder_sigma(model, np.random.default_rng(0), n=4)
>>> len(fig.axes)  # means, sigmas, colour bar
3
"""

import numpy as np
from matplotlib.colors import LogNorm

from scratchvae.lecture.validate import check_int, check_rng
from scratchvae.tools.mosaic import IMAGE_SHAPE, add_caption, check_model, draw_mosaic, mosaic_figure, tile

__all__ = ["GREY_LEVEL", "plot_decoder_sigma"]

# The width of one grey level's bin after dequantisation: sigma is drawn in these units.
GREY_LEVEL = 1 / 256


def plot_decoder_sigma(model, rng, n=8, image_shape=IMAGE_SHAPE):
    """``n`` codes z ~ N(0, I): the decoder's mean μ(z) above its σ(z), in grey levels.

    Parameters
    ----------
    model : VAE with ``likelihood == "gaussian"``
        Needs ``decoder_output(z)`` returning ``[mean | log_var]`` (B, 2 D).
    rng : numpy.random.Generator
        Draws the codes.
    n : int
        How many codes (columns).
    image_shape : (int, int)
        (H, W) of one image.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if getattr(model, "likelihood", None) != "gaussian":
        raise ValueError(f"model: expected a Gaussian decoder (likelihood='gaussian'), got "
                         f"likelihood={getattr(model, 'likelihood', None)!r}")
    pixels = check_model(model, image_shape)
    check_rng(rng)
    n = check_int("n", n)
    z = rng.standard_normal((n, model.latent_dim)).astype(model.dtype)  # (n, D_z)
    out = np.asarray(model.decoder_output(z), dtype=np.float64)  # (n, 2 D)
    mean, log_var = out[:, :pixels], out[:, pixels:]  # (n, D) each
    # sigma_j = exp(log_var_j / 2), in units of one grey level 1/256
    sigma = np.exp(0.5 * log_var) / GREY_LEVEL  # (n, D)
    fig = mosaic_figure(2, n, extra_width=1.2)
    top, bottom = fig.subplots(2, 1)
    draw_mosaic(top, tile(mean, n, image_shape))
    top.set_title("mean μ(z)")
    low, high = np.nanpercentile(sigma, [1, 99])
    shown = bottom.imshow(tile(sigma, n, image_shape), cmap="magma",
                          norm=LogNorm(vmin=max(low, 1e-3), vmax=max(high, 2 * max(low, 1e-3))),
                          interpolation="nearest")
    bottom.set_xticks([])
    bottom.set_yticks([])
    bottom.set_frame_on(False)
    bottom.set_title("σ(z), in grey levels (1/256)")
    # One bar for both rows, so that the two rows of tiles line up.
    fig.colorbar(shown, ax=[top, bottom], shrink=0.45, anchor=(0.0, 0.0), label="σ × 256")
    add_caption(fig, "Codes from the prior, decoded. Bright σ: the decoder is unsure of the "
                "pixel (the strokes' edges, where digits differ). Dark σ: it is sure (the empty "
                "border). Below about 0.3 grey levels (1/√12, a uniform spread over one bin) a "
                "σ claims more than dequantised pixels can hold.")
    return fig
