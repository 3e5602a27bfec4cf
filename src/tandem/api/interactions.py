"""/v1/interactions: start or continue a case, talk, hand over and back, correct facts, close."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tandem import commands as cmd
from tandem.actions import approvals
from tandem.api.auth import (
    Authenticated,
    Caller,
    holds_floor,
    interaction_for,
    require,
    require_works_on,
    runtime_of,
    tenant_of,
    works_on,
)
from tandem.api.errors import ApiError, forbidden, invalid, unauthorized
from tandem.api.schemas import (
    ApprovalIn,
    CloseIn,
    DecisionIn,
    FactIn,
    HandbackIn,
    HandoffIn,
    MessageIn,
    StartInteraction,
    WhisperIn,
    WrapupIn,
    dump,
)
from tandem.api.tokens import Principal
from tandem.api.views import (
    action_view,
    customer_handoff,
    customer_view,
    record_view,
    reply_view,
    staff_view,
)
from tandem.case import events as ev
from tandem.case.casefile import fact_key
from tandem.case.envelope import Actor, new_id
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.conductor import FloorNotHeld, Input, TurnResult
from tandem.routing.queue import GENERAL, queues_of
from tandem.runtime import Runtime
from tandem.store.protocol import OpenInteractionExists
from tandem.world.records import CustomerRecord
from tandem.world.world import Tenant

router = APIRouter(prefix="/v1/interactions", tags=["interactions"])

CUSTOMER_TOKEN_TTL = timedelta(hours=24)
TRUSTED_METHODS = {"voice": "caller_id", "sms": "caller_id"}


async def _settle(runtime: Runtime, result: TurnResult | None) -> None:
    """A turn that asked for a person gets queued and offered before we answer, not a poll later."""
    if result is not None and any(e.type == ev.HANDOFF_REQUESTED for e in result.produced):
        await runtime.router.step()


def _floor_for(principal: Principal, state: Interaction) -> dict[str, Any]:
    return {"kind": state.floor.kind} if principal.role == "customer" else state.floor.to_api()


def _speaking_actor(principal: Principal, state: Interaction) -> Actor:
    """The actor a member of staff speaks as: as who holds the floor, if it is them."""
    kind = state.floor.kind if holds_floor(principal, state) else principal.actor.kind
    return Actor(kind, principal.id)


def _require_floor(principal: Principal, state: Interaction) -> None:
    if not holds_floor(principal, state):
        holder = state.floor.kind + (f" {state.floor.participant_id}" if state.floor.participant_id else "")
        raise FloorNotHeld(f"you do not hold the floor of {state.interaction_id} ({holder} does)")


# -- starting ------------------------------------------------------------------------------------------------
def _anonymous_chat(tenant: Tenant) -> bool:
    return bool(tenant.settings.get("anonymous_chat", True))


def _identify(tenant: Tenant, body: StartInteraction) -> tuple[str, CustomerRecord | None, str | None]:
    """Who the customer is, as a trusted caller states it: an id, or a phone or email the directory knows."""
    c = body.customer
    directory = tenant.directory
    if c.id is not None:
        return c.id, directory.get(c.id), "customer_id"
    if c.phone is not None and (record := directory.find("phone", c.phone)) is not None:
        return record.id, record, TRUSTED_METHODS.get(body.channel, "phone")
    if c.email is not None and (record := directory.find("email", c.email)) is not None:
        return record.id, record, "email"
    return new_id("cus"), None, None


@router.post("", status_code=201, summary="Start an interaction, or continue the customer's open one")
async def start_interaction(body: StartInteraction, request: Request, principal: Caller) -> dict[str, Any]:
    runtime = runtime_of(request)
    if principal is not None:
        require(principal, "channel", "admin", doing="start interactions")
        if principal.role == "channel" and body.channel not in principal.scopes:
            raise forbidden(f"this channel token is for {', '.join(sorted(principal.scopes))}, not {body.channel}")
    tenant = runtime.world.tenant(tenant_of(request, principal))
    claimed = body.customer.model_dump(exclude_none=True, exclude={"id"})
    if principal is None:
        if not _anonymous_chat(tenant):
            raise unauthorized(f"{tenant.name} does not accept anonymous chats")
        if body.channel != "chat":
            raise forbidden("an anonymous caller may only start a web chat")
        if body.assurance is not None:
            raise forbidden("assurance is accepted only from trusted callers")
        # Whatever an anonymous caller claims stays a claim: a new, unauthenticated case, never someone's.
        customer_id, record, method = new_id("cus"), None, None
        actor = Actor("customer", customer_id)
    else:
        customer_id, record, method = _identify(tenant, body)
        actor = principal.actor
    if body.assurance is not None:
        assurance = Assurance.parse(body.assurance)
    else:
        assurance = Assurance.IDENTIFIED if record is not None else Assurance.NONE
    customer: dict[str, Any] = {**claimed}
    if record is not None:
        customer.update(record.public())
    if method is not None:
        customer["identified_by"] = method

    # Anyone the caller did not vouch for has a fresh id, so only a trusted caller continues an open case.
    interaction_id, leg_id, continued, result = await _open(
        runtime, tenant.id, body, actor, assurance, customer_id, customer
    )
    await _settle(runtime, result)
    token = runtime.tokens.issue(
        Principal("customer", customer_id, tenant.id, interaction_id=interaction_id), ttl=CUSTOMER_TOKEN_TTL
    )
    state = await runtime.conductor.load(interaction_id)
    return {
        "id": interaction_id,
        "leg_id": leg_id,
        "customer_token": token,
        "continued": continued,
        "state": customer_view(state),
        "replies": [reply_view(e) for e in result.replies],
    }


async def _open(
    runtime: Runtime,
    tenant_id: str,
    body: StartInteraction,
    actor: Actor,
    assurance: Assurance,
    customer_id: str,
    customer: dict[str, Any],
) -> tuple[str, str | None, bool, TurnResult]:
    """A new interaction, or a new leg of the customer's open one: (id, leg id, continued, first turn)."""
    existing = await runtime.store.open_interaction_of(tenant_id, customer_id)
    if existing is None:
        try:
            state, result = await runtime.conductor.start(
                tenant_id, customer_id, body.channel, actor=actor, customer=customer, assurance=assurance,
                attributes=body.attributes,
            )  # fmt: skip
            return state.interaction_id, state.current_leg_id, False, result
        except OpenInteractionExists as exc:  # opened by someone else meanwhile: join it
            existing = exc.existing
    result = await runtime.conductor.open_leg(tenant_id, existing, body.channel, assurance, actor)
    return existing, str(result.input.data["leg_id"]), True, result


# -- reading -------------------------------------------------------------------------------------------------
@router.get("", summary="Search interactions (supervisor, admin)")
async def search_interactions(
    request: Request,
    principal: Authenticated,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
    customer: Annotated[str | None, Query(max_length=128)] = None,
    floor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    require(principal, "supervisor", "admin", doing="search interactions")
    runtime = runtime_of(request)
    # One more than asked tells whether there is a next page, so the last page says so itself.
    records = await runtime.store.search(
        tenant_of(request, principal), status=status, customer_id=customer, floor_kind=floor, limit=limit + 1,
        after=cursor,
    )  # fmt: skip
    page = records[:limit]
    return {
        "items": [record_view(r) for r in page],
        "next_cursor": page[-1].interaction_id if len(records) > limit else None,
    }


@router.get("/{interaction_id}", summary="One interaction, as the caller may see it")
async def get_interaction(interaction_id: str, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "customer", "agent", "supervisor", "admin", doing="read interactions")
    state = await interaction_for(request, principal, interaction_id)
    if principal.role == "customer":
        return customer_view(state)
    require_works_on(request, principal, state)
    return staff_view(state, runtime_of(request).clock.now())


@router.get("/{interaction_id}/events", summary="The interaction's events (agent, supervisor, admin)")
async def list_events(
    interaction_id: str,
    request: Request,
    principal: Authenticated,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^\d+$")] = None,
) -> dict[str, Any]:
    require(principal, "agent", "supervisor", "admin", doing="read the event log")
    state = await interaction_for(request, principal, interaction_id)
    require_works_on(request, principal, state)
    start = int(cursor) if cursor is not None else after
    events = await runtime_of(request).store.read(interaction_id, after_seq=start, limit=limit + 1)
    page = events[:limit]
    return {
        "items": [e.to_dict() for e in page],
        "next_cursor": str(page[-1].seq) if len(events) > limit else None,
    }


# -- talking -------------------------------------------------------------------------------------------------
@router.post("/{interaction_id}/messages", summary="Say something to the interaction")
async def post_message(
    interaction_id: str, body: MessageIn, request: Request, principal: Authenticated
) -> dict[str, Any]:
    require(principal, "customer", "channel", "agent", "supervisor", doing="send messages")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    if body.leg_id is not None and body.leg_id not in state.legs:
        raise invalid(f"interaction {interaction_id} has no leg {body.leg_id}")
    if principal.role in ("agent", "supervisor"):
        if body.text is None:
            raise invalid("agents send text, not digits")
        inp = Input(
            state.tenant_id, interaction_id, ev.AGENT_SAID, {"text": body.text}, _speaking_actor(principal, state),
            leg_id=body.leg_id, floor_epoch=state.floor.epoch if body.floor_epoch is None else body.floor_epoch,
        )  # fmt: skip
    else:
        if principal.role == "channel" and not any(leg.channel in principal.scopes for leg in state.legs.values()):
            raise forbidden(f"interaction {interaction_id} has no leg on this channel's kinds")
        data = {"text": body.text} if body.text is not None else {"digits": body.digits}
        actor = Actor("customer", state.customer_id) if principal.role == "customer" else principal.actor
        inp = Input(state.tenant_id, interaction_id, ev.CUSTOMER_SAID, data, actor, leg_id=body.leg_id)
    result = await runtime.conductor.handle(inp)
    await _settle(runtime, result)
    state = await runtime.conductor.load(interaction_id)
    return {
        "seq": result.input.seq,
        "replies": [reply_view(e) for e in result.replies],
        "floor": _floor_for(principal, state),
    }


# -- handing over and back -------------------------------------------------------------------------------------
def _check_target(runtime: Runtime, state: Interaction, body: HandoffIn) -> None:
    target = body.target
    if target.kind == "queue":
        tenant = runtime.world.tenant(state.tenant_id)
        known = {*queues_of(tenant), GENERAL}
        if target.id not in known:
            raise invalid(f"unknown queue {target.id!r}; queues: {', '.join(sorted(known))}")
    elif target.kind == "agent":
        agent = runtime.agents.get(target.id or "")
        if agent is None or agent.tenant_id != state.tenant_id:
            raise invalid(f"unknown agent {target.id!r}")
    elif target.kind == "ai" and "ai" not in runtime.conductor.participants:
        raise invalid("no AI participant takes handoffs in this deployment")


@router.post("/{interaction_id}/handoff", status_code=202, summary="Ask for a person (or a queue, or an agent)")
async def request_handoff(
    interaction_id: str, body: HandoffIn, request: Request, principal: Authenticated
) -> dict[str, Any]:
    require(principal, "customer", "agent", "supervisor", "admin", doing="request a handoff")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    if principal.role == "customer" and body.target.kind != "human":
        raise forbidden("a customer may ask for a person (target kind human), not choose where to go")
    if principal.role == "agent":
        require_works_on(request, principal, state)
    _check_target(runtime, state, body)
    if not state.is_open:
        raise ApiError(409, "interaction_closed", f"interaction {interaction_id} is closed")
    with_person = principal.role == "customer" and state.floor.kind in ("human", "supervisor")
    if not with_person and not (state.handoff is not None and state.handoff.is_open):
        target = body.target.model_dump(exclude_none=True)
        await runtime.conductor.execute(
            state.tenant_id, interaction_id, [cmd.RequestHandoff(target=target, reason=body.reason)], principal.actor
        )
        await runtime.router.step()
        state = await runtime.conductor.load(interaction_id)
    if principal.role == "customer":
        return {"handoff": customer_handoff(state)}
    return {"handoff": state.handoff.to_api() if state.handoff else None}


@router.post("/{interaction_id}/handback", summary="Give the floor back to the bot (the agent holding it)")
async def hand_back(
    interaction_id: str, request: Request, principal: Authenticated, body: HandbackIn | None = None
) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="hand back")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    _require_floor(principal, state)
    if state.handoff is not None and state.handoff.status != "connected":
        raise ApiError(
            409, "handoff_in_progress",
            f"handoff {state.handoff.handoff_id} is {state.handoff.status}; hand back once it is settled",
        )  # fmt: skip
    data = {"to": "bot", **(dump(body) if body else {})}
    commands = [cmd.MoveFloor("bot", reason="hand-back"), cmd.Emit(ev.HANDED_BACK, data)]
    actor = _speaking_actor(principal, state)
    await runtime.conductor.execute(state.tenant_id, interaction_id, commands, actor, floor_epoch=state.floor.epoch)
    result = await runtime.conductor.process(interaction_id)
    await _settle(runtime, result)
    state = await runtime.conductor.load(interaction_id)
    return {"floor": state.floor.to_api(), "replies": [reply_view(e) for e in (result.replies if result else [])]}


# -- approvals -----------------------------------------------------------------------------------------------
@router.post("/{interaction_id}/actions/{action_id}/approve", summary="Approve a proposed action")
async def approve_action(
    interaction_id: str, action_id: str, request: Request, principal: Authenticated, body: ApprovalIn | None = None
) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="approve actions")
    state = await interaction_for(request, principal, interaction_id)
    body = body or ApprovalIn()
    action = await approvals.approve(
        runtime_of(request).conductor, state.tenant_id, interaction_id, action_id, principal.actor,
        reason=body.reason, args_digest=body.args_digest,
    )  # fmt: skip
    return {"action": action_view(action)}


@router.post("/{interaction_id}/actions/{action_id}/reject", summary="Reject a proposed action")
async def reject_action(
    interaction_id: str, action_id: str, request: Request, principal: Authenticated, body: DecisionIn | None = None
) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="reject actions")
    state = await interaction_for(request, principal, interaction_id)
    action = await approvals.reject(
        runtime_of(request).conductor, state.tenant_id, interaction_id, action_id, principal.actor,
        reason=body.reason if body else None,
    )  # fmt: skip
    return {"action": action_view(action)}


# -- the case file, supervisors, the end -----------------------------------------------------------------------
@router.post("/{interaction_id}/facts", status_code=201, summary="Correct or add a fact")
async def correct_fact(interaction_id: str, body: FactIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="correct facts")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    epoch: int | None = None
    if principal.role == "agent":
        _require_floor(principal, state)
        epoch = state.floor.epoch
    source = f"{'agent' if principal.role == 'agent' else 'supervisor'}:{principal.id}"
    correction = cmd.Correct(body.name, body.value, source, subject=body.subject)
    actor = _speaking_actor(principal, state)
    written = await runtime.conductor.execute(state.tenant_id, interaction_id, [correction], actor, floor_epoch=epoch)
    await runtime.conductor.process(interaction_id)
    state = await runtime.conductor.load(interaction_id)
    fact = state.fact(body.name, runtime.clock.now(), body.subject)
    return {
        "seq": written[0].seq if written else None,
        "fact": {"name": fact_key(body.name, body.subject), **fact.to_api()} if fact else None,
    }


@router.post("/{interaction_id}/whisper", status_code=202, summary="Whisper to the agent or the AI (supervisor)")
async def whisper(interaction_id: str, body: WhisperIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "supervisor", doing="whisper")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    data = {"to": body.to, "text": body.text}
    result = await runtime.conductor.handle(
        Input(state.tenant_id, interaction_id, ev.WHISPER_SENT, data, principal.actor)
    )
    return {"seq": result.input.seq}


@router.post("/{interaction_id}/barge", summary="Take the floor (supervisor)")
async def barge(interaction_id: str, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "supervisor", doing="barge in")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    if not (state.floor.kind == "supervisor" and state.floor.participant_id == principal.id):
        move = cmd.MoveFloor("supervisor", principal.id, reason="barge")
        await runtime.conductor.execute(state.tenant_id, interaction_id, [move], principal.actor)
        state = await runtime.conductor.load(interaction_id)
    return {"floor": state.floor.to_api()}


@router.post("/{interaction_id}/wrapup", summary="Record the agent's wrap-up")
async def wrap_up(interaction_id: str, body: WrapupIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "agent", "supervisor", doing="wrap up")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    require_works_on(request, principal, state)
    await runtime.conductor.execute(
        state.tenant_id, interaction_id, [cmd.Emit(ev.WRAPUP_RECORDED, dump(body))], _speaking_actor(principal, state),
        require_open=False,
    )  # fmt: skip
    state = await runtime.conductor.load(interaction_id)
    return {"wrapup": state.wrapup}


@router.post("/{interaction_id}/close", summary="Close the interaction")
async def close(
    interaction_id: str, request: Request, principal: Authenticated, body: CloseIn | None = None
) -> dict[str, Any]:
    require(principal, "customer", "channel", "agent", "supervisor", doing="close interactions")
    runtime = runtime_of(request)
    state = await interaction_for(request, principal, interaction_id)
    if principal.role == "agent" and not works_on(request, principal, state):
        raise forbidden(f"interaction {interaction_id} is not offered to or held by you")
    disposition = body.disposition if body else None
    actor = Actor("customer", state.customer_id) if principal.role == "customer" else principal.actor
    await runtime.conductor.execute(state.tenant_id, interaction_id, [cmd.Close(disposition)], actor)
    return {"status": "closed"}
