"""Blocking and reissuing a lost card on the bank's core banking system, a real MCP server process: each
idempotency key is one effect in the system's own ledger, whatever is retried, and the rules a bank keeps
(only the customer's own cards, one replacement per card, no unblocking a retired number) hold."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tandem.actions.tools import Toolbox
from tests.actions.support import AGENT, Deployment, deployment, propose, settled, verified_case

pytestmark = pytest.mark.slow

JAMES_CARD = {"customer_id": "C-1002", "card_last4": "9876"}
BLOCK = {**JAMES_CARD, "reason": "reported lost"}


def toolbox(d: Deployment) -> Toolbox:
    return d.actions.toolboxes["bank"]


def cards(d: Deployment, customer_id: str) -> dict[str, str]:
    """The customer's cards and their status, read from the system's own data file."""
    db = sqlite3.connect(d.data_dir / "mcp" / "bank" / "core_banking.db")
    try:
        rows = db.execute("SELECT last4, status FROM cards WHERE customer_id = ?", (customer_id,)).fetchall()
        return {str(last4): str(status) for last4, status in rows}
    finally:
        db.close()


async def test_blocking_a_card_twice_with_one_key_is_one_effect_and_replays_the_first_result(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"], worker=False) as d:
        first = await toolbox(d).call("block_card", BLOCK, key="tandem:bank:act_block_1")
        again = await toolbox(d).call("block_card", BLOCK, key="tandem:bank:act_block_1")
        assert first.status == "ok" and again.status == "ok", (first, again)
        assert first.result is not None and again.result is not None
        assert first.result["card"]["status"] == "blocked"
        assert first.result["card"]["previous_status"] == "active"
        assert again.replayed and again.result["card"] == first.result["card"]
        effects = d.ledger("bank", "core_banking", "block_card")
        assert [e.idempotency_key for e in effects] == ["tandem:bank:act_block_1"]


async def test_reissuing_twice_with_one_key_orders_one_card_and_a_second_order_is_refused(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"], worker=False) as d:
        first = await toolbox(d).call("reissue_card", JAMES_CARD, key="tandem:bank:act_reissue_1")
        again = await toolbox(d).call("reissue_card", JAMES_CARD, key="tandem:bank:act_reissue_1")
        assert first.status == "ok" and first.result is not None, first
        replacement = first.result["replacement"]
        assert replacement["replaces"] == "9876" and replacement["last4"] != "9876"
        assert len(replacement["last4"]) == 4 and replacement["last4"].isdigit()
        assert replacement["delivery"] == {"min_business_days": 5, "max_business_days": 7,
                                           "text": "in 5 to 7 business days"}  # fmt: skip
        assert again.replayed and again.result is not None
        assert again.result["replacement"]["last4"] == replacement["last4"]  # the same card, not a second one

        # Another key for the same card: the replacement is already on its way, the bank orders no second one.
        other = await toolbox(d).call("reissue_card", JAMES_CARD, key="tandem:bank:act_reissue_2")
        assert other.status == "error" and "already replaced" in (other.error or ""), other
        assert len(d.ledger("bank", "core_banking", "reissue_card")) == 1
        assert cards(d, "C-1002") == {"9876": "replaced", replacement["last4"]: "ordered"}


async def test_another_customers_card_is_neither_blocked_nor_reissued(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"], worker=False) as d:
        maria_card_as_james = {"customer_id": "C-1002", "card_last4": "4242"}
        block = await toolbox(d).call("block_card", {**maria_card_as_james, "reason": "x"}, key="tandem:bank:a1")
        reissue = await toolbox(d).call("reissue_card", maria_card_as_james, key="tandem:bank:a2")
        assert block.status == "error" and "no card ending 4242" in (block.error or ""), block
        assert reissue.status == "error" and "no card ending 4242" in (reissue.error or ""), reissue
        assert d.ledger("bank", "core_banking") == []
        assert cards(d, "C-1001") == {"4242": "fraud_hold"}


async def test_a_verified_customers_block_and_reissue_run_within_policy_once_each(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        case = await verified_case(d, "bank", "C-1002")
        block = await propose(d, "bank", case, "block_card", BLOCK)
        reissue = await propose(d, "bank", case, "reissue_card", JAMES_CARD)
        blocked = await settled(d.conductor, case, block, {"succeeded", "failed", "unknown"})
        reissued = await settled(d.conductor, case, reissue, {"succeeded", "failed", "unknown"})
        assert blocked["status"] == "succeeded", blocked
        assert reissued["status"] == "succeeded", reissued
        assert len(d.ledger("bank", "core_banking", "block_card")) == 1
        assert len(d.ledger("bank", "core_banking", "reissue_card")) == 1
        facts = (await d.conductor.load(case)).facts_for_api(d.conductor.clock.now())
        assert facts["replacement_card[card:9876]"]["value"]["status"] == "ordered"
        assert facts["card_status[card:9876]"]["value"]["status"] == "replaced"


async def test_an_unverified_customers_reissue_is_never_proposed_to_the_system(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        case = await verified_case(d, "bank", "C-1002", verified=False)
        action = await propose(d, "bank", case, "reissue_card", JAMES_CARD)
        denied = await settled(d.conductor, case, action, {"denied"})
        assert denied["status"] == "denied"
        assert d.ledger("bank", "core_banking", "reissue_card") == []


async def test_a_found_card_is_unblocked_but_a_replaced_one_stays_retired(tmp_path: Path) -> None:
    async with deployment(tmp_path, ["bank"]) as d:
        case = await verified_case(d, "bank", "C-1002")
        block = await propose(d, "bank", case, "block_card", BLOCK)
        await settled(d.conductor, case, block, {"succeeded"})
        undo = await d.actions.compensate("bank", case, block, AGENT, reason="the card turned up")
        undone = await settled(d.conductor, case, undo, {"succeeded", "failed", "unknown"})
        assert undone["status"] == "succeeded", undone
        assert cards(d, "C-1002") == {"9876": "active"}

        # Blocked again and replaced: the old number is retired, so undoing the block is refused.
        again = await toolbox(d).call("block_card", BLOCK, key="tandem:bank:act_block_2")
        assert again.status == "ok"
        await toolbox(d).call("reissue_card", JAMES_CARD, key="tandem:bank:act_reissue_3")
        refused = await toolbox(d).call("unblock_card", {"original_key": "tandem:bank:act_block_2"}, key="k3")
        assert refused.status == "error" and "only a blocked card" in (refused.error or ""), refused
