"""Each step kind, run by the interpreter against a host that records what the flow made it do."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tandem.flows.engine import ALREADY_DONE_TEXT, ALREADY_PENDING_TEXT, FactEntry, FactView, FlowRun
from tandem.release.flows import Flow, load_flows
from tandem.world.world import EXAMPLES_DIR

USD = "USD"


def usd(minor: int) -> dict[str, Any]:
    return {"amount_minor": minor, "currency": USD}


@dataclass
class Host:
    """The participant side of a flow, recording every call; facts and answers are given by each test."""

    goal: str = "balance"
    text: str = ""
    known: dict[str, list[FactEntry]] = field(default_factory=dict)
    verified: bool = True
    missing: list[str] | None = field(default_factory=list)
    outcome: str | None = "allow"
    articles: dict[str, str] = field(default_factory=dict)
    asked_before: set[str] = field(default_factory=set)
    pending_now: set[str] = field(default_factory=set)
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def facts(self) -> FactView:
        return self.known

    def customer(self) -> dict[str, Any]:
        return {"id": "C-1", "first_name": "Maria", "name": "Maria Lopez"}

    def pending(self, name: str) -> bool:
        return name in self.pending_now

    def asked(self, name: str) -> bool:
        return name in self.asked_before

    async def verify(self, level: str) -> bool:
        self.calls.append(("verify", level))
        return self.verified

    async def fetch(self, intent: str) -> list[str] | None:
        self.calls.append(("fetch", intent))
        return self.missing

    def say(self, text: str) -> None:
        self.calls.append(("say", text))

    def ask(self, name: str, text: str) -> None:
        self.calls.append(("ask", name, text))

    def learn(self, name: str, value: Any, source: str, subject: str | None = None) -> None:
        self.calls.append(("learn", name, value, subject))
        self.known.setdefault(name, []).append(FactEntry(subject, value, source))

    def propose(self, tool: str, args: dict[str, Any], why: str) -> str | None:
        self.calls.append(("propose", tool, args, why))
        return self.outcome

    def handoff(self, queue: str | None, reason: str, next_step: str) -> None:
        self.calls.append(("handoff", queue, reason, next_step))

    def answer(self, query: str) -> str | None:
        self.calls.append(("answer", query))
        return self.articles.get(query)

    def said(self) -> list[str]:
        return [c[1] for c in self.calls if c[0] == "say"]

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


def fact(value: Any, subject: str | None = None, source: str = "signal:test") -> list[FactEntry]:
    return [FactEntry(subject, value, source)]


def flow(tmp_path: Path, text: str, example: str = "bank") -> Flow:
    """A flow ``f`` with these steps, checked against an example tenant's signals and policy."""
    tenant = tmp_path / example
    (tenant / "flows").mkdir(parents=True, exist_ok=True)
    for name in ("signals.yaml", "policy.yaml"):
        shutil.copy(EXAMPLES_DIR / example / name, tenant / name)
    (tenant / "flows" / "f.yaml").write_text(f"flow: f\nintents: [balance]\nqueue: accounts\nsteps:\n{text}")
    found = load_flows(tenant / "flows", example).get("f")
    assert found is not None
    return found


async def test_say_renders_facts_with_money_date_and_id_filters(tmp_path: Path) -> None:
    host = Host(known={"declined_payment": fact({"amount": usd(8640), "date": "2026-12-03"}, "transaction:T-1"),
                       "card_hold": fact({"status": "held"}, "card:4242")})  # fmt: skip
    f = flow(
        tmp_path,
        "  - say: '{declined_payment.amount|money} on {declined_payment.date|date}, card {subject.card_hold|id}'\n",
    )
    await FlowRun(f, host).run()
    assert host.said() == ["$86.40 on December 3, 2026, card 4242"]


async def test_say_for_each_lists_every_subject_with_its_own_facts(tmp_path: Path) -> None:
    host = Host(known={
        "claim": [FactEntry("claim:A-1", {"visit_date": "2026-10-01"}, "s"),
                  FactEntry("claim:B-2", {"visit_date": "2026-11-02"}, "s")],
        "claim_status": [FactEntry("claim:B-2", "denied", "s"), FactEntry("claim:A-1", "paid", "s")],
    })  # fmt: skip
    f = flow(
        tmp_path,
        "  - say: '{items}.'\n    for_each: claim\n    item: '{subject.claim|id} {claim.visit_date} {claim_status}'\n",
        "healthcare",
    )
    await FlowRun(f, host).run()
    assert host.said() == ["A-1 2026-10-01 paid; B-2 2026-11-02 denied."]


async def test_a_say_whose_fact_is_missing_hands_over_instead_of_saying_half_a_sentence(tmp_path: Path) -> None:
    host = Host()
    f = flow(tmp_path, "  - say: 'You have {balance|money}.'\n  - say: never reached\n")
    await FlowRun(f, host).run()
    assert host.said() == []
    assert host.calls[-1][0:2] == ("handoff", "accounts") and "has no balance" in host.calls[-1][2]


async def test_when_skips_a_step_and_branch_takes_the_first_arm_that_holds(tmp_path: Path) -> None:
    host = Host(known={"fraud_score": fact(0.82)})
    f = flow(tmp_path, (
        "  - say: skipped\n    when: fraud_score > 0.9\n"
        "  - branch:\n"
        "      - when: \"'card_hold' in known\"\n        then: [{say: held}]\n"
        "      - when: fraud_score < 0.9\n        then: [{say: low score}]\n"
        "      - else: [{say: otherwise}]\n"
        "  - say: after the branch\n"
    ))  # fmt: skip
    await FlowRun(f, host).run()
    assert host.said() == ["low score", "after the branch"]


async def test_a_condition_reading_a_missing_fact_is_false(tmp_path: Path) -> None:
    host = Host()
    f = flow(tmp_path, "  - say: risky\n    when: fraud_score < 0.9\n  - say: safe\n")
    await FlowRun(f, host).run()
    assert host.said() == ["safe"]


async def test_ask_asks_only_what_the_case_file_lacks_and_stops_for_the_answer(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - ask: travel_dates\n    text: Which dates?\n  - say: noted {travel_dates}\n")
    host = Host()
    await FlowRun(f, host).run()
    assert host.calls == [("ask", "travel_dates", "Which dates?")]
    answered = Host(known={"travel_dates": fact("Dec 8-20", source="customer")})
    await FlowRun(f, answered).run()
    assert answered.said() == ["noted Dec 8-20"]


async def test_ask_takes_the_customers_words_as_the_answer_to_its_pending_question(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - ask: travel_dates\n    text: Which dates?\n  - say: noted {travel_dates}\n")
    host = Host(text="December 8 to 20", pending_now={"travel_dates"}, asked_before={"travel_dates"})
    await FlowRun(f, host).run()
    assert ("learn", "travel_dates", "December 8 to 20", None) in host.calls
    assert host.said() == ["noted December 8 to 20"]


async def test_ask_with_choose_from_picks_the_candidate_the_customer_named(tmp_path: Path) -> None:
    source = "signal:recent_charges"
    charges = [FactEntry("transaction:T-1", {"merchant": "Corner Cafe", "amount": usd(450)}, source),
               FactEntry("transaction:T-2", {"merchant": "ElectroMart", "amount": usd(125000)}, source)]  # fmt: skip
    f = flow(tmp_path, "  - ask: disputed_charge\n    text: Which charge?\n    choose_from: charge\n"
                       "  - say: '{disputed_charge.merchant} {disputed_charge.transaction_id}'\n")  # fmt: skip
    by_name = Host(text="the electromart one", known={"charge": list(charges)})
    await FlowRun(f, by_name).run()
    assert by_name.said() == ["ElectroMart T-2"]
    by_amount = Host(text="that one", known={"charge": list(charges), "mentioned_amount": fact(usd(450))})
    await FlowRun(f, by_amount).run()
    assert by_amount.said() == ["Corner Cafe T-1"]


async def test_ask_hands_over_rather_than_asking_the_same_question_twice(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - ask: disputed_charge\n    text: Which charge?\n    choose_from: charge\n")
    host = Host(text="no idea", known={"charge": fact({"merchant": "ElectroMart"}, "transaction:T-2")},
                asked_before={"disputed_charge"})  # fmt: skip
    await FlowRun(f, host).run()
    assert host.kinds() == ["handoff"] and "could not tell the disputed charge" in host.calls[0][2]


async def test_verify_stops_the_flow_until_the_customer_is_verified(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - verify: knowledge_verified\n  - say: secret\n")
    host = Host(verified=False)
    await FlowRun(f, host).run()
    assert host.calls == [("verify", "knowledge_verified")]


async def test_fetch_that_comes_back_short_says_so_and_hands_over_by_default(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - fetch: balance\n  - say: never\n")
    host = Host(missing=["account_balances"])
    await FlowRun(f, host).run()
    assert host.kinds() == ["fetch", "say", "handoff"]
    assert "account_balances" in host.calls[2][2] and host.calls[2][1] == "accounts"
    no_data = Host(missing=None)
    await FlowRun(f, no_data).run()
    assert "no data source is connected" in no_data.calls[2][2]


async def test_fetch_with_if_unavailable_runs_the_flows_own_fallback(tmp_path: Path) -> None:
    f = flow(
        tmp_path, "  - fetch: balance\n    if_unavailable: [{say: 'Missing: {unavailable}'}]\n  - say: then this\n"
    )
    host = Host(missing=["account_balances"])
    await FlowRun(f, host).run()
    assert host.said() == ["Missing: ['account_balances']", "then this"]


PROPOSE = (
    "  - propose:\n"
    "      tool: release_fraud_hold\n"
    "      args: {customer_id: '{customer.id}', card_last4: '{subject.card_hold|id}',\n"
    "             amount: '{declined_payment.amount}'}\n"
    "      why: verified customer confirmed it\n"
    "    on_allow: [{say: releasing}]\n"
    "    on_approval: [{handoff: {reason: 'approve release on {subject.card_hold|id}'}}]\n"
    "    on_deny: [{handoff: {queue: fraud, reason: release it, next: Release the hold.}}]\n"
)


async def test_propose_passes_typed_arguments_and_follows_what_policy_decided(tmp_path: Path) -> None:
    f = flow(tmp_path, PROPOSE)
    known = {"card_hold": fact({"status": "held"}, "card:4242"), "declined_payment": fact({"amount": usd(8640)}, "t")}
    allowed = Host(known=dict(known), outcome="allow")
    await FlowRun(f, allowed).run()
    assert allowed.calls[0] == ("propose", "release_fraud_hold",
                                {"customer_id": "C-1", "card_last4": "4242", "amount": usd(8640)},
                                "verified customer confirmed it")  # fmt: skip
    assert allowed.said() == ["releasing"]
    approval = Host(known=dict(known), outcome="require_approval")
    await FlowRun(f, approval).run()
    assert approval.calls[-1] == ("handoff", "accounts", "approve release on 4242", "Help with the request.")
    for outcome in ("deny", None):
        denied = Host(known=dict(known), outcome=outcome)
        await FlowRun(f, denied).run()
        assert denied.calls[-1] == ("handoff", "fraud", "release it", "Release the hold.")


async def test_propose_of_a_request_already_made_says_so_instead_of_acting_or_handing_over(tmp_path: Path) -> None:
    f = flow(tmp_path, PROPOSE)
    known = {"card_hold": fact({"status": "held"}, "card:4242"), "declined_payment": fact({"amount": usd(8640)}, "t")}
    done = Host(known=dict(known), outcome="done")
    await FlowRun(f, done).run()
    assert done.said() == [ALREADY_DONE_TEXT] and "handoff" not in done.kinds()
    pending = Host(known=dict(known), outcome="pending")
    await FlowRun(f, pending).run()
    assert pending.said() == [ALREADY_PENDING_TEXT] and "handoff" not in pending.kinds()


async def test_answer_says_the_article_for_the_flows_topic_or_hands_over(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - answer: reset a PIN\n  - say: Anything else?\n")
    host = Host(articles={"reset a PIN": "Cards → Reset PIN."})
    await FlowRun(f, host).run()
    assert host.said() == ["Cards → Reset PIN.", "Anything else?"]
    none = Host()
    await FlowRun(f, none).run()
    assert none.calls[-1][0] == "handoff" and "no article answers it" in none.calls[-1][2]


async def test_goto_jumps_to_a_named_step_and_a_loop_is_cut_short(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - goto: last\n  - say: skipped\n  - id: last\n    say: here\n")
    host = Host()
    await FlowRun(f, host).run()
    assert host.said() == ["here"]
    looping = flow(tmp_path, "  - id: top\n    say: again\n  - goto: top\n")
    spun = Host()
    await FlowRun(looping, spun).run()
    assert spun.calls[-1][0] == "handoff" and "goto loop" in spun.calls[-1][2]
    assert len(spun.said()) < 200


async def test_starting_at_a_named_step_still_runs_the_verification_before_it(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - verify: knowledge_verified\n  - say: first\n  - id: later\n    say: later\n")
    host = Host()
    await FlowRun(f, host).run("later")
    assert host.calls == [("verify", "knowledge_verified"), ("say", "later")]
    unverified = Host(verified=False)
    await FlowRun(f, unverified).run("later")
    assert unverified.said() == []


async def test_say_with_offer_notes_what_a_yes_would_start(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - say: Want a plan?\n    offer: f\n")
    host = Host()
    await FlowRun(f, host).run()
    assert ("learn", "offered_next", "f", None) in host.calls
