"""``tandem data generate`` and ``tandem signals list|fetch``: two Typer apps the main CLI mounts with
``app.add_typer(data_app, name="data")`` and ``app.add_typer(signals_app, name="signals")``."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tandem.activation.activator import DEFAULT_DATA_DIR, Activator
from tandem.activation.lakehouse import DEMO_SCALE, generate
from tandem.activation.sources import SourceError
from tandem.clock import BusinessDateClock
from tandem.release.scopes import PARTICIPANTS
from tandem.release.signals import ReleaseError, SignalRelease, load_releases
from tandem.world.world import World

data_app = typer.Typer(help="The example lakehouse: generate it.", no_args_is_help=True)
signals_app = typer.Typer(help="Signals: list the definitions, fetch one.", no_args_is_help=True)
# One app with both, for `python -m tandem.activation.cli` and for mounting in one call.
app = typer.Typer(help="Enterprise data activation.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(signals_app, name="signals")
console = Console()

DATA = typer.Option(DEFAULT_DATA_DIR, "--data", help="The lakehouse directory (`tandem data generate --out`).")
OUT = typer.Option(DEFAULT_DATA_DIR, "--out", help="Directory to write (its bank/ and health/ are replaced).")
EXAMPLES = typer.Option(None, "--examples", help="Directory of */signals.yaml (the shipped examples by default).")


@data_app.command("generate")
def generate_command(
    scale: float = typer.Option(DEMO_SCALE, "--scale", help="Millions of card transactions (claims: a fifth)."),
    seed: int = typer.Option(7, "--seed", help="Same seed and scale, same data."),
    out: Path = OUT,
    duckdb_file: bool = typer.Option(True, "--duckdb/--no-duckdb", help="Also write lakehouse.duckdb per tenant."),
) -> None:
    """Write both tenants' example lakehouse (Parquet, Delta, DuckDB), with the reference customers."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        result = generate(out, scale, seed, progress, duckdb_file=duckdb_file)
    table = Table("table", "rows", title=f"{out} (scale {scale:g}, seed {seed}, {result.seconds:.1f} s)")
    for name, rows in result.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)


@signals_app.command("list")
def list_command(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant (bank, health)."),
    examples: Path | None = EXAMPLES,
) -> None:
    """Every signal: its tenant, source, key, trigger, freshness and budget, and the facts it produces."""
    releases = _releases(examples)
    table = Table("tenant", "signal", "source", "key", "trigger", "fresh", "budget", "facts", title="Signals")
    for release in releases.values():
        if tenant and release.tenant_id != tenant:
            continue
        for s in release.signals.values():
            trigger = []
            if s.trigger.intents:
                trigger.append("intents: " + ", ".join(sorted(s.trigger.intents)))
            if s.trigger.on_verified is not None:
                trigger.append(f"verified: {s.trigger.on_verified.label}")
            if s.trigger.requested_by:
                trigger.append("asked by: " + ", ".join(sorted(s.trigger.requested_by)))
            trigger.append(f"needs {s.trigger.assurance.label}")
            facts = ", ".join(f.name + (f"[{f.subject}]" if f.subject else "") for f in s.facts)
            table.add_row(
                release.tenant_id, s.name, s.source, s.key, escape("\n".join(trigger)),
                _duration(s.freshness.total_seconds()), f"{s.budget_ms} ms", escape(facts),
            )  # fmt: skip
    console.print(table)
    for release in releases.values():
        if tenant and release.tenant_id != tenant:
            continue
        sets = "; ".join(f"{intent}: {', '.join(names)}" for intent, names in release.sets().items())
        console.print(f"[bold]{release.tenant_id}[/] release {release.name} @ {release.version} — sets: {sets}")


@signals_app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="The signal, e.g. recent_declines."),
    key: str = typer.Argument(..., help="The value of its key, e.g. C-1001 or MBR-60317."),
    tenant: str | None = typer.Option(None, "--tenant", help="Needed only when two tenants share the name."),
    participant: str = typer.Option("human", "--as", help="Whose data scope to apply."),
    data: Path = DATA,
    examples: Path | None = EXAMPLES,
    as_json: bool = typer.Option(False, "--json", help="Print the assertions as JSON lines."),
    budget_ms: int | None = typer.Option(None, "--budget-ms", help="Wait this long instead of the signal's budget."),
) -> None:
    """Fetch one signal now and print the assertions it makes, as a participant would see them, with timings."""
    if participant not in PARTICIPANTS:
        console.print(f"[red]--as must be one of {', '.join(sorted(PARTICIPANTS))}[/]")
        raise typer.Exit(2)
    releases = _releases(examples)
    owners = [r for r in releases.values() if name in r.signals and (tenant is None or r.tenant_id == tenant)]
    if len(owners) != 1:
        known = ", ".join(sorted(f"{r.tenant_id}:{s}" for r in releases.values() for s in r.signals))
        what = "is ambiguous: pass --tenant" if owners else "is not a signal"
        console.print(f"[red]{escape(name)} {what}.[/] Known: {escape(known)}")
        raise typer.Exit(2)
    release = owners[0]
    if budget_ms is not None:
        # An operator may wait longer than a conversation can, to see what a slow source does answer.
        signals = {**release.signals, name: replace(release.signals[name], budget_ms=max(1, budget_ms))}
        release = replace(release, signals=signals)

    async def run() -> tuple[float, float, list[list[str]], list[str]]:
        opened = time.perf_counter()
        activator = await Activator.open(
            {release.tenant_id: release}, data, clock=BusinessDateClock(World.load().business_date)
        )
        open_ms = (time.perf_counter() - opened) * 1000
        try:
            activation = await activator.fetch(release.tenant_id, name, key, participant)
        finally:
            await activator.close()
        rows = [
            [fact.name, fact.subject or "", json.dumps(fact.value, ensure_ascii=False), fact.source,
             fact.observed_at.isoformat(timespec="seconds") if fact.observed_at else ""]
            for fact in activation.learns
        ]  # fmt: skip
        report = activation.reports[0]
        note = f"{report.status}, {report.rows} row(s)" + (f": {report.error}" if report.error else "")
        return open_ms, activation.ms, rows, [note]

    try:
        open_ms, fetch_ms, rows, notes = asyncio.run(run())
    except (ReleaseError, SourceError, OSError) as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    if as_json:
        for name_, subject, value, source, at in rows:
            print(json.dumps({"name": name_, "subject": subject or None, "value": json.loads(value),
                              "source": source, "observed_at": at}))  # fmt: skip
    else:
        table = Table("name", "subject", "value", "source", "observed at", title=f"{name} {key} as {participant}")
        for row in rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
    console.print(f"{escape(notes[0])}; fetched in {fetch_ms:.2f} ms (opening the sources took {open_ms:.0f} ms)")


def _releases(examples: Path | None) -> dict[str, SignalRelease]:
    try:
        return load_releases(examples)
    except ReleaseError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


if __name__ == "__main__":
    app()
