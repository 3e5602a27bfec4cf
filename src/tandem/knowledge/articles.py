"""Help articles as passages: each Markdown article is split at its headings, and every passage remembers
its source file, the article's title and its section, so an answer can say where it came from."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True, slots=True)
class Passage:
    source: str  # the article's path (relative to its folder) or id
    title: str
    section: str | None
    text: str

    @property
    def cite(self) -> str:
        return f"{self.source}#{_slug(self.section)}" if self.section else self.source


def split_markdown(source: str, markdown: str, title: str | None = None, max_chars: int = 1200) -> list[Passage]:
    """Passages at ``##`` (and deeper) headings; the first ``#`` heading is the title. Long sections are cut
    at paragraph boundaries so a passage stays short enough to quote."""
    lines = markdown.strip().splitlines()
    if title is None and lines and (m := _HEADING.match(lines[0])) and len(m[1]) == 1:
        title, lines = m[2], lines[1:]
    title = title or source
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in lines:
        m = _HEADING.match(line)
        if m and len(m[1]) >= 2:
            sections.append((m[2], []))
        else:
            sections[-1][1].append(line)
    out: list[Passage] = []
    for section, body in sections:
        text = "\n".join(body).strip()
        if not text:
            continue
        for piece in _pieces(text, max_chars):
            out.append(Passage(source, title, section, piece))
    if not out:
        out.append(Passage(source, title, None, title))
    return out


def read_articles(folder: Path) -> list[Passage]:
    """Every ``*.md`` under ``folder`` (a README.md is the folder's own note, not an article)."""
    passages: list[Passage] = []
    for path in sorted(folder.rglob("*.md")):
        if path.name.lower() == "readme.md":
            continue
        passages += split_markdown(path.relative_to(folder).as_posix(), path.read_text(encoding="utf-8"))
    return passages


def _pieces(text: str, max_chars: int) -> Iterable[str]:
    if len(text) <= max_chars:
        yield text
        return
    current = ""
    for para in re.split(r"\n\s*\n", text):
        if current and len(current) + len(para) + 2 > max_chars:
            yield current
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    if current:
        yield current


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
