"""The parts every figure of scratchvae.tools.plots is built from: checks, image mosaics, captions.

A mosaic is many 28 x 28 images tiled into one array with a thin grey
separator, drawn in one ``imshow``; a caption under each figure says what to
look at. The layout constants below size the tiles for a projector.
"""

import math
import textwrap

import numpy as np
from matplotlib.figure import Figure

from scratchvae.lecture.validate import as_float_array, check_int, check_shape, check_unit_interval

__all__ = ["IMAGE_SHAPE", "DPI", "PAD", "check_model", "as_images", "encode_checked", "tile",
           "tile_centres", "draw_mosaic", "mosaic_figure", "grid_shape", "add_caption"]

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
# Marks the caption add_caption draws, so that plots.show can leave it out where the page
# around the figure carries the caption in HTML (the course site).
CAPTION_GID = "scratchvae-caption"


# --- checks ----------------------------------------------------------------


def check_model(model, image_shape):
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


def as_images(name, images, pixels, count=None, unit_interval=False):
    """``images`` as a finite float array of shape (count, pixels), or raise."""
    images = as_float_array(name, images, ndim=2)
    check_shape(name, images, (count, pixels))
    return check_unit_interval(name, images) if unit_interval else images


def encode_checked(model, x):
    """The means and log-variances of q(z|x), each checked to be (B, D_z)."""
    return tuple(
        check_shape(name, as_float_array(name, value, ndim=2), (len(x), model.latent_dim))
        for name, value in zip(("model.encode(x)[0]", "model.encode(x)[1]"), model.encode(x))
    )  # (B, D_z) each


# --- mosaics of images -----------------------------------------------------


def tile(images, columns, image_shape):
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


def tile_centres(indices, size):
    """Mosaic coordinate of the centre of tiles ``indices`` of side ``size``."""
    return np.asarray(indices) * (size + PAD) + (size - 1) / 2


def draw_mosaic(ax, mosaic):
    """Draw a mosaic in grey, black = 0 and white = 1 (values outside are clipped).

    No frame: the tiles frame themselves, and blank tiles stay blank.
    """
    ax.imshow(mosaic, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)


def mosaic_figure(rows, columns, extra_width=0.4, extra_height=1.1):
    """A Figure sized for ``rows`` x ``columns`` tiles plus margins for labels and caption."""
    tile = min(TILE_INCHES, MAX_WIDTH_INCHES / columns)
    width = max(tile * columns + extra_width, MIN_WIDTH_INCHES)
    return Figure(figsize=(width, tile * rows + extra_height), layout="constrained")


def grid_shape(n):
    """(rows, columns) for n tiles: the squarest grid that n fills exactly, if not too wide.

    Otherwise ceil(sqrt(n)) columns, whose last row has blanks.

    Examples
    --------
    >>> [grid_shape(n) for n in (64, 10, 12, 7)]
    [(8, 8), (2, 5), (3, 4), (3, 3)]
    """
    rows = max(r for r in range(1, math.isqrt(n) + 1) if n % r == 0)
    if n // rows <= MAX_GRID_ASPECT * rows:
        return rows, n // rows
    columns = math.ceil(math.sqrt(n))
    return -(-n // columns), columns


def add_caption(fig, text):
    """Write ``text``, what to look at, under the figure, wrapped to its width (gid :data:`CAPTION_GID`)."""
    width = max(int(fig.get_figwidth() * CAPTION_CHARS_PER_INCH), 30)
    fig.supxlabel(textwrap.fill(text, width), fontsize="small", color="0.3", gid=CAPTION_GID)
