"""A scripted language model for tests: answers from a script, records every request, never touches a network.

    llm = ScriptedLLM(["Hello!", tool_call("lookup_card", last4="4242"), "Done."])
    await llm.complete([Message.user("hi")])      # -> Completion("Hello!")
    llm.requests[0].messages                       # what the caller sent

A step may also be a function of the request (to answer from what was asked), or an exception to raise (to
test how the caller degrades when the provider fails).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tandem.llm.protocol import Chunk, Completion, LLMError, Message, Tool, ToolCall, Usage

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Request:
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...]
    max_tokens: int
    temperature: float | None
    streamed: bool


Step = str | Completion | BaseException | Callable[[Request], "str | Completion"]


def tool_call(name: str, /, **arguments: object) -> Completion:
    """A completion that calls one tool."""
    return Completion("", (ToolCall(f"call_{next(_ids)}", name, dict(arguments)),), finish_reason="tool_calls")


class ScriptExhausted(LLMError):
    pass


class ScriptedLLM:
    def __init__(self, script: Sequence[Step] = (), *, model: str = "scripted", chunk_size: int = 8) -> None:
        self.model = model
        self.script = list(script)
        self.requests: list[Request] = []
        self.chunk_size = chunk_size

    def add(self, *steps: Step) -> None:
        self.script.extend(steps)

    def _next(self, request: Request) -> Completion:
        self.requests.append(request)
        if not self.script:
            raise ScriptExhausted(f"the script has no answer for request {len(self.requests)}")
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step) and not isinstance(step, Completion):
            step = step(request)
        if isinstance(step, str):
            step = Completion(step)
        words = sum(len(m.content.split()) for m in request.messages)
        usage = Usage(input_tokens=words, output_tokens=len(step.text.split()))
        return Completion(step.text, step.tool_calls, step.finish_reason, step.model or self.model, usage)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> Completion:
        return self._next(Request(tuple(messages), tuple(tools), max_tokens, temperature, streamed=False))

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> AsyncIterator[Chunk]:
        completion = self._next(Request(tuple(messages), tuple(tools), max_tokens, temperature, streamed=True))
        for i in range(0, len(completion.text), self.chunk_size):
            yield Chunk(text=completion.text[i : i + self.chunk_size])
        for call in completion.tool_calls:
            yield Chunk(tool_call=call)
        yield Chunk(completion=completion)


class ScriptedFlowLLM(ScriptedLLM):
    """A deterministic stand-in for the model behind the flow planner (``tandem.participants.flow_planner``):
    it reads the planner's context document and answers with the tool call a careful model would make, so the
    planner can be run through every reference scenario without a provider, and give the same result each time.

    Its rules, in order: a detected intent some flow serves starts that flow; "yes" to what a flow offered starts
    the offered flow; otherwise the conversation's current flow goes on; otherwise no call at all (the planner
    then says it did not understand, or keeps a queued customer company). Select it with
    ``TANDEM_LLM=scripted:flows``.

    It also does the writing duties the same setting turns on: a case summary is the case file's reason, facts
    and handoff in a few sentences, every word taken from the document it is given
    (``tandem.participants.summarizer``); a re-worded reply is the template with its who-contractions spelled out
    and, for an upset customer, an apology in front: the same facts in other words
    (``tandem.participants.phrasing``).
    """

    def __init__(self) -> None:
        super().__init__(model="scripted-flows")

    def _next(self, request: Request) -> Completion:
        # No script to run out of: every request is answered by the rules above.
        self.requests.append(request)
        document = _document(request.messages, SUMMARY_HEADER)
        if document is not None:
            return Completion(_summary(document), model=self.model)
        document = _document(request.messages, PHRASING_HEADER)
        if document is not None:
            return Completion(
                _reworded(str(document.get("text") or ""), document.get("customer_sentiment")), model=self.model
            )
        context = _planner_context(request.messages)
        flows = {str(f["name"]): f for f in context.get("flows") or []}
        by_intent = {str(i): name for name, f in flows.items() for i in f.get("intents") or []}
        intents = [(str(n), float(c)) for n, c in (context.get("understanding") or {}).get("intents") or []]
        for name, confidence in intents:
            if name in by_intent and confidence >= 0.5:
                return tool_call("start_flow", name=by_intent[name])
        offered = context.get("offered_next")
        if intents and intents[0][0] == "affirm" and offered in flows:
            return tool_call("start_flow", name=offered)
        current = context.get("current_flow")
        if current in flows:
            return tool_call("start_flow", name=current)
        return Completion("", finish_reason="stop", model=self.model)


CONTEXT_HEADER = "CONTEXT (JSON):"
SUMMARY_HEADER = "CASE FILE (JSON):"
PHRASING_HEADER = "REPLY (JSON):"
UPSET = frozenset({"angry", "distressed", "vulnerable", "repeated_failure", "negative"})
# Who-contractions only: "didn't" and "doesn't" stay as they are (a customer reading "doesn't match" is told
# the same thing either way, and scripts that look for the template's words still find them).
_SPELLED_OUT = {
    "I'm": "I am", "I'll": "I will", "I've": "I have", "you'll": "you will", "You'll": "You will",
    "they'll": "they will", "They'll": "They will", "you're": "you are", "You're": "You are",
    "There's": "There is", "there's": "there is", "that's": "that is", "That's": "That is",
}  # fmt: skip


def _document(messages: Sequence[Message], header: str) -> dict[str, Any] | None:
    """The JSON document after ``header`` in the last user message, if that is what was sent."""
    for message in reversed(messages):
        if message.role == "user":
            if header not in message.content:
                return None
            loaded = json.loads(message.content.split(header, 1)[1])
            return loaded if isinstance(loaded, dict) else {}
    return None


def _summary(doc: Mapping[str, Any]) -> str:
    customer = doc.get("customer") or {}
    who = customer.get("name") or "The customer"
    identity = str((doc.get("identity") or {}).get("assurance") or "none").replace("_", " ")
    out = [f"{who} came about {doc.get('reason') or 'something not yet known'} (identity {identity})."]
    facts = doc.get("facts") or []
    if facts:
        out.append("The records show " + "; ".join(f"{f['fact']} {f['value']} ({f['source']})" for f in facts) + ".")
    handoff = doc.get("handoff") or {}
    if handoff:
        out.append(f"They were handed over to {handoff.get('to')}: {handoff.get('reason')}.")
    still = doc.get("open") or []
    if still:
        out.append("Open: " + "; ".join(still) + ".")
    return " ".join(out)


def _reworded(text: str, sentiment: Any) -> str:
    worded = " ".join(_SPELLED_OUT.get(word, word) for word in text.split(" "))
    return f"I am sorry for the trouble. {worded}" if sentiment in UPSET else worded


def _planner_context(messages: Sequence[Message]) -> dict[str, Any]:
    """The JSON document the planner puts after ``CONTEXT_HEADER`` in its last user message."""
    for message in reversed(messages):
        if message.role == "user" and CONTEXT_HEADER in message.content:
            loaded = json.loads(message.content.split(CONTEXT_HEADER, 1)[1])
            return loaded if isinstance(loaded, dict) else {}
    raise ScriptExhausted("no planner context in the request: the scripted flow model only answers the planner")
