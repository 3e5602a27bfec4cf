"""Entities measured by F1 on labelled sets: one the extractor was developed against, and a hold-out written
afterwards and not used to change it."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tandem.understanding.entities import extract

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 3, 10, 0)  # a Thursday: the demo world's business date
F1_FLOOR = {"entities.jsonl": 0.95, "entities_holdout.jsonl": 0.9}


def pairs(found: dict[str, Any]) -> set[tuple[str, Any]]:
    return {(k, v["amount_minor"] if k == "amount" else v) for k, v in found.items() if k != "dates"}


@pytest.mark.parametrize("name", sorted(F1_FLOOR))
def test_entities_are_extracted_with_f1_above_the_floor(name: str) -> None:
    tp = fp = fn = 0
    misses = []
    for line in (DATA / name).read_text().splitlines():
        example = json.loads(line)
        got = pairs(extract(example["text"], NOW))
        expected = set(example["entities"].items())
        tp += len(got & expected)
        fp += len(got - expected)
        fn += len(expected - got)
        if got != expected:
            misses.append((example["text"], expected - got, got - expected))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= F1_FLOOR[name], misses


def test_relative_dates_are_read_against_the_interactions_clock_not_the_machines() -> None:
    assert extract("it was declined yesterday", datetime(2025, 1, 1, 9))["date"] == "2024-12-31"
    assert extract("two days ago", NOW)["date"] == "2026-12-01"
    assert extract("the charge was on friday", NOW)["date"] == "2026-11-27"
    assert extract("can we do it on friday", NOW)["date"] == "2026-12-04"
    assert extract("in 3 weeks", NOW)["date"] == "2026-12-24"
    assert extract("my visit on January 5", NOW)["date"] == "2027-01-05"  # the nearest January 5


def test_a_full_card_number_is_never_an_entity_only_its_last_four() -> None:
    found = extract("card 4242 4242 4242 4242, phone 415 555 0134", NOW)
    assert found["card_last4"] == "4242"
    assert found["phone"] == "+14155550134"
    assert all("4242 4242" not in str(v) for v in found.values())
