"""``tandem releases`` against a running deployment over real HTTP: publish and activate from a file, the list
an admin reads, and the errors a mistyped file, a missing token or an unreachable server give."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner, Result

from tandem.cli import app
from tandem.clock import ManualClock
from tests.api.conftest import ADMIN_TOKEN, TENANT, Api
from tests.api.test_releases import IVR_PIN, NO_IVR_PIN, active, deployment, release_of


async def tandem(api: Api | None, *args: str, token: str = ADMIN_TOKEN) -> Result:
    """Run the CLI in a thread: the server it calls is served by this test's event loop."""
    server = str(api.client.base_url) if api is not None else "http://127.0.0.1:9"
    argv = [*args, "--tenant", TENANT, "--server", server]
    env = {"TANDEM_ADMIN_TOKEN": token, "COLUMNS": "80"}  # a narrow terminal: ids must still be whole
    return await asyncio.to_thread(CliRunner().invoke, app, argv, env=env)


def said(result: Result) -> str:
    """What the command printed, its lines joined (the console wraps long messages at the terminal's width)."""
    return " ".join(result.output.split())


async def test_publish_with_activate_pins_new_interactions_and_the_list_shows_it(
    tmp_path: Path, clock: ManualClock, shipped: str
) -> None:
    changed = tmp_path / "policy.yaml"
    changed.write_text(shipped.replace(IVR_PIN, NO_IVR_PIN))
    async with deployment(tmp_path / "data", clock) as api:
        deployed = (await active(api)).json()["id"]
        result = await tandem(api, "releases", "publish", str(changed), "--activate")
        assert result.exit_code == 0, result.output
        now_active = (await active(api)).json()["id"]
        assert now_active != deployed
        assert f"{now_active} published" in said(result) and f"{now_active} is active" in said(result)
        assert await release_of(api, (await api.chat()).id) == now_active

        again = await tandem(api, "releases", "publish", str(changed))
        assert again.exit_code == 0 and f"{now_active} was already published" in said(again)

        listed = await tandem(api, "releases", "list")
        assert listed.exit_code == 0, listed.output
        cells = [[c.strip() for c in line.split("│")[1:-1]] for line in listed.output.splitlines() if "policy:" in line]
        rows = {row[0]: row[1:3] for row in cells}  # release: (active, deployed)
        assert rows == {deployed: ["", "yes"], now_active: ["yes", ""]}

        back = await tandem(api, "releases", "activate", deployed)
        assert back.exit_code == 0, back.output
        assert (await active(api)).json()["id"] == deployed


async def test_a_policy_the_server_refuses_is_reported_and_changes_nothing(
    tmp_path: Path, clock: ManualClock, shipped: str
) -> None:
    other_tenant = tmp_path / "policy.yaml"
    other_tenant.write_text(shipped.replace("tenant: bank", "tenant: health", 1))
    async with deployment(tmp_path / "data", clock) as api:
        before = (await active(api)).json()["id"]
        result = await tandem(api, "releases", "publish", str(other_tenant), "--activate")
        assert result.exit_code == 1
        assert "422 invalid_policy" in said(result) and "tenant health" in said(result)
        unknown = await tandem(api, "releases", "activate", "policy:nothing@000000000000")
        assert unknown.exit_code == 1 and "404" in said(unknown)
        listed = (await api.call("GET", "/v1/releases", ADMIN_TOKEN)).json()
        assert [item["id"] for item in listed["items"]] == [before]
        wrong = await tandem(api, "releases", "list", token="not-a-token")
        assert wrong.exit_code == 1 and "401" in said(wrong)


async def test_without_a_token_or_a_server_it_says_what_is_missing(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("policy: {}\n")
    no_token = await tandem(None, "releases", "publish", str(policy), token="")
    assert no_token.exit_code == 2 and "no admin token" in said(no_token)
    unreachable = await tandem(None, "releases", "list")
    assert unreachable.exit_code == 1 and "cannot reach http://127.0.0.1:9" in said(unreachable)
    missing = await tandem(None, "releases", "publish", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "cannot read it" in said(missing)
