"""Who is calling and what they may see: bearer tokens to principals, tenants, and interaction access.

Tenancy: every token belongs to one tenant, except an admin token, which serves every tenant; an admin
(and an anonymous web chat) names the tenant with the ``X-Tandem-Tenant`` header or ``?tenant=``. With a
single tenant in the world, naming it is optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tandem.api.errors import ApiError, forbidden, not_found, unauthorized
from tandem.api.tokens import Principal, Role
from tandem.case.interaction import Interaction
from tandem.store.protocol import InteractionNotFound

if TYPE_CHECKING:
    from tandem.runtime import Runtime

TENANT_HEADER = "X-Tandem-Tenant"

bearer = HTTPBearer(auto_error=False, description="A Tandem token: admin, supervisor, agent, channel, customer")


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    """The principal of the bearer token, or None for an anonymous call. A bad token is never anonymous."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        return None
    principal = runtime_of(request).tokens.resolve(credentials.credentials)
    if principal is None:
        raise unauthorized("unknown or expired token")
    return principal


async def authenticated(principal: Annotated[Principal | None, Depends(caller)]) -> Principal:
    if principal is None:
        raise unauthorized("this endpoint needs a bearer token")
    return principal


Caller = Annotated[Principal | None, Depends(caller)]
Authenticated = Annotated[Principal, Depends(authenticated)]


def require(principal: Principal, *roles: Role, doing: str) -> None:
    if principal.role not in roles:
        raise forbidden(f"a {principal.role} token may not {doing}")


def tenant_of(request: Request, principal: Principal | None) -> str:
    runtime = runtime_of(request)
    named = request.headers.get(TENANT_HEADER) or request.query_params.get("tenant")
    if principal is not None and principal.tenant_id is not None:
        if named and named != principal.tenant_id:
            raise forbidden(f"this token belongs to tenant {principal.tenant_id}, not {named}")
        return principal.tenant_id
    if named:
        if named not in runtime.world.tenants:
            raise ApiError(400, "invalid_request", f"unknown tenant {named!r}")
        return named
    if len(runtime.world.tenants) == 1:
        return next(iter(runtime.world.tenants))
    raise ApiError(400, "invalid_request", f"name the tenant with the {TENANT_HEADER} header or ?tenant=")


async def interaction_for(request: Request, principal: Principal, interaction_id: str) -> Interaction:
    """The interaction, if the caller's tenant (and, for a customer, their token) reaches it; else 404, so
    that nobody learns which ids exist elsewhere."""
    runtime = runtime_of(request)
    missing = not_found(f"no interaction {interaction_id}")
    if principal.role == "customer" and principal.interaction_id != interaction_id:
        raise missing
    try:
        state = await runtime.conductor.load(interaction_id)
    except InteractionNotFound:
        raise missing from None
    if principal.tenant_id is not None and state.tenant_id != principal.tenant_id:
        raise missing
    return state


def holds_floor(principal: Principal, state: Interaction) -> bool:
    return state.floor.kind in ("human", "supervisor") and state.floor.participant_id == principal.id


def works_on(request: Request, principal: Principal, state: Interaction) -> bool:
    """An agent sees interactions offered to them, held by them, or handed over by them earlier."""
    if principal.role in ("admin", "supervisor"):
        return True
    if principal.role != "agent":
        return False
    if holds_floor(principal, state):
        return True
    if state.handoff is not None and state.handoff.agent_id == principal.id:
        return True
    if any(h.get("agent_id") == principal.id for h in state.handoffs):
        return True
    return bool(runtime_of(request).router.open_offers(principal.id, state.interaction_id))


def require_works_on(request: Request, principal: Principal, state: Interaction) -> None:
    if not works_on(request, principal, state):
        raise forbidden(f"interaction {state.interaction_id} is not offered to or held by you")
