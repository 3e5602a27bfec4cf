"""The result of an action is the newest truth about what it changed; a lakehouse that lags says otherwise."""

from __future__ import annotations

from datetime import timedelta

from tandem.activation import Activator, Trigger
from tandem.case.casefile import Assertion, CaseFile
from tandem.case.legs import Assurance
from tandem.clock import ManualClock
from tandem.commands import Learn


def _record(case: CaseFile, learns: list[Learn], seq: int) -> int:
    """What the conductor does with a Learn: a FactLearned event, folded into the case file as an assertion."""
    for learn in learns:
        seq += 1
        assert learn.observed_at is not None
        case.add(
            Assertion(
                name=learn.name, value=learn.value, source=learn.source, confidence=learn.confidence,
                at=learn.observed_at, seq=seq, subject=learn.subject, verified=learn.verified,
            )
        )  # fmt: skip
    return seq


async def test_after_the_hold_is_released_a_later_stale_signal_fetch_does_not_bring_it_back(
    activator: Activator, business_clock: ManualClock
) -> None:
    case = CaseFile()
    trigger = Trigger.intent("card_declined", Assurance.KNOWLEDGE_VERIFIED)
    keys = {"customer": "C-1001"}
    seq = _record(case, await activator.for_trigger("bank", trigger, keys, "human", interaction_id="int-1"), 0)
    held = case.resolve("card_hold", business_clock.now(), "card:4242")
    assert held is not None and held.value["status"] == "held" and held.source == "signal:card_holds"

    # The agent releases the hold; the card system's answer is recorded as the action's result.
    business_clock.advance(timedelta(minutes=2))
    released = Learn(
        "card_hold", {"status": "released", "reason": "customer confirmed the Lisbon payment"},
        "action:release_card_hold", subject="card:4242", observed_at=business_clock.now(),
    )  # fmt: skip
    seq = _record(case, [released], seq)

    # Later (past the signal's freshness) the signals are fetched again; the lakehouse has not caught up.
    business_clock.advance(timedelta(minutes=3))
    again = await activator.for_trigger("bank", trigger, keys, "human", interaction_id="int-1")
    stale = next(f for f in again if f.name == "card_hold")
    assert stale.value["status"] == "held" and stale.observed_at == business_clock.now()
    _record(case, again, seq)

    fact = case.resolve("card_hold", business_clock.now(), "card:4242")
    assert fact is not None
    assert fact.value["status"] == "released"
    assert fact.source == "action:release_card_hold"
    # The lagging signal is still in the case file, visible as a disagreement, not lost.
    assert [a.source for a in fact.disagreements] == ["signal:card_holds", "signal:card_holds"]
