"""The course site builds with warnings as errors, in quick mode, and serves everything itself.

The ``site`` fixture (tests/conftest.py, one build per session) builds docs/ into a temporary
folder with SCRATCHVAE_QUICK=1 (the lessons execute in quick mode); these tests then check:
every lesson page exists and shows a figure; the derivations' equations are there, numbered
equations outside split and linked one by one; no page loads a script (or anything) from a CDN
or another site; every lesson can be downloaded as .ipynb. Skips without the docs tools
(pip install -e ".[docs]") and, since several lessons train on it, without MNIST in $SCRATCHVAE_DATA.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

pytest.importorskip("sphinx", reason="the site needs the docs tools: pip install -e '.[docs]'")
pytest.importorskip("myst_nb", reason="the site needs the docs tools: pip install -e '.[docs]'")


def test_every_lesson_has_a_page_with_a_figure(site):
    for lesson in LESSONS:
        page = site / "lessons" / f"{lesson}.html"
        assert page.is_file(), f"no page for {lesson}"
        assert "<img" in page.read_text(encoding="utf-8"), f"{lesson}: no figure on its page"


def test_every_figure_a_lesson_draws_has_an_html_caption_and_alt_text(site):
    """Each drawn figure sits in a <figure> with a <figcaption> (MyST-NB's cell metadata), not only
    a caption inside the PNG, and its alt text is written for it, not the file's hash."""
    for lesson in LESSONS:
        html = (site / "lessons" / f"{lesson}.html").read_text(encoding="utf-8")
        drawn = re.findall(r'<img [^>]*src="\.\./_images/[0-9a-f]{64}\.png"[^>]*>', html)
        assert drawn, f"{lesson}: no drawn figure"
        captioned = set()
        for figure in re.findall(r"<figure[^>]*>(.*?)</figure>", html, re.S):
            caption = re.search(r"<figcaption>(.*?)</figcaption>", figure, re.S)
            if caption and re.sub(r"<[^>]+>", "", caption[1]).strip():
                captioned.update(re.findall(r"<img [^>]*>", figure))
        assert set(drawn) <= captioned, f"{lesson}: a figure without a caption: {set(drawn) - captioned}"
        for img in drawn:
            alt = re.search(r'alt="([^"]*)"', img)[1]
            assert len(alt) > 20 and not alt.startswith("A figure drawn in"), f"{lesson}: alt text {alt!r}"


def test_every_lesson_downloads_as_a_notebook(site):
    for lesson in LESSONS:
        assert (site / "_sources" / "lessons" / f"{lesson}.ipynb").is_file(), lesson
        assert f"{lesson}.ipynb" in (site / "lessons" / f"{lesson}.html").read_text("utf-8")


def test_equations_are_rendered_from_the_build(site):
    page = (site / "gaussian.html").read_text(encoding="utf-8")
    assert page.count('class="math') > 10
    assert r"\tag{2}" in page, "the numbered equations keep their tags"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_no_page_loads_anything_from_another_site(site):
    external = re.compile(r'<(?:script|link|img)\b[^>]*(?:src|href)="(?:https?:)?//', re.I)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "https://cdn" not in text, f"{page.relative_to(site)} names a CDN"
        assert not external.search(text), f"{page.relative_to(site)}: {external.search(text)[0]}"


def test_derivation_links_resolve(site):
    lesson = (site / "lessons" / "04_checking_a_gradient.html").read_text(encoding="utf-8")
    assert 'href="../gaussian.html#gaussian-kl-standard-normal"' in lesson
    assert 'id="gaussian-kl-standard-normal"' in (site / "gaussian.html").read_text("utf-8")
    api = (site / "api" / "gaussian.html").read_text(encoding="utf-8")
    assert 'href="../gaussian.html#kl-standard-normal"' in api


def test_a_link_to_an_equation_lands_on_it(site):
    """A link written "[gaussian (14)](gaussian.md#kl-standard-normal)" lands on equation (14), not its section."""
    gaussian = (site / "gaussian.html").read_text(encoding="utf-8")
    equation = re.search(r'id="gaussian-eq-14"(.*?)</div>', gaussian, re.S)
    assert equation and r"\tag{14}" in equation[1], "equation (14) of gaussian has no anchor of its own"
    assert 'class="eqno"' not in equation[1], "Sphinx numbers equation (14) a second time"
    lesson = (site / "lessons" / "04_checking_a_gradient.html").read_text(encoding="utf-8")
    assert re.search(r'href="../gaussian.html#gaussian-eq-14"[^>]*>.*?gaussian \(14\)', lesson, re.S)


def test_no_equation_is_numbered_twice(site):
    """A page's \\tag{n} is the only number an equation shows: Sphinx adds none of its own beside it."""
    for page in site.rglob("*.html"):
        for block in re.findall(r'<div class="amsmath[^"]*"[^>]*>(.*?)</div>', page.read_text(encoding="utf-8"), re.S):
            assert not ("\\tag{" in block and 'class="eqno"' in block), f"{page.name}: {block[:200]}"


def test_no_numbered_equation_is_wrapped_in_split(site):
    """MathJax refuses \\tag inside split, the environment Sphinx wraps a display with \\\\ in."""
    for page in site.glob("*.html"):
        for block in re.findall(r'<div class="math[^"]*"[^>]*>(.*?)</div>', page.read_text("utf-8"), re.S):
            assert not ("split" in block and r"\tag" in block), f"{page.name}: {block[:200]}"


def test_no_escaped_underscore_in_the_maths(site):
    r"""``\text{fan\_in}`` shows its backslash in MathJax: the docstrings write ``\text{fan-in}``."""
    for page in site.rglob("*.html"):
        maths = re.findall(r'class="math[^"]*"[^>]*>(.*?)</(?:span|div)>', page.read_text("utf-8"), re.S)
        assert not [m for m in maths if r"\_" in m], f"{page.relative_to(site)}: \\_ in its maths"


def test_the_explorers_of_two_trained_models_are_in_the_site(site):
    """docs/explorer.md embeds explorer/z2/ and explorer/z20/, which the build trained and exported."""
    page = (site / "explorer.html").read_text(encoding="utf-8")
    assert "Built in quick mode" in page, "a quick build's explorers are barely trained: the page must say so"
    for name, latent_dim in [("z2", 2), ("z20", 20)]:
        assert f'<iframe class="scratchvae-explorer" src="explorer/{name}/index.html"' in page
        files = {f.name: f.stat().st_size for f in (site / "explorer" / name).iterdir()}
        assert set(files) == {"index.html", "explore.js", "data.js"}, files
        assert sum(files.values()) < 5e6, f"explorer/{name} is {sum(files.values()) / 1e6:.1f} MB"
        data = (site / "explorer" / name / "data.js").read_text(encoding="utf-8")
        assert f'"latent_dim":{latent_dim},' in data
