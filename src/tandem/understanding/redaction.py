"""Full card numbers never reach storage: recognised by length and the Luhn check, then masked."""

from __future__ import annotations

import re

# 13 to 19 digits, optionally grouped by spaces or dashes, as people type and speech-to-text writes them.
_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def redact_card_numbers(text: str) -> str:
    """Mask every Luhn-valid 13-19 digit run, keeping the last four (which people use to name a card)."""

    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return f"[card ending {digits[-4:]}]"
        return match.group(0)

    return _CANDIDATE.sub(mask, text)
