"""A deployment's model: one client for every duty it serves, closed with the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.participants.ai import AIParticipant
from tandem.participants.flow_planner import FlowPlanner
from tandem.runtime import build_runtime
from tandem.world.world import World


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_every_duty_of_the_configured_model_shares_one_client_and_closing_the_runtime_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("TANDEM_LLM", f"{provider}:house-model")
    monkeypatch.setenv("TANDEM_LLM_BASE_URL", "http://127.0.0.1:9")  # never called here
    monkeypatch.setenv("TANDEM_LLM_API_KEY", "k")
    monkeypatch.setenv("TANDEM_LLM_PHRASING", "on")
    runtime = await build_runtime(tmp_path, World.load(), admin_token="t")
    model = runtime.llm
    try:
        bot, ai = runtime.conductor.participants["bot"], runtime.conductor.participants["ai"]
        assert isinstance(bot, FlowPlanner) and isinstance(ai, AIParticipant)
        assert bot.phrasing is not None and runtime.summaries is not None
        assert model is not None and model.model == "house-model"
        users = [bot.llm, ai.llm, ai.planner.llm, bot.phrasing.llm, runtime.summaries.summarizer.llm]
        assert all(llm is model for llm in users)
        assert not model._client.is_closed  # type: ignore[attr-defined]
    finally:
        await runtime.aclose()
    assert model._client.is_closed  # type: ignore[attr-defined]


async def test_without_a_configured_model_the_runtime_holds_no_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TANDEM_LLM", raising=False)
    runtime = await build_runtime(tmp_path, World.load(), admin_token="t")
    try:
        assert runtime.llm is None and "ai" not in runtime.conductor.participants
    finally:
        await runtime.aclose()
