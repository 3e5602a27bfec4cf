"""Every endpoint, every role: exactly the callers the contract names get through; everybody else gets 401
(no or a bad token), 403 (a role that may not), 404 (what their token does not reach) or 409 (a role that may,
without the floor), and a refusal writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tandem import commands as cmd
from tandem.api.tokens import Principal
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tests.api.conftest import ADMIN_TOKEN, Api

ROLES = (
    "admin", "supervisor", "agent", "other_agent", "channel", "customer", "other_customer", "service", "anonymous",
    "bad_token",
)  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: Any = None
    answers: dict[str, int] = field(default_factory=dict)

    def expected(self, role: str) -> int:
        if role in self.answers:
            return self.answers[role]
        return 401 if role in ("anonymous", "bad_token") else 403

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def e(method: str, path: str, body: Any = None, **answers: int) -> Endpoint:
    return Endpoint(method, path, body, answers)


EVERYONE = {role: 200 for role in ROLES}
ENDPOINTS = [
    e("POST", "/v1/interactions", {"channel": "chat"}, admin=201, channel=201, anonymous=201),
    e("GET", "/v1/interactions", admin=200, supervisor=200),
    e("GET", "/v1/interactions/{I}", admin=200, supervisor=200, agent=200, customer=200, other_customer=404),
    e("GET", "/v1/interactions/{I}/events", admin=200, supervisor=200, agent=200),
    e("GET", "/v1/interactions/{I}/stream", admin=200, supervisor=200, agent=200, customer=200, other_customer=404),
    e("POST", "/v1/interactions/{I}/messages", {"text": "hello"},
      customer=200, channel=200, agent=200, supervisor=409, other_agent=409, other_customer=404),
    e("POST", "/v1/interactions/{I}/handoff", {"target": {"kind": "human"}, "reason": "please"},
      customer=202, agent=202, supervisor=202, admin=202, other_customer=404),
    e("POST", "/v1/interactions/{I}/handback", {}, agent=200, supervisor=409, other_agent=409),
    e("POST", "/v1/interactions/{I}/actions/{ACT}/approve", {}, agent=200, supervisor=200, other_agent=409),
    e("POST", "/v1/interactions/{I}/actions/{ACT}/reject", {}, agent=200, supervisor=200, other_agent=409),
    e("POST", "/v1/interactions/{I}/facts", {"name": "zip", "value": "94110"}, agent=201, supervisor=201,
      other_agent=409),
    e("POST", "/v1/interactions/{I}/whisper", {"to": "agent", "text": "psst"}, supervisor=202),
    e("POST", "/v1/interactions/{I}/barge", supervisor=200),
    e("POST", "/v1/interactions/{I}/wrapup", {"disposition": "resolved"}, agent=200, supervisor=200),
    e("POST", "/v1/interactions/{I}/close", {}, customer=200, channel=200, agent=200, supervisor=200,
      other_customer=404),
    e("POST", "/v1/agents", {"name": "New", "skills": ["cards"], "capacity": 1}, admin=201),
    e("GET", "/v1/agents", admin=200, supervisor=200),
    e("PUT", "/v1/agents/{A}/presence", {"status": "busy"}, agent=200),
    e("GET", "/v1/agents/{A}/offers", agent=200),
    e("GET", "/v1/agents/{A}/stream", agent=200),
    e("POST", "/v1/offers/{O}/accept", agent=200, other_agent=404, supervisor=404),
    e("POST", "/v1/offers/{O}/decline", agent=200, other_agent=404, supervisor=404),
    e("GET", "/v1/queues", admin=200, supervisor=200),
    e("GET", "/v1/metrics", admin=200, supervisor=200),
    e("GET", "/v1/release", admin=200, supervisor=200),
    # This deployment has no policies: nothing to publish over (tests/api/test_releases.py has one that does).
    e("GET", "/v1/releases", admin=200, supervisor=200),
    e("POST", "/v1/releases", {"policy": "policy: {tenant: bank}"}, admin=409),
    e("GET", "/v1/releases/{REL}", admin=404),
    e("POST", "/v1/releases/{REL}/activate", admin=409),
    e("POST", "/v1/stream-tickets", {"interaction_id": "{I}"}, admin=201, supervisor=201, agent=201, customer=201,
      other_customer=404),
    e("POST", "/v1/channels", {"kinds": ["chat"]}, admin=201),
    e("POST", "/v1/services", {"data_scope": "ai"}, admin=201),
    e("GET", "/v1/me", **{role: 200 for role in ROLES if role not in ("anonymous", "bad_token")}),
    e("GET", "/healthz", **EVERYONE),
    e("GET", "/readyz", **EVERYONE),
]  # fmt: skip


@dataclass
class Scene:
    """One case of each kind, fresh: interaction I held by agent A (with an action awaiting approval), an open
    offer O to A of another interaction, and a token for every role."""

    tokens: dict[str, str | None]
    ids: dict[str, str]


async def make_scene(api: Api) -> Scene:
    agent = await api.staff("A", capacity=2)
    other_agent = await api.staff("B", available=False)
    supervisor = await api.staff("S", role="supervisor", available=False)
    channel = await api.channel(("chat", "voice"))
    held = await api.chat(channel)
    other = await api.chat()
    await api.hand_over(held, supervisor.token, {"kind": "agent", "id": agent.id})
    await api.take(agent, held)
    offered = await api.chat()
    await api.hand_over(offered, supervisor.token, {"kind": "agent", "id": agent.id})
    [offer] = [o for o in await api.offers(agent) if o["interaction_id"] == offered.id]
    await api.runtime.conductor.execute(
        "bank", held.id,
        [cmd.Emit(ev.ACTION_PROPOSED, {"action_id": "act_1", "tool": "release_hold", "args": {}, "args_digest": "d"}),
         cmd.Emit(ev.ACTION_DECIDED, {"action_id": "act_1", "outcome": "require_approval", "rule": "r",
                                      "policy_version": "p1", "requires": "agent"})],
        Actor("ai", "ai"),
    )  # fmt: skip
    service = api.runtime.tokens.issue(Principal("service", "svc_1", "bank"))
    tokens: dict[str, str | None] = {
        "admin": ADMIN_TOKEN, "supervisor": supervisor.token, "agent": agent.token, "other_agent": other_agent.token,
        "channel": channel, "customer": held.token, "other_customer": other.token, "service": service,
        "anonymous": None, "bad_token": "tdm_not-a-real-token",
    }  # fmt: skip
    ids = {"I": held.id, "A": agent.id, "O": offer["id"], "ACT": "act_1", "REL": "policy:harbor-bank-policy@0"}
    return Scene(tokens, ids)


def fill(template: Any, ids: dict[str, str]) -> Any:
    if isinstance(template, str):
        for name, value in ids.items():
            template = template.replace("{" + name + "}", value)
        return template
    if isinstance(template, dict):
        return {k: fill(v, ids) for k, v in template.items()}
    return template


async def hit(api: Api, endpoint: Endpoint, scene: Scene, role: str) -> int:
    path = fill(endpoint.path, scene.ids)
    token = scene.tokens[role]
    if path.endswith("/stream"):
        async with api.client.stream("GET", path, headers=api.auth(token)) as response:
            return response.status_code  # leaving the block hangs up: enough to know it was let through
    response = await api.call(endpoint.method, path, token, fill(endpoint.body, scene.ids))
    if response.status_code >= 400:
        assert set(response.json()) == {"error"} or "checks" in response.json(), response.text
    return response.status_code


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
async def test_each_role_gets_exactly_its_answer_and_refusals_write_nothing(api: Api, endpoint: Endpoint) -> None:
    scene = await make_scene(api)
    before = await api.all_events()
    refused = {role: await hit(api, endpoint, scene, role) for role in ROLES if endpoint.expected(role) >= 400}
    assert refused == {role: endpoint.expected(role) for role in refused}
    assert await api.all_events() == before
    # An allowed call may change the case (close, accept, barge...): each allowed role gets a scene of its own,
    # except for reads, which change nothing.
    allowed = {
        role: await hit(api, endpoint, scene if endpoint.method == "GET" else await make_scene(api), role)
        for role in ROLES
        if endpoint.expected(role) < 400
    }
    assert allowed == {role: endpoint.expected(role) for role in allowed}


async def test_the_role_table_walks_every_endpoint_of_the_api(api: Api) -> None:
    short = {"interaction_id": "I", "agent_id": "A", "offer_id": "O", "action_id": "ACT", "release": "REL"}
    documented = (await api.client.get("/openapi.json")).json()["paths"]
    routes = set()
    for path, operations in documented.items():
        for param, name in short.items():
            path = path.replace("{" + param + "}", "{" + name + "}")
        routes |= {f"{method.upper()} {path}" for method in operations}
    assert routes == {endpoint.name for endpoint in ENDPOINTS}
