"""Money as the API speaks it: integer minor units and a currency, never floats."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(amount_minor: int, currency: str = "USD") -> dict[str, Any]:
    return {"amount_minor": int(amount_minor), "currency": currency}


def format_money(value: Mapping[str, Any]) -> str:
    minor = int(value["amount_minor"])
    currency = str(value.get("currency", "USD"))
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    symbol = SYMBOLS.get(currency)
    text = f"{whole:,}.{cents:02d}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"
