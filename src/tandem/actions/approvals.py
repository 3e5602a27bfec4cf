"""Approving, rejecting and compensating actions: what the API's approve and reject endpoints call.

An approval is recorded only while the action awaits one, by someone whose role suffices (an agent holding
the floor, or a supervisor), before its expiry, and bound to the arguments' digest the approver saw. The
check and the append are one fenced step under the interaction's mailbox, so of two approvals racing (two
clicks, two agents, two processes) exactly one is recorded and the other gets ``AlreadyDecided``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tandem import commands as cmd
from tandem.actions import lifecycle
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.conductor import Conductor, ConductorError, FloorNotHeld


class ActionNotFound(ConductorError):
    code = "not_found"


class AlreadyDecided(ConductorError):
    code = "already_decided"


class ApprovalExpired(ConductorError):
    code = "approval_expired"  # the API answers 410


class NotAllowed(ConductorError):
    code = "forbidden"


class DigestMismatch(ConductorError):
    code = "version_conflict"


async def approve(
    conductor: Conductor,
    tenant_id: str,
    interaction_id: str,
    action_id: str,
    by: Actor,
    *,
    reason: str | None = None,
    args_digest: str | None = None,
) -> dict[str, Any]:
    """Record an approval; return the action as it now stands."""
    return await _decide(conductor, tenant_id, interaction_id, action_id, by, True, reason, args_digest)


async def reject(
    conductor: Conductor,
    tenant_id: str,
    interaction_id: str,
    action_id: str,
    by: Actor,
    *,
    reason: str | None = None,
) -> dict[str, Any]:
    """Record a rejection; return the action as it now stands."""
    return await _decide(conductor, tenant_id, interaction_id, action_id, by, False, reason, None)


async def _decide(
    conductor: Conductor,
    tenant_id: str,
    interaction_id: str,
    action_id: str,
    by: Actor,
    approved: bool,
    reason: str | None,
    args_digest: str | None,
) -> dict[str, Any]:
    role = lifecycle.role_of(by.kind)

    def decide(state: Interaction) -> list[cmd.Command]:
        action = state.actions.get(action_id)
        if action is None:
            raise ActionNotFound(f"interaction {interaction_id} has no action {action_id}")
        check(state, action, by, role, approved, args_digest, conductor.clock.now())
        data: dict[str, Any] = {
            "action_id": action_id,
            "by": by.id or by.kind,
            "role": role,
            "args_digest": action["args_digest"],
        }
        if reason:
            data["reason"] = reason
        timer_id = lifecycle.approval_timer_id(action_id)
        out: list[cmd.Command] = [cmd.Emit(ev.ACTION_APPROVED if approved else ev.ACTION_REJECTED, data)]
        if timer_id in state.timers:
            out.append(cmd.CancelTimer(timer_id))
        return out

    await conductor.execute(tenant_id, interaction_id, decide, by, require_open=False)
    # The approval is an input: let the floor holder hear of it (and the turn be completed).
    await conductor.process(interaction_id)
    state = await conductor.load(interaction_id)
    return dict(state.actions[action_id])


def check(
    state: Interaction,
    action: dict[str, Any],
    by: Actor,
    role: str | None,
    approving: bool,
    args_digest: str | None,
    now: datetime,
) -> None:
    status = action["status"]
    approval = action.get("approval") or {}
    if status == "rejected" and approval.get("expired"):
        raise ApprovalExpired(f"the approval of {action['id']} expired")
    if status != "awaiting_approval":
        raise AlreadyDecided(f"action {action['id']} is {status}, not awaiting approval")
    deadline = lifecycle.expires_at(action)
    if deadline is not None and now >= deadline:
        raise ApprovalExpired(f"the approval of {action['id']} expired at {deadline.isoformat()}")
    if by.kind == "human" and not (state.floor.kind == "human" and state.floor.participant_id in (None, by.id)):
        raise FloorNotHeld(f"agent {by.id} does not hold the floor of {state.interaction_id}")
    requires = (action.get("decision") or {}).get("requires")
    if approving and not lifecycle.may_approve(role, requires):
        raise NotAllowed(f"{by.kind} may not approve an action that needs {requires or 'agent'} approval")
    if role is None:
        raise NotAllowed(f"{by.kind} may not decide actions")
    if args_digest is not None and args_digest != action["args_digest"]:
        raise DigestMismatch("the action's arguments are not the ones approved (digest differs)")


async def compensate(
    conductor: Conductor,
    tenant_id: str,
    interaction_id: str,
    action_id: str,
    tool: str,
    by: Actor,
    *,
    reason: str = "",
) -> str:
    """Propose the compensation of a succeeded action: a new action of ``tool`` (the release's name for the
    tool that undoes it) with ``original_key``. Policy decides it like any other; once it succeeds the worker
    records the original as compensated. Returns the compensating action's id."""

    def propose(state: Interaction) -> list[cmd.Command]:
        action = state.actions.get(action_id)
        if action is None:
            raise ActionNotFound(f"interaction {interaction_id} has no action {action_id}")
        if action["status"] != "succeeded" or not action.get("idempotency_key"):
            raise AlreadyDecided(f"action {action_id} is {action['status']}; only a succeeded action is undone")
        args = {"original_key": action["idempotency_key"]}
        return [cmd.ProposeAction(tool, args, reason or f"compensate {action_id}")]

    events = await conductor.execute(tenant_id, interaction_id, propose, by, require_open=False)
    proposed = [e for e in events if e.type == ev.ACTION_PROPOSED]
    return str(proposed[0].data["action_id"])
