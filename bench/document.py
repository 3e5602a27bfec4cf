"""docs/benchmarks.md: one section per benchmark script, each rewritten by the script that measures it.

Scripts run at different times (and sometimes at once), so a section is replaced in the file as it is on disk
right before writing, and every other section is left as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"

INTRO = """# Benchmarks

Figures measured on the development machine (2 cores), each section written by the script that measures it;
run the command again to refresh its section (other sections are left alone). Raw figures go to `bench/out/`
(git-ignored). Install the extras first: `pip install -e '.[bench]'`; PostgreSQL cases use
`TANDEM_BENCH_PG_DSN` (default `postgresql://postgres@127.0.0.1:5432/test`) in a schema of their own, dropped
afterwards, and are reported as "not run" when the server or the store is unavailable.

| section | command (from the repository root, with `.venv/bin/python`) |
|---|---|
| Core (in process): turns/s and latency, raw appends, LangGraph, load, idle memory | `python -m bench.core` |

"""


def with_section(text: str, heading: str, body: str) -> str:
    """``text`` with the section under ``heading`` (up to the next ``## ``) replaced by ``body``, or ``body``
    appended when there is no such section yet."""
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _: body + "\n", text, count=1)
    return text.rstrip("\n") + "\n\n" + body


def current() -> str:
    return DOC.read_text() if DOC.exists() else INTRO


def save(text: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text.rstrip("\n") + "\n")


def write_section(heading: str, body: str) -> None:
    save(with_section(current(), heading, body))
