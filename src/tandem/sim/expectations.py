"""Checking a journey against what its scenario expects: each failure is one readable sentence."""

from __future__ import annotations

from tandem.sim import casefile
from tandem.sim.casefile import Fact
from tandem.sim.journey import JourneyResult
from tandem.sim.scenario import Actions, Expect, FactShown


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
        failures += _actions(expect.actions, result)
    for fact in expect.facts:
        if not any(casefile.matches(fact, shown) for shown in result.facts):
            failures.append(f"the case file did not show {casefile.describe(fact)}{_instead(fact, result.facts)}")
    if expect.learned:
        learned = casefile.learned(result.events)
        for fact in expect.learned:
            if not any(casefile.matches(fact, seen) for seen in learned):
                failures.append(f"no fact {casefile.describe(fact)} was learned{_instead(fact, learned)}")
    if expect.signals is not None:
        for signal in expect.signals.ok:
            want("signal " + signal, "ok", result.signals.get(signal, "not fetched"))
        for signal in expect.signals.timed_out:
            want("signal " + signal, "timeout", result.signals.get(signal, "not fetched"))
    if expect.release is not None:
        failures += _release(expect.release, result)
    seen = result.seen_text.lower()
    for phrase in expect.saw:
        if phrase.lower() not in seen:
            failures.append(f"the customer never saw {phrase!r}")
    for phrase in expect.never_saw:
        if phrase.lower() in seen:
            failures.append(f"the customer saw {phrase!r}")
    return failures


def _actions(expect: Actions, result: JourneyResult) -> list[str]:
    failures: list[str] = []
    executed = set(result.metrics.executed_actions)
    for wanted in expect.executed:
        tool = wanted.tool
        if tool not in executed:
            statuses = ", ".join(a.status for a in result.actions if a.tool == tool) or "never proposed"
            failures.append(f"action {tool} was not executed ({statuses})")
            continue
        if wanted.approved_by is not None:
            who = sorted({str(a.approved_by) for a in result.actions if a.tool == tool and a.status == "succeeded"})
            if who != [wanted.approved_by]:
                failures.append(f"action {tool}: expected approved by {wanted.approved_by}, got {', '.join(who)}")
        if wanted.effects is not None:
            if result.effects is None:
                failures.append(f"action {tool}: the example systems' ledgers could not be read (a --url server?)")
            else:
                count = sum(1 for effect in result.effects if effect.tool == tool)
                if count != wanted.effects:
                    failures.append(f"action {tool}: expected {wanted.effects} ledger effect(s), got {count}")
    for tool in expect.not_executed:
        if tool in executed:
            failures.append(f"action {tool} was executed")
    return failures


def _release(which: str, result: JourneyResult) -> list[str]:
    wanted = result.published if which == "published" else result.shipped
    if wanted is None:
        return [f"release: the {which} release is unknown (the deployment runs without policy releases?)"]
    others = sorted({r or "none" for r in result.pinned} - {wanted})
    if not result.pinned or others:
        got = ", ".join(others) or "no interaction"
        return [f"release: expected every interaction pinned to the {which} {wanted}, got {got}"]
    return []


def _instead(want: FactShown, facts: list[Fact]) -> str:
    """What there was under that name, so a failure says what went wrong, not only that something did."""
    same = [f for f in facts if f.name == want.name and (want.subject is None or f.subject == want.subject)]
    if not same:
        return f" (no {want.name} at all)"
    return " (" + "; ".join(f"{f.label} = {f.value!r} from {f.source}" for f in same[:3]) + ")"
