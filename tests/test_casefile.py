from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tandem.case.askonce import may_ask, may_challenge
from tandem.case.casefile import Assertion, CaseFile
from tandem.case.legs import Assurance

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _a(name: str, value: object, source: str, seq: int, at: datetime = NOW, **kw: object) -> Assertion:
    return Assertion(name=name, value=value, source=source, confidence=kw.pop("confidence", 1.0), at=at, seq=seq, **kw)  # type: ignore[arg-type]


def test_the_system_of_record_outranks_what_the_customer_said_and_the_disagreement_stays_visible() -> None:
    case = CaseFile()
    case.add(_a("zip", "94111", "customer", 1))
    case.add(_a("zip", "94110", "system:core_banking", 2))
    fact = case.resolve("zip", NOW)
    assert fact is not None
    assert (fact.value, fact.status, fact.source) == ("94110", "known", "system:core_banking")
    assert [a.value for a in fact.disagreements] == ["94111"]


def test_two_systems_of_equal_rank_that_disagree_make_the_fact_conflicted_and_askable() -> None:
    case = CaseFile()
    case.add(_a("card_hold", "held", "signal:lakehouse", 1))
    case.add(_a("card_hold", "released", "system:cards", 2))
    fact = case.resolve("card_hold", NOW)
    assert fact is not None and fact.status == "conflicted"
    assert may_ask(case, "card_hold", NOW).basis == "conflicted"


def test_an_action_result_supersedes_a_lagging_signal() -> None:
    case = CaseFile()
    case.add(_a("card_hold", "held", "signal:lakehouse", 1))
    case.add(_a("card_hold", "released", "action:release_hold", 2))
    fact = case.resolve("card_hold", NOW)
    assert fact is not None and (fact.value, fact.status) == ("released", "known")


def test_a_persons_correction_supersedes_every_earlier_assertion() -> None:
    case = CaseFile()
    case.add(_a("zip", "94110", "system:core_banking", 1))
    case.correct(_a("zip", "94117", "agent:ag_1", 2))
    fact = case.resolve("zip", NOW)
    assert fact is not None and (fact.value, fact.source, fact.disagreements) == ("94117", "agent:ag_1", ())


def test_a_customer_restating_a_fact_corrects_it_rather_than_conflicting() -> None:
    case = CaseFile()
    case.add(_a("zip", "94111", "customer", 1))
    case.add(_a("zip", "94110", "customer", 2))
    fact = case.resolve("zip", NOW)
    assert fact is not None and (fact.value, fact.status) == ("94110", "known")


def test_ask_once_allows_absent_stale_and_low_confidence_facts_only() -> None:
    case = CaseFile()
    assert may_ask(case, "balance", NOW).basis == "absent"
    case.add(_a("balance", 100, "system:core_banking", 1, at=NOW - timedelta(minutes=10)))
    assert may_ask(case, "balance", NOW).basis == "stale"
    case.add(_a("zip", "94110", "customer", 2, confidence=0.4))
    assert may_ask(case, "zip", NOW, min_confidence=0.8).basis == "low_confidence"
    decision = may_ask(case, "zip", NOW, min_confidence=0.3)
    assert (decision.allowed, decision.basis) == (False, "known")


def test_authentication_challenges_follow_the_legs_assurance_not_the_case_file() -> None:
    assert may_challenge(Assurance.IDENTIFIED, Assurance.KNOWLEDGE_VERIFIED, "date_of_birth").allowed
    assert not may_challenge(Assurance.STRONG, Assurance.KNOWLEDGE_VERIFIED, "date_of_birth").allowed
