"""One journey: a simulated customer, and a simulated person where one is needed, working through the API.

The customer opens each leg (a trusted channel that vouches for them, or an anonymous chat), says its
lines, and answers what it is asked from its own facts: the fact asked comes from the ``FactRequested``
events and the ``asks`` field of replies, or failing those from the words (a person's questions carry no
``asks``). The person works as an agent desktop does: presence, offers, accept, the handoff card, messages,
approvals, then a hand-back with instructions or a wrap-up and close.

In ``siloed`` mode the same journey runs as a bot-then-cold-transfer system would: the person gets no card
and sees no case file, so they ask identity, verification and the reason again; a hand-back becomes a
transfer to a fresh bot session that starts over, and every new channel starts over too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tandem.case import events as ev
from tandem.sim import casefile
from tandem.sim.casefile import Fact
from tandem.sim.client import ApiCallFailed, TandemApi
from tandem.sim.effects import ActionTaken, Effect, LedgerUnreadable, actions_taken, count_effects
from tandem.sim.metrics import Ledger, Metrics, Rates, action_outcomes, floor_path, policy_blocks
from tandem.sim.questions import asked_facts, says_value
from tandem.sim.releases import publish_overlay
from tandem.sim.repeats import FoundRepeat, JourneyLog, Seen, count_from_events, count_from_text
from tandem.sim.scenario import FACT_OF_PERSONA, Agent, Leg, Line, Scenario
from tandem.sim.transport import Ledgers

Mode = Literal["tandem", "siloed"]
MAX_STEPS = 200
OPEN_HANDOFF = frozenset({"requested", "queued", "offered", "declined", "expired", "accepted"})
UNRESOLVED = frozenset({"abandoned", "customer_left", "transferred_to_self_service"})
IDENTITY_FACTS = frozenset({"customer_name", "phone", "member_id", "email", "account_id"})
# Actions on their way to an outcome: allowed or approved, and not yet heard back from.
IN_FLIGHT = frozenset({"proposed", "approved", "started"})
# The longest real wait for actions to settle: the first call to an example system starts its process.
SETTLE_WAIT_S = 30.0
# How a trusted channel passes each of the persona's facts as the customer's identity.
IDENTITY_FIELDS = {"phone": "phone", "email": "email", "name": "name", "member_id": "id"}

# How the simulated person asks for a fact. Worded so the text counter's lexicon recognises each one.
QUESTIONS: Mapping[str, str] = {
    "customer_name": "Can I have your full name, please?",
    "phone": "What's the phone number on your account?",
    "member_id": "Can I have your member ID, please?",
    "date_of_birth": "And your date of birth, please?",
    "zip": "And the ZIP code on the account?",
    "reason": "What can I help you with today?",
    "card_last4": "What are the last four digits of the card?",
    "disputed_charge": "Which charge would you like to dispute?",
    "email": "What's the email address on your account?",
}
# What a cold-transfer agent must ask, having no access to what the bot learned: identity, verification
# (the same challenge the bot used) and the reason for the call.
SILOED_ASKS: Mapping[str, tuple[str, ...]] = {
    "bank": ("customer_name", "phone", "date_of_birth", "zip", "reason"),
    "health_plan": ("member_id", "date_of_birth", "reason"),
}


class JourneyStuck(Exception):
    pass


def known_facts(facts: Iterable[Mapping[str, Any]], name: Any, identified_by: Any) -> set[str]:
    """The facts a card (or a case file) shows as known, by name; ``identity`` when it says who the
    customer is and how they were identified."""
    known = {str(f["name"]).split("[")[0] for f in facts if f.get("status") == "known"}
    if name:
        known.add("customer_name")
    if identified_by:
        known.add("identity")
    return known


def needs_asking(needs: Iterable[str], known: set[str]) -> list[str]:
    """What a person who reads the case still has to ask. Once the customer is identified, their identity
    facts are at hand: the record is one click away."""
    at_hand = known | IDENTITY_FACTS if "identity" in known else known
    return [fact for fact in needs if fact not in at_hand]


@dataclass
class Session:
    """One interaction the customer is in: an id, their token for it, and how far we have read."""

    interaction_id: str
    token: str
    leg_id: str | None
    after_seq: int = 0
    seen_seq: int = 0


@dataclass
class Seat:
    """The simulated person's desk: their agent id and token."""

    agent_id: str
    token: str


@dataclass
class JourneyResult:
    scenario: str
    mode: Mode
    metrics: Metrics
    transcript: list[Seen]
    repeats: list[FoundRepeat]
    handoff_facts: list[list[str]]
    interactions: list[str]
    error: str | None = None
    # The case file at the end (every interaction of the journey), the actions taken, and the effects the
    # example systems' ledgers recorded (None when the ledgers could not be read: against --url).
    facts: list[Fact] = field(default_factory=list)
    actions: list[ActionTaken] = field(default_factory=list)
    effects: list[Effect] | None = None
    signals: dict[str, str] = field(default_factory=dict)
    # The release each interaction was pinned to; the one active before the journey and, when the scenario
    # published its own, that one.
    pinned: list[str | None] = field(default_factory=list)
    shipped: str | None = None
    published: str | None = None
    # Every event the journey read (and, when siloed, the siloed person's requests): for inspection, not
    # for the report.
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def seen_text(self) -> str:
        return "\n".join(line.text for line in self.transcript if line.speaker != "customer")

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "mode": self.mode,
            "metrics": self.metrics.to_dict(),
            "repeats": [r.to_dict() for r in self.repeats],
            "handoff_facts": self.handoff_facts,
            "error": self.error,
            "signals": self.signals,
            "signal_facts": [f.to_dict() for f in casefile.from_signals(self.facts)],
            "actions": [a.to_dict() for a in self.actions],
            "effects": [e.to_dict() for e in self.effects] if self.effects is not None else None,
            "transcript": [line.to_dict() for line in self.transcript],
        }


@dataclass
class Journey:
    api: TandemApi
    scenario: Scenario
    mode: Mode
    rates: Rates
    tenant_kind: str
    offer_wait_s: float = 5.0
    ledgers: Ledgers | None = None

    log: JourneyLog = field(default_factory=JourneyLog)
    seen: list[Seen] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    handoff_facts: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ledger = Ledger(self.rates)
        self.persona = self.scenario.persona
        self.leg: Leg = self.persona.legs[0]
        self.leg_no = 0
        self.lines: list[Line] = []
        self.waiting: list[str] = []
        self.asked: list[str] = []  # facts requested (from the log) since the customer last spoke
        self.heard: list[str] = []  # what the customer saw since they last spoke
        self.times_asked: Counter[str] = Counter()
        self.given: dict[str, str] = {}
        self.floor = "bot"
        self.seat: Seat | None = None
        self.seat_available = False
        self.siloed_asked: set[str] = set()
        self.transfers_back = 0
        self.abandoned = False
        self.pinned: list[str | None] = []
        self.shipped: str | None = None
        self.published: str | None = None

    @property
    def session(self) -> Session:
        return self.sessions[-1]

    # -- the whole journey -----------------------------------------------------------------------------
    async def run(self) -> JourneyResult:
        error: str | None = None
        try:
            await self._release()
            if self.scenario.agent is not None:
                await self._seat_agent(self.scenario.agent)
            for leg in self.persona.legs:
                await self._open_leg(leg)
                await self._converse(leg)
                if self.abandoned:
                    break
            if not self.abandoned and await self._is_open():
                await self._leave("customer_left")
        except (ApiCallFailed, httpx.HTTPError, JourneyStuck) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await self._tidy()
        facts, effects = await self._evidence()
        if isinstance(effects, str):
            error, effects = error or effects, None
        return await self._result(error, facts, effects)

    async def _release(self) -> None:
        """Publish and activate the scenario's release (both modes play under it), or note the active one."""
        tenant = self.scenario.tenant
        if self.scenario.release is not None:
            try:
                done = await publish_overlay(self.api, tenant, self.scenario.release.policy, self.scenario.name)
            except ValueError as exc:
                raise JourneyStuck(str(exc)) from exc
            self.shipped, self.published = done.shipped, done.published
        elif self.scenario.expect.release is not None:
            active, _ = await self.api.active_release(tenant)
            self.shipped = active.get("id")

    async def _open_leg(self, leg: Leg) -> None:
        self.leg, self.leg_no = leg, self.leg_no + 1
        if self.mode == "siloed" and self.sessions and await self._is_open():
            # A siloed system keeps nothing across channels: the earlier session is simply gone.
            await self.api.close(self.session.interaction_id, self.session.token, "customer_left")
        token: str | None = None
        customer: dict[str, str] = {}
        if leg.entry == "trusted":
            token = self.api.admin_token
            for fact in leg.identify_by:
                customer[IDENTITY_FIELDS[fact]] = self.persona.facts[fact]
        started = await self.api.start(self.scenario.tenant, token, leg.channel, customer, leg.assurance)
        self.metrics.continued = self.metrics.continued or bool(started.get("continued"))
        session = Session(str(started["id"]), str(started["customer_token"]), started.get("leg_id"))
        previous = next((s for s in self.sessions if s.interaction_id == session.interaction_id), None)
        if previous is not None:
            session.after_seq, session.seen_seq = previous.after_seq, previous.seen_seq
            self.sessions.remove(previous)
        self.sessions.append(session)
        self.lines = list(leg.lines)
        self.waiting = list(leg.while_waiting)
        await self._observe()
        agent = self.scenario.agent
        if (
            self.seat is not None
            and agent is not None
            and not self.seat_available
            and self.leg_no >= agent.joins_on_leg
        ):
            await self.api.presence(self.seat.agent_id, self.seat.token, "available")
            self.seat_available = True

    async def _converse(self, leg: Leg) -> None:
        gave = self._facts_in(leg.opening)
        if leg.states_reason:
            gave.append(("reason", leg.opening))
        await self._customer_says(leg.opening, gave)
        for _ in range(MAX_STEPS):
            view = await self.api.interaction(self.session.interaction_id)
            if view["status"] != "open":
                return
            floor = view["floor"]
            self.floor = str(floor["kind"])
            if self.floor in ("human", "supervisor"):
                if self.seat is None or floor.get("participant_id") != self.seat.agent_id:
                    raise JourneyStuck(f"{self.floor} {floor.get('participant_id')} holds the floor; nobody plays them")
                await self._agent_works()
                continue
            if self.metrics.turns >= self.persona.patience:
                await self._leave("abandoned")
                return
            handoff = view.get("handoff")
            if handoff is not None and handoff.get("status") in OPEN_HANDOFF:
                if self.waiting:
                    text = self.waiting.pop(0)
                    await self._customer_says(text, self._facts_in(text))
                    continue
                if self.seat_available and await self._agent_accepts():
                    continue
                if leg is not self.persona.legs[-1]:
                    return  # nobody yet: hang up, and come back on the next leg
                await self._leave("abandoned")  # waited for a person who never came
                return
            reply = self._reply()
            if reply is None:
                return  # nothing more to say on this leg: the customer hangs up
            await self._customer_says(*reply)
        raise JourneyStuck(f"no end after {MAX_STEPS} steps")

    # -- the customer ----------------------------------------------------------------------------------
    def _facts_in(self, text: str) -> list[tuple[str, str]]:
        """Facts a line of the customer's own states, by the name Tandem gives them."""
        return [
            (FACT_OF_PERSONA.get(name, name), value)
            for name, value in self.persona.facts.items()
            if name != "reason" and says_value(text, [value])
        ]

    def _next_line(self) -> Line | None:
        person = self.floor in ("human", "supervisor")
        for i, line in enumerate(self.lines):
            if (line.to == "human") == person:
                return self.lines.pop(i)
        return None

    def _answer(self, fact: str) -> str | None:
        if fact == "reason":
            if self.floor not in ("human", "supervisor") and (line := self._next_line()) is not None:
                return line.text  # asked "how can I help?" by a fresh bot: say what they came for now
            return self.persona.facts.get("reason") or self.persona.legs[0].opening
        own = self.persona.fact_for(fact)
        if own is None:
            return None
        self.times_asked[fact] += 1
        if self.times_asked[fact] == 1 and fact in self.persona.first_answers:
            return self.persona.first_answers[fact]
        return self.persona.facts[own]

    def _reply(self) -> tuple[str, list[tuple[str, str]]] | None:
        """What the customer says next: answers to what they were asked, a yes to a confirmation, or their
        next line; None when they have nothing left to say."""
        said = {name: [value] for name, value in self.given.items()}
        from_text: list[str] = []
        confirmed: set[str] = set()
        for text in self.heard:
            asked, confirms = asked_facts(text, said)
            from_text.extend(sorted(asked))
            confirmed |= confirms
        wanted = list(dict.fromkeys([*self.asked, *from_text]))
        if wanted:
            parts: list[str] = []
            gave: list[tuple[str, str]] = []
            already = [f for f in wanted if f in self.given and f != "reason"]
            for fact in wanted:
                value = self._answer(fact)
                if value is not None:
                    parts.append(value)
                    gave.append((fact, value))
            if not parts:
                return "Sorry, I don't know that.", []
            text = " and ".join(parts)
            if already and self.persona.mood == "angry":
                text = f"I already told you that! {text}"
            return text, gave
        if confirmed:
            return "Yes, that's right.", []
        line = self._next_line()
        if line is None:
            return None
        return line.text, self._facts_in(line.text)

    async def _customer_says(self, text: str, gave: list[tuple[str, str]]) -> None:
        self.ledger.customer_turn(self.floor)
        self.metrics.turns += 1
        self.seen.append(Seen("customer", text, self.leg_no, tuple(gave)))
        self.given.update(dict(gave))
        self.asked, self.heard = [], []
        await self.api.say(self.session.interaction_id, self.session.token, text)
        await self._observe()

    async def _leave(self, disposition: str) -> None:
        self.abandoned = disposition == "abandoned"
        await self.api.close(self.session.interaction_id, self.session.token, disposition)
        await self._observe()

    async def _is_open(self) -> bool:
        view = await self.api.interaction(self.session.interaction_id)
        return bool(view["status"] == "open")

    # -- what the customer sees, and the log beside it ------------------------------------------------
    async def _observe(self) -> None:
        session = self.session
        await self._read_events()
        await self._settle()
        # The words come from the customer's own view of the conversation, as their screen shows it.
        view = await self.api.interaction(session.interaction_id, session.token)
        for line in view.get("transcript", []):
            if int(line["seq"]) <= session.seen_seq:
                continue
            session.seen_seq = int(line["seq"])
            if line["from"] != "customer" and line.get("text"):
                self.seen.append(Seen(str(line["from"]), str(line["text"]), self.leg_no))
                self.heard.append(str(line["text"]))

    async def _read_events(self) -> None:
        session = self.session
        events = await self.api.events(session.interaction_id, after=session.after_seq)
        if events:
            session.after_seq = int(events[-1]["seq"])
            self.log.extend(events)
        for e in events:
            if e["type"] == ev.FACT_REQUESTED:
                self.asked.append(str(e["data"]["name"]))
            elif e["type"] == ev.REPLY_SENT and e["data"].get("asks"):
                self.asked.append(str(e["data"]["asks"]))

    def _unsettled(self) -> list[str]:
        """What the case is still busy with: actions on their way to an outcome, and inputs (an action's
        outcome) the floor holder has not had its turn on yet."""
        events = [e for e in self.log.events if e["interaction_id"] == self.session.interaction_id]
        busy = [f"action {a.tool} ({a.status})" for a in actions_taken(events) if a.status in IN_FLIGHT]
        handled = max((int(e["data"]["input_seq"]) for e in events if e["type"] == ev.TURN_COMPLETED), default=0)
        busy += [f"{e['type']} #{e['seq']}" for e in events if e["seq"] > handled and ev.spec_of(e["type"]).is_input]
        return busy

    async def _settle(self) -> None:
        """Wait, as a customer told "I'll tell you here when it's done" would, until the case has settled:
        what happens next must not depend on how fast the worker was."""
        if not self._unsettled():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_WAIT_S
        pause = 0.01
        while busy := self._unsettled():
            if loop.time() >= deadline:
                raise JourneyStuck(f"still busy after {SETTLE_WAIT_S:g} s: {', '.join(busy)}")
            await asyncio.sleep(pause)  # polling a state with a deadline, not waiting for time to pass
            pause = min(pause * 2, 0.2)
            await self._read_events()

    # -- the person ------------------------------------------------------------------------------------
    async def _seat_agent(self, agent: Agent) -> None:
        name = f"{agent.name} ({self.scenario.name}, {self.mode})"
        agent_id, token = await self.api.create_agent(self.scenario.tenant, name, agent.skills, agent.capacity)
        self.seat = Seat(agent_id, token)

    async def _offer(self) -> dict[str, Any] | None:
        """The offer of this interaction to our person. The API routes a handoff before it answers the
        request that caused it, so the first look normally finds it; an external server may route a little
        later, so keep looking, within a bounded time."""
        assert self.seat is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.offer_wait_s
        pause = 0.005
        while True:
            for offer in await self.api.offers(self.seat.agent_id, self.seat.token):
                if offer.get("interaction_id") == self.session.interaction_id:
                    return offer
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(pause)  # polling a state with a deadline, not waiting for time to pass
            pause = min(pause * 2, 0.2)

    async def _agent_accepts(self) -> bool:
        assert self.seat is not None and self.scenario.agent is not None
        offer = await self._offer()
        if offer is None:
            return False
        self.ledger.queue(self.scenario.agent.accept_after_s)
        card = offer.get("card") or {}
        who = card.get("who") or {}
        known = known_facts(card.get("known", []), who.get("name"), who.get("identified_by"))
        # A cold transfer carries nothing: the siloed person starts from a blank screen.
        self.handoff_facts.append(sorted(known) if self.mode == "tandem" else [])
        await self.api.accept(str(offer["id"]), self.seat.token)
        await self._observe()
        return True

    async def _agent_says(self, text: str) -> None:
        assert self.seat is not None
        self.ledger.agent_turn()
        self.metrics.agent_turns += 1
        await self.api.say(self.session.interaction_id, self.seat.token, text)
        await self._observe()

    async def _customer_answers_agent(self) -> list[tuple[str, str]]:
        reply = self._reply()
        if reply is None:
            return []
        await self._customer_says(*reply)
        return reply[1]

    async def _agent_works(self) -> None:
        assert self.seat is not None and self.scenario.agent is not None
        agent, seat = self.scenario.agent, self.seat
        iid = self.session.interaction_id
        if self.mode == "tandem":
            staff = await self.api.interaction(iid, seat.token)
            facts = [{"name": name, **fact} for name, fact in staff.get("facts", {}).items()]
            who = staff.get("customer") or {}
            known = known_facts(facts, who.get("name"), who.get("identified_by"))
            asks = list(agent.needs) if agent.ignores_case_file else needs_asking(agent.needs, known)
        else:
            known = set()
            standard = SILOED_ASKS.get(self.tenant_kind, SILOED_ASKS["bank"])
            asks = [f for f in dict.fromkeys([*standard, *agent.needs]) if f not in self.siloed_asked]
        for fact in asks:
            if self.mode == "siloed":
                self.siloed_asked.add(fact)
                self._record_siloed_request(fact)
            await self._agent_says(QUESTIONS.get(fact, f"Could you tell me your {fact.replace('_', ' ')}?"))
            gave = await self._customer_answers_agent()
            if self.mode == "tandem" and fact not in known and fact != "reason":
                for name, value in gave:
                    if name == fact:
                        await self.api.add_fact(iid, seat.token, fact, value)
        for line in agent.says:
            await self._agent_says(line)
            await self._customer_answers_agent()
        for name, value in agent.records.items():
            await self.api.add_fact(iid, seat.token, name, value)
        await self._decide_actions(agent, seat)
        await self._agent_finishes(agent, seat)

    def _record_siloed_request(self, fact: str) -> None:
        """What the siloed person asks goes into the journey's log as the request it is, so counter (a)
        judges it by the same ask-once replay as everything else. The leg is already verified, so a
        verification question here is a plain request, not a challenge."""
        last = self.log.events[-1]
        self.log.extend(
            [
                {
                    "type": ev.FACT_REQUESTED,
                    "seq": self.session.after_seq,
                    "interaction_id": self.session.interaction_id,
                    "occurred_at": last["occurred_at"],
                    "actor": {"kind": "human", "id": self.seat.agent_id if self.seat else None},
                    "data": {"name": fact, "basis": "absent", "purpose": "fact"},
                }
            ]
        )

    async def _decide_actions(self, agent: Agent, seat: Seat) -> None:
        if not (agent.approve or agent.reject):
            return
        iid = self.session.interaction_id
        staff = await self.api.interaction(iid, seat.token)
        for action in staff.get("actions", []):
            if action.get("status") != "awaiting_approval":
                continue
            if action["tool"] in agent.approve:
                await self.api.decide_action(iid, seat.token, str(action["id"]), "approve", "checked with them")
            elif action["tool"] in agent.reject:
                await self.api.decide_action(iid, seat.token, str(action["id"]), "reject", "not what they want")
        await self._observe()

    async def _agent_finishes(self, agent: Agent, seat: Seat) -> None:
        iid = self.session.interaction_id
        if agent.then == "hand_back" and agent.hand_back is not None:
            if self.mode == "tandem":
                body = agent.hand_back.model_dump(exclude_none=True)
                await self.api.handback(iid, seat.token, body)
                self.floor = "bot"
                await self._observe()
                return
            # Cold transfer back: the session ends, and a fresh bot session starts over, if the customer
            # still has something to say to it.
            self.transfers_back += 1
            await self.api.close(iid, seat.token, "transferred_to_self_service")
            await self._observe()
            self.floor = "bot"
            if any(line.to != "human" for line in self.lines):
                await self._restart_session()
            return
        await self.api.wrapup(iid, seat.token, agent.disposition)
        await self.api.close(iid, seat.token, agent.disposition)
        await self._observe()

    async def _restart_session(self) -> None:
        started = await self.api.start(self.scenario.tenant, self.api.admin_token, self.leg.channel, {}, None)
        self.sessions.append(Session(str(started["id"]), str(started["customer_token"]), started.get("leg_id")))
        await self._observe()
        reply = self._reply()
        if reply is not None:
            await self._customer_says(*reply)

    # -- the end ---------------------------------------------------------------------------------------
    async def _tidy(self) -> None:
        """Leave the server as we found it: our person goes away, and no case of ours stays open."""
        try:
            if self.seat is not None:
                await self.api.presence(self.seat.agent_id, self.seat.token, "away")
            for session in self.sessions:
                view = await self.api.interaction(session.interaction_id)
                if view["status"] == "open":
                    await self.api.close(session.interaction_id, session.token, "customer_left")
        except (ApiCallFailed, httpx.HTTPError):
            pass  # tidying is best effort; the journey's own outcome is already decided

    async def _evidence(self) -> tuple[list[Fact], list[Effect] | str | None]:
        """The case file each interaction ended with, and the example systems' ledgers."""
        facts: list[Fact] = []
        effects: list[Effect] | str | None = None
        try:
            for interaction_id in dict.fromkeys(s.interaction_id for s in self.sessions):
                view = await self.api.interaction(interaction_id)
                facts += casefile.shown(view)
                self.pinned.append(view.get("release"))
            if self.ledgers is not None:
                effects = await self.ledgers(self.scenario.tenant)
        except (ApiCallFailed, httpx.HTTPError) as exc:
            return facts, f"{type(exc).__name__}: {exc}"
        except LedgerUnreadable as exc:
            return facts, f"LedgerUnreadable: {exc}"
        return facts, effects

    async def _result(
        self, error: str | None, facts: list[Fact] | None = None, effects: list[Effect] | None = None
    ) -> JourneyResult:
        m = self.metrics
        events = self.log.events
        closes = [e for e in events if e["type"] == ev.INTERACTION_CLOSED]
        final = closes[-1] if closes and self.sessions else None
        closed_by_us = final is not None and final["interaction_id"] == self.session.interaction_id
        disposition = str(final["data"].get("disposition")) if final is not None else ""
        tandem_closed = closed_by_us and final is not None and final["actor"]["kind"] != "customer"
        satisfied = not self.persona.satisfied_by or any(
            phrase.lower() in line.text.lower()
            for line in self.seen
            if line.speaker != "customer"
            for phrase in self.persona.satisfied_by
        )
        m.abandoned = self.abandoned
        m.resolved = (
            error is None and not self.abandoned and tandem_closed and disposition not in UNRESOLVED and satisfied
        )
        m.handoff_path = floor_path(events)
        m.contained = m.resolved and not any(kind in ("human", "supervisor") for kind in m.handoff_path)
        found = count_from_events(self.log) + count_from_text(self.seen)
        m.repeats_events = sum(1 for r in found if r.counter == "events")
        m.repeats_text = sum(1 for r in found if r.counter == "text")
        m.handoffs = sum(1 for e in events if e["type"] == ev.HANDOFF_REQUESTED)
        m.hand_backs = sum(1 for e in events if e["type"] == ev.HANDED_BACK) + self.transfers_back
        m.legs = self.leg_no
        m.policy_blocks = policy_blocks(events)
        m.executed_actions, m.unauthorized_actions = action_outcomes(events)
        m.ai_s, m.human_s, m.queue_s = self.ledger.ai_s, self.ledger.human_s, self.ledger.queue_s
        m.handle_time_s = self.ledger.handle_time_s
        m.cost = self.ledger.cost
        facts = facts or []
        actions = actions_taken(events)
        count_effects(actions, effects)
        signals = casefile.signal_outcomes(casefile.learned(events))
        m.signal_facts = len({f.label for f in casefile.from_signals(facts)})
        m.signals_timed_out = sum(1 for status in signals.values() if status == "timeout")
        m.effects = len(effects) if effects is not None else 0
        return JourneyResult(
            scenario=self.scenario.name,
            mode=self.mode,
            metrics=m,
            transcript=self.seen,
            repeats=found,
            handoff_facts=self.handoff_facts,
            interactions=list(dict.fromkeys(s.interaction_id for s in self.sessions)),
            error=error,
            events=events,
            facts=facts,
            actions=actions,
            effects=effects,
            signals=signals,
            pinned=self.pinned,
            shipped=self.shipped,
            published=self.published,
        )
