from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tandem.activation import Activator, Trigger
from tandem.case.legs import Assurance
from tandem.clock import ManualClock
from tandem.commands import Learn
from tandem.release.signals import STATUS_FACT, SignalRelease, load_releases, parse_release
from tandem.world.world import EXAMPLES_DIR
from tests.activation.fakes import ScriptedSource

VERIFIED = Assurance.KNOWLEDGE_VERIFIED


def _world(tenant_dir: str) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((EXAMPLES_DIR / tenant_dir / "world.yaml").read_text())
    return {str(c["id"]): c for c in raw["customers"]}


def _facts(learns: Sequence[Learn]) -> dict[tuple[str, str | None], Any]:
    return {(fact.name, fact.subject): fact.value for fact in learns if fact.name != STATUS_FACT}


def _statuses(learns: Sequence[Learn]) -> dict[str, str]:
    return {fact.value["signal"]: fact.value["status"] for fact in learns if fact.name == STATUS_FACT}


async def test_maria_declined_card_set_gives_the_bot_exactly_her_records(activator: Activator) -> None:
    maria = _world("bank")["C-1001"]
    txn, card = maria["transactions"][0], maria["cards"][0]
    learns = await activator.for_trigger(
        "bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-1001"}, "bot"
    )
    assert _facts(learns) == {
        ("declined_payment", f"transaction:{txn['id']}"): {
            "merchant": txn["merchant"], "amount": txn["amount"], "date": txn["date"], "reason": txn["decline_reason"],
        },
        ("fraud_score", f"card:{card['last4']}"): card["hold"]["fraud_score"],
        ("card_hold", f"card:{card['last4']}"): {"status": "held", "reason": card["hold"]["reason"]},
        ("travel_notice", None): "none on file",
    }  # fmt: skip
    assert _statuses(learns) == dict.fromkeys(("recent_declines", "fraud_score", "card_holds", "travel_notices"), "ok")


async def test_every_signal_fact_carries_its_signal_as_source_and_when_it_was_read(
    activator: Activator, business_clock: ManualClock
) -> None:
    learns = await activator.for_trigger(
        "bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-1001"}, "bot"
    )
    by_name = {fact.name: fact for fact in learns}
    assert by_name["card_hold"].source == "signal:card_holds"
    assert by_name["declined_payment"].source == "signal:recent_declines"
    assert all(fact.observed_at == business_clock.now() for fact in learns)
    status = next(f for f in learns if f.name == STATUS_FACT and f.subject == "signal:card_holds")
    assert status.value["release"] == activator.release("bank").version
    assert (status.value["source"], status.value["rows"], status.value["freshness_s"]) == ("lakehouse", 1, 60)


async def test_aisha_bill_set_explains_the_out_of_network_lab_work_and_offers_a_plan(activator: Activator) -> None:
    aisha = _world("healthcare")["MBR-55821"]
    claim, statement = aisha["claims"][0], aisha["statements"][0]
    learns = await activator.for_trigger(
        "health", Trigger.intent("explain_bill", VERIFIED), {"member": "MBR-55821"}, "bot"
    )
    assert _facts(learns) == {
        ("statement_balance", None): statement["balance"],
        ("claim_status", f"claim:{claim['id']}"): claim["status"],
        ("claim_line", f"claim:{claim['id']}/line:1"): claim["lines"][0],
        ("payment_plan_eligible", None): aisha["payment_plan_eligible"],
    }


async def test_robert_eligibility_set_gives_his_coverage_end_date(activator: Activator) -> None:
    robert = _world("healthcare")["MBR-60317"]
    learns = await activator.for_trigger(
        "health", Trigger.intent("eligibility", VERIFIED), {"member": "MBR-60317"}, "bot"
    )
    assert _facts(learns) == {("coverage", None): robert["eligibility"], ("plan", None): robert["plan"]}
    assert robert["eligibility"]["end"] == "2026-09-30"


async def test_robert_has_no_bill_and_no_payment_plan_and_one_appointment_to_reschedule(activator: Activator) -> None:
    robert = _world("healthcare")["MBR-60317"]
    bill = await activator.for_trigger(
        "health", Trigger.intent("explain_bill", VERIFIED), {"member": "MBR-60317"}, "bot"
    )
    assert _facts(bill) == {("payment_plan_eligible", None): False}
    appointment = robert["appointments"][0]
    moves = await activator.for_trigger(
        "health", Trigger.intent("reschedule", VERIFIED), {"member": "MBR-60317"}, "bot"
    )
    assert _facts(moves)[("appointment", f"appointment:{appointment['id']}")] == appointment


async def test_james_disputable_charge_is_the_electromart_payment(activator: Activator) -> None:
    txn = _world("bank")["C-1002"]["transactions"][0]
    learns = await activator.for_trigger(
        "bank", Trigger.intent("dispute_charge", VERIFIED), {"customer": "C-1002"}, "bot"
    )
    assert _facts(learns) == {
        ("charge", f"transaction:{txn['id']}"): {
            "merchant": txn["merchant"], "amount": txn["amount"], "date": txn["date"], "card_last4": txn["card_last4"],
        }
    }  # fmt: skip


async def test_no_signal_is_fetched_for_a_leg_below_the_assurance_it_needs(activator: Activator) -> None:
    identified = await activator.activate(
        "bank", Trigger.intent("card_declined", Assurance.IDENTIFIED), {"customer": "C-1001"}, "bot"
    )
    assert identified.learns == [] and identified.reports == []
    profile = await activator.for_trigger("bank", Trigger.verified(Assurance.IDENTIFIED), {"customer": "C-1001"}, "bot")
    assert _facts(profile) == {("customer_tier", None): "standard"}


async def test_a_participant_may_request_only_the_signals_the_release_lets_it_ask_for(activator: Activator) -> None:
    asked = Trigger.request("card_details", VERIFIED)
    assert _facts(await activator.for_trigger("bank", asked, {"card": "CRD-1001-1"}, "customer")) == {}
    seen = _facts(await activator.for_trigger("bank", asked, {"card": "CRD-1001-1"}, "ai"))
    assert seen[("card_status", "card:4242")] == {"kind": "debit", "status": "fraud_hold"}


# -- degrading, never blocking ------------------------------------------------------------------------------
def _release(signals: dict[str, Any], scopes: dict[str, Any] | None = None) -> SignalRelease:
    raw = {
        "release": {"tenant": "t", "name": "test"},
        "sources": {"fast": {"kind": "duckdb"}, "slow": {"kind": "duckdb"}},
        "signals": signals,
        "data_scopes": scopes or {"bot": {"hold": "all", "score": "all", "note": "all"}},
    }
    return parse_release(raw, version="test")


def _signal(source: str, fact: str, *, budget_ms: int = 1000, intent: str = "card_declined") -> dict[str, Any]:
    return {
        "source": source, "key": "customer", "query": "SELECT v FROM t WHERE k = :key",
        "trigger": {"intents": [intent]}, "budget_ms": budget_ms, "freshness": "5m",
        "facts": [{"name": fact, "value": "v"}],
    }  # fmt: skip


async def test_a_source_past_its_budget_becomes_a_timeout_fact_and_the_others_still_arrive() -> None:
    fast = ScriptedSource("fast", [{"v": "held"}])
    slow = ScriptedSource("slow", [{"v": 0.9}], delay_s=30)
    release = _release({"hold": _signal("fast", "hold"), "score": _signal("slow", "score", budget_ms=50)})
    activator = Activator({"t": release}, {"t": {"fast": fast, "slow": slow}}, clock=ManualClock())
    activation = await activator.activate("t", Trigger.intent("card_declined", VERIFIED), {"customer": "c"}, "bot")
    assert _facts(activation.learns) == {("hold", None): "held"}
    timeout = next(f for f in activation.learns if f.name == STATUS_FACT and f.subject == "signal:score")
    assert timeout.value["status"] == "timeout" and timeout.value["budget_ms"] == 50
    assert timeout.source == "signal:score"
    assert activation.ms < 5000  # bounded by the budget, not by the slow source's 30 s
    await activator.close()
    assert fast.closed and slow.closed


async def test_a_failing_source_becomes_a_failed_fact_with_the_reason() -> None:
    broken = ScriptedSource("slow", error=ConnectionResetError("warehouse went away"))
    release = _release({"hold": _signal("fast", "hold"), "score": _signal("slow", "score")})
    activator = Activator({"t": release}, {"t": {"fast": ScriptedSource("fast"), "slow": broken}}, clock=ManualClock())
    learns = await activator.for_trigger("t", Trigger.intent("card_declined", VERIFIED), {"customer": "c"}, "bot")
    failed = next(f for f in learns if f.subject == "signal:score")
    assert failed.value["status"] == "failed" and "warehouse went away" in failed.value["error"]


async def test_a_query_that_lacks_a_column_the_facts_need_is_a_failed_signal_naming_the_column() -> None:
    source = ScriptedSource("fast", [{"other": 1}])
    release = _release({"hold": _signal("fast", "hold")})
    activator = Activator({"t": release}, {"t": {"fast": source, "slow": source}}, clock=ManualClock())
    learns = await activator.for_trigger("t", Trigger.intent("card_declined", VERIFIED), {"customer": "c"}, "bot")
    assert [f.value["status"] for f in learns] == ["failed"]
    assert "'v'" in learns[0].value["error"]


# -- caching and concurrency --------------------------------------------------------------------------------
async def test_results_are_cached_per_interaction_until_the_signal_freshness_runs_out() -> None:
    source = ScriptedSource("fast", [{"v": "held"}])
    clock = ManualClock()
    release = _release({"hold": _signal("fast", "hold")})
    activator = Activator({"t": release}, {"t": {"fast": source, "slow": source}}, clock=clock)
    trigger = Trigger.intent("card_declined", VERIFIED)
    first = await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-1")
    again = await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-1")
    other = await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-2")
    assert len(source.calls) == 2  # int-1 once, int-2 once
    assert (first.report("hold").cached, again.report("hold").cached, other.report("hold").cached) == (
        False, True, False,
    )  # fmt: skip
    assert _facts(again.learns) == _facts(first.learns)
    assert next(f for f in again.learns if f.name == "hold").observed_at == clock.now()  # when it was read
    clock.advance(timedelta(minutes=6))
    await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-1")
    assert len(source.calls) == 3
    activator.forget("int-2")
    await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-2")
    assert len(source.calls) == 4


async def test_concurrent_requests_for_one_interaction_share_one_fetch() -> None:
    gate = asyncio.Barrier(1)
    source = ScriptedSource("fast", [{"v": "held"}], barrier=gate)
    release = _release({"hold": _signal("fast", "hold")})
    activator = Activator({"t": release}, {"t": {"fast": source, "slow": source}}, clock=ManualClock())
    trigger = Trigger.intent("card_declined", VERIFIED)
    results = await asyncio.gather(
        *(activator.for_trigger("t", trigger, {"customer": "c"}, "bot", interaction_id="int-1") for _ in range(10))
    )
    assert len(source.calls) == 1
    assert all(_facts(r) == {("hold", None): "held"} for r in results)


async def test_interactions_asking_for_the_same_key_at_once_share_one_read_and_each_caches_it() -> None:
    gate = asyncio.Barrier(1)
    source = ScriptedSource("fast", [{"v": "held"}], barrier=gate)
    release = _release({"hold": _signal("fast", "hold")})
    activator = Activator({"t": release}, {"t": {"fast": source, "slow": source}}, clock=ManualClock())
    trigger = Trigger.intent("card_declined", VERIFIED)
    asks = [activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id=f"int-{i}") for i in range(5)]
    others = [activator.activate("t", trigger, {"customer": "d"}, "bot", interaction_id="int-9")]
    results = await asyncio.gather(*asks, *others)
    assert sorted(params["key"] for _, params in source.calls) == ["c", "d"]  # one read per key, not per asker
    assert all(_facts(r.learns) == {("hold", None): "held"} for r in results)
    again = await activator.activate("t", trigger, {"customer": "c"}, "bot", interaction_id="int-3")
    assert again.report("hold").cached and len(source.calls) == 2


async def test_the_signals_of_a_set_are_fetched_at_the_same_time() -> None:
    # Each query waits until all three are in flight: fetched one after another, none would ever arrive.
    together = asyncio.Barrier(3)
    source = ScriptedSource("fast", [{"v": 1}], barrier=together)
    release = _release({name: _signal("fast", name, budget_ms=10_000) for name in ("hold", "score", "note")})
    activator = Activator({"t": release}, {"t": {"fast": source, "slow": source}}, clock=ManualClock())
    learns = await activator.for_trigger("t", Trigger.intent("card_declined", VERIFIED), {"customer": "c"}, "bot")
    assert _statuses(learns) == {"hold": "ok", "score": "ok", "note": "ok"}


async def test_fifty_interactions_fetching_at_once_each_get_their_own_customers_facts(activator: Activator) -> None:
    trigger = Trigger.intent("card_declined", VERIFIED)
    customers = ["C-1001", "C-1002"] * 25
    results = await asyncio.gather(
        *(activator.for_trigger("bank", trigger, {"customer": c}, "bot", interaction_id=f"int-{i}")
          for i, c in enumerate(customers))
    )  # fmt: skip
    for customer, learns in zip(customers, results, strict=True):
        assert set(_statuses(learns).values()) == {"ok"}
        if customer == "C-1001":
            assert _facts(learns)[("card_hold", "card:4242")]["status"] == "held"
        else:
            assert _facts(learns) == {("travel_notice", None): "none on file"}


async def test_the_examples_sets_are_the_ones_the_docs_name() -> None:
    releases = load_releases()
    assert releases["bank"].sets()["card_declined"] == [
        "recent_declines",
        "fraud_score",
        "card_holds",
        "travel_notices",
    ]
    assert releases["health"].sets()["explain_bill"] == ["statement", "claim_lines", "payment_plan"]
    assert releases["health"].sets()["eligibility"] == ["coverage"]


async def test_opening_the_examples_without_generated_data_says_how_to_make_it(tmp_path: Path) -> None:
    from tandem.activation import SourceError

    with pytest.raises(SourceError, match="tandem data generate"):
        await Activator.open(data_dir=tmp_path)
