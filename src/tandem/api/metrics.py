"""Operational counts from the log: interactions by status and by floor, turns, messages, handoff steps.

A projection fed by the router's reading of the store-wide log (every event once, in commit order), so the
numbers are exact and cost nothing to read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from tandem.case import events as ev
from tandem.case.envelope import Event

_HANDOFF_STEPS = {
    ev.HANDOFF_REQUESTED: "requested",
    ev.HANDOFF_QUEUED: "queued",
    ev.HANDOFF_OFFERED: "offered",
    ev.HANDOFF_DECLINED: "declined",
    ev.HANDOFF_EXPIRED: "expired",
    ev.HANDOFF_ACCEPTED: "accepted",
    ev.HANDOFF_CONNECTED: "connected",
    ev.HANDOFF_ABANDONED: "abandoned",
    ev.HANDED_BACK: "handed_back",
}


class Metrics:
    def __init__(self) -> None:
        self.statuses: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.turns: Counter[str] = Counter()
        self.messages: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.handoffs: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._open_floor: dict[str, tuple[str, str]] = {}  # open interaction -> (tenant, floor kind)

    def observe(self, e: Event) -> None:
        tenant = e.tenant_id
        if e.type == ev.INTERACTION_STARTED:
            self.statuses[tenant]["open"] += 1
            self._open_floor[e.interaction_id] = (tenant, str(e.data.get("floor", "bot")))
        elif e.type == ev.INTERACTION_CLOSED and self._open_floor.pop(e.interaction_id, None) is not None:
            self.statuses[tenant]["open"] -= 1
            self.statuses[tenant]["closed"] += 1
        elif e.type == ev.FLOOR_MOVED and e.interaction_id in self._open_floor:
            self._open_floor[e.interaction_id] = (tenant, str(e.data["kind"]))
        elif e.type == ev.TURN_COMPLETED:
            self.turns[tenant] += 1
        elif e.type in (ev.CUSTOMER_SAID, ev.AGENT_SAID, ev.REPLY_SENT):
            self.messages[tenant][e.type] += 1
        if e.type in _HANDOFF_STEPS:
            self.handoffs[tenant][_HANDOFF_STEPS[e.type]] += 1

    def snapshot(self, tenant_id: str) -> dict[str, Any]:
        floors = Counter(kind for tenant, kind in self._open_floor.values() if tenant == tenant_id)
        return {
            "interactions": {"open": self.statuses[tenant_id]["open"], "closed": self.statuses[tenant_id]["closed"]},
            "open_by_floor": dict(sorted(floors.items())),
            "turns": self.turns[tenant_id],
            "messages": {
                "customer": self.messages[tenant_id][ev.CUSTOMER_SAID],
                "agent": self.messages[tenant_id][ev.AGENT_SAID],
                "automated": self.messages[tenant_id][ev.REPLY_SENT],
            },
            "handoffs": dict(sorted(self.handoffs[tenant_id].items())),
        }
