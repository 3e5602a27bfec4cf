"""The outermost layer of every request: a request id, a size limit, and the last word on failures.

A plain ASGI middleware (not ``BaseHTTPMiddleware``), so streams and context propagation pass through
untouched. Any exception that reaches it is logged with the request id and answered in the error shape,
never with a stack trace.
"""

from __future__ import annotations

import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.api.errors import error_body
from tandem.case.envelope import new_id

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


async def send_error(send: Send, status: int, code: str, message: str, request_id: str) -> None:
    body = json.dumps(error_body(code, message, request_id)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", request_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContext:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        offered = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = offered if _SAFE_ID.match(offered) else new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_body:
            await send_error(send, 413, "payload_too_large", f"the body is over {self.max_body // 1024} KB", request_id)
            return
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                answer = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in answer):
                    answer.append((b"x-request-id", request_id.encode()))
                message["headers"] = answer
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The top-level handler: log the trace for operators, give the caller only the request id.
            log.exception("request %s failed", request_id)
            if started:
                raise
            await send_error(send, 500, "internal_error", "something went wrong on our side", request_id)
