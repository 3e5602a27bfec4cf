"""``tandem policy``: check a policy file, run its unit tests, pull and restore the kill switch."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tandem.actions.servers import ServerConfig, ServerConfigError, load_servers
from tandem.actions.tools import Binding, Toolbox
from tandem.release.policy import Policy, PolicyError, load_policy
from tandem.release.policy_cases import load_cases, run_cases
from tandem.release.policy_revocations import Revocations

policy_app = typer.Typer(help="Policy: check it, test it, revoke a tool at once.", no_args_is_help=True)
console = Console()

PolicyFile = Annotated[Path, typer.Argument(help="A policy.yaml, e.g. examples/bank/policy.yaml.", exists=True)]
DataDir = Annotated[Path, typer.Option("--data-dir", help="The deployment's data directory.")]
Tenant = Annotated[str, typer.Option("--tenant", help="Tenant id, e.g. bank or health.")]


def _load(path: Path) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None


@policy_app.command()
def check(
    file: PolicyFile,
    servers: Annotated[
        bool, typer.Option("--servers/--no-servers", help="Start the MCP servers and check every schema pin.")
    ] = False,
) -> None:
    """Check a policy: CEL conditions compile, grants read only trusted inputs, servers and data scopes resolve,
    and (with --servers) every tool's contract matches its pin."""
    policy = _load(file)
    problems: list[str] = []
    warnings: list[str] = []
    table = Table("tool", "server", "default", "grants", "limits", "pin", title=f"{policy.tenant_id}: {policy.version}")
    for tool in policy.tools.values():
        grants = "\n".join(f"{r.name} → {r.autonomy.label}" for r in tool.grants)
        limits = "\n".join(f"{r.name} → {r.autonomy.label}" for r in tool.limits)
        pin = tool.schema_sha256[:12] if tool.schema_sha256 else "[yellow]none[/]"
        table.add_row(tool.name, f"{tool.server}/{tool.mcp_tool}", tool.autonomy.label, grants, limits, pin)
        if tool.schema_sha256 is None:
            warnings.append(f"{tool.name} has no schema pin: it is denied until it has one")
    console.print(table)
    configs: dict[str, ServerConfig] = {}
    if policy.servers is None:
        warnings.append("no servers file: every tool is unavailable")
    else:
        try:
            configs = load_servers(
                policy.servers, data_dir=Path(tempfile.gettempdir()), world=file.parent / "world.yaml"
            )
        except ServerConfigError as exc:
            problems.append(str(exc))
        for tool in policy.tools.values():
            if configs and tool.server not in configs:
                problems.append(f"{tool.name}: server {tool.server} is not in {policy.servers}")
    if policy.data_scopes is not None:
        from tandem.release.signals import ReleaseError, load_release

        try:
            scopes = load_release(policy.data_scopes).scopes
            console.print(f"data scopes: {policy.data_scopes} ({', '.join(sorted(scopes.scopes)) or 'none'})")
        except (OSError, ReleaseError) as exc:
            problems.append(f"data_scopes: {exc}")
    if servers and configs and not problems:
        problems.extend(asyncio.run(_check_pins(policy)))
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for problem in problems:
        console.print(f"[red]error:[/] {escape(problem)}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]ok[/]: {len(policy.tools)} tools, {len(policy.intents)} intents, "
                  f"{len(policy.escalations)} escalations")  # fmt: skip


async def _check_pins(policy: Policy) -> list[str]:
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as scratch:
        assert policy.servers is not None and policy.path is not None
        live = load_servers(policy.servers, data_dir=Path(scratch), world=policy.path.parent / "world.yaml")
        bindings = {
            name: Binding(name, t.server, t.mcp_tool, t.schema_sha256, t.timeout_s) for name, t in policy.tools.items()
        }
        toolbox = Toolbox(policy.tenant_id, live, bindings)
        try:
            failed = await toolbox.start()
            problems.extend(f"server {name}: {why}" for name, why in failed.items())
            table = Table("tool", "contract sha256", "pinned", title="contracts offered by the servers")
            for name, binding in bindings.items():
                contract = toolbox.contracts(binding.server).get(binding.mcp_tool)
                digest = contract.digest if contract else "(missing)"
                same = binding.pin == digest
                table.add_row(name, digest, "[green]yes[/]" if same else "[red]no[/]")
                if binding.server not in failed and not same:
                    problems.append(toolbox.problem(policy.tenant_id, name) or f"{name}: pin differs")
            console.print(table)
        finally:
            await toolbox.aclose()
    return problems


@policy_app.command("test")
def test_cases(
    file: PolicyFile,
    cases: Annotated[Path, typer.Argument(help="A YAML of inputs and expected outcomes.", exists=True)],
) -> None:
    """Run policy unit tests: each case is decided by the real gate and compared with what it expects."""
    policy = _load(file)
    failed = 0
    try:
        results = list(run_cases(policy, load_cases(cases)))
    except PolicyError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        raise typer.Exit(1) from None
    for result in results:
        if result.passed:
            console.print(f"[green]pass[/] {escape(result.name)}")
            continue
        failed += 1
        console.print(f"[red]FAIL[/] {escape(result.name)}: expected {result.expected}, got {result.got}")
        for reason in result.reasons:
            console.print(f"       {escape(reason)}")
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


@policy_app.command()
def revoke(
    tool: str,
    tenant: Tenant,
    data_dir: DataDir = Path("var"),
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded in every decision it denies.")] = "revoked",
) -> None:
    """Pull the kill switch: deny a tool at once for every interaction, whatever release it is pinned to."""
    revocations = Revocations(data_dir / "revocations.db")
    revocations.revoke(tenant, tool, reason)
    revocations.close()
    console.print(f"{tenant}: {tool} revoked ({reason})")


@policy_app.command()
def restore(tool: str, tenant: Tenant, data_dir: DataDir = Path("var")) -> None:
    """Undo a revocation."""
    revocations = Revocations(data_dir / "revocations.db")
    restored = revocations.restore(tenant, tool)
    revocations.close()
    console.print(f"{tenant}: {tool} {'restored' if restored else 'was not revoked'}")
