"""The ``tandem`` command."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tandem.store.location import open_store
from tandem.timeline import rows

app = typer.Typer(
    help="Tandem: IVR, self-service AI, agentic AI and human agents on one shared case.", no_args_is_help=True
)
customers = typer.Typer(help="Customers' data: erasure.", no_args_is_help=True)
app.add_typer(customers, name="customers")
console = Console()

DATA_DIR = typer.Option(Path("var"), "--data-dir", help="Directory of the embedded store (SQLite).")
DATABASE = typer.Option(None, "--database", help="postgresql://... to use PostgreSQL instead of --data-dir.")


@app.command()
def events(
    interaction_id: str,
    data_dir: Path = DATA_DIR,
    database: str | None = DATABASE,
) -> None:
    """Print an interaction's timeline: who, what, when and why."""

    async def run() -> None:
        store = await open_store(database or data_dir)
        try:
            found = await store.read(interaction_id)
        finally:
            await store.close()
        if not found:
            console.print(f"[red]No interaction {interaction_id} in {database or data_dir}.[/]")
            raise typer.Exit(1)
        table = Table("#", "at", "who", "what", "why", title=f"interaction {interaction_id}")
        for row in rows(found):
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)

    asyncio.run(run())


@customers.command("erase")
def erase(
    customer_id: str,
    tenant: str = typer.Option(..., "--tenant", help="Tenant id, e.g. bank or health."),
    data_dir: Path = DATA_DIR,
    database: str | None = DATABASE,
) -> None:
    """Erase a customer: destroy their keys so their personal data is unreadable; the log stays intact."""

    async def run() -> int:
        store = await open_store(database or data_dir)
        try:
            return await store.erase_customer(tenant, customer_id)
        finally:
            await store.close()

    destroyed = asyncio.run(run())
    if destroyed == 0:
        console.print(f"[yellow]No keys for customer {customer_id} of {tenant}: nothing to erase.[/]")
        raise typer.Exit(1)
    console.print(f"Erased {customer_id} of {tenant}: {destroyed} key(s) destroyed.")


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", help="Address to serve on."),
    port: int = typer.Option(8000, help="Port to serve on."),
    data_dir: Path = DATA_DIR,
    console_only: bool = typer.Option(False, "--console", help="Play the reference journeys here and exit."),
) -> None:
    """Serve both example worlds (bank and health plan) with the reference customers, offline."""
    if console_only:
        from tandem.console import play

        repeats = asyncio.run(play(data_dir, console))
        raise typer.Exit(1 if repeats else 0)
    from tandem.server import serve_demo

    serve_demo(host, port, data_dir, admin_token=os.environ.get("TANDEM_ADMIN_TOKEN"), console=console)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to serve on."),
    port: int = typer.Option(8000, help="Port to serve on."),
    data_dir: Path = DATA_DIR,
    database: str | None = DATABASE,
) -> None:
    """Serve Tandem without the example worlds."""
    from tandem.server import serve_plain

    serve_plain(host, port, data_dir, database, admin_token=os.environ.get("TANDEM_ADMIN_TOKEN"), console=console)


def _register_subcommands() -> None:
    """Sub-apps live beside their domain; the top-level command only names them."""
    from tandem.actions.cli import policy_app
    from tandem.activation.cli import data_app, signals_app
    from tandem.release.flows_cli import flows_app
    from tandem.release.releases_cli import releases_app
    from tandem.sim.cli import eval_command
    from tandem.understanding.cli import app as nlu_app

    app.add_typer(data_app, name="data", help="The example lakehouse: generate it.")
    app.add_typer(signals_app, name="signals", help="Signals of the release: list them, fetch one.")
    app.add_typer(nlu_app, name="nlu", help="Understanding: train the intent model, evaluate it on a data set.")
    app.add_typer(policy_app, name="policy", help="Policy: check a file, run policy unit tests, the kill switch.")
    app.add_typer(flows_app, name="flows", help="Flows: check flow files (schema, steps, conditions, tools).")
    app.add_typer(
        releases_app, name="releases", help="A running deployment's policy releases: list, publish, activate."
    )

    app.command("eval", help="Play journey scenarios through the API; write a report; fail on a broken expectation.")(
        eval_command
    )


_register_subcommands()

if __name__ == "__main__":
    app()
