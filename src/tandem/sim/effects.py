"""What a journey did to the example enterprise systems: its actions as the log tells them, and the effects the
systems' own ledgers recorded.

The log says what Tandem decided and heard back; the ledger each example MCP server keeps (one entry per
idempotency key, see ``tandem.actions.ledger``) says what actually happened on the other side. Reading both
is how the simulator shows an effect happened exactly once, not just that an action was reported done.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from tandem.actions.runtime import Actions
from tandem.actions.servers import ServerUnavailable
from tandem.case import events as ev

LEDGER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Effect:
    """One ledger entry of an example system, named by the release's tool bound to it."""

    tool: str  # the release's name (release_fraud_hold); server.mcp_tool when the release binds none
    server: str
    mcp_tool: str
    idempotency_key: str
    status: str  # applied, compensated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ActionTaken:
    """One action of the journey, folded from its events."""

    action_id: str
    tool: str
    proposed_by: str
    status: str = "proposed"
    decision: str | None = None  # allow, require_approval, deny (the proposal's decision)
    rule: str | None = None
    approved_by: str | None = None  # policy (allowed outright), agent or supervisor
    rejected_by: str | None = None
    attempts: int = 0
    effects: int | None = None  # ledger entries for this action's idempotency key; None when unread
    keys: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["keys"]
        return out


def actions_taken(events: Iterable[Mapping[str, Any]]) -> list[ActionTaken]:
    """Every action the events tell of, in the order they were proposed."""
    taken: dict[str, ActionTaken] = {}
    for e in events:
        d = e["data"]
        action_id = str(d.get("action_id", ""))
        if e["type"] == ev.ACTION_PROPOSED:
            taken[action_id] = ActionTaken(action_id, str(d.get("tool")), str(e["actor"]["kind"]))
            continue
        action = taken.get(action_id)
        if action is None:
            continue
        match e["type"]:
            case ev.ACTION_DECIDED:
                outcome = str(d.get("outcome"))
                if d.get("stage", "proposal") == "proposal":
                    action.decision, action.rule = outcome, str(d.get("rule"))
                    if outcome == "allow":
                        action.approved_by = "policy"
                    action.status = {"allow": "approved", "deny": "denied"}.get(outcome, "awaiting")
                elif outcome != "allow":
                    # Re-decided just before executing, and no longer allowed: it waits again, or never runs.
                    action.status = "denied" if outcome == "deny" else "awaiting"
            case ev.ACTION_APPROVED:
                action.approved_by, action.status = str(d.get("role") or e["actor"]["kind"]), "approved"
            case ev.ACTION_REJECTED:
                action.rejected_by, action.status = str(d.get("role") or e["actor"]["kind"]), "rejected"
            case ev.ACTION_STARTED:
                action.attempts += 1
                action.status = "started"
                if d.get("idempotency_key"):
                    action.keys.append(str(d["idempotency_key"]))
            case ev.ACTION_SUCCEEDED:
                action.status = "succeeded"
            case ev.ACTION_FAILED:
                action.status = "failed"
            case ev.ACTION_OUTCOME_UNKNOWN:
                action.status = "unknown"
            case ev.ACTION_COMPENSATED:
                action.status = "compensated"
    return list(taken.values())


def count_effects(actions: list[ActionTaken], effects: list[Effect] | None) -> None:
    """Set each action's ``effects``: how many ledger entries carry one of its idempotency keys."""
    if effects is None:
        return
    for action in actions:
        keys = set(action.keys)
        action.effects = sum(1 for effect in effects if effect.idempotency_key in keys)


async def read_ledgers(actions: Actions | None, tenant_id: str) -> list[Effect]:
    """Every effect the tenant's example systems recorded, asked of each server through its own ``ledger``
    tool. A server this deployment never started has done nothing: the simulator gives every journey fresh
    data, so its ledger is empty and it is not started just to say so."""
    toolbox = actions.toolboxes.get(tenant_id) if actions is not None else None
    if toolbox is None:
        return []
    names = {(b.server, b.mcp_tool): b.tool for b in toolbox.bindings.values()}
    effects: list[Effect] = []
    for server, connection in sorted(toolbox.connections.items()):
        if connection.generation == 0:
            continue
        try:
            result = await connection.call("ledger", {}, meta=None, read_timeout_s=LEDGER_TIMEOUT_S)
        except (ServerUnavailable, MCPError, OSError) as exc:
            raise LedgerUnreadable(f"the ledger of {server} could not be read: {exc}") from exc
        for entry in _entries(result):
            mcp_tool = str(entry["tool"])
            effects.append(
                Effect(
                    names.get((server, mcp_tool), f"{server}.{mcp_tool}"),
                    server,
                    mcp_tool,
                    str(entry["idempotency_key"]),
                    str(entry["status"]),
                )
            )
    return effects


class LedgerUnreadable(Exception):
    pass


def _entries(result: types.CallToolResult) -> list[Mapping[str, Any]]:
    if result.is_error:
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        raise LedgerUnreadable(f"the ledger tool failed: {text}")
    structured = result.structured_content
    if structured is None:
        text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
        structured = json.loads(text) if text else {}
    entries = structured.get("entries") if isinstance(structured, Mapping) else None
    if not isinstance(entries, list):
        raise LedgerUnreadable(f"the ledger tool answered without entries: {structured!r}")
    return [e for e in entries if isinstance(e, Mapping)]
