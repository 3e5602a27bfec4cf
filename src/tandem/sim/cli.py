"""``tandem eval``: run scenario files through Tandem and a siloed baseline, and write the report."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tandem.sim.evaluation import Evaluation, evaluate
from tandem.sim.metrics import Rates
from tandem.sim.scenario import ScenarioError, load_scenarios
from tandem.sim.transport import open_deployment
from tandem.understanding.classifier import ClassifierUnderstander
from tandem.world.world import World

app = typer.Typer(help="The journey simulator.", no_args_is_help=True)
console = Console()
defaults = Rates()


class TransportName(StrEnum):
    inprocess = "inprocess"
    http = "http"


class UnderstandingName(StrEnum):
    classifier = "classifier"
    rules = "rules"


def eval_command(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files, or directories of them (*.yaml).")],
    report: Annotated[Path, typer.Option("--report", help="Directory for report.md, the charts and summary.json.")],
    transport: Annotated[
        TransportName, typer.Option("--transport", help="inprocess (ASGI, no socket) or http (127.0.0.1).")
    ] = TransportName.inprocess,
    url: Annotated[str | None, typer.Option("--url", help="Run against this server instead of starting one.")] = None,
    admin_token: Annotated[
        str | None, typer.Option("--admin-token", envvar="TANDEM_ADMIN_TOKEN", help="Admin token of the --url server.")
    ] = None,
    siloed: Annotated[bool, typer.Option("--siloed/--no-siloed", help="Also run the siloed baseline.")] = True,
    customer_turn_s: Annotated[float, typer.Option(help="Simulated seconds per customer turn.")] = (
        defaults.customer_turn_s
    ),
    agent_turn_s: Annotated[float, typer.Option(help="Simulated seconds per agent turn.")] = defaults.agent_turn_s,
    queue_wait_s: Annotated[float, typer.Option(help="Simulated queue wait added to every handoff.")] = (
        defaults.queue_wait_s
    ),
    ai_per_min: Annotated[float, typer.Option(help="Dollars per minute of the bot or AI.")] = defaults.ai_per_min,
    human_per_min: Annotated[float, typer.Option(help="Dollars per minute of a person.")] = defaults.human_per_min,
    offer_wait_s: Annotated[float, typer.Option(help="Longest real wait for an offer to reach the agent.")] = 5.0,
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Journeys played at once, each on its own deployment (not --url).")
    ] = 4,
    understanding: Annotated[
        UnderstandingName,
        typer.Option(
            "--understanding",
            help="classifier: the intent models trained from the tenants' examples, as `tandem demo` serves them; "
            "rules: the keyword understander underneath them (not with --url: the server decides).",
        ),
    ] = UnderstandingName.classifier,
) -> None:
    """Run scenarios through Tandem (and a siloed baseline) and write a Markdown report with charts and JSON.

    Exits 1 when an expectation fails, 2 when a scenario file is invalid.
    """
    world = World.load()
    try:
        scenarios = load_scenarios(paths, [t.id for t in world], _signals())
    except ScenarioError as exc:
        for problem in exc.problems:
            console.print(f"[red]{problem}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    late = [f"{item.path}: signals.late needs a deployment the simulator runs, not --url" for item in scenarios
            if url and item.scenario.signals.late]  # fmt: skip
    if late:
        for problem in late:
            console.print(f"[red]{problem}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    rates = Rates(customer_turn_s, agent_turn_s, queue_wait_s, ai_per_min, human_per_min)
    kinds = {t.id: t.kind for t in world}
    where = url or transport.value

    async def run(progress: Progress) -> Evaluation:
        task = progress.add_task("scenarios", total=len(scenarios) * (2 if siloed else 1))

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=label)

        understander: ClassifierUnderstander | None = None
        if url is None and understanding is UnderstandingName.classifier:
            understander = ClassifierUnderstander(world)
            progress.update(task, description="training the intent models (cached after the first time)")
            await asyncio.to_thread(understander.warm)
        async with open_deployment(
            transport.value, world, url=url, admin_token=admin_token, understander=understander
        ) as deployment:
            return await evaluate(
                scenarios, deployment, rates, kinds, transport=where, understanding=_understanding(understander, url),
                siloed=siloed, offer_wait_s=offer_wait_s, jobs=1 if url else jobs, progress=advance,
            )  # fmt: skip

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        evaluation = asyncio.run(run(progress))
    from tandem.sim.report import write_report  # matplotlib loads only when a report is written

    # `tandem eval ...` and `python -m tandem.sim ...` say the same command; only the former has "eval" in argv.
    args = sys.argv[2:] if sys.argv[1:2] == ["eval"] else sys.argv[1:]
    command = " ".join(["tandem eval", *(shlex.quote(a) for a in args)])
    written = write_report(evaluation, report, _portable(command))
    _print_summary(evaluation)
    console.print(f"report: {written[0]}  ·  summary: {report / 'summary.json'}")
    if not evaluation.passed:
        raise typer.Exit(1)


def _understanding(understander: ClassifierUnderstander | None, url: str | None) -> str:
    """How the deployment understood customers, as the report says it."""
    if url is not None:
        return "the server's own"
    if understander is None:
        return "the keyword rules"
    features = f"n-grams + {understander.embedder.name}" if understander.embedder else "n-grams"
    return f"the trained intent models ({features})"


def _signals() -> dict[str, list[str]]:
    """The signals each tenant's release defines: what a scenario may make late."""
    from tandem.release.signals import load_releases

    return {tenant: sorted(release.signals) for tenant, release in load_releases().items()}


def _portable(command: str) -> str:
    # The report is committed: keep machine-specific paths out of it.
    return command.replace(str(Path.cwd()) + os.sep, "")


def _print_summary(evaluation: Evaluation) -> None:
    table = Table("scenario", "expectations", "repeats ev·text (T / S)", "turns (T / S)", "cost (T / S)")
    for o in evaluation.outcomes:
        t, s = o.tandem.metrics, o.siloed.metrics if o.siloed else None
        table.add_row(
            o.scenario.name,
            "[green]pass[/]" if o.passed else "[red]FAIL[/]",
            f"{t.repeats_events}·{t.repeats_text}" + (f" / {s.repeats_events}·{s.repeats_text}" if s else ""),
            f"{t.turns}" + (f" / {s.turns}" if s else ""),
            f"${t.cost:.2f}" + (f" / ${s.cost:.2f}" if s else ""),
        )
    console.print(table)
    for o in evaluation.outcomes:
        for failure in o.failures:
            console.print(f"[red]{o.scenario.name}: {failure}[/]", highlight=False)


app.command("eval")(eval_command)
