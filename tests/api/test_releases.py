"""Publishing policy while the deployment runs, over HTTP: immutable versions, activation under If-Match, and
interactions pinned to the release active when they started, across restarts."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tandem.actions.runtime import policy_files
from tandem.clock import ManualClock
from tandem.runtime import build_runtime
from tandem.world.world import World
from tests.api.conftest import ADMIN_TOKEN, TENANT, Api, running
from tests.conftest import EchoBot

# The shipped bank policy lets the IVR serve PIN resets; the published one does not.
IVR_PIN = "reset_pin: {served_by: [ivr, bot, ai, human, supervisor]}"
NO_IVR_PIN = "reset_pin: {served_by: [bot, ai, human, supervisor]}"


@asynccontextmanager
async def deployment(data_dir: Path, clock: ManualClock, policy: Path | None = None) -> AsyncIterator[Api]:
    """The API over a runtime with its policies (the action layer, its MCP servers not started)."""
    world = World.load()
    policies = {TENANT: policy} if policy is not None else {TENANT: policy_files(world)[TENANT]}
    runtime = await build_runtime(
        data_dir, world, clock=clock, participants={"bot": EchoBot()}, admin_token=ADMIN_TOKEN,
        with_actions=True, policies=policies,
    )  # fmt: skip
    async with running(runtime, clock) as api:
        yield api


async def release_of(api: Api, interaction_id: str) -> str:
    r = await api.call("GET", f"/v1/interactions/{interaction_id}", ADMIN_TOKEN)
    assert r.status_code == 200, r.text
    release: str = r.json()["release"]
    return release


async def active(api: Api) -> httpx.Response:
    r = await api.call("GET", "/v1/release", ADMIN_TOKEN)
    assert r.status_code == 200, r.text
    return r


async def test_a_published_policy_serves_new_interactions_once_activated_and_running_ones_keep_theirs(
    tmp_path: Path, clock: ManualClock, shipped: str
) -> None:
    assert IVR_PIN in shipped
    async with deployment(tmp_path, clock) as api:
        first = await active(api)
        deployed_id, deployed_tag = first.json()["id"], first.headers["ETag"]
        assert deployed_id.startswith("policy:harbor-bank-policy@") and deployed_tag == f'"{deployed_id}"'
        assert first.json()["active"] and first.json()["deployed"] and first.json()["publishing"]
        before = await api.chat()
        assert await release_of(api, before.id) == deployed_id

        r = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": shipped.replace(IVR_PIN, NO_IVR_PIN)})
        assert r.status_code == 201, r.text
        published = r.json()
        assert published["id"] != deployed_id and not published["active"]
        assert published["published"]["by"] == "admin" and r.headers["Location"] == f"/v1/releases/{published['id']}"
        # Published is not active: new interactions still get the deployed release.
        assert (await active(api)).json()["id"] == deployed_id
        assert await release_of(api, (await api.chat()).id) == deployed_id
        # The same text again is the same immutable version.
        again = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": shipped.replace(IVR_PIN, NO_IVR_PIN)})
        assert again.status_code == 200 and again.json()["id"] == published["id"]

        path = f"/v1/releases/{published['id']}/activate"
        missing = await api.call("POST", path, ADMIN_TOKEN)
        assert missing.status_code == 428 and missing.json()["error"]["code"] == "precondition_required"
        stale = await api.call("POST", path, ADMIN_TOKEN, headers={"If-Match": '"policy:someone-else@0"'})
        assert stale.status_code == 412 and deployed_id in stale.json()["error"]["message"]
        done = await api.call("POST", path, ADMIN_TOKEN, headers={"If-Match": deployed_tag})
        assert done.status_code == 200, done.text
        assert done.json()["active"] and done.headers["ETag"] == f'"{published["id"]}"'
        # The old ETag no longer matches: a second admin working from it is told to read again.
        late = await api.call("POST", f"/v1/releases/{deployed_id}/activate", ADMIN_TOKEN,
                              headers={"If-Match": deployed_tag})  # fmt: skip
        assert late.status_code == 412

        after = await api.chat()
        assert await release_of(api, after.id) == published["id"]
        assert await release_of(api, before.id) == deployed_id
        actions = api.runtime.actions
        assert actions is not None
        old_case, new_case = await api.runtime.conductor.load(before.id), await api.runtime.conductor.load(after.id)
        assert actions.may_serve(old_case, "reset_pin", "ivr")
        assert not actions.may_serve(new_case, "reset_pin", "ivr")

        listed = await api.call("GET", "/v1/releases", ADMIN_TOKEN)
        assert [item["id"] for item in listed.json()["items"]] == [deployed_id, published["id"]]
        assert [h["event"] for h in listed.json()["history"]] == ["deployed", "published", "activated"]
        text = await api.call("GET", f"/v1/releases/{published['id']}", ADMIN_TOKEN)
        assert NO_IVR_PIN in text.json()["text"]

    # A restart with the same policy file keeps the activated release, and the old pin still resolves.
    async with deployment(tmp_path, clock) as api:
        assert (await active(api)).json()["id"] == published["id"]
        actions = api.runtime.actions
        assert actions is not None
        assert actions.may_serve(await api.runtime.conductor.load(before.id), "reset_pin", "ivr")


async def test_a_deploy_of_a_changed_policy_file_becomes_active(
    tmp_path: Path, clock: ManualClock, shipped: str
) -> None:
    async with deployment(tmp_path / "data", clock) as api:
        tag = (await active(api)).headers["ETag"]
        r = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": shipped.replace(IVR_PIN, NO_IVR_PIN)})
        activated = await api.call("POST", f"/v1/releases/{r.json()['id']}/activate", ADMIN_TOKEN,
                                   headers={"If-Match": tag})  # fmt: skip
        assert activated.status_code == 200
    # The next deploy: the tenant's folder with a changed policy file (its relative paths hold in the copy).
    folder = shutil.copytree(policy_files(World.load())[TENANT].parent, tmp_path / "next" / "bank")
    changed = folder / "policy.yaml"
    changed.write_text(shipped.replace("name: harbor-bank-policy", "name: harbor-bank-policy-2"))
    async with deployment(tmp_path / "data", clock, policy=changed) as api:
        body = (await active(api)).json()
        assert body["id"].startswith("policy:harbor-bank-policy-2@") and body["deployed"]
        history = (await api.call("GET", "/v1/releases", ADMIN_TOKEN)).json()["history"]
        assert [h["event"] for h in history] == ["deployed", "published", "activated", "deployed"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda text: "policy: [unclosed", "not valid YAML"),
        (lambda text: text.replace("tenant: bank", "tenant: health_plan"), "names tenant health_plan"),
        (
            lambda text: text.replace("schema_sha256: 645d5c", "schema_sha256: 000000"),
            "release_fraud_hold.schema_sha256",
        ),
        (lambda text: text.replace("servers: mcp/servers.yaml", "servers: mcp/other.yaml"), "servers:"),
        (lambda text: text.replace("autonomy: agent_approval\n", "autonomy: sometimes\n", 1), "autonomy"),
        # A grant may only loosen on what the customer cannot influence: sentiment is theirs.
        (
            lambda text: text.replace(
                "when: assurance >= KNOWLEDGE_VERIFIED && fraud_score < 0.9",
                "when: sentiment == 'calm' && fraud_score < 0.9",
            ),
            "sentiment",
        ),
    ],
)
async def test_a_policy_that_cannot_be_published_is_refused_with_the_reason_and_changes_nothing(
    tmp_path: Path, clock: ManualClock, shipped: str, change: object, says: str
) -> None:
    async with deployment(tmp_path, clock) as api:
        before = (await active(api)).json()
        assert callable(change)
        r = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": change(shipped)})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_policy" and says in r.json()["error"]["message"]
        listed = (await api.call("GET", "/v1/releases", ADMIN_TOKEN)).json()
        assert len(listed["items"]) == 1 and [h["event"] for h in listed["history"]] == ["deployed"]
        assert (await active(api)).json() == before


async def test_only_admins_publish_and_activate_and_supervisors_may_read(
    tmp_path: Path, clock: ManualClock, shipped: str
) -> None:
    async with deployment(tmp_path, clock) as api:
        lead = await api.staff("Lead", role="supervisor")
        agent = await api.staff("Agent")
        assert (await api.call("GET", "/v1/release", lead.token)).status_code == 200
        assert (await api.call("GET", "/v1/releases", lead.token)).status_code == 200
        assert (await api.call("GET", "/v1/release", agent.token)).status_code == 403
        body = {"policy": shipped.replace(IVR_PIN, NO_IVR_PIN)}
        assert (await api.call("POST", "/v1/releases", lead.token, body)).status_code == 403
        assert (await api.call("POST", "/v1/releases", agent.token, body)).status_code == 403
        deployed = (await active(api)).json()["id"]
        r = await api.call("POST", f"/v1/releases/{deployed}/activate", lead.token, headers={"If-Match": "*"})
        assert r.status_code == 403
        assert (await api.call("GET", f"/v1/releases/{deployed}", lead.token)).status_code == 403
        unknown = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": shipped, "note": "x"})
        assert unknown.status_code == 422
        nowhere = await api.call("POST", "/v1/releases/policy:none@0/activate", ADMIN_TOKEN, headers={"If-Match": "*"})
        assert nowhere.status_code == 404


async def test_without_policies_the_release_is_the_built_in_behaviour_and_nothing_can_be_published(
    api: Api, shipped: str
) -> None:
    r = await api.call("GET", "/v1/release", ADMIN_TOKEN)
    assert r.status_code == 200 and r.json()["kind"] == "built-in" and r.json()["publishing"] is False
    assert "ETag" not in r.headers
    refused = await api.call("POST", "/v1/releases", ADMIN_TOKEN, {"policy": shipped})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "publishing_unavailable"
