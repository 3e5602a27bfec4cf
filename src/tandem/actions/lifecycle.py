"""The action lifecycle, as the folded interaction shows it, and the names every step shares.

    proposed ─► decided ─┬─ allow ──────────────────────────────► approved ─► started ─┬─► succeeded ─► compensated
                         ├─ require_approval ─► awaiting_approval ─┬─ approve ─┘        ├─► failed
                         │                                          ├─ reject ─► rejected └─► unknown ─► reconciled
                         │                                          └─ expiry ─► rejected                 (succeeded),
                         └─ deny ─► denied                                                                 retried with
                                                                                                           the same key,
                                                                                                           or a person
Every step is an event (``tandem.case.events.ACTION_*``); the state here is only ever read from the fold.
The idempotency key of an action is derived from its id, so whoever resumes it after a crash uses the same
key, and the approval-expiry timer's id names its action, so a fired timer needs no payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

APPROVAL_EXPIRY = "approval_expiry"  # the kind of the durable timer that ends an approval's validity
TERMINAL = frozenset({"succeeded", "failed", "denied", "rejected", "compensated"})
# Who may approve what: a supervisor may approve what needs an agent, never the other way round.
ROLE_RANK: Mapping[str, int] = {"agent": 1, "supervisor": 2}
_KEY_PREFIX = "tandem"
_TIMER_PREFIX = "tmr_approval_"


def idempotency_key(tenant_id: str, action_id: str) -> str:
    return f"{_KEY_PREFIX}:{tenant_id}:{action_id}"


def action_of_key(key: str) -> str | None:
    """The action an idempotency key belongs to (a compensation names the key of what it undoes)."""
    parts = key.split(":")
    return parts[2] if len(parts) == 3 and parts[0] == _KEY_PREFIX else None


def approval_timer_id(action_id: str) -> str:
    return f"{_TIMER_PREFIX}{action_id}"


def action_of_timer(timer_id: str) -> str | None:
    return timer_id[len(_TIMER_PREFIX) :] if timer_id.startswith(_TIMER_PREFIX) else None


def role_of(actor_kind: str) -> str | None:
    """The approval role of an actor: a human agent approves as ``agent``, a supervisor as ``supervisor``."""
    return {"human": "agent", "agent": "agent", "supervisor": "supervisor"}.get(actor_kind)


def may_approve(role: str | None, requires: str | None) -> bool:
    if role is None:
        return False
    return ROLE_RANK.get(role, 0) >= ROLE_RANK.get(requires or "agent", 1)


def approval_holds(action: Mapping[str, Any], requires: str | None) -> bool:
    """Whether the action carries an approval that satisfies ``requires``: by a role at least that high, bound
    to the action's argument digest."""
    approval = action.get("approval")
    if not approval or approval.get("expired") or action.get("status") == "rejected":
        return False
    if approval.get("args_digest") != action.get("args_digest"):
        return False
    return may_approve(approval.get("role"), requires)


def expires_at(action: Mapping[str, Any]) -> datetime | None:
    raw = (action.get("decision") or {}).get("expires_at")
    return datetime.fromisoformat(raw) if raw else None


def is_terminal(action: Mapping[str, Any]) -> bool:
    return action.get("status") in TERMINAL or bool(action.get("escalated"))
