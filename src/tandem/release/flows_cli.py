"""``tandem flows check DIR``: validate flow files the way a release loads them, with every problem's line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from tandem.release.flows import FLOWS_DIR, FlowBook, FlowError, load_flows

flows_app = typer.Typer(help="Flows: check flow files.", no_args_is_help=True)
console = Console(highlight=False)


def _folders(directory: Path) -> list[Path]:
    """A flows folder itself, a tenant folder holding one, or a folder of tenant folders (``examples``)."""
    if any(directory.glob("*.yaml")) and not (directory / "world.yaml").exists():
        return [directory]
    if (directory / FLOWS_DIR).is_dir():
        return [directory / FLOWS_DIR]
    return sorted(p for p in directory.glob(f"*/{FLOWS_DIR}") if p.is_dir())


@flows_app.command("check")
def check(
    directory: Annotated[Path, typer.Argument(help="A flows folder, a tenant folder, or a folder of tenants.")],
) -> None:
    """Check every flow file: the schema, step kinds, gotos, tools, conditions (CEL) and the facts they read.
    Exits 1 listing each problem as file:line:column."""
    if not directory.exists():
        console.print(f"[red]{escape(str(directory))}: no such folder")
        raise typer.Exit(2)
    folders = _folders(directory)
    if not folders:
        console.print(f"[red]{escape(str(directory))}: no flow files (*.yaml) and no */{FLOWS_DIR} folder")
        raise typer.Exit(2)
    failed = False
    for folder in folders:
        try:
            book: FlowBook = load_flows(folder, folder.parent.name)
        except FlowError as exc:
            failed = True
            for problem in exc.problems:
                console.print(f"[red]✗[/] {escape(problem)}")
            continue
        names = ", ".join(f"{f.name} ({'/'.join(f.intents)})" for f in book)
        console.print(f"[green]✓[/] {escape(str(folder))}: {len(book.flows)} flows: {escape(names)}")
    if failed:
        raise typer.Exit(1)
