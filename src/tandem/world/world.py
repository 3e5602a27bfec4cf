"""A world: the tenants a deployment serves, each with its directory and business date."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from tandem.world.records import CustomerRecord, Directory

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples"


class WorldError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    kind: str  # bank, health_plan
    assistant: str
    skills: tuple[str, ...]
    business_date: date
    directory: Directory
    settings: dict[str, Any] = field(default_factory=dict)


class World:
    def __init__(self, tenants: list[Tenant]) -> None:
        self.tenants = {t.id: t for t in tenants}

    def tenant(self, tenant_id: str) -> Tenant:
        try:
            return self.tenants[tenant_id]
        except KeyError:
            raise WorldError(f"unknown tenant {tenant_id!r}; known: {', '.join(sorted(self.tenants))}") from None

    def __iter__(self) -> Iterator[Tenant]:
        return iter(self.tenants.values())

    @property
    def business_date(self) -> date:
        dates = {t.business_date for t in self}
        return min(dates) if dates else date.today()

    @classmethod
    def load(cls, root: Path | None = None, business_date: date | None = None) -> World:
        """Load every ``*/world.yaml`` under ``root`` (the shipped examples by default)."""
        root = root or EXAMPLES_DIR
        files = sorted(root.glob("*/world.yaml"))
        if not files:
            raise WorldError(f"no */world.yaml under {root}")
        return cls([load_tenant(path, business_date) for path in files])

    @classmethod
    def empty(cls) -> World:
        return cls([])


def load_tenant(path: Path, business_date: date | None = None) -> Tenant:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise WorldError(f"{path}: {exc}") from exc
    try:
        t = raw["tenant"]
        records = [CustomerRecord.from_dict(t["id"], c) for c in raw.get("customers", [])]
        when = business_date or date.fromisoformat(str(raw.get("business_date", date.today().isoformat())))
        return Tenant(
            id=t["id"],
            name=t["name"],
            kind=t["kind"],
            assistant=t.get("assistant", f"{t['name']}'s assistant"),
            skills=tuple(t.get("skills", [])),
            business_date=when,
            directory=Directory(t["id"], records),
            settings={k: v for k, v in t.items() if k not in {"id", "name", "kind", "assistant", "skills"}},
        )
    except (KeyError, TypeError) as exc:
        raise WorldError(f"{path}: missing or malformed {exc}") from exc
