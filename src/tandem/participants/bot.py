"""The self-service participant: greets, identifies, verifies to the level a request needs, asks only what
the case file lacks, and serves each request by running its flow (``examples/<tenant>/flows/*.yaml``, see
docs/flows.md); it hands over to a person when a flow says so, when the customer is upset or asks for one.

Everything it knows comes from the case file (signals the flows fetch, what the customer said) and everything
it learns goes back there with its source, so whoever holds the floor next (a person, or this bot on another
channel after a hang-up) starts from there instead of asking again. The customer directory (``world.yaml``) is
used for one thing only: finding who is calling and checking their answers to the identity challenge.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.casefile import Assertion, CaseFile
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.flows.engine import FactEntry, FactView, FlowRun
from tandem.knowledge.retrieval import TenantKnowledge
from tandem.participants.phrasing import Phrasing
from tandem.participants.protocol import ActionGate, Turn, Understanding
from tandem.release.flows import Flow, FlowBook, load_tenant_flows
from tandem.release.signals import STATUS_FACT, Trigger
from tandem.understanding.countries import country_list, find_countries
from tandem.understanding.rules import RuleUnderstander
from tandem.understanding.sentiment import WANTS_PERSON
from tandem.world.records import CustomerRecord
from tandem.world.world import Tenant, World

GOAL_LABELS = {
    "balance": "your balance",
    "card_declined": "your declined card",
    "fraud_hold": "the hold on your card",
    "dispute_charge": "disputing a charge",
    "lost_card": "your lost card",
    "reset_pin": "resetting your PIN",
    "travel_notice": "a travel notice",
    "explain_bill": "your bill",
    "eligibility": "your coverage",
    "claim_status": "your claim",
    "payment_plan": "a payment plan",
    "reschedule": "rescheduling your appointment",
}
# An earlier proposal still on its way: proposing the same again would only duplicate it.
PENDING_ACTION_STATUSES = frozenset({"proposed", "approved", "awaiting_approval", "started", "unknown"})
CHALLENGES = {"bank": ("date_of_birth", "zip"), "health_plan": ("date_of_birth",)}
MAX_CHALLENGE_ROUNDS = 3
# Facts a travel-notice flow asks for; the bot reads them from the customer's words (countries, dates).
TRAVEL_FACTS = frozenset({"travel_countries", "travel_start", "travel_end"})
# Hand-back steps that mean "the person finished the work": the bot asks if there is anything else.
WRAP_UP_STEPS = frozenset({"anything_else", "confirm_resolution", "wrap_up"})
# Sentiment labels that bring a person at once, and how the handoff reason words them. Anger does too, the
# second time (a first angry line gets the bot's best effort).
HAND_OVER_ON = {
    "distressed": "customer is distressed",
    "vulnerable": "customer is vulnerable",
    "wants_person": "customer wants a person",
    "repeated_failure": "customer is being failed again",
}


@functools.cache
def shipped_flows() -> Mapping[str, FlowBook]:
    """The example tenants' flows, loaded (and validated) once per process."""
    return load_tenant_flows()


@dataclass
class _Work:
    """One decision in progress: the case as it was, plus what this turn has already learned."""

    case: Interaction
    turn: Turn
    tenant: Tenant
    out: list[cmd.Command] = field(default_factory=list)
    learned: dict[str, Any] = field(default_factory=dict)
    record: CustomerRecord | None = None
    assurance: Assurance = Assurance.NONE
    _facts: tuple[int, FactView] | None = None  # the view for the commands so far, by how many there were

    @property
    def epoch(self) -> int:
        return self.case.floor.epoch

    def say(self, text: str) -> None:
        self.out.append(cmd.Say(text, epoch=self.epoch))

    def ask(self, name: str, text: str, *, purpose: str = "fact", needed: str | None = None) -> None:
        self.out.append(cmd.Ask(name, text, purpose=purpose, needed_level=needed, epoch=self.epoch))

    def learn(self, name: str, value: Any, source: str, *, subject: str | None = None, **kw: Any) -> None:
        self.learned[name if subject is None else f"{name}[{subject}]"] = value
        self.out.append(cmd.Learn(name, value, source, subject=subject, **kw))

    def known(self, name: str, subject: str | None = None) -> Any:
        key = name if subject is None else f"{name}[{subject}]"
        if key in self.learned:
            return self.learned[key]
        fact = self.case.fact(name, self.turn.now, subject)
        return fact.value if fact is not None and fact.status == "known" else None

    def facts(self) -> FactView:
        """Every known fact of the case file as it stands after this turn's commands so far, by name (facts
        about several subjects in the order they were learned: a signal's newest row first). Resolved by the
        case file's own precedence: a hold an action released stays released whatever a lagging signal says."""
        if self._facts is not None and self._facts[0] == len(self.out):
            return self._facts[1]
        casefile = self.turn.preview(self.out).case if self.turn.preview is not None else self._overlaid()
        view: dict[str, list[FactEntry]] = {}
        for fact in casefile.facts(self.turn.now):
            if fact.status == "known" and fact.name != STATUS_FACT:
                view.setdefault(fact.name, []).append(FactEntry(fact.subject, fact.value, fact.source))
        self._facts = (len(self.out), view)
        return view

    def _overlaid(self) -> CaseFile:
        """Without the conductor's preview (a participant driven on its own): this turn's facts laid over the
        case's, as assertions of their own, so the case file's precedence still decides."""
        casefile = CaseFile.from_snapshot(self.case.case.to_snapshot())
        seq = self.case.version
        for command in self.out:
            if isinstance(command, cmd.Learn):
                seq += 1
                at = command.observed_at or self.turn.now
                casefile.add(Assertion(command.name, command.value, command.source, command.confidence, at, seq,
                                        subject=command.subject, verified=command.verified))  # fmt: skip
        return casefile

    def handoff(self, queue: str, reason: str, next_step: str) -> None:
        if self.case.handoff is not None and self.case.handoff.is_open:
            return
        self.out.append(cmd.RequestHandoff({"kind": "queue", "id": queue}, reason, next_step))


class SelfServiceBot:
    kind = "bot"
    model = "tandem-flows"
    prompt_version = "self-service-2"

    def __init__(
        self,
        world: World,
        understander: RuleUnderstander | None = None,
        activator: Activator | None = None,
        gate: ActionGate | None = None,
        flows: Mapping[str, FlowBook] | None = None,
        knowledge: TenantKnowledge | None = None,
        phrasing: Phrasing | None = None,
    ) -> None:
        self.world = world
        self.understander = understander or RuleUnderstander({t.id: t.kind for t in world})
        # The enterprise data a flow needs arrives as live signals with provenance. Without an activator the
        # flows cannot see any records: they say so politely and hand over to a person who can.
        self.activator = activator
        # With a policy gate the bot acts (releases a hold, opens a dispute) within what policy allows it;
        # without one it hands such work to a person. The conductor records the gate's decision either way.
        self.gate = gate
        # Each tenant's flows, by tenant id (the shipped examples' by default).
        self.flows = flows if flows is not None else shipped_flows()
        self.knowledge = knowledge or TenantKnowledge()
        # With phrasing, a language model may re-word the lines decided below for tone, never what they say.
        self.phrasing = phrasing

    def book(self, tenant_id: str) -> FlowBook | None:
        return self.flows.get(tenant_id)

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if case.tenant_id not in self.world.tenants:
            return [cmd.Say("Sorry, this service isn't set up yet.", epoch=case.floor.epoch)]
        work = _Work(case, turn, self.world.tenant(case.tenant_id))
        work.record = work.tenant.directory.get(case.customer_id)
        work.assurance = case.assurance(turn.input.leg_id)
        kind = turn.input.type
        if kind == ev.LEG_OPENED:
            self._greet(work)
        elif kind == ev.HANDED_BACK:
            await self._resume(work)
        elif kind in (ev.ACTION_SUCCEEDED, ev.ACTION_FAILED, ev.ACTION_OUTCOME_UNKNOWN):
            self._report_action(work)
        elif kind == ev.CUSTOMER_SAID:
            understanding = turn.understanding or self.understander.understand(
                str(turn.input.data.get("text") or ""), case, turn.now
            )
            await self._respond(work, understanding)
        if self.phrasing is not None:
            return await self.phrasing.reword(work.out, work.tenant.name, _sentiment_of(case, turn))
        return work.out

    # -- greeting and resuming -------------------------------------------------------------------------
    def _greet(self, w: _Work) -> None:
        name = f" {w.record.first_name}" if w.record else ""
        reason = w.known("reason")
        earlier_lines = [line for line in w.case.transcript if line.speaker == "customer"]
        if earlier_lines and reason:
            # A new leg of an open case: the customer never starts over.
            w.say(
                f"Welcome back{name}. Last time we were looking at {GOAL_LABELS.get(reason, reason)}; "
                "I have everything you told us, so we can pick up where we left off."
            )
            return
        w.say(f"Hi{name}, this is {w.tenant.assistant}. How can I help you today?")

    async def _resume(self, w: _Work) -> None:
        """A person handed the floor back naming a flow, a step and a goal: resume that flow at that step (its
        verification still holds the customer to the level it needs), or ask if there is anything else."""
        data = w.turn.input.data
        name = f", {w.record.first_name}" if w.record else ""
        goal = data.get("goal")
        step = data.get("step") or "anything_else"
        opening = f"Thanks for waiting{name} — I'm back with you, and I have everything from your conversation."
        if goal:
            opening += f" Next: {goal}."
        book = self.book(w.case.tenant_id)
        named = str(data.get("flow") or "")
        flow = None if book is None else book.get(named) or book.for_intent(named)
        if step in WRAP_UP_STEPS or flow is None:
            w.say(f"{opening} Is there anything else I can help you with today?")
            return
        w.say(opening)
        intent = named if named in flow.intents else flow.intents[0]
        await self._run(w, flow, intent, "", start=step if flow.index(step) is not None else None)

    # -- a customer line -------------------------------------------------------------------------------
    async def _respond(self, w: _Work, u: Understanding) -> None:
        self._take_entities(w, u)
        top = u.intents[0] if u.intents else None
        if top and top[0] == "talk_to_person" and top[1] >= 0.5:
            self._hand_over(w, "the customer asked for a person", "Greet the customer and take over.")
            return
        if WANTS_PERSON in u.cues and u.sentiment is not None and u.sentiment[1] != WANTS_PERSON:
            # Asked for a person in an upset line, whose label is the upset: the request is heard all the same.
            self._hand_over(w, f"{HAND_OVER_ON[WANTS_PERSON]} ({u.sentiment[1]}: {u.sentiment[2]})",
                            "Acknowledge how they feel, then resolve.")  # fmt: skip
            return
        if top and top[0] == "goodbye" and not self._handoff_open(w):
            w.say("Thanks for contacting us. Have a good day!")
            w.out.append(cmd.Close("resolved_by_self_service", epoch=w.epoch))
            return
        if u.sentiment is not None and self._upset_enough(w, u.sentiment[1]):
            _score, label, reason = u.sentiment
            why = HAND_OVER_ON.get(label, f"customer is {label}")
            self._hand_over(w, f"{why} ({reason})", "Acknowledge how they feel, then resolve.")
            return
        await self._choose(w, u)

    async def _choose(self, w: _Work, u: Understanding) -> None:
        """What to do about a customer line once the rails above let it through: here, the flow serving its
        intent. A planner (``tandem.participants.flow_planner``) decides this step with a language model."""
        await self._pursue(w, self._goal(w, u), u)

    async def _pursue(self, w: _Work, goal: str | None, u: Understanding) -> None:
        """Serve ``goal`` (an intent a flow serves), or say the request was not understood."""
        if self._handoff_open(w) and (goal is None or goal == w.known("reason")):
            # Queued: keep the customer company, note anything new for the person, never re-run the flow.
            self._still_queued(w)
            return
        if goal is None:
            self._not_understood(w)
            return
        if w.known("reason") != goal:
            top = u.intents[0] if u.intents else None
            w.learn("reason", goal, "customer", confidence=top[1] if top and top[0] == goal else 0.7)
        await self._serve(w, goal, u)

    def _upset_enough(self, w: _Work, label: str) -> bool:
        if label == "angry":
            return self._was_upset_before(w)
        if label == "repeated_failure" and self._answering_challenge(w):
            # Correcting a date of birth looks like saying the same thing again; the challenge's own rounds
            # decide when a person should take over.
            return False
        return label in HAND_OVER_ON

    def _answering_challenge(self, w: _Work) -> bool:
        last_customer = self._last_customer_seq(w)
        return any(r.get("purpose") == "authentication" and r["seq"] > last_customer for r in w.case.requests)

    async def _serve(self, w: _Work, goal: str, u: Understanding) -> None:
        book = self.book(w.case.tenant_id)
        flow = book.for_intent(goal) if book is not None else None
        if flow is None:
            self._hand_over(w, f"{GOAL_LABELS.get(goal, goal)} needs a person", "Help with the request.")
            return
        # The customer answering a question a step of this flow asked: carry on from that step.
        pending = self._pending_questions(w)
        start = next((i for i, s in enumerate(flow.steps) if s.kind == "ask" and s.arg in pending), None)
        await self._run(w, flow, goal, u.text, start=start)

    async def _run(self, w: _Work, flow: Flow, goal: str, text: str, *, start: str | int | None = None) -> None:
        await FlowRun(flow, _FlowHost(self, w, goal, text)).run(start)

    async def _fetch(self, w: _Work, intent: str) -> list[str] | None:
        """Pull the enterprise data this intent needs into the case file, within the signals' budgets. The
        signals that did not answer (timeout, failure) are returned; None when there is no data to ask."""
        if self.activator is None or w.record is None:
            return None
        learns = await self.activator.for_trigger(
            w.case.tenant_id,
            Trigger.intent(intent, w.assurance),
            {"customer": w.record.id, "member": w.record.id},
            self.kind,
            interaction_id=w.case.interaction_id,
        )
        missing: list[str] = []
        for learn in learns:
            w.out.append(replace(learn, epoch=w.epoch))
            if learn.name == STATUS_FACT:
                if isinstance(learn.value, dict) and learn.value.get("status") not in ("ok", "skipped"):
                    missing.append(str(learn.value.get("signal")))
            else:
                w.learned[learn.name if learn.subject is None else f"{learn.name}[{learn.subject}]"] = learn.value
        return missing

    def _goal(self, w: _Work, u: Understanding) -> str | None:
        book = self.book(w.case.tenant_id)
        goals = book.intents if book is not None else frozenset()
        for name, confidence in u.intents:
            if name in goals and confidence >= 0.5:
                return name
        if u.intents and u.intents[0][0] == "affirm" and book is not None:
            # "Yes" to what a flow offered (``say`` with ``offer``): start that flow.
            offered = book.get(str(w.known("offered_next") or ""))
            if offered is not None:
                return offered.intents[0]
        reason = w.known("reason")
        return str(reason) if reason in goals else None

    def _not_understood(self, w: _Work) -> None:
        # Twice not understood in a row: a person, not a third guess.
        recent_bot = [line.text for line in w.case.transcript[-4:] if line.speaker == "bot"]
        if any("I didn't catch that" in t for t in recent_bot):
            self._hand_over(w, "the assistant could not understand the request", "Ask how you can help.")
            return
        topics = (
            "a declined card, your balance, a lost card, disputing a charge or a travel notice"
            if w.tenant.kind == "bank"
            else "your bill, claims, coverage, a payment plan or rescheduling an appointment"
        )
        w.say(f"Sorry, I didn't catch that. I can help with {topics}, or connect you with a person.")

    # -- entities into the case file -------------------------------------------------------------------
    def _take_entities(self, w: _Work, u: Understanding) -> None:
        e = u.entities
        pending = self._pending_questions(w)
        for name in ("phone", "member_id", "email", "card_last4", "claim_id", "zip"):
            if name in e and (name != "zip" or "zip" in pending or w.tenant.kind == "bank"):
                w.learn(name, e[name], "customer", confidence=0.9)
        if "name" in e:
            w.learn("customer_name", e["name"], "customer", confidence=0.9)
        trip_dates = self._take_travel(w, u, pending)
        if "date" in e and not trip_dates:
            if "date_of_birth" in pending or date.fromisoformat(e["date"]).year < w.turn.now.year - 10:
                w.learn("date_of_birth", e["date"], "customer", confidence=0.9)
            else:
                w.learn("mentioned_date", e["date"], "customer", confidence=0.8)
        if "amount" in e:
            w.learn("mentioned_amount", e["amount"], "customer", confidence=0.9)
        if "disputed_charge" in pending and u.text:
            w.learn("disputed_charge_description", u.text.strip()[:200], "customer", confidence=0.8)

    def _take_travel(self, w: _Work, u: Understanding, pending: set[str]) -> bool:
        """Where and when the customer travels, while a trip is what they came about: the countries they
        name, and a start and an end date. Returns whether the line's dates were taken as the trip's.

        A date of birth is never a trip: while the identity challenge is pending, or for a date more than ten
        years back, the dates are left to the challenge. Unprompted, only a range (two dates, the first not
        after the second) is a trip: "next week" alone is not a date to put on a fraud notice; asked, one date
        is the start (or the end, when the start is known and the end is what was asked)."""
        asked = pending & TRAVEL_FACTS
        top = u.intents[0] if u.intents else None
        travelling = top is not None and top[0] == "travel_notice" and top[1] >= 0.5
        if not (asked or travelling or w.known("reason") == "travel_notice"):
            return False
        e = u.entities
        countries = find_countries(u.text)
        if countries and ("travel_countries" in asked or not w.known("travel_countries")):
            w.learn("travel_countries", countries, "customer", confidence=0.9)
        if "date_of_birth" in pending or "date" not in e:
            return False
        dates = list(e.get("dates") or [e["date"]])
        if any(date.fromisoformat(d).year < w.turn.now.year - 10 for d in dates):
            return False
        if len(dates) >= 2 and dates[0] <= dates[1]:
            w.learn("travel_start", dates[0], "customer", confidence=0.9)
            w.learn("travel_end", dates[1], "customer", confidence=0.9)
            return True
        start = w.known("travel_start")
        if len(dates) == 1 and "travel_end" in asked and start is not None and str(start) <= dates[0]:
            w.learn("travel_end", dates[0], "customer", confidence=0.9)
            return True
        if len(dates) == 1 and "travel_start" in asked:
            w.learn("travel_start", dates[0], "customer", confidence=0.9)
            return True
        return False

    def _pending_questions(self, w: _Work) -> set[str]:
        """What the floor asked since the customer last spoke: their words answer that."""
        last_customer = self._last_customer_seq(w)
        return {r["name"] for r in w.case.requests if r["seq"] > last_customer}

    def _last_customer_seq(self, w: _Work) -> int:
        return max(
            (ln.seq for ln in w.case.transcript if ln.speaker == "customer" and ln.seq < w.turn.input.seq), default=0
        )

    # -- identity and verification ---------------------------------------------------------------------
    def _identify(self, w: _Work) -> bool:
        directory = w.tenant.directory
        for kind in ("member_id", "phone", "email", "account_id", "customer_id"):
            value = w.known(kind)
            if value and (record := directory.find(kind, str(value))) is not None:
                return self._identified(w, record, f"stated {kind.replace('_', ' ')}")
        name = w.known("customer_name")
        if name and (record := directory.find("name", str(name))) is not None:
            return self._identified(w, record, "stated name")
        tried = {r["name"] for r in w.case.requests}
        first_key = "member_id" if w.tenant.kind == "health_plan" else "phone"
        if first_key not in tried and not w.known(first_key):
            w.ask(
                first_key,
                "I can help with that. First, what's your member ID? It's on your insurance card and starts with MBR."
                if first_key == "member_id"
                else "I can help with that. First, what's the phone number on your account?",
            )
            return False
        if "customer_name" not in tried:
            w.ask(
                "customer_name",
                "I couldn't find a match for that. What's your full name as it appears on your account?",
            )
            return False
        self._hand_over(w, "the assistant could not find the customer's records", "Identify the customer.")
        return False

    def _identified(self, w: _Work, record: CustomerRecord, method: str) -> bool:
        w.record = record
        w.out.append(cmd.Identify(record.id, method, record.public(), epoch=w.epoch))
        w.learn("customer_name", record.name, "system:directory")
        return True

    def _verify(self, w: _Work) -> bool:
        assert w.record is not None
        fields = CHALLENGES.get(w.tenant.kind, ("date_of_birth",))
        leg_started = self._leg_started_seq(w)
        given: dict[str, str] = {}
        for name in fields:
            value = w.learned.get(name)
            if value is None:
                fact = w.case.fact(name, w.turn.now)
                # Only answers given on this leg count: assurance belongs to the leg, not the case.
                if fact is not None and fact.source == "customer" and self._fact_seq(w, name) > leg_started:
                    value = fact.value
            if value is not None:
                given[name] = str(value)
        expected = {"date_of_birth": w.record.date_of_birth, "zip": w.record.zip}
        wrong = [name for name in given if expected.get(name) and given[name] != expected[name]]
        if not wrong and len(given) == len(fields):
            method = " and ".join(n.replace("_", " ") for n in fields)
            w.out.append(cmd.RaiseAssurance("knowledge_verified", f"knowledge: {method}", epoch=w.epoch))
            for name in fields:
                w.learn(name, given[name], "customer", verified=True)
            w.assurance = Assurance.KNOWLEDGE_VERIFIED
            return True
        rounds = sum(1 for r in w.case.requests if r.get("purpose") == "authentication" and r["seq"] > leg_started)
        if wrong:
            if rounds >= MAX_CHALLENGE_ROUNDS:
                self._hand_over(w, "the customer could not be verified", "Verify the customer's identity.")
                return False
            w.say("That doesn't match what we have on file.")
        missing = [name for name in fields if name not in given or name in wrong]
        label = " and ".join(
            {"date_of_birth": "your date of birth", "zip": "the ZIP code on your account"}[n] for n in missing
        )
        first = f"Thanks, {w.record.first_name}. " if not wrong and rounds == 0 else ""
        for i, name in enumerate(missing):
            text = f"{first}To protect your account, please confirm {label}." if i == 0 else ""
            w.ask(name, text, purpose="authentication", needed="knowledge_verified")
        return False

    def _leg_started_seq(self, w: _Work) -> int:
        leg = w.case.legs.get(w.turn.input.leg_id or w.case.current_leg_id or "")
        return leg.opened_seq if leg is not None else 0

    def _fact_seq(self, w: _Work, name: str) -> int:
        items = w.case.case.assertions.get((name, None), [])
        return max((a.seq for a in items if not a.superseded), default=0)

    # -- acting through policy ------------------------------------------------------------------------
    def _act(self, w: _Work, tool: str, args: dict[str, Any], reason: str) -> str | None:
        """Propose an action and say what policy will let happen: ``allow``, ``require_approval`` or
        ``deny`` (None when the bot has no gate and cannot act at all). The conductor asks the same gate
        with the same case when it records the proposal, so what the bot says is what is recorded.

        The same request made earlier in the case is not proposed again (a customer back on another leg
        must not get a second payment plan): ``done`` when it went through, ``pending`` while it is on its way."""
        for action in w.case.actions.values():
            if action["tool"] == tool and action["args"] == args:
                if action["status"] == "succeeded":
                    return "done"
                if action["status"] in PENDING_ACTION_STATUSES:
                    return "pending"
        if self.gate is None:
            return None
        case = w.turn.preview(w.out) if w.turn.preview is not None else w.case
        decision = self.gate.decide(case, tool, args, self.kind, w.turn.now)
        if decision.outcome != "deny":
            w.out.append(cmd.ProposeAction(tool, args, reason, epoch=w.epoch))
        return decision.outcome

    def _report_action(self, w: _Work) -> None:
        data = w.turn.input.data
        action = w.case.actions.get(str(data.get("action_id")), {})
        tool = action.get("tool", "")
        if w.turn.input.type != ev.ACTION_SUCCEEDED:
            self._hand_over(w, f"{tool} did not go through", "Check the action's outcome and finish it.")
            return
        done = {
            "release_fraud_hold": "Done: the hold on your card is released, so you can try the payment again.",
            "open_dispute": "Your dispute is open; you'll get an update by email within 10 business days.",
            "set_up_payment_plan": "Your payment plan is set up; the first payment is due next month.",
            "reschedule_appointment": "Your appointment is rescheduled.",
            "block_card": "Your card is blocked, so nobody can pay with it.",
            "add_travel_notice": "Your travel notice is on file.",
        }.get(tool, "That's done.")
        replacement = (action.get("result") or {}).get("replacement")
        if tool == "reissue_card" and isinstance(replacement, dict):
            # The system's own words for the new card: its last four and when it arrives.
            delivery = (replacement.get("delivery") or {}).get("text") or "soon"
            done = f"Your replacement card ending {replacement.get('last4')} is ordered; it arrives {delivery}."
        notice = (action.get("result") or {}).get("travel_notice")
        if tool == "add_travel_notice" and isinstance(notice, dict):
            # What the fraud system recorded, not what was asked: the customer hears what is on file.
            done = (
                f"Your travel notice for {country_list(list(notice.get('countries') or []))} from "
                f"{_day(notice.get('start'))} to {_day(notice.get('end'))} is on file, so card payments there "
                "won't be declined for being abroad."
            )
        w.say(f"{done} Is there anything else I can help with?")

    # -- handing over ------------------------------------------------------------------------------------
    def _handoff_open(self, w: _Work) -> bool:
        return w.case.handoff is not None and w.case.handoff.is_open

    def _was_upset_before(self, w: _Work) -> bool:
        return bool(w.case.sentiment and w.case.sentiment.get("label") in ("angry", "distressed"))

    def _still_queued(self, w: _Work) -> None:
        # One wording whichever rail noticed the open handoff (a plain line, or another ask for a person), so
        # the customer hears the same thing however the line was understood.
        w.say(
            "You're next in line for a specialist, and they'll see everything we've covered. "
            "Is there anything you'd like me to note for them meanwhile?"
        )

    def _hand_over(self, w: _Work, reason: str, next_step: str, queue: str | None = None) -> None:
        if self._handoff_open(w):
            self._still_queued(w)
            return
        queue = queue or (w.tenant.skills[0] if w.tenant.skills else "general")
        w.handoff(queue, reason, next_step)
        w.say(
            "I'm connecting you with a person now. They'll see everything you've told me, so you won't need "
            "to repeat yourself. I'll stay with you until they join."
        )


def _sentiment_of(case: Interaction, turn: Turn) -> str | None:
    """How the customer feels now: this line's assessment, else the case's last one."""
    if turn.understanding is not None and turn.understanding.sentiment is not None:
        return turn.understanding.sentiment[1]
    return (case.sentiment or {}).get("label")


def _day(value: Any) -> str:
    """An ISO date as said to a customer ("December 10, 2026"); anything else as it is."""
    try:
        day = date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return f"{day:%B} {day.day}, {day.year}"


class _FlowHost:
    """What a running flow may do, as this bot on this turn."""

    def __init__(self, bot: SelfServiceBot, w: _Work, goal: str, text: str) -> None:
        self.bot, self.w, self.goal, self.text = bot, w, goal, text

    def facts(self) -> FactView:
        return self.w.facts()

    def customer(self) -> dict[str, Any]:
        record = self.w.record
        if record is None:
            return {}
        return {"id": record.id, "first_name": record.first_name, "name": record.name}

    def pending(self, name: str) -> bool:
        return name in self.bot._pending_questions(self.w)

    def asked(self, name: str) -> bool:
        return any(r["name"] == name for r in self.w.case.requests)

    async def verify(self, level: str) -> bool:
        w = self.w
        if w.record is None and not self.bot._identify(w):
            return False
        if level == "identified":
            return True
        return w.assurance >= Assurance.KNOWLEDGE_VERIFIED or self.bot._verify(w)

    async def fetch(self, intent: str) -> list[str] | None:
        return await self.bot._fetch(self.w, intent)

    def say(self, text: str) -> None:
        self.w.say(text)

    def ask(self, name: str, text: str) -> None:
        self.w.ask(name, text)

    def learn(self, name: str, value: Any, source: str, subject: str | None = None) -> None:
        self.w.learn(name, value, source, subject=subject)

    def propose(self, tool: str, args: dict[str, Any], why: str) -> str | None:
        return self.bot._act(self.w, tool, args, why)

    def handoff(self, queue: str | None, reason: str, next_step: str) -> None:
        self.bot._hand_over(self.w, reason, next_step, queue=queue)

    def answer(self, query: str) -> str | None:
        hit = self.bot.knowledge.answer(self.w.case.tenant_id, query)
        return hit.passage.text.strip() if hit is not None else None
