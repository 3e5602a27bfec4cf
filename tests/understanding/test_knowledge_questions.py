"""The questions the knowledge benchmark derives from a tau2 task: from the task and the bank's records only,
never from the documents to be found nor from the answers the task expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import document, knowledge
from bench.knowledge import Question, derived_questions, halves

TASK: dict[str, Any] = {
    "id": "task_x",
    "user_scenario": {
        "instructions": (
            "**Your situation:** You hold a Business Silver Rewards Card and want to close it.\n\n"
            '1. **Opening:** "Hi, I would like to close my business credit card please."\n'
            '2. **If asked why:** "I found a card with better travel rewards somewhere else."\n'
            "You are playing the role of the customer. Never respond as a customer service representative."
        )
    },
    "evaluation_criteria": {
        "actions": [
            {"name": "log_verification", "arguments": {"user_id": "u1", "name": "Ann"}},
            {"name": "unlock_discoverable_agent_tool", "arguments": {"agent_tool_name": "apply_statement_credit_8472"}},
            {
                "name": "call_discoverable_agent_tool",
                "arguments": {"agent_tool_name": "apply_statement_credit_8472", "arguments": '{"amount": 20}'},
            },
            {"name": "apply_for_credit_card", "arguments": {"card_type": "Gold Rewards Card"}},
        ]
    },
}
DB = {
    "accounts": {"data": {"a1": {"user_id": "u1", "level": "Green Account"}, "a2": {"user_id": "u2", "level": "X"}}},
    "credit_card_accounts": {"data": [{"user_id": "u1", "card_type": "Business Silver Rewards Card"}]},
}


def test_questions_are_quoted_lines_named_and_held_products_and_procedures_each_asked_once() -> None:
    questions = derived_questions(TASK, DB)
    assert questions == [
        Question("Hi, I would like to close my business credit card please.", "customer"),
        Question("I found a card with better travel rewards somewhere else.", "customer"),
        Question("Business Silver Rewards Card", "customer"),
        Question("Green Account", "agent"),
        Question("log verification", "agent"),
        Question("apply statement credit", "agent"),
        Question("apply for credit card", "agent"),
    ]


def test_the_expected_answers_never_leak_into_the_questions() -> None:
    text = " ".join(q.text for q in derived_questions(TASK, DB))
    assert "Gold Rewards Card" not in text  # the card the task expects to be applied for
    assert "8472" not in text and "20" not in text  # a tool's exact id, an argument's value
    assert "playing the role" not in text


def test_a_scenario_without_quoted_lines_asks_its_paragraphs_without_the_role_play_boilerplate() -> None:
    task = {
        "id": "t",
        "user_scenario": {
            "instructions": "You want a card with no annual fee.\n\nYou are playing the role of a customer."
        },
        "evaluation_criteria": {"actions": []},
    }
    assert derived_questions(task, {}) == [Question("You want a card with no annual fee.", "customer")]


def test_tasks_are_split_alternately_in_id_order_into_tuning_and_reporting_halves() -> None:
    tasks = [{"id": f"task_{i:03d}"} for i in (4, 1, 3, 2, 5)]
    tune, report = halves(tasks)
    assert [t["id"] for t in tune] == ["task_001", "task_003", "task_005"]
    assert [t["id"] for t in report] == ["task_002", "task_004"]


def test_a_short_quote_does_not_pair_its_closing_mark_with_the_next_quotes_opening_one() -> None:
    instructions = (
        'You run a landscaping company called "Green Spaces" and want a new truck.\n\n'
        '1. **Start naturally:** "Hi, I want a business credit card with the best return on a truck."'
    )
    task = {"id": "t", "user_scenario": {"instructions": instructions}, "evaluation_criteria": {"actions": []}}
    assert derived_questions(task, {}) == [
        Question("Hi, I want a business credit card with the best return on a truck.", "customer")
    ]


def test_the_knowledge_part_of_the_understanding_section_is_replaced_and_the_rest_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\n## Understanding\n\nIntent figures.\n\nKnowledge answers (old run): old figures.\n\n"
        "| old | table |\n\n## Core\n\nCore figures.\n"
    )
    monkeypatch.setattr(document, "DOC", doc)
    monkeypatch.setattr(knowledge, "knowledge_lines", lambda results: ["Knowledge answers (new run): new."])
    knowledge.write_doc({})
    assert doc.read_text() == (
        "# Benchmarks\n\n## Understanding\n\nIntent figures.\n\nKnowledge answers (new run): new.\n\n"
        "## Core\n\nCore figures.\n"
    )
    knowledge.write_doc({})  # a second run changes nothing more
    assert doc.read_text().count("Knowledge answers (") == 1


def test_a_document_without_the_section_gets_it_with_the_knowledge_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Core\n\nCore figures.\n")
    monkeypatch.setattr(document, "DOC", doc)
    monkeypatch.setattr(knowledge, "knowledge_lines", lambda results: ["Knowledge answers (new run): new."])
    knowledge.write_doc({})
    assert doc.read_text().endswith("## Understanding\n\nKnowledge answers (new run): new.\n")
    assert "## Core\n\nCore figures.\n" in doc.read_text()
