from __future__ import annotations

from typing import Any

import pytest

from tandem.case.legs import Assurance
from tandem.release.scopes import PARTICIPANTS
from tandem.release.signals import (
    Column,
    Const,
    ReleaseError,
    Shape,
    Trigger,
    load_releases,
    parse_duration,
    parse_release,
    render,
)


def _raw(**signal: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": "lake", "key": "customer", "query": "SELECT 1 AS v WHERE :key IS NOT NULL",
        "trigger": {"intents": ["card_declined"]}, "facts": [{"name": "v", "value": "v"}],
    }  # fmt: skip
    base.update(signal)
    return {"release": {"tenant": "t"}, "sources": {"lake": {"kind": "duckdb"}}, "signals": {"s": base}}


def test_the_shipped_releases_load_and_scope_every_participant() -> None:
    releases = load_releases()
    assert set(releases) == {"bank", "health"}
    for release in releases.values():
        assert set(release.scopes.scopes) == PARTICIPANTS
        assert len(release.version) == 12
        for signal in release.signals.values():
            assert signal.budget_ms <= 150 and signal.source in release.sources


def test_a_signal_fires_for_its_intents_only_at_or_above_its_assurance() -> None:
    signal = parse_release(_raw(), version="v").signal("s")
    assert signal.trigger.assurance == Assurance.KNOWLEDGE_VERIFIED  # the default: data needs a verified leg
    assert signal.trigger.fires("s", Trigger.intent("card_declined", Assurance.STRONG), "bot")
    assert not signal.trigger.fires("s", Trigger.intent("card_declined", Assurance.IDENTIFIED), "bot")
    assert not signal.trigger.fires("s", Trigger.intent("balance", Assurance.STRONG), "bot")
    assert not signal.trigger.fires("s", Trigger.request("s", Assurance.STRONG), "ai")  # nobody may ask


def test_on_verified_fires_once_the_leg_reaches_the_level_and_needs_no_more() -> None:
    signal = parse_release(_raw(trigger={"on_verified": "identified"}), version="v").signal("s")
    assert signal.trigger.assurance == Assurance.IDENTIFIED
    assert signal.trigger.fires("s", Trigger.verified(Assurance.IDENTIFIED), "bot")
    assert signal.trigger.fires("s", Trigger.verified(Assurance.STRONG), "bot")
    assert not signal.trigger.fires("s", Trigger.verified(Assurance.NONE), "bot")


def test_values_are_built_from_columns_with_dates_as_the_records_write_them() -> None:
    from datetime import date
    from decimal import Decimal

    spec = Shape((("amount", Shape((("amount_minor", Column("a")), ("currency", Const("USD"))))), ("d", Column("d"))))
    row = {"a": Decimal("8640"), "d": date(2026, 12, 3)}
    assert render(spec, row) == {"amount": {"amount_minor": 8640, "currency": "USD"}, "d": "2026-12-03"}


def test_durations_read_like_people_write_them() -> None:
    assert parse_duration("5m", "x").total_seconds() == 300
    assert parse_duration("1h", "x").total_seconds() == 3600
    assert parse_duration(30, "x").total_seconds() == 30
    with pytest.raises(ReleaseError, match="duration"):
        parse_duration("soon", "x")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "warehouse"}, "no source 'warehouse'"),
        ({"key": "household"}, "is not one of"),
        ({"query": "SELECT 1"}, "must use :key"),
        ({"budget_ms": 0}, "positive whole number"),
        ({"facts": []}, "non-empty list"),
        ({"facts": [{"name": "x"}]}, "needs a name and a value"),
        ({"facts": [{"name": "x", "value": "v", "subject": "card:{last4}", "on_empty": "none"}]}, "on_empty"),
        ({"trigger": {"intents": ["x"], "when": "now"}}, "unknown keys"),
        ({"trigger": {"assurance": "very"}}, "unknown assurance"),
        ({"cache": True}, "unknown keys"),
        ({"query_many": "SELECT :key AS key"}, r"query_many: .* uses :keys"),
        ({"query_many": "SELECT unnest(:keys) AS key WHERE :key IS NOT NULL"}, r"never :key"),
    ],
)
def test_mistakes_in_a_signal_definition_are_refused_with_where_they_are(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ReleaseError, match=message):
        parse_release(_raw(**change), version="v")
