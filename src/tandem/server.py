"""Running the HTTP server: ``tandem demo`` with the example worlds and their staff, ``tandem serve`` bare."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from rich.console import Console

from tandem.activation.activator import Activator
from tandem.activation.lakehouse import generate
from tandem.api.app import create_app
from tandem.api.tokens import Principal
from tandem.clock import BusinessDateClock
from tandem.runtime import Runtime, build_runtime
from tandem.store.location import open_store
from tandem.understanding.classifier import ClassifierUnderstander
from tandem.world.world import World

# The people staffing each example tenant in the demo. They start away: whoever opens the agent page and
# signs in with their token says when they are ready for work.
DEMO_STAFF: dict[str, list[dict[str, Any]]] = {
    "bank": [
        {"name": "Alex Rivera", "role": "agent", "skills": ["cards", "fraud", "disputes", "accounts", "general"]},
        {"name": "Jordan Lee", "role": "supervisor", "skills": ["cards", "fraud", "disputes", "accounts", "general"]},
    ],
    "health": [
        {"name": "Sam Okafor", "role": "agent", "skills": ["billing", "eligibility", "scheduling", "general"]},
        {"name": "Priya Nair", "role": "supervisor", "skills": ["billing", "eligibility", "scheduling", "general"]},
    ],
}


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    admin_token: str | None
    staff: list[dict[str, Any]]
    channels: dict[str, str]


async def open_demo_lakehouse(data_dir: Path, world: World, console: Console) -> Activator:
    """The example lakehouse the signals read: generated at demo scale on first start (seconds), reused after."""
    lakehouse = data_dir / "lakehouse"
    if not (lakehouse / "manifest.json").exists():
        console.print(f"Generating the example lakehouse in {lakehouse} …")
        generate(lakehouse)
    return await Activator.open(data_dir=lakehouse, clock=BusinessDateClock(world.business_date))


def ensure_demo_staff(runtime: Runtime) -> DemoCredentials:
    """Create the demo's agents, supervisors and channel tokens once per data directory; later starts reuse
    them, so a bookmarked agent page keeps working."""
    path = runtime.data_dir / "demo-credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return DemoCredentials(runtime.admin_token_created, saved["staff"], saved["channels"])
    staff: list[dict[str, Any]] = []
    channels: dict[str, str] = {}
    for tenant in runtime.world:
        for person in DEMO_STAFF.get(tenant.id, []):
            skills = [s for s in person["skills"] if s in tenant.skills or s == "general"]
            agent = runtime.agents.create(tenant.id, person["name"], person["role"], skills, 3, runtime.clock.now())
            token = runtime.tokens.issue(Principal(person["role"], agent.agent_id, tenant.id))
            staff.append({"tenant": tenant.id, "name": agent.name, "role": agent.role, "id": agent.agent_id,
                          "token": token})  # fmt: skip
        channels[tenant.id] = runtime.tokens.issue(
            Principal("channel", f"demo-web-{tenant.id}", tenant.id, frozenset({"chat", "voice", "sms", "api"}))
        )
    path.write_text(json.dumps({"staff": staff, "channels": channels}, indent=2))
    path.chmod(0o600)
    return DemoCredentials(runtime.admin_token_created, staff, channels)


def _print_demo(console: Console, base: str, creds: DemoCredentials, admin_from_env: bool) -> None:
    # soft_wrap: URLs and tokens must stay on one line to be copied, whatever the terminal's width.
    def say(text: str) -> None:
        console.print(text, soft_wrap=True)

    console.rule("[bold]Tandem demo")
    say(f"Health:        {base}/healthz")
    say(f"Start here:    {base}/")
    say(f"API reference: {base}/openapi.json")
    for tenant, token in creds.channels.items():
        say(f"Customer chat ({tenant}), anonymous:        {base}/chat?tenant={tenant}")
        say(f"Customer chat ({tenant}), trusted channel:  {base}/chat?tenant={tenant}&token={token}")
    say(f"Agent desktop: {base}/agent — sign in with one of these:")
    for p in creds.staff:
        say(f"  {p['tenant']:<7}{p['role']:<11}{p['name']:<13} id {p['id']}  token {p['token']}")
    if creds.admin_token:
        say(f"Admin token (new): [bold]{creds.admin_token}[/]")
    elif admin_from_env:
        say("Admin token: the value of TANDEM_ADMIN_TOKEN")
    else:
        say("Admin token: the one printed when this data directory was created")


async def _serve(runtime: Runtime, host: str, port: int) -> None:
    config = uvicorn.Config(create_app(runtime), host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        await server.serve()
    finally:
        await runtime.aclose()


def serve_demo(host: str, port: int, data_dir: Path, *, admin_token: str | None, console: Console) -> None:
    async def main() -> None:
        world = World.load()
        activator = await open_demo_lakehouse(data_dir, world, console)
        understander = ClassifierUnderstander(world)
        console.print("Training the intent models (cached after the first time) …")
        await asyncio.to_thread(understander.warm)
        runtime = await build_runtime(
            data_dir, world, admin_token=admin_token, activator=activator, understander=understander, with_actions=True
        )
        assert runtime.actions is not None
        not_started = await runtime.actions.start()
        for tenant, servers in not_started.items():
            for name, why in servers.items():
                console.print(f"[yellow]{tenant}: MCP server {name} did not start ({why}); its tools fail into facts.")
        creds = ensure_demo_staff(runtime)
        _print_demo(console, f"http://{host}:{port}", creds, admin_token is not None)
        await _serve(runtime, host, port)

    asyncio.run(main())


def serve_plain(
    host: str, port: int, data_dir: Path, database: str | None, *, admin_token: str | None, console: Console
) -> None:
    async def main() -> None:
        store = await open_store(database) if database else None
        runtime = await build_runtime(data_dir, World.empty(), admin_token=admin_token, store=store)
        if store is not None:
            runtime.owns_store = True
        console.print(f"Tandem serving on http://{host}:{port} (health: /healthz)")
        if runtime.admin_token_created:
            console.print(f"Admin token (new): [bold]{runtime.admin_token_created}[/]")
        await _serve(runtime, host, port)

    asyncio.run(main())
