"""A client for Anthropic's Messages API: chat, tool use, streaming, timeouts and bounded retries, over httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from tandem.llm.http import Retry, check, parse_arguments, post_json, sse_events, with_retries
from tandem.llm.protocol import Chunk, Completion, LLMError, Message, Tool, ToolCall, Usage

API_VERSION = "2023-06-01"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length"}


class Anthropic:
    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.anthropic.com",
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retry: Retry | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.retry = retry or Retry()
        self._headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
        if api_key:
            self._headers["x-api-key"] = api_key
        self._timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
        self._client = client or httpx.AsyncClient(timeout=self._timeout)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _body(
        self, messages: Sequence[Message], tools: Sequence[Tool], max_tokens: int, temperature: float | None
    ) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": _messages(messages)}
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
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
            f"{self.base_url}/v1/messages",
            body,
            headers=self._headers,
            request_timeout=self._timeout,
            retry=self.retry,
        )
        if not isinstance(data.get("content"), list):
            raise LLMError(f"unexpected response: {json.dumps(data)[:300]}")
        text = "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
        calls = tuple(
            ToolCall(b["id"], b["name"], parse_arguments(b.get("input")))
            for b in data["content"]
            if b.get("type") == "tool_use"
        )
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            tool_calls=calls,
            finish_reason=_FINISH.get(str(data.get("stop_reason")), str(data.get("stop_reason"))),
            model=str(data.get("model") or self.model),
            usage=Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
        )

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Tool] = (),
        max_tokens: int = 1024,
        temperature: float | None = None,
    ) -> AsyncIterator[Chunk]:
        body = {**self._body(messages, tools, max_tokens, temperature), "stream": True}
        # Retries cover opening the stream only: once text has reached the caller, a retry would repeat it.
        response = await with_retries(self.retry, lambda: self._open(body))
        text: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        calls: list[ToolCall] = []
        finish = "stop"
        model = self.model
        input_tokens = output_tokens = 0
        try:
            async for event, data in sse_events(response):
                payload = json.loads(data)
                kind = event or payload.get("type")
                if kind == "message_start":
                    message = payload.get("message") or {}
                    model = str(message.get("model") or model)
                    input_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
                elif kind == "content_block_start":
                    block = payload.get("content_block") or {}
                    blocks[int(payload.get("index", 0))] = {**block, "partial_json": ""}
                elif kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    slot = blocks.setdefault(int(payload.get("index", 0)), {"type": "text", "partial_json": ""})
                    if delta.get("type") == "text_delta":
                        text.append(delta.get("text", ""))
                        yield Chunk(text=delta.get("text", ""))
                    elif delta.get("type") == "input_json_delta":
                        slot["partial_json"] += delta.get("partial_json", "")
                elif kind == "content_block_stop":
                    slot = blocks.get(int(payload.get("index", 0))) or {}
                    if slot.get("type") == "tool_use":
                        call = ToolCall(
                            slot["id"], slot["name"], parse_arguments(slot["partial_json"] or slot.get("input"))
                        )
                        calls.append(call)
                        yield Chunk(tool_call=call)
                elif kind == "message_delta":
                    reason = (payload.get("delta") or {}).get("stop_reason")
                    if reason:
                        finish = _FINISH.get(reason, reason)
                    output_tokens = int((payload.get("usage") or {}).get("output_tokens") or output_tokens)
                elif kind == "error":
                    raise LLMError(f"stream error: {(payload.get('error') or {}).get('message', data)}")
                elif kind == "message_stop":
                    break
        except httpx.TimeoutException as exc:
            raise LLMError(f"stream stalled: {type(exc).__name__}") from exc
        finally:
            await response.aclose()
        usage = Usage(input_tokens, output_tokens)
        yield Chunk(completion=Completion("".join(text), tuple(calls), finish, model, usage))

    async def _open(self, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request(
            "POST", f"{self.base_url}/v1/messages", json=body, headers=self._headers, timeout=self._timeout
        )
        response = await self._client.send(request, stream=True)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            check(response)
        return response


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Anthropic's shape: no system turns, tool results as user turns, consecutive same-role turns merged."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        blocks: list[dict[str, Any]]
        if m.role == "tool":
            role = "user"
            blocks = [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
        else:
            role = m.role
            blocks = [{"type": "text", "text": m.content}] if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in m.tool_calls]
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out
