"""Sphinx configuration of the course site: the derivations, the lessons and the API.

Build:  pip install -e ".[docs]"
        sphinx-build -W --keep-going -b html docs docs/_build/html
With SCRATCHVAE_QUICK=1 the lessons execute in quick mode (seconds); without it they run in
full and are cached (docs/_build/.jupyter_cache).
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util import logging

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
logger = logging.getLogger(__name__)

project = "scratchvae"
author = "the scratchvae authors"
copyright = "the scratchvae authors"

extensions = [
    "myst_nb",  # Markdown (MyST) pages and notebooks, executed at build time
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the lecture's docstrings are numpydoc-style
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # serves MathJax from _static: no CDN
]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = "scratchvae: a VAE from scratch"
html_theme_options = {
    "use_download_button": True,  # each lesson downloadable as .ipynb
    "show_toc_level": 2,
    # One search box, the sidebar's (Sphinx's own index, offline; Ctrl+K opens it too). Unset, the
    # PyData theme under this one adds a header bar holding a second.
    "navbar_persistent": [],
}
html_context = {"default_mode": "auto"}  # light or dark as the reader's system; unset, the theme logs an error

# --- MyST: the pages write $...$, $$ ... \tag{n} $$ and <a id="..."></a> anchors ---------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
mathjax3_config = {"tex": {"tags": "none"}}  # the pages number with \tag{n} themselves

# --- What the theme does not do for a reader on a phone ------------------------------------
# scratchvae.css: wide equations scroll in their own box (the theme's clips them), inline code
# and long names wrap, figures fit the column. enlarge.js: a figure opens full size when tapped.
# search-snippets.js: no raw TeX in search results.
html_static_path = ["_static"]
html_css_files = ["scratchvae.css"]
html_js_files = ["enlarge.js", "search-snippets.js"]

# --- Notebooks: the lessons -------------------------------------------------------------
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
# Each lesson figure's caption is HTML on its page (the cell's mystnb metadata): the kernels that
# execute the lessons inherit this, and scratchvae.tools.plots.show (its HTML_CAPTIONS) then
# leaves out the small grey caption the tools draw into the PNG, which would say it twice.
os.environ["SCRATCHVAE_HTML_CAPTIONS"] = "1"
ANSWER = "answer"  # the tag of a lesson's answer cells (scratchvae.classroom.edition); they carry hide-cell
nb_code_prompt_show = "Show the answer"  # the button over a collapsed (hide-cell) cell: only answers are
nb_code_prompt_hide = "Hide the answer"
# Where the published site lives (e.g. https://example.org/scratchvae/): the downloaded lessons link
# its pages. Unset, they link the repository's docs/ as seen from tutorials/, the lessons' folder.
html_baseurl = os.environ.get("SCRATCHVAE_SITE_URL", "")
nb_execution_mode = "force" if QUICK else "cache"
nb_execution_timeout = 1800
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True
nb_merge_streams = True  # a cell's printed lines in one box (fit prints one line per epoch), not a box per line

# --- API pages --------------------------------------------------------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"


def _write_lessons():
    """tutorials/NN_name.py (percent scripts) -> docs/lessons/NN_name.ipynb.

    The lessons link the derivations as ../docs/<page>.md#<anchor> (right from tutorials/);
    from docs/lessons/ the same page is ../<page>.md.
    """
    out = DOCS / "lessons"
    out.mkdir(exist_ok=True)
    scripts = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    for stale in set(out.glob("*.ipynb")) - {out / f"{s.stem}.ipynb" for s in scripts}:
        stale.unlink()  # a lesson renamed or removed
    for script in scripts:
        notebook = jupytext.read(script, fmt="py:percent")
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                cell.source = cell.source.replace("](../docs/", "](../")
            if ANSWER in cell.metadata.get("tags", ()):  # collapsed in Jupyter too
                cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                           "language": "python"}
        target = out / f"{script.stem}.ipynb"
        text = jupytext.writes(notebook, fmt="ipynb")
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


_write_lessons()

# --- The pages' explicit anchors ---------------------------------------------------------
# docs/*.md mark sections with <a id="name"></a> on the line before the heading, and link
# them as <page>.md#name. MyST does not see raw HTML ids, and two pages may use the same
# name, so at read time (the files are not changed) each anchor also becomes a MyST target
# named <page>--<name>, and the links to it are pointed there. The raw <a id> stays, so
# <page>.html#name still lands on the section (the API pages link that way).
_ANCHOR = re.compile(r'^<a id="([^"]+)"></a>[ \t]*$', re.M)
ANCHORS = {page.stem: set(_ANCHOR.findall(page.read_text(encoding="utf-8")))
           for page in DOCS.glob("*.md")}
_LINK = re.compile(r"\]\(((?:[^()\s#]*/)?)([\w-]*?)(\.md)?#([\w-]+)\)")


def _anchors_to_targets(app, docname, source):
    page = docname.rsplit("/", 1)[-1]
    text = _ANCHOR.sub(lambda m: f"{m.group(0)}\n({page}--{m.group(1)})=", source[0])

    def link(m):
        path, target, suffix, name = m.groups()
        target_page = target if suffix else page
        if name not in ANCHORS.get(target_page, ()):
            return m.group(0)
        return f"]({path}{target}{suffix or ''}#{target_page}--{name})"

    source[0] = _LINK.sub(link, text)


# The docstrings name their derivation as "Derivation: docs/<page>.md#<anchor>" (or
# "Guide: docs/<page>.md"): on the API pages those become links to the page's section.
_DOC_REF = re.compile(r"docs/([\w-]+)\.md(?:#([\w-]+))?")


def _link_derivations(app, what, name, obj, options, lines):
    def link(m):
        page, anchor = m.groups()
        if page not in ANCHORS:
            return m.group(0)
        return f"`{m.group(0)} <../{page}.html{'#' + anchor if anchor else ''}>`__"

    lines[:] = [_DOC_REF.sub(link, line) if "``" not in line else line for line in lines]


# --- Numbered equations -------------------------------------------------------------------
# The pages write a numbered equation as $$ ... \tag{n}$$. Sphinx wraps a display containing
# \\ (a cases block) in a split environment, where MathJax refuses \tag; so at read time
# each numbered display becomes an equation* environment (MyST's amsmath, left as written; starred,
# so that Sphinx adds no number of its own beside the page's \tag),
# with a target <page>--eq-<n> before it: equation n of a page has the id <page>-eq-<n>, and
# a link written "[page (n)](page.md#section)" is pointed at equation n itself.
_TAGGED = re.compile(r"^([ \t]*)\$\$((?:(?!\$\$).)*?\\tag\{([\w.]+)\}(?:(?!\$\$).)*?)\$\$[ \t]*$", re.M | re.S)
EQUATIONS = {page.stem: set(m.group(3) for m in _TAGGED.finditer(page.read_text(encoding="utf-8")))
             for page in DOCS.glob("*.md")}
_EQ_LINK = re.compile(r"\[([\w-]+) \(([\w.]+)\)([^\]]*)\]\(((?:[^()\s#]*/)?)\1\.md#[\w-]+\)")


def _equation_environments(page, text):
    def environment(m):
        indent, body, tag = m.groups()
        return (f"{indent}({page}--eq-{tag})=\n{indent}\\begin{{equation*}}\n"
                f"{indent}{body.strip()}\n{indent}\\end{{equation*}}")

    return _TAGGED.sub(environment, text)


def _links_to_equations(text):
    def link(m):
        target, tag, rest, path = m.groups()
        if tag not in EQUATIONS.get(target, ()):
            return m.group(0)
        return f"[{target} ({tag}){rest}]({path}{target}.md#{target}--eq-{tag})"

    return _EQ_LINK.sub(link, text)


def _read_equations(app, docname, source):
    page = docname.rsplit("/", 1)[-1]
    if page in EQUATIONS:
        source[0] = _equation_environments(page, source[0])
    source[0] = _links_to_equations(source[0])


# --- The lessons, downloaded -----------------------------------------------------------------
# The download button serves _sources/lessons/NN_name.ipynb. Its links ../<page>.md#anchor work
# only beside docs/; outside the repository they point at the site's pages instead.
_PAGE_LINK = re.compile(r"\]\(\.\./([\w-]+)\.md(#[\w-]+)?\)")


def _downloads_link_the_site(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    base = app.config.html_baseurl.rstrip("/")
    for path in (Path(app.outdir) / "_sources" / "lessons").glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        if base:
            text = _PAGE_LINK.sub(lambda m: f"]({base}/{m[1]}.html{m[2] or ''})", text)
        else:
            text = _PAGE_LINK.sub(lambda m: f"](../docs/{m[1]}.md{m[2] or ''})", text)
        path.write_text(text, encoding="utf-8")


# A figure a lesson draws comes out of its cell with its file name (a hash) for alt text; it is
# named instead by the lesson and the section it illustrates.
_HASHED = re.compile(r"[0-9a-f]{16}|\.(png|jpe?g|svg)$")


def _alt_text_for_outputs(app, doctree, docname):
    if not docname.startswith("lessons/"):
        return
    for image in doctree.findall(nodes.image):
        if image.get("alt") and not _HASHED.search(image["alt"]):
            continue
        titles = [section[0].astext() for section in _ancestors(image) if isinstance(section, nodes.section)]
        image["alt"] = f"A figure drawn in {titles[-1]}" + (f", section “{titles[0]}”" if len(titles) > 1 else "")


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


# --- Quick mode says so ----------------------------------------------------------------------
QUICK_BANNER = ('<div class="admonition warning scratchvae-quick"><p class="admonition-title">Built in quick mode</p>'
                "<p>Built in quick mode: every model on the site is trained for seconds, on a few thousand images, "
                "so its pictures are noise where the text says to look for digits, and its numbers are not the "
                "ones the text quotes. The full build trains them: see the README's course site.</p></div>")


def _quick_banner(app, pagename, templatename, context, doctree):
    if QUICK and (pagename.startswith("lessons/") or pagename == "explorer") and "body" in context:
        context["body"] = QUICK_BANNER + context["body"]


# --- The explorer on the site ------------------------------------------------------------------
# docs/explorer.md embeds the explorer (scratchvae explore) of two models that the build trains
# with the commands a student runs: explorer/z2/ (a 2-D code, the whole latent space on the map)
# and explorer/z20/ (the standard 784-400-20 model). A full build trains them in full once and
# keeps their run folders in docs/_build/explorer-runs/; a quick build trains each for seconds, in
# a temporary folder, and its banner says so.
EXPLORERS = {"z2": ["--latent-dim", "2"], "z20": []}
EXPLORER_TRAINING = ["--iwae-k", "0"] + (["--limit", "3000", "--epochs", "1"] if QUICK else [])
EXPLORER_RUNS = DOCS / "_build" / "explorer-runs"


def _scratchvae(*args):
    """Run the command ``scratchvae *args`` (this repository's); return what it printed."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "scratchvae", *args], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise ExtensionError(f"scratchvae {' '.join(args)} failed:\n{run.stdout[-2000:]}{run.stderr[-3000:]}")
    return run.stdout


def _write_explorers(app, exception):
    """After an html build: train the two models (or reuse a full build's) and write their pages into the site."""
    if exception is not None or app.builder.format != "html":
        return
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch) if QUICK else EXPLORER_RUNS
        for name, flags in EXPLORERS.items():
            run = runs / name
            if not (run / "model.npz").is_file():  # an interrupted full run resumes
                started = time.monotonic()
                resume = (run / "checkpoint.npz").is_file()
                args = ["train", *(["--resume"] if resume else [*flags, *EXPLORER_TRAINING]), "--out", str(run)]
                logger.info(f"explorer {name}: scratchvae {' '.join(args)}" + ("" if QUICK else " (a minute or two)"))
                _scratchvae(*args)
                logger.info(f"explorer {name}: trained in {time.monotonic() - started:.0f} s")
            logger.info(_scratchvae("explore", str(run), "--out", str(Path(app.outdir) / "explorer" / name)).strip())


def setup(app):
    app.connect("source-read", _read_equations)
    app.connect("source-read", _anchors_to_targets)
    app.connect("html-page-context", _quick_banner)
    app.connect("build-finished", _downloads_link_the_site)
    app.connect("build-finished", _write_explorers)
    app.connect("doctree-resolved", _alt_text_for_outputs)
    app.connect("autodoc-process-docstring", _link_derivations)
