"""What both HTTP providers share: timeouts, bounded retries with backoff, error mapping, SSE lines."""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from tandem.llm.protocol import LLMRequestError, LLMTimeout, LLMUnavailable

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class Retry:
    """Up to ``attempts`` tries in all; waits grow from ``base_s`` to ``max_s`` with jitter, or follow the
    provider's Retry-After (capped at ``max_s``)."""

    attempts: int = 3
    base_s: float = 0.25
    max_s: float = 4.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self.max_s, max(0.0, retry_after))
        return min(self.max_s, self.base_s * 2.0**attempt) * (0.5 + random.random() / 2)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check(response: httpx.Response) -> None:
    """Raise for an error status (the body must have been read): retryable ones for the retry loop, the rest
    as a request error."""
    if response.status_code < 400:
        return
    text = response.text[:500]
    if response.status_code in RETRYABLE_STATUS:
        raise _Retryable(f"{response.status_code}: {text}", _retry_after(response))
    raise LLMRequestError(response.status_code, _error_message(text))


async def with_retries(retry: Retry, call: Callable[[], Awaitable[T]]) -> T:
    last = ""
    for attempt in range(retry.attempts):
        try:
            return await call()
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
            if attempt == retry.attempts - 1:
                raise LLMTimeout(last) from exc
            wait = retry.delay(attempt, None)
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
            wait = retry.delay(attempt, None)
        except _Retryable as exc:
            last = str(exc)
            wait = retry.delay(attempt, exc.retry_after)
        if attempt < retry.attempts - 1:
            await asyncio.sleep(wait)
    raise LLMUnavailable(f"gave up after {retry.attempts} attempts: {last}")


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    *,
    headers: Mapping[str, str],
    request_timeout: httpx.Timeout | float,
    retry: Retry,
) -> dict[str, Any]:
    """POST a JSON body and return the JSON answer, retrying what the provider says may be retried."""

    async def call() -> dict[str, Any]:
        response = await client.post(url, json=body, headers=dict(headers), timeout=request_timeout)
        check(response)
        data: dict[str, Any] = response.json()
        return data

    return await with_retries(retry, call)


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events as (event name, data), data lines joined."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith(":"):
            continue
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield event, "\n".join(data)


def parse_arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """Tool-call arguments arrive as a JSON string (OpenAI) or an object (Anthropic); a model may send junk."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_value": value}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return text
