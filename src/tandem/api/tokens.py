"""Bearer tokens and stream tickets: who is calling, for which tenant, allowed to do what.

Only a token's SHA-256 is stored, so the registry leaks nothing usable. A principal has a role (admin,
supervisor, agent, channel, customer, service), a tenant (``None`` for an admin of every tenant), an id,
scopes (a channel's kinds), and, for a customer, the one interaction the token is valid for. A stream
ticket is a single-use, short-lived stand-in for a token, for one stream path, because a browser's
EventSource cannot send an Authorization header.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from tandem.case.envelope import Actor
from tandem.clock import Clock

Role = Literal["admin", "supervisor", "agent", "channel", "customer", "service"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    role TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    tenant_id TEXT,
    scopes TEXT NOT NULL,
    interaction_id TEXT,
    stream TEXT,
    expires_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_expiry ON tokens (kind, expires_at);
"""


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    id: str
    tenant_id: str | None
    scopes: frozenset[str] = frozenset()
    interaction_id: str | None = None  # a customer token is valid for this interaction only
    stream: str | None = None  # a ticket is valid for this stream path only

    @property
    def trusted(self) -> bool:
        """Trusted callers vouch for who the customer is: they may continue a case and state assurance."""
        return self.role in ("admin", "channel")

    @property
    def actor(self) -> Actor:
        kind = {"agent": "human", "admin": "system"}.get(self.role, self.role)
        return Actor(kind, self.id)

    def to_api(self) -> dict[str, object]:
        out: dict[str, object] = {"role": self.role, "id": self.id, "tenant": self.tenant_id}
        if self.scopes:
            out["scopes"] = sorted(self.scopes)
        if self.interaction_id is not None:
            out["interaction_id"] = self.interaction_id
        return out


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenRegistry:
    def __init__(self, db: sqlite3.Connection, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        db.executescript(SCHEMA)

    def issue(self, principal: Principal, *, ttl: timedelta | None = None) -> str:
        token = "tdm_" + secrets.token_urlsafe(32)
        self._store(token, "bearer", principal, ttl)
        return token

    def register(self, token: str, principal: Principal) -> None:
        """Adopt a token chosen outside (``TANDEM_ADMIN_TOKEN``); registering it again changes nothing."""
        self._store(token, "bearer", principal, None, replace_existing=True)

    def resolve(self, token: str) -> Principal | None:
        return self._find(token, "bearer")

    def issue_ticket(self, principal: Principal, stream: str, ttl: timedelta) -> tuple[str, datetime]:
        now = self._clock.now()
        self._db.execute("DELETE FROM tokens WHERE kind = 'ticket' AND expires_at <= ?", (now.isoformat(),))
        ticket = "tkt_" + secrets.token_urlsafe(24)
        self._store(ticket, "ticket", replace(principal, stream=stream), ttl)
        return ticket, now + ttl

    def redeem_ticket(self, ticket: str) -> Principal | None:
        """A ticket works once: a leaked URL (logs, history) is useless after the stream it opened."""
        principal = self._find(ticket, "ticket")
        self._db.execute("DELETE FROM tokens WHERE token_hash = ? AND kind = 'ticket'", (digest(ticket),))
        return principal

    def has_admin(self) -> bool:
        row = self._db.execute("SELECT 1 FROM tokens WHERE kind = 'bearer' AND role = 'admin' LIMIT 1").fetchone()
        return row is not None

    def _store(
        self, token: str, kind: str, p: Principal, ttl: timedelta | None, *, replace_existing: bool = False
    ) -> None:
        now = self._clock.now()
        verb = "INSERT OR REPLACE" if replace_existing else "INSERT"
        self._db.execute(
            f"{verb} INTO tokens (token_hash, kind, role, principal_id, tenant_id, scopes, interaction_id, stream,"
            " expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (digest(token), kind, p.role, p.id, p.tenant_id, json.dumps(sorted(p.scopes)), p.interaction_id,
             p.stream, (now + ttl).isoformat() if ttl is not None else None, now.isoformat()),
        )  # fmt: skip

    def _find(self, token: str, kind: str) -> Principal | None:
        row = self._db.execute(
            "SELECT role, principal_id, tenant_id, scopes, interaction_id, stream, expires_at FROM tokens"
            " WHERE token_hash = ? AND kind = ?",
            (digest(token), kind),
        ).fetchone()
        if row is None:
            return None
        if row[6] is not None and datetime.fromisoformat(row[6]) <= self._clock.now():
            return None
        return Principal(row[0], row[1], row[2], frozenset(json.loads(row[3])), row[4], row[5])
