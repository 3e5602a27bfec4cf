from __future__ import annotations

from typing import Any

import pytest

from tandem.activation import Activator, Trigger
from tandem.case.legs import Assurance
from tandem.commands import Learn
from tandem.release.scopes import PARTICIPANTS, ScopeError, mask_first6_last4, mask_last4, parse_scopes
from tandem.release.signals import STATUS_FACT

VERIFIED = Assurance.KNOWLEDGE_VERIFIED


async def _card_number(activator: Activator, participant: str) -> Any:
    activation = await activator.fetch("bank", "card_details", "CRD-1001-1", participant)
    return {f.name: f.value for f in activation.learns}.get("card_number")


async def test_nobody_in_a_conversation_sees_a_full_card_number(activator: Activator, lakehouse: Any) -> None:
    cursor = activator.sources["bank"]["lakehouse"].cursor()  # type: ignore[attr-defined]
    (pan,) = cursor.execute("SELECT pan FROM cards WHERE card_id = 'CRD-1001-1'").fetchone()
    cursor.close()
    assert len(pan) == 16 and pan.endswith("4242")
    seen = {p: await _card_number(activator, p) for p in sorted(PARTICIPANTS)}
    for participant, value in seen.items():
        assert value is not None and pan not in str(value), participant
    assert seen["ai"] == seen["bot"] == seen["copilot"] == seen["customer"] == "*" * 12 + "4242"
    assert seen["human"] == seen["supervisor"] == pan[:6] + "******4242"


async def test_the_ai_sees_the_last_four_digits_even_when_it_asks_for_the_card_itself(activator: Activator) -> None:
    learns = await activator.for_trigger(
        "bank", Trigger.request("card_details", VERIFIED), {"card": "CRD-1001-1"}, "ai"
    )
    number = next(f for f in learns if f.name == "card_number")
    assert number.value == "************4242" and number.subject == "card:4242"


async def test_health_plan_minimum_necessary_each_participant_sees_only_the_claim_fields_it_needs(
    activator: Activator,
) -> None:
    cursor = activator.sources["health"]["lakehouse"].cursor()  # type: ignore[attr-defined]
    (member,) = cursor.execute(
        "SELECT s.member_id FROM statements s JOIN claim_lines l USING (claim_id) "
        "WHERE s.status = 'open' AND l.diagnosis_code IS NOT NULL ORDER BY 1 LIMIT 1"
    ).fetchone()
    cursor.close()
    lines: dict[str, list[dict[str, Any]]] = {}
    for participant in sorted(PARTICIPANTS):
        activation = await activator.fetch("health", "claim_lines", member, participant)
        lines[participant] = [f.value for f in activation.learns if f.name == "claim_line"]
    member_facing = {"description", "network", "billed", "patient_responsibility", "reason"}
    for participant in ("bot", "ai", "copilot", "customer"):
        assert lines[participant] and all(set(line) == member_facing for line in lines[participant]), participant
    assert all(line["diagnosis_code"] for line in lines["human"])
    assert all("diagnosis_code" not in line and line["procedure_code"] for line in lines["supervisor"])
    assert len({len(v) for v in lines.values()}) == 1  # everyone sees the same lines, cut differently


async def test_facts_a_scope_does_not_list_are_not_seen_but_the_fetch_status_always_is(activator: Activator) -> None:
    learns = await activator.for_trigger(
        "bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-1001"}, "customer"
    )
    names = {f.name for f in learns}
    assert "fraud_score" not in names  # a risk score is not for the customer's eyes
    assert {"declined_payment", "card_hold", STATUS_FACT} <= names
    assert next(f for f in learns if f.name == "card_hold").value == {"status": "held"}


async def test_an_unknown_participant_sees_nothing_but_how_the_fetch_went(activator: Activator) -> None:
    learns = await activator.for_trigger(
        "bank", Trigger.intent("card_declined", VERIFIED), {"customer": "C-1001"}, "ivr"
    )
    assert {f.name for f in learns} == {STATUS_FACT}


def test_masks_keep_at_most_the_last_four_or_the_first_six_and_last_four() -> None:
    assert mask_last4("4000001234564242") == "************4242"
    assert mask_first6_last4("4000001234564242") == "400000******4242"
    assert mask_last4("42") == "**"


def test_a_scope_can_mask_one_field_of_a_fact_and_drop_others() -> None:
    scopes = parse_scopes({"ai": {"card": {"fields": ["pan", "kind"], "mask": {"pan": "last4"}}}})
    seen = scopes.view("ai", Learn("card", {"pan": "4000001234564242", "kind": "debit", "cvv": "123"}, "signal:x"))
    assert seen is not None and seen.value == {"pan": "************4242", "kind": "debit"}


def test_a_field_list_on_a_plain_value_shows_nothing_rather_than_everything() -> None:
    scopes = parse_scopes({"ai": {"note": {"fields": ["a"]}}})
    seen = scopes.view("ai", Learn("note", "free text with secrets", "signal:x"))
    assert seen is not None and seen.value is None


def test_none_overrides_a_wildcard() -> None:
    scopes = parse_scopes({"supervisor": {"*": "all", "diagnosis": "none"}})
    assert scopes.sees("supervisor", "anything") and not scopes.sees("supervisor", "diagnosis")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"robot": {}}, "unknown participant"),
        ({"ai": {"card": {"mask": "first4"}}}, "unknown mask"),
        ({"ai": {"card": {"fieldz": ["a"]}}}, "unknown keys"),
        ({"ai": {"card": "some"}}, "expected all, none"),
    ],
)
def test_mistakes_in_a_scope_are_refused_when_the_release_loads(raw: Any, message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        parse_scopes(raw)
