"""Local stand-ins that speak the OpenAI chat-completions and Anthropic Messages wire protocols.

Each answers deterministically from the request (a tool call when tools are offered and no tool result is in
the conversation yet, otherwise text echoing the last user or tool message) and can be told to fail first:
an error status (with Retry-After), or a stall longer than the client's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

STALL_S = 3.0  # longer than any client timeout the tests set; bounded so the server always shuts down


@dataclass
class Plan:
    """What the server does with the next requests, in order; then it answers normally."""

    failures: list[tuple[int, dict[str, str]] | str] = field(default_factory=list)  # (status, headers) or "stall"
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _answer(body: dict[str, Any], tool_result: str | None, last_user: str) -> tuple[str, dict[str, Any] | None]:
    if body.get("tools") and tool_result is None:
        tool = body["tools"][0]
        name = tool["function"]["name"] if "function" in tool else tool["name"]
        return "", {"name": name, "arguments": {"last4": "4242", "reason": "travel"}}
    if tool_result is not None:
        return f"The tool said: {tool_result}", None
    return f"You said: {last_user}", None


async def _gate(plan: Plan, request: Request) -> tuple[dict[str, Any], Response | None]:
    body = await request.json()
    plan.requests.append(body)
    plan.headers.append(dict(request.headers))
    if plan.failures:
        failure = plan.failures.pop(0)
        if failure == "stall":
            # Answers nothing until the client has given up (bounded, so the server can always stop).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), STALL_S)
        else:
            status, headers = failure
            return body, JSONResponse({"error": {"message": f"failing with {status}"}}, status, headers=headers)
    return body, None


def openai_app(plan: Plan) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body, failed = await _gate(plan, request)
        if failed is not None:
            return failed
        messages = body["messages"]
        tool_result = next((m["content"] for m in reversed(messages) if m["role"] == "tool"), None)
        last_user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        text, call = _answer(body, tool_result, last_user)
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if call:
                message["tool_calls"] = [
                    {"id": "call_1", "type": "function",
                     "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
                ]  # fmt: skip
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7},
                }
            )

        async def events() -> AsyncIterator[str]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                return f"data: {json.dumps({'model': body['model'], 'choices': [choice]})}\n\n"

            yield chunk({"role": "assistant"})
            for i in range(0, len(text), 5):
                yield chunk({"content": text[i : i + 5]})
            if call:
                args = json.dumps(call["arguments"])
                half = len(args) // 2
                first = {"index": 0, "id": "call_1", "type": "function"}
                yield chunk({"tool_calls": [{**first, "function": {"name": call["name"], "arguments": args[:half]}}]})
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[half:]}}]})
            yield chunk({}, "tool_calls" if call else "stop")
            usage = {"model": body["model"], "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}}
            yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def anthropic_app(plan: Plan) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        body, failed = await _gate(plan, request)
        if failed is not None:
            return failed
        tool_result = None
        last_user = ""
        for m in body["messages"]:
            for block in m["content"]:
                if block["type"] == "tool_result":
                    tool_result = block["content"]
                elif block["type"] == "text" and m["role"] == "user":
                    last_user = block["text"]
        text, call = _answer(body, tool_result, last_user)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        if call:
            content.append({"type": "tool_use", "id": "toolu_1", "name": call["name"], "input": call["arguments"]})
        stop = "tool_use" if call else "end_turn"
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": stop,
                    "usage": {"input_tokens": 13, "output_tokens": 5},
                }
            )

        async def events() -> AsyncIterator[str]:
            def event(name: str, data: dict[str, Any]) -> str:
                return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

            start = {"id": "msg_1", "model": body["model"], "content": [], "usage": {"input_tokens": 13}}
            yield event("message_start", {"message": start})
            yield event("ping", {})
            index = 0
            if text:
                yield event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                for i in range(0, len(text), 5):
                    delta = {"type": "text_delta", "text": text[i : i + 5]}
                    yield event("content_block_delta", {"index": index, "delta": delta})
                yield event("content_block_stop", {"index": index})
                index += 1
            if call:
                block = {"type": "tool_use", "id": "toolu_1", "name": call["name"], "input": {}}
                yield event("content_block_start", {"index": index, "content_block": block})
                args = json.dumps(call["arguments"])
                for piece in (args[:7], args[7:]):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    yield event("content_block_delta", {"index": index, "delta": delta})
                yield event("content_block_stop", {"index": index})
            yield event("message_delta", {"delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}})
            yield event("message_stop", {})

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    started = threading.Event()

    def wait_started() -> None:
        while not server.started and thread.is_alive():
            started.wait(0.01)

    waiter = threading.Thread(target=wait_started)
    waiter.start()
    waiter.join(timeout=10)
    if not server.started:
        raise RuntimeError("the stand-in server did not start within 10 s")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
