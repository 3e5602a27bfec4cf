"""The case file a journey left behind, as staff see it, and the facts learned on the way there.

``shown`` is what ``GET /v1/interactions/{id}`` shows at the end: one fact per name and subject, after
precedence (an action's result over a lagging signal, a verified answer over a stated one). ``learned``
is every ``FactLearned`` in the log, superseded or not: where a fact came from first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tandem.case import events as ev
from tandem.release.signals import STATUS_FACT
from tandem.sim.scenario import FactShown

SIGNAL = "signal"


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    subject: str | None
    value: Any
    source: str
    status: str = "known"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        return self.name if self.subject is None else f"{self.name}[{self.subject}]"


def shown(view: Mapping[str, Any]) -> list[Fact]:
    """The facts of a staff view of an interaction."""
    out: list[Fact] = []
    for key, fact in (view.get("facts") or {}).items():
        name = str(key).split("[")[0]
        out.append(Fact(name, fact.get("subject"), fact.get("value"), str(fact.get("source")), str(fact.get("status"))))
    return out


def learned(events: Iterable[Mapping[str, Any]]) -> list[Fact]:
    return [
        Fact(str(e["data"]["name"]), e["data"].get("subject"), e["data"].get("value"), str(e["data"]["source"]))
        for e in events
        if e["type"] == ev.FACT_LEARNED
    ]


def from_signals(facts: Iterable[Fact]) -> list[Fact]:
    """The facts signals brought (not the fetch reports)."""
    return [f for f in facts if _source_is(f.source, SIGNAL) and f.name != STATUS_FACT]


def signal_outcomes(facts: Iterable[Fact]) -> dict[str, str]:
    """Each signal fetched, and how its last fetch went: ok, timeout, failed, skipped."""
    out: dict[str, str] = {}
    for fact in facts:
        if fact.name == STATUS_FACT and isinstance(fact.value, Mapping):
            out[str(fact.value.get("signal"))] = str(fact.value.get("status"))
    return out


def matches(want: FactShown, fact: Fact) -> bool:
    if want.name != fact.name:
        return False
    if want.subject is not None and want.subject != fact.subject:
        return False
    if want.source is not None and not _source_is(fact.source, want.source):
        return False
    if want.status is not None and want.status != fact.status:
        return False
    return want.value is None or _value_matches(want.value, fact.value)


def describe(want: FactShown) -> str:
    parts = [want.name if want.subject is None else f"{want.name}[{want.subject}]"]
    if want.value is not None:
        parts.append(f"= {want.value!r}")
    if want.source is not None:
        parts.append(f"from {want.source}")
    if want.status is not None:
        parts.append(f"({want.status})")
    return " ".join(parts)


def _source_is(source: str, wanted: str) -> bool:
    return source == wanted or source.startswith(wanted + ":")


def _value_matches(want: Any, actual: Any) -> bool:
    if isinstance(want, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _value_matches(value, actual[key]) for key, value in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(actual, list)
            and len(want) == len(actual)
            and all(_value_matches(w, a) for w, a in zip(want, actual, strict=True))
        )
    if isinstance(want, bool) or isinstance(actual, bool):
        return want is actual
    if isinstance(want, int | float) and isinstance(actual, int | float):
        return float(want) == float(actual)
    return str(want) == str(actual)
