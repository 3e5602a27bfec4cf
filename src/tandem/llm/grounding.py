"""Grounding: the facts a piece of text states, as tokens, so a model's words can be checked against its source.

A language model that re-words a reply or writes a summary must not invent what a customer or an agent would
act on: an amount, a date, an id, a card's last four. Those are exactly the tokens that carry a digit (``$86.40``,
``2026-12-03``, ``TXN-88301``, ``4242``), an email address, or a month name. ``fact_tokens`` finds them in a
normal form (no currency symbol, no thousands separator, lower case), so ``$1,250.00`` and ``1250.00`` are one
fact; ``source_tokens`` widens a source's tokens with the parts a writer may quote on their own (``card:4242``
gives ``4242``; ``2026-12-03`` gives ``December``, ``3`` and ``2026``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_WORD = re.compile(r"[\w$€£@+.,:/'-]+")
_EDGES = ".,:/'-_"
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")
_PARTS = re.compile(r"[:/_\[\]()]+")


def _normal(word: str) -> str:
    return _THOUSANDS.sub("", word.lstrip("$€£+")).lower()


def fact_tokens(text: str) -> set[str]:
    """The amounts, dates, ids, numbers, email addresses and month names ``text`` states, normalised."""
    out: set[str] = set()
    words = [w.strip(_EDGES) for w in _WORD.findall(text)]
    for i, word in enumerate(words):
        if any(c.isdigit() for c in word) or "@" in word:
            out.add(_normal(word))
        elif word.lower() in MONTHS and word[:1].isupper():
            # "May" is a month only beside a number ("May 4"); otherwise it is the verb.
            near = words[max(i - 1, 0) : i + 2]
            if word != "May" or any(any(c.isdigit() for c in w) for w in near):
                out.add(word.lower())
    return out


def source_tokens(texts: Iterable[str]) -> set[str]:
    """Every fact token of ``texts``, with the pieces a faithful writer may quote separately."""
    out: set[str] = set()
    for text in texts:
        tokens = fact_tokens(text)
        out |= tokens
        for token in tokens:
            out |= {_normal(p) for p in _PARTS.split(token) if p}
        for year, month, day in _ISO_DATE.findall(text):
            try:
                when = date(int(year), int(month), int(day))
            except ValueError:
                continue
            out |= {year, month, day, str(when.day), MONTHS[when.month - 1]}
    return out


def ungrounded(text: str, source: Iterable[str]) -> list[str]:
    """The fact tokens of ``text`` that none of ``source`` states (empty: everything it states is grounded)."""
    known = source_tokens(source)
    return sorted(t for t in fact_tokens(text) if t not in known)
