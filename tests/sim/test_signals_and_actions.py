"""The simulator runs journeys with live signals and real actions: facts with provenance, actions through
policy to the example MCP servers, and effects counted in those servers' own ledgers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tandem.case.legs import Assurance
from tandem.release.signals import Trigger
from tandem.sim.casefile import Fact
from tandem.sim.effects import ActionTaken, Effect, actions_taken, count_effects
from tandem.sim.evaluation import evaluate
from tandem.sim.expectations import check
from tandem.sim.journey import JourneyResult
from tandem.sim.metrics import Metrics, Rates
from tandem.sim.report import markdown
from tandem.sim.scenario import Expect, ScenarioError, load_scenarios, parse_scenario
from tandem.sim.transport import example_enterprise, open_deployment
from tandem.world.world import EXAMPLES_DIR, World

MARIA = EXAMPLES_DIR / "bank" / "scenarios" / "maria_card_declined.yaml"
JAMES = EXAMPLES_DIR / "bank" / "scenarios" / "james_dispute.yaml"
LATE = EXAMPLES_DIR / "healthcare" / "scenarios" / "robert_reschedule_data_late.yaml"


@pytest.mark.slow
async def test_every_journey_has_fresh_example_systems_so_each_release_is_counted_once_in_its_own_ledger() -> None:
    world = World.load()
    scenarios = load_scenarios([MARIA, JAMES], [t.id for t in world])
    async with open_deployment("inprocess", world) as deployment:
        evaluation = await evaluate(
            scenarios, deployment, Rates(), {t.id: t.kind for t in world}, transport="inprocess", jobs=2
        )
    assert evaluation.passed, [o.failures for o in evaluation.outcomes]
    maria, james = evaluation.outcomes
    for result in (maria.tandem, maria.siloed):
        # Had the siloed journey shared the tandem journey's fraud system, the hold would already be released
        # there and its release would fail: each journey's ledger holds exactly its own one effect.
        assert result is not None and result.effects is not None
        assert [(e.tool, e.server, e.mcp_tool, e.status) for e in result.effects] == [
            ("release_fraud_hold", "fraud", "release_hold", "applied")
        ]
        (action,) = result.actions
        assert (action.status, action.approved_by, action.effects) == ("succeeded", "policy", 1)
        assert result.effects[0].idempotency_key in action.keys
    shown = {f.label: f for f in maria.tandem.facts}
    assert shown["card_hold[card:4242]"].source.startswith("action:")
    assert shown["fraud_score[card:4242]"].source == "signal:fraud_score"
    (dispute,) = james.tandem.actions
    assert (dispute.tool, dispute.decision, dispute.approved_by, dispute.effects) == (
        "open_dispute", "require_approval", "agent", 1,
    )  # fmt: skip
    report = markdown(evaluation, "tandem eval")
    assert "## Signals and actions" in report
    assert "release_fraud_hold: succeeded (allowed by policy)" in report and "fraud.release_hold ×1" in report
    assert "open_dispute: succeeded (approved by agent)" in report and "core_banking.open_dispute ×1" in report
    assert "- signal fact: fraud_score[card:4242] = `0.82` (signal:fraud_score)" in report


async def test_a_late_signal_times_out_within_its_budget_while_the_others_still_answer() -> None:
    world = World.load()
    async with example_enterprise(world) as enterprise:
        activator = enterprise.activator_for("health", ["appointments"])
        activation = await activator.activate(
            "health", Trigger.intent("reschedule", Assurance.KNOWLEDGE_VERIFIED), {"member": "MBR-60317"}, "bot"
        )
        assert activation.report("appointments").status == "timeout"
        assert activation.report("appointments").ms < 2_000  # cut at its 150 ms budget, not the source's pace
        (status,) = [f.value for f in activation.learns if f.subject == "signal:appointments"]
        assert (status["status"], status["budget_ms"]) == ("timeout", 150)  # the release's own budget
        assert activation.report("coverage").status == "ok"
        # The shared activator is untouched: the next journey gets its appointments.
        shared = await enterprise.activator.activate(
            "health", Trigger.intent("reschedule", Assurance.KNOWLEDGE_VERIFIED), {"member": "MBR-60317"}, "bot"
        )
        assert shared.report("appointments").status == "ok"
        with pytest.raises(ValueError, match="has no signal nope"):
            enterprise.activator_for("health", ["nope"])


async def test_a_conversation_whose_signals_time_out_still_answers_and_hands_over() -> None:
    world = World.load()
    scenarios = load_scenarios([LATE], [t.id for t in world])
    async with open_deployment("inprocess", world) as deployment:
        evaluation = await evaluate(
            scenarios, deployment, Rates(), {t.id: t.kind for t in world}, transport="inprocess", siloed=False
        )
    (outcome,) = evaluation.outcomes
    assert outcome.failures == []
    assert outcome.tandem.signals == {"coverage": "timeout", "appointments": "timeout"}
    assert outcome.tandem.metrics.signals_timed_out == 2


def test_a_scenario_making_an_unknown_signal_late_is_rejected_at_its_line() -> None:
    text = LATE.read_text().replace("late: [coverage, appointments]", "late: [coverage, appointmnts]")
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "appointmnts" in row)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, Path("late.yaml"), ["health"], {"health": ["coverage", "appointments"]})
    assert caught.value.problems == [
        f"late.yaml:{line}: signals.late: tenant health has no signal 'appointmnts'; known: appointments, coverage"
    ]


# -- expectations on facts, actions and ledgers, checked against results built by hand -----------------------


def result_with(
    facts: list[Fact], actions: list[ActionTaken], effects: list[Effect] | None, executed: list[str]
) -> JourneyResult:
    metrics = Metrics(executed_actions=executed)
    return JourneyResult("s", "tandem", metrics, [], [], [], [], facts=facts, actions=actions, effects=effects)


def expect(raw: dict[str, object]) -> Expect:
    return Expect.model_validate({"max_repeats": None, "unauthorized_actions": None, **raw})


RELEASE = ActionTaken("a1", "release_fraud_hold", "bot", "succeeded", "allow", "r", "policy", keys=["k1"])
HELD = Fact("card_hold", "card:4242", {"status": "held", "reason": "foreign"}, "signal:card_holds")
RELEASED = Fact("card_hold", "card:4242", {"status": "released"}, "action:release_fraud_hold")


def test_an_effect_done_twice_in_the_ledger_fails_an_exactly_once_expectation() -> None:
    twice = [Effect("release_fraud_hold", "fraud", "release_hold", k, "applied") for k in ("k1", "k2")]
    wanted = expect({"actions": {"executed": [{"tool": "release_fraud_hold", "effects": 1}]}})
    assert check(wanted, result_with([], [RELEASE], twice, ["release_fraud_hold"])) == [
        "action release_fraud_hold: expected 1 ledger effect(s), got 2"
    ]
    assert check(wanted, result_with([], [RELEASE], twice[:1], ["release_fraud_hold"])) == []
    assert check(wanted, result_with([], [RELEASE], None, ["release_fraud_hold"])) == [
        "action release_fraud_hold: the example systems' ledgers could not be read (a --url server?)"
    ]


def test_an_action_run_by_policy_fails_an_expectation_that_an_agent_approved_it() -> None:
    wanted = expect({"actions": {"executed": [{"tool": "release_fraud_hold", "approved_by": "agent"}]}})
    assert check(wanted, result_with([], [RELEASE], [], ["release_fraud_hold"])) == [
        "action release_fraud_hold: expected approved by agent, got policy"
    ]
    pending = ActionTaken("a2", "open_dispute", "bot", "awaiting", "require_approval", "r")
    wanted = expect({"actions": {"executed": ["open_dispute"]}})
    assert check(wanted, result_with([], [pending], [], [])) == ["action open_dispute was not executed (awaiting)"]


def test_a_fact_expectation_matches_source_family_subject_and_part_of_the_value() -> None:
    facts = [RELEASED, Fact("fraud_score", "card:4242", 0.82, "signal:fraud_score")]
    good = expect(
        {
            "facts": [
                {"name": "card_hold", "subject": "card:4242", "source": "action", "value": {"status": "released"}},
                {"name": "fraud_score", "source": "signal", "value": 0.82},
            ],
            "learned": [{"name": "card_hold", "source": "signal", "value": {"status": "held"}}],
        }
    )
    result = result_with(facts, [], [], [])
    result.events = [
        {"type": "FactLearned", "data": {"name": "card_hold", "subject": "card:4242", "value": HELD.value,
                                         "source": HELD.source}},
    ]  # fmt: skip
    assert check(good, result) == []
    stale = expect({"facts": [{"name": "card_hold", "source": "signal", "value": {"status": "held"}}]})
    assert check(stale, result) == [
        "the case file did not show card_hold = {'status': 'held'} from signal "
        "(card_hold[card:4242] = {'status': 'released'} from action:release_fraud_hold)"
    ]
    # "signal" is a family of sources; "signals" is not one of them.
    assert check(expect({"facts": [{"name": "fraud_score", "source": "signals"}]}), result) != []


def test_actions_are_folded_from_the_log_with_who_let_them_run_and_their_ledger_effects() -> None:
    def event(kind: str, actor: str = "system", **data: object) -> dict[str, object]:
        return {"type": kind, "actor": {"kind": actor}, "data": data}

    log = [
        event("ActionProposed", "bot", action_id="a1", tool="release_fraud_hold"),
        event("ActionDecided", action_id="a1", outcome="allow", rule="verified_low_risk_small"),
        event("ActionStarted", action_id="a1", idempotency_key="k1"),
        event("ActionSucceeded", action_id="a1"),
        event("ActionProposed", "bot", action_id="a2", tool="open_dispute"),
        event("ActionDecided", action_id="a2", outcome="require_approval", rule="disputes_add_up"),
        event("ActionApproved", "human", action_id="a2", role="agent"),
        # Policy changed between the approval and the call: re-decided at execution, denied, never run.
        event("ActionDecided", action_id="a2", outcome="deny", rule="revoked", stage="execution"),
    ]
    release, dispute = actions_taken(log)
    effects = [Effect("release_fraud_hold", "fraud", "release_hold", "k1", "applied")]
    count_effects([release, dispute], effects)
    assert (release.status, release.approved_by, release.rule, release.effects) == (
        "succeeded", "policy", "verified_low_risk_small", 1,
    )  # fmt: skip
    assert (dispute.status, dispute.decision, dispute.approved_by, dispute.effects) == (
        "denied", "require_approval", "agent", 0,
    )  # fmt: skip
