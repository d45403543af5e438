"""The course site builds with warnings as errors, in quick mode, and serves everything itself.

Builds docs/ into a temporary folder with SCRATCHVAE_QUICK=1 (the lessons execute in quick
mode), then checks: every lesson page exists and shows a figure; the derivations' equations
are there; no page loads a script (or anything) from a CDN or another site; every lesson can
be downloaded as .ipynb. Skips without the docs tools (pip install -e ".[docs]") and, since
several lessons train on it, without MNIST in $SCRATCHVAE_DATA.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(p.stem for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

pytest.importorskip("sphinx", reason="the site needs the docs tools: pip install -e '.[docs]'")
pytest.importorskip("myst_nb", reason="the site needs the docs tools: pip install -e '.[docs]'")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not (Path(os.environ.get("SCRATCHVAE_DATA", "")) / "mnist").is_dir():
        pytest.skip("the MNIST lessons need real MNIST: set SCRATCHVAE_DATA to the folder holding mnist/")
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, SCRATCHVAE_QUICK="1", MPLBACKEND="Agg",
               MPLCONFIGDIR=str(out / "mpl"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
                          "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    return out / "html"


def test_every_lesson_has_a_page_with_a_figure(site):
    for lesson in LESSONS:
        page = site / "lessons" / f"{lesson}.html"
        assert page.is_file(), f"no page for {lesson}"
        assert "<img" in page.read_text(encoding="utf-8"), f"{lesson}: no figure on its page"


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
