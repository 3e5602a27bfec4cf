"""One contract for every provider, run against a local server that speaks its wire protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tandem.llm.anthropic import Anthropic
from tandem.llm.http import Retry
from tandem.llm.openai import OpenAICompatible
from tandem.llm.protocol import (
    LLM,
    Chunk,
    LLMRequestError,
    LLMTimeout,
    LLMUnavailable,
    Message,
    Tool,
)
from tests.llm.servers import Plan, anthropic_app, openai_app, serve

CARD_TOOL = Tool(
    "release_hold",
    "Release the fraud hold on a card.",
    {"type": "object", "properties": {"last4": {"type": "string"}, "reason": {"type": "string"}}},
)
FAST_RETRY = Retry(attempts=3, base_s=0.01, max_s=0.05)


@dataclass
class Provider:
    name: str
    plan: Plan
    base_url: str
    clients: list[OpenAICompatible | Anthropic] = field(default_factory=list)

    def client(self, *, timeout_s: float = 5.0, retry: Retry = FAST_RETRY) -> LLM:
        client: OpenAICompatible | Anthropic
        if self.name == "openai":
            url = f"{self.base_url}/v1"
            client = OpenAICompatible("gpt-test", base_url=url, api_key="sk-test", timeout_s=timeout_s, retry=retry)
        else:
            url = self.base_url
            client = Anthropic("claude-test", base_url=url, api_key="ak-test", timeout_s=timeout_s, retry=retry)
        self.clients.append(client)
        return client


@pytest.fixture(params=["openai", "anthropic"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[Provider]:
    plan = Plan()
    app = openai_app(plan) if request.param == "openai" else anthropic_app(plan)
    with serve(app) as url:
        running = Provider(request.param, plan, url)
        yield running
        for client in running.clients:
            await client.aclose()


async def test_a_chat_turn_returns_the_models_text_and_token_usage(provider: Provider) -> None:
    llm = provider.client()
    done = await llm.complete([Message.system("Be brief."), Message.user("my card was declined")])
    assert done.text == "You said: my card was declined"
    assert done.finish_reason == "stop"
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    sent = provider.plan.requests[0]
    if provider.name == "anthropic":
        assert sent["system"] == "Be brief."  # Anthropic takes the system prompt beside the messages
        assert provider.plan.headers[0]["x-api-key"] == "ak-test"
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert provider.plan.headers[0]["authorization"] == "Bearer sk-test"


async def test_a_tool_call_comes_back_parsed_and_its_result_goes_back_in_the_providers_shape(
    provider: Provider,
) -> None:
    llm = provider.client()
    conversation = [Message.user("please release the hold on my card")]
    first = await llm.complete(conversation, tools=[CARD_TOOL])
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert call.name == "release_hold"
    assert call.arguments == {"last4": "4242", "reason": "travel"}
    conversation += [Message.assistant(first.text, first.tool_calls), Message.tool(call.id, "hold released")]
    second = await llm.complete(conversation, tools=[CARD_TOOL])
    assert second.text == "The tool said: hold released"
    assert not second.tool_calls


async def test_streaming_yields_text_as_it_arrives_then_the_whole_completion(provider: Provider) -> None:
    llm = provider.client()
    chunks: list[Chunk] = [c async for c in llm.stream([Message.user("where is my claim")])]
    pieces = [c.text for c in chunks if c.text]
    assert len(pieces) > 1
    assert "".join(pieces) == "You said: where is my claim"
    final = chunks[-1].completion
    assert final is not None and final.text == "You said: where is my claim"
    assert final.usage.output_tokens > 0


async def test_a_streamed_tool_call_is_assembled_from_its_pieces(provider: Provider) -> None:
    llm = provider.client()
    chunks = [c async for c in llm.stream([Message.user("release it")], tools=[CARD_TOOL])]
    calls = [c.tool_call for c in chunks if c.tool_call is not None]
    assert [(c.name, c.arguments) for c in calls] == [("release_hold", {"last4": "4242", "reason": "travel"})]
    final = chunks[-1].completion
    assert final is not None and final.finish_reason == "tool_calls" and final.tool_calls == tuple(calls)


async def test_overload_and_server_errors_are_retried_until_an_answer(provider: Provider) -> None:
    provider.plan.failures += [(429, {"retry-after": "0"}), (503, {})]
    done = await provider.client().complete([Message.user("balance")])
    assert done.text == "You said: balance"
    assert len(provider.plan.requests) == 3


async def test_retries_are_bounded_and_then_the_provider_is_reported_unavailable(provider: Provider) -> None:
    provider.plan.failures += [(500, {})] * 5
    with pytest.raises(LLMUnavailable):
        await provider.client().complete([Message.user("balance")])
    assert len(provider.plan.requests) == FAST_RETRY.attempts


async def test_a_refused_request_is_not_retried(provider: Provider) -> None:
    provider.plan.failures.append((400, {}))
    with pytest.raises(LLMRequestError) as raised:
        await provider.client().complete([Message.user("balance")])
    assert raised.value.status == 400
    assert "failing with 400" in str(raised.value)
    assert len(provider.plan.requests) == 1


async def test_a_stalled_provider_times_out_then_a_retry_succeeds(provider: Provider) -> None:
    provider.plan.failures.append("stall")
    done = await provider.client(timeout_s=0.3).complete([Message.user("hello")])
    assert done.text == "You said: hello"
    assert len(provider.plan.requests) == 2


async def test_a_provider_that_keeps_stalling_raises_a_timeout_the_caller_can_degrade_around(
    provider: Provider,
) -> None:
    provider.plan.failures += ["stall", "stall"]
    with pytest.raises(LLMTimeout):
        await provider.client(timeout_s=0.2, retry=Retry(attempts=2, base_s=0.01)).complete([Message.user("hi")])


async def test_a_failed_stream_open_is_retried_before_any_text_is_shown(provider: Provider) -> None:
    provider.plan.failures.append((502, {}))
    chunks = [c async for c in provider.client().stream([Message.user("hi")])]
    assert chunks[-1].completion is not None and chunks[-1].completion.text == "You said: hi"
