"""Language-model providers behind one protocol (:class:`tandem.llm.protocol.LLM`): an OpenAI-compatible
client, an Anthropic client, and a scripted double for tests."""

from tandem.llm.protocol import (
    LLM,
    Chunk,
    Completion,
    LLMError,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    Message,
    Tool,
    ToolCall,
    Usage,
)

__all__ = [
    "LLM",
    "Chunk",
    "Completion",
    "LLMError",
    "LLMRequestError",
    "LLMTimeout",
    "LLMUnavailable",
    "Message",
    "Tool",
    "ToolCall",
    "Usage",
]
