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

from scratchvae.tools.plots import (
    PAD,
    equal_probability_grid,
    inverse_normal_cdf,
    plot_interpolation,
    plot_latent_manifold,
    plot_latent_scatter,
    plot_reconstructions,
    plot_samples,
    plot_training_curves,
    principal_components,
    save_figure,
)

SIDE = 28


class FakeModel:
    """Linear encoder, linear-then-sigmoid decoder: just enough of a VAE."""

    def __init__(self, latent_dim, input_dim=SIDE * SIDE, seed=0):
        rng = np.random.default_rng(seed)
        self.latent_dim, self.input_dim = latent_dim, input_dim
        self.W_enc = rng.normal(size=(input_dim, latent_dim)) / math.sqrt(input_dim)
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
    assert 100 <= height <= 1500 and 250 <= width <= 1500, pixels.shape
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


# --- principal components ----------------------------------------------------


def test_pca_of_an_axis_aligned_2d_cloud_is_the_identity_up_to_sign(rng):
    # Reflecting a cloud in both axes makes its covariance exactly diagonal;
    # stretching x by 3 makes x the first component. PCA then only centres.
    a = rng.standard_normal((100, 2)) * [3.0, 1.0]  # (100, 2)
    points = np.concatenate([a, a * [-1, 1], a * [1, -1], -a]) + [2.0, -1.0]  # (400, 2)
    projected, explained = principal_components(points)
    centred = points - [2.0, -1.0]
    signs = np.sign(projected[0] / centred[0])
    np.testing.assert_allclose(projected, centred * signs, atol=1e-12)
    assert explained[0] > explained[1] and explained.sum() == pytest.approx(1.0)


def test_pca_keeps_distances_of_points_that_lie_in_a_plane(rng):
    # Points on a 2-D plane inside 5-D space: projecting on two components loses nothing.
    basis, _ = np.linalg.qr(rng.standard_normal((5, 2)))  # (5, 2), orthonormal columns
    points = rng.standard_normal((40, 2)) @ basis.T + rng.standard_normal(5)  # (40, 5)
    projected, explained = principal_components(points)
    distances = lambda a: np.linalg.norm(a[:, None] - a[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(distances(projected), distances(points), atol=1e-10)
    assert explained.sum() == pytest.approx(1.0)
    # The sign convention: each direction's largest loading is positive, so the
    # same cloud shifted gives the same picture.
    np.testing.assert_allclose(principal_components(points + 7.0)[0], projected, atol=1e-10)


def test_pca_of_identical_points_is_zero_not_nan():
    projected, explained = principal_components(np.ones((4, 3)))
    assert np.all(projected == 0) and np.all(explained == 0)


# --- figures of images -------------------------------------------------------


def test_reconstructions_show_originals_above_reconstructions(images, tmp_path):
    x, _ = images
    model = FakeModel(latent_dim=2)
    fig = plot_reconstructions(model, x, n=6)
    top, bottom = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["original", "reconstruction"]
    for j in range(6):
        np.testing.assert_allclose(tile(mosaic_of(top), 0, j), x[j].reshape(SIDE, SIDE))
        np.testing.assert_allclose(
            tile(mosaic_of(bottom), 0, j), model.reconstruct(x[j : j + 1]).reshape(SIDE, SIDE)
        )
    assert_saves_a_real_picture(fig, tmp_path / "reconstructions.png")


def test_samples_fill_a_square_grid_and_follow_the_rng(tmp_path):
    model = FakeModel(latent_dim=5)
    fig = plot_samples(model, np.random.default_rng(7), n=10)
    assert len(fig.axes) == 1
    mosaic = mosaic_of(fig.axes[0])
    # ceil(sqrt(10)) = 4 columns, 3 rows; the two unused tiles stay plain grey.
    assert mosaic.shape == (3 * (SIDE + PAD) - PAD, 4 * (SIDE + PAD) - PAD)
    assert np.ptp(tile(mosaic, 2, 3)) == 0 and np.ptp(tile(mosaic, 2, 1)) > 0
    again = mosaic_of(plot_samples(model, np.random.default_rng(7), n=10).axes[0])
    np.testing.assert_array_equal(mosaic, again)
    assert_saves_a_real_picture(plot_samples(model, np.random.default_rng(7)), tmp_path / "s.png")


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
    assert ax.get_xlabel().startswith("$z_1$")
    assert [t.get_text() for t in bar.get_yticklabels()] == [str(d) for d in range(10)]
    assert_saves_a_real_picture(fig, tmp_path / "scatter2.png")


def test_scatter_of_a_larger_latent_plots_principal_components(images, tmp_path):
    x, y = images
    model = FakeModel(latent_dim=5)
    fig = plot_latent_scatter(model, x, y)
    ax = fig.axes[0]
    projected, _ = principal_components(model.encode(x)[0])
    np.testing.assert_allclose(ax.collections[0].get_offsets(), projected)
    assert "principal component 1" in ax.get_xlabel()
    assert "principal component 2" in ax.get_ylabel()
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
    assert "6.2 s" in fig.get_suptitle()
    assert_saves_a_real_picture(fig, tmp_path / "curves.png")


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
        (lambda: principal_components(np.ones((1, 3))), "k: expected at most"),
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
