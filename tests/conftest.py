from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from tandem import commands as cmd
from tandem.case import events as ev
from tandem.case.interaction import Interaction
from tandem.clock import ManualClock
from tandem.participants.protocol import Turn
from tandem.store.sqlite import SqliteStore


class EchoBot:
    """Answers every customer line with its echo; greets a new leg."""

    kind = "bot"

    async def decide(self, case: Interaction, turn: Turn) -> Sequence[cmd.Command]:
        if turn.input.type == ev.LEG_OPENED:
            return [cmd.Say("hello", epoch=case.floor.epoch)]
        if turn.input.type == ev.CUSTOMER_SAID:
            return [cmd.Say(f"you said: {turn.input.data.get('text')}", epoch=case.floor.epoch)]
        return []


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "tandem.db")
    yield store
    await store.close()


@pytest.fixture(autouse=True)
def _no_real_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real model by accident: the LLM settings of the environment are dropped."""
    for name in ("TANDEM_LLM", "TANDEM_LLM_BASE_URL", "TANDEM_LLM_API_KEY", "TANDEM_LLM_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
