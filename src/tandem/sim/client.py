"""The simulator's client of Tandem's HTTP API v1: the same code over a socket or in process.

Only the paths, fields and statuses of the API contract are used, so the simulator exercises what a
channel, an agent desktop and an operator would.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx


class ApiCallFailed(Exception):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = str(error.get("code") or status)
        self.message = str(error.get("message") or body)
        super().__init__(f"{method} {path} -> {status} {self.code}: {self.message}")


class TandemApi:
    def __init__(self, http: httpx.AsyncClient, admin_token: str) -> None:
        self.http = http
        self.admin_token = admin_token

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Any:
        """The answer's JSON alone (see ``respond``)."""
        return (await self.respond(method, path, token, body, params, tenant))[0]

    async def respond(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[Any, httpx.Headers]:
        """The answer's JSON and its headers (an ETag, a Location); ``ApiCallFailed`` from 400 up."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(extra or {})
        if tenant:
            # An admin token serves every tenant, and an anonymous chat has no token: both name the tenant.
            headers["X-Tandem-Tenant"] = tenant
        if method == "POST":
            # Every POST carries a key, as a careful client would; the simulator never retries blind.
            headers["Idempotency-Key"] = uuid.uuid4().hex
        response = await self.http.request(method, path, json=body, params=params, headers=headers)
        payload: Any = response.json() if response.content else None
        if response.status_code >= 400:
            raise ApiCallFailed(method, path, response.status_code, payload)
        return payload, response.headers

    # -- interactions ----------------------------------------------------------------------------------
    async def start(
        self,
        tenant: str,
        token: str | None,
        channel: str,
        customer: Mapping[str, Any] | None = None,
        assurance: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"channel": channel, "customer": dict(customer or {})}
        if assurance:
            body["assurance"] = assurance
        return dict(await self.call("POST", "/v1/interactions", token, body, tenant=tenant))

    async def say(self, interaction_id: str, token: str, text: str, leg_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if leg_id:
            body["leg_id"] = leg_id
        return dict(await self.call("POST", f"/v1/interactions/{interaction_id}/messages", token, body))

    async def interaction(self, interaction_id: str, token: str | None = None) -> dict[str, Any]:
        return dict(await self.call("GET", f"/v1/interactions/{interaction_id}", token or self.admin_token))

    async def events(self, interaction_id: str, after: int = 0) -> list[dict[str, Any]]:
        """Every event after ``after``, following pages by ``after`` (and ``next_cursor`` where given)."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"after": after, "limit": 500}
        for _ in range(1000):
            page = await self.call("GET", f"/v1/interactions/{interaction_id}/events", self.admin_token, None, params)
            items = page["items"] if isinstance(page, dict) else page
            out.extend(items)
            cursor = page.get("next_cursor") if isinstance(page, dict) else None
            if not items or (not cursor and len(items) < params["limit"]):
                return out
            params = {"after": items[-1]["seq"], "limit": 500}
            if cursor:
                params["cursor"] = cursor
        return out

    async def close(self, interaction_id: str, token: str, disposition: str | None = None) -> None:
        body = {"disposition": disposition} if disposition else {}
        await self.call("POST", f"/v1/interactions/{interaction_id}/close", token, body)

    async def handback(self, interaction_id: str, token: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(await self.call("POST", f"/v1/interactions/{interaction_id}/handback", token, body))

    async def decide_action(self, interaction_id: str, token: str, action_id: str, verdict: str, reason: str) -> None:
        path = f"/v1/interactions/{interaction_id}/actions/{action_id}/{verdict}"
        await self.call("POST", path, token, {"reason": reason})

    async def add_fact(self, interaction_id: str, token: str, name: str, value: Any) -> None:
        await self.call("POST", f"/v1/interactions/{interaction_id}/facts", token, {"name": name, "value": value})

    async def wrapup(self, interaction_id: str, token: str, disposition: str, notes: str | None = None) -> None:
        body: dict[str, Any] = {"disposition": disposition}
        if notes:
            body["notes"] = notes
        await self.call("POST", f"/v1/interactions/{interaction_id}/wrapup", token, body)

    # -- releases (as an admin) -----------------------------------------------------------------------
    async def active_release(self, tenant: str) -> tuple[dict[str, Any], str | None]:
        """The active release and its ETag (None when the deployment runs without policies)."""
        payload, headers = await self.respond("GET", "/v1/release", self.admin_token, tenant=tenant)
        return dict(payload), headers.get("ETag")

    async def release_text(self, tenant: str, release: str) -> str:
        return str((await self.call("GET", f"/v1/releases/{release}", self.admin_token, tenant=tenant))["text"])

    async def publish_policy(self, tenant: str, text: str) -> str:
        """Publish a policy text; the release id (a new version, or the same text's earlier one)."""
        return str((await self.call("POST", "/v1/releases", self.admin_token, {"policy": text}, tenant=tenant))["id"])

    async def activate_release(self, tenant: str, release: str, if_match: str) -> None:
        path = f"/v1/releases/{release}/activate"
        await self.respond("POST", path, self.admin_token, {}, tenant=tenant, extra={"If-Match": if_match})

    # -- agents and routing ----------------------------------------------------------------------------
    async def create_agent(
        self, tenant: str, name: str, skills: list[str], capacity: int, role: str = "agent"
    ) -> tuple[str, str]:
        body = {"name": name, "skills": skills, "capacity": capacity, "role": role}
        created = await self.call("POST", "/v1/agents", self.admin_token, body, tenant=tenant)
        return str(created["id"]), str(created["token"])

    async def presence(self, agent_id: str, token: str, status: str) -> None:
        await self.call("PUT", f"/v1/agents/{agent_id}/presence", token, {"status": status})

    async def offers(self, agent_id: str, token: str) -> list[dict[str, Any]]:
        page = await self.call("GET", f"/v1/agents/{agent_id}/offers", token)
        return list(page["items"] if isinstance(page, dict) else page)

    async def accept(self, offer_id: str, token: str) -> dict[str, Any]:
        return dict(await self.call("POST", f"/v1/offers/{offer_id}/accept", token, {}))
