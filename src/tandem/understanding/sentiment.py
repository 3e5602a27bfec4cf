"""Sentiment and escalation cues: anger, distress, vulnerability, asking for a person, repeated failure.

Each assessment carries a score in [-1, 1], a label and the reason that decided it ("said 'third time'",
"repeated the same request"), so the router can record why it moved the floor. Lexical on purpose: every
decision can be read back to the words that caused it, and it costs microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from tandem.case.interaction import Interaction

# Labels from most to least urgent: the first that matches wins.
VULNERABLE = "vulnerable"
DISTRESSED = "distressed"
ANGRY = "angry"
REPEATED_FAILURE = "repeated_failure"
WANTS_PERSON = "wants_person"
NEGATIVE = "negative"
POSITIVE = "positive"
NEUTRAL = "neutral"
ESCALATING = frozenset({VULNERABLE, DISTRESSED, ANGRY, REPEATED_FAILURE, WANTS_PERSON})

_CUES: dict[str, tuple[str, ...]] = {
    VULNERABLE: (
        r"passed away",
        r"\bdied\b",
        r"funeral",
        r"bereave\w*",
        r"\bwidow(?:ed|er)?\b",
        r"my (?:late|dead) \w+",
        r"\bcancer\b",
        r"chemo\w*",
        r"\bhospital(?:ised|ized)?\b",
        r"\bterminal(?:ly)? ill",
        r"dementia",
        r"alzheimer\w*",
        r"disab(?:led|ility)",
        r"\bwheelchair\b",
        r"\bblind\b",
        r"\bdeaf\b",
        r"\belderly\b",
        r"i'?m (?:8|9)\d\b",
        r"lost my job",
        r"laid off",
        r"unemployed",
        r"can(?:'t|not) afford",
        r"bankrupt\w*",
        r"evict\w*",
        r"homeless",
        r"domestic (?:violence|abuse)",
        r"\babusive\b",
        r"controlling my money",
        r"suicid\w*",
        r"end it all",
        r"depress(?:ed|ion)",
        r"mental health",
        r"being scammed",
        r"i(?:'ve| have) been scammed",
        r"\bcarer\b",
        r"\bcaregiver\b",
        r"just had surgery",
        r"\bpregnan\w*",
        r"don'?t understand (?:the )?(?:technology|computers)",
        r"\bstroke\b",
        r"recovering from",
        r"learning (?:disab\w*|difficult\w*)",
        r"\bautis\w*",
        r"\bdyslexi\w*",
        r"i'?m (?:7|8|9)\d\b",
        r"i am (?:7|8|9)\d\b",
        r"(?:grandson|granddaughter|daughter|son|niece|nephew) (?:usually |normally )?(?:helps|does this)",
        r"(?:made|been made) redundant",
        r"lost (?:his|her|their) job",
        r"(?:frightened|scared|afraid) of (?:him|her|my)",
        r"\bcoerc\w*",
        r"won'?t let me (?:see|have|use) (?:my|our) (?:own )?money",
        r"safe account",
        r"told me to (?:move|transfer) (?:my|all my)",
        r"hard (?:for me )?to (?:read|hear|see|use|understand)",
        r"(?:eyesight|hearing|memory) (?:is|has)",
    ),
    DISTRESSED: (
        r"\bscared\b",
        r"\bterrified\b",
        r"\bpanic\w*",
        r"freaking out",
        r"desperate\w*",
        r"stranded",
        r"stuck (?:abroad|here|at|in)\b",
        r"\bemergency\b",
        r"\burgent(?:ly)?\b",
        r"right now or",
        r"no money (?:for|left)",
        r"can'?t (?:buy|pay for) (?:food|groceries|medicine|rent)",
        r"help me,? please",
        r"please help",
        r"\bcrying\b",
        r"worried sick",
        r"i don'?t know what to do",
        r"losing my mind",
        r"all my money (?:is )?gone",
        r"my kids? (?:need|are hungry)",
        r"can'?t breathe",
        r"at my wits'? end",
        r"so stressed",
        r"\bshaking\b",
        r"\btrembling\b",
        r"\banxious\b",
        r"\banxiety\b",
        r"in tears",
        r"can'?t sleep|haven'?t slept",
        r"\bbeg(?:ging)?\b",
        r"no way (?:to get|of getting) home",
        r"(?:rent|mortgage) (?:is )?due",
        r"what am i supposed to do",
        r"don'?t know where to turn",
        r"(?:took|taken|emptied|wiped out|drained) (?:everything|all of it|my (?:whole )?account)",
        r"\bdevastated\b",
        r"\boverwhelmed\b",
        r"\bnightmare\b",
    ),
    ANGRY: (
        r"ridiculous",
        r"unacceptable",
        r"furious",
        r"\bangry\b",
        r"\bpissed\b",
        r"\boutrage\w*",
        r"disgrace\w*",
        r"\bworst\b",
        r"\buseless\b",
        r"incompeten\w*",
        r"what a joke",
        r"this is a joke",
        r"are you kidding",
        r"\bfed up\b",
        r"sick (?:and tired )?of",
        r"waste of (?:my )?time",
        r"\bterrible\b",
        r"\bhorrible\b",
        r"\bpathetic\b",
        r"\bdamn\b",
        r"\bdammit\b",
        r"\bhell\b",
        r"\bf+u+c+k\w*",
        r"\bsh[i1]t+\w*",
        r"\bcrap\b",
        r"\bstupid\b",
        r"\bidiot\w*",
        r"close my account",
        r"switching banks",
        r"\bsue\b",
        r"\blawyer\b",
        r"report you",
        r"(?:third|fourth|fifth|\d+(?:st|nd|rd|th)) time",
        r"how many times",
        r"\blivid\b",
        r"\bfuming\b",
        r"\bseething\b",
        r"\bclowns?\b",
        r"\bappalling\b",
        r"\batrocious\b",
        r"\bdisgusting\b",
        r"\bshambles\b",
        r"rip(?:ped)?[- ]off",
        r"daylight robbery",
        r"(?:you|you people|you lot|the bank) (?:stole|are stealing|robbed)",
        r"this is (?:a )?(?:scam|theft|robbery)",
        r"(?:had|have had) enough",
        r"enough is enough",
    ),
    REPEATED_FAILURE: (
        r"already (?:told|said|gave|explained|answered)",
        r"i (?:just )?said\b",
        r"you(?:'re| are) not listening",
        r"(?:not|isn'?t) what i (?:said|asked|meant)",
        r"that'?s not (?:it|what i)",
        r"still (?:not|doesn'?t|isn'?t|can'?t|won'?t)",
        r"repeat(?:ing)? myself",
        r"(?:you|it) (?:don'?t|doesn'?t) understand",
        r"not helping",
        r"keeps? (?:asking|saying)",
        r"going (?:round|around) in circles",
        r"again and again",
        r"same question",
        r"didn'?t work (?:again|either)",
        r"(?:asked|told) (?:me )?(?:that|this) (?:already|before)",
        r"(?:round|around) in circles",
        r"same (?:answer|reply|response|thing) (?:as )?(?:you gave|again|before)",
        r"(?:explained|told you|said) (?:this|that|it) (?:\w+ )?(?:twice|times)",
        r"not (?:my|the) question",
        r"you(?:'ve| have) (?:already )?(?:asked|said) that",
    ),
    WANTS_PERSON: (
        r"(?:talk|speak|chat) (?:to|with) (?:a |an |some |the )?(?:real |live |actual )?"
        r"(?:person|human|agent|someone|somebody|representative|manager|supervisor)",
        r"\breal (?:person|human)\b",
        r"\blive agent\b",
        r"\b(?:a|an) (?:human|agent|representative|operator)\b",
        r"^\s*(?:agent|human|operator|representative)\b",
        r"transfer me",
        r"put me through",
        r"get me (?:a|someone|somebody)",
        r"not (?:a|this) (?:bot|robot|machine)",
        r"\bno (?:more )?bots?\b",
        r"\b(?:actual|real) (?:human|person|people)\b",
        r"\bhuman being\b",
        r"someone real",
        # Asking for one, not claiming to be one ("as a supervisor I approve ..." is an injection attempt).
        r"(?:want|need|get|see|ask for|fetch)\s+(?:me\s+)?(?:a|the|your)\s+(?:manager|supervisor)\b",
        r"(?:speak|talk) to customer (?:service|support|care)",
    ),
    NEGATIVE: (
        r"annoy\w*",
        r"frustrat\w*",
        r"disappoint\w*",
        r"not happy",
        r"unhappy",
        r"\bupset\b",
        r"\bconfus\w*",
        r"\bworried\b",
        r"\bconcerned\b",
        r"\bnervous\b",
        r"\bbad\b",
        r"\bunfair\b",
        r"\bwrong\b",
        r"\bsucks?\b",
        r"\bugh+\b",
        r"\bseriously\?",
        r"\bwhy (?:is|was|did) (?:this|it) (?:so|taking)",
    ),
    POSITIVE: (
        r"\bthanks?\b",
        r"thank you",
        r"\bgreat\b",
        r"\bperfect\b",
        r"\bawesome\b",
        r"\bappreciate\w*",
        r"\bwonderful\b",
        r"\bexcellent\b",
        r"\bbrilliant\b",
        r"\bhelpful\b",
        r"\blovely\b",
        r"\bamazing\b",
        r"\bglad\b",
        r"\bhappy\b",
    ),
}
_COMPILED = {label: [re.compile(p, re.I) for p in patterns] for label, patterns in _CUES.items()}
_SCORES = {
    VULNERABLE: -0.6,
    DISTRESSED: -0.7,
    ANGRY: -0.8,
    REPEATED_FAILURE: -0.6,
    WANTS_PERSON: -0.3,
    NEGATIVE: -0.4,
    POSITIVE: 0.6,
    NEUTRAL: 0.0,
}
_NEGATED_POSITIVE = re.compile(
    r"\b(?:not|no|never|isn'?t|wasn'?t|hardly)\s+(?:\w+\s+)?(?:great|helpful|happy|good)", re.I
)
# What the assistant says when it did not understand; a customer who has heard it before is being failed.
NOT_UNDERSTOOD_REPLIES = ("didn't catch that", "didn't understand", "not sure i understood")


@dataclass(frozen=True, slots=True)
class Assessment:
    score: float
    label: str
    reason: str | None
    cues: tuple[str, ...] = ()  # every label that matched, most urgent first

    @property
    def escalate(self) -> bool:
        return self.label in ESCALATING

    def as_tuple(self) -> tuple[float, str, str | None]:
        return (self.score, self.label, self.reason)


def assess(text: str, case: Interaction | None = None) -> Assessment:
    """Assess one customer line, in the light of the conversation so far when ``case`` is given."""
    history: list[str] = []
    misses = 0
    if case is not None:
        customer = [line.text for line in case.transcript if line.speaker == "customer"]
        if customer and customer[-1] == text:
            customer = customer[:-1]  # the conductor folds the line in before understanding runs
        history = customer
        misses = sum(1 for r in case.refusals if r.get("reason") == "not understood") + sum(
            1
            for line in case.transcript
            if line.speaker not in ("customer",) and any(c in line.text.lower() for c in NOT_UNDERSTOOD_REPLIES)
        )
    return assess_text(text, history, misses)


def assess_text(text: str, history: Sequence[str] = (), misses: int = 0) -> Assessment:
    """``history``: the customer's earlier lines; ``misses``: how often the assistant has not understood."""
    found: list[tuple[str, str]] = []
    for label, patterns in _COMPILED.items():
        for pattern in patterns:
            if m := pattern.search(text):
                found.append((label, m.group(0).strip()))
                break
    if _shouting(text) and not any(label == ANGRY for label, _ in found):
        found.append((ANGRY, "shouting"))
    repeated = _repeats(text, history)
    if repeated is not None and not any(label == REPEATED_FAILURE for label, _ in found):
        found.append((REPEATED_FAILURE, repeated))
    elif misses >= 2 and not any(label == REPEATED_FAILURE for label, _ in found):
        found.append((REPEATED_FAILURE, f"not understood {misses} times"))
    if _NEGATED_POSITIVE.search(text):
        found = [(label, cue) for label, cue in found if label != POSITIVE]
        found.append((NEGATIVE, _NEGATED_POSITIVE.search(text).group(0)))  # type: ignore[union-attr]
    order = list(_SCORES)
    found.sort(key=lambda lc: order.index(lc[0]))
    if not found:
        return Assessment(0.0, NEUTRAL, None)
    label, cue = found[0]
    score = _SCORES[label]
    negatives = sum(1 for lbl, _ in found if _SCORES[lbl] < 0)
    if score < 0 and negatives > 1:
        score = max(-1.0, score - 0.1 * (negatives - 1))  # several cues at once: more upset
    reason = cue if cue in ("shouting",) or cue.startswith(("repeated", "not understood")) else f"said '{cue}'"
    return Assessment(round(score, 2), label, reason, tuple(dict.fromkeys(lbl for lbl, _ in found)))


def _shouting(text: str) -> bool:
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text)]
    caps = [w for w in words if w.isupper() and w not in ("PIN", "ATM", "USD", "ZIP", "MRI", "ER")]
    return (len(caps) >= 2 and len(caps) >= len(words) / 2) or "!!!" in text


def _repeats(text: str, history: Sequence[str]) -> str | None:
    """The customer says again what they said before: the assistant is failing them."""
    now = _norm(text)
    if len(now) < 8:
        return None  # "yes", "no" and the like repeat without anything failing
    for earlier in history[-4:]:
        if SequenceMatcher(None, now, _norm(earlier)).ratio() >= 0.8:
            return "repeated the same request"
    return None


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))
