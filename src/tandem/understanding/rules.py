"""A small rule-based understander: keyword intents, regex entities, lexical sentiment cues.

It is the dependable floor under the trained classifier: transparent, instant, and good enough for the
reference journeys. Anything it is unsure of comes back with low confidence so the bot asks or hands over
instead of guessing.
"""

from __future__ import annotations

import re
from datetime import datetime

from tandem.case.interaction import Interaction
from tandem.participants.protocol import Understanding
from tandem.understanding.entities import extract

# Phrases per intent, most specific first. Weights favour longer phrases: "dispute a charge" beats "charge".
INTENT_PHRASES: dict[str, tuple[str, ...]] = {
    "talk_to_person": (
        "talk to a person",
        "speak to a person",
        "real person",
        "human",
        "an agent",
        "representative",
        "speak to someone",
        "talk to someone",
        "operator",
        "customer service rep",
        "live agent",
    ),
    "card_declined": (
        "declined",
        "decline",
        "card was rejected",
        "card got rejected",
        "card didn't work",
        "card doesnt work",
        "card doesn't work",
        "card not working",
        "payment failed",
        "couldn't pay",
        "card was refused",
        "card refused",
    ),
    "fraud_hold": ("fraud hold", "hold on my card", "card is blocked", "card blocked", "card is frozen", "frozen"),
    "dispute_charge": (
        "dispute",
        "didn't make this charge",
        "did not make",
        "don't recognize",
        "unauthorized charge",
        "wrong charge",
        "charged twice",
        "never received",
        "refund for",
        "chargeback",
    ),
    "balance": ("balance", "how much money", "how much do i have", "funds available", "available funds"),
    "lost_card": ("lost my card", "lost card", "stolen", "can't find my card", "missing card"),
    "reset_pin": ("pin", "password", "locked out", "reset my", "forgot my"),
    "travel_notice": ("travel notice", "traveling", "travelling", "going abroad", "trip to", "overseas"),
    "explain_bill": (
        "bill",
        "statement",
        "why do i owe",
        "charged $",
        "what is this charge",
        "invoice",
        "owe",
    ),
    "eligibility": ("eligib", "am i covered", "coverage", "covered", "insurance active", "still insured", "my plan"),
    "claim_status": ("claim status", "status of my claim", "my claim", "claim"),
    "payment_plan": (
        "payment plan",
        "installment",
        "pay over time",
        "monthly payments",
        "can't afford",
        "pay in parts",
    ),
    "reschedule": (
        "reschedule",
        "move my appointment",
        "change my appointment",
        "cancel my appointment",
        "appointment",
    ),
    "goodbye": ("bye", "that's all", "thats all", "nothing else", "no thanks", "that is all", "all set"),
    "greeting": ("hello", "hi ", "hey", "good morning", "good afternoon"),
    "affirm": ("yes", "yeah", "yep", "sure", "please do", "correct", "that's right", "ok", "okay"),
    "deny": ("no", "nope", "not really", "that's wrong", "incorrect"),
}

TENANT_INTENTS: dict[str, frozenset[str]] = {
    "bank": frozenset(
        {"card_declined", "fraud_hold", "dispute_charge", "balance", "lost_card", "reset_pin", "travel_notice"}
    ),
    "health_plan": frozenset({"explain_bill", "eligibility", "claim_status", "payment_plan", "reschedule"}),
}
COMMON = frozenset({"talk_to_person", "goodbye", "greeting", "affirm", "deny"})

ANGER = ("ridiculous", "unacceptable", "furious", "angry", "terrible", "worst", "useless", "fed up", "sick of",
         "third time", "again!", "ridiculous", "outrageous", "joke")  # fmt: skip
DISTRESS = ("stranded", "scared", "panic", "desperate", "can't pay for", "emergency", "stuck abroad", "help me",
            "urgent", "stuck", "no money")  # fmt: skip
VULNERABLE = ("hospital", "cancer", "disabled", "bereavement", "passed away", "elderly", "can't afford")
POSITIVE = ("thank", "great", "perfect", "awesome", "appreciate", "wonderful")


def _score(text: str, phrase: str) -> float:
    return 1.0 + len(phrase) / 20


class RuleUnderstander:
    model = "rules"
    prompt_version = "rules-1"

    def __init__(self, tenant_kinds: dict[str, str] | None = None) -> None:
        # tenant id -> kind (bank, health_plan), to keep intents within the tenant's domain
        self.tenant_kinds = dict(tenant_kinds or {})

    def understand(self, text: str, case: Interaction, now: datetime) -> Understanding:
        lowered = f" {text.lower().strip()} "
        allowed = TENANT_INTENTS.get(self.tenant_kinds.get(case.tenant_id, ""), frozenset()) | COMMON
        scores: dict[str, float] = {}
        for intent, phrases in INTENT_PHRASES.items():
            if self.tenant_kinds and intent not in allowed:
                continue
            for phrase in phrases:
                if _contains(lowered, phrase):
                    scores[intent] = max(scores.get(intent, 0.0), _score(lowered, phrase))
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        intents: tuple[tuple[str, float], ...] = ()
        if ranked:
            total = sum(s for _, s in ranked)
            intents = tuple((name, round(min(0.95, 0.55 + 0.4 * s / total), 3)) for name, s in ranked[:3])
        return Understanding(intents=intents, entities=extract(text, now), sentiment=sentiment(text), text=text)


def _contains(haystack: str, phrase: str) -> bool:
    if phrase.endswith(" ") or not phrase[-1].isalnum():
        return phrase in haystack
    return re.search(rf"(?<![a-z]){re.escape(phrase)}", haystack) is not None


def sentiment(text: str) -> tuple[float, str, str | None]:
    """A score in [-1, 1], a label, and the cue that decided it, so the router can say why it acted."""
    lowered = text.lower()
    for cue in VULNERABLE:
        if cue in lowered:
            return -0.6, "vulnerable", f"said '{cue}'"
    for cue in DISTRESS:
        if cue in lowered:
            return -0.6, "distressed", f"said '{cue}'"
    anger = [cue for cue in ANGER if cue in lowered]
    shouting = sum(1 for w in text.split() if len(w) > 3 and w.isupper()) >= 2 or text.count("!") >= 3
    if anger or shouting:
        return -0.8, "angry", f"said '{anger[0]}'" if anger else "shouting"
    for cue in POSITIVE:
        if cue in lowered:
            return 0.6, "positive", f"said '{cue}'"
    return 0.0, "neutral", None
