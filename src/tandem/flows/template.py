"""Say-templates: text with ``{fact.path|filter}`` placeholders over the case file's facts.

Deliberately small: a placeholder names a fact (or ``subject.<fact>``, ``customer.<field>``, ``items``) and an
optional path into its value, then filters. Nothing is evaluated, so a template cannot run code or reach
anything the flow's facts do not hold. ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from tandem.money import format_money
from tandem.understanding.countries import country_list

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PATH = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*$")


class TemplateError(ValueError):
    """A template that cannot be parsed (at load time) or rendered (a fact it needs is missing)."""


def _money(value: Any) -> str:
    if isinstance(value, Mapping) and "amount_minor" in value:
        return format_money(value)
    raise TemplateError(f"money needs an amount with amount_minor and currency, got {value!r}")


def _date(value: Any) -> str:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        raise TemplateError(f"date needs an ISO date, got {value!r}") from None
    return f"{day:%B} {day.day}, {day.year}"


def _countries(value: Any) -> str:
    codes = [value] if isinstance(value, str) else value
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise TemplateError(f"countries needs a list of country codes, got {value!r}")
    return country_list(codes)


def _id(value: Any) -> str:
    # A subject such as "claim:CLM-7781" or "claim:CLM-7781/line:1": the id of its first part.
    return str(value).split("/", 1)[0].rsplit(":", 1)[-1]


def _last4(value: Any) -> str:
    return _id(value)[-4:]


FILTERS: dict[str, Callable[[Any], str]] = {
    "money": _money,  # {"amount_minor": 8640, "currency": "USD"} -> $86.40
    "date": _date,  # 2026-12-03 -> December 3, 2026
    "countries": _countries,  # ["PT", "ES"] -> Portugal and Spain
    "id": _id,  # card:4242 -> 4242
    "last4": _last4,  # account:CHK-20417 -> 0417
    "lower": lambda v: str(v).lower(),
}


@dataclass(frozen=True, slots=True)
class Placeholder:
    root: str
    path: tuple[str, ...]
    filters: tuple[str, ...]

    def render(self, view: Mapping[str, Any]) -> str:
        if self.root not in view:
            raise TemplateError(f"{{{self}}}: the case file has no {self.root}")
        value = view[self.root]
        for part in self.path:
            if not isinstance(value, Mapping) or part not in value:
                raise TemplateError(f"{{{self}}}: {self.root} has no {part}")
            value = value[part]
        if value is None and not self.filters:
            raise TemplateError(f"{{{self}}}: {self.root} has no value")
        for name in self.filters:
            value = FILTERS[name](value)
        return str(value)

    def __str__(self) -> str:
        return ".".join((self.root, *self.path)) + "".join(f"|{f}" for f in self.filters)


@dataclass(frozen=True, slots=True)
class Template:
    source: str
    parts: tuple[str | Placeholder, ...]

    @classmethod
    def parse(cls, source: str) -> Template:
        parts: list[str | Placeholder] = []
        at = 0
        for m in _PLACEHOLDER.finditer(source):
            parts.append(source[at : m.start()])
            at = m.end()
            if m[0] in ("{{", "}}"):
                parts.append(m[0][0])
                continue
            parts.append(_placeholder(m[1]))
        rest = source[at:]
        if "{" in rest or "}" in rest:
            raise TemplateError(f"unbalanced brace in {source!r}; write {{{{ or }}}} for a literal brace")
        parts.append(rest)
        return cls(source, tuple(p for p in parts if p != ""))

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    def render(self, view: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else p.render(view) for p in self.parts)

    def value(self, view: Mapping[str, Any]) -> Any:
        """The value itself when the template is exactly one placeholder without filters (an action's
        argument keeps its type: an amount stays an amount), otherwise the rendered text."""
        if len(self.parts) == 1 and isinstance(p := self.parts[0], Placeholder) and not p.filters:
            Placeholder.render(p, view)  # raises when missing
            value = view[p.root]
            for part in p.path:
                value = value[part]
            return value
        return self.render(view)


def _placeholder(body: str) -> Placeholder:
    expr, *filters = [piece.strip() for piece in body.split("|")]
    if not _PATH.match(expr):
        raise TemplateError(f"{{{body}}}: a placeholder names a fact and a path, like {{declined_payment.merchant}}")
    unknown = [f for f in filters if f not in FILTERS]
    if unknown:
        raise TemplateError(f"{{{body}}}: unknown filter {', '.join(unknown)}; known: {', '.join(sorted(FILTERS))}")
    root, *path = expr.split(".")
    return Placeholder(root, tuple(path), tuple(filters))
