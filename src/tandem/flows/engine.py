"""The flow interpreter: runs a flow's steps for one turn against a host (the participant holding the floor).

A turn runs from the flow's first step (or from a named step after a hand-back, or from the question the
customer is answering) until a step waits for the customer (``ask``, a ``verify`` challenge), hands over, or the
steps run out. Every step is cheap to run again: ``verify`` says nothing once the leg is verified, ``fetch``
reads through the activator's per-interaction cache, ``ask`` skips a fact the case file already has. So a flow
needs no stored position: the case file is its state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tandem.flows.template import TemplateError
from tandem.release.flows import Flow, Step, arg_key

log = logging.getLogger(__name__)

# Steps one turn may run: a flow whose gotos loop hands over instead of spinning.
MAX_STEPS = 200
ALREADY_DONE_TEXT = "That's already taken care of: it went through earlier in our conversation."
ALREADY_PENDING_TEXT = "That request is already on its way; I'll confirm here as soon as it's done."
UNAVAILABLE_TEXT = "I can't reach those records right now, so I'll bring in someone who can look them up."


@dataclass(frozen=True, slots=True)
class FactEntry:
    subject: str | None
    value: Any
    source: str


FactView = Mapping[str, Sequence[FactEntry]]


class Host(Protocol):
    """What a flow needs from the participant running it."""

    goal: str
    text: str  # the customer's words this turn ("" when the turn is not a customer line)

    def facts(self) -> FactView: ...
    def customer(self) -> dict[str, Any]: ...
    def pending(self, name: str) -> bool: ...  # the floor asked for this since the customer last spoke
    def asked(self, name: str) -> bool: ...  # the floor asked for this at some time in the case
    async def verify(self, level: str) -> bool: ...
    async def fetch(self, intent: str) -> list[str] | None: ...  # signals that did not answer; None: no data
    def say(self, text: str) -> None: ...
    def ask(self, name: str, text: str) -> None: ...
    def learn(self, name: str, value: Any, source: str, subject: str | None = None) -> None: ...
    def propose(self, tool: str, args: dict[str, Any], why: str) -> str | None: ...
    def handoff(self, queue: str | None, reason: str, next_step: str) -> None: ...
    def answer(self, query: str) -> str | None: ...


class _Stop:
    pass


STOP = _Stop()
CONTINUE = None


@dataclass(frozen=True, slots=True)
class _Goto:
    target: str


Outcome = _Stop | _Goto | None


class FlowFailed(Exception):
    pass


@dataclass
class FlowRun:
    flow: Flow
    host: Host
    unavailable: list[str] = field(default_factory=list)
    ran: int = 0

    async def run(self, start: str | int | None = None) -> None:
        """Run the flow from the top, or from the top-level step ``start`` (its id or position; verification
        before it still runs: resuming never skips the assurance a flow asks for)."""
        steps = self.flow.steps
        i = 0
        try:
            if start is not None:
                at = start if isinstance(start, int) else self.flow.index(start)
                if at is None:
                    raise FlowFailed(f"flow {self.flow.name} has no step {start}")
                for step in steps[:at]:
                    if step.kind == "verify" and await self._step(step) is STOP:
                        return
                i = at
            while i < len(steps):
                outcome = await self._step(steps[i])
                if outcome is STOP:
                    return
                if isinstance(outcome, _Goto):
                    target = self.flow.index(outcome.target)
                    if target is None:
                        raise FlowFailed(f"goto {outcome.target}: no such step")
                    i = target
                    continue
                i += 1
        except (TemplateError, FlowFailed) as exc:
            log.warning("flow %s stopped: %s", self.flow.name, exc)
            self.host.handoff(self.flow.queue, f"{self.flow.name}: {exc}", "Help with the request.")

    async def _steps(self, steps: Sequence[Step]) -> Outcome:
        for step in steps:
            outcome = await self._step(step)
            if outcome is not CONTINUE:
                return outcome
        return CONTINUE

    async def _step(self, step: Step) -> Outcome:
        self.ran += 1
        if self.ran > MAX_STEPS:
            raise FlowFailed(f"more than {MAX_STEPS} steps in one turn (a goto loop at {step.where}?)")
        if step.when is not None and not step.when.holds(self.variables()):
            return CONTINUE
        handler = getattr(self, f"_{step.kind}")
        outcome: Outcome = await handler(step)
        return outcome

    # -- what conditions and templates see ---------------------------------------------------------------
    def variables(self) -> dict[str, Any]:
        facts = self.host.facts()
        out: dict[str, Any] = {name: entries[0].value for name, entries in facts.items() if entries}
        out["known"] = sorted(name for name, entries in facts.items() if entries)
        out["unavailable"] = list(self.unavailable)
        out["goal"] = self.host.goal
        return out

    def view(self) -> dict[str, Any]:
        facts = self.host.facts()
        view = self.variables()
        view["subject"] = {name: entries[0].subject for name, entries in facts.items() if entries}
        view["customer"] = self.host.customer()
        return view

    # -- the step kinds ---------------------------------------------------------------------------------
    async def _verify(self, step: Step) -> Outcome:
        return CONTINUE if await self.host.verify(str(step.arg)) else STOP

    async def _fetch(self, step: Step) -> Outcome:
        missing = await self.host.fetch(str(step.arg))
        self.unavailable = list(missing or [])
        if missing is not None and not missing:
            return CONTINUE
        if "if_unavailable" in step.children:
            return await self._steps(step.children["if_unavailable"])
        self.host.say(UNAVAILABLE_TEXT)
        what = ", ".join(missing) if missing else "no data source is connected"
        self.host.handoff(
            self.flow.queue, f"{self.flow.name}: records unavailable ({what})", "Look the records up and help."
        )
        return STOP

    async def _say(self, step: Step) -> Outcome:
        assert step.text is not None
        view = self.view()
        each = step.options.get("for_each")
        if each is not None:
            assert step.item is not None
            entries = self.host.facts().get(each) or []
            if not entries:
                raise TemplateError(f"the case file has no {each} to list")
            view["items"] = str(step.options.get("join", "; ")).join(
                step.item.render(self._about(view, each, entry)) for entry in entries
            )
        self.host.say(step.text.render(view))
        offered = step.options.get("offer")
        if offered is not None:
            self.host.learn("offered_next", offered, "bot")
        return CONTINUE

    def _about(self, view: dict[str, Any], name: str, entry: FactEntry) -> dict[str, Any]:
        """The view for one item of a for_each: the fact is that item, and every fact about the same
        subject is that subject's."""
        item = dict(view)
        subjects = dict(view["subject"])
        item[name], subjects[name] = entry.value, entry.subject
        if entry.subject is not None:
            for other, entries in self.host.facts().items():
                if other == name or all(e.subject is None for e in entries):
                    continue
                same = next((e for e in entries if e.subject == entry.subject), None)
                if same is not None:
                    item[other], subjects[other] = same.value, same.subject
                else:  # about other subjects only: never mix another claim's facts into this one's sentence
                    item.pop(other, None)
                    subjects.pop(other, None)
        item["subject"] = subjects
        return item

    async def _ask(self, step: Step) -> Outcome:
        name = str(step.arg)
        if self.host.facts().get(name):
            return CONTINUE
        choose_from = step.options.get("choose_from")
        if choose_from is not None:
            chosen = self._choose(str(choose_from))
            if chosen is not None:
                value = dict(chosen.value) if isinstance(chosen.value, Mapping) else {"value": chosen.value}
                if chosen.subject and ":" in chosen.subject:
                    kind, _, ident = chosen.subject.partition(":")
                    value[f"{kind}_id"] = ident
                self.host.learn(name, value, chosen.source, chosen.subject)
                return CONTINUE
        elif step.options.get("free_text", True) and self.host.pending(name) and self.host.text.strip():
            # The customer is answering this very question: their words are the answer.
            self.host.learn(name, self.host.text.strip()[:200], "customer")
            return CONTINUE
        if self.host.asked(name):
            # Asked once already and still not known: a person, not the same question again.
            self.host.handoff(
                self.flow.queue,
                f"{self.flow.name}: could not tell the {name.replace('_', ' ')} from what the customer said",
                f"Ask which {name.replace('_', ' ')} they mean.",
            )
            return STOP
        assert step.text is not None
        self.host.ask(name, step.text.render(self.view()))
        return STOP

    def _choose(self, candidates: str) -> FactEntry | None:
        """The candidate the customer's words point at: the amount they mentioned, or a word of it they said."""
        facts = self.host.facts()
        words = self.host.text.lower()
        described = facts.get("disputed_charge_description") or []
        if described:
            words += " " + str(described[0].value).lower()
        amounts = [e.value for e in facts.get("mentioned_amount") or []]
        for entry in facts.get(candidates) or []:
            value = entry.value
            if isinstance(value, Mapping):
                if any(value.get("amount") == amount for amount in amounts):
                    return entry
                names = [v for v in value.values() if isinstance(v, str) and re.search(r"[a-z]{3,}", v.lower())]
                if any(re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", words) for n in names):
                    return entry
        return None

    async def _branch(self, step: Step) -> Outcome:
        for condition, steps in step.arms:
            if condition is None or condition.holds(self.variables()):
                return await self._steps(steps)
        return CONTINUE

    async def _propose(self, step: Step) -> Outcome:
        view = self.view()
        args = {name: self._arg(step, raw, (name,), view) for name, raw in step.arg["args"].items()}
        why = step.templates["why"].render(view)
        outcome = self.host.propose(str(step.arg["tool"]), args, why)
        if outcome == "done":
            self.host.say(ALREADY_DONE_TEXT)
            return CONTINUE
        if outcome == "pending":
            self.host.say(ALREADY_PENDING_TEXT)
            return STOP
        if outcome == "allow":
            arm = step.children.get("on_allow", ())
        elif outcome == "require_approval":
            arm = step.children.get("on_approval") or step.children.get("on_deny", ())
        else:  # denied, or no policy gate: the bot cannot act, a person can
            arm = step.children.get("on_deny", ())
        return await self._steps(arm)

    def _arg(self, step: Step, raw: Any, path: tuple[str | int, ...], view: Mapping[str, Any]) -> Any:
        """One argument with every text inside it rendered, however deep in lists and maps."""
        if isinstance(raw, Mapping):
            return {key: self._arg(step, item, (*path, str(key)), view) for key, item in raw.items()}
        if isinstance(raw, list):
            return [self._arg(step, item, (*path, i), view) for i, item in enumerate(raw)]
        template = step.templates.get(arg_key(path))
        return template.value(view) if template is not None else raw

    async def _answer(self, step: Step) -> Outcome:
        # The flow's topic first: it is what the flow is for; the customer's words when the flow names none.
        queries = [q for q in (step.arg, self.host.text) if q]
        for query in queries:
            text = self.host.answer(str(query))
            if text:
                self.host.say(text)
                return CONTINUE
        if "otherwise" in step.children:
            return await self._steps(step.children["otherwise"])
        self.host.handoff(self.flow.queue, f"{self.flow.name}: no article answers it", "Answer the question.")
        return STOP

    async def _handoff(self, step: Step) -> Outcome:
        view = self.view()
        reason = step.templates["reason"].render(view)
        nxt = step.templates["next"].render(view) if "next" in step.templates else "Help with the request."
        self.host.handoff(step.arg.get("queue") or self.flow.queue, reason, nxt)
        return STOP

    async def _goto(self, step: Step) -> Outcome:
        return _Goto(str(step.arg))
