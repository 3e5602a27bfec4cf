"""Legs: one channel session each, with its own assurance of who is on it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class Assurance(IntEnum):
    """How far the person on a leg is authenticated. Ordered: a request needs at least some level."""

    NONE = 0
    IDENTIFIED = 1  # caller id, or a claim ("I'm Maria Lopez")
    KNOWLEDGE_VERIFIED = 2  # answered knowledge questions against the records
    STRONG = 3  # one-time code, signed link or logged-in app

    @classmethod
    def parse(cls, name: str) -> Assurance:
        aliases = {"authenticated": cls.STRONG, "verified": cls.KNOWLEDGE_VERIFIED}
        key = name.lower()
        if key in aliases:
            return aliases[key]
        try:
            return cls[key.upper()]
        except KeyError:
            raise ValueError(
                f"unknown assurance {name!r}; use none, identified, knowledge_verified or strong"
            ) from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Leg:
    leg_id: str
    channel: str
    assurance: Assurance
    opened_at: str
    opened_seq: int = 0
    open: bool = True
    verified_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.leg_id,
            "channel": self.channel,
            "assurance": self.assurance.label,
            "opened_at": self.opened_at,
            "opened_seq": self.opened_seq,
            "open": self.open,
            "verified_by": self.verified_by,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Leg:
        return cls(
            leg_id=raw["id"],
            channel=raw["channel"],
            assurance=Assurance.parse(raw["assurance"]),
            opened_at=raw["opened_at"],
            opened_seq=int(raw.get("opened_seq", 0)),
            open=raw["open"],
            verified_by=raw.get("verified_by"),
        )
