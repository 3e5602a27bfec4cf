from __future__ import annotations

from pathlib import Path

import pytest

from tandem.release.signals import load_releases
from tandem.sim.scenario import ScenarioError, load_scenarios, parse_scenario
from tandem.world.world import EXAMPLES_DIR, World

VALID = """\
name: tiny
title: A tiny scenario
tenant: bank
persona:
  name: Maria Lopez
  facts: {phone: "+1 415 555 0134"}
  legs:
    - channel: chat
      opening: What's my balance?
"""


def problems_of(text: str, tenants: list[str] | None = None) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, Path("s.yaml"), tenants)
    return caught.value.problems


def test_a_valid_scenario_parses_with_defaults() -> None:
    scenario = parse_scenario(VALID, Path("s.yaml"))
    assert scenario.persona.legs[0].entry == "anonymous"
    assert scenario.expect.max_repeats == 0
    assert scenario.persona.fact_for("customer_name") is None


def test_an_unknown_key_is_reported_at_its_own_line() -> None:
    text = VALID.replace("      opening: What's my balance?\n", "      opening: What's my balance?\n      mood: x\n")
    assert problems_of(text) == ["s.yaml:10: unknown key persona.legs.0.mood"]


def test_a_wrong_value_deep_in_a_list_points_at_that_item() -> None:
    text = VALID + "      lines:\n        - fine\n        - {text: 42, to: robot}\n"
    problems = problems_of(text)
    assert problems == [
        "s.yaml:12: persona.legs.0.lines.1.text: Input should be a valid string",
        "s.yaml:12: persona.legs.0.lines.1.to: Input should be 'bot', 'ai' or 'human'",
    ]


def test_a_missing_field_points_at_the_mapping_that_lacks_it() -> None:
    text = VALID.replace("      opening: What's my balance?\n", "")
    assert problems_of(text) == ["s.yaml:8: persona.legs.0.opening is required"]


def test_a_cross_field_rule_is_reported_with_its_reason() -> None:
    text = VALID.replace("    - channel: chat\n", "    - channel: chat\n      assurance: identified\n")
    (problem,) = problems_of(text)
    assert problem.startswith("s.yaml:8: persona.legs.0: assurance and identify_by need entry: trusted")


def test_an_unknown_fact_names_the_known_ones() -> None:
    text = VALID.replace('{phone: "+1 415 555 0134"}', '{phone: "1", shoe_size: "9"}')
    (problem,) = problems_of(text)
    assert problem.startswith("s.yaml:6: persona.facts: unknown fact shoe_size; known facts: ")


def test_broken_yaml_is_reported_with_the_line_of_the_problem() -> None:
    (problem,) = problems_of(VALID + "expect: {resolved: true\n")
    assert problem.startswith("s.yaml:11: not valid YAML")


def test_an_unknown_tenant_is_reported_at_the_tenant_line() -> None:
    assert problems_of(VALID.replace("tenant: bank", "tenant: casino"), ["bank", "health"]) == [
        "s.yaml:3: unknown tenant 'casino'; known: bank, health"
    ]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID.replace("title: A tiny scenario\n", ""))
    (tmp_path / "b.yaml").write_text(VALID.replace("name: tiny", "name: Not A Slug"))
    with pytest.raises(ScenarioError) as caught:
        load_scenarios([tmp_path])
    assert [p.split(": ")[0] for p in caught.value.problems] == [f"{tmp_path}/a.yaml:1", f"{tmp_path}/b.yaml:1"]


def test_the_shipped_scenarios_are_valid_and_cover_both_tenants_and_all_reference_customers() -> None:
    tenants = [t.id for t in World.load()]
    signals = {tenant: list(release.signals) for tenant, release in load_releases().items()}
    paths = [EXAMPLES_DIR / "bank" / "scenarios", EXAMPLES_DIR / "healthcare" / "scenarios"]
    loaded = load_scenarios(paths, tenants, signals)
    assert len(loaded) >= 20
    assert {item.scenario.tenant for item in loaded} == {"bank", "health"}
    customers = {item.scenario.persona.name for item in loaded}
    assert customers >= {"Maria Lopez", "James Chen", "Aisha Patel", "Robert King"}
