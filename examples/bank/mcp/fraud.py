"""Harbor Bank's fraud system as an MCP server: fraud alerts, fraud holds on cards, travel notices.

Run by the Tandem runtime as a process (see ``servers.yaml``)::

    python fraud.py --data DATA_DIR/fraud.db --world examples/bank/world.yaml [--http 127.0.0.1:0]

The first start seeds the data file from the world, so Maria Lopez's card 4242 is on a fraud hold after the
Lisbon alert (score 0.82). Every effect is done once per idempotency key and kept in the ``effects`` ledger.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import yaml
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from tandem.actions import hosting
from tandem.actions.ledger import EffectLedger, EffectRefused, Entry, add_ledger_tools, call_key, effect_meta

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, card_last4 TEXT NOT NULL, reason TEXT NOT NULL,
    score REAL NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    card_last4 TEXT PRIMARY KEY, customer_id TEXT NOT NULL, reason TEXT NOT NULL, fraud_score REAL NOT NULL,
    status TEXT NOT NULL, placed_at TEXT NOT NULL, released_at TEXT
);
CREATE TABLE IF NOT EXISTS travel_notices (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, countries TEXT NOT NULL, start TEXT NOT NULL,
    "end" TEXT NOT NULL, status TEXT NOT NULL
);
"""


class Money(BaseModel):
    amount_minor: int
    currency: str = "USD"


def seed(db: sqlite3.Connection, world: dict[str, Any]) -> None:
    for customer in world.get("customers", []):
        for card in customer.get("cards") or []:
            hold = card.get("hold")
            if card.get("status") != "fraud_hold" or not hold:
                continue
            db.execute(
                "INSERT INTO holds (card_last4, customer_id, reason, fraud_score, status, placed_at)"
                " VALUES (?, ?, ?, ?, 'held', ?)",
                (card["last4"], customer["id"], hold["reason"], hold["fraud_score"], hold["placed_at"]),
            )
            db.execute(
                "INSERT INTO alerts (id, customer_id, card_last4, reason, score, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, 'open', ?)",
                (f"ALR-{card['last4']}", customer["id"], card["last4"], hold["reason"], hold["fraud_score"],
                 hold["placed_at"]),
            )  # fmt: skip
        for notice in customer.get("travel_notices") or []:
            db.execute(
                'INSERT INTO travel_notices (id, customer_id, countries, start, "end", status)'
                " VALUES (?, ?, ?, ?, ?, ?)",
                (notice["id"], customer["id"], json.dumps(notice["countries"]), notice["start"], notice["end"],
                 "active"),
            )  # fmt: skip


def _hold(db: sqlite3.Connection, card_last4: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT card_last4, customer_id, reason, fraud_score, status, placed_at, released_at FROM holds"
        " WHERE card_last4 = ?",
        (card_last4,),
    ).fetchone()
    if row is None:
        return None
    keys = ("card_last4", "customer_id", "reason", "fraud_score", "status", "placed_at", "released_at")
    return dict(zip(keys, row, strict=True))


def build(data: Path, world: Path) -> MCPServer[Any]:
    ledger = EffectLedger(data)
    ledger.db.executescript(SCHEMA)
    ledger.seed_once(f"world:{world.resolve()}", lambda db: seed(db, yaml.safe_load(world.read_text())))
    server: MCPServer[Any] = MCPServer("fraud", version="1", log_level="WARNING")
    add_ledger_tools(server, ledger)

    @server.tool()
    async def get_alerts(customer_id: str) -> dict[str, Any]:
        """Open and closed fraud alerts of a customer."""
        rows = ledger.db.execute(
            "SELECT id, card_last4, reason, score, status, created_at FROM alerts WHERE customer_id = ?",
            (customer_id,),
        ).fetchall()
        keys = ("id", "card_last4", "reason", "score", "status", "created_at")
        return {"alerts": [dict(zip(keys, r, strict=True)) for r in rows]}

    @server.tool()
    async def get_hold(card_last4: str) -> dict[str, Any]:
        """The fraud hold on a card, if there is one."""
        return {"hold": _hold(ledger.db, card_last4)}

    @server.tool(meta=effect_meta(compensate="reinstate_hold"))
    async def release_hold(customer_id: str, card_last4: str, amount: Money, ctx: Context) -> dict[str, Any]:
        """Release the fraud hold on a customer's card and close its alert. ``amount`` is the payment the
        customer confirmed as theirs."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            hold = _hold(db, card_last4)
            if hold is None or hold["customer_id"] != customer_id:
                raise EffectRefused(f"card {card_last4} of {customer_id} has no fraud hold")
            if hold["status"] != "held":
                raise EffectRefused(f"the hold on card {card_last4} is already {hold['status']}")
            db.execute(
                "UPDATE holds SET status = 'released', released_at = datetime('now') WHERE card_last4 = ?",
                (card_last4,),
            )
            db.execute("UPDATE alerts SET status = 'resolved' WHERE card_last4 = ? AND status = 'open'", (card_last4,))
            value = {"status": "released", "reason": hold["reason"], "confirmed_payment": amount.model_dump()}
            return {
                "card_last4": card_last4,
                "hold": value,
                "facts": [{"name": "card_hold", "subject": f"card:{card_last4}", "value": value}],
            }

        args = {"customer_id": customer_id, "card_last4": card_last4, "amount": amount.model_dump()}
        return await ledger.apply(call_key(ctx), "release_hold", args, effect)

    @server.tool(meta=effect_meta())
    async def reinstate_hold(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of release_hold: put the hold back as it was."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            card = original.args["card_last4"]
            db.execute("UPDATE holds SET status = 'held', released_at = NULL WHERE card_last4 = ?", (card,))
            value = {"status": "held", "reason": original.result["hold"]["reason"]}
            return {
                "card_last4": card,
                "hold": value,
                "facts": [{"name": "card_hold", "subject": f"card:{card}", "value": value}],
            }

        return ledger.compensate(original_key, call_key(ctx), "reinstate_hold", undo)

    @server.tool(meta=effect_meta(compensate="remove_travel_notice"))
    async def add_travel_notice(
        customer_id: str, countries: list[str], start: str, end: str, ctx: Context
    ) -> dict[str, Any]:
        """Record that the customer travels to ``countries`` from ``start`` to ``end`` (ISO dates)."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            if not countries:
                raise EffectRefused("a travel notice needs at least one country")
            notice_id = f"TRV-{uuid.uuid4().hex[:8]}"
            db.execute(
                'INSERT INTO travel_notices (id, customer_id, countries, start, "end", status)'
                " VALUES (?, ?, ?, ?, ?, 'active')",
                (notice_id, customer_id, json.dumps(countries), start, end),
            )
            notice = {"id": notice_id, "countries": countries, "start": start, "end": end}
            return {"travel_notice": notice, "facts": [{"name": "travel_notice", "value": notice}]}

        args = {"customer_id": customer_id, "countries": countries, "start": start, "end": end}
        return await ledger.apply(call_key(ctx), "add_travel_notice", args, effect)

    @server.tool(meta=effect_meta())
    async def remove_travel_notice(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of add_travel_notice."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            notice_id = original.result["travel_notice"]["id"]
            db.execute("UPDATE travel_notices SET status = 'removed' WHERE id = ?", (notice_id,))
            return {"facts": [{"name": "travel_notice", "value": "none on file"}], "removed": notice_id}

        key = call_key(ctx)
        return ledger.compensate(original_key, key, "remove_travel_notice", undo)

    return server


def main() -> None:
    hosting.main(build, __doc__)


if __name__ == "__main__":
    main()
