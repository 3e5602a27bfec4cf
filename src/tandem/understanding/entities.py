"""Entities in what a customer says: dates, money, card last four, ids, phone, email, ZIP, names.

Countries have a module of their own (``tandem.understanding.countries``): only a trip reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from tandem.money import money
from tandem.understanding.redaction import redact_card_numbers
from tandem.world.records import normalize_phone

MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
         "november", "december"]
    )
}  # fmt: skip
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_US = re.compile(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{4})\b")
_MONTH_FIRST = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b")
_DAY_FIRST = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\.?,?\s+(\d{4})\b")
# Without a year: the nearest such day to the interaction's date.
_MONTH_DAY = re.compile(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!\s*[:.]\d)")
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\b")
_ORDINAL_DAY = re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b", re.I)
_NUMBER = r"(\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fourteen|fifteen|twenty|thirty)"
_AGO = re.compile(rf"\b{_NUMBER}\s+(day|week)s?\s+ago\b", re.I)
_IN_DAYS = re.compile(rf"\bin\s+{_NUMBER}\s+(day|week)s?\b", re.I)
_RELATIVE = re.compile(
    r"\b(today|tonight|this\s+(?:morning|afternoon|evening)|yesterday|tomorrow|last\s+\w+day|next\s+\w+day|"
    r"last\s+week|next\s+week)\b",
    re.I,
)
_WEEKDAY = re.compile(
    r"\b(?:on|to|for|this|by|until)\s+(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I
)
_PAST = re.compile(r"\b(?:was|were|did|had|happened|charged|declined|paid|went|got|bought|came|tried|used)\b", re.I)
_MONEY = re.compile(
    r"(?:\$|usd\s?)\s?(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?|\b(\d+)(?:\.(\d{2}))?\s?(?:dollars|usd|bucks)\b", re.I
)
_WORD_MONEY = re.compile(rf"\b{_NUMBER}\s+(?:dollars|bucks)\b", re.I)
_LAST4 = re.compile(
    r"\b(?:ending(?:\s+(?:in|with))?|ends?\s+(?:in|with)|last\s+(?:four|4)(?:\s+digits)?(?:\s+(?:is|are))?|card\s+)"
    r"\s*[:#]?\s*(\d{4})\b",
    re.I,
)
_MEMBER = re.compile(r"\bMBR[- ]?(\d{5})\b", re.I)
_CLAIM = re.compile(r"\bCLM[- ]?(\d{3,6})\b", re.I)
_CUSTOMER = re.compile(r"\bC[- ](\d{4})\b")
_ACCOUNT = re.compile(r"\bCHK[- ]?(\d{5})\b", re.I)
_PHONE = re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?![\d-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_ZIP = re.compile(r"(?<![\d$.,-])(\d{5})(?![\d,.-])")
_NAME = re.compile(
    r"\b(?i:my name is|my name's|name on the account is|this is|i am|i'm|it's|name's)\s+"
    r"([A-Z][a-z]+(?:\s+[A-Z][a-z']+){1,2})\b"
)
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30,
}  # fmt: skip


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _WORDS[word.lower()]


def _valid_date(y: int, m: int, d: int) -> str | None:
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def _nearest(today: date, month: int, day: int) -> str | None:
    """A day and month without a year: the occurrence nearest the interaction's date."""
    options = [v for y in (today.year - 1, today.year, today.year + 1) if (v := _valid_date(y, month, day))]
    if not options:
        return None
    return min(options, key=lambda v: abs((date.fromisoformat(v) - today).days))


def _weekday(today: date, name: str, direction: str) -> str:
    target = _WEEKDAYS.index(name.lower())
    if direction == "last":
        return (today - timedelta(days=(today.weekday() - target) % 7 or 7)).isoformat()
    return (today + timedelta(days=(target - today.weekday()) % 7 or 7)).isoformat()


def find_dates(text: str, today: date) -> list[str]:
    """Every date in ``text``, in order of appearance, as ISO strings; relative ones counted from ``today``."""
    found: list[tuple[int, str]] = []
    rest = text

    def take(pattern: re.Pattern[str], convert: Callable[[re.Match[str]], str | None]) -> None:
        nonlocal rest
        for m in pattern.finditer(rest):
            if (v := convert(m)) is not None:
                found.append((m.start(), v))
                rest = rest[: m.start()] + " " * (m.end() - m.start()) + rest[m.end() :]

    take(_ISO, lambda m: _valid_date(int(m[1]), int(m[2]), int(m[3])))
    take(_US, lambda m: _valid_date(int(m[3]), int(m[1]), int(m[2])))
    take(
        _MONTH_FIRST,
        lambda m: _valid_date(int(m[3]), MONTHS[m[1].lower()], int(m[2])) if m[1].lower() in MONTHS else None,
    )
    take(
        _DAY_FIRST,
        lambda m: _valid_date(int(m[3]), MONTHS[m[2].lower()], int(m[1])) if m[2].lower() in MONTHS else None,
    )
    take(_MONTH_DAY, lambda m: _nearest(today, MONTHS[m[1].lower()], int(m[2])) if m[1].lower() in MONTHS else None)
    take(_DAY_MONTH, lambda m: _nearest(today, MONTHS[m[2].lower()], int(m[1])) if m[2].lower() in MONTHS else None)
    take(_AGO, lambda m: (today - timedelta(days=_count(m[1]) * (7 if m[2].lower() == "week" else 1))).isoformat())
    take(_IN_DAYS, lambda m: (today + timedelta(days=_count(m[1]) * (7 if m[2].lower() == "week" else 1))).isoformat())

    def relative(m: re.Match[str]) -> str | None:
        words = m[1].lower().split()
        if words[0] in ("today", "tonight", "this"):
            return today.isoformat()
        if words[0] == "yesterday":
            return (today - timedelta(days=1)).isoformat()
        if words[0] == "tomorrow":
            return (today + timedelta(days=1)).isoformat()
        if words[1] == "week":
            return (today + timedelta(days=7 if words[0] == "next" else -7)).isoformat()
        return _weekday(today, words[1], words[0]) if words[1] in _WEEKDAYS else None

    take(_RELATIVE, relative)
    # "on Friday": the last one when the customer talks of the past, the next one otherwise.
    direction = "last" if _PAST.search(text) else "next"
    take(_WEEKDAY, lambda m: _weekday(today, m[1], direction))

    def ordinal(m: re.Match[str]) -> str | None:
        day = int(m[1])
        for months_ahead in range(3):
            month0 = today.month - 1 + months_ahead
            v = _valid_date(today.year + month0 // 12, month0 % 12 + 1, day)
            if v is not None and v >= today.isoformat():
                return v
        return None

    take(_ORDINAL_DAY, ordinal)
    return [v for _, v in sorted(found, key=lambda pv: pv[0])]


def extract(text: str, now: datetime | None = None) -> dict[str, Any]:
    """Entities by name. Values are normalised: ISO dates, money in minor units, E.164 phones.

    Full card numbers are masked to their last four before anything is read, so none can reach an entity.
    """
    text = redact_card_numbers(text)
    today = (now or datetime.now()).date()
    out: dict[str, Any] = {}
    dates = find_dates(text, today)
    if dates:
        out["date"] = dates[0]
        if len(dates) > 1:
            out["dates"] = dates
    amounts = sorted([*_MONEY.finditer(text), *_WORD_MONEY.finditer(text)], key=lambda m: m.start())
    if amounts:
        first = amounts[0]
        if first.re is _WORD_MONEY:
            out["amount"] = money(_count(first[1]) * 100)
        else:
            whole = (first[1] or first[3] or "0").replace(",", "")
            cents = first[2] or first[4] or "00"
            out["amount"] = money(int(whole) * 100 + int(cents))
    if m := _LAST4.search(text):
        out["card_last4"] = m[1]
    if m := _MEMBER.search(text):
        out["member_id"] = f"MBR-{m[1]}"
    if m := _CLAIM.search(text):
        out["claim_id"] = f"CLM-{m[1]}"
    if m := _CUSTOMER.search(text):
        out["customer_id"] = f"C-{m[1]}"
    if m := _ACCOUNT.search(text):
        out["account_id"] = f"CHK-{m[1]}"
    if m := _EMAIL.search(text):
        out["email"] = m[0].lower()
    scrubbed = _EMAIL.sub(" ", text)
    if m := _PHONE.search(scrubbed):
        out["phone"] = normalize_phone("".join(m.groups()))
    # A ZIP is five digits that are not part of a date, an amount, an id or a phone number.
    rest = _PHONE.sub(" ", _MEMBER.sub(" ", _CLAIM.sub(" ", _ACCOUNT.sub(" ", _ISO.sub(" ", scrubbed)))))
    rest = _MONTH_FIRST.sub(" ", _DAY_FIRST.sub(" ", _US.sub(" ", rest)))
    if m := _ZIP.search(rest):
        out["zip"] = m[1]
    if m := _NAME.search(text):
        out["name"] = m[1]
    return out
