"""Checking a journey against what its scenario expects: each failure is one readable sentence."""

from __future__ import annotations

from tandem.sim.journey import JourneyResult
from tandem.sim.scenario import Expect


def check(expect: Expect, result: JourneyResult) -> list[str]:
    m = result.metrics
    failures: list[str] = []
    if result.error is not None:
        failures.append(f"the journey failed: {result.error}")

    def want(what: str, expected: object, actual: object) -> None:
        if expected is not None and expected != actual:
            failures.append(f"{what}: expected {expected}, got {actual}")

    want("resolved", expect.resolved, m.resolved)
    want("contained", expect.contained, m.contained)
    want("handoff path", expect.handoff_path, m.handoff_path)
    want("handoffs", expect.handoffs, m.handoffs)
    want("hand-backs", expect.hand_backs, m.hand_backs)
    want("legs", expect.legs, m.legs)
    want("continued the open case", expect.continued, m.continued)
    want("policy blocks", expect.policy_blocks, m.policy_blocks)
    want("unauthorized actions", expect.unauthorized_actions, m.unauthorized_actions)
    if expect.max_repeats is not None:
        for counter, count in (("events", m.repeats_events), ("text", m.repeats_text)):
            if count > expect.max_repeats and not (expect.repeats and getattr(expect.repeats, counter) is not None):
                failures.append(f"repeats ({counter} counter): expected at most {expect.max_repeats}, got {count}")
    if expect.repeats is not None:
        if expect.repeats.events is not None:
            want("repeats (events counter)", expect.repeats.events, m.repeats_events)
        if expect.repeats.text is not None:
            want("repeats (text counter)", expect.repeats.text, m.repeats_text)
    if expect.max_turns is not None and m.turns > expect.max_turns:
        failures.append(f"turns: expected at most {expect.max_turns}, got {m.turns}")
    if expect.handoff_facts is not None:
        if len(result.handoff_facts) < len(expect.handoff_facts):
            failures.append(
                f"handoff facts: expected {len(expect.handoff_facts)} handoff card(s), got {len(result.handoff_facts)}"
            )
        for i, (wanted, shown) in enumerate(zip(expect.handoff_facts, result.handoff_facts, strict=False), start=1):
            missing = sorted(set(wanted) - set(shown))
            if missing:
                failures.append(f"handoff {i}: the card did not show {', '.join(missing)} as known")
    if expect.actions is not None:
        executed = set(m.executed_actions)
        for tool in expect.actions.executed:
            if tool not in executed:
                failures.append(f"action {tool} was not executed")
        for tool in expect.actions.not_executed:
            if tool in executed:
                failures.append(f"action {tool} was executed")
    seen = result.seen_text.lower()
    for phrase in expect.saw:
        if phrase.lower() not in seen:
            failures.append(f"the customer never saw {phrase!r}")
    for phrase in expect.never_saw:
        if phrase.lower() in seen:
            failures.append(f"the customer saw {phrase!r}")
    return failures
