"""Tandem's MCP server at /mcp, driven by the official SDK's client over streamable HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from tandem import commands as cmd
from tandem.api.mcp_tools import CaseTools, build_server
from tandem.case import events as ev
from tandem.case.envelope import Actor
from tandem.case.interaction import Interaction
from tandem.participants.protocol import ActionDecision
from tandem.release.policy import PolicyError, parse_policy
from tandem.release.scopes import DataScopes
from tests.mcp.conftest import ADMIN_TOKEN, MARIA_LINES, Tandem

PAN = "4000001234574242"  # Luhn-valid: a full card number
OTHER_PAN = "4111 1111 1111 1111"


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return dict(result.structured_content)


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return " ".join(c.text for c in result.content if isinstance(c, TextContent))


def leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from leaves(inner)
    else:
        yield error


async def test_a_service_lists_the_four_case_tools(tandem: Tandem) -> None:
    _, token = await tandem.service()
    async with tandem.mcp(token) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"read_case_file", "propose_action", "add_note", "request_handoff"}
    assert tools["read_case_file"].annotations is not None and tools["read_case_file"].annotations.read_only_hint
    assert set(tools["propose_action"].input_schema["required"]) == {"interaction_id", "tool", "args", "reason"}


async def test_a_service_reads_marias_case_file_after_her_journey_within_its_scope_and_never_a_full_card_number(
    tandem: Tandem,
) -> None:
    iid, _ = await tandem.chat("bank", MARIA_LINES)
    # A card's number as a system of record would report it, and a full number inside a fact the AI may see.
    await tandem.runtime.conductor.execute(
        "bank", iid,
        [cmd.Learn("card_number", PAN, "signal:card_details", subject="card:4242"),
         cmd.Learn("charge", {"merchant": f"ref {OTHER_PAN}", "amount": {"amount_minor": 100, "currency": "USD"}},
                   "signal:recent_charges", subject="transaction:TXN-1")],
        Actor("system", "activation"),
    )  # fmt: skip
    _, ai_token = await tandem.service(data_scope="ai")
    async with tandem.mcp(ai_token) as client:
        case = structured(await client.call_tool("read_case_file", {"interaction_id": iid}))

    assert case["customer_id"] == "C-1001" and case["assurance"] == "knowledge_verified"
    assert case["data_scope"] == "ai"
    assert case["handoff"]["target"] == {"kind": "queue", "id": "fraud"}
    facts = case["facts"]
    assert facts["fraud_score[card:4242]"]["value"] == 0.82
    assert facts["declined_payment[transaction:TXN-88301]"]["value"]["merchant"] == "Tasca do Chico, Lisbon"
    assert facts["card_number[card:4242]"]["value"] == "************4242"
    assert facts["charge[transaction:TXN-1]"]["value"]["merchant"] == "ref [card ending 1111]"
    # Minimum necessary: the answers to the security questions and the name are not in the AI's scope.
    for hidden in ("date_of_birth", "zip", "customer_name", "phone"):
        assert hidden not in facts
    assert "transcript" not in case
    raw = json.dumps(case)
    assert PAN not in raw and "4111111111111111" not in raw and OTHER_PAN not in raw
    assert "1985-03-14" not in raw

    _, human_token = await tandem.service(data_scope="human")
    async with tandem.mcp(human_token) as client:
        wider = structured(await client.call_tool("read_case_file", {"interaction_id": iid}))
    assert wider["facts"]["card_number[card:4242]"]["value"] == "400000******4242"


async def test_an_action_a_service_proposes_is_recorded_with_the_policy_decision_and_the_answer_says_it(
    tandem: Tandem,
) -> None:
    iid, _ = await tandem.chat("bank", MARIA_LINES)
    service_id, token = await tandem.service()
    args = {"customer_id": "C-1001", "card_last4": "4242", "amount": {"amount_minor": 8640, "currency": "USD"}}
    async with tandem.mcp(token) as client:
        answer = structured(
            await client.call_tool(
                "propose_action",
                {"interaction_id": iid, "tool": "release_fraud_hold", "args": args, "reason": "payment confirmed"},
            )
        )
    # The shipped policies list who may propose each tool, and no policy can name a service yet.
    assert answer["decision"]["outcome"] == "deny" and answer["decision"]["rule"] == "proposer"
    assert answer["decision"]["policy_version"].startswith("harbor-bank-policy@")
    assert answer["status"] == "denied"
    events = await tandem.runtime.store.read(iid)
    proposed = next(e for e in events if e.type == ev.ACTION_PROPOSED)
    decided = next(e for e in events if e.type == ev.ACTION_DECIDED)
    assert proposed.actor == Actor("service", service_id)
    assert proposed.data["action_id"] == decided.data["action_id"] == answer["action_id"]
    assert decided.data["rule"] == "proposer" and "service may not propose" in decided.data["reasons"][0]


class ApprovalGate:
    """A policy that wants a person to approve everything, to follow a proposal that is not denied."""

    def decide(
        self, case: Interaction, tool: str, args: dict[str, Any], actor_kind: str, now: datetime
    ) -> ActionDecision:
        return ActionDecision("require_approval", f"{actor_kind}_needs_approval", "test@1", ("a person decides",),
                              "agent", 900.0)  # fmt: skip


async def test_a_proposal_that_policy_sends_for_approval_waits_for_a_person(tandem: Tandem) -> None:
    iid, _ = await tandem.chat("bank", MARIA_LINES)
    tandem.runtime.conductor.gate = ApprovalGate()
    _, token = await tandem.service()
    async with tandem.mcp(token) as client:
        answer = structured(
            await client.call_tool(
                "propose_action",
                {"interaction_id": iid, "tool": "add_note", "args": {"customer_id": "C-1001", "text": "called"},
                 "reason": "log the call"},
            )
        )  # fmt: skip
    assert answer["status"] == "awaiting_approval"
    assert answer["decision"] == {
        "outcome": "require_approval", "rule": "service_needs_approval", "policy_version": "test@1",
        "reasons": ["a person decides"], "requires": "agent", "expires_at": answer["decision"]["expires_at"],
    }  # fmt: skip
    assert answer["decision"]["expires_at"] is not None
    action = (await tandem.runtime.conductor.load(iid)).actions[answer["action_id"]]
    assert action["status"] == "awaiting_approval" and action["proposed_by"]["kind"] == "service"


def test_a_policy_can_let_a_service_propose_a_tool() -> None:
    raw = {"policy": {"tenant": "bank"}, "tools": {"add_note": {"server": "crm", "proposers": ["service"]}}}
    try:
        policy = parse_policy(raw)
    except PolicyError as exc:
        pytest.fail(str(exc))
    assert "service" in policy.tools["add_note"].proposers


async def test_a_note_from_a_service_is_a_fact_people_see_and_the_customer_never_does(tandem: Tandem) -> None:
    iid, customer = await tandem.chat("bank", MARIA_LINES[:1])
    service_id, token = await tandem.service()
    text = f"Customer mentioned card {PAN} on a previous call"
    async with tandem.mcp(token) as client:
        note = structured(await client.call_tool("add_note", {"interaction_id": iid, "text": text}))
    assert note["source"] == f"service:{service_id}"

    staff = (await tandem.call("GET", f"/v1/interactions/{iid}", ADMIN_TOKEN)).json()
    key = f"note[{note['subject']}]"
    assert staff["facts"][key]["source"] == f"service:{service_id}"
    assert staff["facts"][key]["value"] == "Customer mentioned card [card ending 4242] on a previous call"
    mine = await tandem.call("GET", f"/v1/interactions/{iid}", customer)
    assert mine.status_code == 200
    assert "previous call" not in mine.text and "facts" not in mine.json()
    raw = json.dumps([e.to_dict() for e in await tandem.runtime.store.read(iid)])
    assert PAN not in raw


async def test_a_service_hands_the_customer_to_a_person_in_a_skill_queue(tandem: Tandem) -> None:
    iid, _ = await tandem.chat("bank", ("hello",))
    _, token = await tandem.service()
    async with tandem.mcp(token) as client:
        refused = await client.call_tool(
            "request_handoff", {"interaction_id": iid, "reason": "needs a person", "queue": "nowhere"}
        )
        answer = structured(
            await client.call_tool(
                "request_handoff", {"interaction_id": iid, "reason": "disputed charge", "queue": "disputes"}
            )
        )
    assert "unknown queue" in error_text(refused)
    assert answer["handoff"]["status"] == "queued" and answer["handoff"]["queue"] == "disputes"
    requested = [e for e in await tandem.runtime.store.read(iid) if e.type == ev.HANDOFF_REQUESTED]
    assert [e.actor.kind for e in requested] == ["service"]


async def test_another_tenants_interaction_does_not_exist_for_a_service(tandem: Tandem) -> None:
    bank_case, _ = await tandem.chat("bank", MARIA_LINES)
    _, health_token = await tandem.service(tenant="health")
    async with tandem.mcp(health_token) as client:
        read = await client.call_tool("read_case_file", {"interaction_id": bank_case})
        propose = await client.call_tool(
            "propose_action",
            {"interaction_id": bank_case, "tool": "add_note", "args": {}, "reason": "x"},
        )
        note = await client.call_tool("add_note", {"interaction_id": bank_case, "text": "hello"})
        nowhere = await client.call_tool("read_case_file", {"interaction_id": "int_missing"})
    for result in (read, propose, note):
        assert f"no interaction {bank_case}" in error_text(result)
    assert "no interaction int_missing" in error_text(nowhere)
    assert not [e for e in await tandem.runtime.store.read(bank_case) if e.actor.kind == "service"]


async def test_a_bad_token_is_refused_before_the_mcp_server_sees_the_request(tandem: Tandem) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for token in (None, "tdm_not-a-token"):
        extra = {"Authorization": f"Bearer {token}"} if token else {}
        r = await tandem.http.post("/mcp", json=body, headers={**headers, **extra})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthorized"

    with pytest.raises(BaseException) as raised:
        async with tandem.mcp("tdm_not-a-token") as client:
            await client.list_tools()
    assert any(isinstance(e, MCPError) for e in leaves(raised.value))

    iid, customer = await tandem.chat("bank")
    r = await tandem.http.post("/mcp", json=body, headers={**headers, "Authorization": f"Bearer {customer}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert iid


async def test_only_an_admin_makes_service_tokens_for_a_data_scope_it_knows(tandem: Tandem) -> None:
    _, customer = await tandem.chat("bank")
    r = await tandem.call("POST", "/v1/services", customer, json={"data_scope": "ai"})
    assert r.status_code == 403
    r = await tandem.call("POST", "/v1/services", ADMIN_TOKEN, json={"data_scope": "customer"})
    assert r.status_code == 422
    r = await tandem.call("POST", "/v1/services", ADMIN_TOKEN, "health", json={})
    assert r.status_code == 201 and r.json()["tenant"] == "health" and r.json()["data_scope"] == "ai"
    principal = tandem.runtime.tokens.resolve(r.json()["token"])
    assert principal is not None and principal.role == "service" and principal.tenant_id == "health"


async def test_a_closed_interaction_takes_no_proposals_and_the_arguments_never_carry_a_card_number(
    tandem: Tandem,
) -> None:
    iid, customer = await tandem.chat("bank", MARIA_LINES)
    _, token = await tandem.service()
    args = {"customer_id": "C-1001", "text": f"card {PAN}"}
    async with tandem.mcp(token) as client:
        open_answer = structured(
            await client.call_tool(
                "propose_action", {"interaction_id": iid, "tool": "add_note", "args": args, "reason": "note"}
            )
        )
        closed = await tandem.call("POST", f"/v1/interactions/{iid}/close", customer, json={})
        assert closed.status_code == 200
        refused = await client.call_tool(
            "propose_action", {"interaction_id": iid, "tool": "add_note", "args": args, "reason": "note"}
        )
        bad_name = await client.call_tool(
            "propose_action", {"interaction_id": iid, "tool": "Drop Table", "args": {}, "reason": "x"}
        )
    assert open_answer["decision"]["rule"] == "proposer"
    assert "closed" in error_text(refused)
    assert "snake_case" in error_text(bad_name)
    proposed = [e for e in await tandem.runtime.store.read(iid) if e.type == ev.ACTION_PROPOSED]
    assert [p.data["args"]["text"] for p in proposed] == ["card [card ending 4242]"]


def test_making_the_mcp_server_leaves_the_processs_logging_alone() -> None:
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    root.handlers[:] = []  # a process that has not configured logging: where the SDK's basicConfig would act
    try:
        build_server(CaseTools(None, lambda _tenant: DataScopes()))  # type: ignore[arg-type]
        assert (root.handlers, root.level) == ([], kept[1])
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
