"""The floor: exactly one participant speaks to the customer; the epoch fences everything else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SPEAKERS = frozenset({"ivr", "bot", "ai", "human", "supervisor"})


@dataclass(frozen=True, slots=True)
class Floor:
    kind: str
    participant_id: str | None
    epoch: int

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "epoch": self.epoch}
        if self.participant_id is not None:
            out["participant_id"] = self.participant_id
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Floor:
        return cls(kind=raw["kind"], participant_id=raw.get("participant_id"), epoch=int(raw["epoch"]))
