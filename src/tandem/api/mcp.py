"""Tandem as an MCP server at ``/mcp`` (streamable HTTP, the official SDK's server side) for ``service``
tokens, and ``POST /v1/services`` for an admin to make one.

A service token belongs to one tenant and names one data scope (``ai``, ``copilot``, ``bot``, ``human`` or
``supervisor`` of the release's ``data_scopes``): what the outside agent may read of a case. What it may *do*
is policy's to say, as for everyone: its proposals are decided with ``proposer == "service"``.

The endpoint is a plain ASGI app in front of the SDK's session manager (no ``BaseHTTPMiddleware``): it
refuses a missing, unknown or expired token (401) and any token that is not a service's (403) in the API's
error shape, and hands the SDK the request with the authenticated principal in ``request.state``, where the
tools read it (``tandem.api.mcp_tools.principal_of``). The SDK runs stateless with JSON responses: every
POST stands alone, so any worker of a deployment can answer it. Its session manager is started and stopped
by this router's lifespan, which FastAPI merges into the app's.

DNS-rebinding protection (the SDK's Host and Origin checks) is off: it guards local servers that trust
whoever reaches them, and this one trusts nobody without a bearer token a browser page cannot forge.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, Request
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tandem.api.auth import Authenticated, require, runtime_of, tenant_of
from tandem.api.context import send_error
from tandem.api.mcp_tools import SCOPE_PREFIX, CaseTools, build_server
from tandem.api.schemas import Strict
from tandem.api.tokens import Principal
from tandem.case.envelope import new_id
from tandem.release.scopes import DataScopes

if TYPE_CHECKING:
    from tandem.runtime import Runtime

log = logging.getLogger(__name__)

PATH = "/mcp"
DataScope = Literal["ai", "copilot", "bot", "human", "supervisor"]


class ServiceIn(Strict):
    data_scope: DataScope = "ai"


class Scopes:
    """Each tenant's data scopes, from its signal release, loaded at first use. A tenant whose release cannot
    be read gets an empty scope: a service then sees no facts at all, rather than every fact."""

    def __init__(self) -> None:
        self._by_tenant: dict[str, DataScopes] | None = None

    def __call__(self, tenant_id: str) -> DataScopes:
        if self._by_tenant is None:
            from tandem.release.signals import ReleaseError, load_releases

            try:
                self._by_tenant = {t: release.scopes for t, release in load_releases().items()}
            except ReleaseError as exc:
                log.error("data scopes could not be loaded, services see no facts: %s", exc)
                self._by_tenant = {}
        return self._by_tenant.get(tenant_id) or DataScopes()


class McpServing:
    """One app's MCP server: the SDK server with Tandem's tools, and its session manager while it runs."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.server: MCPServer[Any] = build_server(CaseTools(runtime, Scopes()))
        # Called for its side effect: it creates the session manager that ``handle`` feeds.
        self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.server.session_manager.handle_request(scope, receive, send)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    serving = McpServing(app.state.runtime)
    app.state.mcp = serving
    try:
        async with serving.running():
            yield
    finally:
        app.state.mcp = None


class McpEndpoint:
    """``/mcp``: authenticate the service, then hand the request to the SDK."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = scope["app"]
        request_id = str(scope.get("state", {}).get("request_id", ""))
        serving: McpServing | None = getattr(app.state, "mcp", None)
        if serving is None:
            await send_error(send, 503, "unavailable", "the MCP server is not running", request_id)
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        principal = serving.runtime.tokens.resolve(token.strip()) if scheme.lower() == "bearer" and token else None
        if principal is None:
            await _refuse(send, 401, "unauthorized", "a valid service token is required", request_id)
            return
        if principal.role != "service" or principal.tenant_id is None:
            await _refuse(send, 403, "forbidden", f"a {principal.role} token may not use /mcp", request_id)
            return
        scope.setdefault("state", {})["principal"] = principal
        await serving.handle(scope, receive, send)


async def _refuse(send: Send, status: int, code: str, text: str, request_id: str) -> None:
    if status != 401:
        await send_error(send, status, code, text, request_id)
        return

    # send_error's headers plus the challenge a client expects with a 401.
    async def with_challenge(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message["headers"], (b"www-authenticate", b"Bearer")]
        await send(message)

    await send_error(with_challenge, status, code, text, request_id)


router = APIRouter(tags=["mcp"], lifespan=lifespan)
# A plain route with an ASGI endpoint (as the SDK mounts itself): /mcp exactly, no redirect to /mcp/.
router.routes.append(Route(PATH, McpEndpoint(), include_in_schema=False))


@router.post("/v1/services", status_code=201, summary="Create a service token for /mcp (admin)")
async def create_service(request: Request, principal: Authenticated, body: ServiceIn | None = None) -> dict[str, Any]:
    require(principal, "admin", doing="create service tokens")
    runtime = runtime_of(request)
    tenant_id = tenant_of(request, principal)
    scope = (body or ServiceIn()).data_scope
    service_id = new_id("svc")
    token = runtime.tokens.issue(Principal("service", service_id, tenant_id, frozenset({SCOPE_PREFIX + scope})))
    return {"id": service_id, "tenant": tenant_id, "data_scope": scope, "token": token, "path": PATH}
