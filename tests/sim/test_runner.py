"""The runner over the real HTTP API: both transports agree, and a failed expectation fails the command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tandem.sim import casefile
from tandem.sim.cli import app
from tandem.sim.evaluation import Evaluation, evaluate
from tandem.sim.metrics import Rates
from tandem.sim.scenario import load_scenarios
from tandem.sim.transport import Transport, open_deployment
from tandem.world.world import EXAMPLES_DIR, World

SCENARIOS = [
    EXAMPLES_DIR / "bank" / "scenarios" / "maria_card_declined.yaml",
    EXAMPLES_DIR / "healthcare" / "scenarios" / "aisha_returns_by_phone.yaml",
]


async def run(transport: Transport, paths: list[Path], jobs: int = 1) -> Evaluation:
    world = World.load()
    scenarios = load_scenarios(paths, [t.id for t in world])
    async with open_deployment(transport, world) as deployment:
        return await evaluate(
            scenarios, deployment, Rates(), {t.id: t.kind for t in world}, transport=transport, jobs=jobs
        )


def comparable(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Everything a run reports except the ids the server chose."""
    out = []
    for outcome in evaluation.outcomes:
        for result in (outcome.tandem, outcome.siloed):
            assert result is not None
            out.append(
                {
                    "metrics": result.metrics.to_dict(),
                    "transcript": [line.to_dict() for line in result.transcript],
                    "repeats": [(r.counter, r.fact, r.by) for r in result.repeats],
                    "handoff_facts": result.handoff_facts,
                    "failures": outcome.failures,
                    # Every fact's name and source; values only of the signals' facts: an action's result
                    # carries ids the example system chose.
                    "facts": sorted((f.name, f.source) for f in result.facts),
                    "signal_facts": sorted((f.label, repr(f.value)) for f in casefile.from_signals(result.facts)),
                    "actions": [(a.tool, a.status, a.approved_by, a.effects) for a in result.actions],
                    "effects": [(e.tool, e.status) for e in result.effects or []],
                }
            )
    return out


@pytest.mark.slow
async def test_in_process_and_over_a_socket_the_same_journeys_give_the_same_results() -> None:
    # Journeys at once in process, one by one over HTTP: each journey's deployment is its own, so neither
    # the transport nor the concurrency changes a figure.
    in_process = await run("inprocess", SCENARIOS, jobs=4)
    over_http = await run("http", SCENARIOS)
    assert in_process.passed, [o.failures for o in in_process.outcomes]
    assert comparable(in_process) == comparable(over_http)
    tandem, siloed = in_process.totals("tandem"), in_process.totals("siloed")
    assert tandem.repeats_events == tandem.repeats_text == 0
    assert siloed.repeats_events > 0 and siloed.repeats_text > 0
    assert tandem.cost < siloed.cost and tandem.turns < siloed.turns


def test_a_failed_expectation_makes_the_command_exit_non_zero(tmp_path: Path) -> None:
    scenario = (EXAMPLES_DIR / "bank" / "scenarios" / "maria_balance.yaml").read_text()
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(scenario.replace("contained: true", "contained: false"))
    result = CliRunner().invoke(app, [str(wrong), "--report", str(tmp_path / "report"), "--no-siloed"])
    assert result.exit_code == 1, result.output
    assert "contained: expected False, got True" in result.output
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Failed expectations" in report and "contained: expected False, got True" in report
    assert (tmp_path / "report" / "summary.json").is_file() and (tmp_path / "report" / "handle_time.png").is_file()


def test_a_scenario_that_meets_its_expectations_exits_zero_and_writes_the_charts(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [str(SCENARIOS[0]), "--report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "report.md", "summary.json", "totals.png", "repeats.png", "handle_time.png"
    }  # fmt: skip


def test_an_invalid_scenario_file_exits_2_with_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntitle: t\ntenant: bank\npersona:\n  name: M\n  legs: []\n")
    result = CliRunner().invoke(app, [str(broken), "--report", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert f"{broken}:6: persona.legs: List should have at least 1 item" in result.output


@pytest.mark.parametrize(
    ("option", "named"), [([], "understanding: the trained intent models"), (["--understanding", "rules"], "keyword")]
)
def test_journeys_are_understood_as_the_demo_understands_them_unless_told_otherwise_and_the_report_says_which(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: list[str], named: str
) -> None:
    # The default is the demo's understanding: models trained from the tenants' examples (cached here).
    monkeypatch.setenv("TANDEM_CACHE_DIR", str(tmp_path / "cache"))
    scenario = EXAMPLES_DIR / "healthcare" / "scenarios" / "out_of_scope_then_bill.yaml"
    result = CliRunner().invoke(app, [str(scenario), "--report", str(tmp_path / "r"), "--no-siloed", *option])
    assert result.exit_code == 0, result.output
    assert named in (tmp_path / "r" / "report.md").read_text()
    trained = list((tmp_path / "cache").glob("nlu/*.pkl"))
    assert bool(trained) == (not option), trained
