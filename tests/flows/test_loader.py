"""Loading flows fails closed, and every problem names its file, line and column, and how to fix it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tandem.release.flows import FlowError, load_flows, load_tenant_flows
from tandem.release.flows_cli import flows_app
from tandem.world.world import EXAMPLES_DIR

GOOD = """\
flow: balance
intents: [balance]
queue: accounts
steps:
  - verify: knowledge_verified
  - fetch: balance
  - id: tell
    say: You have {balance|money}.
"""


def _tenant(tmp_path: Path, files: dict[str, str]) -> Path:
    """A bank tenant folder with its real signals and policy, and the given flow files."""
    tenant = tmp_path / "bank"
    (tenant / "flows").mkdir(parents=True, exist_ok=True)
    for name in ("signals.yaml", "policy.yaml", "world.yaml"):
        shutil.copy(EXAMPLES_DIR / "bank" / name, tenant / name)
    for name, text in files.items():
        (tenant / "flows" / name).write_text(text)
    return tenant / "flows"


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flows(_tenant(tmp_path, {"bad.yaml": text}), "bank")
    return caught.value.problems


def test_the_shipped_flows_load_and_serve_every_reference_intent() -> None:
    books = load_tenant_flows()
    assert books["bank"].intents == {
        "balance", "card_declined", "fraud_hold", "lost_card", "dispute_charge", "travel_notice", "reset_pin"
    }  # fmt: skip
    assert books["health"].intents == {"explain_bill", "eligibility", "claim_status", "payment_plan", "reschedule"}


def test_a_good_flow_loads_with_its_steps_in_order(tmp_path: Path) -> None:
    book = load_flows(_tenant(tmp_path, {"balance.yaml": GOOD}), "bank")
    flow = book.for_intent("balance")
    assert flow is not None and [s.kind for s in flow.steps] == ["verify", "fetch", "say"]
    assert flow.index("tell") == 2


def test_an_unknown_step_kind_is_named_with_its_line_and_the_kinds_there_are(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("  - fetch: balance", "  - fecth: balance"))
    assert problem.endswith("unknown step kind 'fecth'; use one of ask, verify, fetch, say, branch, propose, "
                            "answer, handoff, goto")  # fmt: skip
    assert ":6:5:" in problem and "bad.yaml" in problem


def test_a_goto_to_a_missing_step_lists_the_step_ids_there_are(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "  - goto: tel\n")
    assert ":9:11:" in problem and "goto tel: no top-level step has that id; ids: tell" in problem


def test_an_unknown_tool_lists_the_tools_the_policy_declares(tmp_path: Path) -> None:
    text = GOOD + (
        "  - propose: {tool: freeze_card, args: {card: '{subject.card_hold|id}'}, why: lost}\n"
        "    on_allow: [{say: Blocked.}]\n"
        "    on_deny: [{handoff: {reason: block it}}]\n"
    )
    (problem,) = _problems(tmp_path, text)
    assert ":9:21:" in problem and "unknown tool freeze_card; policy.yaml declares" in problem
    assert "release_fraud_hold" in problem


def test_a_condition_that_is_not_cel_is_refused_at_its_line(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "    when: balance.amount_minor >> 3\n")
    assert ":9:11:" in problem and "not valid CEL" in problem


def test_a_condition_reading_an_unknown_fact_names_it(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + '    when: "balanse.amount_minor > 0"\n')
    assert ":9:11:" in problem and "unknown fact balanse" in problem


def test_a_template_naming_an_unknown_fact_or_filter_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, GOOD.replace("{balance|money}", "{balanse|money} {balance|euros}"))
    assert len(problems) == 1 and ":8:10:" in problems[0] and "unknown filter euros" in problems[0]
    (problem,) = _problems(tmp_path, GOOD.replace("{balance|money}", "{balanse|money}"))
    assert "unknown fact balanse" in problem


def test_schema_errors_point_at_the_value_and_say_what_is_wrong(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, GOOD.replace("knowledge_verified", "superuser").replace("queue: accounts", "queue: 7")
    )
    assert any(":3:8:" in p and "7 is not of type 'string'" in p for p in problems)
    assert any(":5:13:" in p and "'superuser' is not one of" in p for p in problems)


def test_an_option_on_the_wrong_kind_of_step_says_which_options_it_takes(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "    choose_from: balance\n")
    assert ":9:18:" in problem and "choose_from does not belong to a say step; it takes" in problem


def test_an_ask_without_its_question_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "  - ask: travel_dates\n")
    assert ":9:5:" in problem and "'text' is a dependency of 'ask'" in problem


def test_a_file_that_is_not_yaml_reports_where_it_broke(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "  - say: [unclosed\n")
    assert "bad.yaml:10:1: not valid YAML" in problem


def test_one_bad_file_means_the_folder_does_not_load(tmp_path: Path) -> None:
    folder = _tenant(tmp_path, {"balance.yaml": GOOD, "lost.yaml": GOOD.replace("balance", "lost_card", 2)})
    (folder / "worse.yaml").write_text(GOOD.replace("flow: balance", "flow: Balance!"))
    with pytest.raises(FlowError) as caught:
        load_flows(folder, "bank")
    assert any("worse.yaml:1:7:" in p and "is not a name" in p for p in caught.value.problems)


def test_two_flows_serving_one_intent_are_refused(tmp_path: Path) -> None:
    folder = _tenant(tmp_path, {"a.yaml": GOOD, "b.yaml": GOOD.replace("flow: balance", "flow: balance_again")})
    with pytest.raises(FlowError, match="intent balance is served by flow balance already"):
        load_flows(folder, "bank")


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(flows_app, name="flows")

    @app.callback()
    def _root() -> None:
        """The top level, as tandem's."""

    return app


def test_flows_check_passes_the_shipped_examples() -> None:
    result = CliRunner().invoke(_cli(), ["flows", "check", str(EXAMPLES_DIR)])
    assert result.exit_code == 0, result.output
    assert "6 flows" in result.output and "5 flows" in result.output


def test_flows_check_fails_listing_each_problem_with_its_line(tmp_path: Path) -> None:
    folder = _tenant(tmp_path, {"bad.yaml": GOOD + "  - goto: nowhere\n  - sya: hi\n"})
    result = CliRunner(env={"COLUMNS": "300"}).invoke(_cli(), ["flows", "check", str(folder)])
    assert result.exit_code == 1
    assert "bad.yaml:10:5: unknown step kind 'sya'" in result.output
