"""The travel-notice flow through the conductor: the bot learns where and when the customer travels (asking
only what they have not said), adds the notice through the fraud system within policy and says what is on
file; the cards team takes over when policy says so or when the answer names no country or dates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.envelope import Actor
from tandem.clock import ManualClock
from tandem.conductor import Input
from tandem.flows.engine import FlowRun
from tandem.release.flows import FlowError, load_flows
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World
from tests.flows.conftest import Chat, bank_chat_with_gate
from tests.flows.test_steps import Host, fact, flow

Start = Callable[[str], Awaitable[Chat]]
VERIFY = ["(212) 555-0199", "July 2, 1990", "10001"]
PORTUGAL = "I'm traveling to Portugal from Dec 10 to Dec 20, can you add a travel notice?"
NOTICE = {"customer_id": "C-1002", "countries": ["PT"], "start": "2026-12-10", "end": "2026-12-20"}


def _proposed(case: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(a["tool"], a["args"]) for a in case.actions.values()]


def _fact(case: Any, name: str, clock: ManualClock) -> Any:
    found = case.fact(name, clock.now())
    return None if found is None else (found.value, found.source)


async def test_a_customer_who_said_where_and_when_in_the_opening_line_is_not_asked_and_the_notice_is_added(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    text = " ".join(await james.lines(PORTUGAL, *VERIFY))
    assert "Which countries" not in text and "which dates" not in text
    assert "I'm adding a travel notice for Portugal from December 10, 2026 to December 20, 2026 now" in text
    case = await james.case()
    assert _proposed(case) == [("add_travel_notice", NOTICE)]
    assert [a["decision"]["outcome"] for a in case.actions.values()] == ["allow"]
    assert case.handoff is None
    # The birth date answered to the challenge stays a birth date; the trip's dates stay the trip's.
    assert _fact(case, "date_of_birth", clock) == ("1990-07-02", "customer")
    assert _fact(case, "travel_start", clock) == ("2026-12-10", "customer")
    assert _fact(case, "travel_end", clock) == ("2026-12-20", "customer")
    assert _fact(case, "travel_countries", clock) == (["PT"], "customer")
    assert repeats(await sqlite_store.read(james.interaction_id)) == []


async def test_a_customer_is_asked_where_then_when_and_one_answer_gives_both_dates(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    replies = await james.lines("can you add a travel notice to my card?", *VERIFY)
    assert replies[-1] == "Which countries are you traveling to?"
    assert await james.say("Japan and South Korea") == ["On which dates do you leave and come back?"]
    await james.say("from December 8th to the 20th")
    case = await james.case()
    assert _proposed(case) == [
        ("add_travel_notice", {"customer_id": "C-1002", "countries": ["JP", "KR"], "start": "2026-12-08",
                               "end": "2026-12-20"}),
    ]  # fmt: skip
    assert repeats(await sqlite_store.read(james.interaction_id)) == []


async def test_a_customer_who_gives_only_the_day_they_leave_is_asked_when_they_come_back(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    # "next week" alone in the opening line is no date to put on a notice: he is asked for the dates.
    replies = await james.lines("I'm traveling to Mexico next week, can you add a travel notice?", *VERIFY)
    assert replies[-1] == "On which dates do you leave and come back?"
    assert await james.say("I leave on December 12") == ["And on which date do you come back?"]
    await james.say("the 19th")
    assert _proposed(await james.case()) == [
        ("add_travel_notice", {"customer_id": "C-1002", "countries": ["MX"], "start": "2026-12-12",
                               "end": "2026-12-19"}),
    ]  # fmt: skip


async def test_an_answer_naming_no_country_goes_to_the_cards_team_instead_of_onto_the_notice(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    await james.lines("can you add a travel notice to my card?", *VERIFY)
    await james.say("somewhere warm, not sure yet")
    case = await james.case()
    assert case.actions == {}
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "cards"}
    assert "could not tell the travel countries" in case.handoff.reason
    assert _fact(case, "travel_countries", clock) is None


async def test_without_a_policy_letting_the_bot_act_the_cards_team_gets_the_countries_and_dates(chat: Start) -> None:
    james = await chat("bank")
    await james.lines(PORTUGAL, *VERIFY)
    case = await james.case()
    assert case.actions == {}
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "cards"}
    assert case.handoff.reason == "add a travel notice: Portugal, December 10, 2026 to December 20, 2026"


async def test_the_notice_on_file_is_confirmed_in_the_fraud_systems_own_words(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    await james.lines(PORTUGAL, *VERIFY)
    action_id = next(iter((await james.case()).actions))
    recorded = {"id": "TRV-1", "countries": ["PT", "ES"], "start": "2026-12-10", "end": "2026-12-21"}
    result = await james.conductor.handle(
        Input("bank", james.interaction_id, ev.ACTION_SUCCEEDED,
              {"action_id": action_id, "result": {"travel_notice": recorded}}, Actor("system", "actions"))
    )  # fmt: skip
    assert [e.data["text"] for e in result.replies] == [
        "Your travel notice for Portugal and Spain from December 10, 2026 to December 21, 2026 is on file, so card "
        "payments there won't be declined for being abroad. Is there anything else I can help with?"
    ]


async def test_propose_templates_every_text_inside_a_list_or_map_argument(tmp_path: Path) -> None:
    f = flow(
        tmp_path,
        "  - propose:\n      tool: add_travel_notice\n"
        "      args: {customer_id: '{customer.id}', countries: ['{travel_countries}', 'ES'],\n"
        "             start: '{travel_start}', end: {day: '{travel_end|date}', days: [1, 2]}}\n"
        "      why: trip\n    on_allow: [{say: ok}]\n    on_deny: [{say: later}]\n",
    )
    host = Host(known={"travel_countries": fact("PT"), "travel_start": fact("2026-12-10"),
                       "travel_end": fact("2026-12-20")})  # fmt: skip
    await FlowRun(f, host).run()
    assert host.calls[0] == ("propose", "add_travel_notice",
                             {"customer_id": "C-1", "countries": ["PT", "ES"], "start": "2026-12-10",
                              "end": {"day": "December 20, 2026", "days": [1, 2]}}, "trip")  # fmt: skip


def test_a_placeholder_deep_in_an_argument_is_checked_when_the_flow_loads(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as raised:
        flow(
            tmp_path,
            "  - propose:\n      tool: add_travel_notice\n      args: {countries: ['{travle_countries}']}\n"
            "      why: trip\n    on_allow: [{say: ok}]\n    on_deny: [{say: later}]\n",
        )
    assert len(raised.value.problems) == 1
    assert "f.yaml:7:" in raised.value.problems[0] and "unknown fact travle_countries" in raised.value.problems[0]


async def test_an_ask_without_free_text_never_takes_the_customers_words_as_the_answer(tmp_path: Path) -> None:
    f = flow(tmp_path, "  - ask: travel_countries\n    free_text: false\n    text: Where?\n  - say: ok\n")
    first = Host(text="somewhere warm", pending_now={"travel_countries"})
    await FlowRun(f, first).run()
    assert first.calls == [("ask", "travel_countries", "Where?")]
    again = Host(text="somewhere warm", pending_now={"travel_countries"}, asked_before={"travel_countries"})
    await FlowRun(f, again).run()
    assert again.kinds() == ["handoff"] and "could not tell the travel countries" in again.calls[0][2]


def test_the_shipped_travel_notice_flow_proposes_add_travel_notice_with_its_four_arguments() -> None:
    from tandem.world.world import EXAMPLES_DIR

    book = load_flows(EXAMPLES_DIR / "bank" / "flows", "bank")
    travel = book.for_intent("travel_notice")
    assert travel is not None
    propose = next(s for s in travel.steps if s.kind == "propose")
    assert propose.arg["tool"] == "add_travel_notice"
    assert set(propose.arg["args"]) == {"customer_id", "countries", "start", "end"}
