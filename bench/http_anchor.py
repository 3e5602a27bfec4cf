"""The anchor of ``bench.http``: the least an HTTP message endpoint can do and still keep a durable log.

A minimal FastAPI app, served by uvicorn in a process of its own like Tandem, whose one endpoint
``POST /v1/interactions/{id}/messages`` appends the rows a Tandem turn writes (CustomerSaid, then ReplySent and
TurnCompleted: two transactions, as the conductor commits them) to SQLite in WAL mode with synchronous=FULL, and
answers with the reply. No understanding, no loading, no authorisation beyond reading the header.
``TANDEM_BENCH_ANCHOR_DB`` names the database file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header
from pydantic import BaseModel

DB = os.environ.get("TANDEM_BENCH_ANCHOR_DB", "anchor.sqlite3")

conn = sqlite3.connect(DB, isolation_level=None, check_same_thread=False)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=FULL")
conn.execute(
    "CREATE TABLE IF NOT EXISTS events (interaction_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,"
    " at TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (interaction_id, seq))"
)
seqs: dict[str, int] = {}

app = FastAPI()


class MessageIn(BaseModel):
    text: str


def _append(rows: list[tuple[str, int, str, str, str]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")


@app.post("/v1/interactions/{interaction_id}/messages")
async def post_message(interaction_id: str, body: MessageIn, authorization: str = Header("")) -> dict[str, Any]:
    seq = seqs.get(interaction_id, 0)
    at = datetime.now(UTC).isoformat()
    actor = {"kind": "customer", "id": authorization[-8:]}
    _append([(interaction_id, seq + 1, "CustomerSaid", at, json.dumps({"text": body.text, "actor": actor}))])
    reply = "Sorry, I didn't catch that."
    _append([
        (interaction_id, seq + 2, "ReplySent", at, json.dumps({"text": reply, "actor": {"kind": "bot"}})),
        (interaction_id, seq + 3, "TurnCompleted", at, json.dumps({"input_seq": seq + 1, "replies": [seq + 2]})),
    ])  # fmt: skip
    seqs[interaction_id] = seq + 3
    return {
        "seq": seq + 1,
        "replies": [{"seq": seq + 2, "from": "bot", "text": reply, "at": at}],
        "floor": {"kind": "bot"},
    }
