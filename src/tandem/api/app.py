"""The FastAPI application: ``create_app(runtime)``.

Layers, outermost first: request context (request id, body limit, the last word on failures), then
``Idempotency-Key`` handling, then the routers. The lifespan starts and stops the runtime's reactors; the
owner of the runtime closes it.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from tandem import __version__
from tandem.api import agents, channels, errors, interactions, mcp, offers, operations, queues, releases, streams
from tandem.api.context import RequestContext
from tandem.api.idempotency import Idempotency
from tandem.runtime import Runtime

STATIC_DIR = Path(__file__).resolve().parents[1] / "web" / "static"

DESCRIPTION = """
Tandem's HTTP API v1: channels, agent desktops, supervisors and outside systems on one shared case.

* **Auth**: `Authorization: Bearer <token>`. Roles: admin, supervisor, agent, channel (scoped to channel
  kinds), customer (one interaction), service. Every token has one tenant, except an admin token, which
  serves all tenants: an admin names the tenant with the `X-Tandem-Tenant` header (or `?tenant=`); so does
  an anonymous web chat (`POST /v1/interactions` without a token, when the tenant allows it).
* **Idempotency**: every POST accepts `Idempotency-Key`; the first answer is replayed for a retry (header
  `Idempotent-Replayed: true`); the same key with another body is `422 idempotency_key_reused`.
  Anonymous calls have nobody to scope a key to, so their keys are not stored.
* **Errors**: `{"error": {"code", "message", "details"?, "request_id"}}`; every response has `X-Request-ID`.
* **Lists**: `?limit=&cursor=` → `{"items", "next_cursor"}`.
* **Streams**: SSE; `id:` is `seq` (interaction) or `position` (agent); resume with `Last-Event-ID` or
  `?last_event_id=`; browsers use `?ticket=` from `POST /v1/stream-tickets` (single use, 60 s). A customer's
  stream carries only customer-visible events, as `{seq, type, from, text, at}`.
"""


def create_app(runtime: Runtime) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="Tandem API", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.runtime = runtime
    errors.install(app)
    # add_middleware wraps: the last added runs first.
    app.add_middleware(Idempotency, tokens=runtime.tokens, store=runtime.idempotency)
    app.add_middleware(RequestContext)
    for module in (operations, releases, interactions, streams, agents, offers, queues, channels, mcp):
        app.include_router(module.router)
    _pages(app)
    return app


def _pages(app: FastAPI) -> None:
    """The web pages (customer chat, agent desktop, ...) as static files, when they are installed."""
    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = STATIC_DIR / "index.html"
        if page.is_file():
            return FileResponse(page)
        links = "".join(
            f'<li><a href="/{html.escape(p.stem)}">{html.escape(p.stem)}</a></li>'
            for p in sorted(STATIC_DIR.glob("*.html"))
        )
        return HTMLResponse(f"<!doctype html><title>Tandem</title><h1>Tandem</h1><ul>{links}</ul>"
                            '<p><a href="/docs">API documentation</a></p>')  # fmt: skip

    @app.get("/{page}", include_in_schema=False)
    async def page(page: str, request: Request) -> Response:
        path = STATIC_DIR / f"{page}.html"
        if page.replace("-", "").replace("_", "").isalnum() and path.is_file():
            return FileResponse(path)
        raise errors.not_found(f"no page {request.url.path}")
