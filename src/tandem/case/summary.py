"""The case summary: a few sentences a person reads before taking over, or files at wrap-up.

Built from the case file only (never from the conversation's lines): why the customer came, how sure we are who they
are, the facts that matter with where each came from, what was proposed or done and where it stands, how the
customer feels and why they are being handed over, and what is still open. ``brief`` gathers that material as a
small document; ``offline_summary`` words it deterministically. A language model may word the same document
instead (``tandem.participants.summarizer``), which is why the document is the one source of both.

What the document holds is already cut to the reader's data scope: the caller passes the facts the reader may
see (``tandem.participants.planner_scope.scoped_facts``). Identity-challenge answers and contact details are
left out whatever the scope says (a summary says *that* the customer was verified, never with what), and every
string passes the card-number redaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from tandem.case.casefile import fact_type, source_kind
from tandem.case.handoff import OPEN_STATUSES
from tandem.case.interaction import Interaction
from tandem.money import format_money
from tandem.understanding.redaction import redact_card_numbers

Occasion = Literal["handoff", "close"]

GENERATOR = "tandem-case-summary"
VERSION = "case-summary-1"
MAX_FACTS = 6
MAX_VALUE_CHARS = 120
# Facts a summary never repeats: the answers to identity challenges and the ways to reach the customer.
UNSUMMARISED = frozenset(
    {"date_of_birth", "zip", "phone", "email", "member_id", "account_id", "card_number", "customer_name"}
)
# Facts about the conversation's own machinery, not the customer's need.
MACHINERY = frozenset({"signal_status", "llm_status", "offered_next"})
OPEN_ACTIONS = frozenset({"proposed", "awaiting_approval", "approved", "started", "unknown"})


def brief(
    state: Interaction,
    occasion: Occasion,
    facts: Mapping[str, Mapping[str, Any]],
    *,
    handoff: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The material of a summary. ``facts`` is the reader's view (key -> the API's fact shape); ``handoff`` is
    the HandoffRequested data being summarised (the case may have moved on since)."""
    reason = _reason(state, facts)
    # The most the customer proved on any leg: a summary written at close (every leg closed) still says it.
    leg = max(state.legs.values(), key=lambda item: item.assurance, default=None)
    out: dict[str, Any] = {
        "occasion": occasion,
        "customer": {"id": state.customer_id or None, "name": state.customer.get("name")},
        "channel": state.channel,
        "reason": reason,
        "identity": {
            "assurance": leg.assurance.label if leg is not None else "none",
            "verified_by": leg.verified_by if leg is not None else None,
            "identified_by": state.identified_by,
        },
        "facts": _facts(facts),
        "actions": [_action(a) for a in state.actions.values()],
        "sentiment": _sentiment(state),
        "open": _open(state, facts, occasion),
    }
    if handoff is not None:
        out["handoff"] = {
            "to": _target(handoff.get("target")),
            "reason": _clean(handoff.get("reason")),
            "next_step": _clean(handoff.get("next_step")),
        }
    if occasion == "close":
        out["closed"] = {"disposition": state.disposition, "wrapup": (state.wrapup or {}).get("disposition")}
    redacted: dict[str, Any] = _redact(out)
    return redacted


def offline_summary(doc: Mapping[str, Any]) -> str:
    """``brief``'s document in a few plain sentences."""
    customer = doc.get("customer") or {}
    who = customer.get("name") or "An unidentified customer"
    if customer.get("id") and customer.get("name"):
        who = f"{who} ({customer['id']})"
    identity = doc.get("identity") or {}
    assurance = str(identity.get("assurance") or "none").replace("_", " ")
    how = identity.get("verified_by")
    about = doc.get("reason") or "a reason not yet known"
    channel = f" by {doc['channel']}" if doc.get("channel") else ""
    sentences = [f"{who} contacted us{channel} about {about}; identity {assurance}{f' ({how})' if how else ''}."]
    facts = doc.get("facts") or []
    if facts:
        sentences.append("Known: " + "; ".join(f"{f['fact']}: {f['value']} ({f['source']})" for f in facts) + ".")
    actions = doc.get("actions") or []
    if actions:
        sentences.append("Actions: " + "; ".join(_action_words(a) for a in actions) + ".")
    sentiment = doc.get("sentiment")
    if sentiment:
        why = f" ({sentiment['reason']})" if sentiment.get("reason") else ""
        sentences.append(f"The customer is {sentiment['label']}{why}.")
    handoff = doc.get("handoff")
    if handoff:
        sentence = f"Handed over to {handoff['to']} because {handoff['reason'] or 'no reason was given'}."
        if handoff.get("next_step"):
            sentence += f" Suggested next step: {handoff['next_step']}"
            sentence += "" if sentence.endswith(".") else "."
        sentences.append(sentence)
    closed = doc.get("closed")
    if closed:
        disposition = closed.get("wrapup") or closed.get("disposition")
        sentences.append(f"Closed{' as ' + str(disposition).replace('_', ' ') if disposition else ''}.")
    still = doc.get("open") or []
    sentences.append(f"Still open: {'; '.join(still)}." if still else "Nothing is left open.")
    return redact_card_numbers(" ".join(sentences))


# -- the pieces ---------------------------------------------------------------------------------------------


def _reason(state: Interaction, facts: Mapping[str, Mapping[str, Any]]) -> str | None:
    stated = state.case.assertions.get(("reason", None))
    value = next((a.value for a in reversed(stated or []) if not a.superseded), None)
    if value is None and state.top_intent is not None:
        value = state.top_intent["name"]
    return str(value).replace("_", " ") if value is not None else None


def _facts(facts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for key, view in facts.items():
        name = key.split("[", 1)[0]
        if name in UNSUMMARISED or name in MACHINERY or view.get("status") == "stale":
            continue
        subject = view.get("subject")
        label = fact_type(name).label + (f" ({str(subject).replace(':', ' ')})" if subject else "")
        source = str(view.get("source") or "")
        kind = source_kind(source)
        where = f"{source.split(':', 1)[1].replace('_', ' ')} {kind}" if ":" in source else kind
        status = view.get("status")
        value = render(view.get("value")) + (" — CONFLICTED" if status == "conflicted" else "")
        out.append({"fact": label, "value": value, "source": where})
        if len(out) == MAX_FACTS:
            break
    return out


def render(value: Any) -> str:
    """A fact's value in words: money as money, records as ``field: value`` pairs, cut to a readable length."""
    if isinstance(value, Mapping) and {"amount_minor", "currency"} <= value.keys():
        text = format_money(value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{str(k).replace('_', ' ')}: {render(v)}" for k, v in value.items() if v is not None)
    elif isinstance(value, list | tuple):
        text = ", ".join(render(v) for v in value)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _action(action: Mapping[str, Any]) -> dict[str, Any]:
    decision = action.get("decision") or {}
    return {
        "tool": str(action["tool"]).replace("_", " "),
        "status": str(action["status"]).replace("_", " "),
        "policy": {"outcome": decision.get("outcome"), "rule": decision.get("rule")} if decision else None,
        "proposed_by": (action.get("proposed_by") or {}).get("kind"),
    }


def _action_words(action: Mapping[str, Any]) -> str:
    by = f" by the {action['proposed_by']}" if action.get("proposed_by") else ""
    policy = action.get("policy") or {}
    rule = f" (policy: {policy['outcome']}, rule {policy['rule']})" if policy.get("rule") else ""
    return f"{action['tool']} proposed{by}, now {action['status']}{rule}"


def _sentiment(state: Interaction) -> dict[str, Any] | None:
    mood = state.sentiment
    if not mood or mood.get("label") in (None, "neutral", "positive"):
        return None
    return {"label": str(mood["label"]).replace("_", " "), "reason": mood.get("reason")}


def _target(target: Any) -> str:
    if not isinstance(target, Mapping):
        return "a person"
    kind, ident = target.get("kind"), target.get("id")
    if kind == "queue":
        return f"the {ident} queue" if ident else "a queue"
    if kind == "ai":
        return "the AI assistant"
    if kind == "agent":
        return f"agent {ident}" if ident else "an agent"
    return "a person"


def _open(state: Interaction, facts: Mapping[str, Mapping[str, Any]], occasion: Occasion) -> list[str]:
    out = [
        f"{str(a['tool']).replace('_', ' ')} is {str(a['status']).replace('_', ' ')}"
        for a in state.actions.values()
        if a["status"] in OPEN_ACTIONS
    ]
    answered = {key.split("[", 1)[0] for key in facts} | {name for name, _ in state.case.assertions}
    unanswered = sorted({str(r["name"]) for r in state.requests if r["name"] not in answered})
    out += [f"the customer has not yet given their {fact_type(n).label}" for n in unanswered]
    for key, view in facts.items():
        value = view.get("value")
        if key.startswith("signal_status") and isinstance(value, Mapping) and value.get("status") not in ("ok", None):
            out.append(f"the {str(value.get('signal', key)).replace('_', ' ')} data did not arrive ({value['status']})")
    if occasion == "handoff" and state.handoff is not None and state.handoff.status in OPEN_STATUSES:
        out.append(f"the customer is waiting for {_target(state.handoff.target)}")
    return out


def _clean(value: Any) -> str | None:
    return None if value in (None, "") else str(value).strip()


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, Mapping):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value
