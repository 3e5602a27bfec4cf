"""Harbor Bank's core banking system as an MCP server: accounts, cards, transactions, holds, credits, disputes,
blocking and reissuing cards.

Run by the Tandem runtime as a process (see ``servers.yaml``)::

    python core_banking.py --data DATA_DIR/core_banking.db --world examples/bank/world.yaml [--http 127.0.0.1:0]

The first start seeds the data file from the world: James Chen's $1,250.00 ElectroMart charge (TXN-77120) is
posted on his credit card 9876 and not yet disputed. Every effect is done once per idempotency key and kept in
the ``effects`` ledger.
"""

from __future__ import annotations

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
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, kind TEXT NOT NULL, balance_minor INTEGER NOT NULL,
    currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cards (
    last4 TEXT PRIMARY KEY, customer_id TEXT NOT NULL, kind TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, card_last4 TEXT, date TEXT NOT NULL, merchant TEXT NOT NULL,
    amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS holds (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
    reason TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS credits (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, amount_minor INTEGER NOT NULL, currency TEXT NOT NULL,
    reason TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS disputes (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, transaction_id TEXT NOT NULL, amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL, credit_id TEXT
);
"""


class Money(BaseModel):
    amount_minor: int
    currency: str = "USD"


def seed(db: sqlite3.Connection, world: dict[str, Any]) -> None:
    for customer in world.get("customers", []):
        cid = customer["id"]
        for account in customer.get("accounts") or []:
            balance = account["balance"]
            db.execute(
                "INSERT INTO accounts (id, customer_id, kind, balance_minor, currency) VALUES (?, ?, ?, ?, ?)",
                (account["id"], cid, account["kind"], balance["amount_minor"], balance["currency"]),
            )
        for card in customer.get("cards") or []:
            db.execute(
                "INSERT INTO cards (last4, customer_id, kind, status) VALUES (?, ?, ?, ?)",
                (card["last4"], cid, card["kind"], card["status"]),
            )
        for txn in customer.get("transactions") or []:
            db.execute(
                "INSERT INTO transactions (id, customer_id, card_last4, date, merchant, amount_minor, currency, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (txn["id"], cid, txn.get("card_last4"), txn["date"], txn["merchant"], txn["amount"]["amount_minor"],
                 txn["amount"]["currency"], txn["status"]),
            )  # fmt: skip


def _rows(db: sqlite3.Connection, sql: str, args: tuple[Any, ...], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    return [dict(zip(keys, r, strict=True)) for r in db.execute(sql, args).fetchall()]


# A replacement card is produced and mailed to the address on file by the card bureau; this is its promise.
DELIVERY = {"min_business_days": 5, "max_business_days": 7, "text": "in 5 to 7 business days"}


def _own_card(db: sqlite3.Connection, customer_id: str, card_last4: str) -> tuple[str, str]:
    """The card's kind and status, refusing a card that is not the customer's (one customer's words must never
    block or reissue another's card)."""
    row = db.execute("SELECT customer_id, kind, status FROM cards WHERE last4 = ?", (card_last4,)).fetchone()
    if row is None or row[0] != customer_id:
        raise EffectRefused(f"{customer_id} has no card ending {card_last4}")
    return str(row[1]), str(row[2])


def _new_last4(db: sqlite3.Connection) -> str:
    while True:
        last4 = f"{uuid.uuid4().int % 10000:04d}"
        if db.execute("SELECT 1 FROM cards WHERE last4 = ?", (last4,)).fetchone() is None:
            return last4


def build(data: Path, world: Path) -> MCPServer[Any]:
    ledger = EffectLedger(data)
    ledger.db.executescript(SCHEMA)
    ledger.seed_once(f"world:{world.resolve()}", lambda db: seed(db, yaml.safe_load(world.read_text())))
    server: MCPServer[Any] = MCPServer("core_banking", version="1", log_level="WARNING")
    add_ledger_tools(server, ledger)
    db = ledger.db

    @server.tool()
    async def get_accounts(customer_id: str) -> dict[str, Any]:
        """A customer's deposit accounts with their balances (minor units)."""
        keys = ("id", "kind", "balance_minor", "currency")
        sql = "SELECT id, kind, balance_minor, currency FROM accounts WHERE customer_id = ?"
        return {"accounts": _rows(db, sql, (customer_id,), keys)}

    @server.tool()
    async def get_cards(customer_id: str) -> dict[str, Any]:
        """A customer's cards and their status."""
        sql = "SELECT last4, kind, status FROM cards WHERE customer_id = ?"
        return {"cards": _rows(db, sql, (customer_id,), ("last4", "kind", "status"))}

    @server.tool()
    async def get_transactions(customer_id: str) -> dict[str, Any]:
        """A customer's recent card transactions."""
        keys = ("id", "card_last4", "date", "merchant", "amount_minor", "currency", "status")
        sql = f"SELECT {', '.join(keys)} FROM transactions WHERE customer_id = ? ORDER BY date DESC"
        return {"transactions": _rows(db, sql, (customer_id,), keys)}

    @server.tool(meta=effect_meta(compensate="withdraw_dispute"))
    async def open_dispute(
        customer_id: str, transaction_id: str, amount: Money, reason: str, ctx: Context
    ) -> dict[str, Any]:
        """Open a dispute of a posted card transaction and give the customer a provisional credit of the amount."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            txn = db.execute(
                "SELECT customer_id, amount_minor, currency, status FROM transactions WHERE id = ?", (transaction_id,)
            ).fetchone()
            if txn is None or txn[0] != customer_id:
                raise EffectRefused(f"{customer_id} has no transaction {transaction_id}")
            if txn[3] != "posted":
                raise EffectRefused(f"transaction {transaction_id} is {txn[3]}, only posted ones can be disputed")
            if amount.amount_minor <= 0 or amount.amount_minor > txn[1] or amount.currency != txn[2]:
                raise EffectRefused("the disputed amount must be positive and at most the transaction's amount")
            dispute_id = f"DSP-{uuid.uuid4().hex[:8]}"
            credit_id = f"CRD-{uuid.uuid4().hex[:8]}"
            db.execute(
                "INSERT INTO credits (id, customer_id, amount_minor, currency, reason, status)"
                " VALUES (?, ?, ?, ?, ?, 'provisional')",
                (credit_id, customer_id, amount.amount_minor, amount.currency, f"dispute {dispute_id}"),
            )
            db.execute(
                "INSERT INTO disputes (id, customer_id, transaction_id, amount_minor, currency, reason, status,"
                " credit_id) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)",
                (dispute_id, customer_id, transaction_id, amount.amount_minor, amount.currency, reason, credit_id),
            )
            db.execute("UPDATE transactions SET status = 'disputed' WHERE id = ?", (transaction_id,))
            dispute = {
                "id": dispute_id,
                "status": "open",
                "amount": amount.model_dump(),
                "provisional_credit": credit_id,
            }
            return {
                "dispute": dispute,
                "facts": [{"name": "dispute", "subject": f"transaction:{transaction_id}", "value": dispute}],
            }

        args = {"customer_id": customer_id, "transaction_id": transaction_id, "amount": amount.model_dump(),
                "reason": reason}  # fmt: skip
        return await ledger.apply(call_key(ctx), "open_dispute", args, effect)

    @server.tool(meta=effect_meta())
    async def withdraw_dispute(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of open_dispute: withdraw the dispute and reverse its provisional credit."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            dispute = original.result["dispute"]
            db.execute("UPDATE disputes SET status = 'withdrawn' WHERE id = ?", (dispute["id"],))
            db.execute("UPDATE credits SET status = 'reversed' WHERE id = ?", (dispute["provisional_credit"],))
            db.execute("UPDATE transactions SET status = 'posted' WHERE id = ?", (original.args["transaction_id"],))
            value = {**dispute, "status": "withdrawn"}
            subject = f"transaction:{original.args['transaction_id']}"
            return {"dispute": value, "facts": [{"name": "dispute", "subject": subject, "value": value}]}

        return ledger.compensate(original_key, call_key(ctx), "withdraw_dispute", undo)

    @server.tool(meta=effect_meta(compensate="unblock_card"))
    async def block_card(customer_id: str, card_last4: str, reason: str, ctx: Context) -> dict[str, Any]:
        """Block a lost or stolen card at once: every new payment on it is declined."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            kind, status = _own_card(db, customer_id, card_last4)
            # A replaced card is closed for good; blocking it changes nothing but is still the customer's wish.
            if status != "replaced":
                db.execute("UPDATE cards SET status = 'blocked' WHERE last4 = ?", (card_last4,))
            card = {"last4": card_last4, "kind": kind, "status": "blocked" if status != "replaced" else status,
                    "previous_status": status, "reason": reason}  # fmt: skip
            value = {"kind": kind, "status": card["status"]}
            return {"card": card, "facts": [{"name": "card_status", "subject": f"card:{card_last4}", "value": value}]}

        args = {"customer_id": customer_id, "card_last4": card_last4, "reason": reason}
        return await ledger.apply(call_key(ctx), "block_card", args, effect)

    @server.tool(meta=effect_meta())
    async def unblock_card(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of block_card (the card turned up): the card is back as it was before the block."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            card = original.result["card"]
            last4 = card["last4"]
            row = db.execute("SELECT status FROM cards WHERE last4 = ?", (last4,)).fetchone()
            # Once a replacement is ordered the old number is retired: unblocking it would put two live cards
            # in the customer's name.
            if row is None or row[0] != "blocked":
                raise EffectRefused(f"card {last4} is {row[0] if row else 'gone'}, only a blocked card is unblocked")
            db.execute("UPDATE cards SET status = ? WHERE last4 = ?", (card["previous_status"], last4))
            value = {"kind": card["kind"], "status": card["previous_status"]}
            return {"card": {**card, "status": card["previous_status"]},
                    "facts": [{"name": "card_status", "subject": f"card:{last4}", "value": value}]}  # fmt: skip

        return ledger.compensate(original_key, call_key(ctx), "unblock_card", undo)

    # No compensation: a card in the post cannot be called back by a tool; a person cancels it with the bureau.
    @server.tool(meta=effect_meta())
    async def reissue_card(customer_id: str, card_last4: str, ctx: Context) -> dict[str, Any]:
        """Order a replacement for a card, with a new number, mailed to the address on file. The old card is
        retired (a replacement never leaves two live cards in the customer's name)."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            kind, status = _own_card(db, customer_id, card_last4)
            if status == "replaced":
                raise EffectRefused(f"card {card_last4} is already replaced; its replacement is on its way")
            last4 = _new_last4(db)
            db.execute(
                "INSERT INTO cards (last4, customer_id, kind, status) VALUES (?, ?, ?, 'ordered')",
                (last4, customer_id, kind),
            )
            db.execute("UPDATE cards SET status = 'replaced' WHERE last4 = ?", (card_last4,))
            replacement = {"last4": last4, "kind": kind, "status": "ordered", "replaces": card_last4,
                           "delivery": dict(DELIVERY)}  # fmt: skip
            return {
                "replacement": replacement,
                "facts": [
                    {"name": "replacement_card", "subject": f"card:{card_last4}", "value": replacement},
                    {
                        "name": "card_status",
                        "subject": f"card:{card_last4}",
                        "value": {"kind": kind, "status": "replaced"},
                    },
                ],
            }

        args = {"customer_id": customer_id, "card_last4": card_last4}
        return await ledger.apply(call_key(ctx), "reissue_card", args, effect)

    @server.tool(meta=effect_meta(compensate="reverse_credit"))
    async def issue_credit(customer_id: str, amount: Money, reason: str, ctx: Context) -> dict[str, Any]:
        """Credit a customer (a goodwill credit or a refund of a fee)."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            if amount.amount_minor <= 0:
                raise EffectRefused("a credit must be positive")
            credit_id = f"CRD-{uuid.uuid4().hex[:8]}"
            db.execute(
                "INSERT INTO credits (id, customer_id, amount_minor, currency, reason, status)"
                " VALUES (?, ?, ?, ?, ?, 'posted')",
                (credit_id, customer_id, amount.amount_minor, amount.currency, reason),
            )
            credit = {"id": credit_id, "amount": amount.model_dump(), "reason": reason, "status": "posted"}
            return {"credit": credit, "facts": [{"name": "credit", "subject": f"credit:{credit_id}", "value": credit}]}

        args = {"customer_id": customer_id, "amount": amount.model_dump(), "reason": reason}
        return await ledger.apply(call_key(ctx), "issue_credit", args, effect)

    @server.tool(meta=effect_meta())
    async def reverse_credit(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of issue_credit."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            credit = original.result["credit"]
            db.execute("UPDATE credits SET status = 'reversed' WHERE id = ?", (credit["id"],))
            value = {**credit, "status": "reversed"}
            return {"credit": value, "facts": [{"name": "credit", "subject": f"credit:{credit['id']}", "value": value}]}

        return ledger.compensate(original_key, call_key(ctx), "reverse_credit", undo)

    @server.tool(meta=effect_meta(compensate="lift_account_hold"))
    async def place_account_hold(account_id: str, amount: Money, reason: str, ctx: Context) -> dict[str, Any]:
        """Hold funds on a deposit account."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            if db.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone() is None:
                raise EffectRefused(f"no account {account_id}")
            hold_id = f"HLD-{uuid.uuid4().hex[:8]}"
            db.execute(
                "INSERT INTO holds (id, account_id, amount_minor, currency, reason, status)"
                " VALUES (?, ?, ?, ?, ?, 'active')",
                (hold_id, account_id, amount.amount_minor, amount.currency, reason),
            )
            hold = {"id": hold_id, "amount": amount.model_dump(), "reason": reason, "status": "active"}
            subject = f"account:{account_id}"
            return {"hold": hold, "facts": [{"name": "account_hold", "subject": subject, "value": hold}]}

        args = {"account_id": account_id, "amount": amount.model_dump(), "reason": reason}
        return await ledger.apply(call_key(ctx), "place_account_hold", args, effect)

    @server.tool(meta=effect_meta())
    async def lift_account_hold(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of place_account_hold."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            hold = original.result["hold"]
            db.execute("UPDATE holds SET status = 'lifted' WHERE id = ?", (hold["id"],))
            value = {**hold, "status": "lifted"}
            subject = f"account:{original.args['account_id']}"
            return {"hold": value, "facts": [{"name": "account_hold", "subject": subject, "value": value}]}

        key = call_key(ctx)
        return ledger.compensate(original_key, key, "lift_account_hold", undo)

    return server


def main() -> None:
    hosting.main(build, __doc__)


if __name__ == "__main__":
    main()
