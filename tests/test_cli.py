from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.cli import app
from tandem.conductor import Conductor, Input
from tandem.store.codec import ERASED
from tandem.store.sqlite import SqliteStore
from tests.conftest import EchoBot

runner = CliRunner()


def _seed(data_dir: Path) -> str:
    async def run() -> str:
        store = SqliteStore(data_dir / "tandem.db")
        conductor = Conductor(store, {"bot": EchoBot()})
        state, _ = await conductor.start("bank", "C-1001", "chat")
        await conductor.handle(
            Input("bank", state.interaction_id, ev.CUSTOMER_SAID, {"text": "my DOB is 1985-03-14"}, Actor("customer"))
        )
        await store.close()
        return state.interaction_id

    return asyncio.run(run())


def test_events_prints_who_said_what_and_why(tmp_path: Path) -> None:
    interaction_id = _seed(tmp_path)
    result = runner.invoke(app, ["events", interaction_id, "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "CustomerSaid" in result.output and "my DOB is 1985-03-14" in result.output
    assert "#5" in result.output  # the reply names the customer line that caused it


def test_events_of_an_unknown_interaction_says_so_and_fails(tmp_path: Path) -> None:
    _seed(tmp_path)
    result = runner.invoke(app, ["events", "int_nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "No interaction int_nope" in result.output


def test_erasing_a_customer_makes_their_words_unreadable_but_keeps_the_log(tmp_path: Path) -> None:
    interaction_id = _seed(tmp_path)
    result = runner.invoke(app, ["customers", "erase", "C-1001", "--tenant", "bank", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output

    async def read() -> list[tuple[int, str, object]]:
        store = SqliteStore(tmp_path / "tandem.db")
        events = await store.read(interaction_id)
        await store.close()
        return [(e.seq, e.type, e.data.get("text")) for e in events]

    timeline = asyncio.run(read())
    assert [seq for seq, _, _ in timeline] == list(range(1, len(timeline) + 1))
    said = [text for _, kind, text in timeline if kind in (ev.CUSTOMER_SAID, ev.REPLY_SENT)]
    assert said and all(text == ERASED for text in said)
    again = runner.invoke(app, ["customers", "erase", "C-1001", "--tenant", "bank", "--data-dir", str(tmp_path)])
    assert again.exit_code == 1 and "nothing to erase" in again.output


def test_the_console_demo_plays_both_reference_journeys_without_a_repeat(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--console", "--data-dir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Tasca do Chico, Lisbon" in result.output and "CLM-7781" in result.output
    assert result.output.count("questions asked twice: 0") == 2
