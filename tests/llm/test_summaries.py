"""Case summaries: written once per handoff request and per close, after the turn, from the scoped and redacted
case file; a model writes them when one is configured, and the offline writer whenever the model is slow, fails
or states something the case file does not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.envelope import Actor, Event
from tandem.case.interaction import Interaction
from tandem.case.summary import Occasion
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.llm.grounding import ungrounded
from tandem.llm.http import Retry
from tandem.llm.openai import OpenAICompatible
from tandem.llm.scripted import SUMMARY_HEADER, ScriptedFlowLLM, ScriptedLLM
from tandem.participants.bot import SelfServiceBot
from tandem.participants.summarizer import (
    CHECKPOINT,
    OFFLINE,
    PROMPT_VERSION,
    Summarizer,
    Summary,
    SummaryReactor,
)
from tandem.release.scopes import parse_scopes
from tandem.runtime import Runtime, build_runtime
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World
from tests.api.conftest import ADMIN_TOKEN, TENANT, WAIT_S, Api, running
from tests.llm.servers import Plan, openai_app, serve

MARIA = ["My card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"]
CARD = "4111 1111 1111 1111"


# -- a conversation that ends in a handoff -------------------------------------------------------------------


@pytest.fixture
def world() -> World:
    return World.load()


@pytest.fixture
def conductor(sqlite_store: SqliteStore, clock: ManualClock, example_activator: Activator, world: World) -> Conductor:
    return Conductor(
        sqlite_store,
        {"bot": SelfServiceBot(world, activator=example_activator)},
        clock=clock,
        understander=RuleUnderstander({t.id: t.kind for t in world}),
    )


async def maria_handed_over(conductor: Conductor) -> str:
    """Maria's declined card: identified, verified, told why, and queued for the fraud team."""
    state, _ = await conductor.start("bank", "anon-1", "chat")
    for line in MARIA:
        await conductor.handle(Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": line}, Actor("customer")))
    assert (await conductor.load(state.interaction_id)).handoff is not None
    return state.interaction_id


async def summaries(conductor: Conductor, interaction_id: str) -> list[Event]:
    return [e for e in await conductor.store.read(interaction_id) if e.type == ev.SUMMARY_WRITTEN]


def model_input(llm: ScriptedLLM) -> str:
    return "\n".join(m.content for r in llm.requests for m in r.messages)


# -- offline -------------------------------------------------------------------------------------------------


async def test_the_offline_summary_says_why_who_what_is_known_and_open_without_identity_answers(
    conductor: Conductor,
) -> None:
    iid = await maria_handed_over(conductor)
    assert await SummaryReactor(conductor, Summarizer()).step() == 1
    (written,) = await summaries(conductor, iid)
    text = written.data["text"]
    assert written.actor == OFFLINE and written.data["occasion"] == "handoff"
    assert written.data["key"] == f"handoff:{written.data['handoff_id']}"
    assert "Maria Lopez (C-1001)" in text and "card declined" in text and "knowledge verified" in text
    # The signal facts, with their sources: the decline, the hold.
    assert "Tasca do Chico, Lisbon" in text and "$86.40" in text and "recent declines signal" in text
    assert "foreign-transaction alert" in text and "card holds signal" in text
    assert "Handed over to the fraud queue" in text and "waiting for the fraud queue" in text
    # Verified, never with what: no date of birth, no ZIP, no phone number.
    for secret in ("1985", "94110", "0134"):
        assert secret not in text
    state = await conductor.load(iid)
    assert state.summary == text


async def test_each_handoff_and_the_close_get_exactly_one_summary_even_with_two_reactors_and_a_restart(
    conductor: Conductor,
) -> None:
    iid = await maria_handed_over(conductor)
    await conductor.execute("bank", iid, [cmd.Close("resolved")], Actor("human", "ag_1"))
    first, second = SummaryReactor(conductor, Summarizer()), SummaryReactor(conductor, Summarizer())
    written = await asyncio.gather(first.step(), second.step())
    assert sum(written) == 2
    # A restart that lost the checkpoint reads the whole log again, and writes nothing new.
    await conductor.store.save_checkpoint(CHECKPOINT, 0)
    assert await SummaryReactor(conductor, Summarizer()).step() == 0
    occasions = [e.data["occasion"] for e in await summaries(conductor, iid)]
    assert occasions == ["handoff", "close"]
    assert "Closed as resolved" in (await conductor.load(iid)).summary


class ChattySummarizer(Summarizer):
    """A writer during whose work the conversation goes on: the customer says something every time it writes."""

    def __init__(self, conductor: Conductor) -> None:
        super().__init__()
        self.conductor = conductor

    async def write(self, state: Interaction, occasion: Occasion, now: datetime, handoff: Any = None) -> Summary:
        line = Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": "are you there?"}, Actor("customer"))
        await self.conductor.handle(line)
        return await super().write(state, occasion, now, handoff)


async def test_a_conversation_that_goes_on_while_the_summary_is_written_does_not_hold_it_up(
    conductor: Conductor,
) -> None:
    iid = await maria_handed_over(conductor)
    assert await SummaryReactor(conductor, ChattySummarizer(conductor)).step() == 1
    events = await conductor.store.read(iid)
    (written,) = [e for e in events if e.type == ev.SUMMARY_WRITTEN]
    assert events[written.seq - 2].type == ev.TURN_COMPLETED  # after the line said while it was being written


# -- with a model ----------------------------------------------------------------------------------------------


async def test_a_grounded_model_summary_is_used_and_names_the_model_and_prompt_version(
    conductor: Conductor,
) -> None:
    iid = await maria_handed_over(conductor)
    words = "Maria's card was declined at Tasca do Chico, Lisbon for $86.40 on December 3 because of a fraud hold."
    llm = ScriptedLLM([words], model="summary-model")
    assert await SummaryReactor(conductor, Summarizer(llm)).step() == 1
    (written,) = await summaries(conductor, iid)
    assert written.data["text"] == words
    assert written.actor == Actor("system", "summarizer", "summary-model", PROMPT_VERSION)
    assert "fallback" not in written.data


async def test_a_model_summary_that_invents_an_amount_is_replaced_by_the_offline_one(
    conductor: Conductor, caplog: pytest.LogCaptureFixture
) -> None:
    iid = await maria_handed_over(conductor)
    llm = ScriptedLLM(["Maria was charged $500.00 at Tasca do Chico, Lisbon; refund her."], model="summary-model")
    await SummaryReactor(conductor, Summarizer(llm)).step()
    (written,) = await summaries(conductor, iid)
    assert written.actor == OFFLINE
    assert "$500" not in written.data["text"] and "$86.40" in written.data["text"]
    assert written.data["fallback"]["status"] == "ungrounded" and "500.00" in written.data["fallback"]["detail"]
    assert "ungrounded" in caplog.text


async def test_an_empty_model_summary_is_replaced_by_the_offline_one(conductor: Conductor) -> None:
    iid = await maria_handed_over(conductor)
    await SummaryReactor(conductor, Summarizer(ScriptedLLM(["   "]))).step()
    (written,) = await summaries(conductor, iid)
    assert written.actor == OFFLINE and written.data["fallback"]["status"] == "empty"


async def test_no_full_card_number_reaches_the_model_or_the_summary_even_when_a_scope_shows_it_whole(
    conductor: Conductor,
) -> None:
    iid = await maria_handed_over(conductor)
    await conductor.execute(
        "bank", iid,
        [cmd.Learn("card_number", CARD.replace(" ", ""), "signal:cards"),
         cmd.Learn("charge", {"merchant": f"paid with {CARD}", "amount": {"amount_minor": 100, "currency": "USD"}},
                   "signal:charges")],
        Actor("system", "activation"),
    )  # fmt: skip
    # A careless scope that shows card numbers whole to everyone: the redaction still holds.
    scopes = {"bank": parse_scopes({p: {"*": "all"} for p in ("human", "ai")})}
    llm = ScriptedLLM(lambda_echo_case_file(), model="echo")
    await SummaryReactor(conductor, Summarizer(llm, scopes=scopes)).step()
    (written,) = await summaries(conductor, iid)
    seen = model_input(llm)
    assert "ending 1111" in seen
    for text in (seen, written.data["text"]):
        assert "4111111111111111" not in text and CARD not in text


def lambda_echo_case_file() -> list[Any]:
    """A model that answers with a sentence quoting the case file it was given."""

    def echo(request: Any) -> str:
        doc = json.loads(request.messages[-1].content.split(SUMMARY_HEADER, 1)[1])
        return "Facts: " + "; ".join(f"{f['fact']} {f['value']}" for f in doc["facts"])

    return [echo]


async def test_a_provider_that_stalls_past_the_timeout_gets_the_offline_summary(conductor: Conductor) -> None:
    iid = await maria_handed_over(conductor)
    plan = Plan(failures=["stall"])
    with serve(openai_app(plan)) as url:
        llm = OpenAICompatible("stalling-model", base_url=f"{url}/v1", timeout_s=5.0, retry=Retry(attempts=1))
        try:
            async with asyncio.timeout(WAIT_S):
                await SummaryReactor(conductor, Summarizer(llm, timeout_s=0.3)).step()
        finally:
            await llm.aclose()
    (written,) = await summaries(conductor, iid)
    assert written.actor == OFFLINE and written.data["fallback"]["status"] == "timeout"
    assert len(plan.requests) == 1


async def test_a_provider_that_keeps_failing_gets_the_offline_summary(conductor: Conductor) -> None:
    iid = await maria_handed_over(conductor)
    plan = Plan(failures=[(503, {}), (503, {})])
    with serve(openai_app(plan)) as url:
        llm = OpenAICompatible(
            "failing-model", base_url=f"{url}/v1", timeout_s=5.0, retry=Retry(attempts=2, base_s=0.01, max_s=0.02)
        )
        try:
            await SummaryReactor(conductor, Summarizer(llm, timeout_s=WAIT_S)).step()
        finally:
            await llm.aclose()
    (written,) = await summaries(conductor, iid)
    assert written.actor == OFFLINE and written.data["fallback"]["status"] == "failed"


async def test_the_shipped_scripted_model_writes_a_grounded_summary_from_the_case_file(conductor: Conductor) -> None:
    iid = await maria_handed_over(conductor)
    llm = ScriptedFlowLLM()
    await SummaryReactor(conductor, Summarizer(llm)).step()
    (written,) = await summaries(conductor, iid)
    assert written.actor.model == "scripted-flows" and "fallback" not in written.data
    assert "Tasca do Chico, Lisbon" in written.data["text"]
    assert ungrounded(written.data["text"], [model_input(llm)]) == []


# -- in the running system -------------------------------------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path, clock: ManualClock, world: World, example_activator: Activator) -> AsyncIterator[Api]:
    runtime = await build_runtime(
        tmp_path, world, clock=clock, participants={"bot": SelfServiceBot(world, activator=example_activator)},
        admin_token=ADMIN_TOKEN,
    )  # fmt: skip
    async with running(runtime, clock) as served:
        yield served


async def written(runtime: Runtime, interaction_id: str, count: int = 1) -> list[Event]:
    """The interaction's summaries once there are ``count`` of them (woken by each commit, bounded)."""
    queue = runtime.bus.subscribe()
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = [e for e in await runtime.store.read(interaction_id) if e.type == ev.SUMMARY_WRITTEN]
                if len(found) >= count:
                    return found
                await queue.get()
    finally:
        runtime.bus.unsubscribe(queue)


async def test_the_summary_of_a_handoff_is_in_the_interaction_and_on_the_agents_handoff_card(api: Api) -> None:
    agent = await api.staff("Cora", skills=("cards", "fraud"))
    chat = await api.chat()
    for line in MARIA:
        r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": line})
        assert r.status_code == 200, r.text
    (summary,) = await written(api.runtime, chat.id)
    view = (await api.call("GET", f"/v1/interactions/{chat.id}", ADMIN_TOKEN)).json()
    assert view["summary"] == summary.data["text"] and "Tasca do Chico, Lisbon" in view["summary"]
    offers = await api.offers(agent)
    (offer,) = [o for o in offers if o["interaction_id"] == chat.id]
    assert offer["card"]["tried"]["summary"] == summary.data["text"]
    # Customers never see it: not in their view of the case, nor among their events.
    mine = (await api.call("GET", f"/v1/interactions/{chat.id}", chat.token)).json()
    assert "summary" not in mine and "Tasca" not in json.dumps(mine.get("handoff"))
    # Closing adds the wrap-up summary, once.
    r = await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})
    assert r.status_code == 200, r.text
    both = await written(api.runtime, chat.id, count=2)
    assert [e.data["occasion"] for e in both] == ["handoff", "close"]
    assert both[0].tenant_id == TENANT
