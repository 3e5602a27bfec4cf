from __future__ import annotations

import pytest

from tandem.llm.protocol import LLM, LLMUnavailable, Message
from tandem.llm.scripted import ScriptedLLM, ScriptExhausted, tool_call


async def test_the_scripted_model_answers_in_order_and_records_what_it_was_asked() -> None:
    llm: LLM = ScriptedLLM(["Hello!", tool_call("lookup_card", last4="4242"), lambda r: f"{len(r.messages)} messages"])
    assert (await llm.complete([Message.user("hi")])).text == "Hello!"
    called = await llm.complete([Message.user("check my card")])
    assert called.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in called.tool_calls] == [("lookup_card", {"last4": "4242"})]
    assert (await llm.complete([Message.user("a"), Message.user("b")])).text == "2 messages"
    assert isinstance(llm, ScriptedLLM)
    assert [r.messages[-1].content for r in llm.requests] == ["hi", "check my card", "b"]


async def test_the_scripted_model_streams_its_answer_in_pieces() -> None:
    llm = ScriptedLLM(["I can help with your declined card."], chunk_size=4)
    chunks = [c async for c in llm.stream([Message.user("declined")])]
    assert "".join(c.text for c in chunks) == "I can help with your declined card."
    assert chunks[-1].completion is not None
    assert llm.requests[0].streamed


async def test_a_scripted_failure_is_raised_so_callers_can_test_their_fallback() -> None:
    llm = ScriptedLLM([LLMUnavailable("down")])
    with pytest.raises(LLMUnavailable):
        await llm.complete([Message.user("hi")])
    with pytest.raises(ScriptExhausted):
        await llm.complete([Message.user("again")])
