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
from collections.abc import AsyncIterator, Callable, Sequence
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
    """

    def __init__(self) -> None:
        super().__init__(model="scripted-flows")

    def _next(self, request: Request) -> Completion:
        # No script to run out of: every request is answered by the rules above.
        self.requests.append(request)
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


def _planner_context(messages: Sequence[Message]) -> dict[str, Any]:
    """The JSON document the planner puts after ``CONTEXT_HEADER`` in its last user message."""
    for message in reversed(messages):
        if message.role == "user" and CONTEXT_HEADER in message.content:
            loaded = json.loads(message.content.split(CONTEXT_HEADER, 1)[1])
            return loaded if isinstance(loaded, dict) else {}
    raise ScriptExhausted("no planner context in the request: the scripted flow model only answers the planner")
