"""Running an attempt: a desk where the AI holds the floor with a model that obeys, the shipped policies
deciding, the rule understander reading the customer's words (sentiment may only tighten), and what the
attempt left on the record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.knowledge.articles import read_articles
from tandem.knowledge.retrieval import Hit, KnowledgeBase, Lookup, TenantKnowledge
from tandem.llm.scripted import ScriptedLLM
from tandem.participants import planner
from tandem.participants.ai import AIParticipant
from tandem.participants.protocol import ActionGate
from tandem.release.policy_gate import PolicyGate
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World
from tests.injection.catalogue import PLANTED_ARTICLES, Attempt, Split
from tests.planner.support import SETUP, example_gate, example_scopes

MODEL = "obedient-model"
# What the customer may hear after an attempt: the planner's own words about what really happened.
POLITE = {
    "deny": planner.SAY_DENIED,
    "require_approval": planner.SAY_APPROVAL,
    "refused": planner.SAY_REFUSED,
}


class PlantedKnowledge:
    """Each tenant's real help articles plus the planted ones, searched by the real retrieval."""

    def __init__(self, planted: Mapping[str, Sequence[Any]]) -> None:
        folders = TenantKnowledge().folders
        self.bases = {t: KnowledgeBase([*read_articles(f), *planted.get(t, [])]) for t, f in folders.items()}

    def lookup(self, tenant_id: str, question: str, k: int = 5) -> list[Lookup]:
        base = self.bases.get(tenant_id)
        return base.lookup(question, k) if base is not None else []

    def covers(self, tenant_id: str, question: str, hit: Hit) -> bool:
        base = self.bases.get(tenant_id)
        return base is not None and base.covers(question, hit)


@cache
def planted_knowledge() -> PlantedKnowledge:
    return PlantedKnowledge(PLANTED_ARTICLES)


@dataclass
class Desk:
    world: World
    store: SqliteStore
    conductor: Conductor
    ai: AIParticipant
    llm: ScriptedLLM
    clock: ManualClock


def make_desk(data_dir: Path, gate: ActionGate | None = None) -> Desk:
    world = World.load()
    clock = ManualClock()
    store = SqliteStore(data_dir / "tandem.db")
    llm = ScriptedLLM(model=MODEL)
    policy: ActionGate = gate or example_gate(world)
    ai = AIParticipant(llm, world, scopes=example_scopes(), knowledge=planted_knowledge(), gate=policy)
    conductor = Conductor(
        store, {"ai": ai}, clock=clock, gate=policy, understander=RuleUnderstander({t.id: t.kind for t in world})
    )
    return Desk(world, store, conductor, ai, llm, clock)


@dataclass
class Record:
    """What one attempt left: the replies the customer got, the policy's decisions (as proposed, and when
    re-checked before executing), the refusals."""

    attempt_id: str
    interaction_id: str
    replies: list[str] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)  # ActionDecided data, with tool and stage
    refusals: list[dict[str, Any]] = field(default_factory=list)  # CommandRefused data
    events: list[Event] = field(default_factory=list)

    def stage(self, stage: str) -> list[dict[str, Any]]:
        return [d for d in self.decisions if d["stage"] == stage]

    @property
    def executable(self) -> list[str]:
        """Actions that would execute: allowed as proposed and again when re-checked before executing."""
        allowed = {d["action_id"] for d in self.stage("proposal") if d["outcome"] == "allow"}
        stopped = {d["action_id"] for d in self.stage("execution") if d["outcome"] != "allow"}
        return sorted(allowed - stopped)

    def blocked_by(self) -> tuple[str, str, str] | None:
        """The first stop on the record: (outcome or "refused", rule, stage)."""
        for d in self.stage("proposal"):
            if d["outcome"] != "allow":
                return d["outcome"], d["rule"], "proposal"
        for r in self.refusals:
            return "refused", str(r.get("rule") or r["reason"]), "proposal"
        for d in self.stage("execution"):
            if d["outcome"] != "allow":
                return d["outcome"], d["rule"], "execution"
        return None


async def _open(desk: Desk, tenant: str, customer_id: str, verified: bool, facts: Sequence[cmd.Command]) -> str:
    record = desk.world.tenant(tenant).directory.get(customer_id)
    customer = record.public() if record is not None else {}
    state, _ = await desk.conductor.start(tenant, customer_id, "chat", customer=customer, floor="ai")
    setup: list[cmd.Command] = list(facts)
    if verified:
        setup.insert(0, cmd.RaiseAssurance("knowledge_verified", "knowledge: date of birth"))
    if setup:
        await desk.conductor.execute(tenant, state.interaction_id, setup, SETUP)
    return state.interaction_id


async def _say(desk: Desk, tenant: str, interaction_id: str, text: str) -> list[str]:
    result = await desk.conductor.handle(
        Input(tenant, interaction_id, ev.CUSTOMER_SAID, {"text": text}, Actor("customer"))
    )
    return [str(e.data["text"]) for e in result.replies]


async def _record(desk: Desk, attempt_id: str, interaction_id: str, replies: list[str], *, recheck: bool) -> Record:
    events = await desk.store.read(interaction_id)
    proposed = {e.data["action_id"]: e for e in events if e.type == ev.ACTION_PROPOSED}
    decisions = [
        {**e.data, "tool": proposed[e.data["action_id"]].data["tool"], "stage": e.data.get("stage", "proposal")}
        for e in events
        if e.type == ev.ACTION_DECIDED
    ]
    if recheck:
        # Without a worker: ask the gate exactly as the worker does before it executes an allowed action.
        gate = desk.conductor.gate
        assert isinstance(gate, PolicyGate)
        state = await desk.conductor.load(interaction_id)
        for d in [d for d in decisions if d["outcome"] == "allow"]:
            action = state.actions[d["action_id"]]
            again = gate.decide(
                state, action["tool"], action["args"], action["proposed_by"]["kind"], desk.clock.now(),
                action_id=d["action_id"],
            )  # fmt: skip
            decisions.append({"action_id": d["action_id"], "tool": d["tool"], "outcome": again.outcome,
                              "rule": again.rule, "stage": "execution"})  # fmt: skip
    refusals = [dict(e.data) for e in events if e.type == ev.COMMAND_REFUSED]
    return Record(attempt_id, interaction_id, replies, decisions, refusals, events)


async def run_attempt(desk: Desk, attempt: Attempt, *, recheck: bool = True) -> Record:
    """One attempt on its own interaction, closed afterwards so the customer can be tried again. ``recheck``:
    decide again as the worker would before executing (leave it to a real worker with False)."""
    interaction_id = await _open(desk, attempt.tenant, attempt.customer, attempt.verified, attempt.facts)
    desk.llm.add(*attempt.script())
    replies = await _say(desk, attempt.tenant, interaction_id, attempt.line)
    assert not desk.llm.script, f"{attempt.id}: the model was not asked as often as scripted"
    record = await _record(desk, attempt.id, interaction_id, replies, recheck=recheck)
    await desk.conductor.execute(attempt.tenant, interaction_id, [cmd.Close("attempt over")], SETUP)
    return record


async def run_split(desk: Desk, split: Split, *, recheck: bool = True) -> Record:
    interaction_id = await _open(desk, split.tenant, split.customer, True, ())
    desk.llm.add(*split.script())
    replies: list[str] = []
    for line in split.lines:
        replies += await _say(desk, split.tenant, interaction_id, line)
    record = await _record(desk, split.id, interaction_id, replies, recheck=recheck)
    await desk.conductor.execute(split.tenant, interaction_id, [cmd.Close("attempt over")], SETUP)
    return record
