"""``Idempotency-Key`` on every POST: the first response is stored, scoped to tenant, principal and route,
and replayed for a retry; the same key with a different body is refused with 422 and changes nothing.

Anonymous callers (the web chat before it has a token) have no principal to scope a key to, and replaying
one stranger's answer (with its customer token) to another would be a leak, so their keys are not stored.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.api.context import send_error
from tandem.api.tokens import Principal, TokenRegistry
from tandem.clock import Clock

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER,
    headers TEXT,
    body BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
"""
MAX_KEY = 255
# Headers worth replaying; the rest (date, server, request id) belong to the retry itself.
_REPLAYED = {b"content-type", b"location", b"retry-after"}


@dataclass(frozen=True, slots=True)
class Stored:
    body_hash: str
    status: int | None  # None: the first request is still running
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyStore:
    def __init__(self, db: sqlite3.Connection, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        db.executescript(SCHEMA)

    def claim(self, scope: str, key: str, body_hash: str) -> Stored | None:
        """Reserve the key for this request; or return what an earlier request with it stored."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO idempotency (scope, key, body_hash, created_at) VALUES (?, ?, ?, ?)",
            (scope, key, body_hash, self._clock.now().isoformat()),
        )
        if cursor.rowcount == 1:
            return None
        row = self._db.execute(
            "SELECT body_hash, status, headers, body FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
        ).fetchone()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(row[2] or "[]")]
        return Stored(row[0], row[1], headers, bytes(row[3] or b""))

    def complete(self, scope: str, key: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        kept = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k.lower() in _REPLAYED]
        self._db.execute(
            "UPDATE idempotency SET status = ?, headers = ?, body = ? WHERE scope = ? AND key = ?",
            (status, json.dumps(kept), body, scope, key),
        )

    def release(self, scope: str, key: str) -> None:
        self._db.execute("DELETE FROM idempotency WHERE scope = ? AND key = ? AND status IS NULL", (scope, key))


def body_hash(body: bytes) -> str:
    # The same JSON written with other spacing or key order is the same request.
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


class Idempotency:
    def __init__(self, app: ASGIApp, tokens: TokenRegistry, store: IdempotencyStore) -> None:
        self.app = app
        self.tokens = tokens
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", []))
        key = headers.get(b"idempotency-key", b"").decode("latin-1").strip()
        principal = self._principal(headers) if scope["type"] == "http" and scope["method"] == "POST" else None
        if not key or principal is None:
            await self.app(scope, receive, send)
            return
        request_id = str(scope.get("state", {}).get("request_id", ""))
        if len(key) > MAX_KEY:
            await send_error(send, 400, "invalid_request", f"Idempotency-Key is over {MAX_KEY} characters", request_id)
            return
        body = await _read_body(receive)
        digest = body_hash(body)
        tenant = principal.tenant_id or headers.get(b"x-tandem-tenant", b"*").decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        where = f"{tenant}|{principal.role}:{principal.id}|POST {scope['path']}?{query}"
        earlier = self.store.claim(where, key, digest)
        if earlier is not None:
            if earlier.body_hash != digest:
                message = "this Idempotency-Key was already used with a different body; use a new key"
                await send_error(send, 422, "idempotency_key_reused", message, request_id)
            elif earlier.status is None:
                message = "a request with this Idempotency-Key is still running; retry shortly"
                await send_error(send, 409, "request_in_progress", message, request_id)
            else:
                replayed = [*earlier.headers, (b"idempotent-replayed", b"true")]
                await send({"type": "http.response.start", "status": earlier.status, "headers": replayed})
                await send({"type": "http.response.body", "body": earlier.body})
            return

        status = 0
        sent_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # after the body: the disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, sent_headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                sent_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            if 0 < status < 500:
                self.store.complete(where, key, status, sent_headers, b"".join(chunks))
            else:
                # A failure on our side is not an answer: let the retry run again.
                self.store.release(where, key)

    def _principal(self, headers: dict[bytes, bytes]) -> Principal | None:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.resolve(token.strip())


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(bytes(message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
