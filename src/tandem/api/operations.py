"""Operations: liveness, readiness, metrics, and who a token belongs to (the release: ``api.releases``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tandem.api.auth import Authenticated, require, runtime_of, tenant_of
from tandem.api.errors import error_body, request_id_of

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store answers and the reactors run", response_model=None)
async def readyz(request: Request) -> dict[str, Any] | JSONResponse:
    runtime = runtime_of(request)
    checks: dict[str, str] = {}
    try:
        await runtime.store.checkpoint("readyz")
        checks["store"] = "ok"
    except Exception as exc:  # any failure of the store means not ready; say which
        checks["store"] = f"failing: {type(exc).__name__}"
    checks["reactors"] = "ok" if runtime.running else "not running"
    if all(v == "ok" for v in checks.values()):
        return {"status": "ready", "checks": checks}
    body = {"checks": checks, **error_body("unavailable", "not ready", request_id_of(request))}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


@router.get("/v1/metrics", summary="Counts for the tenant: interactions, floors, turns, queues (supervisor, admin)")
async def metrics(request: Request, principal: Authenticated) -> dict[str, Any]:
    require(principal, "supervisor", "admin", doing="read metrics")
    runtime = runtime_of(request)
    tenant_id = tenant_of(request, principal)
    await runtime.router.sync()
    agents = runtime.agents.of_tenant(tenant_id)
    return {
        "tenant": tenant_id,
        **runtime.metrics.snapshot(tenant_id),
        "queues": [s.to_api() for s in runtime.router.queue_stats(tenant_id)],
        "agents": {p: sum(1 for a in agents if a.presence == p) for p in ("available", "busy", "away")},
    }


@router.get("/v1/me", summary="Who this token belongs to")
async def me(principal: Authenticated) -> dict[str, object]:
    return principal.to_api()
