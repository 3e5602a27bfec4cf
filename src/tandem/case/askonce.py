"""Ask once: the one rule every participant obeys before asking the customer anything.

A fact may be asked only when the case file has no usable assertion: it is absent, stale for its type,
conflicting, or below the confidence the step needs. Confirming a known fact is not asking. An
authentication challenge on a leg is governed by that leg's assurance, not by this rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tandem.case import events as ev
from tandem.case.casefile import Assertion, CaseFile
from tandem.case.envelope import Event
from tandem.case.legs import Assurance

Basis = Literal["absent", "stale", "conflicted", "low_confidence", "known", "authentication"]
ASKABLE: frozenset[str] = frozenset({"absent", "stale", "conflicted", "low_confidence", "authentication"})


@dataclass(frozen=True, slots=True)
class AskDecision:
    allowed: bool
    basis: Basis
    name: str
    subject: str | None = None


def may_ask(
    case: CaseFile, name: str, now: datetime, subject: str | None = None, min_confidence: float = 0.0
) -> AskDecision:
    fact = case.resolve(name, now, subject)
    basis: Basis
    if fact is None:
        basis = "absent"
    elif fact.status == "conflicted":
        basis = "conflicted"
    elif fact.status == "stale":
        basis = "stale"
    elif fact.confidence < min_confidence:
        basis = "low_confidence"
    else:
        basis = "known"
    return AskDecision(basis in ASKABLE, basis, name, subject)


def may_challenge(leg_assurance: Assurance, needed: Assurance, name: str) -> AskDecision:
    """An authentication question is fair exactly while the leg is below the level the request needs."""
    if leg_assurance < needed:
        return AskDecision(True, "authentication", name)
    return AskDecision(False, "known", name)


@dataclass(frozen=True, slots=True)
class Repeat:
    seq: int
    name: str
    subject: str | None
    asked_by: str


def repeats(events: Iterable[Event], min_confidence: float = 0.0) -> list[Repeat]:
    """Count repeats by the rule itself, replaying the log rather than trusting what participants claimed.

    A FactRequested is a repeat when, at the moment it was recorded, the case file already held a usable
    assertion for that fact. Authentication challenges are not counted: assurance governs them.
    """
    case = CaseFile()
    found: list[Repeat] = []
    for event in events:
        d = event.data
        if event.type == ev.FACT_REQUESTED:
            if d.get("basis") == "authentication" or d.get("purpose") == "authentication":
                continue
            decision = may_ask(case, d["name"], event.occurred_at, d.get("subject"), min_confidence)
            if not decision.allowed:
                found.append(Repeat(event.seq, d["name"], d.get("subject"), event.actor.kind))
        elif event.type in (ev.FACT_LEARNED, ev.FACT_CORRECTED):
            assertion = Assertion.from_event(event)
            if event.type == ev.FACT_CORRECTED:
                case.correct(assertion)
            else:
                case.add(assertion)
    return found
