"""Signal definitions: named queries over named sources, what triggers them, and the facts their rows become.

One YAML file per tenant's release (``examples/bank/signals.yaml``)::

    release: {tenant: bank, name: harbor-bank-signals}
    sources:                        # the deployment's binding of source names (paths are under --data)
      lakehouse: {kind: duckdb, tables: {card_transactions: {parquet: bank/card_transactions.parquet}}}
    signals:
      recent_declines:
        source: lakehouse
        key: customer               # customer, account, card, member or claim
        query: SELECT ... WHERE customer_id = :key AND txn_date >= :today - INTERVAL 30 DAY
        trigger: {intents: [card_declined], assurance: knowledge_verified, requested_by: [human, ai]}
        freshness: 5m               # a fetched result is reused within an interaction for this long
        budget_ms: 200              # past this the conversation goes on with a timeout fact
        facts:
          - name: declined_payment
            subject: "transaction:{txn_id}"
            value: {merchant: merchant, amount: {amount_minor: amount_minor, currency: currency}}
    data_scopes: {...}              # see tandem.release.scopes

A query has two parameters, ``:key`` (the value of the signal's key) and ``:today`` (the business date); each
source turns them into its own placeholders. In a fact's ``value`` a string names a result column, a mapping
builds an object, and ``{const: X}`` is a literal; ``subject`` is a template over the columns. ``on_empty``
gives the fact's value when the query returns no rows ("no travel notice on file" is a fact too).

``query_many`` (optional) is the same query for many keys at once, for a source that answers lookups queued
together in one statement (DuckDB): ``:keys`` is the list of keys, the first column (``key``) says whose each
row is, and each key's rows come in the order the single query gives them. A source that does not batch
ignores it. The source trusts it to answer as the single query would; tests hold it to that.

The release's version is the digest of the file, so an interaction pinned to it can tell if it changed.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

from tandem.case.legs import Assurance
from tandem.release.scopes import DataScopes, ScopeError, parse_scopes
from tandem.world.world import EXAMPLES_DIR

KEY_KINDS = frozenset({"customer", "account", "card", "member", "claim"})
SOURCE_KINDS = frozenset({"duckdb", "postgres", "databricks"})
PARAMETERS = ("key", "today")
# ``:key`` but not a cast (``x::date``) nor part of a word; only the declared names count.
PLACEHOLDER = re.compile(r"(?<![:\w]):(key|today)\b")
# ``query_many``'s: the list of keys instead of one.
MANY_PLACEHOLDER = re.compile(r"(?<![:\w]):(keys|today)\b")
STATUS_FACT = "signal_status"
RELEASE_FILE = "signals.yaml"


class ReleaseError(ValueError):
    pass


TriggerKind = Literal["intent", "verified", "request"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """What happened that may call for signals: an intent was detected, the customer's identity was verified
    to a level, or a participant asked for one signal by name. ``assurance`` is the leg's current level:
    a signal is never fetched for a leg below the level its definition needs."""

    kind: TriggerKind
    name: str
    assurance: Assurance = Assurance.NONE

    @classmethod
    def intent(cls, name: str, assurance: Assurance = Assurance.NONE) -> Trigger:
        return cls("intent", name, assurance)

    @classmethod
    def verified(cls, level: Assurance) -> Trigger:
        return cls("verified", level.label, level)

    @classmethod
    def request(cls, signal: str, assurance: Assurance = Assurance.NONE) -> Trigger:
        return cls("request", signal, assurance)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}@{self.assurance.label}"


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    intents: frozenset[str] = frozenset()
    on_verified: Assurance | None = None  # fetched as soon as the leg reaches this level
    assurance: Assurance = Assurance.KNOWLEDGE_VERIFIED  # the least a leg needs for any fetch
    requested_by: frozenset[str] = frozenset()  # participants that may ask for it by name

    def fires(self, signal: str, trigger: Trigger, participant: str) -> bool:
        if trigger.assurance < self.assurance:
            return False
        if trigger.kind == "intent":
            return trigger.name in self.intents
        if trigger.kind == "verified":
            return self.on_verified is not None and self.on_verified <= trigger.assurance
        return trigger.name == signal and participant in self.requested_by


# -- values: how result columns become a fact's value -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    name: str


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Shape:
    fields: tuple[tuple[str, Column | Const | Shape], ...]


ValueSpec = Column | Const | Shape


def plain(value: Any) -> Any:
    """A column's value as the case file stores it: JSON-safe, dates as ISO strings (as the records say)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def render(spec: ValueSpec, row: Mapping[str, Any]) -> Any:
    if isinstance(spec, Column):
        try:
            return plain(row[spec.name])
        except KeyError:
            raise ReleaseError(f"the query returned no column {spec.name!r}") from None
    if isinstance(spec, Const):
        return spec.value
    return {name: render(item, row) for name, item in spec.fields}


def _parse_value(where: str, raw: Any) -> ValueSpec:
    if isinstance(raw, str):
        return Column(raw)
    if isinstance(raw, Mapping):
        if set(raw) == {"const"}:
            return Const(raw["const"])
        return Shape(tuple((str(k), _parse_value(f"{where}.{k}", v)) for k, v in raw.items()))
    raise ReleaseError(f"{where}: expected a column name, a mapping, or {{const: ...}}")


@dataclass(frozen=True, slots=True)
class FactSpec:
    name: str
    value: ValueSpec
    subject: str | None = None  # a template over the result's columns: "card:{card_last4}"
    has_empty: bool = False
    empty_value: Any = None

    def subject_for(self, row: Mapping[str, Any]) -> str | None:
        if self.subject is None:
            return None
        try:
            return self.subject.format_map({k: plain(v) for k, v in row.items()})
        except KeyError as exc:
            raise ReleaseError(f"fact {self.name}: subject needs column {exc}") from None


@dataclass(frozen=True, slots=True)
class SignalDef:
    name: str
    source: str
    key: str
    query: str
    trigger: TriggerSpec
    freshness: timedelta
    budget_ms: int
    facts: tuple[FactSpec, ...]
    description: str = ""
    query_many: str | None = None

    @property
    def budget_s(self) -> float:
        return self.budget_ms / 1000.0


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SignalRelease:
    tenant_id: str
    name: str
    version: str
    sources: Mapping[str, SourceSpec]
    signals: Mapping[str, SignalDef]
    scopes: DataScopes
    path: Path | None = None

    def signal(self, name: str) -> SignalDef:
        try:
            return self.signals[name]
        except KeyError:
            raise ReleaseError(
                f"tenant {self.tenant_id} has no signal {name!r}; known: {', '.join(sorted(self.signals))}"
            ) from None

    def triggered(self, trigger: Trigger, participant: str) -> list[SignalDef]:
        """The signal set this trigger fetches, in the order the release lists them."""
        return [s for s in self.signals.values() if s.trigger.fires(s.name, trigger, participant)]

    def sets(self) -> dict[str, list[str]]:
        """Intent -> the signals it fetches: the signal sets, as the CLI and docs show them."""
        out: dict[str, list[str]] = {}
        for s in self.signals.values():
            for intent in sorted(s.trigger.intents):
                out.setdefault(intent, []).append(s.name)
        return out


# -- parsing -----------------------------------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(raw: Any, where: str) -> timedelta:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return timedelta(seconds=float(raw))
    match = _DURATION.match(str(raw))
    if match is None:
        raise ReleaseError(f"{where}: expected a duration like 30s, 5m or 1h, got {raw!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _names(where: str, raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if isinstance(raw, str):
        return frozenset({raw})
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        return frozenset(raw)
    raise ReleaseError(f"{where}: expected a name or a list of names")


def _assurance(where: str, raw: Any) -> Assurance:
    try:
        return Assurance.parse(str(raw))
    except ValueError as exc:
        raise ReleaseError(f"{where}: {exc}") from None


def _parse_trigger(where: str, raw: Any) -> TriggerSpec:
    if not isinstance(raw, Mapping):
        raise ReleaseError(f"{where}: expected a mapping with intents, on_verified, assurance, requested_by")
    unknown = set(raw) - {"intents", "on_verified", "assurance", "requested_by"}
    if unknown:
        raise ReleaseError(f"{where}: unknown keys {sorted(unknown)}")
    on_verified = _assurance(f"{where}.on_verified", raw["on_verified"]) if "on_verified" in raw else None
    least = _assurance(f"{where}.assurance", raw.get("assurance", "knowledge_verified"))
    if on_verified is not None and "assurance" not in raw:
        least = on_verified
    return TriggerSpec(
        intents=_names(f"{where}.intents", raw.get("intents")),
        on_verified=on_verified,
        assurance=least,
        requested_by=_names(f"{where}.requested_by", raw.get("requested_by")),
    )


def _parse_fact(where: str, raw: Any) -> FactSpec:
    if not isinstance(raw, Mapping) or "name" not in raw or "value" not in raw:
        raise ReleaseError(f"{where}: a fact needs a name and a value")
    unknown = set(raw) - {"name", "value", "subject", "on_empty"}
    if unknown:
        raise ReleaseError(f"{where}: unknown keys {sorted(unknown)}")
    subject = raw.get("subject")
    if subject is not None:
        subject = str(subject)
        fields = [f for _, f, _, _ in string.Formatter().parse(subject) if f]
        if "on_empty" in raw and fields:
            raise ReleaseError(f"{where}: on_empty needs a subject without columns, got {subject!r}")
    return FactSpec(
        name=str(raw["name"]),
        value=_parse_value(f"{where}.value", raw["value"]),
        subject=subject,
        has_empty="on_empty" in raw,
        empty_value=raw.get("on_empty"),
    )


def _parse_signal(where: str, name: str, raw: Any, sources: Mapping[str, SourceSpec]) -> SignalDef:
    if not isinstance(raw, Mapping):
        raise ReleaseError(f"{where}: expected a mapping")
    required = {"source", "key", "query", "trigger", "facts"}
    missing = required - set(raw)
    if missing:
        raise ReleaseError(f"{where}: missing {sorted(missing)}")
    unknown = set(raw) - required - {"freshness", "budget_ms", "description", "query_many"}
    if unknown:
        raise ReleaseError(f"{where}: unknown keys {sorted(unknown)}")
    if raw["source"] not in sources:
        raise ReleaseError(f"{where}.source: no source {raw['source']!r}; declared: {', '.join(sorted(sources))}")
    if raw["key"] not in KEY_KINDS:
        raise ReleaseError(f"{where}.key: {raw['key']!r} is not one of {', '.join(sorted(KEY_KINDS))}")
    query = str(raw["query"]).strip()
    if not PLACEHOLDER.search(query) or ":key" not in query:
        raise ReleaseError(f"{where}.query: a signal's query must use :key")
    many = str(raw["query_many"]).strip() if raw.get("query_many") is not None else None
    if many is not None:
        uses_keys = any(m.group(1) == "keys" for m in MANY_PLACEHOLDER.finditer(many))
        if not uses_keys or any(m.group(1) == "key" for m in PLACEHOLDER.finditer(many)):
            raise ReleaseError(
                f"{where}.query_many: the many-keys query uses :keys (the list of keys), never :key; its first "
                "column, key, says whose each row is"
            )
    budget = raw.get("budget_ms", 200)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
        raise ReleaseError(f"{where}.budget_ms: expected a positive whole number of milliseconds")
    facts_raw = raw["facts"]
    if not isinstance(facts_raw, list) or not facts_raw:
        raise ReleaseError(f"{where}.facts: expected a non-empty list")
    return SignalDef(
        name=name,
        source=str(raw["source"]),
        key=str(raw["key"]),
        query=query,
        trigger=_parse_trigger(f"{where}.trigger", raw["trigger"]),
        freshness=parse_duration(raw.get("freshness", "5m"), f"{where}.freshness"),
        budget_ms=budget,
        facts=tuple(_parse_fact(f"{where}.facts[{i}]", f) for i, f in enumerate(facts_raw)),
        description=str(raw.get("description", "")).strip(),
        query_many=many,
    )


def parse_release(raw: Any, *, version: str, path: Path | None = None) -> SignalRelease:
    where = str(path) if path else "release"
    if not isinstance(raw, Mapping):
        raise ReleaseError(f"{where}: expected a mapping")
    head = raw.get("release")
    if not isinstance(head, Mapping) or "tenant" not in head:
        raise ReleaseError(f"{where}: needs release: {{tenant: ..., name: ...}}")
    sources: dict[str, SourceSpec] = {}
    for name, spec in (raw.get("sources") or {}).items():
        if not isinstance(spec, Mapping) or spec.get("kind") not in SOURCE_KINDS:
            raise ReleaseError(f"{where}: sources.{name}.kind must be one of {', '.join(sorted(SOURCE_KINDS))}")
        sources[str(name)] = SourceSpec(str(name), str(spec["kind"]), {k: v for k, v in spec.items() if k != "kind"})
    signals_raw = raw.get("signals") or {}
    if not isinstance(signals_raw, Mapping):
        raise ReleaseError(f"{where}: signals must be a mapping of name -> definition")
    signals = {str(n): _parse_signal(f"{where}: signals.{n}", str(n), s, sources) for n, s in signals_raw.items()}
    try:
        scopes = parse_scopes(raw.get("data_scopes"), f"{where}: data_scopes")
    except ScopeError as exc:
        raise ReleaseError(str(exc)) from None
    return SignalRelease(
        tenant_id=str(head["tenant"]),
        name=str(head.get("name", head["tenant"])),
        version=version,
        sources=sources,
        signals=signals,
        scopes=scopes,
        path=path,
    )


def load_release(path: Path) -> SignalRelease:
    text = path.read_text()
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReleaseError(f"{path}: {exc}") from exc
    version = hashlib.sha256(text.encode()).hexdigest()[:12]
    return parse_release(raw, version=version, path=path)


def load_releases(root: Path | None = None) -> dict[str, SignalRelease]:
    """Every ``*/signals.yaml`` under ``root`` (the shipped examples by default), by tenant."""
    root = root or EXAMPLES_DIR
    releases: dict[str, SignalRelease] = {}
    for path in sorted(root.glob(f"*/{RELEASE_FILE}")):
        release = load_release(path)
        if release.tenant_id in releases:
            raise ReleaseError(f"{path}: tenant {release.tenant_id} already has a release in {root}")
        releases[release.tenant_id] = release
    if not releases:
        raise ReleaseError(f"no */{RELEASE_FILE} under {root}")
    return releases
