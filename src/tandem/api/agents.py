"""/v1/agents: create agents (admin), list them with presence and load, set presence, see offers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from tandem.api.auth import Authenticated, require, runtime_of, tenant_of
from tandem.api.errors import forbidden, invalid
from tandem.api.schemas import AgentIn, PresenceIn
from tandem.api.tokens import Principal
from tandem.routing.card import handoff_card
from tandem.routing.presence import Agent
from tandem.routing.queue import GENERAL, queues_of
from tandem.runtime import Runtime

router = APIRouter(prefix="/v1/agents", tags=["agents and routing"])


def agent_view(runtime: Runtime, agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.agent_id,
        "name": agent.name,
        "role": agent.role,
        "skills": list(agent.skills),
        "capacity": agent.capacity,
        "presence": agent.presence,
        "load": runtime.router.load_of(agent.agent_id),
        "offers": len(runtime.router.open_offers(agent.agent_id)),
    }


def require_self(principal: Principal, agent_id: str) -> None:
    if principal.role not in ("agent", "supervisor") or principal.id != agent_id:
        raise forbidden(f"only agent {agent_id} may do this")


@router.post("", status_code=201, summary="Create an agent or supervisor and their token (admin)")
async def create_agent(body: AgentIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "admin", doing="create agents")
    runtime = runtime_of(request)
    tenant = runtime.world.tenant(tenant_of(request, principal))
    known = {*queues_of(tenant), GENERAL}
    unknown = sorted(set(body.skills) - known)
    if unknown:
        raise invalid(f"unknown skills {', '.join(unknown)}; {tenant.id} has {', '.join(sorted(known))}")
    agent = runtime.agents.create(tenant.id, body.name, body.role, body.skills, body.capacity, runtime.clock.now())
    token = runtime.tokens.issue(Principal(body.role, agent.agent_id, tenant.id))
    return {**agent_view(runtime, agent), "token": token}


@router.get("", summary="Agents with presence and load (supervisor, admin)")
async def list_agents(
    request: Request,
    principal: Authenticated,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, Any]:
    require(principal, "supervisor", "admin", doing="list agents")
    runtime = runtime_of(request)
    await runtime.router.sync()
    agents = [
        a for a in runtime.agents.of_tenant(tenant_of(request, principal)) if cursor is None or a.agent_id > cursor
    ]
    page = agents[:limit]
    return {
        "items": [agent_view(runtime, a) for a in page],
        "next_cursor": page[-1].agent_id if len(agents) > limit else None,
    }


@router.put("/{agent_id}/presence", summary="Set your presence (that agent)")
async def set_presence(agent_id: str, body: PresenceIn, request: Request, principal: Authenticated) -> dict[str, Any]:
    require_self(principal, agent_id)
    runtime = runtime_of(request)
    agent = runtime.agents.set_presence(agent_id, body.status)
    await runtime.router.step()  # becoming available may bring an offer right away
    return {"status": agent.presence}


@router.get("/{agent_id}/offers", summary="Your open offers, each with its handoff card (that agent)")
async def list_offers(agent_id: str, request: Request, principal: Authenticated) -> dict[str, Any]:
    require_self(principal, agent_id)
    runtime = runtime_of(request)
    await runtime.router.sync()
    now = runtime.clock.now()
    items = []
    for offer in runtime.router.open_offers(agent_id):
        state = await runtime.conductor.load(offer.interaction_id)
        items.append(offer.to_api(handoff_card(state, now)))
    return {"items": items, "next_cursor": None}
