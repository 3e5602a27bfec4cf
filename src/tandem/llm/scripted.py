"""A scripted language model for tests: answers from a script, records every request, never touches a network.

    llm = ScriptedLLM(["Hello!", tool_call("lookup_card", last4="4242"), "Done."])
    await llm.complete([Message.user("hi")])      # -> Completion("Hello!")
    llm.requests[0].messages                       # what the caller sent

A step may also be a function of the request (to answer from what was asked), or an exception to raise (to
test how the caller degrades when the provider fails).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

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
