"""The README and docs/ as a front door: the README stays short, every relative link resolves inside the
repository, and no page points at a file outside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "results" / "README.md"]
README_MAX_LINES = 150
# [text](target) and [text](target "title"); images too. Reference-style links are not used here.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//|#)", re.IGNORECASE)
# a file named in prose or code (``name.md``, ``dir/name.md``) or a path climbing out (``../x``)
MENTIONED_FILE = re.compile(r"(?<![\w/.-])((?:\.\./)*[\w-]+(?:/[\w.-]+)*\.md)\b")


def relative_links(markdown: str) -> list[str]:
    """Link targets of ``markdown`` that point into the repository (no URL scheme, not a bare #anchor),
    #fragment included. Code spans and fenced blocks are skipped: their brackets are not links."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    return [target for target in LINK.findall(text) if not EXTERNAL.match(target)]


def anchors(markdown: str) -> set[str]:
    """The #fragments GitHub gives the headings of ``markdown``: lower case, punctuation dropped, spaces
    as hyphens (``## Resume and errors`` -> ``resume-and-errors``)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_docs_folder_has_pages():
    assert (ROOT / "docs").is_dir()
    assert len(PAGES) > 2, "docs/ holds no pages"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference material to docs/")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path):
    broken = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def outside_mentions(page: Path, text: str) -> list[str]:
    """Markdown files ``text`` (of ``page``) names that are not part of the repository: neither a path from
    the page or the root that exists inside it, nor the name of a file anywhere in it (the method's account
    is docs/method.md, never a file beside the checkout)."""
    names = {path.name for path in ROOT.rglob("*.md") if ".git" not in path.parts}
    outside = []
    for mention in MENTIONED_FILE.findall(text):
        candidates = [(page.parent / mention).resolve(), (ROOT / mention).resolve()]
        inside = any(c.is_relative_to(ROOT) and c.exists() for c in candidates)
        if not inside and (mention.startswith("../") or Path(mention).name not in names):
            outside.append(mention)
    return outside


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_outside_the_repository(page: Path):
    found = outside_mentions(page, page.read_text(encoding="utf-8"))
    assert not found, f"{page.relative_to(ROOT)} mentions {found}, which is not part of the repository"


def test_outside_mentions_are_found():
    """The rule itself: a file of another checkout, or one that climbs out of the repository, is caught; the
    repository's own pages, by path or by name, are not."""
    text = "see ../shared/NOTES.md, ANCHORS.md, docs/method.md, method.md and README.md"
    assert outside_mentions(README, text) == ["../shared/NOTES.md", "ANCHORS.md"]


def test_link_pattern_reads_the_forms_used():
    """The link reader itself: plain, titled, anchored and image links; URLs, bare anchors and code skipped;
    heading anchors as GitHub spells them."""
    page = ("[a](docs/x.md) [b](../y.md#part \"title\") [c](https://e.org) [d](#here) `[e](z.md)`\n"
            "```\n[f](w.md)\n```\n![g](img/h.png)")
    assert relative_links(page) == ["docs/x.md", "../y.md#part", "img/h.png"]
    assert anchors("# A page\n## Resume and errors\n## `run`: one config\n```\n# not a heading\n```") == {
        "a-page", "resume-and-errors", "run-one-config"}
