"""Bad requests get a clear 4xx in the one error shape, and write nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from tandem.case import events as ev
from tandem.conductor import Input, TurnResult
from tests.api.conftest import ADMIN_TOKEN, Api


def assert_error(r: httpx.Response, status: int, code: str, mentions: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    error: dict[str, Any] = r.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == r.headers["x-request-id"]
    assert mentions.lower() in error["message"].lower()
    assert "Traceback" not in r.text
    return error


async def test_malformed_json_is_a_400_and_writes_nothing(api: Api) -> None:
    chat = await api.chat()
    before = await api.all_events()
    r = await api.client.post(
        f"/v1/interactions/{chat.id}/messages", content=b'{"text": "hi"', headers=api.auth(chat.token)
        | {"content-type": "application/json"},
    )  # fmt: skip
    assert_error(r, 400, "invalid_request", "not valid JSON")
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, ["a", "list"])
    assert_error(r, 400, "invalid_request", "JSON object")
    assert await api.all_events() == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"text": "hi", "urgent": True}, "unknown field urgent"),
        ({"text": "x" * 4097}, "at most 4096 characters"),
        ({}, "exactly one of text or digits"),
        ({"text": "hi", "digits": "12"}, "exactly one of text or digits"),
        ({"digits": "12ab"}, "digits"),
        ({"text": "   "}, "blank"),
        ({"text": "hi", "leg_id": "leg_nope"}, "no leg leg_nope"),
    ],
)
async def test_an_invalid_message_is_a_422_naming_the_problem_and_writes_nothing(
    api: Api, body: dict[str, Any], mentions: str
) -> None:
    chat = await api.chat()
    before = await api.all_events()
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, body)
    assert_error(r, 422, "invalid_request", mentions)
    assert await api.all_events() == before


async def test_text_of_exactly_4096_characters_is_accepted(api: Api) -> None:
    chat = await api.chat()
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "x" * 4096})
    assert r.status_code == 200


async def test_a_body_over_64_kilobytes_is_refused_before_it_is_read(api: Api) -> None:
    chat = await api.chat()
    before = await api.all_events()
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "x" * 70_000})
    assert_error(r, 413, "payload_too_large", "64")
    assert await api.all_events() == before


async def test_unknown_fields_are_refused_on_every_kind_of_body(api: Api) -> None:
    agent = await api.staff("Cora")
    r = await api.call("POST", "/v1/agents", ADMIN_TOKEN, {"name": "X", "skills": ["cards"], "level": 9})
    assert_error(r, 422, "invalid_request", "unknown field level")
    r = await api.call("PUT", f"/v1/agents/{agent.id}/presence", agent.token, {"status": "available", "mood": "ok"})
    assert_error(r, 422, "invalid_request", "unknown field mood")
    r = await api.call("POST", "/v1/interactions", None, {"channel": "chat", "customer": {"name": "A", "vip": True}})
    assert_error(r, 422, "invalid_request", "unknown field customer.vip")
    r = await api.call("POST", "/v1/agents", ADMIN_TOKEN, {"name": "X", "skills": ["knitting"]})
    assert_error(r, 422, "invalid_request", "unknown skills knitting")


async def test_unknown_ids_are_404_in_the_error_shape(api: Api) -> None:
    agent = await api.staff("Cora")
    chat = await api.chat()
    await api.hand_over(chat)
    await api.take(agent, chat)
    before = await api.all_events()
    assert_error(await api.call("GET", "/v1/interactions/int_nope", ADMIN_TOKEN), 404, "not_found", "int_nope")
    r = await api.call("POST", "/v1/interactions/int_nope/messages", agent.token, {"text": "hi"})
    assert_error(r, 404, "not_found")
    r = await api.call("POST", "/v1/offers/ofr_nope/accept", agent.token)
    assert_error(r, 404, "not_found", "ofr_nope")
    r = await api.call("POST", f"/v1/interactions/{chat.id}/actions/act_nope/approve", agent.token, {})
    assert_error(r, 404, "not_found", "act_nope")
    assert_error(await api.call("GET", "/v1/nothing-here", ADMIN_TOKEN), 404, "not_found")
    assert_error(await api.call("DELETE", f"/v1/interactions/{chat.id}", ADMIN_TOKEN), 405, "method_not_allowed")
    assert await api.all_events() == before


async def test_a_message_to_a_closed_interaction_is_a_conflict_and_writes_nothing(api: Api) -> None:
    chat = await api.chat()
    assert (await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})).json() == {"status": "closed"}
    # Closing writes the case summary after the close: once it is there, nothing more may be written.
    assert api.runtime.summaries is not None
    await api.runtime.summaries.step()
    before = await api.all_events()
    assert before[-1].type == ev.SUMMARY_WRITTEN
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "still there?"})
    assert_error(r, 409, "interaction_closed", "closed")
    r = await api.call("POST", f"/v1/interactions/{chat.id}/close", chat.token, {})
    assert_error(r, 409, "interaction_closed")
    assert await api.all_events() == before


async def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer_without_writing_again(api: Api) -> None:
    chat = await api.chat()
    path = f"/v1/interactions/{chat.id}/messages"
    key = {"Idempotency-Key": "msg-1"}
    first = await api.call("POST", path, chat.token, {"text": "pay my bill"}, headers=key)
    after_first = await api.all_events()
    # The same body written differently is the same request.
    retry = await api.client.post(
        path, content=b'{ "text" :  "pay my bill" }',
        headers=api.auth(chat.token) | key | {"content-type": "application/json"},
    )  # fmt: skip
    assert retry.status_code == first.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert await api.all_events() == after_first
    said = [e for e in await api.events(chat.id) if e.type == "CustomerSaid"]
    assert [e.data["text"] for e in said] == ["pay my bill"]


async def test_the_same_idempotency_key_with_another_body_is_a_422_and_writes_nothing(api: Api) -> None:
    chat = await api.chat()
    path = f"/v1/interactions/{chat.id}/messages"
    key = {"Idempotency-Key": "msg-2"}
    assert (await api.call("POST", path, chat.token, {"text": "one"}, headers=key)).status_code == 200
    before = await api.all_events()
    r = await api.call("POST", path, chat.token, {"text": "two"}, headers=key)
    assert_error(r, 422, "idempotency_key_reused", "different body")
    assert await api.all_events() == before


async def test_idempotency_keys_are_scoped_to_the_caller_and_the_route(api: Api) -> None:
    one, two = await api.chat(), await api.chat()
    key = {"Idempotency-Key": "same-key"}
    a = await api.call("POST", f"/v1/interactions/{one.id}/messages", one.token, {"text": "hi"}, headers=key)
    b = await api.call("POST", f"/v1/interactions/{two.id}/messages", two.token, {"text": "hi"}, headers=key)
    assert a.status_code == b.status_code == 200
    assert "idempotent-replayed" not in b.headers
    assert a.json()["seq"] == b.json()["seq"]  # the same step of two different interactions, both written
    assert len([e for e in await api.events(two.id) if e.type == "CustomerSaid"]) == 1


async def test_an_unexpected_failure_is_a_500_with_a_request_id_and_no_trace(api: Api) -> None:
    chat = await api.chat()

    async def broken(inp: Input) -> TurnResult:
        raise RuntimeError("secret internals: /etc/passwd")

    api.runtime.conductor.handle = broken  # type: ignore[method-assign]
    r = await api.call("POST", f"/v1/interactions/{chat.id}/messages", chat.token, {"text": "hi"})
    error = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text and "RuntimeError" not in r.text
    assert error["request_id"].startswith("req_")


async def test_a_caller_chosen_request_id_is_echoed_for_tracing(api: Api) -> None:
    r = await api.call("GET", "/v1/interactions/int_nope", ADMIN_TOKEN, headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    assert r.json()["error"]["request_id"] == "trace-42"


async def test_a_bad_token_is_401_even_where_anonymous_callers_are_welcome(api: Api) -> None:
    r = await api.call("POST", "/v1/interactions", "tdm_forged", {"channel": "chat"})
    assert_error(r, 401, "unauthorized", "unknown or expired token")
    assert r.headers["www-authenticate"] == "Bearer"
    r = await api.client.get("/v1/me", headers={"Authorization": "Basic YTpi"})
    assert_error(r, 401, "unauthorized", "Bearer")
    assert await api.all_events() == []


async def test_an_expired_customer_token_is_refused(api: Api) -> None:
    chat = await api.chat()
    api.clock.advance(timedelta(hours=25))
    r = await api.call("GET", f"/v1/interactions/{chat.id}", chat.token)
    assert_error(r, 401, "unauthorized", "expired")
