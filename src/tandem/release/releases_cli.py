"""``tandem releases``: list, publish and activate policy releases of a running deployment, over its HTTP API.

The commands are an admin's client of ``/v1/release`` and ``/v1/releases`` (docs/api.md), not a second way
into the data directory: the server checks the text, keeps the version and guards activation with
``If-Match``, so the CLI and the API can never disagree about what is active. ``activate`` reads the active
release's ETag first and sends it, so an activation someone else made in between is refused, not overwritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

releases_app = typer.Typer(help="A deployment's policy releases: list, publish, activate.", no_args_is_help=True)
console = Console(highlight=False)

Server = Annotated[str, typer.Option("--server", envvar="TANDEM_SERVER", help="The deployment's base URL.")]
Token = Annotated[
    str,
    typer.Option("--token", envvar="TANDEM_ADMIN_TOKEN", show_default=False, help="The admin token."),
]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. bank or health.")]
TIMEOUT_S = 30.0
DEFAULT_SERVER = "http://127.0.0.1:8000"  # the demo's and `tandem serve`'s default address


class Client:
    """The release endpoints of one deployment, for one tenant, as an admin."""

    def __init__(self, server: str, token: str, tenant: str) -> None:
        if not token:
            console.print("[red]no admin token: pass --token or set TANDEM_ADMIN_TOKEN")
            raise typer.Exit(2)
        headers = {"Authorization": f"Bearer {token}", "X-Tandem-Tenant": tenant}
        self.http = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=TIMEOUT_S)

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            why = str(exc) or type(exc).__name__
            console.print(f"[red]cannot reach {escape(str(self.http.base_url))}: {escape(why)}")
            raise typer.Exit(1) from None
        if response.status_code >= 400:
            console.print(f"[red]{response.status_code} {escape(_error(response))}")
            raise typer.Exit(1)
        return response

    def activate(self, release: str) -> httpx.Response:
        current = self.call("GET", "/v1/release")
        tag = current.headers.get("ETag")
        if tag is None:
            console.print("[red]this deployment runs without policies: there is no release to activate")
            raise typer.Exit(1)
        return self.call("POST", f"/v1/releases/{release}/activate", headers={"If-Match": tag})

    def close(self) -> None:
        self.http.close()


def _error(response: httpx.Response) -> str:
    """The API's error code and message (``{"error": {"code", "message"}}``), or the body as it came."""
    try:
        error = response.json().get("error") or {}
        return f"{error['code']}: {error['message']}"
    except (ValueError, AttributeError, KeyError, TypeError):
        return response.text[:500]


def _when(record: dict[str, Any] | None) -> str:
    return "" if not record else f"{record.get('at', '')[:19]} by {record.get('by', '')}"


@releases_app.command("list")
def list_releases(tenant: Tenant, server: Server = DEFAULT_SERVER, token: Token = "") -> None:
    """Every policy version of the tenant: which is active, which the deployment shipped, who published it."""
    client = Client(server, token, tenant)
    try:
        items = client.call("GET", "/v1/releases").json()["items"]
    finally:
        client.close()
    table = Table(title=f"{tenant}: releases")
    # The id whole, on one line, whatever the terminal's width: it is what `activate` takes.
    table.add_column("release", no_wrap=True, min_width=max((len(item["id"]) for item in items), default=7))
    for name in ("active", "deployed", "published", "last activated"):
        table.add_column(name)
    for item in items:
        table.add_row(
            item["id"],
            "[green]yes[/]" if item["active"] else "",
            "yes" if item["deployed"] else "",
            _when(item.get("published")),
            _when(item.get("last_activated")),
        )
    console.print(table)


@releases_app.command("publish")
def publish(
    file: Annotated[Path, typer.Argument(help="The policy file to publish, e.g. examples/bank/policy.yaml.")],
    tenant: Tenant,
    server: Server = DEFAULT_SERVER,
    token: Token = "",
    activate: Annotated[bool, typer.Option("--activate", help="Make it active for new interactions too.")] = False,
) -> None:
    """Publish a policy file as an immutable release version (checked by the server); with --activate, make it
    the version new interactions are pinned to."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]{escape(str(file))}: cannot read it ({escape(str(exc))})")
        raise typer.Exit(2) from None
    client = Client(server, token, tenant)
    try:
        response = client.call("POST", "/v1/releases", json={"policy": text})
        release = response.json()["id"]
        console.print(f"{tenant}: {release} {'published' if response.status_code == 201 else 'was already published'}")
        if activate:
            client.activate(release)
            console.print(f"{tenant}: {release} is active for new interactions")
    finally:
        client.close()


@releases_app.command("activate")
def activate(
    release: Annotated[str, typer.Argument(help="A release id as `tandem releases list` shows it.")],
    tenant: Tenant,
    server: Server = DEFAULT_SERVER,
    token: Token = "",
) -> None:
    """Make a published release active for new interactions; interactions already running keep theirs."""
    client = Client(server, token, tenant)
    try:
        client.activate(release)
    finally:
        client.close()
    console.print(f"{tenant}: {release} is active for new interactions")
