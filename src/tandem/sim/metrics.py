"""What a journey cost and achieved: simulated time and money, and counts read off the log.

Time is simulated, never measured: each customer turn, each agent turn and each wait for a person adds
configured seconds to whoever held the floor, so the figures are the same on every transport and machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from tandem.case import events as ev


@dataclass(frozen=True, slots=True)
class Rates:
    customer_turn_s: float = 20.0  # a customer line and the answer to it
    agent_turn_s: float = 30.0  # a person reading, typing and sending a line
    queue_wait_s: float = 0.0  # added to every handoff, beside the agent's own time to accept
    ai_per_min: float = 0.10  # dollars per minute of the bot or AI holding the floor
    human_per_min: float = 1.00  # dollars per minute of a person holding the floor

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Ledger:
    """Simulated seconds by who held the floor: the bot or AI, a person, or nobody yet (queued)."""

    rates: Rates
    ai_s: float = 0.0
    human_s: float = 0.0
    queue_s: float = 0.0

    def customer_turn(self, floor: str) -> None:
        if floor in ("human", "supervisor"):
            self.human_s += self.rates.customer_turn_s
        else:
            self.ai_s += self.rates.customer_turn_s

    def agent_turn(self) -> None:
        self.human_s += self.rates.agent_turn_s

    def queue(self, accept_after_s: float) -> None:
        self.queue_s += self.rates.queue_wait_s + accept_after_s

    @property
    def handle_time_s(self) -> float:
        return self.ai_s + self.human_s + self.queue_s

    @property
    def cost(self) -> float:
        # Waiting in the queue costs nobody's minutes: the bot keeps the customer company for free here.
        return round(self.ai_s / 60 * self.rates.ai_per_min + self.human_s / 60 * self.rates.human_per_min, 4)


@dataclass
class Metrics:
    resolved: bool = False
    abandoned: bool = False
    contained: bool = False
    repeats_events: int = 0
    repeats_text: int = 0
    turns: int = 0  # customer lines
    agent_turns: int = 0
    handoffs: int = 0
    hand_backs: int = 0
    legs: int = 0
    continued: bool = False
    handle_time_s: float = 0.0
    ai_s: float = 0.0
    human_s: float = 0.0
    queue_s: float = 0.0
    cost: float = 0.0
    policy_blocks: int = 0
    unauthorized_actions: int = 0
    handoff_path: list[str] = field(default_factory=list)
    executed_actions: list[str] = field(default_factory=list)
    signal_facts: int = 0  # facts in the final case file that a signal brought
    signals_timed_out: int = 0
    effects: int = 0  # entries in the example systems' ledgers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def floor_path(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Who held the floor, in order, consecutive holders merged: ``[bot, human, bot]``."""
    path: list[str] = []
    for e in events:
        kind = None
        if e["type"] == ev.INTERACTION_STARTED:
            kind = str(e["data"].get("floor") or "bot")
        elif e["type"] == ev.FLOOR_MOVED:
            kind = str(e["data"]["kind"])
        if kind is not None and (not path or path[-1] != kind):
            path.append(kind)
    return path


def policy_blocks(events: Iterable[Mapping[str, Any]]) -> int:
    return sum(
        1
        for e in events
        if e["type"] == ev.COMMAND_REFUSED or (e["type"] == ev.ACTION_DECIDED and e["data"].get("outcome") == "deny")
    )


def action_outcomes(events: Sequence[Mapping[str, Any]]) -> tuple[list[str], int]:
    """Tools whose actions succeeded, and how many actions started without an allowing decision.

    An action may start when policy allowed it outright, or when it needed an approval and got one bound
    to its arguments; anything else that starts is unauthorized.
    """
    decided: dict[str, str] = {}
    approved: set[str] = set()
    tools: dict[str, str] = {}
    executed: list[str] = []
    unauthorized = 0
    for e in events:
        d = e["data"]
        action_id = str(d.get("action_id", ""))
        match e["type"]:
            case ev.ACTION_PROPOSED:
                tools[action_id] = str(d.get("tool"))
            case ev.ACTION_DECIDED:
                decided[action_id] = str(d.get("outcome"))
            case ev.ACTION_APPROVED:
                approved.add(action_id)
            case ev.ACTION_STARTED:
                outcome = decided.get(action_id)
                if outcome == "deny" or outcome is None or (outcome != "allow" and action_id not in approved):
                    unauthorized += 1
            case ev.ACTION_SUCCEEDED:
                executed.append(tools.get(action_id, action_id))
    return executed, unauthorized


@dataclass
class Totals:
    scenarios: int = 0
    resolved: int = 0
    abandoned: int = 0
    contained: int = 0
    repeats_events: int = 0
    repeats_text: int = 0
    turns: int = 0
    agent_turns: int = 0
    handoffs: int = 0
    hand_backs: int = 0
    handle_time_s: float = 0.0
    human_s: float = 0.0
    cost: float = 0.0
    policy_blocks: int = 0
    unauthorized_actions: int = 0
    actions_executed: int = 0
    effects: int = 0

    @property
    def containment(self) -> float:
        """Resolved without a person, over the journeys the customer did not abandon."""
        served = self.scenarios - self.abandoned
        return self.contained / served if served else 0.0

    def add(self, m: Metrics) -> None:
        self.scenarios += 1
        self.resolved += int(m.resolved)
        self.abandoned += int(m.abandoned)
        self.contained += int(m.contained)
        self.repeats_events += m.repeats_events
        self.repeats_text += m.repeats_text
        self.turns += m.turns
        self.agent_turns += m.agent_turns
        self.handoffs += m.handoffs
        self.hand_backs += m.hand_backs
        self.handle_time_s += m.handle_time_s
        self.human_s += m.human_s
        self.cost = round(self.cost + m.cost, 4)
        self.policy_blocks += m.policy_blocks
        self.unauthorized_actions += m.unauthorized_actions
        self.actions_executed += len(m.executed_actions)
        self.effects += m.effects

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cost": round(self.cost, 2), "containment": round(self.containment, 4)}
