"""Offers: a waiting handoff proposed to one agent until they accept, decline, or the offer expires.

Expiry is a durable timer scheduled with the offer, so it fires even after a restart; its id is derived
from the offer's, which is how the routing reactor knows which offer a fired timer ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

OfferStatus = Literal["open", "accepted", "declined", "expired", "withdrawn"]
EXPIRY_TIMER = "offer_expiry"
_TIMER_SUFFIX = ".expiry"


class OfferError(Exception):
    code = "invalid_request"


class OfferNotFound(OfferError):
    code = "not_found"


class OfferExpired(OfferError):
    code = "offer_expired"


class AlreadyDecided(OfferError):
    code = "already_decided"


class CapacityFull(OfferError):
    code = "capacity_full"


def expiry_timer_id(offer_id: str) -> str:
    return offer_id + _TIMER_SUFFIX


def offer_of_timer(timer_id: str) -> str | None:
    return timer_id.removesuffix(_TIMER_SUFFIX) if timer_id.endswith(_TIMER_SUFFIX) else None


@dataclass(slots=True)
class Offer:
    offer_id: str
    tenant_id: str
    interaction_id: str
    handoff_id: str
    agent_id: str
    queue: str
    offered_at: datetime
    expires_at: datetime
    status: OfferStatus = "open"

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    @property
    def timer_id(self) -> str:
        return expiry_timer_id(self.offer_id)

    def to_api(self, card: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.offer_id,
            "interaction_id": self.interaction_id,
            "handoff_id": self.handoff_id,
            "queue": self.queue,
            "status": self.status,
            "offered_at": self.offered_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        if card is not None:
            out["card"] = card
        return out
