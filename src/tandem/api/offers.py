"""/v1/offers: the agent an offer was made to accepts or declines it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tandem.api.auth import Authenticated, require, runtime_of
from tandem.api.schemas import DecisionIn

router = APIRouter(prefix="/v1/offers", tags=["agents and routing"])


@router.post(
    "/{offer_id}/accept",
    summary="Accept an offer: take the floor (410 offer_expired; 409 capacity_full or already_decided)",
)
async def accept_offer(offer_id: str, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="accept offers")
    state = await runtime_of(request).router.accept(offer_id, principal.id)
    return {"interaction_id": state.interaction_id, "floor": state.floor.to_api()}


@router.post("/{offer_id}/decline", summary="Decline an offer: it goes to someone else")
async def decline_offer(
    offer_id: str, request: Request, principal: Authenticated, body: DecisionIn | None = None
) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="decline offers")
    reason = body.reason if body else None
    state = await runtime_of(request).router.decline(offer_id, principal.id, reason)
    return {"interaction_id": state.interaction_id, "floor": state.floor.to_api()}
