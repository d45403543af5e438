"""The source and the derivation pages link to each other, and every link resolves.

Source -> docs: every ``Derivation: docs/<page>.md#<anchor>`` names a page and
an anchor that exist, and every public ``*_backward`` function has one.
Docs -> source: every ``Implemented by:`` name imports, every ``Checked by:``
test exists, and a backward named in a section links back to that section.
Docs -> docs: every relative Markdown link points at a file (and anchor) that exists.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import scratchvae

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DERIVATION = re.compile(r"Derivation: (docs/[\w/-]+\.md)#([\w-]+)")
ANCHOR = re.compile(r'<a id="([\w-]+)"></a>')
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def modules():
    """Every module of the package, subpackages included."""
    return [
        importlib.import_module(m.name)
        for m in pkgutil.walk_packages(scratchvae.__path__, "scratchvae.")
        if not m.name.endswith("__main__")
    ]


def pages():
    return sorted(DOCS.glob("*.md"))


def read(page):
    """A page's text without fenced code blocks (whose examples are not links)."""
    return FENCE.sub("", page.read_text())


def anchors(page):
    """Explicit ``<a id>`` anchors plus GitHub-style heading slugs."""
    text = read(page)
    slugs = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in HEADING.findall(text)
    }
    return set(ANCHOR.findall(text)) | slugs


def sections(page):
    """(anchor, text) for each explicitly anchored section of a page."""
    parts = ANCHOR.split(read(page))
    return list(zip(parts[1::2], parts[2::2]))


def listed(text, label):
    """Backticked names on the line starting with ``label``."""
    names = []
    for line in text.splitlines():
        if line.startswith(label):
            names += re.findall(r"`([^`]+)`", line)
    return names


def resolve(dotted):
    """Import ``scratchvae.module.name[.attr]`` and return the object."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def backward_functions():
    for module in modules():
        for name, fn in vars(module).items():
            if (
                name.endswith("_backward")
                and not name.startswith("_")
                and inspect.isfunction(fn)
                and fn.__module__ == module.__name__
            ):
                yield f"{module.__name__}.{name}", fn


def source_links():
    for path in sorted((ROOT / "scratchvae").glob("*.py")):
        for page, anchor in DERIVATION.findall(path.read_text()):
            yield path.name, page, anchor


def test_every_backward_links_its_derivation():
    missing = [name for name, fn in backward_functions() if not DERIVATION.search(fn.__doc__ or "")]
    assert not missing, f"backward functions without a 'Derivation: docs/...' line: {missing}"


def test_source_links_resolve():
    broken = []
    for source, page, anchor in source_links():
        target = ROOT / page
        if not target.is_file():
            broken.append(f"{source}: {page} does not exist")
        elif anchor not in anchors(target):
            broken.append(f"{source}: {page} has no anchor #{anchor}")
    assert not broken, "\n".join(broken)


def test_implemented_by_names_exist_and_link_back():
    problems = []
    for page in pages():
        for anchor, text in sections(page):
            for name in listed(text, "Implemented by:"):
                try:
                    obj = resolve(name)
                except (ImportError, AttributeError):
                    problems.append(f"{page.name}#{anchor}: {name} does not exist")
                    continue
                if name.endswith("_backward"):
                    links = DERIVATION.findall(inspect.getdoc(obj) or "")
                    if (f"docs/{page.name}", anchor) not in links:
                        problems.append(
                            f"{page.name}#{anchor}: {name} does not link back "
                            f"(its docstring links {links})"
                        )
    assert not problems, "\n".join(problems)


def test_every_source_link_is_named_by_its_section():
    """The section a backward links to lists that backward under 'Implemented by'."""
    problems = []
    for name, fn in backward_functions():
        for page, anchor in DERIVATION.findall(fn.__doc__ or ""):
            found = dict(sections(ROOT / page)) if (ROOT / page).is_file() else {}
            if name not in listed(found.get(anchor, ""), "Implemented by:"):
                problems.append(f"{name} links {page}#{anchor}, which does not name it")
    assert not problems, "\n".join(problems)


def test_checked_by_tests_exist():
    problems = []
    for page in pages():
        for anchor, text in sections(page):
            for test_id in listed(text, "Checked by:"):
                file, _, test = test_id.partition("::")
                path = ROOT / file
                if not path.is_file():
                    problems.append(f"{page.name}#{anchor}: {file} does not exist")
                elif not re.search(rf"^\s*(def|class) {re.escape(test)}\b", path.read_text(), re.M):
                    problems.append(f"{page.name}#{anchor}: {test_id} does not exist")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.name)
def test_markdown_links_resolve(page):
    broken = []
    for link in MD_LINK.findall(read(page)):
        if re.match(r"[a-z]+:", link) or link.startswith("#") and not link[1:]:
            continue  # external URLs are not followed
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: {path} does not exist")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no anchor #{anchor} in {path.name}")
    assert not broken, "\n".join(broken)


# --- Citations resolve inside the repository ----------------------------------------

NOTE_CITATION = re.compile(r"note (00\d) \((\d+[a-z]?)\)")


def cited_note_equations():
    """Every "note 00N (k)" cited in the docs, the source and the lessons, with where."""
    places = [*DOCS.glob("*.md"), *(ROOT / "scratchvae").rglob("*.py"), *(ROOT / "tutorials").glob("*.py"),
              ROOT / "README.md"]
    return {(note, eq, path.relative_to(ROOT).as_posix())
            for path in places for note, eq in NOTE_CITATION.findall(path.read_text())}


def test_every_cited_note_equation_is_restated_on_the_references_page():
    """A clone has no notes: each equation a page or function cites must be listed there, in our words."""
    references = (DOCS / "references.md").read_text()
    listed = set()
    rows = re.findall(r"^\| note (00\d) \((\d+)\)(?:–\((\d+)\))?", references, re.MULTILINE)
    for note, first, last in rows:  # "note 004 (6)–(8)" lists 6, 7 and 8
        listed |= {(note, str(k)) for k in range(int(first), int(last or first) + 1)}
    missing = sorted(f"{path}: note {note} ({eq})" for note, eq, path in cited_note_equations()
                     if (note, eq) not in listed)
    assert not missing, missing


def test_nothing_points_outside_the_repository():
    """docs/, the package, the lessons and the README must not lean on ../shared."""
    places = [*DOCS.rglob("*.md"), *(ROOT / "scratchvae").rglob("*.py"), *(ROOT / "tutorials").rglob("*"),
              ROOT / "README.md"]
    offenders = [p.relative_to(ROOT).as_posix() for p in places
                 if p.is_file() and "shared/" in p.read_text(errors="ignore")]
    assert not offenders, offenders
