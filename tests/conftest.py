from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from tandem import commands as cmd
from tandem.activation.activator import Activator
from tandem.activation.lakehouse import generate
from tandem.case import events as ev
from tandem.case.interaction import Interaction
from tandem.clock import Clock, ManualClock
from tandem.participants.protocol import Turn
from tandem.release.signals import load_releases
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


# -- the example lakehouse, for tests that run the self-service flows -------------------------------------
LAKEHOUSE_SEED = 7


@pytest.fixture(scope="session")
def example_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example lakehouse at a tiny scale (the reference customers and a few others), generated once."""
    out = tmp_path_factory.mktemp("example-lakehouse")
    generate(out, scale=0.001, seed=LAKEHOUSE_SEED)
    return out


async def open_example_activator(lakehouse: Path, clock: Clock) -> Activator:
    """An activator over the example lakehouse, reading on ``clock`` (the one the conductor runs on, or the
    facts it fetches go stale at the wrong time). Budgets are generous: tests about conversations must not turn
    into timeouts on a busy machine (budgets have tests of their own)."""
    releases = {
        tenant: replace(release, signals={n: replace(s, budget_ms=10_000) for n, s in release.signals.items()})
        for tenant, release in load_releases().items()
    }
    return await Activator.open(releases, lakehouse, clock=clock)


@pytest.fixture
async def example_activator(example_lakehouse: Path, clock: ManualClock) -> AsyncIterator[Activator]:
    """An activator over the example lakehouse on the test's ``clock``, as the bot's flows fetch through it."""
    opened = await open_example_activator(example_lakehouse, clock)
    yield opened
    await opened.close()
