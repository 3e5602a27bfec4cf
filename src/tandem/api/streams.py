"""Server-sent event streams, per audience, and the tickets browsers open them with.

Each event's ``id:`` is its ``seq`` (interaction streams) or store-wide ``position`` (agent streams). A
client resumes with ``Last-Event-ID`` (or ``?last_event_id=``, for clients that reconnect by hand): the
stream reads what was missed from the store, then follows the bus. The bus only wakes the stream; every
event sent is read from the store, so a lost wake-up delays an event by at most one heartbeat, never
loses it. Events carry no ``event:`` name, so a browser's ``onmessage`` sees them all; the JSON has the type.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from tandem.api.agents import require_self
from tandem.api.auth import (
    Authenticated,
    authenticated,
    bearer,
    caller,
    interaction_for,
    require,
    require_works_on,
    runtime_of,
)
from tandem.api.errors import forbidden, invalid, unauthorized
from tandem.api.schemas import TicketIn
from tandem.api.tokens import Principal
from tandem.api.views import customer_event
from tandem.bus import Bus
from tandem.case import events as ev
from tandem.case.envelope import Event
from tandem.case.interaction import Interaction
from tandem.routing.card import handoff_card
from tandem.runtime import Runtime

router = APIRouter(tags=["streams"])

TICKET_TTL = timedelta(seconds=60)
BATCH = 500
_INTERACTION_STREAM = re.compile(r"^/v1/interactions/([^/]+)/stream$")
_AGENT_STREAM = re.compile(r"^/v1/agents/([^/]+)/stream$")
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def stream_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """A bearer token, or a ticket for exactly this stream path (used up by opening it)."""
    ticket = request.query_params.get("ticket")
    if ticket is None:
        return await authenticated(await caller(request, credentials))
    principal = runtime_of(request).tokens.redeem_ticket(ticket)
    if principal is None:
        raise unauthorized("unknown, used or expired stream ticket")
    if principal.stream != request.url.path:
        raise forbidden(f"this ticket opens {principal.stream}, not {request.url.path}")
    return principal


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]


def _resume_point(request: Request, last_event_id: int | None) -> int | None:
    header = request.headers.get("last-event-id")
    if header is not None:
        if not header.strip().isdigit():
            raise invalid("Last-Event-ID must be a number", status=400)
        return int(header)
    return last_event_id


def _sse(event_id: int, payload: dict[str, Any]) -> str:
    return f"id: {event_id}\ndata: {json.dumps(payload, default=str)}\n\n"


async def _woken(queue: asyncio.Queue[Event], matters: Callable[[Event], bool], timeout_s: float) -> bool:
    """Wait for a committed event that matters (True) or until a heartbeat is due (False)."""
    try:
        async with asyncio.timeout(timeout_s):
            while not matters(await queue.get()):
                pass
            return True
    except TimeoutError:
        return False


@asynccontextmanager
async def _subscribed(bus: Bus) -> AsyncIterator[asyncio.Queue[Event]]:
    queue = bus.subscribe()
    try:
        yield queue
    finally:
        bus.unsubscribe(queue)


async def _audience(request: Request, principal: Principal, interaction_id: str) -> tuple[Interaction, bool]:
    """The interaction, if the principal may follow it, and whether they follow it as its customer (the
    reduced stream) rather than as staff."""
    require(principal, "customer", "agent", "supervisor", "admin", doing="follow interactions")
    state = await interaction_for(request, principal, interaction_id)
    if principal.role == "customer":
        return state, True
    require_works_on(request, principal, state)
    return state, False


@router.post("/v1/stream-tickets", status_code=201, summary="A single-use, short-lived ticket for one stream")
async def stream_ticket(body: TicketIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    if body.interaction_id is not None:
        path = f"/v1/interactions/{body.interaction_id}/stream"
    elif body.agent_id is not None:
        path = f"/v1/agents/{body.agent_id}/stream"
    else:
        path = str(body.path)
    if match := _INTERACTION_STREAM.match(path):
        await _audience(request, principal, match[1])
    elif match := _AGENT_STREAM.match(path):
        require_self(principal, match[1])
    else:
        raise invalid(f"{path} is not a stream")
    ticket, expires_at = runtime_of(request).tokens.issue_ticket(principal, path, TICKET_TTL)
    return {"ticket": ticket, "path": path, "expires_at": expires_at.isoformat()}


@router.get(
    "/v1/interactions/{interaction_id}/stream",
    summary="SSE of the interaction's events for the caller's audience (id = seq)",
    response_class=StreamingResponse,
)
async def interaction_stream(
    interaction_id: str,
    request: Request,
    principal: StreamPrincipal,
    after: Annotated[int | None, Query(ge=0, description="start after this seq (default: from the start)")] = None,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    state, customer = await _audience(request, principal, interaction_id)
    runtime = runtime_of(request)
    resumed = _resume_point(request, last_event_id)
    start = resumed if resumed is not None else (after or 0)
    if customer and not state.is_open and start >= state.version:
        return Response(status_code=204)  # nothing more will come: tells EventSource to stop reconnecting
    view: Callable[[Event], dict[str, Any] | None] = customer_event if customer else Event.to_dict

    async def render(event: Event) -> dict[str, Any] | None:
        return view(event)

    def read(seq: int) -> Awaitable[list[Event]]:
        return runtime.store.read(interaction_id, after_seq=seq, limit=BATCH)

    events = _follow(
        runtime, read, start, render,
        cursor=lambda e: e.seq,
        matters=lambda e: e.interaction_id == interaction_id,
        last=lambda e: customer and e.type == ev.INTERACTION_CLOSED,  # a customer's stream ends with the case
    )  # fmt: skip
    return StreamingResponse(events, media_type="text/event-stream", headers=_HEADERS)


async def _follow(
    runtime: Runtime,
    read: Callable[[int], Awaitable[list[Event]]],
    after: int,
    render: Callable[[Event], Awaitable[dict[str, Any] | None]],
    *,
    cursor: Callable[[Event], int],
    matters: Callable[[Event], bool],
    last: Callable[[Event], bool] = lambda e: False,
) -> AsyncIterator[str]:
    """Read what was committed after ``after`` from the store, send what ``render`` keeps (``id:`` is the
    ``cursor`` of the event), then sleep until the bus says something that ``matters`` was committed, or a
    heartbeat is due."""
    # Subscribe before the first read: anything committed after it wakes us, anything before it we read.
    async with _subscribed(runtime.bus) as queue:
        yield ": open\n\n"
        while True:
            batch = await read(after)
            for event in batch:
                after = cursor(event)
                payload = await render(event)
                if payload is not None:
                    yield _sse(after, payload)
                if last(event):
                    return
            if len(batch) == BATCH:
                continue
            if not await _woken(queue, matters, runtime.stream_heartbeat_s):
                yield ": keep-alive\n\n"


@router.get(
    "/v1/agents/{agent_id}/stream",
    summary="SSE for one agent: their offers and the events of interactions they hold (id = position)",
    response_class=StreamingResponse,
)
async def agent_stream(
    agent_id: str,
    request: Request,
    principal: StreamPrincipal,
    last_event_id: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    require_self(principal, agent_id)
    runtime = runtime_of(request)
    await runtime.router.sync()
    resumed = _resume_point(request, last_event_id)
    start = resumed if resumed is not None else runtime.router.position
    desk = _Desk(runtime, principal.tenant_id or "", agent_id)

    def read(position: int) -> Awaitable[list[Event]]:
        return runtime.store.read_all(position, limit=BATCH)

    events = _follow(runtime, read, start, desk.render, cursor=lambda e: e.position, matters=desk.matters)
    return StreamingResponse(events, media_type="text/event-stream", headers=_HEADERS)


class _Desk:
    """What one agent's stream carries: their offers (with the card), and every event of the interactions
    they hold or are offered, including the one that takes an interaction away from them."""

    def __init__(self, runtime: Runtime, tenant_id: str, agent_id: str) -> None:
        self.runtime, self.tenant_id, self.agent_id = runtime, tenant_id, agent_id
        self.held = runtime.router.held_by(agent_id)
        self.offered = {o.interaction_id for o in runtime.router.open_offers(agent_id)}

    def matters(self, event: Event) -> bool:
        return event.tenant_id == self.tenant_id

    async def render(self, event: Event) -> dict[str, Any] | None:
        if event.tenant_id != self.tenant_id:
            return None
        iid, d = event.interaction_id, event.data
        mine = d.get("agent_id") == self.agent_id
        relevant = mine or iid in self.held or iid in self.offered
        if event.type == ev.HANDOFF_OFFERED and mine:
            self.offered.add(iid)
        elif event.type in (ev.HANDOFF_ACCEPTED, ev.HANDOFF_DECLINED, ev.HANDOFF_EXPIRED, ev.HANDOFF_ABANDONED):
            self.offered.discard(iid)
        elif event.type == ev.FLOOR_MOVED:
            if d.get("participant_id") == self.agent_id:
                self.held.add(iid)
                relevant = True
            else:
                self.held.discard(iid)
        elif event.type == ev.INTERACTION_CLOSED:
            self.offered.discard(iid)
            self.held.discard(iid)
        if not relevant:
            return None
        payload = event.to_dict()
        if event.type == ev.HANDOFF_OFFERED and mine:
            state = await self.runtime.conductor.load(iid)
            payload["offer"] = {
                "id": d["offer_id"],
                "interaction_id": iid,
                "handoff_id": d["handoff_id"],
                "queue": d.get("queue"),
                "expires_at": d["expires_at"],
                "card": handoff_card(state, self.runtime.clock.now()),
            }
        return payload
