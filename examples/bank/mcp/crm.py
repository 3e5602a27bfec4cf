"""Harbor Bank's CRM as an MCP server: cases and notes about customers. Served over streamable HTTP in the
example (``servers.yaml``), so both transports run in every demo.

    python crm.py --data DATA_DIR/crm.db --world examples/bank/world.yaml [--http 127.0.0.1:0]

Every effect is done once per idempotency key and kept in the ``effects`` ledger.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from tandem.actions import hosting
from tandem.actions.ledger import EffectLedger, EffectRefused, Entry, add_ledger_tools, call_key, effect_meta

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL,
    opened_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE TABLE IF NOT EXISTS notes (
    id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, case_id TEXT, text TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (datetime('now'))
);
"""


def build(data: Path, world: Path) -> MCPServer[Any]:
    ledger = EffectLedger(data)
    ledger.db.executescript(SCHEMA)
    server: MCPServer[Any] = MCPServer("crm", version="1", log_level="WARNING")
    add_ledger_tools(server, ledger)
    db = ledger.db

    @server.tool()
    async def get_cases(customer_id: str) -> dict[str, Any]:
        """A customer's CRM cases with their notes."""
        cases = []
        for row in db.execute(
            "SELECT id, subject, status, opened_at FROM cases WHERE customer_id = ? ORDER BY opened_at", (customer_id,)
        ).fetchall():
            notes = [n[0] for n in db.execute("SELECT text FROM notes WHERE case_id = ? ORDER BY at", (row[0],))]
            cases.append({"id": row[0], "subject": row[1], "status": row[2], "opened_at": row[3], "notes": notes})
        return {"cases": cases}

    @server.tool(meta=effect_meta(compensate="close_case"))
    async def open_case(customer_id: str, subject: str, ctx: Context) -> dict[str, Any]:
        """Open a CRM case about a customer."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            case_id = f"CASE-{uuid.uuid4().hex[:8]}"
            db.execute(
                "INSERT INTO cases (id, customer_id, subject, status) VALUES (?, ?, ?, 'open')",
                (case_id, customer_id, subject),
            )
            case = {"id": case_id, "subject": subject, "status": "open"}
            return {"case": case, "facts": [{"name": "crm_case", "subject": f"crm_case:{case_id}", "value": case}]}

        args = {"customer_id": customer_id, "subject": subject}
        return await ledger.apply(call_key(ctx), "open_case", args, effect)

    @server.tool(meta=effect_meta())
    async def close_case(original_key: str, ctx: Context) -> dict[str, Any]:
        """Compensation of open_case."""

        def undo(db: sqlite3.Connection, original: Entry) -> dict[str, Any]:
            case = original.result["case"]
            db.execute("UPDATE cases SET status = 'closed' WHERE id = ?", (case["id"],))
            value = {**case, "status": "closed"}
            return {"case": value, "facts": [{"name": "crm_case", "subject": f"crm_case:{case['id']}", "value": value}]}

        return ledger.compensate(original_key, call_key(ctx), "close_case", undo)

    @server.tool(meta=effect_meta())
    async def add_note(customer_id: str, text: str, ctx: Context, case_id: str | None = None) -> dict[str, Any]:
        """Add a note to a customer's record, or to one of their cases."""

        def effect(db: sqlite3.Connection) -> dict[str, Any]:
            if not text.strip():
                raise EffectRefused("a note needs text")
            if case_id is not None and db.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
                raise EffectRefused(f"no case {case_id}")
            note_id = f"NOTE-{uuid.uuid4().hex[:8]}"
            db.execute(
                "INSERT INTO notes (id, customer_id, case_id, text) VALUES (?, ?, ?, ?)",
                (note_id, customer_id, case_id, text),
            )
            return {"note": {"id": note_id, "case_id": case_id}}

        args = {"customer_id": customer_id, "text": text, "case_id": case_id}
        return await ledger.apply(call_key(ctx), "add_note", args, effect)

    return server


def main() -> None:
    hosting.main(build, __doc__, world_help="the world.yaml (the CRM starts empty)")


if __name__ == "__main__":
    main()
