"""Tests for scratchvae.tools.plots: every figure renders headless, and shows what it claims.

The model here is a small stand-in (linear maps and a sigmoid), so these tests
do not depend on scratchvae.lecture.vae; it records every z it is asked to decode,
which lets the tests check *which* codes a figure decodes.
"""

import math
import sys

import matplotlib

matplotlib.use("Agg")  # before anything imports pyplot: never open a window

import numpy as np
import pytest
from matplotlib.image import imread

from scratchvae.tools.latent_plots import plot_latent_manifold, plot_latent_scatter
from scratchvae.tools.mosaic import PAD
from scratchvae.tools.plot_maths import equal_probability_grid, inverse_normal_cdf
from scratchvae.tools.plots import (
    plot_interpolation,
    plot_reconstructions,
    plot_samples,
    plot_training_curves,
    save_figure,
)

SIDE = 28


class FakeModel:
    """Linear encoder, linear-then-sigmoid decoder: just enough of a VAE.

    q(z|x) has unit variance, so the KL of dimension j is mean(mu_j^2) / 2;
    ``scale`` stretches the means dimension by dimension.
    """

    def __init__(self, latent_dim, input_dim=SIDE * SIDE, seed=0, scale=1.0):
        rng = np.random.default_rng(seed)
        self.latent_dim, self.input_dim = latent_dim, input_dim
        self.W_enc = rng.normal(size=(input_dim, latent_dim)) / math.sqrt(input_dim) * scale
        self.W_dec = rng.normal(size=(latent_dim, input_dim))
        self.decoded = []  # every z passed to decode, in order

    def encode(self, x):
        mu = (x - 0.5) @ self.W_enc  # (B, D_z)
        return mu, np.zeros_like(mu)

    def decode(self, z):
        self.decoded.append(np.array(z))
        return 1.0 / (1.0 + np.exp(-(z @ self.W_dec)))  # (B, D)

    def sample(self, n, rng):
        return self.decode(rng.standard_normal((n, self.latent_dim)))

    def reconstruct(self, x):
        return self.decode(self.encode(x)[0])


@pytest.fixture
def images(rng):
    """Twenty images with pixels in [0, 1] and their labels 0..9."""
    return rng.random((20, SIDE * SIDE)), np.arange(20) % 10


def tile(mosaic, row, column):
    """Tile (row, column) of a mosaic drawn by plots."""
    top, left = row * (SIDE + PAD), column * (SIDE + PAD)
    return mosaic[top : top + SIDE, left : left + SIDE]


def mosaic_of(ax):
    return np.asarray(ax.images[0].get_array())


def assert_saves_a_real_picture(fig, path):
    """The PNG exists, is a sensible size, and is not a blank canvas."""
    assert save_figure(fig, path) == path
    assert path.stat().st_size > 5_000
    pixels = imread(path)  # (height, width, 4)
    height, width = pixels.shape[:2]
    assert 150 <= height <= 2400 and 400 <= width <= 2400, pixels.shape
    assert pixels[..., :3].std() > 0.05


def history(n_epochs=5, with_test=True):
    return [
        {
            "epoch": e,
            "train_elbo": -200.0 + 20 * e,
            "train_reconstruction": -190.0 + 22 * e,
            "train_kl": 10.0 + 2 * e,
            "test_elbo": -205.0 + 20 * e if with_test else None,
            "seconds": 1.25,
        }
        for e in range(1, n_epochs + 1)
    ]


# --- the quantile function and the grid --------------------------------------


def test_inverse_normal_cdf_matches_known_quantiles():
    p = np.array([0.5, 0.975, 0.025, 0.8413447460685429, 1e-10])
    expected = np.array([0.0, 1.959963984540054, -1.959963984540054, 1.0, -6.361340902404056])
    np.testing.assert_allclose(inverse_normal_cdf(p), expected, rtol=1e-9, atol=1e-6)
    assert abs(inverse_normal_cdf(0.975) - 1.959964) < 1e-6


def test_inverse_normal_cdf_inverts_the_cdf(rng):
    p = rng.uniform(1e-6, 1 - 1e-6, size=200)
    z = inverse_normal_cdf(p)
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    np.testing.assert_allclose(cdf, p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(inverse_normal_cdf(1 - p), -z, atol=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, np.nan])
def test_inverse_normal_cdf_rejects_impossible_probabilities(p):
    with pytest.raises(ValueError, match="p: expected"):
        inverse_normal_cdf([0.5, p])


@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_grid_is_symmetric_monotone_and_splits_the_mass_evenly(n):
    z = equal_probability_grid(n)
    assert z.shape == (n,)
    np.testing.assert_array_equal(z, -z[::-1])
    assert np.all(np.diff(z) > 0)
    # Each value is the middle quantile of its slice: Phi(z_i) = (i + 1/2) / n.
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    np.testing.assert_allclose(cdf, (np.arange(n) + 0.5) / n, atol=1e-14)


# --- the KL per latent dimension --------------------------------------------


# --- figures of images -------------------------------------------------------


def test_reconstructions_show_rows_of_inputs_each_above_their_reconstructions(images, tmp_path):
    x, _ = images
    model = FakeModel(latent_dim=2)
    fig = plot_reconstructions(model, x, n=11, columns=4)  # rows of 4, 4, 3
    (ax,) = fig.axes
    mosaic = mosaic_of(ax)
    assert mosaic.shape == (6 * (SIDE + PAD) - PAD, 4 * (SIDE + PAD) - PAD)
    for k in range(11):
        row, column = divmod(k, 4)
        np.testing.assert_allclose(tile(mosaic, 2 * row, column), x[k].reshape(SIDE, SIDE))
        np.testing.assert_allclose(tile(mosaic, 2 * row + 1, column),
                                   model.reconstruct(x[k : k + 1]).reshape(SIDE, SIDE))
    # the missing twelfth pair is blank (drawn in the background), not a grey box
    assert np.isnan(tile(mosaic, 4, 3)).all() and np.isnan(tile(mosaic, 5, 3)).all()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["input", "reconstruction"] * 3
    assert "speckle" not in fig.get_supxlabel()  # grey inputs: nothing binarised to explain
    assert_saves_a_real_picture(fig, tmp_path / "reconstructions.png")


def test_binarised_inputs_are_explained_in_the_caption(images):
    x, _ = images
    caption = plot_reconstructions(FakeModel(latent_dim=2), x.round(), n=8).get_supxlabel()
    assert "binarised" in caption and "speckle" in caption


@pytest.mark.parametrize("n, rows, columns", [(64, 8, 8), (10, 2, 5), (12, 3, 4), (3, 1, 3)])
def test_samples_fill_a_grid_that_fits_n_and_follow_the_rng(n, rows, columns):
    model = FakeModel(latent_dim=5)
    mosaic = mosaic_of(plot_samples(model, np.random.default_rng(7), n=n).axes[0])
    assert mosaic.shape == (rows * (SIDE + PAD) - PAD, columns * (SIDE + PAD) - PAD)
    assert not np.isnan(mosaic).any()  # no empty cell
    again = mosaic_of(plot_samples(model, np.random.default_rng(7), n=n).axes[0])
    np.testing.assert_array_equal(mosaic, again)


def test_samples_of_a_prime_n_leave_the_end_of_the_last_row_blank(tmp_path):
    fig = plot_samples(FakeModel(latent_dim=5), np.random.default_rng(7), n=7)
    mosaic = mosaic_of(fig.axes[0])  # 3 x 3: 1 x 7 would be too wide
    assert mosaic.shape == (3 * (SIDE + PAD) - PAD, 3 * (SIDE + PAD) - PAD)
    assert np.isnan(tile(mosaic, 2, 1)).all() and not np.isnan(tile(mosaic, 2, 0)).any()
    assert_saves_a_real_picture(fig, tmp_path / "samples.png")


def test_interpolation_decodes_evenly_spaced_points_on_the_line(images, tmp_path):
    x, _ = images
    model = FakeModel(latent_dim=5)
    fig = plot_interpolation(model, x[0], x[1][None], n=7)
    z = model.decoded[-1]  # (7, 5)
    mu = model.encode(x[:2])[0]
    np.testing.assert_allclose(z[0], mu[0], atol=1e-12)
    np.testing.assert_allclose(z[-1], mu[1], atol=1e-12)
    np.testing.assert_allclose(np.diff(z, axis=0), np.tile((mu[1] - mu[0]) / 6, (6, 1)), atol=1e-12)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 9 and labels[0] == "$x_a$" and labels[-1] == "$x_b$"
    np.testing.assert_allclose(tile(mosaic_of(ax), 0, 8), x[1].reshape(SIDE, SIDE))
    assert_saves_a_real_picture(fig, tmp_path / "interpolation.png")


# --- the latent space --------------------------------------------------------


def test_scatter_of_a_2d_latent_plots_the_means_themselves(images, tmp_path):
    x, y = images
    model = FakeModel(latent_dim=2)
    fig = plot_latent_scatter(model, x, y)
    ax, bar = fig.axes
    np.testing.assert_allclose(ax.collections[0].get_offsets(), model.encode(x)[0])
    assert ax.get_xlabel().startswith("$z_{1}$")
    assert [t.get_text() for t in bar.get_yticklabels()] == [str(d) for d in range(10)]
    assert_saves_a_real_picture(fig, tmp_path / "scatter2.png")


def test_scatter_of_a_larger_latent_shows_the_two_dimensions_of_largest_kl(images, tmp_path):
    x, y = images
    model = FakeModel(latent_dim=5, scale=np.array([1.0, 4.0, 0.1, 3.0, 1.0]))
    mu = model.encode(x)[0]
    kl = 0.5 * np.mean(mu**2, axis=0)
    assert set(np.argsort(kl)[-2:]) == {1, 3}  # the stretched dimensions
    fig = plot_latent_scatter(model, x, y)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.collections[0].get_offsets(), mu[:, [1, 3]])
    assert ax.get_xlabel() == f"$z_{{2}}$ (mean of q), KL {kl[1]:.1f} nats"
    assert ax.get_ylabel() == f"$z_{{4}}$ (mean of q), KL {kl[3]:.1f} nats"
    assert ax.get_title() == "the 2 of 5 latent dimensions with the largest KL"
    assert "The other 3 dimensions are not shown" in fig.get_supxlabel().replace("\n", " ")
    assert_saves_a_real_picture(fig, tmp_path / "scatter5.png")


def test_manifold_decodes_the_equal_probability_grid_with_z2_upwards(tmp_path):
    model = FakeModel(latent_dim=2)
    n = 6
    fig = plot_latent_manifold(model, n=n)
    z = model.decoded[-1].reshape(n, n, 2)  # (row, column, [z_1, z_2])
    values = equal_probability_grid(n)
    np.testing.assert_array_equal(z[0, :, 0], values)  # z_1 grows to the right
    np.testing.assert_array_equal(z[:, 0, 1], values[::-1])  # z_2 grows upwards
    assert np.all(z[:, :, 0] == z[:1, :, 0]) and np.all(z[:, :, 1] == z[:, :1, 1])
    np.testing.assert_allclose(
        tile(mosaic_of(fig.axes[0]), 1, 2), model.decode(z[1, 2][None]).reshape(SIDE, SIDE)
    )
    assert_saves_a_real_picture(plot_latent_manifold(model), tmp_path / "manifold.png")


def test_manifold_needs_a_2d_latent_space():
    with pytest.raises(ValueError, match="latent_dim: expected 2 .* got 5"):
        plot_latent_manifold(FakeModel(latent_dim=5))


# --- training curves ---------------------------------------------------------


class History:
    """Like the trainer's history object: the per-epoch dicts under ``.records``."""

    def __init__(self, records):
        self.records = records


def test_training_curves_plot_every_term_per_epoch(tmp_path):
    records = history()
    fig = plot_training_curves(History(records))
    elbo_ax, reconstruction_ax, kl_ax = fig.axes
    train, test = elbo_ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(train.get_ydata(), [r["train_elbo"] for r in records])
    np.testing.assert_array_equal(test.get_ydata(), [r["test_elbo"] for r in records])
    np.testing.assert_array_equal(
        reconstruction_ax.get_lines()[0].get_ydata(), [r["train_reconstruction"] for r in records]
    )
    np.testing.assert_array_equal(
        kl_ax.get_lines()[0].get_ydata(), [r["train_kl"] for r in records]
    )
    assert all(ax.get_ylabel() == "nats per image" for ax in fig.axes)
    assert fig.get_suptitle() == "5 epochs, 6.2 s of training"
    assert_saves_a_real_picture(fig, tmp_path / "curves.png")


def test_one_epoch_has_one_integer_tick_and_a_singular_title():
    fig = plot_training_curves(history(1))
    fig.canvas.draw()
    for ax in fig.axes:
        low, high = ax.get_xlim()
        shown = [label.get_text() for tick, label in zip(ax.get_xticks(), ax.get_xticklabels())
                 if low <= tick <= high]
        assert shown == ["1"]
    assert fig.get_suptitle() == "1 epoch, 1.2 s of training"


def test_every_figure_has_a_caption_and_is_saved_at_projector_resolution(images, tmp_path):
    x, y = images
    model = FakeModel(latent_dim=2)
    figures = [plot_reconstructions(model, x, n=8), plot_samples(model, np.random.default_rng(0)),
               plot_interpolation(model, x[0], x[1]), plot_latent_scatter(model, x, y),
               plot_latent_manifold(model, n=4), plot_training_curves(history())]
    for k, fig in enumerate(figures):
        assert "Look for" in fig.get_supxlabel()
        width_inches = fig.get_figwidth()
        path = save_figure(fig, tmp_path / f"{k}.png")
        assert imread(path).shape[1] == round(150 * width_inches)


def test_the_caption_says_which_way_the_kl_should_go():
    """Without a warm-up the KL rises; with one (beta below 1 at first) it falls as beta reaches 1."""
    plain = plot_training_curves(history()).get_supxlabel()
    assert "KL rises" in plain and "warm-up" not in plain
    warm = [dict(r, beta=min(1.0, 0.2 * r["epoch"])) for r in history()]
    caption = plot_training_curves(warm).get_supxlabel()
    assert "KL falls" in caption and "warm-up" in caption


def test_training_curves_without_test_elbo_draw_only_the_train_line():
    records = [{k: v for k, v in r.items() if k != "test_elbo"} for r in history(1)]
    fig = plot_training_curves(records)
    assert len(fig.axes[0].get_lines()) == 1
    assert len(plot_training_curves(history(3, with_test=False)).axes[0].get_lines()) == 1


# --- argument checks ---------------------------------------------------------


def test_bad_arguments_raise_errors_that_name_them(images, tmp_path):
    x, y = images
    model = FakeModel(latent_dim=2)
    cases = [
        (lambda: plot_reconstructions(model, x[:, :700]), r"x: expected shape \(any, 784\)"),
        (lambda: plot_reconstructions(model, x.reshape(-1, 28, 28)), "x: expected a 2-dim"),
        (lambda: plot_reconstructions(model, 255 * x), r"x: expected values in \[0, 1\]"),
        (lambda: plot_reconstructions(model, x, n=0), "n: expected an integer >= 1, got 0"),
        (lambda: plot_reconstructions(model, x, n=21), "n: expected at most len"),
        (lambda: plot_reconstructions(model, x, image_shape=(28, 27)), "image_shape: expected 784"),
        (lambda: plot_reconstructions(model, x, image_shape=28), "image_shape: expected"),
        (lambda: plot_samples(model, 0), "rng: expected a numpy.random.Generator"),
        (lambda: plot_samples(model, np.random.default_rng(0), n=2.5), "n: expected an integer"),
        (lambda: plot_interpolation(model, x[0], x[1], n=1), "n: expected an integer >= 2"),
        (lambda: plot_interpolation(model, x[:2], x[1]), r"x_a: expected shape \(1, 784\)"),
        (lambda: plot_latent_scatter(model, x, y[:5]), r"y: expected shape \(20,\)"),
        (lambda: plot_latent_scatter(FakeModel(1), x, y), "latent_dim: expected at least 2"),
        (lambda: plot_latent_manifold(model, n=0), "n: expected an integer >= 1"),
        (lambda: plot_training_curves([]), "history: expected at least one epoch"),
        (lambda: plot_training_curves([{"epoch": 1}]), "history: expected record 0 to have keys"),
        (lambda: save_figure(plot_latent_manifold(model, n=2), tmp_path / "m.pdf"), "path: .*png"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_a_model_returning_the_wrong_shape_is_caught():
    class Broken(FakeModel):
        def decode(self, z):
            return super().decode(z)[:, :100]

    with pytest.raises(ValueError, match=r"model.decode\(z\): expected shape \(4, 784\)"):
        plot_latent_manifold(Broken(latent_dim=2), n=2)


def test_show_saves_from_a_script_and_draws_inline_under_a_kernel(tmp_path, monkeypatch, capsys):
    from matplotlib.figure import Figure

    from scratchvae.tools.plots import show

    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    path = show(Figure(figsize=(1, 1)), "f.png", tmp_path / "lesson")
    assert path == tmp_path / "lesson" / "f.png" and path.stat().st_size > 0
    assert f"figure written to {path}" in capsys.readouterr().out

    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    monkeypatch.setattr(display, "display", shown.append)
    assert show(Figure(figsize=(1, 1)), "g.png", tmp_path / "inline") is None
    assert len(shown) == 1 and shown[0].data[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "inline").exists(), "a notebook shows its figures, saves none"


@pytest.mark.parametrize("site", [False, True], ids=["jupyter", "site build"])
def test_under_the_sites_build_the_drawn_caption_is_left_to_the_page(site, tmp_path, monkeypatch):
    """The site's build (docs/conf.py sets $SCRATCHVAE_HTML_CAPTIONS) captions each lesson figure in
    HTML: show() then leaves out the caption drawn into the PNG (and the layout gives its room back
    to the images). In a student's Jupyter the PNG keeps it."""
    from scratchvae.tools import plots
    from scratchvae.tools.mosaic import CAPTION_GID

    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    monkeypatch.setattr(display, "display", shown.append)
    if site:
        monkeypatch.setenv(plots.HTML_CAPTIONS, "1")
    else:
        monkeypatch.delenv(plots.HTML_CAPTIONS, raising=False)
    fig = plots.plot_samples(FakeModel(latent_dim=5), np.random.default_rng(0), n=4)
    plots.show(fig, "samples.png", tmp_path)
    caption = next(text for text in fig.texts if text.get_gid() == CAPTION_GID)
    assert "Look for digits" in caption.get_text() and len(shown) == 1
    assert caption.get_visible() is not site and caption.get_in_layout() is not site


def test_kl_per_dimension_figure_sorts_the_bars_and_counts_the_active_units(rng):
    from scratchvae.lecture.vae import VAE
    from scratchvae.tools.latent_plots import plot_kl_per_dimension

    model = VAE(784, hidden=(16,), latent_dim=6, seed=0)
    head = model.encoder_head.params  # switch dimension 2 off: mu_2 = 0 and log sigma_2^2 = 0
    for j in (2, 2 + model.latent_dim):
        head["W"][:, j] = 0.0
        head["b"][j] = 0.0
    fig = plot_kl_per_dimension(model, rng.random((40, 784)))
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert heights == sorted(heights, reverse=True) and heights[-1] == 0.0
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "2"
    assert fig.axes[0].get_title().endswith("of 6 dimensions active")


# --- the Gaussian decoder's sigma -------------------------------------------------


class GaussianDecoder:
    """A Gaussian decoder whose sigma is known: log var = 2 log(s / 256) on the left half of
    every image and 2 log(4 s / 256) on the right, so the right half is 4 times as unsure."""

    likelihood, latent_dim, input_dim, dtype = "gaussian", 3, SIDE * SIDE, np.float64

    def decoder_output(self, z):
        mean = np.full((len(z), self.input_dim), 0.5)
        right = (np.arange(self.input_dim) % SIDE) >= SIDE // 2
        sigma = np.where(right, 4.0, 1.0) / 256  # (D,)
        return np.hstack([mean, np.tile(2 * np.log(sigma), (len(z), 1))])


def test_decoder_sigma_draws_sigma_in_grey_levels():
    from scratchvae.tools.decoder_plots import plot_decoder_sigma

    fig = plot_decoder_sigma(GaussianDecoder(), np.random.default_rng(0), n=3)
    means_ax, sigma_ax, _ = fig.axes
    shown = sigma_ax.get_images()[0].get_array()
    first = np.asarray(shown)[:SIDE, :SIDE]  # the first tile
    assert np.allclose(first[:, : SIDE // 2], 1.0) and np.allclose(first[:, SIDE // 2:], 4.0)
    assert "grey levels" in sigma_ax.get_title()


def test_decoder_sigma_refuses_a_bernoulli_decoder():
    from scratchvae.tools.decoder_plots import plot_decoder_sigma

    with pytest.raises(ValueError, match="model: expected a Gaussian decoder"):
        plot_decoder_sigma(FakeModel(2), np.random.default_rng(0))
