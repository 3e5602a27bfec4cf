"""Reading questions out of what the customer sees: which facts a line asks for, by a phrase lexicon.

This is the simulator's second, independent way of counting repeats: it never looks at ``FactRequested``
events or the ``asks`` field, only at the words. A sentence asks for a fact when it is a question or a
request ("please confirm ...") and names the fact; it merely *confirms* a fact when it already says the
value ("still at 94110?") or asks whether something is still so. Confirming is not asking.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Phrases per fact, as a customer would recognise the question. Checked on lower-cased sentences.
LEXICON: Mapping[str, tuple[str, ...]] = {
    "date_of_birth": ("date of birth", "birth date", "birthdate", "birthday", "dob", "when were you born"),
    "zip": ("zip", "postal code", "postcode"),
    "phone": ("phone number", "phone on", "number on your account", "callback number", "phone"),
    "member_id": ("member id", "member number", "membership number"),
    "customer_name": ("your name", "full name", "who am i speaking with", "who i'm speaking with"),
    "card_last4": ("last four", "last 4", "which card", "card number"),
    "email": ("email",),
    "account_id": ("account number",),
    "disputed_charge": ("which charge", "what charge", "the merchant or the amount"),
    "reason": (
        "how can i help",
        "how may i help",
        "what can i help you with",
        "what can i do for you",
        "what are you calling about",
        "reason for your call",
        "reason for your contact",
        "what brings you",
    ),
}

# Lines that throw back what the customer just said: the next ask of those facts is not a repeat.
REJECTIONS = ("doesn't match", "does not match", "couldn't find", "could not find", "didn't catch", "not valid")
# A sentence that asks whether something is still so is a confirmation.
CONFIRMATIONS = ("still", "is that right", "is that correct", "is that still")
_REQUEST = re.compile(
    r"\b(please (?:confirm|provide|tell|give|share|say|enter|verify)|can you (?:confirm|give|tell|provide|verify)|"
    r"could you (?:confirm|give|tell|provide|verify)|i(?:'ll| will) need|i need your|may i have|can i have|"
    r"can i get)\b"
)
_SENTENCES = re.compile(r"(?<=[.?!])\s+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCES.split(text.strip()) if s]


def _mentions(sentence: str, phrase: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(phrase)}(?![a-z])", sentence) is not None


def is_request(sentence: str) -> bool:
    lowered = sentence.lower()
    if "anything else" in lowered:
        return False
    return lowered.rstrip().endswith("?") or _REQUEST.search(lowered) is not None


def _squash(value: str) -> str:
    return _NOT_ALNUM.sub("", value.lower())


def says_value(sentence: str, values: Iterable[str]) -> bool:
    squashed = _squash(sentence)
    return any(len(v) >= 4 and v in squashed for v in (_squash(value) for value in values))


def asked_facts(text: str, known_values: Mapping[str, Iterable[str]] | None = None) -> tuple[set[str], set[str]]:
    """Facts the text asks for, and facts it only confirms, as two sets.

    ``known_values`` maps a fact to the ways the customer has stated it; a sentence that says one of them
    back is a confirmation of that fact.
    """
    asked: set[str] = set()
    confirmed: set[str] = set()
    values = known_values or {}
    for sentence in sentences(text):
        if not is_request(sentence):
            continue
        lowered = sentence.lower()
        for fact, phrases in LEXICON.items():
            if not any(_mentions(lowered, phrase) for phrase in phrases):
                continue
            if says_value(sentence, values.get(fact, ())) or any(_mentions(lowered, c) for c in CONFIRMATIONS):
                confirmed.add(fact)
            else:
                asked.add(fact)
    return asked, confirmed - asked


def rejects(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in REJECTIONS)
