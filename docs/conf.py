"""Sphinx configuration of the course site: the derivations, the lessons and the API.

Build:  pip install -e ".[docs]"
        sphinx-build -W --keep-going -b html docs docs/_build/html
With SCRATCHVAE_QUICK=1 the lessons execute in quick mode (seconds); without it they run in
full and are cached (docs/_build/.jupyter_cache).
"""

import os
import re
import sys
from pathlib import Path

import jupytext

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

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
}

# --- MyST: the pages write $...$, $$ ... \tag{n} $$ and <a id="..."></a> anchors ---------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
mathjax3_config = {"tex": {"tags": "none"}}  # the pages number with \tag{n} themselves

# --- Notebooks: the lessons -------------------------------------------------------------
QUICK = os.environ.get("SCRATCHVAE_QUICK", "0") not in ("", "0")
nb_execution_mode = "force" if QUICK else "cache"
nb_execution_timeout = 1800
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True

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


def setup(app):
    app.connect("source-read", _anchors_to_targets)
    app.connect("autodoc-process-docstring", _link_derivations)
