"""Blue Harbor Health's member billing system as an MCP server: eligibility, claims, statements, payment plans
and scheduling.

Run by the Tandem runtime as a process (see ``servers.yaml``)::

    python billing.py --data DATA_DIR/billing.db --world examples/healthcare/world.yaml [--http 127.0.0.1:0]

The first start seeds the data file from the world: Aisha Patel (MBR-55821) owes $450.00 for out-of-network lab
work and may pay it in instalments; Robert King's (MBR-60317) coverage ended on 2026-09-30 and his appointment
APT-3120 on 2026-12-10 needs a new date. Every effect is done once per idempotency key and kept in the
``effects`` ledger.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from tandem.actions import hosting
from tandem.actions.ledger import EffectLedger, EffectRefused, Entry, add_ledger_tools, call_key, effect_meta

SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, plan TEXT NOT NULL, eligibility TEXT NOT NULL,
    payment_plan_eligible INTEGER NOT NULL, business_date TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    id TEXT PRIMARY KEY, member_id TEXT NOT NULL, visit_date TEXT NOT NULL, status TEXT NOT NULL, lines TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS statements (
    member_id TEXT NOT NULL, claim_id TEXT, visit_date TEXT, balance_minor INTEGER NOT NULL, currency TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_plans (
    id TEXT PRIMARY KEY, member_id TEXT NOT NULL, total_minor INTEGER NOT NULL, currency TEXT NOT NULL,
    months INTEGER NOT NULL, installment_minor INTEGER NOT NULL, first_due TEXT NOT NULL, status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY, member_id TEXT NOT NULL, date TEXT NOT NULL, provider TEXT NOT NULL, status TEXT NOT NULL
);
"""


class Money(BaseModel):
    amount_minor: int
    currency: str = "USD"


def seed(db: sqlite3.Connection, world: dict[str, Any]) -> None:
    business_date = str(world.get("business_date", date.today().isoformat()))
    for member in world.get("customers", []):
        mid = member["id"]
        db.execute(
            "INSERT INTO members (id, name, plan, eligibility, payment_plan_eligible, business_date)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (mid, member["name"], member.get("plan", ""), json.dumps(member.get("eligibility") or {}),
             int(bool(member.get("payment_plan_eligible"))), business_date),
        )  # fmt: skip
        for claim in member.get("claims") or []:
            db.execute(
                "INSERT INTO claims (id, member_id, visit_date, status, lines) VALUES (?, ?, ?, ?, ?)",
                (claim["id"], mid, claim["visit_date"], claim["status"], json.dumps(claim.get("lines") or [])),
            )
        for statement in member.get("statements") or []:
            db.execute(
                "INSERT INTO statements (member_id, claim_id, visit_date, balance_minor, currency)"
                " VALUES (?, ?, ?, ?, ?)",
                (mid, statement.get("claim_id"), statement.get("visit_date"), statement["balance"]["amount_minor"],
                 statement["balance"]["currency"]),
            )  # fmt: skip
        for appt in member.get("appointments") or []:
            db.execute(
                "INSERT INTO appointments (id, member_id, date, provider, status) VALUES (?, ?, ?, ?, ?)",
                (appt["id"], mid, appt["date"], appt["provider"], appt["status"]),
            )


def _member(db: sqlite3.Connection, member_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT id, name, plan, eligibility, payment_plan_eligible, business_date FROM members WHERE id = ?",
        (member_id,),
    ).fetchone()
    if row is None:
        return None
    return {"id": row[0], "name": row[1], "plan": row[2], "eligibility": json.loads(row[3]),
            "payment_plan_eligible": bool(row[4]), "business_date": row[5]}  # fmt: skip


def _appointment(db: sqlite3.Connection, appointment_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT id, member_id, date, provider, status FROM appointments WHERE id = ?", (appointment_id,)
    ).fetchone()
    return None if row is None else dict(zip(("id", "member_id", "date", "provider", "status"), row, strict=True))


def build(data: Path, world: Path) -> MCPServer[Any]:
    ledger = EffectLedger(data)
    ledger.db.executescript(SCHEMA)
    ledger.seed_once(f"world:{world.resolve()}", lambda db: seed(db, yaml.safe_load(world.read_text())))
    server: MCPServer[Any] = MCPServer("billing", version="1", log_level="WARNING")
    add_ledger_tools(server, ledger)
    db = ledger.db

    @server.tool()
    async def check_eligibility(member_id: str) -> dict[str, Any]:
        """A member's plan and coverage (status, start, end)."""
        member = _member(db, member_id)
        if member is None:
            raise ToolError(f"no member {member_id}")
        return {"plan": member["plan"], "eligibility": member["eligibility"]}

    @server.tool()
    async def get_claims(member_id: str) -> dict[str, Any]:
        """A member's claims with their lines."""
        rows = db.execute("SELECT id, visit_date, status, lines FROM claims WHERE member_id = ?", (member_id,))
        return {"claims": [{"id": r[0], "visit_date": r[1], "status": r[2], "lines": json.loads(r[3])} for r in rows]}

    @server.tool()
    async def get_statement(member_id: str) -> dict[str, Any]:
        """What a member owes, statement by statement."""
        rows = db.execute(
            "SELECT claim_id, visit_date, balance_minor, currency FROM statements WHERE member_id = ?", (member_id,)
        ).fetchall()
        lines = [{"claim_id": r[0], "visit_date": r[1], "balance": {"amount_minor": r[2], "currency": r[3]}}
                 for r in rows]  # fmt: skip
        return {"statements": lines, "total_minor": sum(r[2] for r in rows)}

    @server.tool(meta=effect_meta(compensate="cancel_payment_plan"))
    async def set_up_payment_plan(member_id: str, amount: Money, months: int, ctx: Context) -> dict[str, Any]:
        """Spread ``amount`` of what a member owes over ``months`` monthly instalments, the first due in 30 days."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            member = _member(db, member_id)
            if member is None:
                raise EffectRefused(f"no member {member_id}")
            if not member["payment_plan_eligible"]:
                raise EffectRefused(f"{member_id} is not eligible for a payment plan")
            owed = db.execute(
                "SELECT COALESCE(SUM(balance_minor), 0) FROM statements WHERE member_id = ?", (member_id,)
            ).fetchone()[0]
            if not 0 < amount.amount_minor <= owed:
                raise EffectRefused(f"a plan covers at most what is owed ({owed} minor units)")
            if not 2 <= months <= 12:
                raise EffectRefused("a plan runs 2 to 12 months")
            active = db.execute(
                "SELECT id FROM payment_plans WHERE member_id = ? AND status = 'active'", (member_id,)
            ).fetchone()
            if active is not None:
                raise EffectRefused(f"{member_id} already has payment plan {active[0]}")
            plan_id = f"PPL-{uuid.uuid4().hex[:8]}"
            installment = -(-amount.amount_minor // months)
            first_due = (date.fromisoformat(member["business_date"]) + timedelta(days=30)).isoformat()
            db.execute(
                "INSERT INTO payment_plans (id, member_id, total_minor, currency, months, installment_minor, first_due,"
                " status) VALUES (?, ?, ?, ?, ?, ?, ?, 'active')",
                (plan_id, member_id, amount.amount_minor, amount.currency, months, installment, first_due),
            )
            plan = {
                "id": plan_id,
                "total": amount.model_dump(),
                "months": months,
                "installment": {"amount_minor": installment, "currency": amount.currency},
                "first_due": first_due,
                "status": "active",
            }
            return {"payment_plan": plan, "facts": [{"name": "payment_plan", "value": plan}]}

        args = {"member_id": member_id, "amount": amount.model_dump(), "months": months}
        return await ledger.apply(call_key(ctx), "set_up_payment_plan", args, effect)

    @server.tool(meta=effect_meta())
    async def cancel_payment_plan(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of set_up_payment_plan."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            plan = original.result["payment_plan"]
            db.execute("UPDATE payment_plans SET status = 'cancelled' WHERE id = ?", (plan["id"],))
            value = {**plan, "status": "cancelled"}
            return {"payment_plan": value, "facts": [{"name": "payment_plan", "value": value}]}

        key = call_key(ctx)
        return ledger.compensate(original_key, key, "cancel_payment_plan", undo)

    @server.tool()
    async def list_appointments(member_id: str) -> dict[str, Any]:
        """A member's appointments."""
        rows = db.execute("SELECT id FROM appointments WHERE member_id = ? ORDER BY date", (member_id,)).fetchall()
        return {"appointments": [_appointment(db, r[0]) for r in rows]}

    @server.tool(meta=effect_meta(compensate="restore_appointment"))
    async def reschedule_appointment(
        member_id: str, appointment_id: str, new_date: str, ctx: Context
    ) -> dict[str, Any]:
        """Move a member's appointment to ``new_date`` (ISO date) with the same provider."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            appt = _appointment(db, appointment_id)
            if appt is None or appt["member_id"] != member_id:
                raise EffectRefused(f"{member_id} has no appointment {appointment_id}")
            try:
                when = date.fromisoformat(new_date)
            except ValueError:
                raise EffectRefused(f"{new_date!r} is not a date (YYYY-MM-DD)") from None
            member = _member(db, member_id)
            if member is not None and when <= date.fromisoformat(member["business_date"]):
                raise EffectRefused("the new date must be in the future")
            db.execute(
                "UPDATE appointments SET date = ?, status = 'scheduled' WHERE id = ?", (new_date, appointment_id)
            )
            value = {**appt, "previous_date": appt["date"], "date": new_date, "status": "scheduled"}
            value.pop("member_id")
            subject = f"appointment:{appointment_id}"
            return {"appointment": value, "facts": [{"name": "appointment", "subject": subject, "value": value}]}

        args = {"member_id": member_id, "appointment_id": appointment_id, "new_date": new_date}
        return await ledger.apply(call_key(ctx), "reschedule_appointment", args, effect)

    @server.tool(meta=effect_meta())
    async def restore_appointment(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of reschedule_appointment: back to the date it had."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            appt = original.result["appointment"]
            db.execute(
                "UPDATE appointments SET date = ?, status = 'needs_reschedule' WHERE id = ?",
                (appt["previous_date"], appt["id"]),
            )
            value = {**appt, "date": appt["previous_date"], "status": "needs_reschedule"}
            subject = f"appointment:{appt['id']}"
            return {"appointment": value, "facts": [{"name": "appointment", "subject": subject, "value": value}]}

        key = call_key(ctx)
        return ledger.compensate(original_key, key, "restore_appointment", undo)

    return server


def main() -> None:
    hosting.main(build, __doc__)


if __name__ == "__main__":
    main()
