"""The reference journeys on flows, through the conductor, with live signals from the example lakehouse:
what the customer hears, what lands in the case file, where a hand-back resumes, and what happens when the
data does not come."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.envelope import Actor
from tandem.case.legs import Assurance
from tandem.clock import ManualClock
from tandem.conductor import Conductor
from tandem.participants.bot import SelfServiceBot
from tandem.release.signals import load_releases
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World
from tests.activation.fakes import ScriptedSource
from tests.flows.conftest import Chat, CuedUnderstander, bank_chat_with_gate

Start = Callable[[str], Awaitable[Chat]]
MARIA = ["my card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"]
JAMES = ["I want to dispute a charge on my credit card", "(212) 555-0199", "July 2, 1990", "10001"]


def _facts(case: object, clock: ManualClock) -> dict[str, dict[str, object]]:
    return case.facts_for_api(clock.now())  # type: ignore[attr-defined, no-any-return]


async def test_maria_hears_why_her_card_was_declined_from_the_signals_and_goes_to_fraud(
    chat: Start, clock: ManualClock, sqlite_store: SqliteStore
) -> None:
    maria = await chat("bank")
    text = " ".join(await maria.lines(*MARIA))
    assert "declined on 2026-12-03 at Tasca do Chico, Lisbon for $86.40" in text
    assert "card ending 4242" in text and "no travel notice" in text
    case = await maria.case()
    assert case.handoff is not None and case.handoff.target == {"kind": "queue", "id": "fraud"}
    assert case.handoff.reason == "release fraud hold on card 4242 (verified customer, foreign-transaction alert)"
    assert _facts(case, clock)["card_hold[card:4242]"]["source"] == "signal:card_holds"
    assert repeats(await sqlite_store.read(maria.interaction_id)) == []


async def test_with_policy_allowing_it_the_bot_proposes_the_hold_release_with_typed_arguments(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    maria = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    replies = await maria.lines(*MARIA)
    assert any("I'm releasing the hold now" in r for r in replies)
    (action,) = (await maria.case()).actions.values()
    assert action["tool"] == "release_fraud_hold"
    assert action["args"] == {"customer_id": "C-1001", "card_last4": "4242",
                              "amount": {"amount_minor": 8640, "currency": "USD"}}  # fmt: skip


async def test_james_names_the_charge_and_the_dispute_goes_to_a_specialist_with_it(chat: Start) -> None:
    james = await chat("bank")
    replies = await james.lines(*JAMES)
    assert replies[-1] == "Which charge would you like to dispute? The merchant or the amount is enough."
    replies = await james.say("the ElectroMart charge of $1,250")
    assert replies[0] == "I've noted the $1,250.00 charge at ElectroMart on 2026-11-30."
    case = await james.case()
    assert case.handoff is not None and case.handoff.target["id"] == "disputes"
    assert case.handoff.reason == "dispute: $1,250.00 at ElectroMart"
    charge = case.fact("disputed_charge", datetime.now(UTC), "transaction:TXN-77120")
    assert charge is not None and charge.value["transaction_id"] == "TXN-77120"


async def test_aisha_hears_her_bill_line_by_line_and_a_yes_starts_the_payment_plan(chat: Start) -> None:
    aisha = await chat("health")
    text = " ".join(await aisha.lines("why do I owe money on my bill?", "MBR-55821", "11/23/1978"))
    assert "Your statement balance is $450.00." in text
    assert "lab work on claim CLM-7781: it was billed out of network, so $450.00 is your responsibility" in text
    assert "eligible for a payment plan" in text
    await aisha.say("yes please")
    case = await aisha.case()
    assert case.handoff is not None and case.handoff.reason == "set up a payment plan for $450.00"
    assert case.handoff.target["id"] == "billing"


async def test_robert_hears_his_coverage_ended_and_balance_and_claims_read_from_signals(chat: Start) -> None:
    robert = await chat("health")
    text = " ".join(await robert.lines("am I still covered?", "MBR-60317", "May 8, 1952"))
    assert "Your coverage under Blue Harbor Health PPO ended on 2026-09-30." in text
    aisha = await chat("health")
    text = " ".join(await aisha.lines("what's the status of my claim", "MBR-55821", "11/23/1978"))
    assert "Claim CLM-7781 for your 2026-10-14 visit is processed. Anything else?" in text


async def test_a_pin_reset_is_answered_from_the_articles_without_asking_who_the_customer_is(
    chat: Start, sqlite_store: SqliteStore
) -> None:
    customer = await chat("bank")
    replies = await customer.say("I forgot my PIN, how do I reset it?")
    assert "Cards → Reset PIN" in replies[0]
    assert not [e for e in await sqlite_store.read(customer.interaction_id) if e.type == ev.FACT_REQUESTED]


async def test_a_lost_card_is_verified_then_handed_to_the_cards_queue(chat: Start) -> None:
    james = await chat("bank")
    await james.lines("I lost my card yesterday", "(212) 555-0199", "July 2, 1990", "10001")
    case = await james.case()
    assert case.handoff is not None and case.handoff.target["id"] == "cards"
    assert case.handoff.reason == "lost card: block and reissue"


async def _take_and_hand_back(conductor: Conductor, chat: Chat, data: dict[str, str]) -> list[str]:
    """A person accepts the handoff, then hands the floor back with ``data`` (flow, step, goal)."""
    case = await chat.case()
    assert case.handoff is not None
    hid = case.handoff.handoff_id
    await conductor.execute(
        chat.tenant, chat.interaction_id,
        [cmd.Emit(ev.HANDOFF_QUEUED, {"handoff_id": hid, "queue": "disputes"}),
         cmd.Emit(ev.HANDOFF_OFFERED, {"handoff_id": hid, "offer_id": "off_1", "agent_id": "ag_1",
                                       "expires_at": "2026-12-03T10:00:00+00:00"}),
         cmd.Emit(ev.HANDOFF_ACCEPTED, {"handoff_id": hid, "offer_id": "off_1", "agent_id": "ag_1"}),
         cmd.MoveFloor("human", "ag_1", reason="offer accepted"),
         cmd.Emit(ev.HANDOFF_CONNECTED, {"handoff_id": hid})],
        Actor("system", "routing"),
    )  # fmt: skip
    case = await chat.case()
    await conductor.execute(
        chat.tenant, chat.interaction_id,
        [cmd.MoveFloor("bot", reason="hand-back"), cmd.Emit(ev.HANDED_BACK, {"to": "bot", **data})],
        Actor("human", "ag_1"), floor_epoch=case.floor.epoch,
    )  # fmt: skip
    result = await conductor.process(chat.interaction_id)
    assert result is not None
    assert not [e for e in result.produced if e.type == ev.FACT_REQUESTED]
    return [e.data["text"] for e in result.replies]


async def test_a_hand_back_resumes_the_named_flow_at_the_named_step_without_asking_again(
    chat: Start, conductor: Conductor, sqlite_store: SqliteStore
) -> None:
    james = await chat("bank")
    await james.lines(*JAMES, "the ElectroMart charge of $1,250")
    replies = await _take_and_hand_back(
        conductor, james, {"flow": "dispute_charge", "step": "open_dispute", "goal": "open the dispute"}
    )
    assert replies[0].startswith("Thanks for waiting, James") and "Next: open the dispute." in replies[0]
    # Straight to the named step: not the earlier "I've noted the charge", not the question before it.
    assert not any("I've noted" in r or "Which charge" in r for r in replies)
    assert replies[1] == "A disputes specialist will open it with you."
    case = await james.case()
    assert case.handoff is not None and case.handoff.is_open and case.handoff.reason.startswith("dispute: $1,250.00")
    assert repeats(await sqlite_store.read(james.interaction_id)) == []


async def test_a_hand_back_to_wrap_up_asks_if_there_is_anything_else(chat: Start, conductor: Conductor) -> None:
    james = await chat("bank")
    await james.lines(*JAMES, "the ElectroMart charge of $1,250")
    replies = await _take_and_hand_back(conductor, james, {"flow": "anything_else", "step": "anything_else"})
    assert replies == [
        "Thanks for waiting, James — I'm back with you, and I have everything from your conversation. "
        "Is there anything else I can help you with today?"
    ]


async def test_a_lakehouse_that_times_out_leaves_the_bot_answering_and_handing_over_politely(
    example_lakehouse: Path, sqlite_store: SqliteStore, clock: ManualClock, world: World
) -> None:
    releases = {t: r for t, r in load_releases().items()}
    slow = {"bank": {name: ScriptedSource(name, delay_s=30) for name in releases["bank"].sources}}
    activator = await Activator.open(releases, example_lakehouse, clock=clock, sources=slow)
    try:
        conductor = Conductor(sqlite_store, {"bot": SelfServiceBot(world, activator=activator)}, clock=clock,
                              understander=CuedUnderstander(world))  # fmt: skip
        state, _ = await conductor.start("bank", "anon-bank", "chat")
        replies = await Chat(conductor, "bank", state.interaction_id).lines(*MARIA)
    finally:
        await activator.close()
    assert "I can't reach those records right now, so I'll bring in someone who can look them up." in replies
    assert replies[-1].startswith("I'm connecting you with a person now.")
    case = await conductor.load(state.interaction_id)
    statuses = [v["value"] for k, v in _facts(case, clock).items() if k.startswith("signal_status[")]
    assert statuses and all(s["status"] == "timeout" for s in statuses)  # type: ignore[index]
    assert case.handoff is not None and case.handoff.target["id"] == "fraud"
    assert case.handoff.reason.startswith("card_declined: records unavailable (")


async def test_without_an_activator_the_bot_still_answers_and_hands_over(
    sqlite_store: SqliteStore, clock: ManualClock, world: World
) -> None:
    conductor = Conductor(
        sqlite_store, {"bot": SelfServiceBot(world)}, clock=clock, understander=CuedUnderstander(world)
    )
    state, _ = await conductor.start("health", "anon-health", "chat")
    replies = await Chat(conductor, "health", state.interaction_id).lines(
        "am I still covered?", "MBR-60317", "May 8, 1952"
    )
    assert replies[-2] == "I can't reach those records right now, so I'll bring in someone who can look them up."
    case = await conductor.load(state.interaction_id)
    assert case.handoff is not None and "no data source is connected" in case.handoff.reason


async def test_a_customer_who_wants_a_person_is_handed_over_with_the_cue_recorded(chat: Start) -> None:
    maria = await chat("bank")
    await maria.lines("my card was declined", "415 555 0134")
    await maria.say("please put me through to someone")
    case = await maria.case()
    assert case.handoff is not None and case.handoff.reason == "customer wants a person (said 'put me through')"


async def test_a_customer_repeating_themselves_is_handed_over_as_being_failed(chat: Start) -> None:
    robert = await chat("health")
    await robert.say("I need to talk about my account thing")
    await robert.say("I need to talk about my account thing")
    case = await robert.case()
    assert case.handoff is not None
    assert case.handoff.reason == "customer is being failed again (repeated the same request)"


async def test_correcting_a_date_of_birth_is_not_taken_for_a_repeated_failure(chat: Start) -> None:
    robert = await chat("health")
    replies = await robert.lines("am I still covered?", "MBR-60317", "May 18, 1952", "May 8, 1952")
    case = await robert.case()
    assert case.handoff is None
    assert any("ended on 2026-09-30" in r for r in replies)


async def test_once_an_action_released_the_hold_a_lagging_signal_does_not_bring_it_back(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    maria = await bank_chat_with_gate(sqlite_store, clock, world, example_activator)
    await maria.lines(*MARIA)
    released = cmd.Learn("card_hold", {"status": "released"}, "action:release_fraud_hold", subject="card:4242")
    await maria.conductor.execute("bank", maria.interaction_id, [released], Actor("system", "worker"))
    await maria.conductor.open_leg("bank", maria.interaction_id, "voice", Assurance.IDENTIFIED, Actor("channel", "ivr"))
    replies = await maria.lines("I'm calling about the payment that was declined", "March 14, 1985 and 94110")
    assert any("declined on 2026-12-03 at Tasca do Chico, Lisbon" in r for r in replies)
    assert not any("The hold on your card" in r or "releasing the hold" in r for r in replies)
    assert len((await maria.case()).actions) == 1  # the first release only


async def test_an_angry_customer_asking_for_a_person_is_handed_over_on_that_first_line(chat: Start) -> None:
    # The line's label is "angry" (more urgent), which alone waits for a second upset line; the request for a
    # person it also carries is heard at once.
    maria = await chat("bank")
    await maria.lines("my card was declined", "415 555 0134")
    await maria.say("this is useless, put me through to someone")
    case = await maria.case()
    assert case.handoff is not None
    assert case.handoff.reason == "customer wants a person (angry: said 'useless')"


async def test_asking_again_for_a_person_while_queued_hears_the_same_wait_and_opens_no_second_handoff(
    chat: Start, sqlite_store: SqliteStore
) -> None:
    maria = await chat("bank")
    first = await maria.lines("I want to talk to a person please")
    assert first[-1].startswith("I'm connecting you with a person now.")
    # However the next line is understood (another ask for a person, or a plain line), the wait is worded once.
    again = await maria.lines("can I talk to a human agent", "I'm still waiting here")
    queued = "You're next in line for a specialist, and they'll see everything we've covered."
    assert [r.startswith(queued) for r in again] == [True, True]
    handoffs = [e for e in await sqlite_store.read(maria.interaction_id) if e.type == ev.HANDOFF_REQUESTED]
    assert len(handoffs) == 1
