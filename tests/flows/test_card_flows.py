"""The lost-card flow through the conductor, with the customer's cards from the signals: a verified customer's
card is blocked and replaced within policy, a customer with several cards is asked which one, and without a
policy that lets the bot act the cards team takes over with the case ready."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tandem.activation.activator import Activator
from tandem.case.askonce import repeats
from tandem.clock import ManualClock
from tandem.release.signals import load_releases
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World
from tests.activation.fakes import ScriptedSource
from tests.flows.conftest import Chat, bank_chat_with_gate

Start = Callable[[str], Awaitable[Chat]]
JAMES = ["I lost my card yesterday", "(212) 555-0199", "July 2, 1990", "10001"]
MARIA = ["415 555 0134", "March 14, 1985", "94110"]
# Maria with a second card, as the lakehouse would list them (newest first is irrelevant: the flow asks).
TWO_CARDS = [
    {"last4": "4242", "kind": "debit", "status": "fraud_hold", "cards_held": 2},
    {"last4": "5151", "kind": "credit", "status": "active", "cards_held": 2},
]
BLOCK_JAMES = {"customer_id": "C-1002", "card_last4": "9876", "reason": "reported lost or stolen"}


@pytest.fixture
async def two_card_activator(example_lakehouse: Path, clock: ManualClock) -> AsyncIterator[Activator]:
    releases = load_releases()
    sources = {"bank": {name: ScriptedSource(name, rows=list(TWO_CARDS)) for name in releases["bank"].sources}}
    activator = await Activator.open(releases, example_lakehouse, clock=clock, sources=sources)
    try:
        yield activator
    finally:
        await activator.close()


def _proposed(case: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(a["tool"], a["args"]) for a in case.actions.values()]


async def test_a_verified_customer_with_one_card_has_it_blocked_and_replaced_without_being_asked_which(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    text = " ".join(await james.lines(*JAMES))
    assert "Which card" not in text
    assert "I'm blocking your credit card ending 9876 now" in text
    assert "arrives in 5 to 7 business days" in text
    case = await james.case()
    assert _proposed(case) == [
        ("block_card", BLOCK_JAMES),
        ("reissue_card", {"customer_id": "C-1002", "card_last4": "9876"}),
    ]
    assert all(a["decision"]["outcome"] == "allow" for a in case.actions.values())
    assert case.handoff is None
    assert repeats(await sqlite_store.read(james.interaction_id)) == []


async def test_without_a_policy_letting_the_bot_act_the_cards_team_blocks_and_reissues(chat: Start) -> None:
    james = await chat("bank")
    text = " ".join(await james.lines(*JAMES))
    assert "A card specialist will block the card and send a replacement." in text
    case = await james.case()
    assert case.actions == {}
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "cards"}
    assert case.handoff.reason == "lost card: block and reissue"


async def test_a_customer_with_two_cards_is_asked_which_and_the_one_they_name_is_blocked(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, two_card_activator: Activator
) -> None:
    maria = await bank_chat_with_gate(sqlite_store, clock, world, two_card_activator)
    replies = await maria.lines("I lost my card", *MARIA)
    assert replies[-1] == "I'm sorry to hear that. Which card is it? The last four digits are enough."
    assert (await maria.case()).actions == {}  # nothing is blocked before she says which
    replies = await maria.say("the one ending in 5151")
    assert "I'm blocking your card ending 5151 now, so nobody can pay with it." in replies
    assert _proposed(await maria.case()) == [
        ("block_card", {"customer_id": "C-1001", "card_last4": "5151", "reason": "reported lost or stolen"}),
        ("reissue_card", {"customer_id": "C-1001", "card_last4": "5151"}),
    ]


async def test_a_customer_with_two_cards_who_named_the_card_already_is_not_asked_again(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, two_card_activator: Activator
) -> None:
    maria = await bank_chat_with_gate(sqlite_store, clock, world, two_card_activator)
    text = " ".join(await maria.lines("I lost my card ending 4242", *MARIA))
    assert "Which card" not in text
    tools = _proposed(await maria.case())
    assert [(tool, args["card_last4"]) for tool, args in tools] == [("block_card", "4242"), ("reissue_card", "4242")]
    assert repeats(await sqlite_store.read(maria.interaction_id)) == []


async def test_a_lost_card_reported_again_later_in_the_case_is_not_blocked_twice(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    james = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    await james.lines(*JAMES)
    replies = await james.say("I lost my card")
    assert len((await james.case()).actions) == 2
    assert any("already on its way" in r or "already taken care of" in r for r in replies), replies
