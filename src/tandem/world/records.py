"""Customer records of an example world, and the directory that finds a customer by what they say."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def normalize_phone(raw: str) -> str:
    """``(415) 555-0134`` and ``+1 415 555 0134`` are the same number."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 10:
        digits = "1" + digits
    return "+" + digits


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    tenant_id: str
    name: str
    phone: str | None
    email: str | None
    date_of_birth: str | None
    zip: str | None
    member_id: str | None
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, tenant_id: str, raw: Mapping[str, Any]) -> CustomerRecord:
        known = {"id", "name", "phone", "email", "date_of_birth", "zip", "member_id"}
        return cls(
            id=str(raw["id"]),
            tenant_id=tenant_id,
            name=str(raw["name"]),
            phone=normalize_phone(str(raw["phone"])) if raw.get("phone") else None,
            email=str(raw["email"]).lower() if raw.get("email") else None,
            date_of_birth=str(raw["date_of_birth"]) if raw.get("date_of_birth") else None,
            zip=str(raw["zip"]) if raw.get("zip") else None,
            member_id=str(raw["member_id"]) if raw.get("member_id") else None,
            details={k: v for k, v in raw.items() if k not in known},
        )

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def public(self) -> dict[str, Any]:
        """What a channel may show about the customer before any verification: the name only."""
        return {"id": self.id, "name": self.name}


class Directory:
    """Finds customers of one tenant by an identity they give: id, phone, email, member id or name."""

    def __init__(self, tenant_id: str, records: Iterable[CustomerRecord]) -> None:
        self.tenant_id = tenant_id
        self._by_id: dict[str, CustomerRecord] = {}
        self._by_key: dict[tuple[str, str], CustomerRecord] = {}
        for record in records:
            self._by_id[record.id] = record
            for kind, value in (
                ("phone", record.phone),
                ("email", record.email),
                ("member_id", record.member_id),
                ("name", record.name.lower()),
            ):
                if value:
                    self._by_key[(kind, value)] = record
            for account in record.details.get("accounts", []) or []:
                self._by_key[("account_id", str(account["id"]))] = record

    def get(self, customer_id: str) -> CustomerRecord | None:
        return self._by_id.get(customer_id)

    def find(self, kind: str, value: str) -> CustomerRecord | None:
        if kind == "customer_id":
            return self._by_id.get(value)
        if kind == "phone":
            value = normalize_phone(value)
        elif kind in ("email", "name"):
            value = value.lower().strip()
        return self._by_key.get((kind, value))

    def __iter__(self) -> Any:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
