"""The case file: what everyone knows about this customer's need, each fact with its provenance.

Several assertions may speak about one fact (what the customer said, what the system of record says, what
an agent corrected). A stated precedence resolves them, corrections supersede, and every fact type has a
freshness after which it is stale and may be asked or fetched again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from tandem.case.envelope import Event

FactStatus = Literal["known", "conflicted", "stale"]

# Higher wins. An action's result is the newest truth about what it changed (the hold is released even if
# the lakehouse still says held); systems of record and signals outrank what anyone says; a person's
# explicit correction supersedes rather than outranks, see ``CaseFile.correct``.
PRECEDENCE: Mapping[str, int] = {
    "action": 50,
    "system": 40,
    "signal": 40,
    "agent": 30,
    "supervisor": 30,
    "customer": 20,
    "ivr": 20,
    "bot": 10,
    "ai": 10,
    "inference": 10,
}


def source_kind(source: str) -> str:
    """``"signal:card_transactions"`` -> ``"signal"``."""
    return source.split(":", 1)[0]


def precedence_of(source: str) -> int:
    return PRECEDENCE.get(source_kind(source), 0)


@dataclass(frozen=True, slots=True)
class FactType:
    name: str
    freshness: timedelta | None = None  # None: does not go stale within an interaction
    label: str = ""


# Freshness per fact type. Balances and holds move; a date of birth does not.
FACT_TYPES: dict[str, FactType] = {
    t.name: t
    for t in (
        FactType("customer_name", label="name"),
        FactType("date_of_birth", label="date of birth"),
        FactType("zip", label="ZIP code"),
        FactType("phone", label="phone number"),
        FactType("email", label="email address"),
        FactType("card_last4", label="last four digits of the card"),
        FactType("member_id", label="member ID"),
        FactType("account_id", label="account number"),
        FactType("balance", freshness=timedelta(minutes=5), label="balance"),
        FactType("statement_balance", freshness=timedelta(hours=1), label="statement balance"),
        FactType("card_hold", freshness=timedelta(minutes=5), label="card hold"),
        FactType("fraud_score", freshness=timedelta(minutes=5), label="fraud score"),
        FactType("claim_status", freshness=timedelta(hours=1), label="claim status"),
        FactType("coverage", freshness=timedelta(hours=1), label="coverage"),
        FactType("travel_location", label="travel location"),
        FactType("reason", label="reason for contact"),
    )
}


def fact_type(name: str) -> FactType:
    return FACT_TYPES.get(name) or FactType(name, label=name.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Assertion:
    name: str
    value: Any
    source: str
    confidence: float
    at: datetime
    seq: int
    subject: str | None = None
    verified: bool = False
    superseded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "source": self.source,
            "confidence": self.confidence,
            "at": self.at.isoformat(),
            "seq": self.seq,
            "subject": self.subject,
            "verified": self.verified,
            "superseded": self.superseded,
        }

    @classmethod
    def from_event(cls, event: Event) -> Assertion:
        """The assertion a FactLearned or FactCorrected event makes."""
        d = event.data
        return cls(
            name=d["name"],
            value=d["value"],
            source=d["source"],
            confidence=float(d.get("confidence", 1.0)),
            at=datetime.fromisoformat(d["observed_at"]) if d.get("observed_at") else event.occurred_at,
            seq=event.seq,
            subject=d.get("subject"),
            verified=bool(d.get("verified", False)),
        )

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Assertion:
        return cls(
            name=raw["name"],
            value=raw["value"],
            source=raw["source"],
            confidence=float(raw["confidence"]),
            at=datetime.fromisoformat(raw["at"]),
            seq=int(raw["seq"]),
            subject=raw.get("subject"),
            verified=bool(raw.get("verified", False)),
            superseded=bool(raw.get("superseded", False)),
        )


@dataclass(frozen=True, slots=True)
class Fact:
    """The resolved view of one fact: what a participant should act on."""

    name: str
    value: Any
    status: FactStatus
    source: str
    confidence: float
    at: datetime
    verified: bool
    subject: str | None
    # Lower-precedence assertions that disagree, kept visible so an agent can see "customer said X".
    disagreements: tuple[Assertion, ...] = ()

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "status": self.status,
            "source": self.source,
            "confidence": self.confidence,
            "at": self.at.isoformat(),
            "verified": self.verified,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.disagreements:
            out["disagreements"] = [
                {"value": a.value, "source": a.source, "at": a.at.isoformat()} for a in self.disagreements
            ]
        return out


FactKey = tuple[str, str | None]


@dataclass
class CaseFile:
    assertions: dict[FactKey, list[Assertion]] = field(default_factory=dict)

    def add(self, assertion: Assertion) -> None:
        self.assertions.setdefault((assertion.name, assertion.subject), []).append(assertion)

    def correct(self, assertion: Assertion) -> None:
        """A person's correction supersedes every earlier assertion about the fact, whatever its source."""
        key = (assertion.name, assertion.subject)
        self.assertions[key] = [replace(a, superseded=True) for a in self.assertions.get(key, [])]
        self.assertions[key].append(assertion)

    def verify(self, name: str, subject: str | None) -> None:
        key = (name, subject)
        self.assertions[key] = [replace(a, verified=True) for a in self.assertions.get(key, [])]

    def resolve(self, name: str, now: datetime, subject: str | None = None) -> Fact | None:
        active = [a for a in self.assertions.get((name, subject), ()) if not a.superseded]
        if not active:
            return None
        top_rank = max(precedence_of(a.source) for a in active)
        top = [a for a in active if precedence_of(a.source) == top_rank]
        # Within one source the latest statement wins (a customer restating their ZIP corrects it);
        # different sources of equal rank that disagree are a conflict someone must settle.
        latest_by_source: dict[str, Assertion] = {}
        for a in top:
            held = latest_by_source.get(a.source)
            if held is None or a.seq > held.seq:
                latest_by_source[a.source] = a
        current = max(latest_by_source.values(), key=lambda a: a.seq)
        values = {_hashable(a.value) for a in latest_by_source.values()}
        status: FactStatus = "known"
        if len(values) > 1:
            status = "conflicted"
        else:
            freshness = fact_type(name).freshness
            if freshness is not None and now - current.at > freshness:
                status = "stale"
        disagreements = tuple(
            a for a in active if precedence_of(a.source) < top_rank and _hashable(a.value) != _hashable(current.value)
        )
        return Fact(
            name=name,
            value=current.value,
            status=status,
            source=current.source,
            confidence=current.confidence,
            at=current.at,
            verified=any(a.verified for a in latest_by_source.values()),
            subject=subject,
            disagreements=disagreements,
        )

    def facts(self, now: datetime) -> Iterator[Fact]:
        for name, subject in self.assertions:
            fact = self.resolve(name, now, subject)
            if fact is not None:
                yield fact

    def to_snapshot(self) -> list[dict[str, Any]]:
        return [a.to_dict() for items in self.assertions.values() for a in items]

    @classmethod
    def from_snapshot(cls, raw: list[dict[str, Any]]) -> CaseFile:
        case = cls()
        for item in raw:
            case.add(Assertion.from_dict(item))
        return case


def fact_key(name: str, subject: str | None) -> str:
    """The key a fact has in the API's ``facts`` map."""
    return name if subject is None else f"{name}[{subject}]"


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
