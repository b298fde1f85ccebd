"""Every pointer to a section of the docs leads somewhere: `docs/rules.md, "Copies"` (in the docs, and in the
messages, help and comments of the code, which send users there) names a heading of that document, the start
of one, or a paragraph's bold label (`**A stopped driver.**`), and a link's `#anchor` is a heading's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = {"README.md": ROOT / "README.md", **{path.name: path for path in sorted((ROOT / "docs").glob("*.md"))}}
SOURCES = [*DOCUMENTS.values(), *sorted((ROOT / "src").rglob("*.py")), *sorted((ROOT / "src").rglob("*.html")),
           *sorted(path for path in (ROOT / "scripts").iterdir() if path.is_file())]  # fmt: skip
# `docs/rules.md, "Copies"`, `README, "On a schedule"`, `[`docs/rules.md`](docs/rules.md), "Copies"`; a quote
# may be escaped inside a Python string.
SECTION_REFERENCE = re.compile(r"\b(README|[a-z]+\.md)`?(?:\]\([^)\s]*\))?[,:]? \\?[\"“]([^\"”\n\\]+)\\?[\"”]")
ANCHOR = re.compile(r"\]\((?:docs/)?([a-z]+\.md)#([a-z0-9-]+)\)")


def _labels(name: str) -> tuple[list[str], set[str]]:
    """A document's headings (code spans unquoted) and bold paragraph labels (their final stop left off)."""
    text = DOCUMENTS[name].read_text(encoding="utf-8")
    headings = [heading.replace("`", "").strip() for heading in re.findall(r"^#+ (.*)$", text, flags=re.MULTILINE)]
    return headings, {label.rstrip(".:") for label in re.findall(r"\*\*([^*\n]+)\*\*", text)}


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def references() -> list[tuple[str, str, str]]:
    found = []
    for source in SOURCES:
        text = source.read_text(encoding="utf-8", errors="replace")
        for match in SECTION_REFERENCE.finditer(text):
            document = "README.md" if match.group(1) == "README" else match.group(1)
            if document in DOCUMENTS:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{source.relative_to(ROOT)}:{line}", document, match.group(2)))
    return found


def test_the_references_are_found() -> None:
    found = {(where.split(":")[0], document, section) for where, document, section in references()}
    assert ("README.md", "rules.md", "Copies") in found  # through a link
    assert ("docs/deploy.md", "rules.md", "A stopped driver") in found  # a bold label
    assert any(where.startswith("src/") for where in {w for w, _, _ in found})
    assert len(found) > 50


@pytest.mark.parametrize(("where", "document", "section"), references(), ids=[f"{w} {s}" for w, _, s in references()])
def test_every_section_reference_names_a_section(where: str, document: str, section: str) -> None:
    headings, labels = _labels(document)
    assert section in labels or any(heading.startswith(section) for heading in headings), (
        f"{where}: {document} has no section {section!r}; its headings: {headings}")


def test_every_anchor_is_a_heading() -> None:
    broken = []
    for source in DOCUMENTS.values():
        for document, anchor in ANCHOR.findall(source.read_text(encoding="utf-8")):
            if anchor not in {_slug(heading) for heading in _labels(document)[0]}:
                broken.append(f"{source.name}: {document}#{anchor}")
    assert broken == []
