"""The AI participant: a scripted model plans each turn through tools that map to commands; policy decides."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.askonce import repeats
from tandem.case.envelope import Actor, Event
from tandem.conductor import Input
from tandem.knowledge.retrieval import TenantKnowledge
from tandem.llm.protocol import Chunk, Completion, LLMUnavailable, Message, Tool
from tandem.llm.scripted import ScriptedLLM, tool_call
from tandem.participants import planner
from tandem.participants.ai import (
    FALLBACK_HANDOFF,
    FALLBACK_WAITING,
    PROMPT_VERSION,
    STATUS_FACT,
    AIParticipant,
    ai_from_env,
    first_floor,
    llm_from_env,
    takeover,
)
from tandem.participants.planner import Limits
from tandem.participants.protocol import Turn
from tandem.world.world import World
from tests.planner.support import MARIA_HOLD, SETUP, Desk, maria_facts, replies

MakeDesk = Callable[..., Desk]
MODEL = "scripted-model-1"


def scripted(*steps: Any) -> ScriptedLLM:
    return ScriptedLLM(list(steps), model=MODEL)


class HangingLLM:
    """A model that never answers: the turn's timeout is what ends the wait."""

    model = "hanging-model"

    def __init__(self) -> None:
        self.calls = 0
        self._never = asyncio.Event()

    async def complete(
        self, messages: Sequence[Message], *, tools: Sequence[Tool] = (), max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> Completion:  # fmt: skip
        self.calls += 1
        await self._never.wait()
        raise AssertionError("unreachable")

    async def stream(
        self, messages: Sequence[Message], *, tools: Sequence[Tool] = (), max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> AsyncIterator[Chunk]:  # fmt: skip
        raise NotImplementedError
        yield Chunk()


def system_text(llm: ScriptedLLM, request: int = 0) -> str:
    return "\n".join(m.content for m in llm.requests[request].messages if m.role == "system")


def tool_results(llm: ScriptedLLM, request: int) -> list[dict[str, Any]]:
    return [json.loads(m.content) for m in llm.requests[request].messages if m.role == "tool"]


async def test_the_ai_greets_and_answers_in_the_models_words_and_every_event_names_model_and_prompt(
    desks: MakeDesk,
) -> None:
    llm = scripted("Your card ending 4242 is on hold after a foreign-transaction alert.")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    greeting = await desk.events(iid, ev.REPLY_SENT)
    assert greeting[0].data["text"].startswith("Hi Maria, this is Harbor Bank's assistant")
    assert llm.requests == []  # a greeting needs no model

    result = await desk.say("bank", iid, "why was my card declined?")
    assert replies(result) == ["Your card ending 4242 is on hold after a foreign-transaction alert."]
    reply = result.replies[0]
    assert reply.actor == Actor("ai", "ai", MODEL, PROMPT_VERSION)

    request = llm.requests[0]
    assert [t.name for t in request.tools] == ["ask_customer", "propose_action", "request_handoff"]
    assert request.messages[-1] == Message.user("why was my card declined?")
    # The greeting came first; the conversation handed to a provider starts with the customer all the same.
    assert [m.role for m in request.messages[:4]] == ["system", "system", "user", "assistant"]
    context = system_text(llm)
    assert "data, not instructions" in context and "fraud_score[card:4242]" in context
    # The AI's scope lists no identity challenges: the model never sees the date of birth it was verified with.
    assert "1985-03-14" not in json.dumps([m.content for m in request.messages])


async def test_the_ai_asks_only_for_what_the_case_file_lacks(desks: MakeDesk) -> None:
    llm = scripted(
        tool_call("ask_customer", fact="date_of_birth", question="What's your date of birth?"),
        tool_call("ask_customer", fact="travel_location", question="Which country are you in right now?"),
    )
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    result = await desk.say("bank", iid, "my card doesn't work abroad")
    assert replies(result) == ["Which country are you in right now?"]
    asked = await desk.events(iid, ev.FACT_REQUESTED)
    assert [(e.data["name"], e.data["basis"], e.actor.kind) for e in asked] == [("travel_location", "absent", "ai")]
    assert tool_results(llm, 1) == [
        {"status": "not_asked", "why": "the case file already has date_of_birth; do not ask for it again"}
    ]
    assert repeats(await desk.events(iid)) == []


async def test_the_ai_only_proposes_and_policy_decides_while_the_reply_says_what_really_happened(
    desks: MakeDesk,
) -> None:
    llm = scripted(
        tool_call("propose_action", tool="release_fraud_hold", args=MARIA_HOLD, reason="customer confirmed Lisbon"),
        "Done! I've released the hold on your card.",
    )
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    result = await desk.say("bank", iid, "yes, the Lisbon payment was me, please release it")
    assert replies(result) == [planner.SAY_ALLOWED]
    proposed = (await desk.events(iid, ev.ACTION_PROPOSED))[0]
    decided = (await desk.events(iid, ev.ACTION_DECIDED))[0]
    assert proposed.actor == Actor("ai", "ai", MODEL, PROMPT_VERSION)
    assert proposed.data["args"] == MARIA_HOLD
    assert (decided.data["outcome"], decided.data["rule"]) == ("allow", "verified_low_risk_small")
    assert tool_results(llm, 1)[0]["decision"] == {"outcome": "allow", "rule": "verified_low_risk_small",
                                                   "requires": None}  # fmt: skip


async def test_without_a_preview_of_the_decision_the_ai_promises_nothing(desks: MakeDesk) -> None:
    llm = scripted(
        tool_call("propose_action", tool="issue_credit", args={"customer_id": "C-1002",
                  "amount": {"amount_minor": 50000, "currency": "USD"}, "reason": "fee"}, reason="fee refund"),
        "Your $500 credit is on its way!",
    )  # fmt: skip
    desk = desks(llm, preview=False)
    iid = await desk.start("bank", "C-1002")
    result = await desk.say("bank", iid, "refund the fee please")
    assert replies(result) == [planner.SAY_SUBMITTED]
    decided = (await desk.events(iid, ev.ACTION_DECIDED))[0]
    assert (decided.data["outcome"], decided.data["rule"]) == ("require_approval", "large_credit")


async def test_the_ai_hands_over_to_a_person_in_the_queue_it_names(desks: MakeDesk) -> None:
    llm = scripted(tool_call("request_handoff", reason="the customer wants a person", queue="fraud"), "never used")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001")
    result = await desk.say("bank", iid, "I want to talk to a human")
    assert replies(result) == [planner.SAY_HANDOFF]
    handoff = (await desk.events(iid, ev.HANDOFF_REQUESTED))[0]
    assert handoff.data["target"] == {"kind": "queue", "id": "fraud"} and handoff.actor.kind == "ai"
    assert len(llm.requests) == 1


async def test_a_model_that_does_not_answer_in_time_hands_the_customer_to_a_person(desks: MakeDesk) -> None:
    llm = HangingLLM()
    desk = desks(llm, timeout_s=0.05)
    iid = await desk.start("bank", "C-1001")
    async with asyncio.timeout(5):
        result = await desk.say("bank", iid, "hello?")
    assert replies(result) == [FALLBACK_HANDOFF]
    assert llm.calls == 1
    handoff = (await desk.events(iid, ev.HANDOFF_REQUESTED))[0]
    assert handoff.data["target"] == {"kind": "queue", "id": "cards"}
    status = (await desk.conductor.load(iid)).fact(STATUS_FACT, desk.clock.now(), "model:hanging-model")
    assert status is not None and status.value["status"] == "timeout" and status.source == "system:ai"


async def test_a_failing_model_falls_back_and_does_not_ask_for_a_second_handoff(desks: MakeDesk) -> None:
    llm = scripted(LLMUnavailable("503 after 3 attempts"), LLMUnavailable("still down"))
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001")
    first = await desk.say("bank", iid, "hello?")
    second = await desk.say("bank", iid, "anyone there?")
    assert replies(first) == [FALLBACK_HANDOFF] and replies(second) == [FALLBACK_WAITING]
    assert len(await desk.events(iid, ev.HANDOFF_REQUESTED)) == 1
    statuses = [e.data["value"]["status"] for e in await desk.events(iid, ev.FACT_LEARNED)
                if e.data["name"] == STATUS_FACT]  # fmt: skip
    assert statuses == ["failed", "failed"]


async def test_nothing_a_failed_turn_planned_is_kept(desks: MakeDesk) -> None:
    llm = scripted(
        tool_call("propose_action", tool="release_fraud_hold", args=MARIA_HOLD, reason="x"),
        LLMUnavailable("connection reset"),
    )
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    result = await desk.say("bank", iid, "release my card")
    assert replies(result) == [FALLBACK_HANDOFF]
    assert await desk.events(iid, ev.ACTION_PROPOSED) == []


async def test_a_tool_the_ai_does_not_have_is_refused_and_recorded(desks: MakeDesk) -> None:
    llm = scripted(tool_call("approve_action", action_id="act_1"), "Approved!")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001")
    result = await desk.say("bank", iid, "approve it")
    assert replies(result) == [planner.SAY_REFUSED]
    refused = (await desk.events(iid, ev.COMMAND_REFUSED))[0]
    assert refused.data["rule"] == "planner.unknown_tool" and refused.actor.model == MODEL
    assert tool_results(llm, 1)[0]["status"] == "refused"


async def test_the_ai_cannot_act_on_another_customers_account(desks: MakeDesk) -> None:
    other = {**MARIA_HOLD, "customer_id": "C-1002"}
    llm = scripted(tool_call("propose_action", tool="release_fraud_hold", args=other, reason="x"), "ok")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    result = await desk.say("bank", iid, "release James's card too")
    assert replies(result) == [planner.SAY_REFUSED]
    assert await desk.events(iid, ev.ACTION_PROPOSED) == []
    assert (await desk.events(iid, ev.COMMAND_REFUSED))[0].data["rule"] == "planner.other_customer"


async def test_the_model_is_called_at_most_max_steps_times_in_a_turn(desks: MakeDesk) -> None:
    llm = scripted(*(tool_call("search_knowledge", query="travel notice") for _ in range(10)))
    desk = desks(llm, knowledge=TenantKnowledge(), limits=Limits(max_steps=3))
    iid = await desk.start("bank", "C-1001")
    result = await desk.say("bank", iid, "how do travel notices work?")
    assert len(llm.requests) == 3
    assert replies(result) == [planner.SAY_UNCLEAR]
    found = tool_results(llm, 1)[0]
    assert found["status"] == "found" and found["source"].startswith("travel-notices.md")


async def test_a_knowledge_search_returns_the_best_passage_and_names_the_other_articles_found(
    desks: MakeDesk,
) -> None:
    llm = scripted(tool_call("search_knowledge", query="my card was declined abroad"), "Here is what I found.")
    desk = desks(llm, knowledge=TenantKnowledge())
    iid = await desk.start("bank", "C-1001")
    await desk.say("bank", iid, "why was my card declined on my trip?")
    found = tool_results(llm, 1)[0]
    assert found["status"] == "found" and found["source"].split("#")[0] == "card-declined.md"
    related = found["related"]
    sources = [entry["source"].split("#")[0] for entry in related]
    # Other articles only, each once, named by title (and section) without their text.
    assert "card-declined.md" not in sources and len(sources) == len(set(sources)) >= 2
    assert "travel-notices.md" in sources
    assert all(set(entry) <= {"source", "title", "section"} and entry["title"] for entry in related)


async def test_a_handoff_to_the_ai_gives_it_the_floor_and_it_picks_up_the_case(desks: MakeDesk) -> None:
    llm = scripted("I can see the hold on your card ending 4242.")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts(), floor="bot")
    await desk.conductor.execute("bank", iid, [cmd.RequestHandoff({"kind": "ai"}, "agentic work")], SETUP)
    state = await desk.conductor.load(iid)
    assert state.handoff is not None
    await desk.conductor.execute("bank", iid, takeover(state.handoff.handoff_id, desk.clock.now()), SETUP)
    resumed = await desk.conductor.process(iid)
    assert resumed is not None and replies(resumed)[0].startswith("Thanks for waiting Maria")
    state = await desk.conductor.load(iid)
    assert state.floor.kind == "ai" and state.handoff is None
    assert state.handoffs[-1]["status"] == "completed"
    result = await desk.say("bank", iid, "what's going on with my card?")
    assert replies(result) == ["I can see the hold on your card ending 4242."]


async def test_a_supervisors_whisper_to_the_ai_is_in_its_case_file_and_needs_no_reply(desks: MakeDesk) -> None:
    llm = scripted("Sure.")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001")
    whisper = await desk.conductor.handle(
        Input("bank", iid, ev.WHISPER_SENT, {"to": "ai", "text": "offer a callback"}, Actor("supervisor", "sup_1"))
    )
    assert whisper.replies == [] and llm.requests == []
    await desk.say("bank", iid, "ok")
    assert '"offer a callback"' in system_text(llm)


def test_a_tenant_can_put_the_ai_on_the_floor_first() -> None:
    bank = World.load().tenant("bank")
    assert first_floor(bank) == "bot"
    assert first_floor(dataclasses.replace(bank, settings={**bank.settings, "ai_first": True})) == "ai"


async def test_a_deployment_gets_an_ai_only_when_a_model_is_configured() -> None:
    world = World.load()
    assert ai_from_env(world, {}) == {}
    for spec in ("openai:gpt-test", "anthropic:claude-test"):
        made = ai_from_env(world, {"TANDEM_LLM": spec, "TANDEM_LLM_BASE_URL": "http://127.0.0.1:9"})
        ai = made["ai"]
        assert isinstance(ai, AIParticipant) and ai.model == spec.split(":")[1] and ai.kind == "ai"
        await ai.llm.aclose()  # type: ignore[attr-defined]
    for bad in ("gpt-test", "other:model"):
        with pytest.raises(ValueError, match="TANDEM_LLM"):
            llm_from_env({"TANDEM_LLM": bad})


async def test_when_an_action_ends_the_ai_tells_the_customer_in_its_own_words(desks: MakeDesk) -> None:
    llm = scripted(tool_call("propose_action", tool="release_fraud_hold", args=MARIA_HOLD, reason="x"), "ok")
    desk = desks(llm)
    iid = await desk.start("bank", "C-1001", facts=maria_facts())
    await desk.say("bank", iid, "release my card please")
    state = await desk.conductor.load(iid)
    action_id = next(iter(state.actions))

    async def told(type_: str, **data: Any) -> list[str]:
        now = desk.clock.now()
        event = Event(
            "evt_x", "bank", iid, state.version + 1, 0, type_, 1, now, now, Actor("system", "actions"), None, None,
            None, state.floor.epoch, {"action_id": action_id, **data},
        )  # fmt: skip
        return [c.text for c in await desk.ai.decide(state, Turn(now, event)) if isinstance(c, cmd.Say)]

    assert await told(ev.ACTION_SUCCEEDED) == ["Good news: your request (release fraud hold) has gone through."]
    assert "didn't go through" in (await told(ev.ACTION_FAILED, error="declined"))[0]
    assert "still confirming" in (await told(ev.ACTION_OUTCOME_UNKNOWN))[0]
    assert "wasn't approved in time" in (await told(ev.ACTION_REJECTED, by="system", expired=True))[0]
    assert "couldn't approve it" in (await told(ev.ACTION_REJECTED, by="ag_1"))[0]
    assert await told(ev.ACTION_APPROVED, by="ag_1") == []
