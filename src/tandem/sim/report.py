"""The evaluation report: Markdown with PNG charts, and a JSON summary beside it."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, the same output on every machine

import matplotlib.pyplot as plt

from tandem.sim import casefile
from tandem.sim.effects import ActionTaken, Effect
from tandem.sim.evaluation import Evaluation, Outcome
from tandem.sim.metrics import Totals

TANDEM_COLOUR = "#2a7ab0"
SILOED_COLOUR = "#c8553d"
CHARTS = ("totals.png", "repeats.png", "handle_time.png")
PROVOKED = "provoked-repeat"


def write_report(evaluation: Evaluation, directory: Path, command: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "summary.json"]
    written[0].write_text(json.dumps(evaluation.to_dict(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    if evaluation.has_siloed:
        written += [_totals_chart(evaluation, directory / CHARTS[0]), _repeats_chart(evaluation, directory / CHARTS[1])]
    written.append(_time_chart(evaluation, directory / CHARTS[2]))
    report = directory / "report.md"
    report.write_text(markdown(evaluation, command), encoding="utf-8")
    return [report, *written]


# -- Markdown ---------------------------------------------------------------------------------------------


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _totals_rows(t: Totals, s: Totals | None) -> list[str]:
    def row(label: str, a: str, b: str | None) -> str:
        return f"| {label} | {a} | {b if b is not None else '—'} |"

    return [
        row("scenarios", str(t.scenarios), str(s.scenarios) if s else None),
        row("resolved", str(t.resolved), str(s.resolved) if s else None),
        row("abandoned", str(t.abandoned), str(s.abandoned) if s else None),
        row("containment (resolved without a person, of those not abandoned)", _pct(t.containment),
            _pct(s.containment) if s else None),
        row("**repeats — from `FactRequested` events (ask-once replay)**", f"**{t.repeats_events}**",
            f"**{s.repeats_events}**" if s else None),
        row("**repeats — from the text the customer saw**", f"**{t.repeats_text}**",
            f"**{s.repeats_text}**" if s else None),
        row("customer turns", str(t.turns), str(s.turns) if s else None),
        row("agent turns", str(t.agent_turns), str(s.agent_turns) if s else None),
        row("handoffs", str(t.handoffs), str(s.handoffs) if s else None),
        row("hand-backs (siloed: transfers back to a fresh bot)", str(t.hand_backs), str(s.hand_backs) if s else None),
        row("handle time, minutes (simulated)", _minutes(t.handle_time_s), _minutes(s.handle_time_s) if s else None),
        row("of which a person, minutes", _minutes(t.human_s), _minutes(s.human_s) if s else None),
        row("cost", _money(t.cost), _money(s.cost) if s else None),
        row("policy blocks", str(t.policy_blocks), str(s.policy_blocks) if s else None),
        row("unauthorized actions", str(t.unauthorized_actions), str(s.unauthorized_actions) if s else None),
        row("actions executed", str(t.actions_executed), str(s.actions_executed) if s else None),
        row("effects in the example systems' ledgers", str(t.effects), str(s.effects) if s else None),
    ]  # fmt: skip


def _scenario_row(o: Outcome) -> str:
    t, s = o.tandem.metrics, o.siloed.metrics if o.siloed else None
    status = "pass" if o.passed else "**FAIL**"
    path = " → ".join(t.handoff_path)

    def pair(a: str, b: str | None) -> str:
        return f"{a} / {b}" if b is not None else a

    return (
        f"| {o.scenario.name} | {o.scenario.tenant} | {status} | {'yes' if t.resolved else 'no'} | {path} | "
        f"{pair(f'{t.repeats_events}·{t.repeats_text}', f'{s.repeats_events}·{s.repeats_text}' if s else None)} | "
        f"{pair(str(t.turns), str(s.turns) if s else None)} | "
        f"{pair(_minutes(t.handle_time_s), _minutes(s.handle_time_s) if s else None)} | "
        f"{pair(_money(t.cost), _money(s.cost) if s else None)} |"
    )


def markdown(evaluation: Evaluation, command: str) -> str:
    t = evaluation.totals("tandem")
    s = evaluation.totals("siloed") if evaluation.has_siloed else None
    r = evaluation.rates
    failed = [o for o in evaluation.outcomes if not o.passed]
    out = [
        "# Journey simulator — evaluation report",
        "",
        f"Produced by `{command}` (transport: {evaluation.transport}; self-service: {_self_service()}; "
        f"understanding: {evaluation.understanding}). "
        "Every figure comes from simulated",
        "customers and agents working through Tandem's HTTP API; time is simulated, not measured, so a rerun",
        "gives the same numbers. Definitions are in [docs/simulator.md](../simulator.md).",
        "",
        f"**{len(evaluation.outcomes) - len(failed)} of {len(evaluation.outcomes)} scenarios met every expectation.**",
        "",
        f"Simulated time: {r.customer_turn_s:g} s per customer turn, {r.agent_turn_s:g} s per agent turn, "
        f"{r.queue_wait_s:g} s queue wait per handoff plus each agent's time to accept. Cost: "
        f"{_money(r.ai_per_min)} per minute of bot or AI, {_money(r.human_per_min)} per minute of a person.",
        "",
        "## Tandem and a siloed system, side by side",
        "",
        "The siloed baseline plays the same scenarios as a bot-then-cold-transfer system: the person who takes",
        "over gets no handoff card and no case file, so they ask identity, verification and the reason again;",
        "a hand-back becomes a transfer to a fresh bot session that starts over; a new channel starts over.",
        "",
        "| | Tandem | siloed |",
        "|---|---|---|",
        *_totals_rows(t, s),
        "",
        *_provoked_note(evaluation),
    ]
    if s is not None:
        out += ["![totals](totals.png)", "", "![repeats per scenario](repeats.png)", ""]
    out += [
        "![handle time per scenario](handle_time.png)",
        "",
        "## Scenarios",
        "",
        "Repeats are shown as *events·text* (the two counters); pairs are *Tandem / siloed*.",
        "",
        "| scenario | tenant | expectations | resolved | floor path (Tandem) | repeats | turns | minutes | cost |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_scenario_row(o) for o in evaluation.outcomes),
        "",
    ]
    out += _signals_and_actions(evaluation)
    if failed:
        out += ["## Failed expectations", ""]
        for o in failed:
            out.append(f"- **{o.scenario.name}** (`{o.path}`)")
            out += [f"  - {failure}" for failure in o.failures]
        out.append("")
    out += ["## Journeys", ""]
    for o in evaluation.outcomes:
        out += _journey_section(o)
    return "\n".join(out).rstrip() + "\n"


def _provoked_note(evaluation: Evaluation) -> list[str]:
    provoked = [o for o in evaluation.outcomes if PROVOKED in o.scenario.tags]
    if not provoked:
        return []
    events = sum(o.tandem.metrics.repeats_events for o in provoked)
    text = sum(o.tandem.metrics.repeats_text for o in provoked)
    names = ", ".join(o.scenario.name for o in provoked)
    return [
        f"Tandem's repeats include those of scenarios written to provoke one (tag `{PROVOKED}`: {names}): "
        f"{events} by the events counter and {text} by the text counter. They show the counters catch a "
        "participant that ignores the case file.",
        "",
    ]


def _signals_and_actions(evaluation: Evaluation) -> list[str]:
    rows = [o for o in evaluation.outcomes if o.tandem.signals or o.tandem.actions]
    if not rows:
        return []
    out = [
        "## Signals and actions",
        "",
        "What Tandem's run of each scenario fetched and did: signals fetched (and how many timed out), the facts",
        "they left in the final case file, the actions proposed and who let them run (*policy* when allowed",
        "outright), and the effects each example system recorded in its own ledger, one per idempotency key.",
        "Every journey starts with fresh example systems, so a count of 1 is exactly once.",
        "",
        "| scenario | signals (timed out) | signal facts in the case file | actions | ledger effects |",
        "|---|---|---|---|---|",
    ]
    for o in rows:
        t = o.tandem
        timed_out = sum(1 for status in t.signals.values() if status == "timeout")
        facts = sorted({f.label for f in casefile.from_signals(t.facts)})
        effects = "unread" if t.effects is None else _effects(t.effects) or "none"
        out.append(
            f"| {o.scenario.name} | {len(t.signals)} ({timed_out}) | {', '.join(facts) or '—'} | "
            f"{'; '.join(_action(a) for a in t.actions) or '—'} | {effects} |"
        )
    return [*out, ""]


def _action(a: ActionTaken) -> str:
    return f"{a.tool}: {_outcome(a)}"


def _outcome(a: ActionTaken) -> str:
    if not a.approved_by or a.status in ("awaiting", "denied"):
        return a.status
    who = "allowed by policy" if a.approved_by == "policy" else f"approved by {a.approved_by}"
    return f"{a.status} ({who})"


def _effects(effects: Sequence[Effect]) -> str:
    counts = Counter(f"{e.server}.{e.mcp_tool}" + ("" if e.status == "applied" else f" ({e.status})") for e in effects)
    return ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items()))


def _journey_section(o: Outcome) -> list[str]:
    t = o.tandem
    out = [f"### {o.scenario.name} — {o.scenario.title}", ""]
    if t.published is not None:
        out.append(f"- release: published `{t.published}` over `{t.shipped}` before the journey")
    if t.signals:
        fetched = ", ".join(f"{name} {status}" for name, status in t.signals.items())
        out.append(f"- signals: {fetched}")
    for fact in sorted(casefile.from_signals(t.facts), key=lambda f: f.label):
        out.append(f"- signal fact: {fact.label} = `{_short(fact.value)}` ({fact.source})")
    for a in t.actions:
        effects = "" if a.effects is None else f"; {a.effects} ledger effect(s)"
        rule = f" (rule {a.rule})" if a.rule else ""
        out.append(f"- action {a.tool}: {a.decision}{rule} → {_outcome(a)}{effects}")
    if t.handoff_facts:
        for i, facts in enumerate(t.handoff_facts, start=1):
            out.append(f"- handoff {i}: the card showed {', '.join(facts) or 'nothing'} as known")
    for found in t.repeats:
        out.append(f"- repeat ({found.counter} counter): {found.fact} asked again by {found.by} at {found.where}")
    if o.siloed is not None:
        siloed_repeats = ", ".join(sorted({f"{r.fact} ({r.counter})" for r in o.siloed.repeats})) or "none"
        out.append(f"- siloed repeats: {siloed_repeats}")
    out += ["", "<details><summary>Tandem transcript</summary>", ""]
    for line in t.transcript:
        text = line.text.replace("|", "\\|")
        out.append(f"- *{line.speaker}* (leg {line.leg}): {text}")
    out += ["", "</details>", ""]
    return out


def _short(value: object, limit: int = 90) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- charts -----------------------------------------------------------------------------------------------


def _names(evaluation: Evaluation) -> list[str]:
    return [o.scenario.name for o in evaluation.outcomes]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or float(value).is_integer() else f"{value:,.1f}"


def _totals_chart(evaluation: Evaluation, path: Path) -> Path:
    t, s = evaluation.totals("tandem"), evaluation.totals("siloed")
    panels: Sequence[tuple[str, Sequence[str], Sequence[float], Sequence[float]]] = (
        ("questions asked twice", ("events", "text"), (t.repeats_events, t.repeats_text),
         (s.repeats_events, s.repeats_text)),
        ("customer turns", ("turns",), (t.turns,), (s.turns,)),
        ("handle time (minutes)", ("all", "a person"), (t.handle_time_s / 60, t.human_s / 60),
         (s.handle_time_s / 60, s.human_s / 60)),
        ("cost (dollars)", ("cost",), (t.cost,), (s.cost,)),
    )  # fmt: skip
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6))
    for ax, (title, labels, tandem, siloed) in zip(axes, panels, strict=True):
        xs = list(range(len(labels)))
        ax.bar([x - 0.2 for x in xs], tandem, width=0.4, color=TANDEM_COLOUR, label="Tandem")
        ax.bar([x + 0.2 for x in xs], siloed, width=0.4, color=SILOED_COLOUR, label="siloed")
        ax.set_xticks(xs, labels)
        ax.set_title(title)
        for offset, values in ((-0.2, tandem), (0.2, siloed)):
            for x, value in zip(xs, values, strict=True):
                ax.annotate(_label(value), (x + offset, value), ha="center", va="bottom", fontsize=8)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Totals over {len(evaluation.outcomes)} scenarios: Tandem vs a siloed bot-then-cold-transfer system")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _repeats_chart(evaluation: Evaluation, path: Path) -> Path:
    names = _names(evaluation)
    series = {
        "Tandem (events)": [o.tandem.metrics.repeats_events for o in evaluation.outcomes],
        "Tandem (text)": [o.tandem.metrics.repeats_text for o in evaluation.outcomes],
        "siloed (events)": [o.siloed.metrics.repeats_events if o.siloed else 0 for o in evaluation.outcomes],
        "siloed (text)": [o.siloed.metrics.repeats_text if o.siloed else 0 for o in evaluation.outcomes],
    }
    colours = [TANDEM_COLOUR, "#7fb7db", SILOED_COLOUR, "#e9a590"]
    fig, ax = plt.subplots(figsize=(max(8.0, len(names) * 0.6), 4.5))
    width = 0.2
    for i, ((label, values), colour) in enumerate(zip(series.items(), colours, strict=True)):
        ax.bar([x + (i - 1.5) * width for x in range(len(names))], values, width=width, label=label, color=colour)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("questions asked twice")
    ax.set_title("Repeats per scenario, by both counters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _time_chart(evaluation: Evaluation, path: Path) -> Path:
    names = _names(evaluation)
    fig, ax = plt.subplots(figsize=(max(8.0, len(names) * 0.6), 4.5))
    xs = list(range(len(names)))
    modes = [("tandem", -0.2, TANDEM_COLOUR)]
    if evaluation.has_siloed:
        modes.append(("siloed", 0.2, SILOED_COLOUR))
    for mode, offset, colour in modes:
        results = [o.tandem if mode == "tandem" else o.siloed for o in evaluation.outcomes]
        ai = [r.metrics.ai_s / 60 if r else 0.0 for r in results]
        human = [r.metrics.human_s / 60 if r else 0.0 for r in results]
        queue = [r.metrics.queue_s / 60 if r else 0.0 for r in results]
        at = [x + offset for x in xs]
        label = "Tandem" if mode == "tandem" else "siloed"
        ax.bar(at, ai, width=0.4, color=colour, alpha=0.45, label=f"{label}: bot")
        ax.bar(at, human, width=0.4, bottom=ai, color=colour, label=f"{label}: person")
        ax.bar(at, queue, width=0.4, bottom=[a + h for a, h in zip(ai, human, strict=True)], color=colour,
               alpha=0.15, hatch="//", label=f"{label}: queue")  # fmt: skip
    ax.set_xticks(xs, names, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("simulated minutes")
    ax.set_title("Handle time per scenario: bot, person and queue")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _self_service() -> str:
    """Which self-service participant played the journeys: the in-process runtime reads ``TANDEM_LLM`` as the
    demo does (a server given with ``--url`` chose its own, from its own environment)."""
    spec = os.environ.get("TANDEM_LLM", "").strip()
    return f"the flow planner with model `{spec}`" if spec else "the bot choosing flows by intent"
