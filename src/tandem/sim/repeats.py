"""Two independent counts of questions asked twice.

(a) From the log: the ``FactRequested`` events of a journey, replayed through ``tandem.case.askonce.repeats``,
the very rule participants obey. (b) From the words the customer saw: a question for a fact the customer
already gave, on the same leg (an authentication challenge on a new leg is fair), not counting a
confirmation ("still at 94110?") or an ask that follows "that doesn't match".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tandem.case.askonce import repeats
from tandem.case.envelope import Actor, Event
from tandem.sim.questions import asked_facts, rejects

# Facts a new leg may fairly challenge again: its assurance is its own.
AUTHENTICATION_FACTS = frozenset({"date_of_birth", "zip"})


@dataclass(frozen=True, slots=True)
class Seen:
    """One line of the conversation as the customer lived it."""

    speaker: str  # customer, bot, ai, human, supervisor
    text: str
    leg: int  # the customer's own count of channel sessions, from 1
    gave: tuple[tuple[str, str], ...] = ()  # customer lines: (fact, the words they used)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.speaker, "text": self.text, "leg": self.leg}
        if self.gave:
            out["gave"] = [name for name, _ in self.gave]
        return out


@dataclass(frozen=True, slots=True)
class FoundRepeat:
    counter: str  # events | text
    fact: str
    by: str
    where: str  # interaction and seq for (a); the line number of the transcript for (b)

    def to_dict(self) -> dict[str, str]:
        return {"counter": self.counter, "fact": self.fact, "by": self.by, "where": self.where}


def event_from_json(raw: Mapping[str, Any]) -> Event:
    """An ``Event`` back from the API's JSON envelope."""
    occurred = datetime.fromisoformat(str(raw["occurred_at"]))
    recorded = raw.get("recorded_at")
    return Event(
        event_id=str(raw.get("event_id", "")),
        tenant_id=str(raw.get("tenant_id", "")),
        interaction_id=str(raw.get("interaction_id", "")),
        seq=int(raw["seq"]),
        position=int(raw.get("position") or 0),
        type=str(raw["type"]),
        schema_version=int(raw.get("schema_version") or 1),
        occurred_at=occurred,
        recorded_at=datetime.fromisoformat(str(recorded)) if recorded else occurred,
        actor=Actor.from_dict(raw.get("actor") or {"kind": "system"}),
        leg_id=raw.get("leg_id"),
        causation_id=raw.get("causation_id"),
        correlation_id=raw.get("correlation_id"),
        floor_epoch=int(raw.get("floor_epoch") or 0),
        data=dict(raw.get("data") or {}),
    )


@dataclass
class JourneyLog:
    """Every event a journey produced, across its interactions, in the order the simulator saw them.

    One customer need may span several interactions (the siloed baseline starts over after each transfer),
    so the replay runs over all of them as one story, numbered afresh.
    """

    events: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, items: Iterable[Mapping[str, Any]]) -> None:
        self.events.extend(dict(item) for item in items)

    def of_type(self, *types: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") in types]

    def replayable(self) -> list[Event]:
        out = []
        for i, raw in enumerate(self.events, start=1):
            out.append(event_from_json({**raw, "seq": i}))
        return out


def count_from_events(log: JourneyLog) -> list[FoundRepeat]:
    found = repeats(log.replayable())
    # Interactions by their order in the journey: ids differ on every run, the story does not.
    order = {iid: n for n, iid in enumerate(dict.fromkeys(str(e.get("interaction_id")) for e in log.events), 1)}
    out = []
    for repeat in found:
        raw = log.events[repeat.seq - 1]
        where = f"interaction {order[str(raw.get('interaction_id'))]}, seq {raw.get('seq')}"
        out.append(FoundRepeat("events", repeat.name, repeat.asked_by, where))
    return out


def count_from_text(lines: Sequence[Seen]) -> list[FoundRepeat]:
    given: dict[str, int] = {}  # fact -> the leg it was given on
    said: dict[str, list[str]] = {}  # fact -> the customer's words for it, to recognise a confirmation
    last_gave: tuple[str, ...] = ()
    found: list[FoundRepeat] = []
    for number, line in enumerate(lines, start=1):
        if line.speaker == "customer":
            for fact, words in line.gave:
                given[fact] = line.leg
                said.setdefault(fact, []).append(words)
            last_gave = tuple(fact for fact, _ in line.gave)
            continue
        if rejects(line.text):
            for fact in last_gave:
                given.pop(fact, None)
            last_gave = ()
        asked, _confirmed = asked_facts(line.text, said)
        for fact in sorted(asked):
            if fact not in given:
                continue
            if fact in AUTHENTICATION_FACTS and given[fact] != line.leg:
                continue
            found.append(FoundRepeat("text", fact, line.speaker, f"line {number}"))
    return found
