"""The flow planner: a language model chooses the flow, the flows do the work; with the shipped scripted model
it behaves as the bot does, and what the model receives is checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tandem.activation.activator import Activator
from tandem.clock import ManualClock
from tandem.conductor import Conductor
from tandem.llm.protocol import LLMTimeout, Message
from tandem.llm.scripted import CONTEXT_HEADER, ScriptedFlowLLM, ScriptedLLM, tool_call
from tandem.participants.bot import SelfServiceBot
from tandem.participants.flow_planner import FlowPlanner, self_service_from_env
from tandem.store.sqlite import SqliteStore
from tandem.world.world import World
from tests.flows.conftest import Chat, CuedUnderstander

MARIA = ["my card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"]


async def _chat(conductor: Conductor, tenant: str) -> Chat:
    state, _ = await conductor.start(tenant, f"anon-{tenant}", "chat")
    return Chat(conductor, tenant, state.interaction_id)


def _conductor(store: SqliteStore, clock: ManualClock, world: World, participant: SelfServiceBot) -> Conductor:
    return Conductor(store, {"bot": participant}, clock=clock, understander=CuedUnderstander(world))


def _context(message: Message) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(message.content.split(CONTEXT_HEADER, 1)[1])
    return loaded


async def test_with_the_scripted_model_the_planner_plays_marias_journey_as_the_bot_does(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator, tmp_path: Path
) -> None:
    llm = ScriptedFlowLLM()
    planner = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world, activator=example_activator))
    planned = await (await _chat(planner, "bank")).lines(*MARIA)
    other = SqliteStore(tmp_path / "bot.db")
    try:
        bot = _conductor(other, clock, world, SelfServiceBot(world, activator=example_activator))
        by_bot = await (await _chat(bot, "bank")).lines(*MARIA)
    finally:
        await other.close()
    assert planned == by_bot
    assert [r.tools[0].name for r in llm.requests] == ["start_flow"] * len(MARIA)
    assert all(r.messages[0].role == "system" for r in llm.requests)


async def test_the_model_sees_flows_and_scoped_facts_but_no_card_number_nor_identity_answers(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    llm = ScriptedFlowLLM()
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world, activator=example_activator))
    maria = await _chat(conductor, "bank")
    await maria.lines(*MARIA, "my card 4111 1111 1111 1111 still fails")
    last = llm.requests[-1]
    sent = " ".join(m.content for m in last.messages)
    assert "4111111111111111" not in sent.replace(" ", "")
    context = _context(last.messages[-1])
    assert {f["name"] for f in context["flows"]} >= {"card_declined", "balance", "reset_pin"}
    assert context["current_flow"] == "card_declined"
    facts = context["facts"]
    assert facts["fraud_score[card:4242]"] == 0.82 and "declined_payment[transaction:TXN-88301]" in facts
    # Identity-challenge answers and contact details are not in the bot's data scope: the model never sees them.
    assert not {"date_of_birth", "zip", "phone", "customer_name"} & set(facts)
    assert "1985" not in json.dumps(facts) and "94110" not in json.dumps(facts)


async def test_set_fact_notes_what_the_case_lacks_and_never_overwrites_what_it_has(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    llm = ScriptedLLM([
        tool_call("set_fact", name="phone", value="+1 415 555 0134"),
        tool_call("set_fact", name="phone", value="+1 000 000 0000"),
        tool_call("set_fact", name="fraud_score", value="0.01"),
    ])  # fmt: skip
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world, activator=example_activator))
    maria = await _chat(conductor, "bank")
    for line in ("hello there", "hello again there", "and once more"):
        await maria.say(line)
    case = await maria.case()
    phone = case.fact("phone", clock.now())
    assert phone is not None and phone.value == "+1 415 555 0134" and phone.source == "customer"
    assert case.fact("fraud_score", clock.now()) is None


async def test_request_handoff_hands_over_with_the_models_reason(
    sqlite_store: SqliteStore, clock: ManualClock, world: World
) -> None:
    llm = ScriptedLLM([tool_call("request_handoff", reason="wants to close the account")])
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world))
    customer = await _chat(conductor, "bank")
    replies = await customer.say("I'd like to close my account")
    case = await customer.case()
    assert case.handoff is not None and case.handoff.reason == "wants to close the account"
    assert replies[-1].startswith("I'm connecting you with a person now.")


async def test_answer_from_knowledge_says_the_article(
    sqlite_store: SqliteStore, clock: ManualClock, world: World
) -> None:
    llm = ScriptedLLM([tool_call("answer_from_knowledge", query="reset my card PIN")])
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world))
    replies = await (await _chat(conductor, "bank")).say("the machine locked my pin")
    assert "Cards → Reset PIN" in replies[0]


async def test_a_model_that_fails_leaves_the_bots_own_choice_in_place(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    llm = ScriptedLLM([LLMTimeout("slow")])
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world, activator=example_activator))
    replies = await (await _chat(conductor, "bank")).say("my card was declined in Lisbon")
    assert replies == ["I can help with that. First, what's the phone number on your account?"]


async def test_an_unknown_flow_or_no_call_at_all_is_not_understood(
    sqlite_store: SqliteStore, clock: ManualClock, world: World
) -> None:
    llm = ScriptedLLM([tool_call("start_flow", name="open_account"), ""])
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world))
    customer = await _chat(conductor, "bank")
    first = await customer.say("open an account")
    assert first[0].startswith("Sorry, I didn't catch that.")
    await customer.say("an account please")
    assert (await customer.case()).handoff is not None  # twice not understood: a person


async def test_the_rails_come_before_the_model(sqlite_store: SqliteStore, clock: ManualClock, world: World) -> None:
    llm = ScriptedLLM()  # any request would fail the test: the script is empty
    conductor = _conductor(sqlite_store, clock, world, FlowPlanner(llm, world))
    customer = await _chat(conductor, "bank")
    await customer.say("I want to talk to a person please")
    assert llm.requests == []
    case = await customer.case()
    assert case.handoff is not None and case.handoff.reason == "the customer asked for a person"


def test_the_planner_is_chosen_when_a_model_is_configured(world: World) -> None:
    assert type(self_service_from_env(world, environ={})) is SelfServiceBot
    scripted = self_service_from_env(world, environ={"TANDEM_LLM": "scripted:flows"})
    assert isinstance(scripted, FlowPlanner) and isinstance(scripted.llm, ScriptedFlowLLM)
    real = self_service_from_env(world, environ={"TANDEM_LLM": "openai:gpt-test", "TANDEM_LLM_API_KEY": "k"})
    assert isinstance(real, FlowPlanner) and real.llm.model == "gpt-test"
