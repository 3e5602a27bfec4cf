"""A client for any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp, Ollama, ...):
chat, tool calls, streaming, timeouts and bounded retries, over httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from tandem.llm.http import Retry, check, parse_arguments, post_json, sse_events, with_retries
from tandem.llm.protocol import Chunk, Completion, LLMError, Message, Tool, ToolCall, Usage

_FINISH = {"stop": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls", "length": "length"}


class OpenAICompatible:
    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retry: Retry | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.retry = retry or Retry()
        headers = {"content-type": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = client or httpx.AsyncClient(timeout=self._timeout)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _body(
        self, messages: Sequence[Message], tools: Sequence[Tool], max_tokens: int, temperature: float | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in messages],
            "max_tokens": max_tokens,
        }
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in tools
            ]
        if temperature is not None:
            body["temperature"] = temperature
        return body

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> Completion:
        body = self._body(messages, tools, max_tokens, temperature)
        data = await post_json(
            self._client,
            f"{self.base_url}/chat/completions",
            body,
            headers=self._headers,
            request_timeout=self._timeout,
            retry=self.retry,
        )
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"unexpected response: {json.dumps(data)[:300]}") from exc
        calls = tuple(
            ToolCall(c["id"], c["function"]["name"], parse_arguments(c["function"].get("arguments")))
            for c in message.get("tool_calls") or []
        )
        usage = data.get("usage") or {}
        return Completion(
            text=message.get("content") or "",
            tool_calls=calls,
            finish_reason=_FINISH.get(choice.get("finish_reason") or "stop", str(choice.get("finish_reason"))),
            model=str(data.get("model") or self.model),
            usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> AsyncIterator[Chunk]:
        body = {
            **self._body(messages, tools, max_tokens, temperature),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # Retries cover opening the stream only: once text has reached the caller, a retry would repeat it.
        response = await with_retries(self.retry, lambda: self._open(body))
        text: list[str] = []
        partial: dict[int, dict[str, Any]] = {}
        finish = "stop"
        model = self.model
        usage = Usage()
        try:
            async for _event, data in sse_events(response):
                if data.strip() == "[DONE]":
                    break
                payload = json.loads(data)
                model = str(payload.get("model") or model)
                if payload.get("usage"):
                    u = payload["usage"]
                    usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
                for choice in payload.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        text.append(delta["content"])
                        yield Chunk(text=delta["content"])
                    for piece in delta.get("tool_calls") or []:
                        slot = partial.setdefault(int(piece.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                        slot["id"] = piece.get("id") or slot["id"]
                        function = piece.get("function") or {}
                        slot["name"] = function.get("name") or slot["name"]
                        slot["arguments"] += function.get("arguments") or ""
                    if choice.get("finish_reason"):
                        finish = _FINISH.get(choice["finish_reason"], str(choice["finish_reason"]))
        except httpx.TimeoutException as exc:
            raise LLMError(f"stream stalled: {type(exc).__name__}") from exc
        finally:
            await response.aclose()
        calls = tuple(
            ToolCall(slot["id"], slot["name"], parse_arguments(slot["arguments"]))
            for _, slot in sorted(partial.items())
        )
        for call in calls:
            yield Chunk(tool_call=call)
        yield Chunk(completion=Completion("".join(text), calls, finish, model, usage))

    async def _open(self, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request(
            "POST", f"{self.base_url}/chat/completions", json=body, headers=self._headers, timeout=self._timeout
        )
        response = await self._client.send(request, stream=True)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            check(response)
        return response


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id
    return out
