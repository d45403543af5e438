"""The course site in a real browser: every equation renders, nothing is clipped, a phone does not scroll sideways.

A ``-W`` build cannot see what a reader sees: an equation MathJax refuses ("\\tag not allowed in
split"), an equation the theme's CSS cuts off at the left, a page wider than a phone. These tests
serve the built site (one build per test session, shared with tests/test_site.py) from 127.0.0.1,
block every other host, and open each page in headless Chromium at 1280 px and at 390 px.
They also count the search boxes (one a page), search the site offline, and run the two
explorers (``scratchvae explore``) that docs/explorer.md embeds.

They drive the system's Chromium (Debian's ``chromium`` package, or ``$SCRATCHVAE_CHROMIUM``) with
Playwright for Python; no browser is downloaded. Without either they skip, saying which is missing.

The same inspection runs from the command line and prints the counts quoted in the docs::

    python tests/test_browser.py docs/_build/html [--shots DIR]
"""

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]

WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}

# Run in each page once MathJax has typeset it. An equation is clipped when part of it lies
# outside a box that hides overflow, or beyond what a scrolling box can scroll to.
_INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const images = await Promise.all([...document.images].map(img => {
    img.loading = "eager";
    return img.decode().then(() => null, () => img.getAttribute("src"));
  }));
  const describe = el => (el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                          + " " + (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60));
  const clipped = [];
  for (const mjx of document.querySelectorAll('mjx-container[display="true"]')) {
    const range = document.createRange();
    range.selectNodeContents(mjx.querySelector("mjx-math") || mjx);  // not the hidden MathML copy
    let c = range.getBoundingClientRect();
    for (let box = mjx; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      if (style.overflowX === "visible") continue;
      const r = box.getBoundingClientRect();
      const scrolls = style.overflowX === "auto" || style.overflowX === "scroll";
      if (scrolls ? c.width > box.scrollWidth + 1 : c.left < r.left - 1 || c.right > r.right + 1) {
        clipped.push(describe(mjx.closest("div.math") || mjx));
        break;
      }
      c = r;  // what shows of the equation from here up is this box
    }
  }
  // Elements reaching past the right edge of the window that no box of their own scrolls or clips.
  const wide = [];
  const root = document.documentElement;
  if (root.scrollWidth > innerWidth + 1 || getComputedStyle(document.body).overflowX !== "visible") {
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= innerWidth + 1) continue;
      if (getComputedStyle(el).visibility === "hidden") continue;
      let contained = false;
      for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        const s = getComputedStyle(a);
        if (s.overflowX !== "visible" || s.position === "fixed") { contained = true; break; }
      }
      if (!contained && ![...el.children].some(ch => ch.getBoundingClientRect().right > innerWidth + 1)) {
        wide.push(Math.round(r.right) + "px: " + describe(el));
      }
    }
  }
  return {
    mathErrors: [...document.querySelectorAll("mjx-merror")]
                .map(e => e.getAttribute("data-mjx-error") || e.textContent),
    clipped: clipped,
    width: root.scrollWidth,
    wide: wide.slice(0, 5),
    brokenImages: images.filter(src => src !== null),
    // the site-wide search boxes in sight (a desktop's in the sidebar, a phone's in the header), not
    // the search page's own form; null on a page that is not the theme's (an explorer)
    searchBoxes: document.querySelector(".bd-sidebar-primary") === null ? null
      : [...document.querySelectorAll('input[type="search"], input[name="q"], .search-button__button')]
        .filter(el => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden"
                      && !el.closest(".bd-search-container, dialog")).length,
    // no alt text, or only a file name or a hash ("../_images/3f2a9c0e5b7d1a46.png"); the module
    // index's +/- toggles (alt "-") aside
    noAlt: [...document.images].filter(img => img.getClientRects().length > 0 && !img.classList.contains("toggler"))
                               .filter(img => !/[a-z]{3}/i.test(img.alt) || /[0-9a-f]{16}|\\.(png|svg)$/i.test(img.alt))
                               .map(img => img.getAttribute("src")),
  };
}"""


def find_chromium():
    """The system's Chromium: ``$SCRATCHVAE_CHROMIUM``, else ``chromium`` (Debian) or ``chromium-browser`` on PATH."""
    named = os.environ.get("SCRATCHVAE_CHROMIUM")
    return named or shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def serve(folder):
    """Serve ``folder`` over HTTP on 127.0.0.1 (an ephemeral port); yields the base URL."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    httpd.daemon_threads = True
    httpd.handle_error = lambda request, address: None  # a page left before its last file was sent
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def offline_page(width="desktop"):
    """A page in headless Chromium at ``WIDTHS[width]`` that may reach 127.0.0.1 only.

    Yields ``(page, external, console)``: the Playwright page, the list of the requests made to
    other hosts (blocked), and the list of its console errors and uncaught exceptions.
    """
    from playwright.sync_api import sync_playwright

    external, console = [], []

    def route(request_route):
        if urlsplit(request_route.request.url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            external.append(request_route.request.url)
            request_route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        w, h = WIDTHS[width]
        context = browser.new_context(viewport={"width": w, "height": h})
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and console.append(m.text))
        page.on("pageerror", lambda e: console.append(str(e)))
        try:
            yield page, external, console
        finally:
            browser.close()


def inspect_site(html, pages=None, shots=None):
    """Open every page of the built site ``html`` at each of WIDTHS; return the defects found.

    Returns ``(report, external)``: ``report[(page, width)]`` is a dict of the page's defects
    (keys as in _INSPECT, plus ``console``), ``external`` the requests made to other hosts
    (blocked). ``shots`` (a folder) saves a full-page screenshot of each page in ``pages``.
    """
    html = Path(html)
    pages = pages or sorted(str(p.relative_to(html)) for p in html.rglob("*.html")
                            if "_static" not in p.parts and "_sources" not in p.parts)
    external, report = [], {}
    with serve(html) as base:
        for width in WIDTHS:
            with offline_page(width) as (page, blocked, console):
                for name in pages:
                    console.clear()
                    page.goto(base + name, wait_until="load")
                    found = page.evaluate(_INSPECT)
                    found["console"] = list(console)
                    report[(name, width)] = found
                    if shots is not None:
                        Path(shots).mkdir(parents=True, exist_ok=True)
                        stem = name.replace("/", "_").removesuffix(".html")
                        page.screenshot(path=str(Path(shots) / f"{stem}-{WIDTHS[width][0]}.png"), full_page=True)
            external += blocked
    return report, external


def summary(report, external):
    """The counts, one line each, and the pages behind each count."""
    lines = []
    for key, title in [("mathErrors", "MathJax errors"), ("clipped", "clipped equations"),
                       ("brokenImages", "images that fail to load"), ("noAlt", "images without alt text"),
                       ("console", "console errors")]:
        for width in WIDTHS:
            hits = {page: found[key] for (page, w), found in report.items() if w == width and found[key]}
            lines.append(f"{title} at {width} {WIDTHS[width][0]} px: {sum(map(len, hits.values()))}"
                         + "".join(f"\n    {page}: {items[:3]}" for page, items in sorted(hits.items())))
    wide = {page: found for (page, w), found in report.items() if w == "phone" and found["wide"]}
    lines.append(f"pages wider than {WIDTHS['phone'][0]} px: {len(wide)}"
                 + "".join(f"\n    {page} ({f['width']} px): {f['wide'][:2]}" for page, f in sorted(wide.items())))
    boxes = {key: f["searchBoxes"] for key, f in report.items() if f["searchBoxes"] not in (None, 1)}
    lines.append(f"pages without exactly one search box: {len(boxes)}"
                 + "".join(f"\n    {page} at {w}: {n}" for (page, w), n in sorted(boxes.items())))
    lines.append(f"requests to other hosts: {len(external)}" + "".join(f"\n    {u}" for u in external[:5]))
    return "\n".join(lines)


# --- the tests ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_ready():
    # CI (.ci/run) sets SCRATCHVAE_REQUIRE_BROWSER=1: there a missing browser fails instead of skipping.
    miss = pytest.fail if os.environ.get("SCRATCHVAE_REQUIRE_BROWSER") == "1" else pytest.skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        miss("the browser tests need Playwright for Python: pip install -e '.[test]'")
    if not find_chromium():
        miss("the browser tests need Chromium: apt-get install chromium, or set $SCRATCHVAE_CHROMIUM")


@pytest.fixture(scope="module")
def seen(browser_ready, site):
    return inspect_site(site)


@pytest.mark.parametrize("key", ["mathErrors", "clipped", "brokenImages", "noAlt", "console"])
def test_every_page_in_the_browser(seen, key):
    report, _ = seen
    found = {f"{page} at {w}": f[key] for (page, w), f in report.items() if f[key]}
    assert not found, f"{key} on {len(found)} page(s): {found}"


def test_no_page_is_wider_than_a_phone(seen):
    report, _ = seen
    wide = {page: (f["width"], f["wide"]) for (page, w), f in report.items() if w == "phone" and f["wide"]}
    assert not wide, f"{len(wide)} page(s) wider than {WIDTHS['phone'][0]} px: {wide}"


def test_one_search_box_on_every_page(seen):
    report, _ = seen
    counts = {(page, w): f["searchBoxes"] for (page, w), f in report.items() if f["searchBoxes"] is not None}
    assert len(counts) > 20, "the theme's pages were not inspected"
    assert {key: n for key, n in counts.items() if n != 1} == {}, "pages without exactly one search box"


def test_the_search_box_finds_pages_offline(browser_ready, site):
    with serve(site) as base, offline_page() as (page, external, console):
        page.goto(base + "index.html")
        page.locator(".search-button__button:visible").click()
        page.keyboard.type("reparameterisation")
        page.keyboard.press("Enter")
        page.wait_for_url("**/search.html?q=reparameterisation*")
        page.wait_for_selector("#search-results li", timeout=20000)
        assert page.locator("#search-results li").count() > 3
    assert external == [] and console == []


@pytest.mark.parametrize("name, latent_dim", [("z2", 2), ("z20", 20)])
def test_the_explorers_run_inside_their_page(browser_ready, site, name, latent_dim):
    """docs/explorer.md embeds the explorer of the models the build trained, and each runs in its frame."""
    with serve(site) as base, offline_page() as (page, external, console):
        page.goto(base + "explorer.html")
        embedded = page.locator(f'iframe[src="explorer/{name}/index.html"]')
        embedded.scroll_into_view_if_needed()  # the frames load lazily
        frame = embedded.element_handle().content_frame()
        frame.wait_for_function("window.scratchvae !== undefined", timeout=30000)
        assert f"784-400-{latent_dim}," in frame.locator("#about").inner_text()
        codes = [[0.0] * latent_dim, [2.0] * latent_dim]
        images = frame.evaluate("codes => window.scratchvae.decode(codes)", codes)
        mu, log_var = frame.evaluate("x => window.scratchvae.encode(x)", [images[0]])
    assert [len(image) for image in images] == [784, 784] and images[0] != images[1]
    assert all(0 < p < 1 for p in images[0])
    assert len(mu[0]) == len(log_var[0]) == latent_dim
    assert external == [] and console == []


def test_no_request_leaves_the_machine(seen):
    _, external = seen
    assert not external, f"requests to other hosts: {external[:10]}"


# The tests above must be able to fail: a one-page site, built with the theme as it comes, with
# a \tag inside split (what Sphinx makes of a numbered cases block) and an equation wider than a
# column. With docs/_static/scratchvae.css added, the same equation scrolls instead.
_DEFECTS = r"""# Two defects

$$|x| = \begin{cases} x & x \ge 0 \\ -x & x < 0 \end{cases} \tag{1}$$

$$%s \tag{2}$$
""" % " + ".join(f"x_{{{i}}} y_{{{i}}}" for i in range(40))


def build_one_page(folder, css=None):
    """Build a one-page site (the theme, MyST, offline MathJax) holding _DEFECTS; return its html folder."""
    (folder / "index.md").write_text(_DEFECTS, encoding="utf-8")
    conf = ['extensions = ["myst_parser", "sphinx.ext.mathjax", "sphinx-mathjax-offline"]',
            'myst_enable_extensions = ["dollarmath", "amsmath"]', 'html_theme = "sphinx_book_theme"']
    if css:
        (folder / "_static").mkdir()
        shutil.copy(css, folder / "_static")
        conf += ['html_static_path = ["_static"]', f'html_css_files = ["{Path(css).name}"]']
    (folder / "conf.py").write_text("\n".join(conf) + "\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(folder), str(folder / "html")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return folder / "html"


@pytest.fixture(scope="module")
def defects_seen(browser_ready, tmp_path_factory):
    pytest.importorskip("myst_parser", reason="the one-page sites need the docs tools: pip install -e '.[docs]'")
    as_it_comes = build_one_page(tmp_path_factory.mktemp("theme"))
    with_ours = build_one_page(tmp_path_factory.mktemp("ours"), css=ROOT / "docs" / "_static" / "scratchvae.css")
    return inspect_site(as_it_comes, ["index.html"])[0], inspect_site(with_ours, ["index.html"])[0]


@pytest.mark.parametrize("width", WIDTHS)
def test_a_tag_inside_split_is_caught(defects_seen, width):
    as_it_comes, _ = defects_seen
    assert as_it_comes[("index.html", width)]["mathErrors"] == [r"\tag not allowed in split environment"]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_themes_clipping_css_is_caught_and_ours_scrolls(defects_seen, width):
    as_it_comes, with_ours = defects_seen
    assert len(as_it_comes[("index.html", width)]["clipped"]) == 1
    assert with_ours[("index.html", width)]["clipped"] == []


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Inspect a built course site in headless Chromium.")
    parser.add_argument("html", type=Path, help="the built site, e.g. docs/_build/html")
    parser.add_argument("--shots", type=Path, help="save full-page screenshots of --pages here")
    parser.add_argument("--pages", nargs="*", help="pages to open (default: every page)")
    args = parser.parse_args()
    if not (args.html / "index.html").is_file():
        parser.error(f"html: expected a built site (a folder with index.html), got {args.html}")
    print(summary(*inspect_site(args.html, args.pages, args.shots)))
    sys.exit(0)
