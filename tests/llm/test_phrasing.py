"""Reply phrasing: the bot's decided lines in a model's words only when the words keep every fact, within a short
bound, and only when a deployment turns it on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.clock import ManualClock
from tandem.conductor import Conductor, Input
from tandem.llm.protocol import Completion, LLMUnavailable
from tandem.llm.scripted import PHRASING_HEADER, Request, ScriptedFlowLLM, ScriptedLLM
from tandem.participants.bot import SelfServiceBot
from tandem.participants.phrasing import PROMPT_VERSION, Phrasing, Reworded, phrasing_from_env, rejection
from tandem.runtime import build_runtime
from tandem.store.sqlite import SqliteStore
from tandem.understanding.rules import RuleUnderstander
from tandem.world.world import World

MARIA = ["My card was declined in Lisbon", "415 555 0134", "March 14, 1985", "94110"]
DECLINE = (
    "I found it: your card was declined on 2026-12-03 at Tasca do Chico, Lisbon for $86.40 because of a fraud hold."
)


def template_of(request: Request) -> str:
    text: str = json.loads(request.messages[-1].content.split(PHRASING_HEADER, 1)[1])["text"]
    return text


def warmer(request: Request) -> str:
    """A model that keeps the facts: it only adds a friendly opening."""
    return f"Thanks for bearing with me! {template_of(request)}"


def inventive(request: Request) -> str:
    """A model that adds a fact: a refund amount nobody decided."""
    return f"{template_of(request)} We'll also refund you $25.00."


class StallingLLM:
    """A model that never answers (until cancelled)."""

    model = "stalling-model"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(
        self, messages: Any, *, tools: Any = (), max_tokens: int = 1024, temperature: float | None = None
    ) -> Completion:
        self.calls += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def stream(
        self, messages: Any, *, tools: Any = (), max_tokens: int = 1024, temperature: float | None = None
    ) -> Any:
        raise NotImplementedError


@pytest.fixture
def world() -> World:
    return World.load()


def conductor_with(store: SqliteStore, clock: ManualClock, world: World, activator: Activator,
                   phrasing: Phrasing | None) -> Conductor:  # fmt: skip
    bot = SelfServiceBot(world, activator=activator, phrasing=phrasing)
    return Conductor(store, {"bot": bot}, clock=clock, understander=RuleUnderstander({t.id: t.kind for t in world}))


async def conversation(conductor: Conductor, lines: list[str]) -> tuple[str, list[str]]:
    state, _ = await conductor.start("bank", "anon-1", "chat")
    replies: list[str] = []
    for line in lines:
        result = await conductor.handle(
            Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": line}, Actor("customer"))
        )
        replies += [e.data["text"] for e in result.replies]
    return state.interaction_id, replies


# -- the guard -------------------------------------------------------------------------------------------------


def test_a_rewording_that_keeps_every_fact_passes_the_guard() -> None:
    assert rejection(DECLINE, f"Thanks for waiting. {DECLINE.replace('I found it: your', 'Your')}") is None
    reordered = "Your card was declined at Tasca do Chico, Lisbon on 2026-12-03 for $86.40, due to a fraud hold."
    assert rejection(DECLINE, reordered) is None
    assert rejection("You won't be charged.", "You will not be charged.") is None


@pytest.mark.parametrize(
    ("worded", "why"),
    [
        ("Your card was declined at Tasca do Chico, Lisbon for $86.40 due to a fraud hold.", "missing ['2026-12-03']"),
        (DECLINE.replace("$86.40", "$68.40"), "added ['68.40']"),
        (DECLINE + " Call us at 555 0100.", "added ['0100', '555']"),
        (DECLINE.replace("was declined", "was not declined"), "negation"),
        ("", "empty"),
        (DECLINE + " " + DECLINE, "much longer"),
    ],
)
def test_a_rewording_that_changes_drops_or_adds_a_fact_is_rejected(worded: str, why: str) -> None:
    reason = rejection(DECLINE, worded)
    assert reason is not None and why in reason


def test_the_card_ending_and_dates_in_words_are_facts_too() -> None:
    template = "Your replacement card ending 4242 arrives December 10, 2026."
    assert rejection(template, "Your new card ending 4242 will arrive on December 10, 2026.") is None
    assert rejection(template, "Your new card ending 4242 will arrive on December 12, 2026.") is not None
    assert rejection(template, "Your new card ending 4242 will arrive on November 10, 2026.") is not None


# -- in the bot's turns -----------------------------------------------------------------------------------------


async def test_the_bot_says_the_models_words_when_they_keep_the_facts(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    llm = ScriptedLLM([warmer] * 20, model="phrasing-model")
    conductor = conductor_with(sqlite_store, clock, world, example_activator, Phrasing(llm, timeout_s=5.0))
    _, replies = await conversation(conductor, MARIA)
    assert f"Thanks for bearing with me! {DECLINE}" in replies
    # The model saw the bot's lines and the tone, never the customer's words.
    sent = "\n".join(m.content for r in llm.requests for m in r.messages)
    for line in MARIA:
        assert line not in sent


async def test_the_bot_says_its_template_when_the_model_adds_a_fact(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    llm = ScriptedLLM([inventive] * 20, model="phrasing-model")
    conductor = conductor_with(sqlite_store, clock, world, example_activator, Phrasing(llm, timeout_s=5.0))
    iid, replies = await conversation(conductor, MARIA)
    assert DECLINE in replies and not any("$25.00" in r for r in replies)
    said = [e for e in await sqlite_store.read(iid) if e.type == ev.REPLY_SENT]
    assert all(e.actor.model == SelfServiceBot.model for e in said)


async def test_a_model_that_fails_or_stalls_leaves_the_templates_within_the_bound(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    stalling = StallingLLM()
    conductor = conductor_with(sqlite_store, clock, world, example_activator, Phrasing(stalling, timeout_s=0.05))
    async with asyncio.timeout(10):
        _, replies = await conversation(conductor, MARIA)
    assert DECLINE in replies and stalling.calls > 0
    failing = ScriptedLLM([LLMUnavailable("down")] * 20)
    conductor = conductor_with(sqlite_store, clock, world, example_activator, Phrasing(failing, timeout_s=5.0))
    _, replies = await conversation(conductor, MARIA)
    assert DECLINE in replies


async def test_a_reworded_line_carries_the_phrasing_model_and_prompt_version() -> None:
    phrasing = Phrasing(ScriptedLLM([warmer], model="phrasing-model"), timeout_s=5.0)
    ask = cmd.Ask("zip", "What's your ZIP code?", epoch=3)
    out = await phrasing.reword([cmd.Say("Hi Maria.", epoch=3), ask], "Harbor Bank", None)
    expected = Reworded("Thanks for bearing with me! Hi Maria.", epoch=3, model="phrasing-model",
                        prompt_version=PROMPT_VERSION)  # fmt: skip
    # Questions keep their reviewed words.
    assert out == [expected, ask]


async def test_the_event_of_a_reworded_line_names_the_phrasing_model_in_its_actor(
    world: World, clock: ManualClock, sqlite_store: SqliteStore
) -> None:
    llm = ScriptedLLM([warmer], model="phrasing-model")
    conductor = Conductor(sqlite_store, {"bot": SelfServiceBot(world, phrasing=Phrasing(llm))}, clock=clock)
    _, result = await conductor.start("bank", "C-1001", "chat")
    (greeting,) = result.replies
    assert greeting.data["text"].startswith("Thanks for bearing with me! Hi Maria")
    assert greeting.actor == Actor("bot", "bot", "phrasing-model", PROMPT_VERSION)


async def test_the_shipped_scripted_model_rewords_without_changing_a_fact(
    sqlite_store: SqliteStore, clock: ManualClock, world: World, example_activator: Activator
) -> None:
    conductor = conductor_with(sqlite_store, clock, world, example_activator, Phrasing(ScriptedFlowLLM()))
    _, replies = await conversation(conductor, MARIA)
    assert DECLINE in replies  # nothing to spell out in it
    assert "I am connecting you with a person now." in " ".join(replies)
    upset = await Phrasing(ScriptedFlowLLM()).reword([cmd.Say("I'm sorry, that didn't work.")], "Harbor Bank", "angry")
    assert isinstance(upset[0], Reworded)
    assert upset[0].text == "I am sorry for the trouble. I am sorry, that didn't work."


# -- turning it on ----------------------------------------------------------------------------------------------


def test_phrasing_is_off_unless_a_deployment_turns_it_on_and_names_a_model() -> None:
    assert phrasing_from_env({}) is None
    assert phrasing_from_env({"TANDEM_LLM": "openai:gpt-4o-mini", "TANDEM_LLM_API_KEY": "x"}) is None
    assert phrasing_from_env({"TANDEM_LLM_PHRASING": "1"}) is None
    on = phrasing_from_env({"TANDEM_LLM": "scripted:flows", "TANDEM_LLM_PHRASING": "1"})
    assert on is not None and on.timeout_s == 0.8
    slow = phrasing_from_env(
        {"TANDEM_LLM": "scripted:flows", "TANDEM_LLM_PHRASING": "on", "TANDEM_PHRASING_TIMEOUT_S": "0.3"}
    )
    assert slow is not None and slow.timeout_s == 0.3


async def test_a_runtime_built_from_the_environment_says_templates_by_default(
    tmp_path: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANDEM_LLM_PHRASING", raising=False)
    runtime = await build_runtime(tmp_path, world, admin_token="t")
    try:
        bot = runtime.conductor.participants["bot"]
        assert isinstance(bot, SelfServiceBot) and bot.phrasing is None
    finally:
        await runtime.aclose()
