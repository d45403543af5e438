"""The browser explorer (``scratchvae explore``): the export, and the page's numbers against NumPy's.

The browser tests (marked ``browser``) drive the system's Chromium with Playwright, the page
opened from ``file://`` with every request but the page's own files aborted and counted; they
skip, saying why, when no Chromium (or Playwright) is found.
"""

import base64
import html
import json
import os
import shutil
import webbrowser

import numpy as np
import pytest

from scratchvae.lecture.collapse import kl_per_dimension
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.vae import VAE
from scratchvae.tools.checkpoints import save_model
from scratchvae.tools.cli import build_parser, main
from scratchvae.tools.data import load_mnist
from scratchvae.tools.explore import MAP_IMAGES, explore, page_data, page_html, write_page
from scratchvae.tools.train import fit

MAP_TEST_IMAGES = 300  # test images on the map of the pages made here (the command's default is MAP_IMAGES)
CHECKED = 100  # random codes, and test images, whose decoding and encoding are compared
# The page sums in float64. Against the package's float32 model: relative, or absolute for the
# probabilities below SMALL, and for the codes and Gaussian means (linear outputs) below CODE_SMALL:
# near 0 the float32 rounding of a sum of 784 or 400 terms, about 1e-7, is more than 1e-5 of the value.
RTOL, ATOL_SMALL, SMALL, CODE_SMALL = 1e-5, 1e-6, 1e-3, 0.1
# Against the same float32 weights evaluated in float64: only the order of the sums differs.
RTOL_FLOAT64, ATOL_FLOAT64 = 1e-12, 1e-13


@pytest.fixture(scope="module")
def mnist(mnist_root):
    return load_mnist(data_dir=mnist_root, download=False)


@pytest.fixture(scope="module")
def trained(mnist):
    """The standard architecture (784-400-20), trained for a few steps on 2000 images: seconds."""
    model = VAE(784, hidden=(400,), latent_dim=20, seed=0)
    fit(model, mnist.x_train[:2000], epochs=1, batch_size=100,
        optimizer=make_optimizer("adam", model, 1e-3), binarize="fixed", progress=False,
        log=lambda line: None)
    return model


def map_images(mnist):
    return mnist.x_test[:MAP_TEST_IMAGES], mnist.y_test[:MAP_TEST_IMAGES]


# --- the export, without a browser ---------------------------------------------------------


def test_page_data_holds_the_weights_in_float32_and_the_map(trained, mnist):
    x, y = map_images(mnist)
    data = page_data(trained, x, y)
    head = data["layers"]["decoder_head"][0]
    W = np.frombuffer(base64.b64decode(head["W"]), "<f4").reshape(head["in"], head["out"])
    assert np.array_equal(W, trained.params["decoder_head.W"])
    assert [layer["in"] for layer in data["layers"]["encoder"]] == [784]
    mu, log_var = trained.encode(x)
    means = np.frombuffer(base64.b64decode(data["map"]["mu"]), "<f4").reshape(len(x), 20)
    np.testing.assert_array_equal(means, mu)
    np.testing.assert_allclose(data["map"]["kl"], kl_per_dimension(mu, log_var))
    assert data["map"]["labels"] == "".join(map(str, y))
    assert data["map"]["sprite"].startswith("data:image/png;base64,")


def test_page_data_refuses_images_that_are_not_28_by_28():
    with pytest.raises(ValueError, match=r"model.input_dim: .* expected 784, got 16"):
        page_data(VAE(16, hidden=(8,), latent_dim=2), np.zeros((3, 16)), [0, 1, 2])


def test_the_page_loads_nothing_from_another_host(trained, mnist, tmp_path):
    index = write_page(page_data(trained, *map_images(mnist)), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.js", "explore.js", "index.html"]
    for name in ("index.html", "explore.js"):
        text = (tmp_path / name).read_text()
        assert "://" not in text and "fetch(" not in text and "import " not in text, name
    assert '<script src="data.js"></script>' in index.read_text()


def test_the_standard_page_with_the_default_map_is_within_5_mb(trained, mnist, tmp_path):
    write_page(page_data(trained, mnist.x_test[:MAP_IMAGES], mnist.y_test[:MAP_IMAGES]), tmp_path)
    size = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert 2.6e6 < size < 5e6  # the weights alone are 2.6 MB of float32


def test_explore_shows_the_whole_page_inline_in_a_notebook(trained, mnist):
    shown = explore(trained, *map_images(mnist))
    assert shown.data.startswith('<div><iframe srcdoc="')
    document = html.unescape(shown.data.split('"')[1])
    assert "window.SCRATCHVAE_DATA = " in document and "window.scratchvae = " in document
    assert "<script src=" not in document


# --- the command ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_folder(trained, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore") / "run"
    folder.mkdir()
    save_model(trained, folder / "model.npz")
    return folder


def test_the_command_writes_the_page_beside_the_model_and_opens_it(run_folder, mnist_root, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    code = main(["explore", str(run_folder), "--images", "50", "--data-dir", str(mnist_root),
                 "--no-download", "--open"])
    assert code == 0
    assert opened == [(run_folder / "explore" / "index.html").resolve().as_uri()]
    assert "with 50 test images" in capsys.readouterr().out
    data = json.loads((run_folder / "explore" / "data.js").read_text().split("=", 1)[1].rstrip(";\n"))
    assert data["map"]["count"] == 50


@pytest.mark.parametrize("argument, message", [
    ("missing", "no such file or folder"),
    ("empty", "a folder without model.npz or checkpoint.npz"),
    ("not_a_model.npz", "cannot be read as a scratchvae checkpoint"),
])
def test_the_command_explains_a_bad_model_argument(tmp_path, capsys, argument, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "not_a_model.npz").write_text("hello")
    assert main(["explore", str(tmp_path / argument), "--out", str(tmp_path / "page")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchvae explore: error: ") and message in err and "Traceback" not in err


def test_the_command_maps_as_many_images_as_the_library_by_default():
    assert build_parser().parse_args(["explore", "run"]).images == MAP_IMAGES


def test_the_command_refuses_a_zero_image_map(run_folder, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["explore", str(run_folder), "--images", "0"])
    assert stop.value.code == 2
    assert "--images: expected an integer >= 1, got 0" in capsys.readouterr().err


# --- in the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """The system's Chromium under Playwright, or a skip saying what is missing (a failure in CI).

    Found as tests/test_browser.py finds it: ``$SCRATCHVAE_CHROMIUM``, else ``chromium`` or
    ``chromium-browser`` on PATH; .ci/run sets SCRATCHVAE_REQUIRE_BROWSER=1.
    """
    miss = pytest.fail if os.environ.get("SCRATCHVAE_REQUIRE_BROWSER") == "1" else pytest.skip
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        miss("the browser tests need Playwright for Python: pip install -e '.[test]'")
    chromium = (os.environ.get("SCRATCHVAE_CHROMIUM") or shutil.which("chromium")
                or shutil.which("chromium-browser"))
    if not chromium:
        miss("the browser tests need Chromium: apt-get install chromium, or set $SCRATCHVAE_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


class Page:
    """The exported page open in Chromium from file://, every other request aborted and counted."""

    def __init__(self, browser, index):
        self.context = browser.new_context(offline=True, viewport={"width": 1100, "height": 900})
        self.page = self.context.new_page()
        self.errors, self.foreign = [], []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.errors.append(m.text))
        self.page.on("pageerror", lambda err: self.errors.append(str(err)))
        self.page.route("**/*", self._route)
        self.page.goto(index.resolve().as_uri())
        self.page.wait_for_function("window.scratchvae !== undefined")

    def _route(self, route):
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def __call__(self, script, arg=None):
        return self.page.evaluate(script, arg)

    def image(self, selector):
        return self(f"document.querySelector('{selector}').toDataURL()")

    def close(self):
        self.context.close()
        assert self.foreign == [], "the page tried to reach the network"
        assert self.errors == [], "the page wrote errors to the console"


@pytest.fixture(scope="module")
def page(browser, trained, mnist, tmp_path_factory):
    opened = Page(browser, write_page(page_data(trained, *map_images(mnist)), tmp_path_factory.mktemp("page")))
    yield opened
    opened.close()


def assert_agree(got, expected, what, small=SMALL):
    """``got`` (the page's) equals ``expected`` (NumPy's float32) to RTOL, or to ATOL_SMALL below ``small``."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    assert got.shape == expected.shape, what
    error = np.abs(got - expected)
    bad = np.where(np.abs(expected) < small, error > ATOL_SMALL, error > RTOL * np.abs(expected))
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} values differ, the worst by "
                           f"{error.max():.3g} (at {expected.ravel()[error.argmax()]:.6g})")


def in_float64(model):
    """The same model, its float32 weights evaluated in float64."""
    copy = VAE(**{**model.config, "hidden": tuple(model.config["hidden"]), "dtype": np.float64})
    copy.load_state_dict(model.state_dict())
    return copy


def check_model_functions(page, model, x):
    """decode and encode in the page against the model's, on CHECKED random codes and the images x."""
    z = np.random.default_rng(0).standard_normal((CHECKED, model.latent_dim)).astype(np.float32)
    decoded = page("z => window.scratchvae.decode(z)", z.tolist())
    mu, log_var = page("x => window.scratchvae.encode(x)", x.tolist())
    expected_mu, expected_log_var = model.encode(x)
    # Bernoulli: probabilities; Gaussian: the mean, a linear output like the codes
    assert_agree(decoded, model.decode(z), "decode", small=SMALL if model.likelihood == "bernoulli" else CODE_SMALL)
    assert_agree(mu, expected_mu, "encode's mu", small=CODE_SMALL)
    assert_agree(log_var, expected_log_var, "encode's log_var", small=CODE_SMALL)
    exact = in_float64(model)
    for got, expected in ((decoded, exact.decode(z)), (mu, exact.encode(x)[0]), (log_var, exact.encode(x)[1])):
        np.testing.assert_allclose(got, expected, rtol=RTOL_FLOAT64, atol=ATOL_FLOAT64)


@pytest.mark.browser
def test_decode_and_encode_agree_with_the_package(page, trained, mnist):
    check_model_functions(page, trained, mnist.x_test[-CHECKED:])


@pytest.mark.browser
@pytest.mark.parametrize("settings", [
    {"hidden": (64, 32), "latent_dim": 2, "activation": "tanh", "likelihood": "gaussian"},
    {"hidden": (48,), "latent_dim": 1, "activation": "leaky_relu"},
    {"hidden": (32, 32, 16), "latent_dim": 5, "activation": "softplus"},
    {"hidden": (40,), "latent_dim": 3, "activation": "sigmoid", "likelihood": "gaussian"},
], ids=lambda s: f"{'-'.join(map(str, s['hidden']))}-{s['latent_dim']}-{s['activation']}")
def test_any_model_the_package_trains_runs_in_the_page(browser, mnist, tmp_path, settings):
    model = VAE(784, seed=1, **settings)
    x, y = mnist.x_test[:60], mnist.y_test[:60]
    opened = Page(browser, write_page(page_data(model, x, y), tmp_path))
    check_model_functions(opened, model, x)
    opened.close()


@pytest.mark.browser
def test_the_notebook_document_runs_on_its_own(browser, trained, mnist, tmp_path):
    single = tmp_path / "single.html"
    single.write_text(page_html(page_data(trained, *map_images(mnist))))
    opened = Page(browser, single)
    check_model_functions(opened, trained, mnist.x_test[:10])
    opened.close()


@pytest.mark.browser
def test_the_numbers_on_the_page_agree_with_the_package(page, trained, mnist):
    x = mnist.x_test[:1]
    mu, log_var = trained.encode(x)
    kl = 0.5 * np.sum(np.expm1(log_var.astype(np.float64)) - log_var + mu.astype(np.float64) ** 2)
    assert page("a => window.scratchvae.kl(a[0], a[1])", [mu[0].tolist(), log_var[0].tolist()]) == \
        pytest.approx(kl, rel=1e-6)
    z = mu[0].astype(np.float64)
    assert page("z => window.scratchvae.logPrior(z)", z.tolist()) == \
        pytest.approx(-0.5 * np.sum(z**2 + np.log(2 * np.pi)), rel=1e-12)
    loss, cache = trained.negative_elbo_forward(x, np.zeros_like(mu))  # z = mu: eps = 0
    assert page("a => window.scratchvae.logLikelihood(a[0], a[1])", [x[0].tolist(), mu[0].tolist()]) == \
        pytest.approx(float(cache.reconstruction[0]), rel=1e-5)


@pytest.mark.browser
def test_dragging_on_the_map_changes_the_image(page):
    page.page.locator("#map").scroll_into_view_if_needed()
    box = page.page.locator("#map").bounding_box()
    before, code = page.image("#decoded"), page("window.scratchvae.code()")
    page.page.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"])
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
    page.page.mouse.up()
    page.page.wait_for_timeout(100)  # the image is redrawn on the next animation frame
    moved = page("window.scratchvae.code()")
    assert moved != code
    assert page.image("#decoded") != before


@pytest.mark.browser
def test_a_drawn_stroke_moves_the_posterior(page, trained):
    canvas = page.page.locator("#draw")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    point = lambda u, v: (box["x"] + u * box["width"], box["y"] + v * box["height"])  # noqa: E731
    page.page.mouse.move(*point(0.5, 0.2))
    page.page.mouse.down()
    page.page.mouse.move(*point(0.5, 0.8), steps=10)
    page.page.mouse.up()
    page.page.wait_for_timeout(100)
    first = page("window.scratchvae.drawing()")
    assert first is not None
    assert len(first[0]) == len(first[1]) == trained.latent_dim
    page.page.mouse.move(*point(0.2, 0.5))
    page.page.mouse.down()
    page.page.mouse.move(*point(0.8, 0.5), steps=10)
    page.page.mouse.up()
    page.page.wait_for_timeout(100)
    second = page("window.scratchvae.drawing()")
    assert not np.allclose(first[0], second[0])  # mu moved
    assert page("window.scratchvae.code()") == pytest.approx(second[0])  # and the code follows it
    assert "KL(q(z|x) ‖ p(z)) = " in page.page.locator("#elbo").inner_text()


def take_screenshot(index, shot, width=1100):
    """The README's picture of the page ``index``: a 7 drawn, a spherical walk between two test images.

    Run as ``python tests/test_explore.py EXPLORE_DIR SHOT.png`` on a page ``scratchvae explore``
    wrote; the page opens from file:// with every other request aborted, as in the tests.
    """
    from playwright.sync_api import sync_playwright

    chromium = (os.environ.get("SCRATCHVAE_CHROMIUM") or shutil.which("chromium")
                or shutil.which("chromium-browser"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = Page(browser, index)
        page.page.set_viewport_size({"width": width, "height": 900})
        canvas = page.page.locator("#draw")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        stroke = [(0.25, 0.25), (0.75, 0.25), (0.45, 0.85)]  # a 7: the bar, then the stem
        page.page.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        page.page.mouse.down()
        for u, v in stroke[1:]:
            page.page.mouse.move(box["x"] + u * box["width"], box["y"] + v * box["height"], steps=15)
        page.page.mouse.up()
        page.page.locator("#random-pair").click()
        page.page.locator('input[name="path"][value="spherical"]').check()
        page.page.wait_for_timeout(300)
        page.page.screenshot(path=str(shot), full_page=True)
        page.close()
        browser.close()


if __name__ == "__main__":
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Screenshot an exported explorer page, as in the README.")
    parser.add_argument("page", type=Path, help="the folder scratchvae explore wrote (holding index.html)")
    parser.add_argument("shot", type=Path, help="the PNG to write, e.g. docs/images/explorer.png")
    args = parser.parse_args()
    if not (args.page / "index.html").is_file():
        parser.error(f"page: expected a folder holding index.html, got {args.page}")
    take_screenshot(args.page / "index.html", args.shot)
