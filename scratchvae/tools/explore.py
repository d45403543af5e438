"""The browser explorer: a trained model as a static page that runs it, offline.

``scratchvae explore RUN_FOLDER_OR_MODEL --out DIR``
(:func:`scratchvae.tools.run_commands.explore_command`) writes, with :func:`write_page`, three files:

* ``index.html``, the page (:file:`explorer/index.html` in this package);
* ``explore.js``, the plain JavaScript that runs the model (:file:`explorer/explore.js`):
  the encoder and decoder as loops over ``Float32Array`` weights, the map, the
  sliders, the drawing canvas and the walk;
* ``data.js``, what this model brings: its settings, every weight in float32
  (base64), and for the map the means of q(z | x) of the first test images, their
  labels, their thumbnails (one PNG sprite) and the KL and activity of each
  latent dimension.

Nothing is fetched: browsers refuse ``fetch`` from ``file://``, so the data come
in a ``<script>`` file and the page opens with no server and no network.
:func:`explore` shows the same page inline in a notebook (one document, the
scripts inlined); it holds no solution and needs no engine, so a handout's
``coursetools`` carry it, with the student's own model. Guide: docs/explorer.md
"""

import base64
import html
import io
import json
from importlib import resources
from pathlib import Path

import numpy as np

from scratchvae.lecture.collapse import ACTIVE_THRESHOLD, active_units, encode_all, kl_per_dimension
from scratchvae.lecture.modules import LeakyReLU
from scratchvae.tools.mosaic import IMAGE_SHAPE

__all__ = ["MAP_IMAGES", "SCRIPTS", "page_data", "write_page", "page_html", "explore"]

MAP_IMAGES = 3000
"""Test images on the map by default: their means, labels and thumbnails."""
SPRITE_COLUMNS = 50
"""Thumbnails per row of the sprite sheet."""
# The scripts, in the order the page loads them: the model's data, then the code that uses it.
SCRIPTS = ("data.js", "explore.js")
_SCRIPT_SLOT = "<!-- scripts -->"


def page_data(model, x, y, thumbnails=None):
    """Everything the page needs to know of ``model``, as a JSON-able dict.

    Parameters
    ----------
    model : VAE
        Any model the package trains, on 28 x 28 images.
    x : ndarray, shape (N, 784)
        The test images to encode for the map, as the model sees them (binarised
        as in training, :func:`scratchvae.tools.evaluation.prepare_test_set`).
    y : ndarray, shape (N,)
        Their labels (digits 0-9).
    thumbnails : ndarray, shape (N, 784), optional
        The grey-level images to show for them; default ``x``.

    Returns
    -------
    dict
        ``config`` (the model's settings), ``slope`` (leaky ReLU's), ``layers``
        (encoder, encoder head, decoder, decoder head: sizes and base64 float32
        weights, ``W`` row-major (in, out)) and ``map`` (means, labels, sprite, KL
        and activity per dimension, the active threshold).
    """
    pixels = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    if model.input_dim != pixels:
        raise ValueError(f"model.input_dim: the explorer shows {IMAGE_SHAPE[0]} x {IMAGE_SHAPE[1]} "
                         f"images, so expected {pixels}, got {model.input_dim}")
    x = model.as_input(x)
    y = np.asarray(y)
    if y.shape != (len(x),) or len(x) < 2:
        raise ValueError(f"y: expected at least 2 labels, one per row of x ({len(x)}), got shape {y.shape}")
    thumbnails = x if thumbnails is None else np.asarray(thumbnails)
    if thumbnails.shape != x.shape:
        raise ValueError(f"thumbnails: expected shape {x.shape} like x, got {thumbnails.shape}")
    mu, log_var = encode_all(model, x)  # (N, D_z) each
    activity = active_units(mu)[1]  # (D_z,)
    return {
        "config": model.config,
        "slope": _leaky_slope(model),
        "layers": {name: [_layer(model, f"{name}.{k}.") for k in range(len(model.config["hidden"]))]
                   for name in ("encoder", "decoder")}
        | {name: [_layer(model, f"{name}.")] for name in ("encoder_head", "decoder_head")},
        "map": {
            "count": len(x),
            "mu": _base64(mu),
            "labels": "".join(str(int(label)) for label in y),
            "kl": kl_per_dimension(mu, log_var).tolist(),
            "activity": activity.tolist(),
            "threshold": ACTIVE_THRESHOLD,
            "sprite": _sprite(thumbnails),
            "sprite_columns": SPRITE_COLUMNS,
        },
    }


def _layer(model, prefix):
    """One dense layer's sizes and weights: {"in", "out", "W", "b"}, the arrays as base64 float32."""
    W, b = model.params[prefix + "W"], model.params[prefix + "b"]
    return {"in": W.shape[0], "out": W.shape[1], "W": _base64(W), "b": _base64(b)}


def _leaky_slope(model):
    """The slope of the model's leaky ReLUs (the modules' own), or None for another activation."""
    if model.config["activation"] != "leaky_relu":
        return None
    return LeakyReLU().slope  # the slope every MLP of the package is built with


def _base64(array):
    """``array`` as little-endian float32 bytes, row-major, in base64 text."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _sprite(images):
    """The images as one grey PNG, ``SPRITE_COLUMNS`` to a row, as a ``data:`` URL."""
    from PIL import Image  # a dependency of matplotlib

    height, width = IMAGE_SHAPE
    rows = -(-len(images) // SPRITE_COLUMNS)
    sheet = np.zeros((rows * SPRITE_COLUMNS, height, width), np.uint8)
    sheet[: len(images)] = np.rint(np.clip(images, 0, 1) * 255).reshape(-1, height, width)
    sheet = sheet.reshape(rows, SPRITE_COLUMNS, height, width).swapaxes(1, 2).reshape(rows * height, -1)
    buffer = io.BytesIO()
    Image.fromarray(sheet, mode="L").save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _asset(name):
    """The text of one file of the page in this package's ``explorer/`` folder."""
    return resources.files("scratchvae.tools").joinpath("explorer", name).read_text(encoding="utf-8")


def _scripts(data):
    """{file name: text} of the page's two scripts."""
    return {"data.js": "window.SCRATCHVAE_DATA = " + json.dumps(data, separators=(",", ":")) + ";\n",
            "explore.js": _asset("explore.js")}


def write_page(data, out):
    """Write the page for ``data`` (:func:`page_data`) into the folder ``out``; return index.html's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tags = "\n".join(f'<script src="{name}"></script>' for name in SCRIPTS)
    (out / "index.html").write_text(_asset("index.html").replace(_SCRIPT_SLOT, tags), encoding="utf-8")
    for name, text in _scripts(data).items():
        (out / name).write_text(text, encoding="utf-8")
    return out / "index.html"


def page_html(data):
    """The page for ``data`` (:func:`page_data`) as one HTML document, its scripts inlined."""
    scripts = _scripts(data)
    tags = "\n".join(f"<script>\n{scripts[name]}</script>" for name in SCRIPTS)
    return _asset("index.html").replace(_SCRIPT_SLOT, tags)


def explore(model, x=None, y=None, images=1000, height=900):
    """Show the explorer for ``model`` in a notebook, inline (an iframe holding the whole page).

    Parameters
    ----------
    model : VAE
    x, y : ndarray, optional
        Test images for the map and their labels; default the first ``images`` of
        MNIST's test set (:func:`scratchvae.tools.data.load_mnist`).
    images : int
        How many test images the map shows when ``x`` is not given (fewer than the
        command's default, to keep the notebook small).
    height : int
        The iframe's height in pixels.

    Returns
    -------
    IPython.display.HTML
    """
    from IPython.display import HTML

    if x is None:
        from scratchvae.tools.data import load_mnist

        test = load_mnist()
        x, y = test.x_test[:images], test.y_test[:images]
    document = html.escape(page_html(page_data(model, x, y)), quote=True)
    return HTML(f'<div><iframe srcdoc="{document}" style="width: 100%; height: {int(height)}px; border: 0"'
                ' title="scratchvae explorer"></iframe></div>')
