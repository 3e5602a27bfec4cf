"""Agents of a tenant: their skills, capacity and presence. Load is not stored here: it is derived from
the log (the interactions whose floor an agent holds), so it can never drift from what really happened."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from tandem.case.envelope import new_id

Presence = Literal["available", "busy", "away"]
AgentRole = Literal["agent", "supervisor"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    agent_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    skills TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    presence TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agents_by_tenant ON agents (tenant_id, agent_id);
"""


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    tenant_id: str
    name: str
    role: AgentRole
    skills: tuple[str, ...]
    capacity: int
    presence: Presence
    created_at: str

    def serves(self, queue: str) -> bool:
        # "general" is every agent's work; a skill queue needs the skill.
        return queue == "general" or queue in self.skills


class AgentDirectory:
    """Agents persisted in the registry database, kept in memory too: routing reads them on every decision."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)
        rows = db.execute(
            "SELECT agent_id, tenant_id, name, role, skills, capacity, presence, created_at FROM agents"
        ).fetchall()
        self._agents: dict[str, Agent] = {
            r[0]: Agent(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), int(r[5]), r[6], r[7]) for r in rows
        }

    def create(
        self, tenant_id: str, name: str, role: AgentRole, skills: Iterable[str], capacity: int, now: datetime
    ) -> Agent:
        # A new agent starts away: nobody gets work before they say they are ready for it.
        agent = Agent(new_id("agt"), tenant_id, name, role, tuple(skills), capacity, "away", now.isoformat())
        self._db.execute(
            "INSERT INTO agents (agent_id, tenant_id, name, role, skills, capacity, presence, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (agent.agent_id, tenant_id, name, role, json.dumps(agent.skills), capacity, agent.presence,
             agent.created_at),
        )  # fmt: skip
        self._agents[agent.agent_id] = agent
        return agent

    def get(self, agent_id: str) -> Agent | None:
        return self._agents.get(agent_id)

    def of_tenant(self, tenant_id: str) -> list[Agent]:
        return sorted((a for a in self._agents.values() if a.tenant_id == tenant_id), key=lambda a: a.agent_id)

    def set_presence(self, agent_id: str, presence: Presence) -> Agent:
        agent = replace(self._agents[agent_id], presence=presence)
        self._db.execute("UPDATE agents SET presence = ? WHERE agent_id = ?", (presence, agent_id))
        self._agents[agent_id] = agent
        return agent
