"""A scenario may publish its own policy release through the API before its journey: the journey then plays
under it, and the scenario can expect which release served it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.sim.evaluation import evaluate
from tandem.sim.metrics import Rates
from tandem.sim.releases import overlay
from tandem.sim.scenario import LoadedScenario, ScenarioError, load_scenarios, parse_scenario
from tandem.sim.transport import open_deployment
from tandem.world.world import EXAMPLES_DIR, World

STRICTER = EXAMPLES_DIR / "bank" / "scenarios" / "maria_card_declined_stricter_policy.yaml"


def test_an_overlay_merges_mappings_replaces_lists_and_values_and_removes_nulls() -> None:
    base = {"policy": {"name": "p", "tenant": "bank"}, "tools": {"a": {"grants": [1, 2], "autonomy": "auto", "x": 1}}}
    change = {"tools": {"a": {"grants": [3], "x": None}, "b": {"autonomy": "never"}}}
    assert overlay(base, change) == {
        "policy": {"name": "p", "tenant": "bank"},
        "tools": {"a": {"grants": [3], "autonomy": "auto"}, "b": {"autonomy": "never"}},
    }
    assert base["tools"]["a"]["grants"] == [1, 2]  # the base is not changed


def test_expecting_a_published_release_without_publishing_one_is_refused_at_its_line() -> None:
    text = STRICTER.read_text()
    start = text.index("release:\n")
    without = text[:start] + text[text.index("persona:") :]
    with pytest.raises(ScenarioError, match=r"stricter\.yaml:\d+: .*publishes none: add a release block"):
        parse_scenario(without, Path("stricter.yaml"), ["bank"])


@pytest.mark.slow
async def test_a_release_published_before_the_journey_changes_who_lets_the_action_run() -> None:
    world = World.load()
    (stricter,) = load_scenarios([STRICTER], [t.id for t in world])
    # The same journey without the scenario's release: the shipped policy lets the bot release the hold itself.
    shipped = LoadedScenario(stricter.path, stricter.scenario.model_copy(update={"release": None}))
    async with open_deployment("inprocess", world) as deployment:
        evaluation = await evaluate(
            [stricter, shipped], deployment, Rates(), {t.id: t.kind for t in world}, transport="inprocess", jobs=2
        )
    published, unchanged = evaluation.outcomes
    assert published.failures == []
    result = published.tandem
    assert result.published is not None and result.shipped is not None and result.published != result.shipped
    assert set(result.pinned) == {result.published}
    assert published.siloed is not None and set(published.siloed.pinned) == {published.siloed.published}
    (action,) = result.actions
    assert (action.tool, action.decision, action.approved_by) == ("release_fraud_hold", "require_approval", "agent")
    # Under the shipped policy the bot lets it run and no person is needed: the expectations say so.
    assert "action release_fraud_hold: expected approved by agent, got policy" in unchanged.failures
    assert any(f.startswith("release: the published release is unknown") for f in unchanged.failures)
