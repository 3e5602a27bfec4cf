"""One protocol for every language-model provider: chat messages in, text and tool calls out, whole or
streamed. Providers (OpenAI-compatible, Anthropic) and the scripted test double all implement it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant's calls
    tool_call_id: str | None = None  # a tool result answers this call

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls("user", text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: Sequence[ToolCall] = ()) -> Message:
        return cls("assistant", text, tuple(tool_calls))

    @classmethod
    def tool(cls, call_id: str, result: str) -> Message:
        return cls("tool", result, tool_call_id=call_id)


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"  # stop, tool_calls, length, ... (normalised across providers)
    model: str = ""
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a streamed answer: some text, or a finished tool call; the last carries the whole."""

    text: str = ""
    tool_call: ToolCall | None = None
    completion: Completion | None = None


class LLMError(Exception):
    """The provider failed in a way the caller should degrade around (a fallback, a person)."""


class LLMTimeout(LLMError):
    pass


class LLMUnavailable(LLMError):
    """The provider kept failing (connection, 429, 5xx) after every retry."""


class LLMRequestError(LLMError):
    """The provider refused the request itself (4xx other than 408/429): retrying will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class LLM(Protocol):
    model: str

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> AsyncIterator[Chunk]: ...
