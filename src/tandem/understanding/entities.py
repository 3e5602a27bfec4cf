"""Entities in what a customer says: dates, money, card last four, ids, phone, email, ZIP, names."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from tandem.money import money
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
_RELATIVE = re.compile(r"\b(today|yesterday|tomorrow|last\s+\w+day|next\s+\w+day)\b", re.I)
_MONEY = re.compile(
    r"(?:\$|usd\s?)\s?(\d{1,3}(?:,\d{3})*|\d+)(?:\.(\d{2}))?|\b(\d+)(?:\.(\d{2}))?\s?(?:dollars|usd)\b", re.I
)
_LAST4 = re.compile(
    r"\b(?:ending(?:\s+in)?|last\s+(?:four|4)(?:\s+digits)?(?:\s+(?:is|are))?|card\s+)\s*[:#]?\s*(\d{4})\b", re.I
)
_MEMBER = re.compile(r"\bMBR[- ]?(\d{5})\b", re.I)
_CLAIM = re.compile(r"\bCLM[- ]?(\d{3,6})\b", re.I)
_CUSTOMER = re.compile(r"\bC[- ](\d{4})\b")
_ACCOUNT = re.compile(r"\bCHK[- ]?(\d{5})\b", re.I)
_PHONE = re.compile(r"(?<![\d-])(?:\+?1[\s.-]?)?\(?(\d{3})\)?[\s.-]?(\d{3})[\s.-]?(\d{4})(?![\d-])")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_ZIP = re.compile(r"(?<![\d$.,-])(\d{5})(?![\d,.-])")
_NAME = re.compile(r"\b(?i:my name is|this is|i am|i'm|it's|name's)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z']+){1,2})\b")
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _valid_date(y: int, m: int, d: int) -> str | None:
    try:
        return date(y, m, d).isoformat()
    except ValueError:
        return None


def find_dates(text: str, today: date) -> list[str]:
    found: list[str] = []
    for m in _ISO.finditer(text):
        if (v := _valid_date(int(m[1]), int(m[2]), int(m[3]))) is not None:
            found.append(v)
    for m in _US.finditer(text):
        if (v := _valid_date(int(m[3]), int(m[1]), int(m[2]))) is not None:
            found.append(v)
    for m in _MONTH_FIRST.finditer(text):
        month = MONTHS.get(m[1].lower())
        if month and (v := _valid_date(int(m[3]), month, int(m[2]))) is not None:
            found.append(v)
    for m in _DAY_FIRST.finditer(text):
        month = MONTHS.get(m[2].lower())
        if month and (v := _valid_date(int(m[3]), month, int(m[1]))) is not None:
            found.append(v)
    for m in _RELATIVE.finditer(text):
        word = m[1].lower()
        if word == "today":
            found.append(today.isoformat())
        elif word == "yesterday":
            found.append((today - timedelta(days=1)).isoformat())
        elif word == "tomorrow":
            found.append((today + timedelta(days=1)).isoformat())
        else:
            direction, day = word.split()
            if day in _WEEKDAYS:
                target = _WEEKDAYS.index(day)
                delta = (today.weekday() - target) % 7 or 7
                found.append(
                    (today - timedelta(days=delta)).isoformat()
                    if direction == "last"
                    else (today + timedelta(days=(target - today.weekday()) % 7 or 7)).isoformat()
                )
    return found


def extract(text: str, now: datetime | None = None) -> dict[str, Any]:
    """Entities by name. Values are normalised: ISO dates, money in minor units, E.164 phones."""
    today = (now or datetime.now()).date()
    out: dict[str, Any] = {}
    dates = find_dates(text, today)
    if dates:
        out["date"] = dates[0]
        if len(dates) > 1:
            out["dates"] = dates
    if m := _MONEY.search(text):
        whole = (m[1] or m[3] or "0").replace(",", "")
        cents = m[2] or m[4] or "00"
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
