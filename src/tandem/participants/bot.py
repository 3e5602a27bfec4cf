"""The self-service participant: greets, identifies, verifies to the level a request needs, asks only what
the case file lacks, answers from the records, and hands over to a person when it should.

Everything it knows it writes into the case file with its source, so whoever holds the floor next (a
person, or this bot on another channel after a hang-up) starts from there instead of asking again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.interaction import Interaction
from tandem.case.legs import Assurance
from tandem.money import format_money
from tandem.participants.protocol import ActionGate, Turn, Understanding
from tandem.release.signals import Trigger
from tandem.understanding.rules import RuleUnderstander
from tandem.world.records import CustomerRecord
from tandem.world.world import Tenant, World

# What each goal needs before the bot may serve it. General how-to answers need nobody's identity.
NEEDS_VERIFICATION = frozenset(
    {"balance", "card_declined", "fraud_hold", "dispute_charge", "lost_card", "travel_notice", "explain_bill",
     "eligibility", "claim_status", "payment_plan", "reschedule"}
)  # fmt: skip
GOALS = NEEDS_VERIFICATION | {"reset_pin"}
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
CHALLENGES = {"bank": ("date_of_birth", "zip"), "health_plan": ("date_of_birth",)}
MAX_CHALLENGE_ROUNDS = 3


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
    # Facts a live signal brought this turn: the records' copy of the same fact is then not written again.
    signalled: set[str] = field(default_factory=set)

    @property
    def epoch(self) -> int:
        return self.case.floor.epoch

    def say(self, text: str) -> None:
        self.out.append(cmd.Say(text, epoch=self.epoch))

    def ask(self, name: str, text: str, *, purpose: str = "fact", needed: str | None = None) -> None:
        self.out.append(cmd.Ask(name, text, purpose=purpose, needed_level=needed, epoch=self.epoch))

    def learn(self, name: str, value: Any, source: str, *, subject: str | None = None, **kw: Any) -> None:
        if source.startswith("system:") and name in self.signalled:
            return
        self.learned[name if subject is None else f"{name}[{subject}]"] = value
        self.out.append(cmd.Learn(name, value, source, subject=subject, **kw))

    def known(self, name: str, subject: str | None = None) -> Any:
        key = name if subject is None else f"{name}[{subject}]"
        if key in self.learned:
            return self.learned[key]
        fact = self.case.fact(name, self.turn.now, subject)
        return fact.value if fact is not None and fact.status == "known" else None

    def handoff(self, queue: str, reason: str, next_step: str) -> None:
        if self.case.handoff is not None and self.case.handoff.is_open:
            return
        self.out.append(cmd.RequestHandoff({"kind": "queue", "id": queue}, reason, next_step))


class SelfServiceBot:
    kind = "bot"
    model = "tandem-flows"
    prompt_version = "self-service-1"

    def __init__(
        self,
        world: World,
        understander: RuleUnderstander | None = None,
        activator: Activator | None = None,
        gate: ActionGate | None = None,
    ) -> None:
        self.world = world
        self.understander = understander or RuleUnderstander({t.id: t.kind for t in world})
        # With an activator, the enterprise data a goal needs arrives as live signals with provenance;
        # without one (a bare test), the bot reads the example records.
        self.activator = activator
        # With a policy gate the bot acts (releases a hold, opens a dispute) within what policy allows it;
        # without one it hands such work to a person. The conductor records the gate's decision either way.
        self.gate = gate

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
        data = w.turn.input.data
        name = f", {w.record.first_name}" if w.record else ""
        goal = data.get("goal")
        step = data.get("step") or "anything_else"
        opening = f"Thanks for waiting{name} — I'm back with you, and I have everything from your conversation."
        if goal:
            opening += f" Next: {goal}."
        if step in ("anything_else", "confirm_resolution", "wrap_up"):
            w.say(f"{opening} Is there anything else I can help you with today?")
        else:
            goal_intent = data.get("flow")
            w.say(opening)
            if goal_intent in GOALS:
                await self._serve(w, str(goal_intent), Understanding())

    # -- a customer line -------------------------------------------------------------------------------
    async def _respond(self, w: _Work, u: Understanding) -> None:
        self._take_entities(w, u)
        top = u.intents[0] if u.intents else None
        if top and top[0] == "talk_to_person" and top[1] >= 0.5:
            self._hand_over(w, "the customer asked for a person", "Greet the customer and take over.")
            return
        if top and top[0] == "goodbye" and not self._handoff_open(w):
            w.say("Thanks for contacting us. Have a good day!")
            w.out.append(cmd.Close("resolved_by_self_service", epoch=w.epoch))
            return
        if u.sentiment is not None and u.sentiment[1] in ("angry", "distressed", "vulnerable"):
            _score, label, reason = u.sentiment
            if label != "angry" or self._was_upset_before(w):
                self._hand_over(w, f"customer is {label} ({reason})", "Acknowledge how they feel, then resolve.")
                return
        goal = self._goal(w, u)
        if self._handoff_open(w) and (goal is None or goal == w.known("reason")):
            # Queued: keep the customer company, note anything new for the person, never re-run the flow.
            w.say(
                "You're next in line for a specialist, and they'll see everything we've covered. "
                "Is there anything you'd like me to note for them meanwhile?"
            )
            return
        if goal is None:
            self._not_understood(w)
            return
        if w.known("reason") != goal:
            w.learn("reason", goal, "customer", confidence=top[1] if top and top[0] == goal else 0.7)
        await self._serve(w, goal, u)

    async def _serve(self, w: _Work, goal: str, u: Understanding) -> None:
        if goal in NEEDS_VERIFICATION:
            if w.record is None and not self._identify(w):
                return
            if w.assurance < Assurance.KNOWLEDGE_VERIFIED and not self._verify(w):
                return
        if self.activator is not None and w.record is not None:
            await self._activate(w, goal)
        serve = getattr(self, f"_serve_{goal}", None)
        if serve is None:
            self._hand_over(w, f"{GOAL_LABELS.get(goal, goal)} needs a person", "Help with the request.")
            return
        serve(w, u)

    async def _activate(self, w: _Work, goal: str) -> None:
        """Pull the enterprise data this goal needs into the case file, within the signals' budgets. A slow
        or failed source comes back as a status fact and the conversation goes on."""
        assert self.activator is not None and w.record is not None
        learns = await self.activator.for_trigger(
            w.case.tenant_id,
            Trigger.intent(goal, w.assurance),
            {"customer": w.record.id, "member": w.record.id},
            self.kind,
            interaction_id=w.case.interaction_id,
        )
        for learn in learns:
            w.out.append(replace(learn, epoch=w.epoch))
            if learn.name != "signal_status":
                w.signalled.add(learn.name)
                w.learned[learn.name if learn.subject is None else f"{learn.name}[{learn.subject}]"] = learn.value

    def _goal(self, w: _Work, u: Understanding) -> str | None:
        for name, confidence in u.intents:
            if name in GOALS and confidence >= 0.5:
                return name
        if u.intents and u.intents[0][0] == "affirm":
            offered = w.known("offered_next")
            if offered in GOALS:
                return str(offered)
        reason = w.known("reason")
        return str(reason) if reason in GOALS else None

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
        if "date" in e:
            if "date_of_birth" in pending or date.fromisoformat(e["date"]).year < w.turn.now.year - 10:
                w.learn("date_of_birth", e["date"], "customer", confidence=0.9)
            else:
                w.learn("mentioned_date", e["date"], "customer", confidence=0.8)
        if "amount" in e:
            w.learn("mentioned_amount", e["amount"], "customer", confidence=0.9)
        if "disputed_charge" in pending and u.text:
            w.learn("disputed_charge_description", u.text.strip()[:200], "customer", confidence=0.8)

    def _pending_questions(self, w: _Work) -> set[str]:
        """What the floor asked since the customer last spoke: their words answer that."""
        last_customer = max(
            (ln.seq for ln in w.case.transcript if ln.speaker == "customer" and ln.seq < w.turn.input.seq), default=0
        )
        return {r["name"] for r in w.case.requests if r["seq"] > last_customer}

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
        with the same case when it records the proposal, so what the bot says is what is recorded."""
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
        }.get(tool, "That's done.")
        w.say(f"{done} Is there anything else I can help with?")

    # -- serving goals ---------------------------------------------------------------------------------
    def _handoff_open(self, w: _Work) -> bool:
        return w.case.handoff is not None and w.case.handoff.is_open

    def _was_upset_before(self, w: _Work) -> bool:
        return bool(w.case.sentiment and w.case.sentiment.get("label") in ("angry", "distressed"))

    def _hand_over(self, w: _Work, reason: str, next_step: str, queue: str | None = None) -> None:
        if self._handoff_open(w):
            w.say("You're in line for the next available person, and they'll see everything we've covered.")
            return
        queue = queue or (w.tenant.skills[0] if w.tenant.skills else "general")
        w.handoff(queue, reason, next_step)
        w.say(
            "I'm connecting you with a person now. They'll see everything you've told me, so you won't need "
            "to repeat yourself. I'll stay with you until they join."
        )

    def _serve_balance(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        accounts = w.record.details.get("accounts") or []
        if not accounts:
            w.say("I don't see a deposit account in your name, only cards.")
            return
        parts = []
        for account in accounts:
            subject = f"account:{account['id']}"
            w.learn("balance", account["balance"], "system:core_banking", subject=subject)
            parts.append(
                f"your {account['kind']} account ending {account['id'][-4:]} has {format_money(account['balance'])}"
            )
        w.say(f"As of now, {'; '.join(parts)}. Anything else?")

    def _serve_card_declined(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        details = w.record.details
        declined = [t for t in details.get("transactions") or [] if t.get("status") == "declined"]
        held = [c for c in details.get("cards") or [] if c.get("status") == "fraud_hold"]
        if not declined and not held:
            w.say(
                "I don't see any declined payments or holds on your cards today. Could the merchant have had a problem?"
            )
            return
        lines = []
        for txn in declined:
            subject = f"transaction:{txn['id']}"
            decline = {
                "merchant": txn["merchant"],
                "amount": txn["amount"],
                "date": txn["date"],
                "reason": txn.get("decline_reason"),
            }
            w.learn("declined_payment", decline, "system:card_transactions", subject=subject)
            lines.append(
                f"your card ending {txn['card_last4']} was declined on {txn['date']} at {txn['merchant']} for "
                f"{format_money(txn['amount'])} because of a {txn.get('decline_reason', 'decline')}"
            )
        for card in held:
            subject = f"card:{card['last4']}"
            hold = card.get("hold") or {}
            w.learn("card_hold", {"status": "held", "reason": hold.get("reason")}, "system:cards", subject=subject)
            w.learn("fraud_score", hold.get("fraud_score"), "system:fraud", subject=subject)
            lines.append(f"the hold was placed after a {hold.get('reason', 'fraud alert')}")
        notices = details.get("travel_notices") or []
        w.learn("travel_notice", notices[0] if notices else "none on file", "system:cards")
        if not notices:
            lines.append("and there's no travel notice on file")
        w.say(f"I found it: {', '.join(lines)}.")
        if held:
            card = held[0]
            txn = declined[0] if declined else None
            args = {"customer_id": w.record.id, "card_last4": card["last4"]}
            if txn is not None:
                args["amount"] = txn["amount"]
            outcome = self._act(w, "release_fraud_hold", args, "verified customer confirmed the declined payment")
            if outcome == "allow":
                w.say("Since you've confirmed it's you, I'm releasing the hold now; I'll tell you here when it's done.")
                return
            reason = f"release fraud hold on card {card['last4']} (verified customer, foreign-transaction alert)"
            if outcome == "require_approval":
                reason = f"approve the proposed hold release on card {card['last4']}"
            self._hand_over(
                w,
                reason,
                "Confirm the Lisbon payment with the customer, release the hold and add a travel notice.",
                queue="fraud",
            )

    _serve_fraud_hold = _serve_card_declined

    def _serve_dispute_charge(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        txns = [t for t in w.record.details.get("transactions") or [] if t.get("status") == "posted"]
        amount = w.known("mentioned_amount")
        text = (u.text or "").lower() + " " + str(w.known("disputed_charge_description") or "").lower()
        match = [t for t in txns if (amount and t["amount"] == amount) or t["merchant"].lower() in text]
        if not match:
            w.ask("disputed_charge", "Which charge would you like to dispute? The merchant or the amount is enough.")
            return
        txn = match[0]
        charge = {
            "merchant": txn["merchant"],
            "amount": txn["amount"],
            "date": txn["date"],
            "transaction_id": txn["id"],
        }
        w.learn("disputed_charge", charge, "system:card_transactions", subject=f"transaction:{txn['id']}")
        w.say(
            f"I've noted the {format_money(txn['amount'])} charge at {txn['merchant']} on {txn['date']}. "
            "Opening a dispute of that size needs a specialist's approval."
        )
        args = {"customer_id": w.record.id, "transaction_id": txn["id"], "amount": txn["amount"],
                "reason": "customer does not recognise the charge"}  # fmt: skip
        outcome = self._act(w, "open_dispute", args, "customer disputes the charge")
        if outcome == "allow":
            w.say("I'm opening the dispute now; I'll confirm here in a moment.")
            return
        what = "approve the proposed dispute" if outcome == "require_approval" else "dispute"
        self._hand_over(
            w,
            f"{what}: {format_money(txn['amount'])} at {txn['merchant']}",
            "Review and approve the dispute." if outcome == "require_approval" else "Review and open the dispute.",
            queue="disputes",
        )

    def _serve_lost_card(self, w: _Work, u: Understanding) -> None:
        w.say("I'm sorry to hear that. A card specialist will block the card and send a replacement.")
        self._hand_over(w, "lost card: block and reissue", "Block the card and order a replacement.", queue="cards")

    def _serve_travel_notice(self, w: _Work, u: Understanding) -> None:
        self._hand_over(w, "add a travel notice", "Add the travel notice with dates and countries.", queue="cards")

    def _serve_reset_pin(self, w: _Work, u: Understanding) -> None:
        w.say(
            "You can reset your PIN in the app under Cards → Reset PIN, or at any of our ATMs with your card. "
            "For an online banking password, use 'Forgot password' on the sign-in page. Anything else?"
        )

    def _serve_explain_bill(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        statements = w.record.details.get("statements") or []
        if not statements:
            w.say("You have no open balance on your statement. Anything else?")
            return
        statement = statements[0]
        claim = next((c for c in w.record.details.get("claims") or [] if c["id"] == statement.get("claim_id")), None)
        w.learn("statement_balance", statement["balance"], "system:billing")
        sentence = f"Your statement balance is {format_money(statement['balance'])}"
        if claim:
            w.learn("claim_status", claim["status"], "system:claims", subject=f"claim:{claim['id']}")
            for line in claim.get("lines") or []:
                w.learn("claim_line", line, "system:claims", subject=f"claim:{claim['id']}")
                sentence += (
                    f", for {line['description']} on your {claim['visit_date']} visit (claim {claim['id']}): it was "
                    f"{line['reason']}, so {format_money(line['patient_responsibility'])} is your responsibility"
                )
        w.say(sentence + ".")
        if w.record.details.get("payment_plan_eligible"):
            w.learn("payment_plan_eligible", True, "system:billing")
            w.learn("offered_next", "payment_plan", "bot")
            w.say("You're eligible for a payment plan. Would you like to set one up?")

    def _serve_claim_status(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        claims = w.record.details.get("claims") or []
        if not claims:
            w.say("I don't see any claims on file for you. Anything else?")
            return
        parts = []
        for claim in claims:
            w.learn("claim_status", claim["status"], "system:claims", subject=f"claim:{claim['id']}")
            parts.append(f"claim {claim['id']} for your {claim['visit_date']} visit is {claim['status']}")
        w.say(f"{'; '.join(parts).capitalize()}. Anything else?")

    def _serve_eligibility(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        elig = w.record.details.get("eligibility") or {}
        w.learn("coverage", elig, "system:eligibility")
        plan = w.record.details.get("plan", "your plan")
        if elig.get("status") == "eligible":
            w.say(f"You're covered under {plan}, active since {elig.get('start')}. Anything else?")
        else:
            w.say(f"Your coverage under {plan} ended on {elig.get('end')}. Anything else I can help with?")

    def _serve_payment_plan(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        if not w.record.details.get("payment_plan_eligible"):
            w.say("I'm sorry, your account isn't eligible for a payment plan right now.")
            return
        statements = w.record.details.get("statements") or []
        total = format_money(statements[0]["balance"]) if statements else "your balance"
        w.learn("payment_plan_eligible", True, "system:billing")
        if statements:
            args = {"member_id": w.record.id, "amount": statements[0]["balance"], "months": 3}
            if self._act(w, "set_up_payment_plan", args, "eligible member asked for a payment plan") == "allow":
                w.say(f"I'm setting up a 3-month payment plan for {total} now; I'll confirm here in a moment.")
                return
        self._hand_over(
            w,
            f"set up a payment plan for {total}",
            "Set up the payment plan and confirm the first date.",
            queue="billing",
        )

    def _serve_reschedule(self, w: _Work, u: Understanding) -> None:
        assert w.record is not None
        appointments = w.record.details.get("appointments") or []
        elig = w.record.details.get("eligibility") or {}
        w.learn("coverage", elig, "system:eligibility")
        for appt in appointments:
            w.learn("appointment", appt, "system:scheduling", subject=f"appointment:{appt['id']}")
        if appointments:
            appt = appointments[0]
            note = ""
            if elig.get("status") != "eligible":
                note = (
                    f" Please note your coverage ended on {elig.get('end')}, which the scheduler will go over with you."
                )
            w.say(f"I see your appointment on {appt['date']} with {appt['provider']}.{note}")
        self._hand_over(w, "reschedule an appointment", "Offer new appointment times.", queue="scheduling")
