"""Assembling the action layer of a deployment: policies, the gate, the MCP servers and the worker.

    actions = build_actions(world, data_dir, conductor)   # sets conductor.gate
    await actions.start()                                 # starts the MCP servers, then the worker
    ...
    await actions.aclose()

Each tenant's ``policy.yaml`` sits beside its ``world.yaml`` (``examples/bank/``); its ``servers`` file names
the MCP servers, which keep their data under ``data_dir/mcp/<tenant>/``. Policy versions are archived under
``data_dir/releases/policy/`` so interactions pinned to an older version keep it across restarts, and the
kill switch lives in ``data_dir/revocations.db`` where every process of the deployment sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem.actions import approvals
from tandem.actions.servers import ServerConfig, load_servers
from tandem.actions.tools import Binding, Toolbox
from tandem.actions.worker import ActionWorker
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor
from tandem.release.policy import Escalation, Policy, PolicyBook, load_policy
from tandem.release.policy_gate import PolicyGate, RecordLookup
from tandem.release.policy_revocations import Revocations
from tandem.release.publishing import Publisher, release_id
from tandem.world.world import EXAMPLES_DIR, World

log = logging.getLogger(__name__)


class _Tools:
    """Tool availability across tenants, for the gate."""

    def __init__(self, toolboxes: Mapping[str, Toolbox]) -> None:
        self.toolboxes = toolboxes

    def problem(self, tenant_id: str, tool: str) -> str | None:
        toolbox = self.toolboxes.get(tenant_id)
        if toolbox is None:
            return f"tenant {tenant_id} has no MCP servers configured"
        return toolbox.problem(tenant_id, tool)


@dataclass
class Actions:
    """The action layer of a deployment. The lead's API calls ``approve``/``reject``; the bot proposes with
    ``tandem.commands.ProposeAction`` and pins interactions with ``release(tenant)``."""

    conductor: Conductor
    book: PolicyBook
    publisher: Publisher
    gate: PolicyGate
    revocations: Revocations
    toolboxes: dict[str, Toolbox]
    worker: ActionWorker
    policies: dict[str, Policy] = field(default_factory=dict)
    failed_servers: dict[str, dict[str, str]] = field(default_factory=dict)

    async def start(self, *, worker: bool = True) -> dict[str, dict[str, str]]:
        """Start every tenant's MCP servers and discover their tools, then the worker. Returns the servers that
        did not start, by tenant: their tools are unavailable (denied) until they do."""
        for tenant_id, toolbox in self.toolboxes.items():
            failed = await toolbox.start()
            if failed:
                log.warning("tenant %s: MCP servers unavailable: %s", tenant_id, failed)
                self.failed_servers[tenant_id] = failed
        if worker:
            await self.worker.start()
        return self.failed_servers

    async def aclose(self) -> None:
        await self.worker.aclose()
        for toolbox in self.toolboxes.values():
            await toolbox.aclose()
        self.revocations.close()

    # -- pins ------------------------------------------------------------------------------------------
    def release(self, tenant_id: str) -> str | None:
        """What a new interaction is pinned to (``Conductor.pin``): the active policy version."""
        policy = self.book.active(tenant_id)
        return None if policy is None else release_id(policy)

    # -- people deciding -------------------------------------------------------------------------------
    async def approve(
        self, tenant_id: str, interaction_id: str, action_id: str, by: Actor, *, reason: str | None = None,
        args_digest: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await approvals.approve(
            self.conductor, tenant_id, interaction_id, action_id, by, reason=reason, args_digest=args_digest
        )

    async def reject(
        self, tenant_id: str, interaction_id: str, action_id: str, by: Actor, *, reason: str | None = None
    ) -> dict[str, Any]:
        return await approvals.reject(self.conductor, tenant_id, interaction_id, action_id, by, reason=reason)

    async def compensate(
        self, tenant_id: str, interaction_id: str, action_id: str, by: Actor, *, reason: str = ""
    ) -> str:
        """Propose undoing a succeeded action with its tool's declared compensation."""
        state = await self.conductor.load(interaction_id)
        action = state.actions.get(action_id)
        if action is None:
            raise approvals.ActionNotFound(f"interaction {interaction_id} has no action {action_id}")
        tool = self.compensating_tool(tenant_id, action["tool"])
        if tool is None:
            raise approvals.NotAllowed(f"{action['tool']} declares no compensation the release allows")
        return await approvals.compensate(self.conductor, tenant_id, interaction_id, action_id, tool, by, reason=reason)

    def compensating_tool(self, tenant_id: str, tool: str) -> str | None:
        toolbox = self.toolboxes.get(tenant_id)
        binding = toolbox.bindings.get(tool) if toolbox else None
        if toolbox is None or binding is None:
            return None
        contract = toolbox.contracts(binding.server).get(binding.mcp_tool)
        if contract is None or contract.compensate is None:
            return None
        for name, other in toolbox.bindings.items():
            if other.server == binding.server and other.mcp_tool == contract.compensate:
                return name
        return None

    # -- the kill switch -------------------------------------------------------------------------------
    def revoke(self, tenant_id: str, tool: str, reason: str) -> None:
        self.revocations.revoke(tenant_id, tool, reason)

    def restore(self, tenant_id: str, tool: str) -> bool:
        return self.revocations.restore(tenant_id, tool)

    # -- the rest of policy ----------------------------------------------------------------------------
    def escalations(self, case: Interaction, now: datetime) -> list[tuple[Escalation, str]]:
        return self.gate.escalations(case, now)

    def may_serve(self, case: Interaction, intent: str, participant: str) -> bool:
        return self.gate.may_serve(case, intent, participant)


def _record_lookup(world: World) -> RecordLookup:
    def lookup(tenant_id: str, customer_id: str) -> Mapping[str, Any] | None:
        tenant = world.tenants.get(tenant_id)
        record = tenant.directory.get(customer_id) if tenant else None
        return None if record is None else {"id": record.id, **record.details}

    return lookup


def policy_files(world: World, root: Path | None = None) -> dict[str, Path]:
    """The ``policy.yaml`` of each tenant of the world, found beside the tenants' ``world.yaml``."""
    root = root or EXAMPLES_DIR
    found: dict[str, Path] = {}
    for path in sorted(root.glob("*/policy.yaml")):
        policy = load_policy(path)
        if policy.tenant_id in world.tenants:
            found[policy.tenant_id] = path
    return found


def build_actions(
    world: World,
    data_dir: Path,
    conductor: Conductor,
    *,
    policies: Mapping[str, Path] | None = None,
    server_env: Mapping[str, str] | None = None,
    lease_ttl_s: float = 60.0,
    concurrency: int = 16,
    owner: str | None = None,
) -> Actions:
    """The action layer for ``world``: one policy per tenant (``policies``, or each tenant's ``policy.yaml``
    beside its ``world.yaml`` under ``examples/``), their MCP servers, the gate (also set as
    ``conductor.gate``) and the worker. ``server_env`` is added to every started server's environment."""
    data_dir = Path(data_dir)
    book = PolicyBook(archive=data_dir / "releases" / "policy")
    publisher = Publisher(book, conductor.clock.now)
    loaded: dict[str, Policy] = {}
    toolboxes: dict[str, Toolbox] = {}
    for tenant_id, path in (policies or policy_files(world)).items():
        policy = publisher.deploy(load_policy(path))
        loaded[tenant_id] = policy
        servers: dict[str, ServerConfig] = {}
        if policy.servers is not None:
            servers = load_servers(
                policy.servers, data_dir=data_dir / "mcp" / tenant_id, world=path.parent / "world.yaml"
            )
            if server_env:
                servers = {name: config.with_env(server_env) for name, config in servers.items()}
        bindings = {
            name: Binding(name, spec.server, spec.mcp_tool, spec.schema_sha256, spec.timeout_s)
            for name, spec in policy.tools.items()
        }
        toolboxes[tenant_id] = Toolbox(tenant_id, servers, bindings)
    revocations = Revocations(data_dir / "revocations.db")
    gate = PolicyGate(book, records=_record_lookup(world), revocations=revocations, tools=_Tools(toolboxes))
    conductor.gate = gate
    worker = ActionWorker(conductor, gate, toolboxes, owner=owner, lease_ttl_s=lease_ttl_s, concurrency=concurrency)
    actions = Actions(conductor, book, publisher, gate, revocations, toolboxes, worker, loaded)
    # Every new interaction is pinned to the policy active when it starts, and keeps it to its end.
    conductor.pin = actions.release
    return actions
