"""/v1/queues: what waits in each queue, and who could take it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tandem.api.auth import Authenticated, require, runtime_of, tenant_of

router = APIRouter(prefix="/v1/queues", tags=["agents and routing"])


@router.get("", summary="Queues with waiting handoffs and available agents (supervisor, admin)")
async def list_queues(request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "supervisor", "admin", doing="see queues")
    runtime = runtime_of(request)
    await runtime.router.sync()
    stats = runtime.router.queue_stats(tenant_of(request, principal))
    return {"items": [s.to_api() for s in stats], "next_cursor": None}
